// Package tenant owns workspaces (one brand each: the tenant of every row),
// users and their roles, console sessions, API keys, and the audit log.
//
// Three lookups here run without a tenant filter, because they are what decide
// the tenant: a login by email, a session by its token, an API key by its hash.
// Every other query filters by tenant_id.
package tenant

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Workspace is one brand.
type Workspace struct {
	ID        int64     `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	Timezone  string    `json:"timezone"`
	CreatedAt time.Time `json:"created_at"`
}

// Location returns the workspace's time zone, which decides what "a day" is.
func (w Workspace) Location() *time.Location {
	loc, err := time.LoadLocation(w.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// User is a person who signs in to the console.
type User struct {
	ID          int64     `json:"id"`
	TenantID    int64     `json:"-"`
	Email       string    `json:"email"`
	Name        string    `json:"name"`
	Role        Role      `json:"role"`
	Locale      string    `json:"locale"`
	CreatedAt   time.Time `json:"created_at"`
	LastLoginAt time.Time `json:"last_login_at,omitzero"`
	DisabledAt  time.Time `json:"disabled_at,omitzero"`
}

// Disabled reports whether the user may no longer sign in.
func (u User) Disabled() bool { return !u.DisabledAt.IsZero() }

// ActorKind says what kind of principal acted.
type ActorKind string

// Actor kinds.
const (
	ActorUser   ActorKind = "user"
	ActorAPIKey ActorKind = "api_key"
	ActorSystem ActorKind = "system"
)

// Principal is who is acting, in which workspace, with which role, and from
// where. The HTTP layers build it from a session or an API key; domain code
// records it in the audit log.
type Principal struct {
	TenantID  int64
	Kind      ActorKind
	ID        int64
	Name      string
	Role      Role
	IP        string
	UserAgent string
}

// Can reports whether the principal holds permission p.
func (p Principal) Can(perm Permission) bool { return p.Role.Can(perm) }

// Require returns a Forbidden error unless the principal holds perm.
func (p Principal) Require(perm Permission) error {
	if p.Can(perm) {
		return nil
	}
	return errs.E(errs.Forbidden, "forbidden", "your role (%s) may not do this (needs %s)", p.Role, perm)
}

// System returns a principal for work Siyu does by itself (the demo, migrations).
func System(tenantID int64) Principal {
	return Principal{TenantID: tenantID, Kind: ActorSystem, Name: "system", Role: RoleOwner}
}

// Service is the tenant domain service.
type Service struct {
	db      *db.DB
	log     *slog.Logger
	hash    HashParams
	now     func() time.Time
	limiter *loginLimiter
}

// Options tune a Service; zero values mean the defaults.
type Options struct {
	Logger     *slog.Logger
	HashParams HashParams
	Now        func() time.Time
}

// NewService returns a tenant service on d.
func NewService(d *db.DB, o Options) *Service {
	s := &Service{db: d, log: o.Logger, hash: o.HashParams, now: o.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.hash == (HashParams{}) {
		s.hash = DefaultHashParams()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.limiter = newLoginLimiter(s.now)
	return s
}

// ---- workspaces ----

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$`)

// NewWorkspace is the input to CreateWorkspace.
type NewWorkspace struct {
	Slug     string
	Name     string
	Timezone string // default Asia/Shanghai
}

