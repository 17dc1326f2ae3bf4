package commerce

import (
	"context"
	"fmt"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// OrderMetric names what OrderValues sums.
type OrderMetric string

// Metrics of OrderValues.
const (
	MetricSpend OrderMetric = "spend" // paid minus refunded, in fen
	MetricCount OrderMetric = "count" // paid orders
)

// OrderValueQuery selects paid orders for OrderValues.
type OrderValueQuery struct {
	Metric   OrderMetric // spend or count; with SKU or Category: orders containing it
	SKU      string
	Category string
	From, To time.Time // paid_at window; zero: unbounded
}

// OrderValues returns, for each customer with matching paid orders, their
// spend (fen, net of refunds) or number of orders. Audiences use it for
// conditions the index does not hold (spend in the last 90 days, bought
// product X).
func (s *Service) OrderValues(ctx context.Context, tenantID int64, q OrderValueQuery) (map[int64]int64, error) {
	where := `o.tenant_id = $1 AND o.status IN ('paid', 'partially_refunded', 'refunded')`
	args := []any{tenantID}
	if !q.From.IsZero() {
		args = append(args, db.Millis(q.From), db.Millis(q.To))
		where += fmt.Sprintf(` AND o.paid_at BETWEEN $%d AND $%d`, len(args)-1, len(args))
	}
	var query string
	switch {
	case q.SKU != "" || q.Category != "":
		col, val := "sku", q.SKU
		if q.SKU == "" {
			col, val = "category", q.Category
		}
		args = append(args, val)
		query = fmt.Sprintf(`SELECT o.customer_id, count(*) FROM orders o WHERE %s AND EXISTS (
			SELECT 1 FROM order_items i WHERE i.order_row_id = o.id AND i.tenant_id = o.tenant_id AND i.%s = $%d) GROUP BY o.customer_id`, where, col, len(args))
	case q.Metric == MetricCount:
		query = `SELECT o.customer_id, count(*) FROM orders o WHERE ` + where + ` GROUP BY o.customer_id`
	default:
		query = `SELECT o.customer_id, sum(o.paid_fen - o.refunded_fen) FROM orders o WHERE ` + where + ` GROUP BY o.customer_id`
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("commerce: unable to sum orders: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}
