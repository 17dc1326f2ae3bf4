package community

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// The audience index reads group membership through these (audience.GroupSource
// and its feed): customers who are members of live groups now.

// EachGroupMember streams (group, customer) pairs of customers in live
// groups, by group then customer.
func (s *Service) EachGroupMember(ctx context.Context, tenantID int64, fn func(chatID string, customerID int64) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT m.chat_id, m.customer_id FROM wecom_group_members m
		JOIN wecom_groups g ON g.tenant_id = m.tenant_id AND g.chat_id = m.chat_id
		WHERE m.tenant_id = $1 AND m.status = 'in' AND m.customer_id IS NOT NULL AND g.status = 'active'
		ORDER BY m.chat_id, m.customer_id`, tenantID)
	if err != nil {
		return fmt.Errorf("community: unable to read group members: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var chat string
		var id int64
		if err := rows.Scan(&chat, &id); err != nil {
			return fmt.Errorf("community: unable to read a group member: %w", err)
		}
		if err := fn(chat, id); err != nil {
			return err
		}
	}
	return rows.Err()
}

// GroupsChangedSince returns the customers, present or past members, of the
// groups that changed at or after since (wecom_groups.updated_at moves with
// every membership change the connector stores).
func (s *Service) GroupsChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT m.customer_id FROM wecom_group_members m
		JOIN wecom_groups g ON g.tenant_id = m.tenant_id AND g.chat_id = m.chat_id
		WHERE m.tenant_id = $1 AND g.updated_at >= $2 AND m.customer_id IS NOT NULL`, tenantID, db.Millis(since))
	if err != nil {
		return nil, fmt.Errorf("community: unable to read changed groups: %w", err)
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

// GroupsOf returns the live groups each customer is in now.
func (s *Service) GroupsOf(ctx context.Context, tenantID int64, ids []int64) (map[int64][]string, error) {
	out := map[int64][]string{}
	for batch := range slices.Chunk(ids, 500) {
		args := []any{tenantID}
		ph := make([]string, len(batch))
		for i, id := range batch {
			args = append(args, id)
			ph[i] = fmt.Sprintf("$%d", i+2)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT m.customer_id, m.chat_id FROM wecom_group_members m
			JOIN wecom_groups g ON g.tenant_id = m.tenant_id AND g.chat_id = m.chat_id
			WHERE m.tenant_id = $1 AND m.status = 'in' AND g.status = 'active' AND m.customer_id IN (`+strings.Join(ph, ",")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("community: unable to read customers' groups: %w", err)
		}
		for rows.Next() {
			var id int64
			var chat string
			if err := rows.Scan(&id, &chat); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = append(out[id], chat)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
