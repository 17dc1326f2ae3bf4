package wecomtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
)

// Callback is one event the corp produced, as WeCom would send it.
type Callback struct {
	Seq     int       // 1, 2, … in the order the events happened
	Kind    string    // Event/ChangeType, e.g. "change_external_contact/add_external_contact"
	Message []byte    // the plaintext message (XML or JSON), before encryption
	At      time.Time // simulated time of the event (its CreateTime)
}

// Delivery is one attempt to deliver a callback.
type Delivery struct {
	Seq      int // the Callback's
	Attempt  int // 1 for the first try, then the retries
	OK       bool
	Status   int    // HTTP status; 0 when there was no answer
	Response string // the answer body, cut to 200 bytes
	Err      string // transport error or timeout
	At       time.Time
}

// SetCallbackURL sets where callbacks go ("" keeps them only in Callbacks()).
func (s *Server) SetCallbackURL(u string) {
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	s.cbURL = u
}

// Callbacks returns every callback the corp produced, delivered or not.
func (s *Server) Callbacks() []Callback {
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	return append([]Callback(nil), s.callbacks...)
}

// Deliveries returns every delivery attempt so far.
func (s *Server) Deliveries() []Delivery {
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

// HoldCallbacks queues callbacks instead of sending them, until
// ResumeCallbacks; Release sends queued ones in any order, duplicated or not
// at all.
func (s *Server) HoldCallbacks() {
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	s.holding = true
}

// ResumeCallbacks sends callbacks as they happen again. Callbacks still held
// stay held until Release.
func (s *Server) ResumeCallbacks() {
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	s.holding = false
}

// Held returns the queued callbacks in the order they happened.
func (s *Server) Held() []Callback {
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	return append([]Callback(nil), s.held...)
}

// Release delivers held callbacks and empties the queue. With no order it
// sends them all as they happened; otherwise order lists indexes into
// Held() to send, in that order: an index listed twice is a duplicate, one
// left out is dropped. It returns the failures of callbacks that were not
// accepted after their retries.
func (s *Server) Release(ctx context.Context, order ...int) error {
	s.cbMu.Lock()
	held := s.held
	s.held = nil
	s.cbMu.Unlock()
	if order == nil {
		order = make([]int, len(held))
		for i := range order {
			order[i] = i
		}
	}
	var errs []error
	for _, i := range order {
		if i < 0 || i >= len(held) {
			errs = append(errs, fmt.Errorf("wecomtest: no held callback %d", i))
			continue
		}
		if err := s.deliver(ctx, held[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Redeliver sends a past callback again, as WeCom sometimes does.
func (s *Server) Redeliver(ctx context.Context, seq int) error {
	s.cbMu.Lock()
	if seq < 1 || seq > len(s.callbacks) {
		s.cbMu.Unlock()
		return fmt.Errorf("wecomtest: no callback %d", seq)
	}
	cb := s.callbacks[seq-1]
	s.cbMu.Unlock()
	return s.deliver(ctx, cb)
}

// emit records a callback and sends it, unless callbacks are held. Delivery
// failures are recorded in Deliveries, not returned: the corp changed either way.
func (s *Server) emit(ctx context.Context, m *message) {
	cb := Callback{Kind: kindOf(m), Message: m.encode(s.o.CallbackFormat), At: s.Now()}
	s.cbMu.Lock()
	cb.Seq = len(s.callbacks) + 1
	s.callbacks = append(s.callbacks, cb)
	if s.holding {
		s.held = append(s.held, cb)
		s.cbMu.Unlock()
		return
	}
	s.cbMu.Unlock()
	if err := s.deliver(ctx, cb); err != nil {
		s.log.Warn("wecomtest: callback not accepted", "seq", cb.Seq, "kind", cb.Kind, "err", err)
	}
}

func kindOf(m *message) string {
	var event, change string
	for _, f := range m.fields {
		switch f.name {
		case "Event":
			event = f.value
		case "ChangeType":
			change = f.value
		}
	}
	return event + "/" + change
}

// nonce returns a fresh nonce for a callback's query.
func (s *Server) nonce() string {
	s.Corp.mu.Lock()
	defer s.Corp.mu.Unlock()
	s.Corp.seq++
	return strconv.FormatUint(splitmix(s.Corp.seq^s.Corp.salt)%10_000_000_000, 10)
}

// deliver POSTs a callback signed and encrypted as WeCom does, waiting
// CallbackTimeout for an answer and retrying CallbackRetries times after a
// failure; the retries carry the same body and signature.
func (s *Server) deliver(ctx context.Context, cb Callback) error {
	s.cbMu.Lock()
	target := s.cbURL
	s.cbMu.Unlock()
	if target == "" {
		return nil
	}
	ts, nonce := strconv.FormatInt(s.Now().Unix(), 10), s.nonce()
	body, sig, err := s.crypt.EncryptEnvelope(cb.Message, strconv.FormatInt(s.o.AgentID, 10), ts, nonce, s.o.CallbackFormat)
	if err != nil {
		return fmt.Errorf("wecomtest: unable to encrypt callback %d: %w", cb.Seq, err)
	}
	u := target + sep(target) + wecom.Query{MsgSignature: sig, Timestamp: ts, Nonce: nonce}.Values().Encode()
	contentType := "text/xml"
	if s.o.CallbackFormat == wecom.FormatJSON {
		contentType = "application/json"
	}
	var last string
	for attempt := 1; attempt <= 1+s.o.CallbackRetries; attempt++ {
		if attempt > 1 && s.o.CallbackRetryDelay > 0 {
			select {
			case <-time.After(s.o.CallbackRetryDelay):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		d := s.post(ctx, u, contentType, body)
		d.Seq, d.Attempt = cb.Seq, attempt
		s.cbMu.Lock()
		s.deliveries = append(s.deliveries, d)
		s.cbMu.Unlock()
		if d.OK {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = d.Err
		if last == "" {
			last = fmt.Sprintf("HTTP %d %q", d.Status, d.Response)
		}
	}
	return fmt.Errorf("wecomtest: callback %d (%s) not accepted after %d attempts: %s", cb.Seq, cb.Kind, 1+s.o.CallbackRetries, last)
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

// post makes one delivery attempt. An answer counts when it is HTTP 200
// with an empty body or "success", as WeCom requires.
func (s *Server) post(ctx context.Context, u, contentType string, body []byte) Delivery {
	d := Delivery{At: s.Now()}
	ctx, cancel := context.WithTimeout(ctx, s.o.CallbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		d.Err = err.Error()
		return d
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := s.http.Do(req)
	if err != nil {
		d.Err = err.Error()
		return d
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	d.Status, d.Response = resp.StatusCode, string(b[:min(len(b), 200)])
	answer := strings.TrimSpace(string(b))
	d.OK = resp.StatusCode == http.StatusOK && (answer == "" || answer == "success")
	return d
}

// VerifyCallbackURL does what WeCom does when an admin saves the callback
// URL: a GET with an encrypted echostr, expecting the decrypted text back.
func (s *Server) VerifyCallbackURL(ctx context.Context) error {
	s.cbMu.Lock()
	target := s.cbURL
	s.cbMu.Unlock()
	if target == "" {
		return fmt.Errorf("wecomtest: no callback URL set")
	}
	ts, nonce := strconv.FormatInt(s.Now().Unix(), 10), s.nonce()
	plain := s.nonce() + s.nonce()
	echo, sig, err := s.crypt.Encrypt([]byte(plain), ts, nonce)
	if err != nil {
		return fmt.Errorf("wecomtest: unable to encrypt echostr: %w", err)
	}
	u := target + sep(target) + wecom.Query{MsgSignature: sig, Timestamp: ts, Nonce: nonce, EchoStr: echo}.Values().Encode()
	ctx, cancel := context.WithTimeout(ctx, s.o.CallbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("wecomtest: unable to build the verification request: %w", err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("wecomtest: URL verification failed: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || string(b) != plain {
		return fmt.Errorf("wecomtest: URL verification failed: HTTP %d, answered %q, want %q", resp.StatusCode, b, plain)
	}
	return nil
}
