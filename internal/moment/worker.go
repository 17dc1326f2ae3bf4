package moment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/staff"
)

// Worker timings.
const (
	leaseFor       = 2 * time.Minute  // a node's hold on a task while it works on it
	unknownRecheck = time.Minute      // an unknown outcome is looked up in WeCom's list after this
	unknownGiveUp  = 10 * time.Minute // …and sent again when WeCom has not shown it by then
	maxAttempts    = 5                // sends of one task before it fails
	jobPollMax     = 30 * time.Second // longest wait between reads of a creating job
	errorBackoff   = time.Minute      // after a failed poll
)

// Run works due tasks until ctx is done: every Tick and when woken.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Tick)
	defer t.Stop()
	for {
		if _, err := s.Work(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("moment: worker failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// Work processes every task that is due now and returns how many it moved.
func (s *Service) Work(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT tenant_id, id FROM moment_tasks
		WHERE status IN ('pending', 'submitting', 'creating', 'publishing') AND next_poll_at <= $1 AND lease_until <= $1
		ORDER BY next_poll_at, id LIMIT 100`, db.Millis(s.now()))
	if err != nil {
		return 0, fmt.Errorf("moment: unable to find due tasks: %w", err)
	}
	type due struct{ tenantID, id int64 }
	var all []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.tenantID, &d.id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("moment: unable to read a due task: %w", err)
		}
		all = append(all, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("moment: unable to find due tasks: %w", err)
	}
	n := 0
	for _, d := range all {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		moved, err := s.process(ctx, d.tenantID, d.id)
		if err != nil {
			s.log.Warn("moment: task not processed", "tenant", d.tenantID, "task", d.id, "err", err)
			continue
		}
		if moved {
			n++
		}
	}
	return n, nil
}

// claim takes a due task for this node; false when another has it.
func (s *Service) claim(ctx context.Context, tenantID, id int64) (bool, error) {
	now := s.now()
	res, err := s.db.ExecContext(ctx, `UPDATE moment_tasks SET lease_until = $3
		WHERE tenant_id = $1 AND id = $2 AND lease_until <= $4 AND next_poll_at <= $4
		  AND status IN ('pending', 'submitting', 'creating', 'publishing')`,
		tenantID, id, db.Millis(now.Add(leaseFor)), db.Millis(now))
	if err != nil {
		return false, fmt.Errorf("moment: unable to claim task %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// update writes columns of a task and releases its lease.
func (s *Service) update(ctx context.Context, q db.Querier, tenantID, id int64, set string, args ...any) error {
	all := append([]any{tenantID, id, db.Millis(s.now())}, args...)
	_, err := q.ExecContext(ctx, `UPDATE moment_tasks SET `+set+`, lease_until = 0, updated_at = $3 WHERE tenant_id = $1 AND id = $2`, all...)
	if err != nil {
		return fmt.Errorf("moment: unable to update task %d: %w", id, err)
	}
	return nil
}

// process moves one task a step (or several) if it is due and free.
func (s *Service) process(ctx context.Context, tenantID, id int64) (bool, error) {
	ok, err := s.claim(ctx, tenantID, id)
	if err != nil || !ok {
		return false, err
	}
	t, err := s.load(ctx, s.db, tenantID, id)
	if err != nil {
		return false, err
	}
	c, err := s.clients(ctx, tenantID)
	if err != nil {
		// Nothing was sent: try again later, and say why on the task; past
		// its deadline it will not be sent any more.
		msg := "WeCom is not connected or not reachable for this workspace (" + errs.CodeOf(err) + ")"
		if !s.now().Before(t.DeadlineAt) {
			if t.Status == StatusPublishing {
				return true, s.finish(ctx, tenantID, id, StatusFinished, "", "") // with the results read so far
			}
			return true, s.finish(ctx, tenantID, id, StatusFailed, "wecom_unavailable", msg)
		}
		return false, s.update(ctx, s.db, tenantID, id, `next_poll_at = $4, error_message = $5`, db.Millis(s.now().Add(errorBackoff)), msg)
	}
	switch t.Status {
	case StatusPending:
		if t.CancelRequested {
			return true, s.finish(ctx, tenantID, id, StatusCancelled, "", "")
		}
		return true, s.submit(ctx, c, tenantID, t)
	case StatusSubmitting:
		return true, s.reconcile(ctx, c, tenantID, t)
	case StatusCreating:
		return true, s.pollJob(ctx, c, tenantID, t)
	case StatusPublishing:
		return true, s.pollResults(ctx, c, tenantID, t)
	}
	return false, nil
}

func (s *Service) senderIDs(ctx context.Context, tenantID, id int64) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT userid FROM moment_senders WHERE tenant_id = $1 AND task_id = $2 ORDER BY userid`, tenantID, id)
	if err != nil {
		return nil, fmt.Errorf("moment: unable to read senders: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("moment: unable to read a sender: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// submit sends a pending task to WeCom. It is marked submitting (and the
// attempt counted) before the call, so a crash mid-call leaves a task the
// worker reconciles instead of one it sends again.
func (s *Service) submit(ctx context.Context, c API, tenantID int64, t Task) error {
	senders, err := s.senderIDs(ctx, tenantID, t.ID)
	if err != nil {
		return err
	}
	var tagIDs []string
	for _, tg := range t.Tags {
		tagIDs = append(tagIDs, tg.WeComTagID)
	}
	now := s.now()
	res, err := s.db.ExecContext(ctx, `UPDATE moment_tasks SET status = 'submitting', submitted_at = $3, attempts = attempts + 1,
		next_poll_at = $4, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND cancel_requested = 0`,
		tenantID, t.ID, db.Millis(now), db.Millis(now.Add(unknownRecheck)))
	if err != nil {
		return fmt.Errorf("moment: unable to mark task %d submitting: %w", t.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // cancelled meanwhile
	}
	jobID, err := c.AddMomentTask(ctx, wecomTask(t.Text, t.Attachments, senders, tagIDs))
	var apiErr *wecom.APIError
	switch {
	case err == nil:
		return s.update(ctx, s.db, tenantID, t.ID, `status = 'creating', job_id = $4, next_poll_at = $5, error_message = ''`,
			jobID, db.Millis(s.now().Add(time.Second)))
	case errors.As(err, &apiErr) && apiErr.Code != wecom.CodeBusy:
		// WeCom answered and refused: nothing was created.
		return s.finish(ctx, tenantID, t.ID, StatusFailed, "wecom_"+strconv.Itoa(apiErr.Code), wecom.Explain(apiErr.Code))
	case errs.KindOf(err) == errs.Invalid || errs.KindOf(err) == errs.TooLarge:
		return s.finish(ctx, tenantID, t.ID, StatusFailed, errs.CodeOf(err), errMessage(err))
	}
	s.log.Warn("moment: add_moment_task ended without an answer; it will be looked up before any new send", "task", t.ID, "err", err)
	return s.update(ctx, s.db, tenantID, t.ID, `error_message = $4`,
		"WeCom did not answer; Siyu checks whether the task was created before sending it again")
}

func errMessage(err error) string {
	if e, ok := errs.As(err); ok {
		return e.Message
	}
	return err.Error()
}

// reconcile resolves a send whose outcome is unknown: a moment WeCom created
// since with the same content is this task's; when none shows up in
// unknownGiveUp, WeCom never took it and it is sent again.
func (s *Service) reconcile(ctx context.Context, c API, tenantID int64, t Task) error {
	var submitted int64
	var attempts int
	if err := s.db.QueryRowContext(ctx, `SELECT submitted_at, attempts FROM moment_tasks WHERE tenant_id = $1 AND id = $2`,
		tenantID, t.ID).Scan(&submitted, &attempts); err != nil {
		return fmt.Errorf("moment: unable to read task %d: %w", t.ID, err)
	}
	since := db.FromMillis(submitted).Add(-time.Minute)
	now := s.now()
	f := wecom.MomentFilter{Start: since, End: now, FilterType: 0}
	if f.End.Sub(f.Start) > wecom.MaxMomentListSpan {
		f.Start = f.End.Add(-wecom.MaxMomentListSpan)
	}
	cursor := ""
	for {
		list, next, err := c.GetMomentList(ctx, f, cursor, 0)
		if err != nil {
			return s.update(ctx, s.db, tenantID, t.ID, `next_poll_at = $4`, db.Millis(now.Add(errorBackoff)))
		}
		for _, m := range list {
			if !sameContent(m, t) {
				continue
			}
			var taken int
			if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM moment_tasks WHERE tenant_id = $1 AND moment_id = $2`,
				tenantID, m.MomentID).Scan(&taken); err != nil {
				return fmt.Errorf("moment: unable to check moment %s: %w", m.MomentID, err)
			}
			if taken == 0 {
				s.log.Info("moment: found the task created by an unanswered send", "task", t.ID, "moment", m.MomentID)
				if err := s.update(ctx, s.db, tenantID, t.ID, `status = 'publishing', moment_id = $4, next_poll_at = 0, error_message = ''`, m.MomentID); err != nil {
					return err
				}
				t.Status, t.MomentID = StatusPublishing, m.MomentID
				return s.pollResults(ctx, c, tenantID, t)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if now.Sub(db.FromMillis(submitted)) < unknownGiveUp {
		return s.update(ctx, s.db, tenantID, t.ID, `next_poll_at = $4`, db.Millis(now.Add(unknownRecheck)))
	}
	if attempts >= maxAttempts {
		return s.finish(ctx, tenantID, t.ID, StatusFailed, "wecom_unreachable",
			fmt.Sprintf("WeCom did not answer %d attempts to create the task; check WeCom's status and create the moment again", attempts))
	}
	return s.update(ctx, s.db, tenantID, t.ID, `status = 'pending', next_poll_at = 0`)
}

// sameContent reports whether a moment in WeCom's list has a task's content.
func sameContent(m wecom.Moment, t Task) bool {
	text := ""
	if m.Text != nil {
		text = m.Text.Content
	}
	if m.CreateType != 0 || text != t.Text {
		return false
	}
	n := len(m.Image)
	if m.Video != nil {
		n++
	}
	if m.Link != nil {
		n++
	}
	return n == len(t.Attachments)
}

// pollJob reads the creation job; once done the task has its moment (or failed).
func (s *Service) pollJob(ctx context.Context, c API, tenantID int64, t Task) error {
	var jobID string
	var polls int
	if err := s.db.QueryRowContext(ctx, `SELECT job_id, polls FROM moment_tasks WHERE tenant_id = $1 AND id = $2`, tenantID, t.ID).Scan(&jobID, &polls); err != nil {
		return fmt.Errorf("moment: unable to read task %d: %w", t.ID, err)
	}
	now := s.now()
	r, err := c.GetMomentTaskResult(ctx, jobID)
	if err != nil {
		return s.update(ctx, s.db, tenantID, t.ID, `next_poll_at = $4, polls = polls + 1`, db.Millis(now.Add(errorBackoff)))
	}
	if r.Status != wecom.MomentJobDone {
		wait := min(time.Duration(polls+1)*time.Second, jobPollMax)
		return s.update(ctx, s.db, tenantID, t.ID, `next_poll_at = $4, polls = polls + 1, polled_at = $3`, db.Millis(now.Add(wait)))
	}
	res := r.Result
	var invS, invT []string
	if res.InvalidSenderList != nil {
		invS = res.InvalidSenderList.UserList
	}
	if res.InvalidExternalContactList != nil {
		invT = res.InvalidExternalContactList.TagList
	}
	if res.ErrCode != 0 || res.MomentID == "" {
		code := res.ErrCode
		msg := wecom.Explain(code)
		if len(invS) > 0 && len(invS) >= t.SenderCount {
			msg = "WeCom refused every sender: they are outside the app's visible range or lack the customer-contact permission. " + msg
		}
		return s.db.Tx(ctx, func(tx *sql.Tx) error {
			if err := markInvalid(ctx, tx, tenantID, t.ID, invS); err != nil {
				return err
			}
			return s.update(ctx, tx, tenantID, t.ID, `status = 'failed', error_code = $4, error_message = $5, finished_at = $3,
				invalid_senders = $6, invalid_tags = $7`, "wecom_"+strconv.Itoa(code), msg, toJSON(nonNil(invS)), toJSON(nonNil(invT)))
		})
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := markInvalid(ctx, tx, tenantID, t.ID, invS); err != nil {
			return err
		}
		return s.update(ctx, tx, tenantID, t.ID, `status = 'publishing', moment_id = $4, invalid_senders = $5, invalid_tags = $6,
			next_poll_at = 0, polled_at = $3, error_message = ''`, res.MomentID, toJSON(nonNil(invS)), toJSON(nonNil(invT)))
	})
	if err != nil {
		return err
	}
	t.Status, t.MomentID = StatusPublishing, res.MomentID
	return s.pollResults(ctx, c, tenantID, t)
}

func markInvalid(ctx context.Context, tx *sql.Tx, tenantID, id int64, userIDs []string) error {
	for _, u := range userIDs {
		if _, err := tx.ExecContext(ctx, `UPDATE moment_senders SET status = 'invalid' WHERE tenant_id = $1 AND task_id = $2 AND userid = $3`,
			tenantID, id, u); err != nil {
			return fmt.Errorf("moment: unable to mark sender %s invalid: %w", u, err)
		}
	}
	return nil
}

type senderRow struct {
	userID       string
	status       SenderStatus
	rangeFetched bool
	sentFetched  bool
}

// pollResults reads each sender's publish state and, once per sender, the
// customers in range and (after publishing) those who can see it. A
// cancellation asked for while WeCom was creating the task is carried out
// here, as soon as the moment exists.
func (s *Service) pollResults(ctx context.Context, c API, tenantID int64, t Task) error {
	now := s.now()
	if t.CancelRequested {
		if err := c.CancelMomentTask(ctx, t.MomentID); err != nil {
			return s.update(ctx, s.db, tenantID, t.ID, `next_poll_at = $4`, db.Millis(now.Add(errorBackoff)))
		}
	}
	states := map[string]int{}
	cursor := ""
	for {
		list, next, err := c.GetMomentTask(ctx, t.MomentID, cursor, 0)
		if err != nil {
			s.log.Warn("moment: unable to read publish states", "task", t.ID, "err", err)
			return s.update(ctx, s.db, tenantID, t.ID, `next_poll_at = $4`, db.Millis(now.Add(errorBackoff)))
		}
		for _, p := range list {
			states[p.UserID] = p.PublishStatus
		}
		if next == "" {
			break
		}
		cursor = next
	}
	rows, err := s.db.QueryContext(ctx, `SELECT userid, status, range_fetched, sent_fetched FROM moment_senders
		WHERE tenant_id = $1 AND task_id = $2 ORDER BY userid`, tenantID, t.ID)
	if err != nil {
		return fmt.Errorf("moment: unable to read senders: %w", err)
	}
	var senders []senderRow
	for rows.Next() {
		var r senderRow
		var rf, sf int
		if err := rows.Scan(&r.userID, &r.status, &rf, &sf); err != nil {
			rows.Close()
			return fmt.Errorf("moment: unable to read a sender: %w", err)
		}
		r.rangeFetched, r.sentFetched = rf != 0, sf != 0
		senders = append(senders, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("moment: unable to read senders: %w", err)
	}
	for _, r := range senders {
		if r.status == SenderInvalid {
			continue
		}
		if !r.rangeFetched {
			if err := s.fetchCustomers(ctx, c, tenantID, t, r.userID, false); err != nil {
				s.log.Warn("moment: unable to read a sender's customers", "task", t.ID, "userid", r.userID, "err", err)
				return s.update(ctx, s.db, tenantID, t.ID, `next_poll_at = $4`, db.Millis(now.Add(errorBackoff)))
			}
		}
		published := states[r.userID] == wecom.MomentPublished
		if published && r.status != SenderPublished {
			if _, err := s.db.ExecContext(ctx, `UPDATE moment_senders SET status = 'published', published_at = $4
				WHERE tenant_id = $1 AND task_id = $2 AND userid = $3`, tenantID, t.ID, r.userID, db.Millis(now)); err != nil {
				return fmt.Errorf("moment: unable to mark sender published: %w", err)
			}
		}
		if published && !r.sentFetched {
			if err := s.fetchCustomers(ctx, c, tenantID, t, r.userID, true); err != nil {
				s.log.Warn("moment: unable to read who can see a sender's moment", "task", t.ID, "userid", r.userID, "err", err)
				return s.update(ctx, s.db, tenantID, t.ID, `next_poll_at = $4`, db.Millis(now.Add(errorBackoff)))
			}
		}
	}
	return s.settle(ctx, tenantID, t)
}

// fetchCustomers stores a sender's customers in range (sent false) or marks
// those WeCom lists as able to see the published moment (sent true).
func (s *Service) fetchCustomers(ctx context.Context, c API, tenantID int64, t Task, userID string, sent bool) error {
	read := c.GetMomentCustomerList
	if sent {
		read = c.GetMomentSendResult
	}
	var all []string
	cursor := ""
	for {
		list, next, err := read(ctx, t.MomentID, userID, cursor, 0)
		if err != nil {
			return err
		}
		for _, x := range list {
			all = append(all, x.ExternalUserID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	slices.Sort(all)
	all = slices.Compact(all)
	ids, err := s.staff.CustomersByExternalID(ctx, tenantID, staff.ChannelWeCom, all)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, ext := range all {
			var cid any
			if id, ok := ids[ext]; ok {
				cid = id
			}
			reached := boolInt(sent)
			if _, err := tx.ExecContext(ctx, `INSERT INTO moment_customers (tenant_id, task_id, userid, external_userid, customer_id, reached)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (tenant_id, task_id, userid, external_userid) DO UPDATE SET reached = CASE WHEN excluded.reached = 1 THEN 1 ELSE moment_customers.reached END`,
				tenantID, t.ID, userID, ext, cid, reached); err != nil {
				return fmt.Errorf("moment: unable to store a customer: %w", err)
			}
		}
		col := "range_fetched"
		if sent {
			col = "sent_fetched"
		}
		_, err := tx.ExecContext(ctx, `UPDATE moment_senders SET `+col+` = 1,
			visible_count = (SELECT COUNT(*) FROM moment_customers c WHERE c.tenant_id = $1 AND c.task_id = $2 AND c.userid = $3),
			reached_count = (SELECT COUNT(*) FROM moment_customers c WHERE c.tenant_id = $1 AND c.task_id = $2 AND c.userid = $3 AND c.reached = 1)
			WHERE tenant_id = $1 AND task_id = $2 AND userid = $3`, tenantID, t.ID, userID)
		if err != nil {
			return fmt.Errorf("moment: unable to count a sender's customers: %w", err)
		}
		return nil
	})
}

// settle updates a publishing task's totals and decides whether it is final.
func (s *Service) settle(ctx context.Context, tenantID int64, t Task) error {
	now := s.now()
	var valid, published, done int
	var visible, reached int64
	err := s.db.QueryRowContext(ctx, `SELECT
			COUNT(CASE WHEN status <> 'invalid' THEN 1 END),
			COUNT(CASE WHEN status = 'published' THEN 1 END),
			COUNT(CASE WHEN status = 'published' AND sent_fetched = 1 THEN 1 END),
			COALESCE(SUM(visible_count), 0), COALESCE(SUM(reached_count), 0)
		FROM moment_senders WHERE tenant_id = $1 AND task_id = $2`, tenantID, t.ID).Scan(&valid, &published, &done, &visible, &reached)
	if err != nil {
		return fmt.Errorf("moment: unable to total task %d: %w", t.ID, err)
	}
	set := `published_count = $4, visible_count = $5, reached_count = $6, polled_at = $3, next_poll_at = $7`
	next := now.Add(s.o.Poll)
	if now.Sub(t.CreatedAt) > time.Hour {
		next = now.Add(s.o.SlowPoll)
	}
	switch {
	case t.CancelRequested:
		set += `, status = 'cancelled', finished_at = $3`
	case (valid > 0 && done == valid) || !now.Before(t.DeadlineAt):
		// A cancel committed meanwhile stands.
		set += `, status = CASE WHEN status = 'publishing' THEN 'finished' ELSE status END, finished_at = $3`
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if t.CancelRequested {
			if _, err := tx.ExecContext(ctx, `UPDATE moment_senders SET status = 'cancelled' WHERE tenant_id = $1 AND task_id = $2 AND status = 'pending'`,
				tenantID, t.ID); err != nil {
				return fmt.Errorf("moment: unable to cancel senders: %w", err)
			}
		}
		return s.update(ctx, tx, tenantID, t.ID, set, published, visible, reached, db.Millis(next))
	})
}

// finish ends a task with a status and, for failures, the reason.
func (s *Service) finish(ctx context.Context, tenantID, id int64, st Status, code, msg string) error {
	return s.update(ctx, s.db, tenantID, id, `status = $4, error_code = $5, error_message = $6, finished_at = $3`, string(st), code, msg)
}
