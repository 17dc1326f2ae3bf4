package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

const wecomAdminEmail = "wecom-admin@brand.test"

// wecomHarness is the whole app with the console served by httptest, a
// workspace with an owner, an admin, an analyst and an operator, and a
// simulated WeCom corp whose callbacks go to the app.
type wecomHarness struct {
	*harness
	app *app.App
	sim *wecomtest.Server
}

func newWeComHarness(t *testing.T, engine db.Dialect) *wecomHarness {
	t.Helper()
	srv := apptest.Start(t, engine)
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
		{Email: operatorEmail, Name: "运营小王", Password: testPassword, Role: tenant.RoleOperator},
	} {
		if _, err := srv.App.Tenant.CreateUser(ctx, ws.ID, u); err != nil {
			t.Fatal(err)
		}
	}
	sim := wecomtest.New(wecomtest.Options{CallbackURL: hs.URL + "/connect/wecom/test-brand/callback", CallbackRetries: -1})
	t.Cleanup(sim.Close)
	return &wecomHarness{harness: &harness{t: t, srv: hs, ts: srv.App.Tenant, d: srv.App.DB, ws: ws}, app: srv.App, sim: sim}
}

func eachWeComEngine(t *testing.T, fn func(t *testing.T, wh *wecomHarness)) {
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) { fn(t, newWeComHarness(t, engine)) })
	}
}

// settingsForm is the settings form filled in for the simulated corp.
func (wh *wecomHarness) settingsForm(token string) url.Values {
	return url.Values{"csrf": {token}, "corp_id": {wh.sim.CorpID()}, "agent_id": {fmt.Sprint(wh.sim.AgentID())},
		"secret": {wh.sim.Secret()}, "token": {wh.sim.CallbackToken()}, "encoding_aes_key": {wh.sim.EncodingAESKey()},
		"base_url": {wh.sim.URL()}}
}

// connect saves the settings through the console.
func (wh *wecomHarness) connect(t *testing.T, b *browser, token string) {
	t.Helper()
	wecomWantRedirect(t, b.post("/connectors/wecom", wh.settingsForm(token)), "/connectors/wecom")
}

