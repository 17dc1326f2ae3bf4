package tag

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// BindWeComGroup binds a tag group to a WeCom corp tag group (企业客户标签组)
// by its id, or unbinds it when wecomGroupID is empty. A WeCom group is bound
// to at most one Siyu group.
func (s *Service) BindWeComGroup(ctx context.Context, p tenant.Principal, groupID int64, wecomGroupID string) error {
	return s.bindWeCom(ctx, p, "tag_groups", "wecom_group_id", "tag_group", groupID, wecomGroupID)
}

// BindWeComTag binds a tag to a WeCom corp tag by its id, or unbinds it when
// wecomTagID is empty. A WeCom tag is bound to at most one Siyu tag.
func (s *Service) BindWeComTag(ctx context.Context, p tenant.Principal, tagID int64, wecomTagID string) error {
	return s.bindWeCom(ctx, p, "tags", "wecom_tag_id", "tag", tagID, wecomTagID)
}

func (s *Service) bindWeCom(ctx context.Context, p tenant.Principal, table, col, kind string, id int64, wecomID string) error {
	var v any
	if wecomID != "" {
		v = wecomID
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET `+col+` = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, v, db.Millis(s.now()))
		if db.IsUniqueViolation(err) {
			return errs.E(errs.Conflict, "wecom_already_bound", "the WeCom %s %q is already bound to another %s", kind, wecomID, kind)
		}
		if err != nil {
			return fmt.Errorf("tag: unable to bind %s %d to WeCom: %w", kind, id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.NotFoundf(kind, "no %s with id %d", kind, id)
		}
		detail := "unbound from WeCom"
		if wecomID != "" {
			detail = "bound to WeCom " + wecomID
		}
		return s.auditTx(ctx, tx, p, kind+".wecom_bind", kind, id, detail)
	})
}
