package message

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// The dispatcher: scheduled campaigns are planned when due, loose envelopes
// (Enqueue) are grouped into batches, due batches are delivered and accepted
// ones polled for results. Every step leases its rows (SKIP LOCKED on
// PostgreSQL), so several nodes can run it.
//
// Restart safety: a batch is marked submitting (committed) before its channel
// call. A batch found submitting later — its worker crashed, or the answer was
// lost — is never simply delivered again: the channel's Find looks for it
// first (WeCom: the sender's mass messages since the batch was marked, with
// the same text and recipients), and only when it certainly was not accepted
// is it delivered again.

// leaseFor is how long a worker holds what it leased; a worker that dies
// leaves it to another after this.
const leaseFor = 2 * time.Minute

// maxAttempts is how often a batch refused for a transient reason (rate
// limit) is tried before it fails.
const maxAttempts = 8

// Run dispatches until ctx ends: woken by Enqueue and Wake, and every Tick.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Tick)
	defer t.Stop()
	for {
		for {
			did, err := s.Step(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("message: dispatcher step failed", "err", err)
			}
			if !did || err != nil || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// Step does the work due now, once: plans due campaigns, batches loose
// envelopes, delivers due batches, polls due results. It reports whether it
// did anything (tests call it in a loop on simulated time).
func (s *Service) Step(ctx context.Context) (bool, error) {
	var did bool
	for _, f := range []func(context.Context) (bool, error){s.planDue, s.formBatches, s.deliverDue, s.pollDue} {
		d, err := f(ctx)
		if err != nil {
			return did, err
		}
		did = did || d
	}
	return did, nil
}

// Drain runs Step until nothing is due (tests and the demo).
func (s *Service) Drain(ctx context.Context) error {
	for range 10000 {
		did, err := s.Step(ctx)
		if err != nil || !did {
			return err
		}
	}
	return errors.New("message: the outbox did not settle")
}

// formBatches groups due envelopes that have no batch (Enqueue) into
// batches of one account and content, ≤ the channel's recipients each.
func (s *Service) formBatches(ctx context.Context) (bool, error) {
	now := db.Millis(s.now())
	did := false
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, tenant_id, channel, account, content_id, not_after FROM message_envelopes
			WHERE status = 'queued' AND batch_id = 0 AND due_at <= $1 ORDER BY due_at, id LIMIT 1000`+s.db.SkipLocked(), now)
		if err != nil {
			return fmt.Errorf("message: unable to read queued envelopes: %w", err)
		}
		type key struct {
			tenant           int64
			channel, account string
			content          int64
		}
		groups := map[key][]int64{}
		var order []key
		var expired []int64
		for rows.Next() {
			var id, notAfter int64
			var k key
			if err := rows.Scan(&id, &k.tenant, &k.channel, &k.account, &k.content, &notAfter); err != nil {
				rows.Close()
				return fmt.Errorf("message: unable to read queued envelopes: %w", err)
			}
			if notAfter > 0 && notAfter <= now {
				expired = append(expired, id)
				continue
			}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("message: unable to read queued envelopes: %w", err)
		}
		for _, id := range expired {
			did = true
			if _, err := tx.ExecContext(ctx, `UPDATE message_envelopes SET status = 'expired', reason = $2, updated_at = $3 WHERE id = $1`,
				id, ReasonDeadline, now); err != nil {
				return fmt.Errorf("message: unable to expire envelope %d: %w", id, err)
			}
		}
		for _, k := range order {
			r, ok := s.rules(k.channel)
			if !ok {
				continue // a channel this node does not have; another node may
			}
			ids := groups[k]
			for len(ids) > 0 {
				n := min(len(ids), r.MaxRecipients)
				chunk := ids[:n]
				ids = ids[n:]
				var bid int64
				if err := tx.QueryRowContext(ctx, `INSERT INTO message_batches (tenant_id, channel, account, content_id, status, recipients, due_at,
					created_at, updated_at) VALUES ($1, $2, $3, $4, 'queued', $5, $6, $6, $6) RETURNING id`,
					k.tenant, k.channel, k.account, k.content, n, now).Scan(&bid); err != nil {
					return fmt.Errorf("message: unable to create a batch: %w", err)
				}
				if _, err := tx.ExecContext(ctx, `UPDATE message_envelopes SET batch_id = $1, updated_at = $2 WHERE id IN (`+idList(chunk)+`)`,
					bid, now); err != nil {
					return fmt.Errorf("message: unable to batch envelopes: %w", err)
				}
				did = true
			}
		}
		return nil
	})
	return did, err
}

func idList(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, id)
	}
	return b.String()
}

// batchRow is a leased batch.
type batchRow struct {
	id, tenantID, contentID, campaignID int64
	channel, account, status, remoteID  string
	attempts                            int
	submitAt, submittedAt               int64
	reminders                           string
}

// scope is the WHERE clause of a batch's envelopes ($1 tenant, $2 batch):
// the campaign is part of the envelopes' index.
func (b batchRow) scope() string {
	return fmt.Sprintf("tenant_id = $1 AND campaign_id = %d AND batch_id = $2", b.campaignID)
}

const batchCols = `id, tenant_id, content_id, campaign_id, channel, account, status, remote_id, attempts, submit_at, submitted_at, reminders`

func scanBatch(row interface{ Scan(...any) error }) (batchRow, error) {
	var b batchRow
	err := row.Scan(&b.id, &b.tenantID, &b.contentID, &b.campaignID, &b.channel, &b.account, &b.status, &b.remoteID, &b.attempts, &b.submitAt,
		&b.submittedAt, &b.reminders)
	return b, err
}

// leaseBatches takes up to n batches matching where (with $1 = now).
func (s *Service) leaseBatches(ctx context.Context, where string, n int) ([]batchRow, error) {
	now := db.Millis(s.now())
	var out []batchRow
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+batchCols+` FROM message_batches WHERE (`+where+`) AND lease_until < $1
			ORDER BY id LIMIT `+fmt.Sprint(n)+s.db.SkipLocked(), now)
		if err != nil {
			return fmt.Errorf("message: unable to read batches: %w", err)
		}
		for rows.Next() {
			b, err := scanBatch(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("message: unable to read batches: %w", err)
			}
			out = append(out, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("message: unable to read batches: %w", err)
		}
		for _, b := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE message_batches SET lease_owner = $2, lease_until = $3 WHERE id = $1`,
				b.id, s.owner, now+leaseFor.Milliseconds()); err != nil {
				return fmt.Errorf("message: unable to lease batch %d: %w", b.id, err)
			}
		}
		return nil
	})
	return out, err
}

