package tag_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// fixture is one workspace with a tag service wired as the app wires it.
type fixture struct {
	d      *db.DB
	ts     *tenant.Service
	cs     *customer.Service
	tags   *tag.Service
	tenant int64
	p      tenant.Principal
	obs    *recorder
}

// recorder is an Observer that keeps every call.
type recorder struct {
	mu    sync.Mutex
	calls []call
	// check, when set, runs inside each call (e.g. to prove the change is
	// committed).
	check func(c call)
}

type call struct {
	tenant, customer int64
	added, removed   []int64
}

func (r *recorder) TagsChanged(tenantID, customerID int64, added, removed []int64) {
	c := call{tenantID, customerID, slices.Clone(added), slices.Clone(removed)}
	if r.check != nil {
		r.check(c)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *recorder) take() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func newFixture(t *testing.T, d *db.DB, slug string) *fixture {
	t.Helper()
	ctx := context.Background()
	master := make([]byte, 32)
	rand.Read(master)
	keys, err := pii.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{d: d, ts: tenant.NewService(d, tenant.Options{}), obs: &recorder{}}
	w, err := f.ts.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: slug, Name: "Brand " + slug})
	if err != nil {
		t.Fatal(err)
	}
	f.tenant = w.ID
	f.p = tenant.Principal{TenantID: w.ID, Kind: tenant.ActorUser, ID: 7, Name: "运营小王", Role: tenant.RoleOperator}
	f.cs = customer.NewService(d, keys, nil)
	f.tags = tag.NewService(d, tag.Options{Auditor: f.ts})
	f.cs.OnMerge("tags", f.tags.MoveCustomer)
	f.cs.AddTimelineSource(f.tags)
	f.tags.Observe(f.obs)
	return f
}

