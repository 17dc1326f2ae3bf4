// Package tag owns the tag system (标签体系): tag groups along the operating
// dimensions (product, customer, value, lifecycle, channel), the tags within
// them, which customers hold which tag and where each application came from,
// and the history of every change for the customer timeline.
//
// Every write that adds or removes tags tells the registered Observers exactly
// what changed, after its transaction commits, so the in-memory audience index
// stays current; Snapshot streams the whole (tag, customer) relation of a
// workspace for the index's rebuild at start.
package tag

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Dimension is the axis of the tag system a group belongs to.
type Dimension string

// Dimensions of the tag system.
const (
	DimProduct   Dimension = "product"   // 产品: product preferences
	DimCustomer  Dimension = "customer"  // 客户: who the customer is (student, office worker, parent)
	DimValue     Dimension = "value"     // 价值: spend, RFM, churn risk
	DimLifecycle Dimension = "lifecycle" // 生命周期: onboarding … decline
	DimChannel   Dimension = "channel"   // 渠道: where the customer came from
	DimOther     Dimension = "other"
)

// Dimensions lists every dimension in display order.
func Dimensions() []Dimension {
	return []Dimension{DimProduct, DimCustomer, DimValue, DimLifecycle, DimChannel, DimOther}
}

// Limits on the tag system. Names follow WeCom's corp-tag limit so that every
// tag can be synced to WeCom as it is.
const (
	MaxNameLen        = 30
	MaxDescriptionLen = 200
	MaxGroups         = 1000
	MaxTags           = 10000 // per workspace
	DefaultColor      = "#8C8C8C"
)

