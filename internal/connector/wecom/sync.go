package wecom

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tag"
)

// A sync reads a corp from WeCom's API and brings Siyu in line with it:
// staff, corp tags, every customer with each staff member's relation, the
// customers' bound tags, and customer groups. It runs as a job with a
// persisted position: each page read from WeCom is applied in one
// transaction together with the cursor that follows it, so a crash, a WeCom
// error or a revoked secret stops the job between pages and a resume goes on
// from the stored cursor, never applying half a page or skipping one.
//
// A run is held by one worker at a time through its lease (a compare-and-set
// on the row, so it works on SQLite and across PostgreSQL nodes), and a
// partial unique index allows one queued or running run per workspace.

// SyncKind is what a sync run covers.
type SyncKind string

// Sync kinds.
const (
	SyncFull      SyncKind = "full"      // everything: on connect and on demand
	SyncReconcile SyncKind = "reconcile" // everything again, on the schedule or after a gap; repairs what callbacks missed
	SyncTags      SyncKind = "tags"      // corp tags and the customers' bound tags only (after a tag group is bound)
)

func (k SyncKind) valid() bool { return k == SyncFull || k == SyncReconcile || k == SyncTags }

// SyncRunStatus is where a sync run stands.
type SyncRunStatus string

// Sync run statuses.
const (
	SyncQueued    SyncRunStatus = "queued"    // waiting for a worker
	SyncRunning   SyncRunStatus = "running"   // a worker holds it (or held it and died: another takes it over when the lease expires)
	SyncDone      SyncRunStatus = "done"      // finished
	SyncFailed    SyncRunStatus = "failed"    // stopped on an error (Error says why and how to fix it); ResumeSync goes on from where it stopped
	SyncCancelled SyncRunStatus = "cancelled" // a failed run replaced by a new one
)

// SyncPhase is a step of a sync run, in this order.
type SyncPhase string

// Sync phases.
const (
	PhaseStaff         SyncPhase = "staff"          // departments and members → staff; members gone from WeCom resigned
	PhaseCorpTags      SyncPhase = "corp_tags"      // corp tag groups and tags; bound Siyu groups follow them
	PhaseContacts      SyncPhase = "contacts"       // customers of every member with the customer-contact permission (batch/get_by_user)
	PhaseEndedContacts SyncPhase = "ended_contacts" // current relations WeCom no longer lists are ended
	PhaseCustomerTags  SyncPhase = "customer_tags"  // customers get the Siyu tags bound to the corp tags their staff gave them
	PhaseGroups        SyncPhase = "groups"         // customer groups (groupchat/list + groupchat/get)
	PhaseEndedGroups   SyncPhase = "ended_groups"   // groups WeCom no longer lists are checked, dismissed ones marked
	PhaseDone          SyncPhase = "done"
)

// phasesOf lists the phases of a kind with their share of the progress bar.
func phasesOf(k SyncKind) []phaseWeight {
	if k == SyncTags {
		return []phaseWeight{{PhaseCorpTags, 10}, {PhaseCustomerTags, 90}}
	}
	return []phaseWeight{{PhaseStaff, 3}, {PhaseCorpTags, 2}, {PhaseContacts, 70}, {PhaseEndedContacts, 5},
		{PhaseCustomerTags, 10}, {PhaseGroups, 8}, {PhaseEndedGroups, 2}}
}

type phaseWeight struct {
	phase  SyncPhase
	weight int
}

// SyncCounts is what a run read and changed so far.
type SyncCounts struct {
	Departments     int            `json:"departments" doc:"Departments read."`
	Staff           int            `json:"staff" doc:"Directory members read."`
	StaffResigned   int            `json:"staff_resigned" doc:"Staff members marked resigned: no longer in WeCom's directory."`
	FollowUsers     int            `json:"follow_users" doc:"Members with the customer-contact permission, whose customers were read."`
	Contacts        int            `json:"contacts" doc:"(customer, staff member) pairs read from WeCom."`
	NewRelations    int            `json:"new_relations" doc:"Staff relations Siyu did not know before."`
	EndedRelations  int            `json:"ended_relations" doc:"Relations WeCom no longer lists, ended."`
	CorpTagGroups   int            `json:"corp_tag_groups"`
	CorpTags        int            `json:"corp_tags"`
	TagChanges      int            `json:"tag_changes" doc:"Customers whose bound Siyu tags were brought in line with WeCom."`
	Groups          int            `json:"groups" doc:"Customer groups read."`
	GroupsDismissed int            `json:"groups_dismissed" doc:"Groups found dismissed."`
	Calls           map[string]int `json:"calls" doc:"WeCom API calls made, by API."`
	MaxContactLimit int            `json:"max_contact_limit" doc:"The largest page size asked of batch/get_by_user (always 100)."`
}

