package wecom

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Two-way corp tags. A Siyu tag group bound to a WeCom corp tag group has
// its tags bound to the corp tags of the same name (ids kept in
// tag_groups.wecom_group_id and tags.wecom_tag_id), and marks travel both
// ways:
//
//   - WeCom → Siyu: a staff member's marks come with each relation (callbacks
//     and sync), and the customer holds the bound Siyu tags of the corp tags
//     any current relation carries, applied with source "sync" (ref "wecom").
//   - Siyu → WeCom: every other change of a bound tag (a person, a rule, an
//     import, the API) is in the tag history, committed with the change. The
//     tag feed reads the history into wecom_tag_marks, a durable queue, and
//     a worker calls externalcontact/mark_tag for each current relation of
//     the customer, with retries. The tagger never waits for WeCom: the tag
//     observer only wakes the worker.
//
// No echo: history rows written by the WeCom → Siyu path (source sync, ref
// wecom) are never queued, a relation that already carries (or lacks) the
// tag is not marked again, and WeCom sends no callback for marks made
// through its API.

// boundSet is a workspace's Siyu tags bound to WeCom corp tags.
type boundSet struct {
	byWeCom map[string]int64 // corp tag id → Siyu tag id
	ids     map[int64]bool   // bound Siyu tag ids
}

func (s *Service) boundTags(ctx context.Context, tenantID int64) (boundSet, error) {
	all, err := s.tags.AllTags(ctx, tenantID)
	if err != nil {
		return boundSet{}, err
	}
	b := boundSet{byWeCom: map[string]int64{}, ids: map[int64]bool{}}
	for _, t := range all {
		if t.WeComTagID != "" {
			b.byWeCom[t.WeComTagID] = t.ID
			b.ids[t.ID] = true
		}
	}
	return b, nil
}

// alignCustomerTags brings the bound tags of the customers of rels (whole
// customers) in line with the corp tags of their current relations, and
// returns how many customers changed.
func (s *Service) alignCustomerTags(ctx context.Context, tenantID int64, b boundSet, rels []staff.Relation) (int, error) {
	want := map[int64]map[int64]bool{}
	var cids []int64
	for _, r := range rels {
		if _, ok := want[r.CustomerID]; !ok {
			want[r.CustomerID] = map[int64]bool{}
			cids = append(cids, r.CustomerID)
		}
		if !r.Status.Current() {
			continue
		}
		for _, id := range r.ChannelTagIDs {
			if t, ok := b.byWeCom[id]; ok {
				want[r.CustomerID][t] = true
			}
		}
	}
	held, err := s.tags.TagIDsOf(ctx, tenantID, cids)
	if err != nil {
		return 0, err
	}
	changed := 0
	for _, cid := range cids {
		w := want[cid]
		h := map[int64]bool{}
		for _, t := range held[cid] {
			if b.ids[t] {
				h[t] = true
			}
		}
		var add []int64
		extra := false
		for t := range w {
			if !h[t] {
				add = append(add, t)
			}
		}
		for t := range h {
			if !w[t] {
				extra = true
			}
		}
		if len(add) == 0 && !extra {
			continue
		}
		var remove []int64
		if extra {
			// Only tags WeCom gave are taken away; those applied in Siyu stay.
			have, err := s.tags.TagsOf(ctx, tenantID, cid)
			if err != nil {
				return changed, err
			}
			for _, a := range have {
				if b.ids[a.TagID] && !w[a.TagID] && a.Source == tag.SourceSync && a.SourceRef == tagSourceRef {
					remove = append(remove, a.TagID)
				}
			}
		}
		if len(add)+len(remove) == 0 {
			continue
		}
		if err := s.updateFromWeCom(ctx, tenantID, cid, add, remove); err != nil {
			return changed, err
		}
		changed++
	}
	return changed, nil
}

// updateFromWeCom applies and removes tags of a customer as WeCom's marks
// say, in changes of at most tag.MaxTagsPerChange.
func (s *Service) updateFromWeCom(ctx context.Context, tenantID, customerID int64, add, remove []int64) error {
	slices.Sort(add)
	slices.Sort(remove)
	app := tag.Application{Source: tag.SourceSync, SourceRef: tagSourceRef, AppliedBy: "WeCom"}
	for len(add)+len(remove) > 0 {
		a := add[:min(len(add), tag.MaxTagsPerChange)]
		r := remove[:min(len(remove), tag.MaxTagsPerChange-len(a))]
		add, remove = add[len(a):], remove[len(r):]
		if _, err := s.tags.Update(ctx, tenantID, customerID, a, r, app); err != nil {
			if errs.Is(err, errs.NotFound) {
				return nil // the customer or a tag went meanwhile
			}
			return fmt.Errorf("wecom: unable to update the tags of customer %d: %w", customerID, err)
		}
	}
	return nil
}