// release gives a leased batch back, due again at due (0: unchanged).
func (s *Service) release(ctx context.Context, b batchRow, due int64, errText string) error {
	q := `UPDATE message_batches SET lease_owner = '', lease_until = 0, updated_at = $3`
	args := []any{b.id, s.owner, db.Millis(s.now())}
	if due > 0 {
		args = append(args, due)
		q += fmt.Sprintf(`, due_at = $%d`, len(args))
	}
	if errText != "" {
		args = append(args, errText)
		q += fmt.Sprintf(`, error = $%d`, len(args))
	}
	_, err := s.db.ExecContext(ctx, q+` WHERE id = $1 AND lease_owner = $2`, args...)
	if err != nil {
		return fmt.Errorf("message: unable to release batch %d: %w", b.id, err)
	}
	return nil
}

// delivery loads what a batch delivers: its content and its envelopes of
// the given statuses.
func (s *Service) delivery(ctx context.Context, b batchRow, statuses string) (Delivery, error) {
	c, err := s.content(ctx, s.db, b.tenantID, b.contentID)
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{TenantID: b.tenantID, BatchID: b.id, Channel: b.channel, Account: b.account, Content: c}
	if b.submitAt > 0 {
		d.SubmitAt = db.FromMillis(b.submitAt)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, customer_id, recipient, params, not_after FROM message_envelopes
		WHERE `+b.scope()+` AND status IN (`+statuses+`) ORDER BY id`, b.tenantID, b.id)
	if err != nil {
		return Delivery{}, fmt.Errorf("message: unable to read batch %d: %w", b.id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Recipient
		var params string
		var notAfter int64
		if err := rows.Scan(&r.EnvelopeID, &r.CustomerID, &r.Recipient, &params, &notAfter); err != nil {
			return Delivery{}, fmt.Errorf("message: unable to read batch %d: %w", b.id, err)
		}
		if params != "" {
			_ = json.Unmarshal([]byte(params), &r.Params)
		}
		if notAfter > 0 {
			r.NotAfter = db.FromMillis(notAfter)
		}
		d.Recipients = append(d.Recipients, r)
	}
	return d, rows.Err()
}

// deliverDue delivers due batches and resolves batches left submitting.
func (s *Service) deliverDue(ctx context.Context) (bool, error) {
	bs, err := s.leaseBatches(ctx, `status = 'queued' AND due_at <= $1 OR status = 'submitting'`, 20)
	if err != nil {
		return false, err
	}
	for _, b := range bs {
		if err := s.deliverBatch(ctx, b); err != nil {
			s.log.Warn("message: batch delivery failed", "batch", b.id, "err", err)
			_ = s.release(ctx, b, db.Millis(s.now().Add(time.Minute)), err.Error())
		}
	}
	return len(bs) > 0, nil
}

func (s *Service) deliverBatch(ctx context.Context, b batchRow) error {
	ch, ok := s.Channel(b.channel)
	if !ok {
		return s.release(ctx, b, db.Millis(s.now().Add(time.Minute)), "no channel "+b.channel+" on this node")
	}
	r, _ := s.rules(b.channel)
	if b.status == "submitting" {
		return s.resolve(ctx, ch, r, b)
	}
	now := s.now()
	d, err := s.delivery(ctx, b, `'queued'`)
	if err != nil {
		return err
	}
	// Deadlines first: what can no longer be delivered expires.
	var live []Recipient
	var expired []int64
	for _, rc := range d.Recipients {
		if !rc.NotAfter.IsZero() && !now.Before(rc.NotAfter) {
			expired = append(expired, rc.EnvelopeID)
			continue
		}
		live = append(live, rc)
	}
	if len(expired) > 0 {
		if _, err := s.db.ExecContext(ctx, `UPDATE message_envelopes SET status = 'expired', reason = $2, updated_at = $3 WHERE tenant_id = $1 AND id IN (`+
			idList(expired)+`) AND status = 'queued'`, b.tenantID, ReasonDeadline, db.Millis(now)); err != nil {
			return fmt.Errorf("message: unable to expire envelopes: %w", err)
		}
	}
	d.Recipients = live
	if len(live) == 0 {
		return s.finishBatch(ctx, b, "expired", "", "")
	}
	set, err := s.Settings(ctx, b.tenantID)
	if err != nil {
		return err
	}
	if !r.QuietExempt {
		if until := quietUntil(set, now, s.location(ctx, b.tenantID)); until.After(now) {
			return s.release(ctx, b, db.Millis(until), "")
		}
	}
	gap := pacingFor(set, b.channel, r)
	var last int64
	err = s.db.QueryRowContext(ctx, `SELECT last_delivery_at FROM message_accounts WHERE tenant_id = $1 AND channel = $2 AND account = $3`,
		b.tenantID, b.channel, b.account).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("message: unable to read pacing: %w", err)
	}
	if gap > 0 && last > 0 && db.Millis(now) < last+gap.Milliseconds() {
		return s.release(ctx, b, last+gap.Milliseconds(), "")
	}
	// Mark submitting, committed before the call: a crash from here on
	// leaves the batch to be resolved with Find, never blindly resent.
	ok, err = s.markSubmitting(ctx, b, now)
	if err != nil || !ok {
		return err
	}
	b.status, b.submitAt = "submitting", db.Millis(now)
	d.SubmitAt = now
	acc, derr := ch.Deliver(ctx, d)
	return s.afterDeliver(ctx, ch, r, b, d, acc, derr)
}

func (s *Service) markSubmitting(ctx context.Context, b batchRow, now time.Time) (bool, error) {
	var ok bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE message_batches SET status = 'submitting', submit_at = $3, attempts = attempts + 1, updated_at = $3
			WHERE id = $1 AND lease_owner = $2 AND status = 'queued'`, b.id, s.owner, db.Millis(now))
		if err != nil {
			return fmt.Errorf("message: unable to mark batch %d submitting: %w", b.id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // cancelled meanwhile, or the lease was lost
		}
		ok = true
		_, err = tx.ExecContext(ctx, `INSERT INTO message_accounts (tenant_id, channel, account, last_delivery_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id, channel, account) DO UPDATE SET last_delivery_at = excluded.last_delivery_at`,
			b.tenantID, b.channel, b.account, db.Millis(now))
		if err != nil {
			return fmt.Errorf("message: unable to record pacing: %w", err)
		}
		return nil
	})
	return ok, err
}

