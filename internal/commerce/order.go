package commerce

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
)

// Order is one order of a source system, with its items and refunds.
type Order struct {
	ID          int64     `json:"id" doc:"Siyu's id of the order."`
	Source      Source    `json:"source" enum:"miniapp,tmall,jd,douyin_shop,offline_store,other" doc:"The channel the order came from."`
	OrderID     string    `json:"order_id" doc:"The source system's order id; unique per source."`
	CustomerID  int64     `json:"customer_id"`
	Status      Status    `json:"status" enum:"pending,paid,partially_refunded,refunded,cancelled"`
	Currency    string    `json:"currency" doc:"Always CNY for now."`
	TotalFen    int64     `json:"total_fen" doc:"Sum of the items' amount_fen, in fen (分, 100 fen = ¥1)."`
	DiscountFen int64     `json:"discount_fen" doc:"Order-level discount (coupons, promotions), in fen."`
	PaidFen     int64     `json:"paid_fen" doc:"total_fen − discount_fen: what the customer pays, in fen."`
	RefundedFen int64     `json:"refunded_fen" doc:"Sum of the refunds, in fen; never more than paid_fen."`
	StoreID     int64     `json:"store_id,omitempty" doc:"The store (门店) of an offline or store-attributed order."`
	StoreCode   string    `json:"store_code,omitempty"`
	CouponCode  string    `json:"coupon_code,omitempty"`
	OrderedAt   time.Time `json:"ordered_at" doc:"When the order was placed."`
	PaidAt      time.Time `json:"paid_at,omitzero" doc:"When it was paid; absent for pending and cancelled orders."`
	CreatedAt   time.Time `json:"created_at" doc:"When Siyu first received the order."`
	UpdatedAt   time.Time `json:"updated_at" doc:"When Siyu last changed the order."`
	Items       []Item    `json:"items" nullable:"false"`
	Refunds     []Refund  `json:"refunds" nullable:"false"`
}

// Item is one line of an order.
type Item struct {
	Line         int    `json:"line" doc:"Position in the order, from 1."`
	SKU          string `json:"sku"`
	Name         string `json:"name"`
	Category     string `json:"category"`
	Quantity     int64  `json:"quantity"`
	UnitPriceFen int64  `json:"unit_price_fen" doc:"Price of one unit, in fen."`
	AmountFen    int64  `json:"amount_fen" doc:"quantity × unit_price_fen, in fen."`
}

// ItemInput is one line of an OrderInput; its amount is computed.
type ItemInput struct {
	SKU          string
	Name         string
	Category     string
	Quantity     int64
	UnitPriceFen int64
}

// OrderInput is an order as a source system sends it.
type OrderInput struct {
	Source  Source
	OrderID string

	// The buyer: either CustomerID, or identifiers (shop_buyer_id, phone,
	// user_id, …) that One ID resolves to a profile, creating one if needed.
	CustomerID int64
	Identities []customer.Identity

	// Status is pending, paid or cancelled. partially_refunded and refunded
	// are accepted when they are what the order's recorded refunds make it
	// (so a client may send back what it read).
	Status   Status
	Currency string // "" means CNY

	Items       []ItemInput
	TotalFen    *int64 // optional: checked against the items, or the total of an order sent without items
	DiscountFen int64
	PaidFen     *int64 // optional: checked against total − discount

	OrderedAt  time.Time // zero: paid_at, else when Siyu first saw the order
	PaidAt     time.Time // required when the status is a paid one
	StoreCode  string    // a store of the workspace, by its code
	CouponCode string
}

// UpsertResult is the outcome of UpsertOrder.
type UpsertResult struct {
	Order   Order
	Created bool // the order was new
	Changed bool // something was written (always true when Created)
}

// orderState is the part of an order row an upsert decides; two equal states
// mean there is nothing to write.
type orderState struct {
	customerID                      int64
	status                          Status
	currency                        string
	total, discount, paid, refunded int64
	storeID                         int64
	storeCode, coupon               string
	orderedAt, paidAt               int64 // ms; paidAt 0: none
}

// orderDraft is a validated OrderInput.
type orderDraft struct {
	in        OrderInput
	items     []Item
	total     int64
	paid      int64
	storeID   int64
	orderedAt time.Time
	paidAt    time.Time
}

