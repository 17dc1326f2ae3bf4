package api

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/tenant"
)

const moneyNote = "Money is integer fen (分): 100 fen = ¥1, never a decimal. Only CNY is accepted; " +
	"other currencies are rejected with code unsupported_currency, negative amounts with invalid_amount."

// ProductPutInput is PUT /products/{sku}.
type ProductPutInput struct {
	SKU  string `path:"sku" maxLength:"128" doc:"The brand's SKU: 1–128 characters without spaces."`
	Body struct {
		Name     string `json:"name" maxLength:"200" doc:"Product name."`
		Category string `json:"category,omitempty" maxLength:"100"`
		PriceFen int64  `json:"price_fen" doc:"List price in fen (分): 5900 is ¥59.00. Not negative."`
		Currency string `json:"currency,omitempty" doc:"Only CNY (the default) is supported." example:"CNY"`
		Status   string `json:"status,omitempty" enum:"active,archived" doc:"Default active; putting an archived product restores it."`
	}
}

// ProductOutput is one product.
type ProductOutput struct {
	Status int
	Body   commerce.Product
}

// ProductListInput filters GET /products.
type ProductListInput struct {
	PageParams
	Status   string `query:"status" enum:"active,archived,all" default:"active" doc:"Which products: active (default), archived (deleted), or all."`
	Category string `query:"category" maxLength:"100" doc:"Only this category."`
}

// OrderItemBody is one line of an order as sent.
type OrderItemBody struct {
	SKU          string `json:"sku" maxLength:"128"`
	Name         string `json:"name,omitempty" maxLength:"200"`
	Category     string `json:"category,omitempty" maxLength:"100"`
	Quantity     int64  `json:"quantity" doc:"Units, 1–1,000,000."`
	UnitPriceFen int64  `json:"unit_price_fen" doc:"Price of one unit in fen (分). The line's amount is quantity × unit_price_fen."`
}

// OrderBody is the body of PUT /orders/{source}/{order_id}.
type OrderBody struct {
	CustomerID int64             `json:"customer_id,omitempty" doc:"The buyer's Siyu customer id. Give this or customer, not both."`
	Customer   map[string]string `json:"customer,omitempty" doc:"The buyer's identifiers by kind, resolved to one profile (One ID) and created if new, e.g. {\"shop_buyer_id\": \"tmall:buyer123\", \"phone\": \"13800138000\"}. Kinds: user_id, anonymous_id, phone, email, wecom_external_userid, wechat_unionid, mp_openid, miniapp_openid, douyin_openid, shop_buyer_id (prefix it with the shop)."`
	Status     string            `json:"status" enum:"pending,paid,cancelled,partially_refunded,refunded" doc:"pending, paid or cancelled. A paid order becomes partially_refunded or refunded through its refunds (POST …/refunds); sending those values is accepted only when the recorded refunds already make the order so. A paid order cannot go back to pending or cancelled."`
	Currency   string            `json:"currency,omitempty" doc:"Only CNY (the default) is supported." example:"CNY"`
	Items      []OrderItemBody   `json:"items,omitempty" maxItems:"500" doc:"The lines; on an update they replace the stored ones."`
	TotalFen   *int64            `json:"total_fen,omitempty" doc:"Optional check: must equal the sum of the items' amounts. Required when the source sends no items."`
	Discount   int64             `json:"discount_fen,omitempty" doc:"Order-level discount in fen; 0 ≤ discount_fen ≤ total."`
	PaidFen    *int64            `json:"paid_fen,omitempty" doc:"Optional check: must equal total − discount_fen."`
	OrderedAt  *time.Time        `json:"ordered_at,omitempty" doc:"When the order was placed; default paid_at, else when Siyu first receives it."`
	PaidAt     *time.Time        `json:"paid_at,omitempty" doc:"When it was paid; required when status is paid (code paid_at_required)."`
	StoreCode  string            `json:"store_code,omitempty" maxLength:"64" doc:"The store's code (GET /stores); an unknown code is rejected with unknown_store_code."`
	CouponCode string            `json:"coupon_code,omitempty" maxLength:"64" doc:"The coupon used, if any."`
}

// OrderPutInput is PUT /orders/{source}/{order_id}.
type OrderPutInput struct {
	OrderPath
	Body OrderBody
}

