package staff

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// StoreByCode returns the store with the given code, as orders and imports
// name stores by the brand's own codes rather than Siyu's ids.
func (s *Service) StoreByCode(ctx context.Context, tenantID int64, code string) (Store, error) {
	var st Store
	var created int64
	err := s.db.QueryRowContext(ctx,
		`SELECT id, code, name, province, city, address, created_at FROM stores WHERE tenant_id = $1 AND code = $2`, tenantID, code).
		Scan(&st.ID, &st.Code, &st.Name, &st.Province, &st.City, &st.Address, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Store{}, errs.NotFoundf("store", "no store has code %q", code)
	}
	if err != nil {
		return Store{}, fmt.Errorf("staff: unable to fetch store %q: %w", code, err)
	}
	st.CreatedAt = db.FromMillis(created)
	return st, nil
}
