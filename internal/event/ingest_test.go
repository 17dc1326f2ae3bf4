package event_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/event"
)

// callback counts what analytics-go reports.
type callback struct {
	mu       sync.Mutex
	ok       int
	failures []error
}

func (c *callback) Success(analytics.Message) { c.mu.Lock(); c.ok++; c.mu.Unlock() }
func (c *callback) Failure(_ analytics.Message, err error) {
	c.mu.Lock()
	c.failures = append(c.failures, err)
	c.mu.Unlock()
}

type testLogger struct{ t *testing.T }

func (l testLogger) Logf(f string, a ...any)   { l.t.Logf("analytics-go: "+f, a...) }
func (l testLogger) Errorf(f string, a ...any) { l.t.Logf("analytics-go error: "+f, a...) }

// sendWithAnalyticsGo sends messages with the official Go client, unchanged,
// and fails unless every one was acknowledged.
func sendWithAnalyticsGo(t *testing.T, s *server, msgs []analytics.Message) {
	t.Helper()
	cb := &callback{}
	c, err := analytics.NewWithConfig(s.key, analytics.Config{
		Endpoint: s.URL, Interval: 20 * time.Millisecond, BatchSize: 100, Callback: cb, Logger: testLogger{t},
		RetryAfter: func(int) time.Duration { return 10 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := c.Enqueue(m); err != nil {
			t.Fatalf("enqueue %T: %v", m, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if len(cb.failures) > 0 || cb.ok != len(msgs) {
		t.Fatalf("analytics-go: %d acknowledged, failures %v", cb.ok, cb.failures)
	}
}

func TestAnalyticsGoClient(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			s := startServer(t, engine)
			msgs := []analytics.Message{
				analytics.Page{MessageId: "m-page", AnonymousId: "anon-1", Name: "Home",
					Properties: analytics.NewProperties().SetURL("https://brand.example/").SetTitle("首页")},
				analytics.Identify{MessageId: "m-identify", UserId: "u-1",
					Traits: analytics.NewTraits().SetName("李雷").SetEmail("lilei@example.com").Set("phone", "13800138000").Set("vip", true)},
				analytics.Alias{MessageId: "m-alias", PreviousId: "anon-1", UserId: "u-1"},
				analytics.Track{MessageId: "m-track", UserId: "u-1", Event: "Order Completed",
					Properties: analytics.NewProperties().SetRevenue(128.5).SetCurrency("CNY").Set("sku", "A-1")},
				analytics.Screen{MessageId: "m-screen", UserId: "u-1", Name: "Cart"},
				analytics.Group{MessageId: "m-group", UserId: "u-1", GroupId: "g-1", Traits: analytics.NewTraits().SetName("会员福利群")},
			}
			sendWithAnalyticsGo(t, s, msgs)
			es := events(t, s.App.DB, s.ws.ID)
			if len(es) != len(msgs) {
				t.Fatalf("%d events stored, want %d", len(es), len(msgs))
			}
			m := byMessageID(es)
			if e := m["m-track"]; e.Type != "track" || e.Name != "Order Completed" || e.UserID != "u-1" || !strings.Contains(e.Properties, `"revenue":128.5`) {
				t.Errorf("track stored as %+v", e)
			}
			if e := m["m-identify"]; e.Type != "identify" || !strings.Contains(e.Traits, "lilei@example.com") {
				t.Errorf("identify stored as %+v", e)
			}
			if e := m["m-page"]; e.Type != "page" || e.Name != "Home" || e.AnonymousID != "anon-1" {
				t.Errorf("page stored as %+v", e)
			}
			if e := m["m-alias"]; e.Type != "alias" || e.PreviousID != "anon-1" || e.UserID != "u-1" {
				t.Errorf("alias stored as %+v", e)
			}
			if e := m["m-group"]; e.Type != "group" || e.GroupID != "g-1" {
				t.Errorf("group stored as %+v", e)
			}
			for _, e := range es {
				if !e.SentAt.Valid || !e.OriginalTimestamp.Valid || e.ReceivedAt == 0 || !strings.Contains(e.Context, `"library"`) {
					t.Errorf("event %s lacks times or the library context: %+v", e.MessageID, e)
				}
				if d := e.Timestamp - e.ReceivedAt; d > 0 || d < -10_000 {
					t.Errorf("event %s: timestamp %d vs received %d", e.MessageID, e.Timestamp, e.ReceivedAt)
				}
			}

			// A client that retries the whole batch (same messageIds) adds nothing.
			sendWithAnalyticsGo(t, s, msgs)
			if n := len(events(t, s.App.DB, s.ws.ID)); n != len(msgs) {
				t.Fatalf("after re-sending: %d events, want %d", n, len(msgs))
			}

			// The processor resolves them all to one person: the anonymous
			// page view joins u-1 through the alias.
			eventually(t, "events processed", func() bool {
				for _, e := range events(t, s.App.DB, s.ws.ID) {
					if !e.ProcessedAt.Valid {
						return false
					}
				}
				return true
			})
			es = events(t, s.App.DB, s.ws.ID)
			for _, e := range es {
				if !e.CustomerID.Valid || e.CustomerID.Int64 != es[len(es)-1].CustomerID.Int64 {
					t.Errorf("event %s belongs to customer %v; want all on one (%v)", e.MessageID, e.CustomerID, es[len(es)-1].CustomerID)
				}
			}
			r := s.Do(t, http.MethodGet, fmt.Sprintf("/api/v1/customers/%d/timeline", es[0].CustomerID.Int64), s.ws.Key, nil)
			if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Order Completed") {
				t.Errorf("timeline: %d %s", r.Status, r.Body)
			}
			r = s.Do(t, http.MethodGet, "/api/v1/event-catalog?kind=property&parent=Order%20Completed", s.ws.Key, nil)
			if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"name":"revenue","type":"number"`) {
				t.Errorf("catalogue: %d %s", r.Status, r.Body)
			}
		})
	}
}

func TestIngestHTTP(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			s := startServer(t, engine)
			testIngestHTTP(t, s)
		})
	}
}

func testIngestHTTP(t *testing.T, s *server) {
	count := func() int { return len(events(t, s.App.DB, s.ws.ID)) }
	track := func(id string) map[string]any {
		return map[string]any{"type": "track", "messageId": id, "userId": "u-" + id, "event": "Viewed", "properties": map[string]any{"n": 1}}
	}

	t.Run("dedupe", func(t *testing.T) {
		before := count()
		b := map[string]any{"batch": []any{track("d1"), track("d2"), track("d2")}}
		s.send(t, "/v1/batch", b, basic(s.key)).ok(t)
		s.send(t, "/v1/batch", b, basic(s.key)).ok(t)
		if n := count() - before; n != 2 {
			t.Fatalf("%d events from a batch sent twice with 2 distinct messageIds", n)
		}
	})

	t.Run("write key in the body", func(t *testing.T) {
		before := count()
		s.send(t, "/v1/batch", map[string]any{"writeKey": s.key, "batch": []any{track("b1")}}).ok(t)
		s.send(t, "/v1/track", map[string]any{"writeKey": s.key, "messageId": "b2", "userId": "u", "event": "E"}).ok(t)
		if n := count() - before; n != 2 {
			t.Fatalf("%d events, want 2", n)
		}
	})

	t.Run("wrong or missing write key", func(t *testing.T) {
		before := count()
		s.send(t, "/v1/batch", map[string]any{"batch": []any{track("k1")}}, basic("wk_nope")).problem(t, http.StatusUnauthorized, "invalid_write_key")
		s.send(t, "/v1/batch", map[string]any{"writeKey": "wk_nope", "batch": []any{track("k1")}}).problem(t, http.StatusUnauthorized, "invalid_write_key")
		s.send(t, "/v1/batch", map[string]any{"batch": []any{track("k1")}}).problem(t, http.StatusUnauthorized, "missing_write_key")
		s.send(t, "/v1/track", track("k1")).problem(t, http.StatusUnauthorized, "missing_write_key")
		if count() != before {
			t.Fatal("an unauthenticated request stored events")
		}
	})

	t.Run("gzip", func(t *testing.T) {
		before := count()
		b, _ := json.Marshal(map[string]any{"batch": []any{track("z1"), track("z2")}})
		s.send(t, "/v1/batch", gzipped(t, b), basic(s.key), header("Content-Encoding", "gzip")).ok(t)
		if n := count() - before; n != 2 {
			t.Fatalf("%d events from a gzipped batch", n)
		}
		s.send(t, "/v1/batch", b, basic(s.key), header("Content-Encoding", "gzip")).problem(t, http.StatusBadRequest, "invalid_gzip")
		s.send(t, "/v1/batch", b, basic(s.key), header("Content-Encoding", "br")).problem(t, http.StatusBadRequest, "unsupported_content_encoding")
	})

	t.Run("short paths", func(t *testing.T) {
		before := count()
		s.send(t, "/v1/b", map[string]any{"batch": []any{track("s1")}}, basic(s.key)).ok(t)
		s.send(t, "/v1/t", map[string]any{"messageId": "s2", "userId": "u", "event": "E"}, basic(s.key)).ok(t)
		s.send(t, "/v1/i", map[string]any{"messageId": "s3", "userId": "u", "traits": map[string]any{"name": "x"}}, basic(s.key)).ok(t)
		s.send(t, "/v1/p", map[string]any{"messageId": "s4", "anonymousId": "a", "name": "Home"}, basic(s.key)).ok(t)
		s.send(t, "/v1/s", map[string]any{"messageId": "s5", "anonymousId": "a", "name": "Cart"}, basic(s.key)).ok(t)
		s.send(t, "/v1/g", map[string]any{"messageId": "s6", "userId": "u", "groupId": "g"}, basic(s.key)).ok(t)
		s.send(t, "/v1/a", map[string]any{"messageId": "s7", "userId": "u", "previousId": "a"}, basic(s.key)).ok(t)
		if n := count() - before; n != 7 {
			t.Fatalf("%d events", n)
		}
		m := byMessageID(events(t, s.App.DB, s.ws.ID))
		for id, typ := range map[string]string{"s2": "track", "s3": "identify", "s4": "page", "s5": "screen", "s6": "group", "s7": "alias"} {
			if m[id].Type != typ {
				t.Errorf("%s stored as %q, want %q", id, m[id].Type, typ)
			}
		}
	})

	t.Run("too large", func(t *testing.T) {
		before := count()
		big := strings.Repeat("x", event.MaxMessageBytes)
		p := s.send(t, "/v1/batch", map[string]any{"batch": []any{track("l0"), map[string]any{"type": "track", "userId": "u", "event": "E", "properties": map[string]any{"blob": big}}}}, basic(s.key)).
			problem(t, http.StatusBadRequest, "message_too_large")
		if d := p["detail"].(string); !strings.Contains(d, "32 KB") || !strings.Contains(d, "message 1") {
			t.Errorf("detail %q names neither the limit nor the message", d)
		}
		s.send(t, "/v1/track", map[string]any{"userId": "u", "event": "E", "properties": map[string]any{"blob": big}}, basic(s.key)).
			problem(t, http.StatusBadRequest, "message_too_large")
		var batch []any
		for i := range 20 {
			batch = append(batch, map[string]any{"type": "track", "userId": "u", "event": "E", "properties": map[string]any{"blob": big[:30000], "i": i}})
		}
		p = s.send(t, "/v1/batch", map[string]any{"batch": batch}, basic(s.key)).problem(t, http.StatusBadRequest, "batch_too_large")
		if d := p["detail"].(string); !strings.Contains(d, "500 KB") {
			t.Errorf("detail %q does not name the limit", d)
		}
		// Gzip does not get around the limit.
		b, _ := json.Marshal(map[string]any{"batch": batch})
		s.send(t, "/v1/batch", gzipped(t, b), basic(s.key), header("Content-Encoding", "gzip")).problem(t, http.StatusBadRequest, "batch_too_large")
		if count() != before {
			t.Fatal("an oversize request stored events")
		}
	})

	t.Run("malformed JSON", func(t *testing.T) {
		before := count()
		p := s.send(t, "/v1/batch", "{\"batch\": [\n  {\"type\": \"track\",}\n]}", basic(s.key)).problem(t, http.StatusBadRequest, "malformed_json")
		if d := p["detail"].(string); !strings.Contains(d, "line 2") || !strings.Contains(d, "byte ") {
			t.Errorf("detail %q does not say where", d)
		}
		s.send(t, "/v1/batch", `{"batch": {"type": "track"}}`, basic(s.key)).problem(t, http.StatusBadRequest, "invalid_field")
		s.send(t, "/v1/batch", `[{"type": "track"}]`, basic(s.key)).problem(t, http.StatusBadRequest, "malformed_json")
		s.send(t, "/v1/batch", `{"batch": [], "writeKey": 5}`, basic(s.key)).problem(t, http.StatusBadRequest, "invalid_field")
		s.send(t, "/v1/track", `{"userId": "u", "event": `, basic(s.key)).problem(t, http.StatusBadRequest, "malformed_json")
		s.send(t, "/v1/batch", `{}`, basic(s.key)).problem(t, http.StatusBadRequest, "missing_batch")
		if count() != before {
			t.Fatal("a malformed request stored events")
		}
	})

	t.Run("partial rejection", func(t *testing.T) {
		before := count()
		b := map[string]any{"batch": []any{
			track("p0"),
			map[string]any{"type": "track", "messageId": "p1", "event": "No One"},
			map[string]any{"type": "track", "messageId": "p2", "userId": "u"},
			map[string]any{"type": "alias", "messageId": "p3", "userId": "u"},
			map[string]any{"type": "purchase", "messageId": "p4", "userId": "u"},
			"not an object",
			map[string]any{"type": "identify", "messageId": "p6", "userId": "u", "traits": "vip"},
			map[string]any{"type": "track", "messageId": "p7", "userId": "u", "event": "E", "timestamp": "yesterday"},
			map[string]any{"type": "group", "messageId": "p8", "userId": "u"},
			map[string]any{"type": "identify", "messageId": "p9", "anonymousId": 42},
		}}
		o := s.send(t, "/v1/batch", b, basic(s.key)).ok(t)
		want := map[int]string{1: "missing_identity", 2: "missing_event", 3: "missing_previous_id", 4: "invalid_type", 5: "invalid_message",
			6: "invalid_field", 7: "invalid_timestamp", 8: "missing_group_id"}
		got := map[int]string{}
		for _, r := range o.Rejected {
			got[r.Index] = r.Code
			if r.Reason == "" {
				t.Errorf("rejection %d has no reason", r.Index)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("rejected %v, want %v", got, want)
		}
		if n := count() - before; n != 2 {
			t.Fatalf("%d events stored, want the 2 valid ones", n)
		}
		if e := byMessageID(events(t, s.App.DB, s.ws.ID))["p9"]; e.AnonymousID != "42" {
			t.Errorf("a numeric anonymousId stored as %q", e.AnonymousID)
		}
		// The rejections are listed for engineers, newest first.
		r := s.Do(t, http.MethodGet, "/api/v1/ingest-errors?limit=8", s.ws.Key, nil)
		var page struct {
			Items []event.IngestError `json:"items"`
		}
		r.JSON(t, &page)
		if len(page.Items) != 8 {
			t.Fatalf("%d ingest errors listed: %s", len(page.Items), r.Body)
		}
		for _, e := range page.Items {
			if want[e.Index] != e.Code || e.Payload == "" || e.ReceivedAt.IsZero() {
				t.Errorf("ingest error %+v", e)
			}
		}
		if page.Items[0].Index != 8 || page.Items[0].MessageID != "p8" || page.Items[0].Type != "group" {
			t.Errorf("newest ingest error is %+v", page.Items[0])
		}
		// On a single-message endpoint nothing is left to accept: 400.
		s.send(t, "/v1/track", map[string]any{"userId": "u"}, basic(s.key)).problem(t, http.StatusBadRequest, "missing_event")
	})

	t.Run("clock skew", func(t *testing.T) {
		// The client's clock is an hour fast; the event happened 10 s
		// before it was sent.
		now := time.Now().UTC()
		fast := now.Add(time.Hour)
		b := map[string]any{
			"sentAt": fast.Format(time.RFC3339Nano),
			"batch": []any{
				map[string]any{"type": "track", "messageId": "c1", "userId": "u", "event": "E", "timestamp": fast.Add(-10 * time.Second).Format(time.RFC3339Nano)},
				map[string]any{"type": "track", "messageId": "c2", "userId": "u", "event": "E"},
				// A per-message sentAt wins over the batch's.
				map[string]any{"type": "track", "messageId": "c3", "userId": "u", "event": "E", "originalTimestamp": "2020-01-01T00:00:00Z", "sentAt": "2020-01-01T00:00:05Z"},
			},
		}
		s.send(t, "/v1/batch", b, basic(s.key)).ok(t)
		s.send(t, "/v1/track", map[string]any{"messageId": "c4", "userId": "u", "event": "E", "timestamp": "2019-05-01T08:00:00+08:00"}, basic(s.key)).ok(t)
		m := byMessageID(events(t, s.App.DB, s.ws.ID))
		c1 := m["c1"]
		if got := c1.ReceivedAt - c1.Timestamp; got != 10_000 {
			t.Errorf("c1: timestamp is %d ms before receivedAt, want 10000", got)
		}
		if c1.OriginalTimestamp.Int64 != db.Millis(fast.Add(-10*time.Second)) || c1.SentAt.Int64 != db.Millis(fast) {
			t.Errorf("c1: original %v sent %v", c1.OriginalTimestamp, c1.SentAt)
		}
		if d := c1.ReceivedAt - db.Millis(now); d < -1000 || d > 10_000 {
			t.Errorf("c1: receivedAt %d is not now (%d)", c1.ReceivedAt, db.Millis(now))
		}
		if c2 := m["c2"]; c2.Timestamp != c2.ReceivedAt || c2.OriginalTimestamp.Valid || !c2.SentAt.Valid {
			t.Errorf("c2 (no timestamp): %+v", c2)
		}
		if c3 := m["c3"]; c3.ReceivedAt-c3.Timestamp != 5000 {
			t.Errorf("c3: timestamp %d ms before receivedAt, want 5000", c3.ReceivedAt-c3.Timestamp)
		}
		// Without sentAt (a server-side import) the timestamp is taken as given.
		if c4 := m["c4"]; c4.Timestamp != db.Millis(time.Date(2019, 5, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("c4: timestamp %d", c4.Timestamp)
		}
	})

	t.Run("batch context and integrations", func(t *testing.T) {
		b := map[string]any{
			"context":      map[string]any{"app": map[string]any{"name": "小程序"}, "locale": "zh-CN"},
			"integrations": map[string]any{"All": false},
			"batch": []any{
				map[string]any{"type": "track", "messageId": "x1", "userId": "u", "event": "E", "context": map[string]any{"locale": "en-US"}, "integrations": map[string]any{"WeCom": true}},
				map[string]any{"type": "track", "messageId": "x2", "userId": "u", "event": "E"},
			},
		}
		s.send(t, "/v1/batch", b, basic(s.key)).ok(t)
		m := byMessageID(events(t, s.App.DB, s.ws.ID))
		var c1, c2, i1 map[string]any
		_ = json.Unmarshal([]byte(m["x1"].Context), &c1)
		_ = json.Unmarshal([]byte(m["x2"].Context), &c2)
		_ = json.Unmarshal([]byte(m["x1"].Integrations), &i1)
		if c1["locale"] != "en-US" || c1["app"] == nil || c2["locale"] != "zh-CN" {
			t.Errorf("contexts %v / %v", c1, c2)
		}
		if i1["All"] != false || i1["WeCom"] != true {
			t.Errorf("integrations %v", i1)
		}
	})

	t.Run("revoked write key", func(t *testing.T) {
		r := s.Do(t, http.MethodPost, "/api/v1/write-keys", s.ws.Key, map[string]any{"name": "old app"})
		var k event.WriteKey
		r.JSON(t, &k)
		s.send(t, "/v1/track", map[string]any{"userId": "u", "event": "E"}, basic(k.Key)).ok(t)
		r = s.Do(t, http.MethodDelete, fmt.Sprintf("/api/v1/write-keys/%d", k.ID), s.ws.Key, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		s.send(t, "/v1/track", map[string]any{"userId": "u", "event": "E"}, basic(k.Key)).problem(t, http.StatusUnauthorized, "invalid_write_key")
		r = s.Do(t, http.MethodGet, "/api/v1/write-keys", s.ws.Key, nil)
		if !strings.Contains(string(r.Body), k.Key) || !strings.Contains(string(r.Body), "revoked_at") {
			t.Errorf("write keys: %s", r.Body)
		}
	})

	t.Run("browsers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, s.URL+"/v1/batch", nil)
		req.Header.Set("Origin", "https://brand.example")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
		}
		// analytics.js sends text/plain to avoid the preflight.
		s.send(t, "/v1/t", map[string]any{"writeKey": s.key, "anonymousId": "a", "event": "E"}, header("Content-Type", "text/plain")).ok(t)
	})
}
