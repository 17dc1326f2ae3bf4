package console_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/console"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/importer"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Users the data harness adds besides the owner and the analyst.
const (
	operatorEmail = "operator@brand.test"
	staffEmail    = "staff@brand.test"
)

// dataHarness is a console with the customer, commerce, event and import
// services on one database, wired as the app wires them, and an import
// worker running.
type dataHarness struct {
	*harness
	customers *customer.Service
	commerce  *commerce.Service
	events    *event.Service
	imports   *importer.Service
}

func newDataHarness(t *testing.T, d *db.DB) *dataHarness {
	t.Helper()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := pii.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dh := &dataHarness{}
	dh.harness = newHarnessFunc(t, d, func(ts *tenant.Service) console.Deps {
		dh.customers = customer.NewService(d, kr, log)
		dh.events = event.NewService(d, event.Options{Logger: log, Auditor: ts})
		dh.customers.OnMerge("events", dh.events.MoveCustomer)
		dh.customers.AddTimelineSource(dh.events)
		dh.commerce = commerce.NewService(d, dh.customers, staff.NewService(d), log)
		dh.customers.OnMerge("orders", dh.commerce.MoveCustomer)
		dh.customers.AddTimelineSource(dh.commerce)
		dh.imports = importer.NewService(d, dh.customers, ts, log, importer.Options{Orders: dh.commerce, Poll: 50 * time.Millisecond})
		return console.Deps{Version: "test", Customers: dh.customers, Commerce: dh.commerce, Events: dh.events, Imports: dh.imports}
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { dh.imports.Work(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, u := range []tenant.NewUser{
		{Email: operatorEmail, Name: "运营小王", Password: testPassword, Role: tenant.RoleOperator},
		{Email: staffEmail, Name: "导购小李", Password: testPassword, Role: tenant.RoleStaff},
	} {
		if _, err := dh.ts.CreateUser(ctx, dh.ws.ID, u); err != nil {
			t.Fatal(err)
		}
	}
	return dh
}

// customer creates a customer with a user_id and returns its id.
func (dh *dataHarness) customer(t *testing.T, nc customer.NewCustomer) int64 {
	t.Helper()
	c, err := dh.customers.Create(context.Background(), dh.ws.ID, nc)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// order records a paid mini-program order of one item for a customer.
func (dh *dataHarness) order(t *testing.T, customerID int64, orderID string, fen int64, at time.Time) {
	t.Helper()
	_, err := dh.commerce.UpsertOrder(context.Background(), dh.ws.ID, commerce.OrderInput{
		Source: commerce.SourceMiniApp, OrderID: orderID, CustomerID: customerID, Status: commerce.Paid,
		Items:     []commerce.ItemInput{{SKU: "LATTE", Name: "拿铁", Quantity: 1, UnitPriceFen: fen}},
		OrderedAt: at, PaidAt: at,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCustomerListSearchAndPII(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		dh := newDataHarness(t, d)
		now := time.Now().Add(-time.Hour)
		li := dh.customer(t, customer.NewCustomer{Name: "李雷", Gender: "male", City: "上海", Phone: "13800138000", FirstSource: "douyin_live",
			Identities: []customer.Identity{{Kind: customer.KindUserID, Value: "M0001"}}})
		han := dh.customer(t, customer.NewCustomer{Name: "韩梅梅", Gender: "female", City: "杭州", Phone: "13900139000", FirstSource: "tmall_parcel"})
		dh.customer(t, customer.NewCustomer{Name: "李华", City: "北京", FirstSource: "some_new_channel"})
		dh.order(t, li, "W1", 3200, now)
		dh.order(t, li, "W2", 2800, now.Add(time.Minute))

		owner := dh.browser()
		owner.signIn(ownerEmail)
		res := owner.get("/customers")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "李雷", "韩梅梅", "李华", "138 0013 8000", "抖音直播", "天猫包裹卡", "some_new_channel", "¥60.00", "男", "上海",
			`href="/customers/`+fmt.Sprint(li)+`"`, `href="/customers/export?format=csv"`, `href="/imports"`)
		wantNoBody(t, res, "138****8000")

		// An operator sees phones masked, and the same list.
		op := dh.browser()
		op.signIn(operatorEmail)
		res = op.get("/customers")
		wantBody(t, res, "138****8000", "139****9000", "李雷")
		wantNoBody(t, res, "13800138000", "138 0013 8000")

		// Search: a phone in any format, a name prefix, an identifier.
		for _, tc := range []struct {
			q    string
			want []string
			not  []string
		}{
			{"138 0013 8000", []string{"李雷"}, []string{"韩梅梅", "李华"}},
			{"+86-139-0013-9000", []string{"韩梅梅"}, []string{"李雷"}},
			{"李", []string{"李雷", "李华"}, []string{"韩梅梅"}},
			{"user_id:M0001", []string{"李雷"}, []string{"韩梅梅", "李华"}},
		} {
			res := op.get("/customers?q=" + url.QueryEscape(tc.q))
			wantStatus(t, res, http.StatusOK)
			wantBody(t, res, tc.want...)
			wantNoBody(t, res, tc.not...)
			wantBody(t, res, `value="`+strings.ReplaceAll(tc.q, "+", "&#43;")+`"`, "/customers/export?format=csv&amp;q=")
		}
		res = op.get("/customers?q=" + url.QueryEscape("王"))
		wantBody(t, res, "没有找到与“王”匹配的客户", "清除搜索")
		// A malformed identifier says why, beside the search box.
		res = op.get("/customers?q=" + url.QueryEscape("phone:abc"))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "手机号格式不正确", `value="phone:abc"`)
		_ = han

		// In English, channels and genders are translated too.
		op.setCookie("lang", "en")
		wantBody(t, op.get("/customers"), "Douyin live", "Tmall parcel card", "Male", "Spend")
	})
}

func TestCustomerListPagesAndEmptyState(t *testing.T) {
	d := dbtest.Open(t, db.SQLite)
	dh := newDataHarness(t, d)
	b := dh.browser()
	b.signIn(ownerEmail)
	res := b.get("/customers")
	wantBody(t, res, "还没有客户", `href="/imports"`, `href="/write-keys"`)

	batch := make([]customer.NewCustomer, 60)
	for i := range batch {
		batch[i] = customer.NewCustomer{Name: fmt.Sprintf("客户%02d", i)}
	}
	if _, err := dh.customers.CreateMany(context.Background(), dh.ws.ID, batch); err != nil {
		t.Fatal(err)
	}
	first := b.get("/customers")
	wantBody(t, first, "客户59", "客户10", "下一页")
	wantNoBody(t, first, "客户09", "第一页")
	m := regexp.MustCompile(`href="(/customers\?cursor=[^"]+)" rel="next"`).FindStringSubmatch(first.body)
	if m == nil {
		t.Fatal("no next-page link")
	}
	second := b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	wantStatus(t, second, http.StatusOK)
	wantBody(t, second, "客户09", "客户00", "第一页")
	wantNoBody(t, second, "客户10", `rel="next"`)
	wantStatus(t, b.get("/customers?cursor=garbage!"), http.StatusUnprocessableEntity)

	// Paging keeps the search.
	res = b.get("/customers?q=" + url.QueryEscape("客户"))
	if !regexp.MustCompile(`href="/customers\?cursor=[^"&]+&amp;q=%E5%AE%A2%E6%88%B7" rel="next"`).MatchString(res.body) {
		t.Fatal("the next-page link of a search lost the search")
	}
}

func TestCustomerDetail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		dh := newDataHarness(t, d)
		ctx := context.Background()
		at := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Millisecond)
		// Two profiles that a later message joins: the phone links them.
		var older, newer int64
		err := d.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			if older, err = dh.customers.Resolve(ctx, tx, dh.ws.ID, customer.Observation{At: at, Source: "miniapp",
				Identities: []customer.Identity{{Kind: customer.KindUserID, Value: "M0042"}},
				Traits:     map[string]any{"name": "王芳", "email": "wangfang@example.com", "member_level": "金卡", "vip": true}}); err != nil {
				return err
			}
			if newer, err = dh.customers.Resolve(ctx, tx, dh.ws.ID, customer.Observation{At: at.Add(time.Minute), Source: "wecom",
				Identities: []customer.Identity{{Kind: customer.KindWeComExtID, Value: "wmEXT42"}},
				Traits:     map[string]any{"phone": "13800138000"}}); err != nil {
				return err
			}
			// The member logs in to the mini program with that phone.
			_, err = dh.customers.Resolve(ctx, tx, dh.ws.ID, customer.Observation{At: at.Add(2 * time.Minute), Source: "miniapp", MessageID: "msg-join-1",
				Identities: []customer.Identity{{Kind: customer.KindUserID, Value: "M0042"}},
				Traits:     map[string]any{"phone": "13800138000"}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dh.customers.DefineAttribute(ctx, dh.ws.ID, "member_level", "会员等级", customer.TypeString); err != nil {
			t.Fatal(err)
		}
		dh.order(t, older, "MP-1001", 12800, at.Add(time.Hour))
		if _, err := dh.commerce.AddRefund(ctx, dh.ws.ID, commerce.SourceMiniApp, "MP-1001", commerce.RefundInput{
			RefundID: "R1", AmountFen: 2000, Reason: "少发一件", RefundedAt: at.Add(90 * time.Minute)}); err != nil {
			t.Fatal(err)
		}

		owner := dh.browser()
		owner.signIn(ownerEmail)
		path := fmt.Sprintf("/customers/%d", older)
		res := owner.get(path)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res,
			"<title>王芳 · Siyu 私域</title>", "138 0013 8000", "wangfang@example.com",
			"会员等级", "金卡", "vip", "是", // traits, defined and not
			"会员ID", "M0042", "企微外部联系人", "wmEXT42", // identities, translated
			"小程序订单 MP-1001", "¥128.00", "-¥20.00", "少发一件", "部分退款", // orders and the timeline
			fmt.Sprintf("合并了档案 #%d：共同标识 手机号 138****8000", newer), "msg-join-1")
		wantNoBody(t, res, "已脱敏")

		// The merged profile's id leads to the survivor.
		res = owner.get(fmt.Sprintf("/customers/%d", newer))
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != path {
			t.Fatalf("merged profile redirects to %q", loc)
		}

		// An analyst sees the same profile with personal data masked.
		an := dh.browser()
		an.signIn(analystEmail)
		res = an.get(path)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "138****8000", "wa***@example.com", "已脱敏", "王芳")
		wantNoBody(t, res, "13800138000", "138 0013 8000", "wangfang@example.com")

		wantStatus(t, owner.get("/customers/999999"), http.StatusNotFound)
		wantStatus(t, owner.get("/customers/abc"), http.StatusNotFound)

		// Another workspace's customer does not exist here.
		other, err := dh.ts.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "other", Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := dh.customers.Create(ctx, other.ID, customer.NewCustomer{Name: "别家客户"})
		if err != nil {
			t.Fatal(err)
		}
		res = owner.get(fmt.Sprintf("/customers/%d", theirs.ID))
		wantStatus(t, res, http.StatusNotFound)
		wantNoBody(t, res, "别家客户")
	})
}

