package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// messagesHarness is the whole app with a workspace connected to a corp
// (on the wall clock, as the app's) where zhangsan serves 茶1–茶2 and lisi 茶3.
func messagesHarness(t *testing.T) (*wecomHarness, map[string]int64) {
	t.Helper()
	srv := apptest.Start(t, db.SQLite)
	hs := httptest.NewServer(srv.App.Handler())
	t.Cleanup(hs.Close)
	ctx := context.Background()
	ws, err := srv.App.Tenant.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "test-brand", Name: workspaceName})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []tenant.NewUser{
		{Email: ownerEmail, Name: "Owner", Password: testPassword, Role: tenant.RoleOwner},
		{Email: wecomAdminEmail, Name: "Admin", Password: testPassword, Role: tenant.RoleAdmin},
		{Email: analystEmail, Name: "Analyst", Password: testPassword, Role: tenant.RoleAnalyst},
	} {
		if _, err := srv.App.Tenant.CreateUser(ctx, ws.ID, u); err != nil {
			t.Fatal(err)
		}
	}
	sim := wecomtest.New(wecomtest.Options{CallbackURL: hs.URL + "/connect/wecom/test-brand/callback", CallbackRetries: -1,
		CorpOptions: wecomtest.CorpOptions{Now: time.Now}})
	t.Cleanup(sim.Close)
	wh := &wecomHarness{harness: &harness{t: t, srv: hs, ts: srv.App.Tenant, d: srv.App.DB, ws: ws}, app: srv.App, sim: sim}
	for _, u := range []string{"zhangsan", "lisi"} {
		if _, err := sim.PutStaff(wecomtest.Staff{UserID: u, Name: "员工" + u}); err != nil {
			t.Fatal(err)
		}
	}
	ext := map[string]string{}
	for _, c := range []struct{ name, staff string }{{"茶1", "zhangsan"}, {"茶2", "zhangsan"}, {"茶3", "lisi"}} {
		ct, err := sim.PutContact(wecomtest.Contact{Name: c.name}, wecomtest.Follow{UserID: c.staff})
		if err != nil {
			t.Fatal(err)
		}
		ext[c.name] = ct.ExternalUserID
	}
	if _, err := sim.PutGroup(wecomtest.Group{Owner: "zhangsan", Name: "茶友群", Members: []wecomtest.Member{{UserID: ext["茶1"]}, {UserID: ext["茶2"]}}}); err != nil {
		t.Fatal(err)
	}
	b := wh.browser()
	wh.connect(t, b, b.signIn(wecomAdminEmail))
	if _, err := srv.App.WeCom.ScheduleSyncs(ctx); err != nil {
		t.Fatal(err)
	}
	wh.syncDone(t)
	if err := srv.App.Audiences.Sync(ctx, ws.ID); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for name := range ext {
		var id int64
		if err := srv.App.DB.QueryRowContext(ctx, `SELECT id FROM customers WHERE tenant_id = $1 AND name = $2`, ws.ID, name).Scan(&id); err != nil {
			t.Fatalf("customer %s: %v", name, err)
		}
		ids[name] = id
	}
	return wh, ids
}

// hxPost is a form POST as htmx sends it.
func (b *browser) hxPost(path string, form url.Values) response {
	b.h.t.Helper()
	return b.post(path, form, "HX-Request", "true")
}

