package console

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/moment"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// momentRoutes lists its pages when its service is set: the task list, the
// composer and a task's results. Reading needs messages.read; composing,
// cancelling need messages.send, as in the API.
func (c *Console) momentRoutes() []route {
	if c.deps.Moments == nil || c.deps.Staff == nil || c.deps.Tags == nil {
		return nil
	}
	return []route{
		{pattern: "GET /moments", perm: tenant.PermMessagesRead, handle: c.momentsPage,
			nav: &navEntry{Section: "nav.operations", Label: "nav.moments", Icon: "globe"}},
		{pattern: "GET /moments/new", perm: tenant.PermMessagesSend, handle: c.momentNewPage},
		// Up to 9 images of 10 MB each.
		{pattern: "POST /moments", perm: tenant.PermMessagesSend, handle: c.momentCreate, maxBody: 9*wecom.MaxMomentMediaBytes + 1<<20},
		{pattern: "GET /moments/{id}", perm: tenant.PermMessagesRead, handle: c.momentPage},
		{pattern: "POST /moments/{id}/refresh", perm: tenant.PermMessagesRead, handle: c.momentRefresh},
		{pattern: "POST /moments/{id}/cancel", perm: tenant.PermMessagesSend, handle: c.momentCancel},
	}
}

// momentStatusClass maps task and sender states to the console's status styles.
func momentStatusClass(s string) string {
	switch s {
	case "pending", "submitting":
		return "status-job-queued"
	case "creating", "publishing":
		return "status-job-running"
	case "finished", "published":
		return "status-job-done"
	case "cancelled":
		return "status-job-cancelled"
	case "failed", "invalid":
		return "status-job-failed"
	}
	return "status-off"
}

// momentRow is a task with its style.
type momentRow struct {
	moment.Task
	Class string
}

// momentsList is the data of Operations → Moments.
type momentsList struct {
	Rows    []momentRow
	Next    string
	Later   bool
	Status  string
	CanSend bool
}

func (c *Console) momentsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	q := r.URL.Query()
	cursor, status := q.Get("cursor"), q.Get("status")
	pg, err := c.deps.Moments.List(r.Context(), s.Principal, moment.Filter{Status: moment.Status(status)}, page.Request{Cursor: cursor, Limit: 50})
	if err != nil {
		return err
	}
	d := momentsList{Next: pg.Next, Later: cursor != "", Status: status, CanSend: s.Principal.Can(tenant.PermMessagesSend)}
	for _, t := range pg.Items {
		d.Rows = append(d.Rows, momentRow{Task: t, Class: momentStatusClass(string(t.Status))})
	}
	c.render(w, r, http.StatusOK, "moments", c.pageView(w, r, s, "moments.title", d))
	return nil
}

// momentForm keeps what was entered in the composer.
type momentForm struct {
	Key       string
	Text      string
	Kind      string // none, image, video, link
	LinkTitle string
	LinkURL   string
	Staff     map[int64]bool
	Tags      map[int64]bool
	Hours     int
}

// momentStaff is a staff member who can publish (on WeCom, active).
type momentStaff struct {
	ID     int64
	Name   string
	UserID string
}

// momentTag is a tag in the composer: bound ones can be chosen.
type momentTag struct {
	ID    int64
	Name  string
	Bound bool
}

// momentTagGroup is one tag group of the composer.
type momentTagGroup struct {
	Name string
	Tags []momentTag
}

// momentCompose is the data of the composer.
type momentCompose struct {
	Form     momentForm
	Err      formError
	Staff    []momentStaff
	Groups   []momentTagGroup
	Bound    int
	MaxText  int
	MaxImage int
}

func newMomentKey() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "console-" + hex.EncodeToString(b)
}

