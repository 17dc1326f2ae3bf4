package commerce_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
)

func TestProductUpsertArchiveAndList(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		in := commerce.ProductInput{SKU: "TEA-001", Name: "龙井 250g", Category: "tea", PriceFen: 5900}
		p, created, err := e.svc.PutProduct(ctx, e.a, in)
		if err != nil || !created {
			t.Fatalf("create: %+v %v %v", p, created, err)
		}
		if p.Currency != "CNY" || p.Status != commerce.ProductActive || p.PriceFen != 5900 {
			t.Fatalf("created %+v", p)
		}
		// The same product again changes nothing, not even updated_at.
		again, created, err := e.svc.PutProduct(ctx, e.a, in)
		if err != nil || created || !again.UpdatedAt.Equal(p.UpdatedAt) {
			t.Fatalf("re-put: %+v created %v %v", again, created, err)
		}
		in.PriceFen = 6900
		changed, created, err := e.svc.PutProduct(ctx, e.a, in)
		if err != nil || created || changed.PriceFen != 6900 || !changed.CreatedAt.Equal(p.CreatedAt) {
			t.Fatalf("update: %+v %v %v", changed, created, err)
		}
		// Archiving hides it from the active list; the row stays readable.
		arch, err := e.svc.ArchiveProduct(ctx, e.a, "TEA-001")
		if err != nil || arch.Status != commerce.ProductArchived {
			t.Fatalf("archive: %+v %v", arch, err)
		}
		if _, err := e.svc.ArchiveProduct(ctx, e.a, "TEA-001"); err != nil {
			t.Fatalf("archive twice: %v", err)
		}
		active, err := e.svc.Products(ctx, e.a, commerce.ProductQuery{Status: commerce.ProductActive}, page.Request{})
		if err != nil || len(active.Items) != 0 {
			t.Fatalf("active list: %+v %v", active.Items, err)
		}
		// Putting it again with the default status restores it.
		if p, _, err := e.svc.PutProduct(ctx, e.a, in); err != nil || p.Status != commerce.ProductActive {
			t.Fatalf("restore: %+v %v", p, err)
		}
		if _, err := e.svc.ArchiveProduct(ctx, e.a, "NOPE"); !errs.Is(err, errs.NotFound) {
			t.Fatalf("archive unknown: %v", err)
		}
	})
}

func TestProductPagingAndIsolation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ctx := context.Background()
		for i := range 7 {
			if _, _, err := e.svc.PutProduct(ctx, e.a, commerce.ProductInput{SKU: fmt.Sprintf("SKU-%02d", i), Name: "p", PriceFen: int64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		var skus []string
		r := page.Request{Limit: 3}
		for pages := 1; ; pages++ {
			pg, err := e.svc.Products(ctx, e.a, commerce.ProductQuery{}, r)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pg.Items {
				skus = append(skus, p.SKU)
			}
			if pg.Next == "" {
				if pages != 3 {
					t.Fatalf("%d pages", pages)
				}
				break
			}
			r.Cursor = pg.Next
		}
		if len(skus) != 7 || skus[0] != "SKU-00" || skus[6] != "SKU-06" {
			t.Fatalf("skus %v", skus)
		}
		// Workspace B sees none of A's products, and may use the same SKU.
		if _, err := e.svc.Product(ctx, e.b, "SKU-01"); !errs.Is(err, errs.NotFound) {
			t.Fatalf("B reads A's product: %v", err)
		}
		if pg, _ := e.svc.Products(ctx, e.b, commerce.ProductQuery{}, page.Request{}); len(pg.Items) != 0 {
			t.Fatalf("B lists A's products: %+v", pg.Items)
		}
		if _, created, err := e.svc.PutProduct(ctx, e.b, commerce.ProductInput{SKU: "SKU-01", Name: "theirs"}); err != nil || !created {
			t.Fatalf("B's own SKU-01: %v %v", created, err)
		}
		if p, _ := e.svc.Product(ctx, e.a, "SKU-01"); p.Name != "p" {
			t.Fatalf("B's put changed A's product: %+v", p)
		}
	})
}

func TestProductBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		cases := []struct {
			in   commerce.ProductInput
			code string
		}{
			{commerce.ProductInput{SKU: "A", Name: "x", PriceFen: -1}, "invalid_amount"},
			{commerce.ProductInput{SKU: "A", Name: "x", Currency: "USD"}, "unsupported_currency"},
			{commerce.ProductInput{SKU: "", Name: "x"}, "invalid_sku"},
			{commerce.ProductInput{SKU: "A B", Name: "x"}, "invalid_sku"},
			{commerce.ProductInput{SKU: "A", Name: ""}, "required"},
			{commerce.ProductInput{SKU: "A", Name: "x", Status: "gone"}, "invalid_status"},
		}
		for _, c := range cases {
			_, _, err := e.svc.PutProduct(context.Background(), e.a, c.in)
			expectCode(t, err, c.code)
		}
		if n := e.counts(t)["products"]; n != 0 {
			t.Fatalf("bad input wrote %d products", n)
		}
	})
}
