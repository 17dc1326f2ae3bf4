package console

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/importer"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// dataRoutes are the pages that bring data in: imports, write keys for the
// Segment-compatible SDKs, and what ingest refused.
func (c *Console) dataRoutes() []route {
	var rs []route
	if c.deps.Imports != nil && c.deps.Customers != nil {
		rs = append(rs,
			route{pattern: "GET /imports", perm: tenant.PermCustomersWrite, handle: c.importsPage,
				nav: &navEntry{Section: "nav.data", Label: "nav.imports", Icon: "upload"}},
			route{pattern: "POST /imports", perm: tenant.PermCustomersWrite, handle: c.importUpload,
				maxBody: c.deps.Imports.MaxFileBytes() + 1<<20},
			route{pattern: "GET /imports/{id}", perm: tenant.PermCustomersWrite, handle: c.importPage},
			route{pattern: "POST /imports/{id}/mapping", perm: tenant.PermCustomersWrite, handle: c.importMapping},
			route{pattern: "POST /imports/{id}/run", perm: tenant.PermCustomersWrite, handle: c.importRun},
			route{pattern: "POST /imports/{id}/cancel", perm: tenant.PermCustomersWrite, handle: c.importCancel},
			route{pattern: "GET /imports/{id}/progress", perm: tenant.PermCustomersWrite, handle: c.importProgress},
			route{pattern: "GET /imports/{id}/errors", perm: tenant.PermCustomersWrite, handle: c.importErrorsPage},
		)
	}
	if c.deps.Events != nil {
		rs = append(rs,
			route{pattern: "GET /write-keys", perm: tenant.PermAPIKeysManage, handle: c.writeKeysPage,
				nav: &navEntry{Section: "nav.data", Label: "nav.write_keys", Icon: "plug"}},
			route{pattern: "POST /write-keys", perm: tenant.PermAPIKeysManage, handle: c.writeKeyCreate},
			route{pattern: "POST /write-keys/{id}/revoke", perm: tenant.PermAPIKeysManage, handle: c.writeKeyRevoke},
			// Payloads may carry personal data (phones in traits), so the
			// page is for the roles that set up data sources.
			route{pattern: "GET /ingest-errors", perm: tenant.PermAPIKeysManage, handle: c.ingestErrorsPage,
				nav: &navEntry{Section: "nav.data", Label: "nav.ingest_errors", Icon: "inbox-alert"}},
		)
	}
	return rs
}

// Page sizes of the import pages.
const (
	importJobsPageSize   = 20
	importErrorsPreview  = 10
	importErrorsPageSize = 50
)

// importsPage is the data of Data → Import: the upload form and the history.
type importsPage struct {
	Jobs  []importer.Job
	Next  string
	Later bool
	Kind  string // the upload form's kind after an error
	Err   formError
	MaxMB int64
	Loc   *time.Location
}

func (c *Console) importsData(r *http.Request, s *signedIn, cursor string) (importsPage, error) {
	p := s.Principal
	pg, err := c.deps.Imports.Jobs(r.Context(), p.TenantID, page.Request{Cursor: cursor, Limit: importJobsPageSize}, p.Can(tenant.PermPIIRead))
	if err != nil {
		if isUserError(err) {
			return importsPage{}, err
		}
		return importsPage{}, fmt.Errorf("console: imports: %w", err)
	}
	return importsPage{Jobs: pg.Items, Next: pg.Next, Later: cursor != "", Kind: importer.KindCustomers,
		MaxMB: c.deps.Imports.MaxFileBytes() >> 20, Loc: s.Workspace.Location()}, nil
}

func (c *Console) importsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.importsData(r, s, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	if k := r.URL.Query().Get("kind"); k == importer.KindOrders {
		d.Kind = k
	}
	c.render(w, r, http.StatusOK, "imports", c.pageView(w, r, s, "imports.title", d))
	return nil
}

