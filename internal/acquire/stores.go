package acquire

import (
	"context"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// StoreCodesInput bulk-creates store codes (门店活码): one code per store,
// whose pool is the store's staff with a WeCom userid, in turn.
type StoreCodesInput struct {
	StoreIDs []int64 `json:"store_ids,omitempty" doc:"The stores; empty: every store."`
	// Config is shared by the codes; its staff list is ignored (each store's
	// own staff form the pool). DailyCap applies to each staff member.
	Config   CodeConfig `json:"config"`
	DailyCap *int       `json:"daily_cap,omitempty" doc:"Each staff member's daily cap; omitted: none."`
}

// Store code results.
const (
	StoreCreated = "created"
	StoreSkipped = "skipped"  // the store has a code already
	StoreNoStaff = "no_staff" // no active staff member of the store has a WeCom userid
	StoreFailed  = "failed"
)

// StoreCodeResult is what happened for one store.
type StoreCodeResult struct {
	StoreID   int64  `json:"store_id"`
	StoreCode string `json:"store_code"`
	StoreName string `json:"store_name"`
	Status    string `json:"status" enum:"created,skipped,no_staff,failed"`
	CodeID    int64  `json:"code_id,omitempty"`
	Error     string `json:"error,omitempty"`
}

type storeRow struct {
	id         int64
	code, name string
	codeID     int64
	staff      []string
}

// CreateStoreCodes creates a code for each store that has none. Re-running
// it skips the stores that have one, so a run cut short is resumed by
// running it again. progress, when set, is told after each store.
func (s *Service) CreateStoreCodes(ctx context.Context, p tenant.Principal, in StoreCodesInput, progress func(done, total int)) ([]StoreCodeResult, error) {
	if in.DailyCap != nil && *in.DailyCap <= 0 {
		return nil, errs.Field("daily_cap", "invalid_cap", "the daily cap must be at least 1, not %d (leave it empty for no cap)", *in.DailyCap)
	}
	stores, err := s.storeRows(ctx, p.TenantID, in.StoreIDs)
	if err != nil {
		return nil, err
	}
	out := make([]StoreCodeResult, 0, len(stores))
	for i, st := range stores {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		r := StoreCodeResult{StoreID: st.id, StoreCode: st.code, StoreName: st.name}
		switch {
		case st.codeID != 0:
			r.Status, r.CodeID = StoreSkipped, st.codeID
		case len(st.staff) == 0:
			r.Status, r.Error = StoreNoStaff, "no active staff member of this store has a WeCom userid"
		default:
			cfg := in.Config
			cfg.Mode = ModeRoundRobin
			cfg.Staff = nil
			for _, u := range st.staff {
				cfg.Staff = append(cfg.Staff, StaffRule{UserID: u, DailyCap: in.DailyCap})
			}
			state := "store_" + st.code
			if utf8.RuneCountInString(state) > MaxStateLen {
				state = "store_" + strconv.FormatInt(st.id, 10)
			}
			c, err := s.Create(ctx, p, CodeInput{Name: cut(st.name, maxNameLen-4) + " 门店码", Source: SourceStore, State: state, StoreID: st.id, Config: cfg})
			if errs.CodeOf(err) == "state_taken" {
				c, err = s.Create(ctx, p, CodeInput{Name: cut(st.name, maxNameLen-4) + " 门店码", Source: SourceStore,
					State: "store_" + strconv.FormatInt(st.id, 10), StoreID: st.id, Config: cfg})
			}
			if err != nil {
				r.Status, r.Error = StoreFailed, errMessage(err)
				if e, ok := errs.As(err); !ok || e.Kind == errs.Internal {
					s.log.Error("acquire: store code failed", "store", st.id, "err", err)
				}
			} else {
				r.Status, r.CodeID = StoreCreated, c.ID
			}
		}
		out = append(out, r)
		if progress != nil {
			progress(i+1, len(stores))
		}
	}
	return out, nil
}

func errMessage(err error) string {
	if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
		return e.Message
	}
	return "an internal error occurred; see the server log"
}

// storeRows lists the stores with their active code and their staff.
func (s *Service) storeRows(ctx context.Context, tenantID int64, only []int64) ([]storeRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT st.id, st.code, st.name, coalesce(ac.id, 0) FROM stores st
		LEFT JOIN acquire_codes ac ON ac.tenant_id = st.tenant_id AND ac.store_id = st.id AND ac.status = 'active'
		WHERE st.tenant_id = $1 ORDER BY st.id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("acquire: unable to list stores: %w", err)
	}
	want := map[int64]bool{}
	for _, id := range only {
		want[id] = true
	}
	var out []storeRow
	byID := map[int64]int{}
	for rows.Next() {
		var r storeRow
		if err := rows.Scan(&r.id, &r.code, &r.name, &r.codeID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("acquire: unable to list stores: %w", err)
		}
		if len(want) > 0 && !want[r.id] {
			continue
		}
		byID[r.id] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("acquire: unable to list stores: %w", err)
	}
	for id := range want {
		if _, ok := byID[id]; !ok {
			return nil, errs.Field("store_ids", "unknown_store", "no store %d in this workspace", id)
		}
	}
	rows, err = s.db.QueryContext(ctx, `SELECT store_id, wecom_userid FROM staff WHERE tenant_id = $1 AND store_id IS NOT NULL
		AND wecom_userid IS NOT NULL AND wecom_userid <> '' AND status = 'active' ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("acquire: unable to list store staff: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sid int64
		var u string
		if err := rows.Scan(&sid, &u); err != nil {
			return nil, fmt.Errorf("acquire: unable to list store staff: %w", err)
		}
		if i, ok := byID[sid]; ok && len(out[i].staff) < MaxStaff {
			out[i].staff = append(out[i].staff, u)
		}
	}
	return out, rows.Err()
}
