package community

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// GroupTag is a Siyu tag on customer groups (WeCom has none): 新品群, 门店群, ….
type GroupTag struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Color  string `json:"color"`
	Groups int64  `json:"groups,omitempty" doc:"How many groups carry it (in lists of tags)."`
}

// GroupTagInput creates or changes a group tag.
type GroupTagInput struct {
	Name  string `json:"name" minLength:"1" maxLength:"30"`
	Color string `json:"color,omitempty" doc:"#RRGGBB; default #1677FF."`
}

// MaxGroupTagsPerGroup bounds how many tags one group carries.
const MaxGroupTagsPerGroup = 20

func cleanTagInput(in GroupTagInput) (GroupTagInput, error) {
	name, err := cleanText("name", in.Name, 1, 30)
	if err != nil {
		return in, err
	}
	if strings.Contains(name, ",") {
		return in, errs.Field("name", "invalid_name", "a group tag name may not contain a comma")
	}
	in.Name = name
	c := strings.ToUpper(strings.TrimSpace(in.Color))
	if c == "" {
		c = "#1677FF"
	}
	ok := len(c) == 7 && c[0] == '#'
	for _, r := range c[1:] {
		ok = ok && ('0' <= r && r <= '9' || 'A' <= r && r <= 'F')
	}
	if !ok {
		return in, errs.Field("color", "invalid_color", "the colour must be #RRGGBB, e.g. #FF7A45")
	}
	in.Color = c
	return in, nil
}

// CreateGroupTag adds a group tag.
func (s *Service) CreateGroupTag(ctx context.Context, p tenant.Principal, in GroupTagInput) (GroupTag, error) {
	in, err := cleanTagInput(in)
	if err != nil {
		return GroupTag{}, err
	}
	now := db.Millis(s.now())
	var t GroupTag
	err = s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO community_group_tags (tenant_id, name, color, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id`,
			p.TenantID, in.Name, in.Color, now).Scan(&t.ID)
		if db.IsUniqueViolation(err) {
			return errs.E(errs.Conflict, "group_tag_exists", "a group tag named %q exists already", in.Name)
		}
		if err != nil {
			return fmt.Errorf("community: unable to create group tag: %w", err)
		}
		t.Name, t.Color = in.Name, in.Color
		return s.auditTx(ctx, tx, p, "community.group_tag.create", "group_tag", t.ID, in.Name)
	})
	return t, err
}

// UpdateGroupTag renames or recolours a group tag.
func (s *Service) UpdateGroupTag(ctx context.Context, p tenant.Principal, id int64, in GroupTagInput) (GroupTag, error) {
	in, err := cleanTagInput(in)
	if err != nil {
		return GroupTag{}, err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE community_group_tags SET name = $3, color = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, in.Name, in.Color, db.Millis(s.now()))
		if db.IsUniqueViolation(err) {
			return errs.E(errs.Conflict, "group_tag_exists", "a group tag named %q exists already", in.Name)
		}
		if err != nil {
			return fmt.Errorf("community: unable to update group tag %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("group_tag", id)
		}
		return s.auditTx(ctx, tx, p, "community.group_tag.update", "group_tag", id, in.Name)
	})
	return GroupTag{ID: id, Name: in.Name, Color: in.Color}, err
}

// DeleteGroupTag deletes a group tag and takes it off every group.
func (s *Service) DeleteGroupTag(ctx context.Context, p tenant.Principal, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM community_group_tags WHERE tenant_id = $1 AND id = $2`, p.TenantID, id)
		if err != nil {
			return fmt.Errorf("community: unable to delete group tag %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("group_tag", id)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM community_group_tag_links WHERE tenant_id = $1 AND tag_id = $2`, p.TenantID, id); err != nil {
			return fmt.Errorf("community: unable to untag groups: %w", err)
		}
		return s.auditTx(ctx, tx, p, "community.group_tag.delete", "group_tag", id, "")
	})
}

