// Package api is Siyu's JSON API under /api/v1: huma operations on the
// standard library mux, described by the OpenAPI 3.1 document served at
// /api/v1/openapi.json. Handlers are thin: they authenticate (Bearer API key),
// check the operation's permission, call a domain service and map its errors
// to RFC 9457 problems with a stable code.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

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
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Prefix is where the API lives.
const Prefix = "/api/v1"

// Deps are the services the API exposes.
type Deps struct {
	Log       *slog.Logger
	Tenant    *tenant.Service
	Customers *customer.Service
	Staff     *staff.Service
	Tags      *tag.Service
	TagRules  *tag.Rules
	Events    *event.Service
	Commerce  *commerce.Service
	Audiences *audience.Service
	Analytics *analytics.Service
	Imports   *importer.Service
	WeCom     *wecom.Service // nil: the WeCom connector's operations are not mounted
	// Operations; each nil leaves its operations unmounted.
	Messages  *message.Service
	Acquire   *acquire.Service
	Community *community.Service
	Moments   *moment.Service
	Handover  *handover.Service
	Version   string
}

// API holds the huma API and what handlers need.
type API struct {
	huma.API
	deps Deps
}

// Register mounts the API on mux: every operation, the OpenAPI document, and a
// catch-all that answers unknown /api/v1 paths with problem JSON.
func Register(mux *http.ServeMux, deps Deps) *API {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	cfg := huma.DefaultConfig("Siyu API", deps.Version)
	cfg.OpenAPI.Info.Description = "Siyu (私域) private-domain customer operations platform. " +
		"Authenticate with an API key of your workspace: `Authorization: Bearer siyu_…`. " +
		"Errors are RFC 9457 problem documents with a stable `code`. " +
		"Lists take `cursor` and `limit` (1–200, default 50) and return `items` and `next_cursor` (empty on the last page)."
	cfg.OpenAPIPath = "/openapi"
	cfg.DocsPath = "/docs"
	cfg.SchemasPath = "/schemas"
	cfg.CreateHooks = nil // no $schema links in responses
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"apiKey": {Type: "http", Scheme: "bearer", Description: "A workspace API key (siyu_…), created in the console under Settings → API keys."},
	}
	cfg.Security = []map[string][]string{{"apiKey": {}}}
	h := humago.NewWithPrefix(mux, Prefix, cfg)
	a := &API{API: h, deps: deps}
	h.UseMiddleware(a.authenticate)

	// Unknown paths under the prefix: authentication first (so probing reveals
	// nothing), then a problem-JSON 404.
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.principal(r.Context(), r.Header.Get("Authorization")); err != nil {
			WriteProblem(w, r, problemFor(r.Context(), a.deps.Log, err))
			return
		}
		WriteProblem(w, r, &Problem{Status: 404, Title: "Not Found", Code: "not_found", Detail: "no such API route: " + r.Method + " " + r.URL.Path})
	})

	a.registerMe()
	a.registerWorkspace()
	a.registerUsers()
	a.registerAPIKeys()
	a.registerAudit()
	a.registerCustomers()
	a.registerStaff()
	a.registerTags()
	a.registerTagRules()
	a.registerCommerce()
	a.registerAudiences()
	a.registerScores()
	a.registerImports()
	a.registerWriteKeys()
	a.registerEvents()
	a.registerConnectors()
	a.registerConnectorSync() // connectors_sync.go: WeCom sync, staff, one event, tag bindings
	a.registerMessages()      // messages.go: outbox, mass messages and their results
	a.registerAcquire()       // acquire.go: channel codes, store codes, statistics, QR images
	a.registerCommunity()     // community.go: customer groups, group codes, welcome templates
	a.registerMoments()       // moments.go: moments tasks and results
	a.registerHandover()      // handover.go: on-job and resigned handover
	a.registerIngest(mux)
	return a
}

// public operations need no API key.
func isPublic(op *huma.Operation) bool {
	return op == nil || op.Metadata["public"] == true
}

