package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// audienceRoutes lists the pages of the audience builder, saved audiences and the score distribution charts.
//
// Reading and counting need what the API's count and preview need
// (customers.read), so an analyst may explore; saving, changing and
// archiving an audience need customers.write, as in the API.
func (c *Console) audienceRoutes() []route {
	if c.deps.Audiences == nil || c.deps.Customers == nil {
		return nil
	}
	rs := []route{
		{pattern: "GET /audiences", perm: tenant.PermCustomersRead, handle: c.audiencesPage,
			nav: &navEntry{Section: "audiences.nav.section", Label: "audiences.nav.list", Icon: "users"}},
		{pattern: "GET /audiences/new", perm: tenant.PermCustomersRead, handle: c.audienceNewPage},
		{pattern: "POST /audiences", perm: tenant.PermCustomersWrite, handle: c.audienceCreate},
		{pattern: "GET /audiences/{id}", perm: tenant.PermCustomersRead, handle: c.audienceEditPage},
		{pattern: "POST /audiences/{id}", perm: tenant.PermCustomersWrite, handle: c.audienceUpdate},
		{pattern: "POST /audiences/{id}/archive", perm: tenant.PermCustomersWrite, handle: c.audienceArchive},
		{pattern: "GET /audiences/{id}/changes", perm: tenant.PermCustomersRead, handle: c.audienceChanges},
		{pattern: "POST /audiences/count", perm: tenant.PermCustomersRead, handle: c.audienceCount},
		{pattern: "POST /audiences/preview", perm: tenant.PermCustomersRead, handle: c.audiencePreview},
		{pattern: "POST /audiences/breakdown", perm: tenant.PermCustomersRead, handle: c.audienceBreakdown},
	}
	return append(rs, c.scoreRoutes()...)
}

// audiencesPageSize is how many saved audiences one page of the list shows.
const audiencesPageSize = 50

// number is a count shown with its thousands grouped (12,345).
type number int64

// String groups the digits in threes.
func (n number) String() string {
	s := strconv.FormatInt(int64(n), 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return sign + b.String()
}

// audiencesPage is the data of the saved audience list.
type audiencesPage struct {
	Rows     []audienceRow
	Next     string
	Later    bool
	CanWrite bool
}

// audienceRow is one saved audience with its members counted now.
type audienceRow struct {
	audience.Audience
	Members number
	Live    bool // Members was counted now; otherwise it is the last evaluation's
}

// audiencesPage lists the saved audiences, newest first, each counted now:
// the index answers in milliseconds, and an operator deciding whom to reach
// wants today's number, not the one of the last re-evaluation.
func (c *Console) audiencesPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	tid := s.Principal.TenantID
	cursor := r.URL.Query().Get("cursor")
	pg, err := c.deps.Audiences.Audiences(ctx, tid, page.Request{Cursor: cursor, Limit: audiencesPageSize})
	if err != nil {
		if isUserError(err) {
			return err
		}
		return fmt.Errorf("console: audiences: %w", err)
	}
	d := audiencesPage{Next: pg.Next, Later: cursor != "", CanWrite: s.Principal.Can(tenant.PermCustomersWrite)}
	for _, a := range pg.Items {
		row := audienceRow{Audience: a, Members: number(a.MemberCount)}
		if res, err := c.deps.Audiences.Members(ctx, tid, a.ID); err == nil {
			row.Members, row.Live = number(res.Count), true
		} else {
			// A saved tree that no longer evaluates (a tag deleted since)
			// still lists, with the count it last had.
			c.log.WarnContext(ctx, "console: unable to count an audience", "tenant_id", tid, "audience_id", a.ID, "err", err)
		}
		d.Rows = append(d.Rows, row)
	}
	c.render(w, r, http.StatusOK, "audiences", c.pageView(w, r, s, "audiences.title", d))
	return nil
}

// audienceID reads the {id} of an audience path.
func audienceID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.NotFoundf("audience", "no such audience")
	}
	return id, nil
}

// audienceArchive stops a saved audience. From the list (htmx) its row goes
// away; from its own page the browser goes back to the list.
func (c *Console) audienceArchive(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := audienceID(r)
	if err != nil {
		return err
	}
	if err := c.deps.Audiences.ArchiveAudience(r.Context(), s.Principal.TenantID, id); err != nil {
		return err
	}
	c.log.InfoContext(r.Context(), "console: audience archived", "tenant_id", s.Principal.TenantID, "audience_id", id, "user_id", s.User.ID)
	if isHTMX(r) && r.PostFormValue("from") == "list" {
		w.WriteHeader(http.StatusOK) // the empty row replaces the archived one
		return nil
	}
	if isHTMX(r) {
		http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "flash.audiences.archived", Path: "/", HttpOnly: true,
			Secure: c.deps.Secure, SameSite: http.SameSiteLaxMode, MaxAge: 60})
		w.Header().Set("HX-Redirect", "/audiences")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	c.redirectWithFlash(w, r, "/audiences", "flash.audiences.archived")
	return nil
}

// chartSpec is what charts.js draws with ECharts: one series of counts
// with its labels, already in the user's language.
type chartSpec struct {
	Kind   string   `json:"kind"` // bar, hbar (horizontal bars) or pie
	Series string   `json:"series"`
	Labels []string `json:"labels"`
	Values []int64  `json:"values"`
	// Links open the audience builder on the customers of each value.
	Links []string `json:"links,omitempty"`
}

// JSON is the spec for the data-chart attribute.
func (cs chartSpec) JSON() string {
	b, err := json.Marshal(cs)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// builderLink opens the builder on a tree, e.g. from a bar of a chart.
func builderLink(cond audience.Condition) string {
	b, err := json.Marshal(cond)
	if err != nil {
		return "/audiences/new"
	}
	return "/audiences/new?conditions=" + url.QueryEscape(string(b))
}
