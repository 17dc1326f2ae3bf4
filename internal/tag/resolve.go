package tag

import (
	"context"
	"fmt"
	"strings"

	"github.com/siyu-dev/siyu/internal/errs"
)

// Resolve finds the tag a reference names: "group/name" (e.g. 价值/高价值),
// or a bare name when exactly one group of the workspace has a tag of that
// name. An unknown reference is a NotFound error with code tag_not_found; a
// bare name held by several groups is an Invalid error with code
// ambiguous_tag that names the groups.
func (s *Service) Resolve(ctx context.Context, tenantID int64, ref string) (int64, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return 0, errs.Field("tag", "invalid_tag_ref", "the tag reference is empty; write group/name or a tag name")
	}
	if group, name, ok := strings.Cut(ref, "/"); ok {
		group, name = strings.TrimSpace(group), strings.TrimSpace(name)
		ids, _, err := s.lookup(ctx, tenantID, `g.name = $2 AND t.name = $3`, group, name)
		if err != nil {
			return 0, err
		}
		if len(ids) == 0 {
			return 0, errs.NotFoundf("tag", "no tag %q in group %q", name, group)
		}
		return ids[0], nil
	}
	ids, groups, err := s.lookup(ctx, tenantID, `t.name = $2`, ref)
	if err != nil {
		return 0, err
	}
	switch len(ids) {
	case 0:
		return 0, errs.NotFoundf("tag", "no tag named %q in this workspace", ref)
	case 1:
		return ids[0], nil
	}
	return 0, errs.E(errs.Invalid, "ambiguous_tag", "the tag name %q is in several groups (%s); write it as group/name, e.g. %q",
		ref, strings.Join(groups, ", "), groups[0]+"/"+ref)
}

// ResolveAll resolves several references, in order; the first that fails
// fails them all, its error naming the reference.
func (s *Service) ResolveAll(ctx context.Context, tenantID int64, refs []string) ([]int64, error) {
	out := make([]int64, len(refs))
	for i, r := range refs {
		id, err := s.Resolve(ctx, tenantID, r)
		if err != nil {
			return nil, err
		}
		out[i] = id
	}
	return out, nil
}

func (s *Service) lookup(ctx context.Context, tenantID int64, where string, args ...any) (ids []int64, groups []string, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.id, g.name FROM tags t JOIN tag_groups g ON g.tenant_id = t.tenant_id AND g.id = t.group_id
		WHERE t.tenant_id = $1 AND `+where+` ORDER BY g.sort_order, g.id`, append([]any{tenantID}, args...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("tag: unable to resolve tag: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var g string
		if err := rows.Scan(&id, &g); err != nil {
			return nil, nil, fmt.Errorf("tag: unable to resolve tag: %w", err)
		}
		ids, groups = append(ids, id), append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("tag: unable to resolve tag: %w", err)
	}
	return ids, groups, nil
}
