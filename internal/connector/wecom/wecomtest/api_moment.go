package wecomtest

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

// The simulator's moments (朋友圈): add_moment_task and its results.
//
// add_moment_task answers a jobid; the job finishes after MomentJobPolls
// reads of get_moment_task_result (default 1: the first read says "creating",
// the next one has the result), so callers exercise their polling. A
// finished job names the moment and the senders and tags WeCom refused.
// Each valid sender's task waits until the test calls StaffPublishes; the
// customers who can see it are the sender's customers holding any of the
// task's tags (all of them without tags), fixed when the task is created.

// momentState is the corp's state for these APIs (a field of Corp, guarded by its mu).
type momentState struct {
	jobPolls int // reads of a job before it finishes; 0 means 1
	jobs     map[string]*momentJob
	moments  map[string]*momentRec
	order    []string // moment ids in creation order
	media    map[string]string
}

type momentJob struct {
	polls  int
	moment *momentRec // nil when the task was refused as a whole
	errMsg string
	errNo  int

	invalidSenders []string
	invalidTags    []string
}

type momentRec struct {
	id          string
	createTime  time.Time
	text        string
	attachments []wecom.MomentAttachment
	tags        []string
	senders     []string // valid senders in request order
	visible     map[string][]string
	published   map[string]time.Time
	cancelled   bool
}

// momentHandlers are these APIs, by path after /cgi-bin/.
var momentHandlers = map[string]handler{
	"externalcontact/add_moment_task":          {post: true, fn: (*Server).addMomentTask},
	"externalcontact/get_moment_task_result":   {fn: (*Server).getMomentTaskResult},
	"externalcontact/cancel_moment_task":       {post: true, fn: (*Server).cancelMomentTask},
	"externalcontact/get_moment_task":          {post: true, fn: (*Server).getMomentTask},
	"externalcontact/get_moment_customer_list": {post: true, fn: (*Server).getMomentCustomerList},
	"externalcontact/get_moment_send_result":   {post: true, fn: (*Server).getMomentSendResult},
	"externalcontact/get_moment_list":          {post: true, fn: (*Server).getMomentList},
	"media/upload_attachment":                  {post: true, fn: (*Server).uploadAttachment},
}

func (m *momentState) init() {
	if m.jobs == nil {
		m.jobs = map[string]*momentJob{}
		m.moments = map[string]*momentRec{}
		m.media = map[string]string{}
	}
}

// SetMomentJobPolls sets how many get_moment_task_result reads a moment job
// needs before it finishes (at least 1).
func (c *Corp) SetMomentJobPolls(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moments.jobPolls = max(n, 1)
}

// StaffPublishes is a staff member publishing a corp moment task from their
// WeCom app: their customers in the task's range can see it from now on.
func (c *Corp) StaffPublishes(userID, momentID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moments.init()
	m := c.moments.moments[momentID]
	switch {
	case m == nil:
		return fmt.Errorf("wecomtest: no moment %q", momentID)
	case m.cancelled:
		return fmt.Errorf("wecomtest: moment %q was cancelled", momentID)
	case !slices.Contains(m.senders, userID):
		return fmt.Errorf("wecomtest: %s is not a sender of moment %q", userID, momentID)
	}
	if _, done := m.published[userID]; !done {
		m.published[userID] = c.Now()
	}
	return nil
}

// MomentIDs returns the moments created through add_moment_task, oldest first.
func (c *Corp) MomentIDs() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.moments.order)
}

// MomentText returns a moment's text and attachments, for tests.
func (c *Corp) MomentText(momentID string) (string, []wecom.MomentAttachment, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m := c.moments.moments[momentID]
	if m == nil {
		return "", nil, false
	}
	return m.text, slices.Clone(m.attachments), true
}

