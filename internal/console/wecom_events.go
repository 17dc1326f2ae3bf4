package console

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// wecomEventsPageSize is how many callbacks one page of the log shows.
const wecomEventsPageSize = 50

// wecomStatuses are the event log's filters, in the order shown.
var wecomStatuses = []wecom.InboxStatus{wecom.InboxPending, wecom.InboxDone, wecom.InboxFailed, wecom.InboxIgnored}

// wecomEventsPage is the data of WeCom → Callback log.
type wecomEventsPage struct {
	Status    string // the filter; "" for every status
	Statuses  []wecom.InboxStatus
	Rows      []wecomEventRow
	Next      string
	Later     bool
	CanManage bool
	Back      string // this page's URL, for a retry to come back to
	Loc       *time.Location
}

// FilterURL is the log filtered by status ("" for all).
func (d wecomEventsPage) FilterURL(status string) string { return wecomEventsURL(status, "") }

// NextURL is the next page, keeping the filter.
func (d wecomEventsPage) NextURL() string { return wecomEventsURL(d.Status, d.Next) }

// FirstURL is the first page, keeping the filter.
func (d wecomEventsPage) FirstURL() string { return wecomEventsURL(d.Status, "") }

func wecomEventsURL(status, cursor string) string {
	v := url.Values{}
	if status != "" {
		v.Set("status", status)
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if len(v) == 0 {
		return "/connectors/wecom/events"
	}
	return "/connectors/wecom/events?" + v.Encode()
}

func (c *Console) wecomEventsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	q := r.URL.Query()
	status := q.Get("status")
	if !slices.Contains(wecomStatuses, wecom.InboxStatus(status)) {
		status = ""
	}
	cursor := q.Get("cursor")
	pg, err := c.deps.WeCom.Inbox(r.Context(), s.Principal.TenantID, wecom.InboxQuery{Status: wecom.InboxStatus(status)},
		page.Request{Cursor: cursor, Limit: wecomEventsPageSize})
	if err != nil {
		return err
	}
	d := wecomEventsPage{Status: status, Statuses: wecomStatuses, Next: pg.Next, Later: cursor != "",
		CanManage: s.Principal.Can(tenant.PermConnectorsManage), Back: r.URL.RequestURI(), Loc: s.Workspace.Location()}
	for _, e := range pg.Items {
		d.Rows = append(d.Rows, wecomEventRow{InboxEntry: e, ErrorText: c.wecomInboxError(s.Lang, e.Error)})
	}
	c.render(w, r, http.StatusOK, "wecom_events", c.pageView(w, r, s, "wecom.events.title", d))
	return nil
}

// wecomEventRow is one callback of the log.
type wecomEventRow struct {
	wecom.InboxEntry
	ErrorText string // the error explained in the user's language, when it is WeCom's
}

// wecomErrcodeRE finds WeCom's code in the error an inbox event recorded.
var wecomErrcodeRE = regexp.MustCompile(`errcode (-?\d+)`)

// wecomInboxError explains the WeCom error code an event's error names, in
// lang, when the catalogue has it; "" otherwise (the error is shown as
// recorded).
func (c *Console) wecomInboxError(lang, text string) string {
	m := wecomErrcodeRE.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	code, err := strconv.Atoi(m[1])
	if err != nil {
		return ""
	}
	return c.explainWeCom(lang, code, "", "").Text
}

// wecomEventPage is the data of one callback: what WeCom sent (decrypted,
// pretty-printed) and what processing made of it.
type wecomEventPage struct {
	E         wecom.InboxEntry
	ErrorText string // E.Error explained in the user's language, when it is WeCom's
	Payload   string
	CanRetry  bool
	CanManage bool
	Loc       *time.Location
}

func (c *Console) wecomEventPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := wecomPathID(r.PathValue("id"), "wecom_event")
	if err != nil {
		return err
	}
	e, err := c.deps.WeCom.InboxEntry(r.Context(), s.Principal.TenantID, id)
	if err != nil {
		return err
	}
	d := wecomEventPage{E: e, ErrorText: c.wecomInboxError(s.Lang, e.Error), Payload: wecomPrettyPayload(e.Payload), CanRetry: wecomRetryable(e),
		CanManage: s.Principal.Can(tenant.PermConnectorsManage), Loc: s.Workspace.Location()}
	v := c.pageView(w, r, s, "wecom.event.title", d)
	v.Heading = c.cat.text(s.Lang, "wecom.event.heading", e.ID)
	c.render(w, r, http.StatusOK, "wecom_event", v)
	return nil
}

// retryable reports whether an event may be put back in the queue: one
// that failed (an unreadable message would only fail again).
func wecomRetryable(e wecom.InboxEntry) bool {
	return e.Status == wecom.InboxFailed && e.Kind != "unreadable"
}

// wecomEventRetry puts a failed event back in the queue; the worker takes
// it at once. The browser goes back to the page it came from.
func (c *Console) wecomEventRetry(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := wecomPathID(r.PathValue("id"), "wecom_event")
	if err != nil {
		return err
	}
	if _, err := c.deps.WeCom.Retry(r.Context(), s.Principal, id); err != nil {
		return err
	}
	c.log.InfoContext(r.Context(), "console: wecom event retried", "tenant_id", s.Principal.TenantID, "event", id, "user_id", s.User.ID)
	to := "/connectors/wecom/events/" + strconv.FormatInt(id, 10)
	if back := localPath(r.PostFormValue("back")); strings.HasPrefix(back, "/connectors/wecom/events") {
		to = back
	}
	c.wecomRedirect(w, r, to, "flash.wecom.event_retried")
	return nil
}

// wecomRedacted replaces values a stored callback carries that act as
// credentials: a WelcomeCode lets its holder send the customer a welcome
// message.
const wecomRedacted = "******"

// isRedacted reports the fields of a callback whose values are not shown.
func wecomIsRedacted(name string) bool { return strings.EqualFold(name, "WelcomeCode") }

// prettyPayload indents a decrypted callback (XML or JSON) for reading, with
// credentials wecomRedacted; a payload that does not parse is shown as it is.
func wecomPrettyPayload(raw string) string {
	trimmed := strings.TrimSpace(raw)
	switch {
	case strings.HasPrefix(trimmed, "<"):
		if s, err := wecomPrettyXML(trimmed); err == nil {
			return s
		}
	case strings.HasPrefix(trimmed, "{"):
		if s, err := wecomPrettyJSON(trimmed); err == nil {
			return s
		}
	}
	return raw
}

func wecomPrettyXML(raw string) (string, error) {
	dec := xml.NewDecoder(strings.NewReader(raw))
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	var open []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			open = append(open, t.Name.Local)
		case xml.EndElement:
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) == 0 {
				continue // the original indentation
			}
			if len(open) > 0 && wecomIsRedacted(open[len(open)-1]) {
				tok = xml.CharData(wecomRedacted)
			}
		case xml.ProcInst, xml.Directive:
			continue
		}
		if err := enc.EncodeToken(xml.CopyToken(tok)); err != nil {
			return "", err
		}
	}
	if err := enc.Flush(); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func wecomPrettyJSON(raw string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	wecomRedactJSON(v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSpace(buf.String()), nil
}

func wecomRedactJSON(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if wecomIsRedacted(k) {
				t[k] = wecomRedacted
				continue
			}
			wecomRedactJSON(x)
		}
	case []any:
		for _, x := range t {
			wecomRedactJSON(x)
		}
	}
}
