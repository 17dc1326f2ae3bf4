package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Session lifetimes: a session lives SessionTTL past its last use, and its
// last use is written at most every sessionTouchEvery.
const (
	SessionTTL        = 7 * 24 * time.Hour
	sessionTouchEvery = 5 * time.Minute
)

// Session is a signed-in console session.
type Session struct {
	TenantID   int64
	UserID     int64
	CSRFToken  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastSeenAt time.Time
}

// RequestMeta says where a request came from, for the audit log and rate limits.
type RequestMeta struct {
	IP        string
	UserAgent string
}

// Errors of sign-in and sessions, for the HTTP layers to show.
var (
	ErrBadLogin       = errs.E(errs.Unauthenticated, "invalid_login", "wrong email or password")
	ErrSessionExpired = errs.E(errs.Unauthenticated, "session_expired", "your session has expired; please sign in again")
)

// Login checks an email and password and opens a session. It returns the
// session token for the cookie (only its hash is stored).
func (s *Service) Login(ctx context.Context, email, password string, meta RequestMeta) (token string, sess Session, u User, err error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if wait := s.limiter.blocked(email, meta.IP); wait > 0 {
		s.log.Warn("login rate limited", "email", email, "ip", meta.IP)
		return "", Session{}, User{}, errs.E(errs.RateLimited, "too_many_attempts",
			"too many failed sign-in attempts; try again in %d minutes", int(wait.Minutes())+1)
	}
	var hash string
	row := s.db.QueryRowContext(ctx, `SELECT `+userCols+`, password_hash FROM users WHERE email = $1`, email)
	u, err = scanUserWithHash(row, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the same time as a real check so response times do not reveal
		// which emails exist.
		verifyPassword(password, dummyHash)
		s.limiter.fail(email, meta.IP)
		s.log.Info("login failed: unknown email", "email", email, "ip", meta.IP)
		return "", Session{}, User{}, ErrBadLogin
	}
	if err != nil {
		return "", Session{}, User{}, fmt.Errorf("tenant: unable to look up user: %w", err)
	}
	p := Principal{TenantID: u.TenantID, Kind: ActorUser, ID: u.ID, Name: u.Name, Role: u.Role, IP: meta.IP, UserAgent: meta.UserAgent}
	if !verifyPassword(password, hash) {
		s.limiter.fail(email, meta.IP)
		s.log.Info("login failed: wrong password", "email", email, "ip", meta.IP)
		_ = s.audit(ctx, s.db, p, "login.failure", "user", fmt.Sprint(u.ID), "wrong password")
		return "", Session{}, User{}, ErrBadLogin
	}
	if u.Disabled() {
		s.log.Info("login refused: user disabled", "email", email, "ip", meta.IP)
		_ = s.audit(ctx, s.db, p, "login.failure", "user", fmt.Sprint(u.ID), "account disabled")
		return "", Session{}, User{}, errs.E(errs.Forbidden, "user_disabled", "this account has been disabled; ask an admin of your workspace")
	}
	s.limiter.succeed(email)
	now := s.now().UTC().Truncate(time.Millisecond)
	token = randomToken(32)
	sess = Session{TenantID: u.TenantID, UserID: u.ID, CSRFToken: randomToken(20), CreatedAt: now, ExpiresAt: now.Add(SessionTTL), LastSeenAt: now}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO sessions (token_hash, tenant_id, user_id, csrf_token, created_at, expires_at, last_seen_at, ip, user_agent)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			sha256Hex(token), sess.TenantID, sess.UserID, sess.CSRFToken, db.Millis(now), db.Millis(sess.ExpiresAt), db.Millis(now),
			meta.IP, truncate(meta.UserAgent, 300)); err != nil {
			return fmt.Errorf("tenant: unable to create session: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET last_login_at = $3 WHERE tenant_id = $1 AND id = $2`, u.TenantID, u.ID, db.Millis(now)); err != nil {
			return fmt.Errorf("tenant: unable to record login: %w", err)
		}
		return s.audit(ctx, tx, p, "login.success", "user", fmt.Sprint(u.ID), "")
	})
	if err != nil {
		return "", Session{}, User{}, err
	}
	u.LastLoginAt = now
	return token, sess, u, nil
}

// dummyHash is a valid hash of a random password, checked against when the
// email is unknown.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c2l5dWR1bW15c2FsdDEyMw$6oG3vQf0uB3pQm7zYjXyQ0Sx2W0m2l3f4D0b3Zk9xUo"

func scanUserWithHash(row *sql.Row, hash *string) (User, error) {
	var u User
	var role string
	var created int64
	var lastLogin, disabled sql.NullInt64
	err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.Name, &role, &u.Locale, &created, &lastLogin, &disabled, hash)
	u.Role = Role(role)
	u.CreatedAt = db.FromMillis(created)
	u.LastLoginAt = db.NullMillis(lastLogin)
	u.DisabledAt = db.NullMillis(disabled)
	return u, err
}

