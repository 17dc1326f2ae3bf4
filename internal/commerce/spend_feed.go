package commerce

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// EachSpend streams every customer's spend in the workspace, in customer-id
// order and in pages (the audience index's rebuild).
func (s *Service) EachSpend(ctx context.Context, tenantID int64, fn func(Spend) error) error {
	var after int64
	for {
		rows, err := s.db.QueryContext(ctx,
			`SELECT customer_id, order_count, refunded_order_count, paid_fen, refunded_fen, first_order_at, last_order_at
			 FROM customer_spend WHERE tenant_id = $1 AND customer_id > $2 ORDER BY customer_id LIMIT 5000`, tenantID, after)
		if err != nil {
			return fmt.Errorf("commerce: unable to scan spend: %w", err)
		}
		n := 0
		for rows.Next() {
			var sp Spend
			var first, last sql.NullInt64
			if err := rows.Scan(&sp.CustomerID, &sp.OrderCount, &sp.RefundedOrderCount, &sp.PaidFen, &sp.RefundedFen, &first, &last); err != nil {
				rows.Close()
				return fmt.Errorf("commerce: unable to read spend: %w", err)
			}
			sp.NetFen = sp.PaidFen - sp.RefundedFen
			sp.FirstOrderAt, sp.LastOrderAt = db.NullMillis(first), db.NullMillis(last)
			if err := fn(sp); err != nil {
				rows.Close()
				return err
			}
			after = sp.CustomerID
			n++
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("commerce: unable to scan spend: %w", err)
		}
		if n < 5000 {
			return nil
		}
	}
}

// SpendChangedSince returns the customers whose spend row was written at or
// after since (the audience index follows it).
func (s *Service) SpendChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT customer_id FROM customer_spend WHERE tenant_id = $1 AND updated_at >= $2`, tenantID, db.Millis(since))
	if err != nil {
		return nil, fmt.Errorf("commerce: unable to read spend changes: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
