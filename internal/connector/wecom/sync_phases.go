package wecom

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
)

// The phases of a sync run. Reads from WeCom happen outside transactions, so
// a slow or throttled API never holds the database; what a read returned is
// applied in one transaction with the position that follows it.

// relationChunk is how many relations the sweeps over Siyu's relations read at once.
const relationChunk = 1000

// syncStaff reads the directory (departments, then the members of every
// top department with its sub-departments) and the members with the
// customer-contact permission, updates staff, and marks resigned the staff
// members WeCom no longer has. Without permission to read the directory
// (apps created since mid-2022 may not), members come from the follow list
// only and nobody is resigned.
func (j *syncJob) syncStaff(ctx context.Context) error {
	s := j.s
	c, err := j.client(ctx)
	if err != nil {
		return err
	}
	directory := true
	depts, err := c.DepartmentList(ctx, 0)
	j.called("department/list")
	if IsCode(err, CodeForbidden, CodeNoPrivilege) {
		directory = false
	} else if err != nil {
		return err
	}
	in := map[int64]bool{}
	for _, d := range depts {
		in[d.ID] = true
	}
	users := map[string]User{}
	for _, d := range depts {
		if in[d.ParentID] {
			continue // listed with its top department
		}
		list, err := c.UserList(ctx, d.ID, true)
		j.called("user/list")
		if IsCode(err, CodeForbidden, CodeNoPrivilege) {
			directory = false
			break
		}
		if err != nil {
			return err
		}
		for _, u := range list {
			users[u.UserID] = u
		}
	}
	follow, err := c.FollowUserList(ctx)
	j.called("externalcontact/get_follow_user_list")
	if err != nil {
		return err
	}
	slices.Sort(follow)
	follow = slices.Compact(follow)
	var known []staff.Member
	for r := (page.Request{Limit: page.MaxLimit}); ; {
		p, err := s.staff.Members(ctx, j.row.tenantID, r)
		if err != nil {
			return err
		}
		known = append(known, p.Items...)
		if p.Next == "" {
			break
		}
		r.Cursor = p.Next
	}
	at := s.now()
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range users {
			if !yield(id) {
				return
			}
		}
	})
	resigned := 0
	j.row.Counts.Departments, j.row.Counts.Staff, j.row.Counts.FollowUsers = len(depts), len(users), len(follow)
	j.row.PhaseTotal = int64(len(users) + len(follow))
	return j.commit(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			u := users[id]
			m := staff.WeComMember{UserID: u.UserID, Name: u.Name, Title: u.Position, At: at}
			switch u.Status {
			case UserActive:
				m.Status = staff.Active
			case UserLeftTheCorp:
				m.Status = staff.Resigned
			}
			if _, err := s.staff.ApplyWeComMember(ctx, tx, j.row.tenantID, m); err != nil {
				return err
			}
		}
		for _, id := range follow {
			if _, ok := users[id]; ok {
				continue
			}
			if _, err := s.staff.ApplyWeComMember(ctx, tx, j.row.tenantID, staff.WeComMember{UserID: id, Status: staff.Active, At: at}); err != nil {
				return err
			}
		}
		if directory {
			for _, m := range known {
				if m.WeComUserID == "" || m.Status != staff.Active {
					continue
				}
				if _, ok := users[m.WeComUserID]; ok || slices.Contains(follow, m.WeComUserID) {
					continue
				}
				if _, err := s.staff.ApplyWeComMember(ctx, tx, j.row.tenantID, staff.WeComMember{UserID: m.WeComUserID, Status: staff.Resigned, At: at}); err != nil {
					return err
				}
				resigned++
			}
		}
		j.row.Counts.StaffResigned = resigned
		j.row.PhaseDone = j.row.PhaseTotal
		j.row.state.FollowUsers = follow
		return nil
	})
}

