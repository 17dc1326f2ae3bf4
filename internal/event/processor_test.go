package event_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

func ingest(t *testing.T, svc *event.Service, key string, msgs ...map[string]any) event.Result {
	t.Helper()
	b, err := json.Marshal(map[string]any{"batch": msgs})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Ingest(context.Background(), event.Request{Endpoint: event.EndpointBatch, WriteKey: key, Body: b})
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return res
}

func trackMsg(id, user string) map[string]any {
	return map[string]any{"type": "track", "messageId": id, "userId": user, "event": "Viewed", "properties": map[string]any{"sku": "A-1", "price": 12.5}}
}

func TestProcessorResolvesAndMarks(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, tid, key := newService(t, d)
		ingest(t, svc, key,
			map[string]any{"type": "identify", "messageId": "i1", "userId": "u-1", "anonymousId": "a-1",
				"traits":  map[string]any{"email": "li@example.com", "name": "李雷", "age": 30, "birthday": "1990-01-02"},
				"context": map[string]any{"traits": map[string]any{"phone": "13800138000", "name": "context name"}}},
			map[string]any{"type": "track", "messageId": "t1", "anonymousId": "a-2", "event": "Viewed",
				"properties": map[string]any{"sku": "A-1", "price": 12.5, "tags": []any{"x"}},
				"context": map[string]any{"externalIds": []any{
					map[string]any{"id": "oUnion1", "type": "wechat_unionid", "collection": "users"},
					map[string]any{"id": "wmEXT", "type": "WECOM_EXTERNAL_USERID"},
					map[string]any{"id": "x", "type": "passport"},
				}}},
			map[string]any{"type": "alias", "messageId": "al1", "userId": "u-1", "previousId": "a-2"},
			map[string]any{"type": "group", "messageId": "g1", "userId": "u-1", "groupId": "G", "traits": map[string]any{"name": "group name"}},
			trackMsg("t2", "u-2"),
		)
		r := newFakeResolver()
		p := svc.NewProcessor(r, event.ProcessorOptions{BatchSize: 2})
		n, err := p.Drain(ctx)
		if err != nil || n != 5 {
			t.Fatalf("drained %d, %v", n, err)
		}
		for _, e := range events(t, d, tid) {
			if !e.CustomerID.Valid || !e.ProcessedAt.Valid {
				t.Errorf("event %s not processed: %+v", e.MessageID, e)
			}
		}
		obs := map[string]customer.Observation{}
		for _, o := range r.observations() {
			obs[o.MessageID] = o
			if o.Source != event.Source || o.At.IsZero() {
				t.Errorf("observation %+v", o)
			}
		}
		ids := func(o customer.Observation) []string {
			var s []string
			for _, i := range o.Identities {
				s = append(s, i.Kind+":"+i.Value)
			}
			return s
		}
		wantIDs := map[string][]string{
			"i1":  {"user_id:u-1", "anonymous_id:a-1", "phone:13800138000", "email:li@example.com"},
			"t1":  {"anonymous_id:a-2", "wechat_unionid:oUnion1", "wecom_external_userid:wmEXT"},
			"al1": {"user_id:u-1", "anonymous_id:a-2"},
			"g1":  {"user_id:u-1"},
			"t2":  {"user_id:u-2"},
		}
		for m, want := range wantIDs {
			if got := ids(obs[m]); !slices.Equal(got, want) {
				t.Errorf("%s: identities %v, want %v", m, got, want)
			}
		}
		// Message traits win over context.traits; group traits describe the
		// group, not the person.
		if tr := obs["i1"].Traits; tr["name"] != "李雷" || tr["phone"] != "13800138000" {
			t.Errorf("identify traits %v", tr)
		}
		if tr := obs["g1"].Traits; tr["name"] != nil {
			t.Errorf("group traits taken as the person's: %v", tr)
		}

		// Nothing is left, and processing again changes nothing.
		if n, err := p.ProcessBatch(ctx); n != 0 || err != nil {
			t.Fatalf("second pass: %d, %v", n, err)
		}

		// The catalogue.
		cat, err := svc.Catalog(ctx, tid, "", "")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, c := range cat {
			got[fmt.Sprintf("%s %s.%s %d", c.Kind, c.Parent, c.Name, c.Volume)] = c.Type
		}
		want := map[string]string{
			"event .Viewed 2":         "",
			"property Viewed.sku 2":   "string",
			"property Viewed.price 2": "number",
			"property Viewed.tags 1":  "list",
			"trait .email 1":          "string",
			"trait .name 1":           "string",
			"trait .age 1":            "number",
			"trait .birthday 1":       "date",
			"trait .phone 1":          "string",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("catalogue\n got %v\nwant %v", got, want)
		}
		if _, err := svc.Catalog(ctx, tid, "nonsense", ""); errs.KindOf(err) != errs.Invalid {
			t.Errorf("bad kind: %v", err)
		}
		// Types that change become mixed.
		ingest(t, svc, key, map[string]any{"type": "track", "messageId": "t3", "userId": "u", "event": "Viewed", "properties": map[string]any{"price": "12.5"}})
		if _, err := p.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		cat, _ = svc.Catalog(ctx, tid, event.CatalogProperty, "Viewed")
		for _, c := range cat {
			if c.Name == "price" && (c.Type != event.TypeMixed || c.Volume != 3) {
				t.Errorf("price after a string: %+v", c)
			}
		}
	})
}

