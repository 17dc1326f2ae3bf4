package tag_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/tag"
)

func (b *brand) stats(t testing.TB, ruleID int64) tag.RuleStats {
	t.Helper()
	var st tag.RuleStats
	b.must(t, "GET", fmt.Sprintf("/api/v1/tag-rules/%d/stats", ruleID), nil, http.StatusOK, &st)
	return st
}

// history returns the customer's tag history rows (source, source_ref,
// action, tag) in order.
func (b *brand) history(t testing.TB, customerID int64) []string {
	t.Helper()
	rows, err := b.App.DB.Query(`SELECT action, tag_id, source, source_ref FROM tag_history WHERE tenant_id = $1 AND customer_id = $2 ORDER BY id`,
		b.ws.ID, customerID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var action, source, ref string
		var tagID int64
		if err := rows.Scan(&action, &tagID, &source, &ref); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %d %s %s", action, tagID, source, ref))
	}
	return out
}

func TestRuleEventTrigger(t *testing.T) {
	eachBrand(t, func(t *testing.T, b *brand) {
		matcha := b.tags["抹茶爱好者"]
		// Twice within 30 days, matcha only, and only customers who are
		// not already at risk.
		r := b.rule(t, map[string]any{
			"name": "抹茶爱好者",
			"trigger": map[string]any{"kind": "event", "event": "view_product", "count": 2, "within_days": 30,
				"where": []any{map[string]any{"prop": "category", "op": "=", "value": "抹茶"}}},
			"conditions": map[string]any{"not": map[string]any{"tag": "自动/流失风险"}},
			"add":        []any{matcha.ID},
			"remove":     []any{"自动/流失风险"},
		})
		if r.Trigger.Count != 2 || !r.Enabled || r.TagRefs[fmt.Sprint(matcha.ID)] != "自动/抹茶爱好者" || len(r.Remove) != 1 {
			t.Fatalf("rule %+v", r)
		}
		view := func(cat string) map[string]any {
			return map[string]any{"event": "view_product", "properties": map[string]any{"category": cat, "sku": "SKU-" + cat}}
		}
		fan := b.customer(t, "fan", customer.NewCustomer{})
		b.track(t, "fan", view("抹茶"))
		b.track(t, "fan", view("乌龙"), map[string]any{"event": "add_to_cart", "properties": map[string]any{"category": "抹茶"}})
		never(t, "tagged after one matcha view", 300*time.Millisecond, func() bool { return b.has(t, fan, "抹茶爱好者") })
		b.track(t, "fan", view("抹茶"))
		eventually(t, "tagged on the second matcha view", func() bool { return b.has(t, fan, "抹茶爱好者") })
		ts := b.tagsOf(t, fan)
		if ts[0].Source != tag.SourceRule || ts[0].SourceRef != fmt.Sprintf("rule:%d", r.ID) || ts[0].AppliedBy != "抹茶爱好者" {
			t.Fatalf("application %+v", ts[0])
		}

		// Idempotent: a third view fires the rule again and changes nothing.
		before := b.history(t, fan)
		b.track(t, "fan", view("抹茶"))
		eventually(t, "fired three times", func() bool { return b.stats(t, r.ID).TimesFired == 2 })
		if after := b.history(t, fan); !slices.Equal(before, after) {
			t.Fatalf("history changed by a repeat: %v → %v", before, after)
		}

		// The condition: a customer at risk is not tagged (and keeps the
		// tag the rule would remove, since the rule does not fire).
		risky := b.customer(t, "risky", customer.NewCustomer{})
		if _, err := b.App.Tags.Apply(context.Background(), b.ws.ID, risky, []int64{b.tags["流失风险"].ID}, tag.ByPrincipal(b.p)); err != nil {
			t.Fatal(err)
		}
		b.track(t, "risky", view("抹茶"), view("抹茶"))
		never(t, "a customer at risk tagged", 300*time.Millisecond, func() bool { return b.has(t, risky, "抹茶爱好者") })
		st := b.stats(t, r.ID)
		if st.TimesFired != 2 || st.CustomersChanged != 1 || st.CustomersTagged != 1 || st.LastError != "" {
			t.Fatalf("stats %+v", st)
		}

		// Disabled rules do not fire; enabled again they do.
		b.must(t, "POST", fmt.Sprintf("/api/v1/tag-rules/%d/disable", r.ID), nil, http.StatusOK, &r)
		if r.Enabled {
			t.Fatal("still enabled")
		}
		other := b.customer(t, "other", customer.NewCustomer{})
		b.track(t, "other", view("抹茶"), view("抹茶"))
		never(t, "a disabled rule fired", 300*time.Millisecond, func() bool { return b.has(t, other, "抹茶爱好者") })
		b.must(t, "POST", fmt.Sprintf("/api/v1/tag-rules/%d/enable", r.ID), nil, http.StatusOK, &r)
		b.track(t, "other", view("抹茶"))
		eventually(t, "enabled rule fired", func() bool { return b.has(t, other, "抹茶爱好者") })
	})
}

