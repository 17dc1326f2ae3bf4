package audience

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
)

func testEnv(x *Index, r refEval, tagIDs map[string]int64, scan Scanner) Env {
	return Env{
		Now: r.now, Loc: r.loc,
		TagID: func(_ context.Context, ref string) (int64, error) {
			if id, ok := tagIDs[ref]; ok {
				return id, nil
			}
			return 0, errs.NotFoundf("tag", "no tag %q", ref)
		},
		AttrKind: func(name string) (string, bool) { k, ok := r.kinds[name]; return k, ok },
		GroupsTagged: func(_ context.Context, name string) ([]string, error) {
			if chats, ok := refGroupTags[name]; ok {
				return chats, nil
			}
			return nil, errs.NotFoundf("group_tag", "no group tag %q", name)
		},
		Scan: scan,
	}
}

// The engine and the reference agree on random customers and random trees.
func TestEngineMatchesReference(t *testing.T) {
	t.Parallel()
	loc, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	ref := refEval{now: now, loc: loc, kinds: refKinds()}
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		profiles := randomProfiles(r, 300+r.IntN(500), now)
		x, tagIDs := loadIndex(profiles, ref.kinds, ref.env())
		x.Optimize()
		byID := map[int64]refProfile{}
		var order []int64
		for _, p := range profiles {
			byID[p.ID] = p
			order = append(order, p.ID)
		}
		env := testEnv(x, ref, tagIDs, refScanner{r: ref, byID: byID, order: order})
		for range 150 {
			c := randomCondition(r, 0)
			if err := c.Validate(); err != nil {
				t.Fatalf("generator made an invalid tree: %v", err)
			}
			got, err := x.Eval(context.Background(), c, env)
			if err != nil {
				t.Fatalf("seed %d: eval %s: %v", seed, dump(c), err)
			}
			gotIDs := x.IDs(got, len(profiles)+1)
			var want []int64
			for _, p := range profiles {
				if ref.match(p, c) {
					want = append(want, p.ID)
				}
			}
			// Matching one customer agrees with evaluating everyone.
			for _, p := range profiles[:8] {
				m, err := x.Match(context.Background(), c, env, p.ID)
				if err != nil {
					t.Fatal(err)
				}
				if m != slices.Contains(want, p.ID) {
					t.Fatalf("seed %d: %s: Match(%d) = %v", seed, dump(c), p.ID, m)
				}
			}
			if !slices.Equal(gotIDs, want) {
				t.Fatalf("seed %d: %s\nengine %d customers, reference %d\nonly engine: %v\nonly reference: %v",
					seed, dump(c), len(gotIDs), len(want), diff(gotIDs, want), diff(want, gotIDs))
			}
		}
	}
}

func dump(c Condition) string {
	b, _ := json.Marshal(c)
	return string(b)
}

func diff(a, b []int64) []int64 {
	var out []int64
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	if len(out) > 10 {
		out = out[:10]
	}
	return out
}

func TestNumericColumnRangesAcrossRebins(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 3))
	c := newNumColumn()
	vals := map[uint32]int64{}
	for i := range 20_000 {
		o := uint32(r.IntN(8000))
		if i%7 == 0 {
			c.set(o, nil)
			delete(vals, o)
			continue
		}
		v := int64(r.IntN(1000)) - 200
		if r.IntN(50) == 0 {
			v = int64(r.IntN(1 << 40))
		}
		c.set(o, &v)
		vals[o] = v
	}
	for range 300 {
		lo := int64(r.IntN(1400)) - 300
		hi := lo + int64(r.IntN(600))
		got := c.rangeOf(lo, hi)
		n := 0
		for o, v := range vals {
			in := v >= lo && v <= hi
			if in != got.Contains(o) {
				t.Fatalf("range [%d,%d]: ordinal %d (value %d) in=%v", lo, hi, o, v, in)
			}
			if in {
				n++
			}
		}
		if uint64(n) != got.GetCardinality() {
			t.Fatalf("range [%d,%d]: %d vs %d", lo, hi, n, got.GetCardinality())
		}
	}
}

func TestEvalErrorsNameThePath(t *testing.T) {
	t.Parallel()
	ref := refEval{now: time.Now(), loc: time.UTC, kinds: refKinds()}
	x := NewIndex()
	env := testEnv(x, ref, map[string]int64{}, nil)
	cases := map[string]string{
		`{"and": [{"attr": "city", "op": "=", "value": "上海"}, {"attr": "shoe_size", "op": ">", "value": 3}]}`: "and[1].attr",
		`{"or": [{"tag": "nope"}]}`:                                      "or[0]",
		`{"attr": "city", "op": ">", "value": 3}`:                        "op",
		`{"attr": "total_spend", "op": "before", "value": "2026-01-01"}`: "op",
		`{"event": "x", "count": {"op": ">=", "value": 3}}`:              "(root)",
	}
	for doc, path := range cases {
		c, err := Parse([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		_, err = x.Eval(context.Background(), c, env)
		e, ok := errs.As(err)
		if !ok || e.Kind != errs.Invalid || (len(e.Fields) > 0 && e.Fields[0].Location != path) {
			t.Errorf("%s: %v (fields %v), want invalid at %s", doc, err, fieldsOf(e), path)
		}
	}
}

// The production property matcher agrees with the reference's reading.
func TestMatchPropsAgreesWithReference(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 9))
	ref := refEval{now: time.Now(), loc: time.UTC}
	for range 2000 {
		e := refEvent{Props: map[string]any{"category": []string{"茶饮", "甜品"}[r.IntN(2)], "price": float64(r.IntN(60))}}
		if r.IntN(4) == 0 {
			delete(e.Props, "price")
		}
		ops := []string{"=", "!=", ">", ">=", "<", "<=", "in", "not_in", "contains", "is_set"}
		w := PropCond{Prop: []string{"category", "price"}[r.IntN(2)], Op: ops[r.IntN(len(ops))]}
		switch w.Op {
		case "in", "not_in":
			w.Value = []any{"茶饮", float64(r.IntN(60))}
		case "contains":
			w.Value = "茶"
		case "is_set":
		default:
			if w.Prop == "price" {
				w.Value = float64(r.IntN(60))
			} else {
				w.Value = "甜品"
			}
		}
		if got, want := MatchProps([]PropCond{w})(e.Props), ref.props(e, []PropCond{w}); got != want {
			t.Fatalf("%+v on %v: %v, reference %v", w, e.Props, got, want)
		}
	}
}
