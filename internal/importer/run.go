package importer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// errStopped ends processing a job that is no longer this worker's: it was
// cancelled, or its lease passed to another worker.
var errStopped = errors.New("importer: job no longer held by this worker")

// plan compiles a job's mapping with its workspace's zone and One ID rules.
func (s *Service) plan(ctx context.Context, tenantID int64, j Job) (*plan, error) {
	w, err := s.tenants.Workspace(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	rules, err := s.customers.IdentityRules(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return newPlan(j, w.Location(), rules), nil
}

// DryRun validates every row of a job without writing any, stores the
// report on the job and returns the job.
func (s *Service) DryRun(ctx context.Context, p tenant.Principal, id int64) (Job, error) {
	if err := p.Require(tenant.PermCustomersWrite); err != nil {
		return Job{}, err
	}
	j, err := s.job(ctx, s.db, p.TenantID, id)
	if err != nil {
		return Job{}, err
	}
	if j.Status != StatusUploaded && j.Status != StatusDryRun {
		return Job{}, errs.E(errs.Conflict, "import_started", "the import has already run (%s)", j.Status)
	}
	if err := j.Mapping.validate(j.Kind, j.Columns); err != nil {
		return Job{}, err
	}
	data, err := s.file(ctx, p.TenantID, id)
	if err != nil {
		return Job{}, err
	}
	pl, err := s.plan(ctx, p.TenantID, j)
	if err != nil {
		return Job{}, err
	}
	rep := Report{ErrorsByCode: map[string]int64{}, Errors: []RowError{}}
	var keep []RowError
	count := func(batch []unit) {
		for _, u := range batch {
			n := int64(len(u.rows))
			rep.Rows += n
			if len(u.errs) == 0 {
				rep.Valid += n
				continue
			}
			rep.Invalid += n
			for _, e := range u.errs {
				rep.ErrorsByCode[e.Code]++
				if len(rep.Errors) < reportErrors {
					rep.Errors = append(rep.Errors, e)
				}
				if len(keep) < s.o.MaxStoredErrors {
					keep = append(keep, e)
				}
			}
		}
	}
	units := newUnits(pl, 1)
	err = eachRow(data, j, 0, func(r dataRow) error {
		count(units.add(r))
		return ctx.Err()
	})
	if err != nil {
		return Job{}, err
	}
	count(units.rest())
	rep.FinishedAt = s.o.Now().UTC().Truncate(time.Millisecond)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE import_jobs SET status = $3, dry_run = $4, rows_total = $5, updated_at = $6
			WHERE tenant_id = $1 AND id = $2 AND status IN ($7, $8)`,
			p.TenantID, id, StatusDryRun, mustJSON(rep), rep.Rows, db.Millis(s.o.Now()), StatusUploaded, StatusDryRun)
		if err != nil {
			return fmt.Errorf("importer: unable to save dry run: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.E(errs.Conflict, "import_started", "the import started while the dry run was checking it")
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM import_row_errors WHERE tenant_id = $1 AND job_id = $2 AND phase = $3`,
			p.TenantID, id, PhaseDryRun); err != nil {
			return fmt.Errorf("importer: unable to clear dry-run errors: %w", err)
		}
		stored := 0
		return s.insertRowErrors(ctx, tx, p.TenantID, id, PhaseDryRun, &stored, keep)
	})
	if err != nil {
		return Job{}, err
	}
	return s.Job(ctx, p.TenantID, id, p.Can(tenant.PermPIIRead))
}

// Start queues a job to run; a worker picks it up at once. A failed job
// resumes after its last committed chunk.
func (s *Service) Start(ctx context.Context, p tenant.Principal, id int64) (Job, error) {
	if err := s.start(ctx, p, id, ""); err != nil {
		return Job{}, err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return s.Job(ctx, p.TenantID, id, p.Can(tenant.PermPIIRead))
}

// start marks a job running, leased to owner ("" leaves it to any worker).
func (s *Service) start(ctx context.Context, p tenant.Principal, id int64, owner string) error {
	if err := p.Require(tenant.PermCustomersWrite); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		j, err := s.job(ctx, tx, p.TenantID, id)
		if err != nil {
			return err
		}
		switch j.Status {
		case StatusUploaded, StatusDryRun, StatusFailed:
		case StatusRunning:
			return errs.E(errs.Conflict, "import_running", "the import is already running")
		default:
			return errs.E(errs.Conflict, "import_finished", "the import is %s: upload the file again to import it again", j.Status)
		}
		if err := j.Mapping.validate(j.Kind, j.Columns); err != nil {
			return err
		}
		now := s.o.Now()
		var until int64
		if owner != "" {
			until = db.Millis(now.Add(s.o.Lease))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE import_jobs SET status = $3, lease_owner = $4, lease_until = $5, error = '',
			started_at = coalesce(started_at, $6), finished_at = NULL, updated_at = $6 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, StatusRunning, owner, until, db.Millis(now)); err != nil {
			return fmt.Errorf("importer: unable to start job: %w", err)
		}
		action := "import.run"
		if j.Status == StatusFailed {
			action = "import.resume"
		}
		return s.tenants.Audit(ctx, tx, p, action, "import_job", fmt.Sprint(id),
			fmt.Sprintf("%s import of %s from row %d of %d", j.Kind, j.FileName, j.RowsProcessed+1, j.RowsTotal))
	})
}

