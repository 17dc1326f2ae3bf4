package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/api"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

//go:embed templates/*.html
var templateFS embed.FS

// contentSecurityPolicy allows only the console's own scripts and styles:
// no inline script, no eval (htmx is configured without it), no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// view is what every template gets: the page's data plus what the layout
// needs (language, user, navigation, CSRF token).
type view struct {
	Lang      string
	Title     string // catalogue key of the page title
	Heading   string // the page title as data (a customer's name), instead of Title
	Path      string // the current request URI, for the language switch to come back to
	CSRF      string // the session's token, or the pre-sign-in double-submit token
	User      *tenant.User
	Workspace tenant.Workspace
	Nav       []navSection
	Flash     string // catalogue key of a one-time notice
	Version   string
	Loc       *time.Location // the workspace's time zone, for showing times
	Data      any
}

// navEntry puts a route in the sidebar.
type navEntry struct {
	Section string // catalogue key of the sidebar group; "" for the top group
	Label   string // catalogue key
	Icon    string // symbol id in the icon sprite (templates/layout.html)
}

// navSection is one group of the sidebar as shown to one user.
type navSection struct {
	Label string
	Items []navItem
}

// navItem is one sidebar link.
type navItem struct {
	Label, Path, Icon string
	Active            bool
}

// navFor builds the sidebar for principal p on the page at current: only
// routes that exist, and of those only the ones p's role may open.
func (c *Console) navFor(p tenant.Principal, current string) []navSection {
	var out []navSection
	// The entry whose path is the longest prefix of the current one is
	// active: /customers/attributes is its own entry, /customers/42 is the
	// customer list's.
	var active *navItem
	for _, rt := range c.pages {
		if rt.nav == nil || !p.Can(rt.perm) {
			continue
		}
		i := 0
		for i < len(out) && out[i].Label != rt.nav.Section {
			i++
		}
		if i == len(out) {
			out = append(out, navSection{Label: rt.nav.Section})
		}
		out[i].Items = append(out[i].Items, navItem{Label: rt.nav.Label, Path: rt.path(), Icon: rt.nav.Icon})
	}
	for i := range out {
		for j := range out[i].Items {
			it := &out[i].Items[j]
			matches := current == it.Path || (it.Path != "/" && strings.HasPrefix(current, it.Path+"/"))
			if matches && (active == nil || len(it.Path) > len(active.Path)) {
				active = it
			}
		}
	}
	if active != nil {
		active.Active = true
	}
	return out
}

// pageView starts the view of a signed-in page and takes its one-time notice.
func (c *Console) pageView(w http.ResponseWriter, r *http.Request, s *signedIn, title string, data any) *view {
	v := &view{
		Lang:      s.Lang,
		Title:     title,
		Path:      r.URL.RequestURI(),
		CSRF:      s.Session.CSRFToken,
		User:      &s.User,
		Workspace: s.Workspace,
		Nav:       c.navFor(s.Principal, r.URL.Path),
		Version:   c.deps.Version,
		Loc:       s.Workspace.Location(),
		Data:      data,
	}
	if ck, err := r.Cookie(flashCookie); err == nil {
		if _, ok := c.cat.lookup(s.Lang, ck.Value); ok && strings.HasPrefix(ck.Value, "flash.") {
			v.Flash = ck.Value
		}
		c.clearCookie(w, flashCookie)
	}
	return v
}

// redirectWithFlash ends a successful form post: a notice for the next page
// (a catalogue key, never user data) and a 303 to it.
func (c *Console) redirectWithFlash(w http.ResponseWriter, r *http.Request, to, flashKey string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: flashKey, Path: "/", HttpOnly: true,
		Secure: c.deps.Secure, SameSite: http.SameSiteLaxMode, MaxAge: 60})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// parseTemplates parses, for each language, the layout with each page file.
// A page is a file templates/NAME.html defining "content" (and any fragments
// it re-renders for htmx); adding a page is adding a file. Files named
// _NAME.html hold fragments several pages share and are parsed with the
// layout.
func (c *Console) parseTemplates() (map[string]map[string]*template.Template, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]*template.Template{}
	for _, lang := range languages() {
		base, err := template.New("").Funcs(c.funcs(lang)).ParseFS(templateFS, "templates/layout.html", "templates/_*.html")
		if err != nil {
			return nil, fmt.Errorf("console: unable to parse layout: %w", err)
		}
		out[lang] = map[string]*template.Template{}
		for _, f := range files {
			name := strings.TrimSuffix(path.Base(f), ".html")
			if name == "layout" || strings.HasPrefix(name, "_") {
				continue
			}
			t, err := template.Must(base.Clone()).ParseFS(templateFS, f)
			if err != nil {
				return nil, fmt.Errorf("console: unable to parse %s: %w", f, err)
			}
			out[lang][name] = t
		}
	}
	return out, nil
}

