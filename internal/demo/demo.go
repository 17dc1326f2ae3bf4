// Package demo sets up the demo brand behind `siyu demo`: a workspace, an
// admin login and API key, and a synthetic brand (stores, staff, customers)
// generated from a fixed seed so every run shows the same brand. Each feature
// adds its own demo data here, so the demo always shows all Siyu can do.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Slug is the demo workspace's slug.
const Slug = "demo"

// Credentials are what the demo prints so a newcomer can sign in and script.
type Credentials struct {
	WorkspaceID   int64  `json:"workspace_id"`
	AdminEmail    string `json:"admin_email"`
	AdminPassword string `json:"admin_password"`
	APIKey        string `json:"api_key"`
	WriteKey      string `json:"write_key"`
	// ActivityDone is set once the background activity (orders, events)
	// has been generated in full.
	ActivityDone bool `json:"activity_done,omitempty"`
}

const credentialsFile = "demo-credentials.json"

// Setup makes sure the demo workspace exists with its data, and returns its
// credentials. Running it again on the same directory reuses everything.
func Setup(ctx context.Context, a *app.App, dir string, progress io.Writer) (Credentials, error) {
	path := filepath.Join(dir, credentialsFile)
	if creds, err := readCredentials(path); err == nil {
		if _, err := a.Tenant.Workspace(ctx, creds.WorkspaceID); err == nil {
			fmt.Fprintf(progress, "demo: reusing the demo brand in %s\n", dir)
			return creds, nil
		}
	}
	w, err := a.Tenant.WorkspaceBySlug(ctx, Slug)
	if errs.Is(err, errs.NotFound) {
		w, err = a.Tenant.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: Slug, Name: BrandName, Timezone: "Asia/Shanghai"})
	}
	if err != nil {
		return Credentials{}, err
	}
	creds := Credentials{WorkspaceID: w.ID, AdminEmail: "admin@demo.siyu.local", AdminPassword: "demo-" + randomWord()}
	if err := ensureAdmin(ctx, a.Tenant, w.ID, creds); err != nil {
		return Credentials{}, err
	}
	sys := tenant.System(w.ID)
	_, key, err := a.Tenant.CreateAPIKey(ctx, sys, "demo admin key", tenant.RoleAdmin)
	if err != nil {
		return Credentials{}, err
	}
	creds.APIKey = key
	wk, err := a.Events.CreateWriteKey(ctx, sys, "demo mini program")
	if err != nil {
		return Credentials{}, err
	}
	creds.WriteKey = wk.Key
	start := time.Now()
	fmt.Fprintln(progress, "demo: generating the demo brand…")
	if err := generate(ctx, a, w.ID, progress); err != nil {
		return Credentials{}, err
	}
	fmt.Fprintf(progress, "demo: brand ready in %s\n", time.Since(start).Round(time.Millisecond))
	if err := writeCredentials(path, creds); err != nil {
		return Credentials{}, err
	}
	return creds, nil
}

// Activity generates the demo brand's history — months of orders (and,
// through ingest, events) — in the background after the server is up, so the
// console is usable at once and fills in while progress is printed. It runs
// once per data directory.
func Activity(ctx context.Context, a *app.App, dir string, creds Credentials, progress io.Writer) error {
	if creds.ActivityDone {
		return nil
	}
	fmt.Fprintln(progress, "demo: generating months of activity in the background (the console works meanwhile)…")
	if err := generateEvents(ctx, a, creds.WriteKey, demoCustomers, progress); err != nil {
		return err
	}
	if err := generateOrders(ctx, a, creds.WorkspaceID, demoCustomers, progress); err != nil {
		return err
	}
	// Auto-tag rules, back-filled over the brand's history.
	if _, err := Rules(ctx, a, creds.WorkspaceID, true); err != nil {
		return err
	}
	fmt.Fprintln(progress, "demo: auto-tag rules created and back-filled")
	if err := a.Audiences.Sync(ctx, creds.WorkspaceID); err != nil {
		return err
	}
	if err := generateAudiences(ctx, a, creds.WorkspaceID, progress); err != nil {
		return err
	}
	creds.ActivityDone = true
	return writeCredentials(filepath.Join(dir, credentialsFile), creds)
}

// ensureAdmin creates the demo admin, or resets its password when the
// credentials file was lost.
func ensureAdmin(ctx context.Context, ts *tenant.Service, tenantID int64, creds Credentials) error {
	users, err := ts.Users(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.Email == creds.AdminEmail {
			pw := creds.AdminPassword
			_, err := ts.UpdateUser(ctx, tenant.System(tenantID), u.ID, tenant.UserUpdate{Password: &pw})
			return err
		}
	}
	_, err = ts.CreateUser(ctx, tenantID, tenant.NewUser{Email: creds.AdminEmail, Name: "演示管理员", Password: creds.AdminPassword, Role: tenant.RoleOwner})
	return err
}

func readCredentials(path string) (Credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, err
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return Credentials{}, fmt.Errorf("demo: %s is damaged: %w", path, err)
	}
	if c.WorkspaceID == 0 || c.AdminPassword == "" || c.APIKey == "" || c.WriteKey == "" {
		return Credentials{}, errors.New("demo: credentials incomplete")
	}
	return c, nil
}

func writeCredentials(path string, c Credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("demo: unable to save credentials: %w", err)
	}
	return nil
}

func randomWord() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
