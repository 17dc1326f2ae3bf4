package wecom_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// syncFix is a workspace connected to a populated simulated corp, with the
// callback endpoint served, and a hook on every API request the connector
// sends (to crash, fail or revoke the secret in the middle of a sync).
type syncFix struct {
	d         *db.DB
	kr        *pii.Keyring
	sim       *wecomtest.Server
	svc       *wecom.Service
	customers *customer.Service
	staff     *staff.Service
	tags      *tag.Service
	tenants   *tenant.Service
	ws        tenant.Workspace
	ctx       context.Context

	limits wecom.Limits // the client's budgets (zero: WeCom's)

	mu     sync.Mutex
	onCall func(api string, n int) // n: the how-many-th call of api
	calls  map[string]int
}

type hookTransport struct{ f *syncFix }

func (h hookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	api := strings.TrimPrefix(r.URL.Path, "/cgi-bin/")
	h.f.mu.Lock()
	h.f.calls[api]++
	n, hook := h.f.calls[api], h.f.onCall
	h.f.mu.Unlock()
	if hook != nil {
		hook(api, n)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// hook sets what happens before each API request; counting restarts.
func (f *syncFix) hook(fn func(api string, n int)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onCall, f.calls = fn, map[string]int{}
}

func newSyncFix(t testing.TB, d *db.DB, contacts, staffCount int) *syncFix {
	t.Helper()
	ctx := context.Background()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := pii.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	f := &syncFix{d: d, kr: kr, ctx: ctx, calls: map[string]int{}}
	f.tenants = tenant.NewService(d, tenant.Options{Logger: log})
	if f.ws, err = f.tenants.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "bloom", Name: "花间"}); err != nil {
		t.Fatal(err)
	}
	f.customers = customer.NewService(d, kr, log)
	f.staff = staff.NewService(d)
	f.tags = tag.NewService(d, tag.Options{Logger: log, Auditor: f.tenants})
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	f.sim = wecomtest.New(wecomtest.Options{CallbackURL: hs.URL + "/connect/wecom/bloom/callback", CallbackRetries: -1})
	t.Cleanup(f.sim.Close)
	if err := wecomtest.Populate(f.sim.Corp, contacts, staffCount, 7); err != nil {
		t.Fatal(err)
	}
	f.svc = f.service(log)
	f.customers.OnMerge("staff_relations", f.staff.MoveCustomer)
	f.customers.OnMerge("wecom", f.svc.MoveCustomer)
	mux.Handle("GET "+wecom.CallbackPath, f.svc.Handler())
	mux.Handle("POST "+wecom.CallbackPath, f.svc.Handler())
	if _, err := f.svc.Configure(ctx, f.admin(), wecom.SettingsInput{CorpID: f.sim.CorpID(), AgentID: f.sim.AgentID(), Secret: f.sim.Secret(),
		Token: f.sim.CallbackToken(), EncodingAESKey: f.sim.EncodingAESKey(), BaseURL: f.sim.URL()}); err != nil {
		t.Fatal(err)
	}
	return f
}

// service returns a connector service on the fixture's database: another
// node when called again.
func (f *syncFix) service(log *slog.Logger) *wecom.Service {
	return wecom.NewService(f.d, f.kr, f.customers, f.staff, f.tags, f.tenants, wecom.Options{
		Logger: log, PublicURL: "https://siyu.example.com", Now: f.sim.Now,
		ClientConfig: func(_ int64, c *wecom.Config) {
			c.Now, c.Sleep, c.Limits = f.sim.Now, f.sim.Sleep, f.limits
			c.HTTPClient = &http.Client{Transport: hookTransport{f}, Timeout: 30 * time.Second}
		},
	})
}

func (f *syncFix) admin() tenant.Principal { return tenant.System(f.ws.ID) }

