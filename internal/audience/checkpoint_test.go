package audience_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// world is a workspace with the domains the index reads, fed the way the
// server is fed: events through ingest and the processor, tags through the
// tag service.
type world struct {
	t      *testing.T
	d      *db.DB
	s      services
	tenant int64
	key    string // write key
	tags   map[string]int64
	group  int64
}

func newWorld(t *testing.T, d *db.DB) *world {
	ctx := context.Background()
	w := &world{t: t, d: d, s: newServices(d, slog.New(slog.DiscardHandler)), tags: map[string]int64{}}
	ws, err := w.s.tenant.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "checkpoints", Name: "Checkpoints"})
	if err != nil {
		t.Fatal(err)
	}
	w.tenant = ws.ID
	k, err := w.s.events.CreateWriteKey(ctx, tenant.System(ws.ID), "test")
	if err != nil {
		t.Fatal(err)
	}
	w.key = k.Key
	g, err := w.s.tags.CreateGroup(ctx, tenant.System(ws.ID), tag.GroupInput{Name: "兴趣"})
	if err != nil {
		t.Fatal(err)
	}
	w.group = g.ID
	for _, name := range []string{"乌龙", "抹茶", "果茶", "新品"} {
		tg, err := w.s.tags.CreateTag(ctx, tenant.System(ws.ID), tag.TagInput{GroupID: g.ID, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		w.tags[name] = tg.ID
	}
	return w
}

// send ingests messages and processes them.
func (w *world) send(msgs ...map[string]any) {
	w.t.Helper()
	ctx := context.Background()
	b, _ := json.Marshal(map[string]any{"batch": msgs})
	if _, err := w.s.events.Ingest(ctx, event.Request{Endpoint: event.EndpointBatch, WriteKey: w.key, Body: b}); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.s.events.NewProcessor(w.s.customers, event.ProcessorOptions{}).Drain(ctx); err != nil {
		w.t.Fatal(err)
	}
}

var msgSeq int

func track(who map[string]any, name string, daysAgo int) map[string]any {
	msgSeq++
	m := map[string]any{"type": "track", "messageId": fmt.Sprintf("m%d", msgSeq), "event": name,
		"timestamp": time.Now().Add(-time.Duration(daysAgo)*24*time.Hour - time.Hour).UTC().Format(time.RFC3339)}
	for k, v := range who {
		m[k] = v
	}
	return m
}

func identify(who map[string]any, traits map[string]any) map[string]any {
	msgSeq++
	m := map[string]any{"type": "identify", "messageId": fmt.Sprintf("m%d", msgSeq), "traits": traits}
	for k, v := range who {
		m[k] = v
	}
	return m
}

func user(id string) map[string]any { return map[string]any{"userId": id} }
func anon(id string) map[string]any { return map[string]any{"anonymousId": id} }

// customer returns the (surviving) profile of a user id.
func (w *world) customer(userID string) int64 {
	w.t.Helper()
	var id int64
	err := w.d.QueryRow(`SELECT c.id FROM customer_identities i JOIN customers c ON c.id = i.customer_id
		WHERE i.tenant_id = $1 AND i.kind = 'user_id' AND i.value = $2`, w.tenant, userID).Scan(&id)
	if err != nil {
		w.t.Fatalf("customer %s: %v", userID, err)
	}
	return id
}

func (w *world) tagAdd(userID string, tags ...string) {
	w.t.Helper()
	var ids []int64
	for _, t := range tags {
		ids = append(ids, w.tags[t])
	}
	if _, err := w.s.tags.Apply(context.Background(), w.tenant, w.customer(userID), ids, tag.Application{Source: tag.SourceAPI}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) tagRemove(userID string, tags ...string) {
	w.t.Helper()
	var ids []int64
	for _, t := range tags {
		ids = append(ids, w.tags[t])
	}
	if _, err := w.s.tags.Remove(context.Background(), w.tenant, w.customer(userID), ids, tag.Application{Source: tag.SourceAPI}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) newIndex() *audience.Service {
	svc := audience.NewService(w.d, w.s.sources(), slog.New(slog.DiscardHandler))
	// Everything here happens within the overlap a follower re-reads to
	// catch late commits, which would hide a catch-up that starts too late.
	audience.SetFollowOverlap(svc, 0)
	return svc
}

// questions are asked of every index; they cover tags, event days and their
// mixtures.
func (w *world) questions() []audience.Condition {
	var qs []audience.Condition
	for name := range w.tags {
		qs = append(qs, audience.Condition{Tag: "兴趣/" + name})
	}
	for _, e := range []string{"Viewed", "Ordered", "Shared"} {
		qs = append(qs, audience.Condition{Event: e})
		for _, days := range []int{1, 3, 10, 30, 90} {
			qs = append(qs, audience.Condition{Event: e, WithinDays: days})
		}
		qs = append(qs, audience.Condition{Event: e, Count: &audience.CountCond{Op: "=", Value: 0}})
	}
	qs = append(qs,
		audience.Condition{And: []audience.Condition{{Tag: "兴趣/乌龙"}, {Event: "Viewed", WithinDays: 30}}},
		audience.Condition{Or: []audience.Condition{{Tag: "兴趣/抹茶"}, {Not: &audience.Condition{Event: "Ordered", WithinDays: 10}}}},
		audience.Condition{Attr: "city", Op: "is_set"},
	)
	return qs
}

// answers returns each question's members, by customer id, after following
// the database.
func (w *world) answers(svc *audience.Service) map[string][]int64 {
	w.t.Helper()
	if err := svc.Sync(context.Background(), w.tenant); err != nil {
		w.t.Fatal(err)
	}
	return w.answersNow(svc)
}

// answersNow returns what svc answers as it stands: a rebuilt index is ready
// for questions once built.
func (w *world) answersNow(svc *audience.Service) map[string][]int64 {
	w.t.Helper()
	ctx := context.Background()
	out := map[string][]int64{}
	for _, q := range w.questions() {
		res, err := svc.Evaluate(ctx, w.tenant, q)
		if err != nil {
			w.t.Fatalf("%s: %v", mustJSON(q), err)
		}
		out[mustJSON(q)] = res.IDs(0, 1_000_000)
	}
	return out
}

func sameAnswers(t *testing.T, what string, got, want map[string][]int64) {
	t.Helper()
	for q, ids := range want {
		if !slices.Equal(got[q], ids) {
			t.Errorf("%s: %s: %v, the live index %v", what, q, got[q], ids)
		}
	}
}

// An index rebuilt from the database, in full or from a checkpoint and the
// changes after it, answers exactly as the index that followed every change
// live: after merges, late (backdated) events, removed and deleted tags, and
// new customers, on both sides of the checkpoint.
func TestRebuiltIndexAnswersAsTheLiveOne(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		w := newWorld(t, d)
		for i := range 12 {
			u := fmt.Sprintf("u%d", i)
			w.send(identify(user(u), map[string]any{"city": []string{"上海", "杭州", ""}[i%3]}),
				track(user(u), "Viewed", i%5), track(user(u), "Ordered", 2+i%7))
		}
		for i := range 4 {
			w.send(track(anon(fmt.Sprintf("a%d", i)), "Viewed", 1), track(anon(fmt.Sprintf("a%d", i)), "Shared", 4+i))
		}
		w.tagAdd("u0", "乌龙", "新品")
		w.tagAdd("u1", "抹茶")
		w.tagAdd("u2", "果茶", "乌龙")
		w.tagAdd("u3", "新品")

		live := w.newIndex()
		w.s.tags.Observe(live) // as the server wires it
		if err := live.Build(ctx, w.tenant); err != nil {
			t.Fatal(err)
		}

		// Before the checkpoint: a merge (the anonymous visitor a0 logs in
		// as u4 through a shared phone), a late event, a removed tag.
		w.send(identify(user("u4"), map[string]any{"phone": "13800138004"}))
		w.send(identify(anon("a0"), map[string]any{"phone": "13800138004"}))
		w.send(track(user("u5"), "Shared", 20))
		w.tagRemove("u0", "新品")
		w.tagAdd("u6", "抹茶")
		if err := live.Sync(ctx, w.tenant); err != nil {
			t.Fatal(err)
		}
		// Processed after the live index last followed: not in the
		// checkpoint, so a start must replay from the position it was taken
		// at, not from when it was written.
		w.send(track(user("u10"), "Shared", 7))
		if err := live.Checkpoint(ctx, w.tenant); err != nil {
			t.Fatal(err)
		}

		// After it: another merge whose merged profile has tags and events,
		// events backdated into days the checkpoint holds, a tag removed and
		// one deleted outright, and new customers.
		w.tagAdd("u7", "果茶")
		w.send(identify(anon("a1"), map[string]any{"phone": "13800138007"}))
		w.send(identify(user("u7"), map[string]any{"phone": "13800138007"}))
		w.send(track(user("u8"), "Ordered", 25), track(user("u9"), "Viewed", 60), track(user("u1"), "Shared", 3))
		w.tagRemove("u2", "乌龙")
		if err := w.s.tags.DeleteTag(ctx, tenant.System(w.tenant), w.tags["新品"]); err != nil {
			t.Fatal(err)
		}
		delete(w.tags, "新品") // no longer a question one can ask
		w.send(identify(user("u20"), map[string]any{"city": "成都"}), track(user("u20"), "Viewed", 2), track(user("u20"), "Ordered", 40))
		w.tagAdd("u20", "乌龙")

		// The scenario did what it says.
		var merges int
		if err := d.QueryRow(`SELECT count(*) FROM customer_merges WHERE tenant_id = $1`, w.tenant).Scan(&merges); err != nil || merges != 2 {
			t.Fatalf("%d merges (%v), want 2", merges, err)
		}

		want := w.answers(live)
		if n := len(want[mustJSON(audience.Condition{Event: "Viewed"})]); n != 12+1+2 {
			// u0…u11 and u20, and the anonymous visitors a2, a3 (a0, a1 merged)
			t.Fatalf("%d viewers, want 15: %v", n, want)
		}

		fromCheckpoint := w.newIndex()
		sameAnswers(t, "rebuilt from the checkpoint", w.answersNow(fromCheckpoint), want)
		sameAnswers(t, "rebuilt from the checkpoint, then following", w.answers(fromCheckpoint), want)
		var used int
		d.QueryRow(`SELECT count(*) FROM audience_checkpoints WHERE tenant_id = $1`, w.tenant).Scan(&used)
		if used != 1 {
			t.Fatal("no checkpoint was stored")
		}

		if _, err := d.Exec(`DELETE FROM audience_checkpoint_parts`); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(`DELETE FROM audience_checkpoints`); err != nil {
			t.Fatal(err)
		}
		sameAnswers(t, "rebuilt in full", w.answersNow(w.newIndex()), want)

		// A checkpoint written by the rebuilt index serves the next start.
		if err := fromCheckpoint.Checkpoint(ctx, w.tenant); err != nil {
			t.Fatal(err)
		}
		w.send(track(user("u3"), "Ordered", 1))
		want = w.answers(live)
		sameAnswers(t, "rebuilt from the second checkpoint", w.answersNow(w.newIndex()), want)
	})
}

// A running service stores a checkpoint of an index it had to build in full,
// so the next start reads tags and events back instead.
func TestRunStoresACheckpoint(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d)
		w.send(track(user("u1"), "Viewed", 2))
		w.tagAdd("u1", "乌龙")
		svc := w.newIndex()
		if err := svc.Build(context.Background(), w.tenant); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { svc.Run(ctx, 10*time.Millisecond); close(done) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int
			if err := d.QueryRow(`SELECT count(*) FROM audience_checkpoints WHERE tenant_id = $1`, w.tenant).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no checkpoint stored")
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		sameAnswers(t, "rebuilt from the stored checkpoint", w.answersNow(w.newIndex()), w.answers(svc))
	})
}
