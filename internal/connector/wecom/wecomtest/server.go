// Package wecomtest is a WeCom (企业微信) simulator: an HTTP server that speaks
// the server APIs Siyu calls, with WeCom's JSON shapes, error codes, token
// expiry, rate limits and cursors, over an in-memory corp; and a callback
// sender that signs and encrypts events the way WeCom does, with its retries,
// and on demand duplicates, reorders or drops them.
//
// Every connector test runs against it, and `siyu demo` runs one in-process so
// the demo brand has a live corp. Time is simulated: tests move it with
// Advance, and pass Corp.Now and Corp.Sleep to the API client so token expiry,
// rate-limit windows and back-off all run on the same clock.
//
// Changes made through the API (tags, remarks, marks) fire no callback to the
// calling app, as in WeCom; changes made through the Server's event methods
// (a customer adds a member, joins a group, an admin edits tags…) do.
package wecomtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
)

// Defaults of a simulated corp's app.
const (
	DefaultSecret  = "SimulatedAppSecret-0123456789abcdefghijklmno"
	DefaultToken   = "SiyuSimToken"
	DefaultAgentID = 1000002
)

// DefaultEncodingAESKey is the simulated app's callback EncodingAESKey (43
// characters, as WeCom's admin generates).
var DefaultEncodingAESKey = func() string {
	sum := sha256.Sum256([]byte("siyu wecomtest EncodingAESKey"))
	return base64.StdEncoding.EncodeToString(sum[:])[:43]
}()

// Options configure a Server; zero values mean the defaults.
type Options struct {
	// Corp is the corp to serve; nil: a new empty corp from CorpOptions.
	Corp        *Corp
	CorpOptions CorpOptions

	Secret         string // the app secret gettoken accepts; default DefaultSecret
	AgentID        int64  // default DefaultAgentID
	Token          string // callback Token; default DefaultToken
	EncodingAESKey string // callback key; default DefaultEncodingAESKey

	TokenLifetime time.Duration // access token lifetime; default 2 h
	Limits        wecom.Limits  // per API and minute/hour; default WeCom's 10,000 and 150,000

	CallbackURL        string        // where callbacks go; "" keeps them only in Callbacks()
	CallbackFormat     wecom.Format  // XML (default) or JSON, as chosen in WeCom's admin
	CallbackTimeout    time.Duration // how long WeCom waits for an answer; default 5 s
	CallbackRetries    int           // retries after a failure or timeout; default 3, -1 for none
	CallbackRetryDelay time.Duration // pause before a retry; default none
	HTTPClient         *http.Client  // for callbacks; default a plain client

	Logger *slog.Logger
}

// Server is a running simulator. It embeds its Corp, so corp state and the
// clock are reachable directly (s.Now(), s.Advance(d), s.Contacts()).
type Server struct {
	*Corp
	ts  *httptest.Server
	o   Options
	log *slog.Logger

	crypt *wecom.Crypt
	http  *http.Client

	mu          sync.Mutex
	secret      string
	tokens      map[string]time.Time // token → expiry
	current     string
	untrusted   bool
	limits      map[string]wecom.Limits
	windows     map[string]*window
	faults      []*fault
	forbidden   map[string]bool
	calls       []Call
	welcomeMsgs []WelcomeSent

	cbMu       sync.Mutex
	cbURL      string
	callbacks  []Callback
	deliveries []Delivery
	holding    bool
	held       []Callback
}

// Call is one API request the simulator received.
type Call struct {
	API     string // path after /cgi-bin/, e.g. "externalcontact/batch/get_by_user"
	Method  string
	At      time.Time // simulated time
	ErrCode int
	Limit   int    // the request's limit, when it had one
	Cursor  string // the request's cursor, when it had one
	Body    []byte // the request body (POST)
}

// WelcomeSent is a welcome message the simulator accepted.
type WelcomeSent struct {
	UserID         string
	ExternalUserID string
	Message        wecom.WelcomeMessage
	At             time.Time
}

type window struct {
	minute, hour           time.Time
	minuteCount, hourCount int
}

