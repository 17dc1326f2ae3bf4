package api_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/tenant"
)

func TestScoresAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		ctx := t.Context()
		w := s.NewWorkspace(t, "scores-api")
		// Ten buyers, each spending more and more recently than the last,
		// and two who never bought.
		var news []customer.NewCustomer
		for i := range 12 {
			news = append(news, customer.NewCustomer{Name: fmt.Sprint("c", i), FirstSeenAt: time.Now().AddDate(0, 0, -100)})
		}
		ids, err := s.App.Customers.CreateMany(ctx, w.ID, news)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids[:10] {
			for n := range 1 + i/3 {
				if _, err := s.App.Commerce.UpsertOrder(ctx, w.ID, commerce.OrderInput{
					Source: commerce.SourceMiniApp, OrderID: fmt.Sprintf("o%d-%d", i, n), CustomerID: id, Status: commerce.Paid,
					Items:  []commerce.ItemInput{{SKU: "tea", Name: "茶", Category: "茶叶", Quantity: 1, UnitPriceFen: int64(1000 * (i + 1))}},
					PaidAt: time.Now().AddDate(0, 0, -(50 - 5*i + n)),
				}); err != nil {
					t.Fatal(err)
				}
			}
		}

		var set analytics.ScoreSettings
		if r := s.Do(t, "GET", "/api/v1/score-settings", w.Key, nil); r.Status != 200 {
			t.Fatalf("get settings: %d %s", r.Status, r.Body)
		} else {
			r.JSON(t, &set)
		}
		if set.Lifecycle.DeclineDays != 90 || set.RFM.ClassBy != analytics.ClassByAverage || set.FanTier.InteractionEvents == nil {
			t.Fatalf("defaults %+v", set)
		}
		// Out of range (the schema) and inconsistent (the rules) both point
		// at the field.
		bad := set
		bad.RecomputeHour = 25
		p := expectProblem(t, s.Do(t, "PUT", "/api/v1/score-settings", w.Key, bad), 422, "validation_failed")
		if len(p.Errors) != 1 || p.Errors[0].Location != "body.recompute_hour" {
			t.Fatalf("problem %+v", p)
		}
		bad = set
		bad.Lifecycle.DeclineDays = 30
		p = expectProblem(t, s.Do(t, "PUT", "/api/v1/score-settings", w.Key, bad), 422, "invalid_score_settings")
		if len(p.Errors) != 1 || p.Errors[0].Location != "body.lifecycle.mature_recent_days" {
			t.Fatalf("problem %+v", p)
		}
		// Operators read scores but may not change the thresholds.
		_, opKey, err := s.App.Tenant.CreateAPIKey(ctx, tenant.System(w.ID), "operator", tenant.RoleOperator)
		if err != nil {
			t.Fatal(err)
		}
		expectProblem(t, s.Do(t, "PUT", "/api/v1/score-settings", opKey, set), 403, "forbidden")

		set.FanTier.DevotedMinOrders = 4
		if r := s.Do(t, "PUT", "/api/v1/score-settings", w.Key, set); r.Status != 200 {
			t.Fatalf("put settings: %d %s", r.Status, r.Body)
		}
		r := s.Do(t, "POST", "/api/v1/scores/recompute", opKey, nil)
		if r.Status != 202 {
			t.Fatalf("recompute: %d %s", r.Status, r.Body)
		}
		var run analytics.ScoreRun
		r.JSON(t, &run)
		if run.State != analytics.RunQueued && run.State != analytics.RunRunning {
			t.Fatalf("after asking: %+v", run)
		}
		deadline := time.Now().Add(20 * time.Second)
		for run.State != analytics.RunDone {
			if time.Now().After(deadline) {
				t.Fatalf("recompute did not finish: %+v", run)
			}
			time.Sleep(20 * time.Millisecond)
			s.Do(t, "GET", "/api/v1/scores/status", opKey, nil).JSON(t, &run)
		}
		if run.Total != 12 || run.Processed != 12 || run.ComputedAt.IsZero() {
			t.Fatalf("finished run %+v", run)
		}

		var dist analytics.ScoreDistribution
		s.Do(t, "GET", "/api/v1/scores/distribution", opKey, nil).JSON(t, &dist)
		if dist.Customers != 12 || dist.Buyers != 10 || len(dist.RFMClasses) != 8 || len(dist.R) != 5 {
			t.Fatalf("distribution %+v", dist)
		}
		var devoted int64
		for _, b := range dist.FanTiers {
			if b.Key == "devoted" {
				devoted = b.Count
			}
		}
		if devoted != 1 { // only the last buyer has 4 orders
			t.Fatalf("devoted %d with devoted_min_orders 4: %+v", devoted, dist.FanTiers)
		}
		// The scores are attributes of the audience engine.
		if err := s.App.Audiences.Sync(ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		var count struct{ Count int64 }
		s.Do(t, "POST", "/api/v1/audiences/count", w.Key, `{"conditions": {"attr": "fan_tier", "op": "=", "value": "真爱粉"}}`).JSON(t, &count)
		if count.Count != 1 {
			t.Fatalf("真爱粉 audience %d", count.Count)
		}
		s.Do(t, "POST", "/api/v1/audiences/count", w.Key, `{"conditions": {"attr": "rfm_r", "op": ">=", "value": 1}}`).JSON(t, &count)
		if count.Count != 10 {
			t.Fatalf("customers with an R score: %d", count.Count)
		}

		// Another workspace sees none of it.
		other := s.NewWorkspace(t, "scores-other")
		var none analytics.ScoreDistribution
		s.Do(t, "GET", "/api/v1/scores/distribution", other.Key, nil).JSON(t, &none)
		if none.Customers != 0 || !none.ComputedAt.IsZero() {
			t.Fatalf("other workspace %+v", none)
		}
		expectProblem(t, s.Do(t, "GET", "/api/v1/scores/distribution", "", nil), 401, "missing_api_key")
	})
}