// BindTagGroupInput says which WeCom corp tag group a Siyu tag group is
// bound to.
type BindTagGroupInput struct {
	// WeComGroupID binds an existing corp tag group. Empty: the corp tag
	// group with the Siyu group's name is bound, or one is created from the
	// Siyu group (with its tags) when WeCom has none.
	WeComGroupID string
	// PushExisting marks in WeCom the customers who hold the group's tags in
	// Siyu now (applied in Siyu, not from WeCom): one mark_tag per staff
	// relation, queued, so a large tag takes a while within WeCom's limits.
	// Without it only changes made after binding go to WeCom.
	PushExisting bool
}

// BoundTag is a Siyu tag and the corp tag it is bound to.
type BoundTag struct {
	TagID      int64  `json:"tag_id"`
	Name       string `json:"name"`
	WeComTagID string `json:"wecom_tag_id"`
}

// TagBinding is a Siyu tag group bound to a WeCom corp tag group.
type TagBinding struct {
	GroupID        int64      `json:"group_id"`
	WeComGroupID   string     `json:"wecom_group_id"`
	WeComGroupName string     `json:"wecom_group_name"`
	Tags           []BoundTag `json:"tags" nullable:"false"`
	CreatedInWeCom []string   `json:"created_in_wecom" nullable:"false" doc:"Tags WeCom did not have, created there."`
	CreatedInSiyu  []string   `json:"created_in_siyu" nullable:"false" doc:"Corp tags Siyu did not have, created in the Siyu group."`
	Queued         int        `json:"queued" doc:"Marks queued for customers already holding the tags (push_existing)."`
	SyncRunID      int64      `json:"sync_run_id,omitempty" doc:"The tags sync queued to bring WeCom's marks of these tags in; 0 when a sync was already running."`
}

