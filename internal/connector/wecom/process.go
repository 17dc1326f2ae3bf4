package wecom

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/staff"
)

// Processing turns one inbox event into changes of customers, staff
// relations, groups and tags. A callback only says what changed: details are
// read from WeCom's API (outside any transaction, so a slow API never holds
// the database), then applied in one transaction. Every step is idempotent
// and ordered by WeCom's event time, so a retry, a duplicate or an event
// arriving late leaves the same state as the events in order.

// outcome is what processing an event did, for the event log.
type outcome struct {
	note    string
	ignored bool
	// customerID is the customer the event was about, when it was about one.
	customerID int64
}

func (s *Service) process(ctx context.Context, j job) (outcome, error) {
	ev, err := ParseEvent([]byte(j.payload))
	if err != nil {
		return outcome{}, err
	}
	switch ev.Kind() {
	case KindAddExternalContact, KindEditExternalContact, KindAddHalfExternalContact:
		return s.onContactAdded(ctx, j, ev)
	case KindDelExternalContact, KindDelFollowUser:
		return s.onContactDeleted(ctx, j, ev)
	case KindTransferFail:
		return s.onTransferFail(ctx, j, ev)
	case KindChatCreate, KindChatUpdate:
		return s.onChat(ctx, j, ev)
	case KindChatDismiss:
		return s.onChatDismiss(ctx, j, ev)
	case KindTagCreate, KindTagUpdate, KindTagDelete, KindTagShuffle:
		return s.onCorpTag(ctx, j, ev)
	case KindCreateUser, KindUpdateUser, KindDeleteUser:
		return s.onDirectoryUser(ctx, j, ev)
	case KindCreateParty, KindUpdateParty, KindDeleteParty, KindUpdateTag:
		return outcome{note: "departments and member tags are read by the directory sync", ignored: true}, nil
	}
	return outcome{note: "Siyu does not handle this kind of event", ignored: true}, nil
}

func missing(what string) error {
	return errs.E(errs.Invalid, "wecom_missing_"+what, "the event has no %s", what)
}

// fetchContact reads a customer with every staff member who follows them.
// A customer who is no longer anyone's contact is not an error: ok is false.
func fetchContact(ctx context.Context, c *Client, externalUserID string) (d ContactDetail, ok bool, err error) {
	d, err = c.GetExternalContact(ctx, externalUserID, "")
	if IsCode(err, CodeNotExternalContact, CodeInvalidExternalUser) {
		return ContactDetail{}, false, nil
	}
	if err != nil {
		return ContactDetail{}, false, err
	}
	for cursor := d.NextCursor; cursor != ""; {
		more, err := c.GetExternalContact(ctx, externalUserID, cursor)
		if err != nil {
			return ContactDetail{}, false, err
		}
		d.FollowUsers = append(d.FollowUsers, more.FollowUsers...)
		cursor = more.NextCursor
	}
	return d, true, nil
}

