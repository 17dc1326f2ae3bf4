package tag

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// ChangedSince returns the customers whose tags were added or removed at or
// after since, from the tag history (the audience index follows it).
func (s *Service) ChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT customer_id FROM tag_history WHERE tenant_id = $1 AND at >= $2`, tenantID, db.Millis(since))
	if err != nil {
		return nil, fmt.Errorf("tag: unable to read tag changes: %w", err)
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

// TagIDsOf returns the tag ids each of the given customers holds now
// (customers without tags are absent).
func (s *Service) TagIDsOf(ctx context.Context, tenantID int64, ids []int64) (map[int64][]int64, error) {
	out := map[int64][]int64{}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := []any{tenantID}
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args = append(args, id)
			ph[i] = fmt.Sprintf("$%d", i+2)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT customer_id, tag_id FROM customer_tags WHERE tenant_id = $1 AND customer_id IN (`+strings.Join(ph, ",")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("tag: unable to read tags: %w", err)
		}
		for rows.Next() {
			var c, t int64
			if err := rows.Scan(&c, &t); err != nil {
				rows.Close()
				return nil, err
			}
			out[c] = append(out[c], t)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