type fault struct {
	api    string // "" for any
	code   int    // errcode to answer
	status int    // HTTP status to answer instead; -1 closes the connection
	times  int
}

// New starts a simulator. Close it when done.
func New(o Options) *Server {
	if o.Corp == nil {
		o.Corp = NewCorp(o.CorpOptions)
	}
	if o.Secret == "" {
		o.Secret = DefaultSecret
	}
	if o.AgentID == 0 {
		o.AgentID = DefaultAgentID
	}
	if o.Token == "" {
		o.Token = DefaultToken
	}
	if o.EncodingAESKey == "" {
		o.EncodingAESKey = DefaultEncodingAESKey
	}
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = 2 * time.Hour
	}
	if o.Limits.PerMinute <= 0 {
		o.Limits.PerMinute = 10000
	}
	if o.Limits.PerHour <= 0 {
		o.Limits.PerHour = 150000
	}
	if o.CallbackFormat == "" {
		o.CallbackFormat = wecom.FormatXML
	}
	if o.CallbackTimeout <= 0 {
		o.CallbackTimeout = 5 * time.Second
	}
	if o.CallbackRetries == 0 {
		o.CallbackRetries = 3
	} else if o.CallbackRetries < 0 {
		o.CallbackRetries = 0
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	crypt, err := wecom.NewCrypt(o.Token, o.EncodingAESKey, o.Corp.ID())
	if err != nil {
		panic(fmt.Sprintf("wecomtest: bad callback Token or EncodingAESKey: %v", err))
	}
	s := &Server{
		Corp: o.Corp, o: o, log: o.Logger, crypt: crypt, http: o.HTTPClient,
		secret: o.Secret, tokens: map[string]time.Time{}, limits: map[string]wecom.Limits{},
		windows: map[string]*window{}, forbidden: map[string]bool{}, cbURL: o.CallbackURL,
	}
	if s.http == nil {
		s.http = &http.Client{}
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL returns the API base URL to configure as the client's BaseURL.
func (s *Server) URL() string { return s.ts.URL }

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// CorpID returns the corp ID.
func (s *Server) CorpID() string { return s.Corp.ID() }

// Secret returns the app secret gettoken currently accepts.
func (s *Server) Secret() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secret
}

// AgentID returns the app's agent ID.
func (s *Server) AgentID() int64 { return s.o.AgentID }

// CallbackToken returns the callback Token.
func (s *Server) CallbackToken() string { return s.o.Token }

// EncodingAESKey returns the callback EncodingAESKey.
func (s *Server) EncodingAESKey() string { return s.o.EncodingAESKey }

// SetSecret resets the app secret, as an admin does in WeCom: the old secret
// fails with 40001 and every issued token with 40014.
func (s *Server) SetSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secret = secret
	s.revokeLocked()
}

// RevokeTokens invalidates every issued access token before its expiry, as
// WeCom may do; calls with one fail with 40014.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLocked()
}

func (s *Server) revokeLocked() {
	clear(s.tokens)
	s.current = ""
}

// SetTrustedIP sets whether the caller's IP is in the app's trusted IP list
// (企业可信IP); when it is not, every API answers 60020.
func (s *Server) SetTrustedIP(trusted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.untrusted = !trusted
}

// SetForbidden makes an API answer 48002 (the app may not call it), or lifts that.
func (s *Server) SetForbidden(api string, forbidden bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden[api] = forbidden
}

// SetLimits sets the rate limits of one API ("" for the default of all).
func (s *Server) SetLimits(api string, l wecom.Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if api == "" {
		s.o.Limits = l
		return
	}
	s.limits[api] = l
}

// FailNext makes the next n calls of api ("" for any API) answer errcode
// code, before any other check: 45009, 45033, -1, 48002, 701008…
func (s *Server) FailNext(api string, code, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{api: api, code: code, times: n})
}

// FailNextHTTP makes the next n calls of api answer with an HTTP status
// instead of JSON, without doing anything; with status -1 the request is
// processed and then the connection dropped without an answer, so the caller
// cannot know whether it took effect.
func (s *Server) FailNextHTTP(api string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{api: api, status: status, times: n})
}

