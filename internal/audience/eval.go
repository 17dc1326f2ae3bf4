package audience

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-dev/siyu/internal/errs"
)

// Attribute kinds in the index.
const (
	AttrCategorical = "categorical"
	AttrNumeric     = "numeric"
	AttrDate        = "date" // numeric, Unix milliseconds
)

// Env is what evaluation needs beyond the index: the time, the workspace's
// day boundaries, how to name tags and attributes, and the database for the
// few predicates no bitmap answers.
type Env struct {
	Now time.Time
	Loc *time.Location
	// TagID resolves a tag reference ("group/name" or a unique name).
	TagID func(ctx context.Context, ref string) (int64, error)
	// AttrKind says how an attribute is indexed; ok is false for unknown names.
	AttrKind func(name string) (kind string, ok bool)
	// AttrScale is the factor a numeric attribute's values were multiplied by
	// in the index (custom numbers keep three decimals); nil means 1.
	AttrScale func(name string) float64
	// Audience returns the members of a saved audience as ordinals of this
	// index. The result is only read.
	Audience func(ctx context.Context, id int64) (*roaring.Bitmap, error)
	// GroupsTagged returns the live customer groups (chat ids) carrying a
	// group tag, by its name; nil when groups are not available.
	GroupsTagged func(ctx context.Context, name string) ([]string, error)
	// Scan answers predicates that need the event or order log (counts above
	// one, property filters, windowed order metrics); it returns customer ids.
	Scan Scanner
}

// Scanner answers predicates from the database, for one workspace. Both
// methods return a value per customer that has any matching rows; customers
// without rows count as zero, which the evaluator handles (so "did not
// perform" and "spent under ¥100" include customers with no events or orders).
type Scanner interface {
	// EventCounts counts each customer's events named c.Event that pass
	// c.Where, in [from, to] (zero times: unbounded).
	EventCounts(ctx context.Context, c Condition, from, to time.Time) (map[int64]int64, error)
	// OrderValues returns each customer's paid spend in fen (metric spend), or
	// number of paid orders (metric count, or orders containing o.SKU /
	// o.Category), for orders paid in [from, to].
	OrderValues(ctx context.Context, o OrderCond, from, to time.Time) (map[int64]int64, error)
}

