package demo

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// demoTagGroup is one group of the demo brand's tag system.
type demoTagGroup struct {
	name, description string
	dimension         tag.Dimension
	tags              []demoTag
}

type demoTag struct{ name, color string }

// demoTagSystem is the tea brand's tag system (标签体系) along the product,
// customer, value and channel dimensions.
func demoTagSystem() []demoTagGroup {
	return []demoTagGroup{
		{"产品偏好", "常点的茶饮品类，由订单自动打标", tag.DimProduct, []demoTag{
			{"乌龙", "#A0522D"}, {"抹茶", "#52C41A"}, {"果茶", "#FA8C16"}, {"奶茶", "#D4B106"}, {"纯茶", "#13C2C2"},
		}},
		{"客户属性", "导购在沟通中了解到的身份", tag.DimCustomer, []demoTag{
			{"学生", "#2F54EB"}, {"白领", "#722ED1"}, {"宝妈", "#EB2F96"},
		}},
		{"价值", "按消费与活跃分层", tag.DimValue, []demoTag{
			{"高价值", "#F5222D"}, {"潜力", "#FAAD14"}, {"流失风险", "#8C8C8C"},
		}},
		{"渠道", "首次进入私域的渠道", tag.DimChannel, []demoTag{
			{"门店", "#1677FF"}, {"小程序", "#07C160"}, {"抖音", "#000000"}, {"天猫", "#FF5000"}, {"公众号", "#2BAD13"}, {"老带新", "#FF85C0"},
		}},
	}
}

// channelTag names the channel tag of a customer's first source.
func channelTag(source string) (string, bool) {
	switch source {
	case "store":
		return "门店", true
	case "miniapp":
		return "小程序", true
	case "douyin_live":
		return "抖音", true
	case "tmall_parcel":
		return "天猫", true
	case "official_acct":
		return "公众号", true
	case "referral":
		return "老带新", true
	}
	return "", false
}