// BindTagGroup binds a Siyu tag group to a WeCom corp tag group (p needs
// tags.manage and connectors.manage): an existing one (in.WeComGroupID), or
// the one with the group's name, or a new one created from the Siyu group.
// Tags are matched by name; those missing on either side are created there,
// so both groups end with the same tags, each pair bound. From then on marks
// go both ways. A tags sync is queued to bring in the marks WeCom has.
func (s *Service) BindTagGroup(ctx context.Context, p tenant.Principal, groupID int64, in BindTagGroupInput) (TagBinding, error) {
	if err := p.Require(tenant.PermTagsManage); err != nil {
		return TagBinding{}, err
	}
	if err := p.Require(tenant.PermConnectorsManage); err != nil {
		return TagBinding{}, err
	}
	tenantID := p.TenantID
	g, err := s.tags.Group(ctx, tenantID, groupID)
	if err != nil {
		return TagBinding{}, err
	}
	c, err := s.Client(ctx, tenantID)
	if err != nil {
		return TagBinding{}, err
	}
	all, err := c.GetCorpTagList(ctx, nil, nil)
	if err != nil {
		return TagBinding{}, err
	}
	find := func(pred func(CorpTagGroup) bool) *CorpTagGroup {
		for i := range all {
			if !all[i].Deleted && pred(all[i]) {
				return &all[i]
			}
		}
		return nil
	}
	var wg *CorpTagGroup
	switch {
	case in.WeComGroupID != "":
		if wg = find(func(x CorpTagGroup) bool { return x.GroupID == in.WeComGroupID }); wg == nil {
			return TagBinding{}, errs.E(errs.NotFound, "wecom_tag_group_not_found",
				"WeCom has no corp tag group %q (it may have been deleted); choose another or create one from the Siyu group", in.WeComGroupID)
		}
	case g.WeComGroupID != "":
		wg = find(func(x CorpTagGroup) bool { return x.GroupID == g.WeComGroupID })
	}
	if wg == nil {
		wg = find(func(x CorpTagGroup) bool { return x.GroupName == g.Name })
	}
	if wg != nil {
		groups, err := s.tags.Groups(ctx, tenantID)
		if err != nil {
			return TagBinding{}, err
		}
		for _, o := range groups {
			if o.ID != g.ID && o.WeComGroupID == wg.GroupID {
				return TagBinding{}, errs.E(errs.Conflict, "wecom_already_bound", "the WeCom corp tag group %q is already bound to the tag group %q",
					wg.GroupName, o.Name)
			}
		}
	}
	stags, err := s.groupTags(ctx, tenantID, g.ID)
	if err != nil {
		return TagBinding{}, err
	}
	out := TagBinding{GroupID: g.ID, Tags: []BoundTag{}, CreatedInWeCom: []string{}, CreatedInSiyu: []string{}}
	if wg == nil {
		if len(stags) == 0 {
			return TagBinding{}, errs.E(errs.Invalid, "wecom_empty_tag_group", "WeCom does not allow an empty corp tag group: add a tag to %q first", g.Name)
		}
		req := AddCorpTagRequest{GroupName: g.Name}
		for i, t := range stags {
			// WeCom shows higher orders first; Siyu lower sort orders.
			req.Tags = append(req.Tags, NewCorpTag{Name: t.Name, Order: int64(len(stags) - i)})
		}
		created, err := c.AddCorpTag(ctx, req)
		if err != nil {
			return TagBinding{}, err
		}
		wg = &created
		for _, t := range created.Tags {
			out.CreatedInWeCom = append(out.CreatedInWeCom, t.Name)
		}
	}
	if err := s.tags.BindWeComGroup(ctx, p, g.ID, wg.GroupID); err != nil {
		return TagBinding{}, err
	}
	// Feed marks from now on: changes before the binding are not WeCom's.
	if err := s.initFeed(ctx, tenantID); err != nil {
		return TagBinding{}, err
	}
	pushed, err := s.pushBoundTags(ctx, tenantID, c, *wg, stags, p)
	if err != nil {
		return TagBinding{}, err
	}
	out.CreatedInWeCom = append(out.CreatedInWeCom, pushed...)
	// WeCom's whole list again: tags only WeCom had are created in the Siyu
	// group and bound, names and order follow WeCom.
	if all, err = c.GetCorpTagList(ctx, nil, nil); err != nil {
		return TagBinding{}, err
	}
	if err := s.ApplyCorpTags(ctx, tenantID, all, true); err != nil {
		return TagBinding{}, err
	}
	after, err := s.groupTags(ctx, tenantID, g.ID)
	if err != nil {
		return TagBinding{}, err
	}
	for _, t := range after {
		if !slices.ContainsFunc(stags, func(x tag.Tag) bool { return x.ID == t.ID }) {
			out.CreatedInSiyu = append(out.CreatedInSiyu, t.Name)
		}
		out.Tags = append(out.Tags, BoundTag{TagID: t.ID, Name: t.Name, WeComTagID: t.WeComTagID})
	}
	if in.PushExisting {
		if out.Queued, err = s.queueHolders(ctx, tenantID, g.ID); err != nil {
			return out, err
		}
		nudge(s.syncRT().marks)
	}
	out.WeComGroupID, out.WeComGroupName = wg.GroupID, wg.GroupName
	if ng := find(func(x CorpTagGroup) bool { return x.GroupID == wg.GroupID }); ng != nil {
		out.WeComGroupName = ng.GroupName
	}
	run, err := s.startSync(ctx, tenantID, SyncTags, "bind", true)
	switch {
	case err == nil:
		out.SyncRunID = run.ID
	case !errors.Is(err, ErrSyncRunning):
		return out, err
	}
	s.log.InfoContext(ctx, "wecom: tag group bound", "tenant", tenantID, "group", g.ID, "wecom_group", wg.GroupID,
		"created_in_wecom", len(out.CreatedInWeCom), "created_in_siyu", len(out.CreatedInSiyu))
	return out, nil
}

// UnbindTagGroup ends the binding of a Siyu tag group and its tags to WeCom
// (p needs tags.manage). Both sides keep their tags and marks; changes no
// longer travel, and marks still queued for these tags are dropped.
func (s *Service) UnbindTagGroup(ctx context.Context, p tenant.Principal, groupID int64) error {
	if err := p.Require(tenant.PermTagsManage); err != nil {
		return err
	}
	if _, err := s.tags.Group(ctx, p.TenantID, groupID); err != nil {
		return err
	}
	stags, err := s.groupTags(ctx, p.TenantID, groupID)
	if err != nil {
		return err
	}
	for _, t := range stags {
		if t.WeComTagID != "" {
			if err := s.tags.BindWeComTag(ctx, p, t.ID, ""); err != nil {
				return err
			}
		}
	}
	return s.tags.BindWeComGroup(ctx, p, groupID, "")
}

