package message

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Status is where an envelope stands.
type Status string

// Envelope statuses.
const (
	StatusQueued    Status = "queued"    // waiting for its batch to be delivered
	StatusSubmitted Status = "submitted" // the channel accepted it; the outcome comes later (a staff member confirms a mass message)
	StatusSent      Status = "sent"      // the recipient got it
	StatusNotSent   Status = "not_sent"  // accepted but never sent (the staff member did not send; WeCom refused it for the cap)
	StatusFailed    Status = "failed"    // the channel refused it (Reason, ErrorCode)
	StatusSkipped   Status = "skipped"   // not sent by Siyu's own rules (Reason: over_cap, no_relation, …)
	StatusExpired   Status = "expired"   // its deadline passed before it could be delivered
	StatusCancelled Status = "cancelled" // cancelled before it was sent
)

// Reasons recorded with outcomes.
const (
	ReasonOverCap       = "over_cap"        // the customer reached the per-customer cap of the period
	ReasonNoRelation    = "no_relation"     // no current relation with a sending account
	ReasonNotFriend     = "not_friend"      // the recipient is no longer the account's contact
	ReasonNotSent       = "not_sent"        // the staff member did not send it
	ReasonChatStarted   = "chat_started"    // WeCom 41051: the customer already chatted, no welcome message
	ReasonCodeInvalid   = "code_invalid"    // the welcome code was used or expired
	ReasonDeadline      = "deadline"        // NotAfter passed before delivery
	ReasonOutcomeUnknow = "outcome_unknown" // an in-doubt delivery that could not be confirmed either way
	ReasonCancelled     = "cancelled"
)

// Rules are a channel's limits and habits.
type Rules struct {
	MaxRecipients  int           // recipients per delivery (1 for one-to-one channels)
	MaxAttachments int           // attachments per message
	MaxTextBytes   int           // text length in bytes (UTF-8)
	Pacing         time.Duration // default minimum gap between two deliveries of one account
	QuietExempt    bool          // sent during quiet hours (welcome messages: the customer just added)
	Capped         bool          // counted against the per-customer cap (WeCom mass messages)
	PollEvery      time.Duration // how often results are polled; 0: acceptance is the outcome (sent)
	ResultWindow   time.Duration // after this long, recipients still pending are final (not_sent)
}

// Recipient is one envelope of a delivery.
type Recipient struct {
	EnvelopeID int64
	CustomerID int64
	Recipient  string
	Params     map[string]string
	NotAfter   time.Time
}

// Delivery is one batch handed to a channel: one content, one sending
// account, ≤ Rules.MaxRecipients recipients.
type Delivery struct {
	TenantID   int64
	BatchID    int64
	Channel    string
	Account    string
	Content    Content
	Recipients []Recipient
	// SubmitAt is when the batch was marked submitting: Find searches from
	// there. Resumed is set when an earlier attempt's outcome was in doubt.
	SubmitAt time.Time
	Resumed  bool
	// KnownRemoteIDs are the remote ids of this account's other deliveries
	// on the channel around SubmitAt: Find must not take one of them for
	// this delivery.
	KnownRemoteIDs map[string]bool
}

// Accepted is a channel's acceptance of a delivery.
type Accepted struct {
	RemoteID string            // the channel's id of the delivery (WeCom msgid)
	Failed   map[string]string // recipients the channel refused at once → reason
}

// Outcome is one recipient's result.
type Outcome struct {
	Recipient string
	Status    Status // sent, not_sent, failed; submitted while pending
	Reason    string
	At        time.Time
}

// Results are a delivery's outcomes so far.
type Results struct {
	Outcomes []Outcome
	// Final: nothing more will change (every recipient has an outcome).
	Final bool
}

// Channel delivers envelopes. Connectors implement it (internal/connector/…)
// and register it with Service.Register.
type Channel interface {
	Name() string
	Rules() Rules
	// Deliver makes one call. A *DeliveryError says it certainly did not
	// send; any other error leaves the outcome in doubt, and Find decides.
	Deliver(ctx context.Context, d Delivery) (Accepted, error)
	// Find looks for a delivery whose outcome is in doubt (a crash or a lost
	// answer after the batch was marked submitting). found false means it
	// certainly was not accepted, so it may be delivered again.
	Find(ctx context.Context, d Delivery) (remoteID string, found bool, err error)
	// Results reads the outcomes of an accepted delivery (PollEvery > 0).
	Results(ctx context.Context, d Delivery, remoteID string) (Results, error)
}

// Canceller is a channel whose accepted deliveries can be withdrawn.
type Canceller interface {
	Cancel(ctx context.Context, d Delivery, remoteID string) error
}

