package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/acquire"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// acquireRoutes lists its pages when its service is set: channel codes with
// today's adds, the editor (staff pool, weights, schedules, caps, backups,
// tags, welcome message with a live preview, remark), statistics, QR
// downloads and store codes in bulk.
func (c *Console) acquireRoutes() []route {
	if c.deps.Acquire == nil {
		return nil
	}
	return []route{
		{pattern: "GET /acquire", perm: tenant.PermAcquireRead, handle: c.acquireListPage,
			nav: &navEntry{Section: "nav.operations", Label: "nav.acquire", Icon: "link"}},
		{pattern: "GET /acquire/new", perm: tenant.PermAcquireManage, handle: c.acquireNewPage},
		{pattern: "POST /acquire", perm: tenant.PermAcquireManage, handle: c.acquireSave},
		{pattern: "POST /acquire/store-codes", perm: tenant.PermAcquireManage, handle: c.acquireStoreCodes},
		{pattern: "GET /acquire/{id}", perm: tenant.PermAcquireRead, handle: c.acquireEditPage},
		{pattern: "POST /acquire/{id}", perm: tenant.PermAcquireManage, handle: c.acquireSave},
		{pattern: "POST /acquire/{id}/delete", perm: tenant.PermAcquireManage, handle: c.acquireDelete},
		{pattern: "GET /acquire/{id}/qr.png", perm: tenant.PermAcquireRead, handle: c.acquireQR},
	}
}

// acquireFormError translates a domain error: the area's wording
// (acquire.error.<code>) first, then the console's.
func (c *Console) acquireFormError(lang string, err error, fields ...string) formError {
	fe := c.cat.formErrorFor(lang, err, fields...)
	e, ok := errs.As(err)
	if !ok || e.Kind == errs.Internal {
		return fe
	}
	s, ok := c.cat.lookup(lang, "acquire.error."+errs.CodeOf(e))
	if !ok {
		return fe
	}
	if len(fe.Fields) == 0 {
		fe.Message = s
	}
	for k := range fe.Fields {
		fe.Fields[k] = s
	}
	return fe
}

var acquireFields = []string{"name", "source", "state", "staff", "userid", "weight", "daily_cap", "schedule", "tag_ids", "text", "attachments",
	"remark_template", "description_template", "group_code_id"}

// ---- list ----

type acquireListData struct {
	CanManage bool
	CSRF      string
	Codes     []acquire.ChannelCode
	Next      string
	Later     bool
	Source    string
	Sources   []string
	Stats     acquire.CodeStats
	Chart     string
	Stores    []acquire.StoreCodeResult // the result of a bulk run just done
	StoreErr  formError
}

func (c *Console) acquireList(r *http.Request, s *signedIn) (acquireListData, error) {
	ctx := r.Context()
	q := r.URL.Query()
	d := acquireListData{CanManage: s.Principal.Can(tenant.PermAcquireManage), CSRF: s.Session.CSRFToken, Source: q.Get("source"),
		Sources: acquire.Sources(), Later: q.Get("cursor") != ""}
	pg, err := c.deps.Acquire.Codes(ctx, s.Principal.TenantID, acquire.Filter{Source: d.Source}, page.Request{Cursor: q.Get("cursor")})
	if err != nil {
		return d, err
	}
	d.Codes, d.Next = pg.Items, pg.Next
	if d.Stats, err = c.deps.Acquire.Stats(ctx, s.Principal.TenantID, 0, "", ""); err != nil {
		return d, err
	}
	d.Chart = c.acquireChart(s.Lang, d.Stats)
	return d, nil
}

// acquireChart is adds per day as a bar chart.
func (c *Console) acquireChart(lang string, st acquire.CodeStats) string {
	cs := chartSpec{Kind: "bar", Series: c.cat.text(lang, "acquire.stats.adds")}
	for _, d := range st.Days {
		cs.Labels = append(cs.Labels, d.Day[5:])
		cs.Values = append(cs.Values, d.Adds)
	}
	return cs.JSON()
}

func (c *Console) acquireListPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.acquireList(r, s)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "acquire", c.pageView(w, r, s, "acquire.title", d))
	return nil
}

func (c *Console) acquireStoreCodes(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	in := acquire.StoreCodesInput{Config: acquire.CodeConfig{SkipVerify: r.PostFormValue("skip_verify") == "1",
		Welcome: message.Content{Text: strings.TrimSpace(r.PostFormValue("welcome_text"))}}}
	if v := strings.TrimSpace(r.PostFormValue("daily_cap")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			n = 0
		}
		in.DailyCap = &n
	}
	res, err := c.deps.Acquire.CreateStoreCodes(r.Context(), s.Principal, in, nil)
	d, lerr := c.acquireList(r, s)
	if lerr != nil {
		return lerr
	}
	status := http.StatusOK
	if err != nil {
		if !isUserError(err) {
			return err
		}
		d.StoreErr = c.acquireFormError(s.Lang, err, "daily_cap")
		status = statusOf(errs.KindOf(err))
	}
	d.Stores = res
	c.render(w, r, status, "acquire", c.pageView(w, r, s, "acquire.title", d))
	return nil
}