func (f *syncFix) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.d.QueryRowContext(f.ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// scan runs a query with the tenant as $1 and calls fn with each row's
// values, scanned into dst.
func (f *syncFix) scan(t testing.TB, fn func(v []any), q string, dst ...any) {
	t.Helper()
	rows, err := f.d.QueryContext(f.ctx, q, f.ws.ID)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			t.Fatal(err)
		}
		fn(dst)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// customerOf returns the customer of an external contact.
func (f *syncFix) customerOf(t testing.TB, ext string) int64 {
	t.Helper()
	var id int64
	if err := f.d.QueryRowContext(f.ctx, `SELECT customer_id FROM wecom_contacts WHERE tenant_id = $1 AND external_userid = $2`, f.ws.ID, ext).Scan(&id); err != nil {
		t.Fatalf("contact %s: %v", ext, err)
	}
	return id
}

func (f *syncFix) syncNow(t testing.TB, kind wecom.SyncKind) wecom.SyncRun {
	t.Helper()
	r, err := f.svc.SyncNow(f.ctx, f.ws.ID, kind)
	if err != nil {
		t.Fatalf("sync %s: %v", kind, err)
	}
	if r.Status != wecom.SyncDone || r.Percent != 100 {
		t.Fatalf("sync %s ended %s at %d%%: %s", kind, r.Status, r.Percent, r.Error)
	}
	return r
}

func sortedIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// assertMirror checks that Siyu holds the corp as the simulator has it:
// staff, every customer with One ID identities and each staff member's
// relation, no relation WeCom lacks, customer groups with their members, and
// corp tags.
func assertMirror(t testing.TB, f *syncFix) {
	t.Helper()
	ctx, tid := f.ctx, f.ws.ID
	for _, st := range f.sim.StaffList() {
		m, err := f.staff.MemberByWeComUserID(ctx, tid, st.UserID)
		if err != nil {
			t.Fatalf("staff %s: %v", st.UserID, err)
		}
		if m.Name != st.Name || m.Status != staff.Active {
			t.Fatalf("staff %s: %q %s, want %q active", st.UserID, m.Name, m.Status, st.Name)
		}
	}
	// Every contact Siyu knows is one customer; those WeCom still lists
	// mirror it, with every current relation as WeCom has it, and Siyu has
	// no current relation WeCom lacks.
	type siyuContact struct {
		cid  int64
		name string
	}
	known := map[string]siyuContact{}
	f.scan(t, func(v []any) {
		known[*v[0].(*string)] = siyuContact{*v[1].(*int64), *v[2].(*string)}
	}, `SELECT w.external_userid, w.customer_id, c.name FROM wecom_contacts w JOIN customers c ON c.tenant_id = w.tenant_id AND c.id = w.customer_id
		WHERE w.tenant_id = $1`, new(string), new(int64), new(string))
	if n := f.count(t, `SELECT count(*) FROM customers WHERE tenant_id = $1 AND merged_into IS NULL`, tid); n != len(known) {
		t.Fatalf("Siyu has %d customers for %d contacts", n, len(known))
	}
	idents := map[string]int64{}
	f.scan(t, func(v []any) { idents[*v[0].(*string)+":"+*v[1].(*string)] = *v[2].(*int64) },
		`SELECT kind, value, customer_id FROM customer_identities WHERE tenant_id = $1`, new(string), new(string), new(int64))
	type rel struct {
		remark, desc, state, tags string
		addWay                    int64
		added                     int64
	}
	current := map[string]rel{} // external_userid|userid
	f.scan(t, func(v []any) {
		current[*v[0].(*string)+"|"+*v[1].(*string)] = rel{*v[2].(*string), *v[3].(*string), *v[4].(*string), *v[5].(*string), *v[6].(*int64), *v[7].(*int64)}
	}, `SELECT r.external_id, s.wecom_userid, r.remark, r.description, r.state, r.channel_tag_ids, r.add_way, r.added_at FROM staff_relations r
		JOIN staff s ON s.tenant_id = r.tenant_id AND s.id = r.staff_id
		WHERE r.tenant_id = $1 AND r.channel = 'wecom' AND r.status IN ('active', 'half')`,
		new(string), new(string), new(string), new(string), new(string), new(string), new(int64), new(int64))
	follows := 0
	for _, ct := range f.sim.Contacts() {
		sc, ok := known[ct.ExternalUserID]
		if !ok {
			t.Fatalf("Siyu lacks contact %s", ct.ExternalUserID)
		}
		if sc.name != ct.Name {
			t.Fatalf("customer %s named %q, want %q", ct.ExternalUserID, sc.name, ct.Name)
		}
		if idents[customer.KindWeComExtID+":"+ct.ExternalUserID] != sc.cid || (ct.UnionID != "" && idents[customer.KindUnionID+":"+ct.UnionID] != sc.cid) {
			t.Fatalf("customer %s lacks its One ID identities", ct.ExternalUserID)
		}
		_, fs, _ := f.sim.Contact(ct.ExternalUserID)
		for _, w := range fs {
			r, ok := current[ct.ExternalUserID+"|"+w.UserID]
			if !ok {
				t.Fatalf("customer %s: no current relation with %s", ct.ExternalUserID, w.UserID)
			}
			tags, _ := json.Marshal(sortedIDs(w.TagIDs))
			if len(w.TagIDs) == 0 {
				tags = []byte("[]")
			}
			if r.remark != w.Remark || r.desc != w.Description || r.addWay != int64(w.AddWay) || r.state != w.State ||
				r.added/1000 != w.CreateTime.Unix() || r.tags != string(tags) {
				t.Fatalf("relation %s/%s differs:\n siyu  %+v\n wecom %+v", w.UserID, ct.ExternalUserID, r, w)
			}
		}
		follows += len(fs)
	}
	if len(current) != follows {
		t.Fatalf("Siyu has %d current relations, WeCom %d", len(current), follows)
	}
	groups := f.sim.Groups()
	if n := f.count(t, `SELECT count(*) FROM wecom_groups WHERE tenant_id = $1 AND status = 'active'`, tid); n != len(groups) {
		t.Fatalf("Siyu has %d active groups, WeCom %d", n, len(groups))
	}
	for _, g := range groups {
		var name, owner, ver string
		var count int
		if err := f.d.QueryRowContext(ctx, `SELECT name, owner_userid, member_version, member_count FROM wecom_groups WHERE tenant_id = $1 AND chat_id = $2`,
			tid, g.ChatID).Scan(&name, &owner, &ver, &count); err != nil {
			t.Fatalf("group %s: %v", g.ChatID, err)
		}
		if name != g.Name || owner != g.Owner || ver != g.MemberVersion || count != len(g.Members) {
			t.Fatalf("group %s: %q %s %s %d, want %q %s %s %d", g.ChatID, name, owner, ver, count, g.Name, g.Owner, g.MemberVersion, len(g.Members))
		}
		for _, m := range g.Members {
			var status string
			var joined int64
			if err := f.d.QueryRowContext(ctx, `SELECT status, join_time FROM wecom_group_members WHERE tenant_id = $1 AND chat_id = $2 AND member_id = $3`,
				tid, g.ChatID, m.UserID).Scan(&status, &joined); err != nil || status != "in" || joined/1000 != m.JoinTime.Unix() {
				t.Fatalf("member %s of %s: %s %d (%v)", m.UserID, g.ChatID, status, joined, err)
			}
		}
		if n := f.count(t, `SELECT count(*) FROM wecom_group_members WHERE tenant_id = $1 AND chat_id = $2 AND status = 'in'`, tid, g.ChatID); n != len(g.Members) {
			t.Fatalf("group %s: %d members in Siyu, %d in WeCom", g.ChatID, n, len(g.Members))
		}
	}
	tags := 0
	for _, g := range f.sim.TagGroups() {
		tags += 1 + len(g.Tags)
	}
	if n := f.count(t, `SELECT count(*) FROM wecom_corp_tags WHERE tenant_id = $1`, tid); n != tags {
		t.Fatalf("Siyu has %d corp tags and groups, WeCom %d", n, tags)
	}
}

// batchCalls returns the batch/get_by_user requests the simulator received.
func batchCalls(t testing.TB, sim *wecomtest.Server) []wecomtest.Call {
	t.Helper()
	var out []wecomtest.Call
	for _, c := range sim.Calls() {
		if c.API == "externalcontact/batch/get_by_user" {
			out = append(out, c)
		}
	}
	return out
}

// assertBatchLimit checks every batch/get_by_user request named at most 100
// members and asked for 100 contacts a page, never leaving the limit out.
func assertBatchLimit(t testing.TB, sim *wecomtest.Server) {
	t.Helper()
	calls := batchCalls(t, sim)
	if len(calls) == 0 {
		t.Fatal("no batch/get_by_user call")
	}
	for _, c := range calls {
		var body struct {
			UserIDList []string `json:"userid_list"`
			Limit      *int     `json:"limit"`
		}
		if err := json.Unmarshal(c.Body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Limit == nil || *body.Limit != wecom.MaxContactsPerPage || c.Limit != 100 {
			t.Fatalf("batch/get_by_user sent limit %v: %s", body.Limit, c.Body)
		}
		if n := len(body.UserIDList); n < 1 || n > 100 {
			t.Fatalf("batch/get_by_user named %d members", n)
		}
	}
	if n := sim.MaxLimit("externalcontact/batch/get_by_user"); n != 100 {
		t.Fatalf("max limit %d, want 100", n)
	}
}

func TestFullSyncMirrorsCorp(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newSyncFix(t, d, 1000, 10)
		f.sim.HoldCallbacks() // changes below reach Siyu only through sync
		r := f.syncNow(t, wecom.SyncFull)
		assertMirror(t, f)
		assertBatchLimit(t, f.sim)
		_, follows := f.sim.Counts()
		if r.Counts.Contacts != follows || r.Counts.NewRelations != follows || r.Counts.MaxContactLimit != 100 || r.Counts.FollowUsers != 10 {
			t.Fatalf("counts %+v, want %d contacts", r.Counts, follows)
		}
		if r.Counts.Calls["externalcontact/batch/get_by_user"] != len(batchCalls(t, f.sim)) {
			t.Fatalf("calls %v", r.Counts.Calls)
		}
		st, err := f.svc.SyncStatus(f.ctx, f.ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Current != nil || st.Last == nil || st.Last.ID != r.ID || st.LastSuccess == nil || st.Resumable ||
			!st.NextReconcileAt.Equal(st.Last.FinishedAt.Add(24*time.Hour)) {
			t.Fatalf("status %+v", st)
		}

		// WeCom changes while Siyu misses the callbacks; reconciliation
		// repairs: an ended relation, a new contact, changed remark and
		// tags, a group joined, a group dismissed.
		ctx := f.ctx
		contacts := f.sim.Contacts()
		gone := contacts[3]
		_, goneFollows, _ := f.sim.Contact(gone.ExternalUserID)
		if err := f.sim.CustomerDeletesStaff(ctx, goneFollows[0].UserID, gone.ExternalUserID); err != nil {
			t.Fatal(err)
		}
		edited := contacts[5]
		_, ef, _ := f.sim.Contact(edited.ExternalUserID)
		tg, _ := f.sim.TagByName("兴趣", "香水")
		if err := f.sim.EditContact(ctx, ef[0].UserID, edited.ExternalUserID, func(fl *wecomtest.Follow) {
			fl.Remark, fl.Description, fl.TagIDs = "老客户", "喜欢花香", []string{tg.ID}
		}); err != nil {
			t.Fatal(err)
		}
		added, err := f.sim.AddContact(ctx, "staff0002", wecomtest.Contact{Name: "新客"}, "spring_fair")
		if err != nil {
			t.Fatal(err)
		}
		groups := f.sim.Groups()
		if err := f.sim.JoinGroup(ctx, groups[0].ChatID, []string{added.Contact.ExternalUserID}, 3); err != nil {
			t.Fatal(err)
		}
		if err := f.sim.DismissGroup(ctx, groups[1].ChatID); err != nil {
			t.Fatal(err)
		}
		f.sim.Advance(time.Hour)
		r = f.syncNow(t, wecom.SyncReconcile)
		assertMirror(t, f)
		if r.Counts.EndedRelations != 1 || r.Counts.NewRelations != 1 || r.Counts.GroupsDismissed != 1 {
			t.Fatalf("reconcile counts %+v", r.Counts)
		}
		cid := f.customerOf(t, gone.ExternalUserID)
		rels, _ := f.staff.CustomerRelations(ctx, f.ws.ID, cid)
		for _, rel := range rels {
			if rel.StaffWeComUserID == goneFollows[0].UserID && rel.Status.Current() {
				t.Fatalf("relation %s/%s still %s", rel.StaffWeComUserID, gone.ExternalUserID, rel.Status)
			}
		}
	})
}

func TestSyncResumesAfterCrash(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newSyncFix(t, d, 400, 4)
		ctx, crash := context.WithCancel(f.ctx)
		f.hook(func(api string, n int) {
			if api == "externalcontact/batch/get_by_user" && n == 3 {
				crash()
			}
		})
		r, err := f.svc.SyncNow(ctx, f.ws.ID, wecom.SyncFull)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("crashed sync: %v", err)
		}
		if r.Status != wecom.SyncRunning || r.Phase != wecom.PhaseContacts {
			t.Fatalf("after the crash: %s in %s", r.Status, r.Phase)
		}
		applied := f.count(t, `SELECT count(*) FROM staff_relations WHERE tenant_id = $1`, f.ws.ID)
		if applied != 200 {
			t.Fatalf("%d relations applied before the crash, want the 2 pages committed (200)", applied)
		}
		// Another worker (a restarted node) takes the run over where it stopped.
		f.hook(nil)
		other := f.service(slog.New(slog.DiscardHandler))
		if n, err := other.SyncDue(f.ctx); err != nil || n != 1 {
			t.Fatalf("resume: %d runs, %v", n, err)
		}
		r, err = other.SyncRun(f.ctx, f.ws.ID, r.ID)
		if err != nil || r.Status != wecom.SyncDone || r.Attempts != 2 {
			t.Fatalf("resumed run: %+v, %v", r, err)
		}
		assertMirror(t, f)
		// The two pages before the crash were read once: the resume went on
		// from the stored cursor.
		if got := f.calls["externalcontact/batch/get_by_user"]; got != len(batchCalls(t, f.sim))-2 {
			t.Fatalf("%d batch calls after the resume, %d in all", got, len(batchCalls(t, f.sim)))
		}
		if n := f.count(t, `SELECT count(*) FROM wecom_customer_events WHERE tenant_id = $1 AND kind = $2`, f.ws.ID, wecom.TimelineAddContact); n != r.Counts.NewRelations {
			t.Fatalf("%d add entries for %d relations", n, r.Counts.NewRelations)
		}
		if n := f.count(t, `SELECT count(*) FROM wecom_sync_seen WHERE tenant_id = $1`, f.ws.ID); n != 0 {
			t.Fatalf("%d seen rows left", n)
		}
	})
}

