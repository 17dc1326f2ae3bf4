package wecomtest

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
)

// coreHandlers are the contact, directory, tag and group APIs (handlers.go
// merges them with the other areas').
var coreHandlers = map[string]handler{
	"gettoken":                             {fn: func(s *Server, q *request) (map[string]any, *apiError) { return s.gettoken(q) }},
	"department/list":                      {fn: (*Server).departmentList},
	"user/list":                            {fn: (*Server).userList},
	"user/get":                             {fn: (*Server).userGet},
	"user/list_id":                         {post: true, fn: (*Server).userListID},
	"externalcontact/get_follow_user_list": {fn: (*Server).followUserList},
	"externalcontact/list":                 {fn: (*Server).contactList},
	"externalcontact/get":                  {fn: (*Server).contactGet},
	"externalcontact/batch/get_by_user":    {post: true, fn: (*Server).batchGetByUser},
	"externalcontact/remark":               {post: true, fn: (*Server).remark},
	"externalcontact/get_corp_tag_list":    {post: true, fn: (*Server).getCorpTagList},
	"externalcontact/add_corp_tag":         {post: true, fn: (*Server).addCorpTag},
	"externalcontact/edit_corp_tag":        {post: true, fn: (*Server).editCorpTag},
	"externalcontact/del_corp_tag":         {post: true, fn: (*Server).delCorpTag},
	"externalcontact/mark_tag":             {post: true, fn: (*Server).markTag},
	"externalcontact/groupchat/list":       {post: true, fn: (*Server).groupChatList},
	"externalcontact/groupchat/get":        {post: true, fn: (*Server).groupChatGet},
	"externalcontact/add_contact_way":      {post: true, fn: (*Server).addContactWay},
	"externalcontact/get_contact_way":      {post: true, fn: (*Server).getContactWay},
	"externalcontact/del_contact_way":      {post: true, fn: (*Server).delContactWay},
	"externalcontact/send_welcome_msg":     {post: true, fn: (*Server).sendWelcomeMsg},
}

// Page sizes WeCom uses.
const (
	batchDefaultLimit = 50  // batch/get_by_user without a limit
	followUsersPage   = 500 // externalcontact/get's follow_user page
)

// cursor is an opaque pagination position: a key (a userid, or empty) and
// the last sequence number returned.
func encodeCursor(key string, seq uint64) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s\x00%d", key, seq))
}

func decodeCursor(c string) (string, uint64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", 0, false
	}
	key, num, ok := strings.Cut(string(b), "\x00")
	if !ok {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	return key, seq, err == nil
}

func unix(t time.Time) int64 { return t.Unix() }

func (s *Server) departmentList(q *request) (map[string]any, *apiError) {
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	var root int64
	if v := q.query("id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || c.depts[id] == nil {
			return nil, fail(60003, "department not found")
		}
		root = id
	}
	var out []map[string]any
	for _, d := range c.sortedDepts() {
		if root != 0 && !c.under(d.ID, root) {
			continue
		}
		out = append(out, map[string]any{"id": d.ID, "name": d.Name, "parentid": d.ParentID, "order": d.Order})
	}
	return map[string]any{"department": out}, nil
}

func (c *Corp) sortedDepts() []*Department {
	out := make([]*Department, 0, len(c.depts))
	for _, d := range c.depts {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *Department) int { return int(a.ID - b.ID) })
	return out
}

// under reports whether department id is root or below it.
func (c *Corp) under(id, root int64) bool {
	for seen := 0; id != 0 && seen < 64; seen++ {
		if id == root {
			return true
		}
		d := c.depts[id]
		if d == nil {
			return false
		}
		id = d.ParentID
	}
	return false
}

func userJSON(st Staff) map[string]any {
	m := map[string]any{
		"userid": st.UserID, "name": st.Name, "department": st.Departments, "main_department": st.MainDepartment,
		"position": st.Position, "status": st.Status,
	}
	if st.Alias != "" {
		m["alias"] = st.Alias
	}
	if st.Mobile != "" {
		m["mobile"] = st.Mobile
	}
	if st.Gender != 0 {
		m["gender"] = strconv.Itoa(st.Gender)
	}
	return m
}