// OrderPath names one order.
type OrderPath struct {
	Source  string `path:"source" enum:"miniapp,tmall,jd,douyin_shop,offline_store,other" doc:"The channel the order came from."`
	OrderID string `path:"order_id" maxLength:"128" doc:"The source system's order id."`
}

// OrderOutput is one order.
type OrderOutput struct {
	Status int
	Body   commerce.Order
}

// OrderListInput filters GET /orders.
type OrderListInput struct {
	PageParams
	CustomerID int64  `query:"customer_id" doc:"Only this customer's orders."`
	Source     string `query:"source" enum:"miniapp,tmall,jd,douyin_shop,offline_store,other" doc:"Only orders from this channel."`
	Status     string `query:"status" enum:"pending,paid,partially_refunded,refunded,cancelled" doc:"Only orders in this status."`
}

// RefundPostInput is POST /orders/{source}/{order_id}/refunds.
type RefundPostInput struct {
	OrderPath
	Body struct {
		RefundID   string     `json:"refund_id" maxLength:"128" doc:"The source system's refund id; sending the same refund again changes nothing."`
		AmountFen  int64      `json:"amount_fen" doc:"Amount refunded in fen (分), more than 0. All refunds of an order together may not exceed its paid_fen (code refund_exceeds_paid)."`
		Reason     string     `json:"reason,omitempty" maxLength:"500"`
		RefundedAt *time.Time `json:"refunded_at,omitempty" doc:"When the money was returned; default now."`
	}
}

