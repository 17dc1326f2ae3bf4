// Package moment: moments (朋友圈) tasks: posts that chosen staff publish to the customers they choose by tag, through WeCom add_moment_task, with results per staff.
//
// A task is stored first (idempotent on its key) and then moved by a worker,
// the database being the queue: it is sent to WeCom (add_moment_task), its
// job polled until WeCom names the moment (get_moment_task_result), and then
// each sender's publish state and the customers who can see it are polled
// (get_moment_task, get_moment_customer_list, get_moment_send_result) until
// every sender has published or the task's deadline passes.
//
// add_moment_task is not idempotent in WeCom, so a task is never sent twice
// blindly: one whose call ended without an answer (a crash, a network error)
// waits in "submitting" and the worker looks for it in WeCom's list of
// moments (get_moment_list) before it sends again.
package moment

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Status is where a task stands.
type Status string

// Task statuses.
const (
	StatusPending    Status = "pending"    // stored; to be sent to WeCom
	StatusSubmitting Status = "submitting" // sent; WeCom's answer not known yet
	StatusCreating   Status = "creating"   // WeCom is creating it (a job)
	StatusPublishing Status = "publishing" // created: staff publish it; results are polled
	StatusFinished   Status = "finished"   // every sender published, or the deadline passed
	StatusCancelled  Status = "cancelled"
	StatusFailed     Status = "failed" // WeCom refused it (ErrorCode, ErrorMessage)
)

// Final reports whether nothing will change any more.
func (s Status) Final() bool {
	return s == StatusFinished || s == StatusCancelled || s == StatusFailed
}

// SenderStatus is one staff member's state of a task.
type SenderStatus string

// Sender statuses.
const (
	SenderPending   SenderStatus = "pending"   // not published (yet)
	SenderPublished SenderStatus = "published" // published: their customers in range can see it
	SenderInvalid   SenderStatus = "invalid"   // WeCom refused this sender (not in the app's range, no customer-contact permission…)
	SenderCancelled SenderStatus = "cancelled" // the task was cancelled before they published
)

// MediaItem is an image, a video or a link. Images and videos are uploaded
// first (UploadMedia) and named by their media_id, valid three days.
type MediaItem struct {
	Type    string `json:"type" enum:"image,video,link"`
	MediaID string `json:"media_id,omitempty" doc:"Image or video: its media_id from the upload. Link: the cover image's media_id (optional)."`
	Title   string `json:"title,omitempty" maxLength:"64" doc:"Link title (at most 64 bytes)."`
	URL     string `json:"url,omitempty" doc:"Link URL."`
}

// TaskInput creates a task.
type TaskInput struct {
	Key          string      `json:"key,omitempty" maxLength:"100" doc:"Idempotency key: creating again with the same key returns the task created first."`
	Text         string      `json:"text,omitempty" doc:"At most 2,000 characters."`
	Attachments  []MediaItem `json:"attachments,omitempty" doc:"1–9 images, or one video, or one link."`
	StaffIDs     []int64     `json:"staff_ids,omitempty" doc:"Senders by Siyu staff id."`
	StaffUserIDs []string    `json:"staff_userids,omitempty" doc:"Senders by WeCom userid."`
	TagIDs       []int64     `json:"tag_ids,omitempty" doc:"Customers who see it: holders of any of these tags (each bound to a WeCom corp tag); none means all the senders' customers."`
	ResultHours  int         `json:"result_hours,omitempty" minimum:"0" maximum:"720" doc:"How long results are polled; 0 means 72 hours."`
}

// VisibleTag names a tag a task is visible to.
type VisibleTag struct {
	ID         int64  `json:"id"`
	Ref        string `json:"ref"`
	WeComTagID string `json:"wecom_tag_id"`
}

