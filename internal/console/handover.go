package console

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/handover"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// handoverRoutes lists its pages when its service is set: staff to hand
// over and past handovers; one staff member's customers and groups with
// the choice of who takes over; the rule check before anything is sent;
// a handover's progress and results.
func (c *Console) handoverRoutes() []route {
	if c.deps.Handover == nil || c.deps.Staff == nil {
		return nil
	}
	return []route{
		{pattern: "GET /handover", perm: tenant.PermHandover, handle: c.handoverPage,
			nav: &navEntry{Section: "nav.operations", Label: "nav.handover", Icon: "users"}},
		{pattern: "GET /handover/staff/{id}", perm: tenant.PermHandover, handle: c.handoverStaffPage},
		{pattern: "POST /handover/staff/{id}/check", perm: tenant.PermHandover, handle: c.handoverCheck},
		{pattern: "POST /handover/jobs", perm: tenant.PermHandover, handle: c.handoverStart},
		{pattern: "GET /handover/jobs/{id}", perm: tenant.PermHandover, handle: c.handoverJobPage},
		{pattern: "POST /handover/jobs/{id}/refresh", perm: tenant.PermHandover, handle: c.handoverRefresh},
	}
}

// handoverStatusClass maps job and item states to the console's status styles.
func handoverStatusClass(s string) string {
	switch s {
	case handover.JobRunning, string(handover.ItemWaiting), string(handover.ItemSending):
		return "status-job-running"
	case string(handover.ItemPending):
		return "status-job-queued"
	case handover.JobDone:
		return "status-job-done"
	case string(handover.ItemRefused), string(handover.ItemFailed):
		return "status-job-failed"
	}
	return "status-off"
}

// handoverList is the data of Operations → Handover.
type handoverList struct {
	Staff     []handover.Holder
	StaffNext string
	Jobs      []handoverJobRow
	JobsNext  string
	Later     bool
	Loc       *time.Location
}

// handoverJobRow is a handover with its style.
type handoverJobRow struct {
	handover.Handover
	Class string
}

func (c *Console) handoverPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx, tid := r.Context(), s.Principal.TenantID
	q := r.URL.Query()
	st, err := c.deps.Handover.StaffList(ctx, tid, true, page.Request{Cursor: q.Get("staff_cursor"), Limit: page.MaxLimit})
	if err != nil {
		return err
	}
	jobs, err := c.deps.Handover.Jobs(ctx, tid, page.Request{Cursor: q.Get("cursor"), Limit: 20})
	if err != nil {
		return err
	}
	d := handoverList{Staff: st.Items, StaffNext: st.Next, JobsNext: jobs.Next, Later: q.Get("cursor") != "", Loc: s.Workspace.Location()}
	for _, j := range jobs.Items {
		d.Jobs = append(d.Jobs, handoverJobRow{Handover: j, Class: handoverStatusClass(j.Status)})
	}
	c.render(w, r, http.StatusOK, "handover", c.pageView(w, r, s, "handover.title", d))
	return nil
}

// handoverForm keeps what was chosen on a staff member's page.
type handoverForm struct {
	Key          string
	Takeover     int64
	AllCustomers bool
	Customers    map[string]bool
	AllGroups    bool
	Groups       map[string]bool
	Message      string
}

// handoverStaffView is the data of a staff member's handover page, and of
// its rule check when Check is set.
type handoverStaffView struct {
	From      handover.Holder
	Takeovers []staff.Member
	Customers []handover.HeldCustomer
	MoreCusts bool
	Groups    []handover.HeldGroup
	Form      handoverForm
	Err       formError
	Check     *handover.Assessment
	MaxMsg    int
	Loc       *time.Location
}

func newHandoverKey() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "console-" + hex.EncodeToString(b)
}