// funcs are the template functions, with "t" bound to one language.
func (c *Console) funcs(lang string) template.FuncMap {
	return template.FuncMap{
		// t "key" args… translates a catalogue key.
		"t": func(key string, args ...any) string { return c.cat.text(lang, key, args...) },
		// tx "key" "fallback" translates a key the catalogue may lack (audit
		// actions added by later features), showing fallback then.
		"tx": func(key, fallback string) string {
			if s, ok := c.cat.lookup(lang, key); ok {
				return s
			}
			return fallback
		},
		"asset": c.assets.url,
		// when formats a time in the workspace's zone; zero is "".
		"when": func(t time.Time, loc *time.Location) string {
			if t.IsZero() {
				return ""
			}
			if loc == nil {
				loc = time.UTC
			}
			return t.In(loc).Format("2006-01-02 15:04")
		},
		// iso is a machine-readable time for <time datetime>.
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		// initial is the first letter of a name, for avatars.
		"initial": func(name string) string {
			r, _ := utf8.DecodeRuneInString(strings.TrimSpace(name))
			if r == utf8.RuneError {
				return "?"
			}
			return string(unicode.ToUpper(r))
		},
		// tone picks one of the avatar colours for an id, so that a list of
		// customers is not a wall of one colour.
		"tone": func(id int64) int64 { return id % avatarTones },
		// phone shows a mainland number as people write it (138 0013 8000);
		// masked and foreign numbers as they are.
		"phone": displayPhone,
		// yuan shows fen as ¥1,280.00.
		"yuan": yuan,
		// day formats a date in the workspace's zone; zero is "".
		"day": func(t time.Time, loc *time.Location) string {
			if t.IsZero() {
				return ""
			}
			if loc == nil {
				loc = time.UTC
			}
			return t.In(loc).Format(time.DateOnly)
		},
		// ago says how long ago t was (3 days ago), or its date past a month.
		"ago": func(t time.Time, loc *time.Location) string { return c.ago(lang, t, loc, time.Now()) },
		// channel names a source channel (store, miniapp, tmall…) in lang.
		"channel": func(src any) string { return c.cat.label(lang, "channel.", fmt.Sprint(src)) },
		// idkind names an identifier kind (user_id, wechat_unionid…) in lang.
		"idkind": func(kind string) string { return c.cat.label(lang, "idkind.", kind) },
		// label translates prefix+value, showing value when the catalogue
		// has no such key (codes added later, free-form values).
		"label": func(prefix string, v any) string { return c.cat.label(lang, prefix, fmt.Sprint(v)) },
	}
}

// yuan formats fen as yuan with thousands grouped, as receipts do:
// 12345600 → ¥123,456.00.
func yuan(fen int64) string {
	s := commerce.Yuan(fen) // -¥123456.00
	sign, rest, _ := strings.Cut(s, "¥")
	whole, cents, _ := strings.Cut(rest, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return sign + "¥" + b.String() + "." + cents
}

// displayPhone groups a mainland mobile number 3-4-4 without its +86.
func displayPhone(p string) string {
	if d, ok := strings.CutPrefix(p, "+86"); ok && len(d) == 11 {
		return d[:3] + " " + d[3:7] + " " + d[7:]
	}
	return p
}

// avatarTones is how many avatar colours app.css defines (.tone-0 …).
const avatarTones = 6

// label is the catalogue's text of prefix+v, else v itself.
func (c *catalogue) label(lang, prefix, v string) string {
	if s, ok := c.lookup(lang, prefix+v); ok {
		return s
	}
	return v
}

// ago formats t relative to now, in lang: just now, minutes, hours, days;
// past 30 days, the date.
func (c *Console) ago(lang string, t time.Time, loc *time.Location, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return c.cat.text(lang, "time.just_now")
	case d < time.Hour:
		return c.cat.text(lang, "time.minutes_ago", int(d/time.Minute))
	case d < 24*time.Hour:
		return c.cat.text(lang, "time.hours_ago", int(d/time.Hour))
	case d < 30*24*time.Hour:
		return c.cat.text(lang, "time.days_ago", int(d/(24*time.Hour)))
	}
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format(time.DateOnly)
}

// render writes a whole page: "layout" for a signed-in view, "bare" (no
// sidebar) otherwise. It renders into a buffer first, so a template error is a
// clean 500, never half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	entry := "layout"
	if v.User == nil {
		entry = "bare"
	}
	c.renderTemplate(w, r, status, v.Lang, page, entry, v)
}