func TestProcessorFailures(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, tid, key := newService(t, d)
		ingest(t, svc, key, trackMsg("m1", "u1"), trackMsg("m2", "u2"), trackMsg("bad", "u3"), trackMsg("m4", "u4"), trackMsg("flaky", "u5"))
		r := newFakeResolver()
		r.fail["bad"] = errs.E(errs.Invalid, "too_many_ids", "too many identifiers")
		flaky := 0
		r.hook = func(m string) bool {
			if m == "flaky" && flaky < 7 {
				flaky++
				return true
			}
			return false
		}
		p := svc.NewProcessor(r, event.ProcessorOptions{BatchSize: 10, MinFailing: time.Nanosecond})

		// The refused event is set aside; the batch it spoiled is redone.
		n, err := p.ProcessBatch(ctx)
		if err != nil || n != 1 {
			t.Fatalf("first pass: %d, %v", n, err)
		}
		for _, e := range events(t, d, tid) {
			if e.ProcessedAt.Valid != (e.MessageID == "bad") {
				t.Errorf("after setting 'bad' aside, %s processed=%v", e.MessageID, e.ProcessedAt.Valid)
			}
		}
		// An internal error rolls the whole batch back (as a crash would),
		// and is retried; after a few tries the event is set aside too.
		for i := range 4 {
			if _, err := p.ProcessBatch(ctx); err == nil {
				t.Fatalf("try %d: no error", i)
			}
			for _, e := range events(t, d, tid) {
				if e.ProcessedAt.Valid && e.MessageID != "bad" {
					t.Fatalf("try %d: %s committed although its batch failed", i, e.MessageID)
				}
			}
		}
		if n, err := p.ProcessBatch(ctx); n != 1 || err != nil {
			t.Fatalf("fifth failure: %d, %v", n, err)
		}
		if n, err := p.Drain(ctx); n != 3 || err != nil {
			t.Fatalf("drain: %d, %v", n, err)
		}
		for _, e := range events(t, d, tid) {
			aside := e.MessageID == "bad" || e.MessageID == "flaky"
			if !e.ProcessedAt.Valid || e.CustomerID.Valid == aside {
				t.Errorf("%s: processed %v customer %v", e.MessageID, e.ProcessedAt, e.CustomerID)
			}
		}
		pg, err := svc.IngestErrors(ctx, tid, page.Request{})
		if err != nil {
			t.Fatal(err)
		}
		codes := map[string]string{}
		for _, e := range pg.Items {
			codes[e.MessageID] = e.Code
		}
		if codes["bad"] != "unresolvable_too_many_ids" || codes["flaky"] != "internal" || len(codes) != 2 {
			t.Errorf("ingest errors %v", codes)
		}
	})
}

// Several processors (several nodes) never resolve an event twice.
func TestProcessorsShareWork(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, tid, key := newService(t, d)
		var msgs []map[string]any
		for i := range 300 {
			msgs = append(msgs, trackMsg(fmt.Sprintf("m%d", i), fmt.Sprintf("u%d", i%17)))
		}
		ingest(t, svc, key, msgs...)
		r := newFakeResolver()
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := svc.NewProcessor(r, event.ProcessorOptions{BatchSize: 20}).Drain(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for m, n := range r.calls {
			if n != 1 {
				t.Errorf("%s resolved %d times", m, n)
			}
		}
		if len(r.calls) != 300 {
			t.Errorf("%d events resolved", len(r.calls))
		}
		for _, e := range events(t, d, tid) {
			if !e.ProcessedAt.Valid {
				t.Errorf("%s not processed", e.MessageID)
			}
		}
	})
}

func TestProcessorScopes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, tid, key := newService(t, d)
		other := newWorkspace(t, d, "other")
		k2, err := svc.CreateWriteKey(ctx, tenant.System(other), "other")
		if err != nil {
			t.Fatal(err)
		}
		ingest(t, svc, key, trackMsg("m1", "u1"))
		ingest(t, svc, k2.Key, trackMsg("m1", "u1")) // the same messageId in another workspace is another event
		if n, err := svc.NewProcessor(newFakeResolver(), event.ProcessorOptions{TenantID: other}).Drain(ctx); n != 1 || err != nil {
			t.Fatalf("drain other: %d, %v", n, err)
		}
		if e := events(t, d, tid); e[0].ProcessedAt.Valid {
			t.Error("a processor for one workspace processed another's")
		}
		// No resolver: nothing is processed, nothing fails.
		if n, err := svc.NewProcessor(nil, event.ProcessorOptions{}).ProcessBatch(ctx); n != 0 || err != nil {
			t.Fatalf("nil resolver: %d, %v", n, err)
		}
	})
}

// Group commit: many concurrent requests, overlapping messageIds, every
// event stored exactly once and every request answered.
func TestConcurrentIngest(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		svc, tid, key := newService(t, d)
		var wg sync.WaitGroup
		for c := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range 5 {
					var msgs []map[string]any
					for i := range 20 {
						// Clients c and c+6 send the same messages.
						msgs = append(msgs, trackMsg(fmt.Sprintf("c%d-r%d-i%d", c%6, r, i), "u"))
					}
					b, _ := json.Marshal(map[string]any{"batch": msgs})
					if _, err := svc.Ingest(context.Background(), event.Request{Endpoint: event.EndpointBatch, WriteKey: key, Body: b}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if n := len(events(t, d, tid)); n != 6*5*20 {
			t.Fatalf("%d events, want %d", n, 6*5*20)
		}
	})
}
