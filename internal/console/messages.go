package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Mass messages (群发): the campaign list, the composer (audience picker —
// a saved audience or the audience builder's conditions —, content with
// placeholders and attachments, a preview per customer and the cap
// estimate before sending, send now or schedule), a campaign's results per
// staff member and per recipient with cancel and remind, and the sending
// settings (cap policy, quiet hours).

// messageRoutes lists its pages when its service is set. Reading needs
// messages.read; composing, sending, cancelling, reminding and the settings
// need messages.send, as in the API.
func (c *Console) messageRoutes() []route {
	if c.deps.Messages == nil || c.deps.Audiences == nil || c.deps.Staff == nil {
		return nil
	}
	return []route{
		{pattern: "GET /messages", perm: tenant.PermMessagesRead, handle: c.messagesPage,
			nav: &navEntry{Section: "nav.operations", Label: "nav.messages", Icon: "mail"}},
		{pattern: "GET /messages/new", perm: tenant.PermMessagesSend, handle: c.messageNewPage},
		{pattern: "POST /messages", perm: tenant.PermMessagesSend, handle: c.messageCreate},
		{pattern: "POST /messages/estimate", perm: tenant.PermMessagesSend, handle: c.messageEstimate},
		{pattern: "POST /messages/preview", perm: tenant.PermMessagesSend, handle: c.messagePreview},
		{pattern: "GET /messages/settings", perm: tenant.PermMessagesRead, handle: c.messageSettingsPage},
		{pattern: "POST /messages/settings", perm: tenant.PermMessagesSend, handle: c.messageSettingsSave},
		{pattern: "GET /messages/{id}", perm: tenant.PermMessagesRead, handle: c.messagePage},
		{pattern: "GET /messages/{id}/edit", perm: tenant.PermMessagesSend, handle: c.messageEditPage},
		{pattern: "POST /messages/{id}", perm: tenant.PermMessagesSend, handle: c.messageUpdate},
		{pattern: "POST /messages/{id}/send", perm: tenant.PermMessagesSend, handle: c.messageSend},
		{pattern: "POST /messages/{id}/schedule", perm: tenant.PermMessagesSend, handle: c.messageSchedule},
		{pattern: "POST /messages/{id}/cancel", perm: tenant.PermMessagesSend, handle: c.messageCancel},
		{pattern: "POST /messages/{id}/remind", perm: tenant.PermMessagesSend, handle: c.messageRemind},
	}
}

// maxMessageAttachments is WeCom's limit on a mass message's attachments.
const maxMessageAttachments = 9

// campaignStatusClass maps campaign and recipient states to status styles.
func campaignStatusClass(s string) string {
	switch s {
	case "draft":
		return "status-job-uploaded"
	case "scheduled", "queued", "waiting":
		return "status-job-queued"
	case "sending", "sent_pending", "submitted", "unsent", "mixed":
		return "status-job-running"
	case "sent", "done":
		return "status-job-done"
	case "cancelled", "expired":
		return "status-job-cancelled"
	case "failed", "not_sent", "skipped":
		return "status-job-failed"
	}
	return "status-off"
}

// campaignRow is a campaign with its style.
type campaignRow struct {
	message.Campaign
	Class string
}

// messagesList is the data of Operations → Mass messages.
type messagesList struct {
	Rows    []campaignRow
	Next    string
	Later   bool
	Status  string
	CanSend bool
}

func (c *Console) messagesPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	q := r.URL.Query()
	cursor, status := q.Get("cursor"), q.Get("status")
	pg, err := c.deps.Messages.Campaigns(r.Context(), s.Principal.TenantID, message.CampaignQuery{Status: message.CampaignStatus(status)},
		page.Request{Cursor: cursor, Limit: 50})
	if err != nil {
		return err
	}
	d := messagesList{Next: pg.Next, Later: cursor != "", Status: status, CanSend: s.Principal.Can(tenant.PermMessagesSend)}
	for _, x := range pg.Items {
		d.Rows = append(d.Rows, campaignRow{Campaign: x, Class: campaignStatusClass(string(x.Status))})
	}
	c.render(w, r, http.StatusOK, "messages", c.pageView(w, r, s, "messages.title", d))
	return nil
}

// messageAttachment is one attachment row of the composer.
type messageAttachment struct {
	message.Attachment
	Index  int
	Number int  // Index+1, as people count
	Shown  bool // filled in, or the first row
}

