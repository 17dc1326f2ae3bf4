package acquire

import (
	"context"
	"fmt"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// CodeDay is one day of a code's statistics (or of all codes).
type CodeDay struct {
	Day         string `json:"day" doc:"YYYY-MM-DD in the workspace's time zone."`
	Adds        int64  `json:"adds" doc:"Customers added through the code."`
	Deletions   int64  `json:"deletions" doc:"Customers the code brought who deleted, or were deleted by, their staff member."`
	Net         int64  `json:"net" doc:"adds − deletions."`
	FirstOrders int64  `json:"first_orders" doc:"Customers the code brought who placed their first order after it that day."`
	SpendFen    int64  `json:"spend_fen" doc:"What customers the code brought paid that day (after refunds), in fen."`
}

// CodeStats are a code's statistics by day.
type CodeStats struct {
	CodeID int64     `json:"code_id" doc:"0: all codes."`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Days   []CodeDay `json:"days"`
	Total  CodeDay   `json:"total" doc:"The sums over the range (day is empty)."`
}

// MaxStatDays is the longest range Stats covers.
const MaxStatDays = 366

// Stats counts a code's adds, deletions, first orders and spend per day
// from one date to another (YYYY-MM-DD, inclusive, workspace time zone;
// empty: the last 30 days). codeID 0 counts every code. A customer's
// orders count for the code that first brought them, from that add on.
func (s *Service) Stats(ctx context.Context, tenantID, codeID int64, from, to string) (CodeStats, error) {
	if codeID != 0 {
		if _, err := s.code(ctx, s.db, tenantID, codeID, false); err != nil {
			return CodeStats{}, err
		}
	}
	ws, err := s.tenant.Workspace(ctx, tenantID)
	if err != nil {
		return CodeStats{}, err
	}
	loc := ws.Location()
	today := dayStart(s.now(), loc)
	start, end := today.AddDate(0, 0, -29), today
	if from != "" {
		if start, err = time.ParseInLocation(time.DateOnly, from, loc); err != nil {
			return CodeStats{}, errs.Field("from", "invalid_date", "from must be a date YYYY-MM-DD, not %q", from)
		}
	}
	if to != "" {
		if end, err = time.ParseInLocation(time.DateOnly, to, loc); err != nil {
			return CodeStats{}, errs.Field("to", "invalid_date", "to must be a date YYYY-MM-DD, not %q", to)
		}
	}
	if end.Before(start) {
		return CodeStats{}, errs.Field("to", "invalid_range", "to (%s) is before from (%s)", end.Format(time.DateOnly), start.Format(time.DateOnly))
	}
	var days []CodeDay
	index := map[string]int{}
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		if len(days) == MaxStatDays {
			return CodeStats{}, errs.Field("from", "range_too_long", "statistics cover at most %d days", MaxStatDays)
		}
		index[d.Format(time.DateOnly)] = len(days)
		days = append(days, CodeDay{Day: d.Format(time.DateOnly)})
	}
	lo, hi := db.Millis(start), db.Millis(end.AddDate(0, 0, 1))
	bucket := func(ms int64) *CodeDay {
		if i, ok := index[db.FromMillis(ms).In(loc).Format(time.DateOnly)]; ok {
			return &days[i]
		}
		return nil
	}
	codeCond, args := "", []any{tenantID, lo, hi}
	if codeID != 0 {
		codeCond = " AND code_id = $4"
		args = append(args, codeID)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT kind, at FROM acquire_events WHERE tenant_id = $1 AND at >= $2 AND at < $3`+codeCond, args...)
	if err != nil {
		return CodeStats{}, fmt.Errorf("acquire: unable to read adds: %w", err)
	}
	for rows.Next() {
		var kind string
		var at int64
		if err := rows.Scan(&kind, &at); err != nil {
			rows.Close()
			return CodeStats{}, fmt.Errorf("acquire: unable to read adds: %w", err)
		}
		if d := bucket(at); d != nil {
			if kind == "add" {
				d.Adds++
			} else {
				d.Deletions++
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return CodeStats{}, fmt.Errorf("acquire: unable to read adds: %w", err)
	}
	ac := ""
	if codeID != 0 {
		ac = " AND ac.code_id = $4"
	}
	// Spend: orders of the brought customers placed in the range, after the add.
	rows, err = s.db.QueryContext(ctx, `SELECT o.ordered_at, o.paid_fen - o.refunded_fen FROM orders o
		JOIN acquire_customers ac ON ac.tenant_id = o.tenant_id AND ac.customer_id = o.customer_id
		WHERE o.tenant_id = $1 AND o.ordered_at >= $2 AND o.ordered_at < $3 AND o.ordered_at >= ac.added_at
		AND o.status IN ('paid', 'partially_refunded', 'refunded')`+ac, args...)
	if err != nil {
		return CodeStats{}, fmt.Errorf("acquire: unable to read orders: %w", err)
	}
	for rows.Next() {
		var at, fen int64
		if err := rows.Scan(&at, &fen); err != nil {
			rows.Close()
			return CodeStats{}, fmt.Errorf("acquire: unable to read orders: %w", err)
		}
		if d := bucket(at); d != nil {
			d.SpendFen += fen
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return CodeStats{}, fmt.Errorf("acquire: unable to read orders: %w", err)
	}
	// First orders: each brought customer's first paid order after the add.
	rows, err = s.db.QueryContext(ctx, `SELECT first FROM (SELECT min(o.ordered_at) AS first FROM orders o
		JOIN acquire_customers ac ON ac.tenant_id = o.tenant_id AND ac.customer_id = o.customer_id
		WHERE o.tenant_id = $1 AND o.ordered_at >= ac.added_at AND o.status IN ('paid', 'partially_refunded', 'refunded')`+ac+`
		GROUP BY o.customer_id) f WHERE first >= $2 AND first < $3`, args...)
	if err != nil {
		return CodeStats{}, fmt.Errorf("acquire: unable to read first orders: %w", err)
	}
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			rows.Close()
			return CodeStats{}, fmt.Errorf("acquire: unable to read first orders: %w", err)
		}
		if d := bucket(at); d != nil {
			d.FirstOrders++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return CodeStats{}, fmt.Errorf("acquire: unable to read first orders: %w", err)
	}
	out := CodeStats{CodeID: codeID, From: start.Format(time.DateOnly), To: end.Format(time.DateOnly), Days: days}
	for i := range days {
		d := &days[i]
		d.Net = d.Adds - d.Deletions
		out.Total.Adds += d.Adds
		out.Total.Deletions += d.Deletions
		out.Total.Net += d.Net
		out.Total.FirstOrders += d.FirstOrders
		out.Total.SpendFen += d.SpendFen
	}
	return out, nil
}
