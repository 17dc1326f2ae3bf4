package tenant

import (
	"context"
	"fmt"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/page"
)

// AuditEntry is one administrative action: who, what, when, from where.
type AuditEntry struct {
	ID         int64     `json:"id"`
	ActorKind  ActorKind `json:"actor_kind"`
	ActorID    int64     `json:"actor_id"`
	ActorName  string    `json:"actor_name"`
	Action     string    `json:"action"` // e.g. user.create, apikey.revoke, login.failure
	TargetKind string    `json:"target_kind"`
	TargetID   string    `json:"target_id"`
	Detail     string    `json:"detail"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	CreatedAt  time.Time `json:"created_at"`
}

// Audit records an action taken by p. Domain packages call it inside the
// transaction of the change they record, so the two commit together.
func (s *Service) Audit(ctx context.Context, q db.Querier, p Principal, action, targetKind, targetID, detail string) error {
	return s.audit(ctx, q, p, action, targetKind, targetID, detail)
}

func (s *Service) audit(ctx context.Context, q db.Querier, p Principal, action, targetKind, targetID, detail string) error {
	_, err := q.ExecContext(ctx,
		`INSERT INTO audit_log (tenant_id, actor_kind, actor_id, actor_name, action, target_kind, target_id, detail, ip, user_agent, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		p.TenantID, string(p.Kind), p.ID, p.Name, action, targetKind, targetID, truncate(detail, 2000), p.IP, truncate(p.UserAgent, 300),
		db.Millis(s.now()))
	if err != nil {
		return fmt.Errorf("tenant: unable to write audit log: %w", err)
	}
	return nil
}

// AuditLog lists the workspace's audit entries, newest first.
func (s *Service) AuditLog(ctx context.Context, tenantID int64, r page.Request) (page.Page[AuditEntry], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[AuditEntry]{}, err
	}
	q := `SELECT id, actor_kind, actor_id, actor_name, action, target_kind, target_id, detail, ip, user_agent, created_at
	      FROM audit_log WHERE tenant_id = $1`
	args := []any{tenantID}
	if ok {
		q += ` AND id < $2`
		args = append(args, after)
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[AuditEntry]{}, fmt.Errorf("tenant: unable to list audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var kind string
		var created int64
		if err := rows.Scan(&e.ID, &kind, &e.ActorID, &e.ActorName, &e.Action, &e.TargetKind, &e.TargetID, &e.Detail, &e.IP, &e.UserAgent, &created); err != nil {
			return page.Page[AuditEntry]{}, fmt.Errorf("tenant: unable to read audit entry: %w", err)
		}
		e.ActorKind = ActorKind(kind)
		e.CreatedAt = db.FromMillis(created)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return page.Page[AuditEntry]{}, fmt.Errorf("tenant: unable to list audit log: %w", err)
	}
	return page.Trim(out, r, func(e AuditEntry) string { return page.ByID(e.ID) }), nil
}
