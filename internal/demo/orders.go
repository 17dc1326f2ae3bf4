package demo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
)

// product is one item on the demo brand's menu.
type product struct {
	sku, name, category string
	priceFen            int64
}

func menu() []product {
	return []product{
		{"TEA-OOL-01", "冻顶乌龙鲜奶茶", "乌龙", 1800},
		{"TEA-OOL-02", "桂花乌龙", "乌龙", 1600},
		{"TEA-MAT-01", "宇治抹茶拿铁", "抹茶", 2200},
		{"TEA-MAT-02", "抹茶红豆", "抹茶", 2000},
		{"TEA-FRU-01", "满杯红柚", "果茶", 1900},
		{"TEA-FRU-02", "芝士葡萄", "果茶", 2400},
		{"TEA-MLK-01", "珍珠奶茶", "奶茶", 1500},
		{"TEA-MLK-02", "黑糖波波", "奶茶", 1700},
		{"GFT-BOX-01", "茶礼盒·四季", "礼盒", 16800},
		{"MRC-CUP-01", "随行杯", "周边", 5900},
	}
}

// generateOrders gives the demo customers months of orders across the
// brand's channels, with a few refunds, so spend, RFM, lifecycle and
// timelines have something to show. Each order goes through the same upsert
// as the orders API; it runs after the server is up, printing progress.
func generateOrders(ctx context.Context, a *app.App, tenantID int64, customers int, progress io.Writer) error {
	r := rand.New(rand.NewPCG(2026, 12))
	items := menu()
	now := time.Now().UTC()
	channels := []commerce.Source{commerce.SourceMiniApp, commerce.SourceMiniApp, commerce.SourceOfflineStore, commerce.SourceOfflineStore, commerce.SourceTmall, commerce.SourceDouyinShop}
	start := time.Now()
	orders := 0
	for i := range customers {
		// About a third never buy; buyers follow a skewed frequency, as real
		// brands see (a few loyal customers bring most orders).
		if r.IntN(3) == 0 {
			continue
		}
		n := 1 + int(r.ExpFloat64()*2)
		favourite := items[r.IntN(8)]
		first := now.Add(-time.Duration(r.Int64N(int64(480 * 24 * time.Hour))))
		for k := range n {
			at := first.Add(time.Duration(r.Int64N(int64(now.Sub(first)) + 1)))
			src := channels[r.IntN(len(channels))]
			var lines []commerce.ItemInput
			for range 1 + r.IntN(3) {
				p := favourite
				if r.IntN(3) == 0 {
					p = items[r.IntN(len(items))]
				}
				lines = append(lines, commerce.ItemInput{SKU: p.sku, Name: p.name, Category: p.category, Quantity: int64(1 + r.IntN(2)), UnitPriceFen: p.priceFen})
			}
			in := commerce.OrderInput{
				Source: src, OrderID: fmt.Sprintf("D%07d-%d", i, k), Status: commerce.Paid,
				Identities: []customer.Identity{{Kind: customer.KindUserID, Value: fmt.Sprintf("m%07d", 1000000+i)}},
				Items:      lines, PaidAt: at,
			}
			if src == commerce.SourceTmall {
				// Tmall knows the buyer by their shop id; the member id links it.
				in.Identities = append(in.Identities, customer.Identity{Kind: customer.KindShopBuyerID, Value: fmt.Sprintf("tmall:tb%06d", i)})
			}
			if _, err := a.Commerce.UpsertOrder(ctx, tenantID, in); err != nil {
				return fmt.Errorf("demo: order %s: %w", in.OrderID, err)
			}
			orders++
			if r.IntN(40) == 0 {
				var total int64
				for _, l := range lines {
					total += l.UnitPriceFen * l.Quantity
				}
				if _, err := a.Commerce.AddRefund(ctx, tenantID, src, in.OrderID, commerce.RefundInput{
					RefundID: in.OrderID + "-R1", AmountFen: total / 2, Reason: "口味不满意", RefundedAt: at.Add(3 * time.Hour),
				}); err != nil {
					return fmt.Errorf("demo: refund %s: %w", in.OrderID, err)
				}
			}
		}
		if (i+1)%2000 == 0 {
			fmt.Fprintf(progress, "demo: orders for %d/%d customers (%d orders, %s)\n", i+1, customers, orders, time.Since(start).Round(time.Second))
		}
	}
	fmt.Fprintf(progress, "demo: %d orders in %s\n", orders, time.Since(start).Round(time.Second))
	return nil
}
