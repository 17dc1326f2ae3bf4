package commerce_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/page"
)

func TestSpendAggregates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		c1, c2 := e.newCustomer(t, e.a, "甲"), e.newCustomer(t, e.a, "乙")
		if sp := e.spend(t, e.a, c1); sp != (commerce.Spend{CustomerID: c1}) {
			t.Fatalf("spend without orders: %+v", sp)
		}
		t1 := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Millisecond)
		t2 := t1.Add(24 * time.Hour)
		e.upsert(t, e.a, paidOrder("A1", c1, t2))
		e.upsert(t, e.a, paidOrder("A2", c1, t1))
		// Pending and cancelled orders are not spend.
		pending := paidOrder("A3", c1, time.Time{})
		pending.Status = commerce.Pending
		e.upsert(t, e.a, pending)
		cancelled := paidOrder("A4", c1, time.Time{})
		cancelled.Status = commerce.Cancelled
		e.upsert(t, e.a, cancelled)
		sp := e.spend(t, e.a, c1)
		if sp.OrderCount != 2 || sp.PaidFen != 25600 || sp.NetFen != 25600 || !sp.FirstOrderAt.Equal(t1) || !sp.LastOrderAt.Equal(t2) {
			t.Fatalf("spend %+v (first %v last %v)", sp, t1, t2)
		}
		// Paying the pending order counts it.
		pending.Status, pending.PaidAt = commerce.Paid, time.Now().Add(-time.Hour)
		e.upsert(t, e.a, pending)
		if sp := e.spend(t, e.a, c1); sp.OrderCount != 3 || sp.PaidFen != 38400 || !sp.LastOrderAt.Equal(pending.PaidAt.UTC().Truncate(time.Millisecond)) {
			t.Fatalf("after payment: %+v", sp)
		}
		// An order re-sent with another buyer moves its spend.
		moved := paidOrder("A1", c2, t2)
		e.upsert(t, e.a, moved)
		if s1, s2 := e.spend(t, e.a, c1), e.spend(t, e.a, c2); s1.OrderCount != 2 || s1.PaidFen != 25600 || s2.OrderCount != 1 || s2.PaidFen != 12800 {
			t.Fatalf("after moving an order: %+v / %+v", s1, s2)
		}
		// The aggregate always equals a recount from the orders.
		var count, paid int64
		d.QueryRow(`SELECT count(*), COALESCE(SUM(paid_fen), 0) FROM orders WHERE tenant_id = $1 AND customer_id = $2 AND status <> 'pending' AND status <> 'cancelled'`,
			e.a, c1).Scan(&count, &paid)
		if sp := e.spend(t, e.a, c1); sp.OrderCount != count || sp.PaidFen != paid {
			t.Fatalf("aggregate %+v, recount %d / %d", sp, count, paid)
		}
	})
}

func TestMoveCustomer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		from, to := e.newCustomer(t, e.a, "旧"), e.newCustomer(t, e.a, "新")
		paidAt := time.Now().Add(-time.Hour)
		e.upsert(t, e.a, paidOrder("M1", from, paidAt))
		e.upsert(t, e.a, paidOrder("M2", to, paidAt))
		if _, err := e.svc.AddRefund(ctx, e.a, commerce.SourceTmall, "M1", commerce.RefundInput{RefundID: "r", AmountFen: 800}); err != nil {
			t.Fatal(err)
		}
		err := d.Tx(ctx, func(tx *sql.Tx) error { return e.svc.MoveCustomer(ctx, tx, e.a, from, to) })
		if err != nil {
			t.Fatal(err)
		}
		if sp := e.spend(t, e.a, to); sp.OrderCount != 2 || sp.PaidFen != 25600 || sp.RefundedFen != 800 {
			t.Fatalf("survivor's spend: %+v", sp)
		}
		var rows int
		d.QueryRow(`SELECT count(*) FROM customer_spend WHERE customer_id = $1`, from).Scan(&rows)
		if rows != 0 {
			t.Fatal("merged customer keeps a spend row")
		}
		if pg, _ := e.svc.ListOrders(ctx, e.a, commerce.OrderQuery{CustomerID: from}, page.Request{}); len(pg.Items) != 0 {
			t.Fatalf("orders left on the merged customer: %d", len(pg.Items))
		}
	})
}

