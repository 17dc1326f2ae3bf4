package staff_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

type relFixture struct {
	d         *db.DB
	svc       *staff.Service
	customers *customer.Service
	tenant    int64
	t0        time.Time
}

func newRelFixture(t *testing.T, d *db.DB) *relFixture {
	t.Helper()
	ctx := context.Background()
	w, err := tenant.NewService(d, tenant.Options{}).CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "rel", Name: "Relations"})
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := pii.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	return &relFixture{d: d, svc: staff.NewService(d), customers: customer.NewService(d, kr, nil), tenant: w.ID,
		t0: time.Date(2026, 10, 1, 2, 0, 0, 0, time.UTC)}
}

func (f *relFixture) customer(t *testing.T) int64 {
	t.Helper()
	c, err := f.customers.Create(context.Background(), f.tenant, customer.NewCustomer{Name: "顾客"})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func (f *relFixture) apply(t *testing.T, userID string, ch staff.RelationChange) staff.RelationResult {
	t.Helper()
	var res staff.RelationResult
	err := f.d.Tx(context.Background(), func(tx *sql.Tx) error {
		id, err := f.svc.EnsureWeComMember(context.Background(), tx, f.tenant, userID)
		if err != nil {
			return err
		}
		ch.StaffID, ch.Channel = id, staff.ChannelWeCom
		res, err = f.svc.ApplyRelation(context.Background(), tx, f.tenant, ch)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// permutations returns every order of n items.
func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

// A customer's adds, edits and deletes may reach Siyu in any order (WeCom
// retries, several nodes); the relation must end the same whatever the order.
func TestRelationConvergesInAnyOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newRelFixture(t, d)
		at := func(s int) time.Time { return f.t0.Add(time.Duration(s) * time.Second) }
		changes := func(cid int64) []staff.RelationChange {
			k := staff.RelationKey{ExternalID: "wmCUSTOMER"}
			return []staff.RelationChange{
				{RelationKey: k, CustomerID: cid, Status: staff.RelationActive, At: at(0), State: "store-12", WelcomeCode: "W1",
					Details: &staff.RelationDetails{Remark: "first", TagIDs: []string{"t1"}, At: at(1)}},
				{RelationKey: k, CustomerID: cid, Details: &staff.RelationDetails{Remark: "edited", TagIDs: []string{"t2", "t1"}, AddWay: 1, State: "store-12", At: at(10)}},
				{RelationKey: k, CustomerID: cid, Status: staff.RelationDeletedByCustomer, At: at(20)},
				{RelationKey: k, CustomerID: cid, Status: staff.RelationActive, At: at(30), State: "store-99"},
			}
		}
		var want *staff.Relation
		for i, order := range permutations(4) {
			cid := f.customer(t)
			user := "u" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			cs := changes(cid)
			for _, j := range order {
				f.apply(t, user, cs[j])
				// A duplicate delivery changes nothing.
				f.apply(t, user, cs[j])
			}
			rels, err := f.svc.CustomerRelations(context.Background(), f.tenant, cid)
			if err != nil {
				t.Fatal(err)
			}
			if len(rels) != 1 {
				t.Fatalf("order %v: %d relations", order, len(rels))
			}
			got := rels[0]
			got.StaffID, got.StaffName, got.StaffWeComUserID, got.CustomerID, got.UpdatedAt = 0, "", "", 0, time.Time{}
			if want == nil {
				want = &got
				if got.Status != staff.RelationActive || got.Remark != "edited" || len(got.ChannelTagIDs) != 2 || got.State != "store-99" ||
					!got.AddedAt.Equal(at(30)) || !got.DeletedAt.IsZero() {
					t.Fatalf("relation after the events in order: %+v", got)
				}
				continue
			}
			if got.Status != want.Status || got.Remark != want.Remark || got.State != want.State || !got.AddedAt.Equal(want.AddedAt) ||
				!got.DeletedAt.Equal(want.DeletedAt) || len(got.ChannelTagIDs) != len(want.ChannelTagIDs) || got.AddWay != want.AddWay {
				t.Fatalf("order %v ends in %+v, want %+v", order, got, *want)
			}
		}
	})
}

// A deletion and an add in the same second end deleted, in either order.
func TestRelationSameSecondTieBreak(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newRelFixture(t, d)
		for i, first := range []staff.RelationStatus{staff.RelationActive, staff.RelationDeletedByStaff} {
			cid := f.customer(t)
			second := staff.RelationDeletedByStaff
			if first == second {
				second = staff.RelationActive
			}
			k := staff.RelationKey{ExternalID: "wmX"}
			user := []string{"a", "b"}[i]
			f.apply(t, user, staff.RelationChange{RelationKey: k, CustomerID: cid, Status: first, At: f.t0})
			res := f.apply(t, user, staff.RelationChange{RelationKey: k, CustomerID: cid, Status: second, At: f.t0})
			rels, _ := f.svc.CustomerRelations(context.Background(), f.tenant, cid)
			if rels[0].Status != staff.RelationDeletedByStaff {
				t.Fatalf("%s then %s: %s (%+v)", first, second, rels[0].Status, res)
			}
		}
	})
}

