// Package event is Siyu's ingest: an implementation of the Segment HTTP
// tracking API (track, identify, page, screen, group, alias and batch) that
// any Segment or RudderStack SDK can send to unchanged. Messages are checked,
// deduplicated on messageId per workspace and committed to the event log
// before the sender is told so; a Processor then resolves each one to a
// customer profile (One ID) and catalogues the names and properties it saw.
package event

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Type is a Segment message type.
type Type string

// Message types of the Segment spec.
const (
	Track    Type = "track"
	Identify Type = "identify"
	Page     Type = "page"
	Screen   Type = "screen"
	Group    Type = "group"
	Alias    Type = "alias"
)

// Types lists every message type.
func Types() []Type { return []Type{Track, Identify, Page, Screen, Group, Alias} }

func (t Type) valid() bool {
	switch t {
	case Track, Identify, Page, Screen, Group, Alias:
		return true
	}
	return false
}

// Limits of the Segment HTTP tracking API.
const (
	MaxMessageBytes = 32 << 10  // one message, as JSON
	MaxBatchBytes   = 500 << 10 // one request body, after decompression
)

// Auditor records administrative actions (tenant.Service satisfies it).
type Auditor interface {
	Audit(ctx context.Context, q db.Querier, p tenant.Principal, action, targetKind, targetID, detail string) error
}

// Options configure a Service.
type Options struct {
	Logger  *slog.Logger
	Auditor Auditor
	// Now replaces the clock (tests).
	Now func() time.Time
}

// Service ingests messages and manages write keys and the event log.
type Service struct {
	db    *db.DB
	log   *slog.Logger
	audit Auditor
	now   func() time.Time
	keys  *keyCache
	w     *writer
	// wake is signalled after each ingest commit so the processor picks the
	// new events up at once instead of at its next tick.
	wake chan struct{}
	// obs are told about each processed batch after it commits (observe.go).
	obs observers
}

// NewService returns the event service on d.
func NewService(d *db.DB, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{
		db:    d,
		log:   o.Logger,
		audit: o.Auditor,
		now:   o.Now,
		keys:  newKeyCache(),
		wake:  make(chan struct{}, 1),
	}
	s.w = newWriter(d, s.committed)
	return s
}

// committed runs after every ingest commit.
func (s *Service) committed() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// MoveCustomer moves a merged profile's events to the survivor. It is a
// customer.MergeHook and runs inside the merge's transaction.
func (s *Service) MoveCustomer(ctx context.Context, tx *sql.Tx, tenantID, fromID, toID int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE events SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2`,
		tenantID, fromID, toID); err != nil {
		return fmt.Errorf("event: unable to move events of customer %d to %d: %w", fromID, toID, err)
	}
	return nil
}
