package console

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// homePage is the overview: the workspace at a glance and what to do next.
type homePage struct {
	Users      int // -1 when the user may not see the team
	ActiveKeys int // -1 when the user may not see API keys
	Steps      []step
}

// step is one card of the getting-started list.
type step struct {
	Key  string // catalogue prefix: KEY.title, KEY.text, KEY.action
	Icon string
	Href string
	Done bool
}

// home shows the overview. Its cards only point at pages the user may open.
func (c *Console) home(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	p := s.Principal
	d := homePage{Users: -1, ActiveKeys: -1}
	// Getting data in comes first: without customers nothing else works.
	if c.deps.Imports != nil && c.deps.Customers != nil && p.Can(tenant.PermCustomersWrite) {
		some, err := c.deps.Customers.List(ctx, p.TenantID, customer.Query{}, page.Request{Limit: 1})
		if err != nil {
			return fmt.Errorf("console: home: %w", err)
		}
		d.Steps = append(d.Steps, step{Key: "home.step.import", Icon: "upload", Href: "/imports", Done: len(some.Items) > 0})
	}
	if c.deps.Events != nil && p.Can(tenant.PermAPIKeysManage) {
		keys, err := c.deps.Events.WriteKeys(ctx, p.TenantID, page.Request{Limit: page.MaxLimit})
		if err != nil {
			return fmt.Errorf("console: home: %w", err)
		}
		active := slices.ContainsFunc(keys.Items, func(k event.WriteKey) bool { return k.RevokedAt.IsZero() })
		d.Steps = append(d.Steps, step{Key: "home.step.writekey", Icon: "plug", Href: "/write-keys", Done: active})
	}
	if p.Can(tenant.PermAPIKeysManage) {
		keys, err := c.deps.Tenant.APIKeys(ctx, p.TenantID, page.Request{Limit: page.MaxLimit})
		if err != nil {
			return fmt.Errorf("console: home: %w", err)
		}
		d.ActiveKeys = 0
		for _, k := range keys.Items {
			if !k.Revoked() {
				d.ActiveKeys++
			}
		}
		d.Steps = append(d.Steps, step{Key: "home.step.apikey", Icon: "key", Href: "/settings/api-keys", Done: d.ActiveKeys > 0})
	}
	if p.Can(tenant.PermUsersManage) {
		users, err := c.deps.Tenant.Users(ctx, p.TenantID)
		if err != nil {
			return fmt.Errorf("console: home: %w", err)
		}
		d.Users = len(users)
		d.Steps = append(d.Steps, step{Key: "home.step.team", Icon: "users", Href: "/settings/users", Done: len(users) > 1})
	}
	if p.Can(tenant.PermWorkspaceManage) {
		d.Steps = append(d.Steps, step{Key: "home.step.workspace", Icon: "building", Href: "/settings/workspace"})
	}
	if len(d.Steps) == 0 {
		// Read-only roles have nothing to set up; point them at what they may read.
		if c.deps.Customers != nil && p.Can(tenant.PermCustomersRead) {
			d.Steps = append(d.Steps, step{Key: "home.step.customers", Icon: "contacts", Href: "/customers"})
		}
		if p.Can(tenant.PermAuditRead) {
			d.Steps = append(d.Steps, step{Key: "home.step.audit", Icon: "audit", Href: "/settings/audit"})
		}
	}
	c.render(w, r, http.StatusOK, "home", c.pageView(w, r, s, "home.title", d))
	return nil
}

// settingsIndex sends /settings to the first settings page the user may open.
func (c *Console) settingsIndex(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	for _, sec := range c.navFor(s.Principal, r.URL.Path) {
		if sec.Label == "nav.settings" && len(sec.Items) > 0 {
			http.Redirect(w, r, sec.Items[0].Path, http.StatusSeeOther)
			return nil
		}
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}
