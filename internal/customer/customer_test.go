package customer_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/tenant"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want, err string }{
		{"13800138000", "+8613800138000", ""},
		{"138 0013 8000", "+8613800138000", ""},
		{"138-0013-8000", "+8613800138000", ""},
		{"+86 138 0013 8000", "+8613800138000", ""},
		{"8613800138000", "+8613800138000", ""},
		{"008613800138000", "+8613800138000", ""},
		{"+1 (415) 555-0100", "+14155550100", ""},
		{"23800138000", "", "invalid_phone"},
		{"+8623800138000", "", "invalid_phone"},
		{"1380013800", "", "invalid_phone"},
		{"abc", "", "invalid_phone"},
		{"", "", "invalid_phone"},
	}
	for _, c := range cases {
		got, err := customer.NormalizePhone(c.in)
		if got != c.want || (c.err != "" && errs.CodeOf(err) != c.err) || (c.err == "" && err != nil) {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q, %s", c.in, got, err, c.want, c.err)
		}
	}
}

func keyring(t *testing.T) *pii.Keyring {
	master := make([]byte, 32)
	rand.Read(master)
	k, err := pii.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPhonesAreEncryptedMaskedAndFindable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		ts := tenant.NewService(d, tenant.Options{})
		w, err := ts.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "pii", Name: "PII"})
		if err != nil {
			t.Fatal(err)
		}
		svc := customer.NewService(d, keyring(t), nil)
		c, err := svc.Create(ctx, w.ID, customer.NewCustomer{Name: "王芳", Phone: "138 0013 8000",
			Identities: []customer.Identity{{Kind: customer.KindUserID, Value: "u1"}}})
		if err != nil {
			t.Fatal(err)
		}
		if c.Phone != "+8613800138000" {
			t.Fatalf("phone with PII shown: %q", c.Phone)
		}
		// Not stored in clear anywhere.
		var enc, masked string
		if err := d.QueryRow(`SELECT phone_enc, phone_masked FROM customers WHERE id = $1`, c.ID).Scan(&enc, &masked); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(enc, "13800138000") || masked != "138****8000" {
			t.Fatalf("stored phone: enc %q masked %q", enc, masked)
		}
		var n int
		d.QueryRow(`SELECT count(*) FROM customer_identities WHERE value LIKE '%13800138000%'`).Scan(&n)
		if n != 0 {
			t.Fatal("phone stored in clear as an identity")
		}
		// Masked without PII permission; found by any format of the number.
		for _, q := range []customer.Query{{Search: "13800138000"}, {Search: "+86 138-0013-8000"}, {Identifier: "phone:8613800138000"}, {Identifier: "user_id:u1"}, {Search: "王"}} {
			pg, err := svc.List(ctx, w.ID, q, page.Request{})
			if err != nil || len(pg.Items) != 1 || pg.Items[0].Phone != "138****8000" {
				t.Fatalf("list %+v: %+v %v", q, pg.Items, err)
			}
		}
		// A taken identifier is a conflict and writes nothing.
		_, err = svc.CreateMany(ctx, w.ID, []customer.NewCustomer{{Name: "新客"}, {Name: "重复", Phone: "13800138000"}})
		if errs.CodeOf(err) != "identity_taken" {
			t.Fatalf("duplicate phone: %v", err)
		}
		if n, _ := svc.Count(ctx, w.ID); n != 1 {
			t.Fatalf("partial write: %d customers", n)
		}
	})
}

func TestMaskPhone(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"+8613800138000": "138****8000", "+14155550100": "+14****0100", "123": "***"} {
		if got := pii.MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}