func TestTimelineLoadsMoreWithTheCursor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		dh := newDataHarness(t, d)
		id := dh.customer(t, customer.NewCustomer{Name: "老顾客"})
		start := time.Now().Add(-48 * time.Hour)
		for i := range 26 {
			dh.order(t, id, fmt.Sprintf("T%03d", i), 1000+int64(i), start.Add(time.Duration(i)*time.Minute))
		}
		b := dh.browser()
		token := b.signIn(ownerEmail)
		res := b.get(fmt.Sprintf("/customers/%d", id))
		wantBody(t, res, "小程序订单 T025", "小程序订单 T006", "加载更早的记录", "全部订单")
		wantNoBody(t, res, "小程序订单 T005 ", "没有更早的记录了")
		m := regexp.MustCompile(`hx-get="(/customers/\d+/timeline\?cursor=[^"]+)"`).FindStringSubmatch(res.body)
		if m == nil {
			t.Fatal("no load-more link")
		}
		more := strings.ReplaceAll(m[1], "&amp;", "&")
		req, _ := http.NewRequest(http.MethodGet, dh.srv.URL+more, nil)
		req.Header.Set("HX-Request", "true")
		req.Header.Set("X-CSRF-Token", token)
		frag := b.do(req)
		wantStatus(t, frag, http.StatusOK)
		wantBody(t, frag, "小程序订单 T005", "小程序订单 T000", "没有更早的记录了")
		wantNoBody(t, frag, "<html", "T006")
		// Without htmx, the link leads to the profile from that point.
		res = b.get(more)
		wantStatus(t, res, http.StatusSeeOther)

		// All orders, a page at a time.
		orders := b.get(fmt.Sprintf("/customers/%d/orders", id))
		wantStatus(t, orders, http.StatusOK)
		wantBody(t, orders, "共 26 笔已支付订单", "T025", "T006", "下一页")
		wantNoBody(t, orders, ">T005<")
	})
}

