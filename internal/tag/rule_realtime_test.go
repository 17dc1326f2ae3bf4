package tag_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/tag"
)

// realtimeGoal is issue 4's goal: p99 ≤ 100 ms from an event's commit to its
// tag being visible through the API.
const realtimeGoal = 100 * time.Millisecond

// tagLatency sends one matching event for a fresh customer through
// /v1/batch and returns the time from the 200 of /v1/batch (the event is
// committed) to the rule's tag being listed by /api/v1/customers/{id}/tags.
func tagLatency(t testing.TB, b *brand, i int) time.Duration {
	t.Helper()
	user := fmt.Sprintf("rt-%d-%d", i, time.Now().UnixNano())
	id := b.customer(t, user, customer.NewCustomer{})
	want := b.tags["抹茶爱好者"].ID
	b.track(t, user, map[string]any{"event": "view_product", "properties": map[string]any{"category": "抹茶", "sku": "MC-01"}})
	start := time.Now()
	deadline := start.Add(5 * time.Second)
	for {
		ts := b.tagsOf(t, id)
		if slices.ContainsFunc(ts, func(a tag.Applied) bool { return a.TagID == want && a.Source == tag.SourceRule }) {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("customer %d was not tagged within 5 s", id)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// matchaRule tags 抹茶爱好者 on a matcha product view, for customers not
// already holding 流失风险 (so the check goes through the audience index too).
func matchaRule(t testing.TB, b *brand) tag.Rule {
	t.Helper()
	return b.rule(t, map[string]any{
		"name":       "抹茶浏览",
		"trigger":    map[string]any{"kind": "event", "event": "view_product", "where": []any{map[string]any{"prop": "category", "op": "=", "value": "抹茶"}}},
		"conditions": map[string]any{"not": map[string]any{"tag": "流失风险"}},
		"add":        []any{b.tags["抹茶爱好者"].ID},
	})
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// TestRuleTagsWithinRealtimeGoal is issue 4's "done when": a rule that tags
// on an event applies within the real-time goal, the event sent through
// /v1/batch with a write key and the tag read back through the API.
func TestRuleTagsWithinRealtimeGoal(t *testing.T) {
	eachBrand(t, func(t *testing.T, b *brand) {
		r := matchaRule(t, b)
		tagLatency(t, b, -1) // warm up: the audience index builds on first use
		const n = 60
		var ds []time.Duration
		for i := range n {
			ds = append(ds, tagLatency(t, b, i))
		}
		p50, p99 := percentile(ds, 0.50), percentile(ds, 0.99)
		t.Logf("event commit → tag visible over %d events: p50 %v, p99 %v, max %v", n, p50, p99, slices.Max(ds))
		goal := realtimeGoal
		if raceDetector {
			// The race detector makes this path 10–30× slower (the SQLite
			// driver is Go translated from C, every access instrumented):
			// check only that tagging stays prompt. Run without -race, or
			// the benchmark, for the goal itself.
			goal = 3 * time.Second
		}
		if p99 > goal {
			t.Errorf("p99 %v is over the goal of %v", p99, goal)
		}
		var st tag.RuleStats
		b.must(t, "GET", fmt.Sprintf("/api/v1/tag-rules/%d/stats", r.ID), nil, 200, &st)
		if st.TimesFired != n+1 || st.CustomersChanged != n+1 || st.CustomersTagged != n+1 || st.LastFiredAt.IsZero() || st.LastError != "" {
			t.Errorf("stats %+v", st)
		}
	})
}

// BenchmarkRuleRealtime measures the same path: /v1/batch 200 → tag visible
// through the API, reporting p50 and p99 per engine.
func BenchmarkRuleRealtime(b *testing.B) {
	for _, e := range []db.Dialect{db.SQLite, db.Postgres} {
		b.Run(string(e), func(bb *testing.B) {
			if e == db.Postgres && !hasPostgres() {
				bb.Skip("SIYU_TEST_POSTGRES is not set")
			}
			br := newBrand(bb, e)
			matchaRule(bb, br)
			tagLatency(bb, br, -1)
			var ds []time.Duration
			for i := 0; bb.Loop(); i++ {
				ds = append(ds, tagLatency(bb, br, i))
			}
			bb.ReportMetric(float64(percentile(ds, 0.50).Microseconds())/1000, "p50-ms")
			bb.ReportMetric(float64(percentile(ds, 0.99).Microseconds())/1000, "p99-ms")
		})
	}
}
