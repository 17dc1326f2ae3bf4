package console

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// apiKeysPage is the data of Settings → API keys.
type apiKeysPage struct {
	Rows    []apiKeyRow
	Next    string // cursor of the next page; "" on the last
	Later   bool   // this is not the first page
	Roles   []tenant.Role
	Form    newKeyForm
	Err     formError
	Created *createdKey // the key just created, shown this once
	Origin  string      // this server as the browser reached it, for the example request
}

// newKeyForm keeps what was typed into the create form.
type newKeyForm struct {
	Name string
	Role tenant.Role
}

// createdKey is a new key with its plaintext, which is never shown again.
type createdKey struct {
	Key   tenant.APIKey
	Plain string
}

// apiKeyRow is one row of the keys table; htmx swaps it after a revoke.
type apiKeyRow struct {
	Key  tenant.APIKey
	CSRF string
	Loc  *time.Location
}

// keyRoles are the roles a key may have: at most the creator's, never owner.
func keyRoles(p tenant.Principal) []tenant.Role {
	var out []tenant.Role
	for _, r := range grantableRoles(p) {
		if r != tenant.RoleOwner {
			out = append(out, r)
		}
	}
	return out
}

func (c *Console) apiKeysData(r *http.Request, s *signedIn, cursor string) (apiKeysPage, error) {
	pg, err := c.deps.Tenant.APIKeys(r.Context(), s.Principal.TenantID, page.Request{Cursor: cursor})
	if err != nil {
		if isUserError(err) {
			return apiKeysPage{}, err
		}
		return apiKeysPage{}, fmt.Errorf("console: API keys: %w", err)
	}
	d := apiKeysPage{Next: pg.Next, Later: cursor != "", Roles: keyRoles(s.Principal), Form: newKeyForm{Role: tenant.RoleOperator},
		Origin: c.origin(r)}
	for _, k := range pg.Items {
		d.Rows = append(d.Rows, apiKeyRow{Key: k, CSRF: s.Session.CSRFToken, Loc: s.Workspace.Location()})
	}
	return d, nil
}

func (c *Console) apiKeysPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.apiKeysData(r, s, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "settings_apikeys", c.pageView(w, r, s, "apikeys.title", d))
	return nil
}

// apiKeyCreate creates a key and shows it once. The page is the POST's own
// response (not a redirect), so the plaintext never travels in a URL or a
// cookie and is gone once the page is left.
func (c *Console) apiKeyCreate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	form := newKeyForm{Name: r.PostFormValue("name"), Role: tenant.Role(r.PostFormValue("role"))}
	k, plain, err := c.deps.Tenant.CreateAPIKey(r.Context(), s.Principal, form.Name, form.Role)
	if err != nil && !isUserError(err) {
		return err
	}
	d, lerr := c.apiKeysData(r, s, "")
	if lerr != nil {
		return lerr
	}
	status := http.StatusOK
	if err != nil {
		d.Form, d.Err, status = form, c.cat.formErrorFor(s.Lang, err, "name", "role"), statusOf(errs.KindOf(err))
	} else {
		d.Created = &createdKey{Key: k, Plain: plain}
		c.log.InfoContext(r.Context(), "console: API key created", "tenant_id", s.Principal.TenantID, "key_id", k.ID, "user_id", s.User.ID)
	}
	c.render(w, r, status, "settings_apikeys", c.pageView(w, r, s, "apikeys.title", d))
	return nil
}

// apiKeyRevoke revokes a key at once.
func (c *Console) apiKeyRevoke(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errs.NotFoundf("api_key", "no such API key")
	}
	k, err := c.deps.Tenant.RevokeAPIKey(r.Context(), s.Principal, id)
	if err != nil {
		return err
	}
	c.log.InfoContext(r.Context(), "console: API key revoked", "tenant_id", s.Principal.TenantID, "key_id", k.ID, "user_id", s.User.ID)
	if !isHTMX(r) {
		c.redirectWithFlash(w, r, "/settings/api-keys", "flash.apikey_revoked")
		return nil
	}
	row := apiKeyRow{Key: k, CSRF: s.Session.CSRFToken, Loc: s.Workspace.Location()}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "settings_apikeys", "apikey_row", row)
	return nil
}
