package demo_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/demo"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

func TestDemoRules(t *testing.T) {
	s := apptest.Start(t, db.SQLite)
	ws := s.NewWorkspace(t, "tea")
	ctx := context.Background()
	sys := tenant.System(ws.ID)
	for group, names := range map[string][]string{"价值": {"高价值", "潜力", "流失风险"}, "产品偏好": {"抹茶", "乌龙"}} {
		g, err := s.App.Tags.CreateGroup(ctx, sys, tag.GroupInput{Name: group})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if _, err := s.App.Tags.CreateTag(ctx, sys, tag.TagInput{GroupID: g.ID, Name: n}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A customer who last ordered 100 days ago, before the rules exist.
	lapsed, err := s.App.Customers.Create(ctx, ws.ID, customer.NewCustomer{Name: "老顾客"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Commerce.UpsertOrder(ctx, ws.ID, commerce.OrderInput{Source: commerce.SourceMiniApp, OrderID: "old", CustomerID: lapsed.ID,
		Status: commerce.Paid, PaidAt: time.Now().AddDate(0, 0, -100),
		Items: []commerce.ItemInput{{SKU: "TEA-OOL-01", Category: "乌龙", Quantity: 1, UnitPriceFen: 1800}}}); err != nil {
		t.Fatal(err)
	}
	rules, err := demo.Rules(ctx, s.App, ws.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	again, err := demo.Rules(ctx, s.App, ws.ID, true)
	if err != nil || len(rules) != 5 || len(again) != 5 || again[0].ID != rules[0].ID {
		t.Fatalf("rules %d, again %d: %v", len(rules), len(again), err)
	}
	refs := func(id int64) []string {
		ts, err := s.App.Tags.TagsOf(ctx, ws.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range ts {
			out = append(out, a.Ref)
		}
		return out
	}
	waitFor := func(id int64, ref string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Contains(refs(id), ref) {
			if time.Now().After(deadline) {
				t.Fatalf("customer %d never got %s (has %v)", id, ref, refs(id))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(lapsed.ID, "价值/流失风险") // the back-fill
	// A new customer's first order, with matcha: real time.
	fresh, err := s.App.Customers.Create(ctx, ws.ID, customer.NewCustomer{Name: "新顾客"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Commerce.UpsertOrder(ctx, ws.ID, commerce.OrderInput{Source: commerce.SourceMiniApp, OrderID: "new", CustomerID: fresh.ID,
		Status: commerce.Paid, PaidAt: time.Now(),
		Items: []commerce.ItemInput{{SKU: "TEA-MAT-01", Category: "抹茶", Quantity: 1, UnitPriceFen: 2200}, {SKU: "GFT-BOX-01", Category: "礼盒", Quantity: 3, UnitPriceFen: 16800}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(fresh.ID, "产品偏好/抹茶")
	waitFor(fresh.ID, "价值/高价值") // ¥526: past 潜力 at once
	if slices.Contains(refs(fresh.ID), "价值/潜力") {
		t.Fatalf("tags %v", refs(fresh.ID))
	}
}
