package acquire

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/tag"
)

// Welcome outcomes recorded on an add.
const (
	WelcomeQueued      = "queued"      // enqueued in the outbox
	WelcomeNone        = "none"        // the code has no welcome message
	WelcomeNoCode      = "no_code"     // WeCom sent no WelcomeCode (e.g. the customer already chatted)
	WelcomeUnavailable = "unavailable" // the outbox is not available
)

// Observe handles a processed WeCom event: an add through a code (state)
// is recorded, attributed and welcomed, and the code turns to the next
// staff member; a deletion of a customer a code brought is counted against
// it. Idempotent on p.Key: a retried event records nothing twice, and the
// steps after the commit (tags, remark, WeCom update) may repeat safely.
func (s *Service) Observe(ctx context.Context, p wecom.Processed) error {
	ev := p.Event
	if ev.Event != wecom.EventChangeExternalContact {
		return nil
	}
	switch ev.ChangeType {
	case wecom.ChangeAddExternalContact:
		if ev.State == "" || p.CustomerID == 0 {
			return nil
		}
		return s.onAdd(ctx, p)
	case wecom.ChangeDelExternalContact, wecom.ChangeDelFollowUser:
		if ev.Source == "DELETE_BY_TRANSFER" {
			return nil // a handover, not a lost customer
		}
		return s.onDelete(ctx, p)
	}
	return nil
}

func (s *Service) onAdd(ctx context.Context, p wecom.Processed) error {
	ev := p.Event
	var codeID int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM acquire_codes WHERE tenant_id = $1 AND state = $2`, p.TenantID, ev.State).Scan(&codeID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // a state that is not one of Siyu's codes
	}
	if err != nil {
		return fmt.Errorf("acquire: unable to find the code of state %q: %w", ev.State, err)
	}
	ws, err := s.tenant.Workspace(ctx, p.TenantID)
	if err != nil {
		return err
	}
	at := time.Unix(ev.CreateTime, 0)
	if ev.CreateTime == 0 {
		at = s.now()
	}
	c, err := s.code(ctx, s.db, p.TenantID, codeID, false)
	if err != nil {
		return err
	}
	customerName, staffName := s.names(ctx, p.TenantID, p.CustomerID, ev.UserID)
	var env *message.Envelope
	welcome := WelcomeNone
	if c.Config.Welcome.Text != "" || len(c.Config.Welcome.Attachments) > 0 || c.Config.GroupCodeID != 0 {
		welcome = WelcomeNoCode
		if ev.WelcomeCode != "" {
			e := s.welcomeEnvelope(ctx, p, c, at, customerName, staffName)
			env = &e
		}
	}
	var next codeRow
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO acquire_events (tenant_id, code_id, event_key, kind, customer_id, userid, external_userid, welcome, at)
			VALUES ($1, $2, $3, 'add', $4, $5, $6, '', $7) ON CONFLICT (tenant_id, event_key) DO NOTHING`,
			p.TenantID, codeID, "add:"+p.Key, p.CustomerID, ev.UserID, ev.ExternalUserID, db.Millis(at))
		if err != nil {
			return fmt.Errorf("acquire: unable to record the add: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			next, err = s.code(ctx, tx, p.TenantID, codeID, false)
			return err // recorded before: only the steps after the commit are left
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO acquire_customers (tenant_id, customer_id, code_id, added_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id, customer_id) DO NOTHING`, p.TenantID, p.CustomerID, codeID, db.Millis(at))
		if err != nil {
			return fmt.Errorf("acquire: unable to record the attribution: %w", err)
		}
		firstAdd, _ := res.RowsAffected()
		if env != nil {
			welcome = WelcomeQueued
			if s.msgs == nil {
				welcome = WelcomeUnavailable
			} else if _, _, err := s.msgs.Enqueue(ctx, tx, *env); errors.Is(err, message.ErrNotImplemented) {
				welcome = WelcomeUnavailable
			} else if err != nil {
				return fmt.Errorf("acquire: unable to enqueue the welcome message: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE acquire_events SET first = $3, welcome = $4 WHERE tenant_id = $1 AND event_key = $2`,
			p.TenantID, "add:"+p.Key, firstAdd > 0, welcome); err != nil {
			return fmt.Errorf("acquire: unable to record the add: %w", err)
		}
		next, err = s.repickTx(ctx, tx, p.TenantID, codeID, true, ws.Location())
		return err
	})
	if err != nil {
		return err
	}
	if welcome == WelcomeUnavailable {
		s.log.Warn("acquire: the outbox is not available; no welcome message sent", "code", codeID, "key", p.Key)
	}
	if len(c.Config.TagIDs) > 0 {
		_, err := s.tags.Apply(ctx, p.TenantID, p.CustomerID, c.Config.TagIDs,
			tag.Application{Source: tag.SourceCode, SourceRef: "acquire_code:" + strconv.FormatInt(codeID, 10), AppliedBy: cut(c.Name, 64)})
		if err != nil && !errs.Is(err, errs.NotFound) {
			return fmt.Errorf("acquire: unable to apply the tags of code %d: %w", codeID, err)
		}
	}
	if err := s.remark(ctx, p, c, customerName, staffName); err != nil {
		return err
	}
	if err := s.syncUsers(ctx, p.TenantID, next); err != nil {
		// The worker retries; the add itself is done.
		s.log.Warn("acquire: unable to turn the code to the next staff member", "code", codeID, "err", err)
	}
	return nil
}

