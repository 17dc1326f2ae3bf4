package wecomtest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
)

// welcomeWindow is how long a WelcomeCode can be used.
const welcomeWindow = 20 * time.Second

// message is a callback message built field by field in the order WeCom's
// documentation lists them.
type message struct{ fields []field }

type field struct {
	name  string
	value string
	num   bool
	items []string
	list  bool
}

func (m *message) str(name, v string) *message {
	m.fields = append(m.fields, field{name: name, value: v})
	return m
}

func (m *message) num(name string, v int64) *message {
	m.fields = append(m.fields, field{name: name, value: strconv.FormatInt(v, 10), num: true})
	return m
}

func (m *message) list(name string, items []string) *message {
	m.fields = append(m.fields, field{name: name, items: items, list: true})
	return m
}

// cdata wraps v in CDATA sections, splitting any "]]>" inside it.
func cdata(v string) string {
	return "<![CDATA[" + strings.ReplaceAll(v, "]]>", "]]]]><![CDATA[>") + "]]>"
}

// encode renders the message as WeCom sends it in the app's format.
func (m *message) encode(f wecom.Format) []byte {
	var b strings.Builder
	if f == wecom.FormatJSON {
		b.WriteByte('{')
		for i, fl := range m.fields {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(fl.name)
			b.Write(k)
			b.WriteByte(':')
			switch {
			case fl.list:
				items, _ := json.Marshal(nonNil(fl.items))
				b.WriteString(`{"Item":`)
				b.Write(items)
				b.WriteByte('}')
			case fl.num:
				b.WriteString(fl.value)
			default:
				v, _ := json.Marshal(fl.value)
				b.Write(v)
			}
		}
		b.WriteByte('}')
		return []byte(b.String())
	}
	b.WriteString("<xml>")
	for _, fl := range m.fields {
		b.WriteString("<" + fl.name + ">")
		switch {
		case fl.list:
			for _, it := range fl.items {
				b.WriteString("<Item>" + cdata(it) + "</Item>")
			}
		case fl.num:
			b.WriteString(fl.value)
		default:
			b.WriteString(cdata(fl.value))
		}
		b.WriteString("</" + fl.name + ">")
	}
	b.WriteString("</xml>")
	return []byte(b.String())
}

// event starts a system event message.
func (s *Server) event(at time.Time, event, change string) *message {
	m := &message{}
	m.str("ToUserName", s.Corp.ID()).str("FromUserName", "sys").num("CreateTime", at.Unix()).str("MsgType", "event").str("Event", event)
	if change != "" {
		m.str("ChangeType", change)
	}
	return m
}

func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ",")
}

func (s *Server) userEvent(change string, st Staff, newUserID string) *message {
	m := s.event(s.Now(), wecom.EventChangeContact, change).str("UserID", st.UserID)
	if change == wecom.ChangeDeleteUser {
		return m
	}
	if newUserID != "" {
		m.str("NewUserID", newUserID)
	}
	m.str("Name", st.Name).str("Department", joinInts(st.Departments)).str("MainDepartment", strconv.FormatInt(st.MainDepartment, 10))
	if st.Position != "" {
		m.str("Position", st.Position)
	}
	if st.Mobile != "" {
		m.str("Mobile", st.Mobile)
	}
	if st.Gender != 0 {
		m.str("Gender", strconv.Itoa(st.Gender))
	}
	if st.Alias != "" {
		m.str("Alias", st.Alias)
	}
	return m.num("Status", int64(st.Status))
}

// AddDepartment creates a department (change_contact/create_party). Its ID
// is chosen when zero.
func (s *Server) AddDepartment(ctx context.Context, d Department) (Department, error) {
	c := s.Corp
	c.mu.Lock()
	if d.ID == 0 {
		for id := range c.depts {
			d.ID = max(d.ID, id)
		}
		d.ID++
	}
	if c.depts[d.ID] != nil {
		c.mu.Unlock()
		return Department{}, fmt.Errorf("wecomtest: department %d exists", d.ID)
	}
	if d.ParentID == 0 {
		d.ParentID = 1
	}
	if c.depts[d.ParentID] == nil {
		c.mu.Unlock()
		return Department{}, fmt.Errorf("wecomtest: parent department %d does not exist", d.ParentID)
	}
	c.depts[d.ID] = &d
	c.mu.Unlock()
	m := s.event(s.Now(), wecom.EventChangeContact, wecom.ChangeCreateParty).
		num("Id", d.ID).str("Name", d.Name).num("ParentId", d.ParentID).num("Order", d.Order)
	s.emit(ctx, m)
	return d, nil
}