// A failed transfer is recorded on the taking-over staff member without
// making them serve the customer; relations follow a merge.
func TestRelationTransferFailAndMerge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newRelFixture(t, d)
		ctx := context.Background()
		a, b := f.customer(t), f.customer(t)
		k := staff.RelationKey{ExternalID: "wmY"}
		f.apply(t, "old", staff.RelationChange{RelationKey: k, CustomerID: a, Status: staff.RelationActive, At: f.t0})
		f.apply(t, "taker", staff.RelationChange{RelationKey: k, CustomerID: a, At: f.t0.Add(time.Hour), TransferFail: "customer_refused"})
		rels, err := f.svc.CustomerRelations(ctx, f.tenant, a)
		if err != nil {
			t.Fatal(err)
		}
		if len(rels) != 2 || rels[0].StaffName != "old" || !rels[0].Status.Current() ||
			rels[1].Status != staff.RelationTransferFailed || rels[1].TransferFailReason != "customer_refused" {
			t.Fatalf("relations %+v", rels)
		}
		counts, err := f.svc.CustomerCounts(ctx, f.tenant)
		if err != nil {
			t.Fatal(err)
		}
		if counts[rels[0].StaffID] != 1 || counts[rels[1].StaffID] != 0 {
			t.Fatalf("counts %v", counts)
		}
		err = d.Tx(ctx, func(tx *sql.Tx) error { return f.svc.MoveCustomer(ctx, tx, f.tenant, a, b) })
		if err != nil {
			t.Fatal(err)
		}
		if rels, _ := f.svc.CustomerRelations(ctx, f.tenant, b); len(rels) != 2 {
			t.Fatalf("after merge: %+v", rels)
		}
	})
}

// The directory: a member first named by a contact event gets their name
// from the directory; an older directory event does not undo a newer one; a
// renamed user id keeps the staff member.
func TestWeComMembers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newRelFixture(t, d)
		ctx := context.Background()
		tx := func(fn func(tx *sql.Tx) error) {
			t.Helper()
			if err := d.Tx(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		var id int64
		tx(func(tx *sql.Tx) (err error) { id, err = f.svc.EnsureWeComMember(ctx, tx, f.tenant, "zhangsan"); return })
		tx(func(tx *sql.Tx) error {
			_, err := f.svc.ApplyWeComMember(ctx, tx, f.tenant, staff.WeComMember{UserID: "zhangsan", Status: staff.Resigned, At: f.t0.Add(time.Hour)})
			return err
		})
		tx(func(tx *sql.Tx) error {
			_, err := f.svc.ApplyWeComMember(ctx, tx, f.tenant, staff.WeComMember{UserID: "zhangsan", Name: "张三", Status: staff.Active, At: f.t0})
			return err
		})
		m, err := f.svc.Member(ctx, f.tenant, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != staff.Resigned || m.Name != "zhangsan" || m.ResignedAt.IsZero() {
			t.Fatalf("member %+v", m)
		}
		tx(func(tx *sql.Tx) error { return f.svc.RenameWeComMember(ctx, tx, f.tenant, "zhangsan", "zhang.san") })
		if m, err := f.svc.MemberByWeComUserID(ctx, f.tenant, "zhang.san"); err != nil || m.ID != id {
			t.Fatalf("renamed member %+v %v", m, err)
		}
		names, err := f.svc.NamesByWeComUserID(ctx, f.tenant, []string{"zhang.san", "nobody"})
		if err != nil || len(names) != 1 || names["zhang.san"] != "zhangsan" {
			t.Fatalf("names %v %v", names, err)
		}
	})
}
