// Package customer owns customer profiles (One ID): one row per real person
// across every channel, with the identities that point at it. Phone numbers
// are stored encrypted, found through a keyed blind index, and shown masked.
package customer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
)

// Identity kinds. A customer may hold several identities; each value belongs to
// at most one customer in a workspace.
const (
	KindUserID      = "user_id"
	KindAnonymousID = "anonymous_id"
	KindPhone       = "phone" // value is the blind index of the E.164 number
	KindEmail       = "email"
	KindWeComExtID  = "wecom_external_userid"
	KindUnionID     = "wechat_unionid"
	KindMPOpenID    = "mp_openid"
	KindMiniOpenID  = "miniapp_openid"
	KindDouyinOpen  = "douyin_openid"
	KindShopBuyerID = "shop_buyer_id"
)

// Customer is one profile.
type Customer struct {
	ID              int64     `json:"id"`
	Name            string    `json:"name"`
	Gender          string    `json:"gender" enum:"male,female,"`
	Birthday        string    `json:"birthday,omitempty"`
	Province        string    `json:"province,omitempty"`
	City            string    `json:"city,omitempty"`
	Phone           string    `json:"phone,omitempty" doc:"E.164 when the caller may see personal data, otherwise masked (138****5678)."`
	Email           string    `json:"email,omitempty"`
	Avatar          string    `json:"avatar,omitempty"`
	FirstSource     string    `json:"first_source,omitempty" doc:"The channel that first brought the customer."`
	FirstSourceCode string    `json:"first_source_code,omitempty" doc:"The channel code (渠道活码) that first brought the customer."`
	FirstSeenAt     time.Time `json:"first_seen_at"`
	LastSeenAt      time.Time `json:"last_seen_at"`
	CreatedAt       time.Time `json:"created_at"`
	// Traits are custom attributes sent by SDKs, imports and connectors.
	Traits map[string]any `json:"traits,omitempty"`

	traitsDoc   string
	phoneEnc    string
	phoneMasked string
}

// Identity links an identifier to a customer.
type Identity struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// NewCustomer is the input to Create.
type NewCustomer struct {
	Name            string
	Gender          string
	Birthday        string
	Province        string
	City            string
	Phone           string // any common format; normalised to E.164
	Email           string
	FirstSource     string
	FirstSourceCode string
	FirstSeenAt     time.Time // zero: now
	LastSeenAt      time.Time // zero: FirstSeenAt
	Identities      []Identity
}

// Service is the customer domain service.
type Service struct {
	db         *db.DB
	keys       *pii.Keyring
	log        *slog.Logger
	now        func() time.Time
	rules      rulesCache
	mergeHooks []namedHook
	timeline   []TimelineSource
	attrs      attrCatalog
}

// NewService returns a customer service on d, protecting PII with keys.
func NewService(d *db.DB, keys *pii.Keyring, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{db: d, keys: keys, log: log, now: time.Now, rules: rulesCache{m: map[int64]cachedRules{}},
		attrs: attrCatalog{byTen: map[int64]map[string]Attribute{}, loaded: map[int64]time.Time{}}}
}