// day returns the workspace day number (days since the Unix epoch in Loc).
func (e Env) day(t time.Time) int32 {
	y, m, d := t.In(e.Loc).Date()
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// window returns the [from, to] time span of a within_days/between pair; the
// zero span means all time.
func (e Env) window(within int, between []string) (from, to time.Time) {
	switch {
	case within > 0:
		y, m, d := e.Now.In(e.Loc).Date()
		startToday := time.Date(y, m, d, 0, 0, 0, 0, e.Loc)
		return startToday.AddDate(0, 0, -(within - 1)), e.Now
	case len(between) == 2:
		f, _ := time.ParseInLocation(time.DateOnly, between[0], e.Loc)
		t, _ := time.ParseInLocation(time.DateOnly, between[1], e.Loc)
		return f, t.AddDate(0, 0, 1).Add(-time.Millisecond)
	}
	return time.Time{}, time.Time{}
}

// Eval evaluates a validated condition to the set of matching ordinals. The
// caller must not modify the result's source bitmaps: Eval returns fresh ones.
func (x *Index) Eval(ctx context.Context, c Condition, env Env) (*roaring.Bitmap, error) {
	if env.Loc == nil {
		env.Loc = time.UTC
	}
	if env.Now.IsZero() {
		env.Now = time.Now()
	}
	// Predicates answered by the database run before taking the read lock,
	// so slow queries never hold up writers.
	pre := map[*Condition]*roaring.Bitmap{}
	if err := x.prefetch(ctx, &c, env, pre); err != nil {
		return nil, err
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.eval(ctx, &c, env, pre, "", x.live)
}

// needsScan reports whether an event or order condition needs the database.
func needsScan(c *Condition) bool {
	switch c.Kind() {
	case "event":
		if len(c.Where) > 0 {
			return true
		}
		if c.Count == nil {
			return false
		}
		// Once, or never: day bitmaps answer these.
		switch {
		case (c.Count.Op == ">=" && c.Count.Value <= 1) || (c.Count.Op == ">" && c.Count.Value == 0):
			return false
		case (c.Count.Op == "=" && c.Count.Value == 0) || (c.Count.Op == "<" && c.Count.Value == 1) || (c.Count.Op == "<=" && c.Count.Value == 0):
			return false
		}
		return true
	case "order":
		o := c.Order
		return o.SKU != "" || o.Category != "" || o.WithinDays > 0 || o.Between != nil
	}
	return false
}

func (x *Index) prefetch(ctx context.Context, c *Condition, env Env, out map[*Condition]*roaring.Bitmap) error {
	for i := range c.And {
		if err := x.prefetch(ctx, &c.And[i], env, out); err != nil {
			return err
		}
	}
	for i := range c.Or {
		if err := x.prefetch(ctx, &c.Or[i], env, out); err != nil {
			return err
		}
	}
	if c.Not != nil {
		return x.prefetch(ctx, c.Not, env, out)
	}
	if c.Kind() == "group" && c.GroupTag != "" {
		if env.GroupsTagged == nil {
			return errs.E(errs.Invalid, "groups_unavailable", "customer groups cannot be used here")
		}
		chats, err := env.GroupsTagged(ctx, c.GroupTag)
		if err != nil {
			return err
		}
		x.mu.RLock()
		out[c] = x.evalGroups(&Condition{GroupsAny: chats}, x.live)
		x.mu.RUnlock()
		return nil
	}
	if c.Kind() == "audience" {
		if env.Audience == nil {
			return errs.E(errs.Invalid, "audience_unavailable", "saved audiences cannot be used here")
		}
		b, err := env.Audience(ctx, c.Audience)
		if err != nil {
			return err
		}
		out[c] = b
		return nil
	}
	if !needsScan(c) {
		return nil
	}
	if env.Scan == nil {
		return errs.E(errs.Invalid, "scan_unavailable", "this condition needs the event log, which is not available here")
	}
	var vals map[int64]int64
	var err error
	var match func(v int64) bool
	if c.Kind() == "event" {
		from, to := env.window(c.WithinDays, c.Between)
		vals, err = env.Scan.EventCounts(ctx, *c, from, to)
		op, want := ">=", 1
		if c.Count != nil {
			op, want = c.Count.Op, c.Count.Value
		}
		match = func(v int64) bool { return compare(v, op, int64(want)) }
	} else {
		o := c.Order
		from, to := env.window(o.WithinDays, o.Between)
		vals, err = env.Scan.OrderValues(ctx, *o, from, to)
		switch {
		case o.SKU != "" || o.Category != "":
			match = func(v int64) bool { return v > 0 }
		case o.Op == "between":
			l := o.Value.([]any)
			a, _ := number(l[0])
			b, _ := number(l[1])
			match = func(v int64) bool { return float64(v) >= a && float64(v) <= b }
		default:
			f, _ := number(o.Value)
			op := o.Op
			match = func(v int64) bool { return compare(float64(v), op, f) }
		}
	}
	if err != nil {
		return err
	}
	// Customers with rows that match, and with rows that do not; everyone
	// else has zero, and matches exactly when zero does.
	hit, miss := roaring.New(), roaring.New()
	x.mu.RLock()
	for id, v := range vals {
		if o, ok := x.lookup(id); ok {
			if match(v) {
				hit.Add(o)
			} else {
				miss.Add(o)
			}
		}
	}
	if match(0) {
		hit = roaring.AndNot(x.live, miss)
	}
	x.mu.RUnlock()
	out[c] = hit
	return nil
}

// compare applies a comparison operator.
func compare[T int64 | float64](a T, op string, b T) bool {
	switch op {
	case "=":
		return a == b
	case "!=":
		return a != b
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "<":
		return a < b
	case "<=":
		return a <= b
	}
	return false
}

// evalOrder ranks a node for evaluation inside an "and": selective, cheap
// predicates first, so later ones only check the customers still in.
func evalOrder(c *Condition) int {
	switch c.Kind() {
	case "tag":
		if c.TagsNone != nil {
			return 6
		}
		return 0
	case "source", "staff", "group":
		return 1
	case "attr":
		switch c.Op {
		case "=", "in", "contains":
			return 1
		}
		return 3
	case "audience":
		return 2
	case "event", "order":
		return 4
	case "or", "and":
		return 5
	}
	return 6 // not
}

// eval evaluates c among the candidates in within (a subset of live
// customers) and returns the matching ones, a fresh bitmap.
func (x *Index) eval(ctx context.Context, c *Condition, env Env, pre map[*Condition]*roaring.Bitmap, path string, within *roaring.Bitmap) (*roaring.Bitmap, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch c.Kind() {
	case "and":
		order := make([]int, len(c.And))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return evalOrder(&c.And[a]) - evalOrder(&c.And[b]) })
		// Every child is evaluated even once nothing is left, so errors in any
		// node are reported whatever the data; on an empty set that is cheap.
		acc := within
		for _, i := range order {
			b, err := x.eval(ctx, &c.And[i], env, pre, join(path, fmt.Sprintf("and[%d]", i)), acc)
			if err != nil {
				return nil, err
			}
			acc = b
		}
		if acc == within {
			acc = within.Clone()
		}
		return acc, nil
	case "or":
		acc := roaring.New()
		for i := range c.Or {
			rest := roaring.AndNot(within, acc)
			b, err := x.eval(ctx, &c.Or[i], env, pre, join(path, fmt.Sprintf("or[%d]", i)), rest)
			if err != nil {
				return nil, err
			}
			acc.Or(b)
		}
		return acc, nil
	case "not":
		b, err := x.eval(ctx, c.Not, env, pre, join(path, "not"), within)
		if err != nil {
			return nil, err
		}
		return roaring.AndNot(within, b), nil
	case "tag":
		return x.evalTags(ctx, c, env, path, within)
	case "attr":
		return x.evalAttr(c.Attr, c.Op, c.Value, env, path, within)
	case "event":
		if b, ok := pre[c]; ok {
			return roaring.And(b, within), nil
		}
		return x.evalEventDays(c, env, within), nil
	case "order":
		if b, ok := pre[c]; ok {
			return roaring.And(b, within), nil
		}
		attr := "total_spend"
		if c.Order.Metric == "count" {
			attr = "order_count"
		}
		return x.evalAttr(attr, c.Order.Op, c.Order.Value, env, join(path, "order"), within)
	case "source":
		if c.Source != "" {
			return x.evalAttr("source", "=", c.Source, env, path, within)
		}
		return x.evalAttr("source_code", "=", c.SourceCode, env, path, within)
	case "staff":
		return x.evalAttr("staff", "=", strconv.FormatInt(c.Staff, 10), env, path, within)
	case "group":
		if b, ok := pre[c]; ok {
			return roaring.And(b, within), nil
		}
		return x.evalGroups(c, within), nil
	case "audience":
		return roaring.And(pre[c], within), nil
	}
	return nil, bad(path, "empty condition")
}