func TestDataPagesFollowPermissions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		dh := newDataHarness(t, d)
		for _, tc := range []struct {
			email      string
			ok, denied []string
		}{
			{ownerEmail, []string{"/customers", "/customers/attributes", "/imports", "/write-keys", "/ingest-errors"}, nil},
			{operatorEmail, []string{"/customers", "/customers/attributes", "/imports"}, []string{"/write-keys", "/ingest-errors"}},
			{staffEmail, []string{"/customers", "/customers/attributes"}, []string{"/imports", "/write-keys", "/ingest-errors"}},
			{analystEmail, []string{"/customers", "/customers/attributes"}, []string{"/imports", "/imports/1", "/write-keys", "/ingest-errors"}},
		} {
			b := dh.browser()
			token := b.signIn(tc.email)
			home := b.get("/")
			for _, p := range tc.ok {
				wantStatus(t, b.get(p), http.StatusOK)
				if p != "/customers/attributes" || tc.email == ownerEmail {
					wantBody(t, home, `href="`+p+`"`)
				}
			}
			for _, p := range tc.denied {
				res := b.get(p)
				wantStatus(t, res, http.StatusForbidden)
				wantBody(t, res, "没有权限")
				wantNoBody(t, home, `class="nav-link" href="`+p+`"`)
			}
			// Forms the role may not submit are refused whatever the token.
			if tc.email != ownerEmail {
				wantStatus(t, b.post("/customers/attributes", url.Values{"csrf": {token}, "name": {"x"}, "type": {"string"}}), http.StatusForbidden)
			}
		}
		// A write key cannot be made by an operator, with or without htmx.
		op := dh.browser()
		token := op.signIn(operatorEmail)
		wantStatus(t, op.post("/write-keys", url.Values{"csrf": {token}, "name": {"官网"}}), http.StatusForbidden)
		an := dh.browser()
		token = an.signIn(analystEmail)
		res := uploadFile(an, token, "customers", "a.csv", []byte("name,phone\n张三,13800138000\n"))
		wantStatus(t, res, http.StatusForbidden)
		keys, _ := dh.events.WriteKeys(context.Background(), dh.ws.ID, pageAll)
		jobs, _ := dh.imports.Jobs(context.Background(), dh.ws.ID, pageAll, true)
		if len(keys.Items) != 0 || len(jobs.Items) != 0 {
			t.Fatalf("refused requests left %d keys and %d imports", len(keys.Items), len(jobs.Items))
		}
	})
}