func (f *fixture) customers(t *testing.T, n int) []int64 {
	t.Helper()
	in := make([]customer.NewCustomer, n)
	for i := range in {
		in[i] = customer.NewCustomer{Name: fmt.Sprintf("顾客%d", i)}
	}
	ids, err := f.cs.CreateMany(context.Background(), f.tenant, in)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func (f *fixture) group(t *testing.T, name string, dim tag.Dimension) tag.Group {
	t.Helper()
	g, err := f.tags.CreateGroup(context.Background(), f.p, tag.GroupInput{Name: name, Dimension: dim})
	if err != nil {
		t.Fatalf("group %s: %v", name, err)
	}
	return g
}

func (f *fixture) tag(t *testing.T, g tag.Group, name string) tag.Tag {
	t.Helper()
	tg, err := f.tags.CreateTag(context.Background(), f.p, tag.TagInput{GroupID: g.ID, Name: name})
	if err != nil {
		t.Fatalf("tag %s: %v", name, err)
	}
	return tg
}

// held reads a customer's tag ids straight from the database.
func (f *fixture) held(t *testing.T, customerID int64) []int64 {
	t.Helper()
	rows, err := f.d.Query(`SELECT tag_id FROM customer_tags WHERE tenant_id = $1 AND customer_id = $2 ORDER BY tag_id`, f.tenant, customerID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

func (f *fixture) historyCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.d.QueryRow(`SELECT count(*) FROM tag_history WHERE tenant_id = $1`, f.tenant).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkCounts compares every tag's kept count with a real count.
func (f *fixture) checkCounts(t *testing.T) {
	t.Helper()
	rows, err := f.d.Query(`SELECT t.id, t.customer_count, (SELECT count(*) FROM customer_tags ct WHERE ct.tenant_id = t.tenant_id AND ct.tag_id = t.id)
		FROM tags t WHERE t.tenant_id = $1`, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, kept, real int64
		if err := rows.Scan(&id, &kept, &real); err != nil {
			t.Fatal(err)
		}
		if kept != real {
			t.Errorf("tag %d: customer_count %d, really %d", id, kept, real)
		}
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if errs.CodeOf(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

func TestGroupsAndTags(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d, "crud")
		product := f.group(t, " 产品偏好 ", tag.DimProduct)
		value := f.group(t, "价值", tag.DimValue)
		if product.Name != "产品偏好" || product.SortOrder != 0 || value.SortOrder != 1 || product.Dimension != tag.DimProduct {
			t.Fatalf("groups %+v %+v", product, value)
		}
		other, err := f.tags.CreateGroup(ctx, f.p, tag.GroupInput{Name: "其他"})
		if err != nil || other.Dimension != tag.DimOther {
			t.Fatalf("default dimension: %+v %v", other, err)
		}

		for _, c := range []struct {
			in   tag.GroupInput
			code string
		}{
			{tag.GroupInput{Name: "价值"}, "duplicate_group"},
			{tag.GroupInput{Name: "  "}, "invalid_name"},
			{tag.GroupInput{Name: "a/b"}, "invalid_name"},
			{tag.GroupInput{Name: strings.Repeat("长", tag.MaxNameLen+1)}, "invalid_name"},
			{tag.GroupInput{Name: "x", Dimension: "mood"}, "invalid_dimension"},
			{tag.GroupInput{Name: "y", Description: strings.Repeat("d", 201)}, "invalid_description"},
		} {
			_, err := f.tags.CreateGroup(ctx, f.p, c.in)
			wantCode(t, err, c.code)
		}

		oolong := f.tag(t, product, "乌龙")
		matcha, err := f.tags.CreateTag(ctx, f.p, tag.TagInput{GroupID: product.ID, Name: "抹茶", Color: "#52c41a"})
		if err != nil {
			t.Fatal(err)
		}
		if oolong.Color != tag.DefaultColor || matcha.Color != "#52C41A" || oolong.SortOrder != 0 || matcha.SortOrder != 1 ||
			matcha.Ref != "产品偏好/抹茶" || matcha.Group != "产品偏好" {
			t.Fatalf("tags %+v %+v", oolong, matcha)
		}
		// The same name in another group is fine; in the same group it is not.
		if _, err := f.tags.CreateTag(ctx, f.p, tag.TagInput{GroupID: value.ID, Name: "乌龙"}); err != nil {
			t.Fatal(err)
		}
		first := -5
		high, err := f.tags.CreateTag(ctx, f.p, tag.TagInput{GroupID: value.ID, Name: "高价值", SortOrder: &first})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			in   tag.TagInput
			code string
		}{
			{tag.TagInput{GroupID: product.ID, Name: "乌龙"}, "duplicate_tag"},
			{tag.TagInput{GroupID: product.ID, Name: ""}, "invalid_name"},
			{tag.TagInput{GroupID: product.ID, Name: "红", Color: "red"}, "invalid_color"},
			{tag.TagInput{GroupID: product.ID, Name: "红", Color: "#GG0000"}, "invalid_color"},
			{tag.TagInput{GroupID: product.ID, Name: "红", Color: "#FF00001"}, "invalid_color"},
			{tag.TagInput{GroupID: 999999, Name: "红"}, "tag_group_not_found"},
		} {
			_, err := f.tags.CreateTag(ctx, f.p, c.in)
			wantCode(t, err, c.code)
		}

		// Display order: groups by sort order, tags by sort order, paged.
		var refs []string
		r := page.Request{Limit: 1}
		for {
			pg, err := f.tags.Tags(ctx, f.tenant, tag.TagQuery{}, r)
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range pg.Items {
				refs = append(refs, tg.Ref)
			}
			if pg.Next == "" {
				break
			}
			r.Cursor = pg.Next
		}
		want := []string{"产品偏好/乌龙", "产品偏好/抹茶", "价值/高价值", "价值/乌龙"}
		if !slices.Equal(refs, want) {
			t.Fatalf("order %v, want %v", refs, want)
		}
		pg, err := f.tags.Tags(ctx, f.tenant, tag.TagQuery{GroupID: value.ID}, page.Request{})
		if err != nil || len(pg.Items) != 2 || pg.Items[0].ID != high.ID {
			t.Fatalf("by group: %+v %v", pg.Items, err)
		}
		if _, err := f.tags.Tags(ctx, f.tenant, tag.TagQuery{GroupID: 424242}, page.Request{}); !errs.Is(err, errs.NotFound) {
			t.Fatalf("unknown group filter: %v", err)
		}
		// Reorder groups: value first.
		minus := -1
		if _, err := f.tags.UpdateGroup(ctx, f.p, value.ID, tag.GroupUpdate{SortOrder: &minus}); err != nil {
			t.Fatal(err)
		}
		gs, err := f.tags.Groups(ctx, f.tenant)
		if err != nil || gs[0].ID != value.ID || gs[0].TagCount != 2 {
			t.Fatalf("groups after reorder: %+v %v", gs, err)
		}
		dup := "产品偏好"
		_, err = f.tags.UpdateGroup(ctx, f.p, value.ID, tag.GroupUpdate{Name: &dup})
		wantCode(t, err, "duplicate_group")

		// Rename and move tags.
		name, color := "绿茶", "#00ff00"
		moved, err := f.tags.UpdateTag(ctx, f.p, matcha.ID, tag.TagUpdate{Name: &name, Color: &color})
		if err != nil || moved.Ref != "产品偏好/绿茶" || moved.Color != "#00FF00" {
			t.Fatalf("rename: %+v %v", moved, err)
		}
		_, err = f.tags.UpdateTag(ctx, f.p, oolong.ID, tag.TagUpdate{GroupID: &value.ID})
		wantCode(t, err, "duplicate_tag") // 价值 already has 乌龙
		moved, err = f.tags.UpdateTag(ctx, f.p, matcha.ID, tag.TagUpdate{GroupID: &value.ID})
		if err != nil || moved.Ref != "价值/绿茶" {
			t.Fatalf("move: %+v %v", moved, err)
		}
		_, err = f.tags.UpdateTag(ctx, f.p, 987654, tag.TagUpdate{Name: &name})
		wantCode(t, err, "tag_not_found")

		// Deleting: a non-empty group needs force, which takes the tags from customers.
		ids := f.customers(t, 3)
		if _, err := f.tags.BulkApply(ctx, f.tenant, []int64{high.ID, matcha.ID}, ids, tag.ByPrincipal(f.p), nil); err != nil {
			t.Fatal(err)
		}
		f.obs.take()
		wantCode(t, f.tags.DeleteGroup(ctx, f.p, value.ID, false), "group_not_empty")
		if err := f.tags.DeleteGroup(ctx, f.p, value.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := f.tags.Group(ctx, f.tenant, value.ID); !errs.Is(err, errs.NotFound) {
			t.Fatalf("group still there: %v", err)
		}
		for _, id := range ids {
			if h := f.held(t, id); len(h) != 0 {
				t.Fatalf("customer %d still holds %v", id, h)
			}
		}
		calls := f.obs.take()
		if len(calls) != 6 {
			t.Fatalf("observer calls on delete: %+v", calls)
		}
		for _, c := range calls {
			if len(c.added) != 0 || len(c.removed) != 1 {
				t.Fatalf("delete told %+v", c)
			}
		}
		if n := f.historyCount(t); n != 12 {
			t.Fatalf("history rows %d, want 6 adds + 6 removes", n)
		}
		if err := f.tags.DeleteGroup(ctx, f.p, other.ID, false); err != nil {
			t.Fatalf("empty group: %v", err)
		}
		wantCode(t, f.tags.DeleteTag(ctx, f.p, high.ID), "tag_not_found")

		var audits int
		if err := d.QueryRow(`SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action LIKE 'tag%'`, f.tenant).Scan(&audits); err != nil || audits == 0 {
			t.Fatalf("definition changes not audited: %d %v", audits, err)
		}
	})
}

func TestApplyIsIdempotentAndRecorded(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d, "apply")
		g := f.group(t, "价值", tag.DimValue)
		high, risk := f.tag(t, g, "高价值"), f.tag(t, g, "流失风险")
		c := f.customers(t, 1)[0]
		at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		rule := tag.Application{Source: tag.SourceRule, SourceRef: "12", AppliedBy: "高消费自动打标", At: at}

		ch, err := f.tags.Apply(ctx, f.tenant, c, []int64{risk.ID, high.ID, high.ID}, rule)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ch.Added, []int64{high.ID, risk.ID}) || len(ch.Removed) != 0 || ch.CustomerID != c {
			t.Fatalf("first apply %+v", ch)
		}
		// Again, by someone else: nothing changes, nothing is recorded.
		ch, err = f.tags.Apply(ctx, f.tenant, c, []int64{high.ID}, tag.ByPrincipal(f.p))
		if err != nil || len(ch.Added) != 0 {
			t.Fatalf("second apply %+v %v", ch, err)
		}
		if n := f.historyCount(t); n != 2 {
			t.Fatalf("history %d, want 2", n)
		}
		if calls := f.obs.take(); len(calls) != 1 || !slices.Equal(calls[0].added, []int64{high.ID, risk.ID}) {
			t.Fatalf("observer %+v", calls)
		}
		held, err := f.tags.TagsOf(ctx, f.tenant, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) != 2 || held[0].Ref != "价值/高价值" || held[0].Source != tag.SourceRule || held[0].SourceRef != "12" ||
			held[0].AppliedBy != "高消费自动打标" || !held[0].AppliedAt.Equal(at) {
			t.Fatalf("held %+v", held)
		}
		counts, err := f.tags.Counts(ctx, f.tenant)
		if err != nil || counts[high.ID] != 1 || counts[risk.ID] != 1 {
			t.Fatalf("counts %v %v", counts, err)
		}

		ch, err = f.tags.Update(ctx, f.tenant, c, nil, []int64{risk.ID}, tag.ByPrincipal(f.p))
		if err != nil || !slices.Equal(ch.Removed, []int64{risk.ID}) {
			t.Fatalf("remove %+v %v", ch, err)
		}
		ch, err = f.tags.Remove(ctx, f.tenant, c, []int64{risk.ID}, tag.ByPrincipal(f.p))
		if err != nil || len(ch.Removed) != 0 {
			t.Fatalf("remove again %+v %v", ch, err)
		}
		if calls := f.obs.take(); len(calls) != 1 || !slices.Equal(calls[0].removed, []int64{risk.ID}) {
			t.Fatalf("observer after removes %+v", calls)
		}
		f.checkCounts(t)

		// The timeline tells the story, newest first.
		tl, err := f.cs.Timeline(ctx, f.tenant, c, page.Request{})
		if err != nil {
			t.Fatal(err)
		}
		var titles []string
		for _, e := range tl.Items {
			if e.Kind == tag.TimelineTag {
				titles = append(titles, e.Title)
			}
		}
		want := []string{
			"tag removed: 价值/流失风险 by 运营小王 (manual)",
			"tag added: 价值/高价值 by rule 12 (高消费自动打标)",
			"tag added: 价值/流失风险 by rule 12 (高消费自动打标)",
		}
		if len(titles) != 3 || titles[0] != want[0] || !slices.Contains(titles, want[1]) || !slices.Contains(titles, want[2]) {
			t.Fatalf("timeline %q", titles)
		}

		// Bad input.
		for _, c2 := range []struct {
			add, remove []int64
			app         tag.Application
			code        string
		}{
			{nil, nil, rule, "no_tags"},
			{[]int64{high.ID}, []int64{high.ID}, rule, "tag_in_add_and_remove"},
			{[]int64{424242}, nil, rule, "tag_not_found"},
			{[]int64{high.ID}, nil, tag.Application{Source: "magic"}, "invalid_source"},
		} {
			_, err := f.tags.Update(ctx, f.tenant, c, c2.add, c2.remove, c2.app)
			wantCode(t, err, c2.code)
		}
		_, err = f.tags.Apply(ctx, f.tenant, 987654321, []int64{high.ID}, rule)
		wantCode(t, err, "customer_not_found")
		if calls := f.obs.take(); len(calls) != 0 {
			t.Fatalf("failed writes told observers: %+v", calls)
		}

		// Another workspace sees neither the tag nor the customer.
		other := newFixture(t, d, "apply-other")
		oc := other.customers(t, 1)[0]
		_, err = other.tags.Apply(ctx, other.tenant, oc, []int64{high.ID}, rule)
		wantCode(t, err, "tag_not_found")
		_, err = other.tags.TagsOf(ctx, other.tenant, c)
		wantCode(t, err, "customer_not_found")
		if _, err := other.tags.Resolve(ctx, other.tenant, "价值/高价值"); !errs.Is(err, errs.NotFound) {
			t.Fatalf("resolve across workspaces: %v", err)
		}
	})
}