func TestSyncFailsOnWeComErrorAndResumes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newSyncFix(t, d, 300, 3)
		f.hook(func(api string, n int) {
			if api == "externalcontact/batch/get_by_user" && n == 2 {
				f.sim.FailNext(api, wecom.CodeForbidden, 1)
			}
		})
		r, err := f.svc.SyncNow(f.ctx, f.ws.ID, wecom.SyncFull)
		if err == nil || r.Status != wecom.SyncFailed || r.ErrCode != wecom.CodeForbidden || r.Phase != wecom.PhaseContacts {
			t.Fatalf("run %+v, %v", r, err)
		}
		if !strings.Contains(r.Error, "may not call this API") || !strings.Contains(r.Fix, "可调用应用") {
			t.Fatalf("explanation %q / %q", r.Error, r.Fix)
		}
		st, _ := f.svc.SyncStatus(f.ctx, f.ws.ID)
		if !st.Resumable || st.Last == nil || st.Last.ID != r.ID {
			t.Fatalf("status %+v", st)
		}
		if _, err := f.svc.StartSync(f.ctx, f.ws.ID, "weekly"); errs.CodeOf(err) != "wecom_bad_sync_kind" {
			t.Fatalf("bad kind: %v", err)
		}
		f.hook(nil)
		r, err = f.svc.ResumeSyncNow(f.ctx, f.ws.ID)
		if err != nil || r.Status != wecom.SyncDone {
			t.Fatalf("resumed: %+v, %v", r, err)
		}
		assertMirror(t, f)
		if n := f.calls["externalcontact/batch/get_by_user"]; n != len(batchCalls(t, f.sim))-2 {
			t.Fatalf("the resume read %d pages again of %d", n, len(batchCalls(t, f.sim)))
		}
	})
}

