package wecom

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// The inbox is the durable queue between WeCom's callbacks and their
// processing. The endpoint stores each event (committed) before answering
// "success", so nothing WeCom was told is received can be lost; a worker on
// any node leases due rows, processes each idempotently and records the
// outcome. A failing event is retried with growing back-off and finally set
// aside as failed, with the reason shown in the console.

// InboxStatus is where an inbox event stands.
type InboxStatus string

// Inbox statuses.
const (
	InboxPending InboxStatus = "pending" // waiting to be processed, or to be retried
	InboxDone    InboxStatus = "done"    // applied
	InboxFailed  InboxStatus = "failed"  // given up after repeated failures; Error says why
	InboxIgnored InboxStatus = "ignored" // stored and acknowledged, not applied (unknown or unused event); Note says why
)

// InboxEntry is one stored callback, as the event log shows it.
type InboxEntry struct {
	ID             int64       `json:"id"`
	Key            string      `json:"key" doc:"The event's identity; a redelivery has the same key and is stored once."`
	Kind           string      `json:"kind" doc:"Event and change type, e.g. change_external_contact/add_external_contact."`
	Subject        string      `json:"subject,omitempty" doc:"What the event is about: a customer's external_userid, a group's chat_id, a tag id or a staff user id."`
	Status         InboxStatus `json:"status" enum:"pending,done,failed,ignored"`
	Attempts       int         `json:"attempts"`
	Error          string      `json:"error,omitempty" doc:"Why the last attempt failed."`
	Note           string      `json:"note,omitempty" doc:"What processing did, or why the event was ignored."`
	Deliveries     int         `json:"deliveries" doc:"How often WeCom delivered the event (retries and duplicates included)."`
	EventTime      time.Time   `json:"event_time" doc:"When the change happened in WeCom (CreateTime)."`
	ReceivedAt     time.Time   `json:"received_at"`
	LastReceivedAt time.Time   `json:"last_received_at"`
	NextAttemptAt  time.Time   `json:"next_attempt_at,omitzero"`
	ProcessedAt    time.Time   `json:"processed_at,omitzero"`
	Payload        string      `json:"payload,omitempty" doc:"The decrypted message."`
}

// Stored says what storing a callback did.
type Stored struct {
	ID        int64
	Duplicate bool // the event was stored before (a retry or duplicate delivery)
}

// subject names what an event is about, for the event log.
func subject(e Event) string {
	switch e.Event {
	case EventChangeExternalContact:
		if e.UserID != "" && e.ExternalUserID != "" {
			return e.ExternalUserID + " / " + e.UserID
		}
		return e.ExternalUserID
	case EventChangeExternalChat:
		return e.ChatID
	case EventChangeExternalTag:
		return e.ID
	case EventChangeContact:
		if e.UserID != "" {
			return e.UserID
		}
		return e.ID
	}
	return ""
}

// storeEvent commits a callback to the inbox and reports whether it was new.
// An event Siyu does not apply (unknown kind, a message) is stored as
// ignored, so it is shown and acknowledged but never processed.
func (s *Service) storeEvent(ctx context.Context, tenantID int64, e Event) (Stored, error) {
	status, note := InboxPending, ""
	if !e.Kind().Known() {
		status, note = InboxIgnored, "Siyu does not handle this kind of event; it is kept here for reference"
	}
	return s.storeRaw(ctx, tenantID, e.Key(), e.MsgType, e.Event, e.ChangeType, subject(e), e.CreateTime, string(e.Raw), status, note, rereads(e))
}

// rereads reports events whose processing reads the current state from
// WeCom and whose key cannot tell two changes in the same second apart (two
// edits of one customer by one staff member, two renames of a group or a
// tag): a redelivery after the event was processed may be a second change,
// so it is processed again. Reprocessing is idempotent; the cost is one API
// call.
func rereads(e Event) bool {
	switch e.Kind() {
	case KindEditExternalContact, KindTagCreate, KindTagUpdate, KindTagDelete, KindTagShuffle:
		return true
	case KindChatUpdate:
		return e.UpdateDetail != UpdateAddMember && e.UpdateDetail != UpdateDelMember
	}
	return false
}