func (s *Server) addMomentTask(q *request) (map[string]any, *apiError) {
	var in wecom.MomentTask
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	text := ""
	if in.Text != nil {
		text = in.Text.Content
	}
	// WeCom's own checks, with its messages.
	if text == "" && len(in.Attachments) == 0 {
		return nil, fail(wecom.CodeInvalidParam, "text and attachments are both empty")
	}
	if len([]rune(text)) > wecom.MaxMomentTextRunes || len(text) > wecom.MaxMomentTextBytes {
		return nil, fail(wecom.CodeInvalidParam, "invalid text size")
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moments.init()
	kind := ""
	for _, a := range in.Attachments {
		if kind != "" && a.MsgType != kind {
			return nil, fail(wecom.CodeInvalidParam, "invalid attachments msgtype")
		}
		kind = a.MsgType
		var media string
		switch a.MsgType {
		case "image":
			if a.Image != nil {
				media = a.Image.MediaID
			}
		case "video":
			if a.Video != nil {
				media = a.Video.MediaID
			}
		case "link":
			if a.Link == nil || a.Link.URL == "" {
				return nil, fail(wecom.CodeInvalidParam, "invalid link url")
			}
			if len(a.Link.Title) > wecom.MaxMomentLinkTitle {
				return nil, fail(wecom.CodeInvalidParam, "invalid link title size")
			}
			if a.Link.MediaID != "" && c.moments.media[a.Link.MediaID] != "image" {
				return nil, fail(40007, "invalid media_id")
			}
			continue
		default:
			return nil, fail(wecom.CodeInvalidParam, "invalid attachments msgtype")
		}
		if media == "" {
			return nil, fail(wecom.CodeInvalidParam, "invalid msg")
		}
		if c.moments.media[media] != a.MsgType {
			return nil, fail(40007, "invalid media_id")
		}
	}
	n := len(in.Attachments)
	if (kind == "image" && n > wecom.MaxMomentImages) || (kind != "image" && n > 1) {
		return nil, fail(wecom.CodeInvalidParam, "invalid attachments size")
	}
	var users []string
	var tags []string
	if in.VisibleRange != nil {
		if in.VisibleRange.SenderList != nil {
			users = in.VisibleRange.SenderList.UserList
			for _, d := range in.VisibleRange.SenderList.DepartmentList {
				for _, id := range c.staffIDs {
					if st := c.liveStaff(id); st != nil && slices.ContainsFunc(st.Departments, func(x int64) bool { return c.under(x, d) }) && !slices.Contains(users, id) {
						users = append(users, id)
					}
				}
			}
		}
		if in.VisibleRange.ExternalContactList != nil {
			tags = in.VisibleRange.ExternalContactList.TagList
		}
	}
	if len(users) == 0 {
		for _, id := range c.staffIDs { // no senders: the app's whole visible range
			if c.liveStaff(id) != nil {
				users = append(users, id)
			}
		}
	}
	job := &momentJob{}
	var valid []string
	for _, u := range users {
		if c.liveStaff(u) == nil {
			job.invalidSenders = append(job.invalidSenders, u)
		} else if !slices.Contains(valid, u) {
			valid = append(valid, u)
		}
	}
	var validTags []string
	for _, t := range tags {
		if tr := c.tags[t]; tr == nil || tr.Deleted {
			job.invalidTags = append(job.invalidTags, t)
		} else {
			validTags = append(validTags, t)
		}
	}
	jobID := c.newID("", 40)
	if len(valid) == 0 {
		job.errNo, job.errMsg = wecom.CodeInvalidUserID, "invalid sender list: no valid sender"
	} else if len(tags) > 0 && len(validTags) == 0 {
		job.errNo, job.errMsg = wecom.CodeInvalidTagID, "invalid tag list: no valid tag"
	} else {
		m := &momentRec{id: "mom" + c.newID("", 30), createTime: c.Now(), text: text, attachments: in.Attachments,
			tags: validTags, senders: valid, visible: map[string][]string{}, published: map[string]time.Time{}}
		for _, u := range valid {
			for _, f := range c.staff[u].follows {
				if len(validTags) == 0 || slices.ContainsFunc(f.TagIDs, func(t string) bool { return slices.Contains(validTags, t) }) {
					m.visible[u] = append(m.visible[u], f.ExternalUserID)
				}
			}
		}
		job.moment = m
		c.moments.moments[m.id] = m
		c.moments.order = append(c.moments.order, m.id)
	}
	c.moments.jobs[jobID] = job
	return map[string]any{"jobid": jobID}, nil
}

func (s *Server) getMomentTaskResult(q *request) (map[string]any, *apiError) {
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moments.init()
	job := c.moments.jobs[q.query("jobid")]
	if job == nil {
		return nil, fail(wecom.CodeInvalidParam, "invalid jobid")
	}
	job.polls++
	if job.polls <= max(c.moments.jobPolls, 1) {
		return map[string]any{"status": wecom.MomentJobCreating, "type": "add_moment_task"}, nil
	}
	res := map[string]any{"errcode": job.errNo, "errmsg": "ok"}
	if job.errNo != 0 {
		res["errmsg"] = job.errMsg
	}
	if job.moment != nil {
		res["moment_id"] = job.moment.id
	}
	if len(job.invalidSenders) > 0 {
		res["invalid_sender_list"] = map[string]any{"user_list": job.invalidSenders}
	}
	if len(job.invalidTags) > 0 {
		res["invalid_external_contact_list"] = map[string]any{"tag_list": job.invalidTags}
	}
	return map[string]any{"status": wecom.MomentJobDone, "type": "add_moment_task", "result": res}, nil
}

func (s *Server) momentByID(id string) (*momentRec, *apiError) {
	m := s.Corp.moments.moments[id]
	if m == nil {
		return nil, fail(wecom.CodeInvalidParam, "invalid moment id")
	}
	return m, nil
}

func (s *Server) cancelMomentTask(q *request) (map[string]any, *apiError) {
	var in struct {
		MomentID string `json:"moment_id"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moments.init()
	m, e := s.momentByID(in.MomentID)
	if e != nil {
		return nil, e
	}
	m.cancelled = true
	return nil, nil
}

// pageArgs reads the cursor (an offset here) and limit of a paged moment API.
func momentPageArgs(cursor string, limit, maxLimit int) (int, int, *apiError) {
	if limit == 0 {
		limit = maxLimit
	}
	if limit < 0 || limit > maxLimit {
		return 0, 0, fail(wecom.CodeInvalidParam, "invalid limit, should be in [1, %d]", maxLimit)
	}
	start := 0
	if cursor != "" {
		_, n, ok := decodeCursor(cursor)
		if !ok {
			return 0, 0, fail(wecom.CodeInvalidCursor, "invalid cursor")
		}
		start = int(n)
	}
	return start, limit, nil
}

func momentWindow[T any](all []T, start, limit int) ([]T, string) {
	if start > len(all) {
		start = len(all)
	}
	end := min(start+limit, len(all))
	next := ""
	if end < len(all) {
		next = encodeCursor("", uint64(end))
	}
	return all[start:end], next
}

func (s *Server) getMomentTask(q *request) (map[string]any, *apiError) {
	var in struct {
		MomentID string `json:"moment_id"`
		Cursor   string `json:"cursor"`
		Limit    int    `json:"limit"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	q.call.Limit, q.call.Cursor = in.Limit, in.Cursor
	start, limit, e := momentPageArgs(in.Cursor, in.Limit, wecom.MaxMomentTaskPage)
	if e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	m, e := s.momentByID(in.MomentID)
	if e != nil {
		return nil, e
	}
	all := make([]map[string]any, 0, len(m.senders))
	for _, u := range m.senders {
		st := wecom.MomentUnpublished
		if _, ok := m.published[u]; ok {
			st = wecom.MomentPublished
		}
		all = append(all, map[string]any{"userid": u, "publish_status": st})
	}
	items, next := momentWindow(all, start, limit)
	return map[string]any{"task_list": items, "next_cursor": next}, nil
}

func (s *Server) momentCustomers(q *request, maxLimit int, sent bool) (map[string]any, *apiError) {
	var in struct {
		MomentID string `json:"moment_id"`
		UserID   string `json:"userid"`
		Cursor   string `json:"cursor"`
		Limit    int    `json:"limit"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	q.call.Limit, q.call.Cursor = in.Limit, in.Cursor
	start, limit, e := momentPageArgs(in.Cursor, in.Limit, maxLimit)
	if e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	m, e := s.momentByID(in.MomentID)
	if e != nil {
		return nil, e
	}
	if !slices.Contains(m.senders, in.UserID) {
		return nil, fail(wecom.CodeInvalidUserID, "invalid userid")
	}
	all := []map[string]any{}
	if _, published := m.published[in.UserID]; !sent || published {
		for _, ext := range m.visible[in.UserID] {
			if sent {
				all = append(all, map[string]any{"external_userid": ext})
			} else {
				all = append(all, map[string]any{"userid": in.UserID, "external_userid": ext})
			}
		}
	}
	items, next := momentWindow(all, start, limit)
	return map[string]any{"customer_list": items, "next_cursor": next}, nil
}

func (s *Server) getMomentCustomerList(q *request) (map[string]any, *apiError) {
	return s.momentCustomers(q, wecom.MaxMomentTaskPage, false)
}

func (s *Server) getMomentSendResult(q *request) (map[string]any, *apiError) {
	return s.momentCustomers(q, wecom.MaxMomentSendPage, true)
}

func (s *Server) getMomentList(q *request) (map[string]any, *apiError) {
	var in struct {
		StartTime  int64  `json:"start_time"`
		EndTime    int64  `json:"end_time"`
		Creator    string `json:"creator"`
		FilterType int    `json:"filter_type"`
		Cursor     string `json:"cursor"`
		Limit      int    `json:"limit"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	if in.StartTime == 0 || in.EndTime == 0 || in.EndTime < in.StartTime || in.EndTime-in.StartTime > int64(wecom.MaxMomentListSpan/time.Second) {
		return nil, fail(wecom.CodeInvalidParam, "invalid time range, should be within one month")
	}
	start, limit, e := momentPageArgs(in.Cursor, in.Limit, wecom.MaxMomentListPage)
	if e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	all := []map[string]any{}
	if in.FilterType != 1 && in.Creator == "" { // only corp moments exist here
		for _, id := range c.moments.order {
			m := c.moments.moments[id]
			if ts := m.createTime.Unix(); ts < in.StartTime || ts > in.EndTime {
				continue
			}
			out := map[string]any{"moment_id": m.id, "creator": "", "create_type": 0, "visible_type": 0, "create_time": m.createTime.Unix()}
			if len(m.tags) == 0 {
				out["visible_type"] = 1
			}
			if m.text != "" {
				out["text"] = map[string]any{"content": m.text}
			}
			var images []map[string]any
			for _, a := range m.attachments {
				switch {
				case a.Image != nil:
					images = append(images, map[string]any{"media_id": a.Image.MediaID})
				case a.Video != nil:
					out["video"] = map[string]any{"media_id": a.Video.MediaID, "thumb_media_id": a.Video.MediaID + "_thumb"}
				case a.Link != nil:
					out["link"] = map[string]any{"title": a.Link.Title, "url": a.Link.URL}
				}
			}
			if images != nil {
				out["image"] = images
			}
			all = append(all, out)
		}
	}
	items, next := momentWindow(all, start, limit)
	return map[string]any{"moment_list": items, "next_cursor": next}, nil
}

func (s *Server) uploadAttachment(q *request) (map[string]any, *apiError) {
	mediaType := q.query("media_type")
	if mediaType != "image" && mediaType != "video" && mediaType != "file" {
		return nil, fail(40004, "invalid media type")
	}
	if q.query("attachment_type") != "1" && q.query("attachment_type") != "2" {
		return nil, fail(wecom.CodeInvalidParam, "invalid attachment_type")
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
	if len(data) == 0 {
		return nil, fail(41005, "media data missing")
	}
	if len(data) > wecom.MaxMomentMediaBytes {
		return nil, fail(40006, "invalid file size")
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moments.init()
	id := "3" + c.newID("", 40)
	c.moments.media[id] = mediaType
	return map[string]any{"type": mediaType, "media_id": id, "created_at": strconv.FormatInt(c.Now().Unix(), 10)}, nil
}
