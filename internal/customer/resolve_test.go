package customer_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

type resolveFixture struct {
	d      *db.DB
	svc    *customer.Service
	tenant int64
	t0     time.Time
	hooks  [][2]int64
}

func newResolveFixture(t *testing.T, d *db.DB) *resolveFixture {
	ctx := context.Background()
	w, err := tenant.NewService(d, tenant.Options{}).CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "oneid", Name: "One ID"})
	if err != nil {
		t.Fatal(err)
	}
	f := &resolveFixture{d: d, svc: customer.NewService(d, keyring(t), nil), tenant: w.ID, t0: time.Date(2026, 10, 1, 2, 0, 0, 0, time.UTC)}
	f.svc.OnMerge("test", func(_ context.Context, _ *sql.Tx, _ int64, from, to int64) error {
		f.hooks = append(f.hooks, [2]int64{from, to})
		return nil
	})
	return f
}

func (f *resolveFixture) resolve(t *testing.T, minutes int, msg string, traits map[string]any, ids ...customer.Identity) int64 {
	t.Helper()
	var id int64
	err := f.d.Tx(context.Background(), func(tx *sql.Tx) error {
		var err error
		id, err = f.svc.Resolve(context.Background(), tx, f.tenant, customer.Observation{
			At: f.t0.Add(time.Duration(minutes) * time.Minute), Identities: ids, Traits: traits, Source: "test", MessageID: msg,
		})
		return err
	})
	if err != nil {
		t.Fatalf("resolve %s: %v", msg, err)
	}
	return id
}

func idn(kind, value string) customer.Identity { return customer.Identity{Kind: kind, Value: value} }

// The scenario: an anonymous mini-program visitor logs in with a phone,
// adds staff on WeCom, and buys on Tmall — one profile with every identifier.
func TestOneIDScenario(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newResolveFixture(t, d)
		ctx := context.Background()
		anon := f.resolve(t, 0, "m1", nil, idn(customer.KindAnonymousID, "anon-7f3a"))
		login := f.resolve(t, 5, "m2", map[string]any{"phone": "138 0013 8000", "name": "王芳", "plan": "gold"},
			idn(customer.KindAnonymousID, "anon-7f3a"), idn(customer.KindUserID, "u-1001"))
		if login != anon {
			t.Fatalf("login made a second profile: %d vs %d", login, anon)
		}
		// WeCom knows the person by unionid + external_userid; the connector
		// links them to the same phone later. First they arrive alone …
		wecom := f.resolve(t, 60, "m3", nil, idn(customer.KindUnionID, "oUnion42"), idn(customer.KindWeComExtID, "wmExt42"))
		if wecom == anon {
			t.Fatal("WeCom contact matched before anything linked them")
		}
		// … then a message carrying the unionid and the phone joins them.
		joined := f.resolve(t, 61, "m4", nil, idn(customer.KindUnionID, "oUnion42"), idn(customer.KindPhone, "+8613800138000"))
		// Tmall order: shop buyer id + phone.
		tmall := f.resolve(t, 120, "m5", nil, idn(customer.KindShopBuyerID, "tmall:buyer-9"), idn(customer.KindPhone, "13800138000"))
		if joined != anon || tmall != anon {
			t.Fatalf("profiles %d %d, want all %d (the oldest survives)", joined, tmall, anon)
		}
		c, err := f.svc.Get(ctx, f.tenant, anon, true)
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != "王芳" || c.Phone != "+8613800138000" || c.Traits["plan"] != "gold" {
			t.Fatalf("profile %+v", c)
		}
		ids, _ := f.svc.Identities(ctx, f.tenant, anon)
		want := map[string]string{customer.KindAnonymousID: "anon-7f3a", customer.KindUserID: "u-1001", customer.KindUnionID: "oUnion42",
			customer.KindWeComExtID: "wmExt42", customer.KindShopBuyerID: "tmall:buyer-9"}
		got := map[string]string{}
		for _, i := range ids {
			got[i.Kind] = i.Value
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("identity %s = %q, want %q (all: %v)", k, got[k], v, ids)
			}
		}
		// The merge is recorded (what, why, which message) and the old id
		// still leads to the survivor; other domains were told.
		merges, err := f.svc.Merges(ctx, f.tenant, anon)
		if err != nil || len(merges) != 1 || merges[0].MergedID != wecom || merges[0].IdentityKind != customer.KindPhone ||
			merges[0].IdentityValue != "138****8000" || merges[0].MessageID != "m4" {
			t.Fatalf("merges %+v %v", merges, err)
		}
		if c2, err := f.svc.Get(ctx, f.tenant, wecom, false); err != nil || c2.ID != anon {
			t.Fatalf("merged id leads to %d, %v", c2.ID, err)
		}
		if len(f.hooks) != 1 || f.hooks[0] != [2]int64{wecom, anon} {
			t.Fatalf("merge hooks %v", f.hooks)
		}
		if n, _ := f.svc.Count(ctx, f.tenant); n != 1 {
			t.Fatalf("%d live profiles, want 1", n)
		}
	})
}