// syncDone works the queued sync until it has ended (the app's worker may
// take it as well).
func (wh *wecomHarness) syncDone(t *testing.T) wecom.SyncReport {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := wh.app.WeCom.SyncDue(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := wh.app.WeCom.SyncStatus(ctx, wh.ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Current == nil {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sync did not end: %+v", rep.Current)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventSettled waits until the inbox has no pending event.
func (wh *wecomHarness) eventSettled(t *testing.T) []wecom.InboxEntry {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := wh.app.WeCom.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		pg, err := wh.app.WeCom.Inbox(ctx, wh.ws.ID, wecom.InboxQuery{}, page.Request{})
		if err != nil {
			t.Fatal(err)
		}
		pending := false
		for _, e := range pg.Items {
			pending = pending || e.Status == wecom.InboxPending
		}
		if !pending {
			return pg.Items
		}
		if time.Now().After(deadline) {
			t.Fatalf("events still pending: %+v", pg.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wecomHXGet is a GET as htmx sends it.
func wecomHXGet(b *browser, path string) response {
	b.h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.h.srv.URL+path, nil)
	req.Header.Set("HX-Request", "true")
	return b.do(req)
}

func wecomWantRedirect(t *testing.T, res response, prefix string) {
	t.Helper()
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, prefix) {
		t.Fatalf("%s %s: redirected to %q, want %s…", res.Request.Method, res.Request.URL.Path, loc, prefix)
	}
}

var inputValueRE = regexp.MustCompile(`id="wc-(token|encoding_aes_key)" name="[a-z_]+" value="([^"]*)"`)

// The settings page connects WeCom: the callback URL and the steps to paste
// it into WeCom's admin, a Token and an EncodingAESKey generated on the
// server, the secret never shown again, and errors beside their fields.
func TestWeComSettingsSaveAndMask(t *testing.T) {
	eachWeComEngine(t, func(t *testing.T, wh *wecomHarness) {
		b := wh.browser()
		token := b.signIn(ownerEmail)

		res := b.get("/connectors/wecom")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "未连接", "自建应用", "客户联系", "可调用应用", "应用管理 → 自建 → 选择该应用 → 接收消息 → 设置API接收",
			"http://127.0.0.1:8080/connect/wecom/test-brand/callback", `data-copy="wecom-callback-url"`, "保存连接设置后即可测试")
		// 127.0.0.1 is not reachable from WeCom: the page says so.
		wantBody(t, res, "SIYU_BASE_URL")
		if nav := res.body[strings.Index(res.body, `<nav class="nav"`):strings.Index(res.body, "</nav>")]; !strings.Contains(nav, "企业微信") ||
			!strings.Contains(nav, `href="/connectors/wecom/events"`) {
			t.Fatalf("the sidebar lacks the WeCom pages:\n%s", nav)
		}

		// Generate: a fresh Token (32) and EncodingAESKey (43), letters and
		// digits, different each time; nothing is saved.
		seen := map[string]bool{}
		for _, c := range []struct {
			field string
			n     int
		}{{"token", 32}, {"encoding_aes_key", 43}, {"token", 32}} {
			res := wecomHXGet(b, "/connectors/wecom/generate?field="+c.field)
			wantStatus(t, res, http.StatusOK)
			m := inputValueRE.FindStringSubmatch(res.body)
			if m == nil || m[1] != c.field || !regexp.MustCompile(fmt.Sprintf(`^[A-Za-z0-9]{%d}$`, c.n)).MatchString(m[2]) || seen[m[2]] {
				t.Fatalf("generated %s: %q\n%s", c.field, m, res.body)
			}
			seen[m[2]] = true
			wantBody(t, res, "已生成（尚未保存）", `data-copy="wc-`+c.field+`-value"`)
		}
		wantStatus(t, wecomHXGet(b, "/connectors/wecom/generate?field=secret"), http.StatusUnprocessableEntity)
		if _, err := wh.app.WeCom.Settings(context.Background(), wh.ws.ID); err == nil {
			t.Fatal("generating saved settings")
		}

		// A bad Token is refused beside its field; the values typed stay.
		form := wh.settingsForm(token)
		form.Set("token", "not-alnum!")
		res = b.post("/connectors/wecom", form)
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "Token 须为 1–32 位英文字母或数字", `value="`+wh.sim.CorpID()+`"`, `value="not-alnum!"`)
		wantNoBody(t, res, wh.sim.Secret())
		form = wh.settingsForm(token)
		form.Set("agent_id", "abc")
		res = b.post("/connectors/wecom", form)
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "AgentId 是自建应用详情页上的数字")
		form = wh.settingsForm(token)
		form.Del("secret")
		wantBody(t, b.post("/connectors/wecom", form), "请填写自建应用的 Secret")

		wh.connect(t, b, token)
		res = b.get("/connectors/wecom")
		secret := wh.sim.Secret()
		wantBody(t, res, "企业微信已连接", "已连接", wh.sim.CorpID(), "********"+secret[len(secret)-4:], "企业微信尚未验证此地址")
		wantNoBody(t, res, secret, wh.sim.CallbackToken(), wh.sim.EncodingAESKey())
		st, err := wh.app.WeCom.Settings(context.Background(), wh.ws.ID)
		if err != nil || st.CorpID != wh.sim.CorpID() || st.AgentID != wh.sim.AgentID() || st.BaseURL != wh.sim.URL() {
			t.Fatalf("saved %+v, %v", st, err)
		}

		// Saving again without the secrets keeps them.
		form = url.Values{"csrf": {token}, "corp_id": {wh.sim.CorpID()}, "agent_id": {"1000005"}, "base_url": {wh.sim.URL()}}
		wecomWantRedirect(t, b.post("/connectors/wecom", form), "/connectors/wecom")
		wantBody(t, b.get("/connectors/wecom"), "企业微信连接设置已保存", `value="1000005"`)
		cred, err := wh.app.WeCom.Credentials(context.Background(), wh.ws.ID)
		if err != nil || cred.Secret != secret || cred.Token != wh.sim.CallbackToken() || cred.AgentID != 1000005 {
			t.Fatalf("credentials after saving without secrets: %+v, %v", cred.AgentID, err)
		}

		// WeCom verifies the URL: the page shows when.
		wh.sim.SetCallbackURL(wh.srv.URL + "/connect/wecom/test-brand/callback")
		if err := wh.sim.VerifyCallbackURL(context.Background()); err != nil {
			t.Fatal(err)
		}
		wantBody(t, b.get("/connectors/wecom"), "企业微信已于")
	})
}

// The connection test answers OK, or WeCom's code with what it means and
// how to fix it (60020: add the server's IP to the app's trusted IPs), in
// place for htmx and on the page after a plain form post.
func TestWeComTestConnection(t *testing.T) {
	eachWeComEngine(t, func(t *testing.T, wh *wecomHarness) {
		b := wh.browser()
		token := b.signIn(ownerEmail)
		res := b.post("/connectors/wecom/test", url.Values{"csrf": {token}})
		wantStatus(t, res, http.StatusNotFound)
		wantBody(t, res, "还没有连接企业微信")

		wh.connect(t, b, token)
		res = b.post("/connectors/wecom/test", url.Values{}, "HX-Request", "true", "X-CSRF-Token", token)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `id="wecom-test-ok"`, "连接成功")

		wh.sim.SetTrustedIP(false)
		res = b.post("/connectors/wecom/test", url.Values{}, "HX-Request", "true", "X-CSRF-Token", token)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `id="wecom-test-failed"`, "连接失败", "错误码 60020", "企业可信IP", "应用管理 → 你的自建应用 → 企业可信IP")
		wantNoBody(t, res, "wecom-test-ok")

		// Without htmx: back to the page, which keeps the last result.
		wecomWantRedirect(t, b.post("/connectors/wecom/test", url.Values{"csrf": {token}}), "/connectors/wecom")
		res = b.get("/connectors/wecom")
		wantBody(t, res, "错误码 60020", "企业可信IP")

		// In English, WeCom's own explanation.
		b.setCookie("lang", "en")
		res = b.get("/connectors/wecom")
		wantBody(t, res, "Error 60020", "trusted IP list", "Connection failed")
		wantNoBody(t, res, "企业可信IP 列表中")

		wh.sim.SetTrustedIP(true)
		res = b.post("/connectors/wecom/test", url.Values{}, "HX-Request", "true", "X-CSRF-Token", token)
		wantBody(t, res, "Connected: WeCom issued an access token")
	})
}

