package customer

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// Seen is when a live profile was first and last seen: what the computed
// attributes (lifecycle stage, fan tier) read of a profile.
type Seen struct {
	ID          int64
	FirstSeenAt time.Time
	LastSeenAt  time.Time
}

// SeenPage returns up to limit live profiles with an id above afterID, in id
// order; a caller pages through a workspace by passing the last id back.
func (s *Service) SeenPage(ctx context.Context, tenantID, afterID int64, limit int) ([]Seen, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, first_seen_at, last_seen_at FROM customers
		 WHERE tenant_id = $1 AND id > $2 AND merged_into IS NULL ORDER BY id LIMIT $3`, tenantID, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("customer: unable to page profiles: %w", err)
	}
	return scanSeen(rows)
}

// SeenOf returns the live profiles among ids, in id order; merged and
// unknown ids are left out.
func (s *Service) SeenOf(ctx context.Context, tenantID int64, ids []int64) ([]Seen, error) {
	var out []Seen
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, tenantID)
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args = append(args, id)
			ph[i] = fmt.Sprintf("$%d", i+2)
		}
		rows, err := s.db.QueryContext(ctx,
			`SELECT id, first_seen_at, last_seen_at FROM customers
			 WHERE tenant_id = $1 AND merged_into IS NULL AND id IN (`+strings.Join(ph, ", ")+`) ORDER BY id`, args...)
		if err != nil {
			return nil, fmt.Errorf("customer: unable to read profiles: %w", err)
		}
		seen, err := scanSeen(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, seen...)
	}
	return out, nil
}

func scanSeen(rows *sql.Rows) ([]Seen, error) {
	defer rows.Close()
	var out []Seen
	for rows.Next() {
		var r Seen
		var first, last int64
		if err := rows.Scan(&r.ID, &first, &last); err != nil {
			return nil, fmt.Errorf("customer: unable to read profile: %w", err)
		}
		r.FirstSeenAt, r.LastSeenAt = db.FromMillis(first), db.FromMillis(last)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("customer: unable to read profiles: %w", err)
	}
	return out, nil
}