// onContactAdded handles add_external_contact, add_half_external_contact and
// edit_external_contact: the customer (created or found through One ID with
// the contact's details), the staff member's relation (added, with State and
// WelcomeCode, and the remark, description and tags WeCom has now), the
// relations of the other staff who follow the customer, and the Siyu tags
// bound to the corp tags they gave.
func (s *Service) onContactAdded(ctx context.Context, j job, ev Event) (outcome, error) {
	if ev.ExternalUserID == "" {
		return outcome{}, missing("external_userid")
	}
	if ev.UserID == "" {
		return outcome{}, missing("userid")
	}
	c, err := s.Client(ctx, j.tenantID)
	if err != nil {
		return outcome{}, err
	}
	detail, fetched, err := fetchContact(ctx, c, ev.ExternalUserID)
	if err != nil {
		return outcome{}, err
	}
	readAt := s.now()
	at := ev.Time()
	var status staff.RelationStatus
	kind := TimelineEditContact
	switch ev.ChangeType {
	case ChangeAddExternalContact:
		status, kind = staff.RelationActive, TimelineAddContact
	case ChangeAddHalfExternalContact:
		status, kind = staff.RelationHalf, TimelineAddHalfContact
	}
	contact := ExternalContact{ExternalUserID: ev.ExternalUserID}
	if fetched {
		contact = detail.ExternalContact
		contact.ExternalUserID = ev.ExternalUserID
	}
	var cid int64
	var res staff.RelationResult
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		cid, err = s.UpsertContact(ctx, tx, j.tenantID, ContactObservation{Contact: contact, Fetched: fetched, At: at, State: ev.State, MessageID: j.key})
		if err != nil {
			return err
		}
		ch := staff.RelationChange{CustomerID: cid, RelationKey: staff.RelationKey{ExternalID: ev.ExternalUserID},
			Status: status, At: at, State: ev.State, WelcomeCode: ev.WelcomeCode}
		for _, f := range detail.FollowUsers {
			if f.UserID == ev.UserID {
				d := FollowDetails(f, readAt)
				ch.Details = &d
			}
		}
		if res, err = s.ApplyFollow(ctx, tx, j.tenantID, ev.UserID, ch); err != nil {
			return err
		}
		// WeCom's answer describes every staff member's relation as of now.
		for _, f := range detail.FollowUsers {
			if f.UserID == ev.UserID || f.UserID == "" {
				continue
			}
			d := FollowDetails(f, readAt)
			if _, err := s.ApplyFollow(ctx, tx, j.tenantID, f.UserID, staff.RelationChange{CustomerID: cid,
				RelationKey: staff.RelationKey{ExternalID: ev.ExternalUserID}, Details: &d}); err != nil {
				return err
			}
		}
		detailMap := map[string]any{"external_userid": ev.ExternalUserID, "staff_userid": ev.UserID}
		if ev.State != "" {
			detailMap["state"] = ev.State
		}
		if ch.Details != nil {
			detailMap["add_way"] = ch.Details.AddWay
			if ch.Details.Remark != "" {
				detailMap["remark"] = ch.Details.Remark
			}
		}
		return s.addTimeline(ctx, tx, j.tenantID, timelineEntry{customerID: cid, kind: kind, at: at, staffUser: ev.UserID,
			detail: detailMap, key: j.key + "|" + kind, inboxID: j.id})
	})
	if err != nil {
		return outcome{}, err
	}
	if err := s.SyncCustomerTags(ctx, j.tenantID, cid); err != nil {
		return outcome{}, err
	}
	note := fmt.Sprintf("customer %d; relation with %s: %s", cid, ev.UserID, res.After)
	if status != "" && !res.StatusChanged {
		note += " (a newer change was applied already)"
	}
	if !fetched {
		note += "; WeCom no longer has this contact, details not read"
	}
	return outcome{note: note, customerID: cid}, nil
}

// onContactDeleted handles del_external_contact (the staff member deleted the
// customer, or handed them over: Source DELETE_BY_TRANSFER, not a loss) and
// del_follow_user (the customer deleted the staff member). Nothing is read
// from WeCom: the relation is over.
func (s *Service) onContactDeleted(ctx context.Context, j job, ev Event) (outcome, error) {
	if ev.ExternalUserID == "" {
		return outcome{}, missing("external_userid")
	}
	if ev.UserID == "" {
		return outcome{}, missing("userid")
	}
	status, kind := staff.RelationDeletedByStaff, TimelineDelContact
	switch {
	case ev.ChangeType == ChangeDelFollowUser:
		status, kind = staff.RelationDeletedByCustomer, TimelineDelFollowUser
	case ev.Source == SourceDeleteByTransfer:
		status, kind = staff.RelationTransferred, TimelineTransfer
	}
	at := ev.Time()
	var cid int64
	var res staff.RelationResult
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if cid, err = s.customerOf(ctx, tx, j.tenantID, ev.ExternalUserID, "", at, j.key); err != nil {
			return err
		}
		if res, err = s.ApplyFollow(ctx, tx, j.tenantID, ev.UserID, staff.RelationChange{CustomerID: cid,
			RelationKey: staff.RelationKey{ExternalID: ev.ExternalUserID}, Status: status, At: at}); err != nil {
			return err
		}
		d := map[string]any{"external_userid": ev.ExternalUserID, "staff_userid": ev.UserID}
		if ev.Source != "" {
			d["source"] = ev.Source
		}
		return s.addTimeline(ctx, tx, j.tenantID, timelineEntry{customerID: cid, kind: kind, at: at, staffUser: ev.UserID,
			detail: d, key: j.key + "|" + kind, inboxID: j.id})
	})
	if err != nil {
		return outcome{}, err
	}
	if err := s.SyncCustomerTags(ctx, j.tenantID, cid); err != nil {
		return outcome{}, err
	}
	note := fmt.Sprintf("customer %d; relation with %s: %s", cid, ev.UserID, res.After)
	if !res.StatusChanged {
		note += " (a newer change was applied already)"
	}
	return outcome{note: note, customerID: cid}, nil
}