// Cancel stops a job. Rows already committed stay imported.
func (s *Service) Cancel(ctx context.Context, p tenant.Principal, id int64) (Job, error) {
	if err := p.Require(tenant.PermCustomersWrite); err != nil {
		return Job{}, err
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		j, err := s.job(ctx, tx, p.TenantID, id)
		if err != nil {
			return err
		}
		if j.Status == StatusDone || j.Status == StatusCancelled {
			return errs.E(errs.Conflict, "import_finished", "the import is already %s", j.Status)
		}
		now := db.Millis(s.o.Now())
		if _, err := tx.ExecContext(ctx, `UPDATE import_jobs SET status = $3, lease_owner = '', lease_until = 0, finished_at = $4, updated_at = $4
			WHERE tenant_id = $1 AND id = $2`, p.TenantID, id, StatusCancelled, now); err != nil {
			return fmt.Errorf("importer: unable to cancel job: %w", err)
		}
		return s.tenants.Audit(ctx, tx, p, "import.cancel", "import_job", fmt.Sprint(id),
			fmt.Sprintf("after %d of %d rows", j.RowsProcessed, j.RowsTotal))
	})
	if err != nil {
		return Job{}, err
	}
	return s.Job(ctx, p.TenantID, id, p.Can(tenant.PermPIIRead))
}

// Progress is where a running job stands.
type Progress struct {
	Processed, Total, OK, Failed int64
}

// RunNow runs a job in the caller's goroutine (the CLI), reporting progress
// after every chunk. The job is leased to this process, so a server sharing
// the database leaves it alone, and resumes it if this process dies.
func (s *Service) RunNow(ctx context.Context, p tenant.Principal, id int64, progress func(Progress)) (Job, error) {
	if err := s.start(ctx, p, id, s.owner); err != nil {
		return Job{}, err
	}
	if err := s.process(ctx, p.TenantID, id, progress); err != nil {
		return Job{}, err
	}
	return s.Job(ctx, p.TenantID, id, p.Can(tenant.PermPIIRead))
}

