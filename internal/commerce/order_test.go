package commerce_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
)

func TestOrderUpsertIsIdempotent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		paidAt := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
		in := paidOrder("T1001", 0, paidAt)
		in.CustomerID = 0
		in.Identities = []customer.Identity{{Kind: customer.KindShopBuyerID, Value: "tmall:buyer123"}, {Kind: customer.KindPhone, Value: "138 0013 8000"}}
		in.CouponCode = "NEW20"

		res := e.upsert(t, e.a, in)
		o := res.Order
		if !res.Created || !res.Changed {
			t.Fatalf("first upsert: created %v changed %v", res.Created, res.Changed)
		}
		if o.TotalFen != 14800 || o.DiscountFen != 2000 || o.PaidFen != 12800 || o.RefundedFen != 0 || o.Status != commerce.Paid ||
			o.Currency != "CNY" || !o.PaidAt.Equal(paidAt) || !o.OrderedAt.Equal(paidAt) || o.CouponCode != "NEW20" {
			t.Fatalf("stored %+v", o)
		}
		if len(o.Items) != 2 || o.Items[0].AmountFen != 11800 || o.Items[0].Line != 1 || o.Items[1].SKU != "CUP-002" {
			t.Fatalf("items %+v", o.Items)
		}
		// The buyer became one profile with both identifiers.
		found, err := e.cust.List(ctx, e.a, customer.Query{Identifier: "phone:13800138000"}, page.Request{})
		if err != nil || len(found.Items) != 1 || found.Items[0].ID != o.CustomerID {
			t.Fatalf("customer by phone: %+v %v (order's customer %d)", found.Items, err, o.CustomerID)
		}

		// The same order again writes nothing.
		before := e.counts(t)
		again := e.upsert(t, e.a, in)
		if again.Created || again.Changed || !again.Order.UpdatedAt.Equal(o.UpdatedAt) || again.Order.ID != o.ID {
			t.Fatalf("re-send: created %v changed %v updated %v→%v", again.Created, again.Changed, o.UpdatedAt, again.Order.UpdatedAt)
		}
		if after := e.counts(t); !maps.Equal(before, after) {
			t.Fatalf("re-send changed row counts: %v → %v", before, after)
		}
		// The same buyer by another identifier alone lands on the same profile.
		in2 := paidOrder("T1002", 0, paidAt)
		in2.Identities = []customer.Identity{{Kind: customer.KindPhone, Value: "+86 13800138000"}}
		if got := e.upsert(t, e.a, in2).Order.CustomerID; got != o.CustomerID {
			t.Fatalf("second order went to customer %d, want %d", got, o.CustomerID)
		}

		// Changed items replace the old ones, and the totals follow.
		in.Items = []commerce.ItemInput{{SKU: "TEA-001", Name: "龙井 250g", Quantity: 3, UnitPriceFen: 5900}}
		changed := e.upsert(t, e.a, in)
		if changed.Created || !changed.Changed || len(changed.Order.Items) != 1 || changed.Order.TotalFen != 17700 || changed.Order.PaidFen != 15700 {
			t.Fatalf("changed items: %+v", changed.Order)
		}
		var items int
		d.QueryRow(`SELECT count(*) FROM order_items WHERE order_row_id = $1`, o.ID).Scan(&items)
		if items != 1 {
			t.Fatalf("%d item rows after replacing with 1", items)
		}
	})
}