// drainMessages runs the outbox until none of the statuses is left among
// the envelopes, reading results now rather than at their next poll (the
// app's poll is minutes away). The app's own dispatcher may hold a batch
// meanwhile, so it waits for the outcome rather than for one drain.
func drainMessages(t *testing.T, wh *wecomHarness, statuses ...string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := wh.app.DB.ExecContext(ctx, `UPDATE message_batches SET next_poll_at = 0 WHERE status = 'submitted'`); err != nil {
			t.Fatal(err)
		}
		if err := wh.app.Messages.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		left := 0
		for _, st := range statuses {
			var n int
			if err := wh.app.DB.QueryRowContext(ctx, `SELECT count(*) FROM message_envelopes WHERE status = $1`, st).Scan(&n); err != nil {
				t.Fatal(err)
			}
			left += n
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d envelopes still %v", left, statuses)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var campaignPathRE = regexp.MustCompile(`^/messages/(\d+)$`)

// The composer shows the cap estimate and a preview per customer before
// anything is sent, refuses bad input in the user's language, sends, and the
// results page shows the outcome per staff member and per customer, with
// reminders limited as WeCom limits them and the refusal explained.
func TestMessagesComposeSendAndResults(t *testing.T) {
	wh, ids := messagesHarness(t)
	b := wh.browser()
	token := b.signIn(ownerEmail)
	everyone := `{"attr": "first_seen_at", "op": "is_set"}`

	list := b.get("/messages")
	wantStatus(t, list, 200)
	wantBody(t, list, "还没有群发", `href="/messages/new"`)
	compose := b.get("/messages/new")
	wantStatus(t, compose, 200)
	wantBody(t, compose, `id="builder"`, `name="conditions"`, `value="zhangsan"`, "/static/audience.", "/static/messages.")
	key := momentKeyRE.FindStringSubmatch(compose.body)
	if key == nil {
		t.Fatal("no idempotency key in the composer")
	}
	form := func(extra map[string]string) url.Values {
		v := url.Values{"csrf": {token}, "key": {key[1]}, "name": {"春茶上新"}, "kind": {"customers"}, "target_mode": {"condition"},
			"conditions": {everyone}, "text": {"春茶到店，{{staff_name}}为您留了一份"}}
		for k, x := range extra {
			v.Set(k, x)
		}
		return v
	}

	// Before sending: the estimate and a preview for one customer.
	est := b.hxPost("/messages/estimate", form(nil))
	wantStatus(t, est, 200)
	wantBody(t, est, `id="est-recipients">3<`, `id="est-over-cap">0<`, `id="est-staff"`, "员工zhangsan", `"preview_customer"`)
	pv := b.hxPost("/messages/preview", form(map[string]string{"preview_customer": fmt.Sprint(ids["茶3"])}))
	wantStatus(t, pv, 200)
	wantBody(t, pv, `id="preview-name">茶3<`, "春茶到店，员工lisi为您留了一份")
	wantNoBody(t, pv, `id="preview-skip"`)

	// To groups: those of the owners chosen.
	groups := form(map[string]string{"kind": "groups", "target_mode": "", "conditions": ""})
	groups["staff"] = []string{"zhangsan"}
	est = b.hxPost("/messages/estimate", groups)
	wantStatus(t, est, 200)
	wantBody(t, est, `id="est-recipients">1<`)
	wantNoBody(t, est, `id="est-cap"`)

	// Refused input, explained.
	res := b.post("/messages", form(map[string]string{"name": "", "action": "draft"}))
	wantStatus(t, res, 422)
	wantBody(t, res, "请填写群发名称。")
	res = b.post("/messages", form(map[string]string{"text": "{{customer_name}}您好", "action": "send"}))
	wantStatus(t, res, 422)
	wantBody(t, res, "不能使用 {{customer_name}}")
	res = b.post("/messages", form(map[string]string{"action": "schedule", "send_at": ""}))
	wantStatus(t, res, 422)
	wantBody(t, res, "请选择发送的日期和时间。")

	// Send now; a second submit of the same form is the same campaign.
	res = b.post("/messages", form(map[string]string{"action": "send"}))
	wecomWantRedirect(t, res, "/messages/")
	again := b.post("/messages", form(map[string]string{"action": "send"}))
	if again.Header.Get("Location") != res.Header.Get("Location") {
		t.Fatalf("two campaigns for one form: %s %s", res.Header.Get("Location"), again.Header.Get("Location"))
	}
	path := res.Header.Get("Location")
	if !campaignPathRE.MatchString(path) {
		t.Fatalf("redirected to %s", path)
	}
	drainMessages(t, wh, "queued")
	page1 := b.get(path)
	wantStatus(t, page1, 200)
	wantBody(t, page1, "已发出", `id="stat-recipients">3<`, `id="stat-waiting">3<`, `id="staff-zhangsan"`, `id="remind-zhangsan"`)

	// Reminders: WeCom allows 3 per staff member in 24 hours.
	for i := range 3 {
		r := b.post(path+"/remind", url.Values{"csrf": {token}, "userid": {"zhangsan"}})
		wantStatus(t, r, 200)
		wantBody(t, r, `id="remind-done"`)
		_ = i
	}
	r := b.post(path+"/remind", url.Values{"csrf": {token}, "userid": {"zhangsan"}})
	wantStatus(t, r, 200)
	wantBody(t, r, `id="remind-refused-zhangsan"`, "每 24 小时最多提醒同一员工 3 次")

	// Staff send; the results come in per staff member and per customer.
	if n := wh.sim.ConfirmAll(); n == 0 {
		t.Fatal("no mass message to confirm")
	}
	drainMessages(t, wh, "submitted")
	done := b.get(path)
	wantBody(t, done, `id="stat-sent">3<`)
	sent := b.get(path + "?status=sent")
	wantBody(t, sent, ">茶1<", ">茶3<", "已发送")
	onlyLisi := b.get(path + "?staff=lisi")
	wantBody(t, onlyLisi, ">茶3<")
	wantNoBody(t, onlyLisi, ">茶1<")

	// Now each customer reached the cap of a day: the next one would skip them.
	settings := b.post("/messages/settings", url.Values{"csrf": {token}, "cap_policy": {"day"}, "quiet_start": {""}, "quiet_end": {""}})
	wecomWantRedirect(t, settings, "/messages/settings")
	next := url.Values{}
	for k, v := range form(nil) {
		next[k] = v
	}
	next.Set("key", "second")
	est = b.hxPost("/messages/estimate", next)
	wantBody(t, est, `id="est-over-cap">3<`, `id="est-recipients">0<`, `id="est-over-cap-note"`)
	pv = b.hxPost("/messages/preview", url.Values(mergeForm(next, "preview_customer", fmt.Sprint(ids["茶1"]))))
	wantBody(t, pv, `id="preview-skip"`, "已达到接收上限")
	bad := b.post("/messages/settings", url.Values{"csrf": {token}, "cap_policy": {"day"}, "quiet_start": {"25:00"}, "quiet_end": {"08:00"}})
	wantStatus(t, bad, 422)

	// A draft is estimated on its page and can be scheduled.
	draft := b.post("/messages", mergeForm(next, "action", "draft"))
	wecomWantRedirect(t, draft, "/messages/")
	dpage := b.get(draft.Header.Get("Location"))
	wantBody(t, dpage, "草稿", `id="est-over-cap">3<`, `id="campaign-send"`)
	edit := b.get(draft.Header.Get("Location") + "/edit")
	wantStatus(t, edit, 200)
	wantBody(t, edit, `value="春茶上新"`, `first_seen_at`, `action="`+draft.Header.Get("Location")+`"`)
	renamed := mergeForm(next, "name", "春茶上新（二）")
	renamed.Set("action", "draft")
	wecomWantRedirect(t, b.post(draft.Header.Get("Location"), renamed), draft.Header.Get("Location"))
	wantBody(t, b.get(draft.Header.Get("Location")), "春茶上新（二）")
	when := time.Now().Add(48 * time.Hour).In(time.FixedZone("CST", 8*3600)).Format("2006-01-02T15:04")
	sch := b.post(draft.Header.Get("Location")+"/schedule", url.Values{"csrf": {token}, "send_at": {when}})
	wecomWantRedirect(t, sch, "/messages/")
	wantBody(t, b.get(draft.Header.Get("Location")), "已定时")
	cancel := b.post(draft.Header.Get("Location")+"/cancel", url.Values{"csrf": {token}})
	wecomWantRedirect(t, cancel, "/messages/")
	wantBody(t, b.get(draft.Header.Get("Location")), "已取消")

	// An analyst reads results but cannot compose.
	ab := wh.browser()
	ab.signIn(analystEmail)
	al := ab.get("/messages")
	wantStatus(t, al, 200)
	wantBody(t, al, "春茶上新")
	wantNoBody(t, al, `href="/messages/new"`)
	wantStatus(t, ab.get("/messages/new"), http.StatusForbidden)
	wantStatus(t, ab.get(path), 200)
	if strings.Contains(ab.get(path).body, `id="remind-zhangsan"`) {
		t.Fatal("an analyst is offered reminders")
	}
}

func mergeForm(v url.Values, k, x string) url.Values {
	out := url.Values{}
	for key, vals := range v {
		out[key] = append([]string{}, vals...)
	}
	out.Set(k, x)
	return out
}
