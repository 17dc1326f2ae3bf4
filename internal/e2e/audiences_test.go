package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
)

// TestAudiencesInBrowser builds an audience as an operator would: a first
// condition, the estimate, a second condition (whose error shows beside it
// until it is filled in), the estimate again, then saves it, finds it in the
// list, and opens the customer tier charts.
func TestAudiencesInBrowser(t *testing.T) {
	browser := chromium(t)
	deadline := time.Now().Add(browserTestBudget)
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			browserReady := startBrowser(t, ctx, browser)
			srv := startServer(t, engine)
			seedAudienceCustomers(t, srv)
			b := tab{t: t, ctx: browserReady()}
			css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
			problems := watchConsole(b.ctx)

			b.signIn(srv.URL+"/audiences/new", css(`#aud-tree .aud-row`))
			if nav := b.text(`.nav`); !strings.Contains(nav, "人群包") || !strings.Contains(nav, "客户分层") {
				t.Fatalf("the sidebar lacks the audience pages: %q", nav)
			}

			// First condition: gender is female (the row the builder starts with).
			b.do("choose female",
				setField(`#aud-tree .aud-row .aud-value`, "female", "change"),
				waitText(`#aud-count-value`, "4"),
			)

			// A second condition: its error shows beside it until it is complete.
			b.do("add a condition",
				chromedp.Click(css(`#aud-tree [data-add="row"]`)),
				chromedp.WaitVisible(css(`#aud-tree .aud-item:nth-child(2) .aud-row.has-error .aud-error`)),
			)
			if msg := b.text(`#aud-tree .aud-item:nth-child(2) .aud-error`); !strings.Contains(msg, "请填写正确的值") {
				t.Fatalf("the incomplete row says %q", msg)
			}
			if n := b.count(`#aud-tree .aud-row.has-error`); n != 1 {
				t.Fatalf("%d rows show an error, want only the new one", n)
			}
			b.do("choose city is 上海",
				setField(`#aud-tree .aud-item:nth-child(2) .aud-attr`, "city", "change"),
				setField(`#aud-tree .aud-item:nth-child(2) .aud-value`, "上海", "input"),
				waitText(`#aud-count-value`, "2"),
				chromedp.WaitVisible(css(`#preview-table`)),
				chromedp.WaitVisible(css(`#breakdown [data-chart-ready] canvas`)),
				// The preview is its own request: it may land after the count.
				chromedp.Poll[chromedp.Void](`(() => { const el = document.querySelector('#preview-table tbody'); return el && !el.textContent.includes('张敏'); })()`,
					chromedp.WithPollingTimeout(10*time.Second)),
			)
			if n := b.count(`#aud-tree .aud-row.has-error`); n != 0 {
				t.Fatalf("%d rows still show an error", n)
			}
			if tree := b.value(`#aud-json`); !strings.Contains(tree, `"attr": "city"`) || !strings.Contains(tree, `"value": "上海"`) {
				t.Fatalf("the tree to save is\n%s", tree)
			}
			if rows := b.text(`#preview-table tbody`); !strings.Contains(rows, "王芳") || strings.Contains(rows, "张敏") {
				t.Fatalf("the preview lists %q", rows)
			}
			if os.Getenv(envScreenshots) == "1" {
				screenshots(b, srv, "audience-builder", "")
			}

			// Save it as a live audience, and find it in the list.
			b.do("save the audience",
				chromedp.SendKeys(css(`#audience-name-input`), "上海女性客户"),
				chromedp.Click(css(`#save-audience`)),
				chromedp.WaitVisible(css(`#audience-name`)),
				waitText(`#aud-count-value`, "2"),
			)
			if name := b.text(`#audience-name`); name != "上海女性客户" {
				t.Fatalf("the saved audience is called %q", name)
			}
			b.do("open the list",
				chromedp.Click(css(`a.nav-link[href="/audiences"]`)),
				chromedp.WaitVisible(css(`#audiences`)),
			)
			if row := b.text(`#audiences tbody`); !strings.Contains(row, "上海女性客户") || !strings.Contains(row, "2") {
				t.Fatalf("the list shows %q", row)
			}

			// The customer tiers are drawn as charts.
			b.do("open the customer tiers",
				chromedp.Click(css(`a.nav-link[href="/analytics/scores"]`)),
				chromedp.WaitVisible(css(`#chart-rfm [data-chart-ready] canvas`)),
				chromedp.WaitVisible(css(`#chart-lifecycle [data-chart-ready] canvas`)),
				chromedp.WaitVisible(css(`#chart-fans [data-chart-ready] canvas`)),
			)
			if n := b.count(`[data-chart-ready] canvas`); n < 6 {
				t.Fatalf("%d charts drawn on the tiers page, want 6", n)
			}
			if os.Getenv(envScreenshots) == "1" {
				screenshots(b, srv, "scores", "")
			}
			if p := problems(); len(p) > 0 {
				t.Fatalf("the browser reported problems:\n%s", strings.Join(p, "\n"))
			}
		})
	}
}