// momentComposeData reads the staff who can publish and the tags by group.
func (c *Console) momentComposeData(r *http.Request, s *signedIn, f momentForm) (momentCompose, error) {
	ctx := r.Context()
	tid := s.Principal.TenantID
	d := momentCompose{Form: f, MaxText: wecom.MaxMomentTextRunes, MaxImage: wecom.MaxMomentImages}
	req := page.Request{Limit: page.MaxLimit}
	for range 100 {
		pg, err := c.deps.Staff.Members(ctx, tid, req)
		if err != nil {
			return d, fmt.Errorf("console: moments: staff: %w", err)
		}
		for _, m := range pg.Items {
			if m.WeComUserID != "" && m.Status == staff.Active {
				d.Staff = append(d.Staff, momentStaff{ID: m.ID, Name: m.Name, UserID: m.WeComUserID})
			}
		}
		if pg.Next == "" {
			break
		}
		req.Cursor = pg.Next
	}
	all, err := c.deps.Tags.AllTags(ctx, tid)
	if err != nil {
		return d, fmt.Errorf("console: moments: tags: %w", err)
	}
	for _, t := range all {
		i := len(d.Groups) - 1
		if i < 0 || d.Groups[i].Name != t.Group {
			d.Groups = append(d.Groups, momentTagGroup{Name: t.Group})
			i++
		}
		d.Groups[i].Tags = append(d.Groups[i].Tags, momentTag{ID: t.ID, Name: t.Name, Bound: t.WeComTagID != ""})
		if t.WeComTagID != "" {
			d.Bound++
		}
	}
	return d, nil
}

func (c *Console) momentNewPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.momentComposeData(r, s, momentForm{Key: newMomentKey(), Kind: "none", Staff: map[int64]bool{}, Tags: map[int64]bool{}})
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "moments_new", c.pageView(w, r, s, "moments.new.title", d))
	return nil
}

// momentErr shows a moment error in the user's language: the moments
// catalogue's text for its code when there is one.
func (c *Console) momentErr(lang string, err error) string {
	if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
		if t, ok := c.cat.lookup(lang, "moments.error."+e.Code); ok {
			return t
		}
	}
	return c.cat.errorText(lang, err)
}

// momentFormError is err beside the composer's field it names.
func (c *Console) momentFormError(lang string, err error) formError {
	msg := c.momentErr(lang, err)
	fe := formError{Message: msg}
	if e, ok := errs.As(err); ok && len(e.Fields) > 0 {
		loc := e.Fields[0].Location
		field := ""
		switch {
		case loc == "text":
			field = "text"
		case strings.HasPrefix(loc, "attachments"):
			field = "attachments"
		case strings.HasPrefix(loc, "staff"):
			field = "staff"
		case strings.HasPrefix(loc, "tag"):
			field = "tags"
		}
		if field != "" {
			fe.Fields = map[string]string{field: msg}
			fe.Message = c.cat.text(lang, "form.fix_errors")
		}
	}
	return fe
}

// momentFiles reads the uploaded files of a form field.
func momentFiles(r *http.Request, field string) ([]*multipart.FileHeader, error) {
	if r.MultipartForm == nil {
		return nil, nil
	}
	var out []*multipart.FileHeader
	for _, fh := range r.MultipartForm.File[field] {
		if fh.Size > 0 || fh.Filename != "" {
			out = append(out, fh)
		}
	}
	return out, nil
}

