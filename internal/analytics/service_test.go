package analytics_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// clock is the analytics service's clock: real time plus an offset, as the
// other services it reads stamp their rows with real time.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// env is the analytics service wired to the real domain services, as the
// app wires them, on a fresh database with one workspace in Shanghai.
type env struct {
	d        *db.DB
	ten      *tenant.Service
	cust     *customer.Service
	com      *commerce.Service
	ev       *event.Service
	svc      *analytics.Service
	clock    *clock
	tenantID int64
	ids      map[string]int64 // customers by user id
	orders   int
}

func newEnv(t *testing.T, d *db.DB, o analytics.Options) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{d: d, ten: tenant.NewService(d, tenant.Options{}), clock: &clock{}, ids: map[string]int64{}}
	w, err := e.ten.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "tea", Name: "Tea", Timezone: "Asia/Shanghai"})
	if err != nil {
		t.Fatal(err)
	}
	e.tenantID = w.ID
	master := make([]byte, 32)
	rand.Read(master)
	kr, err := pii.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	e.cust = customer.NewService(d, kr, nil)
	e.com = commerce.NewService(d, e.cust, staff.NewService(d), nil)
	e.cust.OnMerge("orders", e.com.MoveCustomer)
	e.ev = event.NewService(d, event.Options{})
	e.cust.OnMerge("events", e.ev.MoveCustomer)
	o.Now = e.clock.now
	o.Logger = slog.New(slog.DiscardHandler)
	o.Auditor = e.ten
	e.svc = analytics.NewService(d, analytics.Sources{
		Profiles: e.cust, Spend: e.com, Events: e.ev,
		Workspaces: e.ten.WorkspaceIDs,
		Location: func(ctx context.Context, id int64) (*time.Location, error) {
			w, err := e.ten.Workspace(ctx, id)
			return w.Location(), err
		},
	}, o)
	return e
}

