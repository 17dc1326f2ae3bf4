package message

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// RecipientResult is one recipient's outcome in a campaign.
type RecipientResult struct {
	EnvelopeID   int64     `json:"envelope_id"`
	CustomerID   int64     `json:"customer_id,omitempty"`
	CustomerName string    `json:"customer_name,omitempty"`
	Recipient    string    `json:"recipient" doc:"external_userid (customers) or chat_id (groups); empty when nobody could send."`
	StaffUserID  string    `json:"staff_userid,omitempty"`
	Status       Status    `json:"status" enum:"queued,submitted,sent,not_sent,failed,skipped,expired,cancelled"`
	Reason       string    `json:"reason,omitempty" doc:"over_cap, no_relation, not_friend, not_sent, cancelled, …"`
	ErrorCode    string    `json:"error_code,omitempty"`
	SentAt       time.Time `json:"sent_at,omitzero"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// channelOf is the channel a campaign kind sends through.
func channelOf(kind string) string {
	if kind == KindGroups {
		return ChannelWeComGroup
	}
	return ChannelWeComCustomer
}

// defaultRules apply when the channel is not registered (validation only).
var defaultRules = Rules{MaxRecipients: 10000, MaxAttachments: 9, MaxTextBytes: 4000}

func (s *Service) checkCampaign(in *CampaignInput) error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		return errs.Field("name", "required", "a campaign needs a name")
	}
	switch in.Kind {
	case "":
		in.Kind = KindCustomers
	case KindCustomers, KindGroups:
	default:
		return errs.Field("kind", "invalid_kind", "kind is customers or groups, not %q", in.Kind)
	}
	t := in.Target
	if in.Kind == KindCustomers {
		if t.AudienceID == 0 && t.Condition == nil {
			return errs.Field("target", "target_required", "choose a saved audience or give a condition")
		}
		if t.AudienceID != 0 && t.Condition != nil {
			return errs.Field("target", "target_ambiguous", "give either audience_id or condition, not both")
		}
		if t.Condition != nil {
			if err := t.Condition.Validate(); err != nil {
				return err
			}
		}
		if len(t.ChatIDs) > 0 || len(t.GroupOwners) > 0 {
			return errs.Field("target", "target_mismatch", "chat_ids and group_owners are for group campaigns")
		}
		if strings.Contains(in.Content.Text, "{{customer_name}}") {
			return errs.Field("content.text", "placeholder_per_customer",
				"WeCom sends one text to all the customers of a staff member, so {{customer_name}} cannot be used in a mass message; {{staff_name}} can")
		}
	} else if t.AudienceID != 0 || t.Condition != nil || len(t.StaffUserIDs) > 0 {
		return errs.Field("target", "target_mismatch", "a group campaign targets chat_ids or group_owners")
	}
	r, ok := s.rules(channelOf(in.Kind))
	if !ok {
		r = defaultRules
	}
	return checkContent(r, in.Content)
}

const campaignCols = `id, name, kind, status, target, content, send_at, planned_at, finished_at, cancelled_at, recipients, staff, batches, error,
	created_by, created_at, updated_at`

func scanCampaign(row interface{ Scan(...any) error }) (Campaign, error) {
	var c Campaign
	var status, target, content string
	var sendAt, planned, finished, cancelled, created, updated int64
	err := row.Scan(&c.ID, &c.Name, &c.Kind, &status, &target, &content, &sendAt, &planned, &finished, &cancelled, &c.Stats.Recipients,
		&c.Stats.Staff, &c.Stats.Batches, &c.Error, &c.CreatedBy, &created, &updated)
	if err != nil {
		return c, err
	}
	c.Status = CampaignStatus(status)
	_ = json.Unmarshal([]byte(target), &c.Target)
	_ = json.Unmarshal([]byte(content), &c.Content)
	for _, p := range []struct {
		ms  int64
		dst *time.Time
	}{{sendAt, &c.SendAt}, {planned, &c.PlannedAt}, {finished, &c.FinishedAt}, {cancelled, &c.CancelledAt}} {
		if p.ms > 0 {
			*p.dst = db.FromMillis(p.ms)
		}
	}
	c.CreatedAt, c.UpdatedAt = db.FromMillis(created), db.FromMillis(updated)
	return c, nil
}

func (s *Service) campaign(ctx context.Context, q db.Querier, tenantID, id int64) (Campaign, error) {
	c, err := scanCampaign(q.QueryRowContext(ctx, `SELECT `+campaignCols+` FROM message_campaigns WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Campaign{}, errs.NotFoundf("campaign", "no mass message with id %d", id)
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("message: unable to read campaign %d: %w", id, err)
	}
	return c, nil
}

