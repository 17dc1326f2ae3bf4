package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/tenant"
)

func TestWeComConnectorAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "wecom")
		sim := wecomtest.New(wecomtest.Options{CallbackURL: s.URL + "/connect/wecom/wecom/callback", CallbackRetries: -1})
		t.Cleanup(sim.Close)
		const path = "/api/v1/connectors/wecom"
		expectProblem(t, s.Do(t, "GET", path, w.Key, nil), 404, "wecom_not_configured")

		body := map[string]any{"corp_id": sim.CorpID(), "agent_id": sim.AgentID(), "secret": sim.Secret(), "token": sim.CallbackToken(),
			"encoding_aes_key": sim.EncodingAESKey(), "base_url": sim.URL()}
		bad := map[string]any{}
		for k, v := range body {
			bad[k] = v
		}
		bad["token"] = "not-alnum!"
		expectProblem(t, s.Do(t, "PUT", path, w.Key, bad), 422, "wecom_bad_token")
		bad["token"], bad["encoding_aes_key"] = sim.CallbackToken(), "tooshort"
		expectProblem(t, s.Do(t, "PUT", path, w.Key, bad), 422, "wecom_bad_aes_key")

		var st wecom.Settings
		mustStatus(t, s.Do(t, "PUT", path, w.Key, body), 200).JSON(t, &st)
		secret := sim.Secret()
		if st.CorpID != sim.CorpID() || st.Secret != "********"+secret[len(secret)-4:] || strings.Contains(st.Token, sim.CallbackToken()) ||
			st.CallbackURL != "http://127.0.0.1:8080/connect/wecom/wecom/callback" {
			t.Fatalf("settings %+v", st)
		}
		// Omitting the secret keeps it.
		delete(body, "secret")
		body["agent_id"] = 1000005
		mustStatus(t, s.Do(t, "PUT", path, w.Key, body), 200).JSON(t, &st)
		var got wecom.Settings
		mustStatus(t, s.Do(t, "GET", path, w.Key, nil), 200).JSON(t, &got)
		if got.AgentID != 1000005 || got.Secret != st.Secret {
			t.Fatalf("after an update without the secret: %+v", got)
		}
		r := s.Do(t, "GET", path, w.Key, nil)
		if strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), sim.EncodingAESKey()) {
			t.Fatalf("a secret is in the answer: %s", r.Body)
		}

		var res wecom.TestResult
		mustStatus(t, s.Do(t, "POST", path+"/test", w.Key, nil), 200).JSON(t, &res)
		if !res.OK {
			t.Fatalf("test %+v", res)
		}
		sim.SetTrustedIP(false)
		mustStatus(t, s.Do(t, "POST", path+"/test", w.Key, nil), 200).JSON(t, &res)
		if res.OK || res.ErrCode != 60020 || res.Fix == "" {
			t.Fatalf("test with an untrusted IP %+v", res)
		}
		sim.SetTrustedIP(true)

		// Operators may neither read nor change connectors.
		_, opKey, err := s.App.Tenant.CreateAPIKey(context.Background(), tenant.System(w.ID), "operator", tenant.RoleOperator)
		if err != nil {
			t.Fatal(err)
		}
		expectProblem(t, s.Do(t, "GET", path, opKey, nil), 403, "forbidden")
		expectProblem(t, s.Do(t, "PUT", path, opKey, body), 403, "forbidden")

		// The app mounts the callback endpoint and processes what it stores.
		if err := sim.VerifyCallbackURL(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := sim.PutStaff(wecomtest.Staff{UserID: "zhangsan"}); err != nil {
			t.Fatal(err)
		}
		if _, err := sim.AddContact(context.Background(), "zhangsan", wecomtest.Contact{Name: "王五"}, ""); err != nil {
			t.Fatal(err)
		}
		if ds := sim.Deliveries(); len(ds) != 1 || !ds[0].OK {
			t.Fatalf("deliveries %+v", ds)
		}
		var events struct {
			Items []wecom.InboxEntry `json:"items"`
		}
		mustStatus(t, s.Do(t, "GET", path+"/events", w.Key, nil), 200).JSON(t, &events)
		if len(events.Items) != 1 || events.Items[0].Kind != string(wecom.KindAddExternalContact) {
			t.Fatalf("events %+v", events.Items)
		}
		expectProblem(t, s.Do(t, "POST", path+"/events/999999/retry", w.Key, nil), 404, "wecom_event_not_found")
	})
}