// ---- editor ----

// acquireEditor is the editor page: a new code or one code with its QR,
// statistics and downloads.
type acquireEditor struct {
	CanManage bool
	CSRF      string
	ID        int64
	Code      *acquire.ChannelCode
	Form      acquireForm
	Staff     []staff.Member // staff with a WeCom userid, to choose from
	Tags      []tag.Tag
	Sources   []string
	Sizes     []acquire.PrintSize
	Stats     *acquire.CodeStats
	Chart     string
	Names     map[string]string // WeCom userid → name
	Err       formError
}

// acquireForm is the editor's form as the user filled it in.
type acquireForm struct {
	Name, Source, State, Mode string
	SkipVerify                bool
	Rows                      []acquireStaffRow
	TagIDs                    map[int64]bool
	WelcomeText               string
	ImageURL                  string
	LinkTitle, LinkURL        string
	LinkDesc                  string
	MPTitle, MPAppID          string
	MPPage, MPImage           string
	Remark, Description       string
	GroupCodeID               string
}

// acquireStaffRow is one row of the staff pool table.
type acquireStaffRow struct {
	UserID, Weight, Cap, Schedule string
	Backup                        bool
}

// acquireBlankRows are the empty rows offered for more staff.
const acquireBlankRows = 3

func acquireFormOf(code acquire.ChannelCode) acquireForm {
	cfg := code.Config
	f := acquireForm{Name: code.Name, Source: code.Source, State: code.State, Mode: cfg.Mode, SkipVerify: cfg.SkipVerify,
		TagIDs: map[int64]bool{}, WelcomeText: cfg.Welcome.Text, Remark: cfg.RemarkTemplate, Description: cfg.DescriptionTemplate}
	for _, r := range cfg.Staff {
		row := acquireStaffRow{UserID: r.UserID, Backup: r.Backup, Schedule: acquireFormatSchedule(r.Schedule)}
		if r.Weight != nil {
			row.Weight = strconv.Itoa(*r.Weight)
		}
		if r.DailyCap != nil {
			row.Cap = strconv.Itoa(*r.DailyCap)
		}
		f.Rows = append(f.Rows, row)
	}
	for _, id := range cfg.TagIDs {
		f.TagIDs[id] = true
	}
	for _, a := range cfg.Welcome.Attachments {
		switch a.Kind {
		case "image":
			f.ImageURL = a.ImageURL
		case "link":
			f.LinkTitle, f.LinkURL, f.LinkDesc = a.Title, a.URL, a.Description
		case "miniprogram":
			f.MPTitle, f.MPAppID, f.MPPage, f.MPImage = a.Title, a.AppID, a.Page, a.ImageURL
		}
	}
	if cfg.GroupCodeID != 0 {
		f.GroupCodeID = strconv.FormatInt(cfg.GroupCodeID, 10)
	}
	return f
}