// onTransferFail records on the taking-over staff member's relation that a
// handover of the customer failed, and why (customer_refused,
// customer_limit_exceed); the customer stays with their staff member.
func (s *Service) onTransferFail(ctx context.Context, j job, ev Event) (outcome, error) {
	if ev.ExternalUserID == "" {
		return outcome{}, missing("external_userid")
	}
	if ev.UserID == "" {
		return outcome{}, missing("userid")
	}
	reason := ev.FailReason
	if reason == "" {
		reason = "unknown"
	}
	at := ev.Time()
	var cid int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if cid, err = s.customerOf(ctx, tx, j.tenantID, ev.ExternalUserID, "", at, j.key); err != nil {
			return err
		}
		if _, err = s.ApplyFollow(ctx, tx, j.tenantID, ev.UserID, staff.RelationChange{CustomerID: cid,
			RelationKey: staff.RelationKey{ExternalID: ev.ExternalUserID}, At: at, TransferFail: reason}); err != nil {
			return err
		}
		d := map[string]any{"external_userid": ev.ExternalUserID, "staff_userid": ev.UserID, "reason": reason}
		return s.addTimeline(ctx, tx, j.tenantID, timelineEntry{customerID: cid, kind: TimelineTransferFail, at: at, staffUser: ev.UserID,
			detail: d, key: j.key + "|" + TimelineTransferFail, inboxID: j.id})
	})
	if err != nil {
		return outcome{}, err
	}
	return outcome{note: fmt.Sprintf("customer %d; handover to %s failed: %s", cid, ev.UserID, reason), customerID: cid}, nil
}

// errResync says a member change cannot be applied on its own: the stored
// member version moved since the event was checked.
var errResync = errors.New("wecom: member version changed; resync")

// joinSceneOf maps a callback's JoinScene (0 invited directly or by link, 3
// QR code) to groupchat/get's join_scene (1 invited, 2 link, 3 QR code).
func joinSceneOf(callback int) int {
	if callback == JoinSceneQRCode {
		return JoinByQRCode
	}
	return JoinByInvite
}

// onChat handles a customer group's creation and updates. A member change
// whose previous member version is the stored one, and which lists every
// changed member, is applied as it is; any other (a missed event, a group
// never seen, a partial list) makes Siyu read the whole group again. Other
// updates (owner, name, notice) read the group too, as the callback does not
// carry the new values.
func (s *Service) onChat(ctx context.Context, j job, ev Event) (outcome, error) {
	if ev.ChatID == "" {
		return outcome{}, missing("chat_id")
	}
	why := "group read from WeCom"
	if ev.ChangeType == ChangeChatUpdate && (ev.UpdateDetail == UpdateAddMember || ev.UpdateDetail == UpdateDelMember) {
		st, err := loadGroup(ctx, s.db, j.tenantID, ev.ChatID)
		if err != nil {
			return outcome{}, err
		}
		switch {
		case st.exists && st.status == "dismissed":
			return outcome{note: "the group was dismissed already"}, nil
		case st.exists && ev.CurMemVer != "" && st.version == ev.CurMemVer:
			return outcome{note: "member change applied already (member version " + ev.CurMemVer + ")"}, nil
		case st.exists && st.version != "" && st.version == ev.LastMemVer && len(ev.MemChangeList) > 0 && ev.MemChangeCnt == len(ev.MemChangeList):
			n, err := s.applyMemberChange(ctx, j, ev)
			if err == nil {
				verb := "joined"
				if ev.UpdateDetail == UpdateDelMember {
					verb = "left"
				}
				return outcome{note: fmt.Sprintf("%d members %s; member version %s", n, verb, ev.CurMemVer)}, nil
			}
			if !errors.Is(err, errResync) {
				return outcome{}, err
			}
			why = "member version changed meanwhile: group read again from WeCom"
		case !st.exists:
			why = "group not seen before: read from WeCom"
		default:
			why = fmt.Sprintf("missed member change detected (stored version %q, event's previous %q, %d of %d members listed): group read again from WeCom",
				st.version, ev.LastMemVer, len(ev.MemChangeList), ev.MemChangeCnt)
		}
	}
	return s.resyncGroup(ctx, j, ev, why)
}

