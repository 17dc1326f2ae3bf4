package console

import (
	"fmt"
	"net/http"
	"time"

	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
)

// wecomStaffPageSize is how many staff members one page reads; those
// without a WeCom user id are left out, so a page may show fewer.
const wecomStaffPageSize = page.MaxLimit

// wecomStaffPage is the data of WeCom → Staff: the members WeCom's directory
// brought, with how many customers each serves now.
type wecomStaffPage struct {
	Rows  []wecomStaffRow
	Next  string
	Later bool
	Loc   *time.Location
}

// wecomStaffRow is one staff member with their store and customer count.
type wecomStaffRow struct {
	staff.Member
	Store     string
	Customers int64 // current relations: active or half
}

func (c *Console) wecomStaffPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	cursor := r.URL.Query().Get("cursor")
	rows, next, err := c.wecomStaff(r, s.Principal.TenantID, page.Request{Cursor: cursor, Limit: wecomStaffPageSize})
	if err != nil {
		return err
	}
	d := wecomStaffPage{Rows: rows, Next: next, Later: cursor != "", Loc: s.Workspace.Location()}
	c.render(w, r, http.StatusOK, "wecom_staff", c.pageView(w, r, s, "wecom.staff.title", d))
	return nil
}

// wecomStaff reads a page of staff and keeps those with a WeCom user id,
// with their store's name and current customer count.
func (c *Console) wecomStaff(r *http.Request, tenantID int64, req page.Request) ([]wecomStaffRow, string, error) {
	ctx := r.Context()
	pg, err := c.deps.Staff.Members(ctx, tenantID, req)
	if err != nil {
		if isUserError(err) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("console: wecom staff: %w", err)
	}
	counts, err := c.deps.Staff.CustomerCounts(ctx, tenantID)
	if err != nil {
		return nil, "", fmt.Errorf("console: wecom staff: %w", err)
	}
	var stores map[int64]string
	var rows []wecomStaffRow
	for _, m := range pg.Items {
		if m.WeComUserID == "" {
			continue
		}
		if m.StoreID != 0 && stores == nil {
			if stores, err = c.wecomStoreNames(r, tenantID); err != nil {
				return nil, "", err
			}
		}
		rows = append(rows, wecomStaffRow{Member: m, Store: stores[m.StoreID], Customers: counts[m.ID]})
	}
	return rows, pg.Next, nil
}

// storeNames maps a workspace's store ids to names (brands have tens to
// hundreds of stores).
func (c *Console) wecomStoreNames(r *http.Request, tenantID int64) (map[int64]string, error) {
	out := map[int64]string{}
	req := page.Request{Limit: page.MaxLimit}
	for range 50 {
		pg, err := c.deps.Staff.Stores(r.Context(), tenantID, req)
		if err != nil {
			return nil, fmt.Errorf("console: wecom staff: stores: %w", err)
		}
		for _, st := range pg.Items {
			out[st.ID] = st.Name
		}
		if pg.Next == "" {
			break
		}
		req.Cursor = pg.Next
	}
	return out, nil
}
