package wecom

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Workspaces is what the service needs of the tenant domain: workspaces by id
// (the callback URL) and by slug (the callback endpoint), and the audit log.
// tenant.Service satisfies it.
type Workspaces interface {
	Workspace(ctx context.Context, tenantID int64) (tenant.Workspace, error)
	WorkspaceBySlug(ctx context.Context, slug string) (tenant.Workspace, error)
	Audit(ctx context.Context, q db.Querier, p tenant.Principal, action, targetKind, targetID, detail string) error
}

var _ Workspaces = (*tenant.Service)(nil)

// Options configure a Service; zero values mean the defaults.
type Options struct {
	Logger *slog.Logger
	// PublicURL is Siyu's public base URL, used in the callback URL shown to
	// operators (e.g. https://siyu.example.com).
	PublicURL string
	// Now is the clock (tests).
	Now func() time.Time
	// ClientConfig, when set, adjusts the API client's configuration of a
	// workspace before it is built (tests: the simulator's clock and HTTP
	// client).
	ClientConfig func(tenantID int64, c *Config)
	// MaxAttempts is how often an inbox event is tried before it is given
	// up (default 8); Backoff the delay after the first failure, doubled
	// after each further one up to an hour (default 10s).
	MaxAttempts int
	Backoff     time.Duration
	// Interval is how often the worker looks for due events when nothing
	// woke it (default 2s).
	Interval time.Duration
	// Sync configures the full sync and reconciliation (sync.go).
	Sync SyncOptions
}

// Service is the WeCom connector of every workspace: settings, the callback
// endpoint and its durable inbox, and the processing that turns WeCom's
// events into customers, staff relations, groups, tags and timeline entries.
type Service struct {
	db         *db.DB
	keys       *pii.Keyring
	customers  *customer.Service
	staff      *staff.Service
	tags       *tag.Service
	workspaces Workspaces
	log        *slog.Logger
	now        func() time.Time
	o          Options

	owner string        // this process's lease owner id for inbox rows
	wake  chan struct{} // nudges the worker after a callback is stored here

	mu      sync.Mutex
	clients map[int64]cachedClient

	sync syncRuntime // sync.go: the sync worker's wake-ups and tag feed

	observers []namedObserver // observe.go: run after each processed event
}

type cachedClient struct {
	c       *Client
	updated int64
}