// afterDeliver records a channel call's outcome.
func (s *Service) afterDeliver(ctx context.Context, ch Channel, r Rules, b batchRow, d Delivery, acc Accepted, derr error) error {
	now := s.now()
	var de *DeliveryError
	switch {
	case derr == nil:
		return s.accepted(ctx, ch, r, b, d, acc)
	case errors.As(derr, &de) && de.Retry && b.attempts+1 < maxAttempts:
		back := time.Duration(1<<min(b.attempts, 10)) * 30 * time.Second
		_, err := s.db.ExecContext(ctx, `UPDATE message_batches SET status = 'queued', due_at = $2, lease_owner = '', lease_until = 0,
			error = $3, error_code = $4, updated_at = $5 WHERE id = $1`, b.id, db.Millis(now.Add(back)), derr.Error(), de.Code, db.Millis(now))
		if err != nil {
			return fmt.Errorf("message: unable to requeue batch %d: %w", b.id, err)
		}
		return nil
	case errors.As(derr, &de):
		st := de.Status
		if st == "" {
			st = StatusFailed
		}
		if err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE message_envelopes SET status = $3, reason = $4, error_code = $5, updated_at = $6
				WHERE `+b.scope()+` AND status = 'queued'`, b.tenantID, b.id, string(st), de.Reason, de.Code, db.Millis(now)); err != nil {
				return fmt.Errorf("message: unable to record the refusal: %w", err)
			}
			bst := "failed"
			if st == StatusExpired {
				bst = "expired"
			}
			_, err := tx.ExecContext(ctx, `UPDATE message_batches SET status = $2, error = $3, error_code = $4, finished_at = $5, lease_owner = '',
				lease_until = 0, updated_at = $5 WHERE id = $1`, b.id, bst, derr.Error(), de.Code, db.Millis(now))
			return err
		}); err != nil {
			return err
		}
		return s.rollUp(ctx, b.tenantID, b.campaignID)
	default:
		// In doubt: WeCom may have accepted it. Keep it submitting; Find
		// decides after DoubtDelay.
		s.log.Warn("message: delivery outcome in doubt; it will be looked up before anything is sent again", "batch", b.id, "err", derr)
		_, err := s.db.ExecContext(ctx, `UPDATE message_batches SET lease_owner = '', lease_until = $2, error = $3, updated_at = $4 WHERE id = $1`,
			b.id, db.Millis(now.Add(s.o.DoubtDelay)), "outcome in doubt: "+derr.Error(), db.Millis(now))
		if err != nil {
			return fmt.Errorf("message: unable to record the doubt on batch %d: %w", b.id, err)
		}
		return nil
	}
}

// resolve settles a batch left submitting.
func (s *Service) resolve(ctx context.Context, ch Channel, r Rules, b batchRow) error {
	d, err := s.delivery(ctx, b, `'queued'`)
	if err != nil {
		return err
	}
	d.Resumed = true
	d.KnownRemoteIDs = map[string]bool{}
	rows, err := s.db.QueryContext(ctx, `SELECT remote_id FROM message_batches WHERE tenant_id = $1 AND channel = $2 AND account = $3 AND id <> $4
		AND remote_id <> '' AND submitted_at >= $5`, b.tenantID, b.channel, b.account, b.id, b.submitAt-int64(24*time.Hour/time.Millisecond))
	if err != nil {
		return fmt.Errorf("message: unable to read known deliveries: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("message: unable to read known deliveries: %w", err)
		}
		d.KnownRemoteIDs[id] = true
	}
	rows.Close()
	remote, found, err := ch.Find(ctx, d)
	if err != nil {
		s.log.Warn("message: unable to look up a batch in doubt; trying again later", "batch", b.id, "err", err)
		_, uerr := s.db.ExecContext(ctx, `UPDATE message_batches SET lease_owner = '', lease_until = $2, error = $3 WHERE id = $1`,
			b.id, db.Millis(s.now().Add(s.o.DoubtDelay)), "looking up the batch in doubt: "+err.Error())
		return uerr
	}
	if found {
		s.log.Info("message: a batch in doubt was accepted", "batch", b.id, "remote_id", remote)
		return s.accepted(ctx, ch, r, b, d, Accepted{RemoteID: remote})
	}
	// Certainly not accepted. Recipients whose deadline passed meanwhile
	// cannot be tried again, and a lost call may have used their one-time
	// code: their outcome is unknown, not expired.
	now := s.now()
	var gone []int64
	for _, rc := range d.Recipients {
		if !rc.NotAfter.IsZero() && !now.Before(rc.NotAfter) {
			gone = append(gone, rc.EnvelopeID)
		}
	}
	if len(gone) > 0 {
		if _, err := s.db.ExecContext(ctx, `UPDATE message_envelopes SET status = 'failed', reason = $2, updated_at = $3 WHERE tenant_id = $1
			AND id IN (`+idList(gone)+`) AND status = 'queued'`, b.tenantID, ReasonOutcomeUnknow, db.Millis(now)); err != nil {
			return fmt.Errorf("message: unable to record unknown outcomes: %w", err)
		}
		if len(gone) == len(d.Recipients) {
			return s.finishBatch(ctx, b, "failed", "", "the outcome of the delivery could not be confirmed before its deadline")
		}
	}
	// Deliver it again now, unless its campaign was cancelled meanwhile
	// (cancelling leaves batches in doubt to this step).
	if b.campaignID != 0 {
		var st string
		if err := s.db.QueryRowContext(ctx, `SELECT status FROM message_campaigns WHERE tenant_id = $1 AND id = $2`, b.tenantID, b.campaignID).Scan(&st); err != nil {
			return fmt.Errorf("message: unable to read campaign %d: %w", b.campaignID, err)
		}
		if st == string(CampaignCancelled) {
			if _, err := s.db.ExecContext(ctx, `UPDATE message_envelopes SET status = 'cancelled', reason = $3, updated_at = $4 WHERE `+b.scope()+`
				AND status = 'queued'`, b.tenantID, b.id, ReasonCancelled, db.Millis(now)); err != nil {
				return fmt.Errorf("message: unable to cancel envelopes: %w", err)
			}
			return s.finishBatch(ctx, b, "cancelled", "", "")
		}
	}
	_, err = s.db.ExecContext(ctx, `UPDATE message_batches SET status = 'queued', due_at = $2, lease_owner = '', lease_until = 0, updated_at = $2
		WHERE id = $1 AND status = 'submitting'`, b.id, db.Millis(s.now()))
	if err != nil {
		return fmt.Errorf("message: unable to requeue batch %d: %w", b.id, err)
	}
	if d.Resumed && len(d.Recipients) > 0 {
		// Delivered again by the next step; a welcome code used by the lost
		// call answers "invalid" then, recorded as outcome_unknown.
		s.Wake()
	}
	return nil
}

// accepted records an accepted delivery.
func (s *Service) accepted(ctx context.Context, ch Channel, r Rules, b batchRow, d Delivery, acc Accepted) error {
	now := s.now()
	ms := db.Millis(now)
	cancelled := false
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, rc := range d.Recipients {
			if reason, bad := acc.Failed[rc.Recipient]; bad {
				if _, err := tx.ExecContext(ctx, `UPDATE message_envelopes SET status = 'failed', reason = $2, updated_at = $3 WHERE id = $1`,
					rc.EnvelopeID, reason, ms); err != nil {
					return fmt.Errorf("message: unable to record a refused recipient: %w", err)
				}
			}
		}
		if r.PollEvery > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE message_envelopes SET status = 'submitted', updated_at = $3 WHERE `+b.scope()+`
				AND status = 'queued'`, b.tenantID, b.id, ms); err != nil {
				return fmt.Errorf("message: unable to record the acceptance: %w", err)
			}
			_, err := tx.ExecContext(ctx, `UPDATE message_batches SET status = 'submitted', remote_id = $2, submitted_at = $3, next_poll_at = $4,
				error = '', lease_owner = '', lease_until = 0, updated_at = $3 WHERE id = $1`, b.id, acc.RemoteID, ms, db.Millis(now.Add(r.PollEvery)))
			if err != nil {
				return fmt.Errorf("message: unable to record the acceptance: %w", err)
			}
		} else {
			if _, err := tx.ExecContext(ctx, `UPDATE message_envelopes SET status = 'sent', sent_at = $3, cap_at = $3, updated_at = $3
				WHERE `+b.scope()+` AND status = 'queued'`, b.tenantID, b.id, ms); err != nil {
				return fmt.Errorf("message: unable to record the acceptance: %w", err)
			}
			_, err := tx.ExecContext(ctx, `UPDATE message_batches SET status = 'done', remote_id = $2, submitted_at = $3, finished_at = $3, error = '',
				lease_owner = '', lease_until = 0, updated_at = $3 WHERE id = $1`, b.id, acc.RemoteID, ms)
			if err != nil {
				return fmt.Errorf("message: unable to record the acceptance: %w", err)
			}
		}
		if b.campaignID != 0 {
			var st string
			if err := tx.QueryRowContext(ctx, `SELECT status FROM message_campaigns WHERE tenant_id = $1 AND id = $2`, b.tenantID, b.campaignID).Scan(&st); err != nil {
				return fmt.Errorf("message: unable to read campaign %d: %w", b.campaignID, err)
			}
			cancelled = st == string(CampaignCancelled)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if cancelled && acc.RemoteID != "" {
		// Cancelled while this batch was in flight: withdraw it now.
		if err := s.cancelRemote(ctx, ch, b, d, acc.RemoteID); err != nil {
			return err
		}
	}
	return s.rollUp(ctx, b.tenantID, b.campaignID)
}