// Group is a tag group (标签组).
type Group struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	Dimension    Dimension `json:"dimension" enum:"product,customer,value,lifecycle,channel,other"`
	SortOrder    int       `json:"sort_order" doc:"Groups are shown by sort_order, then id."`
	Description  string    `json:"description"`
	WeComGroupID string    `json:"wecom_group_id,omitempty" doc:"The WeCom corp tag group this group is bound to, once synced."`
	TagCount     int       `json:"tag_count"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Tag is one tag of a group.
type Tag struct {
	ID            int64     `json:"id"`
	GroupID       int64     `json:"group_id"`
	Group         string    `json:"group" doc:"The group's name."`
	Name          string    `json:"name"`
	Ref           string    `json:"ref" doc:"group/name: how conditions and the API refer to the tag, e.g. 价值/高价值."`
	Color         string    `json:"color" doc:"#RRGGBB."`
	SortOrder     int       `json:"sort_order" doc:"Tags are shown by sort_order, then id, within their group."`
	Description   string    `json:"description"`
	WeComTagID    string    `json:"wecom_tag_id,omitempty" doc:"The WeCom corp tag this tag is bound to, once synced."`
	CustomerCount int64     `json:"customer_count" doc:"Customers holding the tag."`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Auditor records administrative actions (tenant.Service satisfies it).
type Auditor interface {
	Audit(ctx context.Context, q db.Querier, p tenant.Principal, action, targetKind, targetID, detail string) error
}

// Options configure a Service; zero values mean the defaults.
type Options struct {
	Logger  *slog.Logger
	Auditor Auditor          // nil: definition changes are not audited
	Now     func() time.Time // the clock (tests)
}

// stripes is how many locks serialise writers per customer (see lockCustomers).
const stripes = 64

// Service is the tag domain service.
type Service struct {
	db    *db.DB
	log   *slog.Logger
	audit Auditor
	now   func() time.Time

	obsMu     sync.RWMutex
	observers []Observer

	// locks serialise the writers of one customer from before their
	// transaction begins until their observers have been told, so observers
	// see each customer's changes in commit order.
	locks [stripes]sync.Mutex
}

// NewService returns a tag service on d.
func NewService(d *db.DB, o Options) *Service {
	s := &Service{db: d, log: o.Logger, audit: o.Auditor, now: o.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

func (s *Service) auditTx(ctx context.Context, tx *sql.Tx, p tenant.Principal, action, kind string, id int64, detail string) error {
	if s.audit == nil {
		return nil
	}
	return s.audit.Audit(ctx, tx, p, action, kind, fmt.Sprint(id), detail)
}

// cleanName trims and checks a group or tag name.
func cleanName(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if n == 0 || n > MaxNameLen {
		return "", errs.Field(field, "invalid_name", "the name must be 1–%d characters", MaxNameLen)
	}
	if strings.Contains(s, "/") {
		return "", errs.Field(field, "invalid_name", "the name may not contain '/': it separates group and tag in references such as 价值/高价值")
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", errs.Field(field, "invalid_name", "the name may not contain control characters")
	}
	return s, nil
}

func cleanDescription(s string) (string, error) {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > MaxDescriptionLen {
		return "", errs.Field("description", "invalid_description", "the description may be at most %d characters", MaxDescriptionLen)
	}
	return s, nil
}

// cleanColor checks a #RRGGBB colour and upper-cases it; "" is DefaultColor.
func cleanColor(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultColor, nil
	}
	bad := errs.Field("color", "invalid_color", "the colour must be #RRGGBB, e.g. #FF7A45 (got %q)", s)
	if len(s) != 7 || s[0] != '#' {
		return "", bad
	}
	for _, c := range s[1:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "", bad
		}
	}
	return strings.ToUpper(s), nil
}

func cleanDimension(d Dimension) (Dimension, error) {
	if d == "" {
		return DimOther, nil
	}
	for _, k := range Dimensions() {
		if d == k {
			return d, nil
		}
	}
	return "", errs.Field("dimension", "invalid_dimension", "unknown dimension %q (expected product, customer, value, lifecycle, channel or other)", d)
}

func checkSortOrder(v *int) error {
	if v != nil && (*v < -1_000_000 || *v > 1_000_000) {
		return errs.Field("sort_order", "invalid_sort_order", "sort_order must be between -1000000 and 1000000")
	}
	return nil
}

// GroupInput is what CreateGroup needs.
type GroupInput struct {
	Name        string
	Dimension   Dimension // "": other
	SortOrder   *int      // nil: after the last group
	Description string
}

// GroupUpdate changes the fields that are not nil.
type GroupUpdate struct {
	Name        *string
	Dimension   *Dimension
	SortOrder   *int
	Description *string
}

const groupCols = `g.id, g.name, g.dimension, g.sort_order, g.description, coalesce(g.wecom_group_id, ''), g.created_at, g.updated_at,
	(SELECT count(*) FROM tags t WHERE t.tenant_id = g.tenant_id AND t.group_id = g.id)`

func scanGroup(row interface{ Scan(...any) error }) (Group, error) {
	var g Group
	var created, updated int64
	err := row.Scan(&g.ID, &g.Name, &g.Dimension, &g.SortOrder, &g.Description, &g.WeComGroupID, &created, &updated, &g.TagCount)
	g.CreatedAt, g.UpdatedAt = db.FromMillis(created), db.FromMillis(updated)
	return g, err
}

func duplicateGroup(name string) error {
	return errs.E(errs.Conflict, "duplicate_group", "a tag group named %q already exists", name)
}

// CreateGroup adds a tag group.
func (s *Service) CreateGroup(ctx context.Context, p tenant.Principal, in GroupInput) (Group, error) {
	name, err := cleanName("name", in.Name)
	if err != nil {
		return Group{}, err
	}
	dim, err := cleanDimension(in.Dimension)
	if err != nil {
		return Group{}, err
	}
	desc, err := cleanDescription(in.Description)
	if err != nil {
		return Group{}, err
	}
	if err := checkSortOrder(in.SortOrder); err != nil {
		return Group{}, err
	}
	now := db.Millis(s.now())
	var id int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n, next int
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(max(sort_order) + 1, 0) FROM tag_groups WHERE tenant_id = $1`,
			p.TenantID).Scan(&n, &next); err != nil {
			return fmt.Errorf("tag: unable to count groups: %w", err)
		}
		if n >= MaxGroups {
			return errs.E(errs.Conflict, "too_many_groups", "a workspace may have at most %d tag groups", MaxGroups)
		}
		if in.SortOrder != nil {
			next = *in.SortOrder
		}
		err := tx.QueryRowContext(ctx,
			`INSERT INTO tag_groups (tenant_id, name, dimension, sort_order, description, created_at, updated_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`, p.TenantID, name, dim, next, desc, now).Scan(&id)
		if db.IsUniqueViolation(err) {
			return duplicateGroup(name)
		}
		if err != nil {
			return fmt.Errorf("tag: unable to create group: %w", err)
		}
		return s.auditTx(ctx, tx, p, "tag_group.create", "tag_group", id, name)
	})
	if err != nil {
		return Group{}, err
	}
	return s.Group(ctx, p.TenantID, id)
}

