package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// TestMessagesInBrowser composes a mass message as an operator would: a
// saved audience, a text with a placeholder, the estimate of who would
// receive it and whom WeCom's cap would skip, a preview for one customer,
// then sends it and reads its results.
func TestMessagesInBrowser(t *testing.T) {
	browser := chromium(t)
	deadline := time.Now().Add(browserTestBudget)
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			browserReady := startBrowser(t, ctx, browser)
			srv := startServer(t, engine)
			aud := seedMessageCorp(t, srv)
			b := tab{t: t, ctx: browserReady()}
			css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

			b.signIn(srv.URL+"/messages", css(`#message-new`))
			b.do("open the composer",
				chromedp.Click(css(`#message-new`)),
				chromedp.WaitVisible(css(`#message-form`)),
			)
			// The conditions mode shows the audience builder; back to a saved audience.
			b.do("switch to conditions and back",
				chromedp.Click(css(`label.choice:has(#mode-condition)`)),
				chromedp.WaitVisible(css(`#aud-tree`)),
				chromedp.Click(css(`label.choice:has(#mode-audience)`)),
				chromedp.WaitVisible(css(`#message-audience`)),
				chromedp.WaitNotVisible(css(`#aud-tree`)),
			)
			b.do("compose",
				chromedp.SendKeys(css(`#message-name`), "春茶上新"),
				chromedp.SetValue(css(`#message-audience`), fmt.Sprint(aud)),
				chromedp.SendKeys(css(`#message-text`), "春茶到店，{{staff_name}}为您留了一份"),
				chromedp.Click(css(`#message-estimate-btn`)),
				chromedp.WaitVisible(css(`#estimate`)),
			)
			if n := b.text(`#est-recipients`); n != "2" {
				t.Fatalf("the estimate says %s recipients", n)
			}
			if n := b.text(`#est-over-cap`); n != "0" {
				t.Fatalf("the estimate says %s over the cap", n)
			}
			b.do("preview for a customer",
				chromedp.Click(css(`#est-samples button`)),
				chromedp.WaitVisible(css(`#preview-text`)),
			)
			if text := b.text(`#preview-text`); text != "春茶到店，张三为您留了一份" {
				t.Fatalf("the preview says %q", text)
			}
			b.do("send now",
				chromedp.Click(css(`#message-send`)),
				chromedp.WaitVisible(css(`#campaign-status`)),
			)
			if err := srv.App.Messages.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			b.do("reload", chromedp.Reload(), chromedp.WaitVisible(css(`#campaign-stats`)))
			if n := b.text(`#stat-recipients`); n != "2" {
				t.Fatalf("recipients: %s", n)
			}
			if row := b.text(`#staff-zhangsan`); !strings.Contains(row, "张三") {
				t.Fatalf("zhangsan's row: %q", row)
			}
		})
	}
}

// seedMessageCorp connects the e2e workspace to a corp where 张三 serves two
// customers, and saves an audience of every customer (its id returned).
func seedMessageCorp(t *testing.T, srv *apptest.Server) int64 {
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
	if _, err := sim.PutStaff(wecomtest.Staff{UserID: "zhangsan", Name: "张三"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"王芳", "李雷"} {
		if _, err := sim.PutContact(wecomtest.Contact{Name: name}, wecomtest.Follow{UserID: "zhangsan"}); err != nil {
			t.Fatal(err)
		}
	}
	srv.ConnectWeCom(t, w, sim)
	if err := srv.App.Audiences.Sync(ctx, ws.ID); err != nil {
		t.Fatal(err)
	}
	a, err := srv.App.Audiences.CreateAudience(ctx, ws.ID, "e2e", audience.AudienceInput{Name: "全部客户",
		Conditions: audience.Condition{Attr: "first_seen_at", Op: "is_set"}})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}