// storeUnreadable keeps a signed message that does not parse as an event, so
// that nothing WeCom sent is lost and the operator can see it.
func (s *Service) storeUnreadable(ctx context.Context, tenantID int64, msg []byte, why error) (Stored, error) {
	sum := sha256.Sum256(msg)
	key := fmt.Sprintf("unreadable@%d#%s", s.now().Unix(), hex.EncodeToString(sum[:16]))
	return s.storeRaw(ctx, tenantID, key, "", "", "", "", s.now().Unix(), string(msg), InboxIgnored,
		"the message could not be read as a WeCom event: "+errs.CodeOf(why), false)
}

func (s *Service) storeRaw(ctx context.Context, tenantID int64, key, msgType, event, change, subj string, createTime int64,
	payload string, status InboxStatus, note string, reread bool) (Stored, error) {
	now := db.Millis(s.now())
	var out Stored
	var deliveries int
	var after string
	requeue := 0
	if reread {
		requeue = 1
	}
	err := s.db.QueryRowContext(ctx, `INSERT INTO wecom_inbox (tenant_id, event_key, msg_type, event, change_type, subject, event_time, payload,
		status, note, next_attempt_at, received_at, last_received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11)
		ON CONFLICT (tenant_id, event_key) DO UPDATE SET deliveries = wecom_inbox.deliveries + 1, last_received_at = excluded.last_received_at,
		status = CASE WHEN $12 = 1 AND wecom_inbox.status = 'done' THEN 'pending' ELSE wecom_inbox.status END,
		next_attempt_at = CASE WHEN $12 = 1 AND wecom_inbox.status = 'done' THEN excluded.next_attempt_at ELSE wecom_inbox.next_attempt_at END
		RETURNING id, deliveries, status`,
		tenantID, key, msgType, event, change, truncate(subj, 200), createTime*1000, payload, string(status), note, now, requeue).
		Scan(&out.ID, &deliveries, &after)
	if err != nil {
		return Stored{}, fmt.Errorf("wecom: unable to store callback: %w", err)
	}
	out.Duplicate = deliveries > 1
	if InboxStatus(after) == InboxPending {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return out, nil
}

// InboxQuery filters the event log.
type InboxQuery struct {
	Status InboxStatus // "": every status
}

const inboxCols = `id, event_key, msg_type, event, change_type, subject, status, attempts, error, note, deliveries, event_time, received_at,
	last_received_at, next_attempt_at, coalesce(processed_at, 0), payload`

func scanInbox(row interface{ Scan(...any) error }) (InboxEntry, error) {
	var e InboxEntry
	var msgType, event, change, status string
	var evAt, recv, last, next, proc int64
	err := row.Scan(&e.ID, &e.Key, &msgType, &event, &change, &e.Subject, &status, &e.Attempts, &e.Error, &e.Note, &e.Deliveries, &evAt, &recv,
		&last, &next, &proc, &e.Payload)
	e.Status = InboxStatus(status)
	switch {
	case msgType != "" && msgType != MsgTypeEvent:
		e.Kind = msgType
	case change != "":
		e.Kind = event + "/" + change
	case event != "":
		e.Kind = event
	default:
		e.Kind = "unreadable"
	}
	e.EventTime, e.ReceivedAt, e.LastReceivedAt, e.ProcessedAt = db.FromMillis(evAt), db.FromMillis(recv), db.FromMillis(last), db.FromMillis(proc)
	if e.Status == InboxPending {
		e.NextAttemptAt = db.FromMillis(next)
	}
	return e, err
}

// Inbox lists a workspace's stored callbacks, newest first: the callback
// event log, with failures, retries and ignored events.
func (s *Service) Inbox(ctx context.Context, tenantID int64, q InboxQuery, r page.Request) (page.Page[InboxEntry], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[InboxEntry]{}, err
	}
	where := ` WHERE tenant_id = $1`
	args := []any{tenantID}
	if q.Status != "" {
		args = append(args, string(q.Status))
		where += fmt.Sprintf(` AND status = $%d`, len(args))
	}
	if ok {
		args = append(args, after)
		where += fmt.Sprintf(` AND id < $%d`, len(args))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+inboxCols+` FROM wecom_inbox`+where+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1), args...)
	if err != nil {
		return page.Page[InboxEntry]{}, fmt.Errorf("wecom: unable to list the event log: %w", err)
	}
	defer rows.Close()
	var out []InboxEntry
	for rows.Next() {
		e, err := scanInbox(rows)
		if err != nil {
			return page.Page[InboxEntry]{}, fmt.Errorf("wecom: unable to read the event log: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return page.Page[InboxEntry]{}, fmt.Errorf("wecom: unable to list the event log: %w", err)
	}
	return page.Trim(out, r, func(e InboxEntry) string { return page.ByID(e.ID) }), nil
}

// InboxEntry returns one stored callback.
func (s *Service) InboxEntry(ctx context.Context, tenantID, id int64) (InboxEntry, error) {
	e, err := scanInbox(s.db.QueryRowContext(ctx, `SELECT `+inboxCols+` FROM wecom_inbox WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return InboxEntry{}, errs.NotFoundf("wecom_event", "no WeCom event with id %d", id)
	}
	if err != nil {
		return InboxEntry{}, fmt.Errorf("wecom: unable to read event %d: %w", id, err)
	}
	return e, nil
}

// Retry puts a failed (or ignored) event back in the queue, to be processed
// at once (after the operator fixed what made it fail).
func (s *Service) Retry(ctx context.Context, p tenant.Principal, id int64) (InboxEntry, error) {
	if err := p.Require(tenant.PermConnectorsManage); err != nil {
		return InboxEntry{}, err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE wecom_inbox SET status = 'pending', attempts = 0, next_attempt_at = $3, lease_until = 0, lease_owner = '', error = ''
		WHERE tenant_id = $1 AND id = $2 AND status IN ('failed', 'ignored') AND event <> ''`, p.TenantID, id, db.Millis(s.now()))
	if err != nil {
		return InboxEntry{}, fmt.Errorf("wecom: unable to retry event %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		e, err := s.InboxEntry(ctx, p.TenantID, id)
		if err != nil {
			return InboxEntry{}, err
		}
		return InboxEntry{}, errs.E(errs.Conflict, "wecom_event_not_retryable", "event %d is %s; only failed or ignored events can be retried", id, e.Status)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return s.InboxEntry(ctx, p.TenantID, id)
}

// job is one leased inbox row.
type job struct {
	id, tenantID int64
	key          string
	payload      string
	attempts     int
}

// leaseFor is how long a worker holds the rows it took; a worker that dies
// leaves them to another after this.
const leaseFor = 2 * time.Minute

// batchSize is how many events one worker leases at a time.
const batchSize = 50

// lease takes up to batchSize due rows for this worker. On PostgreSQL,
// workers on several nodes each take different rows (SKIP LOCKED).
func (s *Service) lease(ctx context.Context) ([]job, error) {
	now := db.Millis(s.now())
	var jobs []job
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, tenant_id, event_key, payload, attempts FROM wecom_inbox
			WHERE status = 'pending' AND next_attempt_at <= $1 AND lease_until < $1 ORDER BY next_attempt_at, id LIMIT $2`+s.db.SkipLocked(),
			now, batchSize)
		if err != nil {
			return fmt.Errorf("wecom: unable to read the inbox: %w", err)
		}
		for rows.Next() {
			var j job
			if err := rows.Scan(&j.id, &j.tenantID, &j.key, &j.payload, &j.attempts); err != nil {
				rows.Close()
				return fmt.Errorf("wecom: unable to read the inbox: %w", err)
			}
			jobs = append(jobs, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("wecom: unable to read the inbox: %w", err)
		}
		for _, j := range jobs {
			if _, err := tx.ExecContext(ctx, `UPDATE wecom_inbox SET lease_owner = $2, lease_until = $3 WHERE id = $1`,
				j.id, s.owner, now+leaseFor.Milliseconds()); err != nil {
				return fmt.Errorf("wecom: unable to lease event %d: %w", j.id, err)
			}
		}
		return nil
	})
	return jobs, err
}

// backoff is the delay before attempt n+1 after n failures.
func (s *Service) backoff(n int) time.Duration {
	d := s.o.Backoff
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// errorText says why processing failed, in WeCom's explanation when WeCom
// refused.
func errorText(err error) string {
	if code := ErrorCode(err); code != 0 {
		return fmt.Sprintf("%s (%v)", Explain(code), err)
	}
	return err.Error()
}

// finish records a job's outcome, if this worker still holds its lease.
func (s *Service) finish(ctx context.Context, j job, note string, ignored bool, failure error) error {
	now := s.now()
	var err error
	switch {
	case failure == nil:
		status := InboxDone
		if ignored {
			status = InboxIgnored
		}
		_, err = s.db.ExecContext(ctx, `UPDATE wecom_inbox SET status = $3, note = $4, error = '', attempts = attempts + 1, processed_at = $5,
			lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`, j.id, s.owner, string(status), truncate(note, 1000), db.Millis(now))
	case j.attempts+1 >= s.o.MaxAttempts || !retryable(failure):
		s.log.ErrorContext(ctx, "wecom: giving up on a callback event", "tenant", j.tenantID, "event", j.id, "key", j.key, "attempts", j.attempts+1, "err", failure)
		_, err = s.db.ExecContext(ctx, `UPDATE wecom_inbox SET status = 'failed', error = $3, attempts = attempts + 1, processed_at = $4,
			lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`, j.id, s.owner, truncate(errorText(failure), 2000), db.Millis(now))
	default:
		next := now.Add(s.backoff(j.attempts + 1))
		s.log.WarnContext(ctx, "wecom: callback event failed; will retry", "tenant", j.tenantID, "event", j.id, "key", j.key,
			"attempts", j.attempts+1, "retry_at", next, "err", failure)
		_, err = s.db.ExecContext(ctx, `UPDATE wecom_inbox SET error = $3, attempts = attempts + 1, next_attempt_at = $4,
			lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`, j.id, s.owner, truncate(errorText(failure), 2000), db.Millis(next))
	}
	if err != nil {
		return fmt.Errorf("wecom: unable to record the outcome of event %d: %w", j.id, err)
	}
	return nil
}

// retryable reports whether trying again may help: not for a message that
// cannot be read, nor for an event naming nothing.
func retryable(err error) bool {
	return !errors.Is(err, ErrBadEvent) && !strings.HasPrefix(errs.CodeOf(err), "wecom_missing_")
}

// ProcessDue processes the inbox events that are due and returns how many it
// took.
func (s *Service) ProcessDue(ctx context.Context) (int, error) {
	jobs, err := s.lease(ctx)
	if err != nil {
		return 0, err
	}
	for i, j := range jobs {
		if ctx.Err() != nil {
			// Shutting down: free the rest so another worker takes them now.
			s.release(jobs[i:])
			return i, ctx.Err()
		}
		// The lease covers the batch from its start; renew it for this event,
		// and leave an event another worker took over after a long wait.
		ok, err := s.renew(ctx, j)
		if err != nil {
			return i, err
		}
		if !ok {
			continue
		}
		out, perr := s.process(ctx, j)
		if perr == nil && !out.ignored {
			perr = s.notify(ctx, j, out)
		}
		if perr != nil && ctx.Err() != nil {
			s.release(jobs[i:])
			return i, ctx.Err()
		}
		if err := s.finish(ctx, j, out.note, out.ignored, perr); err != nil {
			return i, err
		}
	}
	return len(jobs), nil
}

// renew extends this worker's lease of a job; false when it lost it.
func (s *Service) renew(ctx context.Context, j job) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE wecom_inbox SET lease_until = $3 WHERE id = $1 AND lease_owner = $2 AND status = 'pending'`,
		j.id, s.owner, db.Millis(s.now())+leaseFor.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("wecom: unable to renew the lease of event %d: %w", j.id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *Service) release(jobs []job) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, j := range jobs {
		if _, err := s.db.ExecContext(ctx, `UPDATE wecom_inbox SET lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`, j.id, s.owner); err != nil {
			s.log.Warn("wecom: unable to release an inbox lease", "event", j.id, "err", err)
			return
		}
	}
}

// Drain processes until no event is due (tests, the demo).
func (s *Service) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.ProcessDue(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// Run processes the inbox until ctx is done: at once after a callback is
// stored on this node, and every Interval otherwise (callbacks stored by
// other nodes, retries coming due).
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			n, err := s.ProcessDue(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Error("wecom: inbox processing failed", "err", err)
				}
				break
			}
			if n < batchSize {
				break
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
