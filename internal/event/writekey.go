package event

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// WriteKeyPrefix starts every write key.
const WriteKeyPrefix = "wk_"

// writeKeyCacheTTL bounds how long a node keeps accepting a key revoked on
// another node (a revoke on this node takes effect at once).
const writeKeyCacheTTL = 15 * time.Second

// WriteKey identifies a workspace to the ingest endpoints. It is embedded in
// client apps (web pages, mini programs), so it is not a secret: it is stored
// and shown in clear, and it grants nothing but sending events.
type WriteKey struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Key       string    `json:"key" doc:"The write key: the username of HTTP Basic auth (empty password), or writeKey in the body."`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// ErrBadWriteKey is returned for an unknown or revoked write key.
var ErrBadWriteKey = errs.E(errs.Unauthenticated, "invalid_write_key",
	"unknown or revoked write key; send it as the username of HTTP Basic auth with an empty password, or as writeKey in the body")

var errNoWriteKey = errs.E(errs.Unauthenticated, "missing_write_key",
	"no write key: send it as the username of HTTP Basic auth with an empty password, or as writeKey in the body")

// CreateWriteKey creates a write key for p's workspace.
func (s *Service) CreateWriteKey(ctx context.Context, p tenant.Principal, name string) (WriteKey, error) {
	if err := p.Require(tenant.PermAPIKeysManage); err != nil {
		return WriteKey{}, err
	}
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 100 {
		return WriteKey{}, errs.Field("name", "invalid_name", "the write key name must be 1–100 characters")
	}
	k := WriteKey{Name: name, Key: WriteKeyPrefix + rand.Text(), CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx,
			`INSERT INTO write_keys (tenant_id, key, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
			p.TenantID, k.Key, k.Name, db.Millis(k.CreatedAt)).Scan(&k.ID); err != nil {
			return fmt.Errorf("event: unable to create write key: %w", err)
		}
		return s.auditf(ctx, tx, p, "writekey.create", k.ID, "%s (%s)", k.Name, k.Key)
	})
	if err != nil {
		return WriteKey{}, err
	}
	return k, nil
}

func (s *Service) auditf(ctx context.Context, tx *sql.Tx, p tenant.Principal, action string, id int64, format string, args ...any) error {
	if s.audit == nil {
		return nil
	}
	return s.audit.Audit(ctx, tx, p, action, "write_key", fmt.Sprint(id), fmt.Sprintf(format, args...))
}

const writeKeyCols = `id, name, key, created_at, revoked_at`

func scanWriteKey(row interface{ Scan(...any) error }) (WriteKey, error) {
	var k WriteKey
	var created int64
	var revoked sql.NullInt64
	err := row.Scan(&k.ID, &k.Name, &k.Key, &created, &revoked)
	k.CreatedAt, k.RevokedAt = db.FromMillis(created), db.NullMillis(revoked)
	return k, err
}

// WriteKeys lists the workspace's write keys, newest first.
func (s *Service) WriteKeys(ctx context.Context, tenantID int64, r page.Request) (page.Page[WriteKey], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[WriteKey]{}, err
	}
	q := `SELECT ` + writeKeyCols + ` FROM write_keys WHERE tenant_id = $1`
	args := []any{tenantID}
	if ok {
		q += ` AND id < $2`
		args = append(args, after)
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[WriteKey]{}, fmt.Errorf("event: unable to list write keys: %w", err)
	}
	defer rows.Close()
	var out []WriteKey
	for rows.Next() {
		k, err := scanWriteKey(rows)
		if err != nil {
			return page.Page[WriteKey]{}, fmt.Errorf("event: unable to read write key: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return page.Page[WriteKey]{}, fmt.Errorf("event: unable to list write keys: %w", err)
	}
	return page.Trim(out, r, func(k WriteKey) string { return page.ByID(k.ID) }), nil
}

// WriteKey returns one write key of the workspace.
func (s *Service) WriteKey(ctx context.Context, tenantID, id int64) (WriteKey, error) {
	k, err := scanWriteKey(s.db.QueryRowContext(ctx, `SELECT `+writeKeyCols+` FROM write_keys WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return WriteKey{}, errs.NotFoundf("write_key", "no such write key")
	}
	if err != nil {
		return WriteKey{}, fmt.Errorf("event: unable to fetch write key: %w", err)
	}
	return k, nil
}

// RevokeWriteKey stops a write key from being accepted; revoking twice is not
// an error. Other nodes stop accepting it within writeKeyCacheTTL.
func (s *Service) RevokeWriteKey(ctx context.Context, p tenant.Principal, id int64) (WriteKey, error) {
	if err := p.Require(tenant.PermAPIKeysManage); err != nil {
		return WriteKey{}, err
	}
	k, err := s.WriteKey(ctx, p.TenantID, id)
	if err != nil || !k.RevokedAt.IsZero() {
		return k, err
	}
	k.RevokedAt = s.now().UTC().Truncate(time.Millisecond)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE write_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL`,
			p.TenantID, id, db.Millis(k.RevokedAt)); err != nil {
			return fmt.Errorf("event: unable to revoke write key: %w", err)
		}
		return s.auditf(ctx, tx, p, "writekey.revoke", k.ID, "%s (%s)", k.Name, k.Key)
	})
	if err != nil {
		return WriteKey{}, err
	}
	s.keys.forget(k.Key)
	return k, nil
}

// tenantFor returns the workspace a write key belongs to.
func (s *Service) tenantFor(ctx context.Context, key string) (int64, error) {
	if key == "" {
		return 0, errNoWriteKey
	}
	if len(key) > 200 {
		return 0, ErrBadWriteKey
	}
	now := s.now()
	if id, ok := s.keys.get(key, now); ok {
		return id, nil
	}
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT tenant_id FROM write_keys WHERE key = $1 AND revoked_at IS NULL`, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrBadWriteKey
	}
	if err != nil {
		return 0, fmt.Errorf("event: unable to look up write key: %w", err)
	}
	s.keys.put(key, id, now)
	return id, nil
}

// keyCache remembers valid write keys for a short while: every ingest request
// carries one, and most come from few keys.
type keyCache struct {
	mu sync.Mutex
	m  map[string]cachedKey
}

type cachedKey struct {
	tenantID int64
	expires  time.Time
}

// keyCacheMax bounds the cache; past it, it starts over.
const keyCacheMax = 10000

func newKeyCache() *keyCache { return &keyCache{m: map[string]cachedKey{}} }

func (c *keyCache) get(key string, now time.Time) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || now.After(e.expires) {
		return 0, false
	}
	return e.tenantID, true
}

func (c *keyCache) put(key string, tenantID int64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= keyCacheMax {
		clear(c.m)
	}
	c.m[key] = cachedKey{tenantID: tenantID, expires: now.Add(writeKeyCacheTTL)}
}

func (c *keyCache) forget(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}
