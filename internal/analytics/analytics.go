// Package analytics computes each customer's attributes that depend on the
// whole workspace or on the calendar: RFM scores and class, lifecycle stage
// and fan tier. The rules are in docs/scores.md (zh-CN and English) and
// below; every threshold is a field of ScoreSettings that a workspace can
// change.
//
// # RFM
//
// For each customer with at least one kept order (a paid order not refunded
// in full):
//
//	R = calendar days since the last paid order (workspace time zone)
//	F = kept orders
//	M = net spend in fen (paid − refunded)
//
// Each is scored 1–5 against the workspace's distribution over its buyers:
// a value scores by its mid-rank percentile p = (buyers below + buyers
// equal / 2) / buyers as 1 + ⌊5p⌋, so without ties the scores are quintiles,
// and customers with equal values always share a score. R is reversed (more
// recent is higher). Customers without orders score 0 and have no class.
//
// The class says which of R, F and M are high (↑). By default (class_by
// "average") a score above the workspace's mean score of that metric is
// high; with "threshold" a score above a fixed score (default 3); with
// "value_average" a value better than the workspace's mean value (fewer days,
// more orders, more spend). M splits 重要 from 一般, R and F the rest:
//
//	重要价值客户 R↑F↑M↑   一般价值客户 R↑F↑M↓
//	重要发展客户 R↑F↓M↑   一般发展客户 R↑F↓M↓
//	重要保持客户 R↓F↑M↑   一般保持客户 R↓F↑M↓
//	重要挽留客户 R↓F↓M↑   一般挽留客户 R↓F↓M↓
//
// # Lifecycle stage
//
// The first rule that holds wins ("idle" = days since the latest of the last
// order and the last time the customer was seen, events included):
//
//	衰退期 decline     idle ≥ decline_days (90), or a buyer whose last order
//	                   is ≥ lapsed_buyer_days (180) old
//	延展期 extension   mature (below) and bought from ≥ extension_min_categories
//	                   (3) categories or first ordered ≥ extension_min_tenure_days
//	                   (365) ago
//	成熟期 maturity    ≥ mature_min_orders (3) kept orders, F and M scores
//	                   ≥ mature_min_score (4), last order ≤ mature_recent_days (60) ago
//	成长期 growth      ≥ growth_min_orders (2) kept orders
//	初培期 onboarding  everyone else: new customers and those who have not yet
//	                   bought twice
//
// # Fan tier
//
// Interactions are track, page and screen events (or only the names listed in
// interaction_events), counted over the last 30 and 90 calendar days:
//
//	路人粉 passer-by   idle ≥ cool_off_days (180), whatever came before
//	真爱粉 devoted     ≥ devoted_min_orders (3) kept orders, or
//	                   ≥ devoted_min_events_30d (10) interactions in 30 days
//	好感粉 favourable  ≥ favourable_min_orders (1) kept order, or
//	                   ≥ favourable_min_events_90d (3) interactions in 90 days
//	路人粉 passer-by   everyone else
//
// # Computation
//
// A full run per workspace measures the distribution (one pass over the spend
// rows: exact up to Options.SampleSize buyers, 1,000,000 by default, a
// uniform reservoir sample of that size beyond, which puts a boundary within
// about 0.1 percentile point), then pages through the customers in id order
// and writes only the rows whose values changed, so customer_scores.updated_at
// is a change feed. It runs daily at the workspace's recompute hour, when
// asked (API, settings change), and when a workspace has never been scored.
// Every minute, customers whose spend or profile changed are rescored
// against the scale of the last full run without measuring it again.
package analytics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Profiles is what the rules read of customer profiles (customer.Service).
type Profiles interface {
	SeenPage(ctx context.Context, tenantID, afterID int64, limit int) ([]customer.Seen, error)
	SeenOf(ctx context.Context, tenantID int64, ids []int64) ([]customer.Seen, error)
	ChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error)
	Count(ctx context.Context, tenantID int64) (int64, error)
}

// Spend is what the rules read of orders (commerce.Service).
type Spend interface {
	EachSpend(ctx context.Context, tenantID int64, fn func(commerce.Spend) error) error
	Spends(ctx context.Context, tenantID int64, customerIDs []int64) (map[int64]commerce.Spend, error)
	CategoryCounts(ctx context.Context, tenantID int64, customerIDs []int64) (map[int64]int64, error)
	SpendChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error)
}

// Interactions counts behaviour events (event.Service).
type Interactions interface {
	CountInteractions(ctx context.Context, tenantID int64, customerIDs []int64, names []string, since ...time.Time) (map[int64][]int64, error)
}

// Auditor records administrative actions (tenant.Service).
type Auditor interface {
	Audit(ctx context.Context, q db.Querier, p tenant.Principal, action, targetKind, targetID, detail string) error
}

var (
	_ Profiles     = (*customer.Service)(nil)
	_ Spend        = (*commerce.Service)(nil)
	_ Interactions = (*event.Service)(nil)
	_ Auditor      = (*tenant.Service)(nil)

	_ audience.ScoreSource = (*Service)(nil)
)

// Sources are the domains the computation reads.
type Sources struct {
	Profiles Profiles
	Spend    Spend
	Events   Interactions // optional: without it nobody has interactions
	// Workspaces lists the workspaces to keep scored.
	Workspaces func(ctx context.Context) ([]int64, error)
	// Location returns a workspace's time zone, which decides what a day is.
	Location func(ctx context.Context, tenantID int64) (*time.Location, error)
}

// Options configure a Service.
type Options struct {
	Logger  *slog.Logger
	Auditor Auditor
	// Now replaces the clock (tests).
	Now func() time.Time
	// SampleSize bounds the buyers whose values the quintiles are measured on
	// (default 1,000,000): exact below it, a uniform sample above.
	SampleSize int
	// SmallBuyers: a workspace whose last full run found fewer buyers than
	// this (and at most SmallCustomers customers) is recomputed in full when
	// spend changes, as that is cheap and keeps the quintiles exact (default
	// 1,000; negative: never).
	SmallBuyers int64
	// SmallCustomers is the customer bound for SmallBuyers (default 50,000).
	SmallCustomers int64
}

// Service computes, stores and serves the computed attributes.
type Service struct {
	db    *db.DB
	src   Sources
	log   *slog.Logger
	audit Auditor
	now   func() time.Time
	o     Options
	wake  chan struct{}
}

// NewService returns the analytics service on d.
func NewService(d *db.DB, src Sources, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SampleSize <= 0 {
		o.SampleSize = 1_000_000
	}
	if o.SmallBuyers == 0 {
		o.SmallBuyers = 1000
	}
	if o.SmallCustomers == 0 {
		o.SmallCustomers = 50_000
	}
	if src.Location == nil {
		src.Location = func(context.Context, int64) (*time.Location, error) { return time.UTC, nil }
	}
	return &Service{db: d, src: src, log: o.Logger, audit: o.Auditor, now: o.Now, o: o, wake: make(chan struct{}, 1)}
}

// wakeUp makes Run look for work now rather than at its next tick.
func (s *Service) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// token names one holder of a workspace's lease.
func token() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