// Reminder is a channel that can remind the sending account to send.
type Reminder interface {
	Remind(ctx context.Context, d Delivery, remoteID string) error
}

// DeliveryError is a definite refusal: nothing was sent.
type DeliveryError struct {
	Status Status // failed (default) or expired
	Reason string // machine-readable reason recorded on the envelopes
	Code   string // the channel's error code, e.g. "wecom_41051"
	Retry  bool   // transient (rate limit): deliver again later
	Err    error
}

func (e *DeliveryError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return "message: delivery refused: " + e.Reason
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Audiences resolves campaign targets (audience.Service).
type Audiences interface {
	Members(ctx context.Context, tenantID, id int64) (audience.Result, error)
	Evaluate(ctx context.Context, tenantID int64, c audience.Condition) (audience.Result, error)
}

// Workspaces gives a workspace's time zone and records audit entries
// (tenant.Service).
type Workspaces interface {
	Workspace(ctx context.Context, tenantID int64) (tenant.Workspace, error)
	Audit(ctx context.Context, q db.Querier, p tenant.Principal, action, targetKind, targetID, detail string) error
}

// Options configure the Service.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time // default time.Now; tests pass the simulator's clock
	// ChunkSize overrides the recipients per delivery of every channel when
	// smaller (tests use a few to see the split).
	ChunkSize int
	// Tick is how often the dispatcher looks for due work without being
	// woken (default 2 s).
	Tick time.Duration
	// DoubtDelay is how long a batch whose outcome is in doubt waits before
	// it is resolved with Find (default 30 s).
	DoubtDelay time.Duration
}

// Service is the outbox: envelopes, batches, campaigns, the dispatcher.
type Service struct {
	db     *db.DB
	aud    Audiences
	ws     Workspaces
	log    *slog.Logger
	now    func() time.Time
	o      Options
	owner  string
	wake   chan struct{}
	mu     sync.RWMutex
	chans  map[string]Channel
	wsMu   sync.Mutex
	wsLocs map[int64]*time.Location
}

// NewService returns the outbox.
func NewService(d *db.DB, aud Audiences, ws Workspaces, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = 2 * time.Second
	}
	if o.DoubtDelay <= 0 {
		o.DoubtDelay = 30 * time.Second
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &Service{db: d, aud: aud, ws: ws, log: o.Logger, now: o.Now, o: o, owner: hex.EncodeToString(b),
		wake: make(chan struct{}, 1), chans: map[string]Channel{}, wsLocs: map[int64]*time.Location{}}
}

// Register adds a channel; call it while the program is built.
func (s *Service) Register(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chans[c.Name()] = c
}

// Channel returns a registered channel.
func (s *Service) Channel(name string) (Channel, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.chans[name]
	return c, ok
}

func (s *Service) rules(name string) (Rules, bool) {
	c, ok := s.Channel(name)
	if !ok {
		return Rules{}, false
	}
	r := c.Rules()
	if s.o.ChunkSize > 0 && (r.MaxRecipients == 0 || s.o.ChunkSize < r.MaxRecipients) {
		r.MaxRecipients = s.o.ChunkSize
	}
	if r.MaxRecipients <= 0 {
		r.MaxRecipients = 1
	}
	return r, true
}

// Wake makes the dispatcher look for due work now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// location is the workspace's time zone (cached: it rarely changes, and a
// stale zone for a few minutes only shifts a quiet-hour edge).
func (s *Service) location(ctx context.Context, tenantID int64) *time.Location {
	s.wsMu.Lock()
	loc, ok := s.wsLocs[tenantID]
	s.wsMu.Unlock()
	if ok {
		return loc
	}
	loc = time.UTC
	if s.ws != nil {
		if w, err := s.ws.Workspace(ctx, tenantID); err == nil {
			loc = w.Location()
		}
	}
	s.wsMu.Lock()
	s.wsLocs[tenantID] = loc
	s.wsMu.Unlock()
	return loc
}

