package event

import (
	"context"
	"fmt"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/page"
)

// IngestError is a message, or a whole request, that ingest refused once the
// workspace was known, or that the processor could not resolve to a customer.
type IngestError struct {
	ID         int64     `json:"id"`
	ReceivedAt time.Time `json:"received_at"`
	Index      int       `json:"index" doc:"Position of the message in its batch; -1 when the whole request was refused."`
	MessageID  string    `json:"message_id,omitempty"`
	Type       string    `json:"type,omitempty"`
	Code       string    `json:"code" doc:"Why, for machines, e.g. missing_identity, missing_event, malformed_json, batch_too_large."`
	Reason     string    `json:"reason" doc:"Why, for people."`
	Payload    string    `json:"payload" doc:"The start of the message or request as received (at most 2 KB)."`
}

// IngestErrors lists the workspace's ingest errors, newest first.
func (s *Service) IngestErrors(ctx context.Context, tenantID int64, r page.Request) (page.Page[IngestError], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[IngestError]{}, err
	}
	q := `SELECT id, received_at, batch_index, message_id, type, code, reason, payload FROM ingest_errors WHERE tenant_id = $1`
	args := []any{tenantID}
	if ok {
		q += ` AND id < $2`
		args = append(args, after)
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[IngestError]{}, fmt.Errorf("event: unable to list ingest errors: %w", err)
	}
	defer rows.Close()
	var out []IngestError
	for rows.Next() {
		var e IngestError
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Index, &e.MessageID, &e.Type, &e.Code, &e.Reason, &e.Payload); err != nil {
			return page.Page[IngestError]{}, fmt.Errorf("event: unable to read ingest error: %w", err)
		}
		e.ReceivedAt = db.FromMillis(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return page.Page[IngestError]{}, fmt.Errorf("event: unable to list ingest errors: %w", err)
	}
	return page.Trim(out, r, func(e IngestError) string { return page.ByID(e.ID) }), nil
}