// queueHolders queues a mark for every customer holding a bound tag of the
// group that did not come from WeCom, keyed by the history row that applied
// it (so a change already queued is not queued twice), and returns how many
// it queued.
func (s *Service) queueHolders(ctx context.Context, tenantID, groupID int64) (int, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO wecom_tag_marks (tenant_id, history_id, customer_id, tag_id, wecom_tag_id, action, next_attempt_at, created_at)
		SELECT tenant_id, hid, customer_id, tag_id, wecom_tag_id, 'add', $3, $3 FROM (
			SELECT ct.tenant_id, ct.customer_id, ct.tag_id, t.wecom_tag_id,
				(SELECT max(h.id) FROM tag_history h WHERE h.tenant_id = ct.tenant_id AND h.customer_id = ct.customer_id AND h.tag_id = ct.tag_id
					AND h.action = 'add') AS hid
			FROM customer_tags ct JOIN tags t ON t.tenant_id = ct.tenant_id AND t.id = ct.tag_id
			WHERE ct.tenant_id = $1 AND t.group_id = $2 AND t.wecom_tag_id IS NOT NULL AND NOT (ct.source = $4 AND ct.source_ref = $5)
		) held WHERE hid IS NOT NULL
		ON CONFLICT (tenant_id, history_id) DO NOTHING`, tenantID, groupID, db.Millis(s.now()), string(tag.SourceSync), tagSourceRef)
	if err != nil {
		return 0, fmt.Errorf("wecom: unable to queue marks for the tags' holders: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// groupTags returns a group's tags in display order.
func (s *Service) groupTags(ctx context.Context, tenantID, groupID int64) ([]tag.Tag, error) {
	all, err := s.tags.AllTags(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	var out []tag.Tag
	for _, t := range all {
		if t.GroupID == groupID {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b tag.Tag) int {
		if c := cmp.Compare(a.SortOrder, b.SortOrder); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// pushBoundTags binds the tags of a Siyu group bound to wg to the corp tags
// of the same name, creating in WeCom those it lacks, and returns the names
// created.
func (s *Service) pushBoundTags(ctx context.Context, tenantID int64, c *Client, wg CorpTagGroup, stags []tag.Tag, p tenant.Principal) ([]string, error) {
	byName := map[string]string{}
	for _, t := range wg.Tags {
		if !t.Deleted {
			byName[t.Name] = t.ID
		}
	}
	var missing []NewCorpTag
	for _, t := range stags {
		if _, ok := byName[t.Name]; !ok {
			missing = append(missing, NewCorpTag{Name: t.Name})
		}
	}
	var created []string
	if len(missing) > 0 {
		g, err := c.AddCorpTag(ctx, AddCorpTagRequest{GroupID: wg.GroupID, Tags: missing})
		if err != nil {
			return nil, err
		}
		for _, t := range g.Tags {
			byName[t.Name] = t.ID
			created = append(created, t.Name)
		}
	}
	for _, t := range stags {
		wid := byName[t.Name]
		if wid == "" || t.WeComTagID == wid {
			continue
		}
		if err := s.tags.BindWeComTag(ctx, p, t.ID, wid); err != nil {
			return created, err
		}
	}
	return created, nil
}

// pushNewBoundTags creates in WeCom the tags added to bound Siyu groups since
// the last sync (a two-way binding: Siyu's new tags appear in WeCom too) and
// returns how many groups it added tags to (one add_corp_tag call each).
func (s *Service) pushNewBoundTags(ctx context.Context, tenantID int64, c *Client, groups []CorpTagGroup) (int, error) {
	sgroups, err := s.tags.Groups(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	p := principal(tenantID)
	pushed := 0
	for _, sg := range sgroups {
		if sg.WeComGroupID == "" {
			continue
		}
		i := slices.IndexFunc(groups, func(x CorpTagGroup) bool { return x.GroupID == sg.WeComGroupID && !x.Deleted })
		if i < 0 {
			continue // deleted in WeCom: ApplyCorpTags unbinds it
		}
		stags, err := s.groupTags(ctx, tenantID, sg.ID)
		if err != nil {
			return pushed, err
		}
		var unbound []tag.Tag
		for _, t := range stags {
			if t.WeComTagID == "" {
				unbound = append(unbound, t)
			}
		}
		if len(unbound) == 0 {
			continue
		}
		created, err := s.pushBoundTags(ctx, tenantID, c, groups[i], unbound, p)
		if err != nil {
			return pushed, err
		}
		if len(created) > 0 {
			pushed++
		}
	}
	return pushed, nil
}

// tagsChanged is the tag observer: it only wakes the mark worker, which
// reads the committed tag history, so a tagger never waits for WeCom.
func (s *Service) tagsChanged(_, _ int64, _, _ []int64) {
	nudge(s.syncRT().marks)
}

// feedState is the tag feed's progress for one workspace in this process.
type feedState struct {
	scanned  int64      // the history read into the queue up to here
	marks    []feedMark // reads not yet settled
	lastFull time.Time  // when the feed last read again from the saved cursor
}

type feedMark struct {
	at time.Time
	id int64
}

// lastHistoryID returns the newest tag history id of a workspace.
func (s *Service) lastHistoryID(ctx context.Context, q db.Querier, tenantID int64) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM tag_history WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1`, tenantID).Scan(&id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("wecom: unable to read the tag history: %w", err)
	}
	return id, nil
}