// Group returns one tag group.
func (s *Service) Group(ctx context.Context, tenantID, id int64) (Group, error) {
	g, err := scanGroup(s.db.QueryRowContext(ctx, `SELECT `+groupCols+` FROM tag_groups g WHERE g.tenant_id = $1 AND g.id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Group{}, errs.NotFoundf("tag_group", "no tag group with id %d", id)
	}
	if err != nil {
		return Group{}, fmt.Errorf("tag: unable to fetch group: %w", err)
	}
	return g, nil
}

// Groups lists the workspace's tag groups in display order (at most
// MaxGroups, so unpaged).
func (s *Service) Groups(ctx context.Context, tenantID int64) ([]Group, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+groupCols+` FROM tag_groups g WHERE g.tenant_id = $1 ORDER BY g.sort_order, g.id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("tag: unable to list groups: %w", err)
	}
	defer rows.Close()
	out := []Group{}
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, fmt.Errorf("tag: unable to read group: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tag: unable to list groups: %w", err)
	}
	return out, nil
}

// UpdateGroup changes a tag group.
func (s *Service) UpdateGroup(ctx context.Context, p tenant.Principal, id int64, in GroupUpdate) (Group, error) {
	g, err := s.Group(ctx, p.TenantID, id)
	if err != nil {
		return Group{}, err
	}
	var changes []string
	if in.Name != nil {
		name, err := cleanName("name", *in.Name)
		if err != nil {
			return Group{}, err
		}
		if name != g.Name {
			changes = append(changes, fmt.Sprintf("name: %s → %s", g.Name, name))
			g.Name = name
		}
	}
	if in.Dimension != nil {
		dim, err := cleanDimension(*in.Dimension)
		if err != nil {
			return Group{}, err
		}
		if dim != g.Dimension {
			changes = append(changes, fmt.Sprintf("dimension: %s → %s", g.Dimension, dim))
			g.Dimension = dim
		}
	}
	if in.SortOrder != nil {
		if err := checkSortOrder(in.SortOrder); err != nil {
			return Group{}, err
		}
		g.SortOrder = *in.SortOrder
	}
	if in.Description != nil {
		if g.Description, err = cleanDescription(*in.Description); err != nil {
			return Group{}, err
		}
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE tag_groups SET name = $3, dimension = $4, sort_order = $5, description = $6, updated_at = $7 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, g.Name, g.Dimension, g.SortOrder, g.Description, db.Millis(s.now()))
		if db.IsUniqueViolation(err) {
			return duplicateGroup(g.Name)
		}
		if err != nil {
			return fmt.Errorf("tag: unable to update group: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.NotFoundf("tag_group", "no tag group with id %d", id)
		}
		return s.auditTx(ctx, tx, p, "tag_group.update", "tag_group", id, strings.Join(changes, "; "))
	})
	if err != nil {
		return Group{}, err
	}
	return s.Group(ctx, p.TenantID, id)
}

// DeleteGroup deletes a tag group. A group that still has tags is deleted
// only with force, which deletes its tags first (and their applications, see
// DeleteTag).
func (s *Service) DeleteGroup(ctx context.Context, p tenant.Principal, id int64, force bool) error {
	g, err := s.Group(ctx, p.TenantID, id)
	if err != nil {
		return err
	}
	if g.TagCount > 0 && !force {
		return errs.E(errs.Conflict, "group_not_empty", "the tag group %q still has %d tags; delete them first or delete with force", g.Name, g.TagCount)
	}
	tags, err := s.tagsWhere(ctx, p.TenantID, "t.group_id = $2", id)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if err := s.DeleteTag(ctx, p, t.ID); err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var left int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tags WHERE tenant_id = $1 AND group_id = $2`, p.TenantID, id).Scan(&left); err != nil {
			return fmt.Errorf("tag: unable to count tags of group: %w", err)
		}
		if left > 0 {
			return errs.E(errs.Conflict, "group_not_empty", "tags were added to the group %q while it was being deleted; try again", g.Name)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM tag_groups WHERE tenant_id = $1 AND id = $2`, p.TenantID, id); err != nil {
			return fmt.Errorf("tag: unable to delete group: %w", err)
		}
		return s.auditTx(ctx, tx, p, "tag_group.delete", "tag_group", id, fmt.Sprintf("%s (%d tags)", g.Name, len(tags)))
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "tag group deleted", "tenant", p.TenantID, "group", id, "name", g.Name, "tags", len(tags))
	return nil
}