// Only owners and admins see or change the WeCom pages: they show how the
// corp is wired and act with its secret.
func TestWeComPagesNeedConnectorPermission(t *testing.T) {
	wh := newWeComHarness(t, db.SQLite)
	admin := wh.browser()
	atoken := admin.signIn(wecomAdminEmail)
	wh.connect(t, admin, atoken)
	for _, p := range []string{"/connectors/wecom", "/connectors/wecom/sync", "/connectors/wecom/staff", "/connectors/wecom/tags", "/connectors/wecom/events"} {
		wantStatus(t, admin.get(p), http.StatusOK)
	}
	for _, email := range []string{analystEmail, operatorEmail} {
		b := wh.browser()
		token := b.signIn(email)
		wantNoBody(t, b.get("/"), `href="/connectors/wecom"`)
		for _, p := range []string{"/connectors/wecom", "/connectors/wecom/sync", "/connectors/wecom/staff", "/connectors/wecom/tags",
			"/connectors/wecom/events", "/connectors/wecom/events/1"} {
			wantStatus(t, b.get(p), http.StatusForbidden)
		}
		for _, p := range []string{"/connectors/wecom", "/connectors/wecom/test", "/connectors/wecom/sync", "/connectors/wecom/sync/resume",
			"/connectors/wecom/events/1/retry", "/connectors/wecom/tags/1/bind"} {
			wantStatus(t, b.post(p, url.Values{"csrf": {token}, "corp_id": {"wwevil"}}), http.StatusForbidden)
		}
	}
	if st, err := wh.app.WeCom.Settings(context.Background(), wh.ws.ID); err != nil || st.CorpID != wh.sim.CorpID() {
		t.Fatalf("settings after refused changes: %+v, %v", st, err)
	}
}