// checkContent applies a channel's limits to a content.
func checkContent(r Rules, c Content) error {
	if strings.TrimSpace(c.Text) == "" && len(c.Attachments) == 0 {
		return errs.Field("content", "empty", "a message needs text or at least one attachment")
	}
	if r.MaxTextBytes > 0 && len(c.Text) > r.MaxTextBytes {
		return errs.Field("content.text", "too_long", "the text is %d bytes; at most %d bytes are allowed", len(c.Text), r.MaxTextBytes)
	}
	if r.MaxAttachments > 0 && len(c.Attachments) > r.MaxAttachments {
		return errs.Field("content.attachments", "too_many", "%d attachments; at most %d are allowed", len(c.Attachments), r.MaxAttachments)
	}
	for i, a := range c.Attachments {
		f := fmt.Sprintf("content.attachments[%d]", i)
		switch a.Kind {
		case "image":
			if a.ImageURL == "" && a.MediaID == "" {
				return errs.Field(f, "missing_image", "an image needs image_url or media_id")
			}
		case "link":
			if !strings.HasPrefix(a.URL, "http://") && !strings.HasPrefix(a.URL, "https://") || a.Title == "" {
				return errs.Field(f, "invalid_link", "a link needs a title and an http(s) url")
			}
		case "miniprogram":
			if a.AppID == "" || a.Page == "" || a.Title == "" || (a.ImageURL == "" && a.MediaID == "") {
				return errs.Field(f, "invalid_miniprogram", "a mini-program card needs title, appid, page and a cover image")
			}
		case "video", "file":
			if a.MediaID == "" && a.URL == "" {
				return errs.Field(f, "missing_media", "a %s needs media_id or url", a.Kind)
			}
		default:
			return errs.Field(f, "unknown_kind", "attachment kind %q is not one of image, link, miniprogram, video, file", a.Kind)
		}
	}
	return nil
}

// contentID stores a content once and returns its id.
func (s *Service) contentID(ctx context.Context, q db.Querier, tenantID int64, c Content) (int64, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return 0, fmt.Errorf("message: unable to encode content: %w", err)
	}
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	var id int64
	err = q.QueryRowContext(ctx, `SELECT id FROM message_contents WHERE tenant_id = $1 AND hash = $2`, tenantID, h).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("message: unable to read content: %w", err)
	}
	err = q.QueryRowContext(ctx, `INSERT INTO message_contents (tenant_id, hash, body, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id, hash) DO UPDATE SET hash = excluded.hash RETURNING id`, tenantID, h, string(body), db.Millis(s.now())).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("message: unable to store content: %w", err)
	}
	return id, nil
}

func (s *Service) content(ctx context.Context, q db.Querier, tenantID, id int64) (Content, error) {
	var body string
	if err := q.QueryRowContext(ctx, `SELECT body FROM message_contents WHERE tenant_id = $1 AND id = $2`, tenantID, id).Scan(&body); err != nil {
		return Content{}, fmt.Errorf("message: unable to read content %d: %w", id, err)
	}
	var c Content
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return Content{}, fmt.Errorf("message: unable to decode content %d: %w", id, err)
	}
	return c, nil
}

