package staff

import (
	"context"
	"strconv"
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
