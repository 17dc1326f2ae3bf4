package message_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// env is a workspace connected to a simulated corp, with the outbox and the
// WeCom channels, all on the simulator's clock.
type env struct {
	ctx     context.Context
	d       *db.DB
	sim     *wecomtest.Server
	wc      *wecom.Service
	aud     *audience.Service
	tenants *tenant.Service
	cust    *customer.Service
	ws      tenant.Workspace
	msgs    *message.Service
	opts    message.Options
}

const pollEvery = 10 * time.Minute

func newEnv(t *testing.T, d *db.DB, o message.Options) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := pii.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{ctx: ctx, d: d}
	e.tenants = tenant.NewService(d, tenant.Options{Logger: log})
	e.ws, err = e.tenants.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "tea", Name: "茶语"})
	if err != nil {
		t.Fatal(err)
	}
	e.cust = customer.NewService(d, kr, log)
	st := staff.NewService(d)
	tags := tag.NewService(d, tag.Options{Logger: log, Auditor: e.tenants})
	e.sim = wecomtest.New(wecomtest.Options{CallbackRetries: -1})
	t.Cleanup(e.sim.Close)
	e.wc = wecom.NewService(d, kr, e.cust, st, tags, e.tenants, wecom.Options{Logger: log, PublicURL: "https://siyu.example.com", Now: e.sim.Now,
		ClientConfig: func(_ int64, c *wecom.Config) { c.Now, c.Sleep = e.sim.Now, e.sim.Sleep }})
	if _, err := e.wc.Configure(ctx, tenant.System(e.ws.ID), wecom.SettingsInput{CorpID: e.sim.CorpID(), AgentID: e.sim.AgentID(),
		Secret: e.sim.Secret(), Token: e.sim.CallbackToken(), EncodingAESKey: e.sim.EncodingAESKey(), BaseURL: e.sim.URL()}); err != nil {
		t.Fatal(err)
	}
	e.aud = audience.NewService(d, app.AudienceSourcesOn(d, log), log)
	o.Logger, o.Now = log, e.sim.Now
	e.opts = o
	e.msgs = e.start()
	return e
}

// start builds an outbox on the database, as a (re)started Siyu does.
func (e *env) start() *message.Service {
	m := message.NewService(e.d, e.aud, e.tenants, e.opts)
	for _, ch := range e.wc.MessageChannels(wecom.ChannelOptions{PollEvery: pollEvery}) {
		m.Register(ch)
	}
	return m
}

func (e *env) admin() tenant.Principal { return tenant.System(e.ws.ID) }

// staff adds members to the corp.
func (e *env) staff(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := e.sim.PutStaff(wecomtest.Staff{UserID: id, Name: "员工" + id}); err != nil {
			t.Fatal(err)
		}
	}
}

// contact adds a customer followed by the given staff, in that order, a
// minute apart.
func (e *env) contact(t *testing.T, name string, staff ...string) string {
	t.Helper()
	var fs []wecomtest.Follow
	for i, s := range staff {
		fs = append(fs, wecomtest.Follow{UserID: s, CreateTime: e.sim.Now().Add(time.Duration(i-100) * time.Minute)})
	}
	c, err := e.sim.PutContact(wecomtest.Contact{Name: name}, fs...)
	if err != nil {
		t.Fatal(err)
	}
	return c.ExternalUserID
}

// sync mirrors the corp into Siyu and refreshes the audience index.
func (e *env) sync(t *testing.T) {
	t.Helper()
	run, err := e.wc.SyncNow(e.ctx, e.ws.ID, wecom.SyncFull)
	if err != nil || run.Status != wecom.SyncDone {
		t.Fatalf("sync: %v %s", err, run.Error)
	}
	if err := e.aud.Sync(e.ctx, e.ws.ID); err != nil {
		t.Fatal(err)
	}
}

// everyone is a condition every customer matches.
func everyone() *audience.Condition {
	return &audience.Condition{Attr: "first_seen_at", Op: "is_set"}
}

func (e *env) drain(t *testing.T) {
	t.Helper()
	if err := e.msgs.Drain(e.ctx); err != nil {
		t.Fatal(err)
	}
}

// campaign creates a customers campaign to everyone with a text.
func (e *env) campaign(t *testing.T, name string, target message.Target) message.Campaign {
	t.Helper()
	if target.AudienceID == 0 && target.Condition == nil && target.ChatIDs == nil && target.GroupOwners == nil {
		target.Condition = everyone()
	}
	kind := message.KindCustomers
	if target.ChatIDs != nil || target.GroupOwners != nil {
		kind = message.KindGroups
	}
	c, err := e.msgs.CreateCampaign(e.ctx, e.admin(), message.CampaignInput{Name: name, Kind: kind, Target: target,
		Content: message.Content{Text: name + " from {{staff_name}}"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) get(t *testing.T, id int64) message.Campaign {
	t.Helper()
	c, err := e.msgs.Campaign(e.ctx, e.ws.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// recipients lists a campaign's per-recipient results.
func (e *env) recipients(t *testing.T, id int64, q message.RecipientQuery) []message.RecipientResult {
	t.Helper()
	var out []message.RecipientResult
	r := page.Request{Limit: 3}
	for {
		pg, err := e.msgs.RecipientResults(e.ctx, e.ws.ID, id, q, r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pg.Items...)
		if pg.Next == "" {
			return out
		}
		r.Cursor = pg.Next
	}
}

// perCustomer counts, per recipient, the templates the simulator accepted
// that name them, and fails when one names them twice.
func (e *env) perRecipient(t *testing.T) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, m := range e.sim.MassMessages() {
		for _, r := range m.Recipients {
			n[r]++
			if n[r] > 1 {
				t.Fatalf("%s is in more than one accepted mass message", r)
			}
		}
	}
	return n
}

func (e *env) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := e.d.ExecContext(e.ctx, q, args...); err != nil {
		t.Fatal(err)
	}
}

func (e *env) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := e.d.QueryRowContext(e.ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) enqueue(t *testing.T, env message.Envelope) (int64, bool) {
	t.Helper()
	var id int64
	var created bool
	err := e.d.Tx(e.ctx, func(tx *sql.Tx) error {
		var err error
		id, created, err = e.msgs.Enqueue(e.ctx, tx, env)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id, created
}

func (e *env) envelope(t *testing.T, id int64) message.EnvelopeRecord {
	t.Helper()
	r, err := e.msgs.Envelope(e.ctx, e.ws.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wecomtest0(name string) wecomtest.Contact { return wecomtest.Contact{Name: name} }

func followOf(userID string, at time.Time) wecomtest.Follow {
	return wecomtest.Follow{UserID: userID, CreateTime: at}
}

func name(i int) string { return fmt.Sprintf("客户%05d", i) }

func errCode(err error) string { return errs.CodeOf(err) }

func (e *env) customerByExt(t *testing.T, ext string) customer.Customer {
	t.Helper()
	pg, err := e.cust.List(e.ctx, e.ws.ID, customer.Query{Identifier: customer.KindWeComExtID + ":" + ext}, page.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pg.Items) != 1 {
		t.Fatalf("customers with %s: %d", ext, len(pg.Items))
	}
	return pg.Items[0]
}
