// Package commerce owns the brand's products, the orders its customers place
// on every channel (mini program, Tmall, JD, Douyin shop, offline stores),
// their refunds, and each customer's spend.
//
// Money is integer fen (分, 1/100 yuan) everywhere; there are no floats, and
// only CNY is accepted for now. Every order write checks one rule:
//
//	item amount_fen = quantity × unit_price_fen
//	total_fen       = Σ item amount_fen
//	paid_fen        = total_fen − discount_fen   (0 ≤ discount_fen ≤ total_fen)
//	refunded_fen    = Σ refund amount_fen        (≤ paid_fen)
//
// An order is upserted by (source, order_id): re-sending it unchanged writes
// nothing, re-sending it with a new status or new items updates it. Its
// status follows its refunds: a paid order becomes partially_refunded, then
// refunded. The customer's spend aggregate (customer_spend) is rewritten in
// the same transaction as every order or refund write, so it is always
// consistent with the orders.
package commerce

import (
	"context"
	"database/sql"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/staff"
)

// Source is the channel an order came from.
type Source string

// Order sources.
const (
	SourceMiniApp      Source = "miniapp"       // the brand's WeChat mini program
	SourceTmall        Source = "tmall"         // 天猫
	SourceJD           Source = "jd"            // 京东
	SourceDouyinShop   Source = "douyin_shop"   // 抖音小店
	SourceOfflineStore Source = "offline_store" // a physical store (POS)
	SourceOther        Source = "other"
)

// Sources lists every order source.
func Sources() []Source {
	return []Source{SourceMiniApp, SourceTmall, SourceJD, SourceDouyinShop, SourceOfflineStore, SourceOther}
}

// Status is where an order stands.
type Status string

// Order statuses. Pending, Paid and Cancelled are set by the source system;
// PartiallyRefunded and Refunded follow from the refunds of a paid order.
const (
	Pending           Status = "pending"
	Paid              Status = "paid"
	PartiallyRefunded Status = "partially_refunded"
	Refunded          Status = "refunded"
	Cancelled         Status = "cancelled" // closed before payment
)

// Statuses lists every order status.
func Statuses() []Status {
	return []Status{Pending, Paid, PartiallyRefunded, Refunded, Cancelled}
}

// WasPaid reports whether an order in this status counts as spend: it was
// paid, whatever was refunded since.
func (s Status) WasPaid() bool { return s == Paid || s == PartiallyRefunded || s == Refunded }

// base is the status the source system controls: refund states are Paid.
func (s Status) base() Status {
	if s.WasPaid() {
		return Paid
	}
	return s
}

// CNY is the one currency accepted for now.
const CNY = "CNY"

// Limits that keep every sum far from int64 overflow: summing 500 items of
// 10^6 units × 10^10 fen stays below 9.2 × 10^18 in Go, and a customer's spend
// (a sum of order totals of at most 10^12 fen) in SQL.
const (
	MaxItems        = 500
	MaxQuantity     = 1_000_000
	MaxUnitPriceFen = 10_000_000_000    // ¥100,000,000 per unit
	MaxOrderFen     = 1_000_000_000_000 // ¥10,000,000,000 per order
)

// earliest is the oldest time an order or refund may carry; anything older is
// a unit mistake (seconds for milliseconds) or a zero date from a source.
var earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Customers is what commerce needs from One ID: resolve a buyer's
// identifiers to a profile inside the order's transaction, and check an
// explicit customer id. *customer.Service implements it.
type Customers interface {
	Resolve(ctx context.Context, tx *sql.Tx, tenantID int64, obs customer.Observation) (int64, error)
	Get(ctx context.Context, tenantID, id int64, showPII bool) (customer.Customer, error)
}

// Stores finds a store by the brand's store code. *staff.Service implements it.
type Stores interface {
	StoreByCode(ctx context.Context, tenantID int64, code string) (staff.Store, error)
}

var (
	_ Customers = (*customer.Service)(nil)
	_ Stores    = (*staff.Service)(nil)
)

// Service is the commerce domain service.
type Service struct {
	db        *db.DB
	customers Customers
	stores    Stores
	log       *slog.Logger
	now       func() time.Time
	obs       observers // told about paid and refunded orders after commit (observe.go)
}

// NewService returns a commerce service on d that links orders to customers
// through customers and names stores through stores.
func NewService(d *db.DB, customers Customers, stores Stores, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{db: d, customers: customers, stores: stores, log: log, now: time.Now}
}

// forUpdate locks the selected rows until the transaction ends on PostgreSQL;
// SQLite transactions here take the write lock up front (BEGIN IMMEDIATE).
func (s *Service) forUpdate() string {
	if s.db.Dialect == db.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// text trims v and checks it is at most maxRunes long (and present when
// required), with no control characters.
func text(loc, v string, maxRunes int, required bool) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" && required {
		return "", errs.Field(loc, "required", "%s is required", loc)
	}
	if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
		return "", errs.Field(loc, "invalid_text", "%s contains control characters or invalid UTF-8", loc)
	}
	if utf8.RuneCountInString(v) > maxRunes {
		return "", errs.Field(loc, "too_long", "%s must be at most %d characters", loc, maxRunes)
	}
	return v, nil
}

// key checks an identifier from another system (SKU, order id, refund id):
// 1–128 characters, no spaces or control characters.
func key(loc, code, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || utf8.RuneCountInString(v) > 128 || !utf8.ValidString(v) ||
		strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "", errs.Field(loc, code, "%s must be 1–128 characters without spaces", loc)
	}
	return v, nil
}

func currency(loc, c string) (string, error) {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "" {
		return CNY, nil
	}
	if c != CNY {
		return "", errs.Field(loc, "unsupported_currency", "currency %q is not supported: amounts must be CNY, in fen", c)
	}
	return c, nil
}

func amount(loc string, v, limit int64) error {
	if v < 0 {
		return errs.Field(loc, "invalid_amount", "%s must not be negative (amounts are integer fen)", loc)
	}
	if v > limit {
		return errs.Field(loc, "invalid_amount", "%s is over the limit of %d fen", loc, limit)
	}
	return nil
}

// instant checks a time a source system sent; zero passes (the caller decides
// its default).
func (s *Service) instant(loc string, t time.Time) (time.Time, error) {
	if t.IsZero() {
		return t, nil
	}
	if t.Before(earliest) || t.After(s.now().Add(24*time.Hour)) {
		return time.Time{}, errs.Field(loc, "invalid_time", "%s must be between 2000-01-01 and now", loc)
	}
	return t.UTC().Truncate(time.Millisecond), nil
}

func validSource(loc string, src Source) error {
	if !slices.Contains(Sources(), src) {
		all := make([]string, 0, len(Sources()))
		for _, s := range Sources() {
			all = append(all, string(s))
		}
		return errs.Field(loc, "unsupported_source", "unknown order source %q (known: %s)", src, strings.Join(all, ", "))
	}
	return nil
}

func nullMillis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return db.Millis(t)
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// placeholders returns "$from, $from+1, …" for n arguments.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$")
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}