// syncCorpTags reads every corp tag and applies the list as complete: Siyu
// groups bound to WeCom follow renames, new and deleted tags.
func (j *syncJob) syncCorpTags(ctx context.Context) error {
	c, err := j.client(ctx)
	if err != nil {
		return err
	}
	groups, err := c.GetCorpTagList(ctx, nil, nil)
	j.called("externalcontact/get_corp_tag_list")
	if err != nil {
		return err
	}
	// Tags added to bound Siyu groups since the last sync go to WeCom first.
	pushed, err := j.s.pushNewBoundTags(ctx, j.row.tenantID, c, groups)
	if err != nil {
		return err
	}
	if pushed > 0 {
		j.row.Counts.Calls["externalcontact/add_corp_tag"] += pushed
		if groups, err = c.GetCorpTagList(ctx, nil, nil); err != nil {
			return err
		}
		j.called("externalcontact/get_corp_tag_list")
	}
	if err := j.s.ApplyCorpTags(ctx, j.row.tenantID, groups, true); err != nil {
		return err
	}
	j.row.Counts.CorpTagGroups, j.row.Counts.CorpTags = 0, 0
	for _, g := range groups {
		if !g.Deleted {
			j.row.Counts.CorpTagGroups++
			j.row.Counts.CorpTags += len(g.Tags)
		}
	}
	j.row.PhaseDone, j.row.PhaseTotal = 1, 1
	return j.save(ctx, j.s.db)
}

// followUsers returns the members whose customers the run reads, fetched
// when the staff phase did not run (a tags run, an old position).
func (j *syncJob) followUsers(ctx context.Context) ([]string, error) {
	if j.row.state.FollowUsers != nil {
		return j.row.state.FollowUsers, nil
	}
	c, err := j.client(ctx)
	if err != nil {
		return nil, err
	}
	follow, err := c.FollowUserList(ctx)
	j.called("externalcontact/get_follow_user_list")
	if err != nil {
		return nil, err
	}
	slices.Sort(follow)
	j.row.state.FollowUsers = slices.Compact(follow)
	if j.row.state.FollowUsers == nil {
		j.row.state.FollowUsers = []string{}
	}
	return j.row.state.FollowUsers, nil
}

