package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// workspaceCmd creates a workspace and its first owner: how a real
// installation starts (the demo makes its own).
func workspaceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, "Usage: siyu workspace add --slug SLUG --name NAME --owner EMAIL [--timezone Asia/Shanghai] [--db …]")
		return flag.ErrHelp
	}
	var cfg app.Config
	fs, err := serveFlags("workspace add", stderr, &cfg)
	if err != nil {
		return err
	}
	slug := fs.String("slug", "", "workspace slug: 3–40 lowercase letters, digits, dashes")
	name := fs.String("name", "", "the brand's name")
	owner := fs.String("owner", "", "email of the first owner")
	tz := fs.String("timezone", "Asia/Shanghai", "IANA time zone that decides what a day is")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *slug == "" || *name == "" || *owner == "" {
		return fmt.Errorf("--slug, --name and --owner are required")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(ctx, cfg, log, app.Options{Version: appVersion()})
	if err != nil {
		return err
	}
	defer a.Close()
	w, err := a.Tenant.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: *slug, Name: *name, Timezone: *tz})
	if err != nil {
		return err
	}
	password := rand.Text()
	if _, err := a.Tenant.CreateUser(ctx, w.ID, tenant.NewUser{Email: *owner, Password: password, Role: tenant.RoleOwner}); err != nil {
		return fmt.Errorf("workspace %q created, but its owner was not: %w", w.Slug, err)
	}
	fmt.Fprintf(stdout, "workspace: %s (%s)\nowner login: %s %s\n", w.Slug, w.Name, *owner, password)
	fmt.Fprintln(stdout, "Sign in and change the password under Settings → Users.")
	return nil
}