// generateTags creates the demo tag system and tags the demo customers the
// way the brand would have: channel tags from the channel code or source that
// brought them, customer attributes by the staff who served them, product
// preferences and value layers by rules.
func generateTags(ctx context.Context, a *app.App, tenantID int64, progress io.Writer) error {
	r := rand.New(rand.NewPCG(2026, 12))
	sys := tenant.System(tenantID)
	ids := map[string]int64{} // "group/name" → tag id
	for _, g := range demoTagSystem() {
		grp, err := a.Tags.CreateGroup(ctx, sys, tag.GroupInput{Name: g.name, Dimension: g.dimension, Description: g.description})
		if err != nil {
			return fmt.Errorf("demo: tag group %s: %w", g.name, err)
		}
		for _, t := range g.tags {
			tg, err := a.Tags.CreateTag(ctx, sys, tag.TagInput{GroupID: grp.ID, Name: t.name, Color: t.color})
			if err != nil {
				return fmt.Errorf("demo: tag %s/%s: %w", g.name, t.name, err)
			}
			ids[tg.Ref] = tg.ID
		}
	}

	guides, storeGuides, err := demoGuides(ctx, a, tenantID)
	if err != nil {
		return err
	}
	// Each batch is the customers one source (a code, a staff member, a rule)
	// tagged with one tag.
	type batchKey struct {
		ref string
		app tag.Application
	}
	batches := map[batchKey][]int64{}
	add := func(ref string, app tag.Application, customerID int64) {
		k := batchKey{ref, app}
		batches[k] = append(batches[k], customerID)
	}
	productRule := tag.Application{Source: tag.SourceRule, SourceRef: "product-preference", AppliedBy: "订单品类偏好"}
	valueRule := tag.Application{Source: tag.SourceRule, SourceRef: "value-layer", AppliedBy: "价值分层"}
	now := time.Now().UTC()
	n := 0
	for req := (page.Request{Limit: page.MaxLimit}); ; {
		pg, err := a.Customers.List(ctx, tenantID, customer.Query{}, req)
		if err != nil {
			return fmt.Errorf("demo: list customers: %w", err)
		}
		for _, c := range pg.Items {
			n++
			// Channel: the code scanned at a store, or the source's sync.
			if ch, ok := channelTag(c.FirstSource); ok {
				app := tag.Application{Source: tag.SourceSync, SourceRef: c.FirstSource}
				if c.FirstSourceCode != "" {
					app = tag.Application{Source: tag.SourceCode, SourceRef: c.FirstSourceCode}
				}
				add("渠道/"+ch, app, c.ID)
			}
			// Customer attributes, noted by the staff member who served them.
			guide := guides[r.IntN(len(guides))]
			if sg := storeGuides[c.FirstSourceCode]; len(sg) > 0 {
				guide = sg[r.IntN(len(sg))]
			}
			byGuide := tag.Application{Source: tag.SourceManual, SourceRef: fmt.Sprintf("staff:%d", guide.ID), AppliedBy: guide.Name}
			age := -1
			if b, err := time.Parse(time.DateOnly, c.Birthday); err == nil {
				age = int(now.Sub(b).Hours() / 24 / 365)
			}
			segment := ""
			switch {
			case age >= 0 && age <= 23 && r.IntN(10) < 8:
				segment = "学生"
			case c.Gender == "female" && age >= 26 && age <= 40 && r.IntN(10) < 4:
				segment = "宝妈"
			case age >= 22 && age <= 45 && r.IntN(10) < 6:
				segment = "白领"
			}
			if segment != "" {
				add("客户属性/"+segment, byGuide, c.ID)
			}
			// Product preferences by segment, from orders (a rule).
			prefs := []string{"乌龙", "抹茶", "果茶", "奶茶", "纯茶"}
			switch segment {
			case "学生":
				prefs = []string{"奶茶", "果茶", "奶茶", "抹茶"}
			case "白领":
				prefs = []string{"乌龙", "纯茶", "抹茶", "乌龙"}
			case "宝妈":
				prefs = []string{"果茶", "抹茶", "纯茶"}
			}
			if r.IntN(10) < 7 {
				first := prefs[r.IntN(len(prefs))]
				add("产品偏好/"+first, productRule, c.ID)
				if second := prefs[r.IntN(len(prefs))]; second != first && r.IntN(3) == 0 {
					add("产品偏好/"+second, productRule, c.ID)
				}
			}
			// Value: inactive for three months is a churn risk; long-standing
			// active customers are high value; recent active ones potential.
			idle := now.Sub(c.LastSeenAt)
			tenure := c.LastSeenAt.Sub(c.FirstSeenAt)
			switch {
			case idle > 90*24*time.Hour:
				if r.IntN(10) < 5 {
					add("价值/流失风险", valueRule, c.ID)
				}
			case tenure > 180*24*time.Hour && r.IntN(10) < 4:
				add("价值/高价值", valueRule, c.ID)
			case now.Sub(c.FirstSeenAt) < 90*24*time.Hour && r.IntN(10) < 5:
				add("价值/潜力", valueRule, c.ID)
			}
		}
		if pg.Next == "" {
			break
		}
		req.Cursor = pg.Next
	}

	keys := make([]batchKey, 0, len(batches))
	for k := range batches {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y batchKey) int {
		if c := cmp.Compare(x.ref, y.ref); c != 0 {
			return c
		}
		return cmp.Compare(x.app.SourceRef, y.app.SourceRef)
	})
	applied := 0
	for _, k := range keys {
		res, err := a.Tags.BulkApply(ctx, tenantID, []int64{ids[k.ref]}, batches[k], k.app, nil)
		if err != nil {
			return fmt.Errorf("demo: tag %s: %w", k.ref, err)
		}
		applied += res.Changed
	}
	fmt.Fprintf(progress, "demo: %d tags in %d groups, %d applied to %d customers\n", len(ids), len(demoTagSystem()), applied, n)
	return nil
}

// demoGuides returns the demo brand's staff, and its guides (导购) by the
// channel code of their store ("store-SH-01").
func demoGuides(ctx context.Context, a *app.App, tenantID int64) ([]staff.Member, map[string][]staff.Member, error) {
	codes := map[int64]string{}
	for req := (page.Request{Limit: page.MaxLimit}); ; {
		pg, err := a.Staff.Stores(ctx, tenantID, req)
		if err != nil {
			return nil, nil, fmt.Errorf("demo: list stores: %w", err)
		}
		for _, st := range pg.Items {
			codes[st.ID] = "store-" + st.Code
		}
		if pg.Next == "" {
			break
		}
		req.Cursor = pg.Next
	}
	var all []staff.Member
	byCode := map[string][]staff.Member{}
	for req := (page.Request{Limit: page.MaxLimit}); ; {
		pg, err := a.Staff.Members(ctx, tenantID, req)
		if err != nil {
			return nil, nil, fmt.Errorf("demo: list staff: %w", err)
		}
		for _, m := range pg.Items {
			all = append(all, m)
			if m.Title == "导购" {
				byCode[codes[m.StoreID]] = append(byCode[codes[m.StoreID]], m)
			}
		}
		if pg.Next == "" {
			break
		}
		req.Cursor = pg.Next
	}
	if len(all) == 0 {
		return nil, nil, fmt.Errorf("demo: no staff to tag customers")
	}
	return all, byCode, nil
}