func TestOrderStatusTransitions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		cid := e.newCustomer(t, e.a, "张三")
		paidAt := time.Now().Add(-time.Hour)
		cases := []struct {
			from, to commerce.Status
			code     string // "" when allowed
		}{
			{commerce.Pending, commerce.Paid, ""},
			{commerce.Pending, commerce.Cancelled, ""},
			{commerce.Cancelled, commerce.Paid, ""},
			{commerce.Paid, commerce.Paid, ""},
			{commerce.Paid, commerce.Pending, "invalid_status_transition"},
			{commerce.Paid, commerce.Cancelled, "invalid_status_transition"},
			{commerce.Cancelled, commerce.Pending, "invalid_status_transition"},
			{commerce.Paid, commerce.Refunded, "status_follows_refunds"},
		}
		for i, c := range cases {
			id := fmt.Sprintf("S%d", i)
			first := paidOrder(id, cid, paidAt)
			first.Status = c.from
			e.upsert(t, e.a, first)
			next := first
			next.Status = c.to
			res, err := e.svc.UpsertOrder(context.Background(), e.a, next)
			if c.code == "" {
				if err != nil || res.Order.Status != c.to {
					t.Fatalf("%s → %s: %+v %v", c.from, c.to, res.Order.Status, err)
				}
				continue
			}
			expectCode(t, err, c.code)
			if o, _ := e.svc.Order(context.Background(), e.a, commerce.SourceTmall, id); o.Status != c.from {
				t.Fatalf("%s → %s rejected but status is now %s", c.from, c.to, o.Status)
			}
		}
		// A new order cannot start refunded: refunds come first.
		first := paidOrder("S-new", cid, paidAt)
		first.Status = commerce.Refunded
		_, err := e.svc.UpsertOrder(context.Background(), e.a, first)
		expectCode(t, err, "status_follows_refunds")
	})
}

func TestOrderBadInputWritesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		cid := e.newCustomer(t, e.a, "李四")
		otherTenantCustomer := e.newCustomer(t, e.b, "王五")
		if _, err := e.staff.CreateStore(ctx, e.a, staff.Store{Code: "SH-JA-01", Name: "静安店"}); err != nil {
			t.Fatal(err)
		}
		paidAt := time.Now().Add(-time.Hour)
		ok := func(mod func(*commerce.OrderInput)) commerce.OrderInput {
			in := paidOrder("BAD-1", cid, paidAt)
			mod(&in)
			return in
		}
		cases := []struct {
			name string
			in   commerce.OrderInput
			code string
		}{
			{"negative unit price", ok(func(in *commerce.OrderInput) { in.Items[0].UnitPriceFen = -100 }), "invalid_amount"},
			{"negative discount", ok(func(in *commerce.OrderInput) { in.DiscountFen = -1 }), "invalid_amount"},
			{"negative total", ok(func(in *commerce.OrderInput) { in.Items = nil; in.TotalFen = ptr(int64(-5)) }), "invalid_amount"},
			{"discount over total", ok(func(in *commerce.OrderInput) { in.DiscountFen = 14801 }), "invalid_amount"},
			{"total over the limit", ok(func(in *commerce.OrderInput) {
				in.Items[0].Quantity, in.Items[0].UnitPriceFen = commerce.MaxQuantity, commerce.MaxUnitPriceFen
			}), "invalid_amount"},
			{"unit price over the limit", ok(func(in *commerce.OrderInput) { in.Items[0].UnitPriceFen = commerce.MaxUnitPriceFen + 1 }), "invalid_amount"},
			{"zero quantity", ok(func(in *commerce.OrderInput) { in.Items[1].Quantity = 0 }), "invalid_quantity"},
			{"total does not match items", ok(func(in *commerce.OrderInput) { in.TotalFen = ptr(int64(14700)) }), "amount_mismatch"},
			{"paid is not total minus discount", ok(func(in *commerce.OrderInput) { in.PaidFen = ptr(int64(14800)) }), "amount_mismatch"},
			{"no items and no total", ok(func(in *commerce.OrderInput) { in.Items = nil }), "items_required"},
			{"unknown currency", ok(func(in *commerce.OrderInput) { in.Currency = "USD" }), "unsupported_currency"},
			{"paid without paid_at", ok(func(in *commerce.OrderInput) { in.PaidAt = time.Time{} }), "paid_at_required"},
			{"paid_at in seconds", ok(func(in *commerce.OrderInput) { in.PaidAt = time.UnixMilli(paidAt.Unix()) }), "invalid_time"},
			{"unknown store code", ok(func(in *commerce.OrderInput) { in.StoreCode = "NOPE" }), "unknown_store_code"},
			{"unknown source", ok(func(in *commerce.OrderInput) { in.Source = "taobao" }), "unsupported_source"},
			{"unknown status", ok(func(in *commerce.OrderInput) { in.Status = "shipped" }), "invalid_status"},
			{"empty order id", ok(func(in *commerce.OrderInput) { in.OrderID = " " }), "invalid_order_id"},
			{"no buyer", ok(func(in *commerce.OrderInput) { in.CustomerID = 0 }), "customer_required"},
			{"two buyers", ok(func(in *commerce.OrderInput) {
				in.Identities = []customer.Identity{{Kind: customer.KindUserID, Value: "u1"}}
			}), "ambiguous_customer"},
			{"another workspace's customer", ok(func(in *commerce.OrderInput) { in.CustomerID = otherTenantCustomer }), "unknown_customer"},
			{"unknown identifier kind", ok(func(in *commerce.OrderInput) {
				in.CustomerID = 0
				in.Identities = []customer.Identity{{Kind: customer.KindShopBuyerID, Value: "jd:b1"}, {Kind: "qq", Value: "12345"}}
			}), "unknown_identity_kind"},
		}
		before := e.counts(t)
		for _, c := range cases {
			_, err := e.svc.UpsertOrder(ctx, e.a, c.in)
			if errs.KindOf(err) != errs.Invalid {
				t.Errorf("%s: kind %v, want Invalid (%v)", c.name, errs.KindOf(err), err)
			}
			if errs.CodeOf(err) != c.code {
				t.Errorf("%s: %v, want %s", c.name, err, c.code)
			}
		}
		if after := e.counts(t); !maps.Equal(before, after) {
			t.Fatalf("bad input wrote rows: %v → %v", before, after)
		}
		// The store code resolves when it exists.
		good := ok(func(in *commerce.OrderInput) { in.StoreCode = "SH-JA-01"; in.Source = commerce.SourceOfflineStore })
		if o := e.upsert(t, e.a, good).Order; o.StoreID == 0 || o.StoreCode != "SH-JA-01" {
			t.Fatalf("store not linked: %+v", o)
		}
		// An order sent without items but with a total is accepted.
		totalOnly := ok(func(in *commerce.OrderInput) { in.OrderID = "POS-9"; in.Items = nil; in.TotalFen = ptr(int64(9900)) })
		if o := e.upsert(t, e.a, totalOnly).Order; o.TotalFen != 9900 || o.PaidFen != 7900 || len(o.Items) != 0 {
			t.Fatalf("total-only order: %+v", o)
		}
	})
}

func TestOrderTenantIsolation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		ca, cb := e.newCustomer(t, e.a, "甲"), e.newCustomer(t, e.b, "乙")
		paidAt := time.Now().Add(-time.Hour)
		oa := e.upsert(t, e.a, paidOrder("T-SAME", ca, paidAt)).Order

		if _, err := e.svc.Order(ctx, e.b, commerce.SourceTmall, "T-SAME"); errs.CodeOf(err) != "order_not_found" {
			t.Fatalf("B reads A's order: %v", err)
		}
		if pg, _ := e.svc.ListOrders(ctx, e.b, commerce.OrderQuery{}, page.Request{}); len(pg.Items) != 0 {
			t.Fatalf("B lists A's orders: %+v", pg.Items)
		}
		if pg, _ := e.svc.ListOrders(ctx, e.b, commerce.OrderQuery{CustomerID: ca}, page.Request{}); len(pg.Items) != 0 {
			t.Fatalf("B lists A's customer's orders")
		}
		if _, err := e.svc.Orders(ctx, e.b, ca, page.Request{}); !errs.Is(err, errs.NotFound) {
			t.Fatalf("B reads A's customer's orders: %v", err)
		}
		if _, err := e.svc.AddRefund(ctx, e.b, commerce.SourceTmall, "T-SAME", commerce.RefundInput{RefundID: "R1", AmountFen: 100}); errs.CodeOf(err) != "order_not_found" {
			t.Fatalf("B refunds A's order: %v", err)
		}
		// The same source order id in B is B's own order.
		ob := e.upsert(t, e.b, paidOrder("T-SAME", cb, paidAt))
		if !ob.Created || ob.Order.ID == oa.ID {
			t.Fatalf("B's order: %+v", ob)
		}
		if got, _ := e.svc.Order(ctx, e.a, commerce.SourceTmall, "T-SAME"); got.CustomerID != ca || got.RefundedFen != 0 {
			t.Fatalf("A's order changed: %+v", got)
		}
		if sp := e.spend(t, e.b, ca); sp.OrderCount != 0 {
			t.Fatalf("B sees A's spend: %+v", sp)
		}
	})
}