// handoverStaffData reads the staff member, who could take over, and their
// customers (a page: "all" covers the rest) and groups.
func (c *Console) handoverStaffData(r *http.Request, s *signedIn, id int64, f handoverForm) (handoverStaffView, error) {
	ctx, tid := r.Context(), s.Principal.TenantID
	d := handoverStaffView{Form: f, MaxMsg: 200, Loc: s.Workspace.Location()}
	m, err := c.deps.Staff.Member(ctx, tid, id)
	if err != nil {
		return d, err
	}
	d.From = handover.Holder{ID: m.ID, Name: m.Name, WeComUserID: m.WeComUserID, Status: m.Status, Kind: handover.OnJob}
	if m.Status == staff.Resigned {
		d.From.Kind = handover.Resigned
	}
	req := page.Request{Limit: page.MaxLimit}
	for range 100 {
		pg, err := c.deps.Staff.Members(ctx, tid, req)
		if err != nil {
			return d, fmt.Errorf("console: handover: staff: %w", err)
		}
		for _, o := range pg.Items {
			if o.ID != m.ID && o.WeComUserID != "" && o.Status == staff.Active {
				d.Takeovers = append(d.Takeovers, o)
			}
		}
		if pg.Next == "" {
			break
		}
		req.Cursor = pg.Next
	}
	cs, err := c.deps.Handover.Customers(ctx, tid, id, page.Request{Limit: page.MaxLimit})
	if err != nil {
		return d, err
	}
	d.Customers, d.MoreCusts = cs.Items, cs.Next != ""
	gs, err := c.deps.Handover.Groups(ctx, tid, id, page.Request{Limit: page.MaxLimit})
	if err != nil {
		return d, err
	}
	d.Groups = gs.Items
	d.From.Customers, d.From.Groups = int64(len(d.Customers)), int64(len(d.Groups))
	return d, nil
}

func (c *Console) handoverStaffPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "staff")
	if err != nil {
		return err
	}
	d, err := c.handoverStaffData(r, s, id, handoverForm{Key: newHandoverKey(), AllCustomers: true, AllGroups: true,
		Customers: map[string]bool{}, Groups: map[string]bool{}})
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "handover_staff", c.pageView(w, r, s, "handover.staff.title", d))
	return nil
}

// handoverFormOf reads the form of a staff member's page.
func handoverFormOf(r *http.Request) handoverForm {
	f := handoverForm{Key: strings.TrimSpace(r.PostFormValue("key")), Message: strings.TrimSpace(r.PostFormValue("message")),
		AllCustomers: r.PostFormValue("customers_mode") == "all", AllGroups: r.PostFormValue("groups_mode") == "all",
		Customers: map[string]bool{}, Groups: map[string]bool{}}
	f.Takeover, _ = strconv.ParseInt(r.PostFormValue("takeover"), 10, 64)
	for _, v := range r.PostForm["customer"] {
		f.Customers[v] = true
	}
	for _, v := range r.PostForm["group"] {
		f.Groups[v] = true
	}
	if f.Key == "" {
		f.Key = newHandoverKey()
	}
	return f
}

func (f handoverForm) selection(from int64) handover.Selection {
	sel := handover.Selection{HandoverStaffID: from, TakeoverStaffID: f.Takeover, AllCustomers: f.AllCustomers, AllGroups: f.AllGroups, Message: f.Message}
	if !f.AllCustomers {
		for id := range f.Customers {
			sel.Customers = append(sel.Customers, id)
		}
	}
	if !f.AllGroups {
		for id := range f.Groups {
			sel.Groups = append(sel.Groups, id)
		}
	}
	return sel
}

// handoverFormError is err beside the field it names.
func (c *Console) handoverFormError(lang string, err error) formError {
	msg := c.cat.errorText(lang, err)
	if e, ok := errs.As(err); ok {
		if t, ok := c.cat.lookup(lang, "handover.error."+e.Code); ok {
			msg = t
		}
		if len(e.Fields) > 0 {
			field := ""
			switch e.Fields[0].Location {
			case "takeover_staff_id":
				field = "takeover"
			case "transfer_success_msg":
				field = "message"
			case "customers":
				field = "customers"
			}
			if field != "" {
				return formError{Message: c.cat.text(lang, "form.fix_errors"), Fields: map[string]string{field: msg}}
			}
		}
	}
	return formError{Message: msg}
}