// AddStaff adds a member to the directory (change_contact/create_user).
func (s *Server) AddStaff(ctx context.Context, st Staff) (Staff, error) {
	c := s.Corp
	c.mu.Lock()
	if c.liveStaff(st.UserID) != nil {
		c.mu.Unlock()
		return Staff{}, fmt.Errorf("wecomtest: member %q exists", st.UserID)
	}
	st, err := c.putStaff(st)
	c.mu.Unlock()
	if err != nil {
		return Staff{}, err
	}
	s.emit(ctx, s.userEvent(wecom.ChangeCreateUser, st, ""))
	return st, nil
}

// UpdateStaff changes a member (change_contact/update_user). When st.UserID
// differs from userID the member's userid changes too (NewUserID), with
// their customers and groups.
func (s *Server) UpdateStaff(ctx context.Context, userID string, st Staff) (Staff, error) {
	c := s.Corp
	c.mu.Lock()
	r := c.liveStaff(userID)
	if r == nil {
		c.mu.Unlock()
		return Staff{}, fmt.Errorf("wecomtest: member %q does not exist", userID)
	}
	if st.UserID == "" {
		st.UserID = userID
	}
	newID := ""
	if st.UserID != userID {
		if c.staff[st.UserID] != nil {
			c.mu.Unlock()
			return Staff{}, fmt.Errorf("wecomtest: userid %q is taken", st.UserID)
		}
		newID = st.UserID
		c.renameStaff(userID, newID)
	}
	st, err := c.putStaff(st)
	c.mu.Unlock()
	if err != nil {
		return Staff{}, err
	}
	old := st
	old.UserID = userID
	s.emit(ctx, s.userEvent(wecom.ChangeUpdateUser, old, newID))
	return st, nil
}

// renameStaff moves a member to a new userid everywhere. The caller holds c.mu.
func (c *Corp) renameStaff(from, to string) {
	r := c.staff[from]
	delete(c.staff, from)
	r.UserID = to
	c.staff[to] = r
	c.staffIDs[slices.Index(c.staffIDs, from)] = to
	for _, f := range r.follows {
		f.UserID = to
	}
	for _, g := range c.groups {
		if g.Owner == from {
			g.Owner = to
		}
		for i := range g.Members {
			if g.Members[i].UserID == from {
				g.Members[i].UserID = to
			}
			if g.Members[i].Invitor == from {
				g.Members[i].Invitor = to
			}
		}
		for i, a := range g.Admins {
			if a == from {
				g.Admins[i] = to
			}
		}
	}
}

// DeleteStaff removes a member from the directory (change_contact/delete_user).
// Their customer relations stay with the corp, waiting for inheritance, but
// are no longer listed by the APIs; the groups they own are marked
// wecom.ChatOwnerResigned.
func (s *Server) DeleteStaff(ctx context.Context, userID string) error {
	c := s.Corp
	c.mu.Lock()
	r := c.liveStaff(userID)
	if r == nil {
		c.mu.Unlock()
		return fmt.Errorf("wecomtest: member %q does not exist", userID)
	}
	r.deleted = true
	st := r.Staff
	for _, g := range c.groups {
		if g.Owner == userID && !g.Dismissed && g.Status == wecom.ChatNormal {
			g.Status = wecom.ChatOwnerResigned // waiting for inheritance
		}
	}
	c.mu.Unlock()
	s.emit(ctx, s.userEvent(wecom.ChangeDeleteUser, st, ""))
	return nil
}