func TestAttributesCatalogueAndDefine(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		dh := newDataHarness(t, d)
		ctx := context.Background()
		err := d.Tx(ctx, func(tx *sql.Tx) error {
			_, err := dh.customers.Resolve(ctx, tx, dh.ws.ID, customer.Observation{At: time.Now(), Source: "ingest",
				Identities: []customer.Identity{{Kind: customer.KindUserID, Value: "u1"}},
				Traits:     map[string]any{"member_level": "gold", "points": 120.0, "vip": true}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		an := dh.browser()
		an.signIn(analystEmail)
		res := an.get("/customers/attributes")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "member_level", "points", "vip", "文本", "数字", "是/否", "自动推断")
		wantNoBody(t, res, `id="define-form"`)

		b := dh.browser()
		token := b.signIn(ownerEmail)
		wantBody(t, b.get("/customers/attributes?define=points"), `id="define-form"`, `value="points"`)

		// Without the token nothing is defined.
		res = b.post("/customers/attributes", url.Values{"name": {"member_level"}, "display_name": {"会员等级"}, "type": {"string"}})
		wantStatus(t, res, http.StatusForbidden)
		res = b.post("/customers/attributes", url.Values{"csrf": {token}, "name": {"bad name!"}, "type": {"string"}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "属性名为 1–64 个字母", `value="bad name!"`)
		res = b.post("/customers/attributes", url.Values{"csrf": {token}, "name": {"phone"}, "type": {"string"}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "这是标准资料字段")
		attrs, _ := dh.customers.Attributes(ctx, dh.ws.ID)
		for _, a := range attrs {
			if a.Defined {
				t.Fatalf("a refused form defined %+v", a)
			}
		}

		res = b.post("/customers/attributes", url.Values{"csrf": {token}, "name": {"member_level"}, "display_name": {"会员等级"}, "type": {"string"}})
		wantStatus(t, res, http.StatusSeeOther)
		res = b.get("/customers/attributes")
		wantBody(t, res, "属性已定义", "会员等级", "已定义")
		attrs, _ = dh.customers.Attributes(ctx, dh.ws.ID)
		if a := attrs[0]; a.Name != "member_level" || !a.Defined || a.DisplayName != "会员等级" {
			t.Fatalf("after defining: %+v", attrs)
		}
	})
}

func TestWriteKeysPage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		dh := newDataHarness(t, d)
		ctx := context.Background()
		b := dh.browser()
		token := b.signIn(ownerEmail)
		wantBody(t, b.get("/write-keys"), "还没有写入密钥")

		wantStatus(t, b.post("/write-keys", url.Values{"csrf": {"forged"}, "name": {"官网"}}), http.StatusForbidden)
		res := b.post("/write-keys", url.Values{"csrf": {token}, "name": {""}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "名称须为 1–100 个字符")

		res = b.post("/write-keys", url.Values{"csrf": {token}, "name": {"官网"}})
		wantStatus(t, res, http.StatusOK)
		m := regexp.MustCompile(`id="new-write-key"[^>]*>(wk_[A-Za-z0-9]+)<`).FindStringSubmatch(res.body)
		if m == nil {
			t.Fatalf("no write key on the page:\n%s", res.body)
		}
		key := m[1]
		// The snippets point the SDKs at this server.
		host := strings.TrimPrefix(dh.srv.URL, "http://")
		wantBody(t, res, "@segment/analytics-next", "apiHost: '"+host+"/v1'", "protocol: 'http'",
			`analytics.NewWithConfig("`+key+`"`, `Endpoint: "`+dh.srv.URL+`"`, "curl -u '"+key+":' "+dh.srv.URL+"/v1/track")

		// The key works: an event sent with it is accepted.
		if _, err := dh.events.Ingest(ctx, event.Request{Endpoint: "track", WriteKey: key,
			Body: []byte(`{"userId":"u1","event":"Signed Up"}`)}); err != nil {
			t.Fatalf("ingest with the new key: %v", err)
		}
		list := b.get("/write-keys")
		wantBody(t, list, "官网", key, "有效")

		keys, _ := dh.events.WriteKeys(ctx, dh.ws.ID, pageAll)
		res = b.post(fmt.Sprintf("/write-keys/%d/revoke", keys.Items[0].ID), url.Values{}, "HX-Request", "true", "X-CSRF-Token", token)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, fmt.Sprintf(`id="writekey-%d"`, keys.Items[0].ID), "已吊销")
		wantNoBody(t, res, "<html")
		if _, err := dh.events.Ingest(ctx, event.Request{Endpoint: "track", WriteKey: key,
			Body: []byte(`{"userId":"u1","event":"Signed Up"}`)}); err == nil {
			t.Fatal("a revoked write key still works")
		}
		wantStatus(t, b.post("/write-keys/999999/revoke", url.Values{"csrf": {token}}), http.StatusNotFound)
	})
}