// failHistoryFor makes writing tag history fail for one customer, so the
// transaction that tags them rolls back after its rows were written.
func failHistoryFor(t *testing.T, d *db.DB, customerID int64) {
	t.Helper()
	var stmts []string
	if d.Dialect == db.Postgres {
		stmts = []string{
			`CREATE FUNCTION fail_history() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$ LANGUAGE plpgsql`,
			fmt.Sprintf(`CREATE TRIGGER fail_history BEFORE INSERT ON tag_history FOR EACH ROW WHEN (NEW.customer_id = %d) EXECUTE FUNCTION fail_history()`, customerID),
		}
	} else {
		stmts = []string{fmt.Sprintf(`CREATE TRIGGER fail_history BEFORE INSERT ON tag_history WHEN NEW.customer_id = %d BEGIN SELECT RAISE(ABORT, 'boom'); END`, customerID)}
	}
	for _, s := range stmts {
		if _, err := d.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
}

func TestObserversAreToldAfterCommitOnly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d, "observe")
		g := f.group(t, "客户属性", tag.DimCustomer)
		student, mom := f.tag(t, g, "学生"), f.tag(t, g, "宝妈")
		ids := f.customers(t, 2500)

		// Inside the callback the change must already be visible to another
		// connection: it was committed.
		var bad []string
		var badMu sync.Mutex
		f.obs.check = func(c call) {
			held := f.held(t, c.customer)
			for _, id := range c.added {
				if !slices.Contains(held, id) {
					badMu.Lock()
					bad = append(bad, fmt.Sprintf("customer %d: tag %d told before it was committed", c.customer, id))
					badMu.Unlock()
				}
			}
			for _, id := range c.removed {
				if slices.Contains(held, id) {
					badMu.Lock()
					bad = append(bad, fmt.Sprintf("customer %d: removal of %d told before it was committed", c.customer, id))
					badMu.Unlock()
				}
			}
		}
		if _, err := f.tags.Update(ctx, f.tenant, ids[0], []int64{student.ID}, nil, tag.ByPrincipal(f.p)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.tags.Update(ctx, f.tenant, ids[0], []int64{mom.ID}, []int64{student.ID}, tag.ByPrincipal(f.p)); err != nil {
			t.Fatal(err)
		}
		calls := f.obs.take()
		if len(calls) != 2 || !slices.Equal(calls[1].added, []int64{mom.ID}) || !slices.Equal(calls[1].removed, []int64{student.ID}) ||
			calls[1].tenant != f.tenant || calls[1].customer != ids[0] {
			t.Fatalf("calls %+v", calls)
		}

		// A bulk apply whose second chunk fails: the first chunk is
		// committed and told, the second neither.
		failHistoryFor(t, d, ids[1500])
		var progress [][2]int
		res, err := f.tags.BulkApply(ctx, f.tenant, []int64{student.ID}, ids, tag.Application{Source: tag.SourceImport, SourceRef: "import:3"},
			func(done, total int) { progress = append(progress, [2]int{done, total}) })
		if err == nil || !strings.Contains(err.Error(), "after 1000 of 2500") {
			t.Fatalf("bulk with a failing chunk: %+v %v", res, err)
		}
		calls = f.obs.take()
		if len(calls) != 1000 || !slices.Equal(progress, [][2]int{{1000, 2500}}) || res.Changed != 1000 {
			t.Fatalf("calls %d, progress %v, result %+v", len(calls), progress, res)
		}
		for _, c := range calls {
			if c.customer >= ids[1000] || !slices.Equal(c.added, []int64{student.ID}) {
				t.Fatalf("told about an uncommitted change: %+v", c)
			}
		}
		if h := f.held(t, ids[1001]); len(h) != 0 {
			t.Fatalf("rolled-back chunk left tags: %v", h)
		}
		// A single write that fails after writing its rows.
		_, err = f.tags.Apply(ctx, f.tenant, ids[1500], []int64{mom.ID}, tag.ByPrincipal(f.p))
		if err == nil {
			t.Fatal("apply with failing history succeeded")
		}
		if calls := f.obs.take(); len(calls) != 0 {
			t.Fatalf("rolled-back apply told observers: %+v", calls)
		}
		if h := f.held(t, ids[1500]); len(h) != 0 {
			t.Fatalf("rolled-back apply left tags: %v", h)
		}
		f.checkCounts(t)
		if len(bad) > 0 {
			t.Fatal(strings.Join(bad, "\n"))
		}
	})
}

