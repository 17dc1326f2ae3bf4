// Package app is the composition root: it opens the database, constructs the
// domain services, mounts the API, console and probes on one mux, and runs the
// HTTP server and background workers until told to stop.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/siyu-dev/siyu/internal/acquire"
	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/api"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/community"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/console"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/handover"
	"github.com/siyu-dev/siyu/internal/importer"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/moment"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// App is a running Siyu: services, HTTP handler and workers.
type App struct {
	Config    Config
	Log       *slog.Logger
	DB        *db.DB
	Keyring   *pii.Keyring
	Tenant    *tenant.Service
	Customers *customer.Service
	Staff     *staff.Service
	Tags      *tag.Service
	TagRules  *tag.Rules
	Events    *event.Service
	Commerce  *commerce.Service
	Audiences *audience.Service
	Analytics *analytics.Service
	Imports   *importer.Service
	WeCom     *wecom.Service
	// Operations (ops.go): the outbox every message goes through, channel
	// codes, customer groups, moments and staff handover.
	Messages  *message.Service
	Acquire   *acquire.Service
	Community *community.Service
	Moments   *moment.Service
	Handover  *handover.Service
	Version   string

	metrics *metrics.Set
	handler http.Handler

	workers sync.WaitGroup
}

// Options are what the caller of New decides beyond the config.
type Options struct {
	Version string
	// HashParams overrides password hashing costs (tests use cheap ones).
	HashParams tenant.HashParams
}