func TestIngestErrorsPage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		dh := newDataHarness(t, d)
		ctx := context.Background()
		b := dh.browser()
		b.signIn(ownerEmail)
		wantBody(t, b.get("/ingest-errors"), "没有接入错误")

		k, err := dh.events.CreateWriteKey(ctx, tenant.System(dh.ws.ID), "官网")
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for i := range 55 {
			msgs = append(msgs, fmt.Sprintf(`{"type":"track","messageId":"bad-%02d","event":"Viewed"}`, i)) // no userId
		}
		msgs = append(msgs, `{"type":"track","messageId":"good-1","userId":"u1","event":"Viewed"}`)
		body := `{"batch":[` + strings.Join(msgs, ",") + `]}`
		res, err := dh.events.Ingest(ctx, event.Request{Endpoint: event.EndpointBatch, WriteKey: k.Key, Body: []byte(body)})
		if err != nil || res.Accepted != 1 || len(res.Rejected) != 55 {
			t.Fatalf("ingest: %+v, %v", res, err)
		}
		first := b.get("/ingest-errors")
		wantStatus(t, first, http.StatusOK)
		wantBody(t, first, "缺少 userId 或 anonymousId", "bad-54", "批次中第 54 条", `&#34;messageId&#34;:&#34;bad-54&#34;`, "下一页")
		wantNoBody(t, first, "bad-04", "good-1")
		m := regexp.MustCompile(`href="(/ingest-errors\?cursor=[^"]+)"`).FindStringSubmatch(first.body)
		if m == nil {
			t.Fatal("no next-page link")
		}
		next := b.get(m[1])
		wantBody(t, next, "bad-04", "bad-00", "回到最新")
		wantNoBody(t, next, "bad-05")
	})
}