func TestBulkApplyAndRemove(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d, "bulk")
		g := f.group(t, "渠道", tag.DimChannel)
		store, mini := f.tag(t, g, "门店"), f.tag(t, g, "小程序")
		ids := f.customers(t, 2500)
		// Some already hold the tag; two ids are unknown, one is repeated.
		if _, err := f.tags.BulkApply(ctx, f.tenant, []int64{store.ID}, ids[:10], tag.ByPrincipal(f.p), nil); err != nil {
			t.Fatal(err)
		}
		f.obs.take()
		given := append(slices.Clone(ids), 0, 99999999, ids[5])
		var progress [][2]int
		res, err := f.tags.BulkApply(ctx, f.tenant, []int64{store.ID, mini.ID}, given, tag.Application{Source: tag.SourceCode, SourceRef: "store-SH-01"},
			func(done, total int) { progress = append(progress, [2]int{done, total}) })
		if err != nil {
			t.Fatal(err)
		}
		want := tag.BulkResult{Total: 2502, Changed: 2490 + 2500, Unchanged: 10, NotFound: 2}
		if res != want {
			t.Fatalf("result %+v, want %+v", res, want)
		}
		if !slices.Equal(progress, [][2]int{{1000, 2502}, {2000, 2502}, {2502, 2502}}) {
			t.Fatalf("progress %v", progress)
		}
		calls := f.obs.take()
		if len(calls) != 2500 {
			t.Fatalf("%d observer calls, want one per customer", len(calls))
		}
		for _, c := range calls {
			w := []int64{store.ID, mini.ID}
			if slices.Index(ids, c.customer) < 10 {
				w = []int64{mini.ID}
			}
			slices.Sort(w)
			if !slices.Equal(c.added, w) || len(c.removed) != 0 {
				t.Fatalf("customer %d told %+v, want added %v", c.customer, c, w)
			}
		}
		held, err := f.tags.TagsOf(ctx, f.tenant, ids[5])
		if err != nil || len(held) != 2 || held[0].Source != tag.SourceManual {
			t.Fatalf("first application kept? %+v %v", held, err)
		}
		counts, _ := f.tags.Counts(ctx, f.tenant)
		if counts[store.ID] != 2500 || counts[mini.ID] != 2500 {
			t.Fatalf("counts %v", counts)
		}

		// Who has the tag, paged; and the snapshot, ordered.
		var got []int64
		r := page.Request{Limit: 200}
		for {
			pg, err := f.tags.CustomersWithTag(ctx, f.tenant, store.ID, r)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, pg.Items...)
			if pg.Next == "" {
				break
			}
			r.Cursor = pg.Next
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("customers with tag: %d ids", len(got))
		}
		var pairs [][2]int64
		if err := f.tags.Snapshot(ctx, f.tenant, func(tagID, customerID int64) error {
			pairs = append(pairs, [2]int64{tagID, customerID})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(pairs) != 5000 || !slices.IsSortedFunc(pairs, func(a, b [2]int64) int {
			if a[0] != b[0] {
				return int(a[0] - b[0])
			}
			return int(a[1] - b[1])
		}) {
			t.Fatalf("snapshot: %d pairs, sorted %v", len(pairs), pairs[:3])
		}
		stop := fmt.Errorf("enough")
		if err := f.tags.Snapshot(ctx, f.tenant, func(int64, int64) error { return stop }); err != stop {
			t.Fatalf("snapshot did not stop: %v", err)
		}

		res, err = f.tags.BulkRemove(ctx, f.tenant, []int64{mini.ID}, ids[:1200], tag.ByPrincipal(f.p), nil)
		if err != nil || res.Changed != 1200 || res.Unchanged != 0 {
			t.Fatalf("remove %+v %v", res, err)
		}
		if calls := f.obs.take(); len(calls) != 1200 || !slices.Equal(calls[0].removed, []int64{mini.ID}) {
			t.Fatalf("remove told %d", len(calls))
		}
		f.checkCounts(t)

		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := f.tags.BulkApply(cctx, f.tenant, []int64{mini.ID}, ids, tag.ByPrincipal(f.p), nil); err == nil {
			t.Fatal("bulk ran with a cancelled context")
		}
		_, err = f.tags.BulkApply(ctx, f.tenant, []int64{424242}, ids, tag.ByPrincipal(f.p), nil)
		wantCode(t, err, "tag_not_found")
	})
}