// Task is a moments publishing task.
type Task struct {
	ID              int64        `json:"id"`
	Key             string       `json:"key"`
	Status          Status       `json:"status" enum:"pending,submitting,creating,publishing,finished,cancelled,failed"`
	CancelRequested bool         `json:"cancel_requested,omitempty" doc:"Cancelled while WeCom was still creating it: cancelled in WeCom as soon as it has its moment_id."`
	Text            string       `json:"text"`
	Attachments     []MediaItem  `json:"attachments" nullable:"false"`
	Tags            []VisibleTag `json:"tags" nullable:"false"`
	MomentID        string       `json:"moment_id,omitempty"`
	InvalidSenders  []string     `json:"invalid_senders" nullable:"false" doc:"Senders (WeCom userids) WeCom refused."`
	InvalidTags     []string     `json:"invalid_tags" nullable:"false" doc:"WeCom corp tag ids WeCom refused (deleted in WeCom)."`
	ErrorCode       string       `json:"error_code,omitempty"`
	ErrorMessage    string       `json:"error_message,omitempty"`
	SenderCount     int          `json:"sender_count"`
	PublishedCount  int          `json:"published_count"`
	VisibleCount    int64        `json:"visible_count" doc:"Customers in the senders' ranges."`
	ReachedCount    int64        `json:"reached_count" doc:"Customers who can see it: in range of a sender who published."`
	CreatedBy       string       `json:"created_by,omitempty"`
	DeadlineAt      time.Time    `json:"deadline_at" doc:"Results are polled until then."`
	PolledAt        time.Time    `json:"polled_at,omitzero"`
	FinishedAt      time.Time    `json:"finished_at,omitzero"`
	CreatedAt       time.Time    `json:"created_at"`
	UpdatedAt       time.Time    `json:"updated_at"`
}

// Sender is one staff member asked to publish a task, with their results.
type Sender struct {
	UserID       string       `json:"userid"`
	StaffID      int64        `json:"staff_id,omitempty"`
	Name         string       `json:"name,omitempty"`
	Status       SenderStatus `json:"status" enum:"pending,published,invalid,cancelled"`
	PublishedAt  time.Time    `json:"published_at,omitzero" doc:"When Siyu first saw it published."`
	VisibleCount int64        `json:"visible_count"`
	ReachedCount int64        `json:"reached_count"`
}

// Viewer is a customer in a sender's range of a task.
type Viewer struct {
	UserID         string `json:"userid"`
	ExternalUserID string `json:"external_userid"`
	CustomerID     int64  `json:"customer_id,omitempty"`
	Reached        bool   `json:"reached" doc:"The sender published it and WeCom lists the customer among those who can see it."`
}

// Filter narrows a task list.
type Filter struct {
	Status Status
}

// API is what the service needs of WeCom; *wecom.Client has it.
type API interface {
	AddMomentTask(ctx context.Context, t wecom.MomentTask) (string, error)
	GetMomentTaskResult(ctx context.Context, jobID string) (wecom.MomentTaskResult, error)
	CancelMomentTask(ctx context.Context, momentID string) error
	GetMomentTask(ctx context.Context, momentID, cursor string, limit int) ([]wecom.MomentPublish, string, error)
	GetMomentCustomerList(ctx context.Context, momentID, userID, cursor string, limit int) ([]wecom.MomentCustomer, string, error)
	GetMomentSendResult(ctx context.Context, momentID, userID, cursor string, limit int) ([]wecom.MomentCustomer, string, error)
	GetMomentList(ctx context.Context, f wecom.MomentFilter, cursor string, limit int) ([]wecom.Moment, string, error)
	UploadMomentMedia(ctx context.Context, mediaType, filename string, data []byte) (string, error)
}

var _ API = (*wecom.Client)(nil)

// Auditor records operator actions (tenant.Service has it).
type Auditor interface {
	Audit(ctx context.Context, q db.Querier, p tenant.Principal, action, targetKind, targetID, detail string) error
}

// Options configure a Service; zero values mean the defaults.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Poll is how often a publishing task's results are read in its first
	// hour (default 1 minute); later ones every SlowPoll (default 10 minutes).
	Poll, SlowPoll time.Duration
	ResultWindow   time.Duration // default deadline after creation: 72 hours
	Tick           time.Duration // how often Run looks for due tasks: 5 s
}

// Service is the moment domain.
type Service struct {
	db      *db.DB
	clients func(ctx context.Context, tenantID int64) (API, error)
	staff   *staff.Service
	tags    *tag.Service
	audit   Auditor
	log     *slog.Logger
	now     func() time.Time
	o       Options
	wake    chan struct{}
}

