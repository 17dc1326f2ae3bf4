package event

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// CountInteractions counts, for each of the given customers, the behaviour
// events (track, page and screen messages; identify, group and alias only
// describe the customer) they performed since each of the given times: the
// engagement the fan tiers are defined by. Only events named in names count
// when names is not empty. The result maps a customer to one count per time,
// in the order given; customers without any such event are absent.
func (s *Service) CountInteractions(ctx context.Context, tenantID int64, customerIDs []int64, names []string, since ...time.Time) (map[int64][]int64, error) {
	out := map[int64][]int64{}
	if len(since) == 0 {
		return out, nil
	}
	earliest := since[0]
	for _, t := range since[1:] {
		if t.Before(earliest) {
			earliest = t
		}
	}
	for len(customerIDs) > 0 {
		ids := customerIDs[:min(len(customerIDs), 500)]
		customerIDs = customerIDs[len(ids):]
		args := []any{tenantID, db.Millis(earliest)}
		var q strings.Builder
		q.WriteString(`SELECT customer_id`)
		for _, t := range since {
			args = append(args, db.Millis(t))
			fmt.Fprintf(&q, `, SUM(CASE WHEN timestamp >= $%d THEN 1 ELSE 0 END)`, len(args))
		}
		q.WriteString(` FROM events WHERE tenant_id = $1 AND timestamp >= $2 AND type IN ('track', 'page', 'screen') AND customer_id IN (`)
		for i, id := range ids {
			if i > 0 {
				q.WriteString(", ")
			}
			args = append(args, id)
			fmt.Fprintf(&q, "$%d", len(args))
		}
		q.WriteString(")")
		if len(names) > 0 {
			q.WriteString(" AND name IN (")
			for i, n := range names {
				if i > 0 {
					q.WriteString(", ")
				}
				args = append(args, n)
				fmt.Fprintf(&q, "$%d", len(args))
			}
			q.WriteString(")")
		}
		q.WriteString(" GROUP BY customer_id")
		rows, err := s.db.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return nil, fmt.Errorf("event: unable to count interactions: %w", err)
		}
		for rows.Next() {
			var id int64
			counts := make([]int64, len(since))
			dest := []any{&id}
			for i := range counts {
				dest = append(dest, &counts[i])
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("event: unable to count interactions: %w", err)
			}
			out[id] = counts
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("event: unable to count interactions: %w", err)
		}
	}
	return out, nil
}
