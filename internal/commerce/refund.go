package commerce

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Refund is money returned on a paid order.
type Refund struct {
	RefundID   string    `json:"refund_id" doc:"The source system's refund id; unique per order."`
	AmountFen  int64     `json:"amount_fen" doc:"Amount refunded, in fen (分, 100 fen = ¥1)."`
	Reason     string    `json:"reason"`
	RefundedAt time.Time `json:"refunded_at"`
	CreatedAt  time.Time `json:"created_at" doc:"When Siyu recorded the refund."`
}

// RefundInput is the input to AddRefund.
type RefundInput struct {
	RefundID   string
	AmountFen  int64
	Reason     string
	RefundedAt time.Time // zero: now
}

// RefundResult is the outcome of AddRefund.
type RefundResult struct {
	Order   Order
	Created bool // false when the refund was already recorded
}

// AddRefund records a refund of a paid order, moves the order to
// partially_refunded or refunded, and lowers the customer's spend, in one
// transaction. It is idempotent by refund id: the same refund again changes
// nothing; the same id with another amount is a Conflict (refund_id_reused).
// The refunds of an order never exceed what was paid (refund_exceeds_paid).
func (s *Service) AddRefund(ctx context.Context, tenantID int64, src Source, orderID string, in RefundInput) (RefundResult, error) {
	var err error
	if in.RefundID, err = key("refund_id", "invalid_refund_id", in.RefundID); err != nil {
		return RefundResult{}, err
	}
	if in.AmountFen <= 0 {
		return RefundResult{}, errs.Field("amount_fen", "invalid_amount", "amount_fen must be a positive number of fen")
	}
	if err := amount("amount_fen", in.AmountFen, MaxOrderFen); err != nil {
		return RefundResult{}, err
	}
	if in.Reason, err = text("reason", in.Reason, 500, false); err != nil {
		return RefundResult{}, err
	}
	if in.RefundedAt, err = s.instant("refunded_at", in.RefundedAt); err != nil {
		return RefundResult{}, err
	}
	now := s.now().UTC()
	if in.RefundedAt.IsZero() {
		in.RefundedAt = now
	}
	var res RefundResult
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		rowID, o, err := s.lockOrder(ctx, tx, tenantID, src, orderID)
		if err != nil {
			return err
		}
		if rowID == 0 {
			return errs.NotFoundf("order", "no %s order has id %q", src, orderID)
		}
		var had int64
		err = tx.QueryRowContext(ctx, `SELECT amount_fen FROM refunds WHERE tenant_id = $1 AND order_row_id = $2 AND refund_id = $3`,
			tenantID, rowID, in.RefundID).Scan(&had)
		switch {
		case err == nil && had == in.AmountFen:
			return nil
		case err == nil:
			return errs.E(errs.Conflict, "refund_id_reused", "refund %q of order %s/%s was recorded with %d fen, not %d",
				in.RefundID, src, orderID, had, in.AmountFen)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("commerce: unable to look up refund %q: %w", in.RefundID, err)
		}
		if !o.status.WasPaid() {
			return errs.E(errs.Conflict, "order_not_paid", "order %s/%s is %s: only a paid order can be refunded", src, orderID, o.status)
		}
		if o.refunded+in.AmountFen > o.paid {
			return errs.E(errs.Conflict, "refund_exceeds_paid", "refunding %d fen would bring order %s/%s to %d fen refunded, more than the %d fen paid",
				in.AmountFen, src, orderID, o.refunded+in.AmountFen, o.paid)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO refunds (tenant_id, order_row_id, refund_id, amount_fen, reason, refunded_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			tenantID, rowID, in.RefundID, in.AmountFen, in.Reason, db.Millis(in.RefundedAt), db.Millis(now)); err != nil {
			return fmt.Errorf("commerce: unable to insert refund %q: %w", in.RefundID, err)
		}
		refunded := o.refunded + in.AmountFen
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET refunded_fen = $3, status = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2`,
			tenantID, rowID, refunded, string(deriveStatus(Paid, o.paid, refunded)), db.Millis(now)); err != nil {
			return fmt.Errorf("commerce: unable to update order %s/%s: %w", src, orderID, err)
		}
		res.Created = true
		return s.refreshSpend(ctx, tx, tenantID, o.customerID)
	})
	if err != nil {
		return RefundResult{}, err
	}
	if res.Created {
		s.log.DebugContext(ctx, "refund recorded", "tenant", tenantID, "source", src, "order", orderID, "refund", in.RefundID, "amount_fen", in.AmountFen)
	}
	res.Order, err = s.Order(ctx, tenantID, src, orderID)
	if err == nil && res.Created {
		s.obs.notify(OrderActivity{Kind: OrderRefunded, TenantID: tenantID, CustomerID: res.Order.CustomerID, Order: res.Order,
			RefundFen: in.AmountFen, At: in.RefundedAt})
	}
	return res, err
}

// refunds returns the refunds of the given orders by order row id, oldest first.
func (s *Service) refunds(ctx context.Context, q db.Querier, tenantID int64, ids []int64) (map[int64][]Refund, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT order_row_id, refund_id, amount_fen, reason, refunded_at, created_at FROM refunds
		 WHERE tenant_id = $1 AND order_row_id IN (`+placeholders(2, len(ids))+`) ORDER BY order_row_id, refunded_at, id`, idArgs(tenantID, ids)...)
	if err != nil {
		return nil, fmt.Errorf("commerce: unable to list refunds: %w", err)
	}
	defer rows.Close()
	out := map[int64][]Refund{}
	for rows.Next() {
		var id, at, created int64
		var r Refund
		if err := rows.Scan(&id, &r.RefundID, &r.AmountFen, &r.Reason, &at, &created); err != nil {
			return nil, fmt.Errorf("commerce: unable to read refund: %w", err)
		}
		r.RefundedAt, r.CreatedAt = db.FromMillis(at), db.FromMillis(created)
		out[id] = append(out[id], r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("commerce: unable to list refunds: %w", err)
	}
	return out, nil
}
