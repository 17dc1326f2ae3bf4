package tag

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Source says what applied or removed a tag.
type Source string

// Sources of tag applications.
const (
	SourceManual Source = "manual" // a person in the console
	SourceAPI    Source = "api"    // an API key
	SourceRule   Source = "rule"   // an auto-tag rule (自动打标)
	SourceCode   Source = "code"   // a channel code (渠道活码) the customer scanned
	SourceImport Source = "import" // a file import
	SourceSync   Source = "sync"   // a connector's sync (e.g. WeCom corp tags)
)

// Sources lists every source.
func Sources() []Source {
	return []Source{SourceManual, SourceAPI, SourceRule, SourceCode, SourceImport, SourceSync}
}

// Limits of one write.
const (
	MaxTagsPerChange = 100  // tags one Update or bulk call adds or removes
	BulkChunk        = 1000 // customers per bulk transaction
	maxRefLen        = 200
)

// Application says where a change came from: every row it adds and every
// history entry it writes records it.
type Application struct {
	Source    Source    // manual, api, rule, code, import or sync
	SourceRef string    // what is behind it: a rule id, a channel code, a staff member, an API key
	AppliedBy string    // who acted, by name
	At        time.Time // zero: now
}

// ByPrincipal is the application of a change made by p: manual for a
// console user, api for an API key.
func ByPrincipal(p tenant.Principal) Application {
	switch p.Kind {
	case tenant.ActorAPIKey:
		return Application{Source: SourceAPI, SourceRef: "api_key:" + strconv.FormatInt(p.ID, 10), AppliedBy: p.Name}
	case tenant.ActorUser:
		return Application{Source: SourceManual, SourceRef: "user:" + strconv.FormatInt(p.ID, 10), AppliedBy: p.Name}
	}
	return Application{Source: SourceManual, AppliedBy: p.Name}
}

func (a Application) check() error {
	if !slices.Contains(Sources(), a.Source) {
		return errs.Field("source", "invalid_source", "unknown tag source %q (expected manual, api, rule, code, import or sync)", a.Source)
	}
	if utf8.RuneCountInString(a.SourceRef) > maxRefLen || utf8.RuneCountInString(a.AppliedBy) > maxRefLen {
		return errs.Field("source_ref", "invalid_source_ref", "source_ref and applied_by may be at most %d characters", maxRefLen)
	}
	return nil
}

func (a Application) stamped(now time.Time) Application {
	if a.At.IsZero() {
		a.At = now
	}
	a.At = a.At.UTC()
	return a
}

// Change is what one write did to one customer: the tags it added and the
// tags it removed, ascending. Tags the customer already had (or lacked) are in
// neither.
type Change struct {
	CustomerID int64   `json:"customer_id" doc:"The customer changed (the surviving profile, when a merged id was given)."`
	Added      []int64 `json:"added" nullable:"false"`
	Removed    []int64 `json:"removed" nullable:"false"`
}

func (c Change) empty() bool { return len(c.Added) == 0 && len(c.Removed) == 0 }

// uniq returns ids sorted without duplicates (a new slice).
func uniq(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// placeholders appends vs to args and returns their "$n, $m, …" list.
func placeholders(args *[]any, vs []int64) string {
	var b strings.Builder
	for i, v := range vs {
		*args = append(*args, v)
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(len(*args)))
	}
	return b.String()
}

// survivor returns the profile a customer id stands for now: itself, or the
// profile it was merged into.
func survivor(ctx context.Context, q db.Querier, tenantID, id int64) (int64, error) {
	var sid int64
	err := q.QueryRowContext(ctx, `SELECT coalesce(merged_into, id) FROM customers WHERE tenant_id = $1 AND id = $2`, tenantID, id).Scan(&sid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errs.NotFoundf("customer", "no customer with id %d", id)
	}
	if err != nil {
		return 0, fmt.Errorf("tag: unable to look up customer %d: %w", id, err)
	}
	return sid, nil
}

