package audience_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/tenant"
)

type fixture struct {
	d      *db.DB
	cust   *customer.Service
	aud    *audience.Service
	tenant int64
}

func newFixture(t *testing.T, d *db.DB) fixture {
	ctx := context.Background()
	ts := tenant.NewService(d, tenant.Options{})
	w, err := ts.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "aud", Name: "Audiences"})
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	rand.Read(master)
	kr, _ := pii.NewKeyring(master)
	cust := customer.NewService(d, kr, nil)
	aud := audience.NewService(d, audience.Sources{
		Profiles: cust,
		Feeds:    audience.ChangeFeeds{Profiles: cust},
		Location: func(ctx context.Context, id int64) (*time.Location, error) {
			w, err := ts.Workspace(ctx, id)
			return w.Location(), err
		},
	}, nil)
	return fixture{d: d, cust: cust, aud: aud, tenant: w.ID}
}

var (
	cities = []string{"上海", "杭州", "北京", "成都"}
	prefs  = []string{"乌龙", "抹茶", "果茶"}
)

func (f fixture) seed(t *testing.T, r *mrand.Rand, n int) {
	ctx := context.Background()
	err := f.d.Tx(ctx, func(tx *sql.Tx) error {
		for i := range n {
			traits := map[string]any{}
			if r.IntN(5) > 0 {
				traits["city"] = cities[r.IntN(len(cities))]
			}
			if r.IntN(4) > 0 {
				traits["gender"] = []string{"male", "female"}[r.IntN(2)]
			}
			if r.IntN(2) == 0 {
				traits["tea_pref"] = prefs[r.IntN(len(prefs))]
			}
			if r.IntN(2) == 0 {
				traits["vip_level"] = float64(r.IntN(5)) + []float64{0, 0.5}[r.IntN(2)]
			}
			if r.IntN(2) == 0 {
				traits["member_since"] = time.Date(2020+r.IntN(6), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
			}
			if _, err := f.cust.Resolve(ctx, tx, f.tenant, customer.Observation{
				Identities: []customer.Identity{{Kind: customer.KindUserID, Value: fmt.Sprintf("u%d", i)}},
				Traits:     traits, Source: []string{"store", "miniapp", "douyin_live"}[r.IntN(3)],
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// refRow is a profile read back with plain SQL, for the reference.
type refRow struct {
	id                   int64
	city, gender, source string
	traits               map[string]any
}

func (f fixture) reference(t *testing.T) []refRow {
	rows, err := f.d.Query(`SELECT id, city, gender, first_source, traits FROM customers WHERE tenant_id = $1 AND merged_into IS NULL ORDER BY id`, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []refRow
	for rows.Next() {
		var r refRow
		var traits string
		if err := rows.Scan(&r.id, &r.city, &r.gender, &r.source, &traits); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal([]byte(traits), &r.traits)
		out = append(out, r)
	}
	return out
}

func refMatch(r refRow, c audience.Condition) bool {
	switch c.Kind() {
	case "and":
		for _, k := range c.And {
			if !refMatch(r, k) {
				return false
			}
		}
		return true
	case "or":
		return slices.ContainsFunc(c.Or, func(k audience.Condition) bool { return refMatch(r, k) })
	case "not":
		return !refMatch(r, *c.Not)
	case "source":
		return r.source == c.Source
	}
	var cur any
	switch c.Attr {
	case "city":
		cur = r.city
	case "gender":
		cur = r.gender
	default:
		cur = r.traits[c.Attr]
	}
	if s, ok := cur.(string); ok && s == "" {
		cur = nil
	}
	switch c.Op {
	case "is_set":
		return cur != nil
	case "is_not_set":
		return cur == nil
	}
	if cur == nil {
		return false
	}
	switch v := cur.(type) {
	case string:
		if c.Attr == "member_since" {
			d, _ := time.Parse(time.DateOnly, v)
			lim, _ := time.Parse(time.DateOnly, c.Value.(string))
			if c.Op == "before" {
				return d.Before(lim)
			}
			return d.After(lim)
		}
		switch c.Op {
		case "=":
			return v == c.Value
		case "!=":
			return v != c.Value
		case "in", "not_in":
			in := slices.ContainsFunc(c.Value.([]any), func(x any) bool { return x == v })
			return in == (c.Op == "in")
		case "contains":
			return strings.Contains(v, c.Value.(string))
		}
	case float64:
		want := c.Value.(float64)
		switch c.Op {
		case "=":
			return v == want
		case "!=":
			return v != want
		case ">":
			return v > want
		case ">=":
			return v >= want
		case "<":
			return v < want
		case "<=":
			return v <= want
		}
	}
	panic(fmt.Sprintf("reference: %+v", c))
}

func randomTree(r *mrand.Rand, depth int) audience.Condition {
	if depth < 2 && r.IntN(3) == 0 {
		kids := []audience.Condition{randomTree(r, depth+1), randomTree(r, depth+1)}
		switch r.IntN(3) {
		case 0:
			return audience.Condition{And: kids}
		case 1:
			return audience.Condition{Or: kids}
		default:
			return audience.Condition{Not: &kids[0]}
		}
	}
	switch r.IntN(6) {
	case 0:
		return audience.Condition{Attr: "city", Op: []string{"=", "!=", "is_set", "is_not_set"}[r.IntN(4)], Value: cities[r.IntN(len(cities))]}
	case 1:
		return audience.Condition{Attr: "tea_pref", Op: "in", Value: []any{prefs[r.IntN(3)], prefs[r.IntN(3)]}}
	case 2:
		return audience.Condition{Attr: "vip_level", Op: []string{"=", "!=", ">", ">=", "<", "<="}[r.IntN(6)], Value: float64(r.IntN(5)) + []float64{0, 0.5}[r.IntN(2)]}
	case 3:
		return audience.Condition{Attr: "member_since", Op: []string{"before", "after"}[r.IntN(2)], Value: fmt.Sprintf("%d-06-15", 2020+r.IntN(6))}
	case 4:
		return audience.Condition{Source: []string{"store", "miniapp", "douyin_live"}[r.IntN(3)]}
	default:
		return audience.Condition{Attr: "gender", Op: "=", Value: []string{"male", "female"}[r.IntN(2)]}
	}
}

func fixValues(c *audience.Condition) {
	for i := range c.And {
		fixValues(&c.And[i])
	}
	for i := range c.Or {
		fixValues(&c.Or[i])
	}
	if c.Not != nil {
		fixValues(c.Not)
	}
	if c.Op == "is_set" || c.Op == "is_not_set" {
		c.Value = nil
	}
}

// The engine answers exactly what plain SQL reads of the same profiles say.
func TestDifferentialAgainstDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		r := mrand.New(mrand.NewPCG(11, 5))
		f.seed(t, r, 400)
		ctx := context.Background()
		// Custom attributes are indexed by their catalogued type; defining
		// member_since as a date makes before/after apply.
		if _, err := f.cust.DefineAttribute(ctx, f.tenant, "member_since", "入会日期", customer.TypeDate); err != nil {
			t.Fatal(err)
		}
		ref := f.reference(t)
		for range 300 {
			c := randomTree(r, 0)
			fixValues(&c)
			res, err := f.aud.Evaluate(ctx, f.tenant, c)
			if err != nil {
				t.Fatalf("%s: %v", mustJSON(c), err)
			}
			var want []int64
			for _, row := range ref {
				if refMatch(row, c) {
					want = append(want, row.id)
				}
			}
			got := res.IDs(0, len(ref)+1)
			if !slices.Equal(got, want) || res.Count != int64(len(want)) {
				t.Fatalf("%s: engine %d (%d), reference %d", mustJSON(c), len(got), res.Count, len(want))
			}
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Saved audiences stay live: a profile change moves membership and records
// who entered and left.
func TestSavedAudienceIsLive(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		resolve := func(user, city string) int64 {
			var id int64
			err := f.d.Tx(ctx, func(tx *sql.Tx) error {
				var err error
				id, err = f.cust.Resolve(ctx, tx, f.tenant, customer.Observation{
					Identities: []customer.Identity{{Kind: customer.KindUserID, Value: user}}, Traits: map[string]any{"city": city}})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		a := resolve("a", "上海")
		b := resolve("b", "杭州")
		sh, err := f.aud.CreateAudience(ctx, f.tenant, "test", audience.AudienceInput{Name: "上海客户",
			Conditions: audience.Condition{Attr: "city", Op: "=", Value: "上海"}})
		if err != nil {
			t.Fatal(err)
		}
		if sh.MemberCount != 1 {
			t.Fatalf("members %d", sh.MemberCount)
		}
		// b moves to Shanghai, a leaves; the index follows the database
		// without being told.
		resolve("b", "上海")
		resolve("a", "北京")
		if err := f.aud.Sync(ctx, f.tenant); err != nil {
			t.Fatal(err)
		}
		if n, _ := f.aud.Count(ctx, f.tenant, audience.Condition{Attr: "city", Op: "=", Value: "北京"}); n != 1 {
			t.Fatalf("after sync, %d customers in 北京", n)
		}
		if err := f.aud.Reevaluate(ctx, f.tenant); err != nil {
			t.Fatal(err)
		}
		changes, err := f.aud.Changes(ctx, f.tenant, sh.ID, pageAll())
		if err != nil {
			t.Fatal(err)
		}
		var log []string
		for _, c := range changes.Items {
			log = append(log, fmt.Sprintf("%d:%v", c.CustomerID, c.Entered))
		}
		want := []string{fmt.Sprintf("%d:false", a), fmt.Sprintf("%d:true", b), fmt.Sprintf("%d:true", a)}
		slices.Sort(log)
		slices.Sort(want)
		if !slices.Equal(log, want) {
			t.Fatalf("changes %v, want %v", log, want)
		}
		// Audiences can use audiences, but never in a cycle.
		nested, err := f.aud.CreateAudience(ctx, f.tenant, "test", audience.AudienceInput{Name: "上海女性",
			Conditions: audience.Condition{And: []audience.Condition{{Audience: sh.ID}, {Attr: "gender", Op: "is_not_set"}}}})
		if err != nil || nested.MemberCount != 1 {
			t.Fatalf("nested: %+v %v", nested, err)
		}
		_, err = f.aud.UpdateAudience(ctx, f.tenant, sh.ID, audience.AudienceInput{Name: "上海客户", Conditions: audience.Condition{Audience: nested.ID}})
		if errs.CodeOf(err) != "audience_cycle" {
			t.Fatalf("cycle: %v", err)
		}
		if err := f.aud.ArchiveAudience(ctx, f.tenant, sh.ID); errs.CodeOf(err) != "audience_in_use" {
			t.Fatalf("archive in use: %v", err)
		}
		_, err = f.aud.CreateAudience(ctx, f.tenant, "test", audience.AudienceInput{Name: "bad", Conditions: audience.Condition{Attr: "shoe_size", Op: ">", Value: 40.0}})
		if errs.CodeOf(err) != "unknown_attribute" {
			t.Fatalf("unknown attribute: %v", err)
		}
	})
}

func pageAll() page.Request { return page.Request{Limit: page.MaxLimit} }
