package tenant_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// clock is a settable time source for session expiry and rate-limit windows.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	svc    *tenant.Service
	clk    *clock
	ws     tenant.Workspace
	owner  tenant.User
	ownerP tenant.Principal
}

func setup(t *testing.T, d *db.DB) fixture {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)}
	svc := tenant.NewService(d, tenant.Options{HashParams: tenant.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}, Now: clk.now})
	ctx := context.Background()
	ws, err := svc.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "tea", Name: "茶语"})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := svc.CreateUser(ctx, ws.ID, tenant.NewUser{Email: "Owner@Tea.test", Name: "老板", Password: "owner password", Role: tenant.RoleOwner})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{svc: svc, clk: clk, ws: ws, owner: owner, ownerP: tenant.UserPrincipal(owner, tenant.RequestMeta{IP: "10.0.0.1"})}
}

func code(err error) string { return errs.CodeOf(err) }

func TestLoginAndSessions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := setup(t, d)
		ctx := context.Background()
		meta := tenant.RequestMeta{IP: "192.0.2.1", UserAgent: "test"}

		// Emails are case-insensitive.
		token, sess, u, err := f.svc.Login(ctx, "owner@TEA.test", "owner password", meta)
		if err != nil || u.ID != f.owner.ID || sess.CSRFToken == "" {
			t.Fatalf("login: %v %+v", err, u)
		}
		if _, _, _, err := f.svc.Login(ctx, "owner@tea.test", "wrong password", meta); code(err) != "invalid_login" {
			t.Fatalf("wrong password: %v", err)
		}
		if _, _, _, err := f.svc.Login(ctx, "nobody@tea.test", "whatever pw", meta); code(err) != "invalid_login" {
			t.Fatalf("unknown email: %v", err)
		}
		// The session resolves, slides forward with use, and expires when idle.
		if _, got, err := f.svc.SessionByToken(ctx, token); err != nil || got.ID != f.owner.ID {
			t.Fatalf("session: %v", err)
		}
		if _, _, err := f.svc.SessionByToken(ctx, token+"x"); code(err) != "session_expired" {
			t.Fatalf("forged token: %v", err)
		}
		f.clk.add(tenant.SessionTTL - time.Hour)
		if _, _, err := f.svc.SessionByToken(ctx, token); err != nil {
			t.Fatalf("session before expiry: %v", err)
		}
		f.clk.add(tenant.SessionTTL + time.Minute)
		if _, _, err := f.svc.SessionByToken(ctx, token); code(err) != "session_expired" {
			t.Fatalf("idle session: %v", err)
		}
		// Logout ends the session at once.
		token, _, _, _ = f.svc.Login(ctx, "owner@tea.test", "owner password", meta)
		if err := f.svc.Logout(ctx, token, f.ownerP); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.SessionByToken(ctx, token); code(err) != "session_expired" {
			t.Fatalf("after logout: %v", err)
		}
		// Sign-ins, good and bad, are audited with where they came from.
		log, err := f.svc.AuditLog(ctx, f.ws.ID, page.Request{})
		if err != nil {
			t.Fatal(err)
		}
		var saw []string
		for _, e := range log.Items {
			saw = append(saw, e.Action+"@"+e.IP)
		}
		all := strings.Join(saw, " ")
		for _, want := range []string{"login.success@192.0.2.1", "login.failure@192.0.2.1", "logout@10.0.0.1"} {
			if !strings.Contains(all, want) {
				t.Errorf("audit log lacks %s: %s", want, all)
			}
		}
	})
}

func TestLoginRateLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := setup(t, d)
		ctx := context.Background()
		meta := tenant.RequestMeta{IP: "198.51.100.7"}
		for range 5 {
			if _, _, _, err := f.svc.Login(ctx, "owner@tea.test", "guess guess", meta); code(err) != "invalid_login" {
				t.Fatalf("guess: %v", err)
			}
		}
		// Now even the right password is refused until the window passes.
		_, _, _, err := f.svc.Login(ctx, "owner@tea.test", "owner password", meta)
		if errs.KindOf(err) != errs.RateLimited {
			t.Fatalf("after 5 failures: %v", err)
		}
		f.clk.add(16 * time.Minute)
		if _, _, _, err := f.svc.Login(ctx, "owner@tea.test", "owner password", meta); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
}