// messageForm keeps what was entered in the composer.
type messageForm struct {
	ID          int64 // editing a campaign; 0 for a new one
	Key         string
	Name        string
	Kind        string // customers or groups
	TargetMode  string // audience or condition
	AudienceID  int64
	Conditions  string
	Staff       map[string]bool
	ChatIDs     string
	Text        string
	Attachments []messageAttachment
	SendAt      string // datetime-local in the workspace's zone
	Preview     string // customer id to preview for
}

// Action is where the composer posts.
func (f messageForm) Action() string {
	if f.ID != 0 {
		return fmt.Sprintf("/messages/%d", f.ID)
	}
	return "/messages"
}

// messageCompose is the data of the composer.
type messageCompose struct {
	Form      messageForm
	Err       formError
	Audiences []audience.Audience
	Staff     []staff.Member
	Builder   string // the audience builder's data, for audience.js
	Settings  message.Settings
	Kinds     []string
}

// newMessageForm is an empty composer.
func newMessageForm() messageForm {
	f := messageForm{Key: newMomentKey(), Kind: message.KindCustomers, TargetMode: "audience", Staff: map[string]bool{}}
	f.fillAttachments(nil)
	return f
}

// fillAttachments lays out the nine attachment rows, the filled ones first.
func (f *messageForm) fillAttachments(as []message.Attachment) {
	f.Attachments = nil
	for i := range maxMessageAttachments {
		row := messageAttachment{Index: i, Number: i + 1, Shown: i == 0 || i < len(as)}
		if i < len(as) {
			row.Attachment = as[i]
		}
		f.Attachments = append(f.Attachments, row)
	}
}

// composeData reads what the composer offers: saved audiences, staff on
// WeCom, the builder's data and the sending settings.
func (c *Console) composeData(r *http.Request, s *signedIn, f messageForm) (messageCompose, error) {
	ctx := r.Context()
	tid := s.Principal.TenantID
	d := messageCompose{Form: f, Kinds: []string{"image", "link", "miniprogram", "video", "file"}}
	all, err := c.allAudiences(r, tid)
	if err != nil {
		return d, err
	}
	d.Audiences = all
	req := page.Request{Limit: page.MaxLimit}
	for range 100 {
		pg, err := c.deps.Staff.Members(ctx, tid, req)
		if err != nil {
			return d, fmt.Errorf("console: messages: staff: %w", err)
		}
		for _, m := range pg.Items {
			if m.WeComUserID != "" && m.Status == staff.Active {
				d.Staff = append(d.Staff, m)
			}
		}
		if pg.Next == "" {
			break
		}
		req.Cursor = pg.Next
	}
	if c.deps.Customers != nil {
		bd, _, err := c.builderData(r, s, 0)
		if err != nil {
			return d, err
		}
		b, err := json.Marshal(bd)
		if err != nil {
			return d, fmt.Errorf("console: messages: builder: %w", err)
		}
		d.Builder = string(b)
	}
	if d.Settings, err = c.deps.Messages.Settings(ctx, tid); err != nil {
		return d, err
	}
	return d, nil
}

func (c *Console) messageNewPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	f := newMessageForm()
	q := r.URL.Query()
	if id, err := strconv.ParseInt(q.Get("audience"), 10, 64); err == nil {
		f.AudienceID = id
	}
	if cond := q.Get("conditions"); cond != "" {
		f.TargetMode, f.Conditions = "condition", cond
	}
	d, err := c.composeData(r, s, f)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "messages_new", c.pageView(w, r, s, "messages.new.title", d))
	return nil
}

func (c *Console) messageEditPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	cp, err := c.deps.Messages.Campaign(r.Context(), s.Principal.TenantID, id)
	if err != nil {
		return err
	}
	f := messageForm{ID: cp.ID, Key: newMomentKey(), Name: cp.Name, Kind: cp.Kind, TargetMode: "audience", AudienceID: cp.Target.AudienceID,
		Staff: map[string]bool{}, Text: cp.Content.Text, ChatIDs: strings.Join(cp.Target.ChatIDs, "\n")}
	if cp.Target.Condition != nil {
		f.TargetMode, f.Conditions = "condition", treeText(*cp.Target.Condition)
	}
	for _, u := range append(append([]string{}, cp.Target.StaffUserIDs...), cp.Target.GroupOwners...) {
		f.Staff[u] = true
	}
	f.fillAttachments(cp.Content.Attachments)
	if !cp.SendAt.IsZero() {
		f.SendAt = cp.SendAt.In(s.Workspace.Location()).Format("2006-01-02T15:04")
	}
	d, err := c.composeData(r, s, f)
	if err != nil {
		return err
	}
	v := c.pageView(w, r, s, "messages.edit.title", d)
	v.Heading = cp.Name
	c.render(w, r, http.StatusOK, "messages_new", v)
	return nil
}

