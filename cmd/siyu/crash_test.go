package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Nothing acknowledged is lost: the server is killed with SIGKILL again and
// again while a client sends batches; after a final restart every event whose
// batch got a 200 is stored, and none twice (the client re-sends batches that
// got no answer, as Segment SDKs do).
func TestKillNineLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "siyu")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) { crashLoop(t, bin, engine) })
	}
}

func crashLoop(t *testing.T, bin string, engine db.Dialect) {
	ctx := context.Background()
	dsn := dbtest.DSN(t, engine)
	keyFile := filepath.Join(t.TempDir(), "siyu.key")
	cfg := app.DefaultConfig()
	cfg.DB, cfg.SecretKeyFile = dsn, keyFile
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.Tenant.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "crash", Name: "Crash"})
	if err != nil {
		t.Fatal(err)
	}
	wk, err := a.Events.CreateWriteKey(ctx, tenant.System(w.ID), "crash test")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()

	acked := map[string]bool{}
	var pending [][]byte // batches sent without an answer: re-sent next round
	pendingIDs := [][]string{}
	next := 0
	for round := range 5 {
		addr, stop := startServer(t, bin, dsn, keyFile)
		url := "http://" + addr + "/v1/batch"
		killAt := time.Now().Add(time.Duration(300+round*150) * time.Millisecond)
		for time.Now().Before(killAt) || len(pending) > 0 {
			var body []byte
			var ids []string
			if len(pending) > 0 {
				body, ids = pending[0], pendingIDs[0]
				pending, pendingIDs = pending[1:], pendingIDs[1:]
			} else {
				body, ids = crashBatch(&next, 50)
			}
			if time.Now().After(killAt) && len(pending) == 0 {
				// Kill mid-flight: send the request and the signal together.
				go stop()
			}
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			req.SetBasicAuth(wk.Key, "")
			req.Header.Set("Content-Type", "application/json")
			res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
			if err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			if err != nil || res.StatusCode != 200 {
				pending, pendingIDs = append(pending, body), append(pendingIDs, ids)
				break
			}
			for _, id := range ids {
				acked[id] = true
			}
		}
		stop()
	}
	// Final start: resend what never got an answer, then check.
	addr, stop := startServer(t, bin, dsn, keyFile)
	defer stop()
	for i, body := range pending {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/batch", bytes.NewReader(body))
		req.SetBasicAuth(wk.Key, "")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("final resend: %v %v", err, res)
		}
		res.Body.Close()
		for _, id := range pendingIDs[i] {
			acked[id] = true
		}
	}
	d, err := db.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.QueryContext(ctx, `SELECT message_id, count(*) FROM events WHERE tenant_id = $1 GROUP BY message_id`, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		rows.Scan(&id, &n)
		stored[id] = n
	}
	missing := 0
	for id := range acked {
		if stored[id] == 0 {
			missing++
		}
	}
	for id, n := range stored {
		if n != 1 {
			t.Errorf("message %s stored %d times", id, n)
		}
	}
	if missing > 0 || len(acked) < 100 {
		t.Fatalf("%d of %d acknowledged events missing (stored %d)", missing, len(acked), len(stored))
	}
	t.Logf("%s: %d events acknowledged across 5 kills, all stored once", engine, len(acked))
}

func crashBatch(next *int, n int) ([]byte, []string) {
	var msgs []map[string]any
	var ids []string
	for range n {
		*next++
		id := fmt.Sprintf("crash-%06d", *next)
		ids = append(ids, id)
		msgs = append(msgs, map[string]any{"type": "track", "messageId": id, "anonymousId": fmt.Sprintf("a%d", *next%97),
			"event": "view_product", "properties": map[string]any{"sku": "TEA-OOL-01"}})
	}
	b, _ := json.Marshal(map[string]any{"batch": msgs})
	return b, ids
}

// startServer runs `siyu serve` and returns its address and a stop function
// that kills it with SIGKILL (safe to call twice).
func startServer(t *testing.T, bin, dsn, keyFile string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--addr", addr, "--db", dsn, "--secret-key-file", keyFile, "--log-level", "error")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			return addr, stop
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
