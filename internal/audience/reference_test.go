package audience

import (
	"context"
	"fmt"

	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
)

// refProfile is one customer as the reference evaluator sees it: plain data,
// no bitmaps.
type refProfile struct {
	ID     int64
	Live   bool
	Cats   map[string]string
	Nums   map[string]int64
	Tags   map[string]bool // tag refs
	Groups map[string]bool // customer groups (chat ids) the customer is in
	Events []refEvent
}

type refEvent struct {
	Name  string
	At    time.Time
	Props map[string]any
}

// refEval is the reference: a direct reading of the documented semantics,
// one customer at a time.
type refEval struct {
	now   time.Time
	loc   *time.Location
	kinds map[string]string
}

func (r refEval) env() Env { return Env{Now: r.now, Loc: r.loc} }

func (r refEval) match(p refProfile, c Condition) bool {
	if !p.Live {
		return false
	}
	switch c.Kind() {
	case "and":
		for _, s := range c.And {
			if !r.match(p, s) {
				return false
			}
		}
		return true
	case "or":
		for _, s := range c.Or {
			if r.match(p, s) {
				return true
			}
		}
		return false
	case "not":
		return !r.match(p, *c.Not)
	case "tag":
		switch {
		case c.Tag != "":
			return p.Tags[c.Tag]
		case c.TagsAny != nil:
			return slices.ContainsFunc(c.TagsAny, func(t string) bool { return p.Tags[t] })
		case c.TagsAll != nil:
			return !slices.ContainsFunc(c.TagsAll, func(t string) bool { return !p.Tags[t] })
		default:
			return !slices.ContainsFunc(c.TagsNone, func(t string) bool { return p.Tags[t] })
		}
	case "attr":
		return r.attr(p, c.Attr, c.Op, c.Value)
	case "source":
		if c.Source != "" {
			return p.Cats["source"] == c.Source
		}
		return p.Cats["source_code"] == c.SourceCode
	case "event":
		from, to := r.env().window(c.WithinDays, c.Between)
		n := 0
		for _, e := range p.Events {
			if e.Name != c.Event || (!from.IsZero() && (e.At.Before(from) || e.At.After(to))) {
				continue
			}
			if !r.props(e, c.Where) {
				continue
			}
			n++
		}
		if c.Count == nil {
			return n >= 1
		}
		return cmpInt(n, c.Count.Op, c.Count.Value)
	case "group":
		switch {
		case c.Group != "":
			return p.Groups[c.Group]
		case c.GroupTag != "":
			return slices.ContainsFunc(refGroupTags[c.GroupTag], func(g string) bool { return p.Groups[g] })
		}
		return slices.ContainsFunc(c.GroupsAny, func(g string) bool { return p.Groups[g] })
	}
	panic("reference: unsupported kind " + c.Kind())
}

func cmpInt(n int, op string, v int) bool {
	switch op {
	case "=":
		return n == v
	case "!=":
		return n != v
	case ">":
		return n > v
	case ">=":
		return n >= v
	case "<":
		return n < v
	case "<=":
		return n <= v
	}
	return false
}

