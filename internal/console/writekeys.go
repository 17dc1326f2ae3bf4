package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/page"
)

// writeKeysPage is the data of Data sources → Write keys.
type writeKeysPage struct {
	Rows    []writeKeyRow
	Next    string
	Later   bool
	Name    string // the create form's value after an error
	Err     formError
	Created *event.WriteKey // the key just created, shown with how to use it
	Origin  string          // this server, for the SDK snippets
	Scheme  string          // http or https, for analytics.js
	Host    string          // host[:port], for analytics.js
}

// writeKeyRow is one row of the keys table; htmx swaps it after a revoke.
type writeKeyRow struct {
	Key  event.WriteKey
	CSRF string
	Loc  *time.Location
}

func (c *Console) writeKeysData(r *http.Request, s *signedIn, cursor string) (writeKeysPage, error) {
	pg, err := c.deps.Events.WriteKeys(r.Context(), s.Principal.TenantID, page.Request{Cursor: cursor})
	if err != nil {
		if isUserError(err) {
			return writeKeysPage{}, err
		}
		return writeKeysPage{}, fmt.Errorf("console: write keys: %w", err)
	}
	d := writeKeysPage{Next: pg.Next, Later: cursor != "", Origin: c.origin(r), Host: r.Host}
	d.Scheme, _, _ = strings.Cut(d.Origin, ":")
	for _, k := range pg.Items {
		d.Rows = append(d.Rows, writeKeyRow{Key: k, CSRF: s.Session.CSRFToken, Loc: s.Workspace.Location()})
	}
	return d, nil
}

func (c *Console) writeKeysPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.writeKeysData(r, s, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "writekeys", c.pageView(w, r, s, "writekeys.title", d))
	return nil
}

// writeKeyCreate creates a write key and shows how to send events with it.
// Write keys ship inside web pages and apps, so they are not secret: the
// list shows them too.
func (c *Console) writeKeyCreate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	name := r.PostFormValue("name")
	k, err := c.deps.Events.CreateWriteKey(r.Context(), s.Principal, name)
	if err != nil && !isUserError(err) {
		return err
	}
	d, lerr := c.writeKeysData(r, s, "")
	if lerr != nil {
		return lerr
	}
	status := http.StatusOK
	if err != nil {
		d.Name, d.Err, status = name, c.cat.formErrorFor(s.Lang, err, "name"), statusOf(errs.KindOf(err))
	} else {
		d.Created = &k
		c.log.InfoContext(r.Context(), "console: write key created", "tenant_id", s.Principal.TenantID, "key_id", k.ID, "user_id", s.User.ID)
	}
	c.render(w, r, status, "writekeys", c.pageView(w, r, s, "writekeys.title", d))
	return nil
}

// writeKeyRevoke stops a write key at once; SDKs using it get 401.
func (c *Console) writeKeyRevoke(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errs.NotFoundf("write_key", "no such write key")
	}
	k, err := c.deps.Events.RevokeWriteKey(r.Context(), s.Principal, id)
	if err != nil {
		return err
	}
	c.log.InfoContext(r.Context(), "console: write key revoked", "tenant_id", s.Principal.TenantID, "key_id", k.ID, "user_id", s.User.ID)
	if !isHTMX(r) {
		c.redirectWithFlash(w, r, "/write-keys", "flash.writekey_revoked")
		return nil
	}
	row := writeKeyRow{Key: k, CSRF: s.Session.CSRFToken, Loc: s.Workspace.Location()}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "writekeys", "writekey_row", row)
	return nil
}