func (a *API) registerCommerce() {
	tags := []string{"Commerce"}
	product := func(p commerce.Product) commerce.Product { return p }
	order := func(o commerce.Order) commerce.Order { return o }
	status := func(created bool) int {
		if created {
			return http.StatusCreated
		}
		return http.StatusOK
	}
	instant := func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	}
	register(a, huma.Operation{
		OperationID: "put-product", Method: http.MethodPut, Path: "/products/{sku}", Tags: tags,
		Summary:     "Create or replace a product",
		Description: "Upserts the product by SKU; putting it unchanged changes nothing. Answers 201 when the SKU is new. " + moneyNote,
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *ProductPutInput) (*ProductOutput, error) {
		prod, created, err := a.deps.Commerce.PutProduct(ctx, p.TenantID, commerce.ProductInput{
			SKU: in.SKU, Name: in.Body.Name, Category: in.Body.Category, PriceFen: in.Body.PriceFen,
			Currency: in.Body.Currency, Status: commerce.ProductStatus(in.Body.Status),
		})
		if err != nil {
			return nil, err
		}
		return &ProductOutput{Status: status(created), Body: prod}, nil
	})
	register(a, huma.Operation{
		OperationID: "list-products", Method: http.MethodGet, Path: "/products", Tags: tags,
		Summary: "List products", Description: "Products by SKU. Prices are in fen.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *ProductListInput) (*ListOutput[commerce.Product], error) {
		q := commerce.ProductQuery{Status: commerce.ProductStatus(in.Status), Category: in.Category}
		if in.Status == "all" {
			q.Status = ""
		}
		pg, err := a.deps.Commerce.Products(ctx, p.TenantID, q, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, product), nil
	})
	register(a, huma.Operation{
		OperationID: "get-product", Method: http.MethodGet, Path: "/products/{sku}", Tags: tags,
		Summary: "Get a product",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *struct {
		SKU string `path:"sku" maxLength:"128"`
	}) (*ProductOutput, error) {
		prod, err := a.deps.Commerce.Product(ctx, p.TenantID, in.SKU)
		return &ProductOutput{Status: http.StatusOK, Body: prod}, err
	})
	register(a, huma.Operation{
		OperationID: "archive-product", Method: http.MethodDelete, Path: "/products/{sku}", Tags: tags,
		Summary:     "Archive (delete) a product",
		Description: "Removes the product from the catalogue (status archived) but keeps it for the orders that name it. Archiving twice changes nothing.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *struct {
		SKU string `path:"sku" maxLength:"128"`
	}) (*ProductOutput, error) {
		prod, err := a.deps.Commerce.ArchiveProduct(ctx, p.TenantID, in.SKU)
		return &ProductOutput{Status: http.StatusOK, Body: prod}, err
	})

	register(a, huma.Operation{
		OperationID: "put-order", Method: http.MethodPut, Path: "/orders/{source}/{order_id}", Tags: tags,
		Summary: "Create or update an order",
		Description: "Upserts the order by (source, order_id) and updates the buyer's spend, in one transaction. " +
			"Sending the same order again changes nothing; sending it with a new status or new items updates it. Answers 201 when the order is new.\n\n" +
			"Amounts: each item's amount is quantity × unit_price_fen; total_fen is the sum of the items; paid_fen = total_fen − discount_fen. " + moneyNote +
			" A rejected order writes nothing, not even a new customer.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *OrderPutInput) (*OrderOutput, error) {
		b := in.Body
		oi := commerce.OrderInput{
			Source: commerce.Source(in.Source), OrderID: in.OrderID, CustomerID: b.CustomerID, Status: commerce.Status(b.Status),
			Currency: b.Currency, TotalFen: b.TotalFen, DiscountFen: b.Discount, PaidFen: b.PaidFen,
			OrderedAt: instant(b.OrderedAt), PaidAt: instant(b.PaidAt), StoreCode: b.StoreCode, CouponCode: b.CouponCode,
		}
		for _, kind := range slices.Sorted(maps.Keys(b.Customer)) {
			oi.Identities = append(oi.Identities, customer.Identity{Kind: kind, Value: b.Customer[kind]})
		}
		for _, it := range b.Items {
			oi.Items = append(oi.Items, commerce.ItemInput{SKU: it.SKU, Name: it.Name, Category: it.Category, Quantity: it.Quantity, UnitPriceFen: it.UnitPriceFen})
		}
		res, err := a.deps.Commerce.UpsertOrder(ctx, p.TenantID, oi)
		if err != nil {
			return nil, err
		}
		return &OrderOutput{Status: status(res.Created), Body: res.Order}, nil
	})
	register(a, huma.Operation{
		OperationID: "list-orders", Method: http.MethodGet, Path: "/orders", Tags: tags,
		Summary: "List orders", Description: "Orders newest first (by ordered_at), with items and refunds. Amounts are in fen.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *OrderListInput) (*ListOutput[commerce.Order], error) {
		pg, err := a.deps.Commerce.ListOrders(ctx, p.TenantID, commerce.OrderQuery{
			CustomerID: in.CustomerID, Source: commerce.Source(in.Source), Status: commerce.Status(in.Status),
		}, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, order), nil
	})
	register(a, huma.Operation{
		OperationID: "get-order", Method: http.MethodGet, Path: "/orders/{source}/{order_id}", Tags: tags,
		Summary: "Get an order", Description: "One order with its items and refunds. Amounts are in fen.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *OrderPath) (*OrderOutput, error) {
		o, err := a.deps.Commerce.Order(ctx, p.TenantID, commerce.Source(in.Source), in.OrderID)
		return &OrderOutput{Status: http.StatusOK, Body: o}, err
	})
	register(a, huma.Operation{
		OperationID: "add-refund", Method: http.MethodPost, Path: "/orders/{source}/{order_id}/refunds", Tags: tags,
		Summary: "Record a refund",
		Description: "Records a refund of a paid order: the order becomes partially_refunded or refunded and the buyer's spend drops, in one transaction. " +
			"Idempotent by refund_id: the same refund again answers 200 and changes nothing; the same refund_id with another amount is a 409 (refund_id_reused). " +
			"Answers 201 with the order when the refund is new. Amounts are in fen.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *RefundPostInput) (*OrderOutput, error) {
		res, err := a.deps.Commerce.AddRefund(ctx, p.TenantID, commerce.Source(in.Source), in.OrderID, commerce.RefundInput{
			RefundID: in.Body.RefundID, AmountFen: in.Body.AmountFen, Reason: in.Body.Reason, RefundedAt: instant(in.Body.RefundedAt),
		})
		if err != nil {
			return nil, err
		}
		return &OrderOutput{Status: status(res.Created), Body: res.Order}, nil
	})
	register(a, huma.Operation{
		OperationID: "list-customer-orders", Method: http.MethodGet, Path: "/customers/{id}/orders", Tags: []string{"Customers", "Commerce"},
		Summary: "List a customer's orders", Description: "The customer's orders newest first (by ordered_at), with items and refunds. Amounts are in fen.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *struct {
		PageParams
		ID int64 `path:"id"`
	}) (*ListOutput[commerce.Order], error) {
		pg, err := a.deps.Commerce.Orders(ctx, p.TenantID, in.ID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, order), nil
	})
}
