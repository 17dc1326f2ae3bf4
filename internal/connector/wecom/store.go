package wecom

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// This file holds the writes that callbacks and the full sync share: a
// contact becomes a customer (One ID), a follow becomes a staff relation, a
// group snapshot or member change updates groups and members, and WeCom's
// corp tags update the Siyu tags bound to them. Each is idempotent and takes
// the time WeCom reported the state, so that replays and late events never
// overwrite newer state.

// Source is the Observation.Source of customers WeCom brings.
const Source = "wecom"

// tagSourceRef marks tag applications made from WeCom's corp tags, so that
// only those are taken away when WeCom's tags change.
const tagSourceRef = "wecom"

// principal acts for WeCom in other domains' audit logs and histories.
func principal(tenantID int64) tenant.Principal {
	return tenant.Principal{TenantID: tenantID, Kind: tenant.ActorSystem, Name: "WeCom", Role: tenant.RoleOwner}
}

// ContactObservation is what WeCom said about one external contact.
type ContactObservation struct {
	Contact ExternalContact
	// Fetched says Contact holds details read from the API; when false only
	// its ExternalUserID is known (a deletion callback, say).
	Fetched bool
	// At is when WeCom reported the contact: the callback's CreateTime, or
	// the time of the sync.
	At time.Time
	// State is the channel code state that brought the customer, if any.
	State string
	// MessageID identifies the callback or sync run, for merge records.
	MessageID string
}

func genderTrait(g int) string {
	switch g {
	case 1:
		return "male"
	case 2:
		return "female"
	}
	return ""
}

// UpsertContact resolves an external contact to its customer inside tx
// through One ID (its external_userid and, when known, its unionid, so the
// same person's mini-program account is the same customer), applies the
// contact's name, gender and avatar, and records WeCom's view of the contact.
// It returns the customer id.
func (s *Service) UpsertContact(ctx context.Context, tx *sql.Tx, tenantID int64, o ContactObservation) (int64, error) {
	c := o.Contact
	if c.ExternalUserID == "" {
		return 0, errs.E(errs.Invalid, "wecom_missing_external_userid", "the contact has no external_userid")
	}
	obs := customer.Observation{
		At:         o.At,
		Identities: []customer.Identity{{Kind: customer.KindWeComExtID, Value: c.ExternalUserID}},
		Source:     Source,
		SourceCode: o.State,
		MessageID:  o.MessageID,
	}
	if c.UnionID != "" {
		obs.Identities = append(obs.Identities, customer.Identity{Kind: customer.KindUnionID, Value: c.UnionID})
	}
	if o.Fetched {
		obs.Traits = map[string]any{}
		if c.Name != "" {
			obs.Traits["name"] = c.Name
		}
		if g := genderTrait(c.Gender); g != "" {
			obs.Traits["gender"] = g
		}
		if c.Avatar != "" {
			obs.Traits["avatar"] = c.Avatar
		}
	}
	cid, err := s.customers.Resolve(ctx, tx, tenantID, obs)
	if err != nil {
		return 0, fmt.Errorf("wecom: unable to resolve contact %s: %w", c.ExternalUserID, err)
	}
	now := db.Millis(s.now())
	if _, err := tx.ExecContext(ctx, `INSERT INTO wecom_contacts (tenant_id, external_userid, customer_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (tenant_id, external_userid) DO UPDATE SET customer_id = excluded.customer_id`,
		tenantID, c.ExternalUserID, cid, now); err != nil {
		return 0, fmt.Errorf("wecom: unable to store contact %s: %w", c.ExternalUserID, err)
	}
	if o.Fetched {
		at := db.Millis(o.At)
		if _, err := tx.ExecContext(ctx, `UPDATE wecom_contacts SET name = $3, avatar = $4, type = $5, gender = $6, unionid = $7, corp_name = $8,
			corp_full_name = $9, position = $10, fetched_at = $11, updated_at = $12
			WHERE tenant_id = $1 AND external_userid = $2 AND fetched_at <= $11`,
			tenantID, c.ExternalUserID, c.Name, c.Avatar, c.Type, c.Gender, c.UnionID, c.CorpName, c.CorpFullName, c.Position, at, now); err != nil {
			return 0, fmt.Errorf("wecom: unable to store contact %s: %w", c.ExternalUserID, err)
		}
	}
	return cid, nil
}