// GroupTags lists the workspace's group tags by name, with how many groups carry each.
func (s *Service) GroupTags(ctx context.Context, tenantID int64) ([]GroupTag, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.id, t.name, t.color,
		(SELECT count(*) FROM community_group_tag_links l WHERE l.tenant_id = t.tenant_id AND l.tag_id = t.id)
		FROM community_group_tags t WHERE t.tenant_id = $1 ORDER BY t.name, t.id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("community: unable to list group tags: %w", err)
	}
	defer rows.Close()
	out := []GroupTag{}
	for rows.Next() {
		var t GroupTag
		if err := rows.Scan(&t.ID, &t.Name, &t.Color, &t.Groups); err != nil {
			return nil, fmt.Errorf("community: unable to read a group tag: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// SetGroupTags replaces a group's tags with tagIDs.
func (s *Service) SetGroupTags(ctx context.Context, p tenant.Principal, chatID string, tagIDs []int64) (CustomerGroup, error) {
	if _, err := s.Group(ctx, p.TenantID, chatID); err != nil {
		return CustomerGroup{}, err
	}
	tagIDs = slices.Compact(slices.Sorted(slices.Values(tagIDs)))
	if len(tagIDs) > MaxGroupTagsPerGroup {
		return CustomerGroup{}, errs.Field("tag_ids", "too_many_tags", "a group carries at most %d tags", MaxGroupTagsPerGroup)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range tagIDs {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM community_group_tags WHERE tenant_id = $1 AND id = $2`, p.TenantID, id).Scan(&one)
			if err == sql.ErrNoRows {
				return errs.Field("tag_ids", "group_tag_not_found", "group tag %d does not exist in this workspace", id)
			}
			if err != nil {
				return fmt.Errorf("community: unable to read group tag %d: %w", id, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM community_group_tag_links WHERE tenant_id = $1 AND chat_id = $2`, p.TenantID, chatID); err != nil {
			return fmt.Errorf("community: unable to untag group %s: %w", chatID, err)
		}
		now := db.Millis(s.now())
		for _, id := range tagIDs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO community_group_tag_links (tenant_id, tag_id, chat_id, created_at) VALUES ($1, $2, $3, $4)`,
				p.TenantID, id, chatID, now); err != nil {
				return fmt.Errorf("community: unable to tag group %s: %w", chatID, err)
			}
		}
		return s.auditTx(ctx, tx, p, "community.group.tags", "group", chatID, fmt.Sprint(tagIDs))
	})
	if err != nil {
		return CustomerGroup{}, err
	}
	return s.Group(ctx, p.TenantID, chatID)
}

// tagsOfGroups returns the tags of each group.
func (s *Service) tagsOfGroups(ctx context.Context, tenantID int64, chats []string) (map[string][]GroupTag, error) {
	out := map[string][]GroupTag{}
	for batch := range slices.Chunk(chats, 200) {
		args := []any{tenantID}
		ph := make([]string, len(batch))
		for i, c := range batch {
			args = append(args, c)
			ph[i] = fmt.Sprintf("$%d", i+2)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT l.chat_id, t.id, t.name, t.color FROM community_group_tag_links l
			JOIN community_group_tags t ON t.tenant_id = l.tenant_id AND t.id = l.tag_id
			WHERE l.tenant_id = $1 AND l.chat_id IN (`+strings.Join(ph, ",")+`) ORDER BY t.name, t.id`, args...)
		if err != nil {
			return nil, fmt.Errorf("community: unable to read group tags: %w", err)
		}
		for rows.Next() {
			var chat string
			var t GroupTag
			if err := rows.Scan(&chat, &t.ID, &t.Name, &t.Color); err != nil {
				rows.Close()
				return nil, fmt.Errorf("community: unable to read group tags: %w", err)
			}
			out[chat] = append(out[chat], t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ChatsTagged returns the live groups carrying a group tag (for audiences by group tag).
func (s *Service) ChatsTagged(ctx context.Context, tenantID, tagID int64) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT l.chat_id FROM community_group_tag_links l JOIN wecom_groups g ON g.tenant_id = l.tenant_id AND g.chat_id = l.chat_id
		WHERE l.tenant_id = $1 AND l.tag_id = $2 AND g.status = 'active' ORDER BY l.chat_id`, tenantID, tagID)
	if err != nil {
		return nil, fmt.Errorf("community: unable to read tagged groups: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ChatsTaggedName returns the live groups carrying the group tag of that
// name: the audience condition {"group_tag": "门店群"}.
func (s *Service) ChatsTaggedName(ctx context.Context, tenantID int64, name string) ([]string, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM community_group_tags WHERE tenant_id = $1 AND name = $2`, tenantID, strings.TrimSpace(name)).Scan(&id)
	if err == sql.ErrNoRows {
		return nil, errs.E(errs.Invalid, "unknown_group_tag", "there is no group tag %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("community: unable to read group tag %q: %w", name, err)
	}
	return s.ChatsTagged(ctx, tenantID, id)
}
