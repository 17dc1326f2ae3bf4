package commerce_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// env is a commerce service on a fresh database with two workspaces, wired to
// the real One ID and staff services as the app wires them.
type env struct {
	d     *db.DB
	svc   *commerce.Service
	cust  *customer.Service
	staff *staff.Service
	a, b  int64 // workspace ids
}

func newEnv(t *testing.T, d *db.DB) env {
	t.Helper()
	ctx := context.Background()
	ts := tenant.NewService(d, tenant.Options{})
	e := env{d: d, staff: staff.NewService(d)}
	for i, slug := range []string{"brand-a", "brand-b"} {
		w, err := ts.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: slug, Name: slug})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			e.a = w.ID
		} else {
			e.b = w.ID
		}
	}
	master := make([]byte, 32)
	rand.Read(master)
	kr, err := pii.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	e.cust = customer.NewService(d, kr, nil)
	e.svc = commerce.NewService(d, e.cust, e.staff, nil)
	e.cust.OnMerge("orders", e.svc.MoveCustomer)
	e.cust.AddTimelineSource(e.svc)
	return e
}

func (e env) newCustomer(t *testing.T, tenantID int64, name string) int64 {
	t.Helper()
	c, err := e.cust.Create(context.Background(), tenantID, customer.NewCustomer{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func (e env) upsert(t *testing.T, tenantID int64, in commerce.OrderInput) commerce.UpsertResult {
	t.Helper()
	res, err := e.svc.UpsertOrder(context.Background(), tenantID, in)
	if err != nil {
		t.Fatalf("upsert %s/%s: %v", in.Source, in.OrderID, err)
	}
	return res
}

func (e env) spend(t *testing.T, tenantID, customerID int64) commerce.Spend {
	t.Helper()
	sp, err := e.svc.Spend(context.Background(), tenantID, customerID)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// counts returns the row counts of every table an order write touches, so a
// test can show a rejected write left nothing behind.
func (e env) counts(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"orders", "order_items", "refunds", "customer_spend", "customers", "customer_identities", "products"} {
		var n int
		if err := e.d.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// paidOrder is a typical paid Tmall order: 2 × ¥59.00 + 1 × ¥30.00 − ¥20.00.
func paidOrder(orderID string, customerID int64, paidAt time.Time) commerce.OrderInput {
	return commerce.OrderInput{
		Source: commerce.SourceTmall, OrderID: orderID, CustomerID: customerID, Status: commerce.Paid,
		Items: []commerce.ItemInput{
			{SKU: "TEA-001", Name: "龙井 250g", Category: "tea", Quantity: 2, UnitPriceFen: 5900},
			{SKU: "CUP-002", Name: "玻璃杯", Category: "ware", Quantity: 1, UnitPriceFen: 3000},
		},
		DiscountFen: 2000, PaidAt: paidAt,
	}
}

func expectCode(t *testing.T, err error, code string) {
	t.Helper()
	if errs.CodeOf(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
	if e, ok := errs.As(err); !ok || e.Message == "" {
		t.Fatalf("error %v has no message for the user", err)
	}
}
