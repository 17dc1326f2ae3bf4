package demo

import (
	"context"
	"fmt"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// demoRule is one auto-tag rule of the demo brand; tags are named
// "group/name" of the demo tag system.
type demoRule struct {
	name, description string
	trigger           tag.Trigger
	conditions        *audience.Condition
	expr              string
	add, remove       []string
	retract, backfill bool
}

// demoRules are the tea brand's auto-tag rules (自动打标): value layers from
// spend and recency, product preference from behaviour and purchases. Rules
// an occurrence triggers run in creation order, so a first order worth ¥500
// ends 高价值, not 潜力.
func demoRules() []demoRule {
	return []demoRule{
		{
			name:        "潜力：首单",
			description: "第一笔付款的新客",
			trigger:     tag.Trigger{Kind: tag.TriggerOrderPaid, OrderCount: &audience.CountCond{Op: "=", Value: 1}},
			add:         []string{"价值/潜力"},
		},
		{
			name:        "高价值：累计消费满 ¥500",
			description: "每笔付款后检查累计实付（扣除退款），满 500 元标为高价值",
			trigger:     tag.Trigger{Kind: tag.TriggerOrderPaid},
			conditions:  &audience.Condition{Attr: "total_spend", Op: ">=", Value: 50000},
			add:         []string{"价值/高价值"},
			remove:      []string{"价值/潜力", "价值/流失风险"},
			backfill:    true,
		},
		{
			name:        "抹茶爱好者：30 天内两次浏览抹茶",
			description: "小程序里 30 天内第二次浏览抹茶类商品",
			trigger: tag.Trigger{Kind: tag.TriggerEvent, Event: "view_product", Count: 2, WithinDays: 30,
				Where: []audience.PropCond{{Prop: "category", Op: "=", Value: "抹茶"}}},
			add: []string{"产品偏好/抹茶"},
		},
		{
			name:        "抹茶爱好者：购买抹茶",
			description: "订单里有抹茶类饮品（¥15 以上的单品）",
			trigger:     tag.Trigger{Kind: tag.TriggerOrderPaid, Category: "抹茶"},
			expr:        `any(order.items, .category == "抹茶" && .unit_price_fen >= 1500)`,
			add:         []string{"产品偏好/抹茶"},
		},
		{
			name:        "流失风险：90 天无订单",
			description: "每天凌晨 3 点：买过但 90 天没有再下单的顾客；再次下单后次日自动移除",
			trigger:     tag.Trigger{Kind: tag.TriggerSchedule, At: "03:00"},
			conditions: &audience.Condition{And: []audience.Condition{
				{Attr: "order_count", Op: ">=", Value: 1},
				{Not: &audience.Condition{Attr: "last_order_at", Op: "within_last_days", Value: 90}},
			}},
			add:      []string{"价值/流失风险"},
			retract:  true,
			backfill: true,
		},
	}
}

// Rules creates the demo brand's auto-tag rules in a workspace that has the
// demo tag system (rules whose name exists are left as they are) and, with
// backfill, queues back-fills of those that select customers by conditions,
// so existing customers are tagged as new ones will be. The back-fills run
// in the server's background worker. It returns the rules, existing ones
// included.
func Rules(ctx context.Context, a *app.App, tenantID int64, backfill bool) ([]tag.Rule, error) {
	sys := tenant.System(tenantID)
	existing, err := a.TagRules.Rules(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	byName := map[string]tag.Rule{}
	for _, r := range existing {
		byName[r.Name] = r
	}
	resolve := func(refs []string) ([]int64, error) {
		ids, err := a.Tags.ResolveAll(ctx, tenantID, refs)
		if err != nil {
			return nil, fmt.Errorf("demo: the demo tag system is missing a tag: %w", err)
		}
		return ids, nil
	}
	var out []tag.Rule
	for _, d := range demoRules() {
		if r, ok := byName[d.name]; ok {
			out = append(out, r)
			continue
		}
		add, err := resolve(d.add)
		if err != nil {
			return nil, err
		}
		remove, err := resolve(d.remove)
		if err != nil {
			return nil, err
		}
		r, err := a.TagRules.CreateRule(ctx, sys, tag.RuleInput{Name: d.name, Description: d.description, Trigger: d.trigger,
			Conditions: d.conditions, Expr: d.expr, Add: add, Remove: remove, Retract: d.retract})
		if err != nil {
			return nil, fmt.Errorf("demo: rule %s: %w", d.name, err)
		}
		if backfill && d.backfill {
			if _, err := a.TagRules.StartBackfill(ctx, sys, r.ID); err != nil {
				return nil, fmt.Errorf("demo: back-fill %s: %w", d.name, err)
			}
		}
		out = append(out, r)
	}
	return out, nil
}