func (x *Index) tagSet(ctx context.Context, ref string, env Env, path string) (*roaring.Bitmap, error) {
	if env.TagID == nil {
		return nil, bad(path, "tags are not available here")
	}
	id, err := env.TagID(ctx, ref)
	if err != nil {
		if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
			return nil, errs.Field(path, e.Code, "%s: %s", pathOrRoot(path), e.Message)
		}
		return nil, err
	}
	if b := x.tags[id]; b != nil {
		return b, nil
	}
	return roaring.New(), nil
}

func pathOrRoot(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

func (x *Index) evalTags(ctx context.Context, c *Condition, env Env, path string, within *roaring.Bitmap) (*roaring.Bitmap, error) {
	refs, mode := []string{c.Tag}, "any"
	switch {
	case c.TagsAny != nil:
		refs = c.TagsAny
	case c.TagsAll != nil:
		refs, mode = c.TagsAll, "all"
	case c.TagsNone != nil:
		refs, mode = c.TagsNone, "none"
	}
	sets := make([]*roaring.Bitmap, len(refs))
	for i, r := range refs {
		b, err := x.tagSet(ctx, r, env, path)
		if err != nil {
			return nil, err
		}
		sets[i] = b
	}
	switch mode {
	case "all":
		out := roaring.And(within, sets[0])
		for _, s := range sets[1:] {
			out.And(s)
		}
		return out, nil
	case "none":
		out := within.Clone()
		for _, s := range sets {
			out.AndNot(s)
		}
		return out, nil
	}
	if len(sets) == 1 {
		return roaring.And(within, sets[0]), nil
	}
	out := roaring.FastOr(sets...)
	out.And(within)
	return out, nil
}

// evalGroups returns the candidates who are in the group, or in any of the
// groups; a group nobody (known) is in matches nobody.
func (x *Index) evalGroups(c *Condition, within *roaring.Bitmap) *roaring.Bitmap {
	chats := c.GroupsAny
	if c.Group != "" {
		chats = []string{c.Group}
	}
	var parts []*roaring.Bitmap
	for _, id := range chats {
		if b := x.groups[id]; b != nil {
			parts = append(parts, b)
		}
	}
	if len(parts) == 0 {
		return roaring.New()
	}
	out := roaring.FastOr(parts...)
	out.And(within)
	return out
}

func (x *Index) evalEventDays(c *Condition, env Env, within *roaring.Bitmap) *roaring.Bitmap {
	days := x.events[c.Event]
	var parts []*roaring.Bitmap
	var total uint64
	from, to := env.window(c.WithinDays, c.Between)
	lo, hi := int32(math.MinInt32), int32(math.MaxInt32)
	if !from.IsZero() {
		lo, hi = env.day(from), env.day(to)
	}
	for d, b := range days {
		if d >= lo && d <= hi {
			parts = append(parts, b)
			total += b.GetCardinality()
		}
	}
	var did *roaring.Bitmap
	if n := within.GetCardinality(); n*uint64(len(parts)) < total/4 {
		// Few candidates: intersect them with each day rather than union
		// every day's customers (an intersection costs about the smaller
		// side).
		hits := make([]*roaring.Bitmap, len(parts))
		for i, b := range parts {
			hits[i] = roaring.And(within, b)
		}
		did = roaring.FastOr(hits...)
	} else {
		did = roaring.FastOr(parts...)
		did.And(within)
	}
	never := c.Count != nil && ((c.Count.Op == "=" && c.Count.Value == 0) || (c.Count.Op == "<" && c.Count.Value == 1) || (c.Count.Op == "<=" && c.Count.Value == 0))
	if never {
		return roaring.AndNot(within, did)
	}
	return did
}

// catValue renders an operand as the string a categorical bitmap is keyed by.
func catValue(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	}
	if f, ok := number(v); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func (x *Index) evalAttr(attr, op string, v any, env Env, path string, within *roaring.Bitmap) (*roaring.Bitmap, error) {
	kind, ok := "", false
	if env.AttrKind != nil {
		kind, ok = env.AttrKind(attr)
	}
	if !ok {
		return nil, errs.Field(join(path, "attr"), "unknown_attribute", "%s: unknown attribute %q", pathOrRoot(path), attr)
	}
	if kind == AttrCategorical {
		return x.evalCat(attr, op, v, path, within)
	}
	return x.evalNum(attr, kind, op, v, env, path, within)
}

func (x *Index) evalCat(attr, op string, v any, path string, within *roaring.Bitmap) (*roaring.Bitmap, error) {
	vals := x.cats[attr]
	get := func(s string) *roaring.Bitmap {
		if b := vals[s]; b != nil {
			return b
		}
		return roaring.New()
	}
	all := func() *roaring.Bitmap {
		parts := make([]*roaring.Bitmap, 0, len(vals))
		for _, b := range vals {
			parts = append(parts, b)
		}
		return roaring.FastOr(parts...)
	}
	list := func() []*roaring.Bitmap {
		items, _ := v.([]any)
		parts := make([]*roaring.Bitmap, 0, len(items))
		for _, it := range items {
			parts = append(parts, get(catValue(it)))
		}
		return parts
	}
	var out *roaring.Bitmap
	switch op {
	case "=":
		return roaring.And(within, get(catValue(v))), nil
	case "!=":
		out = roaring.AndNot(all(), get(catValue(v)))
	case "in":
		out = roaring.FastOr(list()...)
	case "not_in":
		out = roaring.AndNot(all(), roaring.FastOr(list()...))
	case "is_set":
		out = all()
	case "is_not_set":
		return roaring.AndNot(within, all()), nil
	case "contains":
		needle := strings.ToLower(catValue(v))
		var parts []*roaring.Bitmap
		for s, b := range vals {
			if strings.Contains(strings.ToLower(s), needle) {
				parts = append(parts, b)
			}
		}
		out = roaring.FastOr(parts...)
	default:
		return nil, errs.Field(join(path, "op"), "invalid_condition", "%s: %q does not apply to %s, which is not numeric", pathOrRoot(path), op, attr)
	}
	out.And(within)
	return out, nil
}

// bounds turns a comparison into an inclusive integer range.
func intRange(op string, f float64) (lo, hi int64) {
	switch op {
	case "=":
		if f != math.Trunc(f) {
			return 1, 0 // empty
		}
		return int64(f), int64(f)
	case ">":
		return int64(math.Floor(f)) + 1, math.MaxInt64
	case ">=":
		return int64(math.Ceil(f)), math.MaxInt64
	case "<":
		return math.MinInt64, int64(math.Ceil(f)) - 1
	case "<=":
		return math.MinInt64, int64(math.Floor(f))
	}
	return 1, 0
}

func (x *Index) evalNum(attr, kind, op string, v any, env Env, path string, within *roaring.Bitmap) (*roaring.Bitmap, error) {
	col := x.nums[attr]
	if col == nil {
		col = newNumColumn()
	}
	scale := 1.0
	if env.AttrScale != nil && kind == AttrNumeric {
		scale = env.AttrScale(attr)
	}
	number := func(v any) (float64, bool) {
		f, ok := number(v)
		return f * scale, ok
	}
	// Each operator becomes inclusive ranges of stored values, possibly
	// negated (among customers with a value).
	var ranges [][2]int64
	negate := false
	switch op {
	case "=", ">", ">=", "<", "<=":
		f, _ := number(v)
		lo, hi := intRange(op, f)
		ranges = append(ranges, [2]int64{lo, hi})
	case "!=":
		f, _ := number(v)
		lo, hi := intRange("=", f)
		ranges, negate = append(ranges, [2]int64{lo, hi}), true
	case "between":
		l := v.([]any)
		a, _ := number(l[0])
		b, _ := number(l[1])
		ranges = append(ranges, [2]int64{int64(math.Ceil(a)), int64(math.Floor(b))})
	case "in", "not_in":
		items, _ := v.([]any)
		for _, it := range items {
			f, ok := number(it)
			if !ok {
				return nil, errs.Field(join(path, "value"), "invalid_condition", "%s: %s is numeric; list numbers", pathOrRoot(path), attr)
			}
			lo, hi := intRange("=", f)
			ranges = append(ranges, [2]int64{lo, hi})
		}
		negate = op == "not_in"
	case "is_set":
		return roaring.And(within, col.has), nil
	case "is_not_set":
		return roaring.AndNot(within, col.has), nil
	case "before", "after":
		if kind != AttrDate {
			return nil, errs.Field(join(path, "op"), "invalid_condition", "%s: %s applies to dates; %s is a number", pathOrRoot(path), op, attr)
		}
		d, _ := time.ParseInLocation(time.DateOnly, v.(string), env.Loc)
		if op == "before" {
			ranges = append(ranges, [2]int64{math.MinInt64, d.UnixMilli() - 1})
		} else {
			ranges = append(ranges, [2]int64{d.AddDate(0, 0, 1).UnixMilli(), math.MaxInt64})
		}
	case "within_last_days":
		if kind != AttrDate {
			return nil, errs.Field(join(path, "op"), "invalid_condition", "%s: %s applies to dates; %s is a number", pathOrRoot(path), op, attr)
		}
		n, _ := number(v)
		from, to := env.window(int(n), nil)
		ranges = append(ranges, [2]int64{from.UnixMilli(), to.UnixMilli()})
	case "contains":
		return nil, errs.Field(join(path, "op"), "invalid_condition", "%s: contains applies to text; %s is numeric", pathOrRoot(path), attr)
	default:
		return nil, errs.Field(join(path, "op"), "invalid_condition", "%s: unknown operator %q", pathOrRoot(path), op)
	}
	if n := within.GetCardinality(); n < col.has.GetCardinality()/16 {
		// Few candidates: check their values directly, in ordinal order
		// (the column is read front to back) and a block at a time.
		cand := roaring.And(within, col.has)
		var keep []uint32
		if negate {
			keep = make([]uint32, 0, cand.GetCardinality())
		}
		buf := make([]uint32, 512)
		it := cand.ManyIterator()
		for k := it.NextMany(buf); k > 0; k = it.NextMany(buf) {
			for _, o := range buf[:k] {
				val := col.val(o)
				in := false
				for _, r := range ranges {
					if val >= r[0] && val <= r[1] {
						in = true
						break
					}
				}
				if in != negate {
					keep = append(keep, o)
				}
			}
		}
		out := roaring.New()
		out.AddMany(keep)
		return out, nil
	}
	parts := make([]*roaring.Bitmap, 0, len(ranges))
	for _, r := range ranges {
		parts = append(parts, col.rangeOf(r[0], r[1]))
	}
	out := roaring.FastOr(parts...)
	if negate {
		out = roaring.AndNot(col.has, out)
	}
	out.And(within)
	return out, nil
}

// IDs returns the customer ids of up to limit ordinals of b, in id order.
func (x *Index) IDs(b *roaring.Bitmap, limit int) []int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]int64, 0, min(uint64(limit), b.GetCardinality()))
	it := b.Iterator()
	for it.HasNext() && len(out) < limit {
		o := it.Next()
		if int(o) < len(x.ids) {
			out = append(out, x.ids[o])
		}
	}
	return out
}

// Contains reports whether customer id is in the set of ordinals b.
func (x *Index) Contains(b *roaring.Bitmap, id int64) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	o, ok := x.lookup(id)
	return ok && b.Contains(o)
}