// SessionByToken resolves a session cookie to its session and user. An unknown
// token, an expired session or a disabled user is ErrSessionExpired.
func (s *Service) SessionByToken(ctx context.Context, token string) (Session, User, error) {
	if token == "" {
		return Session{}, User{}, ErrSessionExpired
	}
	var sess Session
	var created, expires, seen int64
	h := sha256Hex(token)
	err := s.db.QueryRowContext(ctx,
		`SELECT tenant_id, user_id, csrf_token, created_at, expires_at, last_seen_at FROM sessions WHERE token_hash = $1`, h).
		Scan(&sess.TenantID, &sess.UserID, &sess.CSRFToken, &created, &expires, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, User{}, ErrSessionExpired
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("tenant: unable to look up session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt, sess.LastSeenAt = db.FromMillis(created), db.FromMillis(expires), db.FromMillis(seen)
	now := s.now().UTC()
	if !now.Before(sess.ExpiresAt) {
		_, _ = s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, h)
		return Session{}, User{}, ErrSessionExpired
	}
	u, err := s.User(ctx, sess.TenantID, sess.UserID)
	if errs.Is(err, errs.NotFound) || (err == nil && u.Disabled()) {
		return Session{}, User{}, ErrSessionExpired
	}
	if err != nil {
		return Session{}, User{}, err
	}
	if now.Sub(sess.LastSeenAt) > sessionTouchEvery {
		sess.LastSeenAt = now.Truncate(time.Millisecond)
		sess.ExpiresAt = sess.LastSeenAt.Add(SessionTTL)
		if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $2, expires_at = $3 WHERE token_hash = $1`,
			h, db.Millis(sess.LastSeenAt), db.Millis(sess.ExpiresAt)); err != nil {
			s.log.Warn("unable to extend session", "err", err)
		}
	}
	return sess, u, nil
}

// Logout ends the session with the given token.
func (s *Service) Logout(ctx context.Context, token string, p Principal) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1 AND tenant_id = $2`, sha256Hex(token), p.TenantID)
	if err != nil {
		return fmt.Errorf("tenant: unable to end session: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return s.audit(ctx, s.db, p, "logout", "user", fmt.Sprint(p.ID), "")
	}
	return nil
}

// PurgeExpiredSessions deletes sessions past their expiry and returns how many.
func (s *Service) PurgeExpiredSessions(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, db.Millis(s.now()))
	if err != nil {
		return 0, fmt.Errorf("tenant: unable to purge sessions: %w", err)
	}
	return res.RowsAffected()
}

// UserPrincipal builds the principal of a signed-in user.
func UserPrincipal(u User, meta RequestMeta) Principal {
	return Principal{TenantID: u.TenantID, Kind: ActorUser, ID: u.ID, Name: u.Name, Role: u.Role, IP: meta.IP, UserAgent: meta.UserAgent}
}

// ---- login rate limiting ----

// Failed sign-ins allowed per window: per email (guessing one account's
// password) and per IP (trying many accounts).
const (
	loginWindow      = 15 * time.Minute
	maxFailsPerEmail = 5
	maxFailsPerIP    = 20
)

// loginLimiter counts recent failed sign-ins in memory. On several nodes each
// counts its own; the limits still bound a guesser to a few tries per minute.
type loginLimiter struct {
	mu    sync.Mutex
	now   func() time.Time
	fails map[string][]time.Time
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, fails: map[string][]time.Time{}}
}

func (l *loginLimiter) recent(key string, now time.Time) []time.Time {
	ts := l.fails[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= loginWindow {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, key)
		return nil
	}
	l.fails[key] = ts
	return ts
}

// blocked returns how long until another attempt is allowed (0: allowed now).
func (l *loginLimiter) blocked(email, ip string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, c := range []struct {
		key string
		max int
	}{{"e:" + email, maxFailsPerEmail}, {"i:" + ip, maxFailsPerIP}} {
		ts := l.recent(c.key, now)
		if len(ts) >= c.max {
			if w := loginWindow - now.Sub(ts[len(ts)-c.max]); w > wait {
				wait = w
			}
		}
	}
	return wait
}

func (l *loginLimiter) fail(email, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.fails) > 100_000 { // bound memory under a spray of random emails
		for k := range l.fails {
			l.recent(k, now)
		}
	}
	for _, k := range []string{"e:" + email, "i:" + ip} {
		l.fails[k] = append(l.recent(k, now), now)
	}
}

func (l *loginLimiter) succeed(email string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, "e:"+email)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
