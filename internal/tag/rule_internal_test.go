package tag

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/audience"
)

// TestMatchWhere checks that triggers filter properties as condition trees
// do (audience.MatchProps) and say which filter failed.
func TestMatchWhere(t *testing.T) {
	t.Parallel()
	var props map[string]any
	if err := json.Unmarshal([]byte(`{"category": "抹茶", "price": 38, "vip": true, "note": null, "title": "Uji Matcha Latte"}`), &props); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		prop, op string
		value    any
		want     bool
	}{
		{"category", "=", "抹茶", true},
		{"category", "=", "乌龙", false},
		{"category", "!=", "乌龙", true},
		{"missing", "!=", "x", false}, // a missing property fails every comparison
		{"price", "=", 38.0, true},
		{"price", ">", 38.0, false},
		{"price", "<=", 38.0, true},
		{"category", ">", 1.0, false},
		{"vip", "=", true, true},
		{"category", "in", []any{"乌龙", "抹茶"}, true},
		{"category", "not_in", []any{"乌龙", "抹茶"}, false},
		{"title", "contains", "MATCHA", true},
		{"note", "is_set", nil, false},
		{"price", "is_set", nil, true},
	}
	for _, c := range cases {
		i, _ := matchWhere([]audience.PropCond{{Prop: c.prop, Op: c.op, Value: c.value}}, props)
		if got := i < 0; got != c.want {
			t.Errorf("%s %s %v: got %v", c.prop, c.op, c.value, got)
		}
	}
	i, why := matchWhere([]audience.PropCond{{Prop: "category", Op: "=", Value: "抹茶"}, {Prop: "price", Op: ">=", Value: 50.0}}, props)
	if i != 1 || !strings.Contains(why, "price is 38") {
		t.Errorf("matchWhere: %d %q", i, why)
	}
}

func TestNextRun(t *testing.T) {
	t.Parallel()
	sh, _ := time.LoadLocation("Asia/Shanghai")
	ny, _ := time.LoadLocation("America/New_York")
	cases := []struct {
		at   string
		loc  *time.Location
		now  time.Time
		want time.Time
	}{
		// 02:00 UTC is 10:00 in Shanghai: 03:00 is tomorrow there.
		{"03:00", sh, time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC), time.Date(2026, 5, 2, 3, 0, 0, 0, sh)},
		{"23:30", sh, time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 23, 30, 0, 0, sh)},
		// Exactly at the time: the next day (the run at that instant is due).
		{"10:00", sh, time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC), time.Date(2026, 5, 2, 10, 0, 0, 0, sh)},
		// Across a daylight-saving change the wall time holds.
		{"03:00", ny, time.Date(2026, 3, 7, 12, 0, 0, 0, ny), time.Date(2026, 3, 8, 3, 0, 0, 0, ny)},
	}
	for _, c := range cases {
		if got := nextRun(c.at, c.loc, c.now); !got.Equal(c.want) {
			t.Errorf("%s after %v: %v, want %v", c.at, c.now, got, c.want)
		}
	}
}

func TestDigest(t *testing.T) {
	t.Parallel()
	a := map[string]any{"city": "上海", "gender": "", "vip_level": 3.0}
	d1, set := digest(a, []string{"city", "vip_level"})
	if !set {
		t.Fatal("set")
	}
	if d2, _ := digest(map[string]any{"city": "上海", "vip_level": 3.0, "other": 1}, []string{"city", "vip_level"}); d2 != d1 {
		t.Error("unwatched attributes changed the digest")
	}
	if d3, _ := digest(map[string]any{"city": "北京", "vip_level": 3.0}, []string{"city", "vip_level"}); d3 == d1 {
		t.Error("a change kept the digest")
	}
	// Empty text and absent are both unset.
	e1, set1 := digest(map[string]any{"gender": ""}, []string{"gender"})
	e2, set2 := digest(map[string]any{}, []string{"gender"})
	if e1 != e2 || set1 || set2 {
		t.Error("empty is not unset")
	}
}

func TestExprBudgets(t *testing.T) {
	t.Parallel()
	if _, err := compileExpr(strings.Repeat("1 + ", 600) + "1 > 0"); err == nil {
		t.Error("an expression over the node limit compiled")
	}
	p, err := compileExpr(`len(map(1..1000000, # * 2)) > 0`)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := p.run(exprEnv()); err == nil || !strings.Contains(err.Error(), "memory budget") {
		t.Errorf("memory budget: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a budgeted run took %v", d)
	}
	p, err = compileExpr(`customer.total_spend >= 50000 && "价值/高价值" in customer.tags && event?.properties?.x == nil`)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := p.run(map[string]any{"customer": map[string]any{"total_spend": int64(60000), "tags": []string{"价值/高价值"}}, "event": nil, "order": nil})
	if err != nil || !ok {
		t.Errorf("run: %v %v", ok, err)
	}
}