// TagInput is what CreateTag needs.
type TagInput struct {
	GroupID     int64
	Name        string
	Color       string // #RRGGBB; "": DefaultColor
	SortOrder   *int   // nil: after the group's last tag
	Description string
}

// TagUpdate changes the fields that are not nil. A new GroupID moves the tag
// to that group (its name must be free there).
type TagUpdate struct {
	GroupID     *int64
	Name        *string
	Color       *string
	SortOrder   *int
	Description *string
}

const tagCols = `t.id, t.group_id, g.name, t.name, t.color, t.sort_order, t.description, coalesce(t.wecom_tag_id, ''),
	t.customer_count, t.created_at, t.updated_at, g.sort_order`

const tagFrom = ` FROM tags t JOIN tag_groups g ON g.tenant_id = t.tenant_id AND g.id = t.group_id WHERE t.tenant_id = $1`

// tagRow is a tag with the sort keys of its position in the workspace.
type tagRow struct {
	Tag
	groupSort int
}

func scanTag(row interface{ Scan(...any) error }) (tagRow, error) {
	var t tagRow
	var created, updated int64
	err := row.Scan(&t.ID, &t.GroupID, &t.Group, &t.Name, &t.Color, &t.SortOrder, &t.Description, &t.WeComTagID,
		&t.CustomerCount, &created, &updated, &t.groupSort)
	t.Ref = t.Group + "/" + t.Name
	t.CreatedAt, t.UpdatedAt = db.FromMillis(created), db.FromMillis(updated)
	return t, err
}

func duplicateTag(group, name string) error {
	return errs.E(errs.Conflict, "duplicate_tag", "the group %q already has a tag named %q", group, name)
}

// CreateTag adds a tag to a group.
func (s *Service) CreateTag(ctx context.Context, p tenant.Principal, in TagInput) (Tag, error) {
	name, err := cleanName("name", in.Name)
	if err != nil {
		return Tag{}, err
	}
	color, err := cleanColor(in.Color)
	if err != nil {
		return Tag{}, err
	}
	desc, err := cleanDescription(in.Description)
	if err != nil {
		return Tag{}, err
	}
	if err := checkSortOrder(in.SortOrder); err != nil {
		return Tag{}, err
	}
	g, err := s.Group(ctx, p.TenantID, in.GroupID)
	if errs.Is(err, errs.NotFound) {
		return Tag{}, errs.E(errs.NotFound, "tag_group_not_found", "no tag group with id %d", in.GroupID)
	}
	if err != nil {
		return Tag{}, err
	}
	now := db.Millis(s.now())
	var id int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tags WHERE tenant_id = $1`, p.TenantID).Scan(&n); err != nil {
			return fmt.Errorf("tag: unable to count tags: %w", err)
		}
		if n >= MaxTags {
			return errs.E(errs.Conflict, "too_many_tags", "a workspace may have at most %d tags", MaxTags)
		}
		next := 0
		if in.SortOrder != nil {
			next = *in.SortOrder
		} else if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(sort_order) + 1, 0) FROM tags WHERE tenant_id = $1 AND group_id = $2`,
			p.TenantID, g.ID).Scan(&next); err != nil {
			return fmt.Errorf("tag: unable to order tag: %w", err)
		}
		err := tx.QueryRowContext(ctx,
			`INSERT INTO tags (tenant_id, group_id, name, color, sort_order, description, created_at, updated_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`, p.TenantID, g.ID, name, color, next, desc, now).Scan(&id)
		if db.IsUniqueViolation(err) {
			return duplicateTag(g.Name, name)
		}
		if err != nil {
			return fmt.Errorf("tag: unable to create tag: %w", err)
		}
		return s.auditTx(ctx, tx, p, "tag.create", "tag", id, g.Name+"/"+name)
	})
	if err != nil {
		return Tag{}, err
	}
	return s.Tag(ctx, p.TenantID, id)
}