// validate checks everything about an order that does not depend on what is
// stored, so that bad input fails before anything is written.
func (s *Service) validate(ctx context.Context, tenantID int64, in OrderInput) (orderDraft, error) {
	d := orderDraft{in: in}
	var err error
	if err := validSource("source", in.Source); err != nil {
		return d, err
	}
	if d.in.OrderID, err = key("order_id", "invalid_order_id", in.OrderID); err != nil {
		return d, err
	}
	switch {
	case in.CustomerID != 0 && len(in.Identities) > 0:
		return d, errs.Field("customer", "ambiguous_customer", "give customer_id or customer identifiers, not both")
	case in.CustomerID < 0:
		return d, errs.Field("customer_id", "unknown_customer", "no customer has id %d", in.CustomerID)
	case in.CustomerID == 0 && len(in.Identities) == 0:
		return d, errs.Field("customer", "customer_required", "an order needs its buyer: customer_id or customer identifiers (user_id, phone, shop_buyer_id, …)")
	}
	if !slices.Contains(Statuses(), in.Status) {
		return d, errs.Field("status", "invalid_status", "status must be pending, paid, cancelled, partially_refunded or refunded")
	}
	if d.in.Currency, err = currency("currency", in.Currency); err != nil {
		return d, err
	}
	if len(in.Items) > MaxItems {
		return d, errs.Field("items", "too_many_items", "an order has at most %d items", MaxItems)
	}
	for i, it := range in.Items {
		loc := fmt.Sprintf("items[%d]", i)
		var line Item
		line.Line = i + 1
		if line.SKU, err = key(loc+".sku", "invalid_sku", it.SKU); err != nil {
			return d, err
		}
		if line.Name, err = text(loc+".name", it.Name, 200, false); err != nil {
			return d, err
		}
		if line.Category, err = text(loc+".category", it.Category, 100, false); err != nil {
			return d, err
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			return d, errs.Field(loc+".quantity", "invalid_quantity", "%s.quantity must be 1–%d", loc, MaxQuantity)
		}
		if err := amount(loc+".unit_price_fen", it.UnitPriceFen, MaxUnitPriceFen); err != nil {
			return d, err
		}
		line.Quantity, line.UnitPriceFen, line.AmountFen = it.Quantity, it.UnitPriceFen, it.Quantity*it.UnitPriceFen
		d.total += line.AmountFen
		d.items = append(d.items, line)
	}
	if in.TotalFen != nil {
		if err := amount("total_fen", *in.TotalFen, MaxOrderFen); err != nil {
			return d, err
		}
		if len(d.items) > 0 && *in.TotalFen != d.total {
			return d, errs.Field("total_fen", "amount_mismatch", "total_fen is %d but the items sum to %d fen", *in.TotalFen, d.total)
		}
		d.total = *in.TotalFen
	} else if len(d.items) == 0 {
		return d, errs.Field("items", "items_required", "an order needs items, or total_fen when the source sends no items")
	}
	if d.total > MaxOrderFen {
		return d, errs.Field("items", "invalid_amount", "the order total (%d fen) is over the limit of %d fen", d.total, MaxOrderFen)
	}
	if err := amount("discount_fen", in.DiscountFen, MaxOrderFen); err != nil {
		return d, err
	}
	if in.DiscountFen > d.total {
		return d, errs.Field("discount_fen", "invalid_amount", "discount_fen (%d) is more than the total (%d fen)", in.DiscountFen, d.total)
	}
	d.paid = d.total - in.DiscountFen
	if in.PaidFen != nil {
		if err := amount("paid_fen", *in.PaidFen, MaxOrderFen); err != nil {
			return d, err
		}
		if *in.PaidFen != d.paid {
			return d, errs.Field("paid_fen", "amount_mismatch", "paid_fen is %d but total − discount is %d fen", *in.PaidFen, d.paid)
		}
	}
	if d.orderedAt, err = s.instant("ordered_at", in.OrderedAt); err != nil {
		return d, err
	}
	if d.paidAt, err = s.instant("paid_at", in.PaidAt); err != nil {
		return d, err
	}
	if in.Status.WasPaid() && d.paidAt.IsZero() {
		return d, errs.Field("paid_at", "paid_at_required", "paid_at is required when the status is %s", in.Status)
	}
	if d.in.CouponCode, err = text("coupon_code", in.CouponCode, 64, false); err != nil {
		return d, err
	}
	if d.in.StoreCode, err = text("store_code", in.StoreCode, 64, false); err != nil {
		return d, err
	}
	if d.in.StoreCode != "" {
		st, err := s.stores.StoreByCode(ctx, tenantID, d.in.StoreCode)
		if errs.Is(err, errs.NotFound) {
			return d, errs.Field("store_code", "unknown_store_code", "no store has code %q", d.in.StoreCode)
		}
		if err != nil {
			return d, err
		}
		d.storeID = st.ID
	}
	if in.CustomerID != 0 {
		if _, err := s.customers.Get(ctx, tenantID, in.CustomerID, false); errs.Is(err, errs.NotFound) {
			return d, errs.Field("customer_id", "unknown_customer", "no customer has id %d", in.CustomerID)
		} else if err != nil {
			return d, err
		}
	}
	return d, nil
}

