package customer

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// IndexRow is what the audience index needs of a profile.
type IndexRow struct {
	ID         int64
	Live       bool // false once merged into another profile
	Gender     string
	Province   string
	City       string
	Source     string
	SourceCode string
	Birthday   string // YYYY-MM-DD or ""
	FirstSeen  time.Time
	LastSeen   time.Time
	Traits     map[string]any
	// RawTraits is the stored traits document, set instead of Traits by
	// EachForIndex: a bulk build decodes only the traits it indexes, and
	// decoding every document into a map was most of its cost. It is only
	// valid during the call.
	RawTraits []byte
}

const indexCols = `id, merged_into IS NULL, gender, province, city, first_source, first_source_code, birthday, first_seen_at, last_seen_at, traits`

func scanIndexRow(rows *sql.Rows) (IndexRow, error) {
	var r IndexRow
	var first, last int64
	var traits string
	if err := rows.Scan(&r.ID, &r.Live, &r.Gender, &r.Province, &r.City, &r.Source, &r.SourceCode, &r.Birthday, &first, &last, &traits); err != nil {
		return r, fmt.Errorf("customer: unable to read profile: %w", err)
	}
	r.FirstSeen, r.LastSeen = db.FromMillis(first), db.FromMillis(last)
	if traits != "" && traits != "{}" {
		if err := json.Unmarshal([]byte(traits), &r.Traits); err != nil {
			return r, fmt.Errorf("customer %d: damaged traits: %w", r.ID, err)
		}
	}
	return r, nil
}

// EachForIndex streams every profile of the workspace (merged ones too, as
// not live) in id order, in pages so no transaction stays open for long. Rows
// carry RawTraits rather than Traits, and fn must not keep the row's
// RawTraits after it returns.
func (s *Service) EachForIndex(ctx context.Context, tenantID int64, fn func(IndexRow) error) error {
	const pageSize = 5000
	var after int64
	var r IndexRow
	var first, last int64
	var traits sql.RawBytes
	dest := []any{&r.ID, &r.Live, &r.Gender, &r.Province, &r.City, &r.Source, &r.SourceCode, &r.Birthday, &first, &last, &traits}
	for {
		rows, err := s.db.QueryContext(ctx, `SELECT `+indexCols+` FROM customers WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT `+fmt.Sprint(pageSize),
			tenantID, after)
		if err != nil {
			return fmt.Errorf("customer: unable to scan profiles: %w", err)
		}
		n := 0
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return fmt.Errorf("customer: unable to read profile: %w", err)
			}
			r.FirstSeen, r.LastSeen = db.FromMillis(first), db.FromMillis(last)
			r.RawTraits = traits
			if err := fn(r); err != nil {
				rows.Close()
				return err
			}
			after = r.ID
			n++
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("customer: unable to scan profiles: %w", err)
		}
		if n < pageSize {
			return nil
		}
	}
}

// ForIndex reads the given profiles (missing ids are skipped).
func (s *Service) ForIndex(ctx context.Context, tenantID int64, ids []int64, fn func(IndexRow) error) error {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := []any{tenantID}
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args = append(args, id)
			ph[i] = fmt.Sprintf("$%d", i+2)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT `+indexCols+` FROM customers WHERE tenant_id = $1 AND id IN (`+strings.Join(ph, ",")+`)`, args...)
		if err != nil {
			return fmt.Errorf("customer: unable to read profiles: %w", err)
		}
		for rows.Next() {
			r, err := scanIndexRow(rows)
			if err == nil {
				err = fn(r)
			}
			if err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("customer: unable to read profiles: %w", err)
		}
	}
	return nil
}

// ChangedSince returns the ids of profiles written at or after since (merged
// ones included: they are no longer live).
func (s *Service) ChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM customers WHERE tenant_id = $1 AND updated_at >= $2`, tenantID, db.Millis(since))
	if err != nil {
		return nil, fmt.Errorf("customer: unable to read changes: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// MergesAfter returns merges recorded after the merge row id after, in order,
// with the id to continue from.
func (s *Service) MergesAfter(ctx context.Context, tenantID, after int64) (pairs [][2]int64, last int64, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, merged_id, survivor_id FROM customer_merges WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT 10000`, tenantID, after)
	if err != nil {
		return nil, after, fmt.Errorf("customer: unable to read merges: %w", err)
	}
	defer rows.Close()
	last = after
	for rows.Next() {
		var id, from, to int64
		if err := rows.Scan(&id, &from, &to); err != nil {
			return nil, after, err
		}
		pairs = append(pairs, [2]int64{from, to})
		last = id
	}
	return pairs, last, rows.Err()
}

// LastMergeID is the newest merge record's id (0 when none), where a follower
// starts.
func (s *Service) LastMergeID(ctx context.Context, tenantID int64) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM customer_merges WHERE tenant_id = $1`, tenantID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("customer: unable to read merges: %w", err)
	}
	return id, nil
}