// momentCreate checks the composed moment, uploads its files to WeCom and
// creates the task. Everything WeCom would refuse is checked before any
// upload, so a mistake costs no upload; the form's key makes a double submit
// one task.
func (c *Console) momentCreate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	f := momentForm{Key: strings.TrimSpace(r.PostFormValue("key")), Text: r.PostFormValue("text"), Kind: r.PostFormValue("kind"),
		LinkTitle: strings.TrimSpace(r.PostFormValue("link_title")), LinkURL: strings.TrimSpace(r.PostFormValue("link_url")),
		Staff: map[int64]bool{}, Tags: map[int64]bool{}}
	if f.Key == "" {
		f.Key = newMomentKey()
	}
	in := moment.TaskInput{Key: f.Key, Text: f.Text}
	for _, v := range r.PostForm["staff"] {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil {
			f.Staff[id] = true
			in.StaffIDs = append(in.StaffIDs, id)
		}
	}
	for _, v := range r.PostForm["tag"] {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil {
			f.Tags[id] = true
			in.TagIDs = append(in.TagIDs, id)
		}
	}
	if h, err := strconv.Atoi(r.PostFormValue("hours")); err == nil {
		f.Hours, in.ResultHours = h, h
	}
	images, _ := momentFiles(r, "images")
	videos, _ := momentFiles(r, "video")
	covers, _ := momentFiles(r, "cover")
	var files []*multipart.FileHeader
	switch f.Kind {
	case "image":
		files = images
		for range images {
			in.Attachments = append(in.Attachments, moment.MediaItem{Type: "image", MediaID: "upload"})
		}
		if len(images) == 0 {
			return c.momentComposeError(w, r, s, f, errs.Field("attachments", "images_required", "choose at least one image"))
		}
	case "video":
		files = videos
		for range videos {
			in.Attachments = append(in.Attachments, moment.MediaItem{Type: "video", MediaID: "upload"})
		}
		if len(videos) == 0 {
			return c.momentComposeError(w, r, s, f, errs.Field("attachments", "video_required", "choose a video"))
		}
	case "link":
		in.Attachments = []moment.MediaItem{{Type: "link", Title: f.LinkTitle, URL: f.LinkURL}}
		if len(covers) > 0 {
			in.Attachments[0].MediaID = "upload"
			files = covers[:1]
		}
	}
	if err := c.deps.Moments.Validate(r.Context(), s.Principal.TenantID, in); err != nil {
		if !isUserError(err) {
			return err
		}
		return c.momentComposeError(w, r, s, f, err)
	}
	for i, fh := range files {
		kind := "image"
		if f.Kind == "video" {
			kind = "video"
		}
		data, err := readMomentFile(fh)
		if err != nil {
			return c.momentComposeError(w, r, s, f, err)
		}
		id, err := c.deps.Moments.UploadMedia(r.Context(), s.Principal, kind, fh.Filename, data)
		if err != nil {
			if !isUserError(err) {
				return err
			}
			return c.momentComposeError(w, r, s, f, err)
		}
		in.Attachments[i].MediaID = id
	}
	t, _, err := c.deps.Moments.Create(r.Context(), s.Principal, in)
	if err != nil {
		if !isUserError(err) {
			return err
		}
		return c.momentComposeError(w, r, s, f, err)
	}
	c.log.InfoContext(r.Context(), "console: moment task created", "tenant_id", s.Principal.TenantID, "moment_task", t.ID, "user_id", s.User.ID)
	c.redirectWithFlash(w, r, fmt.Sprintf("/moments/%d", t.ID), "flash.moments.created")
	return nil
}

func readMomentFile(fh *multipart.FileHeader) ([]byte, error) {
	if fh.Size > wecom.MaxMomentMediaBytes {
		return nil, errs.Field("attachments", "file_too_large", "%s is larger than 10 MB", fh.Filename)
	}
	f, err := fh.Open()
	if err != nil {
		return nil, fmt.Errorf("console: moments: unable to open %s: %w", fh.Filename, err)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, wecom.MaxMomentMediaBytes+1))
}

func (c *Console) momentComposeError(w http.ResponseWriter, r *http.Request, s *signedIn, f momentForm, err error) error {
	d, derr := c.momentComposeData(r, s, f)
	if derr != nil {
		return derr
	}
	d.Err = c.momentFormError(s.Lang, err)
	c.render(w, r, statusOf(errs.KindOf(err)), "moments_new", c.pageView(w, r, s, "moments.new.title", d))
	return nil
}

// momentSenderRow is a sender with its style.
type momentSenderRow struct {
	moment.Sender
	Class string
}

