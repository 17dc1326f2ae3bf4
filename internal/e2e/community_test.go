package e2e

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// TestCommunityInBrowser runs the customer groups in the console: the group
// list, a group's joins/leaves chart and members linked to their profiles,
// then a group code made in the editor; customers scan it until the group
// fills and WeCom opens a new one, which the code's page then lists.
func TestCommunityInBrowser(t *testing.T) {
	browser := chromium(t)
	deadline := time.Now().Add(browserTestBudget)
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			browserReady := startBrowser(t, ctx, browser)
			srv := startServer(t, engine)
			sim := communitySim(t, srv)
			b := tab{t: t, ctx: browserReady()}
			css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

			b.signIn(srv.URL+"/community", css(`#community-groups`))
			if row := b.text(`#community-groups tbody tr`); !strings.Contains(row, "茶友群1") || !strings.Contains(row, "张三") {
				t.Fatalf("the group list's row says %q", row)
			}
			b.do("open the group",
				chromedp.Click(css(`#community-groups tbody tr a`)),
				chromedp.WaitVisible(css(`#group-members`)),
				chromedp.WaitReady(css(`#group-chart[data-chart-ready]`)),
			)
			if m := b.text(`#group-members`); !strings.Contains(m, "客户A") || !strings.Contains(m, "客户") {
				t.Fatalf("the members table says %q", m)
			}
			b.do("open a member's profile",
				chromedp.Click(css(`#group-members a[href^="/customers/"]`)),
				chromedp.WaitVisible(css(`h1`)),
			)
			if loc := b.location(); !strings.Contains(loc, "/customers/") {
				t.Fatalf("the member link went to %s", loc)
			}

			b.do("create a group code",
				chromedp.Navigate(srv.URL+"/community/codes"),
				chromedp.WaitVisible(css(`#code-form`)),
				chromedp.SendKeys(css(`#code-name`), "门店群码"),
				chromedp.SendKeys(css(`#code-state`), "store-sh-01"),
				chromedp.Click(css(`#code-chats input[type=checkbox]`)),
				chromedp.SendKeys(css(`#code-base-name`), "茶友群"),
				chromedp.SetValue(css(`#code-base-id`), "2"),
				chromedp.Click(css(`#code-save`)),
				chromedp.WaitVisible(css(`#code-qr-link`)),
			)
			if os.Getenv(envScreenshots) == "1" {
				screenshots(b, srv, "community_codes", "")
			}
			configID := b.text(`#code-qr code`)
			// Two customers scan it: the first fills 茶友群1, the second
			// makes WeCom open 茶友群2.
			for _, name := range []string{"客户C", "客户D"} {
				if _, err := sim.JoinByWay(context.Background(), configID, wecomtest.Contact{Name: name}); err != nil {
					t.Fatal(err)
				}
			}
			communitySettled(t, srv)
			b.do("reload the code", chromedp.Reload(), chromedp.WaitVisible(css(`#code-groups`)))
			if groups := b.text(`#code-groups`); !strings.Contains(groups, "茶友群1") || !strings.Contains(groups, "茶友群2") {
				t.Fatalf("the code's groups are %q", groups)
			}
		})
	}
}

// communitySim is a corp with 张三 and her group 茶友群1 (three members, room
// for one more), connected to the e2e workspace and synced.
func communitySim(t *testing.T, srv *apptest.Server) *wecomtest.Server {
	t.Helper()
	ctx := context.Background()
	ws, err := srv.App.Tenant.WorkspaceBySlug(ctx, workspaceSlug)
	if err != nil {
		t.Fatal(err)
	}
	sim := wecomtest.New(wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now},
		CallbackURL: srv.URL + "/connect/wecom/" + workspaceSlug + "/callback", CallbackRetries: -1})
	t.Cleanup(sim.Close)
	sim.SetGroupMemberLimit(4)
	if _, err := sim.PutStaff(wecomtest.Staff{UserID: "zhangsan", Name: "张三"}); err != nil {
		t.Fatal(err)
	}
	var members []wecomtest.Member
	for _, name := range []string{"客户A", "客户B"} {
		c, err := sim.PutContact(wecomtest.Contact{Name: name}, wecomtest.Follow{UserID: "zhangsan"})
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, wecomtest.Member{UserID: c.ExternalUserID})
	}
	if _, err := sim.PutGroup(wecomtest.Group{Name: "茶友群1", Owner: "zhangsan", Members: members}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.App.WeCom.Configure(ctx, tenant.System(ws.ID), wecom.SettingsInput{CorpID: sim.CorpID(), AgentID: sim.AgentID(), Secret: sim.Secret(),
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
			return sim
		}
		if time.Now().After(end) {
			t.Fatal("the sync did not end")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// communitySettled waits until every stored callback is processed.
func communitySettled(t *testing.T, srv *apptest.Server) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); ; {
		srv.WeComSettled(t)
		var pending int
		if err := srv.App.DB.QueryRow(`SELECT count(*) FROM wecom_inbox WHERE status = 'pending'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d callbacks pending", pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