func order(id string, customerID int64, paidFen int64, cat string) commerce.OrderInput {
	return commerce.OrderInput{Source: commerce.SourceMiniApp, OrderID: id, CustomerID: customerID, Status: commerce.Paid,
		PaidAt: time.Now().Add(-time.Minute),
		Items:  []commerce.ItemInput{{SKU: "SKU-" + cat, Name: cat + "拿铁", Category: cat, Quantity: 1, UnitPriceFen: paidFen}}}
}

func TestRuleOrderTriggers(t *testing.T) {
	eachBrand(t, func(t *testing.T, b *brand) {
		ctx := context.Background()
		first := b.rule(t, map[string]any{"name": "首单",
			"trigger": map[string]any{"kind": "order_paid", "order_count": map[string]any{"op": "=", "value": 1}},
			"add":     []any{"新客"}})
		big := b.rule(t, map[string]any{"name": "大单抹茶",
			"trigger": map[string]any{"kind": "order_paid", "min_fen": 20000, "category": "抹茶"},
			"add":     []any{"大单"}, "remove": []any{"新客"}})
		refund := b.rule(t, map[string]any{"name": "退款",
			"trigger": map[string]any{"kind": "order_refunded", "min_fen": 1000},
			"add":     []any{"退款客户"}})
		// Expression on the order: spend over ¥500 in total after this order.
		b.rule(t, map[string]any{"name": "高价值",
			"trigger": map[string]any{"kind": "order_paid"},
			"expr":    `customer.total_spend >= 50000 && order.paid_fen > 0 && "自动/新客" not in customer.tags`,
			"add":     []any{"高价值"}})
		c := b.customer(t, "buyer", customer.NewCustomer{})
		if _, err := b.App.Commerce.UpsertOrder(ctx, b.ws.ID, order("o1", c, 9900, "咖啡")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "first order tagged 新客", func() bool { return b.has(t, c, "新客") })
		if b.has(t, c, "大单") {
			t.Fatal("a small coffee order is not big")
		}
		// A second, big matcha order: 大单 added, 新客 removed; the order
		// count rule does not fire again (count is 2).
		if _, err := b.App.Commerce.UpsertOrder(ctx, b.ws.ID, order("o2", c, 45000, "抹茶")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "big order tagged", func() bool { return b.has(t, c, "大单") && !b.has(t, c, "新客") })
		// 高价值 ran for the second order too, in its own worker order; its
		// expression saw total_spend 54900.
		eventually(t, "高价值", func() bool { return b.has(t, c, "高价值") })
		// The count is recorded just after the tags are applied: wait for it,
		// then it must be exactly one.
		eventually(t, "first-order rule counted", func() bool { return b.stats(t, first.ID).TimesFired >= 1 })
		if st := b.stats(t, first.ID); st.TimesFired != 1 {
			t.Fatalf("first-order rule fired %d times", st.TimesFired)
		}
		// Re-sending a paid order unchanged is not a new payment.
		if _, err := b.App.Commerce.UpsertOrder(ctx, b.ws.ID, order("o2", c, 45000, "抹茶")); err != nil {
			t.Fatal(err)
		}
		// A small refund is under the rule's minimum; a larger one fires.
		if _, err := b.App.Commerce.AddRefund(ctx, b.ws.ID, commerce.SourceMiniApp, "o2", commerce.RefundInput{RefundID: "r1", AmountFen: 500}); err != nil {
			t.Fatal(err)
		}
		never(t, "small refund tagged", 300*time.Millisecond, func() bool { return b.has(t, c, "退款客户") })
		if _, err := b.App.Commerce.AddRefund(ctx, b.ws.ID, commerce.SourceMiniApp, "o2", commerce.RefundInput{RefundID: "r2", AmountFen: 5000}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "refund tagged", func() bool { return b.has(t, c, "退款客户") })
		if st := b.stats(t, big.ID); st.TimesFired != 1 || st.CustomersChanged != 1 {
			t.Fatalf("big order stats %+v", st)
		}
		if st := b.stats(t, refund.ID); st.TimesFired != 1 {
			t.Fatalf("refund stats %+v", st)
		}
	})
}

