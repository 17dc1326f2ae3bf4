package handover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/staff"
)

// leaseFor is how long a worker holds a job; a crashed worker's job is
// taken again after it.
const leaseFor = 5 * time.Minute

// Run works due handovers every interval, and at once when a handover is
// started or a WeCom event moves one, until ctx is done.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.RunDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("handover: worker", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// RunDue works every handover that is due once and returns how many it worked.
func (s *Service) RunDue(ctx context.Context) (int, error) {
	now := db.Millis(s.now())
	rows, err := s.db.QueryContext(ctx, `SELECT tenant_id, id FROM handover_jobs WHERE status = 'running' AND next_run_at <= $1 AND lease_until < $1
		ORDER BY next_run_at, id LIMIT 50`, now)
	if err != nil {
		return 0, fmt.Errorf("handover: unable to find due handovers: %w", err)
	}
	type due struct{ tenantID, id int64 }
	var jobs []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.tenantID, &d.id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("handover: unable to find due handovers: %w", err)
		}
		jobs = append(jobs, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("handover: unable to find due handovers: %w", err)
	}
	n := 0
	for _, d := range jobs {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		err := s.Work(ctx, d.tenantID, d.id)
		if errors.Is(err, errLeased) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Work takes one handover's lease and moves it on as far as it can now:
// what was sent without an answer is looked up, pending items are sent,
// waiting ones polled. WeCom failures are recorded on the job, which is
// tried again later; they are not returned.
func (s *Service) Work(ctx context.Context, tenantID, id int64) error {
	now := s.now()
	res, err := s.db.ExecContext(ctx, `UPDATE handover_jobs SET lease_until = $3 WHERE tenant_id = $1 AND id = $2 AND status = 'running' AND lease_until < $4`,
		tenantID, id, db.Millis(now.Add(leaseFor)), db.Millis(now))
	if err != nil {
		return fmt.Errorf("handover: unable to lease handover %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeased
	}
	j, err := s.Job(ctx, tenantID, id)
	if err != nil {
		return err
	}
	next, workErr := s.work(ctx, tenantID, j)
	if ctx.Err() != nil {
		// Shutting down: leave the lease to expire rather than write with a dead context.
		return ctx.Err()
	}
	open, waiting, err := s.openItems(ctx, tenantID, id)
	if err != nil {
		return err
	}
	end := db.Millis(s.now())
	lastErr := ""
	switch {
	case workErr != nil:
		lastErr = workErr.Error()
		s.log.Info("handover: WeCom failed; retrying later", "handover", id, "err", workErr)
		next = s.now().Add(s.o.RetryInterval)
	case open > 0:
		next = s.now()
	case waiting > 0:
		next = s.now().Add(s.o.PollInterval)
	}
	if workErr == nil && open == 0 && waiting == 0 {
		_, err = s.db.ExecContext(ctx, `UPDATE handover_jobs SET status = 'done', lease_until = 0, last_error = '', finished_at = $3, updated_at = $3
			WHERE tenant_id = $1 AND id = $2`, tenantID, id, end)
	} else {
		_, err = s.db.ExecContext(ctx, `UPDATE handover_jobs SET lease_until = 0, next_run_at = $3, last_error = $4, attempts = attempts + 1, updated_at = $5
			WHERE tenant_id = $1 AND id = $2`, tenantID, id, db.Millis(next), lastErr, end)
	}
	if err != nil {
		return fmt.Errorf("handover: unable to update handover %d: %w", id, err)
	}
	return nil
}

// openItems counts items still to send (pending, sending) and waiting ones.
func (s *Service) openItems(ctx context.Context, tenantID, jobID int64) (open, waiting int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT coalesce(sum(CASE WHEN state IN ('pending', 'sending') THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN state = 'waiting' THEN 1 ELSE 0 END), 0) FROM handover_items WHERE tenant_id = $1 AND job_id = $2`,
		tenantID, jobID).Scan(&open, &waiting)
	if err != nil {
		err = fmt.Errorf("handover: unable to count open items: %w", err)
	}
	return open, waiting, err
}

type itemRow struct {
	id         int64
	externalID string
	customerID int64
	state      ItemState
	sentAt     time.Time
}

func (s *Service) items(ctx context.Context, tenantID, jobID int64, kind string, states ...ItemState) ([]itemRow, error) {
	args := []any{tenantID, jobID, kind}
	ph := make([]string, len(states))
	for i, st := range states {
		args = append(args, string(st))
		ph[i] = fmt.Sprintf("$%d", len(args))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, external_id, coalesce(customer_id, 0), state, sent_at FROM handover_items
		WHERE tenant_id = $1 AND job_id = $2 AND kind = $3 AND state IN (`+strings.Join(ph, ", ")+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("handover: unable to list items: %w", err)
	}
	defer rows.Close()
	var out []itemRow
	for rows.Next() {
		var it itemRow
		var st string
		var sent int64
		if err := rows.Scan(&it.id, &it.externalID, &it.customerID, &st, &sent); err != nil {
			return nil, fmt.Errorf("handover: unable to read item: %w", err)
		}
		it.state, it.sentAt = ItemState(st), db.FromMillis(sent)
		out = append(out, it)
	}
	return out, rows.Err()
}

// work does one pass over a job. It returns when to look again (zero: as
// the counts decide) and the WeCom failure that stopped it, if any.
func (s *Service) work(ctx context.Context, tenantID int64, j Handover) (time.Time, error) {
	c, err := s.wecom.Client(ctx, tenantID)
	if err != nil {
		return time.Time{}, err
	}
	if err := s.resolveCustomers(ctx, c, tenantID, j); err != nil {
		return time.Time{}, err
	}
	if err := s.resolveGroups(ctx, c, tenantID, j); err != nil {
		return time.Time{}, err
	}
	if err := s.sendCustomers(ctx, c, tenantID, j); err != nil {
		return time.Time{}, err
	}
	if err := s.sendGroups(ctx, c, tenantID, j); err != nil {
		return time.Time{}, err
	}
	if err := s.pollCustomers(ctx, c, tenantID, j); err != nil {
		return time.Time{}, err
	}
	return time.Time{}, nil
}

// results reads every transfer result of the job's pair of staff.
func (s *Service) results(ctx context.Context, c *wecom.Client, j Handover) (map[string]wecom.TransferStatus, error) {
	out := map[string]wecom.TransferStatus{}
	cursor := ""
	for range 100000 {
		var pg wecom.TransferResultPage
		var err error
		if j.Kind == Resigned {
			pg, err = c.ResignedTransferResult(ctx, j.handoverUser, j.takeoverUser, cursor)
		} else {
			pg, err = c.TransferResult(ctx, j.handoverUser, j.takeoverUser, cursor)
		}
		if err != nil {
			return nil, fmt.Errorf("handover: unable to read transfer results: %w", err)
		}
		for _, st := range pg.Customers {
			out[st.ExternalUserID] = st
		}
		if pg.NextCursor == "" {
			break
		}
		cursor = pg.NextCursor
	}
	return out, nil
}

// resolveCustomers settles customers sent without a recorded answer (a
// crash, a timeout, WeCom down): WeCom's results say whether the transfer
// started; when they do not know it, it did not, and it is sent again.
func (s *Service) resolveCustomers(ctx context.Context, c *wecom.Client, tenantID int64, j Handover) error {
	sending, err := s.items(ctx, tenantID, j.ID, ItemCustomer, ItemSending)
	if err != nil || len(sending) == 0 {
		return err
	}
	res, err := s.results(ctx, c, j)
	if err != nil {
		return err
	}
	for _, it := range sending {
		st, ok := res[it.externalID]
		// A transfer completed before this one was sent is an earlier
		// transfer's record: this one never reached WeCom.
		stale := ok && st.Status == wecom.TransferDone && st.TakeoverTime > 0 && time.Unix(st.TakeoverTime, 0).Before(it.sentAt.Add(-time.Minute))
		if !ok || st.Status == wecom.TransferNoRecord || stale {
			if err := s.setState(ctx, tenantID, it.id, ItemSending, ItemPending, "", "", 0, 0); err != nil {
				return err
			}
			continue
		}
		if err := s.applyResult(ctx, tenantID, j, it, st); err != nil {
			return err
		}
	}
	return nil
}

// pollCustomers reads the results of waiting customers.
func (s *Service) pollCustomers(ctx context.Context, c *wecom.Client, tenantID int64, j Handover) error {
	waiting, err := s.items(ctx, tenantID, j.ID, ItemCustomer, ItemWaiting)
	if err != nil || len(waiting) == 0 {
		return err
	}
	res, err := s.results(ctx, c, j)
	if err != nil {
		return err
	}
	for _, it := range waiting {
		st, ok := res[it.externalID]
		if !ok {
			continue // WeCom's list lags behind its answer; ask again later
		}
		if err := s.applyResult(ctx, tenantID, j, it, st); err != nil {
			return err
		}
	}
	return nil
}

// applyResult records one customer's transfer result.
func (s *Service) applyResult(ctx context.Context, tenantID int64, j Handover, it itemRow, st wecom.TransferStatus) error {
	switch st.Status {
	case wecom.TransferWaiting:
		if it.state == ItemWaiting {
			return nil
		}
		return s.setState(ctx, tenantID, it.id, it.state, ItemWaiting, "", "", 0, 0)
	case wecom.TransferDone:
		at := s.now()
		if st.TakeoverTime > 0 {
			at = time.Unix(st.TakeoverTime, 0)
		}
		return s.complete(ctx, tenantID, j, it, at)
	case wecom.TransferRefused:
		return s.setState(ctx, tenantID, it.id, it.state, ItemRefused, ReasonRefused, "the customer refused the transfer", 0, 0)
	case wecom.TransferLimit:
		return s.setState(ctx, tenantID, it.id, it.state, ItemFailed, ReasonLimit,
			"the staff member taking over has reached WeCom's limit of customers", 0, 0)
	case wecom.TransferNoRecord:
		return s.setState(ctx, tenantID, it.id, it.state, ItemFailed, ReasonNoRecord, "WeCom has no record of this transfer", 0, 0)
	}
	return nil
}

// setState moves an item from one state to another; an item that moved on
// meanwhile (a callback) is left as it is.
func (s *Service) setState(ctx context.Context, tenantID, id int64, from, to ItemState, reason, detail string, errcode int, doneAt int64) error {
	return s.setStateTx(ctx, s.db, tenantID, id, from, to, reason, detail, errcode, doneAt)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Service) setStateTx(ctx context.Context, q execer, tenantID, id int64, from, to ItemState, reason, detail string, errcode int, doneAt int64) error {
	_, err := q.ExecContext(ctx, `UPDATE handover_items SET state = $4, reason = $5, detail = $6, errcode = $7,
		done_at = CASE WHEN CAST($8 AS BIGINT) > 0 THEN CAST($8 AS BIGINT) ELSE done_at END, updated_at = $9 WHERE tenant_id = $1 AND id = $2 AND state = $3`,
		tenantID, id, string(from), string(to), reason, detail, errcode, doneAt, db.Millis(s.now()))
	if err != nil {
		return fmt.Errorf("handover: unable to update item %d: %w", id, err)
	}
	return nil
}

// complete marks a customer handed over and makes Siyu's ownership say so:
// the taking-over staff member's relation is current and the other's ended
// by the transfer, as of WeCom's takeover time. The callbacks WeCom sends
// for the same transfer apply the same changes at the same time, so
// whichever comes first, the relations end the same and nothing is doubled.
func (s *Service) complete(ctx context.Context, tenantID int64, j Handover, it itemRow, at time.Time) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, `SELECT state FROM handover_items WHERE tenant_id = $1 AND id = $2`, tenantID, it.id).Scan(&state)
		if err != nil {
			return fmt.Errorf("handover: unable to read item %d: %w", it.id, err)
		}
		if ItemState(state).Final() {
			return nil
		}
		cid := it.customerID
		if cid == 0 {
			err := tx.QueryRowContext(ctx, `SELECT customer_id FROM staff_relations WHERE tenant_id = $1 AND channel = $2 AND external_id = $3
				ORDER BY updated_at DESC LIMIT 1`, tenantID, staff.ChannelWeCom, it.externalID).Scan(&cid)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("handover: unable to find customer %s: %w", it.externalID, err)
			}
		}
		if cid != 0 {
			for _, ch := range []staff.RelationChange{
				{RelationKey: staff.RelationKey{StaffID: j.HandoverStaffID, Channel: staff.ChannelWeCom, ExternalID: it.externalID},
					CustomerID: cid, Status: staff.RelationTransferred, At: at},
				{RelationKey: staff.RelationKey{StaffID: j.TakeoverStaffID, Channel: staff.ChannelWeCom, ExternalID: it.externalID},
					CustomerID: cid, Status: staff.RelationActive, At: at},
			} {
				if _, err := s.staff.ApplyRelation(ctx, tx, tenantID, ch); err != nil {
					return err
				}
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE handover_items SET state = 'done', reason = '', detail = '', customer_id = CASE WHEN CAST($3 AS BIGINT) > 0 THEN CAST($3 AS BIGINT) ELSE customer_id END,
			done_at = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2`, tenantID, it.id, cid, db.Millis(at), db.Millis(s.now()))
		if err != nil {
			return fmt.Errorf("handover: unable to complete item %d: %w", it.id, err)
		}
		return nil
	})
}

// retryable reports WeCom answers after which nothing was done and the same
// call may succeed later (an outage, limits, credentials or permissions an
// admin can fix): the items go back to pending and the job waits.
func retryable(err error) bool {
	switch wecom.ErrorCode(err) {
	case wecom.CodeBusy, wecom.CodeRateLimited, wecom.CodeConcurrencyLimited, wecom.CodeInvalidSecret, wecom.CodeInvalidToken,
		wecom.CodeTokenExpired, wecom.CodeForbidden, wecom.CodeIPNotAllowed, wecom.CodeAppDisabled:
		return true
	}
	return false
}

func errReason(code int) string { return "wecom_" + strconv.Itoa(code) }

// sendCustomers sends pending customers in chunks of at most 100. Each
// chunk is marked sending (committed) before the call.
func (s *Service) sendCustomers(ctx context.Context, c *wecom.Client, tenantID int64, j Handover) error {
	pending, err := s.items(ctx, tenantID, j.ID, ItemCustomer, ItemPending)
	if err != nil {
		return err
	}
	for len(pending) > 0 {
		chunk := pending[:min(len(pending), maxChunk)]
		pending = pending[len(chunk):]
		if err := s.markSending(ctx, tenantID, chunk); err != nil {
			return err
		}
		req := wecom.TransferRequest{HandoverUserID: j.handoverUser, TakeoverUserID: j.takeoverUser}
		byID := map[string]itemRow{}
		for _, it := range chunk {
			req.ExternalUserIDs = append(req.ExternalUserIDs, it.externalID)
			it.state = ItemSending
			byID[it.externalID] = it
		}
		var answer []wecom.CustomerTransfer
		if j.Kind == Resigned {
			answer, err = c.ResignedTransferCustomer(ctx, req)
		} else {
			req.SuccessMsg = j.Message
			answer, err = c.TransferCustomer(ctx, req)
		}
		if err != nil {
			return s.chunkFailed(ctx, tenantID, chunk, err)
		}
		for _, a := range answer {
			it, ok := byID[a.ExternalUserID]
			if !ok {
				continue
			}
			var err error
			switch a.ErrCode {
			case 0:
				err = s.setState(ctx, tenantID, it.id, ItemSending, ItemWaiting, "", "", 0, 0)
			case wecom.CodeTransferTooOften:
				err = s.setState(ctx, tenantID, it.id, ItemSending, ItemFailed, ReasonRule90d, wecom.Explain(a.ErrCode), a.ErrCode, 0)
			case wecom.CodeTransferInProgress:
				if !it.sentAt.IsZero() {
					// Sent before and looked up in vain: WeCom's results lag
					// behind, and it is our own transfer that is in progress.
					err = s.setState(ctx, tenantID, it.id, ItemSending, ItemWaiting, "", "", 0, 0)
					break
				}
				err = s.setState(ctx, tenantID, it.id, ItemSending, ItemFailed, ReasonInProgress, wecom.Explain(a.ErrCode), a.ErrCode, 0)
			default:
				err = s.setState(ctx, tenantID, it.id, ItemSending, ItemFailed, errReason(a.ErrCode), wecom.Explain(a.ErrCode), a.ErrCode, 0)
			}
			if err != nil {
				return err
			}
		}
		// Customers the answer left out stay "sending": the next pass asks WeCom.
	}
	return nil
}

func (s *Service) markSending(ctx context.Context, tenantID int64, chunk []itemRow) error {
	now := db.Millis(s.now())
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, it := range chunk {
			if _, err := tx.ExecContext(ctx, `UPDATE handover_items SET state = 'sending', sent_at = $3, updated_at = $3
				WHERE tenant_id = $1 AND id = $2 AND state = 'pending'`, tenantID, it.id, now); err != nil {
				return fmt.Errorf("handover: unable to mark item %d as sending: %w", it.id, err)
			}
		}
		return nil
	})
}

// chunkFailed records a call that failed as a whole. When WeCom answered,
// nothing was started: a definite refusal fails the items with WeCom's
// explanation, a passing one (outage, limits, credentials) sets them back
// to pending. Without an answer the items stay "sending" for the next pass
// to look up, so nothing is sent twice.
func (s *Service) chunkFailed(ctx context.Context, tenantID int64, chunk []itemRow, callErr error) error {
	code := wecom.ErrorCode(callErr)
	if code == 0 {
		return callErr
	}
	for _, it := range chunk {
		var err error
		if retryable(callErr) {
			err = s.setState(ctx, tenantID, it.id, ItemSending, ItemPending, "", "", 0, 0)
		} else {
			err = s.setState(ctx, tenantID, it.id, ItemSending, ItemFailed, errReason(code), wecom.Explain(code), code, 0)
		}
		if err != nil {
			return err
		}
	}
	if retryable(callErr) {
		return callErr
	}
	return nil
}

// resolveGroups settles groups sent without a recorded answer: the group's
// owner in WeCom says whether it moved.
func (s *Service) resolveGroups(ctx context.Context, c *wecom.Client, tenantID int64, j Handover) error {
	sending, err := s.items(ctx, tenantID, j.ID, ItemGroup, ItemSending)
	if err != nil {
		return err
	}
	for _, it := range sending {
		g, err := c.GroupChatGet(ctx, it.externalID, false)
		switch {
		case wecom.IsCode(err, wecom.CodeChatNotFound, wecom.CodeChatDismissed):
			code := wecom.ErrorCode(err)
			if err := s.setState(ctx, tenantID, it.id, ItemSending, ItemFailed, errReason(code), wecom.Explain(code), code, 0); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("handover: unable to read group %s: %w", it.externalID, err)
		case g.Owner == j.takeoverUser:
			if err := s.groupDone(ctx, tenantID, it, g); err != nil {
				return err
			}
		default:
			if err := s.setState(ctx, tenantID, it.id, ItemSending, ItemPending, "", "", 0, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// groupDone marks a group handed over and stores it as WeCom has it now.
func (s *Service) groupDone(ctx context.Context, tenantID int64, it itemRow, g wecom.GroupChat) error {
	now := s.now()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if g.ChatID != "" {
			if _, err := s.wecom.StoreGroup(ctx, tx, tenantID, g, now, fmt.Sprintf("handover:%d", it.id), 0); err != nil {
				return err
			}
		}
		return s.setStateTx(ctx, tx, tenantID, it.id, ItemSending, ItemDone, "", "", 0, db.Millis(now))
	})
}

// sendGroups sends pending groups in chunks of at most 100; WeCom moves a
// group at once, so the answer is final.
func (s *Service) sendGroups(ctx context.Context, c *wecom.Client, tenantID int64, j Handover) error {
	pending, err := s.items(ctx, tenantID, j.ID, ItemGroup, ItemPending)
	if err != nil {
		return err
	}
	for len(pending) > 0 {
		chunk := pending[:min(len(pending), maxChunk)]
		pending = pending[len(chunk):]
		if err := s.markSending(ctx, tenantID, chunk); err != nil {
			return err
		}
		ids := make([]string, len(chunk))
		for i, it := range chunk {
			ids[i] = it.externalID
		}
		var failed []wecom.GroupTransferFailure
		if j.Kind == Resigned {
			failed, err = c.GroupChatTransfer(ctx, ids, j.takeoverUser)
		} else {
			failed, err = c.GroupChatOnJobTransfer(ctx, ids, j.takeoverUser)
		}
		if err != nil {
			return s.chunkFailed(ctx, tenantID, chunk, err)
		}
		fails := map[string]wecom.GroupTransferFailure{}
		for _, f := range failed {
			fails[f.ChatID] = f
		}
		for _, it := range chunk {
			if f, ok := fails[it.externalID]; ok && f.ErrCode != 0 {
				reason := errReason(f.ErrCode)
				if f.ErrCode == wecom.CodeGroupTransferCap {
					reason = ReasonRule90d
				}
				if err := s.setState(ctx, tenantID, it.id, ItemSending, ItemFailed, reason, wecom.Explain(f.ErrCode), f.ErrCode, 0); err != nil {
					return err
				}
				continue
			}
			// Stored as WeCom has it now; when it cannot be read the
			// change_owner callback brings it.
			g, err := c.GroupChatGet(ctx, it.externalID, true)
			if err != nil {
				g = wecom.GroupChat{}
			}
			if err := s.groupDone(ctx, tenantID, it, g); err != nil {
				return err
			}
		}
	}
	return nil
}

// Refresh works a running handover now (sends what is pending, reads the
// results) and returns it; a finished one is returned as it is.
func (s *Service) Refresh(ctx context.Context, tenantID, id int64) (Handover, error) {
	j, err := s.Job(ctx, tenantID, id)
	if err != nil || j.Status != JobRunning {
		return j, err
	}
	if err := s.Work(ctx, tenantID, id); errors.Is(err, errLeased) {
		return Handover{}, errs.E(errs.Conflict, "handover_busy", "the handover is being worked on right now; look again in a moment")
	} else if err != nil {
		return Handover{}, err
	}
	return s.Job(ctx, tenantID, id)
}