// Work runs queued jobs until ctx ends: one at a time, picked up at once
// when queued on this node, otherwise within the poll interval (other nodes'
// jobs, and jobs whose worker died, once their lease expires). It also
// removes the stored files of jobs finished long ago.
func (s *Service) Work(ctx context.Context) {
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	var lastPurge time.Time
	for {
		for ctx.Err() == nil {
			ran, err := s.runNext(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "import worker failed", "err", err)
			}
			if !ran || err != nil {
				break
			}
		}
		if s.o.Now().Sub(lastPurge) > time.Hour {
			lastPurge = s.o.Now()
			if n, err := s.PurgeFiles(ctx, 30*24*time.Hour); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "import file purge failed", "err", err)
			} else if n > 0 {
				s.log.InfoContext(ctx, "purged files of old imports", "count", n)
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

// runNext claims one queued job whose lease is free and processes it.
func (s *Service) runNext(ctx context.Context) (bool, error) {
	now := db.Millis(s.o.Now())
	rows, err := s.db.QueryContext(ctx, `SELECT tenant_id, id FROM import_jobs WHERE status = $1 AND lease_until < $2 ORDER BY id LIMIT 10`,
		StatusRunning, now)
	if err != nil {
		return false, fmt.Errorf("importer: unable to look for queued jobs: %w", err)
	}
	type key struct{ tenant, id int64 }
	var cands []key
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.tenant, &k.id); err != nil {
			rows.Close()
			return false, fmt.Errorf("importer: unable to read queued job: %w", err)
		}
		cands = append(cands, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("importer: unable to look for queued jobs: %w", err)
	}
	for _, k := range cands {
		// A compare-and-set on the lease: of several workers, one wins.
		res, err := s.db.ExecContext(ctx, `UPDATE import_jobs SET lease_owner = $3, lease_until = $4
			WHERE tenant_id = $1 AND id = $2 AND status = $5 AND lease_until < $6`,
			k.tenant, k.id, s.owner, db.Millis(s.o.Now().Add(s.o.Lease)), StatusRunning, now)
		if err != nil {
			return false, fmt.Errorf("importer: unable to claim job %d: %w", k.id, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return true, s.process(ctx, k.tenant, k.id, nil)
		}
	}
	return false, nil
}

// process runs a job this worker holds the lease of, chunk by chunk from
// the first row not yet committed.
func (s *Service) process(ctx context.Context, tenantID, id int64, progress func(Progress)) error {
	j, err := s.job(ctx, s.db, tenantID, id)
	if err != nil {
		return err
	}
	log := s.log.With("tenant", tenantID, "import", id)
	log.InfoContext(ctx, "import running", "kind", j.Kind, "file", j.FileName, "from_row", j.RowsProcessed+1, "rows", j.RowsTotal)
	err = s.processRows(ctx, tenantID, j, progress)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errStopped):
		log.InfoContext(ctx, "import stopped: cancelled or taken over")
		return nil
	case ctx.Err() != nil:
		// Shutting down: free the lease so the next start (or another node)
		// resumes at once.
		bg := context.WithoutCancel(ctx)
		if _, rerr := s.db.ExecContext(bg, `UPDATE import_jobs SET lease_until = 0 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3`,
			tenantID, id, s.owner); rerr != nil {
			log.WarnContext(bg, "unable to release import lease", "err", rerr)
		}
		return ctx.Err()
	}
	log.ErrorContext(ctx, "import failed", "err", err)
	msg := "an internal error stopped the import; it has been logged"
	if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
		msg = e.Message
	} else if cur, jerr := s.job(ctx, s.db, tenantID, id); jerr == nil {
		msg += fmt.Sprintf(" (stopped after row %d of %d; run it again to resume)", cur.RowsProcessed, cur.RowsTotal)
	}
	if _, uerr := s.db.ExecContext(ctx, `UPDATE import_jobs SET status = $3, error = $4, lease_owner = '', lease_until = 0, finished_at = $5, updated_at = $5
		WHERE tenant_id = $1 AND id = $2 AND status = $6 AND lease_owner = $7`,
		tenantID, id, StatusFailed, truncate(msg, 1000), db.Millis(s.o.Now()), StatusRunning, s.owner); uerr != nil {
		return errors.Join(err, fmt.Errorf("importer: unable to mark job %d failed: %w", id, uerr))
	}
	return err
}

// counts are a job's committed progress.
type counts struct{ processed, ok, failed int64 }

func (s *Service) processRows(ctx context.Context, tenantID int64, j Job, progress func(Progress)) error {
	data, err := s.file(ctx, tenantID, j.ID)
	if err != nil {
		return err
	}
	pl, err := s.plan(ctx, tenantID, j)
	if err != nil {
		return err
	}
	var stored int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM import_row_errors WHERE tenant_id = $1 AND job_id = $2 AND phase = $3`,
		tenantID, j.ID, PhaseRun).Scan(&stored); err != nil {
		return fmt.Errorf("importer: unable to count row errors: %w", err)
	}
	c := counts{processed: j.RowsProcessed, ok: j.RowsOK, failed: j.RowsFailed}
	units := newUnits(pl, s.o.ChunkSize)
	flush := func(batch []unit) error {
		next, err := s.commit(ctx, tenantID, j.ID, pl, batch, c, &stored)
		if err != nil {
			return err
		}
		c = next
		if progress != nil {
			progress(Progress{Processed: c.processed, Total: j.RowsTotal, OK: c.ok, Failed: c.failed})
		}
		return nil
	}
	err = eachRow(data, j, j.RowsProcessed, func(r dataRow) error {
		if batch := units.add(r); batch != nil {
			return flush(batch)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if batch := units.rest(); len(batch) > 0 {
		if err := flush(batch); err != nil {
			return err
		}
	}
	summary := ""
	if c.failed > 0 {
		summary = fmt.Sprintf("%d of %d rows failed: see the row errors", c.failed, c.processed)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE import_jobs SET status = $3, error = $4, lease_owner = '', lease_until = 0, rows_total = $5,
		finished_at = $6, updated_at = $6 WHERE tenant_id = $1 AND id = $2 AND status = $7 AND lease_owner = $8`,
		tenantID, j.ID, StatusDone, summary, c.processed, db.Millis(s.o.Now()), StatusRunning, s.owner)
	if err != nil {
		return fmt.Errorf("importer: unable to finish job: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errStopped
	}
	s.log.InfoContext(ctx, "import done", "tenant", tenantID, "import", j.ID, "rows", c.processed, "ok", c.ok, "failed", c.failed)
	return nil
}