// syncContacts reads the customers of every member with the customer-contact
// permission through batch/get_by_user, up to 100 members per request and
// always with limit 100 (left out, WeCom answers 50 a page, which looks like
// a complete list), following next_cursor to the end of each batch. Each page
// becomes customers (One ID: external_userid and unionid), the staff
// relations with what each member recorded, and the run's position, in one
// transaction.
func (j *syncJob) syncContacts(ctx context.Context) error {
	s := j.s
	follow, err := j.followUsers(ctx)
	if err != nil {
		return err
	}
	c, err := j.client(ctx)
	if err != nil {
		return err
	}
	j.row.PhaseTotal = int64(len(follow))
	for j.row.state.Batch*MaxUsersPerBatch < len(follow) {
		if err := ctx.Err(); err != nil {
			return err
		}
		from := j.row.state.Batch * MaxUsersPerBatch
		batch := follow[from:min(from+MaxUsersPerBatch, len(follow))]
		pg, err := c.BatchGetByUser(ctx, batch, j.row.state.Cursor, MaxContactsPerPage)
		j.called("externalcontact/batch/get_by_user")
		j.row.Counts.MaxContactLimit = max(j.row.Counts.MaxContactLimit, MaxContactsPerPage)
		if IsCode(err, CodeInvalidCursor) && j.row.state.Cursor != "" {
			// The cursor expired while the run was stopped: read the batch
			// again from its start; applying a page twice changes nothing.
			s.log.InfoContext(ctx, "wecom: sync cursor expired; reading the batch again", "tenant", j.row.tenantID, "run", j.row.ID, "batch", j.row.state.Batch)
			j.row.state.Cursor = ""
			continue
		}
		if err != nil {
			return err
		}
		readAt := s.now()
		if err := j.commit(ctx, func(tx *sql.Tx) error {
			if err := j.applyContactPage(ctx, tx, pg.Contacts, readAt); err != nil {
				return err
			}
			if pg.NextCursor == "" {
				j.row.state.Batch++
				j.row.state.Cursor = ""
				j.row.PhaseDone = int64(min(from+len(batch), len(follow)))
			} else {
				j.row.state.Cursor = pg.NextCursor
				if n := len(pg.Contacts); n > 0 {
					// Pages go through the batch member by member.
					if i := slices.Index(batch, pg.Contacts[n-1].FollowInfo.UserID); i >= 0 {
						j.row.PhaseDone = int64(from + i)
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// applyContactPage applies one page of batch/get_by_user inside tx.
func (j *syncJob) applyContactPage(ctx context.Context, tx *sql.Tx, page []ContactFollow, readAt time.Time) error {
	s := j.s
	tenantID := j.row.tenantID
	// A customer followed by several members of the page is resolved once,
	// as first seen at the earliest add.
	first := map[string]time.Time{}
	state := map[string]string{}
	for _, p := range page {
		id := p.ExternalContact.ExternalUserID
		if id == "" {
			continue
		}
		at := unixTime(p.FollowInfo.CreateTime)
		if at.IsZero() {
			at = readAt
		}
		if f, ok := first[id]; !ok || at.Before(f) {
			first[id] = at
			state[id] = p.FollowInfo.State
		}
	}
	customers := map[string]int64{}
	var seen []string
	for _, p := range page {
		ct := p.ExternalContact
		f := p.FollowInfo
		if ct.ExternalUserID == "" || f.UserID == "" {
			continue
		}
		cid, ok := customers[ct.ExternalUserID]
		if !ok {
			var err error
			cid, err = s.UpsertContact(ctx, tx, tenantID, ContactObservation{Contact: ct, Fetched: true, At: first[ct.ExternalUserID],
				State: state[ct.ExternalUserID], MessageID: j.messageID()})
			if err != nil {
				return err
			}
			customers[ct.ExternalUserID] = cid
		}
		d := FollowInfoDetails(f, readAt)
		added := unixTime(f.CreateTime)
		if added.IsZero() {
			added = readAt
		}
		res, err := s.ApplyFollow(ctx, tx, tenantID, f.UserID, staff.RelationChange{CustomerID: cid,
			RelationKey: staff.RelationKey{ExternalID: ct.ExternalUserID}, Status: staff.RelationActive, At: added, State: f.State, Details: &d})
		if err != nil {
			return err
		}
		j.row.Counts.Contacts++
		if res.Created || (res.StatusChanged && !res.Before.Current()) {
			j.row.Counts.NewRelations++
			detail := map[string]any{"external_userid": ct.ExternalUserID, "staff_userid": f.UserID, "add_way": f.AddWay, "found_by": "sync"}
			if f.State != "" {
				detail["state"] = f.State
			}
			if err := s.addTimeline(ctx, tx, tenantID, timelineEntry{customerID: cid, kind: TimelineAddContact, at: added, staffUser: f.UserID,
				detail: detail, key: fmt.Sprintf("sync|add|%s|%s|%d", f.UserID, ct.ExternalUserID, f.CreateTime)}); err != nil {
				return err
			}
		}
		seen = append(seen, ct.ExternalUserID, f.UserID)
	}
	return j.markSeen(ctx, tx, seen)
}

// markSeen records (external_userid, userid) pairs the run read.
func (j *syncJob) markSeen(ctx context.Context, tx *sql.Tx, pairs []string) error {
	for len(pairs) > 0 {
		n := min(len(pairs), 2*100) // 100 rows: SQLite looks each distinct $N up in a list
		args := []any{j.row.tenantID, j.row.ID}
		var b strings.Builder
		for i := 0; i < n; i += 2 {
			if i > 0 {
				b.WriteString(", ")
			}
			args = append(args, pairs[i], pairs[i+1])
			fmt.Fprintf(&b, "($1, $2, $%d, $%d)", len(args)-1, len(args))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO wecom_sync_seen (tenant_id, run_id, external_userid, staff_userid) VALUES `+b.String()+`
			ON CONFLICT (tenant_id, run_id, external_userid, staff_userid) DO NOTHING`, args...); err != nil {
			return fmt.Errorf("wecom: unable to record the contacts read: %w", err)
		}
		pairs = pairs[n:]
	}
	return nil
}

// wholeCustomers cuts a full chunk of relations after its last complete
// customer, so that a customer's relations are never split between chunks.
// more reports whether relations may follow.
func wholeCustomers(rels []staff.Relation, limit int) (out []staff.Relation, more bool) {
	if len(rels) < limit {
		return rels, false
	}
	last := rels[len(rels)-1].CustomerID
	i := len(rels)
	for i > 0 && rels[i-1].CustomerID == last {
		i--
	}
	if i == 0 {
		return rels, true // one customer fills the chunk
	}
	return rels[:i], true
}

// relationsAfter reads the next chunk of whole customers' relations and
// reports whether more may follow.
func (j *syncJob) relationsAfter(ctx context.Context, after int64) ([]staff.Relation, bool, error) {
	for limit := relationChunk; ; limit *= 4 {
		rels, err := j.s.staff.RelationsAfter(ctx, j.row.tenantID, staff.ChannelWeCom, after, limit)
		if err != nil {
			return nil, false, err
		}
		out, more := wholeCustomers(rels, limit)
		if !more || len(out) < len(rels) {
			return out, more, nil
		}
		// One customer fills the chunk: read a larger one.
	}
}

// endContacts ends the current relations of the members whose customers
// were read that WeCom did not list: the customer or the member deleted the
// other while Siyu missed the callback. The members' other relations, and
// those of members who left (their customers await inheritance), are left
// alone. An ended relation is recorded as of the run's start, so an add
// WeCom reported after it (a callback during the run) is never undone.
func (j *syncJob) endContacts(ctx context.Context) error {
	s := j.s
	follow, err := j.followUsers(ctx)
	if err != nil {
		return err
	}
	members := map[string]bool{}
	for _, id := range follow {
		members[id] = true
	}
	at := j.row.StartedAt
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rels, more, err := j.relationsAfter(ctx, j.row.state.AfterCustomer)
		if err != nil {
			return err
		}
		var candidates []staff.Relation
		var ext []string
		for _, r := range rels {
			if r.Status.Current() && members[r.StaffWeComUserID] {
				candidates = append(candidates, r)
				ext = append(ext, r.ExternalID)
			}
		}
		seen, err := j.seenPairs(ctx, ext)
		if err != nil {
			return err
		}
		if err := j.commit(ctx, func(tx *sql.Tx) error {
			for _, r := range candidates {
				if seen[r.ExternalID+"\x00"+r.StaffWeComUserID] {
					continue
				}
				res, err := s.ApplyFollow(ctx, tx, j.row.tenantID, r.StaffWeComUserID, staff.RelationChange{CustomerID: r.CustomerID,
					RelationKey: staff.RelationKey{ExternalID: r.ExternalID}, Status: staff.RelationDeletedByStaff, At: at})
				if err != nil {
					return err
				}
				if !res.StatusChanged {
					continue
				}
				j.row.Counts.EndedRelations++
				if err := s.addTimeline(ctx, tx, j.row.tenantID, timelineEntry{customerID: r.CustomerID, kind: TimelineDelContact, at: at,
					staffUser: r.StaffWeComUserID, detail: map[string]any{"external_userid": r.ExternalID, "staff_userid": r.StaffWeComUserID,
						"reason": "not_in_wecom", "found_by": "sync"},
					key: fmt.Sprintf("%s|end|%s|%s", j.messageID(), r.StaffWeComUserID, r.ExternalID)}); err != nil {
					return err
				}
			}
			j.row.PhaseDone += int64(len(rels))
			if len(rels) > 0 {
				j.row.state.AfterCustomer = rels[len(rels)-1].CustomerID
			}
			if !more {
				if _, err := tx.ExecContext(ctx, `DELETE FROM wecom_sync_seen WHERE tenant_id = $1 AND run_id = $2`, j.row.tenantID, j.row.ID); err != nil {
					return fmt.Errorf("wecom: unable to clear the contacts read: %w", err)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// seenPairs returns which of the customers' pairs the run read, keyed
// "external_userid\x00userid".
func (j *syncJob) seenPairs(ctx context.Context, ext []string) (map[string]bool, error) {
	out := map[string]bool{}
	ext = slices.Compact(slices.Sorted(slices.Values(ext)))
	for len(ext) > 0 {
		chunk := ext[:min(len(ext), 500)]
		ext = ext[len(chunk):]
		args := []any{j.row.tenantID, j.row.ID}
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args = append(args, id)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		rows, err := j.s.db.QueryContext(ctx, `SELECT external_userid, staff_userid FROM wecom_sync_seen WHERE tenant_id = $1 AND run_id = $2
			AND external_userid IN (`+strings.Join(ph, ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("wecom: unable to read the contacts read: %w", err)
		}
		for rows.Next() {
			var e, u string
			if err := rows.Scan(&e, &u); err != nil {
				rows.Close()
				return nil, fmt.Errorf("wecom: unable to read the contacts read: %w", err)
			}
			out[e+"\x00"+u] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("wecom: unable to read the contacts read: %w", err)
		}
	}
	return out, nil
}

// syncCustomerTags walks every customer with a WeCom relation and gives them
// the Siyu tags bound to the corp tags their current relations carry, taking
// away the ones WeCom gave that no relation carries any more (as
// SyncCustomerTags does for one customer). Only customers whose tags differ
// are written.
func (j *syncJob) syncCustomerTags(ctx context.Context) error {
	b, err := j.s.boundTags(ctx, j.row.tenantID)
	if err != nil {
		return err
	}
	if len(b.byWeCom) == 0 {
		j.row.PhaseDone, j.row.PhaseTotal = 1, 1
		return j.save(ctx, j.s.db)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rels, more, err := j.relationsAfter(ctx, j.row.state.AfterCustomer)
		if err != nil {
			return err
		}
		n, err := j.s.alignCustomerTags(ctx, j.row.tenantID, b, rels)
		if err != nil {
			return err
		}
		j.row.Counts.TagChanges += n
		j.row.PhaseDone += int64(len(rels))
		if len(rels) > 0 {
			j.row.state.AfterCustomer = rels[len(rels)-1].CustomerID
		}
		if err := j.save(ctx, j.s.db); err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// syncGroups reads every customer group (groupchat/list, 1,000 a page, then
// groupchat/get for each) and stores it whole: owner, members with their
// join time and scene, and the member version. Each group is stored with
// the position after it.
func (j *syncJob) syncGroups(ctx context.Context) error {
	s := j.s
	c, err := j.client(ctx)
	if err != nil {
		return err
	}
	for {
		pg, err := c.GroupChatList(ctx, GroupChatFilter{}, j.row.state.ListCursor, MaxGroupChatsPage)
		j.called("externalcontact/groupchat/list")
		if IsCode(err, CodeInvalidCursor) && j.row.state.ListCursor != "" {
			s.log.InfoContext(ctx, "wecom: group list cursor expired; listing again", "tenant", j.row.tenantID, "run", j.row.ID)
			j.row.state.ListCursor, j.row.state.PageDone = "", 0
			continue
		}
		if err != nil {
			return err
		}
		for i := j.row.state.PageDone; i < len(pg.GroupChats); i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			chatID := pg.GroupChats[i].ChatID
			g, err := c.GroupChatGet(ctx, chatID, true)
			j.called("externalcontact/groupchat/get")
			readAt := s.now()
			var apply func(tx *sql.Tx) error
			switch {
			case IsCode(err, CodeChatDismissed):
				apply = func(tx *sql.Tx) error {
					j.row.Counts.GroupsDismissed++
					return s.DismissGroup(ctx, tx, j.row.tenantID, chatID, readAt, j.messageID(), 0)
				}
			case IsCode(err, CodeChatNotFound):
				apply = func(*sql.Tx) error { return nil }
			case err != nil:
				return err
			default:
				if g.ChatID == "" {
					g.ChatID = chatID
				}
				apply = func(tx *sql.Tx) error {
					j.row.Counts.Groups++
					_, err := s.StoreGroup(ctx, tx, j.row.tenantID, g, readAt, j.messageID(), 0)
					return err
				}
			}
			if err := j.commit(ctx, func(tx *sql.Tx) error {
				if err := apply(tx); err != nil {
					return err
				}
				j.row.state.PageDone = i + 1
				j.row.PhaseDone++
				return nil
			}); err != nil {
				return err
			}
		}
		if pg.NextCursor == "" {
			return nil
		}
		j.row.state.ListCursor, j.row.state.PageDone = pg.NextCursor, 0
		if err := j.save(ctx, s.db); err != nil {
			return err
		}
	}
}

// endGroups checks the groups Siyu holds as active that the listing did not
// bring: a dismissed one is marked so (its members leave), one that still
// exists is stored, one WeCom no longer shows the app is left as it is.
func (j *syncJob) endGroups(ctx context.Context) error {
	s := j.s
	c, err := j.client(ctx)
	if err != nil {
		return err
	}
	started := db.Millis(j.row.StartedAt)
	for {
		rows, err := s.db.QueryContext(ctx, `SELECT chat_id FROM wecom_groups WHERE tenant_id = $1 AND status = 'active' AND synced_at < $2
			AND chat_id > $3 ORDER BY chat_id LIMIT 100`, j.row.tenantID, started, j.row.state.AfterChat)
		if err != nil {
			return fmt.Errorf("wecom: unable to list groups to check: %w", err)
		}
		var chats []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("wecom: unable to list groups to check: %w", err)
			}
			chats = append(chats, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("wecom: unable to list groups to check: %w", err)
		}
		if len(chats) == 0 {
			return nil
		}
		for _, chatID := range chats {
			if err := ctx.Err(); err != nil {
				return err
			}
			g, err := c.GroupChatGet(ctx, chatID, true)
			j.called("externalcontact/groupchat/get")
			readAt := s.now()
			if err != nil && !IsCode(err, CodeChatDismissed, CodeChatNotFound) {
				return err
			}
			if err := j.commit(ctx, func(tx *sql.Tx) error {
				switch {
				case IsCode(err, CodeChatDismissed):
					j.row.Counts.GroupsDismissed++
					if err := s.DismissGroup(ctx, tx, j.row.tenantID, chatID, readAt, j.messageID(), 0); err != nil {
						return err
					}
				case err == nil:
					if g.ChatID == "" {
						g.ChatID = chatID
					}
					j.row.Counts.Groups++
					if _, err := s.StoreGroup(ctx, tx, j.row.tenantID, g, readAt, j.messageID(), 0); err != nil {
						return err
					}
				}
				j.row.state.AfterChat = chatID
				j.row.PhaseDone++
				return nil
			}); err != nil {
				return err
			}
		}
	}
}

// ResyncContact reads one customer from WeCom and repairs Siyu's view of
// them: the contact's details, every staff member's relation as WeCom has it
// now, relations WeCom no longer has ended, and the bound tags. The callback
// processor calls it when it detects it missed something; the console may
// offer it per customer.
func (s *Service) ResyncContact(ctx context.Context, tenantID int64, externalUserID string) error {
	if externalUserID == "" {
		return missing("external_userid")
	}
	c, err := s.Client(ctx, tenantID)
	if err != nil {
		return err
	}
	detail, ok, err := fetchContact(ctx, c, externalUserID)
	if err != nil {
		return err
	}
	readAt := s.now()
	msg := fmt.Sprintf("resync:%s:%d", externalUserID, db.Millis(readAt))
	var cid int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if ok {
			ct := detail.ExternalContact
			ct.ExternalUserID = externalUserID
			at := readAt
			for _, f := range detail.FollowUsers {
				if t := unixTime(f.CreateTime); !t.IsZero() && t.Before(at) {
					at = t
				}
			}
			cid, err = s.UpsertContact(ctx, tx, tenantID, ContactObservation{Contact: ct, Fetched: true, At: at, MessageID: msg})
		} else {
			var known bool
			if cid, known, err = contactCustomer(ctx, tx, tenantID, externalUserID); err != nil || !known {
				return err
			}
		}
		if err != nil {
			return err
		}
		listed := map[string]bool{}
		for _, f := range detail.FollowUsers {
			if f.UserID == "" {
				continue
			}
			listed[f.UserID] = true
			d := FollowDetails(f, readAt)
			added := unixTime(f.CreateTime)
			if added.IsZero() {
				added = readAt
			}
			if _, err := s.ApplyFollow(ctx, tx, tenantID, f.UserID, staff.RelationChange{CustomerID: cid,
				RelationKey: staff.RelationKey{ExternalID: externalUserID}, Status: staff.RelationActive, At: added, State: f.State, Details: &d}); err != nil {
				return err
			}
		}
		rels, err := s.staff.CustomerRelationsTx(ctx, tx, tenantID, cid)
		if err != nil {
			return err
		}
		for _, r := range rels {
			if r.Channel != staff.ChannelWeCom || r.ExternalID != externalUserID || !r.Status.Current() || listed[r.StaffWeComUserID] {
				continue
			}
			res, err := s.ApplyFollow(ctx, tx, tenantID, r.StaffWeComUserID, staff.RelationChange{CustomerID: cid,
				RelationKey: staff.RelationKey{ExternalID: externalUserID}, Status: staff.RelationDeletedByStaff, At: readAt})
			if err != nil {
				return err
			}
			if res.StatusChanged {
				if err := s.addTimeline(ctx, tx, tenantID, timelineEntry{customerID: cid, kind: TimelineDelContact, at: readAt,
					staffUser: r.StaffWeComUserID, detail: map[string]any{"external_userid": externalUserID, "staff_userid": r.StaffWeComUserID,
						"reason": "not_in_wecom", "found_by": "resync"}, key: msg + "|end|" + r.StaffWeComUserID}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil || cid == 0 {
		return err
	}
	return s.SyncCustomerTags(ctx, tenantID, cid)
}

// contactCustomer returns the customer of a known external contact.
func contactCustomer(ctx context.Context, q db.Querier, tenantID int64, externalUserID string) (int64, bool, error) {
	var cid int64
	err := q.QueryRowContext(ctx, `SELECT customer_id FROM wecom_contacts WHERE tenant_id = $1 AND external_userid = $2`, tenantID, externalUserID).Scan(&cid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("wecom: unable to look up contact %s: %w", externalUserID, err)
	}
	return cid, true, nil
}

// ResyncGroup reads one customer group from WeCom and stores it whole (or
// marks it dismissed): what the callback processor does when member versions
// show a missed event, offered to callers that detect a gap elsewhere.
func (s *Service) ResyncGroup(ctx context.Context, tenantID int64, chatID string) error {
	if chatID == "" {
		return missing("chat_id")
	}
	c, err := s.Client(ctx, tenantID)
	if err != nil {
		return err
	}
	g, err := c.GroupChatGet(ctx, chatID, true)
	readAt := s.now()
	msg := fmt.Sprintf("resync:%s:%d", chatID, db.Millis(readAt))
	switch {
	case IsCode(err, CodeChatDismissed):
		return s.db.Tx(ctx, func(tx *sql.Tx) error { return s.DismissGroup(ctx, tx, tenantID, chatID, readAt, msg, 0) })
	case err != nil:
		return err
	}
	if g.ChatID == "" {
		g.ChatID = chatID
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := s.StoreGroup(ctx, tx, tenantID, g, readAt, msg, 0)
		return err
	})
}
