package message

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/page"
)

// StaffResults lists a campaign's sending staff with their counts, by userid.
func (s *Service) StaffResults(ctx context.Context, tenantID, id int64, r page.Request) (page.Page[StaffResult], error) {
	if _, err := s.campaign(ctx, s.db, tenantID, id); err != nil {
		return page.Page[StaffResult]{}, err
	}
	after := ""
	if r.Cursor != "" {
		if err := page.Decode(r.Cursor, &after); err != nil {
			return page.Page[StaffResult]{}, err
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT account FROM message_envelopes WHERE tenant_id = $1 AND campaign_id = $2 AND account <> ''
		AND account > $3 ORDER BY account LIMIT `+fmt.Sprint(r.Size()+1), tenantID, id, after)
	if err != nil {
		return page.Page[StaffResult]{}, fmt.Errorf("message: unable to list campaign staff: %w", err)
	}
	var accounts []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			rows.Close()
			return page.Page[StaffResult]{}, fmt.Errorf("message: unable to list campaign staff: %w", err)
		}
		accounts = append(accounts, a)
	}
	rows.Close()
	pg := page.Trim(accounts, r, func(a string) string { return page.Encode(a) })
	out := page.Page[StaffResult]{Next: pg.Next, Items: []StaffResult{}}
	if len(pg.Items) == 0 {
		return out, nil
	}
	args := []any{tenantID, id}
	in := placeholders(&args, pg.Items)
	byAcc := map[string]*StaffResult{}
	for _, a := range pg.Items {
		byAcc[a] = &StaffResult{UserID: a}
	}
	rows, err = s.db.QueryContext(ctx, `SELECT account, status, reason, count(*) FROM message_envelopes WHERE tenant_id = $1 AND campaign_id = $2
		AND account IN (`+in+`) GROUP BY account, status, reason`, args...)
	if err != nil {
		return page.Page[StaffResult]{}, fmt.Errorf("message: unable to count campaign staff: %w", err)
	}
	for rows.Next() {
		var a, st, reason string
		var n int64
		if err := rows.Scan(&a, &st, &reason, &n); err != nil {
			rows.Close()
			return page.Page[StaffResult]{}, fmt.Errorf("message: unable to count campaign staff: %w", err)
		}
		sr := byAcc[a]
		sr.Recipients += n
		switch {
		case reason == ReasonOverCap:
			sr.OverCap += n
		case reason == ReasonNotFriend:
			sr.NotFriend += n
		case st == string(StatusQueued):
			sr.Queued += n
		case st == string(StatusSubmitted):
			sr.Submitted += n
		case st == string(StatusSent):
			sr.Sent += n
		case st == string(StatusNotSent):
			sr.NotSent += n
		case st == string(StatusCancelled):
			sr.Cancelled += n
		default:
			sr.Failed += n
		}
	}
	rows.Close()
	rows, err = s.db.QueryContext(ctx, `SELECT account, reminders FROM message_batches WHERE tenant_id = $1 AND campaign_id = $2 AND account IN (`+in+`)`, args...)
	if err != nil {
		return page.Page[StaffResult]{}, fmt.Errorf("message: unable to read reminders: %w", err)
	}
	now := s.now()
	for rows.Next() {
		var a, rem string
		if err := rows.Scan(&a, &rem); err != nil {
			rows.Close()
			return page.Page[StaffResult]{}, fmt.Errorf("message: unable to read reminders: %w", err)
		}
		var times []int64
		_ = json.Unmarshal([]byte(rem), &times)
		sr := byAcc[a]
		for _, t := range times {
			at := db.FromMillis(t)
			if now.Sub(at) < remindWindow {
				sr.Reminders++
			}
			if at.After(sr.RemindedAt) {
				sr.RemindedAt = at
			}
		}
	}
	rows.Close()
	names, err := s.staffNames(ctx, tenantID, pg.Items)
	if err != nil {
		return page.Page[StaffResult]{}, err
	}
	for _, a := range pg.Items {
		sr := byAcc[a]
		sr.Name = names[a]
		switch {
		case sr.Queued > 0 && sr.Submitted+sr.Sent == 0:
			sr.Status = "waiting"
		case sr.Submitted > 0 && sr.Sent == 0:
			sr.Status = "unsent"
		case sr.Submitted == 0 && sr.Queued == 0 && sr.Sent > 0:
			sr.Status = "sent"
		case sr.Sent == 0 && sr.Submitted == 0 && sr.Queued == 0:
			sr.Status = "unsent"
		default:
			sr.Status = "mixed"
		}
		out.Items = append(out.Items, *sr)
	}
	return out, nil
}

// RecipientResults lists a campaign's recipients with their outcomes, in
// envelope order.
func (s *Service) RecipientResults(ctx context.Context, tenantID, id int64, q RecipientQuery, r page.Request) (page.Page[RecipientResult], error) {
	if _, err := s.campaign(ctx, s.db, tenantID, id); err != nil {
		return page.Page[RecipientResult]{}, err
	}
	// Ordered by batch, then envelope (the campaign index's order):
	// skipped recipients first, then each sender's in turn.
	afterBatch, afterID := int64(-1), int64(0)
	if r.Cursor != "" {
		if err := page.Decode(r.Cursor, &afterBatch, &afterID); err != nil {
			return page.Page[RecipientResult]{}, err
		}
	}
	where := ` WHERE e.tenant_id = $1 AND e.campaign_id = $2 AND (e.batch_id > $3 OR (e.batch_id = $3 AND e.id > $4))`
	args := []any{tenantID, id, afterBatch, afterID}
	if q.Status != "" {
		args = append(args, q.Status)
		where += fmt.Sprintf(` AND (e.status = $%d OR e.reason = $%d)`, len(args), len(args))
	}
	if q.StaffUserID != "" {
		args = append(args, q.StaffUserID)
		where += fmt.Sprintf(` AND e.account = $%d`, len(args))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT e.id, e.batch_id, e.customer_id, coalesce(c.name, ''), e.recipient, e.account, e.status, e.reason, e.error_code,
		e.sent_at, e.updated_at FROM message_envelopes e LEFT JOIN customers c ON c.tenant_id = e.tenant_id AND c.id = e.customer_id`+where+
		` ORDER BY e.batch_id, e.id LIMIT `+fmt.Sprint(r.Size()+1), args...)
	if err != nil {
		return page.Page[RecipientResult]{}, fmt.Errorf("message: unable to list recipients: %w", err)
	}
	defer rows.Close()
	out := []RecipientResult{}
	batches := map[int64]int64{}
	for rows.Next() {
		var rr RecipientResult
		var st string
		var batch, sent, updated int64
		if err := rows.Scan(&rr.EnvelopeID, &batch, &rr.CustomerID, &rr.CustomerName, &rr.Recipient, &rr.StaffUserID, &st, &rr.Reason, &rr.ErrorCode,
			&sent, &updated); err != nil {
			return page.Page[RecipientResult]{}, fmt.Errorf("message: unable to list recipients: %w", err)
		}
		rr.Status = Status(st)
		if sent > 0 {
			rr.SentAt = db.FromMillis(sent)
		}
		rr.UpdatedAt = db.FromMillis(updated)
		batches[rr.EnvelopeID] = batch
		out = append(out, rr)
	}
	if err := rows.Err(); err != nil {
		return page.Page[RecipientResult]{}, fmt.Errorf("message: unable to list recipients: %w", err)
	}
	return page.Trim(out, r, func(rr RecipientResult) string { return page.Encode(batches[rr.EnvelopeID], rr.EnvelopeID) }), nil
}

func sortStrings(s []string) { sort.Strings(s) }

func sortRefusals(r []RemindRefusal) {
	sort.Slice(r, func(i, j int) bool { return strings.Compare(r[i].UserID, r[j].UserID) < 0 })
}
