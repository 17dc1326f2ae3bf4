package e2e

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siyu-dev/siyu/internal/acquire"
	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// TestAcquireInBrowser makes a channel code in the editor — staff pool, a
// tag, the welcome message previewed live as it is typed — sees it in the
// simulated WeCom, and has a customer scan it: the add is attributed to
// the code, tagged, welcomed in WeCom by the staff member, and counted in
// the code's page.
func TestAcquireInBrowser(t *testing.T) {
	browser := chromium(t)
	deadline := time.Now().Add(browserTestBudget)
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			browserReady := startBrowser(t, ctx, browser)
			srv := startServer(t, engine)
			sim, ws, tg := acquireSim(t, srv)
			b := tab{t: t, ctx: browserReady()}
			css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

			b.signIn(srv.URL+"/acquire/new", css(`#acquire-form`))
			b.do("fill in the code",
				chromedp.SendKeys(css(`#acquire-name`), "直播间引流"),
				chromedp.SetValue(css(`#acquire-source-in`), "live"),
				chromedp.SendKeys(css(`#acquire-state-in`), "live_0618"),
				chromedp.SendKeys(css(`input[name=staff_userid]`), "alice"),
				chromedp.Click(css(`#acquire-tags input[value="`+strconv.FormatInt(tg.ID, 10)+`"]`)),
				chromedp.Evaluate[chromedp.Void](`document.querySelector("#acquire-welcome-text").value = ""`),
				chromedp.SendKeys(css(`#acquire-welcome-text`), "你好 {{customer_name}}，我是 {{staff_name}}"),
			)
			if p := b.text(`#acquire-preview-text`); p != "你好 小明，我是 Alice" {
				t.Fatalf("the live preview says %q", p)
			}
			b.do("save", chromedp.Click(css(`#acquire-save`)), chromedp.WaitVisible(css(`#acquire-qr-img`)))
			if os.Getenv(envScreenshots) == "1" {
				screenshots(b, srv, "acquire", "")
			}
			codes, err := srv.App.Acquire.Codes(context.Background(), ws.ID, acquire.Filter{}, page.Request{})
			if err != nil || len(codes.Items) != 1 {
				t.Fatalf("codes: %+v %v", codes, err)
			}
			code := codes.Items[0]
			way, ok := sim.ContactWay(code.ConfigID)
			if !ok || way.State != "live_0618" || len(way.Users) != 1 || way.Users[0] != "alice" {
				t.Fatalf("the code in WeCom: %+v %v", way, ok)
			}

			// A customer scans it.
			add, err := sim.AddContactByWay(context.Background(), code.ConfigID, wecomtest.Contact{Name: "小红"})
			if err != nil {
				t.Fatal(err)
			}
			var welcome string
			for end := time.Now().Add(20 * time.Second); welcome == ""; {
				srv.WeComSettled(t)
				for _, w := range sim.WelcomeMessages() {
					if w.ExternalUserID == add.Contact.ExternalUserID && w.Message.Text != nil {
						welcome = w.Message.Text.Content
					}
				}
				if time.Now().After(end) {
					t.Fatal("no welcome message reached WeCom")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if welcome != "你好 小红，我是 Alice" {
				t.Fatalf("the welcome says %q", welcome)
			}
			var customerID, first int64
			if err := srv.App.DB.QueryRow(`SELECT customer_id, code_id FROM acquire_customers WHERE tenant_id = $1`, ws.ID).Scan(&customerID, &first); err != nil || first != code.ID {
				t.Fatalf("attribution: %d %v", first, err)
			}
			// The tags are applied once the add is committed, as the welcome is sent.
			for end := time.Now().Add(20 * time.Second); ; {
				held, err := srv.App.Tags.TagsOf(context.Background(), ws.ID, customerID)
				if err != nil {
					t.Fatal(err)
				}
				if len(held) == 1 && held[0].TagID == tg.ID {
					break
				}
				if time.Now().After(end) {
					t.Fatalf("tags: %+v", held)
				}
				time.Sleep(50 * time.Millisecond)
			}
			b.do("reload the code", chromedp.Reload(), chromedp.WaitVisible(css(`#acquire-today`)))
			if n := b.text(`#acquire-today`); n != "1" {
				t.Fatalf("today's adds shown: %q", n)
			}
			if !strings.Contains(b.text(`#acquire-totals`), "1") {
				t.Fatalf("the totals: %q", b.text(`#acquire-totals`))
			}
		})
	}
}

// acquireSim connects the e2e workspace to a simulated corp with one staff
// member, and makes a tag to apply.
func acquireSim(t *testing.T, srv *apptest.Server) (*wecomtest.Server, tenant.Workspace, tag.Tag) {
	t.Helper()
	ctx := context.Background()
	ws, err := srv.App.Tenant.WorkspaceBySlug(ctx, workspaceSlug)
	if err != nil {
		t.Fatal(err)
	}
	sim := wecomtest.New(wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now},
		CallbackURL: srv.URL + "/connect/wecom/" + workspaceSlug + "/callback", CallbackRetries: -1})
	t.Cleanup(sim.Close)
	if _, err := sim.PutStaff(wecomtest.Staff{UserID: "alice", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	p := tenant.System(ws.ID)
	g, err := srv.App.Tags.CreateGroup(ctx, p, tag.GroupInput{Name: "渠道"})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := srv.App.Tags.CreateTag(ctx, p, tag.TagInput{GroupID: g.ID, Name: "直播"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.App.WeCom.Configure(ctx, p, wecom.SettingsInput{CorpID: sim.CorpID(), AgentID: sim.AgentID(), Secret: sim.Secret(),
		Token: sim.CallbackToken(), EncodingAESKey: sim.EncodingAESKey(), BaseURL: sim.URL()}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.App.WeCom.StartSync(ctx, ws.ID, wecom.SyncFull); err != nil && !errors.Is(err, wecom.ErrSyncRunning) {
		t.Fatal(err)
	}
	for end := time.Now().Add(30 * time.Second); ; {
		if _, err := srv.App.WeCom.SyncDue(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := srv.App.WeCom.SyncStatus(ctx, ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Current == nil && rep.Last != nil {
			if rep.Last.Status != wecom.SyncDone {
				t.Fatalf("the sync ended %+v", rep.Last)
			}
			return sim, ws, tg
		}
		if time.Now().After(end) {
			t.Fatal("the sync did not end")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