func tagNotFound(id int64) error { return errs.NotFoundf("tag", "no tag with id %d", id) }

// Tag returns one tag.
func (s *Service) Tag(ctx context.Context, tenantID, id int64) (Tag, error) {
	t, err := scanTag(s.db.QueryRowContext(ctx, `SELECT `+tagCols+tagFrom+` AND t.id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Tag{}, tagNotFound(id)
	}
	if err != nil {
		return Tag{}, fmt.Errorf("tag: unable to fetch tag: %w", err)
	}
	return t.Tag, nil
}

func (s *Service) tagsWhere(ctx context.Context, tenantID int64, where string, args ...any) ([]Tag, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tagCols+tagFrom+` AND `+where+` ORDER BY g.sort_order, g.id, t.sort_order, t.id`,
		append([]any{tenantID}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("tag: unable to list tags: %w", err)
	}
	defer rows.Close()
	out := []Tag{}
	for rows.Next() {
		t, err := scanTag(rows)
		if err != nil {
			return nil, fmt.Errorf("tag: unable to read tag: %w", err)
		}
		out = append(out, t.Tag)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tag: unable to list tags: %w", err)
	}
	return out, nil
}

// AllTags lists every tag of the workspace in display order (at most
// MaxTags): what a tag picker or the audience engine needs in one call.
func (s *Service) AllTags(ctx context.Context, tenantID int64) ([]Tag, error) {
	return s.tagsWhere(ctx, tenantID, "TRUE")
}

// TagQuery filters a tag list.
type TagQuery struct {
	GroupID int64 // 0: every group
}

// Tags lists tags in display order (group order, then tag order), with the
// number of customers holding each.
func (s *Service) Tags(ctx context.Context, tenantID int64, q TagQuery, r page.Request) (page.Page[Tag], error) {
	where := ""
	args := []any{tenantID}
	if q.GroupID != 0 {
		if _, err := s.Group(ctx, tenantID, q.GroupID); err != nil {
			return page.Page[Tag]{}, err
		}
		args = append(args, q.GroupID)
		where += fmt.Sprintf(" AND t.group_id = $%d", len(args))
	}
	if r.Cursor != "" {
		var gs, gid, ts, tid int64
		if err := page.Decode(r.Cursor, &gs, &gid, &ts, &tid); err != nil {
			return page.Page[Tag]{}, err
		}
		n := len(args)
		where += fmt.Sprintf(" AND (g.sort_order, g.id, t.sort_order, t.id) > ($%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4)
		args = append(args, gs, gid, ts, tid)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+tagCols+tagFrom+where+
		fmt.Sprintf(` ORDER BY g.sort_order, g.id, t.sort_order, t.id LIMIT %d`, r.Size()+1), args...)
	if err != nil {
		return page.Page[Tag]{}, fmt.Errorf("tag: unable to list tags: %w", err)
	}
	defer rows.Close()
	var list []tagRow
	for rows.Next() {
		t, err := scanTag(rows)
		if err != nil {
			return page.Page[Tag]{}, fmt.Errorf("tag: unable to read tag: %w", err)
		}
		list = append(list, t)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Tag]{}, fmt.Errorf("tag: unable to list tags: %w", err)
	}
	pg := page.Trim(list, r, func(t tagRow) string { return page.Encode(t.groupSort, t.GroupID, t.SortOrder, t.ID) })
	out := page.Page[Tag]{Items: make([]Tag, len(pg.Items)), Next: pg.Next}
	for i, t := range pg.Items {
		out.Items[i] = t.Tag
	}
	return out, nil
}

// UpdateTag changes a tag: name, colour, order, description, or its group.
func (s *Service) UpdateTag(ctx context.Context, p tenant.Principal, id int64, in TagUpdate) (Tag, error) {
	t, err := s.Tag(ctx, p.TenantID, id)
	if err != nil {
		return Tag{}, err
	}
	var changes []string
	if in.GroupID != nil && *in.GroupID != t.GroupID {
		g, err := s.Group(ctx, p.TenantID, *in.GroupID)
		if errs.Is(err, errs.NotFound) {
			return Tag{}, errs.E(errs.NotFound, "tag_group_not_found", "no tag group with id %d", *in.GroupID)
		}
		if err != nil {
			return Tag{}, err
		}
		changes = append(changes, fmt.Sprintf("group: %s → %s", t.Group, g.Name))
		t.GroupID, t.Group = g.ID, g.Name
	}
	if in.Name != nil {
		name, err := cleanName("name", *in.Name)
		if err != nil {
			return Tag{}, err
		}
		if name != t.Name {
			changes = append(changes, fmt.Sprintf("name: %s → %s", t.Name, name))
			t.Name = name
		}
	}
	if in.Color != nil {
		if t.Color, err = cleanColor(*in.Color); err != nil {
			return Tag{}, err
		}
	}
	if in.SortOrder != nil {
		if err := checkSortOrder(in.SortOrder); err != nil {
			return Tag{}, err
		}
		t.SortOrder = *in.SortOrder
	}
	if in.Description != nil {
		if t.Description, err = cleanDescription(*in.Description); err != nil {
			return Tag{}, err
		}
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE tags SET group_id = $3, name = $4, color = $5, sort_order = $6, description = $7, updated_at = $8
			 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, t.GroupID, t.Name, t.Color, t.SortOrder, t.Description, db.Millis(s.now()))
		if db.IsUniqueViolation(err) {
			return duplicateTag(t.Group, t.Name)
		}
		if err != nil {
			return fmt.Errorf("tag: unable to update tag: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return tagNotFound(id)
		}
		return s.auditTx(ctx, tx, p, "tag.update", "tag", id, strings.Join(changes, "; "))
	})
	if err != nil {
		return Tag{}, err
	}
	return s.Tag(ctx, p.TenantID, id)
}

// DeleteTag deletes a tag and every application of it; each removal is
// recorded in the customers' history (as done by p) and told to observers.
// Applications are removed in chunks, so a tag held by millions does not make
// one huge transaction.
func (s *Service) DeleteTag(ctx context.Context, p tenant.Principal, id int64) error {
	t, err := s.Tag(ctx, p.TenantID, id)
	if err != nil {
		return err
	}
	app := ByPrincipal(p)
	removed := 0
	for after := int64(0); ; {
		ids, err := holders(ctx, s.db, p.TenantID, id, after, BulkChunk)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
		res, err := s.bulkChunk(ctx, p.TenantID, []int64{id}, ids, false, app.stamped(s.now()))
		if err != nil {
			return err
		}
		removed += res.Changed
	}
	// The last step holds every customer lock: no writer of this service
	// can add the tag back between the final sweep and the delete.
	unlock := s.lockAll()
	defer unlock()
	var changes []Change
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		// Whatever a merge moved or a writer added since the sweep.
		ids, err := holders(ctx, tx, p.TenantID, id, 0, 0)
		if err != nil {
			return err
		}
		for len(ids) > 0 {
			n := min(len(ids), BulkChunk)
			cs, err := writeChunk(ctx, tx, p.TenantID, tagRef{id: id, ref: t.Ref}, ids[:n], false, app.stamped(s.now()))
			if err != nil {
				return err
			}
			changes = append(changes, cs...)
			ids = ids[n:]
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE tenant_id = $1 AND id = $2`, p.TenantID, id)
		if err != nil {
			return fmt.Errorf("tag: unable to delete tag: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return tagNotFound(id)
		}
		return s.auditTx(ctx, tx, p, "tag.delete", "tag", id, fmt.Sprintf("%s (held by %d customers)", t.Ref, removed+len(changes)))
	})
	if err != nil {
		return err
	}
	s.notify(p.TenantID, changes)
	s.log.InfoContext(ctx, "tag deleted", "tenant", p.TenantID, "tag", id, "ref", t.Ref, "customers", removed+len(changes))
	return nil
}