// parseAcquireForm reads the posted editor into the form and the domain input.
func parseAcquireForm(r *http.Request) (acquireForm, acquire.CodeInput, error) {
	pf := r.PostForm
	f := acquireForm{Name: pf.Get("name"), Source: pf.Get("source"), State: pf.Get("state"), Mode: pf.Get("mode"),
		SkipVerify: pf.Get("skip_verify") == "1", TagIDs: map[int64]bool{}, WelcomeText: pf.Get("welcome_text"),
		ImageURL: strings.TrimSpace(pf.Get("image_url")), LinkTitle: pf.Get("link_title"), LinkURL: strings.TrimSpace(pf.Get("link_url")),
		LinkDesc: pf.Get("link_desc"), MPTitle: pf.Get("mp_title"), MPAppID: strings.TrimSpace(pf.Get("mp_appid")), MPPage: strings.TrimSpace(pf.Get("mp_page")),
		MPImage: strings.TrimSpace(pf.Get("mp_image")), Remark: pf.Get("remark_template"), Description: pf.Get("description_template"),
		GroupCodeID: strings.TrimSpace(pf.Get("group_code_id"))}
	in := acquire.CodeInput{Name: f.Name, Source: f.Source, State: f.State, Config: acquire.CodeConfig{Mode: f.Mode, SkipVerify: f.SkipVerify,
		Welcome: message.Content{Text: f.WelcomeText}, RemarkTemplate: f.Remark, DescriptionTemplate: f.Description}}
	users, weights, caps, backups, scheds := pf["staff_userid"], pf["staff_weight"], pf["staff_cap"], pf["staff_backup"], pf["staff_schedule"]
	at := func(s []string, i int) string {
		if i < len(s) {
			return strings.TrimSpace(s[i])
		}
		return ""
	}
	var firstErr error
	for i := range users {
		row := acquireStaffRow{UserID: at(users, i), Weight: at(weights, i), Cap: at(caps, i), Backup: at(backups, i) == "1", Schedule: at(scheds, i)}
		if row.UserID == "" {
			continue
		}
		f.Rows = append(f.Rows, row)
		rule := acquire.StaffRule{UserID: row.UserID, Backup: row.Backup}
		n := len(in.Config.Staff)
		if row.Weight != "" {
			w, err := strconv.Atoi(row.Weight)
			if err != nil {
				w = 0 // refused by the domain with its message
			}
			rule.Weight = &w
		}
		if row.Cap != "" {
			c, err := strconv.Atoi(row.Cap)
			if err != nil {
				c = 0
			}
			rule.DailyCap = &c
		}
		sched, err := acquireParseSchedule(row.Schedule)
		if err != nil && firstErr == nil {
			firstErr = errs.Field(fmt.Sprintf("config.staff[%d].schedule", n), "invalid_schedule", "%s: %v", row.UserID, err)
		}
		rule.Schedule = sched
		in.Config.Staff = append(in.Config.Staff, rule)
	}
	for _, v := range pf["tag_id"] {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil {
			f.TagIDs[id] = true
			in.Config.TagIDs = append(in.Config.TagIDs, id)
		}
	}
	if f.ImageURL != "" {
		in.Config.Welcome.Attachments = append(in.Config.Welcome.Attachments, message.Attachment{Kind: "image", ImageURL: f.ImageURL})
	}
	if f.LinkURL != "" || f.LinkTitle != "" {
		in.Config.Welcome.Attachments = append(in.Config.Welcome.Attachments, message.Attachment{Kind: "link", Title: f.LinkTitle, URL: f.LinkURL, Description: f.LinkDesc})
	}
	if f.MPAppID != "" || f.MPTitle != "" {
		in.Config.Welcome.Attachments = append(in.Config.Welcome.Attachments, message.Attachment{Kind: "miniprogram", Title: f.MPTitle,
			AppID: f.MPAppID, Page: f.MPPage, ImageURL: f.MPImage})
	}
	if f.GroupCodeID != "" {
		id, err := strconv.ParseInt(f.GroupCodeID, 10, 64)
		if (err != nil || id <= 0) && firstErr == nil {
			firstErr = errs.Field("config.group_code_id", "invalid_group_code", "the group code is a number")
		}
		in.Config.GroupCodeID = id
	}
	return f, in, firstErr
}

// acquireParseSchedule reads "1-5 09:00-18:00; 6,7 10:00-16:00" (ISO weekdays,
// Monday 1; * for every day). Empty: always.
func acquireParseSchedule(s string) ([]acquire.ShiftWindow, error) {
	var out []acquire.ShiftWindow
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		days, hours, ok := strings.Cut(part, " ")
		start, end, ok2 := strings.Cut(strings.TrimSpace(hours), "-")
		if !ok || !ok2 {
			return nil, fmt.Errorf("%q is not like 1-5 09:00-18:00", part)
		}
		w := acquire.ShiftWindow{Start: strings.TrimSpace(start), End: strings.TrimSpace(end)}
		if days == "*" {
			days = "1-7"
		}
		for d := range strings.SplitSeq(days, ",") {
			lo, hi, isRange := strings.Cut(d, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || a > b {
				return nil, fmt.Errorf("%q: weekdays are 1 (Monday) to 7 (Sunday)", d)
			}
			for x := a; x <= b; x++ {
				w.Days = append(w.Days, x)
			}
		}
		out = append(out, w)
	}
	return out, nil
}

// acquireFormatSchedule writes windows back in acquireParseSchedule's form.
func acquireFormatSchedule(ws []acquire.ShiftWindow) string {
	parts := make([]string, 0, len(ws))
	for _, w := range ws {
		days := make([]string, 0, len(w.Days))
		for _, d := range w.Days {
			days = append(days, strconv.Itoa(d))
		}
		parts = append(parts, strings.Join(days, ",")+" "+w.Start+"-"+w.End)
	}
	return strings.Join(parts, "; ")
}

