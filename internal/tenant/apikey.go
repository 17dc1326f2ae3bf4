package tenant

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

// APIKeyPrefix starts every API key, so leaked keys are easy to recognise.
const APIKeyPrefix = "siyu_"

// apiKeyTouchEvery bounds how often a key's last-used time is written.
const apiKeyTouchEvery = time.Minute

// APIKey is an API key's record; the key itself is shown once and stored hashed.
type APIKey struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Prefix     string    `json:"prefix"` // the first characters, to tell keys apart
	Role       Role      `json:"role"`
	CreatedBy  int64     `json:"created_by_user_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Revoked reports whether the key no longer works.
func (k APIKey) Revoked() bool { return !k.RevokedAt.IsZero() }

// ErrBadAPIKey is returned for a missing, unknown or revoked key.
var ErrBadAPIKey = errs.E(errs.Unauthenticated, "invalid_api_key",
	"missing, unknown or revoked API key; send it as 'Authorization: Bearer siyu_…'")

// CreateAPIKey creates a key with the given role (at most the creator's, never
// owner) and returns it with the plaintext key, which is never shown again.
func (s *Service) CreateAPIKey(ctx context.Context, p Principal, name string, role Role) (APIKey, string, error) {
	if err := p.Require(PermAPIKeysManage); err != nil {
		return APIKey{}, "", err
	}
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 100 {
		return APIKey{}, "", errs.Field("name", "invalid_name", "the key name must be 1–100 characters")
	}
	if _, err := ParseRole(string(role)); err != nil {
		return APIKey{}, "", err
	}
	if role == RoleOwner {
		return APIKey{}, "", errs.Field("role", "invalid_role", "API keys cannot have the owner role; use admin")
	}
	if !p.Role.Covers(role) {
		return APIKey{}, "", errs.E(errs.Forbidden, "role_too_high", "you may not create a key with role %s, which is above your own", role)
	}
	plain := APIKeyPrefix + randomToken(30)
	now := s.now().UTC().Truncate(time.Millisecond)
	k := APIKey{Name: name, Prefix: plain[:len(APIKeyPrefix)+6], Role: role, CreatedAt: now}
	if p.Kind == ActorUser {
		k.CreatedBy = p.ID
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`INSERT INTO api_keys (tenant_id, name, prefix, key_hash, role, created_by_user_id, created_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			p.TenantID, name, k.Prefix, sha256Hex(plain), string(role), nullID(k.CreatedBy), db.Millis(now)).Scan(&k.ID)
		if err != nil {
			return fmt.Errorf("tenant: unable to create API key: %w", err)
		}
		return s.audit(ctx, tx, p, "apikey.create", "api_key", fmt.Sprint(k.ID), fmt.Sprintf("%s (%s…) as %s", name, k.Prefix, role))
	})
	if err != nil {
		return APIKey{}, "", err
	}
	return k, plain, nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

const apiKeyCols = `id, name, prefix, role, created_by_user_id, created_at, last_used_at, revoked_at`

func scanAPIKey(row interface{ Scan(...any) error }) (APIKey, error) {
	var k APIKey
	var role string
	var createdBy, lastUsed, revoked sql.NullInt64
	var created int64
	err := row.Scan(&k.ID, &k.Name, &k.Prefix, &role, &createdBy, &created, &lastUsed, &revoked)
	k.Role = Role(role)
	k.CreatedBy = createdBy.Int64
	k.CreatedAt = db.FromMillis(created)
	k.LastUsedAt = db.NullMillis(lastUsed)
	k.RevokedAt = db.NullMillis(revoked)
	return k, err
}

// APIKeys lists the workspace's keys, newest first.
func (s *Service) APIKeys(ctx context.Context, tenantID int64, r page.Request) (page.Page[APIKey], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[APIKey]{}, err
	}
	q := `SELECT ` + apiKeyCols + ` FROM api_keys WHERE tenant_id = $1`
	args := []any{tenantID}
	if ok {
		q += ` AND id < $2`
		args = append(args, after)
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[APIKey]{}, fmt.Errorf("tenant: unable to list API keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return page.Page[APIKey]{}, fmt.Errorf("tenant: unable to read API key: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return page.Page[APIKey]{}, fmt.Errorf("tenant: unable to list API keys: %w", err)
	}
	return page.Trim(out, r, func(k APIKey) string { return page.ByID(k.ID) }), nil
}

// APIKey returns one key of the workspace.
func (s *Service) APIKey(ctx context.Context, tenantID, id int64) (APIKey, error) {
	k, err := scanAPIKey(s.db.QueryRowContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, errs.NotFoundf("api_key", "no such API key")
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("tenant: unable to fetch API key: %w", err)
	}
	return k, nil
}

// RevokeAPIKey revokes a key at once; revoking twice is not an error.
func (s *Service) RevokeAPIKey(ctx context.Context, p Principal, id int64) (APIKey, error) {
	if err := p.Require(PermAPIKeysManage); err != nil {
		return APIKey{}, err
	}
	k, err := s.APIKey(ctx, p.TenantID, id)
	if err != nil || k.Revoked() {
		return k, err
	}
	k.RevokedAt = s.now().UTC().Truncate(time.Millisecond)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL`,
			p.TenantID, id, db.Millis(k.RevokedAt)); err != nil {
			return fmt.Errorf("tenant: unable to revoke API key: %w", err)
		}
		return s.audit(ctx, tx, p, "apikey.revoke", "api_key", fmt.Sprint(id), fmt.Sprintf("%s (%s…)", k.Name, k.Prefix))
	})
	return k, err
}

// AuthenticateAPIKey resolves a plaintext key to its principal.
func (s *Service) AuthenticateAPIKey(ctx context.Context, plain string, meta RequestMeta) (Principal, error) {
	if !strings.HasPrefix(plain, APIKeyPrefix) || len(plain) > 200 {
		return Principal{}, ErrBadAPIKey
	}
	var tenantID int64
	row := s.db.QueryRowContext(ctx, `SELECT tenant_id, `+apiKeyCols+` FROM api_keys WHERE key_hash = $1`, sha256Hex(plain))
	var k APIKey
	var role string
	var createdBy, lastUsed, revoked sql.NullInt64
	var created int64
	err := row.Scan(&tenantID, &k.ID, &k.Name, &k.Prefix, &role, &createdBy, &created, &lastUsed, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrBadAPIKey
	}
	if err != nil {
		return Principal{}, fmt.Errorf("tenant: unable to look up API key: %w", err)
	}
	if revoked.Valid {
		return Principal{}, ErrBadAPIKey
	}
	now := s.now().UTC()
	if !lastUsed.Valid || now.Sub(db.FromMillis(lastUsed.Int64)) > apiKeyTouchEvery {
		if _, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2`,
			tenantID, k.ID, db.Millis(now)); err != nil {
			s.log.Warn("unable to record API key use", "err", err)
		}
	}
	return Principal{TenantID: tenantID, Kind: ActorAPIKey, ID: k.ID, Name: k.Name, Role: Role(role), IP: meta.IP, UserAgent: meta.UserAgent}, nil
}