// NewService returns the service. clients gives a workspace's WeCom API.
func NewService(d *db.DB, clients func(ctx context.Context, tenantID int64) (API, error), st *staff.Service, tags *tag.Service, audit Auditor, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = time.Minute
	}
	if o.SlowPoll <= 0 {
		o.SlowPoll = 10 * time.Minute
	}
	if o.ResultWindow <= 0 {
		o.ResultWindow = 72 * time.Hour
	}
	if o.Tick <= 0 {
		o.Tick = 5 * time.Second
	}
	return &Service{db: d, clients: clients, staff: st, tags: tags, audit: audit, log: o.Logger, now: o.Now, o: o, wake: make(chan struct{}, 1)}
}

// Wake makes Run look for due tasks now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("moment: unable to encode %T: %v", v, err)) // plain slices only
	}
	return string(b)
}

// wecomTask is the add_moment_task request for the task's content.
func wecomTask(text string, atts []MediaItem, senders, tagIDs []string) wecom.MomentTask {
	t := wecom.MomentTask{VisibleRange: &wecom.MomentVisibleRange{SenderList: &wecom.MomentSenders{UserList: senders}}}
	if text != "" {
		t.Text = &wecom.Text{Content: text}
	}
	if len(tagIDs) > 0 {
		t.VisibleRange.ExternalContactList = &wecom.MomentCustomers{TagList: tagIDs}
	}
	for _, a := range atts {
		w := wecom.MomentAttachment{MsgType: a.Type}
		switch a.Type {
		case "image":
			w.Image = &wecom.Media{MediaID: a.MediaID}
		case "video":
			w.Video = &wecom.Media{MediaID: a.MediaID}
		case "link":
			w.Link = &wecom.MomentLink{Title: a.Title, URL: a.URL, MediaID: a.MediaID}
		}
		t.Attachments = append(t.Attachments, w)
	}
	return t
}

// resolvedSender is a sender checked against the directory.
type resolvedSender struct {
	userID  string
	staffID int64
}

func (s *Service) resolveSenders(ctx context.Context, tenantID int64, in TaskInput) ([]resolvedSender, error) {
	var out []resolvedSender
	seen := map[string]bool{}
	add := func(m staff.Member, loc string) error {
		if m.WeComUserID == "" {
			return errs.Field(loc, "staff_not_on_wecom", "the staff member %q has no WeCom account: only WeCom members can publish moments", m.Name)
		}
		if m.Status != staff.Active {
			return errs.Field(loc, "staff_resigned", "the staff member %q has left (%s) and cannot publish moments", m.Name, m.Status)
		}
		if !seen[m.WeComUserID] {
			seen[m.WeComUserID] = true
			out = append(out, resolvedSender{userID: m.WeComUserID, staffID: m.ID})
		}
		return nil
	}
	for i, id := range in.StaffIDs {
		loc := fmt.Sprintf("staff_ids[%d]", i)
		m, err := s.staff.Member(ctx, tenantID, id)
		if errs.Is(err, errs.NotFound) {
			return nil, errs.Field(loc, "unknown_staff", "there is no staff member with id %d", id)
		}
		if err != nil {
			return nil, err
		}
		if err := add(m, loc); err != nil {
			return nil, err
		}
	}
	for i, uid := range in.StaffUserIDs {
		loc := fmt.Sprintf("staff_userids[%d]", i)
		m, err := s.staff.MemberByWeComUserID(ctx, tenantID, strings.TrimSpace(uid))
		if errs.Is(err, errs.NotFound) {
			return nil, errs.Field(loc, "unknown_staff", "there is no staff member with the WeCom userid %q (run a WeCom sync if they joined recently)", uid)
		}
		if err != nil {
			return nil, err
		}
		if err := add(m, loc); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errs.Field("staff_ids", "senders_required", "choose at least one staff member to publish the moment")
	}
	if len(out) > wecom.MaxMomentSenders {
		return nil, errs.Field("staff_ids", "too_many_senders", "a moment task has at most %d senders", wecom.MaxMomentSenders)
	}
	return out, nil
}

