package app

import (
	"context"
	"slices"
	"time"

	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/tag"
)

// newTagRules builds the auto-tag rule engine and connects it to what
// triggers rules: each processed ingest batch and each paid or refunded
// order reaches it after its commit. Processed events also reach the
// audience index, so behaviour conditions see them at once.
func (a *App) newTagRules() *tag.Rules {
	rules := tag.NewRules(a.Tags, tag.RuleDeps{
		Audiences: a.Audiences,
		Profiles:  ruleProfiles{c: a.Customers, m: a.Commerce, an: a.Analytics},
		Events:    ruleEvents{a.Events},
		Location: func(ctx context.Context, tenantID int64) (*time.Location, error) {
			w, err := a.Tenant.Workspace(ctx, tenantID)
			if err != nil {
				return nil, err
			}
			return w.Location(), nil
		},
		Logger: a.Log,
	})
	a.Events.Observe(event.ObserverFunc(func(tenantID int64, evs []event.ProcessedEvent) {
		for _, e := range evs {
			if e.Name == "" {
				continue // identify, group, alias: attribute rules see their traits
			}
			a.Audiences.EventSeen(tenantID, e.CustomerID, e.Name, e.Timestamp)
			rules.Notify(tag.Occurrence{TenantID: tenantID, CustomerID: e.CustomerID, Kind: tag.TriggerEvent,
				Event: &tag.EventFact{Name: e.Name, Type: string(e.Type), Timestamp: e.Timestamp, RawProperties: e.Properties}})
		}
	}))
	a.Commerce.Observe(commerce.ObserverFunc(func(o commerce.OrderActivity) {
		kind := tag.TriggerOrderPaid
		if o.Kind == commerce.OrderRefunded {
			kind = tag.TriggerOrderRefunded
		}
		rules.Notify(tag.Occurrence{TenantID: o.TenantID, CustomerID: o.CustomerID, Kind: kind, Order: orderFact(o), At: o.At})
	}))
	return rules
}

func orderFact(o commerce.OrderActivity) *tag.OrderFact {
	f := &tag.OrderFact{Source: string(o.Order.Source), OrderID: o.Order.OrderID, Status: string(o.Order.Status),
		TotalFen: o.Order.TotalFen, DiscountFen: o.Order.DiscountFen, PaidFen: o.Order.PaidFen, RefundedFen: o.Order.RefundedFen,
		RefundFen: o.RefundFen, PaidAt: o.Order.PaidAt}
	for _, it := range o.Order.Items {
		f.Items = append(f.Items, tag.OrderItemFact{SKU: it.SKU, Name: it.Name, Category: it.Category, Quantity: it.Quantity,
			UnitPriceFen: it.UnitPriceFen, AmountFen: it.AmountFen})
	}
	return f
}

// ruleProfiles gives rules a customer's attributes as condition trees name
// them: the profile's fields and traits, the order summary and the computed
// scores.
type ruleProfiles struct {
	c  *customer.Service
	m  *commerce.Service
	an *analytics.Service
}

// ChangedSince is every customer whose profile, order summary or computed
// scores were written since a time, so attribute rules can watch computed
// attributes (total_spend, rfm_class, lifecycle, …) as well as traits.
func (p ruleProfiles) ChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error) {
	ids, err := p.c.ChangedSince(ctx, tenantID, since)
	if err != nil {
		return nil, err
	}
	spend, err := p.m.SpendChangedSince(ctx, tenantID, since)
	if err != nil {
		return nil, err
	}
	ids = append(ids, spend...)
	if p.an != nil {
		scores, err := p.an.ScoresChangedSince(ctx, tenantID, since)
		if err != nil {
			return nil, err
		}
		ids = append(ids, scores...)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func (p ruleProfiles) Attributes(ctx context.Context, tenantID int64, ids []int64) (map[int64]map[string]any, error) {
	out := make(map[int64]map[string]any, len(ids))
	err := p.c.ForIndex(ctx, tenantID, ids, func(r customer.IndexRow) error {
		if !r.Live {
			return nil
		}
		m := make(map[string]any, len(r.Traits)+20)
		for k, v := range r.Traits {
			m[k] = v
		}
		for k, v := range map[string]any{"id": r.ID, "gender": r.Gender, "province": r.Province, "city": r.City,
			"source": r.Source, "source_code": r.SourceCode, "birthday": r.Birthday,
			"first_seen_at": r.FirstSeen, "last_seen_at": r.LastSeen,
			"total_spend": int64(0), "order_count": int64(0), "avg_order_value": int64(0), "first_order_at": nil, "last_order_at": nil,
			"rfm_r": 0, "rfm_f": 0, "rfm_m": 0, "rfm_class": "", "lifecycle": "", "fan_tier": ""} {
			m[k] = v
		}
		out[r.ID] = m
		return nil
	})
	if err != nil || len(out) == 0 {
		return out, err
	}
	live := make([]int64, 0, len(out))
	for id := range out {
		live = append(live, id)
	}
	spends, err := p.m.Spends(ctx, tenantID, live)
	if err != nil {
		return nil, err
	}
	for id, sp := range spends {
		m := out[id]
		m["total_spend"], m["order_count"] = sp.NetFen, sp.OrderCount
		if sp.OrderCount > 0 {
			m["avg_order_value"] = sp.NetFen / sp.OrderCount
		}
		if !sp.FirstOrderAt.IsZero() {
			m["first_order_at"], m["last_order_at"] = sp.FirstOrderAt, sp.LastOrderAt
		}
	}
	if p.an != nil {
		err = p.an.ScoresFor(ctx, tenantID, live, func(s audience.ScoreRow) error {
			if m, ok := out[s.CustomerID]; ok {
				m["rfm_r"], m["rfm_f"], m["rfm_m"] = s.R, s.F, s.M
				m["rfm_class"], m["lifecycle"], m["fan_tier"] = s.RFMClass, s.Lifecycle, s.FanTier
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ruleEvents reads a customer's recent events for counted event triggers.
type ruleEvents struct{ e *event.Service }

func (r ruleEvents) CustomerEvents(ctx context.Context, tenantID, customerID int64, name string, since time.Time, limit int) ([]tag.EventFact, error) {
	evs, err := r.e.CustomerEvents(ctx, tenantID, customerID, name, since, limit)
	if err != nil {
		return nil, err
	}
	out := make([]tag.EventFact, len(evs))
	for i, e := range evs {
		out[i] = tag.EventFact{Name: e.Name, Type: string(e.Type), Timestamp: e.Timestamp, RawProperties: e.Properties}
	}
	return out, nil
}

// runTagRules runs the rule engine's workers until ctx ends.
func (a *App) runTagRules(ctx context.Context) {
	a.workers.Add(1)
	go func() { defer a.workers.Done(); a.TagRules.Run(ctx) }()
}