// uploadFile posts a file to the import wizard as a browser's form would.
func uploadFile(b *browser, token, kind, name string, data []byte) response {
	b.h.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("csrf", token)
	_ = mw.WriteField("kind", kind)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(data)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.h.srv.URL+"/imports", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

var pageAll = page.Request{Limit: page.MaxLimit}

func TestImportWizard(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		dh := newDataHarness(t, d)
		ctx := context.Background()
		b := dh.browser()
		token := b.signIn(operatorEmail)
		wantBody(t, b.get("/imports"), "还没有导入过文件", `enctype="multipart/form-data"`)

		csv := "会员列表（导出于 2026-03-01）\n\n姓名,手机号,性别,会员ID,会员等级,备注\n" +
			"张伟,13800138000,男,M0001,金卡,老客户\n" +
			"王芳,139 0013 9000,女,M0002,银卡,\n" +
			"坏行,12345,男,,普通,\n"

		// The form's token is checked; without it nothing is stored.
		wantStatus(t, uploadFile(b, "forged", "customers", "members.csv", []byte(csv)), http.StatusForbidden)
		res := uploadFile(b, token, "customers", "empty.csv", nil)
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "请选择一个 CSV 或 XLSX 文件")

		res = uploadFile(b, token, "customers", "members.csv", []byte(csv))
		wantStatus(t, res, http.StatusSeeOther)
		loc := res.Header.Get("Location")
		if !regexp.MustCompile(`^/imports/\d+$`).MatchString(loc) {
			t.Fatalf("upload redirected to %q", loc)
		}
		var id int64
		fmt.Sscanf(loc, "/imports/%d", &id)

		// Step 2: the mapping, suggested from the headers; phones masked
		// for an operator.
		res = b.get(loc)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "members.csv", "字段映射", "表头在第 3 行", "138****8000", "自定义属性：会员等级",
			`<option value="phone" selected>手机号</option>`, `<option value="user_id" selected>会员ID</option>`,
			`<option value="trait:会员等级" selected>`)
		wantNoBody(t, res, "13800138000")
		selects := regexp.MustCompile(`<select name="(col\d+)"`).FindAllStringSubmatch(res.body, -1)
		if len(selects) != 6 {
			t.Fatalf("%d column selects, want 6", len(selects))
		}

		// A mapping without an identifier is refused, and says what to do.
		form := url.Values{"csrf": {token}, "col0": {"name"}, "col1": {""}, "col2": {"gender"}, "col3": {""}, "col4": {""}, "col5": {""}}
		res = b.post(loc+"/mapping", form)
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "请至少把一列映射为客户标识")

		// Step 3: check every row; nothing is written.
		form = url.Values{"csrf": {token}, "col0": {"name"}, "col1": {"phone"}, "col2": {"gender"}, "col3": {"user_id"},
			"col4": {"trait:会员等级"}, "col5": {""}, "source": {"store"}}
		res = b.post(loc+"/mapping", form)
		wantStatus(t, res, http.StatusSeeOther)
		res = b.get(loc)
		wantBody(t, res, "检查结果", `id="report-valid">2<`, `id="report-invalid">1<`, "手机号无效", "第 6 行", "导入 2 行")
		if n, _ := dh.customers.Count(ctx, dh.ws.ID); n != 0 {
			t.Fatalf("the check wrote %d customers", n)
		}
		wantBody(t, b.get(loc+"/errors"), "手机号无效", "第 6 行")

		// Step 4: run it; the progress bar polls until it is done.
		wantStatus(t, b.post(loc+"/run", url.Values{"csrf": {"forged"}}), http.StatusForbidden)
		res = b.post(loc+"/run", url.Values{"csrf": {token}})
		wantStatus(t, res, http.StatusSeeOther)
		deadline := time.Now().Add(10 * time.Second)
		for {
			req, _ := http.NewRequest(http.MethodGet, dh.srv.URL+loc+"/progress", nil)
			req.Header.Set("HX-Request", "true")
			p := b.do(req)
			wantStatus(t, p, http.StatusOK)
			wantBody(t, p, `id="import-progress"`)
			if p.Header.Get("HX-Refresh") == "true" {
				wantNoBody(t, p, "hx-trigger")
				break
			}
			wantBody(t, p, `hx-trigger="every 1s"`)
			if time.Now().After(deadline) {
				t.Fatal("the import did not finish in 10 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		res = b.get(loc)
		wantBody(t, res, "导入完成：2 行成功，1 行失败", `id="result-ok">2<`, "查看客户")
		list := b.get("/customers")
		wantBody(t, list, "张伟", "王芳", "门店")
		wantNoBody(t, list, "坏行")
		hist := b.get("/imports")
		wantBody(t, hist, "members.csv", "已完成")

		// Running it again is refused: the job is finished.
		res = b.post(loc+"/run", url.Values{"csrf": {token}})
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, "这个导入已经结束")

		// The same file again says it was imported before.
		res = uploadFile(b, token, "customers", "members-again.csv", []byte(csv))
		wantStatus(t, res, http.StatusSeeOther)
		wantBody(t, b.get(res.Header.Get("Location")), "这个文件已在", fmt.Sprintf("导入 #%d", id))
		_ = id
	})
}