// importUpload stores an uploaded file as a new import and opens its
// mapping step.
func (c *Console) importUpload(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	if r.MultipartForm != nil {
		// The server removes spilled parts only of the request it made;
		// middleware may have handed us a copy.
		defer func() { _ = r.MultipartForm.RemoveAll() }()
	}
	kind := r.PostFormValue("kind")
	var up importer.Upload
	f, hdr, err := r.FormFile("file")
	switch {
	case errors.Is(err, http.ErrMissingFile) || (err == nil && hdr.Size == 0):
		err = errs.Field("file", "file_required", "choose a CSV or XLSX file")
	case err != nil:
		return fmt.Errorf("console: import upload: %w", err)
	default:
		defer f.Close()
		data, rerr := io.ReadAll(io.LimitReader(f, c.deps.Imports.MaxFileBytes()+1))
		if rerr != nil {
			return fmt.Errorf("console: import upload: %w", rerr)
		}
		up = importer.Upload{Kind: kind, FileName: hdr.Filename, Data: data}
	}
	var j importer.Job
	if err == nil {
		j, err = c.deps.Imports.Upload(r.Context(), s.Principal, up)
	}
	if err != nil {
		if !isUserError(err) {
			return err
		}
		d, lerr := c.importsData(r, s, "")
		if lerr != nil {
			return lerr
		}
		if kind == importer.KindOrders {
			d.Kind = kind
		}
		d.Err = c.cat.formErrorFor(s.Lang, err, "file", "kind")
		c.render(w, r, statusOf(errs.KindOf(err)), "imports", c.pageView(w, r, s, "imports.title", d))
		return nil
	}
	c.log.InfoContext(r.Context(), "console: import uploaded", "tenant_id", s.Principal.TenantID, "import", j.ID, "rows", j.RowsTotal)
	http.Redirect(w, r, fmt.Sprintf("/imports/%d", j.ID), http.StatusSeeOther)
	return nil
}

// importPage is the data of one import: the wizard at its current step.
type importPage struct {
	Job      importer.Job
	Step     int  // 2 mapping, 3 dry run checked, 4 running or finished
	Editable bool // the mapping may still change
	Rows     []mappingRow
	Source   string   // the default source (customers) or channel (orders)
	Channels []string // order channels, for the orders' select
	Sources  []string // suggested first sources, for the customers' datalist
	Err      formError
	// DryErrors are the dry run's first row errors; RunErrors the run's.
	DryErrors, RunErrors []importer.RowError
	MoreDry, MoreRun     bool
	Loc                  *time.Location
	CSRF                 string
}

// mappingRow is one column of the file in the mapping table.
type mappingRow struct {
	Col     importer.Column
	Samples string
	Ignore  option        // leave the column out
	Groups  []optionGroup // identifiers, profile or order fields, custom attribute
	// Err says the column's mapping is wrong, in the user's language;
	// ErrDetail is the importer's own explanation.
	Err, ErrDetail string
}

// option is one choice of a select.
type option struct {
	Value, Label string
	Selected     bool
}

// optionGroup is an optgroup of a select.
type optionGroup struct {
	Label   string // catalogue key
	Options []option
}

// selectValue marks the option of value selected, and no other.
func (m *mappingRow) selectValue(value string) {
	m.Ignore.Selected = value == ""
	for i := range m.Groups {
		for k := range m.Groups[i].Options {
			o := &m.Groups[i].Options[k]
			o.Selected = o.Value == value
		}
	}
}

// Running reports whether the job is being imported now.
func (d importPage) Running() bool { return d.Job.Status == importer.StatusRunning }

// Finished reports whether the job ran to an end (done, failed, cancelled).
func (d importPage) Finished() bool {
	switch d.Job.Status {
	case importer.StatusDone, importer.StatusFailed, importer.StatusCancelled:
		return true
	}
	return false
}

// CanRun reports whether the job may be started (or resumed).
func (d importPage) CanRun() bool {
	switch d.Job.Status {
	case importer.StatusDryRun:
		return d.Job.DryRun != nil && d.Job.DryRun.Valid > 0
	case importer.StatusFailed:
		return true
	}
	return false
}

func importID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.NotFoundf("import", "no such import")
	}
	return id, nil
}

// suggestedSources are first sources offered for a customer file; any
// other word may be typed.
func suggestedSources() []string {
	return []string{"import", "store", "miniapp", "official_acct", "wecom", "douyin_live", "tmall_parcel", "referral", "offline_fair"}
}

