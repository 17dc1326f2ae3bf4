package staff

import (
	"context"
	"fmt"
	"strings"
)

// CustomersByExternalID maps a channel's external ids (WeCom external_userid)
// to the Siyu customers they belong to, from the relations on that channel;
// ids no relation knows are left out. Moments and messages use it to show
// WeCom's per-customer results as profiles.
func (s *Service) CustomersByExternalID(ctx context.Context, tenantID int64, channel string, externalIDs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(externalIDs))
	const chunk = 500
	for len(externalIDs) > 0 {
		n := min(chunk, len(externalIDs))
		part := externalIDs[:n]
		externalIDs = externalIDs[n:]
		args := []any{tenantID, channel}
		ph := make([]string, len(part))
		for i, id := range part {
			args = append(args, id)
			ph[i] = fmt.Sprintf("$%d", i+3)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT external_id, customer_id FROM staff_relations
			WHERE tenant_id = $1 AND channel = $2 AND external_id IN (`+strings.Join(ph, ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("staff: unable to map external ids to customers: %w", err)
		}
		for rows.Next() {
			var ext string
			var id int64
			if err := rows.Scan(&ext, &id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("staff: unable to read customer of external id: %w", err)
			}
			out[ext] = id
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("staff: unable to map external ids to customers: %w", err)
		}
	}
	return out, nil
}
