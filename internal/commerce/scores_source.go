package commerce

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// Bulk reads for the computed attributes (analytics): RFM needs every
// customer's spend at once, the lifecycle stage how widely a customer buys.

// ScanSpend calls fn with every spend row of the workspace in customer id
// order. It reads in pages, so no query stays open for long and fn may run
// other queries.
func (s *Service) ScanSpend(ctx context.Context, tenantID int64, fn func(Spend) error) error {
	const pageSize = 5000
	var after int64
	for {
		rows, err := s.db.QueryContext(ctx,
			`SELECT customer_id, order_count, refunded_order_count, paid_fen, refunded_fen, first_order_at, last_order_at
			 FROM customer_spend WHERE tenant_id = $1 AND customer_id > $2 ORDER BY customer_id LIMIT $3`, tenantID, after, pageSize)
		if err != nil {
			return fmt.Errorf("commerce: unable to scan spend: %w", err)
		}
		var page []Spend
		for rows.Next() {
			var sp Spend
			var first, last sql.NullInt64
			if err := rows.Scan(&sp.CustomerID, &sp.OrderCount, &sp.RefundedOrderCount, &sp.PaidFen, &sp.RefundedFen, &first, &last); err != nil {
				rows.Close()
				return fmt.Errorf("commerce: unable to read spend: %w", err)
			}
			sp.NetFen = sp.PaidFen - sp.RefundedFen
			sp.FirstOrderAt, sp.LastOrderAt = db.NullMillis(first), db.NullMillis(last)
			page = append(page, sp)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("commerce: unable to scan spend: %w", err)
		}
		for _, sp := range page {
			if err := fn(sp); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = page[len(page)-1].CustomerID
	}
}

// SpendUpdatedSince returns the customers whose spend row was written at or
// after since, in id order.
func (s *Service) SpendUpdatedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT customer_id FROM customer_spend WHERE tenant_id = $1 AND updated_at >= $2 ORDER BY customer_id`, tenantID, db.Millis(since))
	if err != nil {
		return nil, fmt.Errorf("commerce: unable to read spend changes: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("commerce: unable to read spend changes: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("commerce: unable to read spend changes: %w", err)
	}
	return out, nil
}

// CategoryCounts returns, for each of the given customers who bought any,
// how many distinct product categories they bought in orders they kept
// (paid or partially refunded; items without a category are not counted).
func (s *Service) CategoryCounts(ctx context.Context, tenantID int64, customerIDs []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	for len(customerIDs) > 0 {
		ids := customerIDs[:min(len(customerIDs), 500)]
		customerIDs = customerIDs[len(ids):]
		rows, err := s.db.QueryContext(ctx,
			`SELECT o.customer_id, COUNT(DISTINCT i.category)
			 FROM orders o JOIN order_items i ON i.order_row_id = o.id
			 WHERE o.tenant_id = $1 AND o.customer_id IN (`+placeholders(2, len(ids))+`)
			   AND o.status IN ('paid', 'partially_refunded') AND i.category <> ''
			 GROUP BY o.customer_id`, idArgs(tenantID, ids)...)
		if err != nil {
			return nil, fmt.Errorf("commerce: unable to count categories: %w", err)
		}
		for rows.Next() {
			var id, n int64
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("commerce: unable to count categories: %w", err)
			}
			out[id] = n
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("commerce: unable to count categories: %w", err)
		}
	}
	return out, nil
}