func (c *Console) importData(r *http.Request, s *signedIn, id int64) (importPage, error) {
	ctx := r.Context()
	p := s.Principal
	j, err := c.deps.Imports.Job(ctx, p.TenantID, id, p.Can(tenant.PermPIIRead))
	if err != nil {
		return importPage{}, err
	}
	d := importPage{Job: j, Source: j.Source, Loc: s.Workspace.Location(), CSRF: s.Session.CSRFToken}
	switch j.Status {
	case importer.StatusUploaded:
		d.Step, d.Editable = 2, true
	case importer.StatusDryRun:
		d.Step, d.Editable = 3, true
	default:
		d.Step = 4
	}
	if d.Editable {
		d.Rows = c.mappingRows(s.Lang, j)
		if j.Kind == importer.KindOrders {
			for _, src := range commerce.Sources() {
				d.Channels = append(d.Channels, string(src))
			}
		} else {
			d.Sources = suggestedSources()
		}
	}
	if j.DryRun != nil {
		d.DryErrors = j.DryRun.Errors[:min(len(j.DryRun.Errors), importErrorsPreview)]
		d.MoreDry = errorCount(j.DryRun.ErrorsByCode) > int64(len(d.DryErrors))
	}
	if d.Finished() && j.RowsFailed > 0 {
		pg, err := c.deps.Imports.RowErrors(ctx, p.TenantID, id, importer.PhaseRun, page.Request{Limit: importErrorsPreview})
		if err != nil {
			return importPage{}, fmt.Errorf("console: import: %w", err)
		}
		d.RunErrors, d.MoreRun = pg.Items, pg.Next != ""
	}
	return d, nil
}

func errorCount(byCode map[string]int64) int64 {
	var n int64
	for _, v := range byCode {
		n += v
	}
	return n
}

// mappingRows offers, for each column, every field of the import's kind
// and, for customers, a custom attribute named after the column.
func (c *Console) mappingRows(lang string, j importer.Job) []mappingRow {
	groups := []string{"import.map.group.identity", "import.map.group.profile"}
	if j.Kind == importer.KindOrders {
		groups[1] = "import.map.group.order"
	}
	var rows []mappingRow
	for _, col := range j.Columns {
		cur := j.Mapping[col.Header]
		row := mappingRow{Col: col, Ignore: option{Value: "", Label: c.cat.text(lang, "import.map.ignore"), Selected: cur == ""}}
		byGroup := map[string][]option{}
		for _, f := range importer.Fields(j.Kind) {
			g := groups[1]
			if f.Identity != "" {
				g = groups[0]
			}
			byGroup[g] = append(byGroup[g], option{Value: f.Name, Label: c.cat.label(lang, "field.", f.Name), Selected: cur == f.Name})
		}
		for _, g := range groups {
			row.Groups = append(row.Groups, optionGroup{Label: g, Options: byGroup[g]})
		}
		if j.Kind == importer.KindCustomers {
			traits := []string{importer.TraitPrefix + col.Header}
			if strings.HasPrefix(cur, importer.TraitPrefix) && cur != traits[0] {
				traits = append(traits, cur)
			}
			var opts []option
			for _, t := range traits {
				opts = append(opts, option{Value: t, Label: c.cat.text(lang, "import.map.trait", strings.TrimPrefix(t, importer.TraitPrefix)),
					Selected: cur == t})
			}
			row.Groups = append(row.Groups, optionGroup{Label: "import.map.group.trait", Options: opts})
		}
		samples := make([]string, 0, 3)
		for _, v := range col.Samples {
			if v = strings.TrimSpace(v); v != "" && len(samples) < 3 {
				samples = append(samples, v)
			}
		}
		row.Samples = strings.Join(samples, " · ")
		rows = append(rows, row)
	}
	return rows
}

func (c *Console) importPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := importID(r)
	if err != nil {
		return err
	}
	d, err := c.importData(r, s, id)
	if err != nil {
		return err
	}
	v := c.pageView(w, r, s, "import.title", d)
	v.Heading = d.Job.FileName
	c.render(w, r, http.StatusOK, "import", v)
	return nil
}