func TestCustomersExport(t *testing.T) {
	d := dbtest.Open(t, db.SQLite)
	dh := newDataHarness(t, d)
	dh.customer(t, customer.NewCustomer{Name: "李雷", Phone: "13800138000"})
	dh.customer(t, customer.NewCustomer{Name: "韩梅梅", Phone: "13900139000"})
	b := dh.browser()
	b.signIn(analystEmail)
	res := b.get("/customers/export?format=csv&q=" + url.QueryEscape("李"))
	wantStatus(t, res, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("Content-Type %q", ct)
	}
	if cd := res.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
		t.Fatalf("Content-Disposition %q", cd)
	}
	wantBody(t, res, "姓名", "李雷", "138****8000")
	wantNoBody(t, res, "韩梅梅", "13800138000")
	res = b.get("/customers/export?format=pdf")
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantBody(t, res, "导出格式须为 CSV 或 XLSX")
}

// A request body over the limit is refused as too large, not as a missing
// token.
func TestFormBodyTooLarge(t *testing.T) {
	d := dbtest.Open(t, db.SQLite)
	dh := newDataHarness(t, d)
	b := dh.browser()
	token := b.signIn(ownerEmail)
	res := b.post("/write-keys", url.Values{"csrf": {token}, "name": {strings.Repeat("x", 2<<20)}})
	wantStatus(t, res, http.StatusRequestEntityTooLarge)
	wantBody(t, res, "请求太大")
}