func TestRolesAndUserAdministration(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := setup(t, d)
		ctx := context.Background()
		admin, err := f.svc.AddUser(ctx, f.ownerP, tenant.NewUser{Email: "admin@tea.test", Password: "admin password", Role: tenant.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		adminP := tenant.UserPrincipal(admin, tenant.RequestMeta{})
		op, err := f.svc.AddUser(ctx, adminP, tenant.NewUser{Email: "op@tea.test", Password: "operator pw", Role: tenant.RoleOperator})
		if err != nil {
			t.Fatal(err)
		}
		opP := tenant.UserPrincipal(op, tenant.RequestMeta{})

		cases := []struct {
			name string
			err  error
			want string
		}{
			{"admin cannot create owner", second(f.svc.AddUser(ctx, adminP, tenant.NewUser{Email: "o2@tea.test", Password: "long password", Role: tenant.RoleOwner})), "role_too_high"},
			{"operator cannot add users", second(f.svc.AddUser(ctx, opP, tenant.NewUser{Email: "x@tea.test", Password: "long password", Role: tenant.RoleAnalyst})), "forbidden"},
			{"weak password", second(f.svc.AddUser(ctx, adminP, tenant.NewUser{Email: "w@tea.test", Password: "short", Role: tenant.RoleStaff})), "weak_password"},
			{"bad email", second(f.svc.AddUser(ctx, adminP, tenant.NewUser{Email: "nope", Password: "long password", Role: tenant.RoleStaff})), "invalid_email"},
			{"duplicate email", second(f.svc.AddUser(ctx, adminP, tenant.NewUser{Email: "OP@tea.test", Password: "long password", Role: tenant.RoleStaff})), "email_taken"},
			{"admin cannot demote owner", second(f.svc.UpdateUser(ctx, adminP, f.owner.ID, tenant.UserUpdate{Role: ptr(tenant.RoleStaff)})), "role_too_high"},
			{"last owner cannot be demoted", second(f.svc.UpdateUser(ctx, f.ownerP, f.owner.ID, tenant.UserUpdate{Role: ptr(tenant.RoleAdmin)})), "own_role"},
			{"cannot disable self", second(f.svc.UpdateUser(ctx, adminP, admin.ID, tenant.UserUpdate{Disabled: ptr(true)})), "disable_self"},
			{"api key cannot be owner", third(f.svc.CreateAPIKey(ctx, f.ownerP, "k", tenant.RoleOwner)), "invalid_role"},
			{"operator cannot create keys", third(f.svc.CreateAPIKey(ctx, opP, "k", tenant.RoleAnalyst)), "forbidden"},
		}
		for _, c := range cases {
			if got := code(c.err); got != c.want {
				t.Errorf("%s: got %q (%v), want %q", c.name, got, c.err, c.want)
			}
		}
		// Disabling a user ends their sessions and refuses sign-in.
		token, _, _, err := f.svc.Login(ctx, "op@tea.test", "operator pw", tenant.RequestMeta{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.UpdateUser(ctx, adminP, op.ID, tenant.UserUpdate{Disabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.SessionByToken(ctx, token); code(err) != "session_expired" {
			t.Fatalf("disabled user's session: %v", err)
		}
		if _, _, _, err := f.svc.Login(ctx, "op@tea.test", "operator pw", tenant.RequestMeta{}); code(err) != "user_disabled" {
			t.Fatalf("disabled login: %v", err)
		}
	})
}

func TestWorkspaceSettings(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := setup(t, d)
		ctx := context.Background()
		if _, err := f.svc.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "tea", Name: "again"}); code(err) != "slug_taken" {
			t.Fatalf("duplicate slug: %v", err)
		}
		if _, err := f.svc.UpdateWorkspace(ctx, f.ownerP, tenant.WorkspaceUpdate{Timezone: ptr("Mars/Olympus")}); code(err) != "invalid_timezone" {
			t.Fatalf("bad tz: %v", err)
		}
		w, err := f.svc.UpdateWorkspace(ctx, f.ownerP, tenant.WorkspaceUpdate{Name: ptr("茶语时光"), Timezone: ptr("Asia/Urumqi")})
		if err != nil || w.Name != "茶语时光" || w.Location().String() != "Asia/Urumqi" {
			t.Fatalf("update: %+v %v", w, err)
		}
	})
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }
func ptr[T any](v T) *T                         { return &v }