// Campaign returns a campaign with its current counts.
func (s *Service) Campaign(ctx context.Context, tenantID, id int64) (Campaign, error) {
	c, err := s.campaign(ctx, s.db, tenantID, id)
	if err != nil {
		return Campaign{}, err
	}
	if c.PlannedAt.IsZero() {
		return c, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT status, reason, count(*) FROM message_envelopes WHERE tenant_id = $1 AND campaign_id = $2
		GROUP BY status, reason`, tenantID, id)
	if err != nil {
		return Campaign{}, fmt.Errorf("message: unable to count campaign %d: %w", id, err)
	}
	defer rows.Close()
	st := &c.Stats
	for rows.Next() {
		var status, reason string
		var n int64
		if err := rows.Scan(&status, &reason, &n); err != nil {
			return Campaign{}, fmt.Errorf("message: unable to count campaign %d: %w", id, err)
		}
		countInto(st, Status(status), reason, n)
	}
	return c, rows.Err()
}

func countInto(st *CampaignStats, status Status, reason string, n int64) {
	switch {
	case reason == ReasonOverCap:
		st.OverCap += n
	case reason == ReasonNotFriend:
		st.NotFriend += n
	case status == StatusQueued:
		st.Queued += n
	case status == StatusSubmitted:
		st.Submitted += n
	case status == StatusSent:
		st.Sent += n
	case status == StatusNotSent:
		st.NotSent += n
	case status == StatusFailed:
		st.Failed += n
	case status == StatusSkipped:
		st.Skipped += n
	case status == StatusCancelled:
		st.Cancelled += n
	case status == StatusExpired:
		st.Expired += n
	}
}

// Campaigns lists campaigns, newest first. Their stats carry the planned
// counts (recipients, staff, batches); Campaign has the outcomes.
func (s *Service) Campaigns(ctx context.Context, tenantID int64, q CampaignQuery, r page.Request) (page.Page[Campaign], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[Campaign]{}, err
	}
	where := ` WHERE tenant_id = $1`
	args := []any{tenantID}
	if q.Status != "" {
		args = append(args, string(q.Status))
		where += fmt.Sprintf(` AND status = $%d`, len(args))
	}
	if q.Kind != "" {
		args = append(args, q.Kind)
		where += fmt.Sprintf(` AND kind = $%d`, len(args))
	}
	if ok {
		args = append(args, after)
		where += fmt.Sprintf(` AND id < $%d`, len(args))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+campaignCols+` FROM message_campaigns`+where+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1), args...)
	if err != nil {
		return page.Page[Campaign]{}, fmt.Errorf("message: unable to list campaigns: %w", err)
	}
	defer rows.Close()
	var out []Campaign
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			return page.Page[Campaign]{}, fmt.Errorf("message: unable to list campaigns: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Campaign]{}, fmt.Errorf("message: unable to list campaigns: %w", err)
	}
	return page.Trim(out, r, func(c Campaign) string { return page.ByID(c.ID) }), nil
}

// CreateCampaign creates a draft (idempotent on in.Key).
func (s *Service) CreateCampaign(ctx context.Context, p tenant.Principal, in CampaignInput) (Campaign, error) {
	if err := p.Require(tenant.PermMessagesSend); err != nil {
		return Campaign{}, err
	}
	if err := s.checkCampaign(&in); err != nil {
		return Campaign{}, err
	}
	target, _ := json.Marshal(in.Target)
	content, _ := json.Marshal(in.Content)
	var id int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if in.Key != "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM message_campaigns WHERE tenant_id = $1 AND idem_key = $2`, p.TenantID, in.Key).Scan(&id)
			if err == nil {
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("message: unable to look up campaign key: %w", err)
			}
		}
		now := db.Millis(s.now())
		if err := tx.QueryRowContext(ctx, `INSERT INTO message_campaigns (tenant_id, idem_key, name, kind, status, target, content, created_by,
			created_at, updated_at) VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7, $8, $8) RETURNING id`,
			p.TenantID, in.Key, in.Name, in.Kind, string(target), string(content), p.Name, now).Scan(&id); err != nil {
			return fmt.Errorf("message: unable to create campaign: %w", err)
		}
		return s.audit(ctx, tx, p, "message.campaign.create", "campaign", fmt.Sprint(id), in.Name)
	})
	if err != nil {
		return Campaign{}, err
	}
	return s.Campaign(ctx, p.TenantID, id)
}

