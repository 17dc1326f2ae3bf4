package wecomtest

// The simulator's mass messages (群发): add_msg_template, get_groupmsg_*, remind and cancel,
// and media/upload.
//
// A mass message is a task for its sender; nothing reaches a customer until
// the staff member sends it (StaffSends, ConfirmAll, in simulated time). At
// that moment WeCom's per-customer cap applies (SetMassCap: month = as many
// as the days of the month, week = 7, day = 1, on China's calendar): a
// customer over it gets status 3, one who is no longer the sender's contact
// status 2.

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"slices"
	"strconv"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
)

// msgState is the corp's state for these APIs (a field of Corp, guarded by its mu).
type msgState struct {
	capPolicy string
	msgs      map[string]*massMsg
	order     []string
	received  map[string][]time.Time // recipient → when mass messages reached them
	media     map[string]time.Time   // media/upload media_id → expiry
}

type massMsg struct {
	id          string
	chatType    string
	sender      string
	created     time.Time
	text        *wecom.Text
	attachments []wecom.Attachment
	sent        bool
	sendTime    time.Time
	cancelled   bool
	recipients  []*massRecipient
	reminders   []time.Time
}

type massRecipient struct {
	id       string // external_userid or chat_id
	status   int
	sendTime time.Time
}

// MassMessage is a mass message the simulator accepted, for assertions.
type MassMessage struct {
	MsgID       string
	ChatType    string
	Sender      string
	Created     time.Time
	Text        string
	Attachments []wecom.Attachment
	Sent        bool
	Cancelled   bool
	Recipients  []string       // in request order (fail_list excluded)
	Status      map[string]int // recipient → wecom.MassNotSent, MassSent, …
	Reminders   int
}

// chinaTime is WeCom's calendar for the cap.
var chinaTime = time.FixedZone("CST", 8*3600)

func (m *msgState) init() {
	if m.msgs == nil {
		m.msgs = map[string]*massMsg{}
		m.received = map[string][]time.Time{}
		m.media = map[string]time.Time{}
		if m.capPolicy == "" {
			m.capPolicy = "month"
		}
	}
}

// messageHandlers are these APIs, by path after /cgi-bin/.
var messageHandlers = map[string]handler{
	"externalcontact/add_msg_template":         {post: true, fn: (*Server).addMsgTemplate},
	"externalcontact/get_groupmsg_list_v2":     {post: true, fn: (*Server).getGroupMsgListV2},
	"externalcontact/get_groupmsg_task":        {post: true, fn: (*Server).getGroupMsgTask},
	"externalcontact/get_groupmsg_send_result": {post: true, fn: (*Server).getGroupMsgSendResult},
	"externalcontact/remind_groupmsg_send":     {post: true, fn: (*Server).remindGroupMsgSend},
	"externalcontact/cancel_groupmsg_send":     {post: true, fn: (*Server).cancelGroupMsgSend},
	"media/upload":                             {post: true, fn: (*Server).mediaUpload},
}

// SetMassCap sets the corp's per-customer cap on mass messages: "month"
// (default), "week" or "day".
func (c *Corp) SetMassCap(policy string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs.init()
	c.msgs.capPolicy = policy
}

// capWindow returns the cap period containing t and its limit.
func capWindow(policy string, t time.Time) (time.Time, time.Time, int) {
	t = t.In(chinaTime)
	y, m, d := t.Date()
	switch policy {
	case "day":
		s := time.Date(y, m, d, 0, 0, 0, 0, chinaTime)
		return s, s.AddDate(0, 0, 1), 1
	case "week":
		s := time.Date(y, m, d-(int(t.Weekday())+6)%7, 0, 0, 0, 0, chinaTime)
		return s, s.AddDate(0, 0, 7), 7
	}
	s := time.Date(y, m, 1, 0, 0, 0, 0, chinaTime)
	e := s.AddDate(0, 1, 0)
	return s, e, e.AddDate(0, 0, -1).Day()
}

// StaffSends is a staff member confirming a mass message task in WeCom: it
// reaches each recipient who is still their contact (or group) and under
// the cap, now.
func (c *Corp) StaffSends(userID, msgID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs.init()
	m := c.msgs.msgs[msgID]
	switch {
	case m == nil || m.sender != userID:
		return fmt.Errorf("wecomtest: %s has no mass message %q", userID, msgID)
	case m.cancelled:
		return fmt.Errorf("wecomtest: mass message %q was cancelled", msgID)
	case m.sent:
		return nil
	}
	c.sendLocked(m)
	return nil
}

