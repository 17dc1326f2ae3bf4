package event

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// EventCounts counts, per customer, the processed events named name in
// [from, to] (zero times: unbounded) whose properties pass keep (nil: all).
// Audiences use it for "performed E at least N times" and property filters.
func (s *Service) EventCounts(ctx context.Context, tenantID int64, name string, from, to time.Time, keep func(props map[string]any) bool) (map[int64]int64, error) {
	q := `SELECT customer_id, properties FROM events WHERE tenant_id = $1 AND name = $2 AND processed_at IS NOT NULL AND customer_id IS NOT NULL`
	args := []any{tenantID, name}
	if !from.IsZero() {
		q += ` AND timestamp BETWEEN $3 AND $4`
		args = append(args, db.Millis(from), db.Millis(to))
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("event: unable to count events: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id int64
		var props string
		if err := rows.Scan(&id, &props); err != nil {
			return nil, err
		}
		if keep != nil {
			var m map[string]any
			if err := json.Unmarshal([]byte(props), &m); err != nil {
				continue // stored as received; an unreadable document matches no filter
			}
			if !keep(m) {
				continue
			}
		}
		out[id]++
	}
	return out, rows.Err()
}

// EachEventTime streams (customer, event name, time) of processed events since
// a time: the audience index's rebuild.
func (s *Service) EachEventTime(ctx context.Context, tenantID int64, since time.Time, fn func(customerID int64, name string, at time.Time) error) error {
	// The rebuild reads most of the log: SQLite would otherwise walk the
	// processed-events index and look every row up in the table, several
	// times slower than reading the table through.
	from := `events`
	if s.db.Dialect == db.SQLite {
		from = `events NOT INDEXED`
	}
	return s.eventTimes(ctx, `SELECT customer_id, name, timestamp FROM `+from+`
		WHERE tenant_id = $1 AND processed_at IS NOT NULL AND customer_id IS NOT NULL AND name <> '' AND timestamp >= $2`, tenantID, since, fn)
}

// EventsProcessedSince streams the events processed at or after since: the
// audience index follows it.
func (s *Service) EventsProcessedSince(ctx context.Context, tenantID int64, since time.Time, fn func(customerID int64, name string, at time.Time) error) error {
	return s.eventTimes(ctx, `SELECT customer_id, name, timestamp FROM events
		WHERE tenant_id = $1 AND processed_at >= $2 AND customer_id IS NOT NULL AND name <> ''`, tenantID, since, fn)
}

func (s *Service) eventTimes(ctx context.Context, q string, tenantID int64, since time.Time, fn func(int64, string, time.Time) error) error {
	rows, err := s.db.QueryContext(ctx, q, tenantID, db.Millis(since))
	if err != nil {
		return fmt.Errorf("event: unable to read events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, at int64
		var name string
		if err := rows.Scan(&id, &name, &at); err != nil {
			return err
		}
		if err := fn(id, name, db.FromMillis(at)); err != nil {
			return err
		}
	}
	return rows.Err()
}