// A callback WeCom sends lands in the log with its kind, subject and
// status; its detail shows the decrypted message, indented, with the
// WelcomeCode hidden; a failed event can be retried.
func TestWeComEventLog(t *testing.T) {
	eachWeComEngine(t, func(t *testing.T, wh *wecomHarness) {
		ctx := context.Background()
		b := wh.browser()
		token := b.signIn(ownerEmail)
		wantBody(t, b.get("/connectors/wecom/events"), "还没有收到回调")
		wh.connect(t, b, token)
		if _, err := wh.sim.PutStaff(wecomtest.Staff{UserID: "zhangsan", Name: "张三"}); err != nil {
			t.Fatal(err)
		}
		add, err := wh.sim.AddContact(ctx, "zhangsan", wecomtest.Contact{Name: "王五"}, "store-12")
		if err != nil {
			t.Fatal(err)
		}
		if ds := wh.sim.Deliveries(); len(ds) != 1 || !ds[0].OK {
			t.Fatalf("deliveries %+v", ds)
		}
		events := wh.eventSettled(t)
		if len(events) != 1 || events[0].Status != wecom.InboxDone {
			t.Fatalf("events %+v", events)
		}
		ev := events[0]

		res := b.get("/connectors/wecom/events")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, fmt.Sprintf(`id="event-%d"`, ev.ID), "添加客户", "change_external_contact/add_external_contact",
			add.Contact.ExternalUserID, "已处理")
		wantBody(t, b.get("/connectors/wecom/events?status=failed"), "没有“失败”的事件")

		res = b.get(fmt.Sprintf("/connectors/wecom/events/%d", ev.ID))
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "添加客户", "解密后的消息", "&lt;ExternalUserID&gt;"+add.Contact.ExternalUserID+"&lt;/ExternalUserID&gt;",
			"\n  &lt;State&gt;store-12&lt;/State&gt;", "&lt;WelcomeCode&gt;******&lt;/WelcomeCode&gt;")
		wantNoBody(t, res, add.WelcomeCode, wh.sim.CallbackToken(), `id="wecom-event-retry"`)
		wantStatus(t, b.get("/connectors/wecom/events/999999"), http.StatusNotFound)

		// Only a failed event may be retried.
		res = b.post(fmt.Sprintf("/connectors/wecom/events/%d/retry", ev.ID), url.Values{"csrf": {token}})
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, "只有失败的事件可以重试")

		// An event that kept failing (made so here) is retried from the log.
		if _, err := wh.d.ExecContext(ctx, `UPDATE wecom_inbox SET status = 'failed', attempts = 8, error = $3 WHERE tenant_id = $1 AND id = $2`,
			wh.ws.ID, ev.ID, "WeCom refused: errcode 60020"); err != nil {
			t.Fatal(err)
		}
		res = b.get("/connectors/wecom/events?status=failed")
		wantBody(t, res, fmt.Sprintf(`id="event-%d"`, ev.ID), "errcode 60020", "重试")
		res = b.get(fmt.Sprintf("/connectors/wecom/events/%d", ev.ID))
		wantBody(t, res, `id="wecom-event-retry"`, "已尝试 8 次", "errcode 60020")
		res = b.post(fmt.Sprintf("/connectors/wecom/events/%d/retry", ev.ID),
			url.Values{"csrf": {token}, "back": {"/connectors/wecom/events?status=failed"}})
		wecomWantRedirect(t, res, "/connectors/wecom/events?status=failed")
		wantBody(t, b.get("/connectors/wecom/events?status=failed"), "已重新排队")
		if events := wh.eventSettled(t); events[0].Status != wecom.InboxDone {
			t.Fatalf("after the retry: %+v", events[0])
		}
	})
}

