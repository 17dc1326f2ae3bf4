package handover

import (
	"context"
	"fmt"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
)

// observe reflects WeCom's handover events on waiting items at once,
// without waiting for the next poll: transfer_fail (the customer refused,
// or the staff member taking over has too many customers) and the
// del_external_contact (DELETE_BY_TRANSFER) that completes a transfer. The
// connector has already recorded both on the relations. Updates only move
// unfinished items, so a redelivered event changes nothing.
func (s *Service) observe(ctx context.Context, p wecom.Processed) error {
	ev := p.Event
	if ev.ExternalUserID == "" || ev.UserID == "" {
		return nil
	}
	now := db.Millis(s.now())
	var (
		n   int64
		err error
	)
	switch {
	case ev.Kind() == wecom.KindTransferFail:
		state, reason, detail := ItemRefused, ReasonRefused, "the customer refused the transfer"
		if ev.FailReason == wecom.FailReasonCustomerLimitExceed {
			state, reason, detail = ItemFailed, ReasonLimit, "the staff member taking over has reached WeCom's limit of customers"
		}
		n, err = s.update(ctx, `UPDATE handover_items SET state = $4, reason = $5, detail = $6, updated_at = $7
			WHERE tenant_id = $1 AND kind = 'customer' AND external_id = $2 AND state IN ('sending', 'waiting')
			AND job_id IN (SELECT id FROM handover_jobs WHERE tenant_id = $1 AND status = 'running' AND takeover_userid = $3)`,
			p.TenantID, ev.ExternalUserID, ev.UserID, string(state), reason, detail, now)
	case ev.Kind() == wecom.KindDelExternalContact && ev.Source == wecom.SourceDeleteByTransfer:
		// Ownership was moved by the connector; the item is done. Its
		// relations are set again (the same way) when the result is read.
		n, err = s.update(ctx, `UPDATE handover_items SET state = 'done', done_at = $4, updated_at = $5
			WHERE tenant_id = $1 AND kind = 'customer' AND external_id = $2 AND state IN ('sending', 'waiting')
			AND job_id IN (SELECT id FROM handover_jobs WHERE tenant_id = $1 AND status = 'running' AND handover_userid = $3)`,
			p.TenantID, ev.ExternalUserID, ev.UserID, db.Millis(ev.Time()), now)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	if n > 0 {
		s.nudge()
	}
	return nil
}

func (s *Service) update(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("handover: unable to reflect a WeCom event: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
