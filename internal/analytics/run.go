package analytics

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Each workspace has one row in score_runs. Whoever computes holds its lease
// (several nodes may share a database; only one computes a workspace at a
// time) and extends it while it works; a holder that died loses it when it
// expires.
const (
	leaseFor    = 2 * time.Minute
	extendEvery = 20 * time.Second
	// retryFailedAfter keeps a failing full run from repeating every tick.
	retryFailedAfter = 15 * time.Minute
)

// Run states.
const (
	RunIdle    = "idle"    // never computed
	RunQueued  = "queued"  // a full recompute was asked for and will start soon
	RunRunning = "running" // a full recompute is under way
	RunDone    = "done"    // the last full recompute finished
	RunFailed  = "failed"  // the last full recompute failed; it is retried
)

// ScoreRun is the state of a workspace's full recompute.
type ScoreRun struct {
	State       string    `json:"state" enum:"idle,queued,running,done,failed"`
	RequestedAt time.Time `json:"requested_at,omitzero" doc:"When a full recompute was last asked for and not yet started."`
	StartedAt   time.Time `json:"started_at,omitzero" doc:"When the current or last full recompute started."`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	Processed   int64     `json:"processed" doc:"Customers scored so far."`
	Total       int64     `json:"total" doc:"Customers to score (counted at the start)."`
	Changed     int64     `json:"changed" doc:"Customers whose scores changed."`
	Error       string    `json:"error,omitempty"`
	ComputedAt  time.Time `json:"computed_at,omitzero" doc:"The time the current quintiles were measured at: the start of the last successful full recompute."`
}

// runRow is a score_runs row.
type runRow struct {
	leaseOwner    string
	leaseUntil    time.Time
	requestedAt   time.Time
	startedAt     time.Time
	finishedAt    time.Time
	processed     int64
	total         int64
	changed       int64
	failure       string
	scale         *Scale // nil until a full run succeeded
	followedUntil time.Time
}

