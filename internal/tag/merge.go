package tag

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

// MoveCustomer moves the tags and the tag history of a merged profile to the
// survivor, inside the merge's transaction: the One ID merge hook for tags
// (customer.Service.OnMerge("tags", tags.MoveCustomer)). A tag both profiles
// held stays once, with its earliest application (source, by whom, when).
//
// The move is not told to observers (see Observer): it commits with the
// merge, which this hook does not see.
func (s *Service) MoveCustomer(ctx context.Context, tx *sql.Tx, tenantID, fromID, toID int64) error {
	if fromID == toID {
		return nil
	}
	type row struct {
		tagID                        int64
		source, sourceRef, appliedBy string
		at                           int64
	}
	read := func(customerID int64) (map[int64]row, error) {
		rows, err := tx.QueryContext(ctx, `SELECT tag_id, source, source_ref, applied_by, applied_at FROM customer_tags
			WHERE tenant_id = $1 AND customer_id = $2`, tenantID, customerID)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[int64]row{}
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.tagID, &r.source, &r.sourceRef, &r.appliedBy, &r.at); err != nil {
				return nil, err
			}
			out[r.tagID] = r
		}
		return out, rows.Err()
	}
	from, err := read(fromID)
	if err != nil {
		return fmt.Errorf("tag: unable to read tags of merged customer %d: %w", fromID, err)
	}
	to, err := read(toID)
	if err != nil {
		return fmt.Errorf("tag: unable to read tags of customer %d: %w", toID, err)
	}
	ids := make([]int64, 0, len(from))
	for id := range from {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	deltas := map[int64]int64{}
	for _, id := range ids {
		f := from[id]
		t, both := to[id]
		switch {
		case !both:
			_, err = tx.ExecContext(ctx, `INSERT INTO customer_tags (tenant_id, customer_id, tag_id, source, source_ref, applied_by, applied_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, tenantID, toID, id, f.source, f.sourceRef, f.appliedBy, f.at)
		case f.at < t.at:
			deltas[id]--
			_, err = tx.ExecContext(ctx, `UPDATE customer_tags SET source = $4, source_ref = $5, applied_by = $6, applied_at = $7
				WHERE tenant_id = $1 AND customer_id = $2 AND tag_id = $3`, tenantID, toID, id, f.source, f.sourceRef, f.appliedBy, f.at)
		default:
			deltas[id]--
		}
		if err != nil {
			return fmt.Errorf("tag: unable to move tag %d of customer %d to %d: %w", id, fromID, toID, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM customer_tags WHERE tenant_id = $1 AND customer_id = $2`, tenantID, fromID); err != nil {
		return fmt.Errorf("tag: unable to drop tags of merged customer %d: %w", fromID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tag_history SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2`, tenantID, fromID, toID); err != nil {
		return fmt.Errorf("tag: unable to move tag history of customer %d to %d: %w", fromID, toID, err)
	}
	return bumpCounts(ctx, tx, tenantID, deltas)
}