// Calls returns the API requests received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallCount returns how many requests an API received (failed ones included).
func (s *Server) CallCount(api string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.API == api {
			n++
		}
	}
	return n
}

// MaxLimit returns the largest limit an API was asked for.
func (s *Server) MaxLimit(api string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.API == api && c.Limit > n {
			n = c.Limit
		}
	}
	return n
}

// ResetCalls forgets the recorded requests.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// WelcomeMessages returns the welcome messages accepted so far.
func (s *Server) WelcomeMessages() []WelcomeSent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]WelcomeSent(nil), s.welcomeMsgs...)
}

// apiError is an errcode answer.
type apiError struct {
	code int
	msg  string
}

func fail(code int, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// request is one decoded API request.
type request struct {
	r    *http.Request
	body []byte
	call *Call
}

func (q *request) query(name string) string { return q.r.URL.Query().Get(name) }

// decode reads the JSON body into v.
func (q *request) decode(v any) *apiError {
	if len(strings.TrimSpace(string(q.body))) == 0 {
		return fail(40058, "invalid parameter: empty body")
	}
	if err := json.Unmarshal(q.body, v); err != nil {
		return fail(40058, "invalid parameter: Warning: wrong json format. %v", err)
	}
	return nil
}

type handler struct {
	post bool
	fn   func(s *Server, q *request) (map[string]any, *apiError)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if id, ok := strings.CutPrefix(r.URL.Path, "/sim/qr/"); ok {
		serveQR(w, strings.TrimSuffix(id, ".png"))
		return
	}
	api, ok := strings.CutPrefix(r.URL.Path, "/cgi-bin/")
	h, known := handlers[api]
	if !ok || !known {
		writeJSON(w, http.StatusNotFound, map[string]any{"errcode": 404, "errmsg": "api not found: " + r.URL.Path})
		return
	}
	var body []byte
	if r.Method == http.MethodPost {
		b, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			http.Error(w, "unable to read the body", http.StatusBadRequest)
			return
		}
		body = b
	}
	call := &Call{API: api, Method: r.Method, At: s.Now(), Body: body}
	q := &request{r: r, body: body, call: call}
	resp, apiErr, status := s.dispatch(api, h, q)
	s.mu.Lock()
	call.ErrCode = 0
	if apiErr != nil {
		call.ErrCode = apiErr.code
	}
	s.calls = append(s.calls, *call)
	s.mu.Unlock()
	switch {
	case status == -1:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		http.Error(w, "connection dropped", http.StatusBadGateway)
		return
	case status != 0:
		http.Error(w, http.StatusText(status), status)
		return
	}
	if apiErr != nil {
		w.Header().Set("Error-Code", strconv.Itoa(apiErr.code))
		w.Header().Set("Error-Msg", apiErr.msg)
		writeJSON(w, http.StatusOK, map[string]any{"errcode": apiErr.code,
			"errmsg": fmt.Sprintf("%s, hint: [sim], more info at https://open.work.weixin.qq.com/devtool/query?e=%d", apiErr.msg, apiErr.code)})
		return
	}
	if resp == nil {
		resp = map[string]any{}
	}
	resp["errcode"], resp["errmsg"] = 0, "ok"
	writeJSON(w, http.StatusOK, resp)
}