// New opens the database, applies migrations and builds the services.
func New(ctx context.Context, cfg Config, log *slog.Logger, o Options) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, err := db.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	applied, err := d.Migrate(ctx)
	if err != nil {
		d.Close()
		return nil, err
	}
	for _, m := range applied {
		log.Info("migration applied", "version", m.Version, "source", m.Source)
	}
	keyFile := cfg.SecretKeyFile
	if keyFile == "" {
		keyFile = "siyu.key"
		if d.Dialect == db.SQLite {
			keyFile = filepath.Join(filepath.Dir(d.Location), "siyu.key")
		}
	}
	kr, created, err := pii.LoadOrCreateKeyFile(keyFile)
	if err != nil {
		d.Close()
		return nil, err
	}
	if created {
		log.Warn("created a new secret key for personal data; back it up with the database, data encrypted with it cannot be read without it", "file", keyFile)
	}
	a := &App{
		Config:  cfg,
		Log:     log,
		DB:      d,
		Keyring: kr,
		Version: o.Version,
		metrics: metrics.NewSet(),
	}
	a.Tenant = tenant.NewService(d, tenant.Options{Logger: log, HashParams: o.HashParams})
	a.Customers = customer.NewService(d, kr, log)
	a.Staff = staff.NewService(d)
	a.Tags = tag.NewService(d, tag.Options{Logger: log, Auditor: a.Tenant})
	a.Customers.OnMerge("tags", a.Tags.MoveCustomer)
	a.Customers.AddTimelineSource(a.Tags)
	a.Events = event.NewService(d, event.Options{Logger: log, Auditor: a.Tenant})
	a.Customers.OnMerge("events", a.Events.MoveCustomer)
	a.Customers.AddTimelineSource(a.Events)
	a.Commerce = commerce.NewService(d, a.Customers, a.Staff, log)
	a.Customers.OnMerge("orders", a.Commerce.MoveCustomer)
	a.Customers.AddTimelineSource(a.Commerce)
	a.Imports = importer.NewService(d, a.Customers, a.Tenant, log, importer.Options{Orders: a.Commerce})
	a.Analytics = a.newAnalytics()
	a.Audiences = audience.NewService(d, a.audienceSources(), log)
	// Tag changes reach the index at once; other nodes' through its feed.
	a.Tags.Observe(a.Audiences)
	a.TagRules = a.newTagRules()
	// WeCom connector: callbacks, inbox worker, staff relations, timeline.
	publicURL := cfg.BaseURL
	if publicURL == "" {
		publicURL = "http://" + cfg.Addr
	}
	a.WeCom = wecom.NewService(d, kr, a.Customers, a.Staff, a.Tags, a.Tenant, wecom.Options{Logger: log, PublicURL: publicURL})
	a.Customers.OnMerge("staff_relations", a.Staff.MoveCustomer)
	a.Customers.OnMerge("wecom", a.WeCom.MoveCustomer)
	a.Customers.AddTimelineSource(a.WeCom)
	a.newOperations() // ops.go
	a.registerDBMetrics()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /metrics", a.serveMetrics)
	api.Register(mux, api.Deps{Log: log, Tenant: a.Tenant, Customers: a.Customers, Staff: a.Staff, Tags: a.Tags, TagRules: a.TagRules, Events: a.Events, Commerce: a.Commerce, Imports: a.Imports, Audiences: a.Audiences, Analytics: a.Analytics, WeCom: a.WeCom,
		Messages: a.Messages, Acquire: a.Acquire, Community: a.Community, Moments: a.Moments, Handover: a.Handover, Version: o.Version})
	// WeCom connector: the callback endpoint (the signature is the auth).
	mux.Handle("GET "+wecom.CallbackPath, a.WeCom.Handler())
	mux.Handle("POST "+wecom.CallbackPath, a.WeCom.Handler())
	con, err := console.New(console.Deps{
		Log:     log,
		Tenant:  a.Tenant,
		Version: o.Version,
		Secure:  strings.HasPrefix(cfg.BaseURL, "https://"),

		Customers: a.Customers,
		Commerce:  a.Commerce,
		Events:    a.Events,
		Imports:   a.Imports,
		Staff:     a.Staff,
		Tags:      a.Tags,
		TagRules:  a.TagRules,
		Audiences: a.Audiences,
		Analytics: a.Analytics,
		WeCom:     a.WeCom,
		Messages:  a.Messages,
		Acquire:   a.Acquire,
		Community: a.Community,
		Moments:   a.Moments,
		Handover:  a.Handover,
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	con.Register(mux)
	a.handler = a.middleware(mux)
	return a, nil
}

// Handler is the whole HTTP surface.
func (a *App) Handler() http.Handler { return a.handler }

// Serve serves HTTP on ln and runs the background workers until ctx is done,
// then shuts down gracefully: stop accepting, let in-flight requests and
// workers finish (up to Config.ShutdownTimeout), close the database.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	wctx, stopWorkers := context.WithCancel(context.Background())
	a.startWorkers(wctx)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.Log.Info("listening", "addr", ln.Addr().String(), "db", a.DB.Location)

	var serveErr error
	select {
	case <-ctx.Done():
		a.Log.Info("shutting down")
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		a.Log.Warn("HTTP shutdown incomplete", "err", err)
	}
	stopWorkers()
	done := make(chan struct{})
	go func() { a.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		a.Log.Warn("background work did not finish before the shutdown timeout")
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// Close closes the database.
func (a *App) Close() error { return a.DB.Close() }

// startWorkers runs the periodic jobs. Each is a ticker loop that stops when
// ctx is cancelled; the database is the queue.
func (a *App) startWorkers(ctx context.Context) {
	// Audience indexes: built for every workspace at start (so the first
	// count is fast), then following the database and keeping saved
	// audiences live.
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		a.buildAudienceIndexes(ctx)
		a.Audiences.Run(ctx, time.Second)
	}()
	// Auto-tag rules: real-time workers, daily schedule runs, back-fills and
	// attribute changes.
	a.runTagRules(ctx)
	// Resolves ingested events to customers; woken by each ingest commit.
	events := a.Events.NewProcessor(a.Customers, event.ProcessorOptions{})
	a.workers.Add(1)
	go func() { defer a.workers.Done(); events.Run(ctx) }()
	// Runs queued imports (woken when one is queued here) and resumes those
	// a stopped worker left.
	a.workers.Add(1)
	go func() { defer a.workers.Done(); a.Imports.Work(ctx) }()
	// WeCom connector: processes stored callbacks; woken by each one stored.
	a.workers.Add(1)
	go func() { defer a.workers.Done(); a.WeCom.Run(ctx) }()
	// WeCom sync: queued and scheduled syncs (full on connect, reconcile
	// daily), runs taken over from dead nodes, and tag marks sent to WeCom.
	a.workers.Add(1)
	go func() { defer a.workers.Done(); a.WeCom.RunSync(ctx) }()
	// Computed attributes (RFM, lifecycle, fan tier): every workspace scored
	// at start when it never was or missed its daily run, in full daily and
	// on request, and customers whose orders or activity changed every minute.
	a.workers.Add(1)
	go func() { defer a.workers.Done(); a.Analytics.Run(ctx, time.Minute) }()
	a.startOperations(ctx) // ops.go
	a.every(ctx, "purge-sessions", time.Hour, func(ctx context.Context) error {
		n, err := a.Tenant.PurgeExpiredSessions(ctx)
		if n > 0 {
			a.Log.Info("purged expired sessions", "count", n)
		}
		return err
	})
}

func (a *App) every(ctx context.Context, name string, interval time.Duration, fn func(context.Context) error) {
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				a.Log.Error("worker failed", "worker", name, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"ok","version":%q}`+"\n", a.Version)
}

func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	if err := a.DB.PingContext(ctx); err != nil {
		a.Log.Warn("readiness check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"status":"unavailable","reason":"database unreachable"}`)
		return
	}
	fmt.Fprintln(w, `{"status":"ready"}`)
}

// LogLevel parses a level name; Validate has checked it.
func LogLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}

// NewLogger builds the program's logger from the config.
func NewLogger(cfg Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: LogLevel(cfg.LogLevel)}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
