package demo

import (
	"context"
	"fmt"
	"io"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/errs"
)

// generateAudiences saves audiences an operator of the demo brand would keep:
// valuable Shanghai customers, matcha fans active this month, and sleeping
// members to win back. They stay live as the demo's history fills in.
func generateAudiences(ctx context.Context, a *app.App, tenantID int64, progress io.Writer) error {
	list := []audience.AudienceInput{
		{Name: "上海高价值客户", Description: "上海的高价值客户，用于门店会员日邀约",
			Conditions: audience.Condition{And: []audience.Condition{
				{Tag: "价值/高价值"}, {Attr: "city", Op: "=", Value: "上海"}}}},
		{Name: "抹茶爱好者（近30天）", Description: "近 30 天浏览过抹茶商品两次以上",
			Conditions: audience.Condition{Event: "view_product", WithinDays: 30, Count: &audience.CountCond{Op: ">=", Value: 2},
				Where: []audience.PropCond{{Prop: "category", Op: "=", Value: "抹茶"}}}},
		{Name: "沉睡会员（90天未下单）", Description: "下过单但 90 天没有再下单，适合唤醒券",
			Conditions: audience.Condition{And: []audience.Condition{
				{Attr: "order_count", Op: ">=", Value: 1.0},
				{Not: &audience.Condition{Attr: "last_order_at", Op: "within_last_days", Value: 90.0}}}}},
	}
	for _, in := range list {
		au, err := a.Audiences.CreateAudience(ctx, tenantID, "demo", in)
		if errs.Is(err, errs.Conflict) {
			continue // made by an earlier run
		}
		if err != nil {
			return fmt.Errorf("demo: audience %s: %w", in.Name, err)
		}
		fmt.Fprintf(progress, "demo: audience %s: %d members\n", au.Name, au.MemberCount)
	}
	return nil
}