func (c *Corp) sendLocked(m *massMsg) {
	now := c.Now()
	m.sent, m.sendTime = true, now
	start, end, limit := capWindow(c.msgs.capPolicy, now)
	for _, r := range m.recipients {
		if r.status != wecom.MassNotSent {
			continue
		}
		if m.chatType == wecom.ChatGroup {
			g := c.groups[r.id]
			if g == nil || g.Dismissed || g.Owner != m.sender {
				r.status = wecom.MassNotFriend
				continue
			}
			r.status, r.sendTime = wecom.MassSent, now
			continue
		}
		if c.follow(m.sender, r.id) == nil {
			r.status = wecom.MassNotFriend
			continue
		}
		n := 0
		for _, at := range c.msgs.received[r.id] {
			if !at.Before(start) && at.Before(end) {
				n++
			}
		}
		if n >= limit {
			r.status = wecom.MassOverCap
			continue
		}
		r.status, r.sendTime = wecom.MassSent, now
		c.msgs.received[r.id] = append(c.msgs.received[r.id], now)
	}
}

// ConfirmAll is every staff member sending every pending mass message; it
// returns how many were sent.
func (c *Corp) ConfirmAll() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs.init()
	n := 0
	for _, id := range c.msgs.order {
		m := c.msgs.msgs[id]
		if !m.sent && !m.cancelled {
			c.sendLocked(m)
			n++
		}
	}
	return n
}

// MassMessages returns the accepted mass messages, oldest first.
func (c *Corp) MassMessages() []MassMessage {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []MassMessage
	for _, id := range c.msgs.order {
		m := c.msgs.msgs[id]
		mm := MassMessage{MsgID: m.id, ChatType: m.chatType, Sender: m.sender, Created: m.created, Attachments: m.attachments, Sent: m.sent,
			Cancelled: m.cancelled, Status: map[string]int{}, Reminders: len(m.reminders)}
		if m.text != nil {
			mm.Text = m.text.Content
		}
		for _, r := range m.recipients {
			mm.Recipients = append(mm.Recipients, r.id)
			mm.Status[r.id] = r.status
		}
		out = append(out, mm)
	}
	return out
}

func (s *Server) addMsgTemplate(q *request) (map[string]any, *apiError) {
	var in wecom.MsgTemplate
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	if in.ChatType == "" {
		in.ChatType = wecom.ChatSingle
	}
	switch {
	case in.ChatType != wecom.ChatSingle && in.ChatType != wecom.ChatGroup:
		return nil, fail(wecom.CodeInvalidParam, "invalid chat_type")
	case (in.Text == nil || in.Text.Content == "") && len(in.Attachments) == 0:
		return nil, fail(wecom.CodeInvalidParam, "text and attachments are both empty")
	case in.Text != nil && len(in.Text.Content) > wecom.MaxMassTextBytes:
		return nil, fail(wecom.CodeInvalidParam, "text exceeds 4000 bytes")
	case len(in.Attachments) > wecom.MaxMassAttachments:
		return nil, fail(wecom.CodeInvalidParam, "more than 9 attachments")
	case len(in.ExternalUserID) > wecom.MaxMassRecipients:
		return nil, fail(wecom.CodeInvalidParam, "external_userid exceeds 10000")
	case len(in.ChatIDList) > wecom.MaxMassChats:
		return nil, fail(wecom.CodeInvalidParam, "chat_id_list exceeds 2000")
	case in.Sender == "":
		// WeCom then splits the customers among all their staff; Siyu
		// always names the sender, so the simulator does not model it.
		return nil, fail(wecom.CodeInvalidParam, "sender is required by the simulator")
	}
	now := s.Now()
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs.init()
	if st := c.staff[in.Sender]; st == nil || st.deleted {
		return nil, fail(wecom.CodeInvalidUserID, "invalid userid: %s", in.Sender)
	}
	for i, a := range in.Attachments {
		if e := c.checkMassAttachment(a, now); e != nil {
			e.msg = fmt.Sprintf("attachments[%d]: %s", i, e.msg)
			return nil, e
		}
	}
	m := &massMsg{id: "msg" + c.newID("", 24), chatType: in.ChatType, sender: in.Sender, created: now, text: in.Text, attachments: in.Attachments}
	fails := []string{}
	seen := map[string]bool{}
	add := func(id string, ok bool) {
		if seen[id] {
			return
		}
		seen[id] = true
		if !ok {
			fails = append(fails, id)
			return
		}
		m.recipients = append(m.recipients, &massRecipient{id: id})
	}
	if in.ChatType == wecom.ChatSingle {
		ids := in.ExternalUserID
		if len(ids) == 0 {
			for _, f := range c.staff[in.Sender].follows {
				ids = append(ids, f.ExternalUserID)
			}
		}
		for _, id := range ids {
			add(id, c.follow(in.Sender, id) != nil)
		}
	} else {
		ids := in.ChatIDList
		if len(ids) == 0 {
			for _, gid := range c.groupIDs {
				if g := c.groups[gid]; g.Owner == in.Sender && !g.Dismissed {
					ids = append(ids, gid)
				}
			}
		}
		for _, id := range ids {
			g := c.groups[id]
			add(id, g != nil && !g.Dismissed && g.Owner == in.Sender)
		}
	}
	c.msgs.msgs[m.id] = m
	c.msgs.order = append(c.msgs.order, m.id)
	return map[string]any{"msgid": m.id, "fail_list": fails}, nil
}