// allowedTransition says whether the source system may move an order from one
// base status to another. A paid order is undone by refunds, never by going
// back to pending or cancelled; a cancelled order may still be paid late.
func allowedTransition(from, to Status) bool {
	return from == to || from == Pending || (from == Cancelled && to == Paid)
}

// deriveStatus is the stored status of an order whose source says base.
func deriveStatus(base Status, paid, refunded int64) Status {
	switch {
	case base != Paid || refunded == 0:
		return base
	case refunded >= paid:
		return Refunded
	default:
		return PartiallyRefunded
	}
}

// UpsertOrder creates or updates the order (in.Source, in.OrderID) in one
// transaction: the buyer is resolved, the order row and its items written, and
// the customer's spend rewritten. Sending an order exactly as stored writes
// nothing. Bad input writes nothing either: amounts are checked (see the
// package doc), the currency must be CNY, paid_at is required for a paid
// order, and the store code must exist.
func (s *Service) UpsertOrder(ctx context.Context, tenantID int64, in OrderInput) (UpsertResult, error) {
	d, err := s.validate(ctx, tenantID, in)
	if err != nil {
		return UpsertResult{}, err
	}
	var res UpsertResult
	wasPaid := false // the order was paid before this write
	now := s.now().UTC()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		customerID := d.in.CustomerID
		if customerID == 0 {
			at := d.orderedAt
			if at.IsZero() {
				at = d.paidAt
			}
			customerID, err = s.customers.Resolve(ctx, tx, tenantID, customer.Observation{
				At: at, Identities: d.in.Identities, Source: string(d.in.Source),
				MessageID: "order:" + string(d.in.Source) + ":" + d.in.OrderID,
			})
			if err != nil {
				return err
			}
		}
		rowID, old, err := s.lockOrder(ctx, tx, tenantID, d.in.Source, d.in.OrderID)
		if err != nil {
			return err
		}
		next := orderState{
			customerID: customerID, currency: d.in.Currency, total: d.total, discount: d.in.DiscountFen, paid: d.paid,
			storeID: d.storeID, storeCode: d.in.StoreCode, coupon: d.in.CouponCode, paidAt: millisOrZero(d.paidAt),
		}
		base := d.in.Status.base()
		if rowID == 0 {
			if d.in.Status != base {
				return errs.E(errs.Conflict, "status_follows_refunds",
					"a new order cannot be %s: send it as paid, then record its refunds", d.in.Status)
			}
			next.status = base
			next.orderedAt = db.Millis(firstNonZero(d.orderedAt, d.paidAt, now))
			if rowID, err = s.insertOrder(ctx, tx, tenantID, d, next, now); err != nil {
				return err
			}
			if rowID == 0 {
				// Inserted concurrently since lockOrder: take the update path.
				if rowID, old, err = s.lockOrder(ctx, tx, tenantID, d.in.Source, d.in.OrderID); err != nil {
					return err
				}
				if rowID == 0 {
					return fmt.Errorf("commerce: order %s/%s vanished during upsert", d.in.Source, d.in.OrderID)
				}
			} else {
				res.Created, res.Changed = true, true
			}
		}
		if !res.Created {
			wasPaid = old.status.WasPaid()
			if !allowedTransition(old.status.base(), base) {
				return errs.E(errs.Conflict, "invalid_status_transition",
					"order %s/%s is %s and cannot become %s (a paid order is undone by refunds)", d.in.Source, d.in.OrderID, old.status, d.in.Status)
			}
			next.refunded = old.refunded
			if next.refunded > next.paid {
				return errs.E(errs.Conflict, "refund_exceeds_paid",
					"order %s/%s has %d fen refunded, more than the new paid amount of %d fen", d.in.Source, d.in.OrderID, next.refunded, next.paid)
			}
			next.status = deriveStatus(base, next.paid, next.refunded)
			if d.in.Status != base && d.in.Status != next.status {
				return errs.E(errs.Conflict, "status_follows_refunds",
					"order %s/%s is %s by its refunds (%d of %d fen), not %s: record refunds to change it",
					d.in.Source, d.in.OrderID, next.status, next.refunded, next.paid, d.in.Status)
			}
			next.orderedAt = db.Millis(firstNonZero(d.orderedAt, db.FromMillis(old.orderedAt)))
			items, err := s.items(ctx, tx, tenantID, []int64{rowID})
			if err != nil {
				return err
			}
			if next == old && slices.Equal(items[rowID], d.items) {
				return nil
			}
			if err := s.updateOrder(ctx, tx, tenantID, rowID, d, next, now); err != nil {
				return err
			}
			res.Changed = true
		}
		if err := s.replaceItems(ctx, tx, tenantID, rowID, d.items); err != nil {
			return err
		}
		affected := []int64{customerID}
		if old.customerID != 0 && old.customerID != customerID {
			affected = append(affected, old.customerID)
		}
		return s.refreshSpend(ctx, tx, tenantID, affected...)
	})
	if err != nil {
		return UpsertResult{}, err
	}
	if res.Changed {
		s.log.DebugContext(ctx, "order written", "tenant", tenantID, "source", d.in.Source, "order", d.in.OrderID, "created", res.Created)
	}
	res.Order, err = s.Order(ctx, tenantID, d.in.Source, d.in.OrderID)
	if err == nil && res.Changed && !wasPaid && res.Order.Status.WasPaid() {
		s.obs.notify(OrderActivity{Kind: OrderPaid, TenantID: tenantID, CustomerID: res.Order.CustomerID, Order: res.Order, At: res.Order.PaidAt})
	}
	return res, err
}

func millisOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return db.Millis(t)
}

func firstNonZero(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// lockOrder reads an order's state, locking its row on PostgreSQL. rowID is 0
// when there is no such order.
func (s *Service) lockOrder(ctx context.Context, tx *sql.Tx, tenantID int64, src Source, orderID string) (rowID int64, st orderState, err error) {
	var status string
	var storeID, paidAt sql.NullInt64
	err = tx.QueryRowContext(ctx,
		`SELECT id, customer_id, status, currency, total_fen, discount_fen, paid_fen, refunded_fen, store_id, store_code, coupon_code, ordered_at, paid_at
		 FROM orders WHERE tenant_id = $1 AND source = $2 AND order_id = $3`+s.forUpdate(), tenantID, string(src), orderID).
		Scan(&rowID, &st.customerID, &status, &st.currency, &st.total, &st.discount, &st.paid, &st.refunded, &storeID,
			&st.storeCode, &st.coupon, &st.orderedAt, &paidAt)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, orderState{}, nil
	}
	if err != nil {
		return 0, orderState{}, fmt.Errorf("commerce: unable to fetch order %s/%s: %w", src, orderID, err)
	}
	st.status, st.storeID, st.paidAt = Status(status), storeID.Int64, paidAt.Int64
	return rowID, st, nil
}

// insertOrder inserts a new order row; rowID is 0 when another transaction
// inserted the same order first.
func (s *Service) insertOrder(ctx context.Context, tx *sql.Tx, tenantID int64, d orderDraft, st orderState, now time.Time) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx,
		`INSERT INTO orders (tenant_id, source, order_id, customer_id, status, currency, total_fen, discount_fen, paid_fen, refunded_fen,
		   store_id, store_code, coupon_code, ordered_at, paid_at, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $12, $13, $14, $15, $15)
		 ON CONFLICT (tenant_id, source, order_id) DO NOTHING RETURNING id`,
		tenantID, string(d.in.Source), d.in.OrderID, st.customerID, string(st.status), st.currency, st.total, st.discount, st.paid,
		nullID(st.storeID), st.storeCode, st.coupon, st.orderedAt, nullMillis(db.FromMillis(st.paidAt)), db.Millis(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("commerce: unable to insert order %s/%s: %w", d.in.Source, d.in.OrderID, err)
	}
	return id, nil
}