func TestHomeShowsDataSteps(t *testing.T) {
	d := dbtest.Open(t, db.SQLite)
	dh := newDataHarness(t, d)
	b := dh.browser()
	b.signIn(ownerEmail)
	wantBody(t, b.get("/"), "导入已有的客户", "接入网站和小程序", `href="/imports"`, `href="/write-keys"`)
	a := dh.browser()
	a.signIn(analystEmail)
	res := a.get("/")
	wantBody(t, res, "查看客户", "查看审计日志")
	wantNoBody(t, res, "导入已有的客户")
}

// Names the console builds at run time (channel.tmall, idkind.user_id…)
// are in the catalogue for every value the domain has.
func TestCatalogueNamesEveryChannelAndKind(t *testing.T) {
	zh, en := readCatalogue(t, "zh-CN"), readCatalogue(t, "en")
	var keys []string
	for _, k := range customer.Kinds() {
		keys = append(keys, "idkind."+k)
	}
	for _, s := range commerce.Sources() {
		keys = append(keys, "channel."+string(s))
	}
	for _, s := range commerce.Statuses() {
		keys = append(keys, "order.status."+string(s))
	}
	for _, kind := range importer.Kinds() {
		for _, f := range importer.Fields(kind) {
			keys = append(keys, "field."+f.Name)
		}
		keys = append(keys, "imports.kind."+kind, "import.mapping_intro."+kind, "import.source_hint."+kind)
	}
	for _, st := range []string{importer.StatusUploaded, importer.StatusDryRun, importer.StatusRunning, importer.StatusDone,
		importer.StatusFailed, importer.StatusCancelled} {
		keys = append(keys, "import.status."+st)
	}
	for _, typ := range []string{"string", "number", "bool", "date", "list", "object"} {
		keys = append(keys, "attributes.type."+typ)
	}
	for _, k := range keys {
		if zh[k] == "" || en[k] == "" {
			t.Errorf("the catalogue lacks %q", k)
		}
	}
}

func TestImportWizardForOrders(t *testing.T) {
	d := dbtest.Open(t, db.SQLite)
	dh := newDataHarness(t, d)
	b := dh.browser()
	token := b.signIn(ownerEmail)
	csv := "订单号,手机号,渠道,订单状态,实付金额,支付时间\nT1001,13800138000,天猫,交易成功,190.00,2026-02-01 10:00:00\n"
	res := uploadFile(b, token, "orders", "orders.csv", []byte(csv))
	wantStatus(t, res, http.StatusSeeOther)
	loc := res.Header.Get("Location")
	res = b.get(loc)
	wantBody(t, res, "订单字段", `<option value="order_id" selected>订单号</option>`, `<option value="paid" selected>实付金额（元）</option>`,
		"以“渠道”列为准", `<option value="tmall">天猫</option>`, "需要订单号、一个客户标识")
	wantNoBody(t, res, "自定义属性：")
	res = b.post(loc+"/mapping", url.Values{"csrf": {token}, "col0": {"order_id"}, "col1": {"phone"}, "col2": {"channel"},
		"col3": {"status"}, "col4": {""}, "col5": {"paid_at"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantBody(t, res, "请映射订单金额")
	res = b.post(loc+"/mapping", url.Values{"csrf": {token}, "col0": {"order_id"}, "col1": {"phone"}, "col2": {"channel"},
		"col3": {"status"}, "col4": {"paid"}, "col5": {"paid_at"}})
	wantStatus(t, res, http.StatusSeeOther)
	wantBody(t, b.get(loc), `id="report-valid">1<`, "导入 1 行")
}

func TestCustomerDetailInEnglish(t *testing.T) {
	d := dbtest.Open(t, db.SQLite)
	dh := newDataHarness(t, d)
	id := dh.customer(t, customer.NewCustomer{Name: "Li Lei", Gender: "male", FirstSource: "wecom", Phone: "13800138000",
		Identities: []customer.Identity{{Kind: customer.KindUnionID, Value: "o6_abc"}}})
	dh.order(t, id, "W1", 3200, time.Now().Add(-time.Hour))
	b := dh.browser()
	b.signIn(analystEmail)
	b.setCookie("lang", "en")
	res := b.get(fmt.Sprintf("/customers/%d", id))
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, `lang="en"`, "Mini program order W1", "¥32.00", "Paid", "WeCom", "UnionID", "Masked", "138****8000", "Timeline")
	wantNoBody(t, res, "小程序订单", "时间线")
}