// customer creates a customer known by a user id, first seen days ago.
func (e *env) customer(t *testing.T, userID string, firstSeen, lastSeen int) int64 {
	t.Helper()
	now := time.Now()
	ids, err := e.cust.CreateMany(context.Background(), e.tenantID, []customer.NewCustomer{{
		Name: userID, FirstSeenAt: now.AddDate(0, 0, -firstSeen), LastSeenAt: now.AddDate(0, 0, -lastSeen),
		Identities: []customer.Identity{{Kind: customer.KindUserID, Value: userID}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.ids[userID] = ids[0]
	return ids[0]
}

// order records a paid order of one item daysAgo days ago.
func (e *env) order(t *testing.T, userID string, daysAgo int, fen int64, category string) string {
	t.Helper()
	e.orders++
	id := fmt.Sprintf("o%d", e.orders)
	_, err := e.com.UpsertOrder(context.Background(), e.tenantID, commerce.OrderInput{
		Source: commerce.SourceMiniApp, OrderID: id, CustomerID: e.ids[userID], Status: commerce.Paid,
		Items:  []commerce.ItemInput{{SKU: "sku-" + category, Name: category, Category: category, Quantity: 1, UnitPriceFen: fen}},
		PaidAt: time.Now().AddDate(0, 0, -daysAgo),
	})
	if err != nil {
		t.Fatalf("order: %v", err)
	}
	return id
}

// track sends n track events of a customer through ingest, hoursAgo hours
// apart, and processes them.
func (e *env) track(t *testing.T, userID, name string, n int, hoursApart int) {
	t.Helper()
	ctx := context.Background()
	k, err := e.ev.CreateWriteKey(ctx, tenant.System(e.tenantID), "test "+userID+name)
	if err != nil {
		t.Fatal(err)
	}
	var batch []map[string]any
	for i := range n {
		batch = append(batch, map[string]any{"type": "track", "event": name, "userId": userID,
			"messageId": fmt.Sprintf("%s-%s-%d", userID, name, i),
			"timestamp": time.Now().Add(-time.Duration((i+1)*hoursApart) * time.Hour).UTC().Format(time.RFC3339)})
	}
	body, _ := json.Marshal(map[string]any{"batch": batch})
	res, err := e.ev.Ingest(ctx, event.Request{Endpoint: event.EndpointBatch, WriteKey: k.Key, Body: body})
	if err != nil || res.Accepted != n {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	if _, err := e.ev.NewProcessor(e.cust, event.ProcessorOptions{TenantID: e.tenantID}).Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

func (e *env) scores(t *testing.T) map[int64]audience.ScoreRow {
	t.Helper()
	out := map[int64]audience.ScoreRow{}
	if err := e.svc.EachScore(context.Background(), e.tenantID, func(r audience.ScoreRow) error {
		out[r.CustomerID] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) updatedAt(t *testing.T) map[int64]int64 {
	t.Helper()
	rows, err := e.d.Query(`SELECT customer_id, updated_at FROM customer_scores WHERE tenant_id = $1`, e.tenantID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, at int64
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		out[id] = at
	}
	return out
}

// brand sets up a small tea brand whose customers each show one rule.
func (e *env) brand(t *testing.T) {
	t.Helper()
	e.customer(t, "vip", 400, 1)
	for i, d := range []int{200, 150, 100, 60, 20, 2} {
		e.order(t, "vip", d, 20000, []string{"茶叶", "茶具", "茶点"}[i%3])
	}
	e.customer(t, "fresh", 0, 0)
	e.customer(t, "fan", 30, 30)
	e.track(t, "fan", "view_product", 12, 20)
	e.customer(t, "gone", 300, 200)
	e.order(t, "gone", 200, 3000, "茶叶")
	e.customer(t, "growing", 60, 10)
	e.order(t, "growing", 40, 5000, "茶叶")
	e.order(t, "growing", 10, 5000, "茶叶")
	e.customer(t, "big-once", 20, 5)
	e.order(t, "big-once", 5, 80000, "茶具")
	for i := range 8 {
		u := fmt.Sprint("filler", i)
		e.customer(t, u, 160, 10+i*15)
		e.order(t, u, 10+i*15, int64(1000+i*1000), "茶叶")
	}
}

func TestRecomputeClassifiesEveryCustomer(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		e := newEnv(t, d, analytics.Options{})
		e.brand(t)
		run, err := e.svc.Recompute(ctx, e.tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if run.State != analytics.RunDone || run.Processed != 14 || run.Total != 14 || run.Changed != 14 || run.ComputedAt.IsZero() {
			t.Fatalf("run %+v", run)
		}
		got := e.scores(t)
		if len(got) != 14 {
			t.Fatalf("%d scored customers, want 14", len(got))
		}
		for _, tc := range []struct {
			user               string
			r, f, m            int // 0: not checked unless class is ""
			class, stage, tier string
		}{
			{"vip", 5, 5, 5, analytics.ImportantValue, analytics.Extension, analytics.Devoted},
			{"fresh", 0, 0, 0, "", analytics.Onboarding, analytics.PasserBy},
			{"fan", 0, 0, 0, "", analytics.Onboarding, analytics.Devoted},
			{"gone", 1, 0, 0, analytics.GeneralWinBack, analytics.Decline, analytics.PasserBy},
			{"growing", 0, 0, 0, "", analytics.Growth, analytics.Favourable},
			{"big-once", 0, 0, 5, analytics.ImportantDevelopment, analytics.Onboarding, analytics.Favourable},
		} {
			r := got[e.ids[tc.user]]
			if (tc.r != 0 && r.R != tc.r) || (tc.f != 0 && r.F != tc.f) || (tc.m != 0 && r.M != tc.m) ||
				(tc.class != "" && r.RFMClass != tc.class) || r.Lifecycle != tc.stage || r.FanTier != tc.tier {
				t.Errorf("%s: %+v, want R%d F%d M%d %s %s %s", tc.user, r, tc.r, tc.f, tc.m, tc.class, tc.stage, tc.tier)
			}
			if tc.class == "" && tc.user != "growing" && (r.R != 0 || r.F != 0 || r.M != 0 || r.RFMClass != "") {
				t.Errorf("%s has no orders but scores %+v", tc.user, r)
			}
		}
		// The distribution adds up and lists every value.
		dist, err := e.svc.Distribution(ctx, e.tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if dist.Customers != 14 || dist.Buyers != 12 || len(dist.RFMClasses) != 8 || len(dist.Lifecycle) != 5 || len(dist.FanTiers) != 3 {
			t.Fatalf("distribution %+v", dist)
		}
		sum := func(bs []analytics.LabelCount) (n int64) {
			for _, b := range bs {
				n += b.Count
			}
			return n
		}
		if sum(dist.RFMClasses) != 12 || sum(dist.Lifecycle) != 14 || sum(dist.FanTiers) != 14 {
			t.Fatalf("sums %d %d %d", sum(dist.RFMClasses), sum(dist.Lifecycle), sum(dist.FanTiers))
		}
		for _, hist := range [][]analytics.ScoreCount{dist.R, dist.F, dist.M} {
			var n int64
			for _, b := range hist {
				n += b.Count
				if b.Count > 0 && !b.Used {
					t.Fatalf("score %d counted but unused: %+v", b.Score, hist)
				}
			}
			if len(hist) != 5 || n != 12 {
				t.Fatalf("histogram %+v", hist)
			}
		}
		// R's top score covers the most recent orders: 0 days up to some.
		if top := dist.R[4]; top.Min == nil || *top.Min != 0 || top.Max == nil || *top.Max < 2 {
			t.Fatalf("R5 range %+v", top)
		}
		// The sources the audience index reads agree with each other.
		var some []audience.ScoreRow
		if err := e.svc.ScoresFor(ctx, e.tenantID, []int64{e.ids["vip"], e.ids["fan"], 999999}, func(r audience.ScoreRow) error {
			some = append(some, r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(some) != 2 {
			t.Fatalf("ScoresFor %+v", some)
		}
		for _, r := range some {
			if got[r.CustomerID] != r {
				t.Fatalf("ScoresFor %+v, EachScore %+v", r, got[r.CustomerID])
			}
		}
	})
}

func TestOnlyChangedRowsAreWritten(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		// SmallBuyers off: rescore incrementally even in this small brand.
		e := newEnv(t, d, analytics.Options{SmallBuyers: -1})
		e.brand(t)
		first, err := e.svc.Recompute(ctx, e.tenantID)
		if err != nil {
			t.Fatal(err)
		}
		before, scoresBefore := e.updatedAt(t), e.scores(t)
		time.Sleep(5 * time.Millisecond)
		since := e.clock.now()
		// A second full run finds nothing changed and writes nothing.
		again, err := e.svc.Recompute(ctx, e.tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if again.Changed != 0 || !again.ComputedAt.After(first.ComputedAt) {
			t.Fatalf("second run %+v", again)
		}
		if after := e.updatedAt(t); !mapsEqual(before, after) {
			t.Fatalf("updated_at moved: %v → %v", before, after)
		}
		if ids, err := e.svc.ScoresChangedSince(ctx, e.tenantID, since); err != nil || len(ids) != 0 {
			t.Fatalf("changed since the second run: %v %v", ids, err)
		}
		// "fresh" buys three times: rescored incrementally against the same
		// quintiles, and nobody else's row is written.
		time.Sleep(5 * time.Millisecond)
		since = e.clock.now()
		for _, d := range []int{3, 2, 1} {
			e.order(t, "fresh", d, 30000, "茶叶")
		}
		if err := e.svc.Rescore(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		ids, err := e.svc.ScoresChangedSince(ctx, e.tenantID, since)
		if err != nil || !slices.Equal(ids, []int64{e.ids["fresh"]}) {
			t.Fatalf("changed: %v %v, want only fresh (%d)", ids, err, e.ids["fresh"])
		}
		st, err := e.svc.Status(ctx, e.tenantID)
		if err != nil || !st.ComputedAt.Equal(again.ComputedAt) {
			t.Fatalf("the incremental pass measured again: %+v %v", st, err)
		}
		fresh := e.scores(t)[e.ids["fresh"]]
		if fresh.R != 5 || fresh.F < 4 || fresh.M != 5 || fresh.RFMClass != analytics.ImportantValue || fresh.FanTier != analytics.Devoted {
			t.Fatalf("fresh after three orders: %+v", fresh)
		}
		after := e.updatedAt(t)
		for id, at := range before {
			if id != e.ids["fresh"] && after[id] != at {
				t.Fatalf("customer %d rewritten: %d → %d", id, at, after[id])
			}
		}
		// A merge: two profiles of one person meet (her phone and her email
		// in one message); the newer one's row goes at the next pass and
		// the survivor is rescored with both orders.
		ids, err = e.cust.CreateMany(ctx, e.tenantID, []customer.NewCustomer{
			{Name: "by email", Identities: []customer.Identity{{Kind: customer.KindEmail, Value: "li@example.com"}}},
			{Name: "by phone", Phone: "13800138000"},
		})
		if err != nil {
			t.Fatal(err)
		}
		e.ids["email"], e.ids["phone"] = ids[0], ids[1]
		e.order(t, "email", 3, 2000, "茶叶")
		e.order(t, "phone", 2, 2000, "茶叶")
		if err := e.svc.Rescore(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		if got := e.scores(t); got[ids[0]].F == 0 || got[ids[1]].F == 0 {
			t.Fatalf("new customers not scored: %+v %+v", got[ids[0]], got[ids[1]])
		}
		err = e.d.Tx(ctx, func(tx *sql.Tx) error {
			_, err := e.cust.Resolve(ctx, tx, e.tenantID, customer.Observation{At: time.Now(),
				Identities: []customer.Identity{{Kind: customer.KindPhone, Value: "13800138000"}, {Kind: customer.KindEmail, Value: "li@example.com"}}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Rescore(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		now := e.scores(t)
		if _, ok := now[ids[1]]; ok {
			t.Fatalf("merged customer still scored")
		}
		if survivor := now[ids[0]]; survivor.F <= scoresBefore[e.ids["filler0"]].F {
			t.Fatalf("survivor %+v: both orders should count", survivor)
		}
		if len(now) != 15 {
			t.Fatalf("%d scored, want 15", len(now))
		}
	})
}

func mapsEqual(a, b map[int64]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestScheduleRequestsAndLease(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		e := newEnv(t, d, analytics.Options{SmallBuyers: -1})
		e.customer(t, "a", 10, 1)
		e.order(t, "a", 1, 1000, "茶叶")
		st, err := e.svc.Status(ctx, e.tenantID)
		if err != nil || st.State != analytics.RunIdle {
			t.Fatalf("before anything: %+v %v", st, err)
		}
		// Never scored: Work runs a full recompute.
		if err := e.svc.Work(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		first, _ := e.svc.Status(ctx, e.tenantID)
		if first.State != analytics.RunDone || first.ComputedAt.IsZero() {
			t.Fatalf("after the first work: %+v", first)
		}
		// Scored and not due: an incremental pass only.
		if err := e.svc.Work(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		if st, _ := e.svc.Status(ctx, e.tenantID); !st.ComputedAt.Equal(first.ComputedAt) {
			t.Fatalf("measured again without being due: %+v", st)
		}
		// Asked for: queued, then run.
		st, err = e.svc.RequestRecompute(ctx, e.tenantID)
		if err != nil || st.State != analytics.RunQueued {
			t.Fatalf("requested: %+v %v", st, err)
		}
		if err := e.svc.Work(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		second, _ := e.svc.Status(ctx, e.tenantID)
		if second.State != analytics.RunDone || !second.ComputedAt.After(first.ComputedAt) || !second.RequestedAt.IsZero() {
			t.Fatalf("after the request: %+v", second)
		}
		// Another node holds the lease: nothing runs, a direct recompute is
		// refused, until the lease expires.
		if _, err := e.d.Exec(`UPDATE score_runs SET lease_owner = 'other', lease_until = $2 WHERE tenant_id = $1`,
			e.tenantID, db.Millis(e.clock.now().Add(time.Minute))); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Recompute(ctx, e.tenantID); !errs.Is(err, errs.Conflict) {
			t.Fatalf("recompute under another's lease: %v", err)
		}
		e.clock.advance(2 * time.Minute)
		if _, err := e.svc.Recompute(ctx, e.tenantID); err != nil {
			t.Fatalf("recompute after the lease expired: %v", err)
		}
		// The next day's recompute hour makes a full run due.
		third, _ := e.svc.Status(ctx, e.tenantID)
		e.clock.advance(24 * time.Hour)
		if err := e.svc.Work(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		if st, _ := e.svc.Status(ctx, e.tenantID); !st.ComputedAt.After(third.ComputedAt) {
			t.Fatalf("daily run did not happen: %+v", st)
		}
	})
}

func TestSettingsAreStoredAndApplied(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		e := newEnv(t, d, analytics.Options{})
		p := tenant.System(e.tenantID)
		set, err := e.svc.Settings(ctx, e.tenantID)
		if err != nil || set.Lifecycle.DeclineDays != 90 || set.FanTier.InteractionEvents == nil {
			t.Fatalf("defaults: %+v %v", set, err)
		}
		bad := set
		bad.Lifecycle.DeclineDays = 30 // below mature_recent_days
		if _, err := e.svc.SetSettings(ctx, p, bad); !errs.Is(err, errs.Invalid) {
			t.Fatalf("invalid settings saved: %v", err)
		}
		set.FanTier.DevotedMinOrders = 5
		set.FanTier.InteractionEvents = []string{"view_product"}
		if _, err := e.svc.SetSettings(ctx, p, set); err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.Settings(ctx, e.tenantID)
		if err != nil || got.FanTier.DevotedMinOrders != 5 || !slices.Equal(got.FanTier.InteractionEvents, []string{"view_product"}) {
			t.Fatalf("stored: %+v %v", got, err)
		}
		if st, _ := e.svc.Status(ctx, e.tenantID); st.State != analytics.RunQueued {
			t.Fatalf("a settings change queues a recompute: %+v", st)
		}
		// The thresholds apply: only the named events count as interactions.
		e.customer(t, "fan", 5, 5)
		e.track(t, "fan", "open_app", 12, 1)
		if _, err := e.svc.Recompute(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		if r := e.scores(t)[e.ids["fan"]]; r.FanTier != analytics.PasserBy {
			t.Fatalf("open_app is not an interaction here: %+v", r)
		}
		// Fields missing from what is stored (added later) take defaults.
		if _, err := e.d.Exec(`UPDATE score_settings SET settings = $2 WHERE tenant_id = $1`, e.tenantID, `{"recompute_hour": 6}`); err != nil {
			t.Fatal(err)
		}
		got, err = e.svc.Settings(ctx, e.tenantID)
		want := analytics.Defaults()
		want.RecomputeHour = 6
		if err != nil || got.RecomputeHour != 6 || got.Lifecycle != want.Lifecycle || got.FanTier.CoolOffDays != want.FanTier.CoolOffDays {
			t.Fatalf("partial document: %+v %v", got, err)
		}
		set = analytics.Defaults()
		if _, err := e.svc.SetSettings(ctx, p, set); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Recompute(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		if r := e.scores(t)[e.ids["fan"]]; r.FanTier != analytics.Devoted {
			t.Fatalf("every event counts by default: %+v", r)
		}
	})
}

func TestSampledScale(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		e := newEnv(t, d, analytics.Options{SampleSize: 10})
		for i := range 40 {
			u := fmt.Sprint("c", i)
			e.customer(t, u, 100, 1)
			e.order(t, u, 1+i, int64(1000*(i+1)), "茶叶")
		}
		if _, err := e.svc.Recompute(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		dist, err := e.svc.Distribution(ctx, e.tenantID)
		if err != nil || dist.Buyers != 40 {
			t.Fatalf("%+v %v", dist, err)
		}
		// Scores from a sample of 10 still spread over the range, and more
		// spend never scores lower.
		got := e.scores(t)
		for i := 1; i < 40; i++ {
			a, b := got[e.ids[fmt.Sprint("c", i-1)]], got[e.ids[fmt.Sprint("c", i)]]
			if b.M < a.M || b.R > a.R {
				t.Fatalf("not monotonic: %+v then %+v", a, b)
			}
		}
		if lo, hi := got[e.ids["c0"]], got[e.ids["c39"]]; lo.M > 2 || hi.M < 4 {
			t.Fatalf("extremes %+v %+v", lo, hi)
		}
	})
}