// UpdateCampaign edits a draft or a scheduled campaign (not yet planned).
func (s *Service) UpdateCampaign(ctx context.Context, p tenant.Principal, id int64, in CampaignInput) (Campaign, error) {
	if err := p.Require(tenant.PermMessagesSend); err != nil {
		return Campaign{}, err
	}
	if err := s.checkCampaign(&in); err != nil {
		return Campaign{}, err
	}
	target, _ := json.Marshal(in.Target)
	content, _ := json.Marshal(in.Content)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE message_campaigns SET name = $3, kind = $4, target = $5, content = $6, updated_at = $7
			WHERE tenant_id = $1 AND id = $2 AND status IN ('draft', 'scheduled')`, p.TenantID, id, in.Name, in.Kind, string(target), string(content),
			db.Millis(s.now()))
		if err != nil {
			return fmt.Errorf("message: unable to update campaign %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			c, err := s.campaign(ctx, tx, p.TenantID, id)
			if err != nil {
				return err
			}
			return errs.E(errs.Conflict, "campaign_not_editable", "the mass message is %s; only drafts and scheduled ones can be edited", c.Status)
		}
		return s.audit(ctx, tx, p, "message.campaign.update", "campaign", fmt.Sprint(id), in.Name)
	})
	if err != nil {
		return Campaign{}, err
	}
	return s.Campaign(ctx, p.TenantID, id)
}

// ScheduleCampaign sets a draft (or scheduled) campaign to be sent at at.
// Quiet hours may move its delivery later.
func (s *Service) ScheduleCampaign(ctx context.Context, p tenant.Principal, id int64, at time.Time) (Campaign, error) {
	if err := p.Require(tenant.PermMessagesSend); err != nil {
		return Campaign{}, err
	}
	if !at.After(s.now()) {
		return Campaign{}, errs.Field("send_at", "send_at_past", "the send time must be in the future; use send to send now")
	}
	if err := s.toScheduled(ctx, p, id, at, "message.campaign.schedule"); err != nil {
		return Campaign{}, err
	}
	s.Wake()
	return s.Campaign(ctx, p.TenantID, id)
}

func (s *Service) toScheduled(ctx context.Context, p tenant.Principal, id int64, at time.Time, action string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		c, err := s.campaign(ctx, tx, p.TenantID, id)
		if err != nil {
			return err
		}
		if c.Status != CampaignDraft && c.Status != CampaignScheduled {
			return errs.E(errs.Conflict, "campaign_not_schedulable", "the mass message is %s already", c.Status)
		}
		in := CampaignInput{Name: c.Name, Kind: c.Kind, Target: c.Target, Content: c.Content}
		if err := s.checkCampaign(&in); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE message_campaigns SET status = 'scheduled', send_at = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, db.Millis(at), db.Millis(s.now())); err != nil {
			return fmt.Errorf("message: unable to schedule campaign %d: %w", id, err)
		}
		return s.audit(ctx, tx, p, action, "campaign", fmt.Sprint(id), at.UTC().Format(time.RFC3339))
	})
}

// SendCampaign sends a draft or scheduled campaign now: it is planned at
// once (envelopes, cap accounting, batches) and delivered by the
// dispatcher. Sending again is harmless.
func (s *Service) SendCampaign(ctx context.Context, p tenant.Principal, id int64) (Campaign, error) {
	if err := p.Require(tenant.PermMessagesSend); err != nil {
		return Campaign{}, err
	}
	c, err := s.campaign(ctx, s.db, p.TenantID, id)
	if err != nil {
		return Campaign{}, err
	}
	if c.Status == CampaignDraft || c.Status == CampaignScheduled {
		if err := s.toScheduled(ctx, p, id, s.now(), "message.campaign.send"); err != nil {
			return Campaign{}, err
		}
		if _, err := s.planOne(ctx, p.TenantID, id); err != nil {
			return Campaign{}, err
		}
		s.Wake()
	}
	return s.Campaign(ctx, p.TenantID, id)
}

// planDue plans scheduled campaigns whose time came.
func (s *Service) planDue(ctx context.Context) (bool, error) {
	now := db.Millis(s.now())
	rows, err := s.db.QueryContext(ctx, `SELECT tenant_id, id FROM message_campaigns WHERE status = 'scheduled' AND send_at <= $1 AND lease_until < $1
		ORDER BY send_at LIMIT 5`, now)
	if err != nil {
		return false, fmt.Errorf("message: unable to read due campaigns: %w", err)
	}
	var due [][2]int64
	for rows.Next() {
		var t, id int64
		if err := rows.Scan(&t, &id); err != nil {
			rows.Close()
			return false, fmt.Errorf("message: unable to read due campaigns: %w", err)
		}
		due = append(due, [2]int64{t, id})
	}
	rows.Close()
	did := false
	for _, d := range due {
		ok, err := s.planOne(ctx, d[0], d[1])
		if err != nil {
			s.log.Warn("message: planning a campaign failed", "campaign", d[1], "err", err)
		}
		did = did || ok || err != nil
	}
	return did, nil
}

// planOne leases a scheduled campaign and plans it. Planning is one
// transaction: a crash leaves the campaign scheduled, to be planned again.
func (s *Service) planOne(ctx context.Context, tenantID, id int64) (bool, error) {
	now := s.now()
	res, err := s.db.ExecContext(ctx, `UPDATE message_campaigns SET lease_owner = $3, lease_until = $4 WHERE tenant_id = $1 AND id = $2
		AND status = 'scheduled' AND lease_until < $5`, tenantID, id, s.owner, db.Millis(now.Add(10*time.Minute)), db.Millis(now))
	if err != nil {
		return false, fmt.Errorf("message: unable to lease campaign %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	c, err := s.campaign(ctx, s.db, tenantID, id)
	if err != nil {
		return false, err
	}
	t0 := time.Now()
	pl, err := s.resolvePlan(ctx, tenantID, c.Kind, c.Target, now)
	t1 := time.Now()
	if err == nil {
		err = s.store(ctx, tenantID, c, pl, now)
	}
	if err == nil {
		s.log.Info("message: campaign planned", append([]any{"tenant", tenantID, "campaign", id, "envelopes", len(pl.recips),
			"resolve", t1.Sub(t0).Round(time.Millisecond), "store", time.Since(t1).Round(time.Millisecond)}, pl.timing...)...)
	}
	if err != nil {
		// A target that no longer resolves (a deleted audience) fails the
		// campaign with the reason; anything else is retried.
		if errs.Is(err, errs.Invalid) || errs.Is(err, errs.NotFound) {
			_, _ = s.db.ExecContext(ctx, `UPDATE message_campaigns SET status = 'failed', error = $3, lease_owner = '', lease_until = 0, updated_at = $4
				WHERE tenant_id = $1 AND id = $2`, tenantID, id, err.Error(), db.Millis(s.now()))
			return true, nil
		}
		_, _ = s.db.ExecContext(ctx, `UPDATE message_campaigns SET error = $3, lease_owner = '', lease_until = $4 WHERE tenant_id = $1 AND id = $2`,
			tenantID, id, err.Error(), db.Millis(s.now().Add(time.Minute)))
		return false, err
	}
	return true, nil
}

// CancelCampaign cancels a campaign: nothing more of it is sent. Batches not
// yet delivered are cancelled here; delivered ones are withdrawn from WeCom
// (cancel_groupmsg_send) — what a staff member already sent stays sent.
func (s *Service) CancelCampaign(ctx context.Context, p tenant.Principal, id int64) (Campaign, error) {
	if err := p.Require(tenant.PermMessagesSend); err != nil {
		return Campaign{}, err
	}
	now := db.Millis(s.now())
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		c, err := s.campaign(ctx, tx, p.TenantID, id)
		if err != nil {
			return err
		}
		switch c.Status {
		case CampaignCancelled:
			return nil
		case CampaignDone, CampaignFailed:
			return errs.E(errs.Conflict, "campaign_finished", "the mass message is %s; there is nothing left to cancel", c.Status)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE message_campaigns SET status = 'cancelled', cancelled_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, now); err != nil {
			return fmt.Errorf("message: unable to cancel campaign %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE message_envelopes SET status = 'cancelled', reason = $3, updated_at = $4 WHERE tenant_id = $1
			AND campaign_id = $2 AND status = 'queued' AND batch_id IN (SELECT id FROM message_batches WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'queued')`,
			p.TenantID, id, ReasonCancelled, now); err != nil {
			return fmt.Errorf("message: unable to cancel envelopes: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE message_batches SET status = 'cancelled', finished_at = $3, updated_at = $3 WHERE tenant_id = $1
			AND campaign_id = $2 AND status = 'queued'`, p.TenantID, id, now); err != nil {
			return fmt.Errorf("message: unable to cancel batches: %w", err)
		}
		return s.audit(ctx, tx, p, "message.campaign.cancel", "campaign", fmt.Sprint(id), c.Name)
	})
	if err != nil {
		return Campaign{}, err
	}
	// Withdraw what WeCom has. A batch still submitting is withdrawn by the
	// dispatcher once its outcome is known.
	rows, err := s.db.QueryContext(ctx, `SELECT `+batchCols+` FROM message_batches WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'submitted'`,
		p.TenantID, id)
	if err != nil {
		return Campaign{}, fmt.Errorf("message: unable to read batches: %w", err)
	}
	var subs []batchRow
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			rows.Close()
			return Campaign{}, fmt.Errorf("message: unable to read batches: %w", err)
		}
		subs = append(subs, b)
	}
	rows.Close()
	var firstErr error
	for _, b := range subs {
		ch, ok := s.Channel(b.channel)
		if !ok {
			continue
		}
		d, err := s.delivery(ctx, b, `'submitted'`)
		if err == nil {
			err = s.cancelRemote(ctx, ch, b, d, b.remoteID)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	_ = s.rollUpCancelled(ctx, p.TenantID, id)
	if firstErr != nil {
		return Campaign{}, firstErr
	}
	return s.Campaign(ctx, p.TenantID, id)
}

// rollUpCancelled records when a cancelled campaign has nothing in flight.
func (s *Service) rollUpCancelled(ctx context.Context, tenantID, id int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE message_campaigns SET finished_at = $3 WHERE tenant_id = $1 AND id = $2 AND finished_at = 0
		AND NOT EXISTS (SELECT 1 FROM message_batches WHERE tenant_id = $1 AND campaign_id = $2 AND status IN ('queued', 'submitting'))`,
		tenantID, id, db.Millis(s.now()))
	return err
}

