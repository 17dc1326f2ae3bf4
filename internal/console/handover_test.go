package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db"
)

var handoverKeyRE = regexp.MustCompile(`name="key" value="([^"]+)"`)

// handoverHarness is a workspace connected to a corp where zhangsan serves
// three customers and owns a group; lisi can take over. The corp's clock is
// the wall clock, as WeCom's is.
func handoverHarness(t *testing.T) (*wecomHarness, *browser, string, []string) {
	t.Helper()
	wh := newWeComHarness(t, db.SQLite)
	wh.sim.Close()
	wh.sim = wecomtest.New(wecomtest.Options{CallbackURL: wh.srv.URL + "/connect/wecom/test-brand/callback", CallbackRetries: -1,
		CorpOptions: wecomtest.CorpOptions{Now: time.Now}})
	t.Cleanup(wh.sim.Close)
	for _, u := range []wecomtest.Staff{{UserID: "zhangsan", Name: "张三"}, {UserID: "lisi", Name: "李四"}} {
		if _, err := wh.sim.PutStaff(u); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for i := range 3 {
		ct, err := wh.sim.PutContact(wecomtest.Contact{Name: fmt.Sprint("客户", i)}, wecomtest.Follow{UserID: "zhangsan"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ct.ExternalUserID)
	}
	if _, err := wh.sim.PutGroup(wecomtest.Group{Owner: "zhangsan", Name: "会员群"}); err != nil {
		t.Fatal(err)
	}
	b := wh.browser()
	token := b.signIn(wecomAdminEmail)
	wh.connect(t, b, token)
	if _, err := wh.app.WeCom.ScheduleSyncs(context.Background()); err != nil {
		t.Fatal(err)
	}
	wh.syncDone(t)
	return wh, b, token, ids
}

// The console speaks the workspace's default language, zh-CN.
//
// A departing staff member's customers and groups, the rule check that
// explains who would be skipped, one click to hand over, and the progress.
func TestHandoverConsoleFlow(t *testing.T) {
	wh, b, token, ids := handoverHarness(t)
	ctx := context.Background()
	zs, err := wh.app.Staff.MemberByWeComUserID(ctx, wh.ws.ID, "zhangsan")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := wh.app.Staff.MemberByWeComUserID(ctx, wh.ws.ID, "lisi")
	if err != nil {
		t.Fatal(err)
	}

	res := b.get("/handover")
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, `id="handover-staff-`+fmt.Sprint(zs.ID)+`"`, "张三", "在职转接")

	res = b.get(fmt.Sprintf("/handover/staff/%d", zs.ID))
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, "客户0", "会员群", ">李四 (lisi)<", "客户（3）")
	m := handoverKeyRE.FindStringSubmatch(res.body)
	if m == nil {
		t.Fatal("no key on the form")
	}
	key := m[1]

	// Handing over to themselves is refused beside the field.
	form := url.Values{"csrf": {token}, "key": {key}, "takeover": {fmt.Sprint(zs.ID)}, "customers_mode": {"all"}, "groups_mode": {"all"}}
	res = b.post(fmt.Sprintf("/handover/staff/%d/check", zs.ID), form)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantBody(t, res, "请选择另一位员工接替。")

	// The check explains who would be skipped and why.
	form = url.Values{"csrf": {token}, "key": {key}, "takeover": {fmt.Sprint(ls.ID)}, "customers_mode": {"chosen"},
		"customer": {ids[0], ids[1], "wmNotTheirs"}, "groups_mode": {"all"}, "message": {"您好，我是李四"}}
	res = b.post(fmt.Sprintf("/handover/staff/%d/check", zs.ID), form)
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, `id="handover-check"`, "可交接 2 位客户、1 个客户群；1 项将被跳过", "不是该员工的客户", `id="handover-start"`)
	if wh.sim.CallCount("externalcontact/transfer_customer") != 0 {
		t.Fatal("the check sent something")
	}

	// Hand over; a double submit is the same handover.
	start := url.Values{"csrf": {token}, "from": {fmt.Sprint(zs.ID)}, "key": {key}, "takeover": {fmt.Sprint(ls.ID)}, "customers_mode": {"chosen"},
		"customer": {ids[0], ids[1], "wmNotTheirs"}, "groups_mode": {"all"}, "message": {"您好，我是李四"}}
	res = b.post("/handover/jobs", start)
	wecomWantRedirect(t, res, "/handover/jobs/")
	loc := res.Header.Get("Location")
	res = b.post("/handover/jobs", start)
	wecomWantRedirect(t, res, loc)

	deadline := time.Now().Add(20 * time.Second)
	for {
		res = b.post(loc+"/refresh", url.Values{"csrf": {token}})
		if res.StatusCode == http.StatusSeeOther {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refresh: %d", res.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	res = b.get(loc)
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, `id="stat-waiting">2<`, `id="stat-skipped">1<`, `id="stat-groups">1 / 1<`, "不是该员工的客户", "等待客户确认")
	if n := wh.sim.CallCount("externalcontact/transfer_customer"); n != 1 {
		t.Fatalf("%d transfer calls", n)
	}

	// After the customers' 24 hours the handover finishes.
	wh.sim.Advance(25 * time.Hour)
	for {
		res = b.post(loc+"/refresh", url.Values{"csrf": {token}})
		if res.StatusCode == http.StatusSeeOther && strings.Contains(b.get(loc).body, `id="stat-done">2<`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not finished: %s", b.get(loc).body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantBody(t, b.get(loc), "已结束")
	wantBody(t, b.get("/handover"), "#1 张三 → 李四")

	// Handover needs its permission.
	analyst := wh.browser()
	analyst.signIn(analystEmail)
	wantStatus(t, analyst.get("/handover"), http.StatusForbidden)
}