// CreateMany inserts customers in one transaction (imports, the demo). An
// identity value already held by another customer is a Conflict, and nothing
// is written.
func (s *Service) CreateMany(ctx context.Context, tenantID int64, in []NewCustomer) ([]int64, error) {
	ids := make([]int64, 0, len(in))
	now := s.now().UTC()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for i, c := range in {
			id, err := s.insert(ctx, tx, tenantID, c, now)
			if err != nil {
				return fmt.Errorf("customer %d: %w", i, err)
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// Create inserts one customer.
func (s *Service) Create(ctx context.Context, tenantID int64, c NewCustomer) (Customer, error) {
	ids, err := s.CreateMany(ctx, tenantID, []NewCustomer{c})
	if err != nil {
		return Customer{}, err
	}
	return s.Get(ctx, tenantID, ids[0], true)
}

func (s *Service) insert(ctx context.Context, q db.Querier, tenantID int64, c NewCustomer, now time.Time) (int64, error) {
	switch c.Gender {
	case "", "male", "female":
	default:
		return 0, errs.Field("gender", "invalid_gender", "gender must be male, female or empty")
	}
	var phone, phoneEnc, phoneMasked string
	if c.Phone != "" {
		var err error
		if phone, err = NormalizePhone(c.Phone); err != nil {
			return 0, err
		}
		if phoneEnc, err = s.keys.Encrypt(phone); err != nil {
			return 0, err
		}
		phoneMasked = pii.MaskPhone(phone)
		c.Identities = append(c.Identities, Identity{Kind: KindPhone, Value: s.keys.Index(KindPhone, phone)})
	}
	if c.FirstSeenAt.IsZero() {
		c.FirstSeenAt = now
	}
	if c.LastSeenAt.IsZero() {
		c.LastSeenAt = c.FirstSeenAt
	}
	var id int64
	err := q.QueryRowContext(ctx,
		`INSERT INTO customers (tenant_id, name, gender, birthday, province, city, phone_enc, phone_masked, email,
		   first_source, first_source_code, first_seen_at, last_seen_at, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING id`,
		tenantID, strings.TrimSpace(c.Name), c.Gender, c.Birthday, c.Province, c.City, phoneEnc, phoneMasked, c.Email,
		c.FirstSource, c.FirstSourceCode, db.Millis(c.FirstSeenAt), db.Millis(c.LastSeenAt), db.Millis(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("customer: unable to insert: %w", err)
	}
	for _, idn := range c.Identities {
		_, err := q.ExecContext(ctx,
			`INSERT INTO customer_identities (tenant_id, kind, value, customer_id, created_at) VALUES ($1, $2, $3, $4, $5)`,
			tenantID, idn.Kind, idn.Value, id, db.Millis(now))
		if db.IsUniqueViolation(err) {
			return 0, errs.E(errs.Conflict, "identity_taken", "the %s identifier already belongs to another customer", idn.Kind)
		}
		if err != nil {
			return 0, fmt.Errorf("customer: unable to insert identity: %w", err)
		}
	}
	return id, nil
}

const customerCols = `id, name, gender, birthday, province, city, phone_enc, phone_masked, email, avatar,
	first_source, first_source_code, first_seen_at, last_seen_at, created_at, traits`

func scanCustomer(row interface{ Scan(...any) error }) (Customer, error) {
	var c Customer
	var first, last, created int64
	err := row.Scan(&c.ID, &c.Name, &c.Gender, &c.Birthday, &c.Province, &c.City, &c.phoneEnc, &c.phoneMasked, &c.Email, &c.Avatar,
		&c.FirstSource, &c.FirstSourceCode, &first, &last, &created, &c.traitsDoc)
	if c.traitsDoc != "" && c.traitsDoc != "{}" {
		_ = json.Unmarshal([]byte(c.traitsDoc), &c.Traits) // written by us as JSON
	}
	c.FirstSeenAt, c.LastSeenAt, c.CreatedAt = db.FromMillis(first), db.FromMillis(last), db.FromMillis(created)
	return c, err
}

// reveal fills Phone: in clear when the caller may see PII, masked otherwise.
func (s *Service) reveal(c *Customer, pii bool) error {
	if !pii || c.phoneEnc == "" {
		c.Phone = c.phoneMasked
		return nil
	}
	p, err := s.keys.Decrypt(c.phoneEnc)
	if err != nil {
		return fmt.Errorf("customer %d: %w", c.ID, err)
	}
	c.Phone = p
	return nil
}

// Get returns one customer; showPII decides whether the phone is unmasked.
// The id of a profile that was merged leads to the profile it was merged into,
// so ids kept by other systems keep working.
func (s *Service) Get(ctx context.Context, tenantID, id int64, showPII bool) (Customer, error) {
	c, err := scanCustomer(s.db.QueryRowContext(ctx,
		`SELECT `+customerCols+` FROM customers WHERE tenant_id = $1 AND id = (
		   SELECT coalesce(merged_into, id) FROM customers WHERE tenant_id = $1 AND id = $2)`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Customer{}, errs.NotFoundf("customer", "no such customer")
	}
	if err != nil {
		return Customer{}, fmt.Errorf("customer: unable to fetch: %w", err)
	}
	return c, s.reveal(&c, showPII)
}

// Identities lists a customer's identities. Phone identities are blind
// indexes and are left out: the phone is on the profile.
func (s *Service) Identities(ctx context.Context, tenantID, id int64) ([]Identity, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT kind, value FROM customer_identities WHERE tenant_id = $1 AND customer_id = $2 AND kind <> $3`,
		tenantID, id, KindPhone)
	if err != nil {
		return nil, fmt.Errorf("customer: unable to list identities: %w", err)
	}
	defer rows.Close()
	out := []Identity{}
	for rows.Next() {
		var idn Identity
		if err := rows.Scan(&idn.Kind, &idn.Value); err != nil {
			return nil, fmt.Errorf("customer: unable to read identity: %w", err)
		}
		out = append(out, idn)
	}
	// Sorted here: ORDER BY in SQL tempts SQLite into scanning the primary
	// key (tenant, kind, value) of the whole workspace.
	slices.SortFunc(out, func(a, b Identity) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out, rows.Err()
}

// Query filters a customer list.
type Query struct {
	// Search matches a name prefix, or a whole phone number (any format).
	Search string
	// Identifier is KIND:VALUE, e.g. wecom_external_userid:wmABC.
	Identifier string
	ShowPII    bool
}

// List returns customers matching q, newest first.
func (s *Service) List(ctx context.Context, tenantID int64, q Query, r page.Request) (page.Page[Customer], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[Customer]{}, err
	}
	where := []string{"c.tenant_id = $1", "c.merged_into IS NULL"}
	args := []any{tenantID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if ok {
		where = append(where, "c.id < "+arg(after))
	}
	if q.Identifier != "" {
		kind, value, found := strings.Cut(q.Identifier, ":")
		if !found || kind == "" || value == "" {
			return page.Page[Customer]{}, errs.Field("identifier", "invalid_identifier", "identifier must be KIND:VALUE, e.g. user_id:u123")
		}
		if kind == KindPhone {
			p, err := NormalizePhone(value)
			if err != nil {
				return page.Page[Customer]{}, err
			}
			value = s.keys.Index(KindPhone, p)
		}
		where = append(where, "c.id IN (SELECT customer_id FROM customer_identities WHERE tenant_id = $1 AND kind = "+arg(kind)+" AND value = "+arg(value)+")")
	}
	if term := strings.TrimSpace(q.Search); term != "" {
		if p, err := NormalizePhone(term); err == nil {
			where = append(where, "c.id IN (SELECT customer_id FROM customer_identities WHERE tenant_id = $1 AND kind = 'phone' AND value = "+arg(s.keys.Index(KindPhone, p))+")")
		} else {
			where = append(where, "c.name LIKE "+arg(db.LikeEscape(term)+"%")+` ESCAPE '\'`)
		}
	}
	sqlq := `SELECT ` + strings.ReplaceAll(customerCols, "\n\t", " ") + ` FROM customers c WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(` ORDER BY c.id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, sqlq, args...)
	if err != nil {
		return page.Page[Customer]{}, fmt.Errorf("customer: unable to list: %w", err)
	}
	defer rows.Close()
	var out []Customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return page.Page[Customer]{}, fmt.Errorf("customer: unable to read: %w", err)
		}
		if err := s.reveal(&c, q.ShowPII); err != nil {
			return page.Page[Customer]{}, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Customer]{}, fmt.Errorf("customer: unable to list: %w", err)
	}
	return page.Trim(out, r, func(c Customer) string { return page.ByID(c.ID) }), nil
}

// Count returns how many customers the workspace has.
func (s *Service) Count(ctx context.Context, tenantID int64) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM customers WHERE tenant_id = $1 AND merged_into IS NULL`, tenantID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("customer: unable to count: %w", err)
	}
	return n, nil
}
