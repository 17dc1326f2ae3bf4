package event

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
)

var _ customer.TimelineSource = (*Service)(nil)

// TimelineEntries returns a customer's events at or before the given time
// (zero: any), newest first; it makes the event log a customer.TimelineSource.
func (s *Service) TimelineEntries(ctx context.Context, tenantID, customerID int64, before time.Time, limit int) ([]customer.TimelineEntry, error) {
	q := `SELECT id, message_id, type, name, user_id, anonymous_id, previous_id, group_id, timestamp, properties, traits
	      FROM events WHERE tenant_id = $1 AND customer_id = $2`
	args := []any{tenantID, customerID}
	if !before.IsZero() {
		q += ` AND timestamp <= $3`
		args = append(args, db.Millis(before))
	}
	q += fmt.Sprintf(` ORDER BY timestamp DESC, id DESC LIMIT %d`, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("event: unable to list a customer's events: %w", err)
	}
	defer rows.Close()
	var out []customer.TimelineEntry
	for rows.Next() {
		var (
			id, ts                                               int64
			msgID, typ, name, user, anon, prev, group, props, tr string
		)
		if err := rows.Scan(&id, &msgID, &typ, &name, &user, &anon, &prev, &group, &ts, &props, &tr); err != nil {
			return nil, fmt.Errorf("event: unable to read a customer's event: %w", err)
		}
		detail := map[string]any{"type": typ, "message_id": msgID}
		if user != "" {
			detail["user_id"] = user
		}
		if anon != "" {
			detail["anonymous_id"] = anon
		}
		doc, title := props, name
		switch Type(typ) {
		case Identify:
			doc, title = tr, "identify"
		case Page, Screen:
			if name == "" {
				title = typ
			} else {
				title = typ + ": " + name
			}
		case Group:
			doc, title = tr, "group: "+group
			detail["group_id"] = group
		case Alias:
			title = "alias: " + prev + " → " + user
			detail["previous_id"] = prev
		}
		if doc != "{}" {
			var m map[string]any
			if json.Unmarshal([]byte(doc), &m) == nil {
				if Type(typ) == Identify || Type(typ) == Group {
					detail["traits"] = m
				} else {
					detail["properties"] = m
				}
			}
		}
		out = append(out, customer.TimelineEntry{At: db.FromMillis(ts), Kind: "event", ID: strconv.FormatInt(id, 10), Title: title, Detail: detail})
	}
	return out, rows.Err()
}
