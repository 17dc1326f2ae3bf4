package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// TestCustomersInBrowser drives the data pages: the customer list and a
// profile built from customers, orders, events and a merge made through the
// services; a write key created in the console and used by an SDK request;
// and a CSV imported through the wizard to the end.
func TestCustomersInBrowser(t *testing.T) {
	browser := chromium(t)
	deadline := time.Now().Add(browserTestBudget)
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			// Chromium starts while the server starts and is seeded.
			browserReady := startBrowser(t, ctx, browser)
			srv := startServer(t, engine)
			hero := seedCustomers(t, srv)
			b := tab{t: t, ctx: browserReady()}
			css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

			b.signIn(srv.URL+"/customers", css(`#customers`))
			if rows := b.text(`#customers tbody`); !strings.Contains(rows, "王芳") || !strings.Contains(rows, "陈静") {
				t.Fatalf("the list lacks the seeded customers: %q", rows)
			}
			if os.Getenv(envScreenshots) == "1" {
				screenshots(b, srv, "customers", "")
			}

			// Search by phone, typed the way people do.
			b.do("search by phone",
				chromedp.SendKeys(css(`#customer-search`), "138-0013-8000"),
				chromedp.Submit(css(`#customer-search`)),
				// The results page, not the list it was typed on.
				chromedp.WaitVisible(css(`.toolbar a.btn-ghost`)),
				chromedp.WaitVisible(css(fmt.Sprintf(`#customer-%d`, hero))),
			)
			if n := b.count(`#customers tbody tr`); n != 1 {
				t.Fatalf("a phone search found %d customers", n)
			}
			b.do("open the profile",
				chromedp.Click(css(fmt.Sprintf(`#customer-%d a.person`, hero))),
				chromedp.WaitVisible(css(`#timeline-list`)),
			)
			if name := b.text(`#profile-name`); name != "王芳" {
				t.Fatalf("profile of %q", name)
			}
			if phone := b.text(`#profile-phone`); !strings.Contains(phone, "138 0013 8000") {
				t.Fatalf("an admin sees the phone as %q", phone)
			}
			orders := b.text(`.table-orders`)
			if !strings.Contains(orders, "MP20261101") || !strings.Contains(orders, "¥332.00") {
				t.Fatalf("recent orders: %q", orders)
			}
			tl := b.text(`#timeline-list`)
			for _, want := range []string{"小程序订单 MP20261101", "浏览页面：冷萃咖啡", "Coupon Claimed", "合并了档案 #", "天猫订单 TM88120034 退款"} {
				if !strings.Contains(tl, want) {
					t.Fatalf("the timeline lacks %q:\n%s", want, tl)
				}
			}
			if os.Getenv(envScreenshots) == "1" {
				screenshots(b, srv, "customer", "")
			}

			// A long timeline loads more in place.
			b.do("open a long timeline",
				chromedp.Navigate(srv.URL+"/customers?q="+"陈"),
				chromedp.WaitVisible(css(`#customers a.person`)),
				chromedp.Click(css(`#customers a.person`)),
				chromedp.WaitVisible(css(`#timeline-list .tl-more a`)),
				chromedp.Click(css(`#timeline-list .tl-more a`)),
				chromedp.WaitVisible(css(`#timeline-list .tl-end`)),
			)
			if n := b.count(`#timeline-list .tl-item`); n != 24 {
				t.Fatalf("after loading more, %d timeline entries, want 24", n)
			}

			// Data → Write keys: create one, and send an event with it.
			b.do("create a write key",
				chromedp.Click(css(`a.nav-link[href="/write-keys"]`)),
				chromedp.WaitVisible(css(`#writekey-name`)),
				chromedp.SendKeys(css(`#writekey-name`), "官网"),
				chromedp.Submit(css(`#writekey-name`)),
				chromedp.WaitVisible(css(`#new-write-key`)),
			)
			key := b.text(`#new-write-key`)
			if !strings.HasPrefix(key, event.WriteKeyPrefix) {
				t.Fatalf("the page shows %q, not a write key", key)
			}
			if snippet := b.text(`#snippet-go`); !strings.Contains(snippet, key) || !strings.Contains(snippet, srv.URL) {
				t.Fatalf("the Go snippet does not use the key and this server:\n%s", snippet)
			}
			sendTrack(t, srv.URL, key)

			// Data → Import: a small CSV through every step of the wizard.
			file := filepath.Join(t.TempDir(), "会员.csv")
			csv := "姓名,手机号,性别,城市,会员ID,会员等级\n赵磊,13600136000,男,成都,M9001,银卡\n孙悦,13500135000,女,重庆,M9002,金卡\n"
			if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
				t.Fatal(err)
			}
			b.do("upload a file",
				chromedp.Click(css(`a.nav-link[href="/imports"]`)),
				chromedp.WaitVisible(css(`#upload-form`)),
				chromedp.SetUploadFiles(css(`#import-file`), []string{file}),
				chromedp.Submit(css(`#upload-form`)),
				chromedp.WaitVisible(css(`#mapping-form`)),
			)
			b.do("check the rows",
				chromedp.Click(css(`#dry-run`)),
				chromedp.WaitVisible(css(`#run-import`)),
			)
			if valid := b.text(`#report-valid`); valid != "2" {
				t.Fatalf("the check found %s valid rows, want 2", valid)
			}
			b.do("run the import",
				chromedp.Click(css(`#run-import`)),
				chromedp.WaitVisible(css(`#import-done`)),
			)
			if done := b.text(`#import-done`); !strings.Contains(done, "2 行成功") {
				t.Fatalf("the result says %q", done)
			}
			found, err := srv.App.Customers.List(context.Background(), workspaceID(t, srv), customer.Query{Identifier: "user_id:M9002"}, page.Request{})
			if err != nil || len(found.Items) != 1 || found.Items[0].Name != "孙悦" {
				t.Fatalf("the imported customer: %+v, %v", found.Items, err)
			}
		})
	}
}

