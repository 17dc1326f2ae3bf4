package tag

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// A run of a rule over the whole workspace — a back-fill asked for through
// the API, or the daily run of a schedule rule — is a job: a row of
// tag_rule_jobs that a worker leases and processes in chunks, writing its
// progress after each. What a run does:
//
//  1. the condition tree selects customers (audience engine, brought up to
//     date with the database first): total;
//  2. in chunks of BulkChunk, in id order, the expression (when the rule has
//     one) filters them, with the customer's attributes but no event or
//     order (event and order are nil): matched;
//  3. the rule's tags are added to and removed from the matched customers,
//     idempotently (a customer already as asked is unchanged): tagged,
//     untagged count the customers whose tags changed;
//  4. with retract, the rule's added tags are taken back from customers who
//     hold them through this rule (source_ref rule:<id>) but no longer match.
//
// A back-fill does not replay triggers: an event- or order-triggered rule is
// back-filled by its conditions alone, which is why a back-fill needs
// conditions (express "bought matcha" or "viewed 3 times" as behaviour
// conditions of the tree to back-fill on them).

// JobKind says why a job runs a rule over the workspace.
type JobKind string

// Job kinds.
const (
	JobBackfill JobKind = "backfill" // asked for through the API
	JobSchedule JobKind = "schedule" // the daily run of a schedule rule
)

// JobStatus is where a job stands.
type JobStatus string

// Job statuses.
const (
	JobQueued    JobStatus = "queued"
	JobRunning   JobStatus = "running"
	JobDone      JobStatus = "done"
	JobFailed    JobStatus = "failed"
	JobCancelled JobStatus = "cancelled" // the rule was deleted or disabled
)

// RuleJob is one run of a rule over the workspace, with its progress.
type RuleJob struct {
	ID         int64     `json:"id"`
	RuleID     int64     `json:"rule_id"`
	Kind       JobKind   `json:"kind" enum:"backfill,schedule"`
	Status     JobStatus `json:"status" enum:"queued,running,done,failed,cancelled"`
	Total      int64     `json:"total" doc:"Customers the rule's conditions select."`
	Done       int64     `json:"done" doc:"Of those, customers processed so far."`
	Matched    int64     `json:"matched" doc:"Customers processed that also passed the expression (all of them when the rule has none)."`
	Tagged     int64     `json:"tagged" doc:"Customers given at least one tag."`
	Untagged   int64     `json:"untagged" doc:"Customers that lost at least one tag (remove actions, retract)."`
	Error      string    `json:"error,omitempty" doc:"Why the job failed, or the first expression error met (the customer was skipped)."`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// jobLease is how long a worker holds a job without writing progress.
const jobLease = time.Minute

const jobCols = `id, rule_id, kind, status, total, done, matched, tagged, untagged, error, created_by, created_at, started_at, finished_at`

func scanJob(row interface{ Scan(...any) error }) (RuleJob, error) {
	var j RuleJob
	var kind, status string
	var created int64
	var started, finished sql.NullInt64
	err := row.Scan(&j.ID, &j.RuleID, &kind, &status, &j.Total, &j.Done, &j.Matched, &j.Tagged, &j.Untagged, &j.Error, &j.CreatedBy,
		&created, &started, &finished)
	j.Kind, j.Status = JobKind(kind), JobStatus(status)
	j.CreatedAt, j.StartedAt, j.FinishedAt = db.FromMillis(created), db.NullMillis(started), db.NullMillis(finished)
	return j, err
}

// StartBackfill queues a back-fill of a rule over the existing customers
// (see the comment at the top of this file for what it does) and returns the
// job, whose progress Backfill reports. A rule without conditions cannot be
// back-filled; a rule with a back-fill queued or running is a Conflict
// (backfill_running). Disabled rules can be back-filled.
func (rs *Rules) StartBackfill(ctx context.Context, p tenant.Principal, ruleID int64) (RuleJob, error) {
	r, err := rs.Rule(ctx, p.TenantID, ruleID)
	if err != nil {
		return RuleJob{}, err
	}
	if r.Conditions == nil {
		return RuleJob{}, errs.E(errs.Invalid, "conditions_required",
			"a back-fill applies the rule's conditions to every customer (it does not replay its %s trigger); this rule has none, "+
				"so it would apply to everyone: add conditions first, e.g. the behaviour the trigger stands for", r.Trigger.Kind)
	}
	now := db.Millis(rs.now())
	var id int64
	err = rs.db.Tx(ctx, func(tx *sql.Tx) error {
		var busy int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tag_rule_jobs WHERE tenant_id = $1 AND rule_id = $2 AND kind = $3 AND status IN ($4, $5)`,
			p.TenantID, ruleID, string(JobBackfill), string(JobQueued), string(JobRunning)).Scan(&busy); err != nil {
			return fmt.Errorf("tag: unable to look for running back-fills: %w", err)
		}
		if busy > 0 {
			return errs.E(errs.Conflict, "backfill_running", "a back-fill of rule %q is already queued or running", r.Name)
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO tag_rule_jobs (tenant_id, rule_id, kind, status, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`, p.TenantID, ruleID, string(JobBackfill), string(JobQueued), p.Name, now).Scan(&id); err != nil {
			return fmt.Errorf("tag: unable to queue back-fill: %w", err)
		}
		return rs.tags.auditTx(ctx, tx, p, "tag_rule.backfill", "tag_rule", ruleID, r.Name)
	})
	if err != nil {
		return RuleJob{}, err
	}
	rs.poke()
	return rs.Job(ctx, p.TenantID, id)
}