func (s *Service) resolveTags(ctx context.Context, tenantID int64, ids []int64) ([]VisibleTag, error) {
	var out []VisibleTag
	seen := map[int64]bool{}
	for i, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		loc := fmt.Sprintf("tag_ids[%d]", i)
		t, err := s.tags.Tag(ctx, tenantID, id)
		if errs.Is(err, errs.NotFound) {
			return nil, errs.Field(loc, "unknown_tag", "there is no tag with id %d", id)
		}
		if err != nil {
			return nil, err
		}
		if t.WeComTagID == "" {
			return nil, errs.Field(loc, "tag_not_bound",
				"the tag %q is not bound to a WeCom corp tag: WeCom shows moments to customers by corp tag only. Bind its group to WeCom (Tags → the group → WeCom) or choose a bound tag", t.Ref)
		}
		out = append(out, VisibleTag{ID: t.ID, Ref: t.Ref, WeComTagID: t.WeComTagID})
	}
	return out, nil
}

// Validate checks an input the way Create does, without storing anything:
// content limits, senders and tags.
func (s *Service) Validate(ctx context.Context, tenantID int64, in TaskInput) error {
	_, _, err := s.check(ctx, tenantID, &in)
	return err
}

func (s *Service) check(ctx context.Context, tenantID int64, in *TaskInput) ([]resolvedSender, []VisibleTag, error) {
	in.Text = strings.TrimSpace(in.Text)
	for i := range in.Attachments {
		a := &in.Attachments[i]
		a.Type, a.MediaID, a.Title, a.URL = strings.TrimSpace(a.Type), strings.TrimSpace(a.MediaID), strings.TrimSpace(a.Title), strings.TrimSpace(a.URL)
		if a.Type == "link" && a.URL != "" && !strings.HasPrefix(a.URL, "https://") && !strings.HasPrefix(a.URL, "http://") {
			return nil, nil, errs.Field(fmt.Sprintf("attachments[%d].url", i), "invalid_url", "a link's URL starts with https:// or http://")
		}
	}
	// The content rules are WeCom's; check them before looking anything up.
	if err := wecom.CheckMomentTask(wecomTask(in.Text, in.Attachments, nil, nil)); err != nil {
		return nil, nil, err
	}
	if in.ResultHours < 0 || in.ResultHours > 720 {
		return nil, nil, errs.Field("result_hours", "out_of_range", "results are polled for 1 to 720 hours")
	}
	senders, err := s.resolveSenders(ctx, tenantID, *in)
	if err != nil {
		return nil, nil, err
	}
	tags, err := s.resolveTags(ctx, tenantID, in.TagIDs)
	if err != nil {
		return nil, nil, err
	}
	return senders, tags, nil
}