// names returns the customer's and the staff member's names for templates.
func (s *Service) names(ctx context.Context, tenantID, customerID int64, userID string) (customerName, staffName string) {
	if s.cust != nil {
		if cu, err := s.cust.Get(ctx, tenantID, customerID, false); err == nil {
			customerName = cu.Name
		}
	}
	if m, err := s.staff.NamesByWeComUserID(ctx, tenantID, []string{userID}); err == nil {
		staffName = m[userID]
	}
	if staffName == "" {
		staffName = userID
	}
	return customerName, staffName
}

// welcomeEnvelope is the welcome message of an add, rendered.
func (s *Service) welcomeEnvelope(ctx context.Context, p wecom.Processed, c codeRow, at time.Time, customerName, staffName string) message.Envelope {
	content := message.Content{Text: fill(c.Config.Welcome.Text, customerName, staffName, c.Name)}
	content.Attachments = append(content.Attachments, c.Config.Welcome.Attachments...)
	if c.Config.GroupCodeID != 0 && s.groups != nil {
		if u, err := s.groups.JoinWayQR(ctx, p.TenantID, c.Config.GroupCodeID); err != nil {
			s.log.Warn("acquire: the group code's QR is not available; welcome sent without it", "code", c.ID, "group_code", c.Config.GroupCodeID, "err", err)
		} else if u != "" {
			content.Attachments = append(content.Attachments, message.Attachment{Kind: "image", ImageURL: u})
		}
	}
	return message.Envelope{
		TenantID: p.TenantID, Channel: message.ChannelWeComWelcome, Key: "acquire:" + p.Key,
		CustomerID: p.CustomerID, Account: p.Event.UserID, Recipient: p.Event.ExternalUserID,
		Content: content, Params: map[string]string{"welcome_code": p.Event.WelcomeCode},
		NotAfter: at.Add(welcomeWindow), Source: "acquire.code", SourceID: strconv.FormatInt(c.ID, 10),
	}
}

// remark sets the staff member's remark and description of the customer
// from the code's templates. A WeCom refusal is logged, not retried.
func (s *Service) remark(ctx context.Context, p wecom.Processed, c codeRow, customerName, staffName string) error {
	if c.Config.RemarkTemplate == "" && c.Config.DescriptionTemplate == "" {
		return nil
	}
	req := wecom.RemarkRequest{UserID: p.Event.UserID, ExternalUserID: p.Event.ExternalUserID}
	if c.Config.RemarkTemplate != "" {
		r := cut(fill(c.Config.RemarkTemplate, customerName, staffName, c.Name), remarkMaxRunes)
		req.Remark = &r
	}
	if c.Config.DescriptionTemplate != "" {
		d := cut(fill(c.Config.DescriptionTemplate, customerName, staffName, c.Name), descriptionMaxRune)
		req.Description = &d
	}
	cl, err := s.wecom.Client(ctx, p.TenantID)
	if err != nil {
		return err
	}
	if err := cl.Remark(ctx, req); err != nil {
		var api *wecom.APIError
		if errors.As(err, &api) {
			s.log.Warn("acquire: WeCom refused the remark", "code", c.ID, "errcode", api.Code, "explain", wecom.Explain(api.Code))
			return nil
		}
		return fmt.Errorf("acquire: unable to set the remark: %w", err)
	}
	return nil
}

// onDelete counts a deletion against the code that brought the pair.
func (s *Service) onDelete(ctx context.Context, p wecom.Processed) error {
	ev := p.Event
	var codeID, customerID int64
	err := s.db.QueryRowContext(ctx, `SELECT code_id, customer_id FROM acquire_events
		WHERE tenant_id = $1 AND userid = $2 AND external_userid = $3 AND kind = 'add' ORDER BY id DESC LIMIT 1`,
		p.TenantID, ev.UserID, ev.ExternalUserID).Scan(&codeID, &customerID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("acquire: unable to find the add of a deleted customer: %w", err)
	}
	at := time.Unix(ev.CreateTime, 0)
	if ev.CreateTime == 0 {
		at = s.now()
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO acquire_events (tenant_id, code_id, event_key, kind, customer_id, userid, external_userid, at)
		VALUES ($1, $2, $3, 'delete', $4, $5, $6, $7) ON CONFLICT (tenant_id, event_key) DO NOTHING`,
		p.TenantID, codeID, "del:"+p.Key, customerID, ev.UserID, ev.ExternalUserID, db.Millis(at))
	if err != nil {
		return fmt.Errorf("acquire: unable to record the deletion: %w", err)
	}
	return nil
}

// MoveCustomer follows a customer merge: events move to the survivor, which
// keeps the code that brought either of them first.
func (s *Service) MoveCustomer(ctx context.Context, tx *sql.Tx, tenantID, fromID, toID int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE acquire_events SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2`, tenantID, fromID, toID); err != nil {
		return fmt.Errorf("acquire: unable to move events: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM acquire_customers WHERE tenant_id = $1 AND customer_id = $3 AND added_at > (
		SELECT added_at FROM acquire_customers WHERE tenant_id = $1 AND customer_id = $2)`, tenantID, fromID, toID); err != nil {
		return fmt.Errorf("acquire: unable to move the attribution: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE acquire_customers SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2
		AND NOT EXISTS (SELECT 1 FROM acquire_customers WHERE tenant_id = $1 AND customer_id = $3)`, tenantID, fromID, toID); err != nil {
		return fmt.Errorf("acquire: unable to move the attribution: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM acquire_customers WHERE tenant_id = $1 AND customer_id = $2`, tenantID, fromID); err != nil {
		return fmt.Errorf("acquire: unable to move the attribution: %w", err)
	}
	return nil
}
