// Package apptest starts the whole Siyu server in-process on 127.0.0.1:0
// against a fresh database, for tests that drive it over HTTP as a client
// would (the API, the console, browser tests).
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// CheapHash makes password hashing fast in tests; never use it in production.
func CheapHash() tenant.HashParams { return tenant.HashParams{MemoryKiB: 64, Time: 1, Threads: 1} }

// Server is a running Siyu.
type Server struct {
	App *app.App
	URL string // http://127.0.0.1:PORT
}

// Start runs Siyu on a fresh database of the given engine until the test ends.
func Start(t testing.TB, engine db.Dialect) *Server {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.DB = dbtest.DSN(t, engine)
	cfg.SecretKeyFile = filepath.Join(t.TempDir(), "siyu.key")
	cfg.ShutdownTimeout = 5 * time.Second
	level := slog.LevelWarn
	if os.Getenv("SIYU_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log, app.Options{Version: "test", HashParams: CheapHash()})
	if err != nil {
		cancel()
		t.Fatalf("apptest: start: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		a.Close()
		t.Fatalf("apptest: listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("apptest: serve: %v", err)
		}
		a.Close()
	})
	return &Server{App: a, URL: "http://" + ln.Addr().String()}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Workspace is a workspace made for a test, with an owner and an admin API key.
type Workspace struct {
	tenant.Workspace
	OwnerEmail    string
	OwnerPassword string
	Owner         tenant.User
	Key           string // admin-role API key
}

// NewWorkspace creates a workspace with an owner and an admin API key.
func (s *Server) NewWorkspace(t testing.TB, slug string) Workspace {
	t.Helper()
	ctx := context.Background()
	w, err := s.App.Tenant.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: slug, Name: "Brand " + slug})
	if err != nil {
		t.Fatalf("apptest: workspace: %v", err)
	}
	out := Workspace{Workspace: w, OwnerEmail: "owner@" + slug + ".test", OwnerPassword: "correct horse battery"}
	out.Owner, err = s.App.Tenant.CreateUser(ctx, w.ID, tenant.NewUser{Email: out.OwnerEmail, Name: "Owner " + slug, Password: out.OwnerPassword, Role: tenant.RoleOwner})
	if err != nil {
		t.Fatalf("apptest: owner: %v", err)
	}
	_, out.Key, err = s.App.Tenant.CreateAPIKey(ctx, tenant.System(w.ID), "test admin", tenant.RoleAdmin)
	if err != nil {
		t.Fatalf("apptest: key: %v", err)
	}
	return out
}

// Response is a finished request.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it is not JSON.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("apptest: response is not JSON (%v): %s", err, r.Body)
	}
}

// Do sends a request with an optional API key and body (a []byte, string, or
// anything else marshalled as JSON).
func (s *Server) Do(t testing.TB, method, path, key string, body any) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("apptest: marshal: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatalf("apptest: request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("apptest: %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("apptest: read body: %v", err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}