func TestResolve(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d, "resolve")
		value := f.group(t, "价值", tag.DimValue)
		member := f.group(t, "会员", tag.DimCustomer)
		high := f.tag(t, value, "高价值")
		f.tag(t, member, "高价值")
		gold := f.tag(t, member, "金卡")

		for _, c := range []struct {
			ref  string
			id   int64
			code string
		}{
			{"金卡", gold.ID, ""},
			{" 金卡 ", gold.ID, ""},
			{"价值/高价值", high.ID, ""},
			{"高价值", 0, "ambiguous_tag"},
			{"不存在", 0, "tag_not_found"},
			{"价值/金卡", 0, "tag_not_found"},
			{"无此组/高价值", 0, "tag_not_found"},
			{"", 0, "invalid_tag_ref"},
		} {
			id, err := f.tags.Resolve(ctx, f.tenant, c.ref)
			if c.code != "" {
				wantCode(t, err, c.code)
				continue
			}
			if err != nil || id != c.id {
				t.Errorf("Resolve(%q) = %d, %v; want %d", c.ref, id, err, c.id)
			}
		}
		_, err := f.tags.Resolve(ctx, f.tenant, "高价值")
		if e, _ := errs.As(err); e == nil || !strings.Contains(e.Message, "价值, 会员") {
			t.Fatalf("ambiguity should name the groups: %v", err)
		}
		ids, err := f.tags.ResolveAll(ctx, f.tenant, []string{"金卡", "价值/高价值"})
		if err != nil || !slices.Equal(ids, []int64{gold.ID, high.ID}) {
			t.Fatalf("ResolveAll %v %v", ids, err)
		}
	})
}

