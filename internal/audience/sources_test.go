package audience_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// services are the domains the index reads, wired as internal/app wires them.
type services struct {
	tenant    *tenant.Service
	customers *customer.Service
	tags      *tag.Service
	events    *event.Service
	commerce  *commerce.Service
	analytics *analytics.Service
}

func newServices(d *db.DB, log *slog.Logger) services {
	master := make([]byte, 32)
	rand.Read(master)
	kr, _ := pii.NewKeyring(master)
	var s services
	s.tenant = tenant.NewService(d, tenant.Options{Logger: log, HashParams: tenant.HashParams{Time: 1, MemoryKiB: 64, Threads: 1}})
	s.customers = customer.NewService(d, kr, log)
	s.tags = tag.NewService(d, tag.Options{Logger: log, Auditor: s.tenant})
	s.customers.OnMerge("tags", s.tags.MoveCustomer)
	s.events = event.NewService(d, event.Options{Logger: log, Auditor: s.tenant})
	s.customers.OnMerge("events", s.events.MoveCustomer)
	s.commerce = commerce.NewService(d, s.customers, staff.NewService(d), log)
	s.customers.OnMerge("orders", s.commerce.MoveCustomer)
	s.analytics = analytics.NewService(d, analytics.Sources{
		Profiles: s.customers, Spend: s.commerce, Events: s.events,
		Workspaces: s.tenant.WorkspaceIDs, Location: s.location,
	}, analytics.Options{Logger: log, Auditor: s.tenant})
	return s
}

func (s services) location(ctx context.Context, tenantID int64) (*time.Location, error) {
	w, err := s.tenant.Workspace(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return w.Location(), nil
}

// sources mirrors internal/app's audienceSources.
func (s services) sources() audience.Sources {
	return audience.Sources{
		Profiles: s.customers,
		Spend:    spendSource{s.commerce},
		Tags:     s.tags,
		Scores:   s.analytics,
		Events:   s.events,
		Location: s.location,
		Feeds:    audience.ChangeFeeds{Profiles: s.customers, Spend: s.commerce, Tags: tagFeed{s.tags}, Scores: s.analytics, Events: s.events},
	}
}

type spendSource struct{ c *commerce.Service }

func spendRow(s commerce.Spend) audience.SpendRow {
	return audience.SpendRow{CustomerID: s.CustomerID, OrderCount: s.OrderCount, NetFen: s.NetFen, FirstOrderAt: s.FirstOrderAt, LastOrderAt: s.LastOrderAt}
}

func (s spendSource) EachSpend(ctx context.Context, tenantID int64, fn func(audience.SpendRow) error) error {
	return s.c.EachSpend(ctx, tenantID, func(sp commerce.Spend) error { return fn(spendRow(sp)) })
}

func (s spendSource) SpendFor(ctx context.Context, tenantID int64, ids []int64, fn func(audience.SpendRow) error) error {
	m, err := s.c.Spends(ctx, tenantID, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		sp, ok := m[id]
		if !ok {
			sp = commerce.Spend{CustomerID: id}
		}
		if err := fn(spendRow(sp)); err != nil {
			return err
		}
	}
	return nil
}

type tagFeed struct{ t *tag.Service }

func (s tagFeed) TagsChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error) {
	return s.t.ChangedSince(ctx, tenantID, since)
}

func (s tagFeed) TagsOf(ctx context.Context, tenantID int64, ids []int64) (map[int64][]int64, error) {
	return s.t.TagIDsOf(ctx, tenantID, ids)
}

// BenchmarkRebuild runs `siyu bench audience` without the server around it:
//
//	SIYU_BENCH_CUSTOMERS=300000 SIYU_BENCH_DB=/tmp/bench.db,postgres://… \
//	  go test -run '^$' -bench Rebuild -benchtime 1x ./internal/audience/
//
// (SIYU_BENCH_PROFILE=cpu.prof adds a CPU profile of each rebuild).
func BenchmarkRebuild(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("SIYU_BENCH_CUSTOMERS"))
	o := audience.BenchOptions{Customers: max(n, 10_000), Queries: 100, SQLRuns: 1, CPUProfile: os.Getenv("SIYU_BENCH_PROFILE"),
		Sources: func(d *db.DB) audience.Sources { return newServices(d, slog.New(slog.DiscardHandler)).sources() }}
	if dsns := os.Getenv("SIYU_BENCH_DB"); dsns != "" {
		o.DSNs = strings.Split(dsns, ",")
	} else {
		o.DSNs = []string{b.TempDir() + "/bench.db"}
	}
	for b.Loop() {
		if err := audience.RunBench(context.Background(), o, os.Stdout); err != nil {
			b.Fatal(err)
		}
	}
}