// SyncRun is one sync run as the console shows it.
type SyncRun struct {
	ID         int64         `json:"id"`
	Kind       SyncKind      `json:"kind" enum:"full,reconcile,tags"`
	Status     SyncRunStatus `json:"status" enum:"queued,running,done,failed,cancelled"`
	Phase      SyncPhase     `json:"phase" doc:"The step running, or where the run stopped."`
	PhaseDone  int64         `json:"phase_done" doc:"Units of the phase done (members, groups…)."`
	PhaseTotal int64         `json:"phase_total" doc:"Units of the phase in all; 0 when WeCom does not say."`
	Percent    int           `json:"percent" doc:"Estimated progress of the whole run, 0–100."`
	Counts     SyncCounts    `json:"counts"`
	ErrCode    int           `json:"errcode,omitempty" doc:"WeCom's error code when WeCom stopped the run."`
	Error      string        `json:"error,omitempty" doc:"Why the run failed, in plain words."`
	Fix        string        `json:"fix,omitempty" doc:"What to do about it, then resume."`
	Attempts   int           `json:"attempts" doc:"How often a worker started or resumed the run."`
	By         string        `json:"requested_by,omitempty" doc:"What started the run: connect, schedule, resync, the console…"`
	CreatedAt  time.Time     `json:"created_at"`
	StartedAt  time.Time     `json:"started_at,omitzero"`
	FinishedAt time.Time     `json:"finished_at,omitzero"`
	UpdatedAt  time.Time     `json:"updated_at"`
}

// SyncReport is a workspace's sync status: the run in progress, the last one
// finished, and when the next reconciliation is due.
type SyncReport struct {
	Current         *SyncRun  `json:"current,omitempty" doc:"The run queued or in progress."`
	Last            *SyncRun  `json:"last,omitempty" doc:"The latest run that ended (done, failed or cancelled)."`
	LastSuccess     *SyncRun  `json:"last_success,omitempty" doc:"The latest run that completed."`
	Resumable       bool      `json:"resumable" doc:"The last run failed and can be resumed where it stopped."`
	NextReconcileAt time.Time `json:"next_reconcile_at,omitzero" doc:"When the scheduled reconciliation runs next."`
}

// SyncOptions configure sync; zero values mean the defaults.
type SyncOptions struct {
	// ReconcileEvery is how long after a run ends the next reconciliation
	// starts (default a day); negative: never on a schedule.
	ReconcileEvery time.Duration
	// NoSyncOnConnect stops the worker from starting a full sync for a
	// workspace that has WeCom settings and has never synced.
	NoSyncOnConnect bool
	// Lease is how long a worker holds a run without a sign of life
	// (default 2 minutes); another node takes over a run after it.
	Lease time.Duration
	// FeedSettle is how long a tag history row may take to commit after a
	// later one did (default 0 on SQLite, whose writers commit in order;
	// 2 minutes on PostgreSQL); the tag feed reads that far back again.
	FeedSettle time.Duration
	// MarkMaxAttempts is how often a corp tag mark is tried before it is
	// given up (default 8).
	MarkMaxAttempts int
}

// syncRuntime is the sync's in-process state on a Service.
type syncRuntime struct {
	once    sync.Once
	wake    chan struct{} // a run was queued here
	marks   chan struct{} // a tag changed: the tag feed may have work
	observe sync.Once

	mu   sync.Mutex
	feed map[int64]*feedState // tenant → tag feed progress
}

func (s *Service) syncRT() *syncRuntime {
	rt := &s.sync
	rt.once.Do(func() {
		rt.wake = make(chan struct{}, 1)
		rt.marks = make(chan struct{}, 1)
		rt.feed = map[int64]*feedState{}
	})
	return rt
}