func TestMergeMovesTags(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d, "merge")
		g := f.group(t, "产品偏好", tag.DimProduct)
		oolong, matcha, fruit := f.tag(t, g, "乌龙"), f.tag(t, g, "抹茶"), f.tag(t, g, "果茶")
		resolve := func(ids ...customer.Identity) int64 {
			var id int64
			err := d.Tx(ctx, func(tx *sql.Tx) error {
				var err error
				id, err = f.cs.Resolve(ctx, tx, f.tenant, customer.Observation{Identities: ids, Source: "test"})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		a := resolve(customer.Identity{Kind: customer.KindUserID, Value: "u1"})
		time.Sleep(2 * time.Millisecond) // a is older, so a survives
		b := resolve(customer.Identity{Kind: customer.KindEmail, Value: "b@example.com"})
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		app := func(ref string, at time.Time) tag.Application {
			return tag.Application{Source: tag.SourceRule, SourceRef: ref, At: at}
		}
		mustApply := func(c int64, id int64, a tag.Application) {
			if _, err := f.tags.Apply(ctx, f.tenant, c, []int64{id}, a); err != nil {
				t.Fatal(err)
			}
		}
		mustApply(a, oolong.ID, app("a-oolong", t0.Add(2*time.Hour)))
		mustApply(a, matcha.ID, app("a-matcha", t0.Add(2*time.Hour)))
		mustApply(b, matcha.ID, app("b-matcha", t0.Add(time.Hour))) // earlier: wins
		mustApply(b, oolong.ID, app("b-oolong", t0.Add(3*time.Hour)))
		mustApply(b, fruit.ID, app("b-fruit", t0))

		surv := resolve(customer.Identity{Kind: customer.KindUserID, Value: "u1"}, customer.Identity{Kind: customer.KindEmail, Value: "b@example.com"})
		if surv != a {
			t.Fatalf("survivor %d, want %d", surv, a)
		}
		held, err := f.tags.TagsOf(ctx, f.tenant, b) // the merged id leads to the survivor
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]string{}
		for _, h := range held {
			got[h.TagID] = h.SourceRef
		}
		want := map[int64]string{oolong.ID: "a-oolong", matcha.ID: "b-matcha", fruit.ID: "b-fruit"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after merge %v, want %v", got, want)
		}
		if h := f.held(t, b); len(h) != 0 {
			t.Fatalf("merged profile still holds %v", h)
		}
		f.checkCounts(t)
		var moved int
		if err := d.QueryRow(`SELECT count(*) FROM tag_history WHERE tenant_id = $1 AND customer_id = $2`, f.tenant, a).Scan(&moved); err != nil || moved != 5 {
			t.Fatalf("history of survivor: %d %v", moved, err)
		}
		// Writes through the merged id reach the survivor.
		ch, err := f.tags.Remove(ctx, f.tenant, b, []int64{fruit.ID}, tag.ByPrincipal(f.p))
		if err != nil || ch.CustomerID != a || !slices.Equal(ch.Removed, []int64{fruit.ID}) {
			t.Fatalf("remove via merged id: %+v %v", ch, err)
		}
	})
}