// initFeed starts a workspace's tag feed at the current end of its tag
// history, unless it has started already.
func (s *Service) initFeed(ctx context.Context, tenantID int64) error {
	last, err := s.lastHistoryID(ctx, s.db, tenantID)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO wecom_tag_feed (tenant_id, history_id, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO NOTHING`, tenantID, last, db.Millis(s.now())); err != nil {
		return fmt.Errorf("wecom: unable to start the tag feed: %w", err)
	}
	return nil
}

// feedBatch is how many history rows the feed queues at a time.
const feedBatch = 100

// pumpFeed queues the bound-tag changes of a workspace's tag history that
// did not come from WeCom and returns how many it queued. On PostgreSQL a
// row may commit after a row with a higher id, so the feed reads the last
// FeedSettle of history again; queueing is idempotent on the history id.
func (s *Service) pumpFeed(ctx context.Context, tenantID int64) (int, error) {
	var cursor int64
	err := s.db.QueryRowContext(ctx, `SELECT history_id FROM wecom_tag_feed WHERE tenant_id = $1`, tenantID).Scan(&cursor)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, s.initFeed(ctx, tenantID)
	}
	if err != nil {
		return 0, fmt.Errorf("wecom: unable to read the tag feed: %w", err)
	}
	o := s.syncOpts()
	rt := s.syncRT()
	now := s.now()
	rt.mu.Lock()
	st := rt.feed[tenantID]
	if st == nil {
		st = &feedState{scanned: cursor, lastFull: now}
		rt.feed[tenantID] = st
	}
	from := max(st.scanned, cursor)
	if o.FeedSettle > 0 && now.Sub(st.lastFull) >= o.FeedSettle {
		from, st.lastFull = cursor, now
	}
	rt.mu.Unlock()
	upper, err := s.lastHistoryID(ctx, s.db, tenantID)
	if err != nil {
		return 0, err
	}
	queued := 0
	for from < upper {
		rows, err := s.db.QueryContext(ctx, `SELECT h.id, h.customer_id, h.tag_id, h.action, t.wecom_tag_id FROM tag_history h
			JOIN tags t ON t.tenant_id = h.tenant_id AND t.id = h.tag_id
			WHERE h.tenant_id = $1 AND h.id > $2 AND h.id <= $3 AND t.wecom_tag_id IS NOT NULL AND NOT (h.source = $4 AND h.source_ref = $5)
			ORDER BY h.id LIMIT $6`, tenantID, from, upper, string(tag.SourceSync), tagSourceRef, feedBatch)
		if err != nil {
			return queued, fmt.Errorf("wecom: unable to read the tag history: %w", err)
		}
		args := []any{tenantID, db.Millis(now)}
		var b strings.Builder
		n := 0
		for rows.Next() {
			var id, cid, tid int64
			var action, wid string
			if err := rows.Scan(&id, &cid, &tid, &action, &wid); err != nil {
				rows.Close()
				return queued, fmt.Errorf("wecom: unable to read the tag history: %w", err)
			}
			if n > 0 {
				b.WriteString(", ")
			}
			args = append(args, id, cid, tid, wid, action)
			k := len(args)
			fmt.Fprintf(&b, "($1, $%d, $%d, $%d, $%d, $%d, $2, $2)", k-4, k-3, k-2, k-1, k)
			n++
			from = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return queued, fmt.Errorf("wecom: unable to read the tag history: %w", err)
		}
		if n > 0 {
			res, err := s.db.ExecContext(ctx, `INSERT INTO wecom_tag_marks (tenant_id, history_id, customer_id, tag_id, wecom_tag_id, action,
				next_attempt_at, created_at) VALUES `+b.String()+` ON CONFLICT (tenant_id, history_id) DO NOTHING`, args...)
			if err != nil {
				return queued, fmt.Errorf("wecom: unable to queue corp tag marks: %w", err)
			}
			k, _ := res.RowsAffected()
			queued += int(k)
		}
		if n < feedBatch {
			break
		}
	}
	// The saved cursor moves only past reads older than FeedSettle: rows
	// still uncommitted then would be read again after a restart.
	rt.mu.Lock()
	st.scanned = max(st.scanned, upper)
	st.marks = append(st.marks, feedMark{at: now, id: upper})
	next := cursor
	keep := st.marks[:0]
	for _, m := range st.marks {
		if !m.at.After(now.Add(-o.FeedSettle)) {
			next = max(next, m.id)
		} else {
			keep = append(keep, m)
		}
	}
	st.marks = keep
	rt.mu.Unlock()
	if next > cursor {
		if _, err := s.db.ExecContext(ctx, `UPDATE wecom_tag_feed SET history_id = $2, updated_at = $3 WHERE tenant_id = $1 AND history_id < $2`,
			tenantID, next, db.Millis(now)); err != nil {
			return queued, fmt.Errorf("wecom: unable to save the tag feed: %w", err)
		}
	}
	return queued, nil
}

// markJob is one leased row of wecom_tag_marks.
type markJob struct {
	id, tenantID, historyID, customerID, tagID int64
	wecomTagID, action                         string
	attempts                                   int
}

// leaseMarks takes due marks for this worker (SKIP LOCKED on PostgreSQL, so
// nodes take different rows).
func (s *Service) leaseMarks(ctx context.Context) ([]markJob, error) {
	now := db.Millis(s.now())
	var jobs []markJob
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, tenant_id, history_id, customer_id, tag_id, wecom_tag_id, action, attempts FROM wecom_tag_marks
			WHERE status = 'pending' AND next_attempt_at <= $1 AND lease_until < $1 ORDER BY next_attempt_at, id LIMIT $2`+s.db.SkipLocked(), now, batchSize)
		if err != nil {
			return fmt.Errorf("wecom: unable to read the tag mark queue: %w", err)
		}
		for rows.Next() {
			var m markJob
			if err := rows.Scan(&m.id, &m.tenantID, &m.historyID, &m.customerID, &m.tagID, &m.wecomTagID, &m.action, &m.attempts); err != nil {
				rows.Close()
				return fmt.Errorf("wecom: unable to read the tag mark queue: %w", err)
			}
			jobs = append(jobs, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("wecom: unable to read the tag mark queue: %w", err)
		}
		for _, m := range jobs {
			if _, err := tx.ExecContext(ctx, `UPDATE wecom_tag_marks SET lease_owner = $2, lease_until = $3 WHERE id = $1`,
				m.id, s.owner, now+leaseFor.Milliseconds()); err != nil {
				return fmt.Errorf("wecom: unable to lease tag mark %d: %w", m.id, err)
			}
		}
		return nil
	})
	return jobs, err
}