// momentDetail is the data of one task's page.
type momentDetail struct {
	Task        moment.Task
	Class       string
	Senders     []momentSenderRow
	SendersNext string
	Viewers     []moment.Viewer
	ViewersNext string
	Sender      string // the viewers' filter
	Reached     string // "", "true", "false"
	CanSend     bool
	Err         string
	Query       url.Values
}

// Cancellable reports whether the task can still be cancelled.
func (d momentDetail) Cancellable() bool { return !d.Task.Status.Final() }

// ViewersQuery is the query of another viewers page with the same filters.
func (d momentDetail) ViewersQuery(cursor string) string {
	q := url.Values{}
	if d.Sender != "" {
		q.Set("sender", d.Sender)
	}
	if d.Reached != "" {
		q.Set("reached", d.Reached)
	}
	if cursor != "" {
		q.Set("vcursor", cursor)
	}
	if sc := d.Query.Get("scursor"); sc != "" {
		q.Set("scursor", sc)
	}
	return q.Encode()
}

func momentID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.NotFoundf("moment", "no such moment task")
	}
	return id, nil
}

func (c *Console) momentPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := momentID(r)
	if err != nil {
		return err
	}
	return c.renderMoment(w, r, s, id, http.StatusOK, "")
}

func (c *Console) renderMoment(w http.ResponseWriter, r *http.Request, s *signedIn, id int64, status int, msg string) error {
	ctx := r.Context()
	svc := c.deps.Moments
	t, err := svc.Get(ctx, s.Principal, id)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	d := momentDetail{Task: t, Class: momentStatusClass(string(t.Status)), CanSend: s.Principal.Can(tenant.PermMessagesSend), Err: msg,
		Sender: q.Get("sender"), Reached: q.Get("reached"), Query: q}
	sp, err := svc.Senders(ctx, s.Principal, id, page.Request{Cursor: q.Get("scursor"), Limit: 50})
	if err != nil {
		return err
	}
	for _, x := range sp.Items {
		d.Senders = append(d.Senders, momentSenderRow{Sender: x, Class: momentStatusClass(string(x.Status))})
	}
	d.SendersNext = sp.Next
	f := moment.ViewerFilter{UserID: d.Sender}
	if d.Reached == "true" || d.Reached == "false" {
		v := d.Reached == "true"
		f.Reached = &v
	}
	vp, err := svc.Viewers(ctx, s.Principal, id, f, page.Request{Cursor: q.Get("vcursor"), Limit: 50})
	if err != nil {
		return err
	}
	d.Viewers, d.ViewersNext = vp.Items, vp.Next
	v := c.pageView(w, r, s, "moments.detail.title", d)
	c.render(w, r, status, "moments_detail", v)
	return nil
}

func (c *Console) momentRefresh(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := momentID(r)
	if err != nil {
		return err
	}
	if _, err := c.deps.Moments.Refresh(r.Context(), s.Principal, id); err != nil {
		if !isUserError(err) {
			return err
		}
		return c.renderMoment(w, r, s, id, statusOf(errs.KindOf(err)), c.momentErr(s.Lang, err))
	}
	http.Redirect(w, r, fmt.Sprintf("/moments/%d", id), http.StatusSeeOther)
	return nil
}

func (c *Console) momentCancel(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := momentID(r)
	if err != nil {
		return err
	}
	if _, err := c.deps.Moments.Cancel(r.Context(), s.Principal, id); err != nil {
		if !isUserError(err) {
			return err
		}
		return c.renderMoment(w, r, s, id, statusOf(errs.KindOf(err)), c.momentErr(s.Lang, err))
	}
	c.log.InfoContext(r.Context(), "console: moment task cancelled", "tenant_id", s.Principal.TenantID, "moment_task", id, "user_id", s.User.ID)
	to := fmt.Sprintf("/moments/%d", id)
	c.redirectWithFlash(w, r, to, "flash.moments.cancelled")
	return nil
}
