package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// TestHandoverInBrowser hands over a staff member who left, as an operator
// would: their customers and group listed, who takes over chosen, the rule
// check read, one click to start, and the progress followed until WeCom
// has moved everyone.
func TestHandoverInBrowser(t *testing.T) {
	browser := chromium(t)
	deadline := time.Now().Add(browserTestBudget)
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			browserReady := startBrowser(t, ctx, browser)
			srv := startServer(t, engine)
			sim := seedHandoverCorp(t, srv)
			b := tab{t: t, ctx: browserReady()}
			css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

			b.signIn(srv.URL+"/handover", css(`#handover-staff`))
			if nav := b.text(`.nav`); !strings.Contains(nav, "离职继承") {
				t.Fatalf("the sidebar lacks handover: %q", nav)
			}
			if row := b.text(`#handover-staff tbody tr`); !strings.Contains(row, "张三") || !strings.Contains(row, "已离职") {
				t.Fatalf("the departed staff member's row: %q", row)
			}
			b.do("open the departed staff member",
				chromedp.Click(css(`#handover-staff tbody tr a.btn`)),
				chromedp.WaitVisible(css(`#handover-form`)),
			)
			b.do("choose who takes over and check",
				chromedp.SetValue(css(`#handover-takeover`), takeoverValue(b, "李四")),
				chromedp.Click(css(`#handover-check-submit`)),
				chromedp.WaitVisible(css(`#handover-check`)),
			)
			if s := b.text(`#handover-check-summary`); !strings.Contains(s, "可交接 2 位客户、1 个客户群") {
				t.Fatalf("the rule check says %q", s)
			}
			b.do("hand over", chromedp.Click(css(`#handover-start`)), chromedp.WaitVisible(css(`#handover-status`)))
			refreshUntil := func(sel, want string) {
				t.Helper()
				for range 50 {
					if b.text(sel) == want {
						return
					}
					time.Sleep(100 * time.Millisecond)
					b.do("refresh", chromedp.Click(css(`#handover-refresh`)), chromedp.WaitVisible(css(`#handover-status`)))
				}
				t.Fatalf("%s stayed %q, want %q", sel, b.text(sel), want)
			}
			refreshUntil(`#stat-waiting`, "2")
			if g := b.text(`#stat-groups`); g != "1 / 1" {
				t.Fatalf("groups moved: %q", g)
			}
			sim.Advance(25 * time.Hour) // the customers' 24 hours pass
			refreshUntil(`#stat-done`, "2")
			if st := b.text(`#handover-status`); st != "已结束" {
				t.Fatalf("the handover is %q", st)
			}
		})
	}
}

// takeoverValue reads the option value of a staff member in the takeover select.
func takeoverValue(b tab, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`[...document.querySelectorAll('#handover-takeover option')].find(o => o.textContent.startsWith(%q)).value`, name)))
	if err != nil {
		b.t.Fatalf("find %s among who can take over: %v", name, err)
	}
	return v
}

// seedHandoverCorp connects the e2e workspace to a corp where 张三 served
// two customers and owned a group, and has left.
func seedHandoverCorp(t *testing.T, srv *apptest.Server) *wecomtest.Server {
	t.Helper()
	ctx := context.Background()
	ws, err := srv.App.Tenant.WorkspaceBySlug(ctx, workspaceSlug)
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := srv.App.Tenant.CreateAPIKey(ctx, tenant.System(ws.ID), "e2e", tenant.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	w := apptest.Workspace{Workspace: ws, Key: key}
	sim := srv.NewWeComSim(t, w, wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now}})
	for _, st := range []wecomtest.Staff{{UserID: "zhangsan", Name: "张三"}, {UserID: "lisi", Name: "李四"}} {
		if _, err := sim.PutStaff(st); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"王芳", "李雷"} {
		if _, err := sim.PutContact(wecomtest.Contact{Name: name}, wecomtest.Follow{UserID: "zhangsan"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sim.PutGroup(wecomtest.Group{Owner: "zhangsan", Name: "咖啡会员群"}); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"corp_id": sim.CorpID(), "agent_id": sim.AgentID(), "secret": sim.Secret(), "token": sim.CallbackToken(),
		"encoding_aes_key": sim.EncodingAESKey(), "base_url": sim.URL()}
	if res := srv.Do(t, "PUT", "/api/v1/connectors/wecom", key, body); res.Status != http.StatusOK {
		t.Fatalf("connect WeCom: %d %s", res.Status, res.Body)
	}
	if _, err := srv.App.WeCom.ScheduleSyncs(ctx); err != nil {
		t.Fatal(err)
	}
	srv.WeComSyncDone(t, w)
	sim.Advance(2 * time.Second) // directory events carry seconds: after the sync's own time
	if err := sim.DeleteStaff(ctx, "zhangsan"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		srv.WeComSettled(t)
		m, err := srv.App.Staff.MemberByWeComUserID(ctx, ws.ID, "zhangsan")
		if err != nil {
			t.Fatal(err)
		}
		if m.Status == "resigned" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("张三 is not marked as left")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sim
}