// errSuperseded says a queued mark no longer applies.
type errSuperseded struct{ why string }

func (e errSuperseded) Error() string { return e.why }

// sendMark makes one queued change in WeCom: mark_tag for each current
// relation of the customer that does not carry (add) or still carries
// (remove) the corp tag. Each relation marked is recorded at once, so a
// retry marks only the rest. It returns how many relations it marked.
func (s *Service) sendMark(ctx context.Context, m markJob) (int, string, error) {
	var newer int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM wecom_tag_marks WHERE tenant_id = $1 AND customer_id = $2 AND tag_id = $3 AND history_id > $4`,
		m.tenantID, m.customerID, m.tagID, m.historyID).Scan(&newer); err != nil {
		return 0, "", fmt.Errorf("wecom: unable to read the tag mark queue: %w", err)
	}
	if newer > 0 {
		return 0, "", errSuperseded{"a later change of the same tag and customer replaces it"}
	}
	t, err := s.tags.Tag(ctx, m.tenantID, m.tagID)
	if errs.Is(err, errs.NotFound) || (err == nil && t.WeComTagID != m.wecomTagID) {
		return 0, "", errSuperseded{"the tag is no longer bound to this WeCom corp tag"}
	}
	if err != nil {
		return 0, "", err
	}
	cust, err := s.customers.Get(ctx, m.tenantID, m.customerID, false)
	if errs.Is(err, errs.NotFound) {
		return 0, "", errSuperseded{"the customer no longer exists"}
	}
	if err != nil {
		return 0, "", err
	}
	rels, err := s.staff.CustomerRelations(ctx, m.tenantID, cust.ID)
	if err != nil {
		return 0, "", err
	}
	add := m.action == "add"
	var c *Client
	marked, skipped := 0, 0
	for _, r := range rels {
		if r.Channel != staff.ChannelWeCom || !r.Status.Current() || r.StaffWeComUserID == "" {
			continue
		}
		if slices.Contains(r.ChannelTagIDs, m.wecomTagID) == add {
			continue // WeCom has it so already (or the mark came from there)
		}
		if c == nil {
			if c, err = s.Client(ctx, m.tenantID); err != nil {
				return marked, "", err
			}
		}
		var addIDs, removeIDs []string
		if add {
			addIDs = []string{m.wecomTagID}
		} else {
			removeIDs = []string{m.wecomTagID}
		}
		err := c.MarkTag(ctx, r.StaffWeComUserID, r.ExternalID, addIDs, removeIDs)
		if IsCode(err, CodeNotExternalContact, CodeInvalidExternalUser, CodeUserNotFound, CodeInvalidUserID) {
			skipped++ // the relation ended in WeCom; a callback or sync ends it here
			continue
		}
		if err != nil {
			return marked, "", err
		}
		if err := s.recordMark(ctx, m.tenantID, r, m.wecomTagID, add); err != nil {
			return marked, "", err
		}
		marked++
	}
	if marked > 0 {
		// A mark from WeCom may have reached the customer while this one
		// waited: settle the customer's bound tags on the relations as
		// they are now.
		if err := s.SyncCustomerTags(ctx, m.tenantID, cust.ID); err != nil {
			return marked, "", err
		}
	}
	note := fmt.Sprintf("marked for %d staff relations", marked)
	if skipped > 0 {
		note += fmt.Sprintf("; %d relations no longer exist in WeCom", skipped)
	}
	return marked, note, nil
}

// recordMark updates a relation's corp tags after a mark WeCom accepted,
// so that Siyu's copy agrees with WeCom without waiting for a sync.
func (s *Service) recordMark(ctx context.Context, tenantID int64, r staff.Relation, wecomTagID string, add bool) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		cur, err := s.staff.Relation(ctx, tx, tenantID, staff.RelationKey{StaffID: r.StaffID, Channel: r.Channel, ExternalID: r.ExternalID})
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ids := slices.DeleteFunc(slices.Clone(cur.ChannelTagIDs), func(id string) bool { return id == wecomTagID })
		if add {
			ids = append(ids, wecomTagID)
		}
		d := staff.RelationDetails{Remark: cur.Remark, Description: cur.Description, RemarkCorpName: cur.RemarkCorpName, AddWay: cur.AddWay,
			State: cur.State, OperUserID: cur.OperUserID, TagIDs: ids, AddedAt: cur.AddedAt, At: s.now()}
		_, err = s.staff.ApplyRelation(ctx, tx, tenantID, staff.RelationChange{RelationKey: staff.RelationKey{StaffID: cur.StaffID, Channel: cur.Channel,
			ExternalID: cur.ExternalID}, CustomerID: cur.CustomerID, Details: &d})
		return err
	})
}

// markRetryable reports whether trying a failed mark again may help.
func markRetryable(err error) bool {
	if IsCode(err, CodeInvalidTagID, CodeInvalidParam) {
		return false
	}
	return !errors.Is(err, ErrNotConfigured)
}

// finishMark records a mark's outcome, if this worker still holds it.
func (s *Service) finishMark(ctx context.Context, m markJob, marked int, note string, failure error) error {
	now := s.now()
	var sup errSuperseded
	var err error
	switch {
	case errors.As(failure, &sup):
		_, err = s.db.ExecContext(ctx, `UPDATE wecom_tag_marks SET status = 'superseded', note = $3, attempts = attempts + 1, processed_at = $4,
			lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`, m.id, s.owner, sup.why, db.Millis(now))
	case failure == nil:
		_, err = s.db.ExecContext(ctx, `UPDATE wecom_tag_marks SET status = 'done', note = $3, error = '', marked = marked + $4, attempts = attempts + 1,
			processed_at = $5, lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`, m.id, s.owner, truncate(note, 1000), marked, db.Millis(now))
	case m.attempts+1 >= s.syncOpts().MarkMaxAttempts || !markRetryable(failure):
		s.log.ErrorContext(ctx, "wecom: giving up on a corp tag mark", "tenant", m.tenantID, "mark", m.id, "customer", m.customerID,
			"wecom_tag", m.wecomTagID, "attempts", m.attempts+1, "err", failure)
		_, err = s.db.ExecContext(ctx, `UPDATE wecom_tag_marks SET status = 'failed', error = $3, marked = marked + $4, attempts = attempts + 1,
			processed_at = $5, lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`,
			m.id, s.owner, truncate(errorText(failure), 2000), marked, db.Millis(now))
	default:
		next := now.Add(s.backoff(m.attempts + 1))
		s.log.WarnContext(ctx, "wecom: corp tag mark failed; will retry", "tenant", m.tenantID, "mark", m.id, "attempts", m.attempts+1,
			"retry_at", next, "err", failure)
		_, err = s.db.ExecContext(ctx, `UPDATE wecom_tag_marks SET error = $3, marked = marked + $4, attempts = attempts + 1, next_attempt_at = $5,
			lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`, m.id, s.owner, truncate(errorText(failure), 2000), marked, db.Millis(next))
	}
	if err != nil {
		return fmt.Errorf("wecom: unable to record the outcome of tag mark %d: %w", m.id, err)
	}
	return nil
}

// ProcessTagMarks reads the tag history of every connected workspace with
// bound tags into the mark queue and sends the marks that are due, in the
// caller's goroutine (tests, the demo). It returns how many marks it sent or
// settled.
func (s *Service) ProcessTagMarks(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT w.tenant_id FROM wecom_settings w
		WHERE EXISTS (SELECT 1 FROM tags t WHERE t.tenant_id = w.tenant_id AND t.wecom_tag_id IS NOT NULL) ORDER BY w.tenant_id`)
	if err != nil {
		return 0, fmt.Errorf("wecom: unable to list connected workspaces: %w", err)
	}
	var tenants []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("wecom: unable to list connected workspaces: %w", err)
		}
		tenants = append(tenants, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("wecom: unable to list connected workspaces: %w", err)
	}
	for _, id := range tenants {
		if _, err := s.pumpFeed(ctx, id); err != nil {
			return 0, err
		}
	}
	total := 0
	for ctx.Err() == nil {
		jobs, err := s.leaseMarks(ctx)
		if err != nil {
			return total, err
		}
		if len(jobs) == 0 {
			return total, nil
		}
		for i, m := range jobs {
			if ctx.Err() != nil {
				s.releaseMarks(jobs[i:])
				return total, ctx.Err()
			}
			marked, note, err := s.sendMark(ctx, m)
			if err != nil && ctx.Err() != nil {
				s.releaseMarks(jobs[i:])
				return total, ctx.Err()
			}
			if err := s.finishMark(ctx, m, marked, note, err); err != nil {
				return total, err
			}
			total++
		}
	}
	return total, ctx.Err()
}