// readMessageForm reads the composer into its form and the campaign input.
func readMessageForm(r *http.Request) (messageForm, message.CampaignInput, error) {
	f := messageForm{Key: strings.TrimSpace(r.PostFormValue("key")), Name: strings.TrimSpace(r.PostFormValue("name")),
		Kind: r.PostFormValue("kind"), TargetMode: r.PostFormValue("target_mode"), Conditions: strings.TrimSpace(r.PostFormValue("conditions")),
		Staff: map[string]bool{}, ChatIDs: r.PostFormValue("chat_ids"), Text: r.PostFormValue("text"), SendAt: r.PostFormValue("send_at"),
		Preview: strings.TrimSpace(r.PostFormValue("preview_customer"))}
	if f.Kind == "" {
		f.Kind = message.KindCustomers
	}
	if f.TargetMode == "" {
		f.TargetMode = "audience"
	}
	f.AudienceID, _ = strconv.ParseInt(r.PostFormValue("audience_id"), 10, 64)
	in := message.CampaignInput{Key: f.Key, Name: f.Name, Kind: f.Kind, Content: message.Content{Text: f.Text}}
	var users []string
	for _, u := range r.PostForm["staff"] {
		if u = strings.TrimSpace(u); u != "" && !f.Staff[u] {
			f.Staff[u] = true
			users = append(users, u)
		}
	}
	var as []message.Attachment
	for i := range maxMessageAttachments {
		p := fmt.Sprintf("att%d_", i)
		a := message.Attachment{Kind: r.PostFormValue(p + "kind"), Title: strings.TrimSpace(r.PostFormValue(p + "title")),
			Description: strings.TrimSpace(r.PostFormValue(p + "description")), URL: strings.TrimSpace(r.PostFormValue(p + "url")),
			ImageURL: strings.TrimSpace(r.PostFormValue(p + "image_url")), MediaID: strings.TrimSpace(r.PostFormValue(p + "media_id")),
			AppID: strings.TrimSpace(r.PostFormValue(p + "appid")), Page: strings.TrimSpace(r.PostFormValue(p + "page"))}
		if a.Title == "" && a.Description == "" && a.URL == "" && a.ImageURL == "" && a.MediaID == "" && a.AppID == "" && a.Page == "" {
			continue // an empty row, whatever its kind says
		}
		as = append(as, a)
	}
	f.fillAttachments(as)
	in.Content.Attachments = as
	if f.Kind == message.KindGroups {
		in.Target.GroupOwners = users
		in.Target.ChatIDs = strings.FieldsFunc(f.ChatIDs, func(r rune) bool { return r == '\n' || r == ',' || r == ' ' || r == '\r' })
		return f, in, nil
	}
	in.Target.StaffUserIDs = users
	if f.TargetMode == "condition" {
		if f.Conditions == "" {
			return f, in, errs.Field("conditions", "target_required", "add conditions, or choose a saved audience")
		}
		var cond audience.Condition
		if err := json.Unmarshal([]byte(f.Conditions), &cond); err != nil {
			return f, in, errs.Field("conditions", "invalid_json", "the conditions are not valid JSON: %v", err)
		}
		in.Target.Condition = &cond
	} else {
		in.Target.AudienceID = f.AudienceID
	}
	return f, in, nil
}

// messageSendAt reads the schedule field in the workspace's time zone.
func messageSendAt(v string, loc *time.Location) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01-02T15:04", strings.TrimSpace(v), loc)
	if err != nil {
		return time.Time{}, errs.Field("send_at", "invalid_time", "choose the date and time to send it")
	}
	return t, nil
}