// Sync now queues a full sync whose progress the page polls; the result
// shows the counts; a sync WeCom stops is explained and resumed.
func TestWeComSyncPage(t *testing.T) {
	eachWeComEngine(t, func(t *testing.T, wh *wecomHarness) {
		b := wh.browser()
		token := b.signIn(ownerEmail)
		wantBody(t, b.get("/connectors/wecom/sync"), "尚未连接企业微信")
		for _, st := range []wecomtest.Staff{{UserID: "zhangsan", Name: "张三"}, {UserID: "lisi", Name: "李四", Position: "店长"}} {
			if _, err := wh.sim.PutStaff(st); err != nil {
				t.Fatal(err)
			}
		}
		for i, who := range []string{"zhangsan", "zhangsan", "lisi"} {
			if _, err := wh.sim.PutContact(wecomtest.Contact{Name: fmt.Sprintf("客户%d", i)}, wecomtest.Follow{UserID: who}); err != nil {
				t.Fatal(err)
			}
		}
		wh.connect(t, b, token)
		// The first full sync is queued on connect, by the schedule, or here.
		if _, err := wh.app.WeCom.ScheduleSyncs(context.Background()); err != nil {
			t.Fatal(err)
		}
		wh.syncDone(t)

		res := b.post("/connectors/wecom/sync", url.Values{"csrf": {token}})
		wecomWantRedirect(t, res, "/connectors/wecom/sync")
		res = b.get("/connectors/wecom/sync")
		rep, err := wh.app.WeCom.SyncStatus(context.Background(), wh.ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Current != nil {
			// Still queued: the page polls its progress.
			wantBody(t, res, "同步已开始", "正在同步", `hx-get="/connectors/wecom/sync/progress"`)
			wantNoBody(t, res, `id="wecom-sync-now"`)
			// A second start is refused while it runs (the app's sync worker
			// may have finished it meanwhile: then it starts another).
			if res = b.post("/connectors/wecom/sync", url.Values{"csrf": {token}}); res.StatusCode == http.StatusConflict {
				wantBody(t, res, "已有一个同步在排队或进行中")
			} else {
				wecomWantRedirect(t, res, "/connectors/wecom/sync")
			}
			p := wecomHXGet(b, "/connectors/wecom/sync/progress")
			wantStatus(t, p, http.StatusOK)
			wantBody(t, p, `id="wecom-sync-progress"`)
		}
		wh.syncDone(t)
		p := wecomHXGet(b, "/connectors/wecom/sync/progress")
		if p.Header.Get("HX-Refresh") != "true" {
			t.Fatal("the finished sync's progress does not reload the page")
		}
		res = b.get("/connectors/wecom/sync")
		wantBody(t, res, "同步完成", `id="wecom-count-contacts">3<`, "下次对账", `id="wecom-sync-now"`)
		wantNoBody(t, res, `id="wecom-sync-resume"`)

		// Staff with their customer counts.
		res = b.get("/connectors/wecom/staff")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "张三", "zhangsan", "李四", "店长", "在职")
		staffCount := regexp.MustCompile(`(?s)<code class="mono">(zhangsan|lisi)</code>.*?wecom-customers">(\d+)<`)
		counts := map[string]string{}
		for _, m := range staffCount.FindAllStringSubmatch(res.body, -1) {
			counts[m[1]] = m[2]
		}
		if counts["zhangsan"] != "2" || counts["lisi"] != "1" {
			t.Fatalf("customer counts %v", counts)
		}

		// WeCom stops a sync: explained, then resumed.
		wh.sim.SetTrustedIP(false)
		wecomWantRedirect(t, b.post("/connectors/wecom/sync", url.Values{"csrf": {token}}), "/connectors/wecom/sync")
		wh.syncDone(t)
		res = b.get("/connectors/wecom/sync")
		wantBody(t, res, `id="wecom-sync-failed"`, "已中断", "错误码 60020", "企业可信IP", `id="wecom-sync-resume"`)
		wh.sim.SetTrustedIP(true)
		wecomWantRedirect(t, b.post("/connectors/wecom/sync/resume", url.Values{"csrf": {token}}), "/connectors/wecom/sync")
		wh.syncDone(t)
		res = b.get("/connectors/wecom/sync")
		wantBody(t, res, "同步完成")
		res = b.post("/connectors/wecom/sync/resume", url.Values{"csrf": {token}})
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, "没有可以继续的同步")
	})
}