// resyncGroup reads a group from WeCom and stores it whole.
func (s *Service) resyncGroup(ctx context.Context, j job, ev Event, why string) (outcome, error) {
	c, err := s.Client(ctx, j.tenantID)
	if err != nil {
		return outcome{}, err
	}
	g, err := c.GroupChatGet(ctx, ev.ChatID, true)
	switch {
	case IsCode(err, CodeChatDismissed):
		err := s.db.Tx(ctx, func(tx *sql.Tx) error { return s.DismissGroup(ctx, tx, j.tenantID, ev.ChatID, ev.Time(), j.key, j.id) })
		if err != nil {
			return outcome{}, err
		}
		return outcome{note: "WeCom says the group was dismissed"}, nil
	case IsCode(err, CodeChatNotFound):
		return outcome{note: "WeCom does not show this group to the app (deleted, or owned by staff outside the app's visible range)", ignored: true}, nil
	case err != nil:
		return outcome{}, err
	}
	if g.ChatID == "" {
		g.ChatID = ev.ChatID
	}
	var changes []MemberChange
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		changes, err = s.StoreGroup(ctx, tx, j.tenantID, g, s.now(), j.key, j.id)
		return err
	})
	if err != nil {
		return outcome{}, err
	}
	joined := 0
	for _, c := range changes {
		if c.Joined {
			joined++
		}
	}
	return outcome{note: fmt.Sprintf("%s; %d members, %d joined, %d left; member version %s", why, len(g.Members), joined, len(changes)-joined, g.MemberVersion)}, nil
}

// isExternalID tells a customer's external_userid from a staff user id in a
// member change list: staff known to Siyu are staff; otherwise WeCom's
// external ids start with wm (WeChat users) or wo (other corps' members).
func isExternalID(id string, staffNames map[string]string) bool {
	if _, ok := staffNames[id]; ok {
		return false
	}
	return strings.HasPrefix(id, "wm") || strings.HasPrefix(id, "wo")
}

// applyMemberChange applies an add_member or del_member event whose previous
// member version matches the stored one, and moves the version on.
func (s *Service) applyMemberChange(ctx context.Context, j job, ev Event) (int, error) {
	names, err := s.staff.NamesByWeComUserID(ctx, j.tenantID, ev.MemChangeList)
	if err != nil {
		return 0, err
	}
	at := ev.Time()
	atMs := db.Millis(at)
	join := ev.UpdateDetail == UpdateAddMember
	n := 0
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		st, err := loadGroup(ctx, tx, j.tenantID, ev.ChatID)
		if err != nil {
			return err
		}
		if st.version != ev.LastMemVer {
			return errResync
		}
		old, err := loadMembers(ctx, tx, j.tenantID, ev.ChatID)
		if err != nil {
			return err
		}
		name := groupName(ctx, tx, j.tenantID, ev.ChatID)
		for _, id := range ev.MemChangeList {
			prev, known := old[id]
			typ := MemberStaff
			if known {
				typ = prev.typ
			} else if isExternalID(id, names) {
				typ = MemberExternal
			}
			var cid int64
			if typ == MemberExternal {
				if known && prev.customerID != 0 {
					cid = prev.customerID
				} else if cid, err = s.customerOf(ctx, tx, j.tenantID, id, "", at, j.key); err != nil {
					return err
				}
			}
			change := MemberChange{MemberID: id, Type: typ, CustomerID: cid, Joined: join, At: at}
			var extra map[string]any
			if join {
				if err := upsertMember(ctx, tx, j.tenantID, ev.ChatID, memberUpsert{id: id, typ: typ, customerID: cid,
					joinTime: atMs, joinScene: joinSceneOf(ev.JoinScene), eventAt: atMs}); err != nil {
					return err
				}
				extra = map[string]any{"join_scene": joinSceneOf(ev.JoinScene)}
			} else {
				var cidArg any
				if cid != 0 {
					cidArg = cid
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO wecom_group_members (tenant_id, chat_id, member_id, member_type, customer_id, status,
					left_at, quit_scene, event_at) VALUES ($1, $2, $3, $4, $5, 'left', $6, $7, $6)
					ON CONFLICT (tenant_id, chat_id, member_id) DO UPDATE SET status = 'left', left_at = excluded.left_at,
					quit_scene = excluded.quit_scene, event_at = excluded.event_at`,
					j.tenantID, ev.ChatID, id, typ, cidArg, atMs, ev.QuitScene); err != nil {
					return fmt.Errorf("wecom: unable to mark member %s as left: %w", id, err)
				}
				reason := "left"
				if ev.QuitScene == QuitSceneRemoved {
					reason = "removed"
				}
				extra = map[string]any{"quit_scene": ev.QuitScene, "reason": reason}
			}
			if known && (prev.status == "in") == join {
				continue // no change: already in (or already out)
			}
			n++
			if err := s.memberTimeline(ctx, tx, j.tenantID, ev.ChatID, name, change, j.key, j.id, extra); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE wecom_groups SET member_version = $3,
			member_count = (SELECT count(*) FROM wecom_group_members WHERE tenant_id = $1 AND chat_id = $2 AND status = 'in'),
			event_at = CASE WHEN event_at > $4 THEN event_at ELSE $4 END, updated_at = $5 WHERE tenant_id = $1 AND chat_id = $2`,
			j.tenantID, ev.ChatID, ev.CurMemVer, atMs, db.Millis(s.now()))
		if err != nil {
			return fmt.Errorf("wecom: unable to update group %s: %w", ev.ChatID, err)
		}
		return nil
	})
	return n, err
}

