package apptest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
)

// NewWeComSim starts a WeCom simulator whose callbacks go to this server's
// endpoint for the workspace (no retries: a test waits for processing
// itself). It is closed when the test ends.
func (s *Server) NewWeComSim(t testing.TB, w Workspace, o wecomtest.Options) *wecomtest.Server {
	t.Helper()
	if o.CallbackURL == "" {
		o.CallbackURL = s.URL + "/connect/wecom/" + w.Slug + "/callback"
	}
	if o.CallbackRetries == 0 {
		o.CallbackRetries = -1
	}
	sim := wecomtest.New(o)
	t.Cleanup(sim.Close)
	return sim
}

// ConnectWeCom connects the workspace to the simulator through the API (as
// an admin would) and runs the full sync that connecting queues to its end,
// so the corp's staff, contacts, groups and tags are in Siyu.
func (s *Server) ConnectWeCom(t testing.TB, w Workspace, sim *wecomtest.Server) {
	t.Helper()
	body := map[string]any{"corp_id": sim.CorpID(), "agent_id": sim.AgentID(), "secret": sim.Secret(), "token": sim.CallbackToken(),
		"encoding_aes_key": sim.EncodingAESKey(), "base_url": sim.URL()}
	if res := s.Do(t, "PUT", "/api/v1/connectors/wecom", w.Key, body); res.Status != http.StatusOK {
		t.Fatalf("apptest: connect WeCom: %d %s", res.Status, res.Body)
	}
	s.WeComSyncDone(t, w)
}

// WeComSyncDone works queued WeCom sync runs (the app's worker may take them
// as well) until none is queued or running, failing the test if the last one
// did not succeed.
func (s *Server) WeComSyncDone(t testing.TB, w Workspace) wecom.SyncReport {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Queue the sync connecting asks for, in case the app's worker has
		// not looked yet.
		if _, err := s.App.WeCom.ScheduleSyncs(context.Background()); err != nil {
			t.Fatalf("apptest: schedule syncs: %v", err)
		}
		if _, err := s.App.WeCom.SyncDue(context.Background()); err != nil {
			t.Fatalf("apptest: sync: %v", err)
		}
		var rep wecom.SyncReport
		res := s.Do(t, "GET", "/api/v1/connectors/wecom/sync", w.Key, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("apptest: sync status: %d %s", res.Status, res.Body)
		}
		res.JSON(t, &rep)
		if rep.Current == nil {
			if rep.Last == nil || rep.Last.Status != wecom.SyncDone {
				t.Fatalf("apptest: the WeCom sync did not succeed: %+v", rep.Last)
			}
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("apptest: the WeCom sync did not end: %+v", rep.Current)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WeComSettled processes the WeCom callbacks stored so far (the app's worker
// may take some as well) until none is pending.
func (s *Server) WeComSettled(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := s.App.WeCom.Drain(context.Background())
		if err != nil {
			t.Fatalf("apptest: process callbacks: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("apptest: WeCom callbacks still pending")
		}
	}
}