func (s *Service) syncOpts() SyncOptions {
	o := s.o.Sync
	if o.ReconcileEvery == 0 {
		o.ReconcileEvery = 24 * time.Hour
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.FeedSettle == 0 && s.db.Dialect == db.Postgres {
		o.FeedSettle = 2 * time.Minute
	}
	if o.MarkMaxAttempts <= 0 {
		o.MarkMaxAttempts = 8
	}
	return o
}

func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// ErrSyncRunning is returned when a workspace already has a sync queued or running.
var ErrSyncRunning = errs.E(errs.Conflict, "wecom_sync_running", "a WeCom sync is already queued or running in this workspace; wait for it to finish")

// syncState is a run's position, saved with every page.
type syncState struct {
	FollowUsers   []string `json:"follow_users,omitempty"`   // the members whose customers are read, in batch order
	Batch         int      `json:"batch,omitempty"`          // the batch of MaxUsersPerBatch members being read
	Cursor        string   `json:"cursor,omitempty"`         // batch/get_by_user's next_cursor within the batch
	AfterCustomer int64    `json:"after_customer,omitempty"` // ended_contacts, customer_tags: the last customer done
	ListCursor    string   `json:"list_cursor,omitempty"`    // groupchat/list: the cursor of the page being stored
	PageDone      int      `json:"page_done,omitempty"`      // groups of that page stored
	AfterChat     string   `json:"after_chat,omitempty"`     // ended_groups: the last chat checked
}

const syncCols = `id, kind, status, phase, phase_done, phase_total, state, counts, error, errcode, attempts, requested_by, created_at, started_at,
	finished_at, updated_at`

// syncRow is a run as stored.
type syncRow struct {
	SyncRun
	tenantID int64
	state    syncState
}

func scanSync(row interface{ Scan(...any) error }) (syncRow, error) {
	var r syncRow
	var kind, status, phase, state, counts, errText string
	var created, started, finished, updated int64
	err := row.Scan(&r.ID, &kind, &status, &phase, &r.PhaseDone, &r.PhaseTotal, &state, &counts, &errText, &r.ErrCode, &r.Attempts, &r.By,
		&created, &started, &finished, &updated)
	if err != nil {
		return r, err
	}
	r.Kind, r.Status, r.Phase = SyncKind(kind), SyncRunStatus(status), SyncPhase(phase)
	if err := json.Unmarshal([]byte(state), &r.state); err != nil {
		return r, fmt.Errorf("wecom: unable to read the position of sync run %d: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(counts), &r.Counts); err != nil {
		return r, fmt.Errorf("wecom: unable to read the counts of sync run %d: %w", r.ID, err)
	}
	if r.Counts.Calls == nil {
		r.Counts.Calls = map[string]int{}
	}
	r.Error, r.Fix = splitTestMessage(errText)
	r.CreatedAt, r.StartedAt, r.FinishedAt, r.UpdatedAt = db.FromMillis(created), db.FromMillis(started), db.FromMillis(finished), db.FromMillis(updated)
	r.Percent = percent(r.Kind, r.Status, r.Phase, r.PhaseDone, r.PhaseTotal)
	return r, nil
}

// percent estimates a run's progress from its phase and the phase's progress.
func percent(k SyncKind, st SyncRunStatus, ph SyncPhase, done, total int64) int {
	if st == SyncDone || ph == PhaseDone {
		return 100
	}
	sum, before, cur := 0, 0, 0
	found := false
	for _, p := range phasesOf(k) {
		sum += p.weight
		switch {
		case p.phase == ph:
			found, cur = true, p.weight
		case !found:
			before += p.weight
		}
	}
	if !found || sum == 0 {
		return 0
	}
	part := 0.0
	if total > 0 {
		part = min(1, float64(done)/float64(total))
	}
	return min(99, int((float64(before)+part*float64(cur))*100/float64(sum)))
}

func (s *Service) syncRun(ctx context.Context, q db.Querier, tenantID, id int64) (syncRow, error) {
	r, err := scanSync(q.QueryRowContext(ctx, `SELECT `+syncCols+` FROM wecom_sync_runs WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errs.NotFoundf("wecom_sync", "no WeCom sync run with id %d", id)
	}
	if err != nil {
		return r, fmt.Errorf("wecom: unable to read sync run %d: %w", id, err)
	}
	r.tenantID = tenantID
	return r, nil
}

// SyncRun returns one sync run of a workspace.
func (s *Service) SyncRun(ctx context.Context, tenantID, id int64) (SyncRun, error) {
	r, err := s.syncRun(ctx, s.db, tenantID, id)
	return r.SyncRun, err
}

// StartSync queues a sync of a workspace (full on demand, reconcile to
// compare and repair, tags after binding) and wakes the sync worker. A
// failed run left behind is cancelled: the new run starts from the
// beginning (ResumeSync goes on from where it stopped instead). It fails
// with ErrSyncRunning while another run is queued or running, and with
// ErrNotConfigured when WeCom is not connected.
func (s *Service) StartSync(ctx context.Context, tenantID int64, kind SyncKind) (SyncRun, error) {
	return s.startSync(ctx, tenantID, kind, "request", true)
}

// startSync queues a run; wake tells this node's worker to start it (the
// caller runs it itself otherwise).
func (s *Service) startSync(ctx context.Context, tenantID int64, kind SyncKind, by string, wake bool) (SyncRun, error) {
	if !kind.valid() {
		return SyncRun{}, errs.Field("kind", "wecom_bad_sync_kind", "the sync kind is full, reconcile or tags, not %q", kind)
	}
	if _, err := s.loadRow(ctx, s.db, tenantID); err != nil {
		return SyncRun{}, err
	}
	now := db.Millis(s.now())
	var id int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE wecom_sync_runs SET status = 'cancelled', updated_at = $2 WHERE tenant_id = $1 AND status = 'failed'`,
			tenantID, now); err != nil {
			return fmt.Errorf("wecom: unable to cancel the failed sync: %w", err)
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO wecom_sync_runs (tenant_id, kind, status, phase, requested_by, created_at, updated_at)
			VALUES ($1, $2, 'queued', $3, $4, $5, $5) RETURNING id`, tenantID, string(kind), string(phasesOf(kind)[0].phase), by, now).Scan(&id)
		if db.IsUniqueViolation(err) {
			return ErrSyncRunning
		}
		if err != nil {
			return fmt.Errorf("wecom: unable to queue a sync: %w", err)
		}
		return nil
	})
	if err != nil {
		return SyncRun{}, err
	}
	s.log.InfoContext(ctx, "wecom: sync queued", "tenant", tenantID, "run", id, "kind", kind, "by", by)
	if wake {
		nudge(s.syncRT().wake)
	}
	return s.SyncRun(ctx, tenantID, id)
}

// ResumeSync queues the workspace's last run again when it failed, to go on
// from the position it stopped at (after the operator fixed what WeCom
// complained about, e.g. saved the new secret).
func (s *Service) ResumeSync(ctx context.Context, tenantID int64) (SyncRun, error) {
	return s.resumeSync(ctx, tenantID, true)
}

func (s *Service) resumeSync(ctx context.Context, tenantID int64, wake bool) (SyncRun, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM wecom_sync_runs WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1`, tenantID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return SyncRun{}, errs.E(errs.Conflict, "wecom_sync_not_resumable", "there is no WeCom sync to resume; start one")
	}
	if err != nil {
		return SyncRun{}, fmt.Errorf("wecom: unable to find the last sync: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE wecom_sync_runs SET status = 'queued', lease_owner = '', lease_until = 0, updated_at = $3
		WHERE tenant_id = $1 AND id = $2 AND status = 'failed'`, tenantID, id, db.Millis(s.now()))
	if db.IsUniqueViolation(err) {
		return SyncRun{}, ErrSyncRunning
	}
	if err != nil {
		return SyncRun{}, fmt.Errorf("wecom: unable to resume sync run %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		r, err := s.SyncRun(ctx, tenantID, id)
		if err != nil {
			return SyncRun{}, err
		}
		return SyncRun{}, errs.E(errs.Conflict, "wecom_sync_not_resumable", "the last WeCom sync is %s; only a failed sync can be resumed", r.Status)
	}
	s.log.InfoContext(ctx, "wecom: sync resumed", "tenant", tenantID, "run", id)
	if wake {
		nudge(s.syncRT().wake)
	}
	return s.SyncRun(ctx, tenantID, id)
}

// SyncStatus returns a workspace's sync status: the run in progress with its
// phase and progress, the last result, and the next scheduled reconciliation.
func (s *Service) SyncStatus(ctx context.Context, tenantID int64) (SyncReport, error) {
	var out SyncReport
	rows, err := s.db.QueryContext(ctx, `SELECT `+syncCols+` FROM wecom_sync_runs WHERE tenant_id = $1 ORDER BY id DESC LIMIT 20`, tenantID)
	if err != nil {
		return out, fmt.Errorf("wecom: unable to read the sync status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanSync(rows)
		if err != nil {
			return out, err
		}
		run := r.SyncRun
		switch run.Status {
		case SyncQueued, SyncRunning:
			if out.Current == nil {
				out.Current = &run
			}
		default:
			if out.Last == nil {
				out.Last = &run
			}
			if out.LastSuccess == nil && run.Status == SyncDone {
				out.LastSuccess = &run
			}
		}
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("wecom: unable to read the sync status: %w", err)
	}
	if out.LastSuccess == nil {
		r, err := scanSync(s.db.QueryRowContext(ctx, `SELECT `+syncCols+` FROM wecom_sync_runs WHERE tenant_id = $1 AND status = 'done'
			ORDER BY id DESC LIMIT 1`, tenantID))
		if err == nil {
			out.LastSuccess = &r.SyncRun
		} else if !errors.Is(err, sql.ErrNoRows) {
			return out, fmt.Errorf("wecom: unable to read the sync status: %w", err)
		}
	}
	out.Resumable = out.Current == nil && out.Last != nil && out.Last.Status == SyncFailed
	if o := s.syncOpts(); o.ReconcileEvery > 0 && out.Last != nil {
		out.NextReconcileAt = lastEnd(out.Last).Add(o.ReconcileEvery)
	}
	return out, nil
}

func lastEnd(r *SyncRun) time.Time {
	if !r.FinishedAt.IsZero() {
		return r.FinishedAt
	}
	return r.UpdatedAt
}

// SyncNow runs a sync of a workspace to its end in the caller's goroutine
// (tests, the demo, `siyu` commands) and returns the finished run; a run
// that fails is returned with its explanation and the error.
func (s *Service) SyncNow(ctx context.Context, tenantID int64, kind SyncKind) (SyncRun, error) {
	r, err := s.startSync(ctx, tenantID, kind, "request", false)
	if err != nil {
		return SyncRun{}, err
	}
	return s.runSync(ctx, tenantID, r.ID)
}

// ResumeSyncNow resumes the workspace's failed run in the caller's goroutine.
func (s *Service) ResumeSyncNow(ctx context.Context, tenantID int64) (SyncRun, error) {
	r, err := s.resumeSync(ctx, tenantID, false)
	if err != nil {
		return SyncRun{}, err
	}
	return s.runSync(ctx, tenantID, r.ID)
}

// errLeaseLost stops a run whose lease another worker took over.
var errLeaseLost = errors.New("wecom: the sync run's lease was lost to another worker")

// claim takes a queued run, or a running one whose worker stopped renewing
// its lease, for this process.
func (s *Service) claim(ctx context.Context, tenantID, id int64) (bool, error) {
	now := s.now()
	res, err := s.db.ExecContext(ctx, `UPDATE wecom_sync_runs SET status = 'running', lease_owner = $3, lease_until = $4, attempts = attempts + 1,
		started_at = CASE WHEN started_at = 0 THEN $5 ELSE started_at END, error = '', errcode = 0, updated_at = $5
		WHERE tenant_id = $1 AND id = $2 AND (status = 'queued' OR (status = 'running' AND lease_until < $5))`,
		tenantID, id, s.owner, db.Millis(now.Add(s.syncOpts().Lease)), db.Millis(now))
	if err != nil {
		return false, fmt.Errorf("wecom: unable to claim sync run %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// runSync claims a run and works it to its end, failure or shutdown.
func (s *Service) runSync(ctx context.Context, tenantID, id int64) (SyncRun, error) {
	ok, err := s.claim(ctx, tenantID, id)
	if err != nil {
		return SyncRun{}, err
	}
	if !ok {
		r, err := s.SyncRun(ctx, tenantID, id)
		if err != nil {
			return SyncRun{}, err
		}
		return r, errs.E(errs.Conflict, "wecom_sync_held", "sync run %d is %s and held by another worker", id, r.Status)
	}
	row, err := s.syncRun(ctx, s.db, tenantID, id)
	if err != nil {
		return SyncRun{}, err
	}
	j := &syncJob{s: s, row: row}
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	var hb sync.WaitGroup
	hb.Add(1)
	go func() { defer hb.Done(); s.heartbeat(jctx, cancel, tenantID, id, stop) }()
	s.log.InfoContext(ctx, "wecom: sync started", "tenant", tenantID, "run", id, "kind", row.Kind, "phase", row.Phase, "attempt", row.Attempts)
	runErr := j.run(jctx)
	close(stop)
	hb.Wait()
	if runErr != nil && errors.Is(context.Cause(jctx), errLeaseLost) {
		runErr = errLeaseLost
	}
	return s.finishSync(ctx, j, runErr)
}

// heartbeat renews the lease while the run works, and cancels it when
// another worker has taken it over.
func (s *Service) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, tenantID, id int64, stop <-chan struct{}) {
	lease := s.syncOpts().Lease
	t := time.NewTicker(max(lease/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := s.db.ExecContext(ctx, `UPDATE wecom_sync_runs SET lease_until = $4 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 AND status = 'running'`,
			tenantID, id, s.owner, db.Millis(s.now().Add(lease)))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("wecom: unable to renew a sync lease", "tenant", tenantID, "run", id, "err", err)
			}
			continue
		}
		if n, _ := res.RowsAffected(); n == 0 {
			cancel(errLeaseLost)
			return
		}
	}
}

// finishSync records how a run ended: done, failed with the explanation, or
// (shutdown) left running with its lease freed so the next worker goes on.
func (s *Service) finishSync(ctx context.Context, j *syncJob, runErr error) (SyncRun, error) {
	tenantID, id := j.row.tenantID, j.row.ID
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := db.Millis(s.now())
	counts, _ := json.Marshal(j.row.Counts)
	switch {
	case errors.Is(runErr, errLeaseLost):
		s.log.WarnContext(bg, "wecom: sync taken over by another worker", "tenant", tenantID, "run", id)
		r, _ := s.SyncRun(bg, tenantID, id)
		return r, runErr
	case runErr != nil && ctx.Err() != nil:
		// Shutting down: free the lease so the next start, or another node,
		// goes on from the saved position at once.
		if _, err := s.db.ExecContext(bg, `UPDATE wecom_sync_runs SET lease_owner = '', lease_until = 0, updated_at = $4
			WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3`, tenantID, id, s.owner, now); err != nil {
			s.log.Warn("wecom: unable to release a sync lease", "tenant", tenantID, "run", id, "err", err)
		}
		s.log.InfoContext(bg, "wecom: sync interrupted; it goes on from where it stopped", "tenant", tenantID, "run", id, "phase", j.row.Phase)
		r, _ := s.SyncRun(bg, tenantID, id)
		return r, ctx.Err()
	case runErr != nil:
		code, msg, fix := explainSync(runErr)
		s.log.ErrorContext(bg, "wecom: sync failed", "tenant", tenantID, "run", id, "phase", j.row.Phase, "errcode", code, "err", runErr)
		if _, err := s.db.ExecContext(bg, `UPDATE wecom_sync_runs SET status = 'failed', error = $4, errcode = $5, counts = $6, lease_owner = '',
			lease_until = 0, finished_at = $7, updated_at = $7 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3`,
			tenantID, id, s.owner, truncate(msg+"\n"+fix, 2000), code, string(counts), now); err != nil {
			return SyncRun{}, fmt.Errorf("wecom: unable to record the failure of sync run %d: %w (it failed with: %v)", id, err, runErr)
		}
		r, err := s.SyncRun(bg, tenantID, id)
		if err != nil {
			return SyncRun{}, err
		}
		return r, fmt.Errorf("wecom: sync run %d failed in phase %s: %w", id, j.row.Phase, runErr)
	}
	if _, err := s.db.ExecContext(bg, `UPDATE wecom_sync_runs SET status = 'done', phase = 'done', phase_done = 0, phase_total = 0, state = '{}',
		counts = $4, lease_owner = '', lease_until = 0, finished_at = $5, updated_at = $5 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3`,
		tenantID, id, s.owner, string(counts), now); err != nil {
		return SyncRun{}, fmt.Errorf("wecom: unable to record the end of sync run %d: %w", id, err)
	}
	c := j.row.Counts
	s.log.InfoContext(bg, "wecom: sync done", "tenant", tenantID, "run", id, "kind", j.row.Kind, "contacts", c.Contacts,
		"new_relations", c.NewRelations, "ended_relations", c.EndedRelations, "groups", c.Groups, "calls", c.Calls)
	return s.SyncRun(bg, tenantID, id)
}

// explainSync says why a run failed: WeCom's explanation and fix for a WeCom
// error, the message of a Siyu error, or the error itself.
func explainSync(err error) (code int, msg, fix string) {
	if ErrorCode(err) != 0 {
		code, msg, fix = explain(err)
		var ae *APIError
		if errors.As(err, &ae) {
			msg = fmt.Sprintf("WeCom refused %s (error %d): %s", ae.API, ae.Code, msg)
		}
		return code, msg, fix
	}
	if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
		return 0, e.Message, ""
	}
	var te *transientError
	if errors.As(err, &te) {
		return -1, "Siyu could not reach WeCom: " + err.Error(), "Check that this server can reach the WeCom API, then resume the sync."
	}
	return 0, "The sync stopped on an internal error: " + err.Error(), "Resume the sync; if it stops again, report it."
}

// syncJob is a run being worked by this process.
type syncJob struct {
	s   *Service
	row syncRow
	c   *Client
}

// run works the run's phases from its saved position to the end.
func (j *syncJob) run(ctx context.Context) error {
	phases := phasesOf(j.row.Kind)
	start := 0
	for i, p := range phases {
		if p.phase == j.row.Phase {
			start = i
		}
	}
	for i := start; i < len(phases); i++ {
		p := phases[i].phase
		if j.row.Phase != p {
			if err := j.advance(ctx, p); err != nil {
				return err
			}
		}
		var err error
		switch p {
		case PhaseStaff:
			err = j.syncStaff(ctx)
		case PhaseCorpTags:
			err = j.syncCorpTags(ctx)
		case PhaseContacts:
			err = j.syncContacts(ctx)
		case PhaseEndedContacts:
			err = j.endContacts(ctx)
		case PhaseCustomerTags:
			err = j.syncCustomerTags(ctx)
		case PhaseGroups:
			err = j.syncGroups(ctx)
		case PhaseEndedGroups:
			err = j.endGroups(ctx)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// client returns the workspace's API client, fetched once per run (and
// again after a resume, so a secret fixed meanwhile is used).
func (j *syncJob) client(ctx context.Context) (*Client, error) {
	if j.c == nil {
		c, err := j.s.Client(ctx, j.row.tenantID)
		if err != nil {
			return nil, err
		}
		j.c = c
	}
	return j.c, nil
}

// called counts one API call.
func (j *syncJob) called(api string) {
	if j.row.Counts.Calls == nil {
		j.row.Counts.Calls = map[string]int{}
	}
	j.row.Counts.Calls[api]++
}

// advance moves the run to the next phase, its position reset.
func (j *syncJob) advance(ctx context.Context, p SyncPhase) error {
	follow := j.row.state.FollowUsers
	j.row.Phase, j.row.PhaseDone, j.row.PhaseTotal = p, 0, 0
	j.row.state = syncState{FollowUsers: follow}
	return j.save(ctx, j.s.db)
}

// save stores the run's position and counts, in tx with the page they follow,
// as long as this process holds the lease.
func (j *syncJob) save(ctx context.Context, q db.Querier) error {
	state, err := json.Marshal(j.row.state)
	if err != nil {
		return fmt.Errorf("wecom: unable to encode the sync position: %w", err)
	}
	counts, err := json.Marshal(j.row.Counts)
	if err != nil {
		return fmt.Errorf("wecom: unable to encode the sync counts: %w", err)
	}
	now := j.s.now()
	res, err := q.ExecContext(ctx, `UPDATE wecom_sync_runs SET phase = $4, phase_done = $5, phase_total = $6, state = $7, counts = $8,
		lease_until = $9, updated_at = $10 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 AND status = 'running'`,
		j.row.tenantID, j.row.ID, j.s.owner, string(j.row.Phase), j.row.PhaseDone, j.row.PhaseTotal, string(state), string(counts),
		db.Millis(now.Add(j.s.syncOpts().Lease)), db.Millis(now))
	if err != nil {
		return fmt.Errorf("wecom: unable to save the sync position: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	return nil
}

// commit applies fn and saves the run's position in one transaction.
func (j *syncJob) commit(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return j.s.db.Tx(ctx, func(tx *sql.Tx) error {
		if fn != nil {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return j.save(ctx, tx)
	})
}

// syncMessageID names a run in merge records and timeline keys.
func (j *syncJob) messageID() string { return fmt.Sprintf("sync:%d", j.row.ID) }

// SyncDue works the sync runs that are due in the caller's goroutine: queued
// runs, and running ones whose worker died (their lease expired). It returns
// how many it worked.
func (s *Service) SyncDue(ctx context.Context) (int, error) {
	type due struct{ tenantID, id int64 }
	var runs []due
	rows, err := s.db.QueryContext(ctx, `SELECT tenant_id, id FROM wecom_sync_runs WHERE status = 'queued' OR (status = 'running' AND lease_until < $1)
		ORDER BY id LIMIT 20`, db.Millis(s.now()))
	if err != nil {
		return 0, fmt.Errorf("wecom: unable to find due syncs: %w", err)
	}
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.tenantID, &d.id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("wecom: unable to find due syncs: %w", err)
		}
		runs = append(runs, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("wecom: unable to find due syncs: %w", err)
	}
	n := 0
	for _, d := range runs {
		// A failed run is logged and recorded by runSync itself.
		_, err := s.runSync(ctx, d.tenantID, d.id)
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if errs.CodeOf(err) == "wecom_sync_held" {
			continue // another worker took it first
		}
		n++
	}
	return n, nil
}

// ScheduleSyncs queues the syncs that are due: a full sync for a workspace
// that connected WeCom and never synced, and a reconciliation once
// ReconcileEvery has passed since the last run ended. It returns how many it
// queued.
func (s *Service) ScheduleSyncs(ctx context.Context) (int, error) {
	o := s.syncOpts()
	rows, err := s.db.QueryContext(ctx, `SELECT w.tenant_id,
		(SELECT count(*) FROM wecom_sync_runs r WHERE r.tenant_id = w.tenant_id),
		(SELECT count(*) FROM wecom_sync_runs r WHERE r.tenant_id = w.tenant_id AND r.status IN ('queued', 'running')),
		(SELECT coalesce(max(CASE WHEN r.finished_at > 0 THEN r.finished_at ELSE r.updated_at END), 0) FROM wecom_sync_runs r WHERE r.tenant_id = w.tenant_id)
		FROM wecom_settings w ORDER BY w.tenant_id`)
	if err != nil {
		return 0, fmt.Errorf("wecom: unable to read the sync schedule: %w", err)
	}
	type due struct {
		tenantID int64
		kind     SyncKind
		by       string
	}
	var todo []due
	now := db.Millis(s.now())
	for rows.Next() {
		var tenantID, total, active, last int64
		if err := rows.Scan(&tenantID, &total, &active, &last); err != nil {
			rows.Close()
			return 0, fmt.Errorf("wecom: unable to read the sync schedule: %w", err)
		}
		switch {
		case active > 0:
		case total == 0 && !o.NoSyncOnConnect:
			todo = append(todo, due{tenantID, SyncFull, "connect"})
		case total > 0 && o.ReconcileEvery > 0 && last+o.ReconcileEvery.Milliseconds() <= now:
			todo = append(todo, due{tenantID, SyncReconcile, "schedule"})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("wecom: unable to read the sync schedule: %w", err)
	}
	n := 0
	for _, d := range todo {
		if _, err := s.startSync(ctx, d.tenantID, d.kind, d.by, true); err != nil {
			if errors.Is(err, ErrSyncRunning) || errs.Is(err, errs.NotFound) {
				continue // queued by another node meanwhile, or disconnected
			}
			return n, err
		}
		n++
	}
	return n, nil
}

// RunSync is the sync worker: it starts the runs queued on any node (at once
// when queued on this one), takes over runs whose worker died, queues the
// syncs that are due (on connect, reconciliation on the schedule), and
// pushes changes of bound tags to WeCom (mark_tag) from their durable queue.
// It returns when ctx is done.
func (s *Service) RunSync(ctx context.Context) {
	rt := s.syncRT()
	rt.observe.Do(func() { s.tags.Observe(tag.ObserverFunc(s.tagsChanged)) })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.runTagMarks(ctx) }()
	defer wg.Wait()
	t := time.NewTicker(max(s.o.Interval, time.Second))
	defer t.Stop()
	var lastSchedule time.Time
	for {
		if time.Since(lastSchedule) >= time.Minute {
			lastSchedule = time.Now()
			if _, err := s.ScheduleSyncs(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("wecom: unable to schedule syncs", "err", err)
			}
		}
		if _, err := s.SyncDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("wecom: sync worker failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-rt.wake:
		}
	}
}