// Enqueue stores an envelope in tx (created false when its Key was already
// enqueued: the existing envelope's id is returned) and wakes the dispatcher
// after tx commits. An envelope of a capped channel whose customer reached
// the cap is stored as skipped (over_cap), not queued.
func (s *Service) Enqueue(ctx context.Context, tx *sql.Tx, e Envelope) (id int64, created bool, err error) {
	if e.TenantID == 0 || e.Key == "" {
		return 0, false, errs.E(errs.Invalid, "envelope_invalid", "an envelope needs a workspace and a key")
	}
	r, ok := s.rules(e.Channel)
	if !ok {
		return 0, false, errs.Field("channel", "unknown_channel", "no channel %q is registered", e.Channel)
	}
	if e.Recipient == "" {
		return 0, false, errs.Field("recipient", "required", "an envelope needs a recipient")
	}
	if err := checkContent(r, e.Content); err != nil {
		return 0, false, err
	}
	err = tx.QueryRowContext(ctx, `SELECT id FROM message_envelopes WHERE tenant_id = $1 AND idem_key = $2`, e.TenantID, e.Key).Scan(&id)
	if err == nil {
		return id, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("message: unable to look up envelope %q: %w", e.Key, err)
	}
	cid, err := s.contentID(ctx, tx, e.TenantID, e.Content)
	if err != nil {
		return 0, false, err
	}
	now := s.now()
	status, reason := StatusQueued, ""
	if r.Capped && e.CustomerID != 0 {
		set, err := s.settings(ctx, tx, e.TenantID)
		if err != nil {
			return 0, false, err
		}
		p := periodOf(set.CapPolicy, now.In(s.location(ctx, e.TenantID)))
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM message_envelopes WHERE tenant_id = $1 AND channel = $2 AND customer_id = $3
			AND cap_at >= $4 AND cap_at < $5 AND status IN ('queued', 'submitted', 'sent')`,
			e.TenantID, e.Channel, e.CustomerID, db.Millis(p.start), db.Millis(p.end)).Scan(&n); err != nil {
			return 0, false, fmt.Errorf("message: unable to count the customer's messages: %w", err)
		}
		if n >= p.limit {
			status, reason = StatusSkipped, ReasonOverCap
		}
	}
	params := ""
	if len(e.Params) > 0 {
		b, _ := json.Marshal(e.Params)
		params = string(b)
	}
	var notAfter int64
	if !e.NotAfter.IsZero() {
		notAfter = db.Millis(e.NotAfter)
	}
	ms := db.Millis(now)
	err = tx.QueryRowContext(ctx, `INSERT INTO message_envelopes (tenant_id, channel, idem_key, customer_id, account, recipient, content_id, params,
		not_after, source, source_id, status, reason, due_at, cap_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $14, $14) RETURNING id`,
		e.TenantID, e.Channel, e.Key, e.CustomerID, e.Account, e.Recipient, cid, params, notAfter, e.Source, e.SourceID,
		string(status), reason, ms).Scan(&id)
	if err != nil {
		return 0, false, fmt.Errorf("message: unable to enqueue %q: %w", e.Key, err)
	}
	if status == StatusQueued {
		s.afterCommit(tx)
	}
	return id, true, nil
}

// afterCommit wakes the dispatcher once tx has committed. database/sql has
// no commit hook, so a short delayed wake (and the dispatcher's tick) cover
// it: a wake before the commit finds nothing and costs one query.
func (s *Service) afterCommit(_ *sql.Tx) {
	s.Wake()
	go func() {
		time.Sleep(50 * time.Millisecond)
		s.Wake()
	}()
}

// EnvelopeRecord is a stored envelope with its outcome.
type EnvelopeRecord struct {
	ID         int64             `json:"id"`
	Key        string            `json:"key"`
	Channel    string            `json:"channel"`
	CustomerID int64             `json:"customer_id,omitempty"`
	Account    string            `json:"account,omitempty"`
	Recipient  string            `json:"recipient"`
	Content    Content           `json:"content"`
	Params     map[string]string `json:"params,omitempty"`
	Source     string            `json:"source,omitempty"`
	SourceID   string            `json:"source_id,omitempty"`
	CampaignID int64             `json:"campaign_id,omitempty"`
	BatchID    int64             `json:"batch_id,omitempty"`
	Status     Status            `json:"status" enum:"queued,submitted,sent,not_sent,failed,skipped,expired,cancelled"`
	Reason     string            `json:"reason,omitempty"`
	ErrorCode  string            `json:"error_code,omitempty"`
	NotAfter   time.Time         `json:"not_after,omitzero"`
	DueAt      time.Time         `json:"due_at,omitzero"`
	SentAt     time.Time         `json:"sent_at,omitzero"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

const envelopeCols = `id, idem_key, channel, customer_id, account, recipient, content_id, params, source, source_id, campaign_id, batch_id,
	status, reason, error_code, not_after, due_at, sent_at, created_at, updated_at`

func (s *Service) readEnvelope(ctx context.Context, tenantID int64, where string, arg any) (EnvelopeRecord, error) {
	var e EnvelopeRecord
	var cid, notAfter, due, sent, created, updated int64
	var params, status string
	err := s.db.QueryRowContext(ctx, `SELECT `+envelopeCols+` FROM message_envelopes WHERE tenant_id = $1 AND `+where, tenantID, arg).Scan(
		&e.ID, &e.Key, &e.Channel, &e.CustomerID, &e.Account, &e.Recipient, &cid, &params, &e.Source, &e.SourceID, &e.CampaignID, &e.BatchID,
		&status, &e.Reason, &e.ErrorCode, &notAfter, &due, &sent, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return EnvelopeRecord{}, errs.NotFoundf("envelope", "no such message envelope")
	}
	if err != nil {
		return EnvelopeRecord{}, fmt.Errorf("message: unable to read envelope: %w", err)
	}
	e.Status = Status(status)
	if params != "" {
		_ = json.Unmarshal([]byte(params), &e.Params)
	}
	if notAfter > 0 {
		e.NotAfter = db.FromMillis(notAfter)
	}
	if sent > 0 {
		e.SentAt = db.FromMillis(sent)
	}
	e.DueAt, e.CreatedAt, e.UpdatedAt = db.FromMillis(due), db.FromMillis(created), db.FromMillis(updated)
	e.Content, err = s.content(ctx, s.db, tenantID, cid)
	return e, err
}

// Envelope returns an envelope by id.
func (s *Service) Envelope(ctx context.Context, tenantID, id int64) (EnvelopeRecord, error) {
	return s.readEnvelope(ctx, tenantID, `id = $2`, id)
}

// EnvelopeByKey returns an envelope by its idempotency key.
func (s *Service) EnvelopeByKey(ctx context.Context, tenantID int64, key string) (EnvelopeRecord, error) {
	return s.readEnvelope(ctx, tenantID, `idem_key = $2`, key)
}
