package console

import (
	"net/http"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// loginForm is the data of the login page.
type loginForm struct {
	Email   string
	Next    string
	Message string // already translated
	Notice  bool   // Message is information (signed out), not an error
}

// loginPage shows the sign-in form, or sends a signed-in user on.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if s := c.optionalSession(r); s != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	v := c.publicView(w, r, "login.title", nil)
	f := loginForm{Next: next}
	switch {
	case r.URL.Query().Get("expired") == "1":
		f.Message = c.cat.errorText(v.Lang, tenant.ErrSessionExpired)
	case r.URL.Query().Get("signed_out") == "1":
		f.Message, f.Notice = c.cat.text(v.Lang, "login.signed_out"), true
	}
	v.Data = f
	c.render(w, r, http.StatusOK, "login", v)
}

// loginSubmit checks the credentials and opens a session.
func (c *Console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.renderProblem(w, r, nil, http.StatusBadRequest, "error.title", "error.bad_form")
		return
	}
	f := loginForm{Email: r.PostFormValue("email"), Next: localPath(r.PostFormValue("next"))}
	if !preAuthTokenOK(r) {
		// A stale or forged form: show a fresh one rather than a dead end.
		c.log.WarnContext(r.Context(), "console: login without a valid CSRF token", "ip", requestMeta(r).IP)
		v := c.publicView(w, r, "login.title", nil)
		f.Message = c.cat.text(v.Lang, "error.csrf.text")
		v.Data = f
		c.render(w, r, http.StatusForbidden, "login", v)
		return
	}
	token, _, u, err := c.deps.Tenant.Login(r.Context(), f.Email, r.PostFormValue("password"), requestMeta(r))
	if err != nil {
		status := statusOf(errs.KindOf(err))
		if status == http.StatusInternalServerError {
			c.serverError(w, r, nil, err)
			return
		}
		v := c.publicView(w, r, "login.title", nil)
		f.Message = c.cat.errorText(v.Lang, err)
		v.Data = f
		c.render(w, r, status, "login", v)
		return
	}
	c.setSessionCookie(w, token)
	c.log.InfoContext(r.Context(), "console: signed in", "user_id", u.ID, "tenant_id", u.TenantID)
	http.Redirect(w, r, f.Next, http.StatusSeeOther)
}

// logout ends the session. It needs the session's CSRF token, so another site
// cannot sign a user out.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	s, err := c.authenticate(r)
	if err != nil {
		if !errs.Is(err, errs.Unauthenticated) {
			c.serverError(w, r, nil, err)
			return
		}
		c.clearCookie(w, sessionCookie)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if !tokenMatches(submittedCSRF(r), s.Session.CSRFToken) {
		c.log.WarnContext(r.Context(), "console: logout without a valid CSRF token", "user_id", s.User.ID)
		c.renderProblem(w, r, s, http.StatusForbidden, "error.csrf.title", "error.csrf.text")
		return
	}
	if err := c.deps.Tenant.Logout(r.Context(), s.token, s.Principal); err != nil {
		c.serverError(w, r, s, err)
		return
	}
	c.clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
}

// switchLanguage sets the lang cookie (before or after sign-in) and, for a
// signed-in user, saves the choice as their locale so that it follows them to
// other browsers.
func (c *Console) switchLanguage(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.renderProblem(w, r, nil, http.StatusBadRequest, "error.title", "error.bad_form")
		return
	}
	// The form carries the session's token when signed in, the pre-sign-in
	// token otherwise (or when the page predates a sign-in in another tab).
	s := c.optionalSession(r)
	ok := preAuthTokenOK(r) || (s != nil && tokenMatches(submittedCSRF(r), s.Session.CSRFToken))
	if !ok {
		c.log.WarnContext(r.Context(), "console: language switch without a valid CSRF token", "ip", requestMeta(r).IP)
		c.renderProblem(w, r, s, http.StatusForbidden, "error.csrf.title", "error.csrf.text")
		return
	}
	lang := r.PostFormValue("lang")
	if !c.cat.has(lang) {
		lang = defaultLang
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", HttpOnly: true, Secure: c.deps.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int((365 * 24 * time.Hour).Seconds())})
	if s != nil && s.User.Locale != lang {
		if _, err := c.deps.Tenant.UpdateUser(r.Context(), s.Principal, s.User.ID, tenant.UserUpdate{Locale: &lang}); err != nil {
			// The cookie already holds the choice; the saved locale is a convenience.
			c.log.WarnContext(r.Context(), "console: unable to save locale", "user_id", s.User.ID, "err", err)
		}
	}
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}
