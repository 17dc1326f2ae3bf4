package event

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Resolver finds or creates the customer profile of one message (One ID);
// customer.Service satisfies it.
type Resolver interface {
	// Resolve finds or creates the profile for the identifiers of one message
	// (merging profiles when they meet), updates traits and last seen, and
	// returns the customer id. It runs inside tx.
	Resolve(ctx context.Context, tx *sql.Tx, tenantID int64, obs customer.Observation) (customerID int64, err error)
}

var _ Resolver = (*customer.Service)(nil)

// Source is the Observation.Source of messages that came through ingest.
const Source = "ingest"

// ProcessorOptions configure a Processor.
type ProcessorOptions struct {
	// BatchSize is how many events one transaction resolves (default 200).
	BatchSize int
	// Interval is how often the processor looks for work when nothing woke
	// it, e.g. events ingested by another node (default 1s).
	Interval time.Duration
	// TenantID limits the processor to one workspace; 0 means all.
	TenantID int64
	// MinFailing is how long an event must keep failing (besides failing
	// maxAttempts times) before it is set aside (default 1 minute).
	MinFailing time.Duration
}

// Processor resolves ingested events to customers, oldest first, and keeps
// the event catalogue. Each batch is one transaction: a crash loses nothing
// and redoes only what had not committed. On PostgreSQL several processors
// (on several nodes) share the work, each locking different rows. One
// Processor is driven by one goroutine.
type Processor struct {
	s        *Service
	resolver Resolver
	o        ProcessorOptions
	log      *slog.Logger

	warnNil sync.Once
	// An event whose processing fails with an internal error is retried; once
	// it has failed maxAttempts times in a row over at least MinFailing, it
	// is set aside so the queue moves on. Transient failures (a lost race
	// with another transaction, a restarting database) are retried.
	lastFailed   int64
	attempts     int
	firstFailure time.Time
}

const maxAttempts = 5

// NewProcessor returns a processor resolving through r. With a nil r it
// processes nothing (and says so once).
func (s *Service) NewProcessor(r Resolver, o ProcessorOptions) *Processor {
	if o.BatchSize <= 0 {
		o.BatchSize = 200
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MinFailing <= 0 {
		o.MinFailing = time.Minute
	}
	return &Processor{s: s, resolver: r, o: o, log: s.log}
}

// Run processes events until ctx is done: at once after each ingest commit
// on this node, and every Interval otherwise.
func (p *Processor) Run(ctx context.Context) {
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			n, err := p.ProcessBatch(ctx)
			if err != nil {
				if ctx.Err() == nil {
					p.log.Error("event: processing failed", "err", err)
				}
				break
			}
			if n < p.o.BatchSize {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.s.wake:
		}
	}
}