// NewService returns the connector service.
func NewService(d *db.DB, keys *pii.Keyring, customers *customer.Service, st *staff.Service, tags *tag.Service, ws Workspaces, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Backoff <= 0 {
		o.Backoff = 10 * time.Second
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Service{db: d, keys: keys, customers: customers, staff: st, tags: tags, workspaces: ws, log: o.Logger, now: o.Now, o: o,
		owner: hex.EncodeToString(b), wake: make(chan struct{}, 1), clients: map[int64]cachedClient{}}
}

// DefaultBaseURL is WeCom's API.
const DefaultBaseURL = "https://qyapi.weixin.qq.com"

// Settings are a workspace's WeCom connection as shown: secrets masked.
type Settings struct {
	CorpID         string      `json:"corp_id" doc:"The corp ID (企业ID), from My Company in WeCom's admin."`
	AgentID        int64       `json:"agent_id" doc:"The self-built app's AgentId."`
	Secret         string      `json:"secret" doc:"The app's Secret, masked."`
	Token          string      `json:"token" doc:"The callback Token, masked."`
	EncodingAESKey string      `json:"encoding_aes_key" doc:"The callback EncodingAESKey, masked."`
	BaseURL        string      `json:"base_url" doc:"WeCom's API base URL (another only for a simulator or a proxy)."`
	CallbackURL    string      `json:"callback_url" doc:"Paste into the app's 'Receive messages' (接收消息) settings in WeCom's admin."`
	VerifiedAt     time.Time   `json:"verified_at,omitzero" doc:"When WeCom last verified the callback URL."`
	LastTest       *TestResult `json:"last_test,omitempty" doc:"The last connection test."`
	CreatedAt      time.Time   `json:"created_at"`
	UpdatedAt      time.Time   `json:"updated_at"`
}

// SettingsInput is what Configure takes. An empty Secret, Token or
// EncodingAESKey keeps the stored one (they are never shown, so a form
// cannot send them back).
type SettingsInput struct {
	CorpID         string
	AgentID        int64
	Secret         string
	Token          string
	EncodingAESKey string
	BaseURL        string // "": DefaultBaseURL
}

// TestResult is the outcome of a connection test, in words an operator can
// act on.
type TestResult struct {
	OK      bool      `json:"ok"`
	ErrCode int       `json:"errcode" doc:"WeCom's error code; 0 when the test passed."`
	Message string    `json:"message" doc:"What happened, in plain words."`
	Fix     string    `json:"fix,omitempty" doc:"What to do about it."`
	At      time.Time `json:"at"`
}

// Credentials are a workspace's decrypted settings, for the API client and
// the callback endpoint. Never log or return them.
type Credentials struct {
	TenantID       int64
	CorpID         string
	AgentID        int64
	Secret         string
	Token          string
	EncodingAESKey string
	BaseURL        string
	updated        int64
}

// ErrNotConfigured is returned when a workspace has not connected WeCom.
var ErrNotConfigured = errs.E(errs.NotFound, "wecom_not_configured", "WeCom is not connected in this workspace: save the corp ID, app secret, Token and EncodingAESKey first")

// mask shows the last 4 characters of a secret, enough to tell which one
// is saved.
func mask(s string) string {
	if len(s) <= 8 {
		return strings.Repeat("*", 8)
	}
	return strings.Repeat("*", 8) + s[len(s)-4:]
}

// CallbackURL is where WeCom must send a workspace's callbacks.
func (s *Service) CallbackURL(slug string) string {
	return strings.TrimRight(s.o.PublicURL, "/") + "/connect/wecom/" + url.PathEscape(slug) + "/callback"
}

type settingsRow struct {
	Credentials
	secretEnc, tokenEnc, aesEnc string
	verified, testAt, created   int64
	testCode                    int
	testMsg                     string
}

func (s *Service) loadRow(ctx context.Context, q db.Querier, tenantID int64) (settingsRow, error) {
	var r settingsRow
	err := q.QueryRowContext(ctx, `SELECT corp_id, agent_id, secret_enc, token_enc, aes_key_enc, base_url, verified_at, test_at, test_errcode,
		test_message, created_at, updated_at FROM wecom_settings WHERE tenant_id = $1`, tenantID).
		Scan(&r.CorpID, &r.AgentID, &r.secretEnc, &r.tokenEnc, &r.aesEnc, &r.BaseURL, &r.verified, &r.testAt, &r.testCode, &r.testMsg,
			&r.created, &r.updated)
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotConfigured
	}
	if err != nil {
		return r, fmt.Errorf("wecom: unable to read settings: %w", err)
	}
	r.TenantID = tenantID
	for _, f := range []struct {
		enc string
		out *string
	}{{r.secretEnc, &r.Secret}, {r.tokenEnc, &r.Token}, {r.aesEnc, &r.EncodingAESKey}} {
		if *f.out, err = s.keys.Decrypt(f.enc); err != nil {
			return r, fmt.Errorf("wecom: unable to decrypt settings of workspace %d: %w", tenantID, err)
		}
	}
	if r.BaseURL == "" {
		r.BaseURL = DefaultBaseURL
	}
	return r, nil
}

// Credentials returns a workspace's decrypted settings (ErrNotConfigured when
// there are none). For the API client, the callback endpoint and sync only.
func (s *Service) Credentials(ctx context.Context, tenantID int64) (Credentials, error) {
	r, err := s.loadRow(ctx, s.db, tenantID)
	return r.Credentials, err
}

func (s *Service) shown(ctx context.Context, r settingsRow) (Settings, error) {
	w, err := s.workspaces.Workspace(ctx, r.TenantID)
	if err != nil {
		return Settings{}, err
	}
	out := Settings{
		CorpID: r.CorpID, AgentID: r.AgentID, Secret: mask(r.Secret), Token: mask(r.Token), EncodingAESKey: mask(r.EncodingAESKey),
		BaseURL: r.BaseURL, CallbackURL: s.CallbackURL(w.Slug), VerifiedAt: db.FromMillis(r.verified),
		CreatedAt: db.FromMillis(r.created), UpdatedAt: db.FromMillis(r.updated),
	}
	if r.testAt != 0 {
		out.LastTest = &TestResult{OK: r.testCode == 0, ErrCode: r.testCode, At: db.FromMillis(r.testAt)}
		out.LastTest.Message, out.LastTest.Fix = splitTestMessage(r.testMsg)
	}
	return out, nil
}

// Settings returns a workspace's WeCom settings, secrets masked
// (ErrNotConfigured when there are none).
func (s *Service) Settings(ctx context.Context, tenantID int64) (Settings, error) {
	r, err := s.loadRow(ctx, s.db, tenantID)
	if err != nil {
		return Settings{}, err
	}
	return s.shown(ctx, r)
}