// finishBatch ends a batch without a delivery.
func (s *Service) finishBatch(ctx context.Context, b batchRow, status, code, errText string) error {
	ms := db.Millis(s.now())
	if _, err := s.db.ExecContext(ctx, `UPDATE message_batches SET status = $2, error_code = $3, error = $4, finished_at = $5, lease_owner = '',
		lease_until = 0, updated_at = $5 WHERE id = $1`, b.id, status, code, errText, ms); err != nil {
		return fmt.Errorf("message: unable to finish batch %d: %w", b.id, err)
	}
	return s.rollUp(ctx, b.tenantID, b.campaignID)
}

// pollDue reads the results of accepted deliveries.
func (s *Service) pollDue(ctx context.Context) (bool, error) {
	bs, err := s.leaseBatches(ctx, `status = 'submitted' AND next_poll_at <= $1`, 20)
	if err != nil {
		return false, err
	}
	for _, b := range bs {
		if err := s.poll(ctx, b); err != nil {
			s.log.Warn("message: polling results failed", "batch", b.id, "err", err)
			r, _ := s.rules(b.channel)
			_, _ = s.db.ExecContext(ctx, `UPDATE message_batches SET next_poll_at = $2, lease_owner = '', lease_until = 0, error = $3 WHERE id = $1`,
				b.id, db.Millis(s.now().Add(max(r.PollEvery, time.Minute))), err.Error())
		}
	}
	return len(bs) > 0, nil
}

