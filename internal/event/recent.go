package event

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// MaxRecentEvents bounds one CustomerEvents read.
const MaxRecentEvents = 1000

// CustomerEvents returns a customer's processed events named name with a
// timestamp at or after since, newest first, at most limit of them (at most
// MaxRecentEvents). It reads the customer's timeline index, so it costs the
// same whatever the size of the workspace: auto-tag rules use it to count
// "performed E twice in 30 days" when an event arrives.
func (s *Service) CustomerEvents(ctx context.Context, tenantID, customerID int64, name string, since time.Time, limit int) ([]ProcessedEvent, error) {
	if limit <= 0 || limit > MaxRecentEvents {
		limit = MaxRecentEvents
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, message_id, type, name, properties, timestamp FROM events
		 WHERE tenant_id = $1 AND customer_id = $2 AND timestamp >= $3 AND name = $4
		 ORDER BY timestamp DESC, id DESC LIMIT $5`, tenantID, customerID, db.Millis(since), name, limit)
	if err != nil {
		return nil, fmt.Errorf("event: unable to read recent events of customer %d: %w", customerID, err)
	}
	defer rows.Close()
	var out []ProcessedEvent
	for rows.Next() {
		e := ProcessedEvent{TenantID: tenantID, CustomerID: customerID}
		var typ, props string
		var ts int64
		if err := rows.Scan(&e.ID, &e.MessageID, &typ, &e.Name, &props, &ts); err != nil {
			return nil, fmt.Errorf("event: unable to read recent event: %w", err)
		}
		e.Type, e.Properties, e.Timestamp = Type(typ), json.RawMessage(props), db.FromMillis(ts)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("event: unable to read recent events of customer %d: %w", customerID, err)
	}
	return out, nil
}
