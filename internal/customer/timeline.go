package customer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/page"
)

// Merge records one profile folded into another.
type Merge struct {
	SurvivorID    int64     `json:"survivor_id"`
	MergedID      int64     `json:"merged_id"`
	IdentityKind  string    `json:"identity_kind" doc:"The kind of identifier the two profiles shared."`
	IdentityValue string    `json:"identity_value" doc:"The shared identifier (phones masked)."`
	MessageID     string    `json:"message_id,omitempty" doc:"The message that joined them."`
	Source        string    `json:"source,omitempty"`
	MergedAt      time.Time `json:"merged_at"`
}

// Merges lists the merges into a customer, newest first.
func (s *Service) Merges(ctx context.Context, tenantID, customerID int64) ([]Merge, error) {
	return s.merges(ctx, tenantID, customerID, time.Time{}, 1000)
}

func (s *Service) merges(ctx context.Context, tenantID, customerID int64, before time.Time, limit int) ([]Merge, error) {
	q := `SELECT survivor_id, merged_id, identity_kind, identity_value, message_id, source, merged_at
	      FROM customer_merges WHERE tenant_id = $1 AND survivor_id = $2`
	args := []any{tenantID, customerID}
	if !before.IsZero() {
		q += ` AND merged_at <= $3`
		args = append(args, db.Millis(before))
	}
	q += fmt.Sprintf(` ORDER BY merged_at DESC, id DESC LIMIT %d`, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("customer: unable to list merges: %w", err)
	}
	defer rows.Close()
	var out []Merge
	for rows.Next() {
		var m Merge
		var at int64
		if err := rows.Scan(&m.SurvivorID, &m.MergedID, &m.IdentityKind, &m.IdentityValue, &m.MessageID, &m.Source, &at); err != nil {
			return nil, fmt.Errorf("customer: unable to read merge: %w", err)
		}
		m.MergedAt = db.FromMillis(at)
		out = append(out, m)
	}
	return out, rows.Err()
}

// TimelineEntry is one thing that happened to a customer.
type TimelineEntry struct {
	At     time.Time      `json:"at"`
	Kind   string         `json:"kind" doc:"event, order, refund, merge, or a channel event such as wecom.add_contact."`
	ID     string         `json:"id" doc:"Identifies the entry within its kind."`
	Title  string         `json:"title" doc:"A one-line summary, e.g. the event name or 'order tmall:123 paid ¥128.00'."`
	Detail map[string]any `json:"detail,omitempty"`
}

// TimelineSource is a domain that contributes timeline entries (events,
// orders, channel events). Entries returns up to limit entries of the customer
// at or before the given time, newest first (before zero: from now).
type TimelineSource interface {
	TimelineEntries(ctx context.Context, tenantID, customerID int64, before time.Time, limit int) ([]TimelineEntry, error)
}

// AddTimelineSource registers a source. Call it while wiring the app.
func (s *Service) AddTimelineSource(src TimelineSource) { s.timeline = append(s.timeline, src) }

// entryAfter reports whether e comes after the cursor position in
// newest-first order (i.e. was already shown).
func entryBefore(e TimelineEntry, at int64, kind, id string) bool {
	t := db.Millis(e.At)
	if t != at {
		return t < at
	}
	if e.Kind != kind {
		return e.Kind < kind
	}
	return e.ID < id
}

// Timeline returns a customer's timeline, newest first: merges plus every
// registered source, paginated by a (time, kind, id) cursor.
func (s *Service) Timeline(ctx context.Context, tenantID, customerID int64, r page.Request) (page.Page[TimelineEntry], error) {
	c, err := s.Get(ctx, tenantID, customerID, false)
	if err != nil {
		return page.Page[TimelineEntry]{}, err
	}
	customerID = c.ID
	var (
		before     time.Time
		at         int64
		kind, id   string
		haveCursor = r.Cursor != ""
	)
	if haveCursor {
		if err := page.Decode(r.Cursor, &at, &kind, &id); err != nil {
			return page.Page[TimelineEntry]{}, err
		}
		before = db.FromMillis(at)
	}
	// Entries tied at the cursor's millisecond may repeat; fetch a margin.
	want := r.Size() + 1 + 20
	var all []TimelineEntry
	ms, err := s.merges(ctx, tenantID, customerID, before, want)
	if err != nil {
		return page.Page[TimelineEntry]{}, err
	}
	for _, m := range ms {
		all = append(all, TimelineEntry{At: m.MergedAt, Kind: "merge", ID: fmt.Sprint(m.MergedID),
			Title:  fmt.Sprintf("merged profile %d (shared %s %s)", m.MergedID, m.IdentityKind, m.IdentityValue),
			Detail: map[string]any{"merged_id": m.MergedID, "identity_kind": m.IdentityKind, "identity_value": m.IdentityValue, "message_id": m.MessageID}})
	}
	for _, src := range s.timeline {
		es, err := src.TimelineEntries(ctx, tenantID, customerID, before, want)
		if err != nil {
			return page.Page[TimelineEntry]{}, err
		}
		all = append(all, es...)
	}
	slices.SortFunc(all, func(a, b TimelineEntry) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		if c := strings.Compare(b.Kind, a.Kind); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if haveCursor {
		all = slices.DeleteFunc(all, func(e TimelineEntry) bool { return !entryBefore(e, at, kind, id) })
	}
	return page.Trim(all, r, func(e TimelineEntry) string { return page.Encode(db.Millis(e.At), e.Kind, e.ID) }), nil
}