// identify sends an identify call with traits through /v1/batch.
func (b *brand) identify(t testing.TB, userID string, traits map[string]any) {
	t.Helper()
	b.track(t, userID, map[string]any{"type": "identify", "traits": traits})
}

func TestRuleAttributeChanged(t *testing.T) {
	eachBrand(t, func(t *testing.T, b *brand) {
		in := b.rule(t, map[string]any{"name": "到上海",
			"trigger":    map[string]any{"kind": "attribute_changed", "attributes": []any{"city"}},
			"conditions": map[string]any{"attr": "city", "op": "=", "value": "上海"},
			"add":        []any{"上海客户"}})
		b.rule(t, map[string]any{"name": "离开上海",
			"trigger":    map[string]any{"kind": "attribute_changed", "attributes": []any{"city"}},
			"conditions": map[string]any{"not": map[string]any{"attr": "city", "op": "=", "value": "上海"}},
			"remove":     []any{"上海客户"}})
		// A custom trait.
		vip := b.rule(t, map[string]any{"name": "会员等级",
			"trigger": map[string]any{"kind": "attribute_changed", "attributes": []any{"vip_level"}},
			"expr":    `customer.vip_level >= 3`,
			"add":     []any{"活跃"}})
		c := b.customer(t, "mover", customer.NewCustomer{City: "杭州"})
		b.identify(t, "mover", map[string]any{"city": "上海"})
		eventually(t, "moved to Shanghai", func() bool { return b.has(t, c, "上海客户") })
		fired := b.stats(t, in.ID).TimesFired
		// Events that touch the profile without changing the city fire nothing.
		b.track(t, "mover", map[string]any{"event": "app_open"})
		b.identify(t, "mover", map[string]any{"city": "上海", "nickname": "小李"})
		time.Sleep(2500 * time.Millisecond)
		if st := b.stats(t, in.ID); st.TimesFired != fired {
			t.Fatalf("fired %d times, then %d with no change", fired, st.TimesFired)
		}
		b.identify(t, "mover", map[string]any{"city": "北京"})
		eventually(t, "left Shanghai", func() bool { return !b.has(t, c, "上海客户") })

		b.identify(t, "mover", map[string]any{"vip_level": 2})
		never(t, "vip 2 tagged", 1500*time.Millisecond, func() bool { return b.has(t, c, "活跃") })
		b.identify(t, "mover", map[string]any{"vip_level": 3})
		eventually(t, "vip 3 tagged", func() bool { return b.has(t, c, "活跃") })
		if st := b.stats(t, vip.ID); st.TimesFired != 1 || st.LastError != "" {
			t.Fatalf("vip stats %+v", st)
		}

		// A computed attribute: spend changes with orders, not the profile.
		b.rule(t, map[string]any{"name": "消费满百",
			"trigger":    map[string]any{"kind": "attribute_changed", "attributes": []any{"total_spend"}},
			"conditions": map[string]any{"attr": "total_spend", "op": ">=", "value": 10000},
			"add":        []any{"高价值"}})
		if _, err := b.App.Commerce.UpsertOrder(context.Background(), b.ws.ID, order("spend-1", c, 12000, "乌龙")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "spend tagged", func() bool { return b.has(t, c, "高价值") })
	})
}

// job waits for a rule's latest job to finish and returns it.
func (b *brand) job(t testing.TB, ruleID int64, kind tag.JobKind) tag.RuleJob {
	t.Helper()
	var j tag.RuleJob
	eventually(t, "job done", func() bool {
		var list struct {
			Items []tag.RuleJob `json:"items"`
		}
		b.must(t, "GET", fmt.Sprintf("/api/v1/tag-rules/%d/jobs", ruleID), nil, http.StatusOK, &list)
		for _, x := range list.Items {
			if x.Kind == kind {
				j = x
				return x.Status != tag.JobQueued && x.Status != tag.JobRunning
			}
		}
		return false
	})
	return j
}