func cleanBaseURL(raw string) (string, error) {
	raw = strings.TrimRight(strings.TrimSpace(raw), "/")
	if raw == "" {
		return DefaultBaseURL, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", errs.Field("base_url", "wecom_bad_base_url", "the base URL must be an http(s) URL such as %s", DefaultBaseURL)
	}
	return raw, nil
}

// Configure saves a workspace's WeCom settings (p needs
// connectors.manage), checking them the way WeCom's admin does, and records
// it in the audit log. Secrets are encrypted at rest.
func (s *Service) Configure(ctx context.Context, p tenant.Principal, in SettingsInput) (Settings, error) {
	if err := p.Require(tenant.PermConnectorsManage); err != nil {
		return Settings{}, err
	}
	in.CorpID = strings.TrimSpace(in.CorpID)
	in.Secret, in.Token, in.EncodingAESKey = strings.TrimSpace(in.Secret), strings.TrimSpace(in.Token), strings.TrimSpace(in.EncodingAESKey)
	if in.CorpID == "" || len(in.CorpID) > 64 || strings.ContainsAny(in.CorpID, " \t\r\n/") {
		return Settings{}, errs.Field("corp_id", "wecom_bad_corp_id", "the corp ID (企业ID, e.g. ww1234567890abcdef) is required")
	}
	if in.AgentID < 0 {
		return Settings{}, errs.Field("agent_id", "wecom_bad_agent_id", "the AgentId is the number shown on the self-built app's page")
	}
	base, err := cleanBaseURL(in.BaseURL)
	if err != nil {
		return Settings{}, err
	}
	if len(in.Secret) > 128 {
		return Settings{}, errs.Field("secret", "wecom_bad_secret", "the app Secret is at most 128 characters")
	}
	now := s.now().UTC()
	var out settingsRow
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		old, err := s.loadRow(ctx, tx, p.TenantID)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotConfigured) {
			return err
		}
		next := in
		var changes []string
		if next.Secret == "" {
			if !exists {
				return errs.Field("secret", "wecom_missing_secret", "the app Secret is required (a self-built app's Secret: the system 客户联系 secret can no longer call these APIs for new corps)")
			}
			next.Secret = old.Secret
		} else if next.Secret != old.Secret {
			changes = append(changes, "secret changed")
		}
		if next.Token == "" {
			next.Token = old.Token
		} else if next.Token != old.Token {
			changes = append(changes, "token changed")
		}
		if next.EncodingAESKey == "" {
			next.EncodingAESKey = old.EncodingAESKey
		} else if next.EncodingAESKey != old.EncodingAESKey {
			changes = append(changes, "EncodingAESKey changed")
		}
		if next.Token == "" {
			return errs.Field("token", "wecom_bad_token", "the callback Token is required: 1–32 letters or digits, as set in WeCom's admin")
		}
		if next.EncodingAESKey == "" {
			return errs.Field("encoding_aes_key", "wecom_bad_aes_key", "the EncodingAESKey is required: the 43 letters and digits shown in WeCom's admin")
		}
		// NewCrypt checks the Token and EncodingAESKey as WeCom does.
		if _, err := NewCrypt(next.Token, next.EncodingAESKey, next.CorpID); err != nil {
			return err
		}
		if !exists || old.CorpID != next.CorpID {
			changes = append(changes, fmt.Sprintf("corp_id: %s → %s", old.CorpID, next.CorpID))
		}
		if !exists || old.AgentID != next.AgentID {
			changes = append(changes, fmt.Sprintf("agent_id: %d → %d", old.AgentID, next.AgentID))
		}
		if exists && old.BaseURL != base {
			changes = append(changes, fmt.Sprintf("base_url: %s → %s", old.BaseURL, base))
		}
		enc := make([]string, 3)
		for i, v := range []string{next.Secret, next.Token, next.EncodingAESKey} {
			if enc[i], err = s.keys.Encrypt(v); err != nil {
				return fmt.Errorf("wecom: unable to encrypt settings: %w", err)
			}
		}
		stored := base
		if stored == DefaultBaseURL {
			stored = ""
		}
		if exists {
			_, err = tx.ExecContext(ctx, `UPDATE wecom_settings SET corp_id = $2, agent_id = $3, secret_enc = $4, token_enc = $5, aes_key_enc = $6,
				base_url = $7, updated_at = $8 WHERE tenant_id = $1`, p.TenantID, next.CorpID, next.AgentID, enc[0], enc[1], enc[2], stored, db.Millis(now))
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO wecom_settings (tenant_id, corp_id, agent_id, secret_enc, token_enc, aes_key_enc, base_url,
				created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, p.TenantID, next.CorpID, next.AgentID, enc[0], enc[1], enc[2], stored, db.Millis(now))
		}
		if err != nil {
			return fmt.Errorf("wecom: unable to save settings: %w", err)
		}
		action := "wecom.configure"
		if !exists {
			action = "wecom.connect"
		}
		if len(changes) > 0 || !exists {
			if err := s.workspaces.Audit(ctx, tx, p, action, "connector", "wecom", strings.Join(changes, "; ")); err != nil {
				return err
			}
		}
		out, err = s.loadRow(ctx, tx, p.TenantID)
		return err
	})
	if err != nil {
		return Settings{}, err
	}
	s.forgetClient(p.TenantID)
	return s.shown(ctx, out)
}