// checkMassAttachment applies add_msg_template's attachment rules. The
// caller holds c.mu.
func (c *Corp) checkMassAttachment(a wecom.Attachment, now time.Time) *apiError {
	media := func(id string) *apiError {
		if exp, ok := c.msgs.media[id]; !ok || !now.Before(exp) {
			return fail(40007, "invalid media_id")
		}
		return nil
	}
	switch a.MsgType {
	case "image":
		if a.Image == nil || (a.Image.MediaID == "" && a.Image.PicURL == "") {
			return fail(wecom.CodeInvalidParam, "image needs media_id or pic_url")
		}
		if a.Image.MediaID != "" {
			return media(a.Image.MediaID)
		}
	case "link":
		if a.Link == nil || a.Link.Title == "" || a.Link.URL == "" {
			return fail(wecom.CodeInvalidParam, "link needs title and url")
		}
	case "miniprogram":
		if a.MiniProgram == nil || a.MiniProgram.Title == "" || a.MiniProgram.AppID == "" || a.MiniProgram.Page == "" {
			return fail(wecom.CodeInvalidParam, "miniprogram needs title, appid and page")
		}
		return media(a.MiniProgram.PicMediaID)
	case "video":
		if a.Video == nil {
			return fail(wecom.CodeInvalidParam, "video needs media_id")
		}
		return media(a.Video.MediaID)
	case "file":
		if a.File == nil {
			return fail(wecom.CodeInvalidParam, "file needs media_id")
		}
		return media(a.File.MediaID)
	default:
		return fail(wecom.CodeInvalidParam, "invalid msgtype %q", a.MsgType)
	}
	return nil
}