func TestRuleSchedule(t *testing.T) {
	eachBrand(t, func(t *testing.T, b *brand) {
		ctx := context.Background()
		var sh []int64
		for i := range 6 {
			city := "上海"
			if i%2 == 1 {
				city = "北京"
			}
			sh = append(sh, b.customer(t, fmt.Sprintf("s%d", i), customer.NewCustomer{City: city}))
		}
		// Manually tagged: retract never takes what the rule did not give.
		if _, err := b.App.Tags.Apply(ctx, b.ws.ID, sh[1], []int64{b.tags["流失风险"].ID}, tag.ByPrincipal(b.p)); err != nil {
			t.Fatal(err)
		}
		r := b.rule(t, map[string]any{"name": "每日上海",
			"trigger":    map[string]any{"kind": "schedule", "at": "03:00"},
			"conditions": map[string]any{"attr": "city", "op": "=", "value": "上海"},
			"add":        []any{"流失风险"}, "retract": true})
		loc, _ := time.LoadLocation("Asia/Shanghai")
		if next := r.NextRunAt.In(loc); next.Hour() != 3 || next.Minute() != 0 || !next.After(time.Now()) || time.Until(next) > 24*time.Hour {
			t.Fatalf("next run %v", next)
		}
		due := func() {
			if _, err := b.App.DB.Exec(`UPDATE tag_rules SET next_run_at = 1 WHERE id = $1`, r.ID); err != nil {
				t.Fatal(err)
			}
		}
		due()
		j := b.job(t, r.ID, tag.JobSchedule)
		if j.Status != tag.JobDone || j.Total != 3 || j.Done != 3 || j.Matched != 3 || j.Tagged != 3 || j.Untagged != 0 {
			t.Fatalf("job %+v", j)
		}
		for i, id := range sh {
			if b.has(t, id, "流失风险") != (i%2 == 0 || i == 1) {
				t.Fatalf("customer %d: 流失风险 %v", i, !(i%2 == 0 || i == 1))
			}
		}
		got, _ := b.App.TagRules.Rule(ctx, b.ws.ID, r.ID)
		if !got.NextRunAt.After(time.Now()) {
			t.Fatalf("next run not moved: %v", got.NextRunAt)
		}
		// Customer 0 moves away: the next run takes the rule's tag back
		// from them, not from customer 1 who was tagged by hand.
		b.identify(t, "s0", map[string]any{"city": "北京"})
		eventually(t, "moved", func() bool {
			c, _ := b.App.Customers.Get(ctx, b.ws.ID, sh[0], false)
			return c.City == "北京"
		})
		if err := b.App.Audiences.Sync(ctx, b.ws.ID); err != nil {
			t.Fatal(err)
		}
		due()
		eventually(t, "second run", func() bool {
			var list struct {
				Items []tag.RuleJob `json:"items"`
			}
			b.must(t, "GET", fmt.Sprintf("/api/v1/tag-rules/%d/jobs", r.ID), nil, http.StatusOK, &list)
			return len(list.Items) == 2 && list.Items[0].Status == tag.JobDone
		})
		j = b.job(t, r.ID, tag.JobSchedule)
		if j.Total != 2 || j.Tagged != 0 || j.Untagged != 1 {
			t.Fatalf("second job %+v", j)
		}
		if b.has(t, sh[0], "流失风险") || !b.has(t, sh[1], "流失风险") || !b.has(t, sh[2], "流失风险") {
			t.Fatal("retract took the wrong tags")
		}
		if st := b.stats(t, r.ID); st.TimesFired != 5 || st.CustomersTagged != 2 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestRuleBackfill(t *testing.T) {
	eachBrand(t, func(t *testing.T, b *brand) {
		ctx := context.Background()
		var cs []int64
		for i := range 2500 / 100 {
			in := make([]customer.NewCustomer, 100)
			for j := range in {
				n := i*100 + j
				in[j] = customer.NewCustomer{Name: fmt.Sprint("c", n), City: []string{"上海", "北京", "杭州"}[n%3]}
			}
			got, err := b.App.Customers.CreateMany(ctx, b.ws.ID, in)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, got...)
		}
		// An event rule: the back-fill applies its conditions and its
		// expression (without the event) over existing customers.
		r := b.rule(t, map[string]any{"name": "上海活跃",
			"trigger":    map[string]any{"kind": "event", "event": "app_open"},
			"conditions": map[string]any{"attr": "city", "op": "in", "value": []any{"上海", "北京"}},
			"expr":       `event == nil || event.name == "app_open"`,
			"add":        []any{"活跃", "上海客户"}})
		b.problem(t, "GET", fmt.Sprintf("/api/v1/tag-rules/%d/backfill", r.ID), nil, 404, "tag_rule_job_not_found")
		var j tag.RuleJob
		b.must(t, "POST", fmt.Sprintf("/api/v1/tag-rules/%d/backfill", r.ID), nil, http.StatusAccepted, &j)
		if j.Kind != tag.JobBackfill || (j.Status != tag.JobQueued && j.Status != tag.JobRunning) {
			t.Fatalf("job %+v", j)
		}
		eventuallyWithin(t, time.Minute, "back-fill done", func() bool {
			b.must(t, "GET", fmt.Sprintf("/api/v1/tag-rules/%d/backfill", r.ID), nil, http.StatusOK, &j)
			if j.Done > j.Total {
				t.Fatalf("progress %+v", j)
			}
			return j.Status == tag.JobDone
		})
		// 1,667 customers: two chunks.
		if j.Total != 1667 || j.Done != 1667 || j.Matched != 1667 || j.Tagged != 1667 || j.FinishedAt.IsZero() || j.Error != "" {
			t.Fatalf("back-fill %+v", j)
		}
		if !b.has(t, cs[0], "活跃") || !b.has(t, cs[1], "上海客户") || b.has(t, cs[2], "活跃") {
			t.Fatal("wrong customers tagged")
		}
		// Again: nothing changes.
		b.must(t, "POST", fmt.Sprintf("/api/v1/tag-rules/%d/backfill", r.ID), nil, http.StatusAccepted, &j)
		eventuallyWithin(t, time.Minute, "second back-fill done", func() bool {
			b.must(t, "GET", fmt.Sprintf("/api/v1/tag-rules/%d/backfill", r.ID), nil, http.StatusOK, &j)
			return j.Status == tag.JobDone
		})
		if j.Total != 1667 || j.Tagged != 0 {
			t.Fatalf("repeat back-fill %+v", j)
		}
		if st := b.stats(t, r.ID); st.CustomersTagged != 1667 {
			t.Fatalf("stats %+v", st)
		}
		// An expression that reads the event fails without one: those
		// customers are skipped and the first error reported.
		r2 := b.rule(t, map[string]any{"name": "按事件",
			"trigger":    map[string]any{"kind": "event", "event": "app_open"},
			"conditions": map[string]any{"attr": "city", "op": "=", "value": "杭州"},
			"expr":       `event.properties.x > 1`,
			"add":        []any{"大单"}})
		b.must(t, "POST", fmt.Sprintf("/api/v1/tag-rules/%d/backfill", r2.ID), nil, http.StatusAccepted, &j)
		eventuallyWithin(t, time.Minute, "third back-fill done", func() bool {
			b.must(t, "GET", fmt.Sprintf("/api/v1/tag-rules/%d/backfill", r2.ID), nil, http.StatusOK, &j)
			return j.Status == tag.JobDone
		})
		if j.Total != 833 || j.Matched != 0 || j.Tagged != 0 || !strings.Contains(j.Error, "customer ") {
			t.Fatalf("expr back-fill %+v", j)
		}
		if st := b.stats(t, r2.ID); st.LastError == "" {
			t.Fatalf("no last error: %+v", st)
		}
		// A rule without conditions would tag everyone: refused.
		r3 := b.rule(t, map[string]any{"name": "无条件", "trigger": map[string]any{"kind": "event", "event": "x"}, "add": []any{"大单"}})
		b.problem(t, "POST", fmt.Sprintf("/api/v1/tag-rules/%d/backfill", r3.ID), nil, 422, "conditions_required")
	})
}

func TestRuleTestEndpoint(t *testing.T) {
	eachBrand(t, func(t *testing.T, b *brand) {
		ctx := context.Background()
		r := b.rule(t, map[string]any{"name": "上海抹茶",
			"trigger": map[string]any{"kind": "event", "event": "view_product",
				"where": []any{map[string]any{"prop": "category", "op": "=", "value": "抹茶"}, map[string]any{"prop": "price", "op": ">=", "value": 30}}},
			"conditions": map[string]any{"and": []any{
				map[string]any{"attr": "city", "op": "in", "value": []any{"上海", "杭州"}},
				map[string]any{"not": map[string]any{"tag": "流失风险"}},
			}},
			"add": []any{"抹茶爱好者"}, "remove": []any{"流失风险"}})
		sh := b.customer(t, "t1", customer.NewCustomer{City: "上海"})
		bj := b.customer(t, "t2", customer.NewCustomer{City: "北京"})
		type result = tag.TryResult
		try := func(body map[string]any) result {
			t.Helper()
			var res result
			b.must(t, "POST", "/api/v1/tag-rules/test", body, http.StatusOK, &res)
			return res
		}
		sample := map[string]any{"name": "view_product", "properties": map[string]any{"category": "抹茶", "price": 38}}
		res := try(map[string]any{"rule_id": r.ID, "customer_id": sh, "event": sample})
		if !res.Fires || !slices.Equal(res.Add, []int64{b.tags["抹茶爱好者"].ID}) || len(res.Remove) != 0 || res.TagRefs[fmt.Sprint(b.tags["抹茶爱好者"].ID)] == "" {
			t.Fatalf("fires %+v", res)
		}
		if parts := stepParts(res.Steps); !slices.Equal(parts, []string{"trigger", "conditions", "actions"}) {
			t.Fatalf("steps %v", parts)
		}
		// Nothing was written.
		if b.has(t, sh, "抹茶爱好者") {
			t.Fatal("the test tagged")
		}
		// The trigger's second filter fails.
		res = try(map[string]any{"rule_id": r.ID, "customer_id": sh,
			"event": map[string]any{"name": "view_product", "properties": map[string]any{"category": "抹茶", "price": 12}}})
		if res.Fires || last(res).Path != "trigger.where[1]" || !strings.HasPrefix(res.Reason, "trigger:") {
			t.Fatalf("where %+v", res)
		}
		// The conditions fail at their first node for a Beijing customer.
		res = try(map[string]any{"rule_id": r.ID, "customer_id": bj, "event": sample})
		if res.Fires || last(res).Part != "conditions" || last(res).Path != "conditions.and[0]" {
			t.Fatalf("conditions %+v", res)
		}
		// … and at the second for a customer at risk, whom the rule would
		// otherwise untag.
		if _, err := b.App.Tags.Apply(ctx, b.ws.ID, sh, []int64{b.tags["流失风险"].ID}, tag.ByPrincipal(b.p)); err != nil {
			t.Fatal(err)
		}
		res = try(map[string]any{"rule_id": r.ID, "customer_id": sh, "event": sample})
		if res.Fires || last(res).Path != "conditions.and[1]" || !strings.Contains(last(res).Detail, "negated") {
			t.Fatalf("not %+v", res)
		}
		// Without a sample the trigger is skipped.
		res = try(map[string]any{"rule_id": r.ID, "customer_id": bj})
		if !res.Steps[0].Skipped || res.Fires {
			t.Fatalf("no sample %+v", res)
		}
		// An unsaved rule, with an expression; the customer already holds
		// the tag, so it would fire and change nothing.
		res = try(map[string]any{"customer_id": sh, "rule": map[string]any{
			"trigger": map[string]any{"kind": "order_paid", "min_fen": 100},
			"expr":    `order.paid_fen >= 100 && "抹茶" in order.categories && customer.city == "上海"`,
			"add":     []any{"流失风险"}},
			"order": map[string]any{"paid_fen": 3800, "items": []any{map[string]any{"sku": "MC", "category": "抹茶"}}}})
		if !res.Fires || len(res.Add) != 0 || res.Reason == "" || last(res).Part != "actions" {
			t.Fatalf("unsaved %+v", res)
		}
		// An event sample for an order rule fails its trigger; an expression
		// that blows its memory budget is reported as its part.
		res = try(map[string]any{"customer_id": sh, "event": sample, "rule": map[string]any{
			"trigger": map[string]any{"kind": "order_paid"}, "add": []any{"大单"}}})
		if res.Fires || last(res).Part != "trigger" {
			t.Fatalf("kind %+v", res)
		}
		res = try(map[string]any{"customer_id": sh, "rule": map[string]any{
			"trigger": map[string]any{"kind": "attribute_changed", "attributes": []any{"city"}},
			"expr":    `len(map(1..1000000, # * 2)) > 0`, "add": []any{"大单"}}})
		if res.Fires || last(res).Part != "expr" || !strings.Contains(last(res).Detail, "memory budget") {
			t.Fatalf("budget %+v", res)
		}
		// Counted triggers count the customer's stored events plus the sample.
		cr := b.rule(t, map[string]any{"name": "三次", "enabled": false,
			"trigger": map[string]any{"kind": "event", "event": "view_product", "count": 3, "within_days": 7},
			"add":     []any{"活跃"}})
		b.track(t, "t2", map[string]any{"event": "view_product"})
		eventually(t, "event processed", func() bool {
			res = try(map[string]any{"rule_id": cr.ID, "customer_id": bj, "event": map[string]any{"name": "view_product"}})
			return strings.Contains(res.Steps[1].Detail, "2 matching")
		})
		if res.Fires || res.Steps[1].Part != "count" {
			t.Fatalf("count %+v", res)
		}
		b.track(t, "t2", map[string]any{"event": "view_product"})
		eventually(t, "count reached", func() bool {
			return try(map[string]any{"rule_id": cr.ID, "customer_id": bj, "event": map[string]any{"name": "view_product"}}).Fires
		})
		b.problem(t, "POST", "/api/v1/tag-rules/test", map[string]any{"rule_id": r.ID, "customer_id": 999999}, 404, "customer_not_found")
		b.problem(t, "POST", "/api/v1/tag-rules/test", map[string]any{"customer_id": sh}, 422, "rule_required")
		p := b.problem(t, "POST", "/api/v1/tag-rules/test", map[string]any{"customer_id": sh, "rule": map[string]any{
			"trigger": map[string]any{"kind": "event", "event": "x"}, "expr": "1 +", "add": []any{"大单"}}}, 422, "invalid_expr")
		if !slices.Equal(p.locations(), []string{"body.rule.expr"}) {
			t.Fatalf("locations %v", p.locations())
		}
	})
}

func stepParts(ss []tag.Step) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Part)
	}
	return out
}

