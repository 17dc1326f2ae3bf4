package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// TestMomentsInBrowser composes a moment as an operator would: text, an
// image, the staff who publish it and the tag of the customers who see it;
// then follows it as WeCom creates it and a staff member publishes it.
func TestMomentsInBrowser(t *testing.T) {
	browser := chromium(t)
	deadline := time.Now().Add(browserTestBudget)
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			browserReady := startBrowser(t, ctx, browser)
			srv := startServer(t, engine)
			sim := seedMomentCorp(t, srv)
			b := tab{t: t, ctx: browserReady()}
			css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

			img := filepath.Join(t.TempDir(), "spring.png")
			if err := os.WriteFile(img, []byte("\x89PNG\r\n\x1a\n e2e poster"), 0o600); err != nil {
				t.Fatal(err)
			}
			b.signIn(srv.URL+"/moments", css(`#moment-new`))
			if nav := b.text(`.nav`); !strings.Contains(nav, "朋友圈") {
				t.Fatalf("the sidebar lacks moments: %q", nav)
			}
			b.do("compose a moment",
				chromedp.Click(css(`#moment-new`)),
				chromedp.WaitVisible(css(`#moment-form`)),
				chromedp.SendKeys(css(`#moment-text`), "春茶上新，老客专享"),
				chromedp.Click(css(`label.choice:has(#kind-image)`)),
				chromedp.SetUploadFiles(css(`#moment-images`), []string{img}),
				chromedp.Click(css(`#moment-staff input[type=checkbox]`)),
				chromedp.Click(css(`#moment-tags input[type=checkbox]:not([disabled])`)),
				chromedp.Click(css(`#moment-submit`)),
				chromedp.WaitVisible(css(`#moment-status`)),
			)
			if text := b.text(`#moment-text`); text != "春茶上新，老客专享" {
				t.Fatalf("the task's text is %q", text)
			}
			// refreshUntil presses "Refresh results" until the task shows
			// want, waiting for each press's page to load before reading it.
			refreshUntil := func(want string) {
				t.Helper()
				for range 50 {
					if b.text(`#moment-status`) == want {
						return
					}
					time.Sleep(100 * time.Millisecond)
					ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
					present, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("moment-refresh") !== null`))
					if err == nil && present {
						_, err = chromedp.RunResponse(ctx, chromedp.Click(css(`#moment-refresh`)))
					}
					cancel()
					if err != nil {
						t.Fatalf("refresh: %v", err)
					}
				}
				t.Fatalf("the task stayed %q, want %q", b.text(`#moment-status`), want)
			}
			refreshUntil("发表中")
			if n := b.text(`#stat-visible`); n != "1" {
				t.Fatalf("customers in range: %s", n)
			}
			ids := sim.MomentIDs()
			if len(ids) != 1 {
				t.Fatalf("WeCom has moments %v", ids)
			}
			if err := sim.StaffPublishes("zhangsan", ids[0]); err != nil {
				t.Fatal(err)
			}
			refreshUntil("已结束")
			if n := b.text(`#stat-reached`); n != "1" {
				t.Fatalf("customers who can see it: %s", n)
			}
			if row := b.text(`#sender-zhangsan`); !strings.Contains(row, "已发表") {
				t.Fatalf("zhangsan's row: %q", row)
			}
		})
	}
}

// seedMomentCorp connects the e2e workspace to a corp where 张三 serves two
// customers, one tagged 会员/金卡, with that tag group bound in Siyu.
func seedMomentCorp(t *testing.T, srv *apptest.Server) *wecomtest.Server {
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
	g, err := sim.PutTagGroup(wecomtest.TagGroup{Name: "会员", Tags: []wecomtest.Tag{{Name: "金卡"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.PutContact(wecomtest.Contact{Name: "王芳"}, wecomtest.Follow{UserID: "zhangsan", TagIDs: []string{g.Tags[0].ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.PutContact(wecomtest.Contact{Name: "李雷"}, wecomtest.Follow{UserID: "zhangsan"}); err != nil {
		t.Fatal(err)
	}
	srv.ConnectWeCom(t, w, sim)
	p := tenant.System(ws.ID)
	sg, err := srv.App.Tags.CreateGroup(ctx, p, tag.GroupInput{Name: "会员"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.App.WeCom.BindTagGroup(ctx, p, sg.ID, wecom.BindTagGroupInput{}); err != nil {
		t.Fatal(err)
	}
	return sim
}
