package console

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// commonTimezones are the IANA zones offered in the workspace form, brands'
// home markets first. A workspace on another zone keeps it (it is added to
// the list).
func commonTimezones() []string {
	return []string{
		"Asia/Shanghai", "Asia/Hong_Kong", "Asia/Macau", "Asia/Taipei", "Asia/Singapore", "Asia/Kuala_Lumpur",
		"Asia/Bangkok", "Asia/Jakarta", "Asia/Tokyo", "Asia/Seoul", "Asia/Dubai", "Australia/Sydney",
		"Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago",
		"America/Los_Angeles", "UTC",
	}
}

// zoneOption is one entry of the time zone list.
type zoneOption struct {
	ID     string
	Offset string // "UTC+08:00" now
}

// workspacePage is the data of Settings → Workspace.
type workspacePage struct {
	Workspace tenant.Workspace
	CanEdit   bool
	Name      string // the form's values (the submitted ones after an error)
	Timezone  string
	Zones     []zoneOption
	Err       formError
}

func (c *Console) workspacePage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d := c.workspaceData(s)
	c.render(w, r, http.StatusOK, "settings_workspace", c.pageView(w, r, s, "workspace.title", d))
	return nil
}

func (c *Console) workspaceData(s *signedIn) workspacePage {
	ws := s.Workspace
	d := workspacePage{Workspace: ws, CanEdit: s.Principal.Can(tenant.PermWorkspaceManage), Name: ws.Name, Timezone: ws.Timezone}
	ids := commonTimezones()
	if !slices.Contains(ids, ws.Timezone) {
		ids = append([]string{ws.Timezone}, ids...)
	}
	now := time.Now()
	for _, id := range ids {
		loc, err := time.LoadLocation(id)
		if err != nil {
			continue
		}
		_, off := now.In(loc).Zone()
		sign := '+'
		if off < 0 {
			sign, off = '-', -off
		}
		d.Zones = append(d.Zones, zoneOption{ID: id, Offset: fmt.Sprintf("UTC%c%02d:%02d", sign, off/3600, off%3600/60)})
	}
	return d
}

// workspaceSave changes the workspace's name and time zone.
func (c *Console) workspaceSave(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	name, tz := r.PostFormValue("name"), r.PostFormValue("timezone")
	_, err := c.deps.Tenant.UpdateWorkspace(r.Context(), s.Principal, tenant.WorkspaceUpdate{Name: &name, Timezone: &tz})
	if err == nil {
		c.redirectWithFlash(w, r, "/settings/workspace", "flash.workspace_saved")
		return nil
	}
	if !isUserError(err) {
		return err
	}
	d := c.workspaceData(s)
	d.Name, d.Timezone, d.Err = name, tz, c.cat.formErrorFor(s.Lang, err, "name", "timezone")
	c.render(w, r, statusOf(errs.KindOf(err)), "settings_workspace", c.pageView(w, r, s, "workspace.title", d))
	return nil
}