// handoverCheck runs the rule check and shows, per customer and group,
// what would be sent and what skipped, with the button that starts it.
func (c *Console) handoverCheck(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "staff")
	if err != nil {
		return err
	}
	f := handoverFormOf(r)
	d, err := c.handoverStaffData(r, s, id, f)
	if err != nil {
		return err
	}
	status := http.StatusOK
	a, err := c.deps.Handover.Preview(r.Context(), s.Principal, f.selection(id))
	switch {
	case err == nil:
		d.Check = &a
	case isUserError(err):
		d.Err, status = c.handoverFormError(s.Lang, err), http.StatusUnprocessableEntity
	default:
		return err
	}
	c.render(w, r, status, "handover_staff", c.pageView(w, r, s, "handover.staff.title", d))
	return nil
}

// handoverStart starts the handover checked on the page; the form's key
// makes a double submit one handover.
func (c *Console) handoverStart(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	from, _ := strconv.ParseInt(r.PostFormValue("from"), 10, 64)
	f := handoverFormOf(r)
	j, _, err := c.deps.Handover.Start(r.Context(), s.Principal, f.selection(from), f.Key)
	if err != nil {
		if !isUserError(err) || from == 0 {
			return err
		}
		d, derr := c.handoverStaffData(r, s, from, f)
		if derr != nil {
			return derr
		}
		d.Err = c.handoverFormError(s.Lang, err)
		c.render(w, r, http.StatusUnprocessableEntity, "handover_staff", c.pageView(w, r, s, "handover.staff.title", d))
		return nil
	}
	c.log.InfoContext(r.Context(), "console: handover started", "tenant_id", s.Principal.TenantID, "handover", j.ID, "user_id", s.User.ID)
	c.redirectWithFlash(w, r, fmt.Sprintf("/handover/jobs/%d", j.ID), "handover.flash.started")
	return nil
}

// handoverJobView is the data of a handover's page.
type handoverJobView struct {
	Job    handover.Handover
	Class  string
	Items  []handoverItemRow
	State  string
	States []string // the filters offered
	Next   string
	Later  bool
	Err    string
	Loc    *time.Location
}

// handoverItemRow is an item with its style.
type handoverItemRow struct {
	handover.Transfer
	Class string
}

func (c *Console) handoverJob(w http.ResponseWriter, r *http.Request, s *signedIn, status int, msg string) error {
	id, err := pathID(r, "handover")
	if err != nil {
		return err
	}
	ctx, tid := r.Context(), s.Principal.TenantID
	j, err := c.deps.Handover.Job(ctx, tid, id)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	state, cursor := q.Get("state"), q.Get("cursor")
	items, err := c.deps.Handover.Items(ctx, tid, id, state, page.Request{Cursor: cursor, Limit: 100})
	if err != nil {
		return err
	}
	d := handoverJobView{Job: j, Class: handoverStatusClass(j.Status), State: state, States: []string{"waiting", "done", "refused", "failed", "skipped"}, Next: items.Next, Later: cursor != "", Err: msg, Loc: s.Workspace.Location()}
	for _, it := range items.Items {
		d.Items = append(d.Items, handoverItemRow{Transfer: it, Class: handoverStatusClass(string(it.State))})
	}
	c.render(w, r, status, "handover_job", c.pageView(w, r, s, "handover.job.title", d))
	return nil
}

func (c *Console) handoverJobPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	return c.handoverJob(w, r, s, http.StatusOK, "")
}

// handoverRefresh reads the results from WeCom now.
func (c *Console) handoverRefresh(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "handover")
	if err != nil {
		return err
	}
	if _, err := c.deps.Handover.Refresh(r.Context(), s.Principal.TenantID, id); err != nil {
		if !isUserError(err) {
			return err
		}
		return c.handoverJob(w, r, s, http.StatusConflict, c.handoverFormError(s.Lang, err).Message)
	}
	c.redirectWithFlash(w, r, fmt.Sprintf("/handover/jobs/%d", id), "handover.flash.refreshed")
	return nil
}
