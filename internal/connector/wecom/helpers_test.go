package wecom_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fixture is one workspace connected to a simulated corp, with the callback
// endpoint served over HTTP as the app mounts it.
type fixture struct {
	d         *db.DB
	sim       *wecomtest.Server
	svc       *wecom.Service
	customers *customer.Service
	staff     *staff.Service
	tags      *tag.Service
	tenants   *tenant.Service
	ws        tenant.Workspace
	srv       *httptest.Server
	logs      *logBuffer
	ctx       context.Context
}

type fixtureOptions struct {
	format      wecom.Format
	maxAttempts int
	noConfigure bool
}

func newFixture(t *testing.T, d *db.DB, opts ...fixtureOptions) *fixture {
	t.Helper()
	var o fixtureOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx := context.Background()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := pii.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tenants := tenant.NewService(d, tenant.Options{Logger: log})
	ws, err := tenants.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "tea", Name: "茶语"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{d: d, tenants: tenants, ws: ws, logs: logs, ctx: ctx}
	f.customers = customer.NewService(d, kr, log)
	f.staff = staff.NewService(d)
	f.tags = tag.NewService(d, tag.Options{Logger: log, Auditor: tenants})
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.sim = wecomtest.New(wecomtest.Options{CallbackURL: f.srv.URL + "/connect/wecom/tea/callback", CallbackFormat: o.format, CallbackRetries: -1})
	t.Cleanup(f.sim.Close)
	f.svc = wecom.NewService(d, kr, f.customers, f.staff, f.tags, tenants, wecom.Options{
		Logger: log, PublicURL: "https://siyu.example.com", Now: f.sim.Now, MaxAttempts: o.maxAttempts,
		ClientConfig: func(_ int64, c *wecom.Config) { c.Now, c.Sleep = f.sim.Now, f.sim.Sleep },
	})
	f.customers.OnMerge("staff_relations", f.staff.MoveCustomer)
	f.customers.OnMerge("wecom", f.svc.MoveCustomer)
	f.customers.AddTimelineSource(f.svc)
	mux.Handle("GET "+wecom.CallbackPath, f.svc.Handler())
	mux.Handle("POST "+wecom.CallbackPath, f.svc.Handler())
	if !o.noConfigure {
		f.configure(t)
	}
	for _, u := range []string{"zhangsan", "lisi"} {
		if _, err := f.sim.PutStaff(wecomtest.Staff{UserID: u, Name: map[string]string{"zhangsan": "张三", "lisi": "李四"}[u]}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) admin() tenant.Principal { return tenant.System(f.ws.ID) }

func (f *fixture) configure(t *testing.T) wecom.Settings {
	t.Helper()
	st, err := f.svc.Configure(f.ctx, f.admin(), wecom.SettingsInput{
		CorpID: f.sim.CorpID(), AgentID: f.sim.AgentID(), Secret: f.sim.Secret(), Token: f.sim.CallbackToken(),
		EncodingAESKey: f.sim.EncodingAESKey(), BaseURL: f.sim.URL(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// drain processes every due inbox event and fails on none failing.
func (f *fixture) drain(t *testing.T) {
	t.Helper()
	if _, err := f.svc.Drain(f.ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
}

// inbox returns the workspace's stored callbacks, oldest first.
func (f *fixture) inbox(t *testing.T) []wecom.InboxEntry {
	t.Helper()
	pg, err := f.svc.Inbox(f.ctx, f.ws.ID, wecom.InboxQuery{}, page.Request{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(pg.Items)
	return pg.Items
}

// requireDone fails unless every stored event was applied (or ignored).
func (f *fixture) requireDone(t *testing.T) {
	t.Helper()
	for _, e := range f.inbox(t) {
		if e.Status != wecom.InboxDone && e.Status != wecom.InboxIgnored {
			t.Fatalf("event %d %s is %s: %s", e.ID, e.Kind, e.Status, e.Error)
		}
	}
}

// customerByExt returns the customer holding an external_userid.
func (f *fixture) customerByExt(t *testing.T, ext string) customer.Customer {
	t.Helper()
	pg, err := f.customers.List(f.ctx, f.ws.ID, customer.Query{Identifier: customer.KindWeComExtID + ":" + ext}, page.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pg.Items) != 1 {
		t.Fatalf("customers with %s: %d", ext, len(pg.Items))
	}
	return pg.Items[0]
}

// relation returns a customer's relation with a staff member by WeCom user id.
func (f *fixture) relation(t *testing.T, customerID int64, userID string) (staff.Relation, bool) {
	t.Helper()
	rels, err := f.staff.CustomerRelations(f.ctx, f.ws.ID, customerID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rels {
		if r.StaffWeComUserID == userID {
			return r, true
		}
	}
	return staff.Relation{}, false
}

// timelineKinds lists the kinds of a customer's WeCom timeline entries,
// oldest first.
func (f *fixture) timelineKinds(t *testing.T, customerID int64) []string {
	t.Helper()
	es, err := f.svc.TimelineEntries(f.ctx, f.ws.ID, customerID, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		out = append(out, es[i].Kind)
	}
	return out
}

// count runs a count query.
func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.d.QueryRowContext(f.ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// tx runs fn in a transaction.
func (f *fixture) tx(t *testing.T, fn func(tx *sql.Tx) error) {
	t.Helper()
	if err := f.d.Tx(f.ctx, fn); err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