// Client returns the API client of a workspace, cached so that its access
// token and rate limits are shared by the inbox worker and the sync, and
// rebuilt when the settings change.
func (s *Service) Client(ctx context.Context, tenantID int64) (*Client, error) {
	cred, err := s.Credentials(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[tenantID]; ok && c.updated == cred.updated {
		return c.c, nil
	}
	cfg := Config{BaseURL: cred.BaseURL, CorpID: cred.CorpID, Secret: cred.Secret, Logger: s.log.With("tenant", tenantID)}
	if s.o.ClientConfig != nil {
		s.o.ClientConfig(tenantID, &cfg)
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	s.clients[tenantID] = cachedClient{c: c, updated: cred.updated}
	return c, nil
}

func (s *Service) forgetClient(tenantID int64) {
	s.mu.Lock()
	delete(s.clients, tenantID)
	s.mu.Unlock()
}

// joined test messages are stored as "message\nfix".
func splitTestMessage(s string) (msg, fix string) {
	msg, fix, _ = strings.Cut(s, "\n")
	return msg, fix
}

// explain splits a WeCom error's explanation into what happened (its first
// sentence) and what to do about it (the rest).
func explain(err error) (code int, msg, fix string) {
	code = ErrorCode(err)
	if code == 0 {
		return -1, "Siyu could not reach WeCom: " + err.Error(), "Check that this server can reach the WeCom API (" + DefaultBaseURL + ") and try again."
	}
	text := Explain(code)
	if i := strings.Index(text, ". "); i >= 0 {
		return code, text[:i+1], strings.TrimSpace(text[i+2:])
	}
	return code, text, ""
}

// TestConnection fetches an access token with the saved corp ID and secret
// and says, in plain words, whether it worked and what to fix if not (e.g.
// 60020: the server's IP is not in the app's trusted IP list). The result is
// kept for the console.
func (s *Service) TestConnection(ctx context.Context, p tenant.Principal) (TestResult, error) {
	if err := p.Require(tenant.PermConnectorsManage); err != nil {
		return TestResult{}, err
	}
	c, err := s.Client(ctx, p.TenantID)
	if err != nil {
		return TestResult{}, err
	}
	res := TestResult{OK: true, Message: "Connected: WeCom issued an access token for this corp ID and secret."}
	if _, err := c.GetToken(ctx); err != nil {
		if ctx.Err() != nil {
			return TestResult{}, ctx.Err()
		}
		res.OK = false
		res.ErrCode, res.Message, res.Fix = explain(err)
		s.log.InfoContext(ctx, "wecom: connection test failed", "tenant", p.TenantID, "err", err)
	}
	res.At = s.now().UTC().Truncate(time.Millisecond)
	_, err = s.db.ExecContext(ctx, `UPDATE wecom_settings SET test_at = $2, test_errcode = $3, test_message = $4 WHERE tenant_id = $1`,
		p.TenantID, db.Millis(res.At), res.ErrCode, res.Message+"\n"+res.Fix)
	if err != nil {
		return TestResult{}, fmt.Errorf("wecom: unable to record the connection test: %w", err)
	}
	return res, nil
}

// markVerified records that WeCom verified the callback URL.
func (s *Service) markVerified(ctx context.Context, tenantID int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE wecom_settings SET verified_at = $2 WHERE tenant_id = $1`, tenantID, db.Millis(s.now()))
	if err != nil {
		return fmt.Errorf("wecom: unable to record the URL verification: %w", err)
	}
	return nil
}