func (rs *Rules) poke() {
	select {
	case rs.wake <- struct{}{}:
	default:
	}
}

// Job returns one job.
func (rs *Rules) Job(ctx context.Context, tenantID, id int64) (RuleJob, error) {
	j, err := scanJob(rs.db.QueryRowContext(ctx, `SELECT `+jobCols+` FROM tag_rule_jobs WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return RuleJob{}, errs.NotFoundf("tag_rule_job", "no rule job with id %d", id)
	}
	if err != nil {
		return RuleJob{}, fmt.Errorf("tag: unable to fetch rule job %d: %w", id, err)
	}
	return j, nil
}

// Backfill returns the latest back-fill of a rule.
func (rs *Rules) Backfill(ctx context.Context, tenantID, ruleID int64) (RuleJob, error) {
	if _, err := rs.Rule(ctx, tenantID, ruleID); err != nil {
		return RuleJob{}, err
	}
	j, err := scanJob(rs.db.QueryRowContext(ctx, `SELECT `+jobCols+` FROM tag_rule_jobs WHERE tenant_id = $1 AND rule_id = $2 AND kind = $3
		ORDER BY id DESC LIMIT 1`, tenantID, ruleID, string(JobBackfill)))
	if errors.Is(err, sql.ErrNoRows) {
		return RuleJob{}, errs.NotFoundf("tag_rule_job", "rule %d has never been back-filled", ruleID)
	}
	if err != nil {
		return RuleJob{}, fmt.Errorf("tag: unable to fetch back-fill of rule %d: %w", ruleID, err)
	}
	return j, nil
}

// Jobs lists a rule's latest runs (back-fills and schedule runs), newest
// first, at most 50.
func (rs *Rules) Jobs(ctx context.Context, tenantID, ruleID int64) ([]RuleJob, error) {
	if _, err := rs.Rule(ctx, tenantID, ruleID); err != nil {
		return nil, err
	}
	rows, err := rs.db.QueryContext(ctx, `SELECT `+jobCols+` FROM tag_rule_jobs WHERE tenant_id = $1 AND rule_id = $2 ORDER BY id DESC LIMIT 50`,
		tenantID, ruleID)
	if err != nil {
		return nil, fmt.Errorf("tag: unable to list jobs of rule %d: %w", ruleID, err)
	}
	defer rows.Close()
	out := []RuleJob{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("tag: unable to read rule job: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tag: unable to list jobs of rule %d: %w", ruleID, err)
	}
	return out, nil
}

// queueDue queues the daily run of every enabled schedule rule whose time
// has come and moves its next run to tomorrow. The move is a compare-and-set
// on next_run_at, so of several nodes one queues the run.
func (rs *Rules) queueDue(ctx context.Context) error {
	now := rs.now()
	rows, err := rs.db.QueryContext(ctx, `SELECT id, tenant_id, next_run_at, definition FROM tag_rules
		WHERE next_run_at IS NOT NULL AND next_run_at <= $1 AND enabled ORDER BY next_run_at LIMIT 100`, db.Millis(now))
	if err != nil {
		return fmt.Errorf("tag: unable to find due rules: %w", err)
	}
	type due struct {
		id, tenantID, at int64
		def              string
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.tenantID, &d.at, &d.def); err != nil {
			rows.Close()
			return fmt.Errorf("tag: unable to read due rule: %w", err)
		}
		list = append(list, d)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("tag: unable to find due rules: %w", err)
	}
	queued := false
	for _, d := range list {
		r, err := rs.Rule(ctx, d.tenantID, d.id)
		if err != nil {
			return err
		}
		loc, err := rs.location(ctx, d.tenantID)
		if err != nil {
			return err
		}
		next := db.Millis(nextRun(r.Trigger.At, loc, now))
		err = rs.db.Tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE tag_rules SET next_run_at = $3 WHERE tenant_id = $1 AND id = $2 AND next_run_at = $4`,
				d.tenantID, d.id, next, d.at)
			if err != nil {
				return fmt.Errorf("tag: unable to move the next run of rule %d: %w", d.id, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil // another node took it
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO tag_rule_jobs (tenant_id, rule_id, kind, status, created_by, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $6)`, d.tenantID, d.id, string(JobSchedule), string(JobQueued), "schedule", db.Millis(now))
			if err != nil {
				return fmt.Errorf("tag: unable to queue the run of rule %d: %w", d.id, err)
			}
			queued = true
			return nil
		})
		if err != nil {
			return err
		}
	}
	if queued {
		rs.poke()
	}
	return nil
}

// work runs queued jobs (and jobs whose worker died, once their lease has
// expired) until ctx ends, one at a time.
func (rs *Rules) work(ctx context.Context) {
	t := time.NewTicker(rs.deps.Tick)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			ran, err := rs.runNextJob(ctx)
			if err != nil {
				if ctx.Err() == nil {
					rs.log.Error("tag rule: job failed to run", "err", err)
				}
				break
			}
			if !ran {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-rs.wake:
		}
	}
}

// RunJobs runs every job queued now, on the caller's goroutine, and returns
// how many ran (tests, the CLI).
func (rs *Rules) RunJobs(ctx context.Context) (int, error) {
	n := 0
	for {
		ran, err := rs.runNextJob(ctx)
		if err != nil || !ran {
			return n, err
		}
		n++
	}
}

// runNextJob claims one job and runs it to its end.
func (rs *Rules) runNextJob(ctx context.Context) (bool, error) {
	now := db.Millis(rs.now())
	rows, err := rs.db.QueryContext(ctx, `SELECT tenant_id, id FROM tag_rule_jobs WHERE status IN ($1, $2) AND lease_until < $3 ORDER BY id LIMIT 10`,
		string(JobQueued), string(JobRunning), now)
	if err != nil {
		return false, fmt.Errorf("tag: unable to look for rule jobs: %w", err)
	}
	var cands [][2]int64
	for rows.Next() {
		var c [2]int64
		if err := rows.Scan(&c[0], &c[1]); err != nil {
			rows.Close()
			return false, fmt.Errorf("tag: unable to read rule job: %w", err)
		}
		cands = append(cands, c)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return false, fmt.Errorf("tag: unable to look for rule jobs: %w", err)
	}
	for _, c := range cands {
		// A compare-and-set on the lease: of several workers, one wins. A
		// job whose worker died starts over; every step is idempotent.
		res, err := rs.db.ExecContext(ctx, `UPDATE tag_rule_jobs SET status = $3, lease_owner = $4, lease_until = $5, started_at = $6,
			done = 0, matched = 0, tagged = 0, untagged = 0, updated_at = $6
			WHERE tenant_id = $1 AND id = $2 AND status IN ($7, $8) AND lease_until < $6`,
			c[0], c[1], string(JobRunning), rs.owner, now+jobLease.Milliseconds(), now, string(JobQueued), string(JobRunning))
		if err != nil {
			return false, fmt.Errorf("tag: unable to claim rule job %d: %w", c[1], err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		j, err := rs.Job(ctx, c[0], c[1])
		if err != nil {
			return false, err
		}
		rs.runJob(ctx, c[0], j)
		return true, nil
	}
	return false, nil
}

// progress is a job's counters.
type progress struct {
	total, done, matched, tagged, untagged int64
	exprErr                                string
}

// runJob runs a claimed job and records how it ended.
func (rs *Rules) runJob(ctx context.Context, tenantID int64, j RuleJob) {
	start := time.Now()
	status, msg := JobDone, ""
	var pr progress
	r, err := rs.Rule(ctx, tenantID, j.RuleID)
	switch {
	case errs.Is(err, errs.NotFound):
		status, msg = JobCancelled, "the rule was deleted"
	case err != nil:
		status, msg = JobFailed, errorText(err)
	case j.Kind == JobSchedule && !r.Enabled:
		status, msg = JobCancelled, "the rule was disabled"
	case r.Conditions == nil:
		status, msg = JobFailed, "the rule has no conditions to select customers by"
	default:
		pr, err = rs.sweep(ctx, tenantID, j, r)
		switch {
		case ctx.Err() != nil:
			// Shutting down: free the lease so another worker (or the next
			// start) runs the job again.
			bg := context.WithoutCancel(ctx)
			if _, err := rs.db.ExecContext(bg, `UPDATE tag_rule_jobs SET lease_until = 0 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3`,
				tenantID, j.ID, rs.owner); err != nil {
				rs.log.Warn("tag rule: unable to release job lease", "job", j.ID, "err", err)
			}
			return
		case errors.Is(err, errLostLease):
			rs.log.Warn("tag rule: job taken over by another worker", "job", j.ID)
			return
		case err != nil:
			status, msg = JobFailed, errorText(err)
			rs.recordError(tenantID, r.ID, err)
		case pr.exprErr != "":
			msg = pr.exprErr
		}
	}
	if j.Kind == JobSchedule && status == JobDone {
		rs.statsMu.Lock()
		d := rs.delta(tenantID, r.ID)
		d.fired += pr.matched
		d.changed += pr.tagged + pr.untagged
		if pr.matched > 0 {
			d.lastFired = rs.now()
		}
		rs.statsMu.Unlock()
	}
	now := db.Millis(rs.now())
	if _, err := rs.db.ExecContext(context.WithoutCancel(ctx), `UPDATE tag_rule_jobs SET status = $3, error = $4, total = $5, done = $6, matched = $7,
		tagged = $8, untagged = $9, lease_owner = '', lease_until = 0, finished_at = $10, updated_at = $10
		WHERE tenant_id = $1 AND id = $2 AND lease_owner = $11`,
		tenantID, j.ID, string(status), msg, pr.total, pr.done, pr.matched, pr.tagged, pr.untagged, now, rs.owner); err != nil {
		rs.log.Error("tag rule: unable to record the end of a job", "job", j.ID, "err", err)
	}
	rs.log.Info("tag rule job finished", "tenant", tenantID, "rule", j.RuleID, "job", j.ID, "kind", j.Kind, "status", status,
		"total", pr.total, "matched", pr.matched, "tagged", pr.tagged, "untagged", pr.untagged, "error", msg,
		"took", time.Since(start).Round(time.Millisecond))
}

var errLostLease = errors.New("tag: lost the lease of the rule job")

// sweep runs a rule over the customers its conditions select (steps 1–4 at
// the top of this file), writing progress after each chunk.
func (rs *Rules) sweep(ctx context.Context, tenantID int64, j RuleJob, r Rule) (progress, error) {
	var pr progress
	c, err := compileRule(r)
	if err != nil {
		return pr, err
	}
	// A run over the workspace sees every change committed before it
	// starts, not only those the index has followed so far.
	if err := rs.deps.Audiences.Sync(ctx, tenantID); err != nil {
		return pr, err
	}
	res, err := rs.deps.Audiences.Evaluate(ctx, tenantID, *r.Conditions)
	if err != nil {
		return pr, prefixed("conditions", err)
	}
	pr.total = res.Count
	if err := rs.saveProgress(ctx, tenantID, j.ID, pr); err != nil {
		return pr, err
	}
	app := r.application()
	var matched *roaring64.Bitmap
	if r.Retract {
		matched = roaring64.New()
	}
	var refs map[int64]string // tag id → group/name, for expressions
	count := func(changes []Change) {
		for _, ch := range changes {
			if len(ch.Added) > 0 {
				pr.tagged++
			}
			if len(ch.Removed) > 0 {
				pr.untagged++
			}
		}
	}
	for after := int64(0); ; {
		ids := res.IDs(after, BulkChunk)
		if len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
		keep := ids
		if c.prog != nil {
			if refs == nil {
				if refs, err = rs.tagNames(ctx, tenantID); err != nil {
					return pr, err
				}
			}
			if keep, err = rs.filterExpr(ctx, tenantID, c, ids, refs, &pr); err != nil {
				return pr, err
			}
		}
		if len(keep) > 0 {
			changes, err := rs.applyChunk(ctx, tenantID, r.Add, r.Remove, keep, app)
			if err != nil {
				return pr, err
			}
			count(changes)
		}
		if matched != nil {
			for _, id := range keep {
				matched.Add(uint64(id))
			}
		}
		pr.done += int64(len(ids))
		pr.matched += int64(len(keep))
		if err := rs.saveProgress(ctx, tenantID, j.ID, pr); err != nil {
			return pr, err
		}
	}
	if matched == nil {
		return pr, nil
	}
	for _, tagID := range r.Add {
		for after := int64(0); ; {
			ids, err := scanIDs(rs.db.QueryContext(ctx, `SELECT customer_id FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2
				AND source = $3 AND source_ref = $4 AND customer_id > $5 ORDER BY customer_id LIMIT `+fmt.Sprint(BulkChunk),
				tenantID, tagID, string(SourceRule), app.SourceRef, after))
			if err != nil {
				return pr, fmt.Errorf("tag: unable to list customers of rule %d: %w", r.ID, err)
			}
			if len(ids) == 0 {
				break
			}
			after = ids[len(ids)-1]
			var gone []int64
			for _, id := range ids {
				if !matched.Contains(uint64(id)) {
					gone = append(gone, id)
				}
			}
			if len(gone) > 0 {
				changes, err := rs.applyChunk(ctx, tenantID, nil, []int64{tagID}, gone, app)
				if err != nil {
					return pr, err
				}
				count(changes)
				if err := rs.saveProgress(ctx, tenantID, j.ID, pr); err != nil {
					return pr, err
				}
			}
		}
	}
	return pr, nil
}

// saveProgress writes a job's counters and renews its lease; a lease another
// worker took stops the job.
func (rs *Rules) saveProgress(ctx context.Context, tenantID, jobID int64, pr progress) error {
	now := db.Millis(rs.now())
	res, err := rs.db.ExecContext(ctx, `UPDATE tag_rule_jobs SET total = $3, done = $4, matched = $5, tagged = $6, untagged = $7,
		lease_until = $8, updated_at = $9 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $10 AND status = $11`,
		tenantID, jobID, pr.total, pr.done, pr.matched, pr.tagged, pr.untagged, now+jobLease.Milliseconds(), now, rs.owner, string(JobRunning))
	if err != nil {
		return fmt.Errorf("tag: unable to write progress of rule job %d: %w", jobID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLostLease
	}
	return nil
}

// tagNames maps every tag of the workspace to its group/name.
func (rs *Rules) tagNames(ctx context.Context, tenantID int64) (map[int64]string, error) {
	all, err := rs.tags.AllTags(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]string, len(all))
	for _, t := range all {
		out[t.ID] = t.Ref
	}
	return out, nil
}

// filterExpr keeps the customers for whom the rule's expression is true.
// A customer whose run fails is skipped; the first failure is kept for the
// job and the rule.
func (rs *Rules) filterExpr(ctx context.Context, tenantID int64, c *compiled, ids []int64, refs map[int64]string, pr *progress) ([]int64, error) {
	attrs, err := rs.deps.Profiles.Attributes(ctx, tenantID, ids)
	if err != nil {
		return nil, err
	}
	held, err := rs.tags.TagIDsOf(ctx, tenantID, ids)
	if err != nil {
		return nil, err
	}
	var keep []int64
	for _, id := range ids {
		a, ok := attrs[id]
		if !ok {
			continue
		}
		names := make([]string, 0, len(held[id]))
		for _, t := range held[id] {
			names = append(names, refs[t])
		}
		a["tags"] = names
		f := &facts{tenantID: tenantID, customerID: id, attrs: a, loaded: true}
		ok, err := rs.runExpr(ctx, c.prog, f)
		if err != nil {
			if pr.exprErr == "" {
				pr.exprErr = fmt.Sprintf("customer %d: %s", id, errorText(err))
				rs.recordError(tenantID, c.ID, fmt.Errorf("customer %d: %w", id, err))
			}
			continue
		}
		if ok {
			keep = append(keep, id)
		}
	}
	return keep, nil
}

// applyChunk adds and removes tags of up to BulkChunk customers in one
// transaction, like a bulk change, and returns what changed per customer.
func (rs *Rules) applyChunk(ctx context.Context, tenantID int64, add, remove, ids []int64, a Application) ([]Change, error) {
	s := rs.tags
	a = a.stamped(s.now())
	surv, err := survivors(ctx, s.db, tenantID, ids)
	if err != nil {
		return nil, err
	}
	targets := make([]int64, 0, len(surv))
	for _, sid := range surv {
		targets = append(targets, sid)
	}
	targets = uniq(targets)
	if len(targets) == 0 {
		return nil, nil
	}
	unlock := s.lockCustomers(targets)
	defer unlock()
	var changes []Change
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var all []Change
		for _, op := range []struct {
			ids []int64
			add bool
		}{{add, true}, {remove, false}} {
			if len(op.ids) == 0 {
				continue
			}
			refs, err := tagRefs(ctx, tx, tenantID, op.ids)
			if err != nil {
				return err
			}
			for _, t := range refs {
				cs, err := writeChunk(ctx, tx, tenantID, t, targets, op.add, a)
				if err != nil {
					return err
				}
				all = append(all, cs...)
			}
		}
		changes = mergeChanges(all)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.notify(tenantID, changes)
	return changes, nil
}
