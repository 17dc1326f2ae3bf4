package console

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// usersPage is the data of Settings → Users.
type usersPage struct {
	Rows   []userRow
	Roles  []tenant.Role // the roles the signed-in user may grant
	Form   newUserForm   // the add form's values after a failed submission
	Err    formError     // the add form's error
	RowErr string        // a row action's error, without htmx: why, translated
}

// newUserForm keeps what was typed into the add form (never the password).
type newUserForm struct {
	Email, Name string
	Role        tenant.Role
}

// userRow is one row of the users table; htmx swaps it after an action.
type userRow struct {
	User      tenant.User
	Self      bool
	CanManage bool // the signed-in user may change this user's role and status
	Roles     []tenant.Role
	CSRF      string
	Loc       *time.Location
	Saved     bool   // an action on the row just succeeded
	Err       string // an action on the row just failed: why, translated
}

// grantableRoles are the roles p may give others: at most p's own.
func grantableRoles(p tenant.Principal) []tenant.Role {
	var out []tenant.Role
	for _, r := range tenant.Roles() {
		if p.Role.Covers(r) {
			out = append(out, r)
		}
	}
	return out
}

func (c *Console) userRowFor(s *signedIn, u tenant.User) userRow {
	self := u.ID == s.User.ID
	return userRow{
		User:      u,
		Self:      self,
		CanManage: !self && s.Principal.Role.Covers(u.Role),
		Roles:     grantableRoles(s.Principal),
		CSRF:      s.Session.CSRFToken,
		Loc:       s.Workspace.Location(),
	}
}

func (c *Console) usersData(r *http.Request, s *signedIn) (usersPage, error) {
	users, err := c.deps.Tenant.Users(r.Context(), s.Principal.TenantID)
	if err != nil {
		return usersPage{}, fmt.Errorf("console: users: %w", err)
	}
	d := usersPage{Roles: grantableRoles(s.Principal), Form: newUserForm{Role: tenant.RoleOperator}}
	for _, u := range users {
		d.Rows = append(d.Rows, c.userRowFor(s, u))
	}
	return d, nil
}

func (c *Console) usersPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.usersData(r, s)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "settings_users", c.pageView(w, r, s, "users.title", d))
	return nil
}

// userAdd adds a user with an initial password the admin passes on.
func (c *Console) userAdd(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	form := newUserForm{Email: r.PostFormValue("email"), Name: r.PostFormValue("name"), Role: tenant.Role(r.PostFormValue("role"))}
	u, err := c.deps.Tenant.AddUser(r.Context(), s.Principal, tenant.NewUser{
		Email: form.Email, Name: form.Name, Password: r.PostFormValue("password"), Role: form.Role,
	})
	if err == nil {
		c.redirectWithFlash(w, r, fmt.Sprintf("/settings/users#user-%d", u.ID), "flash.user_added")
		return nil
	}
	if !isUserError(err) {
		return err
	}
	d, lerr := c.usersData(r, s)
	if lerr != nil {
		return lerr
	}
	d.Form, d.Err = form, c.cat.formErrorFor(s.Lang, err, "email", "name", "role", "password")
	c.render(w, r, statusOf(errs.KindOf(err)), "settings_users", c.pageView(w, r, s, "users.title", d))
	return nil
}

func (c *Console) userSetRole(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	role := tenant.Role(r.PostFormValue("role"))
	return c.updateUserRow(w, r, s, tenant.UserUpdate{Role: &role})
}

func (c *Console) userDisable(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	disabled := true
	return c.updateUserRow(w, r, s, tenant.UserUpdate{Disabled: &disabled})
}

func (c *Console) userEnable(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	disabled := false
	return c.updateUserRow(w, r, s, tenant.UserUpdate{Disabled: &disabled})
}

// updateUserRow applies a row action. For htmx it answers with the row as it
// now is (with the outcome beside it); without JavaScript, with the page.
func (c *Console) updateUserRow(w http.ResponseWriter, r *http.Request, s *signedIn, upd tenant.UserUpdate) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errs.NotFoundf("user", "no such user")
	}
	_, err = c.deps.Tenant.UpdateUser(r.Context(), s.Principal, id, upd)
	if err != nil && !isUserError(err) {
		return err
	}
	if !isHTMX(r) {
		if err == nil {
			c.redirectWithFlash(w, r, fmt.Sprintf("/settings/users#user-%d", id), "flash.user_updated")
			return nil
		}
		d, lerr := c.usersData(r, s)
		if lerr != nil {
			return lerr
		}
		d.RowErr = c.cat.errorText(s.Lang, err)
		c.render(w, r, statusOf(errs.KindOf(err)), "settings_users", c.pageView(w, r, s, "users.title", d))
		return nil
	}
	u, uerr := c.deps.Tenant.User(r.Context(), s.Principal.TenantID, id)
	if uerr != nil {
		return uerr
	}
	row := c.userRowFor(s, u)
	status := http.StatusOK
	if err != nil {
		row.Err, status = c.cat.errorText(s.Lang, err), statusOf(errs.KindOf(err))
	} else {
		row.Saved = true
	}
	c.renderTemplate(w, r, status, s.Lang, "settings_users", "user_row", row)
	return nil
}
