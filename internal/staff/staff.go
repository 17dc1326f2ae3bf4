// Package staff owns a brand's stores (门店) and staff (员工: 导购, 客服): who
// serves customers, and later customer ownership, the task inbox and handover
// when staff leave (离职继承).
package staff

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
)

// Store is one of the brand's shops.
type Store struct {
	ID        int64     `json:"id"`
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	Province  string    `json:"province"`
	City      string    `json:"city"`
	Address   string    `json:"address"`
	CreatedAt time.Time `json:"created_at"`
}

// Status of a staff member.
type Status string

// Staff statuses.
const (
	Active   Status = "active"
	Resigned Status = "resigned" // 已离职: their customers await inheritance
)

// Member is one staff member.
type Member struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Title       string    `json:"title"`
	StoreID     int64     `json:"store_id,omitempty"`
	WeComUserID string    `json:"wecom_userid,omitempty"`
	Status      Status    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
	ResignedAt  time.Time `json:"resigned_at,omitzero"`
}

// Service is the staff domain service.
type Service struct {
	db  *db.DB
	now func() time.Time
}

// NewService returns a staff service on d.
func NewService(d *db.DB) *Service { return &Service{db: d, now: time.Now} }

// CreateStore adds a store; its code is unique in the workspace.
func (s *Service) CreateStore(ctx context.Context, tenantID int64, st Store) (Store, error) {
	st.Code, st.Name = strings.TrimSpace(st.Code), strings.TrimSpace(st.Name)
	if st.Code == "" || len(st.Code) > 64 {
		return Store{}, errs.Field("code", "invalid_code", "the store code must be 1–64 characters")
	}
	if st.Name == "" {
		return Store{}, errs.Field("name", "required", "the store name is required")
	}
	st.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	err := s.db.QueryRowContext(ctx,
		`INSERT INTO stores (tenant_id, code, name, province, city, address, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		tenantID, st.Code, st.Name, st.Province, st.City, st.Address, db.Millis(st.CreatedAt)).Scan(&st.ID)
	if db.IsUniqueViolation(err) {
		return Store{}, errs.E(errs.Conflict, "store_code_taken", "a store with code %q already exists", st.Code)
	}
	if err != nil {
		return Store{}, fmt.Errorf("staff: unable to create store: %w", err)
	}
	return st, nil
}

// Stores lists the workspace's stores, newest first.
func (s *Service) Stores(ctx context.Context, tenantID int64, r page.Request) (page.Page[Store], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[Store]{}, err
	}
	q := `SELECT id, code, name, province, city, address, created_at FROM stores WHERE tenant_id = $1`
	args := []any{tenantID}
	if ok {
		q += ` AND id < $2`
		args = append(args, after)
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[Store]{}, fmt.Errorf("staff: unable to list stores: %w", err)
	}
	defer rows.Close()
	var out []Store
	for rows.Next() {
		var st Store
		var created int64
		if err := rows.Scan(&st.ID, &st.Code, &st.Name, &st.Province, &st.City, &st.Address, &created); err != nil {
			return page.Page[Store]{}, fmt.Errorf("staff: unable to read store: %w", err)
		}
		st.CreatedAt = db.FromMillis(created)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Store]{}, fmt.Errorf("staff: unable to list stores: %w", err)
	}
	return page.Trim(out, r, func(st Store) string { return page.ByID(st.ID) }), nil
}

// CreateMember adds a staff member.
func (s *Service) CreateMember(ctx context.Context, tenantID int64, m Member) (Member, error) {
	m.Name = strings.TrimSpace(m.Name)
	if m.Name == "" || len([]rune(m.Name)) > 64 {
		return Member{}, errs.Field("name", "invalid_name", "the staff name must be 1–64 characters")
	}
	if m.Status == "" {
		m.Status = Active
	}
	m.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	var store, wecom any
	if m.StoreID != 0 {
		store = m.StoreID
	}
	if m.WeComUserID != "" {
		wecom = m.WeComUserID
	}
	err := s.db.QueryRowContext(ctx,
		`INSERT INTO staff (tenant_id, name, title, store_id, wecom_userid, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		tenantID, m.Name, m.Title, store, wecom, string(m.Status), db.Millis(m.CreatedAt)).Scan(&m.ID)
	if db.IsUniqueViolation(err) {
		return Member{}, errs.E(errs.Conflict, "wecom_userid_taken", "a staff member with WeCom user ID %q already exists", m.WeComUserID)
	}
	if err != nil {
		return Member{}, fmt.Errorf("staff: unable to create staff member: %w", err)
	}
	return m, nil
}

const memberCols = `id, name, title, store_id, wecom_userid, status, created_at, resigned_at`

func scanMember(row interface{ Scan(...any) error }) (Member, error) {
	var m Member
	var store, resigned sql.NullInt64
	var wecom sql.NullString
	var status string
	var created int64
	err := row.Scan(&m.ID, &m.Name, &m.Title, &store, &wecom, &status, &created, &resigned)
	m.StoreID, m.WeComUserID, m.Status = store.Int64, wecom.String, Status(status)
	m.CreatedAt, m.ResignedAt = db.FromMillis(created), db.NullMillis(resigned)
	return m, err
}

// Member returns one staff member.
func (s *Service) Member(ctx context.Context, tenantID, id int64) (Member, error) {
	m, err := scanMember(s.db.QueryRowContext(ctx, `SELECT `+memberCols+` FROM staff WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Member{}, errs.NotFoundf("staff", "no such staff member")
	}
	if err != nil {
		return Member{}, fmt.Errorf("staff: unable to fetch staff member: %w", err)
	}
	return m, nil
}

// Members lists staff, newest first.
func (s *Service) Members(ctx context.Context, tenantID int64, r page.Request) (page.Page[Member], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[Member]{}, err
	}
	q := `SELECT ` + memberCols + ` FROM staff WHERE tenant_id = $1`
	args := []any{tenantID}
	if ok {
		q += ` AND id < $2`
		args = append(args, after)
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[Member]{}, fmt.Errorf("staff: unable to list staff: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return page.Page[Member]{}, fmt.Errorf("staff: unable to read staff member: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Member]{}, fmt.Errorf("staff: unable to list staff: %w", err)
	}
	return page.Trim(out, r, func(m Member) string { return page.ByID(m.ID) }), nil
}
