package commerce

import (
	"context"
	"fmt"
)

// Bulk reads for the computed attributes (analytics): the lifecycle stage
// asks how widely a customer buys.

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
