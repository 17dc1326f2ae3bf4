package staff

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/siyu-dev/siyu/internal/db"
)

// RelationsAfter lists the relations on a channel of the customers after
// afterCustomerID, in customer then staff order, at most limit of them: how a
// connector's sync walks every relation of a workspace in chunks. A chunk
// that is full may end inside a customer's relations.
func (s *Service) RelationsAfter(ctx context.Context, tenantID int64, channel string, afterCustomerID int64, limit int) ([]Relation, error) {
	if limit <= 0 {
		limit = 1000
	}
	return s.relations(ctx, s.db, ` AND r.channel = $2 AND r.customer_id > $3 ORDER BY r.customer_id, r.staff_id LIMIT `+strconv.Itoa(limit),
		tenantID, channel, afterCustomerID)
}

// CustomersWithChannelTag lists the customers whose current or past relations
// on a channel carry the channel's tag id: who must be re-aligned when that
// tag becomes bound to a Siyu tag after the marks arrived.
func (s *Service) CustomersWithChannelTag(ctx context.Context, tenantID int64, channel, tagID string) ([]int64, error) {
	needle, err := json.Marshal(tagID)
	if err != nil {
		return nil, fmt.Errorf("staff: unable to encode tag id: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT customer_id FROM staff_relations
		WHERE tenant_id = $1 AND channel = $2 AND channel_tag_ids LIKE $3 ESCAPE '\' ORDER BY customer_id`,
		tenantID, channel, "%"+db.LikeEscape(string(needle))+"%")
	if err != nil {
		return nil, fmt.Errorf("staff: unable to find customers with a channel tag: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("staff: unable to read customers with a channel tag: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