// Create stores a task and wakes the worker, which sends it to WeCom. With a
// key already used it returns the task created first and created false.
func (s *Service) Create(ctx context.Context, p tenant.Principal, in TaskInput) (Task, bool, error) {
	if err := p.Require(tenant.PermMessagesSend); err != nil {
		return Task{}, false, err
	}
	in.Key = strings.TrimSpace(in.Key)
	if in.Key != "" {
		if t, err := s.byKey(ctx, p.TenantID, in.Key); err == nil {
			return t, false, nil
		} else if !errs.Is(err, errs.NotFound) {
			return Task{}, false, err
		}
	} else {
		in.Key = fmt.Sprintf("auto-%d-%d", s.now().UnixNano(), p.ID)
	}
	senders, tags, err := s.check(ctx, p.TenantID, &in)
	if err != nil {
		return Task{}, false, err
	}
	window := s.o.ResultWindow
	if in.ResultHours > 0 {
		window = time.Duration(in.ResultHours) * time.Hour
	}
	now := s.now()
	var id int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO moment_tasks (tenant_id, idempotency_key, text, attachments, tag_ids, status,
			sender_count, created_by, deadline_at, next_poll_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, 0, $9, $9) RETURNING id`,
			p.TenantID, in.Key, in.Text, toJSON(nonNil(in.Attachments)), toJSON(nonNil(tags)), len(senders), p.Name,
			db.Millis(now.Add(window)), db.Millis(now)).Scan(&id)
		if err != nil {
			return err
		}
		for _, snd := range senders {
			if _, err := tx.ExecContext(ctx, `INSERT INTO moment_senders (tenant_id, task_id, userid, staff_id) VALUES ($1, $2, $3, $4)`,
				p.TenantID, id, snd.userID, snd.staffID); err != nil {
				return fmt.Errorf("moment: unable to store a sender: %w", err)
			}
		}
		return s.audit.Audit(ctx, tx, p, "moment.create", "moment", fmt.Sprint(id),
			fmt.Sprintf("%d senders, %d tags, %d attachments", len(senders), len(tags), len(in.Attachments)))
	})
	if db.IsUniqueViolation(err) {
		t, err := s.byKey(ctx, p.TenantID, in.Key)
		return t, false, err
	}
	if err != nil {
		return Task{}, false, fmt.Errorf("moment: unable to store the task: %w", err)
	}
	s.Wake()
	t, err := s.Get(ctx, p, id)
	return t, true, err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// UploadMedia uploads an image or a video for a task's attachments to WeCom
// and returns its media_id (valid three days: create the task soon after).
func (s *Service) UploadMedia(ctx context.Context, p tenant.Principal, mediaType, filename string, data []byte) (string, error) {
	if err := p.Require(tenant.PermMessagesSend); err != nil {
		return "", err
	}
	c, err := s.clients(ctx, p.TenantID)
	if err != nil {
		return "", err
	}
	return c.UploadMomentMedia(ctx, mediaType, filename, data)
}

const taskCols = `id, idempotency_key, status, cancel_requested, text, attachments, tag_ids, moment_id, invalid_senders, invalid_tags,
	error_code, error_message, sender_count, published_count, visible_count, reached_count, created_by, deadline_at, polled_at,
	finished_at, created_at, updated_at`

func scanTask(row interface{ Scan(...any) error }) (Task, error) {
	var t Task
	var cancel int
	var atts, tags, invS, invT string
	var deadline, polled, finished, created, updated int64
	err := row.Scan(&t.ID, &t.Key, &t.Status, &cancel, &t.Text, &atts, &tags, &t.MomentID, &invS, &invT,
		&t.ErrorCode, &t.ErrorMessage, &t.SenderCount, &t.PublishedCount, &t.VisibleCount, &t.ReachedCount, &t.CreatedBy,
		&deadline, &polled, &finished, &created, &updated)
	if err != nil {
		return Task{}, err
	}
	t.CancelRequested = cancel != 0
	for _, x := range []struct {
		s string
		v any
	}{{atts, &t.Attachments}, {tags, &t.Tags}, {invS, &t.InvalidSenders}, {invT, &t.InvalidTags}} {
		if err := json.Unmarshal([]byte(x.s), x.v); err != nil {
			return Task{}, fmt.Errorf("moment: task %d has unreadable JSON: %w", t.ID, err)
		}
	}
	t.Attachments, t.Tags, t.InvalidSenders, t.InvalidTags = nonNil(t.Attachments), nonNil(t.Tags), nonNil(t.InvalidSenders), nonNil(t.InvalidTags)
	t.DeadlineAt, t.PolledAt, t.FinishedAt = db.FromMillis(deadline), db.FromMillis(polled), db.FromMillis(finished)
	t.CreatedAt, t.UpdatedAt = db.FromMillis(created), db.FromMillis(updated)
	return t, nil
}

func (s *Service) load(ctx context.Context, q db.Querier, tenantID, id int64) (Task, error) {
	t, err := scanTask(q.QueryRowContext(ctx, `SELECT `+taskCols+` FROM moment_tasks WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Task{}, errs.NotFoundf("moment", "no moment task with id %d", id)
	}
	if err != nil {
		return Task{}, fmt.Errorf("moment: unable to read task %d: %w", id, err)
	}
	return t, nil
}

func (s *Service) byKey(ctx context.Context, tenantID int64, key string) (Task, error) {
	t, err := scanTask(s.db.QueryRowContext(ctx, `SELECT `+taskCols+` FROM moment_tasks WHERE tenant_id = $1 AND idempotency_key = $2`, tenantID, key))
	if errors.Is(err, sql.ErrNoRows) {
		return Task{}, errs.NotFoundf("moment", "no moment task with key %q", key)
	}
	if err != nil {
		return Task{}, fmt.Errorf("moment: unable to read a task by key: %w", err)
	}
	return t, nil
}

// Get returns a task.
func (s *Service) Get(ctx context.Context, p tenant.Principal, id int64) (Task, error) {
	if err := p.Require(tenant.PermMessagesRead); err != nil {
		return Task{}, err
	}
	return s.load(ctx, s.db, p.TenantID, id)
}