func (s *Service) poll(ctx context.Context, b batchRow) error {
	ch, ok := s.Channel(b.channel)
	if !ok {
		return fmt.Errorf("message: no channel %s on this node", b.channel)
	}
	r, _ := s.rules(b.channel)
	d, err := s.delivery(ctx, b, `'submitted'`)
	if err != nil {
		return err
	}
	res, err := ch.Results(ctx, d, b.remoteID)
	if err != nil {
		return err
	}
	now := s.now()
	ms := db.Millis(now)
	byRecipient := map[string]int64{}
	for _, rc := range d.Recipients {
		byRecipient[rc.Recipient] = rc.EnvelopeID
	}
	final := res.Final || (r.ResultWindow > 0 && !now.Before(db.FromMillis(b.submittedAt).Add(r.ResultWindow)))
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, o := range res.Outcomes {
			id, ok := byRecipient[o.Recipient]
			if !ok || o.Status == StatusSubmitted || o.Status == "" {
				continue
			}
			at := ms
			if !o.At.IsZero() {
				at = db.Millis(o.At)
			}
			q := `UPDATE message_envelopes SET status = $2, reason = $3, updated_at = $4 WHERE id = $1 AND status = 'submitted'`
			if o.Status == StatusSent {
				q = `UPDATE message_envelopes SET status = $2, reason = $3, sent_at = $4, cap_at = $4, updated_at = $4 WHERE id = $1 AND status = 'submitted'`
			}
			if _, err := tx.ExecContext(ctx, q, id, string(o.Status), o.Reason, at); err != nil {
				return fmt.Errorf("message: unable to record a result: %w", err)
			}
		}
		if final {
			if _, err := tx.ExecContext(ctx, `UPDATE message_envelopes SET status = 'not_sent', reason = $3, updated_at = $4
				WHERE `+b.scope()+` AND status = 'submitted'`, b.tenantID, b.id, ReasonNotSent, ms); err != nil {
				return fmt.Errorf("message: unable to close results: %w", err)
			}
			_, err := tx.ExecContext(ctx, `UPDATE message_batches SET status = 'done', finished_at = $2, lease_owner = '', lease_until = 0, error = '',
				updated_at = $2 WHERE id = $1`, b.id, ms)
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE message_batches SET next_poll_at = $2, lease_owner = '', lease_until = 0, error = '', updated_at = $3
			WHERE id = $1`, b.id, db.Millis(now.Add(r.PollEvery)), ms)
		return err
	})
	if err != nil {
		return err
	}
	if final {
		return s.rollUp(ctx, b.tenantID, b.campaignID)
	}
	return nil
}

// rollUp moves a campaign on when its batches did: sent when none is left
// to deliver, done when every result is final.
func (s *Service) rollUp(ctx context.Context, tenantID, campaignID int64) error {
	if campaignID == 0 {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT status, count(*) FROM message_batches WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY status`,
		tenantID, campaignID)
	if err != nil {
		return fmt.Errorf("message: unable to read campaign %d batches: %w", campaignID, err)
	}
	counts := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return fmt.Errorf("message: unable to read campaign %d batches: %w", campaignID, err)
		}
		counts[st] = n
	}
	rows.Close()
	ms := db.Millis(s.now())
	switch {
	case counts["queued"]+counts["submitting"] > 0:
		return nil
	case counts["submitted"] > 0:
		_, err = s.db.ExecContext(ctx, `UPDATE message_campaigns SET status = 'sent', updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND status = 'sending'`,
			tenantID, campaignID, ms)
	default:
		_, err = s.db.ExecContext(ctx, `UPDATE message_campaigns SET status = 'done', finished_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2
			AND status IN ('sending', 'sent')`, tenantID, campaignID, ms)
	}
	if err != nil {
		return fmt.Errorf("message: unable to update campaign %d: %w", campaignID, err)
	}
	return nil
}