// messageFormError shows err beside the composer's field it is about.
func (c *Console) messageFormError(lang string, err error) formError {
	msg := c.messageErr(lang, err)
	fe := formError{Message: msg}
	if e, ok := errs.As(err); ok && len(e.Fields) > 0 {
		loc := e.Fields[0].Location
		var field string
		switch {
		case loc == "name":
			field = "name"
		case strings.HasPrefix(loc, "content.attachments") || strings.HasPrefix(loc, "attachments"):
			field = "attachments"
		case strings.HasPrefix(loc, "content") || loc == "text":
			field = "text"
		case strings.HasPrefix(loc, "target") || loc == "conditions" || strings.HasPrefix(loc, "and") || strings.HasPrefix(loc, "or") || strings.HasPrefix(loc, "(root)"):
			field = "target"
		case loc == "send_at":
			field = "send_at"
		}
		if field != "" {
			fe.Fields = map[string]string{field: msg}
			fe.Message = c.cat.text(lang, "form.fix_errors")
		}
	}
	return fe
}

// messageErr is a message error in the user's language: the messages
// catalogue's text for its code when it has one.
func (c *Console) messageErr(lang string, err error) string {
	if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
		if t, ok := c.cat.lookup(lang, "messages.error."+e.Code); ok {
			return t
		}
	}
	return c.cat.errorText(lang, err)
}

func (c *Console) messageComposeError(w http.ResponseWriter, r *http.Request, s *signedIn, f messageForm, err error) error {
	d, derr := c.composeData(r, s, f)
	if derr != nil {
		return derr
	}
	d.Err = c.messageFormError(s.Lang, err)
	title := "messages.new.title"
	if f.ID != 0 {
		title = "messages.edit.title"
	}
	c.render(w, r, statusOf(errs.KindOf(err)), "messages_new", c.pageView(w, r, s, title, d))
	return nil
}

// messageCreate saves the composed campaign (idempotent on the form's key)
// and, as the button asked, sends it now or schedules it.
func (c *Console) messageCreate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	f, in, err := readMessageForm(r)
	if err != nil {
		return c.messageComposeError(w, r, s, f, err)
	}
	action := r.PostFormValue("action")
	var at time.Time
	if action == "schedule" {
		if at, err = messageSendAt(f.SendAt, s.Workspace.Location()); err != nil {
			return c.messageComposeError(w, r, s, f, err)
		}
	}
	cp, err := c.deps.Messages.CreateCampaign(r.Context(), s.Principal, in)
	if err != nil {
		if !isUserError(err) {
			return err
		}
		return c.messageComposeError(w, r, s, f, err)
	}
	return c.messageAfterSave(w, r, s, f, cp, action, at)
}

// messageAfterSave sends or schedules a saved campaign as asked and shows it.
func (c *Console) messageAfterSave(w http.ResponseWriter, r *http.Request, s *signedIn, f messageForm, cp message.Campaign, action string, at time.Time) error {
	flash := "flash.messages.saved"
	var err error
	switch action {
	case "send":
		if cp.Status == message.CampaignDraft || cp.Status == message.CampaignScheduled {
			_, err = c.deps.Messages.SendCampaign(r.Context(), s.Principal, cp.ID)
		}
		flash = "flash.messages.sending"
	case "schedule":
		_, err = c.deps.Messages.ScheduleCampaign(r.Context(), s.Principal, cp.ID, at)
		flash = "flash.messages.scheduled"
	}
	if err != nil {
		if !isUserError(err) {
			return err
		}
		f.ID = cp.ID
		return c.messageComposeError(w, r, s, f, err)
	}
	c.log.InfoContext(r.Context(), "console: mass message saved", "tenant_id", s.Principal.TenantID, "campaign", cp.ID, "action", action, "user_id", s.User.ID)
	c.redirectWithFlash(w, r, fmt.Sprintf("/messages/%d", cp.ID), flash)
	return nil
}

func (c *Console) messageUpdate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	f, in, err := readMessageForm(r)
	f.ID = id
	if err != nil {
		return c.messageComposeError(w, r, s, f, err)
	}
	action := r.PostFormValue("action")
	var at time.Time
	if action == "schedule" {
		if at, err = messageSendAt(f.SendAt, s.Workspace.Location()); err != nil {
			return c.messageComposeError(w, r, s, f, err)
		}
	}
	in.Key = ""
	cp, err := c.deps.Messages.UpdateCampaign(r.Context(), s.Principal, id, in)
	if err != nil {
		if !isUserError(err) {
			return err
		}
		return c.messageComposeError(w, r, s, f, err)
	}
	return c.messageAfterSave(w, r, s, f, cp, action, at)
}