// dispatch runs WeCom's checks in order — faults, trusted IP, method, token,
// permission, rate limit — and then the handler.
func (s *Server) dispatch(api string, h handler, q *request) (map[string]any, *apiError, int) {
	s.mu.Lock()
	drop := 0
	for i, f := range s.faults {
		if f.api == "" || f.api == api {
			f.times--
			if f.times <= 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			if f.status == -1 {
				drop = -1
				break
			}
			s.mu.Unlock()
			if f.status != 0 {
				return nil, nil, f.status
			}
			return nil, fail(f.code, "simulated error %d", f.code), 0
		}
	}
	if s.untrusted {
		s.mu.Unlock()
		return nil, fail(wecom.CodeIPNotAllowed, "not allow to access from your ip, from ip: 203.0.113.7"), 0
	}
	s.mu.Unlock()
	if h.post && q.r.Method != http.MethodPost {
		return nil, fail(wecom.CodeRequirePOST, "require POST method"), 0
	}
	if api != "gettoken" {
		if e := s.checkToken(q.query("access_token")); e != nil {
			return nil, e, 0
		}
	}
	s.mu.Lock()
	forbidden := s.forbidden[api]
	s.mu.Unlock()
	if forbidden {
		return nil, fail(wecom.CodeForbidden, "api forbidden"), 0
	}
	if e := s.count(api); e != nil {
		return nil, e, 0
	}
	resp, e := h.fn(s, q)
	return resp, e, drop
}

func (s *Server) checkToken(tok string) *apiError {
	if tok == "" {
		return fail(wecom.CodeMissingToken, "access_token missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	switch {
	case !ok:
		return fail(wecom.CodeInvalidToken, "invalid access_token")
	case !s.Now().Before(exp):
		return fail(wecom.CodeTokenExpired, "access_token expired")
	}
	return nil
}

// count applies the per-API limits in fixed minute and hour windows of
// simulated time; a rejected call does not count.
func (s *Server) count(api string) *apiError {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.limits[api]
	if !ok {
		l = s.o.Limits
	}
	w := s.windows[api]
	if w == nil {
		w = &window{}
		s.windows[api] = w
	}
	if m := now.Truncate(time.Minute); !m.Equal(w.minute) {
		w.minute, w.minuteCount = m, 0
	}
	if h := now.Truncate(time.Hour); !h.Equal(w.hour) {
		w.hour, w.hourCount = h, 0
	}
	if (l.PerMinute > 0 && w.minuteCount >= l.PerMinute) || (l.PerHour > 0 && w.hourCount >= l.PerHour) {
		return fail(wecom.CodeRateLimited, "api freq out of limit")
	}
	w.minuteCount++
	w.hourCount++
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// gettoken issues the app's token; while one is valid WeCom returns it again
// with its remaining lifetime.
func (s *Server) gettoken(q *request) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case q.query("corpid") == "":
		return nil, fail(41002, "corpid missing")
	case q.query("corpid") != s.Corp.ID():
		return nil, fail(wecom.CodeInvalidCorpID, "invalid corpid")
	case q.query("corpsecret") == "":
		return nil, fail(41004, "corpsecret missing")
	case q.query("corpsecret") != s.secret:
		return nil, fail(wecom.CodeInvalidSecret, "invalid credential")
	}
	now := s.Now()
	if exp, ok := s.tokens[s.current]; ok && now.Before(exp) {
		return map[string]any{"access_token": s.current, "expires_in": int(exp.Sub(now) / time.Second)}, nil
	}
	s.Corp.mu.Lock()
	tok := s.Corp.newID("", 64) + s.Corp.newID("", 64)
	s.Corp.mu.Unlock()
	s.current = tok
	s.tokens[tok] = now.Add(s.o.TokenLifetime)
	return map[string]any{"access_token": tok, "expires_in": int(s.o.TokenLifetime / time.Second)}, nil
}

// serveQR answers a contact way's qr_code URL with a PNG: a pattern derived
// from the config ID, not a scannable code, but an image a console can show.
func serveQR(w http.ResponseWriter, id string) {
	const n = 25
	img := image.NewGray(image.Rect(0, 0, n*4, n*4))
	h := sha256.Sum256([]byte(id))
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			bit := h[(y*n+x)/8%len(h)]>>((y*n+x)%8)&1 == 1
			v := uint8(255)
			if bit {
				v = 0
			}
			for dy := 0; dy < 4; dy++ {
				for dx := 0; dx < 4; dx++ {
					img.SetGray(x*4+dx, y*4+dy, color.Gray{Y: v})
				}
			}
		}
	}
	w.Header().Set("Content-Type", "image/png")
	_ = png.Encode(w, img)
}
