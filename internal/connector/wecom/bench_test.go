package wecom_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// BenchmarkFullSync syncs a simulated corp of 100,000 contacts over 200
// staff (SIYU_BENCH_WECOM_CONTACTS and SIYU_BENCH_WECOM_STAFF change the
// size) on every engine the environment offers, on the wall clock, with the
// simulator enforcing WeCom's per-API limits (10,000 calls a minute and
// 150,000 an hour per API and corp). Run it once:
//
//	go test -run '^$' -bench BenchmarkFullSync -benchtime 1x -v ./internal/connector/wecom/
func BenchmarkFullSync(b *testing.B) {
	contacts := envInt(b, "SIYU_BENCH_WECOM_CONTACTS", 100_000)
	staffCount := envInt(b, "SIYU_BENCH_WECOM_STAFF", 200)
	for _, engine := range dbtest.Engines() {
		b.Run(string(engine), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				d := dbtest.Open(b, engine)
				sim, svc, tid := benchCorp(b, d, contacts, staffCount)
				b.StartTimer()
				start, cpu0 := time.Now(), cpuTime()
				done := make(chan struct{})
				go reportProgress(b, svc, tid, done)
				r, err := svc.SyncNow(context.Background(), tid, wecom.SyncFull)
				close(done)
				elapsed, cpu := time.Since(start), cpuTime()-cpu0
				b.StopTimer()
				if err != nil || r.Status != wecom.SyncDone {
					b.Fatalf("sync: %+v, %v", r, err)
				}
				_, follows := sim.Counts()
				if r.Counts.Contacts != follows {
					b.Fatalf("read %d of %d relations", r.Counts.Contacts, follows)
				}
				limited, perMinute := callStats(sim.Calls())
				b.ReportMetric(elapsed.Seconds(), "s/sync")
				b.ReportMetric(float64(contacts)/elapsed.Seconds(), "contacts/s")
				b.ReportMetric(float64(follows)/elapsed.Seconds(), "relations/s")
				b.ReportMetric(float64(sim.MaxLimit("externalcontact/batch/get_by_user")), "max-limit")
				b.ReportMetric(float64(limited), "rate-limited-calls")
				b.ReportMetric(float64(cpu.Microseconds())/float64(follows), "cpu-µs/relation")
				apis := make([]string, 0, len(r.Counts.Calls))
				for api := range r.Counts.Calls {
					apis = append(apis, api)
				}
				slices.Sort(apis)
				b.Logf("%s: %d contacts (%d relations) over %d staff, %d groups: %s, %.0f contacts/s, %.0f relations/s, %.0f µs CPU per relation "+
					"(Siyu and the simulator); max limit %d; rate-limit errors %d", engine, contacts, follows, staffCount, r.Counts.Groups,
					elapsed.Round(time.Millisecond), float64(contacts)/elapsed.Seconds(), float64(follows)/elapsed.Seconds(),
					float64(cpu.Microseconds())/float64(follows),
					sim.MaxLimit("externalcontact/batch/get_by_user"), limited)
				for _, api := range apis {
					b.Logf("  %-40s %6d calls (busiest minute %d)", api, r.Counts.Calls[api], perMinute[api])
				}
			}
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", name, v)
		}
		return n
	}
	return def
}

// benchCorp connects a fresh workspace to a populated corp on the wall clock.
func benchCorp(b *testing.B, d *db.DB, contacts, staffCount int) (*wecomtest.Server, *wecom.Service, int64) {
	b.Helper()
	ctx := context.Background()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := pii.NewKeyring(master)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	tenants := tenant.NewService(d, tenant.Options{Logger: log})
	ws, err := tenants.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "bench", Name: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	customers := customer.NewService(d, kr, log)
	st := staff.NewService(d)
	tags := tag.NewService(d, tag.Options{Logger: log, Auditor: tenants})
	sim := wecomtest.New(wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now},
		Limits: wecom.Limits{PerMinute: 10_000, PerHour: 150_000}})
	b.Cleanup(sim.Close)
	if err := wecomtest.Populate(sim.Corp, contacts, staffCount, 42); err != nil {
		b.Fatal(err)
	}
	svc := wecom.NewService(d, kr, customers, st, tags, tenants, wecom.Options{Logger: log})
	customers.OnMerge("staff_relations", st.MoveCustomer)
	customers.OnMerge("wecom", svc.MoveCustomer)
	if _, err := svc.Configure(ctx, tenant.System(ws.ID), wecom.SettingsInput{CorpID: sim.CorpID(), AgentID: sim.AgentID(), Secret: sim.Secret(),
		Token: sim.CallbackToken(), EncodingAESKey: sim.EncodingAESKey(), BaseURL: sim.URL()}); err != nil {
		b.Fatal(err)
	}
	return sim, svc, ws.ID
}

// reportProgress logs the run's phase and progress every 20 seconds, as the
// console's status would show it.
func reportProgress(b *testing.B, svc *wecom.Service, tenantID int64, done <-chan struct{}) {
	t := time.NewTicker(20 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		st, err := svc.SyncStatus(context.Background(), tenantID)
		if err != nil || st.Current == nil {
			continue
		}
		c := st.Current
		b.Logf("progress: %3d%% %s %d/%d, %d relations read", c.Percent, c.Phase, c.PhaseDone, c.PhaseTotal, c.Counts.Contacts)
	}
}

// callStats counts calls refused for rate limits, and each API's busiest
// calendar minute.
func callStats(calls []wecomtest.Call) (limited int, perMinute map[string]int) {
	perMinute = map[string]int{}
	minute := map[string]int{}
	for _, c := range calls {
		if c.ErrCode == wecom.CodeRateLimited || c.ErrCode == wecom.CodeConcurrencyLimited {
			limited++
		}
		k := fmt.Sprintf("%s@%d", c.API, c.At.Unix()/60)
		minute[k]++
		if minute[k] > perMinute[c.API] {
			perMinute[c.API] = minute[k]
		}
	}
	return limited, perMinute
}
