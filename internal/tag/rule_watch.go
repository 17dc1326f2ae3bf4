package tag

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// attribute_changed rules follow the profiles rather than every writer of
// them: attributes change through ingest (identify traits), imports, the
// API, connectors, merges, orders (spend) and score runs, inside other
// domains' transactions. Each tick the engine asks which customers were
// written since the rule's watch position (Profiles.ChangedSince: the
// profile, its order summary, its scores), reads the watched attributes of those
// customers and compares a digest of their values with the one the rule
// last saw (tag_rule_seen). A digest that differs fires the rule once: the
// new digest is written with a compare-and-set, so when several nodes watch,
// one of them fires. A customer the rule has never seen counts as changed
// when any watched attribute is set, so a customer created with a city fires
// a "city changed" rule.
//
// Latency is a tick (1 s by default) plus the read; writes that touch the
// profile without changing a watched attribute (every event moves last seen)
// cost a read and a comparison, and fire nothing.

// watchOverlap re-reads a little before the position, so a profile written by
// a transaction that committed late is still seen; re-reading is harmless.
const watchOverlap = 5 * time.Second

// watched is an attribute rule with its watch position.
type watched struct {
	c    *compiled
	from int64
}

// watch fires attribute_changed rules for the profiles that changed since
// each rule last looked.
func (rs *Rules) watch(ctx context.Context) error {
	rows, err := rs.db.QueryContext(ctx, `SELECT tenant_id, id, watch_from FROM tag_rules
		WHERE trigger_kind = $1 AND enabled AND watch_from IS NOT NULL ORDER BY tenant_id, id`, string(TriggerAttributeChanged))
	if err != nil {
		return fmt.Errorf("tag: unable to list attribute rules: %w", err)
	}
	type row struct{ tenantID, id, from int64 }
	var list []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.tenantID, &r.id, &r.from); err != nil {
			rows.Close()
			return fmt.Errorf("tag: unable to read attribute rule: %w", err)
		}
		list = append(list, r)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("tag: unable to list attribute rules: %w", err)
	}
	byTenant := map[int64][]row{}
	var tenants []int64
	for _, r := range list {
		if _, ok := byTenant[r.tenantID]; !ok {
			tenants = append(tenants, r.tenantID)
		}
		byTenant[r.tenantID] = append(byTenant[r.tenantID], r)
	}
	for _, tid := range tenants {
		set, err := rs.ruleSet(ctx, tid)
		if err != nil {
			return err
		}
		var ws []watched
		for _, r := range byTenant[tid] {
			i := slices.IndexFunc(set.byKind[TriggerAttributeChanged], func(c *compiled) bool { return c.ID == r.id })
			if i >= 0 {
				ws = append(ws, watched{c: set.byKind[TriggerAttributeChanged][i], from: r.from})
			}
		}
		if len(ws) == 0 {
			continue
		}
		if err := rs.watchTenant(ctx, tid, ws); err != nil {
			return err
		}
	}
	return nil
}

// WatchNow looks for attribute changes once, on the caller's goroutine
// (tests, the CLI); Run does it every tick.
func (rs *Rules) WatchNow(ctx context.Context) error { return rs.watch(ctx) }

func (rs *Rules) watchTenant(ctx context.Context, tenantID int64, ws []watched) error {
	tick := rs.now()
	from := ws[0].from
	for _, w := range ws {
		from = min(from, w.from)
	}
	ids, err := rs.deps.Profiles.ChangedSince(ctx, tenantID, db.FromMillis(from).Add(-watchOverlap))
	if err != nil {
		return err
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), BulkChunk)]
		ids = ids[len(chunk):]
		attrs, err := rs.deps.Profiles.Attributes(ctx, tenantID, chunk)
		if err != nil {
			return err
		}
		for _, w := range ws {
			if err := rs.watchChunk(ctx, tenantID, w.c, chunk, attrs); err != nil {
				return err
			}
		}
	}
	for _, w := range ws {
		if _, err := rs.db.ExecContext(ctx, `UPDATE tag_rules SET watch_from = $3 WHERE tenant_id = $1 AND id = $2 AND watch_from < $3`,
			tenantID, w.c.ID, db.Millis(tick)); err != nil {
			return fmt.Errorf("tag: unable to move the watch of rule %d: %w", w.c.ID, err)
		}
	}
	return nil
}

// digest summarises the watched attributes of a customer; set says whether
// any is set.
func digest(a map[string]any, names []string) (string, bool) {
	vals := make([]any, len(names))
	set := false
	for i, n := range names {
		v := a[n]
		if s, ok := v.(string); ok && s == "" {
			v = nil
		}
		if v != nil {
			set = true
		}
		vals[i] = v
	}
	b, err := json.Marshal(vals)
	if err != nil {
		b = fmt.Appendf(nil, "%v", vals)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12]), set
}

// watchChunk compares what a rule last saw of some customers with what they
// are now, and fires the rule for those that changed.
func (rs *Rules) watchChunk(ctx context.Context, tenantID int64, c *compiled, ids []int64, attrs map[int64]map[string]any) error {
	args := []any{tenantID, c.ID}
	in := placeholders(&args, ids)
	rows, err := rs.db.QueryContext(ctx, `SELECT customer_id, digest FROM tag_rule_seen WHERE tenant_id = $1 AND rule_id = $2 AND customer_id IN (`+in+`)`, args...)
	if err != nil {
		return fmt.Errorf("tag: unable to read what rule %d saw: %w", c.ID, err)
	}
	seen := map[int64]string{}
	for rows.Next() {
		var id int64
		var d string
		if err := rows.Scan(&id, &d); err != nil {
			rows.Close()
			return fmt.Errorf("tag: unable to read what rule %d saw: %w", c.ID, err)
		}
		seen[id] = d
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("tag: unable to read what rule %d saw: %w", c.ID, err)
	}
	for _, id := range ids {
		a, ok := attrs[id]
		if !ok {
			continue // merged away
		}
		d, set := digest(a, c.Trigger.Attributes)
		old, had := seen[id]
		if had && old == d {
			continue
		}
		var res sql.Result
		if had {
			res, err = rs.db.ExecContext(ctx, `UPDATE tag_rule_seen SET digest = $4 WHERE tenant_id = $1 AND rule_id = $2 AND customer_id = $3 AND digest = $5`,
				tenantID, c.ID, id, d, old)
		} else {
			res, err = rs.db.ExecContext(ctx, `INSERT INTO tag_rule_seen (tenant_id, rule_id, customer_id, digest) VALUES ($1, $2, $3, $4)
				ON CONFLICT (tenant_id, rule_id, customer_id) DO NOTHING`, tenantID, c.ID, id, d)
		}
		if err != nil {
			return fmt.Errorf("tag: unable to record what rule %d saw: %w", c.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 || (!had && !set) {
			continue // another node fired it, or nothing watched is set yet
		}
		rs.fire(ctx, c, &facts{tenantID: tenantID, customerID: id, kind: TriggerAttributeChanged})
	}
	return nil
}