func (s *Server) userList(q *request) (map[string]any, *apiError) {
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	dept, err := strconv.ParseInt(q.query("department_id"), 10, 64)
	if err != nil || c.depts[dept] == nil {
		return nil, fail(60003, "department not found")
	}
	child := q.query("fetch_child") == "1"
	out := []map[string]any{}
	for _, id := range c.staffIDs {
		st := c.liveStaff(id)
		if st == nil {
			continue
		}
		if slices.ContainsFunc(st.Departments, func(d int64) bool { return d == dept || (child && c.under(d, dept)) }) {
			out = append(out, userJSON(st.Staff))
		}
	}
	return map[string]any{"userlist": out}, nil
}

func (s *Server) userGet(q *request) (map[string]any, *apiError) {
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	st := c.liveStaff(q.query("userid"))
	if st == nil {
		return nil, fail(wecom.CodeUserNotFound, "userid not found")
	}
	return userJSON(st.Staff), nil
}

func (s *Server) userListID(q *request) (map[string]any, *apiError) {
	var in struct {
		Cursor string `json:"cursor"`
		Limit  *int   `json:"limit"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	limit := wecom.MaxUserIDsPerPage
	if in.Limit != nil {
		q.call.Limit = *in.Limit
		if *in.Limit < 1 || *in.Limit > wecom.MaxUserIDsPerPage {
			return nil, fail(wecom.CodeInvalidParam, "invalid limit")
		}
		limit = *in.Limit
	}
	q.call.Cursor = in.Cursor
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	start := 0
	if in.Cursor != "" {
		_, n, ok := decodeCursor(in.Cursor)
		if !ok {
			return nil, fail(wecom.CodeInvalidCursor, "invalid cursor")
		}
		start = int(n)
	}
	var pairs []map[string]any
	i := 0
	for _, id := range c.staffIDs {
		st := c.liveStaff(id)
		if st == nil {
			continue
		}
		for _, d := range st.Departments {
			if i >= start && len(pairs) < limit {
				pairs = append(pairs, map[string]any{"userid": id, "department": d})
			}
			i++
		}
	}
	next := ""
	if start+len(pairs) < i {
		next = encodeCursor("", uint64(start+len(pairs)))
	}
	return map[string]any{"dept_user": pairs, "next_cursor": next}, nil
}

func (s *Server) followUserList(_ *request) (map[string]any, *apiError) {
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := []string{}
	for _, id := range c.staffIDs {
		if st := c.liveStaff(id); st != nil && st.Status == wecom.UserActive {
			out = append(out, id)
		}
	}
	return map[string]any{"follow_user": out}, nil
}

func (s *Server) contactList(q *request) (map[string]any, *apiError) {
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	st := c.liveStaff(q.query("userid"))
	if st == nil {
		return nil, fail(wecom.CodeUserNotFound, "userid not found")
	}
	if len(st.follows) == 0 {
		return nil, fail(wecom.CodeNotExternalContact, "not external contact")
	}
	out := make([]string, len(st.follows))
	for i, f := range st.follows {
		out[i] = f.ExternalUserID
	}
	return map[string]any{"external_userid": out}, nil
}

// contactOut is an external_contact object. Structs rather than maps keep
// a full sync of 100k customers cheap to serve.
type contactOut struct {
	ExternalUserID string `json:"external_userid"`
	Name           string `json:"name"`
	Avatar         string `json:"avatar,omitempty"`
	Type           int    `json:"type"`
	Gender         int    `json:"gender"`
	UnionID        string `json:"unionid,omitempty"`
	CorpName       string `json:"corp_name,omitempty"`
	CorpFullName   string `json:"corp_full_name,omitempty"`
	Position       string `json:"position,omitempty"`
}

func contactJSON(ct Contact) contactOut {
	out := contactOut{ExternalUserID: ct.ExternalUserID, Name: ct.Name, Avatar: ct.Avatar, Type: ct.Type, Gender: ct.Gender, UnionID: ct.UnionID}
	if ct.Type == wecom.ContactWeCom {
		out.CorpName, out.CorpFullName, out.Position = ct.CorpName, ct.CorpFullName, ct.Position
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// tagOut is a tag of externalcontact/get's follow_user.
type tagOut struct {
	GroupName string `json:"group_name"`
	TagName   string `json:"tag_name"`
	TagID     string `json:"tag_id"`
	Type      int    `json:"type"`
}

// followOut is a relation: follow_info of batch/get_by_user (TagID) or
// follow_user of externalcontact/get (Tags).
type followOut struct {
	UserID         string    `json:"userid"`
	Remark         string    `json:"remark"`
	Description    string    `json:"description"`
	CreateTime     int64     `json:"createtime"`
	TagID          *[]string `json:"tag_id,omitempty"`
	Tags           *[]tagOut `json:"tags,omitempty"`
	RemarkCorpName string    `json:"remark_corp_name,omitempty"`
	RemarkMobiles  []string  `json:"remark_mobiles"`
	OperUserID     string    `json:"oper_userid"`
	AddWay         int       `json:"add_way"`
	State          string    `json:"state,omitempty"`
}

func followBase(f *followRec) followOut {
	return followOut{
		UserID: f.UserID, Remark: f.Remark, Description: f.Description, CreateTime: unix(f.CreateTime),
		RemarkCorpName: f.RemarkCorpName, RemarkMobiles: nonNil(f.RemarkMobiles), OperUserID: f.OperUserID, AddWay: f.AddWay, State: f.State,
	}
}

type batchEntry struct {
	ExternalContact contactOut `json:"external_contact"`
	FollowInfo      followOut  `json:"follow_info"`
}

func (s *Server) contactGet(q *request) (map[string]any, *apiError) {
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	r := c.contacts[q.query("external_userid")]
	if r == nil {
		return nil, fail(wecom.CodeInvalidExternalUser, "invalid external userid")
	}
	var live []*followRec
	for _, f := range r.follows {
		if c.liveStaff(f.UserID) != nil {
			live = append(live, f)
		}
	}
	if len(live) == 0 {
		return nil, fail(wecom.CodeNotExternalContact, "not external contact")
	}
	start := 0
	if cur := q.query("cursor"); cur != "" {
		_, n, ok := decodeCursor(cur)
		if !ok || int(n) > len(live) {
			return nil, fail(wecom.CodeInvalidCursor, "invalid cursor")
		}
		start = int(n)
	}
	end := min(start+followUsersPage, len(live))
	fus := make([]followOut, 0, end-start)
	for _, f := range live[start:end] {
		m := followBase(f)
		tags := []tagOut{}
		for _, id := range f.TagIDs {
			if t := c.tags[id]; t != nil && !t.Deleted {
				tags = append(tags, tagOut{GroupName: t.group.Name, TagName: t.Name, TagID: t.ID, Type: 1})
			}
		}
		m.Tags = &tags
		fus = append(fus, m)
	}
	next := ""
	if end < len(live) {
		next = encodeCursor("", uint64(end))
	}
	return map[string]any{"external_contact": contactJSON(r.Contact), "follow_user": fus, "next_cursor": next}, nil
}

func (s *Server) batchGetByUser(q *request) (map[string]any, *apiError) {
	var in struct {
		UserIDList []string `json:"userid_list"`
		Cursor     string   `json:"cursor"`
		Limit      *int     `json:"limit"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	q.call.Cursor = in.Cursor
	limit := batchDefaultLimit
	if in.Limit != nil && *in.Limit != 0 {
		q.call.Limit = *in.Limit
		if *in.Limit < 0 || *in.Limit > wecom.MaxContactsPerPage {
			return nil, fail(wecom.CodeInvalidParam, "invalid limit, should be in [1, 100]")
		}
		limit = *in.Limit
	}
	if len(in.UserIDList) == 0 || len(in.UserIDList) > wecom.MaxUsersPerBatch {
		return nil, fail(wecom.CodeInvalidParam, "invalid userid_list size")
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	ui, after := 0, uint64(0)
	if in.Cursor != "" {
		uid, seq, ok := decodeCursor(in.Cursor)
		ui = slices.Index(in.UserIDList, uid)
		if !ok || ui < 0 {
			return nil, fail(wecom.CodeInvalidCursor, "invalid cursor")
		}
		after = seq
	}
	list := make([]batchEntry, 0, limit)
	next := ""
	for ; ui < len(in.UserIDList); ui, after = ui+1, 0 {
		st := c.liveStaff(in.UserIDList[ui])
		if st == nil {
			continue // unknown or deleted members contribute nothing
		}
		fs := st.follows
		i := sort.Search(len(fs), func(i int) bool { return fs[i].seq > after })
		for ; i < len(fs); i++ {
			if len(list) == limit {
				last := fs[i-1]
				next = encodeCursor(st.UserID, last.seq)
				break
			}
			f := fs[i]
			info := followBase(f)
			tags := nonNil(f.TagIDs)
			info.TagID = &tags
			list = append(list, batchEntry{ExternalContact: contactJSON(c.contacts[f.ExternalUserID].Contact), FollowInfo: info})
		}
		if next != "" {
			break
		}
		if len(list) == limit && s.moreAfter(in.UserIDList[ui+1:]) {
			next = encodeCursor(in.UserIDList[ui+1], 0)
			break
		}
	}
	return map[string]any{"external_contact_list": list, "next_cursor": next}, nil
}

// moreAfter reports whether any of the members has a customer. The caller holds c.mu.
func (s *Server) moreAfter(userIDs []string) bool {
	for _, id := range userIDs {
		if st := s.Corp.liveStaff(id); st != nil && len(st.follows) > 0 {
			return true
		}
	}
	return false
}

func (s *Server) remark(q *request) (map[string]any, *apiError) {
	var in struct {
		UserID         string    `json:"userid"`
		ExternalUserID string    `json:"external_userid"`
		Remark         *string   `json:"remark"`
		Description    *string   `json:"description"`
		RemarkCompany  *string   `json:"remark_company"`
		RemarkMobiles  *[]string `json:"remark_mobiles"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	if in.Remark != nil && len([]rune(*in.Remark)) > 20 {
		return nil, fail(wecom.CodeInvalidParam, "remark exceeds 20 characters")
	}
	if in.Description != nil && len([]rune(*in.Description)) > 150 {
		return nil, fail(wecom.CodeInvalidParam, "description exceeds 150 characters")
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.liveStaff(in.UserID) == nil {
		return nil, fail(wecom.CodeUserNotFound, "userid not found")
	}
	f := c.follow(in.UserID, in.ExternalUserID)
	if f == nil {
		return nil, fail(wecom.CodeNotExternalContact, "not external contact")
	}
	if in.Remark != nil {
		f.Remark = *in.Remark
	}
	if in.Description != nil {
		f.Description = *in.Description
	}
	if in.RemarkCompany != nil {
		f.RemarkCorpName = *in.RemarkCompany
	}
	if in.RemarkMobiles != nil {
		f.RemarkMobiles = slices.DeleteFunc(slices.Clone(*in.RemarkMobiles), func(m string) bool { return m == "" })
	}
	return nil, nil
}

func tagJSON(t Tag, withDeleted bool) map[string]any {
	m := map[string]any{"id": t.ID, "name": t.Name, "create_time": unix(t.CreateTime), "order": t.Order}
	if withDeleted {
		m["deleted"] = t.Deleted
	}
	return m
}

func tagGroupJSON(g TagGroup, tags []map[string]any) map[string]any {
	return map[string]any{"group_id": g.ID, "group_name": g.Name, "create_time": unix(g.CreateTime), "order": g.Order, "tag": tags}
}

func (s *Server) getCorpTagList(q *request) (map[string]any, *apiError) {
	var in struct {
		TagID   []string `json:"tag_id"`
		GroupID []string `json:"group_id"`
	}
	if len(strings.TrimSpace(string(q.body))) > 0 {
		if e := q.decode(&in); e != nil {
			return nil, e
		}
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := []map[string]any{}
	for _, g := range c.sortedTagGroups() {
		var tags []map[string]any
		switch {
		case len(in.GroupID) > 0: // WeCom ignores tag_id when group_id is given
			if g.Deleted || !slices.Contains(in.GroupID, g.ID) {
				continue
			}
			for _, t := range g.sortedTags() {
				if !t.Deleted {
					tags = append(tags, tagJSON(t.Tag, false))
				}
			}
		case len(in.TagID) > 0: // deleted tags are reported, marked deleted
			for _, t := range g.sortedTags() {
				if slices.Contains(in.TagID, t.ID) {
					tags = append(tags, tagJSON(t.Tag, true))
				}
			}
			if len(tags) == 0 {
				continue
			}
		default:
			if g.Deleted {
				continue
			}
			for _, t := range g.sortedTags() {
				if !t.Deleted {
					tags = append(tags, tagJSON(t.Tag, false))
				}
			}
		}
		if tags == nil {
			tags = []map[string]any{}
		}
		out = append(out, tagGroupJSON(g.TagGroup, tags))
	}
	return map[string]any{"tag_group": out}, nil
}

func (s *Server) addCorpTag(q *request) (map[string]any, *apiError) {
	var in struct {
		GroupID   string `json:"group_id"`
		GroupName string `json:"group_name"`
		Order     int64  `json:"order"`
		Tag       []struct {
			Name  string `json:"name"`
			Order int64  `json:"order"`
		} `json:"tag"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	if len(in.Tag) == 0 {
		return nil, fail(wecom.CodeInvalidParam, "tag list is empty")
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.liveTagCount()+len(in.Tag) > 3000 {
		return nil, fail(wecom.CodeTooManyTags, "corp tag count reaches limit")
	}
	var g *tagGroupRec
	switch {
	case in.GroupID != "":
		if g = c.tagGroup(in.GroupID); g == nil || g.Deleted {
			return nil, fail(wecom.CodeInvalidTagID, "invalid tag group id")
		}
	case in.GroupName != "":
		for _, x := range c.tagGroups {
			if !x.Deleted && x.Name == in.GroupName {
				g = x
			}
		}
	default:
		return nil, fail(wecom.CodeInvalidParam, "group_id or group_name is required")
	}
	seen := map[string]bool{}
	for _, t := range in.Tag {
		if t.Name == "" || len([]rune(t.Name)) > 30 {
			return nil, fail(wecom.CodeInvalidParam, "invalid tag name")
		}
		if seen[t.Name] {
			return nil, fail(wecom.CodeTagNameExists, "tag name duplicated")
		}
		seen[t.Name] = true
		if g != nil && slices.ContainsFunc(g.tags, func(x *tagRec) bool { return !x.Deleted && x.Name == t.Name }) {
			return nil, fail(wecom.CodeTagNameExists, "tag name exists")
		}
	}
	if g == nil {
		var err error
		if g, err = c.addTagGroup(in.GroupName, in.Order); err != nil {
			return nil, fail(wecom.CodeInvalidParam, "%v", err)
		}
	}
	tags := []map[string]any{}
	for _, t := range in.Tag {
		tr, err := c.addTag(g, t.Name, t.Order)
		if err != nil {
			return nil, fail(wecom.CodeTagNameExists, "%v", err)
		}
		tags = append(tags, tagJSON(tr.Tag, false))
	}
	return map[string]any{"tag_group": tagGroupJSON(g.TagGroup, tags)}, nil
}

func (s *Server) editCorpTag(q *request) (map[string]any, *apiError) {
	var in struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Order *int64 `json:"order"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	if len([]rune(in.Name)) > 30 {
		return nil, fail(wecom.CodeInvalidParam, "invalid name")
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.tags[in.ID]; t != nil && !t.Deleted {
		if in.Name != "" && in.Name != t.Name && slices.ContainsFunc(t.group.tags, func(x *tagRec) bool { return !x.Deleted && x.Name == in.Name }) {
			return nil, fail(wecom.CodeTagNameExists, "tag name exists")
		}
		if in.Name != "" {
			t.Name = in.Name
		}
		if in.Order != nil {
			t.Order = *in.Order
		}
		return nil, nil
	}
	if g := c.tagGroup(in.ID); g != nil && !g.Deleted {
		if in.Name != "" && in.Name != g.Name && slices.ContainsFunc(c.tagGroups, func(x *tagGroupRec) bool { return !x.Deleted && x.Name == in.Name }) {
			return nil, fail(wecom.CodeTagNameExists, "tag group name exists")
		}
		if in.Name != "" {
			g.Name = in.Name
		}
		if in.Order != nil {
			g.Order = *in.Order
		}
		return nil, nil
	}
	return nil, fail(wecom.CodeInvalidTagID, "invalid tag id")
}

func (s *Server) delCorpTag(q *request) (map[string]any, *apiError) {
	var in struct {
		TagID   []string `json:"tag_id"`
		GroupID []string `json:"group_id"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	if len(in.TagID) == 0 && len(in.GroupID) == 0 {
		return nil, fail(wecom.CodeInvalidParam, "tag_id and group_id are both empty")
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range in.TagID {
		if t := c.tags[id]; t == nil || t.Deleted {
			return nil, fail(wecom.CodeInvalidTagID, "invalid tag id")
		}
	}
	for _, id := range in.GroupID {
		if g := c.tagGroup(id); g == nil || g.Deleted {
			return nil, fail(wecom.CodeInvalidTagID, "invalid tag group id")
		}
	}
	for _, id := range in.TagID {
		c.deleteTagAndEmptyGroup(c.tags[id])
	}
	for _, id := range in.GroupID {
		c.deleteTagGroup(c.tagGroup(id))
	}
	return nil, nil
}

// deleteTagAndEmptyGroup deletes a tag, and its group when no tag is left,
// as WeCom does. It reports whether the group went too. The caller holds c.mu.
func (c *Corp) deleteTagAndEmptyGroup(t *tagRec) bool {
	c.deleteTag(t)
	if !slices.ContainsFunc(t.group.tags, func(x *tagRec) bool { return !x.Deleted }) {
		t.group.Deleted = true
		return true
	}
	return false
}

func (c *Corp) deleteTagGroup(g *tagGroupRec) {
	for _, t := range g.tags {
		if !t.Deleted {
			c.deleteTag(t)
		}
	}
	g.Deleted = true
}

func (s *Server) markTag(q *request) (map[string]any, *apiError) {
	var in struct {
		UserID         string   `json:"userid"`
		ExternalUserID string   `json:"external_userid"`
		AddTag         []string `json:"add_tag"`
		RemoveTag      []string `json:"remove_tag"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	if len(in.AddTag) == 0 && len(in.RemoveTag) == 0 {
		return nil, fail(wecom.CodeInvalidParam, "add_tag and remove_tag are both empty")
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.liveStaff(in.UserID) == nil {
		return nil, fail(wecom.CodeUserNotFound, "userid not found")
	}
	f := c.follow(in.UserID, in.ExternalUserID)
	if f == nil {
		return nil, fail(wecom.CodeNotExternalContact, "not external contact")
	}
	for _, id := range append(slices.Clone(in.AddTag), in.RemoveTag...) {
		if t := c.tags[id]; t == nil || t.Deleted {
			return nil, fail(wecom.CodeInvalidTagID, "invalid tag id")
		}
	}
	f.TagIDs = applyMarks(f.TagIDs, in.AddTag, in.RemoveTag)
	return nil, nil
}

// applyMarks returns tags with add added and remove removed, in a new slice.
func applyMarks(tags, add, remove []string) []string {
	out := slices.DeleteFunc(slices.Clone(tags), func(id string) bool { return slices.Contains(remove, id) })
	for _, id := range add {
		if !slices.Contains(out, id) && !slices.Contains(remove, id) {
			out = append(out, id)
		}
	}
	return out
}

func (s *Server) groupChatList(q *request) (map[string]any, *apiError) {
	var in struct {
		StatusFilter int `json:"status_filter"`
		OwnerFilter  struct {
			UserIDList []string `json:"userid_list"`
		} `json:"owner_filter"`
		Cursor string `json:"cursor"`
		Limit  *int   `json:"limit"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	q.call.Cursor = in.Cursor
	if in.Limit == nil {
		return nil, fail(wecom.CodeInvalidParam, "limit is required")
	}
	q.call.Limit = *in.Limit
	if *in.Limit < 1 || *in.Limit > wecom.MaxGroupChatsPage {
		return nil, fail(wecom.CodeInvalidParam, "invalid limit, should be in [1, 1000]")
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	var after uint64
	if in.Cursor != "" {
		_, seq, ok := decodeCursor(in.Cursor)
		if !ok {
			return nil, fail(wecom.CodeInvalidCursor, "invalid cursor")
		}
		after = seq
	}
	ids := c.groupIDs
	i := sort.Search(len(ids), func(i int) bool { return c.groups[ids[i]].seq > after })
	out := []map[string]any{}
	next := ""
	for ; i < len(ids); i++ {
		g := c.groups[ids[i]]
		if g.Dismissed || (in.StatusFilter != 0 && g.Status != in.StatusFilter) ||
			(len(in.OwnerFilter.UserIDList) > 0 && !slices.Contains(in.OwnerFilter.UserIDList, g.Owner)) {
			continue
		}
		if len(out) == *in.Limit {
			next = encodeCursor("", c.groups[ids[i-1]].seq)
			break
		}
		out = append(out, map[string]any{"chat_id": g.ChatID, "status": g.Status})
	}
	return map[string]any{"group_chat_list": out, "next_cursor": next}, nil
}

func (s *Server) groupChatGet(q *request) (map[string]any, *apiError) {
	var in struct {
		ChatID   string `json:"chat_id"`
		NeedName int    `json:"need_name"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	g := c.groups[in.ChatID]
	switch {
	case g == nil:
		return nil, fail(wecom.CodeChatNotFound, "chatid not found")
	case g.Dismissed:
		return nil, fail(wecom.CodeChatDismissed, "chat has been dismissed")
	}
	members := make([]map[string]any, 0, len(g.Members))
	for _, m := range g.Members {
		mj := map[string]any{"userid": m.UserID, "type": m.Type, "join_time": unix(m.JoinTime), "join_scene": m.JoinScene,
			"group_nickname": m.GroupNickname}
		if m.Invitor != "" {
			mj["invitor"] = map[string]any{"userid": m.Invitor}
		}
		if m.UnionID != "" {
			mj["unionid"] = m.UnionID
		}
		if in.NeedName == 1 {
			mj["name"] = m.Name
		}
		members = append(members, mj)
	}
	admins := make([]map[string]any, 0, len(g.Admins))
	for _, a := range g.Admins {
		admins = append(admins, map[string]any{"userid": a})
	}
	return map[string]any{"group_chat": map[string]any{
		"chat_id": g.ChatID, "name": g.Name, "owner": g.Owner, "create_time": unix(g.CreateTime), "notice": g.Notice,
		"member_list": members, "admin_list": admins, "member_version": g.MemberVersion,
	}}, nil
}

func (s *Server) addContactWay(q *request) (map[string]any, *apiError) {
	var in struct {
		wecom.ContactWay
		SkipVerify *bool `json:"skip_verify"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	w := in.ContactWay
	w.SkipVerify = in.SkipVerify == nil || *in.SkipVerify // WeCom's default is true
	switch {
	case w.Type == 0:
		return nil, fail(41037, "missing contact way type")
	case w.Type != 1 && w.Type != 2:
		return nil, fail(41039, "invalid contact way type")
	case w.Scene == 0:
		return nil, fail(41038, "missing contact way scene")
	case w.Scene != 1 && w.Scene != 2:
		return nil, fail(41040, "invalid contact way scene")
	case len([]rune(w.State)) > 30:
		return nil, fail(wecom.CodeInvalidParam, "state exceeds 30 characters")
	case len(w.Users) == 0 && len(w.Parties) == 0:
		return nil, fail(wecom.CodeInvalidParam, "user and party are both empty")
	case w.Type == 1 && len(w.Users)+len(w.Parties) != 1:
		return nil, fail(wecom.CodeInvalidParam, "a single-member contact way takes one user")
	case len(w.Users) > 100:
		return nil, fail(41041, "contact way user count exceeds the limit")
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range w.Users {
		if c.liveStaff(u) == nil {
			return nil, fail(wecom.CodeInvalidUserID, "invalid userid %s", u)
		}
	}
	c.seq++
	sum := splitmix(c.seq ^ c.salt ^ 0xc0ffee)
	w.ConfigID = fmt.Sprintf("%016x%016x", sum, splitmix(sum))
	if w.Scene == 2 {
		w.QRCode = s.URL() + "/sim/qr/" + w.ConfigID + ".png"
	}
	c.ways[w.ConfigID] = &wayRec{ContactWay: w}
	return map[string]any{"config_id": w.ConfigID, "qr_code": w.QRCode}, nil
}

func (s *Server) getContactWay(q *request) (map[string]any, *apiError) {
	var in struct {
		ConfigID string `json:"config_id"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	w := c.ways[in.ConfigID]
	if w == nil {
		return nil, fail(wecom.CodeInvalidContactWay, "invalid config_id")
	}
	return map[string]any{"contact_way": w.ContactWay}, nil
}

func (s *Server) delContactWay(q *request) (map[string]any, *apiError) {
	var in struct {
		ConfigID string `json:"config_id"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ways[in.ConfigID] == nil {
		return nil, fail(wecom.CodeInvalidContactWay, "invalid config_id")
	}
	delete(c.ways, in.ConfigID)
	return nil, nil
}

func (s *Server) sendWelcomeMsg(q *request) (map[string]any, *apiError) {
	var in wecom.WelcomeMessage
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	switch {
	case in.WelcomeCode == "":
		return nil, fail(wecom.CodeMissingWelcomeCode, "missing welcome_code")
	case (in.Text == nil || in.Text.Content == "") && len(in.Attachments) == 0:
		return nil, fail(wecom.CodeInvalidParam, "text and attachments are both empty")
	case in.Text != nil && len(in.Text.Content) > 4000:
		return nil, fail(wecom.CodeInvalidParam, "text exceeds 4000 bytes")
	case len(in.Attachments) > 9:
		return nil, fail(wecom.CodeInvalidParam, "more than 9 attachments")
	}
	now := s.Now()
	c := s.Corp
	c.mu.Lock()
	w := c.welcomes[in.WelcomeCode]
	var f *followRec
	if w != nil {
		f = c.follow(w.userID, w.externalUserID)
	}
	switch {
	case w == nil || w.used || !now.Before(w.expires) || f == nil:
		c.mu.Unlock()
		return nil, fail(wecom.CodeWelcomeCodeInvalid, "invalid welcome_code")
	case f.chatted:
		c.mu.Unlock()
		return nil, fail(wecom.CodeWelcomeChatStarted, "external contact has started a chat")
	}
	w.used = true
	c.mu.Unlock()
	s.mu.Lock()
	s.welcomeMsgs = append(s.welcomeMsgs, WelcomeSent{UserID: w.userID, ExternalUserID: w.externalUserID, Message: in, At: now})
	s.mu.Unlock()
	return nil, nil
}