// count is how many elements match a CSS selector.
func (b tab) count(sel string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		b.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

// workspaceID is the id of the e2e workspace.
func workspaceID(t *testing.T, srv *apptest.Server) int64 {
	t.Helper()
	ws, err := srv.App.Tenant.WorkspaceBySlug(context.Background(), workspaceSlug)
	if err != nil {
		t.Fatal(err)
	}
	return ws.ID
}

// sendTrack sends one event as an SDK would, with the write key as the
// username of HTTP Basic auth.
func sendTrack(t *testing.T, base, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/track",
		strings.NewReader(`{"userId":"M0042","event":"Signed Up","messageId":"e2e-signup"}`))
	req.SetBasicAuth(key, "")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/track with the new write key: status %d", res.StatusCode)
	}
}

// seedCustomers gives the e2e workspace a small brand's customers: a member
// whose WeCom contact was merged into her mini-program profile, with orders,
// a refund and browsing events; a loyal customer with a long history; and a
// dozen others. It returns the member's id.
func seedCustomers(t *testing.T, srv *apptest.Server) int64 {
	t.Helper()
	ctx := context.Background()
	a := srv.App
	tid := workspaceID(t, srv)
	now := time.Now().UTC().Truncate(time.Minute)
	day := func(n int, h int) time.Time {
		return now.Add(time.Duration(-n)*24*time.Hour + time.Duration(h)*time.Hour)
	}

	others := []customer.NewCustomer{
		{Name: "刘洋", Gender: "male", City: "北京", Phone: "13700137000", FirstSource: "store", FirstSeenAt: day(120, 0), LastSeenAt: day(2, 0)},
		{Name: "张敏", Gender: "female", City: "杭州", Phone: "13900139000", FirstSource: "official_acct", FirstSeenAt: day(90, 0), LastSeenAt: day(0, -3)},
		{Name: "李娜", Gender: "female", City: "深圳", Phone: "15800158000", FirstSource: "tmall_parcel", FirstSeenAt: day(60, 0), LastSeenAt: day(5, 0)},
		{Name: "周杰", Gender: "male", City: "成都", FirstSource: "referral", FirstSeenAt: day(45, 0), LastSeenAt: day(1, 0)},
		{Name: "吴婷", Gender: "female", City: "上海", Phone: "18600186000", FirstSource: "wecom", FirstSeenAt: day(30, 0), LastSeenAt: day(0, -1)},
		{Name: "郑浩", Gender: "male", City: "广州", Phone: "18800188000", FirstSource: "douyin_live", FirstSeenAt: day(20, 0), LastSeenAt: day(12, 0)},
		{Name: "孙丽", Gender: "female", City: "南京", FirstSource: "import", FirstSeenAt: day(200, 0), LastSeenAt: day(40, 0)},
		{Name: "马超", Gender: "male", City: "武汉", Phone: "13300133000", FirstSource: "miniapp", FirstSeenAt: day(10, 0), LastSeenAt: day(0, -5)},
	}
	ids, err := a.Customers.CreateMany(ctx, tid, others)
	if err != nil {
		t.Fatal(err)
	}
	order := func(customerID int64, src commerce.Source, orderID string, at time.Time, items ...commerce.ItemInput) {
		t.Helper()
		if _, err := a.Commerce.UpsertOrder(ctx, tid, commerce.OrderInput{Source: src, OrderID: orderID, CustomerID: customerID,
			Status: commerce.Paid, Items: items, OrderedAt: at, PaidAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	latte := commerce.ItemInput{SKU: "LATTE-L", Name: "燕麦拿铁", Category: "coffee", Quantity: 2, UnitPriceFen: 3200}
	beans := commerce.ItemInput{SKU: "BEAN-YG", Name: "云南咖啡豆 500g", Category: "beans", Quantity: 1, UnitPriceFen: 12800}
	order(ids[0], commerce.SourceOfflineStore, "POS-33101", day(3, 0), latte)
	order(ids[1], commerce.SourceMiniApp, "MP20261020", day(6, 0), beans, latte)
	order(ids[2], commerce.SourceTmall, "TM88119821", day(8, 0), beans)
	order(ids[4], commerce.SourceMiniApp, "MP20261031", day(1, 0), latte)

	// The member: a mini-program profile, and a WeCom contact with her
	// phone that her next mini-program login joins to it.
	var hero int64
	err = a.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if hero, err = a.Customers.Resolve(ctx, tx, tid, customer.Observation{At: day(70, 0), Source: "douyin_live", SourceCode: "直播间-双11",
			Identities: []customer.Identity{{Kind: customer.KindUserID, Value: "M0042"}, {Kind: customer.KindMiniOpenID, Value: "oMP_9f2c1a7d"}},
			Traits: map[string]any{"name": "王芳", "gender": "female", "birthday": "1992-08-16", "province": "上海", "city": "上海",
				"email": "wangfang@example.com", "member_level": "金卡", "points": 2680.0, "favourite": []any{"燕麦拿铁", "冷萃"}, "vip": true}}); err != nil {
			return err
		}
		if _, err := a.Customers.Resolve(ctx, tx, tid, customer.Observation{At: day(40, 0), Source: "wecom",
			Identities: []customer.Identity{{Kind: customer.KindWeComExtID, Value: "wmqL8fCQAA3xYz"}, {Kind: customer.KindUnionID, Value: "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}},
			Traits:     map[string]any{"phone": "13800138000"}}); err != nil {
			return err
		}
		_, err = a.Customers.Resolve(ctx, tx, tid, customer.Observation{At: day(39, 0), Source: "miniapp", MessageID: "mp-login-7731",
			Identities: []customer.Identity{{Kind: customer.KindUserID, Value: "M0042"}},
			Traits:     map[string]any{"phone": "13800138000"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Customers.DefineAttribute(ctx, tid, "member_level", "会员等级", customer.TypeString); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Customers.DefineAttribute(ctx, tid, "points", "积分", customer.TypeNumber); err != nil {
		t.Fatal(err)
	}
	order(hero, commerce.SourceTmall, "TM88120034", day(30, 0), beans, commerce.ItemInput{SKU: "MUG-01", Name: "陶瓷马克杯", Quantity: 1, UnitPriceFen: 6800})
	if _, err := a.Commerce.AddRefund(ctx, tid, commerce.SourceTmall, "TM88120034", commerce.RefundInput{
		RefundID: "RF-1", AmountFen: 6800, Reason: "杯子运输破损", RefundedAt: day(28, 0)}); err != nil {
		t.Fatal(err)
	}
	order(hero, commerce.SourceOfflineStore, "POS-32877", day(12, 0), latte)
	order(hero, commerce.SourceMiniApp, "MP20261101", day(0, -2), beans, latte, commerce.ItemInput{SKU: "COLD-BREW", Name: "冷萃咖啡", Quantity: 5, UnitPriceFen: 2800})

	// Her browsing, through the SDK endpoint and the event processor.
	k, err := a.Events.CreateWriteKey(ctx, tenant.System(tid), "seed")
	if err != nil {
		t.Fatal(err)
	}
	ts := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }
	batch := `{"batch":[
	  {"type":"page","userId":"M0042","name":"首页","messageId":"s1","timestamp":"` + ts(3*time.Hour) + `","properties":{"path":"/index"}},
	  {"type":"page","userId":"M0042","name":"冷萃咖啡","messageId":"s2","timestamp":"` + ts(150*time.Minute) + `","properties":{"path":"/goods/cold-brew","sku":"COLD-BREW"}},
	  {"type":"track","userId":"M0042","event":"Coupon Claimed","messageId":"s3","timestamp":"` + ts(140*time.Minute) + `","properties":{"coupon":"满100减20","campaign":"双11预热"}},
	  {"type":"track","userId":"M0042","event":"Product Added","messageId":"s4","timestamp":"` + ts(130*time.Minute) + `","properties":{"sku":"COLD-BREW","quantity":5,"price":28}},
	  {"type":"identify","userId":"M0042","messageId":"s5","timestamp":"` + ts(20*24*time.Hour) + `","traits":{"points":2680,"phone":"13800138000"}},
	  {"type":"track","event":"Product Viewed","messageId":"s6","properties":{"sku":"LATTE-L"}}
	]}`
	if _, err := a.Events.Ingest(ctx, event.Request{Endpoint: event.EndpointBatch, WriteKey: k.Key, Body: []byte(batch)}); err != nil {
		t.Fatal(err)
	}

	// A loyal customer with a long history, for the timeline's paging.
	loyal, err := a.Customers.Create(ctx, tid, customer.NewCustomer{Name: "陈静", Gender: "female", City: "苏州", Phone: "13100131000",
		FirstSource: "store", FirstSeenAt: day(300, 0), LastSeenAt: day(1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 24 {
		order(loyal.ID, commerce.SourceOfflineStore, fmt.Sprintf("POS-2%04d", i), day(24-i, 0), latte)
	}

	// Wait (bounded) for the processor to put her events on her timeline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		tl, err := a.Customers.Timeline(ctx, tid, hero, page.Request{Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		events := 0
		for _, e := range tl.Items {
			if e.Kind == "event" {
				events++
			}
		}
		if events == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s, %d of 5 events are on the timeline", events)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return hero
}