// survivors maps each id that names a customer of the workspace to its
// surviving profile; unknown ids are left out.
func survivors(ctx context.Context, q db.Querier, tenantID int64, ids []int64) (map[int64]int64, error) {
	args := []any{tenantID}
	in := placeholders(&args, ids)
	rows, err := q.QueryContext(ctx, `SELECT id, coalesce(merged_into, id) FROM customers WHERE tenant_id = $1 AND id IN (`+in+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("tag: unable to look up customers: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]int64, len(ids))
	for rows.Next() {
		var id, sid int64
		if err := rows.Scan(&id, &sid); err != nil {
			return nil, fmt.Errorf("tag: unable to read customer: %w", err)
		}
		out[id] = sid
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tag: unable to look up customers: %w", err)
	}
	return out, nil
}

// tagRef is a tag id with its "group/name", for history entries.
type tagRef struct {
	id  int64
	ref string
}

// tagRefs looks up tags by id, in id order; an id that names no tag of the
// workspace is a tag_not_found error.
func tagRefs(ctx context.Context, q db.Querier, tenantID int64, ids []int64) ([]tagRef, error) {
	args := []any{tenantID}
	in := placeholders(&args, ids)
	rows, err := q.QueryContext(ctx, `SELECT t.id, g.name, t.name FROM tags t JOIN tag_groups g ON g.tenant_id = t.tenant_id AND g.id = t.group_id
		WHERE t.tenant_id = $1 AND t.id IN (`+in+`) ORDER BY t.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("tag: unable to look up tags: %w", err)
	}
	defer rows.Close()
	var out []tagRef
	for rows.Next() {
		var t tagRef
		var group, name string
		if err := rows.Scan(&t.id, &group, &name); err != nil {
			return nil, fmt.Errorf("tag: unable to read tag: %w", err)
		}
		t.ref = group + "/" + name
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tag: unable to look up tags: %w", err)
	}
	if len(out) < len(ids) {
		for _, id := range ids {
			if !slices.ContainsFunc(out, func(t tagRef) bool { return t.id == id }) {
				return nil, tagNotFound(id)
			}
		}
	}
	return out, nil
}

// history is one row of tag_history.
type history struct {
	customerID int64
	tag        tagRef
	action     string // add, remove
}

// writeHistory records history rows. A value repeated across rows (the tag
// of a bulk change, the customer of a single one) is bound once: SQLite's
// parser looks each distinct $N up in a list, so distinct variables cost
// quadratically.
func writeHistory(ctx context.Context, tx *sql.Tx, tenantID int64, hs []history, a Application) error {
	for len(hs) > 0 {
		n := min(len(hs), BulkChunk)
		args := []any{tenantID, string(a.Source), a.SourceRef, a.AppliedBy, db.Millis(a.At)}
		bound := map[any]string{}
		arg := func(v any) string {
			if p, ok := bound[v]; ok {
				return p
			}
			args = append(args, v)
			bound[v] = "$" + strconv.Itoa(len(args))
			return bound[v]
		}
		var b strings.Builder
		for i, h := range hs[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "($1, %s, %s, %s, %s, $2, $3, $4, $5)", arg(h.customerID), arg(h.tag.id), arg(h.tag.ref), arg(h.action))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tag_history (tenant_id, customer_id, tag_id, tag_ref, action, source, source_ref, actor, at)
			VALUES `+b.String(), args...); err != nil {
			return fmt.Errorf("tag: unable to record history: %w", err)
		}
		hs = hs[n:]
	}
	return nil
}

// bumpCounts adds deltas to the tags' customer counts, in tag id order so
// that concurrent writers lock the rows in the same order.
func bumpCounts(ctx context.Context, tx *sql.Tx, tenantID int64, deltas map[int64]int64) error {
	ids := make([]int64, 0, len(deltas))
	for id, d := range deltas {
		if d != 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE tags SET customer_count = customer_count + $3 WHERE tenant_id = $1 AND id = $2`,
			tenantID, id, deltas[id]); err != nil {
			return fmt.Errorf("tag: unable to count customers of tag %d: %w", id, err)
		}
	}
	return nil
}

// scanIDs reads a one-column result of ids.
func scanIDs(rows *sql.Rows, err error) ([]int64, error) {
	if err != nil {
		return nil, err
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

// Apply adds tags to one customer. Tags the customer already holds are left
// as they were (source and time of the first application stay); only what
// was new is recorded and told to observers.
func (s *Service) Apply(ctx context.Context, tenantID, customerID int64, tagIDs []int64, a Application) (Change, error) {
	return s.Update(ctx, tenantID, customerID, tagIDs, nil, a)
}

// Remove takes tags from one customer; tags it does not hold are ignored.
func (s *Service) Remove(ctx context.Context, tenantID, customerID int64, tagIDs []int64, a Application) (Change, error) {
	return s.Update(ctx, tenantID, customerID, nil, tagIDs, a)
}

// Update adds and removes tags of one customer in one transaction and
// returns what changed. A merged customer id changes the surviving profile.
// Observers are told after the commit, and only when something changed.
func (s *Service) Update(ctx context.Context, tenantID, customerID int64, add, remove []int64, a Application) (Change, error) {
	add, remove = uniq(add), uniq(remove)
	switch {
	case len(add)+len(remove) == 0:
		return Change{}, errs.Field("tags", "no_tags", "give at least one tag")
	case len(add)+len(remove) > MaxTagsPerChange:
		return Change{}, errs.Field("tags", "too_many_tags", "at most %d tags per change", MaxTagsPerChange)
	}
	for _, id := range add {
		if slices.Contains(remove, id) {
			return Change{}, errs.Field("tags", "tag_in_add_and_remove", "tag %d is both added and removed", id)
		}
	}
	if err := a.check(); err != nil {
		return Change{}, err
	}
	a = a.stamped(s.now())
	cid, err := survivor(ctx, s.db, tenantID, customerID)
	if err != nil {
		return Change{}, err
	}
	unlock := s.lockCustomers([]int64{cid})
	defer unlock()
	ch := Change{CustomerID: cid, Added: []int64{}, Removed: []int64{}}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		refs, err := tagRefs(ctx, tx, tenantID, uniq(append(slices.Clone(add), remove...)))
		if err != nil {
			return err
		}
		byID := func(id int64) tagRef {
			i := slices.IndexFunc(refs, func(t tagRef) bool { return t.id == id })
			return refs[i]
		}
		if len(add) > 0 {
			args := []any{tenantID, cid, string(a.Source), a.SourceRef, a.AppliedBy, db.Millis(a.At)}
			var b strings.Builder
			for i, id := range add {
				if i > 0 {
					b.WriteString(", ")
				}
				args = append(args, id)
				fmt.Fprintf(&b, "($1, $2, $%d, $3, $4, $5, $6)", len(args))
			}
			ids, err := scanIDs(tx.QueryContext(ctx, `INSERT INTO customer_tags (tenant_id, customer_id, tag_id, source, source_ref, applied_by, applied_at)
				VALUES `+b.String()+` ON CONFLICT (tenant_id, customer_id, tag_id) DO NOTHING RETURNING tag_id`, args...))
			if err != nil {
				return fmt.Errorf("tag: unable to apply tags: %w", err)
			}
			ch.Added = append(ch.Added, ids...)
		}
		if len(remove) > 0 {
			args := []any{tenantID, cid}
			in := placeholders(&args, remove)
			ids, err := scanIDs(tx.QueryContext(ctx, `DELETE FROM customer_tags WHERE tenant_id = $1 AND customer_id = $2 AND tag_id IN (`+in+`) RETURNING tag_id`, args...))
			if err != nil {
				return fmt.Errorf("tag: unable to remove tags: %w", err)
			}
			ch.Removed = append(ch.Removed, ids...)
		}
		slices.Sort(ch.Added)
		slices.Sort(ch.Removed)
		var hs []history
		deltas := map[int64]int64{}
		for _, id := range ch.Added {
			hs = append(hs, history{cid, byID(id), "add"})
			deltas[id]++
		}
		for _, id := range ch.Removed {
			hs = append(hs, history{cid, byID(id), "remove"})
			deltas[id]--
		}
		if err := writeHistory(ctx, tx, tenantID, hs, a); err != nil {
			return err
		}
		return bumpCounts(ctx, tx, tenantID, deltas)
	})
	if err != nil {
		return Change{}, err
	}
	s.notify(tenantID, []Change{ch})
	return ch, nil
}

// BulkResult reports a bulk apply or remove.
type BulkResult struct {
	Total     int `json:"total" doc:"Distinct customer ids given."`
	Changed   int `json:"changed" doc:"(customer, tag) pairs added or removed."`
	Unchanged int `json:"unchanged" doc:"(customer, tag) pairs that were already as asked."`
	NotFound  int `json:"not_found" doc:"Ids that name no customer of the workspace (skipped)."`
}

func (r *BulkResult) add(o BulkResult) {
	r.Changed += o.Changed
	r.Unchanged += o.Unchanged
	r.NotFound += o.NotFound
}

// BulkApply adds tags to many customers, BulkChunk customers per
// transaction, calling progress (when not nil) after each chunk with the
// customers done so far. Ids of no customer are skipped and counted. When
// it fails or ctx ends part-way, the chunks done stay done and the result
// says how far it got.
func (s *Service) BulkApply(ctx context.Context, tenantID int64, tagIDs, customerIDs []int64, a Application, progress func(done, total int)) (BulkResult, error) {
	return s.bulk(ctx, tenantID, tagIDs, customerIDs, true, a, progress)
}

// BulkRemove takes tags from many customers, like BulkApply.
func (s *Service) BulkRemove(ctx context.Context, tenantID int64, tagIDs, customerIDs []int64, a Application, progress func(done, total int)) (BulkResult, error) {
	return s.bulk(ctx, tenantID, tagIDs, customerIDs, false, a, progress)
}

func (s *Service) bulk(ctx context.Context, tenantID int64, tagIDs, customerIDs []int64, add bool, a Application, progress func(done, total int)) (BulkResult, error) {
	tagIDs = uniq(tagIDs)
	switch {
	case len(tagIDs) == 0:
		return BulkResult{}, errs.Field("tags", "no_tags", "give at least one tag")
	case len(tagIDs) > MaxTagsPerChange:
		return BulkResult{}, errs.Field("tags", "too_many_tags", "at most %d tags per change", MaxTagsPerChange)
	}
	if err := a.check(); err != nil {
		return BulkResult{}, err
	}
	a = a.stamped(s.now())
	if _, err := tagRefs(ctx, s.db, tenantID, tagIDs); err != nil {
		return BulkResult{}, err
	}
	ids := uniq(customerIDs)
	res := BulkResult{Total: len(ids)}
	start := time.Now()
	for done := 0; done < len(ids); {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("tag: bulk change stopped after %d of %d customers: %w", done, len(ids), err)
		}
		end := min(done+BulkChunk, len(ids))
		r, err := s.bulkChunk(ctx, tenantID, tagIDs, ids[done:end], add, a)
		if err != nil {
			return res, fmt.Errorf("tag: bulk change stopped after %d of %d customers: %w", done, len(ids), err)
		}
		res.add(r)
		done = end
		if progress != nil {
			progress(done, len(ids))
		}
	}
	s.log.InfoContext(ctx, "tags changed in bulk", "tenant", tenantID, "tags", tagIDs, "add", add, "customers", res.Total,
		"changed", res.Changed, "unchanged", res.Unchanged, "not_found", res.NotFound, "source", a.Source,
		"elapsed", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// bulkChunk changes tags of up to BulkChunk customers in one transaction and
// tells observers after it commits.
func (s *Service) bulkChunk(ctx context.Context, tenantID int64, tagIDs, ids []int64, add bool, a Application) (BulkResult, error) {
	surv, err := survivors(ctx, s.db, tenantID, ids)
	if err != nil {
		return BulkResult{}, err
	}
	targets := make([]int64, 0, len(surv))
	for _, sid := range surv {
		targets = append(targets, sid)
	}
	targets = uniq(targets)
	res := BulkResult{NotFound: len(ids) - len(surv)}
	if len(targets) == 0 {
		return res, nil
	}
	unlock := s.lockCustomers(targets)
	defer unlock()
	var changes []Change
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		refs, err := tagRefs(ctx, tx, tenantID, tagIDs)
		if err != nil {
			return err
		}
		var all []Change
		for _, t := range refs {
			cs, err := writeChunk(ctx, tx, tenantID, t, targets, add, a)
			if err != nil {
				return err
			}
			all = append(all, cs...)
		}
		changes = mergeChanges(all)
		return nil
	})
	if err != nil {
		return BulkResult{}, err
	}
	for _, c := range changes {
		res.Changed += len(c.Added) + len(c.Removed)
	}
	res.Unchanged = len(targets)*len(tagIDs) - res.Changed
	s.notify(tenantID, changes)
	return res, nil
}

// writeChunk adds (or removes) one tag for up to BulkChunk customers
// (ascending ids) inside tx: the rows, their history and the tag's count. It
// returns one Change per customer that changed.
func writeChunk(ctx context.Context, tx *sql.Tx, tenantID int64, t tagRef, customers []int64, add bool, a Application) ([]Change, error) {
	var changed []int64
	var err error
	if add {
		args := []any{tenantID, t.id, string(a.Source), a.SourceRef, a.AppliedBy, db.Millis(a.At)}
		var b strings.Builder
		for i, id := range customers {
			if i > 0 {
				b.WriteString(", ")
			}
			args = append(args, id)
			fmt.Fprintf(&b, "($1, $%d, $2, $3, $4, $5, $6)", len(args))
		}
		changed, err = scanIDs(tx.QueryContext(ctx, `INSERT INTO customer_tags (tenant_id, customer_id, tag_id, source, source_ref, applied_by, applied_at)
			VALUES `+b.String()+` ON CONFLICT (tenant_id, customer_id, tag_id) DO NOTHING RETURNING customer_id`, args...))
	} else {
		// The range bounds the index scan to the chunk's ids: a planner
		// that scans all holders of the tag and filters each by the IN list
		// makes a bulk remove quadratic.
		args := []any{tenantID, t.id, customers[0], customers[len(customers)-1]}
		in := placeholders(&args, customers)
		changed, err = scanIDs(tx.QueryContext(ctx, `DELETE FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2
			AND customer_id BETWEEN $3 AND $4 AND customer_id IN (`+in+`) RETURNING customer_id`, args...))
	}
	if err != nil {
		return nil, fmt.Errorf("tag: unable to change tag %d of %d customers: %w", t.id, len(customers), err)
	}
	action, delta := "add", int64(len(changed))
	if !add {
		action, delta = "remove", -delta
	}
	hs := make([]history, len(changed))
	out := make([]Change, len(changed))
	for i, cid := range changed {
		hs[i] = history{cid, t, action}
		out[i] = Change{CustomerID: cid, Added: []int64{}, Removed: []int64{}}
		if add {
			out[i].Added = []int64{t.id}
		} else {
			out[i].Removed = []int64{t.id}
		}
	}
	if err := writeHistory(ctx, tx, tenantID, hs, a); err != nil {
		return nil, err
	}
	if err := bumpCounts(ctx, tx, tenantID, map[int64]int64{t.id: delta}); err != nil {
		return nil, err
	}
	return out, nil
}

// mergeChanges folds changes of the same customer into one, ordered by
// customer id, tags ascending.
func mergeChanges(cs []Change) []Change {
	by := map[int64]*Change{}
	var order []int64
	for _, c := range cs {
		m, ok := by[c.CustomerID]
		if !ok {
			m = &Change{CustomerID: c.CustomerID, Added: []int64{}, Removed: []int64{}}
			by[c.CustomerID] = m
			order = append(order, c.CustomerID)
		}
		m.Added = append(m.Added, c.Added...)
		m.Removed = append(m.Removed, c.Removed...)
	}
	slices.Sort(order)
	out := make([]Change, 0, len(order))
	for _, id := range order {
		m := by[id]
		slices.Sort(m.Added)
		slices.Sort(m.Removed)
		out = append(out, *m)
	}
	return out
}

// Applied is a tag a customer holds, with where it came from.
type Applied struct {
	TagID     int64     `json:"tag_id"`
	GroupID   int64     `json:"group_id"`
	Group     string    `json:"group"`
	Name      string    `json:"name"`
	Ref       string    `json:"ref" doc:"group/name, e.g. 价值/高价值."`
	Color     string    `json:"color"`
	Source    Source    `json:"source" enum:"manual,api,rule,code,import,sync"`
	SourceRef string    `json:"source_ref,omitempty" doc:"What is behind the source: a rule id, a channel code, a staff member or an API key."`
	AppliedBy string    `json:"applied_by,omitempty" doc:"Who applied it, by name."`
	AppliedAt time.Time `json:"applied_at"`
}

// TagsOf lists the tags a customer holds, in display order. A merged
// customer id lists the surviving profile's tags.
func (s *Service) TagsOf(ctx context.Context, tenantID, customerID int64) ([]Applied, error) {
	cid, err := survivor(ctx, s.db, tenantID, customerID)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT t.id, g.id, g.name, t.name, t.color, ct.source, ct.source_ref, ct.applied_by, ct.applied_at
		 FROM customer_tags ct
		 JOIN tags t ON t.tenant_id = ct.tenant_id AND t.id = ct.tag_id
		 JOIN tag_groups g ON g.tenant_id = t.tenant_id AND g.id = t.group_id
		 WHERE ct.tenant_id = $1 AND ct.customer_id = $2
		 ORDER BY g.sort_order, g.id, t.sort_order, t.id`, tenantID, cid)
	if err != nil {
		return nil, fmt.Errorf("tag: unable to list tags of customer %d: %w", cid, err)
	}
	defer rows.Close()
	out := []Applied{}
	for rows.Next() {
		var a Applied
		var at int64
		if err := rows.Scan(&a.TagID, &a.GroupID, &a.Group, &a.Name, &a.Color, &a.Source, &a.SourceRef, &a.AppliedBy, &at); err != nil {
			return nil, fmt.Errorf("tag: unable to read tag of customer: %w", err)
		}
		a.Ref, a.AppliedAt = a.Group+"/"+a.Name, db.FromMillis(at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tag: unable to list tags of customer %d: %w", cid, err)
	}
	return out, nil
}

// holders returns up to limit (0: all) ids of customers holding a tag,
// ascending, after the given id.
func holders(ctx context.Context, q db.Querier, tenantID, tagID, after int64, limit int) ([]int64, error) {
	sqlq := `SELECT customer_id FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2 AND customer_id > $3 ORDER BY customer_id`
	if limit > 0 {
		sqlq += fmt.Sprintf(` LIMIT %d`, limit)
	}
	ids, err := scanIDs(q.QueryContext(ctx, sqlq, tenantID, tagID, after))
	if err != nil {
		return nil, fmt.Errorf("tag: unable to list customers of tag %d: %w", tagID, err)
	}
	return ids, nil
}

// CustomersWithTag pages through the ids of the customers holding a tag,
// ascending.
func (s *Service) CustomersWithTag(ctx context.Context, tenantID, tagID int64, r page.Request) (page.Page[int64], error) {
	if _, err := s.Tag(ctx, tenantID, tagID); err != nil {
		return page.Page[int64]{}, err
	}
	var after int64
	if r.Cursor != "" {
		if err := page.Decode(r.Cursor, &after); err != nil {
			return page.Page[int64]{}, err
		}
	}
	ids, err := holders(ctx, s.db, tenantID, tagID, after, r.Size()+1)
	if err != nil {
		return page.Page[int64]{}, err
	}
	pg := page.Trim(ids, r, func(id int64) string { return page.Encode(id) })
	if pg.Items == nil {
		pg.Items = []int64{}
	}
	return pg, nil
}

// Counts returns how many customers hold each tag of the workspace (tags
// nobody holds included, with 0). Counts are kept by every write, so this
// reads one row per tag.
func (s *Service) Counts(ctx context.Context, tenantID int64) (map[int64]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, customer_count FROM tags WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("tag: unable to count customers per tag: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("tag: unable to read count: %w", err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tag: unable to count customers per tag: %w", err)
	}
	return out, nil
}

// lockCustomers takes the locks of the given customers (in stripe order, so
// two writers never deadlock) and returns the function that releases them.
func (s *Service) lockCustomers(ids []int64) func() {
	var need [stripes]bool
	for _, id := range ids {
		need[uint64(id)%stripes] = true
	}
	var held []int
	for i := range need {
		if need[i] {
			s.locks[i].Lock()
			held = append(held, i)
		}
	}
	return func() {
		for _, i := range slices.Backward(held) {
			s.locks[i].Unlock()
		}
	}
}

// lockAll takes every customer lock.
func (s *Service) lockAll() func() {
	for i := range s.locks {
		s.locks[i].Lock()
	}
	return func() {
		for i := len(s.locks) - 1; i >= 0; i-- {
			s.locks[i].Unlock()
		}
	}
}
