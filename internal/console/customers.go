package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/importer"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// customerRoutes are the pages of the customers area: the list, a
// customer's profile, and the custom attribute catalogue.
func (c *Console) customerRoutes() []route {
	if c.deps.Customers == nil {
		return nil
	}
	rs := []route{
		{pattern: "GET /customers", perm: tenant.PermCustomersRead, handle: c.customersPage,
			nav: &navEntry{Section: "nav.customers", Label: "nav.customer_list", Icon: "contacts"}},
		{pattern: "GET /customers/{id}", perm: tenant.PermCustomersRead, handle: c.customerPage},
		{pattern: "GET /customers/{id}/timeline", perm: tenant.PermCustomersRead, handle: c.customerTimeline},
		{pattern: "GET /customers/attributes", perm: tenant.PermCustomersRead, handle: c.attributesPage,
			nav: &navEntry{Section: "nav.customers", Label: "nav.attributes", Icon: "sliders"}},
		{pattern: "POST /customers/attributes", perm: tenant.PermWorkspaceManage, handle: c.attributeDefine},
	}
	if c.deps.Commerce != nil {
		rs = append(rs, route{pattern: "GET /customers/{id}/orders", perm: tenant.PermCustomersRead, handle: c.customerOrdersPage})
	}
	if c.deps.Imports != nil {
		rs = append(rs, route{pattern: "GET /customers/export", perm: tenant.PermCustomersRead, handle: c.customersExport})
	}
	return rs
}

// customersPageSize is how many customers one page of the list shows.
const customersPageSize = 50

// customersPage is the data of the customer list.
type customersPage struct {
	Query     string // the search box as typed
	Rows      []customerRow
	Next      string // cursor of the next page; "" on the last
	Later     bool   // this is not the first page
	Err       string // why the search could not run, translated
	Spend     bool   // commerce is wired: show spend and orders
	CanImport bool
	CanKeys   bool // may create a write key (the empty state suggests it)
	Export    bool
}

// customerRow is one customer of the list with what they bought.
type customerRow struct {
	customer.Customer
	Spend commerce.Spend
}

// NextURL is the link to the next page, keeping the search.
func (d customersPage) NextURL() string { return customersURL(d.Query, d.Next) }

// FirstURL is the link to the first page, keeping the search.
func (d customersPage) FirstURL() string { return customersURL(d.Query, "") }

// ExportURL downloads the list as it is filtered, in format (csv, xlsx).
func (d customersPage) ExportURL(format string) string {
	v := url.Values{"format": {format}}
	if d.Query != "" {
		v.Set("q", d.Query)
	}
	return "/customers/export?" + v.Encode()
}

func customersURL(q, cursor string) string {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if len(v) == 0 {
		return "/customers"
	}
	return "/customers?" + v.Encode()
}

// searchQuery reads the search box: KIND:VALUE for a known identifier kind
// (user_id:M0001, wechat_unionid:o6_…), otherwise a name prefix or a phone
// number in any format.
func searchQuery(q string, showPII bool) customer.Query {
	q = strings.TrimSpace(q)
	out := customer.Query{ShowPII: showPII}
	if kind, value, ok := strings.Cut(q, ":"); ok && slices.Contains(customer.Kinds(), strings.TrimSpace(kind)) {
		out.Identifier = strings.TrimSpace(kind) + ":" + strings.TrimSpace(value)
		return out
	}
	out.Search = q
	return out
}