// CreateWorkspace creates a workspace. It is not tied to a principal: it runs
// at install time (siyu demo, or the first-run set-up).
func (s *Service) CreateWorkspace(ctx context.Context, in NewWorkspace) (Workspace, error) {
	in.Slug = strings.ToLower(strings.TrimSpace(in.Slug))
	in.Name = strings.TrimSpace(in.Name)
	if !slugRE.MatchString(in.Slug) {
		return Workspace{}, errs.Field("slug", "invalid_slug", "the workspace slug must be 3–40 lowercase letters, digits or dashes")
	}
	if in.Name == "" {
		return Workspace{}, errs.Field("name", "required", "the workspace name is required")
	}
	if in.Timezone == "" {
		in.Timezone = "Asia/Shanghai"
	}
	if _, err := time.LoadLocation(in.Timezone); err != nil {
		return Workspace{}, errs.Field("timezone", "invalid_timezone", "unknown time zone %q", in.Timezone)
	}
	now := s.now().UTC()
	var id int64
	err := s.db.QueryRowContext(ctx,
		`INSERT INTO workspaces (slug, name, timezone, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		in.Slug, in.Name, in.Timezone, db.Millis(now)).Scan(&id)
	if db.IsUniqueViolation(err) {
		return Workspace{}, errs.E(errs.Conflict, "slug_taken", "a workspace with slug %q already exists", in.Slug)
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("tenant: unable to create workspace: %w", err)
	}
	return Workspace{ID: id, Slug: in.Slug, Name: in.Name, Timezone: in.Timezone, CreatedAt: now.Truncate(time.Millisecond)}, nil
}

const workspaceCols = `id, slug, name, timezone, created_at`

func scanWorkspace(row interface{ Scan(...any) error }) (Workspace, error) {
	var w Workspace
	var created int64
	err := row.Scan(&w.ID, &w.Slug, &w.Name, &w.Timezone, &created)
	w.CreatedAt = db.FromMillis(created)
	return w, err
}

// Workspace returns the workspace with the given tenant id.
func (s *Service) Workspace(ctx context.Context, tenantID int64) (Workspace, error) {
	w, err := scanWorkspace(s.db.QueryRowContext(ctx, `SELECT `+workspaceCols+` FROM workspaces WHERE id = $1`, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return Workspace{}, errs.NotFoundf("workspace", "no such workspace")
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("tenant: unable to fetch workspace: %w", err)
	}
	return w, nil
}

// WorkspaceBySlug finds a workspace by its slug.
func (s *Service) WorkspaceBySlug(ctx context.Context, slug string) (Workspace, error) {
	w, err := scanWorkspace(s.db.QueryRowContext(ctx, `SELECT `+workspaceCols+` FROM workspaces WHERE slug = $1`, slug))
	if errors.Is(err, sql.ErrNoRows) {
		return Workspace{}, errs.NotFoundf("workspace", "no workspace %q", slug)
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("tenant: unable to fetch workspace: %w", err)
	}
	return w, nil
}

// WorkspaceUpdate changes workspace settings; nil fields stay as they are.
type WorkspaceUpdate struct {
	Name     *string
	Timezone *string
}

// UpdateWorkspace changes the principal's workspace.
func (s *Service) UpdateWorkspace(ctx context.Context, p Principal, in WorkspaceUpdate) (Workspace, error) {
	if err := p.Require(PermWorkspaceManage); err != nil {
		return Workspace{}, err
	}
	w, err := s.Workspace(ctx, p.TenantID)
	if err != nil {
		return Workspace{}, err
	}
	var changes []string
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" || len([]rune(name)) > 100 {
			return Workspace{}, errs.Field("name", "invalid_name", "the workspace name must be 1–100 characters")
		}
		if name != w.Name {
			changes = append(changes, fmt.Sprintf("name: %s → %s", w.Name, name))
			w.Name = name
		}
	}
	if in.Timezone != nil {
		if _, err := time.LoadLocation(*in.Timezone); err != nil || *in.Timezone == "" {
			return Workspace{}, errs.Field("timezone", "invalid_timezone", "unknown time zone %q", *in.Timezone)
		}
		if *in.Timezone != w.Timezone {
			changes = append(changes, fmt.Sprintf("timezone: %s → %s", w.Timezone, *in.Timezone))
			w.Timezone = *in.Timezone
		}
	}
	if len(changes) == 0 {
		return w, nil
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE workspaces SET name = $2, timezone = $3 WHERE id = $1`, w.ID, w.Name, w.Timezone); err != nil {
			return fmt.Errorf("tenant: unable to update workspace: %w", err)
		}
		return s.audit(ctx, tx, p, "workspace.update", "workspace", fmt.Sprint(w.ID), strings.Join(changes, "; "))
	})
	return w, err
}

// ---- users ----

// NewUser is the input to CreateUser and AddUser.
type NewUser struct {
	Email    string
	Name     string
	Password string
	Role     Role
}