// cancelRemote withdraws an accepted delivery and cancels what was not sent.
func (s *Service) cancelRemote(ctx context.Context, ch Channel, b batchRow, d Delivery, remoteID string) error {
	c, ok := ch.(Canceller)
	if !ok {
		return nil
	}
	if err := c.Cancel(ctx, d, remoteID); err != nil {
		return fmt.Errorf("message: unable to cancel batch %d: %w", b.id, err)
	}
	// What was sent before the cancel stays sent: read the results first.
	if res, err := ch.Results(ctx, d, remoteID); err == nil {
		ms := db.Millis(s.now())
		ids := map[string]int64{}
		for _, rc := range d.Recipients {
			ids[rc.Recipient] = rc.EnvelopeID
		}
		sent := make([]int64, 0)
		for _, o := range res.Outcomes {
			if o.Status == StatusSent {
				if id, ok := ids[o.Recipient]; ok {
					sent = append(sent, id)
				}
			}
		}
		sort.Slice(sent, func(i, j int) bool { return sent[i] < sent[j] })
		if len(sent) > 0 {
			if _, err := s.db.ExecContext(ctx, `UPDATE message_envelopes SET status = 'sent', sent_at = $1, cap_at = $1, updated_at = $1
				WHERE id IN (`+idList(sent)+`) AND status IN ('queued', 'submitted')`, ms); err != nil {
				return fmt.Errorf("message: unable to record results: %w", err)
			}
		}
	}
	ms := db.Millis(s.now())
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE message_envelopes SET status = 'cancelled', reason = $3, updated_at = $4
			WHERE `+b.scope()+` AND status IN ('queued', 'submitted')`, b.tenantID, b.id, ReasonCancelled, ms); err != nil {
			return fmt.Errorf("message: unable to cancel envelopes: %w", err)
		}
		_, err := tx.ExecContext(ctx, `UPDATE message_batches SET status = 'cancelled', finished_at = $2, lease_owner = '', lease_until = 0, updated_at = $2
			WHERE id = $1`, b.id, ms)
		return err
	})
}