func (s *Service) updateOrder(ctx context.Context, tx *sql.Tx, tenantID, rowID int64, d orderDraft, st orderState, now time.Time) error {
	_, err := tx.ExecContext(ctx,
		`UPDATE orders SET customer_id = $3, status = $4, currency = $5, total_fen = $6, discount_fen = $7, paid_fen = $8,
		   store_id = $9, store_code = $10, coupon_code = $11, ordered_at = $12, paid_at = $13, updated_at = $14
		 WHERE tenant_id = $1 AND id = $2`,
		tenantID, rowID, st.customerID, string(st.status), st.currency, st.total, st.discount, st.paid,
		nullID(st.storeID), st.storeCode, st.coupon, st.orderedAt, nullMillis(db.FromMillis(st.paidAt)), db.Millis(now))
	if err != nil {
		return fmt.Errorf("commerce: unable to update order %s/%s: %w", d.in.Source, d.in.OrderID, err)
	}
	return nil
}

// replaceItems swaps an order's items for items, in batches of multi-row
// INSERTs.
func (s *Service) replaceItems(ctx context.Context, tx *sql.Tx, tenantID, rowID int64, items []Item) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM order_items WHERE tenant_id = $1 AND order_row_id = $2`, tenantID, rowID); err != nil {
		return fmt.Errorf("commerce: unable to clear items of order %d: %w", rowID, err)
	}
	const perRow, batch = 9, 100
	for start := 0; start < len(items); start += batch {
		chunk := items[start:min(start+batch, len(items))]
		values := make([]string, 0, len(chunk))
		args := make([]any, 0, len(chunk)*perRow)
		for i, it := range chunk {
			values = append(values, "("+placeholders(i*perRow+1, perRow)+")")
			args = append(args, tenantID, rowID, it.Line, it.SKU, it.Name, it.Category, it.Quantity, it.UnitPriceFen, it.AmountFen)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO order_items (tenant_id, order_row_id, line_no, sku, name, category, quantity, unit_price_fen, amount_fen) VALUES `+
				strings.Join(values, ", "), args...); err != nil {
			return fmt.Errorf("commerce: unable to insert items of order %d: %w", rowID, err)
		}
	}
	return nil
}

const orderCols = `id, source, order_id, customer_id, status, currency, total_fen, discount_fen, paid_fen, refunded_fen,
	store_id, store_code, coupon_code, ordered_at, paid_at, created_at, updated_at`

func scanOrder(row interface{ Scan(...any) error }) (Order, error) {
	var o Order
	var src, status string
	var storeID, paidAt sql.NullInt64
	var ordered, created, updated int64
	err := row.Scan(&o.ID, &src, &o.OrderID, &o.CustomerID, &status, &o.Currency, &o.TotalFen, &o.DiscountFen, &o.PaidFen, &o.RefundedFen,
		&storeID, &o.StoreCode, &o.CouponCode, &ordered, &paidAt, &created, &updated)
	o.Source, o.Status, o.StoreID = Source(src), Status(status), storeID.Int64
	o.OrderedAt, o.PaidAt, o.CreatedAt, o.UpdatedAt = db.FromMillis(ordered), db.NullMillis(paidAt), db.FromMillis(created), db.FromMillis(updated)
	o.Items, o.Refunds = []Item{}, []Refund{}
	return o, err
}