// A Siyu tag group is bound to a WeCom corp tag group from the WeCom page:
// the group of the same name, created in WeCom when missing; and unbound.
func TestWeComTagBinding(t *testing.T) {
	wh := newWeComHarness(t, db.SQLite)
	ctx := context.Background()
	b := wh.browser()
	token := b.signIn(ownerEmail)
	wh.connect(t, b, token)
	sys := tenant.System(wh.ws.ID)
	g, err := wh.app.Tags.CreateGroup(ctx, sys, tag.GroupInput{Name: "会员等级"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"金卡", "银卡"} {
		if _, err := wh.app.Tags.CreateTag(ctx, sys, tag.TagInput{GroupID: g.ID, Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	empty, err := wh.app.Tags.CreateGroup(ctx, sys, tag.GroupInput{Name: "空分组"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wh.sim.CreateTagGroup(ctx, "门店偏好", 1, "近店", "远店"); err != nil {
		t.Fatal(err)
	}
	res := b.get("/connectors/wecom/tags")
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, "会员等级", "未绑定", "同名标签组（没有则新建）", "门店偏好 (2)")

	// WeCom allows no empty group: refused beside the group.
	res = b.post(fmt.Sprintf("/connectors/wecom/tags/%d/bind", empty.ID), url.Values{"csrf": {token}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantBody(t, res, `id="wecom-bind-error"`, "企业微信不允许空的标签组")

	wecomWantRedirect(t, b.post(fmt.Sprintf("/connectors/wecom/tags/%d/bind", g.ID), url.Values{"csrf": {token}}), "/connectors/wecom/tags")
	res = b.get("/connectors/wecom/tags")
	wantBody(t, res, "已绑定，正在同步", "已绑定：会员等级", "解除绑定")
	var found bool
	for _, cg := range wh.sim.TagGroups() {
		found = found || (cg.Name == "会员等级" && len(cg.Tags) == 2)
	}
	if !found {
		t.Fatalf("WeCom lacks the bound group: %+v", wh.sim.TagGroups())
	}

	res = b.post(fmt.Sprintf("/connectors/wecom/tags/%d/unbind", g.ID), url.Values{}, "HX-Request", "true", "X-CSRF-Token", token)
	wantStatus(t, res, http.StatusOK)
	if res.Header.Get("HX-Redirect") != fmt.Sprintf("/connectors/wecom/tags#group-%d", g.ID) {
		t.Fatalf("HX-Redirect %q", res.Header.Get("HX-Redirect"))
	}
	res = b.get("/connectors/wecom/tags")
	wantBody(t, res, "已解除绑定")
	if g, err = wh.app.Tags.Group(ctx, wh.ws.ID, g.ID); err != nil || g.WeComGroupID != "" {
		t.Fatalf("after unbinding: %+v, %v", g, err)
	}
}

// The WeCom pages read well in English, and the keys the Go code names are
// in the catalogue (the shared check covers other areas' prefixes).
func TestWeComPagesInEnglish(t *testing.T) {
	wh := newWeComHarness(t, db.SQLite)
	b := wh.browser()
	token := b.signIn(ownerEmail)
	wh.connect(t, b, token)
	b.setCookie("lang", "en")
	for path, want := range map[string][]string{
		"/connectors/wecom":        {"Use a self-built app:", "Callback URL", "设置API接收", "Test connection"},
		"/connectors/wecom/sync":   {"Reconciliation", "Sync now"},
		"/connectors/wecom/staff":  {"No staff yet"},
		"/connectors/wecom/tags":   {"Corp tags", "No tag groups yet"},
		"/connectors/wecom/events": {"Callback log", "No callbacks yet"},
	} {
		res := b.get(path)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, want...)
	}

	zh := readCatalogue(t, "zh-CN")
	files, _ := filepath.Glob("wecom*.go")
	key := regexp.MustCompile(`"((?:wecom|flash\.wecom)\.[A-Za-z0-9_.-]*[A-Za-z0-9_-])"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range key.FindAllStringSubmatch(string(src), -1) {
			if _, ok := zh[m[1]]; !ok {
				t.Errorf("%s uses %q, which the catalogue lacks", f, m[1])
			}
		}
	}
}
