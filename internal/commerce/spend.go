package commerce

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/page"
)

// Spend is what one customer has bought: the input to RFM and CLV. It counts
// orders that were paid (paid, partially_refunded, refunded); pending and
// cancelled orders are not spend.
type Spend struct {
	CustomerID         int64     `json:"customer_id"`
	OrderCount         int64     `json:"order_count" doc:"Orders paid, including those refunded since."`
	RefundedOrderCount int64     `json:"refunded_order_count" doc:"Orders refunded in full."`
	PaidFen            int64     `json:"paid_fen" doc:"Sum of paid_fen over the paid orders, in fen."`
	RefundedFen        int64     `json:"refunded_fen" doc:"Sum of their refunds, in fen."`
	NetFen             int64     `json:"net_fen" doc:"paid_fen − refunded_fen: what the customer spent and kept, in fen."`
	FirstOrderAt       time.Time `json:"first_order_at,omitzero" doc:"paid_at of the first paid order."`
	LastOrderAt        time.Time `json:"last_order_at,omitzero" doc:"paid_at of the latest paid order."`
}

// Spend returns a customer's spend; a customer without paid orders has a
// zero Spend.
func (s *Service) Spend(ctx context.Context, tenantID, customerID int64) (Spend, error) {
	sp := Spend{CustomerID: customerID}
	var first, last sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT order_count, refunded_order_count, paid_fen, refunded_fen, first_order_at, last_order_at
		 FROM customer_spend WHERE tenant_id = $1 AND customer_id = $2`, tenantID, customerID).
		Scan(&sp.OrderCount, &sp.RefundedOrderCount, &sp.PaidFen, &sp.RefundedFen, &first, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return sp, nil
	}
	if err != nil {
		return Spend{}, fmt.Errorf("commerce: unable to fetch spend of customer %d: %w", customerID, err)
	}
	sp.NetFen = sp.PaidFen - sp.RefundedFen
	sp.FirstOrderAt, sp.LastOrderAt = db.NullMillis(first), db.NullMillis(last)
	return sp, nil
}

// Spends returns the spend of several customers in one query (a page of the
// customer list), keyed by customer id; customers without paid orders are
// absent. At most page.MaxLimit ids are looked up at once.
func (s *Service) Spends(ctx context.Context, tenantID int64, customerIDs []int64) (map[int64]Spend, error) {
	out := map[int64]Spend{}
	for len(customerIDs) > 0 {
		ids := customerIDs[:min(len(customerIDs), page.MaxLimit)]
		customerIDs = customerIDs[len(ids):]
		rows, err := s.db.QueryContext(ctx,
			`SELECT customer_id, order_count, refunded_order_count, paid_fen, refunded_fen, first_order_at, last_order_at
			 FROM customer_spend WHERE tenant_id = $1 AND customer_id IN (`+placeholders(2, len(ids))+`)`, idArgs(tenantID, ids)...)
		if err != nil {
			return nil, fmt.Errorf("commerce: unable to fetch spends: %w", err)
		}
		for rows.Next() {
			var sp Spend
			var first, last sql.NullInt64
			if err := rows.Scan(&sp.CustomerID, &sp.OrderCount, &sp.RefundedOrderCount, &sp.PaidFen, &sp.RefundedFen, &first, &last); err != nil {
				rows.Close()
				return nil, fmt.Errorf("commerce: unable to read spend: %w", err)
			}
			sp.NetFen = sp.PaidFen - sp.RefundedFen
			sp.FirstOrderAt, sp.LastOrderAt = db.NullMillis(first), db.NullMillis(last)
			out[sp.CustomerID] = sp
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("commerce: unable to fetch spends: %w", err)
		}
	}
	return out, nil
}

// refreshSpend recomputes the spend rows of the given customers from their
// orders, inside the transaction that changed those orders. Each row is
// locked first (in id order, so two writers never deadlock); a writer that
// waited for the lock then reads the orders the other committed, so the
// last writer always leaves the sum of every committed order.
func (s *Service) refreshSpend(ctx context.Context, tx *sql.Tx, tenantID int64, customerIDs ...int64) error {
	ids := slices.Clone(customerIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	now := db.Millis(s.now())
	for _, id := range ids {
		// An upsert that touches the row takes its lock on PostgreSQL even
		// when the row exists; SQLite holds the database write lock already.
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO customer_spend (tenant_id, customer_id, updated_at) VALUES ($1, $2, $3)
			 ON CONFLICT (tenant_id, customer_id) DO UPDATE SET updated_at = excluded.updated_at`, tenantID, id, now); err != nil {
			return fmt.Errorf("commerce: unable to lock spend of customer %d: %w", id, err)
		}
	}
	for _, id := range ids {
		_, err := tx.ExecContext(ctx,
			`UPDATE customer_spend SET
			   order_count = agg.n, refunded_order_count = agg.refunded_n, paid_fen = agg.paid, refunded_fen = agg.refunded,
			   first_order_at = agg.first_at, last_order_at = agg.last_at, updated_at = $3
			 FROM (SELECT count(*) AS n,
			              COALESCE(SUM(CASE WHEN status = 'refunded' THEN 1 ELSE 0 END), 0) AS refunded_n,
			              COALESCE(SUM(paid_fen), 0) AS paid, COALESCE(SUM(refunded_fen), 0) AS refunded,
			              MIN(paid_at) AS first_at, MAX(paid_at) AS last_at
			       FROM orders WHERE tenant_id = $1 AND customer_id = $2 AND status IN ('paid', 'partially_refunded', 'refunded')) AS agg
			 WHERE customer_spend.tenant_id = $1 AND customer_spend.customer_id = $2`, tenantID, id, now)
		if err != nil {
			return fmt.Errorf("commerce: unable to compute spend of customer %d: %w", id, err)
		}
	}
	return nil
}

// MoveCustomer reassigns every order of fromID to toID and recomputes the
// survivor's spend, inside the caller's transaction: the One ID merge hook
// for orders (customer.Service.OnMerge("orders", commerce.MoveCustomer)).
func (s *Service) MoveCustomer(ctx context.Context, tx *sql.Tx, tenantID, fromID, toID int64) error {
	if fromID == toID {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE orders SET customer_id = $3, updated_at = $4 WHERE tenant_id = $1 AND customer_id = $2`,
		tenantID, fromID, toID, db.Millis(s.now())); err != nil {
		return fmt.Errorf("commerce: unable to move orders of customer %d to %d: %w", fromID, toID, err)
	}
	if err := s.refreshSpend(ctx, tx, tenantID, fromID, toID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM customer_spend WHERE tenant_id = $1 AND customer_id = $2`, tenantID, fromID); err != nil {
		return fmt.Errorf("commerce: unable to drop spend of merged customer %d: %w", fromID, err)
	}
	return nil
}
