package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Cookies and form fields the console uses.
const (
	sessionCookie   = "siyu_session"
	loginCSRFCookie = "siyu_csrf" // double-submit token for forms shown before sign-in
	langCookie      = "lang"
	flashCookie     = "siyu_flash"

	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"

	// sessionCookieMaxAge outlives the server-side session (which slides), so
	// that a stale cookie reaches the server and the user is told the session
	// expired rather than silently finding themselves signed out.
	sessionCookieMaxAge = 30 * 24 * time.Hour
	maxFormBytes        = 1 << 20
)

// signedIn is what a page handler knows about who is asking.
type signedIn struct {
	Session   tenant.Session
	User      tenant.User
	Principal tenant.Principal
	Workspace tenant.Workspace
	Lang      string
	token     string
}

// errSignedOut means the request carried no session cookie at all.
var errSignedOut = errs.E(errs.Unauthenticated, "signed_out", "sign in to continue")

// authenticate resolves the session cookie. It returns errSignedOut without a
// cookie and tenant.ErrSessionExpired for a cookie that no longer works.
func (c *Console) authenticate(r *http.Request) (*signedIn, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, errSignedOut
	}
	ctx := r.Context()
	sess, u, err := c.deps.Tenant.SessionByToken(ctx, ck.Value)
	if err != nil {
		return nil, err
	}
	ws, err := c.deps.Tenant.Workspace(ctx, sess.TenantID)
	if err != nil {
		return nil, fmt.Errorf("console: unable to load workspace: %w", err)
	}
	return &signedIn{
		Session:   sess,
		User:      u,
		Principal: tenant.UserPrincipal(u, requestMeta(r)),
		Workspace: ws,
		Lang:      c.language(r, &u),
		token:     ck.Value,
	}, nil
}

// signedInHandler is the one way into a signed-in page: session, then CSRF
// token (for anything but GET/HEAD), then the route's permission.
func (c *Console) signedInHandler(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		s, err := c.authenticate(r)
		if err != nil {
			if errs.Is(err, errs.Unauthenticated) {
				c.toLogin(w, r, !errors.Is(err, errSignedOut))
				return
			}
			c.serverError(w, r, nil, err)
			return
		}
		if !isSafeMethod(r.Method) {
			limit := int64(maxFormBytes)
			if rt.maxBody > 0 {
				limit = rt.maxBody
				// A file upload is large: refuse a role that may not make it
				// before reading it.
				if !s.Principal.Can(rt.perm) {
					c.forbidden(w, r, s, rt.perm)
					return
				}
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			if err := parseForm(r); err != nil {
				if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
					c.renderProblem(w, r, s, http.StatusRequestEntityTooLarge, "error.title", "error.body_too_large", limit>>20)
					return
				}
				c.renderProblem(w, r, s, http.StatusBadRequest, "error.title", "error.bad_form")
				return
			}
			if !tokenMatches(submittedCSRF(r), s.Session.CSRFToken) {
				c.log.WarnContext(r.Context(), "console: CSRF token missing or wrong", "path", r.URL.Path,
					"user_id", s.User.ID, "ip", s.Principal.IP)
				c.renderProblem(w, r, s, http.StatusForbidden, "error.csrf.title", "error.csrf.text")
				return
			}
		}
		if !s.Principal.Can(rt.perm) {
			c.log.InfoContext(r.Context(), "console: permission denied", "path", r.URL.Path, "user_id", s.User.ID,
				"role", s.User.Role, "needs", rt.perm)
			c.forbidden(w, r, s, rt.perm)
			return
		}
		if r.Method == http.MethodGet && !isHTMX(r) {
			// The server slides the session on use; keep the cookie as long.
			c.setSessionCookie(w, s.token)
		}
		if err := rt.handle(w, r, s); err != nil {
			c.fail(w, r, s, err)
		}
	})
}

// toLogin sends a signed-out visitor to the login page, remembering where they
// were going (for GET) and whether their session had expired.
func (c *Console) toLogin(w http.ResponseWriter, r *http.Request, expired bool) {
	q := url.Values{}
	if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" {
		if next := r.URL.RequestURI(); next != "/" {
			q.Set("next", next)
		}
	}
	if expired {
		q.Set("expired", "1")
		c.clearCookie(w, sessionCookie)
	}
	target := "/login"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	if r.Header.Get("HX-Request") != "" {
		// htmx would follow a redirect inside the page; tell it to navigate.
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// localPath returns next if it is a path on this site, else "/": redirects
// after sign-in must never lead off-site.
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// submittedCSRF is the token a request carries: the htmx header, else the
// hidden form field.
func submittedCSRF(r *http.Request) string {
	if h := r.Header.Get(csrfHeader); h != "" {
		return h
	}
	return r.PostFormValue(csrfField)
}

// formMemory is how much of a multipart form is kept in memory; the rest of
// an upload spills to a temporary file.
const formMemory = 8 << 20

// parseForm reads a state-changing request's form, multipart (file uploads)
// or URL-encoded, so that a body over its limit is told apart from a form
// without its CSRF token.
func parseForm(r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "multipart/form-data") {
		return r.ParseMultipartForm(formMemory)
	}
	return r.ParseForm()
}

func tokenMatches(got, want string) bool {
	return want != "" && len(got) == len(want) && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// preAuthToken returns the double-submit token for forms shown before sign-in
// (login, language switch), setting its cookie when the browser has none.
func (c *Console) preAuthToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(loginCSRFCookie); err == nil && len(ck.Value) >= 32 {
		return ck.Value
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("console: crypto/rand failed: %v", err)) // the OS is broken
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: loginCSRFCookie, Value: tok, Path: "/", HttpOnly: true, Secure: c.deps.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int((12 * time.Hour).Seconds()),
	})
	return tok
}

// preAuthTokenOK checks a pre-sign-in form's token against its cookie.
func preAuthTokenOK(r *http.Request) bool {
	ck, err := r.Cookie(loginCSRFCookie)
	return err == nil && len(ck.Value) >= 32 && tokenMatches(submittedCSRF(r), ck.Value)
}

func (c *Console) setSessionCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: c.deps.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(sessionCookieMaxAge.Seconds()),
	})
}

func (c *Console) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", HttpOnly: true, Secure: c.deps.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// requestMeta is where the request came from: what the app middleware
// recorded, or the peer address when the console is served on its own.
func requestMeta(r *http.Request) tenant.RequestMeta {
	m := tenant.RequestMetaFrom(r.Context())
	if m.IP == "" {
		m.IP = r.RemoteAddr
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			m.IP = host
		}
		m.UserAgent = r.UserAgent()
	}
	return m
}

// optionalSession is the signed-in user when there is one, for public pages
// (login, 404) that look different to a signed-in visitor.
func (c *Console) optionalSession(r *http.Request) *signedIn {
	s, err := c.authenticate(r)
	if err != nil {
		if !errs.Is(err, errs.Unauthenticated) {
			c.log.WarnContext(r.Context(), "console: unable to check session", "err", err)
		}
		return nil
	}
	return s
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}
