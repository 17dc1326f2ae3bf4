package commerce_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
)

func TestRefunds(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		cid := e.newCustomer(t, e.a, "退款客")
		paidAt := time.Now().Add(-2 * time.Hour)
		in := paidOrder("R-1", cid, paidAt) // paid 12800
		e.upsert(t, e.a, in)
		refund := func(id string, fen int64) (commerce.RefundResult, error) {
			return e.svc.AddRefund(ctx, e.a, commerce.SourceTmall, "R-1", commerce.RefundInput{RefundID: id, AmountFen: fen, Reason: "破损", RefundedAt: time.Now().Add(-time.Hour)})
		}

		// Partial.
		res, err := refund("RF-1", 5900)
		if err != nil || !res.Created || res.Order.Status != commerce.PartiallyRefunded || res.Order.RefundedFen != 5900 || len(res.Order.Refunds) != 1 {
			t.Fatalf("partial refund: %+v %v", res, err)
		}
		if sp := e.spend(t, e.a, cid); sp.PaidFen != 12800 || sp.RefundedFen != 5900 || sp.NetFen != 6900 || sp.OrderCount != 1 || sp.RefundedOrderCount != 0 {
			t.Fatalf("spend after partial refund: %+v", sp)
		}
		// Idempotent by refund id; the same id with another amount conflicts.
		before := e.counts(t)
		res, err = refund("RF-1", 5900)
		if err != nil || res.Created || res.Order.RefundedFen != 5900 {
			t.Fatalf("repeated refund: %+v %v", res, err)
		}
		_, err = refund("RF-1", 100)
		expectCode(t, err, "refund_id_reused")
		// More than what is left is rejected.
		_, err = refund("RF-2", 6901)
		expectCode(t, err, "refund_exceeds_paid")
		if after := e.counts(t); !maps.Equal(before, after) {
			t.Fatalf("rejected refunds wrote rows: %v → %v", before, after)
		}
		for _, bad := range []int64{0, -100} {
			_, err = refund("RF-bad", bad)
			expectCode(t, err, "invalid_amount")
		}

		// Re-sending the order as paid keeps the refund state; sending back the
		// status it has is the same order; lowering paid below refunded is refused.
		if o := e.upsert(t, e.a, in).Order; o.Status != commerce.PartiallyRefunded || o.RefundedFen != 5900 {
			t.Fatalf("re-sent paid order: %+v", o)
		}
		back := in
		back.Status = commerce.PartiallyRefunded
		if res := e.upsert(t, e.a, back); res.Changed {
			t.Fatal("sending back the order's own status changed it")
		}
		lower := in
		lower.DiscountFen = 10000 // paid 4800 < refunded 5900
		_, err = e.svc.UpsertOrder(ctx, e.a, lower)
		expectCode(t, err, "refund_exceeds_paid")

		// The rest: refunded in full.
		res, err = refund("RF-2", 6900)
		if err != nil || res.Order.Status != commerce.Refunded || res.Order.RefundedFen != 12800 || len(res.Order.Refunds) != 2 {
			t.Fatalf("full refund: %+v %v", res.Order, err)
		}
		if sp := e.spend(t, e.a, cid); sp.NetFen != 0 || sp.RefundedFen != 12800 || sp.OrderCount != 1 || sp.RefundedOrderCount != 1 {
			t.Fatalf("spend after full refund: %+v", sp)
		}
		_, err = refund("RF-3", 1)
		expectCode(t, err, "refund_exceeds_paid")
		// A refunded order cannot be paid again or cancelled by an upsert.
		cancel := in
		cancel.Status = commerce.Cancelled
		_, err = e.svc.UpsertOrder(ctx, e.a, cancel)
		expectCode(t, err, "invalid_status_transition")
	})
}

func TestRefundNeedsAPaidOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		cid := e.newCustomer(t, e.a, "未付")
		in := paidOrder("P-1", cid, time.Time{})
		in.Status = commerce.Pending
		e.upsert(t, e.a, in)
		_, err := e.svc.AddRefund(ctx, e.a, commerce.SourceTmall, "P-1", commerce.RefundInput{RefundID: "R", AmountFen: 100})
		expectCode(t, err, "order_not_paid")
		_, err = e.svc.AddRefund(ctx, e.a, commerce.SourceTmall, "NOPE", commerce.RefundInput{RefundID: "R", AmountFen: 100})
		expectCode(t, err, "order_not_found")
		if n := e.counts(t)["refunds"]; n != 0 {
			t.Fatalf("%d refunds written", n)
		}
	})
}
