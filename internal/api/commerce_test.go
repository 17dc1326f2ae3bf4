package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

func tmallOrder(paidAt time.Time) map[string]any {
	return map[string]any{
		"customer": map[string]string{"shop_buyer_id": "tmall:buyer123", "phone": "13800138000"},
		"status":   "paid",
		"items": []map[string]any{
			{"sku": "TEA-001", "name": "龙井 250g", "category": "tea", "quantity": 2, "unit_price_fen": 5900},
			{"sku": "CUP-002", "name": "玻璃杯", "quantity": 1, "unit_price_fen": 3000},
		},
		"discount_fen": 2000,
		"paid_at":      paidAt.Format(time.RFC3339),
		"coupon_code":  "NEW20",
	}
}

func TestProductsAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "products")
		body := map[string]any{"name": "龙井 250g", "category": "tea", "price_fen": 5900}
		r := s.Do(t, "PUT", "/api/v1/products/TEA-001", w.Key, body)
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		var p commerce.Product
		r.JSON(t, &p)
		if p.SKU != "TEA-001" || p.PriceFen != 5900 || p.Currency != "CNY" || p.Status != "active" {
			t.Fatalf("created %+v", p)
		}
		if r := s.Do(t, "PUT", "/api/v1/products/TEA-001", w.Key, body); r.Status != http.StatusOK {
			t.Fatalf("re-put: %d %s", r.Status, r.Body)
		}
		if r := s.Do(t, "GET", "/api/v1/products/TEA-001", w.Key, nil); r.Status != http.StatusOK {
			t.Fatalf("get: %d %s", r.Status, r.Body)
		}
		expectProblem(t, s.Do(t, "PUT", "/api/v1/products/BAD", w.Key, map[string]any{"name": "x", "price_fen": -1}), 422, "invalid_amount")
		expectProblem(t, s.Do(t, "PUT", "/api/v1/products/BAD", w.Key, map[string]any{"name": "x", "price_fen": 1, "currency": "USD"}), 422, "unsupported_currency")
		expectProblem(t, s.Do(t, "GET", "/api/v1/products/BAD", w.Key, nil), 404, "product_not_found")

		r = s.Do(t, "DELETE", "/api/v1/products/TEA-001", w.Key, nil)
		r.JSON(t, &p)
		if r.Status != http.StatusOK || p.Status != "archived" {
			t.Fatalf("archive: %d %s", r.Status, r.Body)
		}
		var list struct{ Items []commerce.Product }
		s.Do(t, "GET", "/api/v1/products", w.Key, nil).JSON(t, &list)
		if len(list.Items) != 0 {
			t.Fatalf("archived product listed as active: %+v", list.Items)
		}
		s.Do(t, "GET", "/api/v1/products?status=all", w.Key, nil).JSON(t, &list)
		if len(list.Items) != 1 {
			t.Fatalf("status=all: %+v", list.Items)
		}
	})
}

func TestOrdersAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "orders")
		paidAt := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)

		r := s.Do(t, "PUT", "/api/v1/orders/tmall/T1001", w.Key, tmallOrder(paidAt))
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		var o commerce.Order
		r.JSON(t, &o)
		if o.TotalFen != 14800 || o.PaidFen != 12800 || o.Status != "paid" || o.CustomerID == 0 || len(o.Items) != 2 || !o.PaidAt.Equal(paidAt) {
			t.Fatalf("created %+v", o)
		}
		// Idempotent: the same order again is 200 and changes nothing.
		r = s.Do(t, "PUT", "/api/v1/orders/tmall/T1001", w.Key, tmallOrder(paidAt))
		var again commerce.Order
		r.JSON(t, &again)
		if r.Status != http.StatusOK || !again.UpdatedAt.Equal(o.UpdatedAt) {
			t.Fatalf("re-send: %d %s", r.Status, r.Body)
		}

		// Refunds: partial (201), repeated (200), too much (409), the rest.
		refund := func(id string, fen int64) apptest.Response {
			return s.Do(t, "POST", "/api/v1/orders/tmall/T1001/refunds", w.Key, map[string]any{"refund_id": id, "amount_fen": fen, "reason": "破损"})
		}
		if r := refund("RF-1", 5900); r.Status != http.StatusCreated {
			t.Fatalf("refund: %d %s", r.Status, r.Body)
		}
		r = refund("RF-1", 5900)
		r.JSON(t, &o)
		if r.Status != http.StatusOK || o.Status != "partially_refunded" || o.RefundedFen != 5900 || len(o.Refunds) != 1 {
			t.Fatalf("repeated refund: %d %s", r.Status, r.Body)
		}
		expectProblem(t, refund("RF-2", 6901), 409, "refund_exceeds_paid")
		expectProblem(t, refund("RF-1", 100), 409, "refund_id_reused")
		expectProblem(t, refund("RF-2", -1), 422, "invalid_amount")
		refund("RF-2", 6900).JSON(t, &o)
		if o.Status != "refunded" || o.RefundedFen != 12800 {
			t.Fatalf("full refund: %+v", o)
		}

		// Reads: by key, by list filters, and by customer.
		if r := s.Do(t, "GET", "/api/v1/orders/tmall/T1001", w.Key, nil); r.Status != http.StatusOK {
			t.Fatalf("get: %d %s", r.Status, r.Body)
		}
		var list struct {
			Items      []commerce.Order `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}
		s.Do(t, "GET", fmt.Sprintf("/api/v1/orders?customer_id=%d&status=refunded&source=tmall", o.CustomerID), w.Key, nil).JSON(t, &list)
		if len(list.Items) != 1 || list.Items[0].OrderID != "T1001" {
			t.Fatalf("filtered list: %+v", list)
		}
		s.Do(t, "GET", "/api/v1/orders?status=pending", w.Key, nil).JSON(t, &list)
		if len(list.Items) != 0 {
			t.Fatalf("pending list: %+v", list.Items)
		}
		s.Do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/orders", o.CustomerID), w.Key, nil).JSON(t, &list)
		if len(list.Items) != 1 || len(list.Items[0].Refunds) != 2 {
			t.Fatalf("customer's orders: %+v", list.Items)
		}
		// The order and its refunds are on the customer's timeline.
		var tl struct {
			Items []struct {
				Kind  string `json:"kind"`
				Title string `json:"title"`
			} `json:"items"`
		}
		s.Do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/timeline", o.CustomerID), w.Key, nil).JSON(t, &tl)
		kinds := map[string]int{}
		for _, e := range tl.Items {
			kinds[e.Kind]++
		}
		if kinds["order"] != 1 || kinds["refund"] != 2 {
			t.Fatalf("timeline %+v", tl.Items)
		}
	})
}

func TestOrderBadInputAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "order-bad")
		if _, err := s.App.Staff.CreateStore(t.Context(), w.ID, staff.Store{Code: "SH-01", Name: "静安店"}); err != nil {
			t.Fatal(err)
		}
		paidAt := time.Now().Add(-time.Hour)
		with := func(mod func(map[string]any)) map[string]any {
			b := tmallOrder(paidAt)
			mod(b)
			return b
		}
		put := func(body any) apptest.Response { return s.Do(t, "PUT", "/api/v1/orders/tmall/BAD-1", w.Key, body) }
		expectProblem(t, put(with(func(b map[string]any) { b["discount_fen"] = -5 })), 422, "invalid_amount")
		expectProblem(t, put(with(func(b map[string]any) {
			b["items"] = []map[string]any{{"sku": "X", "quantity": 1, "unit_price_fen": -100}}
		})), 422, "invalid_amount")
		expectProblem(t, put(with(func(b map[string]any) { b["currency"] = "EUR" })), 422, "unsupported_currency")
		expectProblem(t, put(with(func(b map[string]any) { delete(b, "paid_at") })), 422, "paid_at_required")
		expectProblem(t, put(with(func(b map[string]any) { b["store_code"] = "NOPE" })), 422, "unknown_store_code")
		expectProblem(t, put(with(func(b map[string]any) { b["total_fen"] = 1 })), 422, "amount_mismatch")
		expectProblem(t, put(with(func(b map[string]any) { delete(b, "customer") })), 422, "customer_required")
		expectProblem(t, put(with(func(b map[string]any) { b["customer"] = map[string]string{"qq": "123"} })), 422, "unknown_identity_kind")
		expectProblem(t, put(`{"status": "paid", "items": [`), 400, "malformed_request")
		expectProblem(t, s.Do(t, "PUT", "/api/v1/orders/taobao/BAD-1", w.Key, tmallOrder(paidAt)), 422, "validation_failed")
		expectProblem(t, s.Do(t, "GET", "/api/v1/orders/tmall/BAD-1", w.Key, nil), 404, "order_not_found")

		// Nothing was written: no order, and no customer from the identifiers.
		var list struct{ Items []any }
		s.Do(t, "GET", "/api/v1/orders", w.Key, nil).JSON(t, &list)
		if len(list.Items) != 0 {
			t.Fatalf("orders written by bad input: %+v", list.Items)
		}
		s.Do(t, "GET", "/api/v1/customers", w.Key, nil).JSON(t, &list)
		if len(list.Items) != 0 {
			t.Fatalf("customers written by bad input: %+v", list.Items)
		}
		// With the store known, the same order is fine.
		if r := put(with(func(b map[string]any) { b["store_code"] = "SH-01" })); r.Status != http.StatusCreated {
			t.Fatalf("good order: %d %s", r.Status, r.Body)
		}
	})
}

func TestCommerceWorkspaceIsolation(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		a := s.NewWorkspace(t, "shop-a")
		b := s.NewWorkspace(t, "shop-b")
		paidAt := time.Now().Add(-time.Hour)
		var o commerce.Order
		s.Do(t, "PUT", "/api/v1/orders/jd/J-1", a.Key, tmallOrder(paidAt)).JSON(t, &o)
		s.Do(t, "PUT", "/api/v1/products/SKU-A", a.Key, map[string]any{"name": "A's", "price_fen": 100})

		expectProblem(t, s.Do(t, "GET", "/api/v1/orders/jd/J-1", b.Key, nil), 404, "order_not_found")
		expectProblem(t, s.Do(t, "POST", "/api/v1/orders/jd/J-1/refunds", b.Key, map[string]any{"refund_id": "x", "amount_fen": 100}), 404, "order_not_found")
		expectProblem(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/orders", o.CustomerID), b.Key, nil), 404, "customer_not_found")
		expectProblem(t, s.Do(t, "GET", "/api/v1/products/SKU-A", b.Key, nil), 404, "product_not_found")
		expectProblem(t, s.Do(t, "DELETE", "/api/v1/products/SKU-A", b.Key, nil), 404, "product_not_found")
		var list struct{ Items []commerce.Order }
		s.Do(t, "GET", fmt.Sprintf("/api/v1/orders?customer_id=%d", o.CustomerID), b.Key, nil).JSON(t, &list)
		if len(list.Items) != 0 {
			t.Fatalf("B lists A's orders: %+v", list.Items)
		}
		// Putting A's order id with A's customer id from B's key is B's own
		// order and may not name A's customer.
		expectProblem(t, s.Do(t, "PUT", "/api/v1/orders/jd/J-1", b.Key, map[string]any{
			"customer_id": o.CustomerID, "status": "pending", "total_fen": 100,
		}), 422, "unknown_customer")
		var got commerce.Order
		s.Do(t, "GET", "/api/v1/orders/jd/J-1", a.Key, nil).JSON(t, &got)
		if got.RefundedFen != 0 || got.CustomerID != o.CustomerID || !got.UpdatedAt.Equal(o.UpdatedAt) {
			t.Fatalf("A's order changed: %+v", got)
		}
	})
}

func TestCommercePermissionsAndDocs(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	w := s.NewWorkspace(t, "perms")
	_, analyst, err := s.App.Tenant.CreateAPIKey(t.Context(), tenant.System(w.ID), "read only", tenant.RoleAnalyst)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Do(t, "GET", "/api/v1/orders", analyst, nil); r.Status != http.StatusOK {
		t.Fatalf("analyst reads orders: %d", r.Status)
	}
	expectProblem(t, s.Do(t, "PUT", "/api/v1/orders/tmall/X", analyst, tmallOrder(time.Now())), 403, "forbidden")
	expectProblem(t, s.Do(t, "PUT", "/api/v1/products/X", analyst, map[string]any{"name": "x", "price_fen": 1}), 403, "forbidden")
	expectProblem(t, s.Do(t, "GET", "/api/v1/orders", "", nil), 401, "missing_api_key")

	var doc struct {
		Paths map[string]map[string]struct {
			Description string `json:"description"`
		} `json:"paths"`
	}
	s.Do(t, "GET", "/api/v1/openapi.json", "", nil).JSON(t, &doc)
	for _, p := range []string{"/products", "/products/{sku}", "/orders", "/orders/{source}/{order_id}", "/orders/{source}/{order_id}/refunds", "/customers/{id}/orders"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("path %s missing from the OpenAPI document", p)
		}
	}
	if d := doc.Paths["/orders/{source}/{order_id}"]["put"].Description; !strings.Contains(d, "fen") {
		t.Errorf("put-order does not document money as fen: %q", d)
	}
}