// customersPage lists customers, newest first, with search and paging.
func (c *Console) customersPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	p := s.Principal
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	cursor := r.URL.Query().Get("cursor")
	d := customersPage{
		Query:     q,
		Later:     cursor != "",
		Spend:     c.deps.Commerce != nil,
		CanImport: c.deps.Imports != nil && p.Can(tenant.PermCustomersWrite),
		CanKeys:   c.deps.Events != nil && p.Can(tenant.PermAPIKeysManage),
		Export:    c.deps.Imports != nil,
	}
	status := http.StatusOK
	pg, err := c.deps.Customers.List(ctx, p.TenantID, searchQuery(q, p.Can(tenant.PermPIIRead)),
		page.Request{Cursor: cursor, Limit: customersPageSize})
	switch {
	case isUserError(err):
		d.Err, status = c.cat.errorText(s.Lang, err), statusOf(errs.KindOf(err))
	case err != nil:
		return fmt.Errorf("console: customers: %w", err)
	}
	d.Next = pg.Next
	var spends map[int64]commerce.Spend
	if c.deps.Commerce != nil && len(pg.Items) > 0 {
		ids := make([]int64, len(pg.Items))
		for i, cu := range pg.Items {
			ids[i] = cu.ID
		}
		if spends, err = c.deps.Commerce.Spends(ctx, p.TenantID, ids); err != nil {
			return fmt.Errorf("console: customers: %w", err)
		}
	}
	for _, cu := range pg.Items {
		maskEmail(&cu, p)
		d.Rows = append(d.Rows, customerRow{Customer: cu, Spend: spends[cu.ID]})
	}
	c.render(w, r, status, "customers", c.pageView(w, r, s, "customers.title", d))
	return nil
}

// maskEmail hides most of a customer's email from a role that may not see
// personal data, as the customer service does with phones.
func maskEmail(cu *customer.Customer, p tenant.Principal) {
	if !p.Can(tenant.PermPIIRead) {
		cu.Email = maskedEmail(cu.Email)
	}
}

// maskedEmail shows an address as li***@example.com.
func maskedEmail(v string) string {
	local, domain, ok := strings.Cut(v, "@")
	if !ok {
		return v
	}
	r := []rune(local)
	if len(r) > 2 {
		r = r[:2]
	}
	return string(r) + "***@" + domain
}

// maskedValue masks a free-form value (an event property, a trait) that is
// a phone number or an email address, for a role that may not see them.
func maskedValue(key string, v string) string {
	k := strings.ToLower(key)
	if strings.Contains(v, "@") && strings.Contains(v, ".") {
		return maskedEmail(v)
	}
	// Keys as SDKs name them, in English and in Chinese (shouji, dianhua).
	for _, hint := range []string{"phone", "mobile", "tel", "\u624b\u673a", "\u7535\u8bdd"} {
		if strings.Contains(k, hint) {
			if e164, err := customer.NormalizePhone(v); err == nil {
				return pii.MaskPhone(e164)
			}
			return strings.Repeat("*", min(len([]rune(v)), 11))
		}
	}
	return v
}

// customersExport downloads the customer list, filtered as on the page, as
// CSV or XLSX with a header row in the user's language. Phones are masked
// unless the role may see them; the export is in the audit log.
func (c *Console) customersExport(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	q := searchQuery(r.URL.Query().Get("q"), false)
	lang := importer.LangEN
	if s.Lang == "zh-CN" {
		lang = importer.LangZH
	}
	ex, err := c.deps.Imports.NewExport(r.Context(), s.Principal, importer.ExportRequest{
		Search: q.Search, Identifier: q.Identifier, Format: r.URL.Query().Get("format"), Lang: lang})
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	// A large export outlasts the server's write timeout.
	_ = rc.SetWriteDeadline(time.Now().Add(time.Hour))
	h := w.Header()
	h.Set("Content-Type", ex.ContentType())
	h.Set("Content-Disposition", "attachment; filename="+strconv.Quote(ex.FileName)+"; filename*=UTF-8''"+url.PathEscape(ex.FileName))
	w.WriteHeader(http.StatusOK)
	if err := ex.WriteTo(r.Context(), w); err != nil {
		c.log.ErrorContext(r.Context(), "console: customer export failed midway", "err", err)
		// Cut the connection so the browser shows a failed download, never
		// a short file that looks complete.
		_ = rc.SetWriteDeadline(time.Unix(1, 0))
	}
	return nil
}