func (in *NewUser) normalize() error {
	in.Email = strings.ToLower(strings.TrimSpace(in.Email))
	in.Name = strings.TrimSpace(in.Name)
	if a, err := mail.ParseAddress(in.Email); err != nil || a.Address != in.Email {
		return errs.Field("email", "invalid_email", "%q is not an email address", in.Email)
	}
	if in.Name == "" {
		in.Name = strings.SplitN(in.Email, "@", 2)[0]
	}
	if len([]rune(in.Name)) > 100 {
		return errs.Field("name", "invalid_name", "the name must be at most 100 characters")
	}
	if _, err := ParseRole(string(in.Role)); err != nil {
		return err
	}
	return checkPasswordPolicy(in.Password)
}

// CreateUser adds a user to a workspace without a principal (install time, the
// demo). Console and API go through AddUser.
func (s *Service) CreateUser(ctx context.Context, tenantID int64, in NewUser) (User, error) {
	return s.insertUser(ctx, System(tenantID), in)
}

// AddUser adds a user on behalf of p, who may not grant a role above their own.
func (s *Service) AddUser(ctx context.Context, p Principal, in NewUser) (User, error) {
	if err := p.Require(PermUsersManage); err != nil {
		return User{}, err
	}
	if !p.Role.Covers(in.Role) {
		return User{}, errs.E(errs.Forbidden, "role_too_high", "you may not grant the role %s, which is above your own", in.Role)
	}
	return s.insertUser(ctx, p, in)
}

func (s *Service) insertUser(ctx context.Context, p Principal, in NewUser) (User, error) {
	if err := in.normalize(); err != nil {
		return User{}, err
	}
	hash, err := hashPassword(in.Password, s.hash)
	if err != nil {
		return User{}, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	u := User{TenantID: p.TenantID, Email: in.Email, Name: in.Name, Role: in.Role, CreatedAt: now}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`INSERT INTO users (tenant_id, email, name, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			p.TenantID, in.Email, in.Name, hash, string(in.Role), db.Millis(now)).Scan(&u.ID)
		if db.IsUniqueViolation(err) {
			return errs.E(errs.Conflict, "email_taken", "a user with email %s already exists", in.Email)
		}
		if err != nil {
			return fmt.Errorf("tenant: unable to create user: %w", err)
		}
		return s.audit(ctx, tx, p, "user.create", "user", fmt.Sprint(u.ID), fmt.Sprintf("%s (%s) as %s", in.Name, in.Email, in.Role))
	})
	return u, err
}

const userCols = `id, tenant_id, email, name, role, locale, created_at, last_login_at, disabled_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var role string
	var created int64
	var lastLogin, disabled sql.NullInt64
	err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.Name, &role, &u.Locale, &created, &lastLogin, &disabled)
	u.Role = Role(role)
	u.CreatedAt = db.FromMillis(created)
	u.LastLoginAt = db.NullMillis(lastLogin)
	u.DisabledAt = db.NullMillis(disabled)
	return u, err
}

