package wecom_test

import (
	"errors"
	"testing"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

func TestConfigure(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{noConfigure: true})
		if _, err := f.svc.Settings(f.ctx, f.ws.ID); !errors.Is(err, wecom.ErrNotConfigured) || errs.CodeOf(err) != "wecom_not_configured" {
			t.Fatalf("settings before configuring: %v", err)
		}
		good := wecom.SettingsInput{CorpID: f.sim.CorpID(), AgentID: f.sim.AgentID(), Secret: f.sim.Secret(), Token: f.sim.CallbackToken(),
			EncodingAESKey: f.sim.EncodingAESKey(), BaseURL: f.sim.URL()}
		for _, c := range []struct {
			name string
			edit func(*wecom.SettingsInput)
			code string
		}{
			{"no corp", func(in *wecom.SettingsInput) { in.CorpID = "" }, "wecom_bad_corp_id"},
			{"no secret", func(in *wecom.SettingsInput) { in.Secret = "" }, "wecom_missing_secret"},
			{"token with a dash", func(in *wecom.SettingsInput) { in.Token = "bad-token" }, "wecom_bad_token"},
			{"token too long", func(in *wecom.SettingsInput) { in.Token = "a234567890123456789012345678901234" }, "wecom_bad_token"},
			{"short key", func(in *wecom.SettingsInput) { in.EncodingAESKey = in.EncodingAESKey[:42] }, "wecom_bad_aes_key"},
			{"key not base64", func(in *wecom.SettingsInput) { in.EncodingAESKey = "!" + in.EncodingAESKey[1:] }, "wecom_bad_aes_key"},
			{"base URL", func(in *wecom.SettingsInput) { in.BaseURL = "ftp://x" }, "wecom_bad_base_url"},
		} {
			in := good
			c.edit(&in)
			if _, err := f.svc.Configure(f.ctx, f.admin(), in); errs.CodeOf(err) != c.code {
				t.Errorf("%s: %v, want %s", c.name, err, c.code)
			}
		}
		operator := tenant.Principal{TenantID: f.ws.ID, Kind: tenant.ActorAPIKey, Name: "op", Role: tenant.RoleOperator}
		if _, err := f.svc.Configure(f.ctx, operator, good); !errs.Is(err, errs.Forbidden) {
			t.Fatalf("an operator configured WeCom: %v", err)
		}
		st, err := f.svc.Configure(f.ctx, f.admin(), good)
		if err != nil {
			t.Fatal(err)
		}
		if st.CorpID != f.sim.CorpID() || st.AgentID != f.sim.AgentID() || st.Secret != "********"+good.Secret[len(good.Secret)-4:] ||
			contains(st.Token, good.Token) || contains(st.EncodingAESKey, good.EncodingAESKey[:8]) ||
			st.CallbackURL != "https://siyu.example.com/connect/wecom/tea/callback" || st.BaseURL != f.sim.URL() {
			t.Fatalf("settings %+v", st)
		}
		// Secrets are encrypted at rest.
		if n := f.count(t, `SELECT count(*) FROM wecom_settings WHERE secret_enc LIKE $1 OR token_enc = $2`, "%"+good.Secret+"%", good.Token); n != 0 {
			t.Fatal("a secret is stored in clear")
		}
		// Leaving the secrets out keeps them; the corp can change.
		again := wecom.SettingsInput{CorpID: f.sim.CorpID(), AgentID: 7}
		if st, err = f.svc.Configure(f.ctx, f.admin(), again); err != nil || st.AgentID != 7 || st.BaseURL != wecom.DefaultBaseURL {
			t.Fatalf("update without secrets: %+v %v", st, err)
		}
		cred, err := f.svc.Credentials(f.ctx, f.ws.ID)
		if err != nil || cred.Secret != good.Secret || cred.Token != good.Token || cred.EncodingAESKey != good.EncodingAESKey {
			t.Fatalf("credentials after an update without secrets: %v", err)
		}
		log, err := f.tenants.AuditLog(f.ctx, f.ws.ID, page.Request{})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range log.Items {
			actions = append(actions, e.Action)
			if contains(e.Detail, good.Secret) || contains(e.Detail, good.Token) {
				t.Fatalf("a secret is in the audit log: %s", e.Detail)
			}
		}
		if len(actions) != 2 || actions[0] != "wecom.configure" || actions[1] != "wecom.connect" {
			t.Fatalf("audit %v", actions)
		}
	})
}

func TestConnectionTest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		res, err := f.svc.TestConnection(f.ctx, f.admin())
		if err != nil || !res.OK || res.ErrCode != 0 {
			t.Fatalf("test: %+v %v", res, err)
		}
		f.sim.SetTrustedIP(false)
		res, err = f.svc.TestConnection(f.ctx, f.admin())
		if err != nil {
			t.Fatal(err)
		}
		if res.OK || res.ErrCode != wecom.CodeIPNotAllowed || !contains(res.Message, "trusted IP") || !contains(res.Fix, "企业可信IP") {
			t.Fatalf("untrusted IP: %+v", res)
		}
		st, err := f.svc.Settings(f.ctx, f.ws.ID)
		if err != nil || st.LastTest == nil || st.LastTest.OK || st.LastTest.ErrCode != wecom.CodeIPNotAllowed || st.LastTest.Fix != res.Fix {
			t.Fatalf("last test %+v %v", st.LastTest, err)
		}
		f.sim.SetTrustedIP(true)
		f.sim.SetSecret("a-new-secret-set-in-the-admin-console-0123")
		res, _ = f.svc.TestConnection(f.ctx, f.admin())
		if res.OK || res.ErrCode != wecom.CodeInvalidSecret || res.Fix == "" {
			t.Fatalf("revoked secret: %+v", res)
		}
	})
}