// customerOf returns the customer an external contact resolves to, creating
// it when the contact is new (WeCom told of a contact Siyu had not seen).
func (s *Service) customerOf(ctx context.Context, tx *sql.Tx, tenantID int64, externalUserID, unionID string, at time.Time, messageID string) (int64, error) {
	var cid int64
	err := tx.QueryRowContext(ctx, `SELECT customer_id FROM wecom_contacts WHERE tenant_id = $1 AND external_userid = $2`, tenantID, externalUserID).Scan(&cid)
	if err == nil && unionID == "" {
		return cid, nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("wecom: unable to look up contact %s: %w", externalUserID, err)
	}
	return s.UpsertContact(ctx, tx, tenantID, ContactObservation{
		Contact: ExternalContact{ExternalUserID: externalUserID, UnionID: unionID}, At: at, MessageID: messageID,
	})
}

// corpTagIDs returns the corp tag ids (and rule-group tag ids) among a
// follow's tags; personal tags have none.
func corpTagIDs(tags []FollowTag) []string {
	var out []string
	for _, t := range tags {
		if t.TagID != "" {
			out = append(out, t.TagID)
		}
	}
	return out
}

func unixTime(sec int64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// FollowDetails converts one follow_user entry of externalcontact/get into
// relation details as of at (when the API was read).
func FollowDetails(f FollowUser, at time.Time) staff.RelationDetails {
	return staff.RelationDetails{
		Remark: f.Remark, Description: f.Description, RemarkCorpName: f.RemarkCorpName, AddWay: f.AddWay, State: f.State,
		OperUserID: f.OperUserID, TagIDs: corpTagIDs(f.Tags), AddedAt: unixTime(f.CreateTime), At: at,
	}
}

// FollowInfoDetails converts the follow_info of batch/get_by_user into
// relation details as of at.
func FollowInfoDetails(f FollowInfo, at time.Time) staff.RelationDetails {
	return staff.RelationDetails{
		Remark: f.Remark, Description: f.Description, RemarkCorpName: f.RemarkCorpName, AddWay: f.AddWay, State: f.State,
		OperUserID: f.OperUserID, TagIDs: f.TagIDs, AddedAt: unixTime(f.CreateTime), At: at,
	}
}

// ApplyFollow records a staff member's relation with a customer inside tx:
// the staff member (created from the user id when the directory has not been
// read), status and details as RelationChange describes (StaffID is filled
// in from userID).
func (s *Service) ApplyFollow(ctx context.Context, tx *sql.Tx, tenantID int64, userID string, ch staff.RelationChange) (staff.RelationResult, error) {
	sid, err := s.staff.EnsureWeComMember(ctx, tx, tenantID, userID)
	if err != nil {
		return staff.RelationResult{}, err
	}
	ch.StaffID, ch.Channel = sid, staff.ChannelWeCom
	return s.staff.ApplyRelation(ctx, tx, tenantID, ch)
}

// Timeline kinds WeCom contributes to a customer's timeline.
const (
	TimelineAddContact     = "wecom.add_contact"      // a staff member and the customer became contacts
	TimelineAddHalfContact = "wecom.add_half_contact" // the customer added a staff member, who has not added them back
	TimelineEditContact    = "wecom.edit_contact"     // a staff member changed their remark, description or tags
	TimelineDelContact     = "wecom.del_contact"      // a staff member deleted the customer
	TimelineDelFollowUser  = "wecom.del_follow_user"  // the customer deleted a staff member (流失)
	TimelineTransfer       = "wecom.transfer"         // the customer was handed over to another staff member
	TimelineTransferFail   = "wecom.transfer_fail"    // a handover failed (customer refused, or the taker is full)
	TimelineJoinGroup      = "wecom.join_group"       // the customer joined a customer group
	TimelineLeaveGroup     = "wecom.leave_group"      // the customer left a group, was removed, or it was dismissed
)

// timelineEntry is one row of wecom_customer_events.
type timelineEntry struct {
	customerID int64
	kind       string
	at         time.Time
	staffUser  string
	chatID     string
	detail     map[string]any
	key        string // dedupe key: the same key is recorded once
	inboxID    int64
}

func (s *Service) addTimeline(ctx context.Context, tx *sql.Tx, tenantID int64, e timelineEntry) error {
	if e.customerID == 0 {
		return nil
	}
	if e.detail == nil {
		e.detail = map[string]any{}
	}
	d, err := json.Marshal(e.detail)
	if err != nil {
		return fmt.Errorf("wecom: unable to encode timeline detail: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO wecom_customer_events (tenant_id, customer_id, kind, at, staff_userid, chat_id, detail, dedupe_key, inbox_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (tenant_id, dedupe_key) DO NOTHING`,
		tenantID, e.customerID, e.kind, db.Millis(e.at), e.staffUser, e.chatID, string(d), e.key, e.inboxID)
	if err != nil {
		return fmt.Errorf("wecom: unable to record timeline entry: %w", err)
	}
	return nil
}

// MemberChange is one member who joined or left a customer group.
type MemberChange struct {
	MemberID   string
	Type       int   // MemberStaff or MemberExternal
	CustomerID int64 // for external members
	Joined     bool
	At         time.Time // when they joined (WeCom's join time) or left (when it was seen)
}

// groupState is the stored part of a group that change events check.
type groupState struct {
	exists  bool
	status  string
	version string
	eventAt int64
}

func loadGroup(ctx context.Context, q db.Querier, tenantID int64, chatID string) (groupState, error) {
	var g groupState
	err := q.QueryRowContext(ctx, `SELECT status, member_version, event_at FROM wecom_groups WHERE tenant_id = $1 AND chat_id = $2`, tenantID, chatID).
		Scan(&g.status, &g.version, &g.eventAt)
	if errors.Is(err, sql.ErrNoRows) {
		return g, nil
	}
	if err != nil {
		return g, fmt.Errorf("wecom: unable to read group %s: %w", chatID, err)
	}
	g.exists = true
	return g, nil
}

type memberRow struct {
	typ        int
	customerID int64
	status     string
}

func loadMembers(ctx context.Context, q db.Querier, tenantID int64, chatID string) (map[string]memberRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT member_id, member_type, coalesce(customer_id, 0), status FROM wecom_group_members WHERE tenant_id = $1 AND chat_id = $2`,
		tenantID, chatID)
	if err != nil {
		return nil, fmt.Errorf("wecom: unable to read members of group %s: %w", chatID, err)
	}
	defer rows.Close()
	out := map[string]memberRow{}
	for rows.Next() {
		var id string
		var m memberRow
		if err := rows.Scan(&id, &m.typ, &m.customerID, &m.status); err != nil {
			return nil, fmt.Errorf("wecom: unable to read group member: %w", err)
		}
		out[id] = m
	}
	return out, rows.Err()
}

// StoreGroup applies a full groupchat/get answer inside tx, read at at:
// the group's name, owner, notice and member version, members who are in it,
// and members no longer in it marked as having left. Customers who joined or
// left get timeline entries keyed by messageID (the callback or sync run).
// It returns who joined and who left.
func (s *Service) StoreGroup(ctx context.Context, tx *sql.Tx, tenantID int64, g GroupChat, at time.Time, messageID string, inboxID int64) ([]MemberChange, error) {
	if g.ChatID == "" {
		return nil, errs.E(errs.Invalid, "wecom_missing_chat_id", "the group has no chat_id")
	}
	now, atMs := db.Millis(s.now()), db.Millis(at)
	_, err := tx.ExecContext(ctx, `INSERT INTO wecom_groups (tenant_id, chat_id, name, owner_userid, notice, status, member_version, member_count,
		created_time, event_at, synced_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $9, $9, $10, $10)
		ON CONFLICT (tenant_id, chat_id) DO UPDATE SET name = excluded.name, owner_userid = excluded.owner_userid, notice = excluded.notice,
		status = 'active', dismissed_at = 0, member_version = excluded.member_version, member_count = excluded.member_count,
		created_time = excluded.created_time, event_at = excluded.event_at, synced_at = excluded.synced_at, updated_at = excluded.updated_at`,
		tenantID, g.ChatID, g.Name, g.Owner, g.Notice, g.MemberVersion, len(g.Members), db.Millis(unixTime(g.CreateTime)), atMs, now)
	if err != nil {
		return nil, fmt.Errorf("wecom: unable to store group %s: %w", g.ChatID, err)
	}
	old, err := loadMembers(ctx, tx, tenantID, g.ChatID)
	if err != nil {
		return nil, err
	}
	var changes []MemberChange
	present := map[string]bool{}
	for _, m := range g.Members {
		if m.UserID == "" || present[m.UserID] {
			continue
		}
		present[m.UserID] = true
		prev, known := old[m.UserID]
		var cid int64
		if m.Type == MemberExternal {
			if known && prev.customerID != 0 && m.UnionID == "" {
				cid = prev.customerID
			} else if cid, err = s.customerOf(ctx, tx, tenantID, m.UserID, m.UnionID, at, messageID); err != nil {
				return nil, err
			}
		}
		invitor := ""
		if m.Invitor != nil {
			invitor = m.Invitor.UserID
		}
		if err := upsertMember(ctx, tx, tenantID, g.ChatID, memberUpsert{
			id: m.UserID, typ: m.Type, customerID: cid, unionID: m.UnionID, name: m.Name, nickname: m.GroupNickname, invitor: invitor,
			joinTime: db.Millis(unixTime(m.JoinTime)), joinScene: m.JoinScene, eventAt: atMs,
		}); err != nil {
			return nil, err
		}
		if !known || prev.status != "in" {
			joined := unixTime(m.JoinTime)
			if joined.IsZero() {
				joined = at
			}
			changes = append(changes, MemberChange{MemberID: m.UserID, Type: m.Type, CustomerID: cid, Joined: true, At: joined})
		}
	}
	for id, prev := range old {
		if present[id] || prev.status != "in" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE wecom_group_members SET status = 'left', left_at = $4, quit_scene = -1, event_at = $4
			WHERE tenant_id = $1 AND chat_id = $2 AND member_id = $3`, tenantID, g.ChatID, id, atMs); err != nil {
			return nil, fmt.Errorf("wecom: unable to mark member %s as left: %w", id, err)
		}
		changes = append(changes, MemberChange{MemberID: id, Type: prev.typ, CustomerID: prev.customerID, At: at})
	}
	slices.SortFunc(changes, func(a, b MemberChange) int { return cmp.Compare(a.MemberID, b.MemberID) })
	for _, c := range changes {
		if err := s.memberTimeline(ctx, tx, tenantID, g.ChatID, g.Name, c, messageID, inboxID, nil); err != nil {
			return nil, err
		}
	}
	return changes, nil
}