func TestOrderListFiltersAndPaging(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		c1, c2 := e.newCustomer(t, e.a, "一"), e.newCustomer(t, e.a, "二")
		base := time.Now().Add(-48 * time.Hour)
		for i := range 5 {
			in := paidOrder(fmt.Sprintf("L%d", i), c1, base.Add(time.Duration(i)*time.Hour))
			if i%2 == 1 {
				in.Source = commerce.SourceJD
			}
			e.upsert(t, e.a, in)
		}
		pending := paidOrder("L-pending", c2, time.Time{})
		pending.Status, pending.OrderedAt = commerce.Pending, base
		e.upsert(t, e.a, pending)

		var got []string
		r := page.Request{Limit: 2}
		for {
			pg, err := e.svc.ListOrders(ctx, e.a, commerce.OrderQuery{CustomerID: c1}, r)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range pg.Items {
				got = append(got, o.OrderID)
				if len(o.Items) != 2 {
					t.Fatalf("listed order without items: %+v", o)
				}
			}
			if pg.Next == "" {
				break
			}
			r.Cursor = pg.Next
		}
		if fmt.Sprint(got) != "[L4 L3 L2 L1 L0]" {
			t.Fatalf("customer's orders newest first: %v", got)
		}
		jd, _ := e.svc.ListOrders(ctx, e.a, commerce.OrderQuery{Source: commerce.SourceJD}, page.Request{})
		pend, _ := e.svc.ListOrders(ctx, e.a, commerce.OrderQuery{Status: commerce.Pending}, page.Request{})
		if len(jd.Items) != 2 || len(pend.Items) != 1 || pend.Items[0].OrderID != "L-pending" {
			t.Fatalf("filters: jd %d, pending %d", len(jd.Items), len(pend.Items))
		}
		if _, err := e.svc.ListOrders(ctx, e.a, commerce.OrderQuery{}, page.Request{Cursor: "garbage"}); errs.CodeOf(err) != "invalid_cursor" {
			t.Fatalf("bad cursor: %v", err)
		}
	})
}

// Concurrent writers of one customer's orders (and of one order) leave one
// row per order and a spend equal to the sum of the orders.
func TestConcurrentOrdersKeepSpendConsistent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		cid := e.newCustomer(t, e.a, "并发")
		paidAt := time.Now().Add(-time.Hour)
		var wg sync.WaitGroup
		errc := make(chan error, 40)
		for i := range 20 {
			for range 2 { // each order sent twice at once
				wg.Go(func() {
					_, err := e.svc.UpsertOrder(ctx, e.a, paidOrder(fmt.Sprintf("C%d", i), cid, paidAt))
					errc <- err
				})
			}
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatal(err)
			}
		}
		var n int
		d.QueryRow(`SELECT count(*) FROM orders WHERE tenant_id = $1`, e.a).Scan(&n)
		if sp := e.spend(t, e.a, cid); n != 20 || sp.OrderCount != 20 || sp.PaidFen != 20*12800 {
			t.Fatalf("%d orders, spend %+v", n, sp)
		}
	})
}
