package api_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/message"
)

func TestMassMessageAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "msg-api")
		sim := s.NewWeComSim(t, w, wecomtest.Options{})
		for _, u := range []string{"zhangsan", "lisi"} {
			if _, err := sim.PutStaff(wecomtest.Staff{UserID: u, Name: u}); err != nil {
				t.Fatal(err)
			}
		}
		for i, u := range []string{"zhangsan", "zhangsan", "lisi"} {
			if _, err := sim.PutContact(wecomtest.Contact{Name: fmt.Sprint("客户", i)}, wecomtest.Follow{UserID: u, CreateTime: sim.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		s.ConnectWeCom(t, w, sim)
		if err := s.App.Audiences.Sync(t.Context(), w.ID); err != nil {
			t.Fatal(err)
		}

		// Settings: defaults, then bad and good changes.
		var set message.Settings
		s.Do(t, "GET", "/api/v1/messages/settings", w.Key, nil).JSON(t, &set)
		if set.CapPolicy != "month" {
			t.Fatalf("default settings %+v", set)
		}
		expectProblem(t, s.Do(t, "PUT", "/api/v1/messages/settings", w.Key, `{"cap_policy": "week", "quiet_start": "21:00"}`), 422, "invalid_quiet_hours")
		if r := s.Do(t, "PUT", "/api/v1/messages/settings", w.Key, `{"cap_policy": "week"}`); r.Status != 200 {
			t.Fatalf("settings: %d %s", r.Status, r.Body)
		}

		body := `{"key": "k1", "name": "春茶", "kind": "customers", "target": {"condition": {"attr": "first_seen_at", "op": "is_set"}},
			"content": {"text": "{{staff_name}} 推荐春茶", "attachments": [{"kind": "link", "title": "春茶", "url": "https://example.com/tea"}]}}`
		var c message.Campaign
		r := s.Do(t, "POST", "/api/v1/messages/campaigns", w.Key, body)
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &c)
		var again message.Campaign
		s.Do(t, "POST", "/api/v1/messages/campaigns", w.Key, body).JSON(t, &again)
		if c.Status != message.CampaignDraft || again.ID != c.ID {
			t.Fatalf("create twice: %+v %+v", c, again)
		}
		expectProblem(t, s.Do(t, "POST", "/api/v1/messages/campaigns", w.Key,
			`{"name": "x", "kind": "customers", "target": {}, "content": {"text": "x"}}`), 422, "target_required")
		p := expectProblem(t, s.Do(t, "POST", "/api/v1/messages/campaigns", w.Key,
			`{"name": "x", "kind": "customers", "target": {"condition": {"attr": "first_seen_at", "op": "is_set"}}, "content": {"text": "x", "attachments": [{"kind": "gif"}]}}`), 422, "unknown_kind")
		if len(p.Errors) != 1 || p.Errors[0].Location != "body.content.attachments[0]" {
			t.Fatalf("problem %+v", p)
		}
		expectProblem(t, s.Do(t, "GET", "/api/v1/messages/campaigns/999999", w.Key, nil), 404, "campaign_not_found")

		var est message.Estimate
		s.Do(t, "POST", "/api/v1/messages/estimate", w.Key, body).JSON(t, &est)
		if est.Recipients != 3 || est.Staff != 2 || est.Batches != 2 || est.CapPolicy != "week" || est.CapLimit != 7 {
			t.Fatalf("estimate %+v", est)
		}
		var pv message.Preview
		r = s.Do(t, "POST", "/api/v1/messages/preview", w.Key, map[string]any{"customer_id": 1, "campaign": map[string]any{
			"name": "x", "kind": "customers", "target": map[string]any{"condition": map[string]any{"attr": "first_seen_at", "op": "is_set"}},
			"content": map[string]any{"text": "{{customer_name}}, {{staff_name}}"}}})
		if r.Status == 200 {
			r.JSON(t, &pv)
			if pv.Text == "" || pv.CustomerID != 1 {
				t.Fatalf("preview %+v", pv)
			}
		} else {
			expectProblem(t, r, 404, "customer_not_found")
		}

		if r := s.Do(t, "POST", fmt.Sprintf("/api/v1/messages/campaigns/%d/send", c.ID), w.Key, nil); r.Status != 200 {
			t.Fatalf("send: %d %s", r.Status, r.Body)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			s.Do(t, "GET", fmt.Sprintf("/api/v1/messages/campaigns/%d", c.ID), w.Key, nil).JSON(t, &c)
			if c.Status == message.CampaignSent || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if c.Status != message.CampaignSent || c.Stats.Submitted != 3 || len(sim.MassMessages()) != 2 {
			t.Fatalf("after sending: %+v, %d templates", c, len(sim.MassMessages()))
		}
		var staff struct {
			Items      []message.StaffResult
			NextCursor string `json:"next_cursor"`
		}
		s.Do(t, "GET", fmt.Sprintf("/api/v1/messages/campaigns/%d/staff?limit=1", c.ID), w.Key, nil).JSON(t, &staff)
		if len(staff.Items) != 1 || staff.Items[0].UserID != "lisi" || staff.Items[0].Submitted != 1 || staff.NextCursor == "" {
			t.Fatalf("staff %+v", staff)
		}
		var recips struct {
			Items []message.RecipientResult
		}
		s.Do(t, "GET", fmt.Sprintf("/api/v1/messages/campaigns/%d/recipients?staff_userid=zhangsan", c.ID), w.Key, nil).JSON(t, &recips)
		if len(recips.Items) != 2 || recips.Items[0].Status != message.StatusSubmitted {
			t.Fatalf("recipients %+v", recips)
		}
		var env message.EnvelopeRecord
		s.Do(t, "GET", fmt.Sprintf("/api/v1/messages/envelopes/%d", recips.Items[0].EnvelopeID), w.Key, nil).JSON(t, &env)
		if env.Channel != message.ChannelWeComCustomer || env.Content.Text != "zhangsan 推荐春茶" || env.CampaignID != c.ID {
			t.Fatalf("envelope %+v", env)
		}
		var rem message.RemindResult
		s.Do(t, "POST", fmt.Sprintf("/api/v1/messages/campaigns/%d/remind", c.ID), w.Key, `{"staff_userids": ["lisi"]}`).JSON(t, &rem)
		if len(rem.Reminded) != 1 || rem.Reminded[0] != "lisi" {
			t.Fatalf("remind %+v", rem)
		}
		s.Do(t, "POST", fmt.Sprintf("/api/v1/messages/campaigns/%d/cancel", c.ID), w.Key, nil).JSON(t, &c)
		if c.Status != message.CampaignCancelled || c.Stats.Cancelled != 3 {
			t.Fatalf("cancel %+v", c)
		}
		expectProblem(t, s.Do(t, "POST", fmt.Sprintf("/api/v1/messages/campaigns/%d/schedule", c.ID), w.Key,
			map[string]any{"send_at": time.Now().Add(time.Hour)}), 409, "campaign_not_schedulable")
		var list struct {
			Items []message.Campaign
		}
		s.Do(t, "GET", "/api/v1/messages/campaigns?status=cancelled", w.Key, nil).JSON(t, &list)
		if len(list.Items) != 1 || list.Items[0].ID != c.ID {
			t.Fatalf("list %+v", list)
		}
	})
}
