package message_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// BenchmarkPlanMassMessage plans a mass message to every customer of a
// workspace: SIYU_BENCH_CUSTOMERS (default 1,000,000) customers over
// SIYU_BENCH_STAFF (default 500) staff, every tenth also followed by a
// second staff member, and every tenth already sent a mass message today
// under the "day" cap (so they are skipped). The timed part is what
// "send" does: audience resolution on the built index, owner split, cap
// accounting, and writing the envelopes and batches. Run it with
//
//	go test -run '^$' -bench PlanMassMessage -benchtime 1x ./internal/message/
//
// (SIYU_TEST_POSTGRES set for PostgreSQL as well).
func BenchmarkPlanMassMessage(b *testing.B) {
	customers := envInt("SIYU_BENCH_CUSTOMERS", 1_000_000)
	staffN := envInt("SIYU_BENCH_STAFF", 500)
	for _, engine := range dbtest.Engines() {
		b.Run(string(engine), func(b *testing.B) {
			d := dbtest.Open(b, engine)
			ctx := context.Background()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			tenants := tenant.NewService(d, tenant.Options{Logger: log})
			ws, err := tenants.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "bench", Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			now := time.Now()
			seedMass(b, d, ws.ID, customers, staffN, now)
			seeded := time.Since(start)
			aud := audience.NewService(d, app.AudienceSourcesOn(d, log), log)
			start = time.Now()
			if err := aud.Sync(ctx, ws.ID); err != nil {
				b.Fatal(err)
			}
			indexed := time.Since(start)
			m := message.NewService(d, aud, tenants, message.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
			m.Register(benchChannel{})
			p := tenant.System(ws.ID)
			if _, err := m.UpdateSettings(ctx, p, message.Settings{CapPolicy: message.CapDay}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c, err := m.CreateCampaign(ctx, p, message.CampaignInput{Name: fmt.Sprint("bench ", i), Kind: message.KindCustomers,
					Target: message.Target{Condition: &audience.Condition{Attr: "first_seen_at", Op: "is_set"}}, Content: message.Content{Text: "新品上市"}})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				t0, cpu0 := time.Now(), cpuTime()
				if c, err = m.SendCampaign(ctx, p, c.ID); err != nil {
					b.Fatal(err)
				}
				took, cpu := time.Since(t0), cpuTime()-cpu0
				b.StopTimer()
				if c.Stats.Recipients != int64(customers) {
					b.Fatalf("planned %d envelopes, want %d", c.Stats.Recipients, customers)
				}
				b.Logf("%s: %d customers, %d staff: seed %s, index %s, plan %s (Siyu CPU %s; %d batches, %d over cap)", engine, customers, staffN,
					seeded.Round(time.Millisecond), indexed.Round(time.Millisecond), took.Round(time.Millisecond), cpu.Round(time.Millisecond),
					c.Stats.Batches, c.Stats.OverCap)
				b.StartTimer()
			}
		})
	}
}

// cpuTime is the CPU time this process used so far (user + system): on a
// shared machine the planning's own cost, apart from waiting for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchChannel stands in for WeCom's customer channel: planning never calls it.
type benchChannel struct{}

func (benchChannel) Name() string { return message.ChannelWeComCustomer }
func (benchChannel) Rules() message.Rules {
	return message.Rules{MaxRecipients: 10000, MaxAttachments: 9, MaxTextBytes: 4000, Capped: true, PollEvery: time.Minute}
}
func (benchChannel) Deliver(context.Context, message.Delivery) (message.Accepted, error) {
	return message.Accepted{}, nil
}
func (benchChannel) Find(context.Context, message.Delivery) (string, bool, error) {
	return "", false, nil
}
func (benchChannel) Results(context.Context, message.Delivery, string) (message.Results, error) {
	return message.Results{}, nil
}

// seedMass writes staff, customers, WeCom relations and today's earlier
// mass messages with multi-row INSERTs of literal values.
func seedMass(b *testing.B, d *db.DB, tenantID int64, customers, staffN int, now time.Time) {
	ctx := context.Background()
	ms := now.UnixMilli()
	insert := func(head string, n int, row func(i int) string) {
		const per = 2000
		for start := 0; start < n; start += per {
			end := min(start+per, n)
			rows := make([]string, 0, end-start)
			for i := start; i < end; i++ {
				rows = append(rows, row(i))
			}
			if _, err := d.ExecContext(ctx, head+strings.Join(rows, ",")); err != nil {
				b.Fatal(err)
			}
		}
	}
	insert(`INSERT INTO staff (id, tenant_id, name, wecom_userid, status, created_at) VALUES `, staffN, func(i int) string {
		return fmt.Sprintf("(%d, %d, '员工%d', 'staff%d', 'active', %d)", i+1, tenantID, i, i, ms)
	})
	insert(`INSERT INTO customers (id, tenant_id, name, first_seen_at, last_seen_at, created_at, updated_at) VALUES `, customers, func(i int) string {
		return fmt.Sprintf("(%d, %d, '客户%d', %d, %d, %d, %d)", i+1, tenantID, i, ms, ms, ms, ms)
	})
	// One relation per customer, and a second, later one for every tenth.
	insert(`INSERT INTO staff_relations (tenant_id, staff_id, channel, external_id, customer_id, status, added_at, created_at, updated_at) VALUES `,
		customers+customers/10, func(i int) string {
			cust, staffIdx, added := i, i%staffN, ms-int64(i)
			if i >= customers {
				cust = (i - customers) * 10
				staffIdx, added = (cust+1)%staffN, ms
			}
			return fmt.Sprintf("(%d, %d, 'wecom', 'wm%d', %d, 'active', %d, %d, %d)", tenantID, staffIdx+1, cust, cust+1, added, ms, ms)
		})
	if _, err := d.ExecContext(ctx, `INSERT INTO message_contents (id, tenant_id, hash, body, created_at) VALUES (1000000, $1, 'seed', '{}', $2)`,
		tenantID, ms); err != nil {
		b.Fatal(err)
	}
	insert(`INSERT INTO message_envelopes (tenant_id, channel, idem_key, customer_id, account, recipient, content_id, status, cap_at, sent_at,
		created_at, updated_at) VALUES `, customers/10, func(i int) string {
		cust := i * 10
		return fmt.Sprintf("(%d, '%s', 'seed:%d', %d, 'staff%d', 'wm%d', 1000000, 'sent', %d, %d, %d, %d)", tenantID, message.ChannelWeComCustomer,
			cust, cust+1, cust%staffN, cust, ms-1000, ms-1000, ms, ms)
	})
	analyze := `ANALYZE`
	if d.Dialect == db.Postgres {
		analyze = `VACUUM ANALYZE`
	}
	if _, err := d.ExecContext(ctx, analyze); err != nil {
		b.Fatal(err)
	}
}
