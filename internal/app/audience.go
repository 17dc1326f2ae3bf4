package app

import (
	"context"
	"crypto/rand"
	"log/slog"
	"time"

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

// audienceSources tells the audience index where its data comes from. Each
// domain offers plain bulk reads; the adapters below give them the shapes the
// index asks for, so no domain depends on the audience package.
func (a *App) audienceSources() audience.Sources {
	tags := tagSource{a.Tags}
	return audience.Sources{
		Profiles: a.Customers,
		Spend:    spendSource{a.Commerce},
		Tags:     a.Tags,
		Scores:   a.Analytics,
		Events:   a.Events,
		Scan:     func(tenantID int64) audience.Scanner { return scanner{tenantID, a} },
		Location: func(ctx context.Context, tenantID int64) (*time.Location, error) {
			w, err := a.Tenant.Workspace(ctx, tenantID)
			if err != nil {
				return nil, err
			}
			return w.Location(), nil
		},
		Feeds: audience.ChangeFeeds{Profiles: a.Customers, Spend: a.Commerce, Tags: tags, Scores: a.Analytics, Events: a.Events},
	}
}

// AudienceSourcesOn returns the audience index's sources reading database d,
// wired as New wires them, so `siyu bench audience` times the server's own
// rebuild. The index reads no personal data, so a throwaway key serves.
func AudienceSourcesOn(d *db.DB, log *slog.Logger) audience.Sources {
	if log == nil {
		log = slog.Default()
	}
	master := make([]byte, 32)
	rand.Read(master)
	kr, _ := pii.NewKeyring(master)
	a := &App{DB: d, Log: log, Keyring: kr}
	a.Tenant = tenant.NewService(d, tenant.Options{Logger: log})
	a.Customers = customer.NewService(d, kr, log)
	a.Staff = staff.NewService(d)
	a.Tags = tag.NewService(d, tag.Options{Logger: log, Auditor: a.Tenant})
	a.Events = event.NewService(d, event.Options{Logger: log, Auditor: a.Tenant})
	a.Commerce = commerce.NewService(d, a.Customers, a.Staff, log)
	a.Analytics = a.newAnalytics()
	return a.audienceSources()
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
			sp = commerce.Spend{CustomerID: id} // no paid orders (any more)
		}
		if err := fn(spendRow(sp)); err != nil {
			return err
		}
	}
	return nil
}

type tagSource struct{ t *tag.Service }

func (s tagSource) TagsChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error) {
	return s.t.ChangedSince(ctx, tenantID, since)
}

func (s tagSource) TagsOf(ctx context.Context, tenantID int64, ids []int64) (map[int64][]int64, error) {
	return s.t.TagIDsOf(ctx, tenantID, ids)
}

// scanner answers, from the event and order logs, the conditions the index
// does not hold.
type scanner struct {
	tenantID int64
	a        *App
}

func (s scanner) EventCounts(ctx context.Context, c audience.Condition, from, to time.Time) (map[int64]int64, error) {
	var keep func(map[string]any) bool
	if len(c.Where) > 0 {
		keep = audience.MatchProps(c.Where)
	}
	return s.a.Events.EventCounts(ctx, s.tenantID, c.Event, from, to, keep)
}

func (s scanner) OrderValues(ctx context.Context, o audience.OrderCond, from, to time.Time) (map[int64]int64, error) {
	return s.a.Commerce.OrderValues(ctx, s.tenantID, commerce.OrderValueQuery{
		Metric: commerce.OrderMetric(o.Metric), SKU: o.SKU, Category: o.Category, From: from, To: to})
}

// buildAudienceIndexes builds every workspace's index, logging progress.
func (a *App) buildAudienceIndexes(ctx context.Context) {
	ids, err := a.Tenant.WorkspaceIDs(ctx)
	if err != nil {
		a.Log.Error("audience: unable to list workspaces", "err", err)
		return
	}
	for _, id := range ids {
		if err := a.Audiences.Build(ctx, id); err != nil && ctx.Err() == nil {
			a.Log.Error("audience: index build failed; it will be retried on first use", "tenant", id, "err", err)
		}
	}
}