type memberUpsert struct {
	id                               string
	typ                              int
	customerID                       int64
	unionID, name, nickname, invitor string
	joinTime                         int64
	joinScene                        int
	eventAt                          int64
}

func upsertMember(ctx context.Context, tx *sql.Tx, tenantID int64, chatID string, m memberUpsert) error {
	var cid any
	if m.customerID != 0 {
		cid = m.customerID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO wecom_group_members (tenant_id, chat_id, member_id, member_type, customer_id, unionid, name, group_nickname,
		invitor_userid, status, join_time, join_scene, left_at, quit_scene, event_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'in', $10, $11, 0, 0, $12)
		ON CONFLICT (tenant_id, chat_id, member_id) DO UPDATE SET member_type = excluded.member_type,
		customer_id = coalesce(excluded.customer_id, wecom_group_members.customer_id),
		unionid = CASE WHEN excluded.unionid = '' THEN wecom_group_members.unionid ELSE excluded.unionid END,
		name = CASE WHEN excluded.name = '' THEN wecom_group_members.name ELSE excluded.name END,
		group_nickname = excluded.group_nickname,
		invitor_userid = CASE WHEN excluded.invitor_userid = '' THEN wecom_group_members.invitor_userid ELSE excluded.invitor_userid END,
		status = 'in', join_time = excluded.join_time, join_scene = excluded.join_scene, left_at = 0, quit_scene = 0, event_at = excluded.event_at`,
		tenantID, chatID, m.id, m.typ, cid, m.unionID, m.name, m.nickname, m.invitor, m.joinTime, m.joinScene, m.eventAt)
	if err != nil {
		return fmt.Errorf("wecom: unable to store member %s of group %s: %w", m.id, chatID, err)
	}
	return nil
}

// memberTimeline records a customer's join or leave on their timeline.
func (s *Service) memberTimeline(ctx context.Context, tx *sql.Tx, tenantID int64, chatID, name string, c MemberChange,
	messageID string, inboxID int64, extra map[string]any) error {
	if c.CustomerID == 0 || messageID == "" {
		return nil
	}
	kind := TimelineLeaveGroup
	if c.Joined {
		kind = TimelineJoinGroup
	}
	d := map[string]any{"chat_id": chatID, "external_userid": c.MemberID}
	if name != "" {
		d["group_name"] = name
	}
	for k, v := range extra {
		d[k] = v
	}
	return s.addTimeline(ctx, tx, tenantID, timelineEntry{
		customerID: c.CustomerID, kind: kind, at: c.At, chatID: chatID, detail: d,
		key: messageID + "|" + kind + "|" + chatID + "|" + c.MemberID, inboxID: inboxID,
	})
}

// groupName returns a stored group's name, for timeline entries.
func groupName(ctx context.Context, q db.Querier, tenantID int64, chatID string) string {
	var n string
	_ = q.QueryRowContext(ctx, `SELECT name FROM wecom_groups WHERE tenant_id = $1 AND chat_id = $2`, tenantID, chatID).Scan(&n)
	return n
}

// DismissGroup marks a group dismissed at at inside tx; its members are
// marked as having left (with quit scene -2) and customers get a timeline
// entry.
func (s *Service) DismissGroup(ctx context.Context, tx *sql.Tx, tenantID int64, chatID string, at time.Time, messageID string, inboxID int64) error {
	st, err := loadGroup(ctx, tx, tenantID, chatID)
	if err != nil || st.status == "dismissed" {
		return err
	}
	now, atMs := db.Millis(s.now()), db.Millis(at)
	if _, err := tx.ExecContext(ctx, `INSERT INTO wecom_groups (tenant_id, chat_id, status, dismissed_at, event_at, created_at, updated_at)
		VALUES ($1, $2, 'dismissed', $3, $3, $4, $4)
		ON CONFLICT (tenant_id, chat_id) DO UPDATE SET status = 'dismissed', dismissed_at = excluded.dismissed_at, event_at = excluded.event_at,
		member_count = 0, updated_at = excluded.updated_at`, tenantID, chatID, atMs, now); err != nil {
		return fmt.Errorf("wecom: unable to dismiss group %s: %w", chatID, err)
	}
	members, err := loadMembers(ctx, tx, tenantID, chatID)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE wecom_group_members SET status = 'left', left_at = $3, quit_scene = -2, event_at = $3
		WHERE tenant_id = $1 AND chat_id = $2 AND status = 'in'`, tenantID, chatID, atMs); err != nil {
		return fmt.Errorf("wecom: unable to empty group %s: %w", chatID, err)
	}
	name := groupName(ctx, tx, tenantID, chatID)
	for id, m := range members {
		if m.status != "in" {
			continue
		}
		c := MemberChange{MemberID: id, Type: m.typ, CustomerID: m.customerID, At: at}
		if err := s.memberTimeline(ctx, tx, tenantID, chatID, name, c, messageID, inboxID, map[string]any{"reason": "dismissed"}); err != nil {
			return err
		}
	}
	return nil
}