func TestSyncSecretRevokedMidway(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newSyncFix(t, d, 300, 3)
		const rotated = "RotatedAppSecret-abcdefghijklmnopqrstuvwxyz0123456"
		f.hook(func(api string, n int) {
			if api == "externalcontact/batch/get_by_user" && n == 2 {
				f.sim.SetSecret(rotated) // an admin resets the secret in WeCom
			}
		})
		r, err := f.svc.SyncNow(f.ctx, f.ws.ID, wecom.SyncFull)
		if err == nil || r.Status != wecom.SyncFailed || r.ErrCode != wecom.CodeInvalidSecret {
			t.Fatalf("run %+v, %v", r, err)
		}
		if !strings.Contains(r.Error, "secret is wrong or was reset") || !strings.Contains(r.Fix, "Secret") {
			t.Fatalf("explanation %q / %q", r.Error, r.Fix)
		}
		before := f.count(t, `SELECT count(*) FROM staff_relations WHERE tenant_id = $1`, f.ws.ID)
		// Resuming before the secret is fixed fails the same way, applying nothing.
		f.hook(nil)
		if r2, err := f.svc.ResumeSyncNow(f.ctx, f.ws.ID); err == nil || r2.ErrCode != wecom.CodeInvalidSecret {
			t.Fatalf("resume with the old secret: %+v, %v", r2, err)
		}
		if n := f.count(t, `SELECT count(*) FROM staff_relations WHERE tenant_id = $1`, f.ws.ID); n != before || before != 100 {
			t.Fatalf("relations %d, then %d; want the first page's 100", before, n)
		}
		if _, err := f.svc.Configure(f.ctx, f.admin(), wecom.SettingsInput{CorpID: f.sim.CorpID(), AgentID: f.sim.AgentID(), Secret: rotated,
			BaseURL: f.sim.URL()}); err != nil {
			t.Fatal(err)
		}
		r, err = f.svc.ResumeSyncNow(f.ctx, f.ws.ID)
		if err != nil || r.Status != wecom.SyncDone || r.Attempts != 3 {
			t.Fatalf("resumed: %+v, %v", r, err)
		}
		assertMirror(t, f)
		first := 0
		for _, c := range batchCalls(t, f.sim) {
			if c.Cursor == "" && c.ErrCode == 0 {
				first++
			}
		}
		if first != 1 {
			t.Fatalf("the first page was read %d times; the resume must go on from the stored cursor", first)
		}
	})
}