// User returns one user of the workspace.
func (s *Service) User(ctx context.Context, tenantID, userID int64) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE tenant_id = $1 AND id = $2`, tenantID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, errs.NotFoundf("user", "no such user")
	}
	if err != nil {
		return User{}, fmt.Errorf("tenant: unable to fetch user: %w", err)
	}
	return u, nil
}

// Users lists the workspace's users, oldest first (there are few).
func (s *Service) Users(ctx context.Context, tenantID int64) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userCols+` FROM users WHERE tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("tenant: unable to list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("tenant: unable to read user: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UserUpdate changes a user; nil fields stay as they are.
type UserUpdate struct {
	Name     *string
	Role     *Role
	Disabled *bool
	Password *string
	Locale   *string
}

// UpdateUser changes another user (role, disabled, password) or, for any
// signed-in user, their own name, locale and password.
func (s *Service) UpdateUser(ctx context.Context, p Principal, userID int64, in UserUpdate) (User, error) {
	self := p.Kind == ActorUser && p.ID == userID
	adminChange := in.Role != nil || in.Disabled != nil || (in.Password != nil && !self) || (in.Name != nil && !self)
	if adminChange {
		if err := p.Require(PermUsersManage); err != nil {
			return User{}, err
		}
	}
	u, err := s.User(ctx, p.TenantID, userID)
	if err != nil {
		return User{}, err
	}
	if adminChange && !p.Role.Covers(u.Role) {
		return User{}, errs.E(errs.Forbidden, "role_too_high", "you may not change a user whose role (%s) is above your own", u.Role)
	}
	var sets []string
	var args []any
	var changes []string
	set := func(col string, v any, change string) {
		args = append(args, v)
		sets = append(sets, fmt.Sprintf("%s = $%d", col, len(args)+2))
		changes = append(changes, change)
	}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" || len([]rune(name)) > 100 {
			return User{}, errs.Field("name", "invalid_name", "the name must be 1–100 characters")
		}
		set("name", name, "name → "+name)
		u.Name = name
	}
	if in.Locale != nil {
		if *in.Locale != "" && *in.Locale != "zh-CN" && *in.Locale != "en" {
			return User{}, errs.Field("locale", "invalid_locale", "locale must be zh-CN or en")
		}
		set("locale", *in.Locale, "locale → "+*in.Locale)
		u.Locale = *in.Locale
	}
	if in.Role != nil {
		if _, err := ParseRole(string(*in.Role)); err != nil {
			return User{}, err
		}
		if !p.Role.Covers(*in.Role) {
			return User{}, errs.E(errs.Forbidden, "role_too_high", "you may not grant the role %s, which is above your own", *in.Role)
		}
		if self && *in.Role != u.Role {
			return User{}, errs.E(errs.Conflict, "own_role", "you cannot change your own role; ask another admin")
		}
		if u.Role == RoleOwner && *in.Role != RoleOwner {
			if err := s.requireAnotherOwner(ctx, p.TenantID, u.ID); err != nil {
				return User{}, err
			}
		}
		set("role", string(*in.Role), fmt.Sprintf("role: %s → %s", u.Role, *in.Role))
		u.Role = *in.Role
	}
	if in.Disabled != nil {
		if self && *in.Disabled {
			return User{}, errs.E(errs.Conflict, "disable_self", "you cannot disable your own account")
		}
		if *in.Disabled && u.Role == RoleOwner {
			if err := s.requireAnotherOwner(ctx, p.TenantID, u.ID); err != nil {
				return User{}, err
			}
		}
		if *in.Disabled {
			u.DisabledAt = s.now().UTC().Truncate(time.Millisecond)
			set("disabled_at", db.Millis(u.DisabledAt), "disabled")
		} else {
			u.DisabledAt = time.Time{}
			set("disabled_at", nil, "enabled")
		}
	}
	var hash string
	if in.Password != nil {
		if err := checkPasswordPolicy(*in.Password); err != nil {
			return User{}, err
		}
		if hash, err = hashPassword(*in.Password, s.hash); err != nil {
			return User{}, err
		}
		set("password_hash", hash, "password changed")
	}
	if len(sets) == 0 {
		return u, nil
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		q := `UPDATE users SET ` + strings.Join(sets, ", ") + ` WHERE tenant_id = $1 AND id = $2`
		if _, err := tx.ExecContext(ctx, q, append([]any{p.TenantID, u.ID}, args...)...); err != nil {
			return fmt.Errorf("tenant: unable to update user: %w", err)
		}
		// A disabled user or a changed password ends the user's other sessions.
		if (in.Disabled != nil && *in.Disabled) || in.Password != nil {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2`, p.TenantID, u.ID); err != nil {
				return fmt.Errorf("tenant: unable to end sessions: %w", err)
			}
		}
		if self && !adminChange {
			return nil // a user's own name or locale is not an administrative action
		}
		return s.audit(ctx, tx, p, "user.update", "user", fmt.Sprint(u.ID), u.Email+": "+strings.Join(changes, "; "))
	})
	return u, err
}

func (s *Service) requireAnotherOwner(ctx context.Context, tenantID, userID int64) error {
	var n int
	err := s.db.QueryRowContext(ctx,
		`SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'owner' AND disabled_at IS NULL AND id <> $2`,
		tenantID, userID).Scan(&n)
	if err != nil {
		return fmt.Errorf("tenant: unable to count owners: %w", err)
	}
	if n == 0 {
		return errs.E(errs.Conflict, "last_owner", "a workspace needs at least one active owner")
	}
	return nil
}

// ---- helpers ----

// randomToken returns n random bytes as lowercase base32 without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("tenant: crypto/rand failed: %v", err)) // the OS is broken
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// WorkspaceIDs lists every workspace's id (for start-up work across tenants).
func (s *Service) WorkspaceIDs(ctx context.Context) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM workspaces ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("tenant: unable to list workspaces: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
