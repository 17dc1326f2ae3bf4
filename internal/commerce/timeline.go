package commerce

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
)

var _ customer.TimelineSource = (*Service)(nil)

// Timeline entry kinds commerce contributes.
const (
	TimelineOrder  = "order"
	TimelineRefund = "refund"
)

// Yuan formats fen as yuan for people: 12800 → "¥128.00".
func Yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s¥%d.%02d", sign, fen/100, fen%100)
}

// TimelineEntries returns up to limit order and refund entries of a customer
// at or before the given time (zero: now), newest first: an order at its
// ordered_at, a refund at its refunded_at. It makes commerce a
// customer.TimelineSource.
func (s *Service) TimelineEntries(ctx context.Context, tenantID, customerID int64, before time.Time, limit int) ([]customer.TimelineEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	bound := int64(1<<63 - 1)
	if !before.IsZero() {
		bound = db.Millis(before)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+orderCols+` FROM orders WHERE tenant_id = $1 AND customer_id = $2 AND ordered_at <= $3`+
		fmt.Sprintf(` ORDER BY ordered_at DESC, id DESC LIMIT %d`, limit), tenantID, customerID, bound)
	if err != nil {
		return nil, fmt.Errorf("commerce: unable to list timeline orders: %w", err)
	}
	var orders []Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("commerce: unable to read order: %w", err)
		}
		orders = append(orders, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("commerce: unable to list timeline orders: %w", err)
	}
	if len(orders) > 0 {
		ids := make([]int64, len(orders))
		for i, o := range orders {
			ids[i] = o.ID
		}
		items, err := s.items(ctx, s.db, tenantID, ids)
		if err != nil {
			return nil, err
		}
		for i := range orders {
			orders[i].Items = items[orders[i].ID]
		}
	}
	out := make([]customer.TimelineEntry, 0, len(orders))
	for _, o := range orders {
		skus := make([]string, 0, len(o.Items))
		for _, it := range o.Items {
			skus = append(skus, it.SKU)
		}
		out = append(out, customer.TimelineEntry{
			At: o.OrderedAt, Kind: TimelineOrder, ID: string(o.Source) + ":" + o.OrderID,
			Title: fmt.Sprintf("order %s:%s %s %s", o.Source, o.OrderID, o.Status, Yuan(o.PaidFen)),
			Detail: map[string]any{
				"source": o.Source, "order_id": o.OrderID, "status": o.Status, "total_fen": o.TotalFen, "discount_fen": o.DiscountFen,
				"paid_fen": o.PaidFen, "refunded_fen": o.RefundedFen, "store_code": o.StoreCode, "coupon_code": o.CouponCode,
				"item_count": len(o.Items), "skus": skus,
			},
		})
	}

	rows, err = s.db.QueryContext(ctx,
		`SELECT o.source, o.order_id, r.refund_id, r.amount_fen, r.reason, r.refunded_at
		 FROM refunds r JOIN orders o ON o.id = r.order_row_id
		 WHERE o.tenant_id = $1 AND o.customer_id = $2 AND r.tenant_id = $1 AND r.refunded_at <= $3`+
			fmt.Sprintf(` ORDER BY r.refunded_at DESC, r.id DESC LIMIT %d`, limit), tenantID, customerID, bound)
	if err != nil {
		return nil, fmt.Errorf("commerce: unable to list timeline refunds: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var src, orderID, refundID, reason string
		var amountFen, at int64
		if err := rows.Scan(&src, &orderID, &refundID, &amountFen, &reason, &at); err != nil {
			return nil, fmt.Errorf("commerce: unable to read refund: %w", err)
		}
		out = append(out, customer.TimelineEntry{
			At: db.FromMillis(at), Kind: TimelineRefund, ID: src + ":" + orderID + ":" + refundID,
			Title:  fmt.Sprintf("refund %s:%s %s", src, orderID, Yuan(amountFen)),
			Detail: map[string]any{"source": src, "order_id": orderID, "refund_id": refundID, "amount_fen": amountFen, "reason": reason},
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("commerce: unable to list timeline refunds: %w", err)
	}
	slices.SortStableFunc(out, func(a, b customer.TimelineEntry) int { return b.At.Compare(a.At) })
	return out[:min(len(out), limit)], nil
}