// commit applies a batch and records the job's progress. Customer rows are
// written in the same transaction as the progress, so a crash loses nothing
// committed and repeats nothing. Orders go through commerce, one transaction
// each, before the progress is recorded: after a crash the batch is sent
// again, which changes nothing since an order sent as stored writes nothing.
func (s *Service) commit(ctx context.Context, tenantID, id int64, pl *plan, batch []unit, c counts, stored *int) (counts, error) {
	results := make([][]RowError, len(batch))
	if pl.kind == KindOrders {
		for i, u := range batch {
			es, err := s.applyOrder(ctx, tenantID, u)
			if err != nil {
				return counts{}, err
			}
			results[i] = es
		}
	}
	st := *stored
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var es []RowError
		next := c
		for i, u := range batch {
			if pl.kind == KindCustomers {
				rowErrs, err := s.applyCustomer(ctx, tx, tenantID, u)
				if err != nil {
					return err
				}
				results[i] = rowErrs
			}
			next.processed += int64(len(u.rows))
			if len(results[i]) > 0 {
				next.failed += int64(len(u.rows))
				es = append(es, results[i]...)
			} else {
				next.ok += int64(len(u.rows))
			}
		}
		if err := s.insertRowErrors(ctx, tx, tenantID, id, PhaseRun, &st, es); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE import_jobs SET rows_processed = $3, rows_ok = $4, rows_failed = $5, lease_until = $6, updated_at = $7
			WHERE tenant_id = $1 AND id = $2 AND status = $8 AND lease_owner = $9`,
			tenantID, id, next.processed, next.ok, next.failed, db.Millis(s.o.Now().Add(s.o.Lease)), db.Millis(s.o.Now()), StatusRunning, s.owner)
		if err != nil {
			return fmt.Errorf("importer: unable to record progress: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errStopped
		}
		c = next
		return nil
	})
	if err != nil {
		return counts{}, err
	}
	*stored = st
	return c, nil
}

// rowFailure turns an error the domain refused a unit with into its row
// error; internal errors stay errors.
func rowFailure(u unit, err error) ([]RowError, error) {
	e, ok := errs.As(err)
	if !ok || e.Kind == errs.Internal {
		return nil, err
	}
	column := ""
	if len(e.Fields) > 0 {
		column = e.Fields[0].Location
	}
	return []RowError{{Row: u.rows[0], Column: column, Code: errs.CodeOf(e), Message: e.Message}}, nil
}

// applyOrder upserts the order of a unit.
func (s *Service) applyOrder(ctx context.Context, tenantID int64, u unit) ([]RowError, error) {
	if len(u.errs) > 0 {
		return u.errs, nil
	}
	if _, err := s.orders.UpsertOrder(ctx, tenantID, u.order); err != nil {
		return rowFailure(u, err)
	}
	return nil, nil
}

// applyCustomer resolves a customer row inside a savepoint, so a row One ID
// refuses is rolled back alone and recorded.
func (s *Service) applyCustomer(ctx context.Context, tx *sql.Tx, tenantID int64, u unit) ([]RowError, error) {
	if len(u.errs) > 0 {
		return u.errs, nil
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT import_row`); err != nil {
		return nil, fmt.Errorf("importer: savepoint: %w", err)
	}
	if err := s.resolve(ctx, tx, tenantID, u.customer); err != nil {
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT import_row`); rerr != nil {
			return nil, errors.Join(err, fmt.Errorf("importer: rollback to savepoint: %w", rerr))
		}
		return rowFailure(u, err)
	}
	if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT import_row`); err != nil {
		return nil, fmt.Errorf("importer: release savepoint: %w", err)
	}
	return nil, nil
}

func (s *Service) resolve(ctx context.Context, tx *sql.Tx, tenantID int64, r customerRow) error {
	if _, err := s.customers.Resolve(ctx, tx, tenantID, r.obs); err != nil {
		return err
	}
	if r.lastSeen.IsZero() {
		return nil
	}
	// Observed again at its last-seen time: One ID moves last-seen forward.
	_, err := s.customers.Resolve(ctx, tx, tenantID, customer.Observation{
		At: r.lastSeen, Identities: r.obs.Identities, Source: r.obs.Source, MessageID: r.obs.MessageID})
	return err
}

// PurgeFiles deletes the stored files of jobs that finished (done or
// cancelled) more than age ago; the jobs and their errors stay.
func (s *Service) PurgeFiles(ctx context.Context, age time.Duration) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM import_files WHERE job_id IN (
		SELECT id FROM import_jobs WHERE status IN ($1, $2) AND finished_at < $3)`,
		StatusDone, StatusCancelled, db.Millis(s.o.Now().Add(-age)))
	if err != nil {
		return 0, fmt.Errorf("importer: unable to purge files: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
