// Package console is Siyu's web console: server-rendered pages (html/template
// and htmx, both embedded) that operators sign in to with a session cookie.
//
// Every page declares the permission it needs and goes through one wrapper that
// authenticates the session, checks the CSRF token of state-changing requests
// and checks the permission, so no page can forget any of the three. Every
// user-visible string comes from the message catalogue (i18n/*.json); Go code
// refers to catalogue keys only.
package console

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/siyu-dev/siyu/internal/acquire"
	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/community"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/handover"
	"github.com/siyu-dev/siyu/internal/importer"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/moment"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Deps are the services the console uses.
type Deps struct {
	Log     *slog.Logger
	Tenant  *tenant.Service
	Version string
	// Secure marks cookies Secure; set it when the console is served over HTTPS.
	Secure bool

	// The domain services below are optional: a page that needs one exists
	// only when it is set (see routes).
	Customers *customer.Service
	Commerce  *commerce.Service
	Events    *event.Service
	Imports   *importer.Service
	Staff     *staff.Service
	Tags      *tag.Service
	TagRules  *tag.Rules
	Audiences *audience.Service
	Analytics *analytics.Service
	WeCom     *wecom.Service // the WeCom connector (wecom.go)
	// Operations; each nil leaves its pages out.
	Messages  *message.Service
	Acquire   *acquire.Service
	Community *community.Service
	Moments   *moment.Service
	Handover  *handover.Service
}

// Console serves the web console.
type Console struct {
	deps   Deps
	log    *slog.Logger
	cat    *catalogue
	assets *assets
	// tmpl holds one parsed template set per language and page, so that the
	// "t" function is bound to a language once, at start-up.
	tmpl  map[string]map[string]*template.Template
	pages []route
	cop   *http.CrossOriginProtection
}

// handlerFunc serves a page to a signed-in user whose permission, session and
// CSRF token have been checked. An error it returns is shown as an error page
// (or, for an htmx request, as an inline alert).
type handlerFunc func(w http.ResponseWriter, r *http.Request, s *signedIn) error

// route is one page or action of the signed-in console.
type route struct {
	pattern string            // ServeMux pattern with method, e.g. "GET /settings/users"
	perm    tenant.Permission // what the user's role must hold; required
	handle  handlerFunc
	nav     *navEntry // set for pages listed in the sidebar
	// maxBody overrides the request body limit (maxFormBytes) of a
	// state-changing route that takes a file.
	maxBody int64
}

// path is the route's URL path, for links.
func (rt route) path() string {
	_, p, _ := strings.Cut(rt.pattern, " ")
	return strings.TrimSuffix(p, "{$}")
}

// New builds the console: it loads the catalogue, hashes the static assets and
// parses the templates, so that a broken file fails at start-up, not on a page.
func New(d Deps) (*Console, error) {
	if d.Tenant == nil {
		return nil, errors.New("console: Deps.Tenant is required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	cat, err := loadCatalogue()
	if err != nil {
		return nil, err
	}
	as, err := loadAssets()
	if err != nil {
		return nil, err
	}
	c := &Console{deps: d, log: d.Log, cat: cat, assets: as}
	c.pages = c.routes()
	for _, rt := range c.pages {
		mustDeclarePermission(rt)
	}
	if c.tmpl, err = c.parseTemplates(); err != nil {
		return nil, err
	}
	c.cop = http.NewCrossOriginProtection()
	c.cop.SetDenyHandler(http.HandlerFunc(c.crossOriginDenied))
	return c, nil
}

// routes lists the signed-in console. A page appears in the sidebar when it
// has a nav entry and the user's role holds its permission; sidebar groups
// come in the order their first page is listed. A page that is not listed
// here does not exist, so the sidebar never links to nothing: a page that
// needs an optional service is listed only when Deps has it (see
// customerRoutes and dataRoutes), e.g.
//
//	if c.deps.Customers != nil {
//		rs = append(rs, route{pattern: "GET /customers", perm: tenant.PermCustomersRead, handle: c.customersPage,
//			nav: &navEntry{Section: "nav.customers", Label: "nav.customer_list", Icon: "contacts"}})
//	}
func (c *Console) routes() []route {
	rs := []route{
		{pattern: "GET /{$}", perm: tenant.PermWorkspaceRead, handle: c.home,
			nav: &navEntry{Label: "nav.home", Icon: "home"}},
	}

	// Domain pages (customers, tags, audiences, …) go here, above Settings.
	rs = append(rs, c.customerRoutes()...)
	rs = append(rs, c.tagRoutes()...)       // tags.go: tags, groups, auto-tag rules
	rs = append(rs, c.audienceRoutes()...)  // audiences.go: builder, saved audiences, score charts
	rs = append(rs, c.acquireRoutes()...)   // acquire.go: channel codes, store codes
	rs = append(rs, c.communityRoutes()...) // community.go: customer groups, group codes
	rs = append(rs, c.messageRoutes()...)   // messages.go: mass messages, composer, results
	rs = append(rs, c.momentRoutes()...)    // moments.go: moments tasks
	rs = append(rs, c.handoverRoutes()...)  // handover.go: staff handover
	rs = append(rs, c.wecomRoutes()...)     // wecom.go: WeCom connector
	rs = append(rs, c.dataRoutes()...)

	return append(rs, []route{
		{pattern: "GET /settings", perm: tenant.PermWorkspaceRead, handle: c.settingsIndex},
		{pattern: "GET /settings/workspace", perm: tenant.PermWorkspaceRead, handle: c.workspacePage,
			nav: &navEntry{Section: "nav.settings", Label: "nav.workspace", Icon: "building"}},
		{pattern: "POST /settings/workspace", perm: tenant.PermWorkspaceManage, handle: c.workspaceSave},

		{pattern: "GET /settings/users", perm: tenant.PermUsersManage, handle: c.usersPage,
			nav: &navEntry{Section: "nav.settings", Label: "nav.users", Icon: "users"}},
		{pattern: "POST /settings/users", perm: tenant.PermUsersManage, handle: c.userAdd},
		{pattern: "POST /settings/users/{id}/role", perm: tenant.PermUsersManage, handle: c.userSetRole},
		{pattern: "POST /settings/users/{id}/disable", perm: tenant.PermUsersManage, handle: c.userDisable},
		{pattern: "POST /settings/users/{id}/enable", perm: tenant.PermUsersManage, handle: c.userEnable},

		{pattern: "GET /settings/api-keys", perm: tenant.PermAPIKeysManage, handle: c.apiKeysPage,
			nav: &navEntry{Section: "nav.settings", Label: "nav.apikeys", Icon: "key"}},
		{pattern: "POST /settings/api-keys", perm: tenant.PermAPIKeysManage, handle: c.apiKeyCreate},
		{pattern: "POST /settings/api-keys/{id}/revoke", perm: tenant.PermAPIKeysManage, handle: c.apiKeyRevoke},

		{pattern: "GET /settings/audit", perm: tenant.PermAuditRead, handle: c.auditPage,
			nav: &navEntry{Section: "nav.settings", Label: "nav.audit", Icon: "audit"}},
	}...)
}

// mustDeclarePermission refuses, at start-up, a route that declares no
// permission, so that no page can be added without deciding who may see it.
func mustDeclarePermission(rt route) {
	if rt.perm == "" {
		panic("console: route " + rt.pattern + " declares no permission")
	}
	if rt.handle == nil {
		panic("console: route " + rt.pattern + " has no handler")
	}
}

// Register mounts the console's routes on mux: the signed-in pages, the
// public sign-in pages, the static assets, and a catch-all that answers
// unknown paths with the console's 404 page.
func (c *Console) Register(mux *http.ServeMux) {
	for _, rt := range c.pages {
		mustDeclarePermission(rt)
		mux.Handle(rt.pattern, c.cop.Handler(c.signedInHandler(rt)))
	}
	mux.Handle("GET /login", c.cop.Handler(http.HandlerFunc(c.loginPage)))
	mux.Handle("POST /login", c.cop.Handler(http.HandlerFunc(c.loginSubmit)))
	mux.Handle("POST /logout", c.cop.Handler(http.HandlerFunc(c.logout)))
	mux.Handle("POST /lang", c.cop.Handler(http.HandlerFunc(c.switchLanguage)))
	mux.HandleFunc("GET /static/{file}", c.assets.serve)
	mux.Handle("/", c.cop.Handler(http.HandlerFunc(c.notFound)))
}
