package console

import (
	"fmt"
	"net/http"

	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/page"
)

// ingestErrorsPageSize is how many refusals one page lists.
const ingestErrorsPageSize = 50

// ingestErrorsPage is the data of Data sources → Ingest errors.
type ingestErrorsPage struct {
	Errors []event.IngestError
	Next   string
	Later  bool
}

// ingestErrorsPage lists what ingest refused, newest first, so that nothing
// an SDK sent disappears without a trace.
func (c *Console) ingestErrorsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	cursor := r.URL.Query().Get("cursor")
	pg, err := c.deps.Events.IngestErrors(r.Context(), s.Principal.TenantID, page.Request{Cursor: cursor, Limit: ingestErrorsPageSize})
	if err != nil {
		if isUserError(err) {
			return err
		}
		return fmt.Errorf("console: ingest errors: %w", err)
	}
	d := ingestErrorsPage{Errors: pg.Items, Next: pg.Next, Later: cursor != ""}
	c.render(w, r, http.StatusOK, "ingest_errors", c.pageView(w, r, s, "ingesterrors.title", d))
	return nil
}