// importMapping saves the mapping and checks every row at once (a dry run):
// the operator sees what would be imported before anything is.
func (c *Console) importMapping(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := importID(r)
	if err != nil {
		return err
	}
	j, err := c.deps.Imports.Job(r.Context(), s.Principal.TenantID, id, false)
	if err != nil {
		return err
	}
	m := importer.Mapping{}
	for i, col := range j.Columns {
		m[col.Header] = r.PostFormValue("col" + strconv.Itoa(i))
	}
	source := strings.TrimSpace(r.PostFormValue("source"))
	_, err = c.deps.Imports.SetMapping(r.Context(), s.Principal, id, importer.MappingInput{Mapping: m, Source: &source})
	if err == nil {
		_, err = c.deps.Imports.DryRun(r.Context(), s.Principal, id)
	}
	if err != nil {
		if !isUserError(err) {
			return err
		}
		d, lerr := c.importData(r, s, id)
		if lerr != nil {
			return lerr
		}
		// Show the mapping as submitted, with the columns at fault marked.
		for i := range d.Rows {
			d.Rows[i].selectValue(m[d.Rows[i].Col.Header])
		}
		d.Source = source
		d.Err = c.cat.formErrorFor(s.Lang, err, "source")
		if e, ok := errs.As(err); ok {
			for _, f := range e.Fields {
				header, isCol := strings.CutPrefix(f.Location, "mapping.")
				for i := range d.Rows {
					if isCol && d.Rows[i].Col.Header == header {
						d.Rows[i].Err, d.Rows[i].ErrDetail = c.cat.text(s.Lang, "import.map.row_error"), f.Message
						d.Err.Message = c.cat.text(s.Lang, "form.fix_errors")
					}
				}
			}
		}
		v := c.pageView(w, r, s, "import.title", d)
		v.Heading = d.Job.FileName
		c.render(w, r, statusOf(errs.KindOf(err)), "import", v)
		return nil
	}
	http.Redirect(w, r, fmt.Sprintf("/imports/%d#report", id), http.StatusSeeOther)
	return nil
}

// importRun queues the import; a worker picks it up at once and the page
// follows its progress.
func (c *Console) importRun(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := importID(r)
	if err != nil {
		return err
	}
	if _, err := c.deps.Imports.Start(r.Context(), s.Principal, id); err != nil {
		return err
	}
	c.log.InfoContext(r.Context(), "console: import started", "tenant_id", s.Principal.TenantID, "import", id, "user_id", s.User.ID)
	http.Redirect(w, r, fmt.Sprintf("/imports/%d", id), http.StatusSeeOther)
	return nil
}

// importCancel stops a running import; rows already imported stay.
func (c *Console) importCancel(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := importID(r)
	if err != nil {
		return err
	}
	if _, err := c.deps.Imports.Cancel(r.Context(), s.Principal, id); err != nil {
		return err
	}
	c.redirectWithFlash(w, r, fmt.Sprintf("/imports/%d", id), "flash.import_cancelled")
	return nil
}

// importProgress is polled by the running import's progress bar. Once the
// job has finished it asks the browser to reload the page, which then shows
// the result.
func (c *Console) importProgress(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := importID(r)
	if err != nil {
		return err
	}
	d, err := c.importData(r, s, id)
	if err != nil {
		return err
	}
	if !isHTMX(r) {
		http.Redirect(w, r, fmt.Sprintf("/imports/%d", id), http.StatusSeeOther)
		return nil
	}
	if !d.Running() {
		w.Header().Set("HX-Refresh", "true")
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "import", "import_progress", d)
	return nil
}

// importErrors is the data of an import's row errors.
type importErrors struct {
	Job    importer.Job
	Phase  string
	Errors []importer.RowError
	Next   string
	Later  bool
}

// NextURL is the next page of the same phase's errors.
func (d importErrors) NextURL() string {
	return fmt.Sprintf("/imports/%d/errors?phase=%s&cursor=%s", d.Job.ID, d.Phase, d.Next)
}

// importErrorsPage lists every row error of a dry run or a run, in row order.
func (c *Console) importErrorsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := importID(r)
	if err != nil {
		return err
	}
	p := s.Principal
	j, err := c.deps.Imports.Job(r.Context(), p.TenantID, id, p.Can(tenant.PermPIIRead))
	if err != nil {
		return err
	}
	phase := r.URL.Query().Get("phase")
	if phase == "" {
		phase = importer.PhaseRun
		if j.Status == importer.StatusUploaded || j.Status == importer.StatusDryRun {
			phase = importer.PhaseDryRun
		}
	}
	cursor := r.URL.Query().Get("cursor")
	pg, err := c.deps.Imports.RowErrors(r.Context(), p.TenantID, id, phase, page.Request{Cursor: cursor, Limit: importErrorsPageSize})
	if err != nil {
		if isUserError(err) {
			return err
		}
		return fmt.Errorf("console: import errors: %w", err)
	}
	d := importErrors{Job: j, Phase: phase, Errors: pg.Items, Next: pg.Next, Later: cursor != ""}
	v := c.pageView(w, r, s, "import.errors.title", d)
	c.render(w, r, http.StatusOK, "import_errors", v)
	return nil
}
