package console_test

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/acquire"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
)

// acquireForm is the editor filled in for a code served by alice (weight 2,
// cap 50) with bob as a backup on weekdays.
func acquireForm(token, state string) url.Values {
	return url.Values{"csrf": {token}, "name": {"门店收银台"}, "source": {"store"}, "state": {state}, "mode": {"weighted"}, "skip_verify": {"1"},
		"staff_userid": {"alice", "bob", ""}, "staff_weight": {"2", "", ""}, "staff_cap": {"50", "", ""}, "staff_backup": {"0", "1", "0"},
		"staff_schedule": {"", "1-5 09:00-18:00", ""}, "welcome_text": {"你好 {{customer_name}}，我是 {{staff_name}}"},
		"link_title": {"会员中心"}, "link_url": {"https://brand.example/m"}, "remark_template": {"{{customer_name}}-门店"}}
}

func TestAcquireConsole(t *testing.T) {
	eachWeComEngine(t, func(t *testing.T, wh *wecomHarness) {
		for _, u := range []string{"alice", "bob"} {
			if _, err := wh.sim.PutStaff(wecomtest.Staff{UserID: u, Name: strings.ToUpper(u[:1]) + u[1:]}); err != nil {
				t.Fatal(err)
			}
		}
		ctx := context.Background()
		st, err := wh.app.Staff.CreateStore(ctx, wh.ws.ID, staff.Store{Code: "SH01", Name: "上海一店"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wh.app.Staff.CreateMember(ctx, wh.ws.ID, staff.Member{Name: "Bob", StoreID: st.ID, WeComUserID: "bob", Status: staff.Active}); err != nil {
			t.Fatal(err)
		}
		b := wh.browser()
		token := b.signIn(ownerEmail)
		wh.connect(t, b, token)
		if _, err := wh.app.WeCom.ScheduleSyncs(ctx); err != nil { // the first full sync, without waiting for the worker's minute
			t.Fatal(err)
		}
		if rep := wh.syncDone(t); rep.Last == nil {
			t.Fatal("no sync ran")
		}

		res := b.get("/acquire")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "渠道活码", "还没有渠道活码", `href="/acquire/new"`, "门店活码")
		res = b.get("/acquire/new")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `id="acquire-form"`, `name="staff_userid"`, `id="acquire-preview"`, "/static/acquire.", `<option value="alice">Alice</option>`)

		// Bad input comes back inline, nothing is created in WeCom.
		res = b.post("/acquire", acquireForm(token, strings.Repeat("长", 31)))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "渠道参数 state 最多 30 个字符", `id="acquire-state-err"`, "会员中心")
		bad := acquireForm(token, "ok_state")
		bad["staff_cap"] = []string{"0", "", ""}
		wantBody(t, b.post("/acquire", bad), "每日上限至少为 1")
		bad = acquireForm(token, "ok_state")
		bad["staff_schedule"] = []string{"", "weekdays", ""}
		wantBody(t, b.post("/acquire", bad), "排班格式不正确")
		if n := wh.sim.ContactWays(); n != 0 {
			t.Fatalf("bad input reached WeCom: %d", n)
		}

		res = b.post("/acquire", acquireForm(token, "checkout"))
		wecomWantRedirect(t, res, "/acquire/")
		list, err := wh.app.Acquire.Codes(ctx, wh.ws.ID, acquire.Filter{}, page.Request{})
		if err != nil || len(list.Items) != 1 {
			t.Fatalf("codes: %+v %v", list, err)
		}
		c := list.Items[0]
		if len(c.Config.Staff) != 2 || *c.Config.Staff[0].Weight != 2 || !c.Config.Staff[1].Backup || len(c.Config.Staff[1].Schedule) != 1 ||
			len(c.Config.Welcome.Attachments) != 1 || c.Config.RemarkTemplate != "{{customer_name}}-门店" {
			t.Fatalf("saved config: %+v", c.Config)
		}
		page := b.get(res.Header.Get("Location"))
		wantStatus(t, page, http.StatusOK)
		wantBody(t, page, `id="acquire-qr-img"`, "qr.png?size=8cm", "qr.png?size=50cm", `value="1,2,3,4,5 09:00-18:00"`, "近期数据", "/static/charts.")

		qr := b.get(res.Header.Get("Location") + "/qr.png?size=15cm&download=1")
		wantStatus(t, qr, http.StatusOK)
		img, err := png.Decode(bytes.NewReader([]byte(qr.body)))
		if err != nil || img.Bounds().Dx() != 1772 || !strings.Contains(qr.Header.Get("Content-Disposition"), "15cm") {
			t.Fatalf("QR download: %v %v %s", img.Bounds(), err, qr.Header)
		}

		res = b.get("/acquire")
		wantBody(t, res, "checkout", `data-code=`, "门店收银台")

		// Store codes: the store with staff gets one, shown per store.
		res = b.post("/acquire/store-codes", url.Values{"csrf": {token}, "daily_cap": {"20"}, "welcome_text": {"欢迎"}, "skip_verify": {"1"}})
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `data-store="SH01" data-status="created"`, "已生成")

		// An analyst sees the codes but cannot change them.
		ab := wh.browser()
		atoken := ab.signIn(analystEmail)
		wantStatus(t, ab.get("/acquire"), http.StatusOK)
		wantStatus(t, ab.post("/acquire", acquireForm(atoken, "nope")), http.StatusForbidden)

		wecomWantRedirect(t, b.post("/acquire/"+strconv.FormatInt(c.ID, 10)+"/delete", url.Values{"csrf": {token}}), "/acquire")
		if _, ok := wh.sim.ContactWay(c.ConfigID); ok {
			t.Fatal("the deleted code is still in WeCom")
		}
	})
}