// Many writers on few customers: an observer that applies what it is told
// ends with exactly what the database holds, because each customer's
// changes are told in commit order.
func TestObserverOrderUnderConcurrency(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d, "race")
		g := f.group(t, "价值", tag.DimValue)
		var tagIDs []int64
		for _, n := range []string{"高价值", "潜力", "流失风险"} {
			tagIDs = append(tagIDs, f.tag(t, g, n).ID)
		}
		ids := f.customers(t, 4)
		var mu sync.Mutex
		state := map[[2]int64]bool{}
		f.tags.Observe(tag.ObserverFunc(func(_, c int64, added, removed []int64) {
			mu.Lock()
			defer mu.Unlock()
			for _, id := range added {
				if state[[2]int64{c, id}] {
					t.Errorf("customer %d told tag %d added twice", c, id)
				}
				state[[2]int64{c, id}] = true
			}
			for _, id := range removed {
				if !state[[2]int64{c, id}] {
					t.Errorf("customer %d told tag %d removed without holding it", c, id)
				}
				delete(state, [2]int64{c, id})
			}
		}))
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 25 {
					c := ids[(w+i)%len(ids)]
					id := tagIDs[(w*7+i)%len(tagIDs)]
					var err error
					switch (w + i) % 3 {
					case 0, 1:
						_, err = f.tags.Apply(ctx, f.tenant, c, []int64{id}, tag.ByPrincipal(f.p))
					default:
						_, err = f.tags.BulkRemove(ctx, f.tenant, []int64{id}, ids, tag.ByPrincipal(f.p), nil)
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		var pairs int
		err := f.tags.Snapshot(ctx, f.tenant, func(tagID, customerID int64) error {
			pairs++
			if !state[[2]int64{customerID, tagID}] {
				t.Errorf("database holds (%d, %d), the observer does not", customerID, tagID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if pairs != len(state) {
			t.Fatalf("database %d pairs, observer %d", pairs, len(state))
		}
		f.checkCounts(t)
	})
}
