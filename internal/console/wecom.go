package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// wecomRoutes lists the pages of the WeCom connector: settings, sync status, staff and the callback log.
//
// They do what the API's /connectors/wecom operations do, with the same
// permissions: connectors.read to look, connectors.manage to change (owners
// and admins only: the pages show how the corp is wired and act with its
// secret).
func (c *Console) wecomRoutes() []route {
	if c.deps.WeCom == nil {
		return nil
	}
	const section = "wecom.nav.section"
	rs := []route{
		{pattern: "GET /connectors/wecom", perm: tenant.PermConnectorsRead, handle: c.wecomSettingsPage,
			nav: &navEntry{Section: section, Label: "wecom.nav.settings", Icon: "plug"}},
		{pattern: "POST /connectors/wecom", perm: tenant.PermConnectorsManage, handle: c.wecomSettingsSave},
		{pattern: "GET /connectors/wecom/generate", perm: tenant.PermConnectorsManage, handle: c.wecomGenerate},
		{pattern: "POST /connectors/wecom/test", perm: tenant.PermConnectorsManage, handle: c.wecomTest},

		{pattern: "GET /connectors/wecom/sync", perm: tenant.PermConnectorsRead, handle: c.wecomSyncPage,
			nav: &navEntry{Section: section, Label: "wecom.nav.sync", Icon: "clock"}},
		{pattern: "GET /connectors/wecom/sync/progress", perm: tenant.PermConnectorsRead, handle: c.wecomSyncProgress},
		{pattern: "POST /connectors/wecom/sync", perm: tenant.PermConnectorsManage, handle: c.wecomSyncStart},
		{pattern: "POST /connectors/wecom/sync/resume", perm: tenant.PermConnectorsManage, handle: c.wecomSyncResume},
	}
	if c.deps.Staff != nil {
		rs = append(rs, route{pattern: "GET /connectors/wecom/staff", perm: tenant.PermConnectorsRead, handle: c.wecomStaffPage,
			nav: &navEntry{Section: section, Label: "wecom.nav.staff", Icon: "id-card"}})
	}
	if c.deps.Tags != nil {
		rs = append(rs,
			route{pattern: "GET /connectors/wecom/tags", perm: tenant.PermConnectorsRead, handle: c.wecomTagsPage,
				nav: &navEntry{Section: section, Label: "wecom.nav.tags", Icon: "tag"}},
			route{pattern: "POST /connectors/wecom/tags/{id}/bind", perm: tenant.PermConnectorsManage, handle: c.wecomTagBind},
			route{pattern: "POST /connectors/wecom/tags/{id}/unbind", perm: tenant.PermConnectorsManage, handle: c.wecomTagUnbind},
		)
	}
	return append(rs,
		route{pattern: "GET /connectors/wecom/events", perm: tenant.PermConnectorsRead, handle: c.wecomEventsPage,
			nav: &navEntry{Section: section, Label: "wecom.nav.events", Icon: "inbox-alert"}},
		route{pattern: "GET /connectors/wecom/events/{id}", perm: tenant.PermConnectorsRead, handle: c.wecomEventPage},
		route{pattern: "POST /connectors/wecom/events/{id}/retry", perm: tenant.PermConnectorsManage, handle: c.wecomEventRetry},
	)
}

// wecomRedirect ends a successful action with a notice on the page at to:
// a 303 for a form, HX-Redirect for htmx (which asked after a confirmation).
func (c *Console) wecomRedirect(w http.ResponseWriter, r *http.Request, to, flashKey string) {
	if !isHTMX(r) {
		c.redirectWithFlash(w, r, to, flashKey)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: flashKey, Path: "/", HttpOnly: true,
		Secure: c.deps.Secure, SameSite: http.SameSiteLaxMode, MaxAge: 60})
	w.Header().Set("HX-Redirect", to)
	w.WriteHeader(http.StatusOK)
}

// wecomPathID reads the {id} of a WeCom page; what names the thing for the 404.
func wecomPathID(raw, what string) (int64, error) {
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.NotFoundf(what, "no such %s", strings.ReplaceAll(what, "_", " "))
	}
	return id, nil
}

// wecomExplanation is a WeCom error as the console shows it: the code, and
// what happened and what to do in the user's language. Text is the
// catalogue's explanation of the code when it has one, else WeCom's own
// (the connector's English explanation); Detail is the connector's message
// shown beside a translated one, for support.
type wecomExplanation struct {
	Code   int
	Text   string
	Fix    string
	Detail string
}

// explainWeCom translates a WeCom error code with the connector's message
// and fix as the fallback. The connector reports "WeCom unreachable" as code
// -1 (WeCom's own "busy"), told apart by its message.
func (c *Console) explainWeCom(lang string, code int, msg, fix string) wecomExplanation {
	out := wecomExplanation{Code: code, Text: msg, Fix: fix}
	if code == 0 {
		return out
	}
	// The key of the error the code is as a domain error (error.wecom_60020).
	key := "error." + errs.CodeOf(&wecom.APIError{Code: code})
	if code == -1 && strings.Contains(msg, "could not reach") {
		key = "wecom.unreachable"
	}
	if s, ok := c.cat.lookup(lang, key); ok {
		out.Text, out.Fix, out.Detail = s, "", strings.TrimSpace(msg+" "+fix)
		// WeCom's explanation again adds nothing; a message that says more
		// (which API refused, the network error) is kept for support.
		if out.Detail == s || out.Detail == wecom.Explain(code) {
			out.Detail = ""
		}
	}
	return out
}