// authenticate is huma middleware: it resolves the Bearer key to a principal
// and puts it in the context, or answers 401.
func (a *API) authenticate(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	if isPublic(op) || strings.HasSuffix(ctx.URL().Path, "/openapi.json") || strings.HasSuffix(ctx.URL().Path, "/openapi.yaml") ||
		strings.HasSuffix(ctx.URL().Path, "/openapi-3.0.json") || strings.HasSuffix(ctx.URL().Path, "/openapi-3.0.yaml") ||
		strings.Contains(ctx.URL().Path, Prefix+"/docs") || strings.Contains(ctx.URL().Path, Prefix+"/schemas/") {
		next(ctx)
		return
	}
	p, err := a.principal(ctx.Context(), ctx.Header("Authorization"))
	if err != nil {
		prob := problemFor(ctx.Context(), a.deps.Log, err)
		prob.Instance = ctx.URL().Path
		a.deps.Log.InfoContext(ctx.Context(), "api: unauthenticated request", "path", ctx.URL().Path, "code", prob.Code,
			"ip", tenant.RequestMetaFrom(ctx.Context()).IP)
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="siyu"`)
		_ = huma.WriteErr(a.API, ctx, prob.Status, prob.Detail, &codeCarrier{prob})
		return
	}
	next(huma.WithValue(ctx, principalCtxKey{}, p))
}

type principalCtxKey struct{}

// codeCarrier smuggles a ready Problem through huma.WriteErr, whose
// constructor (newHumaError) would otherwise derive the code from the status.
type codeCarrier struct{ p *Problem }

func (c *codeCarrier) Error() string { return c.p.Detail }

func (a *API) principal(ctx context.Context, authz string) (tenant.Principal, error) {
	const bearer = "Bearer "
	if authz == "" {
		return tenant.Principal{}, missingKey
	}
	if len(authz) < len(bearer) || !strings.EqualFold(authz[:len(bearer)], bearer) {
		return tenant.Principal{}, tenant.ErrBadAPIKey
	}
	return a.deps.Tenant.AuthenticateAPIKey(ctx, strings.TrimSpace(authz[len(bearer):]), tenant.RequestMetaFrom(ctx))
}

// Handler is an operation body: it gets the authenticated principal.
type Handler[I, O any] func(ctx context.Context, p tenant.Principal, in *I) (*O, error)

// register adds an operation that needs perm. Every operation goes through
// here, so none can forget its permission check.
func register[I, O any](a *API, op huma.Operation, perm tenant.Permission, h Handler[I, O]) {
	if perm == "" {
		panic("api: operation " + op.OperationID + " declares no permission")
	}
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata["permission"] = string(perm)
	op.Description = strings.TrimSpace(op.Description + "\n\nRequires permission `" + string(perm) + "`.")
	op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusForbidden)
	huma.Register(a.API, op, func(ctx context.Context, in *I) (*O, error) {
		p, ok := ctx.Value(principalCtxKey{}).(tenant.Principal)
		if !ok {
			return nil, problemFor(ctx, a.deps.Log, missingKey)
		}
		if err := p.Require(perm); err != nil {
			return nil, problemFor(ctx, a.deps.Log, err)
		}
		out, err := h(ctx, p, in)
		if err != nil {
			return nil, problemFor(ctx, a.deps.Log, err)
		}
		return out, nil
	})
}

// PageParams are the query parameters of every list operation.
type PageParams struct {
	Cursor string `query:"cursor" doc:"Opaque cursor from a previous page's next_cursor; empty for the first page."`
	Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"50" doc:"Items per page."`
}

// Request converts the parameters to a page request.
func (pp PageParams) Request() page.Request { return page.Request{Cursor: pp.Cursor, Limit: pp.Limit} }

// List is the body of every list response.
type List[T any] struct {
	Items      []T    `json:"items" nullable:"false"`
	NextCursor string `json:"next_cursor" doc:"Cursor of the next page; empty on the last page."`
}

// ListOutput wraps a list body.
type ListOutput[T any] struct {
	Body List[T]
}

func listOf[T, U any](pg page.Page[T], conv func(T) U) *ListOutput[U] {
	out := &ListOutput[U]{Body: List[U]{Items: make([]U, 0, len(pg.Items)), NextCursor: pg.Next}}
	for _, it := range pg.Items {
		out.Body.Items = append(out.Body.Items, conv(it))
	}
	return out
}