// List lists tasks, newest first.
func (s *Service) List(ctx context.Context, p tenant.Principal, f Filter, r page.Request) (page.Page[Task], error) {
	if err := p.Require(tenant.PermMessagesRead); err != nil {
		return page.Page[Task]{}, err
	}
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[Task]{}, err
	}
	q := `SELECT ` + taskCols + ` FROM moment_tasks WHERE tenant_id = $1`
	args := []any{p.TenantID}
	if f.Status != "" {
		args = append(args, string(f.Status))
		q += fmt.Sprintf(` AND status = $%d`, len(args))
	}
	if ok {
		args = append(args, after)
		q += fmt.Sprintf(` AND id < $%d`, len(args))
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[Task]{}, fmt.Errorf("moment: unable to list tasks: %w", err)
	}
	defer rows.Close()
	var out []Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return page.Page[Task]{}, fmt.Errorf("moment: unable to read a task: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Task]{}, fmt.Errorf("moment: unable to list tasks: %w", err)
	}
	return page.Trim(out, r, func(t Task) string { return page.ByID(t.ID) }), nil
}

// Senders lists a task's senders with their results, by WeCom userid.
func (s *Service) Senders(ctx context.Context, p tenant.Principal, id int64, r page.Request) (page.Page[Sender], error) {
	if _, err := s.Get(ctx, p, id); err != nil {
		return page.Page[Sender]{}, err
	}
	args := []any{p.TenantID, id}
	q := `SELECT m.userid, m.staff_id, COALESCE(st.name, ''), m.status, m.published_at, m.visible_count, m.reached_count
		FROM moment_senders m LEFT JOIN staff st ON st.tenant_id = m.tenant_id AND st.id = m.staff_id
		WHERE m.tenant_id = $1 AND m.task_id = $2`
	if r.Cursor != "" {
		var after string
		if err := page.Decode(r.Cursor, &after); err != nil {
			return page.Page[Sender]{}, err
		}
		args = append(args, after)
		q += ` AND m.userid > $3`
	}
	q += fmt.Sprintf(` ORDER BY m.userid LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[Sender]{}, fmt.Errorf("moment: unable to list senders: %w", err)
	}
	defer rows.Close()
	var out []Sender
	for rows.Next() {
		var x Sender
		var pub int64
		if err := rows.Scan(&x.UserID, &x.StaffID, &x.Name, &x.Status, &pub, &x.VisibleCount, &x.ReachedCount); err != nil {
			return page.Page[Sender]{}, fmt.Errorf("moment: unable to read a sender: %w", err)
		}
		x.PublishedAt = db.FromMillis(pub)
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Sender]{}, fmt.Errorf("moment: unable to list senders: %w", err)
	}
	return page.Trim(out, r, func(x Sender) string { return page.Encode(x.UserID) }), nil
}

// ViewerFilter narrows a task's customers.
type ViewerFilter struct {
	UserID  string // one sender's customers
	Reached *bool  // only those who can (or cannot) see it
}

// Viewers lists the customers in a task's senders' ranges, by sender and
// external_userid.
func (s *Service) Viewers(ctx context.Context, p tenant.Principal, id int64, f ViewerFilter, r page.Request) (page.Page[Viewer], error) {
	if _, err := s.Get(ctx, p, id); err != nil {
		return page.Page[Viewer]{}, err
	}
	args := []any{p.TenantID, id}
	q := `SELECT userid, external_userid, COALESCE(customer_id, 0), reached FROM moment_customers WHERE tenant_id = $1 AND task_id = $2`
	if f.UserID != "" {
		args = append(args, f.UserID)
		q += fmt.Sprintf(` AND userid = $%d`, len(args))
	}
	if f.Reached != nil {
		v := 0
		if *f.Reached {
			v = 1
		}
		args = append(args, v)
		q += fmt.Sprintf(` AND reached = $%d`, len(args))
	}
	if r.Cursor != "" {
		var u, e string
		if err := page.Decode(r.Cursor, &u, &e); err != nil {
			return page.Page[Viewer]{}, err
		}
		args = append(args, u, e)
		q += fmt.Sprintf(` AND (userid > $%d OR (userid = $%d AND external_userid > $%d))`, len(args)-1, len(args)-1, len(args))
	}
	q += fmt.Sprintf(` ORDER BY userid, external_userid LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[Viewer]{}, fmt.Errorf("moment: unable to list customers: %w", err)
	}
	defer rows.Close()
	var out []Viewer
	for rows.Next() {
		var c Viewer
		var reached int
		if err := rows.Scan(&c.UserID, &c.ExternalUserID, &c.CustomerID, &reached); err != nil {
			return page.Page[Viewer]{}, fmt.Errorf("moment: unable to read a customer: %w", err)
		}
		c.Reached = reached != 0
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Viewer]{}, fmt.Errorf("moment: unable to list customers: %w", err)
	}
	return page.Trim(out, r, func(c Viewer) string { return page.Encode(c.UserID, c.ExternalUserID) }), nil
}