func last(r tag.TryResult) tag.Step { return r.Steps[len(r.Steps)-1] }

func TestRuleValidation(t *testing.T) {
	eachBrand(t, func(t *testing.T, b *brand) {
		ok := func() map[string]any {
			return map[string]any{"name": "ok", "trigger": map[string]any{"kind": "event", "event": "view_product"}, "add": []any{"大单"}}
		}
		with := func(k string, v any) map[string]any {
			m := ok()
			m[k] = v
			return m
		}
		cases := []struct {
			name   string
			body   map[string]any
			status int
			code   string
			loc    string
		}{
			{"unknown trigger", with("trigger", map[string]any{"kind": "sometimes"}), 422, "validation_failed", "body.trigger.kind"},
			{"no event name", with("trigger", map[string]any{"kind": "event"}), 422, "invalid_rule", "body.trigger.event"},
			{"bad where op", with("trigger", map[string]any{"kind": "event", "event": "v", "where": []any{
				map[string]any{"prop": "a", "op": "=", "value": 1}, map[string]any{"prop": "b", "op": "~", "value": 1}}}), 422, "", "body.trigger.where[1].op"},
			{"where without prop", with("trigger", map[string]any{"kind": "event", "event": "v", "where": []any{map[string]any{"op": "=", "value": 1}}}),
				422, "", "body.trigger.where[0]"},
			{"order field on event", with("trigger", map[string]any{"kind": "event", "event": "v", "sku": "X"}), 422, "invalid_rule", "body.trigger"},
			{"window without count", with("trigger", map[string]any{"kind": "event", "event": "v", "within_days": 3}), 422, "invalid_rule", "body.trigger.within_days"},
			{"bad amount range", with("trigger", map[string]any{"kind": "order_paid", "min_fen": 500, "max_fen": 100}), 422, "invalid_rule", "body.trigger.max_fen"},
			{"bad order count", with("trigger", map[string]any{"kind": "order_paid", "order_count": map[string]any{"op": "~", "value": 1}}), 422, "", "body.trigger.order_count.op"},
			{"no attributes", with("trigger", map[string]any{"kind": "attribute_changed"}), 422, "invalid_rule", "body.trigger.attributes"},
			{"bad time", with("trigger", map[string]any{"kind": "schedule", "at": "25:00"}), 422, "invalid_rule", "body.trigger.at"},
			{"schedule without conditions", with("trigger", map[string]any{"kind": "schedule", "at": "03:00"}), 422, "conditions_required", "body.conditions"},
			{"bad condition", with("conditions", map[string]any{"and": []any{map[string]any{"tag": "自动/大单"}, map[string]any{"attr": "city", "op": "~"}}}),
				422, "", "body.conditions.and[1].op"},
			{"unknown tag in condition", with("conditions", map[string]any{"and": []any{map[string]any{"tag": "自动/大单"}, map[string]any{"not": map[string]any{"tag": "nope"}}}}),
				422, "tag_not_found", "body.conditions.and[1].not.tag"},
			{"bad expr", with("expr", "customer.city == "), 422, "invalid_expr", "body.expr"},
			{"expr not bool", with("expr", "1 + 2"), 422, "invalid_expr", "body.expr"},
			{"no actions", with("add", []any{}), 422, "no_actions", "body.add"},
			{"add and remove", with("remove", []any{"大单"}), 422, "tag_in_add_and_remove", "body.add[0]"},
			{"unknown tag id", with("add", []any{"大单", 999999}), 422, "tag_not_found", "body.add[1]"},
			{"unknown tag ref", with("remove", []any{"无此标签"}), 422, "tag_not_found", "body.remove[0]"},
			{"empty name", with("name", " "), 422, "invalid_name", "body.name"},
			{"retract without add", func() map[string]any {
				m := with("remove", []any{"大单"})
				delete(m, "add")
				m["retract"] = true
				return m
			}(),
				422, "invalid_rule", "body.retract"},
		}
		for _, c := range cases {
			r := b.Do(t, "POST", "/api/v1/tag-rules", b.ws.Key, c.body)
			var p problemDoc
			r.JSON(t, &p)
			if r.Status != c.status || (c.code != "" && p.Code != c.code) || !slices.Contains(p.locations(), c.loc) {
				t.Errorf("%s: got %d %s %v, want %d %s %s: %s", c.name, r.Status, p.Code, p.locations(), c.status, c.code, c.loc, r.Body)
			}
		}
		// CRUD.
		created := b.rule(t, ok())
		b.problem(t, "POST", "/api/v1/tag-rules", ok(), 409, "duplicate_rule")
		body := ok()
		body["name"], body["description"] = "改名", "浏览即大单"
		body["trigger"] = map[string]any{"kind": "order_paid", "sku": "MC-01"}
		var got tag.Rule
		b.must(t, "PUT", fmt.Sprintf("/api/v1/tag-rules/%d", created.ID), body, http.StatusOK, &got)
		if got.Name != "改名" || got.Trigger.Kind != tag.TriggerOrderPaid || got.Trigger.SKU != "MC-01" || !got.Enabled {
			t.Fatalf("replaced %+v", got)
		}
		var list struct {
			Items []tag.Rule `json:"items"`
		}
		b.must(t, "GET", "/api/v1/tag-rules", nil, http.StatusOK, &list)
		if len(list.Items) != 1 || list.Items[0].ID != created.ID {
			t.Fatalf("list %+v", list)
		}
		b.must(t, "DELETE", fmt.Sprintf("/api/v1/tag-rules/%d", created.ID), nil, http.StatusNoContent, nil)
		b.problem(t, "GET", fmt.Sprintf("/api/v1/tag-rules/%d", created.ID), nil, 404, "tag_rule_not_found")
		b.problem(t, "PUT", fmt.Sprintf("/api/v1/tag-rules/%d", created.ID), ok(), 404, "tag_rule_not_found")
		// Other workspaces do not see the rule, and analysts cannot change rules.
		other := b.NewWorkspace(t, "other")
		if r := b.Do(t, "GET", "/api/v1/tag-rules", other.Key, nil); r.Status != 200 || strings.Contains(string(r.Body), `"id"`) {
			t.Fatalf("other workspace: %d %s", r.Status, r.Body)
		}
	})
}