func (s *Server) getGroupMsgListV2(q *request) (map[string]any, *apiError) {
	var in wecom.GroupMsgListQuery
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	if in.ChatType == "" {
		in.ChatType = wecom.ChatSingle
	}
	if in.Limit == 0 {
		in.Limit = 50
	}
	switch {
	case in.StartTime <= 0 || in.EndTime <= 0 || in.EndTime < in.StartTime:
		return nil, fail(wecom.CodeInvalidParam, "invalid start_time or end_time")
	case in.EndTime-in.StartTime > 31*86400:
		return nil, fail(wecom.CodeInvalidParam, "the time range exceeds one month")
	case in.Limit < 0 || in.Limit > wecom.MaxGroupMsgListPage:
		return nil, fail(wecom.CodeInvalidParam, "limit exceeds %d", wecom.MaxGroupMsgListPage)
	}
	var after uint64
	if in.Cursor != "" {
		_, seq, ok := decodeCursor(in.Cursor)
		if !ok {
			return nil, fail(wecom.CodeInvalidCursor, "invalid cursor")
		}
		after = seq
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	list := []map[string]any{}
	next := ""
	for i, id := range c.msgs.order {
		if uint64(i) < after {
			continue
		}
		m := c.msgs.msgs[id]
		t := m.created.Unix()
		// Every message here was made through the API: created by the corp
		// (create_type 0), which has no creator.
		if m.chatType != in.ChatType || t < in.StartTime || t > in.EndTime || in.FilterType == 1 || in.Creator != "" {
			continue
		}
		if len(list) == in.Limit {
			next = encodeCursor("", uint64(i))
			break
		}
		e := map[string]any{"msgid": m.id, "create_time": strconv.FormatInt(t, 10), "create_type": 0}
		if m.text != nil {
			e["text"] = m.text
		}
		if len(m.attachments) > 0 {
			e["attachments"] = m.attachments
		}
		list = append(list, e)
	}
	return map[string]any{"next_cursor": next, "group_msg_list": list}, nil
}

// pageArgs reads msgid, limit and cursor of the get_groupmsg_* APIs.
func pageArgs(q *request, in any) *apiError {
	return q.decode(in)
}

func (s *Server) getGroupMsgTask(q *request) (map[string]any, *apiError) {
	var in struct {
		MsgID  string `json:"msgid"`
		Limit  int    `json:"limit"`
		Cursor string `json:"cursor"`
	}
	if e := pageArgs(q, &in); e != nil {
		return nil, e
	}
	if in.Limit > wecom.MaxGroupMsgPage || in.Limit < 0 {
		return nil, fail(wecom.CodeInvalidParam, "limit exceeds %d", wecom.MaxGroupMsgPage)
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	m := c.msgs.msgs[in.MsgID]
	if m == nil {
		return nil, fail(wecom.CodeInvalidParam, "invalid msgid")
	}
	task := map[string]any{"userid": m.sender, "status": wecom.TaskNotSent}
	if m.sent {
		task["status"], task["send_time"] = wecom.TaskSent, m.sendTime.Unix()
	}
	return map[string]any{"next_cursor": "", "task_list": []map[string]any{task}}, nil
}

func (s *Server) getGroupMsgSendResult(q *request) (map[string]any, *apiError) {
	var in struct {
		MsgID  string `json:"msgid"`
		UserID string `json:"userid"`
		Limit  int    `json:"limit"`
		Cursor string `json:"cursor"`
	}
	if e := pageArgs(q, &in); e != nil {
		return nil, e
	}
	if in.Limit == 0 {
		in.Limit = 500
	}
	if in.Limit > wecom.MaxGroupMsgPage || in.Limit < 0 {
		return nil, fail(wecom.CodeInvalidParam, "limit exceeds %d", wecom.MaxGroupMsgPage)
	}
	var after uint64
	if in.Cursor != "" {
		_, seq, ok := decodeCursor(in.Cursor)
		if !ok {
			return nil, fail(wecom.CodeInvalidCursor, "invalid cursor")
		}
		after = seq
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	m := c.msgs.msgs[in.MsgID]
	if m == nil {
		return nil, fail(wecom.CodeInvalidParam, "invalid msgid")
	}
	list := []map[string]any{}
	next := ""
	if in.UserID == m.sender {
		for i := int(after); i < len(m.recipients); i++ {
			if len(list) == in.Limit {
				next = encodeCursor("", uint64(i))
				break
			}
			r := m.recipients[i]
			e := map[string]any{"userid": m.sender, "status": r.status}
			if m.chatType == wecom.ChatGroup {
				e["chat_id"] = r.id
			} else {
				e["external_userid"] = r.id
			}
			if r.status == wecom.MassSent {
				e["send_time"] = r.sendTime.Unix()
			}
			list = append(list, e)
		}
	}
	return map[string]any{"next_cursor": next, "send_list": list}, nil
}

func (s *Server) remindGroupMsgSend(q *request) (map[string]any, *apiError) {
	var in struct {
		MsgID string `json:"msgid"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	now := s.Now()
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msgs.msgs[in.MsgID]
	if m == nil {
		return nil, fail(wecom.CodeInvalidParam, "invalid msgid")
	}
	recent := slices.DeleteFunc(slices.Clone(m.reminders), func(t time.Time) bool { return now.Sub(t) >= 24*time.Hour })
	if len(recent) >= 3 {
		// WeCom documents the limit (3 per message in 24 hours) but not
		// its error code.
		return nil, fail(wecom.CodeInvalidParam, "remind limit exceeded: 3 times per 24 hours")
	}
	m.reminders = append(recent, now)
	return nil, nil
}

func (s *Server) cancelGroupMsgSend(q *request) (map[string]any, *apiError) {
	var in struct {
		MsgID string `json:"msgid"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msgs.msgs[in.MsgID]
	if m == nil {
		return nil, fail(wecom.CodeInvalidParam, "invalid msgid")
	}
	m.cancelled = true
	return nil, nil
}

func (s *Server) mediaUpload(q *request) (map[string]any, *apiError) {
	typ := q.query("type")
	limit := 10 << 20
	switch typ {
	case "image", "video", "voice":
	case "file":
		limit = 20 << 20
	default:
		return nil, fail(40004, "invalid media type")
	}
	_, params, err := mime.ParseMediaType(q.r.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		return nil, fail(41005, "media data missing")
	}
	mr := multipart.NewReader(bytes.NewReader(q.body), params["boundary"])
	var data []byte
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if p.FormName() == "media" {
			data, _ = io.ReadAll(p)
			break
		}
	}
	switch {
	case len(data) < 5:
		return nil, fail(41005, "media data missing")
	case len(data) > limit:
		return nil, fail(40006, "invalid file size")
	}
	now := s.Now()
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs.init()
	id := "3" + c.newID("", 60)
	c.msgs.media[id] = now.Add(72 * time.Hour)
	return map[string]any{"type": typ, "media_id": id, "created_at": strconv.FormatInt(now.Unix(), 10)}, nil
}