// messageEstimateView is the composer's cap estimate, with a few customers of the
// target to preview the message for.
type messageEstimateView struct {
	Est     message.Estimate
	Err     string
	Samples []messageSample
	Kind    string
}

// messageSample is a customer of the target to preview for.
type messageSample struct {
	ID   int64
	Name string
}

// messageEstimate answers the composer's "estimate" with how many would
// receive it and how many the per-customer cap would skip, before sending.
func (c *Console) messageEstimate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	f, in, err := readMessageForm(r)
	if in.Name == "" {
		in.Name = "-" // a name is not needed to count
	}
	v := messageEstimateView{Kind: f.Kind}
	if err == nil {
		v.Est, err = c.deps.Messages.Estimate(r.Context(), s.Principal.TenantID, in)
	}
	if err != nil {
		if !isUserError(err) {
			return err
		}
		v.Err = c.messageErr(s.Lang, err)
	} else {
		v.Est.PeriodEnd = lastDay(v.Est.PeriodEnd)
		if f.Kind == message.KindCustomers {
			v.Samples = c.sampleCustomers(r, s, in.Target)
		}
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "messages_new", "message_estimate", struct {
		Data messageEstimateView
		Loc  *time.Location
	}{v, s.Workspace.Location()})
	return nil
}

// lastDay turns a cap period's exclusive end into its last moment, so the
// period shows as people say it (11-01 to 11-30).
func lastDay(end time.Time) time.Time {
	if end.IsZero() {
		return end
	}
	return end.Add(-time.Millisecond)
}

// sampleCustomers are the first customers of a target, to preview for.
func (c *Console) sampleCustomers(r *http.Request, s *signedIn, t message.Target) []messageSample {
	ctx := r.Context()
	tid := s.Principal.TenantID
	var res audience.Result
	var err error
	switch {
	case t.AudienceID != 0:
		res, err = c.deps.Audiences.Members(ctx, tid, t.AudienceID)
	case t.Condition != nil:
		res, err = c.deps.Audiences.Evaluate(ctx, tid, *t.Condition)
	default:
		return nil
	}
	if err != nil || c.deps.Customers == nil {
		return nil
	}
	var out []messageSample
	for _, id := range res.IDs(0, 5) {
		cu, err := c.deps.Customers.Get(ctx, tid, id, false)
		if err != nil {
			continue
		}
		out = append(out, messageSample{ID: id, Name: cu.Name})
	}
	return out
}

// messagePreviewView is the message as one customer would receive it.
type messagePreviewView struct {
	P   message.Preview
	Err string
}

// messagePreview renders the composed message for one customer, with who
// would send it or why they would be skipped.
func (c *Console) messagePreview(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	f, in, err := readMessageForm(r)
	var v messagePreviewView
	if err == nil {
		var id int64
		id, err = strconv.ParseInt(f.Preview, 10, 64)
		if err != nil || id <= 0 {
			err = errs.Field("preview_customer", "customer_required", "choose a customer to preview the message for")
		} else {
			v.P, err = c.deps.Messages.Preview(r.Context(), s.Principal.TenantID, in, id)
		}
	}
	if err != nil {
		if !isUserError(err) {
			return err
		}
		v.Err = c.messageErr(s.Lang, err)
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "messages_new", "message_preview", struct{ Data messagePreviewView }{v})
	return nil
}

func campaignID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.NotFoundf("campaign", "no such mass message")
	}
	return id, nil
}

// staffResultRow is one staff member's results with its style.
type staffResultRow struct {
	message.StaffResult
	Class     string
	CanRemind bool
}

// recipientRow is one recipient's result with its style.
type recipientRow struct {
	message.RecipientResult
	Class string
	Label string // the outcome to show: the reason when there is one
}

// campaignDetail is the data of a campaign's page.
type campaignDetail struct {
	Campaign   message.Campaign
	Class      string
	Estimate   *message.Estimate
	EstErr     string
	Staff      []staffResultRow
	StaffNext  string
	Recipients []recipientRow
	RecipNext  string
	Filter     string // recipients' status filter
	Sender     string // recipients' staff filter
	Filters    []string
	CanSend    bool
	Err        string
	Reminded   *message.RemindResult
	Audience   string // the saved audience's name
	SendAt     string // the schedule form's value
	Query      url.Values
}