// AddResult is what adding a customer produced.
type AddResult struct {
	Contact     Contact
	Follow      Follow
	WelcomeCode string // valid for 20 s of simulated time, once
}

// AddContact has a customer and a member become contacts
// (change_external_contact/add_external_contact, with State and WelcomeCode).
// A new customer is created when ct.ExternalUserID is empty or unknown; an
// existing one gains a relation with this member.
func (s *Server) AddContact(ctx context.Context, userID string, ct Contact, state string) (AddResult, error) {
	return s.add(ctx, wecom.ChangeAddExternalContact, userID, ct, state)
}

// AddHalfContact is a customer adding a member who has verification-free
// adds on, before the member confirms (add_half_external_contact).
func (s *Server) AddHalfContact(ctx context.Context, userID string, ct Contact, state string) (AddResult, error) {
	return s.add(ctx, wecom.ChangeAddHalfExternalContact, userID, ct, state)
}

// AddContactByWay is a customer scanning a 联系我 code created through
// add_contact_way: the code's members take turns, and its state comes back
// in the callback.
func (s *Server) AddContactByWay(ctx context.Context, configID string, ct Contact) (AddResult, error) {
	c := s.Corp
	c.mu.Lock()
	w := c.ways[configID]
	if w == nil || len(w.Users) == 0 {
		c.mu.Unlock()
		return AddResult{}, fmt.Errorf("wecomtest: no contact way %q with members", configID)
	}
	userID := w.Users[w.next%len(w.Users)]
	w.next++
	state := w.State
	c.mu.Unlock()
	return s.add(ctx, wecom.ChangeAddExternalContact, userID, ct, state)
}

func (s *Server) add(ctx context.Context, change, userID string, ct Contact, state string) (AddResult, error) {
	if len([]rune(state)) > 30 {
		return AddResult{}, fmt.Errorf("wecomtest: state %q is over 30 characters", state)
	}
	c := s.Corp
	now := s.Now()
	c.mu.Lock()
	if c.liveStaff(userID) == nil {
		c.mu.Unlock()
		return AddResult{}, fmt.Errorf("wecomtest: member %q does not exist", userID)
	}
	r := c.contacts[ct.ExternalUserID]
	if r == nil || ct.ExternalUserID == "" {
		var err error
		if r, err = c.putContact(ct); err != nil {
			c.mu.Unlock()
			return AddResult{}, err
		}
	}
	addWay := 0
	if state != "" {
		addWay = 1 // scanned a 联系我 QR code
	}
	f, err := c.addFollow(r, Follow{UserID: userID, CreateTime: now, AddWay: addWay, State: state, OperUserID: r.ExternalUserID})
	if err != nil {
		c.mu.Unlock()
		return AddResult{}, err
	}
	code := c.newID("", 43)
	c.welcomes[code] = &welcomeRec{userID: userID, externalUserID: r.ExternalUserID, expires: now.Add(welcomeWindow)}
	res := AddResult{Contact: r.Contact, Follow: copyFollows([]*followRec{f})[0], WelcomeCode: code}
	c.mu.Unlock()
	m := s.event(now, wecom.EventChangeExternalContact, change).str("UserID", userID).str("ExternalUserID", r.ExternalUserID)
	if state != "" {
		m.str("State", state)
	}
	m.str("WelcomeCode", code)
	s.emit(ctx, m)
	return res, nil
}

// EditContact is a member editing a customer's remark, description,
// mobiles or corp tags in WeCom (edit_external_contact). edit gets a copy of
// the relation; who and whom cannot change.
func (s *Server) EditContact(ctx context.Context, userID, externalUserID string, edit func(*Follow)) error {
	c := s.Corp
	c.mu.Lock()
	f := c.follow(userID, externalUserID)
	if f == nil {
		c.mu.Unlock()
		return fmt.Errorf("wecomtest: %s does not follow %s", userID, externalUserID)
	}
	cp := copyFollows([]*followRec{f})[0]
	edit(&cp)
	for _, id := range cp.TagIDs {
		if t := c.tags[id]; t == nil || t.Deleted {
			c.mu.Unlock()
			return fmt.Errorf("wecomtest: tag %q does not exist", id)
		}
	}
	cp.UserID, cp.ExternalUserID, cp.CreateTime = f.UserID, f.ExternalUserID, f.CreateTime
	f.Follow = cp
	c.mu.Unlock()
	s.emit(ctx, s.event(s.Now(), wecom.EventChangeExternalContact, wecom.ChangeEditExternalContact).
		str("UserID", userID).str("ExternalUserID", externalUserID))
	return nil
}