// ApplyCorpTags updates Siyu's copy of WeCom's corp tags from a
// get_corp_tag_list answer, and the Siyu tags and groups bound to them:
// renamed and reordered as in WeCom, tags created in a bound WeCom group
// created (and bound) in its Siyu group, and with full (the answer lists
// every tag) tags deleted in WeCom deleted in Siyu and bound groups deleted
// in WeCom unbound. Unbound Siyu tags are left alone.
func (s *Service) ApplyCorpTags(ctx context.Context, tenantID int64, groups []CorpTagGroup, full bool) error {
	now := db.Millis(s.now())
	seen := map[string]bool{}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		up := func(id, kind, group, name string, order, created int64) error {
			seen[id] = true
			_, err := tx.ExecContext(ctx, `INSERT INTO wecom_corp_tags (tenant_id, id, kind, group_id, name, sort_order, created_time, synced_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, id) DO UPDATE SET kind = excluded.kind, group_id = excluded.group_id,
				name = excluded.name, sort_order = excluded.sort_order, created_time = excluded.created_time, synced_at = excluded.synced_at`,
				tenantID, id, kind, group, name, order, db.Millis(unixTime(created)), now)
			if err != nil {
				return fmt.Errorf("wecom: unable to store corp tag %s: %w", id, err)
			}
			return nil
		}
		for _, g := range groups {
			if g.Deleted {
				continue
			}
			if err := up(g.GroupID, "group", "", g.GroupName, g.Order, g.CreateTime); err != nil {
				return err
			}
			for _, t := range g.Tags {
				if t.Deleted {
					continue
				}
				if err := up(t.ID, "tag", g.GroupID, t.Name, t.Order, t.CreateTime); err != nil {
					return err
				}
			}
		}
		if !full {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM wecom_corp_tags WHERE tenant_id = $1`, tenantID)
		if err != nil {
			return fmt.Errorf("wecom: unable to list corp tags: %w", err)
		}
		var gone []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("wecom: unable to list corp tags: %w", err)
			}
			if !seen[id] {
				gone = append(gone, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("wecom: unable to list corp tags: %w", err)
		}
		for _, id := range gone {
			if _, err := tx.ExecContext(ctx, `DELETE FROM wecom_corp_tags WHERE tenant_id = $1 AND id = $2`, tenantID, id); err != nil {
				return fmt.Errorf("wecom: unable to delete corp tag %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.updateBoundTags(ctx, tenantID, groups, full)
}

// updateBoundTags brings the Siyu tags and groups bound to WeCom in line with
// WeCom's list. Each change goes through the tag service (audited, with
// customers' histories), as done by WeCom.
func (s *Service) updateBoundTags(ctx context.Context, tenantID int64, groups []CorpTagGroup, full bool) error {
	p := principal(tenantID)
	wgroups := map[string]CorpTagGroup{}
	wtags := map[string]CorpTag{}
	for _, g := range groups {
		if g.Deleted {
			continue
		}
		wgroups[g.GroupID] = g
		for _, t := range g.Tags {
			if !t.Deleted {
				wtags[t.ID] = t
			}
		}
	}
	sgroups, err := s.tags.Groups(ctx, tenantID)
	if err != nil {
		return err
	}
	stags, err := s.tags.AllTags(ctx, tenantID)
	if err != nil {
		return err
	}
	byWeCom := map[string]tag.Tag{}
	var newlyBound []string // WeCom tag ids bound to a Siyu tag by this call
	for _, t := range stags {
		if t.WeComTagID != "" {
			byWeCom[t.WeComTagID] = t
		}
	}
	// Tags bound to a WeCom tag: renamed, or deleted with it.
	for wid, t := range byWeCom {
		wt, ok := wtags[wid]
		switch {
		case ok && wt.Name != t.Name:
			if _, err := s.tags.UpdateTag(ctx, p, t.ID, tag.TagUpdate{Name: &wt.Name}); err != nil {
				if errs.KindOf(err) == errs.Internal {
					return err
				}
				s.log.WarnContext(ctx, "wecom: a bound tag could not be renamed as in WeCom", "tenant", tenantID, "tag", t.ID, "name", wt.Name, "err", err)
			}
		case !ok && full:
			// Unbound first: the removals DeleteTag records are WeCom's own,
			// not marks to send back to WeCom.
			if err := s.tags.BindWeComTag(ctx, p, t.ID, ""); err != nil && !errs.Is(err, errs.NotFound) {
				return err
			}
			if err := s.tags.DeleteTag(ctx, p, t.ID); err != nil && !errs.Is(err, errs.NotFound) {
				return err
			}
			delete(byWeCom, wid)
		}
	}
	for _, sg := range sgroups {
		if sg.WeComGroupID == "" {
			continue
		}
		wg, ok := wgroups[sg.WeComGroupID]
		if !ok {
			if full {
				if err := s.tags.BindWeComGroup(ctx, p, sg.ID, ""); err != nil && !errs.Is(err, errs.NotFound) {
					return err
				}
			}
			continue
		}
		if wg.GroupName != sg.Name {
			if _, err := s.tags.UpdateGroup(ctx, p, sg.ID, tag.GroupUpdate{Name: &wg.GroupName}); err != nil {
				if errs.KindOf(err) == errs.Internal {
					return err
				}
				s.log.WarnContext(ctx, "wecom: a bound tag group could not be renamed as in WeCom", "tenant", tenantID, "group", sg.ID, "err", err)
			}
		}
		// WeCom sorts by order descending; Siyu by sort_order ascending.
		wts := slices.Clone(wg.Tags)
		slices.SortStableFunc(wts, func(a, b CorpTag) int { return cmp.Compare(b.Order, a.Order) })
		pos := 0
		for _, wt := range wts {
			if wt.Deleted {
				continue
			}
			order := pos
			pos++
			t, bound := byWeCom[wt.ID]
			if !bound {
				// The same name unbound in the group is the same tag.
				if i := slices.IndexFunc(stags, func(x tag.Tag) bool { return x.GroupID == sg.ID && x.Name == wt.Name && x.WeComTagID == "" }); i >= 0 {
					t = stags[i]
				} else {
					created, err := s.tags.CreateTag(ctx, p, tag.TagInput{GroupID: sg.ID, Name: wt.Name, SortOrder: &order})
					if err != nil {
						if errs.KindOf(err) == errs.Internal {
							return err
						}
						s.log.WarnContext(ctx, "wecom: a WeCom tag could not be created in its bound group", "tenant", tenantID, "wecom_tag", wt.ID, "err", err)
						continue
					}
					t = created
				}
				if err := s.tags.BindWeComTag(ctx, p, t.ID, wt.ID); err != nil {
					return err
				}
				byWeCom[wt.ID] = t
				newlyBound = append(newlyBound, wt.ID)
			}
			if t.GroupID == sg.ID && t.SortOrder != order {
				if _, err := s.tags.UpdateTag(ctx, p, t.ID, tag.TagUpdate{SortOrder: &order}); err != nil && errs.KindOf(err) == errs.Internal {
					return err
				}
			}
		}
	}
	// Marks of a tag may have arrived before the tag itself (callbacks come
	// in any order): the customers whose relations carry a newly bound tag
	// get its Siyu tag now, not at the next reconciliation.
	for _, wid := range newlyBound {
		ids, err := s.staff.CustomersWithChannelTag(ctx, tenantID, staff.ChannelWeCom, wid)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := s.SyncCustomerTags(ctx, tenantID, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// SyncCustomerTags gives a customer the Siyu tags bound to the corp tags
// their current staff relations carry, and takes away those WeCom applied
// that no relation carries any more. Tags applied in Siyu are never taken
// away here.
func (s *Service) SyncCustomerTags(ctx context.Context, tenantID, customerID int64) error {
	rels, err := s.staff.CustomerRelations(ctx, tenantID, customerID)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, r := range rels {
		if r.Channel != staff.ChannelWeCom || !r.Status.Current() {
			continue
		}
		for _, id := range r.ChannelTagIDs {
			want[id] = true
		}
	}
	all, err := s.tags.AllTags(ctx, tenantID)
	if err != nil {
		return err
	}
	bound := map[int64]bool{}
	desired := map[int64]bool{}
	for _, t := range all {
		if t.WeComTagID == "" {
			continue
		}
		bound[t.ID] = true
		if want[t.WeComTagID] {
			desired[t.ID] = true
		}
	}
	have, err := s.tags.TagsOf(ctx, tenantID, customerID)
	if err != nil {
		return err
	}
	held := map[int64]bool{}
	var add, remove []int64
	for _, a := range have {
		held[a.TagID] = true
		if bound[a.TagID] && !desired[a.TagID] && a.Source == tag.SourceSync && a.SourceRef == tagSourceRef {
			remove = append(remove, a.TagID)
		}
	}
	for id := range desired {
		if !held[id] {
			add = append(add, id)
		}
	}
	slices.Sort(add)
	slices.Sort(remove)
	app := tag.Application{Source: tag.SourceSync, SourceRef: tagSourceRef, AppliedBy: "WeCom"}
	for len(add)+len(remove) > 0 {
		a := add[:min(len(add), tag.MaxTagsPerChange)]
		r := remove[:min(len(remove), tag.MaxTagsPerChange-len(a))]
		add, remove = add[len(a):], remove[len(r):]
		if _, err := s.tags.Update(ctx, tenantID, customerID, a, r, app); err != nil {
			return fmt.Errorf("wecom: unable to update the tags of customer %d: %w", customerID, err)
		}
	}
	return nil
}

// MoveCustomer moves WeCom's rows from a merged customer to the survivor; it
// is the customer service's merge hook for the connector.
func (s *Service) MoveCustomer(ctx context.Context, tx *sql.Tx, tenantID, fromID, toID int64) error {
	for _, q := range []string{
		`UPDATE wecom_contacts SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2`,
		`UPDATE wecom_group_members SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2`,
		`UPDATE wecom_customer_events SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2`,
	} {
		if _, err := tx.ExecContext(ctx, q, tenantID, fromID, toID); err != nil {
			return fmt.Errorf("wecom: unable to move customer %d to %d: %w", fromID, toID, err)
		}
	}
	return nil
}

var _ customer.TimelineSource = (*Service)(nil)

// TimelineEntries returns up to limit WeCom entries of a customer at or
// before the given time (zero: now), newest first: contacts added and
// deleted, handovers, groups joined and left. It makes the service a
// customer.TimelineSource.
func (s *Service) TimelineEntries(ctx context.Context, tenantID, customerID int64, before time.Time, limit int) ([]customer.TimelineEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	bound := int64(1<<63 - 1)
	if !before.IsZero() {
		bound = db.Millis(before)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, at, staff_userid, chat_id, detail FROM wecom_customer_events
		WHERE tenant_id = $1 AND customer_id = $2 AND at <= $3`+fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT %d`, limit), tenantID, customerID, bound)
	if err != nil {
		return nil, fmt.Errorf("wecom: unable to read the timeline: %w", err)
	}
	defer rows.Close()
	type row struct {
		id, at                int64
		kind, user, chat, doc string
	}
	var rs []row
	var users []string
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.kind, &r.at, &r.user, &r.chat, &r.doc); err != nil {
			return nil, fmt.Errorf("wecom: unable to read the timeline: %w", err)
		}
		rs = append(rs, r)
		if r.user != "" {
			users = append(users, r.user)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("wecom: unable to read the timeline: %w", err)
	}
	rows.Close()
	names, err := s.staff.NamesByWeComUserID(ctx, tenantID, users)
	if err != nil {
		return nil, err
	}
	out := make([]customer.TimelineEntry, 0, len(rs))
	for _, r := range rs {
		d := map[string]any{}
		_ = json.Unmarshal([]byte(r.doc), &d) // written by addTimeline as a JSON object
		who := names[r.user]
		if who == "" {
			who = r.user
		}
		if who != "" {
			d["staff_name"] = who
		}
		out = append(out, customer.TimelineEntry{
			At: db.FromMillis(r.at), Kind: r.kind, ID: fmt.Sprint(r.id), Title: timelineTitle(r.kind, who, d), Detail: d,
		})
	}
	return out, nil
}

// timelineTitle says what happened in one line.
func timelineTitle(kind, who string, d map[string]any) string {
	str := func(k string) string { v, _ := d[k].(string); return v }
	group := str("group_name")
	if group == "" {
		group = str("chat_id")
	}
	switch kind {
	case TimelineAddContact:
		if st := str("state"); st != "" {
			return fmt.Sprintf("became a WeCom contact of %s (channel code %s)", who, st)
		}
		return "became a WeCom contact of " + who
	case TimelineAddHalfContact:
		return fmt.Sprintf("added %s on WeCom (not yet added back)", who)
	case TimelineEditContact:
		return who + " updated their notes on WeCom"
	case TimelineDelContact:
		return "deleted by " + who + " on WeCom"
	case TimelineDelFollowUser:
		return "deleted " + who + " on WeCom"
	case TimelineTransfer:
		return "handed over from " + who + " to another staff member on WeCom"
	case TimelineTransferFail:
		return fmt.Sprintf("handover to %s failed: %s", who, str("reason"))
	case TimelineJoinGroup:
		return "joined the WeCom group " + group
	case TimelineLeaveGroup:
		switch str("reason") {
		case "removed":
			return "was removed from the WeCom group " + group
		case "dismissed":
			return "the WeCom group " + group + " was dismissed"
		}
		return "left the WeCom group " + group
	}
	return kind
}