// An order whose identifiers join two existing profiles merges them through
// One ID, and the merge hook brings every order and its spend to the survivor.
func TestOrderThatMergesProfilesMovesOrders(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		paidAt := time.Now().Add(-time.Hour)
		byBuyer := paidOrder("TM-1", 0, paidAt)
		byBuyer.Identities = []customer.Identity{{Kind: customer.KindShopBuyerID, Value: "tmall:b42"}}
		first := e.upsert(t, e.a, byBuyer).Order
		byPhone := paidOrder("MINI-1", 0, paidAt)
		byPhone.Source = commerce.SourceMiniApp
		byPhone.Identities = []customer.Identity{{Kind: customer.KindPhone, Value: "13900139000"}}
		second := e.upsert(t, e.a, byPhone).Order
		if first.CustomerID == second.CustomerID {
			t.Fatal("unrelated identifiers made one profile")
		}
		both := paidOrder("TM-2", 0, paidAt)
		both.Identities = []customer.Identity{{Kind: customer.KindShopBuyerID, Value: "tmall:b42"}, {Kind: customer.KindPhone, Value: "13900139000"}}
		survivor := e.upsert(t, e.a, both).Order.CustomerID
		pg, err := e.svc.Orders(ctx, e.a, survivor, page.Request{})
		if err != nil || len(pg.Items) != 3 {
			t.Fatalf("survivor %d has %d orders (%v)", survivor, len(pg.Items), err)
		}
		if sp := e.spend(t, e.a, survivor); sp.OrderCount != 3 || sp.PaidFen != 3*12800 {
			t.Fatalf("survivor's spend: %+v", sp)
		}
		merged := first.CustomerID + second.CustomerID - survivor
		if sp := e.spend(t, e.a, merged); sp.OrderCount != 0 {
			t.Fatalf("merged profile keeps spend: %+v", sp)
		}
	})
}

func TestOrdersOnTheTimeline(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		cid := e.newCustomer(t, e.a, "时间线")
		paidAt := time.Now().Add(-2 * time.Hour)
		e.upsert(t, e.a, paidOrder("TL-1", cid, paidAt))
		if _, err := e.svc.AddRefund(ctx, e.a, commerce.SourceTmall, "TL-1", commerce.RefundInput{RefundID: "r1", AmountFen: 2800, RefundedAt: paidAt.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		pg, err := e.cust.Timeline(ctx, e.a, cid, page.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Items) != 2 || pg.Items[0].Kind != commerce.TimelineRefund || pg.Items[1].Kind != commerce.TimelineOrder {
			t.Fatalf("timeline %+v", pg.Items)
		}
		if pg.Items[1].Title != "order tmall:TL-1 partially_refunded ¥128.00" || pg.Items[0].Title != "refund tmall:TL-1 ¥28.00" {
			t.Fatalf("titles %q / %q", pg.Items[1].Title, pg.Items[0].Title)
		}
		// Entries at or before a time only.
		es, err := e.svc.TimelineEntries(ctx, e.a, cid, paidAt.Add(time.Minute), 10)
		if err != nil || len(es) != 1 || es[0].Kind != commerce.TimelineOrder {
			t.Fatalf("entries before the refund: %+v %v", es, err)
		}
	})
}

func TestYuan(t *testing.T) {
	t.Parallel()
	for fen, want := range map[int64]string{0: "¥0.00", 5: "¥0.05", 12800: "¥128.00", 199: "¥1.99", -250: "-¥2.50"} {
		if got := commerce.Yuan(fen); got != want {
			t.Errorf("Yuan(%d) = %q, want %q", fen, got, want)
		}
	}
}

// Spends answers a page of customers at once, as Spend would one by one,
// and only for the workspace asked about.
func TestSpendsOfSeveralCustomers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		c1, c2, c3 := e.newCustomer(t, e.a, "甲"), e.newCustomer(t, e.a, "乙"), e.newCustomer(t, e.a, "丙")
		other := e.newCustomer(t, e.b, "丁")
		at := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
		e.upsert(t, e.a, paidOrder("S1", c1, at))
		e.upsert(t, e.a, paidOrder("S2", c1, at.Add(time.Minute)))
		e.upsert(t, e.a, paidOrder("S3", c2, at))
		e.upsert(t, e.b, paidOrder("S4", other, at))
		got, err := e.svc.Spends(ctx, e.a, []int64{c1, c2, c3, other})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("spends of %d customers, want 2: %+v", len(got), got)
		}
		for _, id := range []int64{c1, c2} {
			if want := e.spend(t, e.a, id); got[id] != want {
				t.Fatalf("customer %d: Spends %+v, Spend %+v", id, got[id], want)
			}
		}
		if none, err := e.svc.Spends(ctx, e.a, nil); err != nil || len(none) != 0 {
			t.Fatalf("no ids: %v, %v", none, err)
		}
	})
}