// setField sets a form control as a user would and fires the event the
// builder listens to.
func setField(sel, value, event string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		if (!el) throw new Error("no element " + %q);
		el.value = %q;
		el.dispatchEvent(new Event(%q, {bubbles: true}));
	})()`, sel, sel, value, event))
}

// waitText waits until an element's text is want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const el = document.querySelector(%q); return el && el.textContent.trim() === %q; })()`, sel, want),
		chromedp.WithPollingTimeout(10*time.Second))
}

// value is the value of a form control.
func (b tab) value(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).value`, sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return v
}

// watchConsole collects what the page reports as wrong: uncaught exceptions
// and errors, Content-Security-Policy refusals among them.
func watchConsole(ctx context.Context) func() []string {
	var mu sync.Mutex
	var out []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// A refused tree is answered 422, which the browser logs; that
			// is the builder working, not a problem.
			expected := strings.HasPrefix(m.Text, "Failed to load resource") && strings.Contains(m.Text, "(Unprocessable Entity)")
			if (m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleError) && !expected {
				mu.Lock()
				out = append(out, fmt.Sprintf("%s: %s (%s)", m.Type, m.Text, m.URL))
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), out...)
	}
}

// seedAudienceCustomers gives the workspace six customers, four of them
// women (two in Shanghai), four of them buyers, and scores them.
func seedAudienceCustomers(t *testing.T, srv *apptest.Server) {
	t.Helper()
	ctx := context.Background()
	tid := workspaceID(t, srv)
	ids, err := srv.App.Customers.CreateMany(ctx, tid, []customer.NewCustomer{
		{Name: "王芳", Gender: "female", City: "上海"},
		{Name: "吴婷", Gender: "female", City: "上海"},
		{Name: "张敏", Gender: "female", City: "杭州"},
		{Name: "李娜", Gender: "female", City: "深圳"},
		{Name: "周杰", Gender: "male", City: "上海"},
		{Name: "刘洋", Gender: "male", City: "北京"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Buyers, for the RFM charts: some once, one often.
	now := time.Now().UTC()
	for i, n := range []int{3, 1, 0, 2, 1, 0} {
		for j := range n {
			at := now.Add(-time.Duration(10*i+j+1) * 24 * time.Hour)
			if _, err := srv.App.Commerce.UpsertOrder(ctx, tid, commerce.OrderInput{Source: commerce.SourceMiniApp,
				OrderID: fmt.Sprintf("MP-%d-%d", i, j), CustomerID: ids[i], Status: commerce.Paid, OrderedAt: at, PaidAt: at,
				Items: []commerce.ItemInput{{SKU: "LATTE-L", Name: "燕麦拿铁", Quantity: int64(1 + j), UnitPriceFen: 3200}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The background worker may be scoring the new workspace already.
	for range 50 {
		_, err := srv.App.Analytics.Recompute(ctx, tid)
		if err == nil {
			return
		}
		if !errs.Is(err, errs.Conflict) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("could not score the customers: a recompute kept running")
}
