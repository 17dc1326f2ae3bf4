// Package wecom connects Siyu to WeCom (企业微信): the API client, callback
// crypto, the durable callback inbox and the sync of staff, customers, tags and
// customer groups.
//
// The API client in this file is our own, not github.com/silenceper/wechat/v2
// (DESIGN.md's default). Its work/externalcontact package falls short where the
// connector needs it most:
//   - every URL is a package constant ("https://qyapi.weixin.qq.com/cgi-bin/…"),
//     so it cannot be pointed at the simulator or a proxy;
//   - most calls take no context.Context and go through a package-level HTTP
//     helper, so a sync cannot be cancelled or given its own transport;
//   - batch/get_by_user sends limit with omitempty and its answer drops
//     next_cursor and state, so a full sync silently stops at 50 contacts;
//   - errors are formatted strings: no errcode to branch on, no retry after
//     40014/42001, no back-off on 45009/45033, no rate limiter.
//
// Wrapping it would have meant replacing all of that, so this is a small
// client over net/http with the token cache, limiter and retry rules the
// connector relies on, and request/response types that follow WeCom's JSON.
package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/siyu-dev/siyu/internal/errs"
)

// DefaultBaseURL (WeCom's API host) is declared in service.go.

// Page size maxima. Callers always send a limit: batch/get_by_user
// defaults to 50 when it is left out, which looks like a complete answer.
const (
	MaxContactsPerPage  = 100   // batch/get_by_user
	MaxUsersPerBatch    = 100   // batch/get_by_user userid_list
	MaxGroupChatsPage   = 1000  // groupchat/list
	MaxUserIDsPerPage   = 10000 // user/list_id
	maxResponseBytes    = 64 << 20
	tokenFetchTimeout   = 2 * time.Minute
	maxTransientRetries = 3
)

// Limits are call budgets per API and corp. WeCom documents 10,000 calls a
// minute and 150,000 an hour for each API of a corp (主动调用频率限制, 10785).
type Limits struct {
	PerMinute int // 0: 10,000
	PerHour   int // 0: 150,000
}

// Config configures a Client for one corp and one app secret.
type Config struct {
	BaseURL    string       // default DefaultBaseURL; the simulator's URL in tests and the demo
	CorpID     string       // 企业ID
	Secret     string       // the self-built app's secret
	HTTPClient *http.Client // default: a client with a 30 s timeout

	// Limits sets the per-API budgets of a Limiter the client creates;
	// Limiter, when set, is used instead, so clients of one corp can share one.
	Limits  Limits
	Limiter *Limiter

	MaxRetries int           // retries after 45009/45033; default 6
	RetryBase  time.Duration // first back-off; default 2 s, doubled each retry
	RetryMax   time.Duration // longest back-off; default 1 min (WeCom blocks for the limit's window)

	// Now and Sleep default to the wall clock; tests pass the simulator's
	// clock so token expiry, limits and back-off run on simulated time.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	Logger *slog.Logger
}

// Client calls WeCom's server APIs for one corp. It is safe for concurrent use;
// keep one per corp and secret so the token and the limits are shared.
type Client struct {
	base       string
	corpID     string
	secret     string
	http       *http.Client
	limiter    *Limiter
	maxRetries int
	retryBase  time.Duration
	retryMax   time.Duration
	now        func() time.Time
	sleep      func(ctx context.Context, d time.Duration) error
	log        *slog.Logger

	tokMu     sync.Mutex
	token     string
	refreshAt time.Time
	fetching  *tokenFetch
}

// tokenFetch is one gettoken in flight; concurrent callers wait for it.
type tokenFetch struct {
	done  chan struct{}
	token string
	err   error
}