// Editable reports whether the campaign can still be changed or sent.
func (d campaignDetail) Editable() bool {
	return d.Campaign.Status == message.CampaignDraft || d.Campaign.Status == message.CampaignScheduled
}

// Cancellable reports whether cancelling still does something.
func (d campaignDetail) Cancellable() bool {
	switch d.Campaign.Status {
	case message.CampaignDone, message.CampaignFailed, message.CampaignCancelled:
		return false
	}
	return true
}

// Remindable reports whether staff can be reminded.
func (d campaignDetail) Remindable() bool {
	return d.Campaign.Status == message.CampaignSending || d.Campaign.Status == message.CampaignSent
}

// RecipQuery is the query of another recipients page with the same filters.
func (d campaignDetail) RecipQuery(cursor string) string {
	q := url.Values{}
	if d.Filter != "" {
		q.Set("status", d.Filter)
	}
	if d.Sender != "" {
		q.Set("staff", d.Sender)
	}
	if cursor != "" {
		q.Set("rcursor", cursor)
	}
	return q.Encode()
}

// ConditionText is an inline target's conditions as JSON.
func (d campaignDetail) ConditionText() string {
	if d.Campaign.Target.Condition == nil {
		return ""
	}
	return treeText(*d.Campaign.Target.Condition)
}

func (c *Console) messagePage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	return c.renderCampaign(w, r, s, id, http.StatusOK, "", nil)
}

func (c *Console) renderCampaign(w http.ResponseWriter, r *http.Request, s *signedIn, id int64, status int, msg string, reminded *message.RemindResult) error {
	ctx := r.Context()
	tid := s.Principal.TenantID
	svc := c.deps.Messages
	cp, err := svc.Campaign(ctx, tid, id)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	d := campaignDetail{Campaign: cp, Class: campaignStatusClass(string(cp.Status)), CanSend: s.Principal.Can(tenant.PermMessagesSend),
		Err: msg, Reminded: reminded, Filter: q.Get("status"), Sender: q.Get("staff"), Query: q,
		Filters: []string{"sent", "submitted", "not_sent", "not_friend", "over_cap", "failed", "cancelled"}}
	if cp.Target.AudienceID != 0 {
		if a, err := c.deps.Audiences.Audience(ctx, tid, cp.Target.AudienceID); err == nil {
			d.Audience = a.Name
		}
	}
	if !cp.SendAt.IsZero() {
		d.SendAt = cp.SendAt.In(s.Workspace.Location()).Format("2006-01-02T15:04")
	}
	if d.Editable() {
		est, err := svc.EstimateCampaign(ctx, tid, id)
		if err != nil {
			if !isUserError(err) {
				return err
			}
			d.EstErr = c.messageErr(s.Lang, err)
		} else {
			est.PeriodEnd = lastDay(est.PeriodEnd)
			d.Estimate = &est
		}
	} else {
		sp, err := svc.StaffResults(ctx, tid, id, page.Request{Cursor: q.Get("scursor"), Limit: 50})
		if err != nil {
			return err
		}
		for _, x := range sp.Items {
			d.Staff = append(d.Staff, staffResultRow{StaffResult: x, Class: campaignStatusClass(x.Status),
				CanRemind: d.CanSend && d.Remindable() && x.Submitted > 0})
		}
		d.StaffNext = sp.Next
		rp, err := svc.RecipientResults(ctx, tid, id, message.RecipientQuery{Status: d.Filter, StaffUserID: d.Sender},
			page.Request{Cursor: q.Get("rcursor"), Limit: 50})
		if err != nil {
			return err
		}
		for _, x := range rp.Items {
			label := string(x.Status)
			if x.Reason != "" && x.Reason != string(x.Status) {
				label = x.Reason
			}
			d.Recipients = append(d.Recipients, recipientRow{RecipientResult: x, Class: campaignStatusClass(string(x.Status)), Label: label})
		}
		d.RecipNext = rp.Next
	}
	v := c.pageView(w, r, s, "messages.detail.title", d)
	v.Heading = cp.Name
	c.render(w, r, status, "messages_detail", v)
	return nil
}