// Cancel cancels a task. One not yet sent to WeCom is cancelled at once; one
// WeCom is still creating is cancelled as soon as it has its moment; one
// being published is cancelled in WeCom (cancel_moment_task), after which
// staff who have not published it can no longer do so.
func (s *Service) Cancel(ctx context.Context, p tenant.Principal, id int64) (Task, error) {
	if err := p.Require(tenant.PermMessagesSend); err != nil {
		return Task{}, err
	}
	t, err := s.load(ctx, s.db, p.TenantID, id)
	if err != nil {
		return Task{}, err
	}
	now := db.Millis(s.now())
	switch t.Status {
	case StatusFinished, StatusCancelled, StatusFailed:
		return Task{}, errs.E(errs.Conflict, "moment_final", "the moment task is already %s and cannot be cancelled", t.Status)
	case StatusPublishing:
		c, err := s.clients(ctx, p.TenantID)
		if err != nil {
			return Task{}, err
		}
		if err := c.CancelMomentTask(ctx, t.MomentID); err != nil {
			return Task{}, fmt.Errorf("moment: unable to cancel the task in WeCom: %w", err)
		}
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if t.Status == StatusSubmitting || t.Status == StatusCreating {
			res, err = tx.ExecContext(ctx, `UPDATE moment_tasks SET cancel_requested = 1, next_poll_at = 0, updated_at = $3
				WHERE tenant_id = $1 AND id = $2 AND status IN ('submitting', 'creating')`, p.TenantID, id, now)
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE moment_tasks SET status = 'cancelled', finished_at = $3, updated_at = $3
				WHERE tenant_id = $1 AND id = $2 AND status = $4`, p.TenantID, id, now, string(t.Status))
		}
		if err != nil {
			return fmt.Errorf("moment: unable to cancel task %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.E(errs.Conflict, "moment_changed", "the moment task changed while it was being cancelled; look at it again and retry")
		}
		if t.Status == StatusPending || t.Status == StatusPublishing {
			if _, err := tx.ExecContext(ctx, `UPDATE moment_senders SET status = 'cancelled'
				WHERE tenant_id = $1 AND task_id = $2 AND status = 'pending'`, p.TenantID, id); err != nil {
				return fmt.Errorf("moment: unable to cancel senders: %w", err)
			}
		}
		return s.audit.Audit(ctx, tx, p, "moment.cancel", "moment", fmt.Sprint(id), "was "+string(t.Status))
	})
	if err != nil {
		return Task{}, err
	}
	s.Wake()
	return s.load(ctx, s.db, p.TenantID, id)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Refresh makes the worker read a task's results from WeCom now rather than
// at its next poll, and waits up to a few seconds for that read.
func (s *Service) Refresh(ctx context.Context, p tenant.Principal, id int64) (Task, error) {
	if err := p.Require(tenant.PermMessagesRead); err != nil {
		return Task{}, err
	}
	t, err := s.load(ctx, s.db, p.TenantID, id)
	if err != nil || t.Status.Final() {
		return t, err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE moment_tasks SET next_poll_at = 0 WHERE tenant_id = $1 AND id = $2`, p.TenantID, id); err != nil {
		return Task{}, fmt.Errorf("moment: unable to refresh task %d: %w", id, err)
	}
	if _, err := s.process(ctx, p.TenantID, id); err != nil {
		return Task{}, err
	}
	return s.load(ctx, s.db, p.TenantID, id)
}
