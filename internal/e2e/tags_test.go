package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tag"
)

// TestTagsInBrowser drives the tag system as an operator would: a group and
// its tags made on the tags page, a customer tagged from their profile (htmx
// swaps the card), an auto-tag rule written in the editor and tested against
// that customer before it is saved, then back-filled with its progress
// polled until done.
func TestTagsInBrowser(t *testing.T) {
	browser := chromium(t)
	deadline := time.Now().Add(browserTestBudget)
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			browserReady := startBrowser(t, ctx, browser)
			srv := startServer(t, engine)
			wsID := workspaceID(t, srv)
			cu, err := srv.App.Customers.Create(context.Background(), wsID, customer.NewCustomer{Name: "王芳", Phone: "13800138000", City: "上海"})
			if err != nil {
				t.Fatal(err)
			}
			b := tab{t: t, ctx: browserReady()}
			css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

			b.signIn(srv.URL+"/tags", css(`#ng-name`))
			if nav := b.text(`.nav`); !strings.Contains(nav, "标签管理") || !strings.Contains(nav, "自动打标") {
				t.Fatalf("the sidebar lacks the tag pages: %q", nav)
			}

			// A group, then two tags in it.
			b.do("create a group",
				chromedp.SendKeys(css(`#ng-name`), "价值"),
				chromedp.SetValue(css(`#ng-dim`), "value"),
				chromedp.Click(css(`#new-group-submit`)),
				chromedp.WaitVisible(css(`section.tag-group .tag-new input[name="name"]`)),
			)
			groups, err := srv.App.Tags.Groups(context.Background(), wsID)
			if err != nil || len(groups) != 1 {
				t.Fatalf("groups %+v, %v", groups, err)
			}
			gid := groups[0].ID
			for i, name := range []string{"高价值", "重点客户"} {
				// Wait for the new row, not the notice: the page being left
				// has one too.
				b.do("create tag "+name,
					chromedp.SendKeys(css(fmt.Sprintf(`#n%d-name`, gid)), name),
					chromedp.Submit(css(fmt.Sprintf(`#n%d-name`, gid))),
					chromedp.WaitVisible(css(fmt.Sprintf(`#group-%d .tag-row:nth-child(%d)`, gid, i+1))),
				)
			}
			tags, err := srv.App.Tags.AllTags(context.Background(), wsID)
			if err != nil || len(tags) != 2 {
				t.Fatalf("tags %+v, %v", tags, err)
			}
			high, vip := tags[0], tags[1]
			if rows := b.text(fmt.Sprintf(`#group-%d .tag-rows`, gid)); !strings.Contains(rows, "高价值") || !strings.Contains(rows, "重点客户") {
				t.Fatalf("the group shows %q", rows)
			}
			if os.Getenv(envScreenshots) == "1" {
				screenshots(b, srv, "tags", "")
			}

			// Tag the customer from their profile; htmx swaps the card.
			b.do("tag the customer",
				chromedp.Navigate(fmt.Sprintf("%s/customers/%d", srv.URL, cu.ID)),
				chromedp.WaitVisible(css(`#customer-tag-pick`)),
				chromedp.SetValue(css(`#customer-tag-pick`), fmt.Sprint(high.ID)),
				chromedp.Click(css(`#customer-tag-add`)),
				chromedp.WaitVisible(css(fmt.Sprintf(`#customer-tag-%d`, high.ID))),
			)
			if chip := b.text(fmt.Sprintf(`#customer-tag-%d`, high.ID)); !strings.Contains(chip, "高价值") {
				t.Fatalf("the chip says %q", chip)
			}
			if held, _ := srv.App.Tags.TagsOf(context.Background(), wsID, cu.ID); len(held) != 1 || held[0].Source != tag.SourceManual {
				t.Fatalf("the customer holds %+v", held)
			}

			// A daily rule: high-value customers become key customers. Test
			// it against the customer before saving.
			b.do("write a rule",
				chromedp.Click(css(`a.nav-link[href="/tags/rules"]`)),
				chromedp.WaitVisible(css(`#new-rule`)),
				chromedp.Click(css(`#new-rule`)),
				chromedp.WaitVisible(css(`#rule-name`)),
				chromedp.SendKeys(css(`#rule-name`), "高价值即重点"),
				chromedp.Click(css(`#kind-schedule + .choice-body`)),
				chromedp.WaitVisible(css(`#rule-at`)),
				chromedp.SetValue(css(`#rule-at`), "03:00"),
				chromedp.SetValue(css(`#rule-conditions`), `{"tag": "价值/高价值"}`),
				chromedp.Click(css(fmt.Sprintf(`#rule-add input[value="%d"]`, vip.ID))),
			)
			if b.visible(`#rule-event`) {
				t.Fatal("the event fields show for a schedule rule")
			}
			b.do("test the rule against the customer",
				chromedp.SendKeys(css(`#try-customer`), "138 0013 8000"),
				chromedp.Click(css(`#rule-try`)),
				chromedp.WaitVisible(css(`#try-verdict`)),
			)
			if verdict := b.text(`#try-outcome`); !strings.Contains(verdict, "会触发") || !strings.Contains(verdict, "价值/重点客户") || !strings.Contains(verdict, "王芳") {
				t.Fatalf("the test says %q", verdict)
			}
			if held, _ := srv.App.Tags.TagsOf(context.Background(), wsID, cu.ID); len(held) != 1 {
				t.Fatalf("testing wrote tags: %+v", held)
			}
			if os.Getenv(envScreenshots) == "1" {
				screenshots(b, srv, "rule", "")
			}

			// Save it and back-fill: the progress polls itself until done.
			b.do("save and back-fill",
				chromedp.Click(css(`#rule-save`)),
				chromedp.WaitVisible(css(`#backfill-start`)),
				chromedp.Click(css(`#backfill-start`)),
				chromedp.WaitVisible(css(`#backfill-status[data-status="done"]`)),
			)
			if counts := b.text(`#backfill-counts`); !strings.Contains(counts, "打上标签 1") {
				t.Fatalf("the back-fill says %q", counts)
			}
			held, err := srv.App.Tags.TagsOf(context.Background(), wsID, cu.ID)
			if err != nil || len(held) != 2 || held[1].TagID != vip.ID || held[1].Source != tag.SourceRule {
				t.Fatalf("after the back-fill the customer holds %+v, %v", held, err)
			}
		})
	}
}

// visible reports whether the first element matching sel is rendered.
func (b tab) visible(sel string) bool {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(function(){var e=document.querySelector(%q);return !!e && e.getClientRects().length>0})()`, sel)))
	if err != nil {
		b.t.Fatalf("visible %s: %v", sel, err)
	}
	return v
}