func (c *Console) acquireEditorData(r *http.Request, s *signedIn, ed acquireEditor) (acquireEditor, error) {
	ctx := r.Context()
	ed.CanManage, ed.CSRF = s.Principal.Can(tenant.PermAcquireManage), s.Session.CSRFToken
	ed.Sources, ed.Sizes, ed.Names = acquire.Sources(), acquire.PrintSizes(), map[string]string{}
	req := page.Request{Limit: page.MaxLimit}
	for range 20 {
		pg, err := c.deps.Staff.Members(ctx, s.Principal.TenantID, req)
		if err != nil {
			return ed, err
		}
		for _, m := range pg.Items {
			if m.WeComUserID != "" {
				ed.Names[m.WeComUserID] = m.Name
				if m.Status == staff.Active {
					ed.Staff = append(ed.Staff, m)
				}
			}
		}
		if pg.Next == "" {
			break
		}
		req.Cursor = pg.Next
	}
	if c.deps.Tags != nil {
		tags, err := c.deps.Tags.AllTags(ctx, s.Principal.TenantID)
		if err != nil {
			return ed, err
		}
		ed.Tags = tags
	}
	for range acquireBlankRows {
		ed.Form.Rows = append(ed.Form.Rows, acquireStaffRow{})
	}
	if ed.Form.TagIDs == nil {
		ed.Form.TagIDs = map[int64]bool{}
	}
	if ed.Code != nil {
		st, err := c.deps.Acquire.Stats(ctx, s.Principal.TenantID, ed.ID, r.URL.Query().Get("from"), r.URL.Query().Get("to"))
		if err != nil && !isUserError(err) {
			return ed, err
		}
		if err == nil {
			ed.Stats, ed.Chart = &st, c.acquireChart(s.Lang, st)
		}
	}
	return ed, nil
}

func (c *Console) renderAcquireEditor(w http.ResponseWriter, r *http.Request, s *signedIn, status int, ed acquireEditor) error {
	ed, err := c.acquireEditorData(r, s, ed)
	if err != nil {
		return err
	}
	title := "acquire.new"
	if ed.ID != 0 {
		title = "acquire.edit"
	}
	c.render(w, r, status, "acquire_code", c.pageView(w, r, s, title, ed))
	return nil
}

func (c *Console) acquireNewPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	return c.renderAcquireEditor(w, r, s, http.StatusOK, acquireEditor{Form: acquireForm{Source: acquire.SourceStore, Mode: acquire.ModeWeighted,
		SkipVerify: true, WelcomeText: c.cat.text(s.Lang, "acquire.welcome.sample")}})
}

func (c *Console) acquireEditPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "code")
	if err != nil {
		return err
	}
	code, err := c.deps.Acquire.Code(r.Context(), s.Principal.TenantID, id)
	if err != nil {
		return err
	}
	return c.renderAcquireEditor(w, r, s, http.StatusOK, acquireEditor{ID: id, Code: &code, Form: acquireFormOf(code)})
}

func (c *Console) acquireSave(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	f, in, err := parseAcquireForm(r)
	ed := acquireEditor{Form: f}
	var code acquire.ChannelCode
	if idv := r.PathValue("id"); idv != "" {
		id, perr := pathID(r, "code")
		if perr != nil {
			return perr
		}
		ed.ID = id
		cur, gerr := c.deps.Acquire.Code(r.Context(), s.Principal.TenantID, id)
		if gerr != nil {
			return gerr
		}
		ed.Code = &cur
		if err == nil {
			code, err = c.deps.Acquire.Update(r.Context(), s.Principal, id, in)
		}
	} else if err == nil {
		code, err = c.deps.Acquire.Create(r.Context(), s.Principal, in)
	}
	if err != nil {
		if !isUserError(err) {
			return err
		}
		ed.Err = c.acquireFormError(s.Lang, err, acquireFields...)
		return c.renderAcquireEditor(w, r, s, statusOf(errs.KindOf(err)), ed)
	}
	c.redirectWithFlash(w, r, fmt.Sprintf("/acquire/%d", code.ID), "flash.acquire.saved")
	return nil
}

func (c *Console) acquireDelete(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "code")
	if err != nil {
		return err
	}
	if err := c.deps.Acquire.Delete(r.Context(), s.Principal, id); err != nil {
		return err
	}
	c.redirectWithFlash(w, r, "/acquire", "flash.acquire.deleted")
	return nil
}

// acquireQR serves the QR for the editor's preview and downloads.
func (c *Console) acquireQR(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "code")
	if err != nil {
		return err
	}
	size := r.URL.Query().Get("size")
	var img []byte
	name := "code-" + strconv.FormatInt(id, 10)
	if px, ok := acquire.SizePixels(size); ok {
		img, err = c.deps.Acquire.QRPrint(r.Context(), s.Principal.TenantID, id, px)
		name += "-" + size
	} else {
		img, err = c.deps.Acquire.QR(r.Context(), s.Principal.TenantID, id)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "private, max-age=300")
	if r.URL.Query().Get("download") == "1" {
		w.Header().Set("Content-Disposition", "attachment; filename="+strconv.Quote(name+".png"))
	}
	w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
	_, err = w.Write(img)
	return err
}