// onChatDismiss marks a group dismissed; its customers' timelines show it.
func (s *Service) onChatDismiss(ctx context.Context, j job, ev Event) (outcome, error) {
	if ev.ChatID == "" {
		return outcome{}, missing("chat_id")
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error { return s.DismissGroup(ctx, tx, j.tenantID, ev.ChatID, ev.Time(), j.key, j.id) })
	if err != nil {
		return outcome{}, err
	}
	return outcome{note: "group dismissed"}, nil
}

// onCorpTag handles any change of corp tags by reading WeCom's whole tag
// list (a corp has at most a few thousand tags): creations, renames,
// deletions and reorders all converge on WeCom's current list, whatever order
// the events come in.
func (s *Service) onCorpTag(ctx context.Context, j job, ev Event) (outcome, error) {
	if ev.StrategyID != 0 {
		return outcome{note: "rule-group (规则组) tags are not synced", ignored: true}, nil
	}
	c, err := s.Client(ctx, j.tenantID)
	if err != nil {
		return outcome{}, err
	}
	groups, err := c.GetCorpTagList(ctx, nil, nil)
	if err != nil {
		return outcome{}, err
	}
	if err := s.ApplyCorpTags(ctx, j.tenantID, groups, true); err != nil {
		return outcome{}, err
	}
	n := 0
	for _, g := range groups {
		n += len(g.Tags)
	}
	return outcome{note: fmt.Sprintf("corp tags read from WeCom: %d groups, %d tags", len(groups), n)}, nil
}

// onDirectoryUser keeps staff in line with WeCom's directory: a new or
// changed member (a changed user id renames the staff member), and a deleted
// one marked resigned, whose customers then await inheritance (离职继承).
func (s *Service) onDirectoryUser(ctx context.Context, j job, ev Event) (outcome, error) {
	if ev.UserID == "" {
		return outcome{}, missing("userid")
	}
	m := staff.WeComMember{UserID: ev.UserID, Name: ev.Name, Title: ev.Position, At: ev.Time()}
	switch {
	case ev.ChangeType == ChangeDeleteUser || ev.Status == UserLeftTheCorp:
		m.Status = staff.Resigned
	case ev.ChangeType == ChangeCreateUser || ev.Status == UserActive:
		m.Status = staff.Active
	}
	var id int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if ev.NewUserID != "" && ev.NewUserID != ev.UserID {
			if err := s.staff.RenameWeComMember(ctx, tx, j.tenantID, ev.UserID, ev.NewUserID); err != nil {
				return err
			}
			m.UserID = ev.NewUserID
		}
		var err error
		id, err = s.staff.ApplyWeComMember(ctx, tx, j.tenantID, m)
		return err
	})
	if err != nil {
		return outcome{}, err
	}
	note := fmt.Sprintf("staff member %d (%s)", id, m.UserID)
	if m.Status == staff.Resigned {
		note += " resigned: their customers await inheritance"
	}
	return outcome{note: note}, nil
}