func TestSyncStaysWithinRateLimits(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newSyncFix(t, d, 300, 3)
		// A tight budget (2 calls a minute per API) on both sides: the
		// client paces itself (on simulated time) instead of being refused.
		f.sim.SetLimits("", wecom.Limits{PerMinute: 2, PerHour: 100})
		f.limits = wecom.Limits{PerMinute: 2, PerHour: 100}
		f.svc = f.service(slog.New(slog.DiscardHandler))
		// WeCom refuses twice anyway (another app spends the corp's quota):
		// the client backs off and the sync goes on.
		f.hook(func(api string, n int) {
			if api == "externalcontact/batch/get_by_user" && n == 2 {
				f.sim.FailNext(api, wecom.CodeRateLimited, 2)
			}
		})
		start := f.sim.Now()
		f.syncNow(t, wecom.SyncFull)
		assertMirror(t, f)
		perMinute := map[string]int{}
		refused := 0
		for _, c := range f.sim.Calls() {
			if c.ErrCode == wecom.CodeRateLimited {
				refused++
				continue
			}
			k := fmt.Sprintf("%s@%d", c.API, c.At.Unix()/60)
			if perMinute[k]++; perMinute[k] > 2 {
				t.Fatalf("%d calls of %s in one minute", perMinute[k], c.API)
			}
		}
		if refused != 2 {
			t.Fatalf("%d calls refused for the rate limit, want the 2 injected", refused)
		}
		if n := len(batchCalls(t, f.sim)); f.sim.Now().Sub(start) < time.Duration(n-3)*time.Minute {
			t.Fatalf("%d batch calls in %s: the client did not pace itself", n, f.sim.Now().Sub(start))
		}
	})
}

func TestSyncOneAtATime(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newSyncFix(t, d, 50, 2)
		r, err := f.svc.StartSync(f.ctx, f.ws.ID, wecom.SyncFull)
		if err != nil || r.Status != wecom.SyncQueued {
			t.Fatalf("start: %+v, %v", r, err)
		}
		if _, err := f.svc.StartSync(f.ctx, f.ws.ID, wecom.SyncReconcile); !errors.Is(err, wecom.ErrSyncRunning) {
			t.Fatalf("second start: %v", err)
		}
		// A worker on another node holds it: nobody else works it until its
		// lease expires.
		if _, err := d.ExecContext(f.ctx, `UPDATE wecom_sync_runs SET status = 'running', lease_owner = 'node-b', lease_until = $2 WHERE id = $1`,
			r.ID, f.sim.Now().Add(time.Minute).UnixMilli()); err != nil {
			t.Fatal(err)
		}
		if n, err := f.svc.SyncDue(f.ctx); err != nil || n != 0 {
			t.Fatalf("worked %d runs held elsewhere (%v)", n, err)
		}
		f.sim.Advance(2 * time.Minute)
		if n, err := f.svc.SyncDue(f.ctx); err != nil || n != 1 {
			t.Fatalf("took over %d runs (%v)", n, err)
		}
		assertMirror(t, f)
		if _, err := f.svc.ResumeSync(f.ctx, f.ws.ID); errs.CodeOf(err) != "wecom_sync_not_resumable" {
			t.Fatalf("resume a finished run: %v", err)
		}
	})
}