// Drain processes until no event is left (tests, the demo, the CLI).
func (p *Processor) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := p.ProcessBatch(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// queued is an event waiting to be processed.
type queued struct {
	id, tenantID                    int64
	messageID, typ, name            string
	userID, anonymousID, previousID string
	timestamp                       int64
	properties, traits, context     string
}

// failure is an event that could not be processed.
type failure struct {
	e   queued
	err error
}

func (f *failure) Error() string {
	return fmt.Sprintf("event %d (messageId %s): %v", f.e.id, f.e.messageID, f.err)
}
func (f *failure) Unwrap() error { return f.err }

// ProcessBatch resolves up to BatchSize unprocessed events and returns how
// many it handled (set-aside events included).
func (p *Processor) ProcessBatch(ctx context.Context) (int, error) {
	if p.resolver == nil {
		p.warnNil.Do(func() { p.log.Warn("event: no customer resolver; ingested events are stored but not processed") })
		return 0, nil
	}
	n, err := p.process(ctx)
	var f *failure
	if err == nil || !errors.As(err, &f) {
		return n, err
	}
	// One event failed and the batch rolled back. An event the resolver
	// refuses (bad identifiers) is set aside at once, one that fails for
	// another reason after a few tries, so that the queue moves on; the
	// rest of the batch is redone by the next call.
	if errs.KindOf(f.err) == errs.Internal {
		now := p.s.now()
		if f.e.id != p.lastFailed {
			p.lastFailed, p.attempts, p.firstFailure = f.e.id, 0, now
		}
		p.attempts++
		if p.attempts < maxAttempts || now.Sub(p.firstFailure) < p.o.MinFailing {
			return 0, err
		}
		p.log.Error("event: setting aside an event that keeps failing", "event_id", f.e.id, "tenant_id", f.e.tenantID, "err", f.err)
	}
	if err := p.setAside(ctx, f); err != nil {
		return 0, err
	}
	return 1, nil
}

func (p *Processor) process(ctx context.Context) (int, error) {
	q := `SELECT id, tenant_id, message_id, type, name, user_id, anonymous_id, previous_id, timestamp, properties, traits, context
	      FROM events WHERE processed_at IS NULL`
	args := []any{p.o.BatchSize}
	if p.o.TenantID != 0 {
		q += ` AND tenant_id = $2`
		args = append(args, p.o.TenantID)
	}
	q += ` ORDER BY id LIMIT $1` + p.s.db.SkipLocked()
	n := 0
	var done []ProcessedEvent
	err := p.s.db.Tx(ctx, func(tx *sql.Tx) error {
		evs, err := loadQueued(ctx, tx, q, args)
		if err != nil {
			return err
		}
		n = len(evs)
		if n == 0 {
			return nil
		}
		now := db.Millis(p.s.now())
		cat := catalog{}
		for _, e := range evs {
			obs := observation(e)
			cid, err := p.resolver.Resolve(ctx, tx, e.tenantID, obs)
			if err != nil {
				return &failure{e, err}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE events SET customer_id = $2, processed_at = $3 WHERE id = $1`, e.id, cid, now); err != nil {
				return fmt.Errorf("event: unable to mark event %d processed: %w", e.id, err)
			}
			cat.observe(e, obs.Traits)
			done = append(done, processed(e, cid))
		}
		return cat.store(ctx, tx)
	})
	if err == nil {
		p.s.obs.notify(done)
	}
	return n, err
}

func loadQueued(ctx context.Context, tx *sql.Tx, q string, args []any) ([]queued, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("event: unable to fetch unprocessed events: %w", err)
	}
	defer rows.Close()
	var evs []queued
	for rows.Next() {
		var e queued
		if err := rows.Scan(&e.id, &e.tenantID, &e.messageID, &e.typ, &e.name, &e.userID, &e.anonymousID, &e.previousID,
			&e.timestamp, &e.properties, &e.traits, &e.context); err != nil {
			return nil, fmt.Errorf("event: unable to read unprocessed event: %w", err)
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("event: unable to fetch unprocessed events: %w", err)
	}
	return evs, nil
}

// setAside marks an event processed without a customer and records why.
func (p *Processor) setAside(ctx context.Context, f *failure) error {
	code := errs.CodeOf(f.err)
	reason := "processing failed; the event is kept but belongs to no customer"
	if e, ok := errs.As(f.err); ok && e.Kind != errs.Internal {
		code, reason = "unresolvable_"+code, "no customer could be resolved: "+e.Message
	}
	now := p.s.now()
	return p.s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE events SET processed_at = $2 WHERE id = $1 AND processed_at IS NULL`, f.e.id, db.Millis(now))
		if err != nil {
			return fmt.Errorf("event: unable to set event %d aside: %w", f.e.id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // another processor got there first
		}
		return insertErrors(ctx, tx, []errorRow{{tenantID: f.e.tenantID, receivedAt: db.Millis(now), index: -1,
			messageID: f.e.messageID, typ: f.e.typ, code: code, reason: reason, payload: truncate(f.e.context, payloadMax)}})
	})
}

// wireContext is the part of a message's context that identifies a person.
type wireContext struct {
	Traits      map[string]any `json:"traits"`
	ExternalIDs []struct {
		ID   flexString `json:"id"`
		Type string     `json:"type"`
	} `json:"externalIds"`
}

// observation says what an event tells about its person: userId and
// anonymousId, phone and email traits, context.externalIds whose type is a
// Siyu identity kind, and for alias the previousId (taken as the anonymousId
// it usually is).
func observation(e queued) customer.Observation {
	obs := customer.Observation{At: db.FromMillis(e.timestamp), Source: Source, MessageID: e.messageID}
	var c wireContext
	if err := json.Unmarshal([]byte(e.context), &c); err != nil {
		// Stored context is a JSON object; a part of it not shaped as the
		// spec says (traits not an object, say) identifies no one.
		c = wireContext{}
	}
	traits := c.Traits
	if e.typ == string(Identify) && e.traits != "{}" {
		var t map[string]any
		if err := json.Unmarshal([]byte(e.traits), &t); err == nil {
			if traits == nil {
				traits = t
			} else {
				for k, v := range t {
					traits[k] = v
				}
			}
		}
	}
	obs.Traits = traits
	add := func(kind, v string) {
		if v = strings.TrimSpace(v); v != "" {
			obs.Identities = append(obs.Identities, customer.Identity{Kind: kind, Value: v})
		}
	}
	add(customer.KindUserID, e.userID)
	add(customer.KindAnonymousID, e.anonymousID)
	if e.typ == string(Alias) {
		add(customer.KindAnonymousID, e.previousID)
	}
	for _, k := range [...]string{customer.KindPhone, customer.KindEmail} {
		if v, ok := traits[k].(string); ok {
			add(k, v)
		}
	}
	kinds := customer.Kinds()
	for _, x := range c.ExternalIDs {
		t := strings.ToLower(strings.TrimSpace(x.Type))
		for _, k := range kinds {
			if t == k {
				add(k, string(x.ID))
				break
			}
		}
	}
	return obs
}