func (s *Service) releaseMarks(jobs []markJob) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range jobs {
		if _, err := s.db.ExecContext(ctx, `UPDATE wecom_tag_marks SET lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`, m.id, s.owner); err != nil {
			s.log.Warn("wecom: unable to release a tag mark lease", "mark", m.id, "err", err)
			return
		}
	}
}

// runTagMarks sends marks until ctx is done: at once after a tag change on
// this node, and every Interval otherwise (changes on other nodes, retries).
func (s *Service) runTagMarks(ctx context.Context) {
	rt := s.syncRT()
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		if _, err := s.ProcessTagMarks(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("wecom: corp tag marks failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-rt.marks:
		}
	}
}

// TagMark is one queued corp tag change, for the console.
type TagMark struct {
	ID          int64     `json:"id"`
	CustomerID  int64     `json:"customer_id"`
	TagID       int64     `json:"tag_id"`
	WeComTagID  string    `json:"wecom_tag_id"`
	Action      string    `json:"action" enum:"add,remove"`
	Status      string    `json:"status" enum:"pending,done,failed,superseded"`
	Attempts    int       `json:"attempts"`
	Marked      int       `json:"marked" doc:"Staff relations marked in WeCom."`
	Error       string    `json:"error,omitempty"`
	Note        string    `json:"note,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	ProcessedAt time.Time `json:"processed_at,omitzero"`
}

// TagMarks lists a workspace's queued and recent corp tag marks, newest
// first (status "" for all).
func (s *Service) TagMarks(ctx context.Context, tenantID int64, status string, limit int) ([]TagMark, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	q := `SELECT id, customer_id, tag_id, wecom_tag_id, action, status, attempts, marked, error, note, created_at, processed_at
		FROM wecom_tag_marks WHERE tenant_id = $1`
	args := []any{tenantID}
	if status != "" {
		q += ` AND status = $2`
		args = append(args, status)
	}
	rows, err := s.db.QueryContext(ctx, q+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("wecom: unable to list tag marks: %w", err)
	}
	defer rows.Close()
	out := []TagMark{}
	for rows.Next() {
		var m TagMark
		var created, processed int64
		if err := rows.Scan(&m.ID, &m.CustomerID, &m.TagID, &m.WeComTagID, &m.Action, &m.Status, &m.Attempts, &m.Marked, &m.Error, &m.Note,
			&created, &processed); err != nil {
			return nil, fmt.Errorf("wecom: unable to read tag mark: %w", err)
		}
		m.CreatedAt, m.ProcessedAt = db.FromMillis(created), db.FromMillis(processed)
		out = append(out, m)
	}
	return out, rows.Err()
}