func TestSyncSchedule(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newSyncFix(t, d, 20, 2)
		// Connected and never synced: a full sync is due.
		if n, err := f.svc.ScheduleSyncs(f.ctx); err != nil || n != 1 {
			t.Fatalf("scheduled %d (%v)", n, err)
		}
		if n, err := f.svc.ScheduleSyncs(f.ctx); err != nil || n != 0 {
			t.Fatalf("scheduled %d more while one is queued (%v)", n, err)
		}
		if _, err := f.svc.SyncDue(f.ctx); err != nil {
			t.Fatal(err)
		}
		st, _ := f.svc.SyncStatus(f.ctx, f.ws.ID)
		if st.LastSuccess == nil || st.LastSuccess.Kind != wecom.SyncFull || st.LastSuccess.By != "connect" {
			t.Fatalf("status %+v", st)
		}
		f.sim.Advance(23 * time.Hour)
		if n, _ := f.svc.ScheduleSyncs(f.ctx); n != 0 {
			t.Fatal("reconciliation before a day passed")
		}
		f.sim.Advance(2 * time.Hour)
		if n, _ := f.svc.ScheduleSyncs(f.ctx); n != 1 {
			t.Fatal("no reconciliation after a day")
		}
		st, _ = f.svc.SyncStatus(f.ctx, f.ws.ID)
		if st.Current == nil || st.Current.Kind != wecom.SyncReconcile || st.Current.By != "schedule" {
			t.Fatalf("status %+v", st)
		}
	})
}

func TestResyncContactAndGroup(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newSyncFix(t, d, 40, 2)
		f.sim.HoldCallbacks()
		f.syncNow(t, wecom.SyncFull)
		var ct wecomtest.Contact
		var fs []wecomtest.Follow
		for _, c := range f.sim.Contacts() {
			if _, cf, _ := f.sim.Contact(c.ExternalUserID); len(cf) == 2 {
				ct, fs = c, cf
				break
			}
		}
		if len(fs) != 2 {
			t.Fatal("no customer with two staff members")
		}
		if err := f.sim.EditContact(f.ctx, fs[0].UserID, ct.ExternalUserID, func(fl *wecomtest.Follow) { fl.Remark = "补录" }); err != nil {
			t.Fatal(err)
		}
		if err := f.sim.StaffDeletesCustomer(f.ctx, fs[1].UserID, ct.ExternalUserID); err != nil {
			t.Fatal(err)
		}
		g := f.sim.Groups()[0]
		if err := f.sim.LeaveGroup(f.ctx, g.ChatID, []string{g.Members[1].UserID}, 0); err != nil {
			t.Fatal(err)
		}
		f.sim.Advance(time.Minute)
		if err := f.svc.ResyncContact(f.ctx, f.ws.ID, ct.ExternalUserID); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.ResyncGroup(f.ctx, f.ws.ID, g.ChatID); err != nil {
			t.Fatal(err)
		}
		assertMirror(t, f)
	})
}

// corpTagID returns the WeCom id of a corp tag by group and name.
func corpTagID(t testing.TB, sim *wecomtest.Server, group, name string) string {
	t.Helper()
	tg, ok := sim.TagByName(group, name)
	if !ok {
		t.Fatalf("WeCom has no tag %s/%s", group, name)
	}
	return tg.ID
}

// heldBy returns the tags a customer holds, by Siyu tag id.
func heldBy(t testing.TB, f *syncFix, cid int64) map[int64]tag.Applied {
	t.Helper()
	as, err := f.tags.TagsOf(f.ctx, f.ws.ID, cid)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]tag.Applied{}
	for _, a := range as {
		out[a.TagID] = a
	}
	return out
}

