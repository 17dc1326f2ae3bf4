package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/app"
)

func TestHelpDocumentsEnvironment(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"help", "serve"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"-db", "SIYU_DB", "-addr", "SIYU_ADDR", "postgres://"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help serve lacks %q:\n%s", want, out.String())
		}
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	t.Setenv("SIYU_ADDR", "127.0.0.1:9999")
	t.Setenv("SIYU_DB", "/from/env.db")
	var cfg app.Config
	fs, err := serveFlags("serve", &bytes.Buffer{}, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--addr", "127.0.0.1:7777"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:7777" || cfg.DB != "/from/env.db" {
		t.Fatalf("addr %q db %q", cfg.Addr, cfg.DB)
	}
	t.Setenv("SIYU_TRUST_PROXY", "maybe")
	if _, err := serveFlags("serve", &bytes.Buffer{}, &cfg); err == nil {
		t.Fatal("a bad boolean in the environment was accepted")
	}
}

func TestMigrateCommandAndUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	dbPath := filepath.Join(t.TempDir(), "m.db")
	if code := run(context.Background(), []string{"migrate", "--db", dbPath}, &out, &errb); code != 0 {
		t.Fatalf("migrate exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "schema version") {
		t.Fatalf("migrate printed %q", out.String())
	}
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errb); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
}

func TestWorkspaceAddPrintsOwnerLogin(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"workspace", "add", "--db", filepath.Join(dir, "s.db"), "--slug", "teatime", "--name", "茶语时光", "--owner", "ops@teatime.test"}
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "owner login: ops@teatime.test ") {
		t.Fatalf("printed %q", out.String())
	}
	out.Reset()
	if code := run(context.Background(), args, &out, &errb); code != 1 || !strings.Contains(errb.String(), "already exists") {
		t.Fatalf("second add: exit %d, %q", code, errb.String())
	}
}