func cmpFloat(a float64, op string, b float64) bool {
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

func (r refEval) props(e refEvent, where []PropCond) bool {
	for _, w := range where {
		v, ok := e.Props[w.Prop]
		switch w.Op {
		case "is_set":
			if !ok {
				return false
			}
			continue
		}
		if !ok {
			return false
		}
		switch w.Op {
		case "=", "!=":
			eq := fmt.Sprint(normalize(v)) == fmt.Sprint(normalize(w.Value))
			if eq != (w.Op == "=") {
				return false
			}
		case "in", "not_in":
			in := false
			for _, it := range w.Value.([]any) {
				if fmt.Sprint(normalize(v)) == fmt.Sprint(normalize(it)) {
					in = true
				}
			}
			if in != (w.Op == "in") {
				return false
			}
		case "contains":
			s, _ := v.(string)
			if !strings.Contains(strings.ToLower(s), strings.ToLower(fmt.Sprint(w.Value))) {
				return false
			}
		default:
			a, ok1 := number(v)
			b, ok2 := number(w.Value)
			if !ok1 || !ok2 || !cmpFloat(a, w.Op, b) {
				return false
			}
		}
	}
	return true
}

func normalize(v any) any {
	if f, ok := number(v); ok {
		return f
	}
	return v
}

func (r refEval) attr(p refProfile, name, op string, v any) bool {
	if r.kinds[name] == AttrCategorical {
		cur, set := p.Cats[name], p.Cats[name] != ""
		switch op {
		case "is_set":
			return set
		case "is_not_set":
			return !set
		case "=":
			return set && cur == catValue(v)
		case "!=":
			return set && cur != catValue(v)
		case "in", "not_in":
			in := slices.ContainsFunc(v.([]any), func(it any) bool { return catValue(it) == cur })
			return set && in == (op == "in")
		case "contains":
			return set && strings.Contains(strings.ToLower(cur), strings.ToLower(catValue(v)))
		}
		panic("reference: op " + op)
	}
	cur, set := p.Nums[name]
	switch op {
	case "is_set":
		return set
	case "is_not_set":
		return !set
	}
	if !set {
		return false
	}
	x := float64(cur)
	switch op {
	case "between":
		l := v.([]any)
		a, _ := number(l[0])
		b, _ := number(l[1])
		return x >= a && x <= b
	case "in", "not_in":
		in := slices.ContainsFunc(v.([]any), func(it any) bool { f, _ := number(it); return f == x })
		return in == (op == "in")
	case "before":
		d, _ := time.ParseInLocation(time.DateOnly, v.(string), r.loc)
		return cur < d.UnixMilli()
	case "after":
		d, _ := time.ParseInLocation(time.DateOnly, v.(string), r.loc)
		return cur >= d.AddDate(0, 0, 1).UnixMilli()
	case "within_last_days":
		n, _ := number(v)
		from, to := r.env().window(int(n), nil)
		return cur >= from.UnixMilli() && cur <= to.UnixMilli()
	}
	f, _ := number(v)
	return cmpFloat(x, op, f)
}

// ---- random data and trees ----

var (
	refCities  = []string{"上海", "杭州", "北京", "深圳", "成都"}
	refSources = []string{"store", "miniapp", "douyin_live", "tmall_parcel"}
	refTags    = []string{"价值/高价值", "价值/潜力", "偏好/乌龙", "偏好/抹茶", "偏好/果茶", "属性/学生", "属性/白领"}
	refEvents  = []string{"view_product", "add_to_cart", "order_completed"}
	refGroups  = []string{"wrTeaLovers", "wrStoreSH01", "wrNewProducts"}
	// refGroupTags are group tags and the groups carrying them.
	refGroupTags = map[string][]string{"门店群": {"wrStoreSH01"}, "兴趣群": {"wrTeaLovers", "wrNewProducts"}, "空标签": nil}
)

func refKinds() map[string]string {
	return map[string]string{
		"city": AttrCategorical, "gender": AttrCategorical, "source": AttrCategorical, "source_code": AttrCategorical,
		"tea_pref": AttrCategorical, "total_spend": AttrNumeric, "order_count": AttrNumeric, "vip_level": AttrNumeric,
		"last_order_at": AttrDate, "birthday": AttrDate,
	}
}

func randomProfiles(r *rand.Rand, n int, now time.Time) []refProfile {
	out := make([]refProfile, n)
	for i := range out {
		p := refProfile{ID: int64(1000 + i*3 + r.IntN(3)), Live: r.IntN(20) > 0, Cats: map[string]string{}, Nums: map[string]int64{}, Tags: map[string]bool{}}
		if r.IntN(10) > 0 {
			p.Cats["city"] = refCities[r.IntN(len(refCities))]
		}
		if r.IntN(10) > 1 {
			p.Cats["gender"] = []string{"male", "female"}[r.IntN(2)]
		}
		p.Cats["source"] = refSources[r.IntN(len(refSources))]
		if p.Cats["source"] == "store" {
			p.Cats["source_code"] = fmt.Sprintf("store-SH-%02d", r.IntN(4))
		}
		if r.IntN(3) == 0 {
			p.Cats["tea_pref"] = []string{"乌龙", "抹茶", "oolong milk"}[r.IntN(3)]
		}
		if r.IntN(4) > 0 {
			p.Nums["order_count"] = int64(r.IntN(12))
			p.Nums["total_spend"] = int64(r.IntN(200_000))
			p.Nums["last_order_at"] = now.Add(-time.Duration(r.Int64N(int64(400 * 24 * time.Hour)))).UnixMilli()
		}
		if r.IntN(2) == 0 {
			p.Nums["vip_level"] = int64(r.IntN(6) - 1)
		}
		if r.IntN(3) > 0 {
			p.Nums["birthday"] = time.Date(1970+r.IntN(35), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).UnixMilli()
		}
		for _, t := range refTags {
			if r.IntN(4) == 0 {
				p.Tags[t] = true
			}
		}
		p.Groups = map[string]bool{}
		for _, g := range refGroups {
			if r.IntN(5) == 0 {
				p.Groups[g] = true
			}
		}
		for range r.IntN(8) {
			p.Events = append(p.Events, refEvent{
				Name:  refEvents[r.IntN(len(refEvents))],
				At:    now.Add(-time.Duration(r.Int64N(int64(60 * 24 * time.Hour)))),
				Props: map[string]any{"category": []string{"茶饮", "甜品", "周边"}[r.IntN(3)], "price": float64(r.IntN(60))},
			})
		}
		out[i] = p
	}
	return out
}

func randomCondition(r *rand.Rand, depth int) Condition {
	if depth < 3 && r.IntN(3) == 0 {
		n := 1 + r.IntN(3)
		kids := make([]Condition, n)
		for i := range kids {
			kids[i] = randomCondition(r, depth+1)
		}
		switch r.IntN(3) {
		case 0:
			return Condition{And: kids}
		case 1:
			return Condition{Or: kids}
		default:
			return Condition{Not: &kids[0]}
		}
	}
	pick := func(list []string) string { return list[r.IntN(len(list))] }
	anyList := func(list []string, n int) []any {
		var out []any
		for range n {
			out = append(out, pick(list))
		}
		return out
	}
	switch r.IntN(9) {
	case 0:
		return Condition{Tag: pick(refTags)}
	case 1:
		return Condition{TagsAll: []string{pick(refTags), pick(refTags)}}
	case 2:
		return Condition{TagsNone: []string{pick(refTags), pick(refTags)}}
	case 3:
		ops := []string{"=", "!=", "in", "not_in", "is_set", "is_not_set", "contains"}
		op := pick(ops)
		attr := pick([]string{"city", "gender", "tea_pref", "source"})
		vals := map[string][]string{"city": refCities, "gender": {"male", "female"}, "tea_pref": {"乌龙", "抹茶", "milk"}, "source": refSources}[attr]
		c := Condition{Attr: attr, Op: op}
		switch op {
		case "in", "not_in":
			c.Value = anyList(vals, 1+r.IntN(2))
		case "is_set", "is_not_set":
		default:
			c.Value = pick(vals)
		}
		return c
	case 4:
		ops := []string{"=", "!=", ">", ">=", "<", "<=", "between", "is_set", "is_not_set", "in", "not_in"}
		op := pick(ops)
		attr := pick([]string{"total_spend", "order_count", "vip_level"})
		hi := map[string]int{"total_spend": 200_000, "order_count": 12, "vip_level": 5}[attr]
		c := Condition{Attr: attr, Op: op}
		switch op {
		case "between":
			a, b := r.IntN(hi), r.IntN(hi)
			c.Value = []any{float64(min(a, b)), float64(max(a, b))}
		case "in", "not_in":
			c.Value = []any{float64(r.IntN(hi)), float64(r.IntN(hi))}
		case "is_set", "is_not_set":
		default:
			f := float64(r.IntN(hi+2) - 1)
			if r.IntN(4) == 0 {
				f += 0.5
			}
			c.Value = f
		}
		return c
	case 5:
		op := pick([]string{"before", "after", "within_last_days", "is_set"})
		c := Condition{Attr: pick([]string{"last_order_at", "birthday"}), Op: op}
		switch op {
		case "within_last_days":
			c.Value = float64(1 + r.IntN(200))
		case "before", "after":
			c.Value = time.Date(2025+r.IntN(2), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
		}
		return c
	case 6:
		c := Condition{Event: pick(refEvents)}
		switch r.IntN(3) {
		case 0:
			c.WithinDays = 1 + r.IntN(45)
		case 1:
			c.Between = []string{"2026-10-01", "2026-10-20"}
		}
		switch r.IntN(4) {
		case 0:
			c.Count = &CountCond{Op: "=", Value: 0}
		case 1:
			c.Count = &CountCond{Op: ">=", Value: 1 + r.IntN(3)}
		case 2:
			c.Where = []PropCond{{Prop: "category", Op: "=", Value: pick([]string{"茶饮", "甜品"})}}
		}
		return c
	case 7:
		if r.IntN(2) == 0 {
			return Condition{Source: pick(refSources)}
		}
		return Condition{SourceCode: fmt.Sprintf("store-SH-%02d", r.IntN(4))}
	default:
		if r.IntN(2) == 0 {
			return Condition{Tag: pick(refTags)}
		}
		// Groups, including one nobody is in.
		all := append(slices.Clone(refGroups), "wrNobody")
		switch r.IntN(3) {
		case 0:
			return Condition{Group: pick(all)}
		case 1:
			return Condition{GroupTag: pick([]string{"门店群", "兴趣群", "空标签"})}
		}
		return Condition{GroupsAny: []string{pick(all), pick(all)}}
	}
}

// refScanner answers scan predicates from the reference data, as the
// database does for the real engine.
type refScanner struct {
	r     refEval
	byID  map[int64]refProfile
	order []int64
}

func (s refScanner) EventCounts(_ context.Context, c Condition, from, to time.Time) (map[int64]int64, error) {
	out := map[int64]int64{}
	for _, id := range s.order {
		for _, e := range s.byID[id].Events {
			if e.Name != c.Event || (!from.IsZero() && (e.At.Before(from) || e.At.After(to))) || !s.r.props(e, c.Where) {
				continue
			}
			out[id]++
		}
	}
	return out, nil
}

func (s refScanner) OrderValues(context.Context, OrderCond, time.Time, time.Time) (map[int64]int64, error) {
	return nil, errs.E(errs.Invalid, "unsupported", "not in the reference")
}

func loadIndex(profiles []refProfile, kinds map[string]string, env Env) (*Index, map[string]int64) {
	x := NewIndex()
	tagIDs := map[string]int64{}
	for i, t := range refTags {
		tagIDs[t] = int64(i + 1)
	}
	for _, p := range profiles {
		live := p.Live
		ip := Profile{ID: p.ID, Live: &live, Cats: map[string]string{}, Nums: map[string]*int64{}}
		for a, k := range kinds {
			if k == AttrCategorical {
				ip.Cats[a] = p.Cats[a]
			} else if v, ok := p.Nums[a]; ok {
				ip.Nums[a] = &v
			}
		}
		x.SetProfile(ip)
		var tags []int64
		for t := range p.Tags {
			tags = append(tags, tagIDs[t])
		}
		x.SetTags(p.ID, tags, nil)
		var groups []string
		for g := range p.Groups {
			groups = append(groups, g)
		}
		x.SetAllGroups(p.ID, groups)
		for _, e := range p.Events {
			x.AddEvent(p.ID, e.Name, env.day(e.At))
		}
	}
	return x, tagIDs
}