// New returns a client for the corp in cfg.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.CorpID) == "" {
		return nil, errs.Field("corp_id", "required", "the WeCom corp ID is required")
	}
	if strings.TrimSpace(cfg.Secret) == "" {
		return nil, errs.Field("secret", "required", "the app secret is required")
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	if _, err := url.Parse(base); err != nil {
		return nil, errs.Field("base_url", "invalid", "the WeCom API base URL is not a URL")
	}
	c := &Client{
		base:       base,
		corpID:     cfg.CorpID,
		secret:     cfg.Secret,
		http:       cfg.HTTPClient,
		limiter:    cfg.Limiter,
		maxRetries: cfg.MaxRetries,
		retryBase:  cfg.RetryBase,
		retryMax:   cfg.RetryMax,
		now:        cfg.Now,
		sleep:      cfg.Sleep,
		log:        cfg.Logger,
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.limiter == nil {
		c.limiter = NewLimiter(cfg.Limits)
	}
	if c.maxRetries <= 0 {
		c.maxRetries = 6
	}
	if c.retryBase <= 0 {
		c.retryBase = 2 * time.Second
	}
	if c.retryMax <= 0 {
		c.retryMax = time.Minute
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
}

// CorpID returns the corp the client calls for.
func (c *Client) CorpID() string { return c.corpID }

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AccessToken returns a valid access token, fetching one when there is none or
// the cached one is close to expiry. Concurrent callers share one gettoken.
func (c *Client) AccessToken(ctx context.Context) (string, error) {
	c.tokMu.Lock()
	if c.token != "" && c.now().Before(c.refreshAt) {
		t := c.token
		c.tokMu.Unlock()
		return t, nil
	}
	f := c.fetching
	if f == nil {
		f = &tokenFetch{done: make(chan struct{})}
		c.fetching = f
		// The fetch outlives the caller that started it: others wait for it too.
		go c.fetchToken(context.WithoutCancel(ctx), f)
	}
	c.tokMu.Unlock()
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("wecom: unable to get an access token: %w", ctx.Err())
	}
}

func (c *Client) fetchToken(ctx context.Context, f *tokenFetch) {
	ctx, cancel := context.WithTimeout(ctx, tokenFetchTimeout)
	defer cancel()
	tok, err := c.GetToken(ctx)
	c.tokMu.Lock()
	if err == nil {
		life := time.Duration(tok.ExpiresIn) * time.Second
		if life <= 0 {
			life = 2 * time.Hour
		}
		// Refresh a tenth of the lifetime early (at most 5 minutes) so a call
		// never starts with a token about to expire in flight. While a token
		// is valid WeCom hands the same one back with its remaining lifetime:
		// then keep it to the end instead of asking again and again.
		early := min(life/10, 5*time.Minute)
		if tok.AccessToken == c.token {
			early = 0
		}
		c.token, c.refreshAt = tok.AccessToken, c.now().Add(life-early)
	}
	c.fetching = nil
	c.tokMu.Unlock()
	f.token, f.err = tok.AccessToken, err
	close(f.done)
}

// invalidate forgets token unless another caller has replaced it already.
func (c *Client) invalidate(token string) {
	c.tokMu.Lock()
	if c.token == token {
		c.token = ""
	}
	c.tokMu.Unlock()
}

// endpoint describes one WeCom API.
type endpoint struct {
	path    string // after /cgi-bin/
	post    bool
	safe    bool // may be sent again when the outcome is unknown: reads and idempotent writes
	noToken bool // gettoken itself
}

// transientError is a failure where the request may not have reached WeCom or
// WeCom failed without an answer: network errors, 5xx, unreadable bodies.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// call sends one API request and decodes a successful answer into out.
//
// Retry rules: an invalid or expired token (40014, 42001, 40001) is dropped and
// the call repeated once with a fresh one; 45009/45033 are retried after a
// jittered exponential back-off (WeCom rejected the call, so this is safe for
// writes too); network failures and -1 are retried only for safe endpoints, so
// nothing that sends a message or moves a customer is ever sent twice.
func (c *Client) call(ctx context.Context, ep endpoint, query url.Values, body any, out answer) error {
	if out == nil {
		out = &respHeader{}
	}
	tokenRetried := false
	rateTries, transientTries := 0, 0
	for {
		var tok string
		if !ep.noToken {
			t, err := c.AccessToken(ctx)
			if err != nil {
				return err
			}
			tok = t
		}
		if err := c.limiter.wait(ctx, ep.path, c.now, c.sleep); err != nil {
			return fmt.Errorf("wecom: %s: waiting for the rate limiter: %w", ep.path, err)
		}
		code, msg, err := c.roundTrip(ctx, ep, tok, query, body, out)
		if err != nil {
			var te *transientError
			if ctx.Err() == nil && ep.safe && errors.As(err, &te) && transientTries < maxTransientRetries {
				c.log.Debug("wecom: retrying after a transient error", "api", ep.path, "err", err)
				if err := c.backoff(ctx, transientTries); err != nil {
					return fmt.Errorf("wecom: %s: %w", ep.path, err)
				}
				transientTries++
				continue
			}
			return err
		}
		switch {
		case code == 0:
			return nil
		case !ep.noToken && isTokenCode(code) && !tokenRetried:
			tokenRetried = true
			c.invalidate(tok)
			continue
		case isRateCode(code) && rateTries < c.maxRetries:
			c.log.Info("wecom: rate limited, backing off", "api", ep.path, "errcode", code, "retry", rateTries+1)
			if err := c.backoff(ctx, rateTries); err != nil {
				return fmt.Errorf("wecom: %s: %w", ep.path, err)
			}
			rateTries++
			continue
		case code == CodeBusy && ep.safe && transientTries < maxTransientRetries:
			if err := c.backoff(ctx, transientTries); err != nil {
				return fmt.Errorf("wecom: %s: %w", ep.path, err)
			}
			transientTries++
			continue
		}
		return &APIError{Code: code, Msg: msg, API: ep.path}
	}
}

// backoff sleeps RetryBase·2^attempt (at most RetryMax), jittered to between
// half and all of it so many workers do not retry in step.
func (c *Client) backoff(ctx context.Context, attempt int) error {
	d := c.retryMax
	if attempt < 30 {
		d = min(c.retryBase<<attempt, c.retryMax)
	}
	d = d/2 + rand.N(d/2+1)
	return c.sleep(ctx, d)
}

// answer is a response type: it embeds respHeader, so one decode reads both
// the errcode and the payload.
type answer interface{ header() *respHeader }

func (h *respHeader) header() *respHeader { return h }

func (c *Client) roundTrip(ctx context.Context, ep endpoint, tok string, query url.Values, body any, out answer) (int, string, error) {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	if tok != "" {
		q.Set("access_token", tok)
	}
	u := c.base + "/cgi-bin/" + ep.path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	method := http.MethodGet
	var rd io.Reader
	if ep.post {
		method = http.MethodPost
		b, err := json.Marshal(body)
		if err != nil {
			return 0, "", fmt.Errorf("wecom: %s: unable to encode the request: %w", ep.path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, "", fmt.Errorf("wecom: %s: unable to build the request: %w", ep.path, err)
	}
	if ep.post {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error quotes the URL, which holds the token or the secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, "", &transientError{fmt.Errorf("wecom: %s %s: %w", method, ep.path, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return 0, "", &transientError{fmt.Errorf("wecom: %s: unable to read the answer: %w", ep.path, err)}
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("wecom: %s: HTTP %d", ep.path, resp.StatusCode)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return 0, "", &transientError{err}
		}
		return 0, "", err
	}
	h := out.header()
	*h = respHeader{} // a retry must not see the last attempt's errcode
	if err := json.Unmarshal(data, out); err != nil {
		return 0, "", &transientError{fmt.Errorf("wecom: %s: unable to decode the answer: %w", ep.path, err)}
	}
	return h.ErrCode, h.ErrMsg, nil
}

// Limiter holds token buckets per API for one corp.
type Limiter struct {
	limits Limits
	mu     sync.Mutex
	apis   map[string]*apiLimiter
}

type apiLimiter struct{ minute, hour *rate.Limiter }

// NewLimiter returns a limiter enforcing l for every API.
func NewLimiter(l Limits) *Limiter {
	if l.PerMinute <= 0 {
		l.PerMinute = 10000
	}
	if l.PerHour <= 0 {
		l.PerHour = 150000
	}
	return &Limiter{limits: l, apis: map[string]*apiLimiter{}}
}

// bucket returns a token bucket that never allows more than n calls in any
// window: burst b plus refill over the window add up to n.
func bucket(n int, window time.Duration) *rate.Limiter {
	b := max(n/10, 1)
	return rate.NewLimiter(rate.Limit(float64(n-b)/window.Seconds()), b)
}

func (l *Limiter) wait(ctx context.Context, api string, now func() time.Time, sleep func(context.Context, time.Duration) error) error {
	l.mu.Lock()
	a := l.apis[api]
	if a == nil {
		a = &apiLimiter{minute: bucket(l.limits.PerMinute, time.Minute), hour: bucket(l.limits.PerHour, time.Hour)}
		l.apis[api] = a
	}
	l.mu.Unlock()
	t := now()
	rm, rh := a.minute.ReserveN(t, 1), a.hour.ReserveN(t, 1)
	d := max(rm.DelayFrom(t), rh.DelayFrom(t))
	if d <= 0 {
		return nil
	}
	if err := sleep(ctx, d); err != nil {
		rm.CancelAt(now())
		rh.CancelAt(now())
		return err
	}
	return nil
}

// GetToken fetches a new access token (gettoken). It bypasses the cache: the
// console's connection test uses it to see WeCom's answer for these settings.
func (c *Client) GetToken(ctx context.Context) (Token, error) {
	var out struct {
		respHeader
		Token
	}
	q := url.Values{"corpid": {c.corpID}, "corpsecret": {c.secret}}
	err := c.call(ctx, endpoint{path: "gettoken", safe: true, noToken: true}, q, nil, &out)
	if err == nil && out.AccessToken == "" {
		err = fmt.Errorf("wecom: gettoken: the answer has no access_token")
	}
	return out.Token, err
}

// DepartmentList lists department id and its sub-departments; id 0 lists
// every department the app can see (department/list).
func (c *Client) DepartmentList(ctx context.Context, id int64) ([]Department, error) {
	q := url.Values{}
	if id > 0 {
		q.Set("id", strconv.FormatInt(id, 10))
	}
	var out struct {
		respHeader
		Department []Department `json:"department"`
	}
	err := c.call(ctx, endpoint{path: "department/list", safe: true}, q, nil, &out)
	return out.Department, err
}

// UserList lists the members of a department in detail, with its
// sub-departments' members when fetchChild (user/list).
func (c *Client) UserList(ctx context.Context, departmentID int64, fetchChild bool) ([]User, error) {
	q := url.Values{"department_id": {strconv.FormatInt(departmentID, 10)}}
	if fetchChild {
		q.Set("fetch_child", "1")
	}
	var out struct {
		respHeader
		UserList []User `json:"userlist"`
	}
	err := c.call(ctx, endpoint{path: "user/list", safe: true}, q, nil, &out)
	return out.UserList, err
}

// UserListID lists member IDs with their departments, a page at a time
// (user/list_id); limit ≤ 10,000, 0 means the maximum.
func (c *Client) UserListID(ctx context.Context, cursor string, limit int) (UserIDPage, error) {
	if limit <= 0 || limit > MaxUserIDsPerPage {
		limit = MaxUserIDsPerPage
	}
	body := struct {
		Cursor string `json:"cursor,omitempty"`
		Limit  int    `json:"limit"`
	}{cursor, limit}
	var out struct {
		respHeader
		UserIDPage
	}
	err := c.call(ctx, endpoint{path: "user/list_id", post: true, safe: true}, nil, body, &out)
	return out.UserIDPage, err
}

// GetUser reads one member (user/get).
func (c *Client) GetUser(ctx context.Context, userID string) (User, error) {
	var out struct {
		respHeader
		User
	}
	err := c.call(ctx, endpoint{path: "user/get", safe: true}, url.Values{"userid": {userID}}, nil, &out)
	return out.User, err
}

// FollowUserList lists the members with the customer-contact feature
// (externalcontact/get_follow_user_list).
func (c *Client) FollowUserList(ctx context.Context) ([]string, error) {
	var out struct {
		respHeader
		FollowUser []string `json:"follow_user"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/get_follow_user_list", safe: true}, nil, nil, &out)
	return out.FollowUser, err
}

// ExternalContactList lists the external_userids of a member's customers
// (externalcontact/list). A member without customers is an empty list: WeCom
// answers that case with 84061.
func (c *Client) ExternalContactList(ctx context.Context, userID string) ([]string, error) {
	var out struct {
		respHeader
		ExternalUserID []string `json:"external_userid"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/list", safe: true}, url.Values{"userid": {userID}}, nil, &out)
	if IsCode(err, CodeNotExternalContact) {
		return nil, nil
	}
	return out.ExternalUserID, err
}

// GetExternalContact reads a customer and the members who follow them
// (externalcontact/get); follow_user is paged with cursor when over 500.
func (c *Client) GetExternalContact(ctx context.Context, externalUserID, cursor string) (ContactDetail, error) {
	q := url.Values{"external_userid": {externalUserID}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var out struct {
		respHeader
		ContactDetail
	}
	err := c.call(ctx, endpoint{path: "externalcontact/get", safe: true}, q, nil, &out)
	return out.ContactDetail, err
}

// BatchGetByUser reads the customers of up to 100 members, one (customer,
// member) pair per entry, a page at a time (externalcontact/batch/get_by_user).
// limit is always sent: 0 or more than 100 means 100.
func (c *Client) BatchGetByUser(ctx context.Context, userIDs []string, cursor string, limit int) (ContactPage, error) {
	if len(userIDs) == 0 || len(userIDs) > MaxUsersPerBatch {
		return ContactPage{}, errs.Field("userid_list", "invalid", "batch/get_by_user takes 1 to %d members, not %d", MaxUsersPerBatch, len(userIDs))
	}
	if limit <= 0 || limit > MaxContactsPerPage {
		limit = MaxContactsPerPage
	}
	body := struct {
		UserIDList []string `json:"userid_list"`
		Cursor     string   `json:"cursor,omitempty"`
		Limit      int      `json:"limit"`
	}{userIDs, cursor, limit}
	var out struct {
		respHeader
		ContactPage
	}
	err := c.call(ctx, endpoint{path: "externalcontact/batch/get_by_user", post: true, safe: true}, nil, body, &out)
	return out.ContactPage, err
}

// Remark changes a member's remark, description and remark mobiles for a
// customer (externalcontact/remark).
func (c *Client) Remark(ctx context.Context, r RemarkRequest) error {
	return c.call(ctx, endpoint{path: "externalcontact/remark", post: true, safe: true}, nil, r, nil)
}

// GetCorpTagList reads corp tag groups and tags, all of them when both
// filters are empty (externalcontact/get_corp_tag_list).
func (c *Client) GetCorpTagList(ctx context.Context, tagIDs, groupIDs []string) ([]CorpTagGroup, error) {
	body := struct {
		TagID   []string `json:"tag_id,omitempty"`
		GroupID []string `json:"group_id,omitempty"`
	}{tagIDs, groupIDs}
	var out struct {
		respHeader
		TagGroup []CorpTagGroup `json:"tag_group"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/get_corp_tag_list", post: true, safe: true}, nil, body, &out)
	return out.TagGroup, err
}

// AddCorpTag creates corp tags, and their group when named by GroupName and
// new (externalcontact/add_corp_tag). It returns the group with the new tags.
func (c *Client) AddCorpTag(ctx context.Context, r AddCorpTagRequest) (CorpTagGroup, error) {
	var out struct {
		respHeader
		TagGroup CorpTagGroup `json:"tag_group"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/add_corp_tag", post: true}, nil, r, &out)
	return out.TagGroup, err
}

// EditCorpTag renames or reorders a corp tag or tag group (externalcontact/edit_corp_tag).
func (c *Client) EditCorpTag(ctx context.Context, r EditCorpTagRequest) error {
	return c.call(ctx, endpoint{path: "externalcontact/edit_corp_tag", post: true, safe: true}, nil, r, nil)
}

// DelCorpTag deletes corp tags and tag groups (externalcontact/del_corp_tag);
// a group goes with its last tag.
func (c *Client) DelCorpTag(ctx context.Context, tagIDs, groupIDs []string) error {
	body := struct {
		TagID   []string `json:"tag_id,omitempty"`
		GroupID []string `json:"group_id,omitempty"`
	}{tagIDs, groupIDs}
	return c.call(ctx, endpoint{path: "externalcontact/del_corp_tag", post: true}, nil, body, nil)
}

// MarkTag adds and removes corp tags on a customer as given by one member
// (externalcontact/mark_tag).
func (c *Client) MarkTag(ctx context.Context, userID, externalUserID string, add, remove []string) error {
	body := struct {
		UserID         string   `json:"userid"`
		ExternalUserID string   `json:"external_userid"`
		AddTag         []string `json:"add_tag,omitempty"`
		RemoveTag      []string `json:"remove_tag,omitempty"`
	}{userID, externalUserID, add, remove}
	return c.call(ctx, endpoint{path: "externalcontact/mark_tag", post: true, safe: true}, nil, body, nil)
}

// GroupChatList lists customer groups, a page at a time
// (externalcontact/groupchat/list); limit 0 or over 1,000 means 1,000.
func (c *Client) GroupChatList(ctx context.Context, f GroupChatFilter, cursor string, limit int) (GroupChatPage, error) {
	if limit <= 0 || limit > MaxGroupChatsPage {
		limit = MaxGroupChatsPage
	}
	type ownerFilter struct {
		UserIDList []string `json:"userid_list"`
	}
	body := struct {
		StatusFilter int          `json:"status_filter"`
		OwnerFilter  *ownerFilter `json:"owner_filter,omitempty"`
		Cursor       string       `json:"cursor,omitempty"`
		Limit        int          `json:"limit"`
	}{StatusFilter: f.StatusFilter, Cursor: cursor, Limit: limit}
	if len(f.OwnerUserIDs) > 0 {
		body.OwnerFilter = &ownerFilter{f.OwnerUserIDs}
	}
	var out struct {
		respHeader
		GroupChatPage
	}
	err := c.call(ctx, endpoint{path: "externalcontact/groupchat/list", post: true, safe: true}, nil, body, &out)
	return out.GroupChatPage, err
}

// GroupChatGet reads a customer group with its members
// (externalcontact/groupchat/get); needName adds member names.
func (c *Client) GroupChatGet(ctx context.Context, chatID string, needName bool) (GroupChat, error) {
	body := struct {
		ChatID   string `json:"chat_id"`
		NeedName int    `json:"need_name"`
	}{ChatID: chatID}
	if needName {
		body.NeedName = 1
	}
	var out struct {
		respHeader
		GroupChat GroupChat `json:"group_chat"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/groupchat/get", post: true, safe: true}, nil, body, &out)
	return out.GroupChat, err
}

// AddContactWay creates a 联系我 configuration, the channel code
// (externalcontact/add_contact_way). Not retried on network errors: a retry
// could create a second code.
func (c *Client) AddContactWay(ctx context.Context, w ContactWay) (ContactWayCreated, error) {
	if n := len([]rune(w.State)); n > 30 {
		return ContactWayCreated{}, errs.Field("state", "too_long", "a channel code's state is at most 30 characters, not %d", n)
	}
	w.ConfigID, w.QRCode = "", ""
	var out struct {
		respHeader
		ContactWayCreated
	}
	err := c.call(ctx, endpoint{path: "externalcontact/add_contact_way", post: true}, nil, w, &out)
	return out.ContactWayCreated, err
}

// GetContactWay reads a 联系我 configuration (externalcontact/get_contact_way).
func (c *Client) GetContactWay(ctx context.Context, configID string) (ContactWay, error) {
	body := struct {
		ConfigID string `json:"config_id"`
	}{configID}
	var out struct {
		respHeader
		ContactWay ContactWay `json:"contact_way"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/get_contact_way", post: true, safe: true}, nil, body, &out)
	return out.ContactWay, err
}

// DelContactWay deletes a 联系我 configuration (externalcontact/del_contact_way).
func (c *Client) DelContactWay(ctx context.Context, configID string) error {
	body := struct {
		ConfigID string `json:"config_id"`
	}{configID}
	return c.call(ctx, endpoint{path: "externalcontact/del_contact_way", post: true}, nil, body, nil)
}

// SendWelcomeMsg sends the welcome message for a new contact with the
// WelcomeCode of its add_external_contact callback, within 20 seconds
// (externalcontact/send_welcome_msg). Never retried on network errors.
func (c *Client) SendWelcomeMsg(ctx context.Context, m WelcomeMessage) error {
	if m.WelcomeCode == "" {
		return errs.Field("welcome_code", "required", "a welcome message needs the welcome code of the add")
	}
	if len(m.Attachments) > 9 {
		return errs.Field("attachments", "too_many", "a welcome message has at most 9 attachments, not %d", len(m.Attachments))
	}
	return c.call(ctx, endpoint{path: "externalcontact/send_welcome_msg", post: true}, nil, m, nil)
}
