package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/errs"
)

// Problem is an RFC 9457 problem document with Siyu's stable machine-readable
// code. Every error from /api/v1 has this shape.
type Problem struct {
	Type     string         `json:"type,omitempty" doc:"A URI reference for the problem type (about:blank)."`
	Title    string         `json:"title" doc:"Short summary of the HTTP status."`
	Status   int            `json:"status" doc:"The HTTP status code."`
	Code     string         `json:"code" doc:"Stable machine-readable error code, e.g. invalid_api_key, validation_failed, not_found." example:"validation_failed"`
	Detail   string         `json:"detail,omitempty" doc:"Human-readable explanation of this occurrence."`
	Instance string         `json:"instance,omitempty" doc:"The request path."`
	Errors   []ProblemField `json:"errors,omitempty" doc:"Individual problems with parts of the request."`
}

// ProblemField points at one bad part of a request.
type ProblemField struct {
	Location string `json:"location,omitempty" doc:"Where the problem is, e.g. body.email or query.limit."`
	Message  string `json:"message" doc:"What is wrong there."`
	Value    any    `json:"value,omitempty" doc:"The offending value, when safe to echo."`
}

func (p *Problem) Error() string  { return p.Detail }
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes huma send application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" {
		return "application/problem+json"
	}
	return ct
}

// codeForStatus names the errors huma itself raises (parsing, validation,
// body size) so that they too carry a stable code.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "malformed_request"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "body_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusUnprocessableEntity:
		return "validation_failed"
	case http.StatusTooManyRequests:
		return "rate_limited"
	default:
		if status >= 500 {
			return "internal"
		}
		return "bad_request"
	}
}

// newHumaError replaces huma.NewError so that huma's own errors (malformed JSON,
// validation, oversized bodies) are Problems with a code, like ours.
func newHumaError(status int, msg string, es ...error) huma.StatusError {
	for _, e := range es {
		if c, ok := e.(*codeCarrier); ok {
			return c.p
		}
	}
	p := &Problem{Status: status, Title: http.StatusText(status), Code: codeForStatus(status), Detail: msg}
	for _, e := range es {
		if e == nil {
			continue
		}
		var d huma.ErrorDetailer
		if errors.As(e, &d) {
			ed := d.ErrorDetail()
			p.Errors = append(p.Errors, ProblemField{Location: ed.Location, Message: ed.Message, Value: ed.Value})
		} else {
			p.Errors = append(p.Errors, ProblemField{Message: e.Error()})
		}
	}
	if status == http.StatusRequestEntityTooLarge && p.Detail == "" {
		p.Detail = "the request body is too large"
	}
	return p
}

func init() {
	// huma keeps its error constructor in a package variable; setting it once
	// here, before any API exists, is the documented way to customise it.
	huma.NewError = newHumaError
}

var missingKey = errs.E(errs.Unauthenticated, "missing_api_key",
	"this API needs an API key: send 'Authorization: Bearer siyu_…' (create one in the console under Settings → API keys)")

// StatusOf maps an error kind to its HTTP status: the only place it happens
// for the API.
func StatusOf(k errs.Kind) int {
	switch k {
	case errs.Invalid:
		return http.StatusUnprocessableEntity
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.Forbidden:
		return http.StatusForbidden
	case errs.RateLimited:
		return http.StatusTooManyRequests
	case errs.TooLarge:
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusInternalServerError
	}
}

// problemFor converts a domain error to a Problem, hiding internal errors'
// text (they are logged instead).
func problemFor(ctx context.Context, log *slog.Logger, err error) *Problem {
	if p, ok := err.(*Problem); ok {
		return p
	}
	e, ok := errs.As(err)
	if !ok || e.Kind == errs.Internal {
		log.ErrorContext(ctx, "api: internal error", "err", err)
		return &Problem{Status: 500, Title: http.StatusText(500), Code: "internal",
			Detail: "an internal error occurred; it has been logged"}
	}
	status := StatusOf(e.Kind)
	p := &Problem{Status: status, Title: http.StatusText(status), Code: errs.CodeOf(e), Detail: e.Message}
	for _, f := range e.Fields {
		p.Errors = append(p.Errors, ProblemField{Location: f.Location, Message: f.Message})
	}
	return p
}

// WriteProblem writes p as application/problem+json outside huma (the auth
// middleware, unknown routes).
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" {
		p.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/problem+json")
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="siyu"`)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