// campaignAction runs an action on a campaign and shows it, with the
// refusal beside it when there is one.
func (c *Console) campaignAction(w http.ResponseWriter, r *http.Request, s *signedIn, flash string, act func(id int64) error) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	if err := act(id); err != nil {
		if !isUserError(err) {
			return err
		}
		return c.renderCampaign(w, r, s, id, statusOf(errs.KindOf(err)), c.messageErr(s.Lang, err), nil)
	}
	c.redirectWithFlash(w, r, fmt.Sprintf("/messages/%d", id), flash)
	return nil
}

func (c *Console) messageSend(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	return c.campaignAction(w, r, s, "flash.messages.sending", func(id int64) error {
		_, err := c.deps.Messages.SendCampaign(r.Context(), s.Principal, id)
		return err
	})
}

func (c *Console) messageSchedule(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	return c.campaignAction(w, r, s, "flash.messages.scheduled", func(id int64) error {
		at, err := messageSendAt(r.PostFormValue("send_at"), s.Workspace.Location())
		if err != nil {
			return err
		}
		_, err = c.deps.Messages.ScheduleCampaign(r.Context(), s.Principal, id, at)
		return err
	})
}

func (c *Console) messageCancel(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	return c.campaignAction(w, r, s, "flash.messages.cancelled", func(id int64) error {
		_, err := c.deps.Messages.CancelCampaign(r.Context(), s.Principal, id)
		return err
	})
}

// messageRemind reminds staff who have not sent (one, or all) and shows who
// was reminded and, for the others, why not (WeCom allows 3 reminders in 24
// hours).
func (c *Console) messageRemind(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	var users []string
	if u := strings.TrimSpace(r.PostFormValue("userid")); u != "" {
		users = []string{u}
	}
	res, err := c.deps.Messages.RemindCampaign(r.Context(), s.Principal, id, users)
	if err != nil {
		if !isUserError(err) {
			return err
		}
		return c.renderCampaign(w, r, s, id, statusOf(errs.KindOf(err)), c.messageErr(s.Lang, err), nil)
	}
	c.log.InfoContext(r.Context(), "console: staff reminded", "tenant_id", s.Principal.TenantID, "campaign", id,
		"reminded", len(res.Reminded), "refused", len(res.Refused), "user_id", s.User.ID)
	return c.renderCampaign(w, r, s, id, http.StatusOK, "", &res)
}

// messageSettings is the data of the sending settings page.
type messageSettings struct {
	Settings message.Settings
	Policies []string
	Err      formError
	Saved    bool
	CanSend  bool
}

func capPolicies() []string { return []string{message.CapMonth, message.CapWeek, message.CapDay} }

func (c *Console) messageSettingsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	st, err := c.deps.Messages.Settings(r.Context(), s.Principal.TenantID)
	if err != nil {
		return err
	}
	d := messageSettings{Settings: st, Policies: capPolicies(), CanSend: s.Principal.Can(tenant.PermMessagesSend)}
	c.render(w, r, http.StatusOK, "messages_settings", c.pageView(w, r, s, "messages.settings.title", d))
	return nil
}

func (c *Console) messageSettingsSave(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	cur, err := c.deps.Messages.Settings(r.Context(), s.Principal.TenantID)
	if err != nil {
		return err
	}
	in := message.Settings{CapPolicy: r.PostFormValue("cap_policy"), QuietStart: strings.TrimSpace(r.PostFormValue("quiet_start")),
		QuietEnd: strings.TrimSpace(r.PostFormValue("quiet_end")), Pacing: cur.Pacing}
	if _, err := c.deps.Messages.UpdateSettings(r.Context(), s.Principal, in); err != nil {
		if !isUserError(err) {
			return err
		}
		d := messageSettings{Settings: in, Policies: capPolicies(), CanSend: true, Err: c.cat.formErrorFor(s.Lang, err, "cap_policy", "quiet_start", "quiet_end")}
		if e, ok := errs.As(err); ok {
			if t, ok := c.cat.lookup(s.Lang, "messages.error."+e.Code); ok {
				d.Err.Message = t
			}
		}
		c.render(w, r, statusOf(errs.KindOf(err)), "messages_settings", c.pageView(w, r, s, "messages.settings.title", d))
		return nil
	}
	c.redirectWithFlash(w, r, "/messages/settings", "flash.messages.settings_saved")
	return nil
}
