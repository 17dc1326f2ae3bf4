package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// wecomSyncEnded works queued sync runs until none is queued or running
// (the app's worker may take them as well) and returns the status.
func wecomSyncEnded(t *testing.T, s *apptest.Server, key string) wecom.SyncReport {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := s.App.WeCom.SyncDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		var rep wecom.SyncReport
		mustStatus(t, s.Do(t, "GET", "/api/v1/connectors/wecom/sync", key, nil), 200).JSON(t, &rep)
		if rep.Current == nil {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sync did not end: %+v", rep.Current)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every console action on the WeCom sync, staff, events and tag bindings is
// in the API: sync with progress and resume, staff with customer counts,
// one callback event, and binding a tag group both ways.
func TestWeComSyncAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		w := s.NewWorkspace(t, "wecomsync")
		sim := wecomtest.New(wecomtest.Options{CallbackURL: s.URL + "/connect/wecom/wecomsync/callback", CallbackRetries: -1})
		t.Cleanup(sim.Close)
		const base = "/api/v1/connectors/wecom"

		expectProblem(t, s.Do(t, "POST", base+"/sync", w.Key, nil), 404, "wecom_not_configured")
		var empty wecom.SyncReport
		mustStatus(t, s.Do(t, "GET", base+"/sync", w.Key, nil), 200).JSON(t, &empty)
		if empty.Current != nil || empty.Last != nil || empty.Resumable {
			t.Fatalf("status before any sync %+v", empty)
		}

		for _, st := range []wecomtest.Staff{{UserID: "zhangsan", Name: "张三"}, {UserID: "lisi", Name: "李四", Position: "店长"}} {
			if _, err := sim.PutStaff(st); err != nil {
				t.Fatal(err)
			}
		}
		for i, who := range []string{"zhangsan", "zhangsan", "lisi"} {
			if _, err := sim.PutContact(wecomtest.Contact{Name: fmt.Sprintf("客户%d", i)}, wecomtest.Follow{UserID: who}); err != nil {
				t.Fatal(err)
			}
		}
		body := map[string]any{"corp_id": sim.CorpID(), "agent_id": sim.AgentID(), "secret": sim.Secret(), "token": sim.CallbackToken(),
			"encoding_aes_key": sim.EncodingAESKey(), "base_url": sim.URL()}
		mustStatus(t, s.Do(t, "PUT", base, w.Key, body), 200)

		// Start (no body: a full sync), then finish it. Connecting queues a
		// full sync too, which the app's sync worker may have done already:
		// then this start is refused as one already running.
		var run wecom.SyncRun
		if got := s.Do(t, "POST", base+"/sync", w.Key, nil); got.Status == 409 {
			expectProblem(t, got, 409, "wecom_sync_running")
		} else {
			mustStatus(t, got, 202).JSON(t, &run)
			if run.Kind != wecom.SyncFull || run.ID == 0 {
				t.Fatalf("started %+v", run)
			}
		}
		rep := wecomSyncEnded(t, s, w.Key)
		if rep.Last == nil || rep.Last.Kind != wecom.SyncFull || (run.ID != 0 && rep.Last.ID != run.ID) || rep.Last.Status != wecom.SyncDone || rep.Last.Counts.Contacts != 3 ||
			rep.LastSuccess == nil || rep.NextReconcileAt.IsZero() || rep.Resumable {
			t.Fatalf("after the sync %+v", rep)
		}
		mustStatus(t, s.Do(t, "POST", base+"/sync", w.Key, map[string]any{"kind": "reconcile"}), 202).JSON(t, &run)
		if run.Kind != wecom.SyncReconcile {
			t.Fatalf("reconcile %+v", run)
		}
		if got := s.Do(t, "POST", base+"/sync", w.Key, nil); got.Status != 409 {
			// The worker may have finished it already; otherwise it is refused.
			if got.Status != 202 {
				t.Fatalf("second start: %d %s", got.Status, got.Body)
			}
		} else {
			expectProblem(t, got, 409, "wecom_sync_running")
		}
		expectProblem(t, s.Do(t, "POST", base+"/sync", w.Key, map[string]any{"kind": "partial"}), 422, "validation_failed")
		wecomSyncEnded(t, s, w.Key)
		var one wecom.SyncRun
		mustStatus(t, s.Do(t, "GET", fmt.Sprintf("%s/sync/runs/%d", base, run.ID), w.Key, nil), 200).JSON(t, &one)
		if one.ID != run.ID || one.Status != wecom.SyncDone || one.Percent != 100 {
			t.Fatalf("run %+v", one)
		}
		expectProblem(t, s.Do(t, "GET", base+"/sync/runs/999999", w.Key, nil), 404, "wecom_sync_not_found")
		expectProblem(t, s.Do(t, "POST", base+"/sync/resume", w.Key, nil), 409, "wecom_sync_not_resumable")

		// WeCom stops a run; it is explained and resumed.
		sim.SetTrustedIP(false)
		mustStatus(t, s.Do(t, "POST", base+"/sync", w.Key, nil), 202)
		rep = wecomSyncEnded(t, s, w.Key)
		if rep.Last == nil || rep.Last.Status != wecom.SyncFailed || rep.Last.ErrCode != 60020 || rep.Last.Fix == "" || !rep.Resumable {
			t.Fatalf("after a refused sync %+v", rep.Last)
		}
		sim.SetTrustedIP(true)
		mustStatus(t, s.Do(t, "POST", base+"/sync/resume", w.Key, nil), 202).JSON(t, &run)
		if rep = wecomSyncEnded(t, s, w.Key); rep.Last.ID != run.ID || rep.Last.Status != wecom.SyncDone {
			t.Fatalf("after resuming %+v", rep.Last)
		}

		// Staff with their customer counts, paged by cursor.
		var staff struct {
			Items []struct {
				Name        string `json:"name"`
				Title       string `json:"title"`
				WeComUserID string `json:"wecom_userid"`
				Status      string `json:"status"`
				Customers   int64  `json:"customers"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		got := map[string]int64{}
		cursor := ""
		for range 5 {
			mustStatus(t, s.Do(t, "GET", base+"/staff?limit=1&cursor="+cursor, w.Key, nil), 200).JSON(t, &staff)
			for _, m := range staff.Items {
				got[m.WeComUserID] = m.Customers
				if m.WeComUserID == "lisi" && (m.Name != "李四" || m.Title != "店长" || m.Status != "active") {
					t.Fatalf("lisi %+v", m)
				}
			}
			if cursor = staff.NextCursor; cursor == "" {
				break
			}
		}
		if len(got) != 2 || got["zhangsan"] != 2 || got["lisi"] != 1 || cursor != "" {
			t.Fatalf("staff %v (cursor %q)", got, cursor)
		}
		expectProblem(t, s.Do(t, "GET", base+"/staff?cursor=nonsense", w.Key, nil), 422, "invalid_cursor")

		// One callback event.
		if _, err := sim.AddContact(ctx, "lisi", wecomtest.Contact{Name: "王五"}, ""); err != nil {
			t.Fatal(err)
		}
		var events struct {
			Items []wecom.InboxEntry `json:"items"`
		}
		mustStatus(t, s.Do(t, "GET", base+"/events", w.Key, nil), 200).JSON(t, &events)
		if len(events.Items) != 1 {
			t.Fatalf("events %+v", events.Items)
		}
		var ev wecom.InboxEntry
		mustStatus(t, s.Do(t, "GET", fmt.Sprintf("%s/events/%d", base, events.Items[0].ID), w.Key, nil), 200).JSON(t, &ev)
		if ev.ID != events.Items[0].ID || ev.Kind != string(wecom.KindAddExternalContact) || ev.Payload == "" {
			t.Fatalf("event %+v", ev)
		}
		expectProblem(t, s.Do(t, "GET", base+"/events/999999", w.Key, nil), 404, "wecom_event_not_found")

		// Bind a tag group: WeCom's groups to choose from, the binding, and
		// its end.
		g, err := s.App.Tags.CreateGroup(ctx, tenant.System(w.ID), tag.GroupInput{Name: "会员等级"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.App.Tags.CreateTag(ctx, tenant.System(w.ID), tag.TagInput{GroupID: g.ID, Name: "金卡"}); err != nil {
			t.Fatal(err)
		}
		wg, err := sim.CreateTagGroup(ctx, "会员", 1, "金卡", "银卡")
		if err != nil {
			t.Fatal(err)
		}
		var corp struct {
			Items []wecom.CorpTagGroup `json:"items"`
		}
		mustStatus(t, s.Do(t, "GET", base+"/corp-tag-groups", w.Key, nil), 200).JSON(t, &corp)
		if len(corp.Items) != 1 || corp.Items[0].GroupID != wg.ID || len(corp.Items[0].Tags) != 2 {
			t.Fatalf("corp tag groups %+v", corp.Items)
		}
		var b wecom.TagBinding
		mustStatus(t, s.Do(t, "PUT", fmt.Sprintf("%s/tag-bindings/%d", base, g.ID), w.Key, map[string]any{"wecom_group_id": wg.ID}), 200).JSON(t, &b)
		if b.WeComGroupID != wg.ID || len(b.Tags) != 2 || len(b.CreatedInSiyu) != 1 || b.CreatedInSiyu[0] != "银卡" {
			t.Fatalf("binding %+v", b)
		}
		expectProblem(t, s.Do(t, "PUT", base+"/tag-bindings/999999", w.Key, nil), 404, "tag_group_not_found")
		mustStatus(t, s.Do(t, "DELETE", fmt.Sprintf("%s/tag-bindings/%d", base, g.ID), w.Key, nil), 204)
		if g, err = s.App.Tags.Group(ctx, w.ID, g.ID); err != nil || g.WeComGroupID != "" {
			t.Fatalf("after unbinding %+v, %v", g, err)
		}
		wecomSyncEnded(t, s, w.Key) // the tags sync the binding queued

		// Operators may do none of it.
		_, opKey, err := s.App.Tenant.CreateAPIKey(ctx, tenant.System(w.ID), "operator", tenant.RoleOperator)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ method, path string }{
			{"GET", base + "/sync"}, {"POST", base + "/sync"}, {"POST", base + "/sync/resume"}, {"GET", fmt.Sprintf("%s/sync/runs/%d", base, run.ID)},
			{"GET", base + "/staff"}, {"GET", fmt.Sprintf("%s/events/%d", base, ev.ID)}, {"GET", base + "/corp-tag-groups"},
			{"PUT", fmt.Sprintf("%s/tag-bindings/%d", base, g.ID)}, {"DELETE", fmt.Sprintf("%s/tag-bindings/%d", base, g.ID)},
		} {
			expectProblem(t, s.Do(t, c.method, c.path, opKey, nil), 403, "forbidden")
		}
	})
}