// CustomerDeletesStaff is a customer deleting a member from their WeChat
// (del_follow_user). The relation ends.
func (s *Server) CustomerDeletesStaff(ctx context.Context, userID, externalUserID string) error {
	return s.unfollow(ctx, wecom.ChangeDelFollowUser, userID, externalUserID, "")
}

// StaffDeletesCustomer is a member deleting a customer (del_external_contact).
func (s *Server) StaffDeletesCustomer(ctx context.Context, userID, externalUserID string) error {
	return s.unfollow(ctx, wecom.ChangeDelExternalContact, userID, externalUserID, "")
}

func (s *Server) unfollow(ctx context.Context, change, userID, externalUserID, source string) error {
	c := s.Corp
	c.mu.Lock()
	_, err := c.removeFollow(userID, externalUserID)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	m := s.event(s.Now(), wecom.EventChangeExternalContact, change).str("UserID", userID).str("ExternalUserID", externalUserID)
	if source != "" {
		m.str("Source", source)
	}
	s.emit(ctx, m)
	return nil
}

// TransferContact completes a handover of a customer from one member to
// another (在职继承 / 离职继承, once the customer accepted): the relation moves
// with its remark, description and tags, and WeCom reports the old member's
// side as del_external_contact with Source DELETE_BY_TRANSFER and the new
// one's as add_external_contact.
func (s *Server) TransferContact(ctx context.Context, handoverUserID, takeoverUserID, externalUserID string) error {
	c := s.Corp
	c.mu.Lock()
	if c.liveStaff(takeoverUserID) == nil {
		c.mu.Unlock()
		return fmt.Errorf("wecomtest: member %q does not exist", takeoverUserID)
	}
	if c.follow(takeoverUserID, externalUserID) != nil {
		c.mu.Unlock()
		return fmt.Errorf("wecomtest: %s already follows %s", takeoverUserID, externalUserID)
	}
	old, err := c.removeFollow(handoverUserID, externalUserID)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	f := old.Follow
	f.UserID, f.CreateTime, f.AddWay, f.OperUserID = takeoverUserID, s.Now(), 202, takeoverUserID // 202: assigned by the admin
	if _, err := c.addFollow(c.contacts[externalUserID], f); err != nil {
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	s.emit(ctx, s.event(s.Now(), wecom.EventChangeExternalContact, wecom.ChangeDelExternalContact).
		str("UserID", handoverUserID).str("ExternalUserID", externalUserID).str("Source", wecom.SourceDeleteByTransfer))
	s.emit(ctx, s.event(s.Now(), wecom.EventChangeExternalContact, wecom.ChangeAddExternalContact).
		str("UserID", takeoverUserID).str("ExternalUserID", externalUserID))
	return nil
}

// FailTransfer reports a handover that failed (transfer_fail): reason is
// wecom.FailReasonCustomerRefused or FailReasonCustomerLimitExceed. The
// customer stays with their member.
func (s *Server) FailTransfer(ctx context.Context, takeoverUserID, externalUserID, reason string) error {
	c := s.Corp
	c.mu.RLock()
	known := c.contacts[externalUserID] != nil
	c.mu.RUnlock()
	if !known {
		return fmt.Errorf("wecomtest: customer %q does not exist", externalUserID)
	}
	s.emit(ctx, s.event(s.Now(), wecom.EventChangeExternalContact, wecom.ChangeTransferFail).
		str("FailReason", reason).str("UserID", takeoverUserID).str("ExternalUserID", externalUserID))
	return nil
}

// chatEvent starts a change_external_chat message.
func (s *Server) chatEvent(chatID, change, detail string) *message {
	m := s.event(s.Now(), wecom.EventChangeExternalChat, "").str("ChatId", chatID).str("ChangeType", change)
	if detail != "" {
		m.str("UpdateDetail", detail)
	}
	return m
}

// liveGroup returns a group that is not dismissed. The caller holds c.mu.
func (c *Corp) liveGroup(chatID string) (*groupRec, error) {
	g := c.groups[chatID]
	if g == nil || g.Dismissed {
		return nil, fmt.Errorf("wecomtest: no live group %q", chatID)
	}
	return g, nil
}

// CreateGroup is a member creating a customer group with members (staff
// userids or external_userids) (change_external_chat/create).
func (s *Server) CreateGroup(ctx context.Context, owner, name string, memberIDs ...string) (Group, error) {
	c := s.Corp
	c.mu.Lock()
	g, err := c.addGroup(owner, name, memberIDs, wecom.JoinByInvite)
	if err != nil {
		c.mu.Unlock()
		return Group{}, err
	}
	out := g.snapshot()
	c.mu.Unlock()
	s.emit(ctx, s.chatEvent(out.ChatID, wecom.ChangeChatCreate, ""))
	return out, nil
}

// JoinGroup adds members to a group (update/add_member). scene is how they
// came: wecom.JoinByInvite, JoinByInviteLink or JoinByQRCode; the callback
// reports invitations as JoinScene 0 and QR scans as 3.
func (s *Server) JoinGroup(ctx context.Context, chatID string, memberIDs []string, scene int) error {
	if len(memberIDs) == 0 {
		return fmt.Errorf("wecomtest: nobody joins")
	}
	c := s.Corp
	c.mu.Lock()
	g, err := c.liveGroup(chatID)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	var joined []Member
	for _, id := range memberIDs {
		if g.memberIndex(id) >= 0 || slices.ContainsFunc(joined, func(m Member) bool { return m.UserID == id }) {
			c.mu.Unlock()
			return fmt.Errorf("wecomtest: %s is already in group %s", id, chatID)
		}
		m, err := c.newMember(id, scene, g.Owner)
		if err != nil {
			c.mu.Unlock()
			return err
		}
		joined = append(joined, m)
	}
	last := g.MemberVersion
	g.Members = append(g.Members, joined...)
	g.ver++
	g.MemberVersion = memberVersion(g.ChatID, g.ver)
	cur := g.MemberVersion
	c.mu.Unlock()
	cbScene := wecom.JoinSceneInvited
	if scene == wecom.JoinByQRCode {
		cbScene = wecom.JoinSceneQRCode
	}
	m := s.chatEvent(chatID, wecom.ChangeChatUpdate, wecom.UpdateAddMember).num("JoinScene", int64(cbScene))
	s.emit(ctx, memberChange(m, memberIDs, last, cur))
	return nil
}

// memberChange finishes a member change message: WeCom lists at most 1,000 members.
func memberChange(m *message, ids []string, last, cur string) *message {
	m.num("MemChangeCnt", int64(len(ids)))
	return m.list("MemChangeList", ids[:min(len(ids), 1000)]).str("LastMemVer", last).str("CurMemVer", cur)
}

// LeaveGroup removes members from a group (update/del_member); quitScene is
// wecom.QuitSceneSelf or QuitSceneRemoved. The owner cannot leave.
func (s *Server) LeaveGroup(ctx context.Context, chatID string, memberIDs []string, quitScene int) error {
	if len(memberIDs) == 0 {
		return fmt.Errorf("wecomtest: nobody leaves")
	}
	c := s.Corp
	c.mu.Lock()
	g, err := c.liveGroup(chatID)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	for _, id := range memberIDs {
		if id == g.Owner {
			c.mu.Unlock()
			return fmt.Errorf("wecomtest: the owner cannot leave group %s", chatID)
		}
		if g.memberIndex(id) < 0 {
			c.mu.Unlock()
			return fmt.Errorf("wecomtest: %s is not in group %s", id, chatID)
		}
	}
	last := g.MemberVersion
	g.Members = slices.DeleteFunc(g.Members, func(m Member) bool { return slices.Contains(memberIDs, m.UserID) })
	g.Admins = slices.DeleteFunc(g.Admins, func(a string) bool { return slices.Contains(memberIDs, a) })
	g.ver++
	g.MemberVersion = memberVersion(g.ChatID, g.ver)
	cur := g.MemberVersion
	c.mu.Unlock()
	m := s.chatEvent(chatID, wecom.ChangeChatUpdate, wecom.UpdateDelMember).num("QuitScene", int64(quitScene))
	s.emit(ctx, memberChange(m, memberIDs, last, cur))
	return nil
}

// ChangeGroupOwner hands a group to another member of the corp who is in it
// (update/change_owner).
func (s *Server) ChangeGroupOwner(ctx context.Context, chatID, newOwner string) error {
	return s.changeGroup(ctx, chatID, wecom.UpdateChangeOwner, func(c *Corp, g *groupRec) error {
		i := g.memberIndex(newOwner)
		if i < 0 || g.Members[i].Type != wecom.MemberStaff || c.liveStaff(newOwner) == nil {
			return fmt.Errorf("wecomtest: %s is not a staff member in group %s", newOwner, chatID)
		}
		g.Owner = newOwner
		return nil
	})
}

// ChangeGroupName renames a group (update/change_name).
func (s *Server) ChangeGroupName(ctx context.Context, chatID, name string) error {
	return s.changeGroup(ctx, chatID, wecom.UpdateChangeName, func(_ *Corp, g *groupRec) error {
		g.Name = name
		return nil
	})
}

// ChangeGroupNotice sets a group's notice (update/change_notice).
func (s *Server) ChangeGroupNotice(ctx context.Context, chatID, notice string) error {
	return s.changeGroup(ctx, chatID, wecom.UpdateChangeNotice, func(_ *Corp, g *groupRec) error {
		g.Notice = notice
		return nil
	})
}

func (s *Server) changeGroup(ctx context.Context, chatID, detail string, change func(*Corp, *groupRec) error) error {
	c := s.Corp
	c.mu.Lock()
	g, err := c.liveGroup(chatID)
	if err == nil {
		err = change(c, g)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	s.emit(ctx, s.chatEvent(chatID, wecom.ChangeChatUpdate, detail))
	return nil
}

// DismissGroup is the owner dismissing a group (change_external_chat/dismiss).
func (s *Server) DismissGroup(ctx context.Context, chatID string) error {
	c := s.Corp
	c.mu.Lock()
	g, err := c.liveGroup(chatID)
	if err == nil {
		g.Dismissed = true
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	s.emit(ctx, s.chatEvent(chatID, wecom.ChangeChatDismiss, ""))
	return nil
}

func (s *Server) tagEvent(change, id, tagType string) *message {
	m := s.event(s.Now(), wecom.EventChangeExternalTag, "").str("Id", id)
	if tagType != "" {
		m.str("TagType", tagType)
	}
	return m.str("ChangeType", change)
}

// CreateTagGroup is an admin creating a corp tag group with tags in WeCom
// (change_external_tag/create, TagType tag_group).
func (s *Server) CreateTagGroup(ctx context.Context, name string, order int64, tagNames ...string) (TagGroup, error) {
	if len(tagNames) == 0 {
		return TagGroup{}, fmt.Errorf("wecomtest: a tag group needs a tag")
	}
	c := s.Corp
	c.mu.Lock()
	g, err := c.addTagGroup(name, order)
	for _, n := range tagNames {
		if err != nil {
			break
		}
		_, err = c.addTag(g, n, 0)
	}
	if err != nil {
		if g != nil {
			c.deleteTagGroup(g)
		}
		c.mu.Unlock()
		return TagGroup{}, err
	}
	out := g.snapshot(false)
	c.mu.Unlock()
	s.emit(ctx, s.tagEvent(wecom.ChangeTagCreate, out.ID, wecom.TagTypeTagGroup))
	return out, nil
}

// CreateTag is an admin adding a tag to a group (create, TagType tag).
func (s *Server) CreateTag(ctx context.Context, groupID, name string, order int64) (Tag, error) {
	c := s.Corp
	c.mu.Lock()
	g := c.tagGroup(groupID)
	if g == nil || g.Deleted {
		c.mu.Unlock()
		return Tag{}, fmt.Errorf("wecomtest: no tag group %q", groupID)
	}
	t, err := c.addTag(g, name, order)
	c.mu.Unlock()
	if err != nil {
		return Tag{}, err
	}
	s.emit(ctx, s.tagEvent(wecom.ChangeTagCreate, t.ID, wecom.TagTypeTag))
	return t.Tag, nil
}

// UpdateTag renames (name ≠ "") and reorders a tag or a tag group (update).
func (s *Server) UpdateTag(ctx context.Context, id, name string, order int64) error {
	c := s.Corp
	c.mu.Lock()
	tagType := ""
	if t := c.tags[id]; t != nil && !t.Deleted {
		tagType = wecom.TagTypeTag
		if name != "" {
			t.Name = name
		}
		t.Order = order
	} else if g := c.tagGroup(id); g != nil && !g.Deleted {
		tagType = wecom.TagTypeTagGroup
		if name != "" {
			g.Name = name
		}
		g.Order = order
	}
	c.mu.Unlock()
	if tagType == "" {
		return fmt.Errorf("wecomtest: no tag or tag group %q", id)
	}
	s.emit(ctx, s.tagEvent(wecom.ChangeTagUpdate, id, tagType))
	return nil
}

// DeleteTag deletes a tag or a whole tag group (delete); customers lose the
// tags. Deleting a group's last tag deletes the group, as in WeCom; the
// callback names the tag.
func (s *Server) DeleteTag(ctx context.Context, id string) error {
	c := s.Corp
	c.mu.Lock()
	tagType := ""
	if t := c.tags[id]; t != nil && !t.Deleted {
		tagType = wecom.TagTypeTag
		c.deleteTagAndEmptyGroup(t)
	} else if g := c.tagGroup(id); g != nil && !g.Deleted {
		tagType = wecom.TagTypeTagGroup
		c.deleteTagGroup(g)
	}
	c.mu.Unlock()
	if tagType == "" {
		return fmt.Errorf("wecomtest: no tag or tag group %q", id)
	}
	s.emit(ctx, s.tagEvent(wecom.ChangeTagDelete, id, tagType))
	return nil
}

// ShuffleTags reorders the tags of a group to tagIDs' order, first first
// (shuffle, Id = the group).
func (s *Server) ShuffleTags(ctx context.Context, groupID string, tagIDs []string) error {
	c := s.Corp
	c.mu.Lock()
	g := c.tagGroup(groupID)
	if g == nil || g.Deleted {
		c.mu.Unlock()
		return fmt.Errorf("wecomtest: no tag group %q", groupID)
	}
	for i, id := range tagIDs {
		t := c.tags[id]
		if t == nil || t.group != g {
			c.mu.Unlock()
			return fmt.Errorf("wecomtest: tag %q is not in group %q", id, groupID)
		}
		t.Order = int64(len(tagIDs) - i)
	}
	c.mu.Unlock()
	s.emit(ctx, s.tagEvent(wecom.ChangeTagShuffle, groupID, ""))
	return nil
}

// ShuffleTagGroups reorders the tag groups to groupIDs' order (shuffle, empty Id).
func (s *Server) ShuffleTagGroups(ctx context.Context, groupIDs []string) error {
	c := s.Corp
	c.mu.Lock()
	for i, id := range groupIDs {
		g := c.tagGroup(id)
		if g == nil {
			c.mu.Unlock()
			return fmt.Errorf("wecomtest: no tag group %q", id)
		}
		g.Order = int64(len(groupIDs) - i)
	}
	c.mu.Unlock()
	s.emit(ctx, s.tagEvent(wecom.ChangeTagShuffle, "", ""))
	return nil
}