// remindWindow and maxReminders are WeCom's limit on reminders: 3 per task
// per 24 hours (remind_groupmsg_send, 97610).
const (
	remindWindow = 24 * time.Hour
	maxReminders = 3
)

// RemindCampaign reminds staff who have not sent (all, or userIDs) through
// WeCom. A staff member reminded 3 times in 24 hours is refused with the time
// a reminder becomes possible again.
func (s *Service) RemindCampaign(ctx context.Context, p tenant.Principal, id int64, userIDs []string) (RemindResult, error) {
	if err := p.Require(tenant.PermMessagesSend); err != nil {
		return RemindResult{}, err
	}
	c, err := s.campaign(ctx, s.db, p.TenantID, id)
	if err != nil {
		return RemindResult{}, err
	}
	if c.Status != CampaignSending && c.Status != CampaignSent {
		return RemindResult{}, errs.E(errs.Conflict, "campaign_not_remindable", "the mass message is %s; only one being sent can be reminded", c.Status)
	}
	want := map[string]bool{}
	for _, u := range userIDs {
		want[u] = true
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+batchCols+` FROM message_batches WHERE tenant_id = $1 AND campaign_id = $2 ORDER BY account, id`,
		p.TenantID, id)
	if err != nil {
		return RemindResult{}, fmt.Errorf("message: unable to read batches: %w", err)
	}
	var bs []batchRow
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			rows.Close()
			return RemindResult{}, fmt.Errorf("message: unable to read batches: %w", err)
		}
		if len(want) == 0 || want[b.account] {
			bs = append(bs, b)
		}
	}
	rows.Close()
	now := s.now()
	var out RemindResult
	reminded := map[string]bool{}
	refused := map[string]RemindRefusal{}
	for _, b := range bs {
		if b.status != "submitted" {
			if _, ok := refused[b.account]; !ok && !reminded[b.account] {
				r := RemindRefusal{UserID: b.account, Code: "not_submitted", Message: "this staff member's message is not waiting to be sent (not yet delivered to WeCom, failed or cancelled)"}
				if b.status == "done" {
					r = RemindRefusal{UserID: b.account, Code: "nothing_to_remind", Message: "this staff member has sent it"}
				}
				refused[b.account] = r
			}
			continue
		}
		var unsent int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM message_envelopes WHERE `+b.scope()+` AND status = 'submitted'`,
			p.TenantID, b.id).Scan(&unsent); err != nil {
			return RemindResult{}, fmt.Errorf("message: unable to count unsent: %w", err)
		}
		if unsent == 0 {
			if !reminded[b.account] {
				refused[b.account] = RemindRefusal{UserID: b.account, Code: "nothing_to_remind", Message: "this staff member has sent it"}
			}
			continue
		}
		var times []int64
		_ = json.Unmarshal([]byte(b.reminders), &times)
		recent := times[:0]
		for _, t := range times {
			if now.Sub(db.FromMillis(t)) < remindWindow {
				recent = append(recent, t)
			}
		}
		if len(recent) >= maxReminders {
			refused[b.account] = RemindRefusal{UserID: b.account, Code: "remind_limit",
				Message: fmt.Sprintf("WeCom allows %d reminders per message in 24 hours; this staff member has had them", maxReminders),
				RetryAt: db.FromMillis(recent[0]).Add(remindWindow)}
			continue
		}
		ch, ok := s.Channel(b.channel)
		rem, can := ch.(Reminder)
		if !ok || !can {
			refused[b.account] = RemindRefusal{UserID: b.account, Code: "not_supported", Message: "this channel cannot remind"}
			continue
		}
		d := Delivery{TenantID: b.tenantID, BatchID: b.id, Channel: b.channel, Account: b.account}
		if err := rem.Remind(ctx, d, b.remoteID); err != nil {
			var de *DeliveryError
			if errors.As(err, &de) {
				refused[b.account] = RemindRefusal{UserID: b.account, Code: de.Reason, Message: de.Error()}
				continue
			}
			return out, err
		}
		recent = append(recent, db.Millis(now))
		js, _ := json.Marshal(recent)
		if _, err := s.db.ExecContext(ctx, `UPDATE message_batches SET reminders = $2 WHERE id = $1`, b.id, string(js)); err != nil {
			return out, fmt.Errorf("message: unable to record the reminder: %w", err)
		}
		reminded[b.account] = true
		delete(refused, b.account)
	}
	for u := range reminded {
		out.Reminded = append(out.Reminded, u)
	}
	for _, r := range refused {
		if !reminded[r.UserID] {
			out.Refused = append(out.Refused, r)
		}
	}
	sortStrings(out.Reminded)
	sortRefusals(out.Refused)
	if err := s.audit(ctx, s.db, p, "message.campaign.remind", "campaign", fmt.Sprint(id), strings.Join(out.Reminded, ",")); err != nil {
		return out, err
	}
	return out, nil
}