func TestTwoWayCorpTags(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newSyncFix(t, d, 120, 3)
		ctx, tid, p := f.ctx, f.ws.ID, f.admin()
		f.syncNow(t, wecom.SyncFull)

		// Bind an existing corp tag group by name; tags are matched by name
		// and each side gains what it lacked.
		g, err := f.tags.CreateGroup(ctx, p, tag.GroupInput{Name: "兴趣", Dimension: tag.DimProduct})
		if err != nil {
			t.Fatal(err)
		}
		skin, err := f.tags.CreateTag(ctx, p, tag.TagInput{GroupID: g.ID, Name: "护肤"})
		if err != nil {
			t.Fatal(err)
		}
		tea, err := f.tags.CreateTag(ctx, p, tag.TagInput{GroupID: g.ID, Name: "茶饮"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.svc.BindTagGroup(ctx, p, g.ID, wecom.BindTagGroupInput{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(b.CreatedInWeCom, []string{"茶饮"}) || len(b.CreatedInSiyu) != 4 || len(b.Tags) != 6 || b.SyncRunID == 0 {
			t.Fatalf("binding %+v", b)
		}
		teaID := corpTagID(t, f.sim, "兴趣", "茶饮")
		if got, _ := f.tags.Tag(ctx, tid, skin.ID); got.WeComTagID != corpTagID(t, f.sim, "兴趣", "护肤") {
			t.Fatalf("护肤 bound to %q", got.WeComTagID)
		}
		if got, _ := f.tags.Tag(ctx, tid, tea.ID); got.WeComTagID != teaID {
			t.Fatalf("茶饮 bound to %q, want %q", got.WeComTagID, teaID)
		}
		// The queued tags sync brings WeCom's marks in: every customer holds
		// the Siyu tags bound to the corp tags their staff gave them.
		if _, err := f.svc.SyncDue(ctx); err != nil {
			t.Fatal(err)
		}
		bound := map[string]int64{}
		for _, bt := range b.Tags {
			bound[bt.WeComTagID] = bt.TagID
		}
		holders := 0
		for _, ct := range f.sim.Contacts() {
			_, fs, _ := f.sim.Contact(ct.ExternalUserID)
			want := map[int64]bool{}
			for _, fl := range fs {
				for _, id := range fl.TagIDs {
					if sid, ok := bound[id]; ok {
						want[sid] = true
					}
				}
			}
			held := heldBy(t, f, f.customerOf(t, ct.ExternalUserID))
			for sid := range want {
				a, ok := held[sid]
				if !ok || a.Source != tag.SourceSync {
					t.Fatalf("customer %s lacks tag %d from WeCom (%+v)", ct.ExternalUserID, sid, a)
				}
				holders++
			}
		}
		if holders == 0 {
			t.Fatal("no customer holds an interest tag in WeCom; the fixture should give some")
		}
		if n, err := f.svc.ProcessTagMarks(ctx); err != nil || n != 0 {
			t.Fatalf("marks from WeCom's own tags: %d (%v)", n, err)
		}

		// Siyu → WeCom: applying a bound tag marks it for every staff member
		// who serves the customer.
		var multi wecomtest.Contact
		for _, ct := range f.sim.Contacts() {
			if _, fs, _ := f.sim.Contact(ct.ExternalUserID); len(fs) == 2 {
				multi = ct
				break
			}
		}
		if multi.ExternalUserID == "" {
			t.Fatal("no customer with two staff members")
		}
		cid := f.customerOf(t, multi.ExternalUserID)
		if _, err := f.tags.Apply(ctx, tid, cid, []int64{tea.ID}, tag.ByPrincipal(p)); err != nil {
			t.Fatal(err)
		}
		f.sim.ResetCalls()
		if n, err := f.svc.ProcessTagMarks(ctx); err != nil || n != 1 {
			t.Fatalf("processed %d marks (%v)", n, err)
		}
		if n := f.sim.CallCount("externalcontact/mark_tag"); n != 2 {
			t.Fatalf("%d mark_tag calls, want one per staff member (2)", n)
		}
		_, fs, _ := f.sim.Contact(multi.ExternalUserID)
		for _, fl := range fs {
			if !slices.Contains(fl.TagIDs, teaID) {
				t.Fatalf("%s's relation lacks 茶饮 in WeCom: %v", fl.UserID, fl.TagIDs)
			}
		}
		rels, _ := f.staff.CustomerRelations(ctx, tid, cid)
		for _, r := range rels {
			if r.Status.Current() && !slices.Contains(r.ChannelTagIDs, teaID) {
				t.Fatalf("Siyu's copy of %s's relation lacks the mark", r.StaffWeComUserID)
			}
		}
		// Processing again sends nothing: the mark is done, and idempotent.
		if n, _ := f.svc.ProcessTagMarks(ctx); n != 0 || f.sim.CallCount("externalcontact/mark_tag") != 2 {
			t.Fatalf("marks sent again")
		}

		// WeCom → Siyu: a staff member marks a customer in WeCom; the
		// callback brings the tag in (source sync) and nothing is echoed.
		var single wecomtest.Contact
		var sf wecomtest.Follow
		for _, ct := range f.sim.Contacts() {
			if _, fs, _ := f.sim.Contact(ct.ExternalUserID); len(fs) == 1 && !slices.Contains(fs[0].TagIDs, teaID) {
				single, sf = ct, fs[0]
				break
			}
		}
		if err := f.sim.EditContact(ctx, sf.UserID, single.ExternalUserID, func(fl *wecomtest.Follow) { fl.TagIDs = append(fl.TagIDs, teaID) }); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		scid := f.customerOf(t, single.ExternalUserID)
		if a, ok := heldBy(t, f, scid)[tea.ID]; !ok || a.Source != tag.SourceSync {
			t.Fatalf("the WeCom mark did not reach Siyu: %+v", a)
		}
		f.sim.ResetCalls()
		if n, err := f.svc.ProcessTagMarks(ctx); err != nil || n != 0 || f.sim.CallCount("externalcontact/mark_tag") != 0 {
			t.Fatalf("a mark from WeCom was echoed back: %d (%v)", n, err)
		}

		// Removal both ways.
		if _, err := f.tags.Remove(ctx, tid, cid, []int64{tea.ID}, tag.ByPrincipal(p)); err != nil {
			t.Fatal(err)
		}
		if n, err := f.svc.ProcessTagMarks(ctx); err != nil || n != 1 || f.sim.CallCount("externalcontact/mark_tag") != 2 {
			t.Fatalf("removal: %d marks, %d calls (%v)", n, f.sim.CallCount("externalcontact/mark_tag"), err)
		}
		_, fs, _ = f.sim.Contact(multi.ExternalUserID)
		for _, fl := range fs {
			if slices.Contains(fl.TagIDs, teaID) {
				t.Fatalf("%s's relation still has 茶饮 in WeCom", fl.UserID)
			}
		}
		if err := f.sim.EditContact(ctx, sf.UserID, single.ExternalUserID, func(fl *wecomtest.Follow) {
			fl.TagIDs = slices.DeleteFunc(fl.TagIDs, func(id string) bool { return id == teaID })
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := heldBy(t, f, scid)[tea.ID]; ok {
			t.Fatal("the WeCom removal did not reach Siyu")
		}
		f.sim.ResetCalls()
		if n, _ := f.svc.ProcessTagMarks(ctx); n != 0 || f.sim.CallCount("externalcontact/mark_tag") != 0 {
			t.Fatal("a removal from WeCom was echoed back")
		}

		// A corp tag group created from a Siyu group.
		perk, err := f.tags.CreateGroup(ctx, p, tag.GroupInput{Name: "会员权益"})
		if err != nil {
			t.Fatal(err)
		}
		var birthday tag.Tag
		for _, n := range []string{"生日礼", "免邮"} {
			tg, err := f.tags.CreateTag(ctx, p, tag.TagInput{GroupID: perk.ID, Name: n})
			if err != nil {
				t.Fatal(err)
			}
			if n == "生日礼" {
				birthday = tg
			}
		}
		// A customer holds 生日礼 before the binding; pushing existing marks
		// tells WeCom.
		if _, err := f.tags.Apply(ctx, tid, cid, []int64{birthday.ID}, tag.ByPrincipal(p)); err != nil {
			t.Fatal(err)
		}
		pb, err := f.svc.BindTagGroup(ctx, p, perk.ID, wecom.BindTagGroupInput{PushExisting: true})
		if err != nil {
			t.Fatal(err)
		}
		if pb.WeComGroupName != "会员权益" || len(pb.CreatedInWeCom) != 2 || len(pb.CreatedInSiyu) != 0 || pb.Queued != 1 {
			t.Fatalf("created binding %+v", pb)
		}
		f.sim.ResetCalls()
		if n, err := f.svc.ProcessTagMarks(ctx); err != nil || n != 1 || f.sim.CallCount("externalcontact/mark_tag") != 2 {
			t.Fatalf("existing holders: %d marks, %d calls (%v)", n, f.sim.CallCount("externalcontact/mark_tag"), err)
		}
		if n, err := f.svc.SyncDue(ctx); err != nil || n != 1 {
			t.Fatalf("tags sync after binding: %d (%v)", n, err)
		}
		gift := corpTagID(t, f.sim, "会员权益", "生日礼")
		_, fs, _ = f.sim.Contact(multi.ExternalUserID)
		for _, fl := range fs {
			if !slices.Contains(fl.TagIDs, gift) {
				t.Fatalf("%s's relation lacks 生日礼 in WeCom", fl.UserID)
			}
		}
		if !slices.ContainsFunc(pb.Tags, func(bt wecom.BoundTag) bool { return bt.Name == "生日礼" && bt.WeComTagID == gift }) {
			t.Fatalf("tags %+v", pb.Tags)
		}
		// A tag added to the bound Siyu group reaches WeCom with the next sync.
		if _, err := f.tags.CreateTag(ctx, p, tag.TagInput{GroupID: perk.ID, Name: "专属客服"}); err != nil {
			t.Fatal(err)
		}
		f.sim.Advance(time.Hour)
		f.syncNow(t, wecom.SyncReconcile)
		corpTagID(t, f.sim, "会员权益", "专属客服")
		assertMirror(t, f)
		if _, err := f.svc.BindTagGroup(ctx, p, g.ID, wecom.BindTagGroupInput{WeComGroupID: pb.WeComGroupID}); errs.CodeOf(err) != "wecom_already_bound" {
			t.Fatalf("binding a bound WeCom group again: %v", err)
		}
		if err := f.svc.UnbindTagGroup(ctx, p, perk.ID); err != nil {
			t.Fatal(err)
		}
		if gg, _ := f.tags.Group(ctx, tid, perk.ID); gg.WeComGroupID != "" {
			t.Fatal("still bound")
		}
		// Nothing is queued for a mark when none is due.
		marks, err := f.svc.TagMarks(ctx, tid, "pending", 0)
		if err != nil || len(marks) != 0 {
			t.Fatalf("pending marks %+v (%v)", marks, err)
		}
	})
}