func TestOneIDLimitsAndBlockedValues(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newResolveFixture(t, d)
		ctx := context.Background()
		// A shared device: two users on one anonymous id stay two people,
		// because a profile holds one user_id.
		a := f.resolve(t, 0, "a1", nil, idn(customer.KindUserID, "alice"), idn(customer.KindAnonymousID, "ipad"))
		b := f.resolve(t, 1, "b1", nil, idn(customer.KindUserID, "bob"), idn(customer.KindAnonymousID, "ipad"))
		if a == b {
			t.Fatal("two user_ids merged through a shared device")
		}
		if again := f.resolve(t, 2, "a2", nil, idn(customer.KindUserID, "alice")); again != a {
			t.Fatalf("alice resolved to %d, want %d", again, a)
		}
		// Blocked values identify no one: two "null" user ids are not one person.
		x := f.resolve(t, 3, "x", nil, idn(customer.KindUserID, "null"), idn(customer.KindAnonymousID, "dev-x"))
		y := f.resolve(t, 4, "y", nil, idn(customer.KindUserID, "null"), idn(customer.KindAnonymousID, "dev-y"))
		if x == y {
			t.Fatal("blocked value merged two profiles")
		}
		for _, v := range []string{"0000000", "undefined", "  "} {
			err := f.d.Tx(ctx, func(tx *sql.Tx) error {
				_, err := f.svc.Resolve(ctx, tx, f.tenant, customer.Observation{Identities: []customer.Identity{idn(customer.KindUserID, v)}})
				return err
			})
			if errs.CodeOf(err) != "no_identifier" {
				t.Errorf("only blocked %q: %v", v, err)
			}
		}
		err := f.d.Tx(ctx, func(tx *sql.Tx) error {
			_, err := f.svc.Resolve(ctx, tx, f.tenant, customer.Observation{Identities: []customer.Identity{idn("passport", "E123")}})
			return err
		})
		if errs.CodeOf(err) != "unknown_identity_kind" {
			t.Errorf("unknown kind: %v", err)
		}
		// Workspace rules: block a value and tighten a limit.
		rules := customer.DefaultRules()
		rules.Blocked = append(rules.Blocked, "test-device")
		if _, err := f.svc.SetIdentityRules(ctx, f.tenant, rules); err != nil {
			t.Fatal(err)
		}
		p := f.resolve(t, 5, "p", nil, idn(customer.KindUserID, "pat"), idn(customer.KindAnonymousID, "test-device"))
		q := f.resolve(t, 6, "q", nil, idn(customer.KindUserID, "quinn"), idn(customer.KindAnonymousID, "test-device"))
		if p == q {
			t.Fatal("a workspace-blocked value linked two users")
		}
		rules.Limits[customer.KindUserID] = 0
		if _, err := f.svc.SetIdentityRules(ctx, f.tenant, rules); errs.CodeOf(err) != "invalid_limit" {
			t.Fatalf("limit 0 accepted: %v", err)
		}
	})
}

func TestCustomAttributesInferredThenDefined(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newResolveFixture(t, d)
		ctx := context.Background()
		id := f.resolve(t, 0, "t1", map[string]any{"vip_level": 3.0, "likes": []any{"乌龙", "抹茶"}, "member_since": "2024-05-01", "tea_pref": "乌龙"},
			idn(customer.KindUserID, "attr-user"))
		attrs, err := f.svc.Attributes(ctx, f.tenant)
		if err != nil {
			t.Fatal(err)
		}
		types := map[string]string{}
		for _, a := range attrs {
			types[a.Name] = a.Type
		}
		want := map[string]string{"vip_level": "number", "likes": "list", "member_since": "date", "tea_pref": "string"}
		for k, v := range want {
			if types[k] != v {
				t.Errorf("attribute %s inferred as %q, want %q", k, types[k], v)
			}
		}
		// Once defined, a write of another type is refused and counted; the
		// rest of the message still applies.
		if _, err := f.svc.DefineAttribute(ctx, f.tenant, "vip_level", "会员等级", "number"); err != nil {
			t.Fatal(err)
		}
		f.resolve(t, 1, "t2", map[string]any{"vip_level": "gold", "tea_pref": "抹茶", "likes": nil}, idn(customer.KindUserID, "attr-user"))
		c, _ := f.svc.Get(ctx, f.tenant, id, false)
		if c.Traits["vip_level"] != 3.0 || c.Traits["tea_pref"] != "抹茶" {
			t.Fatalf("traits after a rejected write: %v", c.Traits)
		}
		if _, ok := c.Traits["likes"]; ok {
			t.Fatalf("null did not clear the trait: %v", c.Traits)
		}
		attrs, _ = f.svc.Attributes(ctx, f.tenant)
		for _, a := range attrs {
			if a.Name == "vip_level" && (a.RejectedCount != 1 || !a.Defined || a.DisplayName != "会员等级") {
				t.Fatalf("vip_level %+v", a)
			}
		}
		for _, bad := range []struct{ name, typ, code string }{{"phone", "string", "standard_attribute"}, {"x y", "string", "invalid_attribute_name"}, {"ok", "money", "invalid_attribute_type"}} {
			if _, err := f.svc.DefineAttribute(ctx, f.tenant, bad.name, "", bad.typ); errs.CodeOf(err) != bad.code {
				t.Errorf("define %s/%s: %v, want %s", bad.name, bad.typ, err, bad.code)
			}
		}
	})
}

// A message whose identifiers name the same merged profile twice merges it
// once.
func TestOneIDMergesEachProfileOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newResolveFixture(t, d)
		a := f.resolve(t, 0, "a", nil, idn(customer.KindPhone, "13800138000"))
		b := f.resolve(t, 1, "b", nil, idn(customer.KindUnionID, "oU"), idn(customer.KindAnonymousID, "wecom:1"))
		got := f.resolve(t, 2, "c", nil, idn(customer.KindUnionID, "oU"), idn(customer.KindPhone, "13800138000"), idn(customer.KindAnonymousID, "wecom:1"))
		if got != a {
			t.Fatalf("resolved to %d, want %d", got, a)
		}
		merges, _ := f.svc.Merges(context.Background(), f.tenant, a)
		if len(merges) != 1 || merges[0].MergedID != b || len(f.hooks) != 1 {
			t.Fatalf("merges %+v, hooks %v", merges, f.hooks)
		}
	})
}