// Order returns one order with its items and refunds.
func (s *Service) Order(ctx context.Context, tenantID int64, src Source, orderID string) (Order, error) {
	o, err := scanOrder(s.db.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE tenant_id = $1 AND source = $2 AND order_id = $3`,
		tenantID, string(src), orderID))
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, errs.NotFoundf("order", "no %s order has id %q", src, orderID)
	}
	if err != nil {
		return Order{}, fmt.Errorf("commerce: unable to fetch order %s/%s: %w", src, orderID, err)
	}
	orders := []Order{o}
	if err := s.fill(ctx, s.db, tenantID, orders); err != nil {
		return Order{}, err
	}
	return orders[0], nil
}

// OrderQuery filters an order list.
type OrderQuery struct {
	CustomerID int64  // 0: every customer
	Source     Source // "": every source
	Status     Status // "": every status
}

// Orders lists a customer's orders, newest first (by ordered_at), for the
// customer's page and timeline. An unknown customer is NotFound.
func (s *Service) Orders(ctx context.Context, tenantID, customerID int64, r page.Request) (page.Page[Order], error) {
	if _, err := s.customers.Get(ctx, tenantID, customerID, false); err != nil {
		return page.Page[Order]{}, err
	}
	return s.ListOrders(ctx, tenantID, OrderQuery{CustomerID: customerID}, r)
}

// ListOrders lists orders matching q, newest first (by ordered_at), with
// their items and refunds.
func (s *Service) ListOrders(ctx context.Context, tenantID int64, q OrderQuery, r page.Request) (page.Page[Order], error) {
	where := []string{"tenant_id = $1"}
	args := []any{tenantID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if r.Cursor != "" {
		var at, id int64
		if err := page.Decode(r.Cursor, &at, &id); err != nil {
			return page.Page[Order]{}, err
		}
		a, i := arg(at), arg(id)
		where = append(where, "(ordered_at < "+a+" OR (ordered_at = "+a+" AND id < "+i+"))")
	}
	if q.CustomerID != 0 {
		where = append(where, "customer_id = "+arg(q.CustomerID))
	}
	if q.Source != "" {
		if err := validSource("source", q.Source); err != nil {
			return page.Page[Order]{}, err
		}
		where = append(where, "source = "+arg(string(q.Source)))
	}
	if q.Status != "" {
		if !slices.Contains(Statuses(), q.Status) {
			return page.Page[Order]{}, errs.Field("status", "invalid_status", "unknown order status %q", q.Status)
		}
		where = append(where, "status = "+arg(string(q.Status)))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+orderCols+` FROM orders WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY ordered_at DESC, id DESC LIMIT %d`, r.Size()+1), args...)
	if err != nil {
		return page.Page[Order]{}, fmt.Errorf("commerce: unable to list orders: %w", err)
	}
	defer rows.Close()
	var out []Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return page.Page[Order]{}, fmt.Errorf("commerce: unable to read order: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Order]{}, fmt.Errorf("commerce: unable to list orders: %w", err)
	}
	rows.Close()
	pg := page.Trim(out, r, func(o Order) string { return page.Encode(db.Millis(o.OrderedAt), o.ID) })
	if err := s.fill(ctx, s.db, tenantID, pg.Items); err != nil {
		return page.Page[Order]{}, err
	}
	return pg, nil
}

// fill loads the items and refunds of orders.
func (s *Service) fill(ctx context.Context, q db.Querier, tenantID int64, orders []Order) error {
	if len(orders) == 0 {
		return nil
	}
	ids := make([]int64, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	items, err := s.items(ctx, q, tenantID, ids)
	if err != nil {
		return err
	}
	refunds, err := s.refunds(ctx, q, tenantID, ids)
	if err != nil {
		return err
	}
	for i := range orders {
		if it := items[orders[i].ID]; it != nil {
			orders[i].Items = it
		}
		if rf := refunds[orders[i].ID]; rf != nil {
			orders[i].Refunds = rf
		}
	}
	return nil
}

func idArgs(tenantID int64, ids []int64) []any {
	args := make([]any, 0, len(ids)+1)
	args = append(args, tenantID)
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}

// items returns the items of the given orders by order row id, in line order.
func (s *Service) items(ctx context.Context, q db.Querier, tenantID int64, ids []int64) (map[int64][]Item, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT order_row_id, line_no, sku, name, category, quantity, unit_price_fen, amount_fen FROM order_items
		 WHERE tenant_id = $1 AND order_row_id IN (`+placeholders(2, len(ids))+`) ORDER BY order_row_id, line_no`, idArgs(tenantID, ids)...)
	if err != nil {
		return nil, fmt.Errorf("commerce: unable to list order items: %w", err)
	}
	defer rows.Close()
	out := map[int64][]Item{}
	for rows.Next() {
		var id int64
		var it Item
		if err := rows.Scan(&id, &it.Line, &it.SKU, &it.Name, &it.Category, &it.Quantity, &it.UnitPriceFen, &it.AmountFen); err != nil {
			return nil, fmt.Errorf("commerce: unable to read order item: %w", err)
		}
		out[id] = append(out[id], it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("commerce: unable to list order items: %w", err)
	}
	return out, nil
}
