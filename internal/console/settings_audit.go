package console

import (
	"fmt"
	"net/http"

	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// auditPage is the data of Settings → Audit log.
type auditPage struct {
	Entries []tenant.AuditEntry
	Next    string // cursor of the next (older) page; "" on the last
	Later   bool   // this is not the first page
}

// auditPageSize is how many entries one page shows.
const auditPageSize = 50

// auditPage lists the audit log, newest first, a page at a time.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	cursor := r.URL.Query().Get("cursor")
	pg, err := c.deps.Tenant.AuditLog(r.Context(), s.Principal.TenantID, page.Request{Cursor: cursor, Limit: auditPageSize})
	if err != nil {
		if isUserError(err) {
			return err
		}
		return fmt.Errorf("console: audit log: %w", err)
	}
	d := auditPage{Entries: pg.Items, Next: pg.Next, Later: cursor != ""}
	c.render(w, r, http.StatusOK, "settings_audit", c.pageView(w, r, s, "audit.title", d))
	return nil
}