// renderTemplate executes one named template of a page: a whole page, or a
// fragment for htmx to swap in.
func (c *Console) renderTemplate(w http.ResponseWriter, r *http.Request, status int, lang, page, name string, data any) {
	t, ok := c.tmpl[lang][page]
	if !ok {
		c.log.ErrorContext(r.Context(), "console: no such template", "page", page, "lang", lang)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		c.log.ErrorContext(r.Context(), "console: unable to render page", "page", page, "template", name, "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	noStore(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// problem is the data of the error page.
type problem struct {
	Status  int
	Heading string // catalogue key
	Text    string // already translated
}

// renderProblem shows the error page: inside the layout for a signed-in user,
// on its own otherwise, or as an inline alert for an htmx request.
func (c *Console) renderProblem(w http.ResponseWriter, r *http.Request, s *signedIn, status int, heading, textKey string, args ...any) {
	lang := c.language(r, nil)
	if s != nil {
		lang = s.Lang
	}
	c.renderProblemText(w, r, s, status, heading, c.cat.text(lang, textKey, args...))
}

func (c *Console) renderProblemText(w http.ResponseWriter, r *http.Request, s *signedIn, status int, heading, text string) {
	data := problem{Status: status, Heading: heading, Text: text}
	if r.Header.Get("HX-Request") != "" {
		// Show the alert where the page keeps its notices rather than
		// swapping an error page into a table row.
		w.Header().Set("HX-Retarget", "#notice")
		w.Header().Set("HX-Reswap", "innerHTML")
		lang := defaultLang
		if s != nil {
			lang = s.Lang
		}
		c.renderTemplate(w, r, status, lang, "error", "alert", data)
		return
	}
	var v *view
	if s != nil {
		v = c.pageView(w, r, s, heading, data)
	} else {
		v = c.publicView(w, r, heading, data)
	}
	c.render(w, r, status, "error", v)
}

// publicView is the view of a page shown without a session.
func (c *Console) publicView(w http.ResponseWriter, r *http.Request, title string, data any) *view {
	return &view{
		Lang:    c.language(r, nil),
		Title:   title,
		Path:    r.URL.RequestURI(),
		CSRF:    c.preAuthToken(w, r),
		Version: c.deps.Version,
		Loc:     time.UTC,
		Data:    data,
	}
}

// statusOf maps an error kind to an HTTP status; the API decides the
// mapping once for both HTTP layers.
func statusOf(k errs.Kind) int { return api.StatusOf(k) }

// fail shows an error a handler returned: a domain error in the user's
// language with its status, anything else as a logged 500.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *signedIn, err error) {
	e, ok := errs.As(err)
	if !ok || e.Kind == errs.Internal {
		c.serverError(w, r, s, err)
		return
	}
	status := statusOf(e.Kind)
	heading := "error.title"
	switch status {
	case http.StatusNotFound:
		heading = "notfound.title"
	case http.StatusForbidden:
		heading = "forbidden.title"
	}
	c.renderProblemText(w, r, s, status, heading, c.cat.errorText(s.Lang, err))
}

// isUserError reports whether err is a domain error to show beside the form
// or row it came from; anything else is an internal error.
func isUserError(err error) bool {
	e, ok := errs.As(err)
	return ok && e.Kind != errs.Internal
}

// serverError logs err and shows the generic error page.
func (c *Console) serverError(w http.ResponseWriter, r *http.Request, s *signedIn, err error) {
	c.log.ErrorContext(r.Context(), "console: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	c.renderProblem(w, r, s, http.StatusInternalServerError, "error.title", "error.internal")
}

// forbidden shows the 403 page for a role that lacks perm.
func (c *Console) forbidden(w http.ResponseWriter, r *http.Request, s *signedIn, perm tenant.Permission) {
	text := c.cat.text(s.Lang, "forbidden.text", c.cat.text(s.Lang, "role."+string(s.User.Role)), string(perm))
	c.renderProblemText(w, r, s, http.StatusForbidden, "forbidden.title", text)
}

// notFound is the console's 404 for any path nothing else serves. Paths under
// /api/ answer in JSON, as the API does.
func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/") {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"title":"Not Found","status":404,"code":"not_found","instance":%q}`+"\n", r.URL.Path)
		return
	}
	c.renderProblem(w, r, c.optionalSession(r), http.StatusNotFound, "notfound.title", "notfound.text")
}

// crossOriginDenied answers a state-changing request from another origin,
// refused by http.CrossOriginProtection before any handler ran.
func (c *Console) crossOriginDenied(w http.ResponseWriter, r *http.Request) {
	c.log.WarnContext(r.Context(), "console: cross-origin request refused", "method", r.Method, "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "ip", requestMeta(r).IP)
	c.renderProblem(w, r, nil, http.StatusForbidden, "error.csrf.title", "error.csrf.text")
}

// origin is this server as the browser reached it (https://host), for the
// examples a page shows.
func (c *Console) origin(r *http.Request) string {
	if r.TLS != nil || c.deps.Secure {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// isHTMX reports whether htmx sent the request (and so wants a fragment).
func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }
