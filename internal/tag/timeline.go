package tag

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
)

var _ customer.TimelineSource = (*Service)(nil)

// TimelineTag is the kind of the timeline entries tags contribute.
const TimelineTag = "tag"

// TimelineEntries returns up to limit tag changes of a customer at or before
// the given time (zero: now), newest first: "tag added: 价值/高价值 by rule 12".
// It makes the tag service a customer.TimelineSource.
func (s *Service) TimelineEntries(ctx context.Context, tenantID, customerID int64, before time.Time, limit int) ([]customer.TimelineEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	bound := int64(1<<63 - 1)
	if !before.IsZero() {
		bound = db.Millis(before)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT h.id, h.tag_id, h.tag_ref, coalesce(g.name || '/' || t.name, ''), h.action, h.source, h.source_ref, h.actor, h.at
		 FROM tag_history h
		 LEFT JOIN tags t ON t.tenant_id = h.tenant_id AND t.id = h.tag_id
		 LEFT JOIN tag_groups g ON g.tenant_id = t.tenant_id AND g.id = t.group_id
		 WHERE h.tenant_id = $1 AND h.customer_id = $2 AND h.at <= $3`+
			fmt.Sprintf(` ORDER BY h.at DESC, h.id DESC LIMIT %d`, limit), tenantID, customerID, bound)
	if err != nil {
		return nil, fmt.Errorf("tag: unable to list tag history: %w", err)
	}
	defer rows.Close()
	var out []customer.TimelineEntry
	for rows.Next() {
		var id, tagID, at int64
		var then, now, action, source, ref, actor string
		if err := rows.Scan(&id, &tagID, &then, &now, &action, &source, &ref, &actor, &at); err != nil {
			return nil, fmt.Errorf("tag: unable to read tag history: %w", err)
		}
		label := now
		if label == "" {
			label = then + " (deleted)"
		}
		verb := "added"
		if action == "remove" {
			verb = "removed"
		}
		detail := map[string]any{"tag_id": tagID, "ref": then, "action": action, "source": source, "source_ref": ref, "actor": actor}
		if now != "" && now != then {
			detail["current_ref"] = now
		}
		out = append(out, customer.TimelineEntry{
			At: db.FromMillis(at), Kind: TimelineTag, ID: strconv.FormatInt(id, 10),
			Title:  fmt.Sprintf("tag %s: %s by %s", verb, label, who(Source(source), ref, actor)),
			Detail: detail,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tag: unable to list tag history: %w", err)
	}
	return out, nil
}

// who says who made a change, for people: "张三 (manual)", "rule 12".
func who(source Source, ref, actor string) string {
	switch {
	case (source == SourceManual || source == SourceAPI) && actor != "":
		return actor + " (" + string(source) + ")"
	case ref == "":
		if actor != "" {
			return string(source) + " (" + actor + ")"
		}
		return string(source)
	case actor != "" && actor != ref:
		return string(source) + " " + ref + " (" + actor + ")"
	}
	return string(source) + " " + ref
}
