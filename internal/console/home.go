package console

import (
	"fmt"
	"net/http"

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
	if len(d.Steps) == 0 && p.Can(tenant.PermAuditRead) {
		// Read-only roles have nothing to set up; point them at what they may read.
		d.Steps = append(d.Steps, step{Key: "home.step.audit", Icon: "audit", Href: "/settings/audit"})
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