func (s *Service) ensureRunRow(ctx context.Context, q db.Querier, tenantID int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO score_runs (tenant_id, updated_at) VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING`,
		tenantID, db.Millis(s.now()))
	if err != nil {
		return fmt.Errorf("analytics: unable to create the run of workspace %d: %w", tenantID, err)
	}
	return nil
}

func (s *Service) runRow(ctx context.Context, tenantID int64) (runRow, error) {
	var (
		r                                             runRow
		until, requested, started, finished, followed sql.NullInt64
		scale                                         string
	)
	err := s.db.QueryRowContext(ctx, `SELECT lease_owner, lease_until, requested_at, full_started_at, full_finished_at,
		full_processed, full_total, full_changed, full_error, scale, followed_until FROM score_runs WHERE tenant_id = $1`, tenantID).
		Scan(&r.leaseOwner, &until, &requested, &started, &finished, &r.processed, &r.total, &r.changed, &r.failure, &scale, &followed)
	if errors.Is(err, sql.ErrNoRows) {
		return runRow{}, nil
	}
	if err != nil {
		return runRow{}, fmt.Errorf("analytics: unable to read the run of workspace %d: %w", tenantID, err)
	}
	r.leaseUntil, r.requestedAt, r.startedAt = db.NullMillis(until), db.NullMillis(requested), db.NullMillis(started)
	r.finishedAt, r.followedUntil = db.NullMillis(finished), db.NullMillis(followed)
	if scale != "" {
		r.scale = new(Scale)
		if err := json.Unmarshal([]byte(scale), r.scale); err != nil {
			return runRow{}, fmt.Errorf("analytics: damaged score scale of workspace %d: %w", tenantID, err)
		}
	}
	return r, nil
}

// lease is a held score_runs lease.
type lease struct {
	s        *Service
	tenantID int64
	owner    string
	extended time.Time
}

// acquire takes the workspace's lease if nobody holds it; ok is false when
// another holder does.
func (s *Service) acquire(ctx context.Context, tenantID int64) (l *lease, ok bool, err error) {
	if err := s.ensureRunRow(ctx, s.db, tenantID); err != nil {
		return nil, false, err
	}
	now := s.now()
	l = &lease{s: s, tenantID: tenantID, owner: token(), extended: now}
	res, err := s.db.ExecContext(ctx, `UPDATE score_runs SET lease_owner = $2, lease_until = $3
		WHERE tenant_id = $1 AND (lease_until IS NULL OR lease_until < $4)`,
		tenantID, l.owner, db.Millis(now.Add(leaseFor)), db.Millis(now))
	if err != nil {
		return nil, false, fmt.Errorf("analytics: unable to take the run lease of workspace %d: %w", tenantID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, false, fmt.Errorf("analytics: unable to take the run lease of workspace %d: %w", tenantID, err)
	}
	return l, n == 1, nil
}

// errLeaseLost stops a run whose lease expired and was taken by another.
var errLeaseLost = errors.New("analytics: the run lease was lost to another holder")

// update runs an UPDATE of the lease holder's row, extending the lease.
func (l *lease) update(ctx context.Context, set string, args ...any) error {
	now := l.s.now()
	all := append([]any{l.tenantID, l.owner, db.Millis(now.Add(leaseFor)), db.Millis(now)}, args...)
	res, err := l.s.db.ExecContext(ctx, `UPDATE score_runs SET lease_until = $3, updated_at = $4`+set+` WHERE tenant_id = $1 AND lease_owner = $2`, all...)
	if err != nil {
		return fmt.Errorf("analytics: unable to update the run of workspace %d: %w", l.tenantID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errLeaseLost
	}
	l.extended = now
	return nil
}

// extend renews the lease when it is getting old.
func (l *lease) extend(ctx context.Context) error {
	if l.s.now().Sub(l.extended) < extendEvery {
		return nil
	}
	return l.update(ctx, "")
}

func (l *lease) begin(ctx context.Context, start time.Time, total int64) error {
	return l.update(ctx, `, full_started_at = $5, full_finished_at = NULL, full_processed = 0, full_total = $6, full_changed = 0, full_error = ''`,
		db.Millis(start), total)
}

func (l *lease) progress(ctx context.Context, processed, changed int64) error {
	if l.s.now().Sub(l.extended) < extendEvery {
		return nil
	}
	return l.update(ctx, `, full_processed = $5, full_changed = $6`, processed, changed)
}

// finish records a successful full run: its scale becomes the one
// incremental passes apply, they follow changes from its start, and a
// request made before it started is answered.
func (l *lease) finish(ctx context.Context, scale Scale, processed, changed int64, start time.Time) error {
	doc, err := json.Marshal(scale)
	if err != nil {
		return fmt.Errorf("analytics: unable to encode the scale: %w", err)
	}
	return l.update(ctx, `, full_finished_at = $4, full_processed = $5, full_total = $5, full_changed = $6, scale = $7, followed_until = $8,
		requested_at = CASE WHEN requested_at <= $8 THEN NULL ELSE requested_at END`,
		processed, changed, string(doc), db.Millis(start))
}

func (l *lease) fail(ctx context.Context) error {
	return l.update(ctx, `, full_finished_at = $4, full_error = $5`, "the recompute failed; the server log has the cause, and it is retried")
}

func (l *lease) followed(ctx context.Context, until time.Time) error {
	return l.update(ctx, `, followed_until = $5`, db.Millis(until))
}

// release gives the lease up.
func (l *lease) release(ctx context.Context) {
	_, err := l.s.db.ExecContext(ctx, `UPDATE score_runs SET lease_owner = '', lease_until = NULL WHERE tenant_id = $1 AND lease_owner = $2`,
		l.tenantID, l.owner)
	if err != nil {
		l.s.log.Warn("analytics: unable to release the run lease; it expires by itself", "tenant", l.tenantID, "err", err)
	}
}

// request marks a full recompute as wanted.
func (s *Service) request(ctx context.Context, q db.Querier, tenantID int64) error {
	if err := s.ensureRunRow(ctx, q, tenantID); err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `UPDATE score_runs SET requested_at = $2 WHERE tenant_id = $1`, tenantID, db.Millis(s.now())); err != nil {
		return fmt.Errorf("analytics: unable to request a recompute: %w", err)
	}
	return nil
}

// RequestRecompute asks for a full recompute of the workspace, which Run
// starts soon, and returns the run's state.
func (s *Service) RequestRecompute(ctx context.Context, tenantID int64) (ScoreRun, error) {
	if err := s.request(ctx, s.db, tenantID); err != nil {
		return ScoreRun{}, err
	}
	s.wakeUp()
	return s.Status(ctx, tenantID)
}

// Recompute runs a full recompute of the workspace now and returns its
// state; Conflict when one is already running.
func (s *Service) Recompute(ctx context.Context, tenantID int64) (ScoreRun, error) {
	l, ok, err := s.acquire(ctx, tenantID)
	if err != nil {
		return ScoreRun{}, err
	}
	if !ok {
		return ScoreRun{}, errs.E(errs.Conflict, "recompute_running", "scores are being computed already")
	}
	err = s.full(ctx, tenantID, l)
	l.release(context.WithoutCancel(ctx))
	if err != nil {
		return ScoreRun{}, err
	}
	return s.Status(ctx, tenantID)
}

// Rescore rescores the customers that changed since the last pass, against
// the scale of the last full run (which it runs first if there is none).
func (s *Service) Rescore(ctx context.Context, tenantID int64) error {
	l, ok, err := s.acquire(ctx, tenantID)
	if err != nil {
		return err
	}
	if !ok {
		return errs.E(errs.Conflict, "recompute_running", "scores are being computed already")
	}
	defer l.release(context.WithoutCancel(ctx))
	st, err := s.runRow(ctx, tenantID)
	if err != nil {
		return err
	}
	if st.scale == nil {
		return s.full(ctx, tenantID, l)
	}
	return s.incremental(ctx, tenantID, l, st)
}

// Status returns the state of the workspace's full recompute.
func (s *Service) Status(ctx context.Context, tenantID int64) (ScoreRun, error) {
	st, err := s.runRow(ctx, tenantID)
	if err != nil {
		return ScoreRun{}, err
	}
	now := s.now()
	r := ScoreRun{RequestedAt: st.requestedAt, StartedAt: st.startedAt, FinishedAt: st.finishedAt,
		Processed: st.processed, Total: st.total, Changed: st.changed, Error: st.failure}
	if st.scale != nil {
		r.ComputedAt = st.scale.AsOf
	}
	switch {
	case !st.startedAt.IsZero() && st.finishedAt.IsZero() && st.leaseUntil.After(now):
		r.State = RunRunning
	case !st.requestedAt.IsZero():
		r.State = RunQueued
	case st.failure != "":
		r.State = RunFailed
	case st.scale != nil:
		r.State = RunDone
	default:
		r.State = RunIdle
	}
	return r, nil
}

// lastScheduled is the latest daily recompute time at or before now.
func lastScheduled(now time.Time, hour int, loc *time.Location) time.Time {
	l := now.In(loc)
	t := time.Date(l.Year(), l.Month(), l.Day(), hour, 0, 0, 0, loc)
	if t.After(now) {
		t = time.Date(l.Year(), l.Month(), l.Day()-1, hour, 0, 0, 0, loc)
	}
	return t
}

// fullDue says whether the workspace needs a full run now: it has none yet,
// one was asked for, the daily one is due, or (in a small workspace) spend
// changed.
func (s *Service) fullDue(ctx context.Context, tenantID int64, st runRow, now time.Time) (bool, error) {
	if st.failure != "" && now.Sub(st.finishedAt) < retryFailedAfter && !st.requestedAt.After(st.finishedAt) {
		return false, nil
	}
	if st.scale == nil || !st.requestedAt.IsZero() {
		return true, nil
	}
	set, err := s.Settings(ctx, tenantID)
	if err != nil {
		return false, err
	}
	loc, err := s.src.Location(ctx, tenantID)
	if err != nil {
		return false, fmt.Errorf("analytics: workspace time zone: %w", err)
	}
	if st.scale.AsOf.Before(lastScheduled(now, set.RecomputeHour, loc)) {
		return true, nil
	}
	if st.scale.Buyers < s.o.SmallBuyers && st.processed <= s.o.SmallCustomers {
		ids, err := s.src.Spend.SpendChangedSince(ctx, tenantID, st.followedUntil.Add(-followOverlap))
		if err != nil {
			return false, err
		}
		return len(ids) > 0, nil
	}
	return false, nil
}

// Work brings one workspace up to date: a full run when one is due,
// otherwise an incremental pass. It does nothing while another holds the
// lease.
func (s *Service) Work(ctx context.Context, tenantID int64) error {
	l, ok, err := s.acquire(ctx, tenantID)
	if err != nil || !ok {
		return err
	}
	defer l.release(context.WithoutCancel(ctx))
	st, err := s.runRow(ctx, tenantID)
	if err != nil {
		return err
	}
	due, err := s.fullDue(ctx, tenantID, st, s.now())
	if err != nil {
		return err
	}
	switch {
	case due:
		return s.full(ctx, tenantID, l)
	case st.scale != nil:
		return s.incremental(ctx, tenantID, l, st)
	}
	return nil
}

// Run keeps every workspace scored until ctx ends: at once (so a new or
// restored database is scored at start), then every interval and whenever a
// recompute is asked for on this node.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ids, err := s.src.Workspaces(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("analytics: unable to list workspaces", "err", err)
		}
		for _, id := range ids {
			if err := s.Work(ctx, id); err != nil && ctx.Err() == nil {
				s.log.Error("analytics: scoring failed; will retry", "tenant", id, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}
