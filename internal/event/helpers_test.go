package event_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// server is a running Siyu with a workspace and a write key.
type server struct {
	*apptest.Server
	ws  apptest.Workspace
	key string // write key
}

func startServer(t *testing.T, engine db.Dialect) *server {
	t.Helper()
	s := apptest.Start(t, engine)
	ws := s.NewWorkspace(t, "brand")
	r := s.Do(t, http.MethodPost, "/api/v1/write-keys", ws.Key, map[string]any{"name": "mini program"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create write key: %d %s", r.Status, r.Body)
	}
	var k event.WriteKey
	r.JSON(t, &k)
	if !strings.HasPrefix(k.Key, event.WriteKeyPrefix) {
		t.Fatalf("write key %q", k.Key)
	}
	return &server{Server: s, ws: ws, key: k.Key}
}

// reply is an ingest response.
type reply struct {
	status int
	body   []byte
	header http.Header
}

func (r reply) problem(t *testing.T, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("content type %q: %s", ct, r.body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem is not JSON: %s", r.body)
	}
	if p["code"] != code || p["detail"] == "" {
		t.Fatalf("problem %s, want code %q", r.body, code)
	}
	return p
}

type okReply struct {
	Success  bool              `json:"success"`
	Rejected []event.Rejection `json:"rejected"`
}

func (r reply) ok(t *testing.T) okReply {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	var o okReply
	if err := json.Unmarshal(r.body, &o); err != nil || !o.Success {
		t.Fatalf("reply %s (%v)", r.body, err)
	}
	return o
}

type sendOpt func(*http.Request)

func basic(key string) sendOpt { return func(r *http.Request) { r.SetBasicAuth(key, "") } }

func header(k, v string) sendOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

// send posts body (bytes, a string, or JSON of anything else) to path.
func (s *server) send(t *testing.T, path string, body any, opts ...sendOpt) reply {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, o := range opts {
		o(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, body: rb, header: res.Header}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// storedEvent is an events row as tests look at it.
type storedEvent struct {
	ID                              int64
	MessageID, Type, Name           string
	UserID, AnonymousID, PreviousID string
	GroupID                         string
	CustomerID                      sql.NullInt64
	Timestamp, ReceivedAt           int64
	SentAt, OriginalTimestamp       sql.NullInt64
	Properties, Traits, Context     string
	Integrations                    string
	ProcessedAt                     sql.NullInt64
}

func events(t testing.TB, d *db.DB, tenantID int64) []storedEvent {
	t.Helper()
	rows, err := d.Query(`SELECT id, message_id, type, name, user_id, anonymous_id, previous_id, group_id, customer_id, timestamp,
		received_at, sent_at, original_timestamp, properties, traits, context, integrations, processed_at
		FROM events WHERE tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedEvent
	for rows.Next() {
		var e storedEvent
		if err := rows.Scan(&e.ID, &e.MessageID, &e.Type, &e.Name, &e.UserID, &e.AnonymousID, &e.PreviousID, &e.GroupID, &e.CustomerID,
			&e.Timestamp, &e.ReceivedAt, &e.SentAt, &e.OriginalTimestamp, &e.Properties, &e.Traits, &e.Context, &e.Integrations, &e.ProcessedAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func byMessageID(es []storedEvent) map[string]storedEvent {
	m := map[string]storedEvent{}
	for _, e := range es {
		m[e.MessageID] = e
	}
	return m
}

// eventually retries cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeResolver stands in for customer.Service: one customer per first
// identifier value, failures on demand.
type fakeResolver struct {
	mu    sync.Mutex
	ids   map[string]int64
	seen  []customer.Observation
	calls map[string]int      // by messageId
	fail  map[string]error    // by messageId
	hook  func(m string) bool // returns true to fail with an internal error
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{ids: map[string]int64{}, calls: map[string]int{}, fail: map[string]error{}}
}

func (f *fakeResolver) Resolve(_ context.Context, tx *sql.Tx, tenantID int64, obs customer.Observation) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[obs.MessageID]++
	if err := f.fail[obs.MessageID]; err != nil {
		return 0, err
	}
	if f.hook != nil && f.hook(obs.MessageID) {
		return 0, fmt.Errorf("fake: database unreachable")
	}
	if tx == nil || tenantID == 0 || len(obs.Identities) == 0 {
		return 0, errs.E(errs.Invalid, "no_identity", "nothing identifies this person")
	}
	f.seen = append(f.seen, obs)
	k := obs.Identities[0].Kind + ":" + obs.Identities[0].Value
	id, ok := f.ids[k]
	if !ok {
		id = int64(len(f.ids) + 1)
		f.ids[k] = id
	}
	return id, nil
}

func (f *fakeResolver) observations() []customer.Observation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]customer.Observation(nil), f.seen...)
}

// newWorkspace makes a workspace on d and returns its id.
func newWorkspace(t testing.TB, d *db.DB, slug string) int64 {
	t.Helper()
	ts := tenant.NewService(d, tenant.Options{})
	w, err := ts.CreateWorkspace(context.Background(), tenant.NewWorkspace{Slug: slug, Name: slug})
	if err != nil {
		t.Fatal(err)
	}
	return w.ID
}

// newService returns an event service on d with a workspace and write key.
func newService(t testing.TB, d *db.DB) (*event.Service, int64, string) {
	t.Helper()
	svc := event.NewService(d, event.Options{})
	tid := newWorkspace(t, d, "brand")
	k, err := svc.CreateWriteKey(context.Background(), tenant.System(tid), "test")
	if err != nil {
		t.Fatal(err)
	}
	return svc, tid, k.Key
}
