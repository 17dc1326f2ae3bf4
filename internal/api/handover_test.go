package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/handover"
)

// doKeyed sends a JSON request with an Idempotency-Key header.
func doKeyed(t *testing.T, s *apptest.Server, method, path, key, idem string, body any) apptest.Response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apptest.Response{Status: res.StatusCode, Header: res.Header, Body: out}
}

// The handover flow over the API: staff to hand over with their customers
// and groups, the preview with its checks, a start that a retry does not
// repeat, progress, items page by page, and bad input as problems.
func TestHandoverAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		w := s.NewWorkspace(t, "handover")
		sim := s.NewWeComSim(t, w, wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now}})
		for _, u := range []string{"zhangsan", "lisi"} {
			if _, err := sim.PutStaff(wecomtest.Staff{UserID: u}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			if _, err := sim.PutContact(wecomtest.Contact{Name: fmt.Sprint("客户", i)}, wecomtest.Follow{UserID: "zhangsan"}); err != nil {
				t.Fatal(err)
			}
		}
		body := map[string]any{"corp_id": sim.CorpID(), "agent_id": sim.AgentID(), "secret": sim.Secret(), "token": sim.CallbackToken(),
			"encoding_aes_key": sim.EncodingAESKey(), "base_url": sim.URL()}
		mustStatus(t, s.Do(t, "PUT", "/api/v1/connectors/wecom", w.Key, body), 200)
		if _, err := s.App.WeCom.ScheduleSyncs(ctx); err != nil {
			t.Fatal(err)
		}
		s.WeComSyncDone(t, w)

		var staff apptestList[handover.Holder]
		mustStatus(t, s.Do(t, "GET", "/api/v1/handover/staff", w.Key, nil), 200).JSON(t, &staff)
		if len(staff.Items) != 1 || staff.Items[0].WeComUserID != "zhangsan" || staff.Items[0].Customers != 3 {
			t.Fatalf("staff to hand over %+v", staff)
		}
		zs := staff.Items[0].ID
		mustStatus(t, s.Do(t, "GET", "/api/v1/handover/staff?all=true", w.Key, nil), 200).JSON(t, &staff)
		var ls int64
		for _, m := range staff.Items {
			if m.WeComUserID == "lisi" {
				ls = m.ID
			}
		}
		var customers apptestList[handover.HeldCustomer]
		mustStatus(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/handover/staff/%d/customers?limit=2", zs), w.Key, nil), 200).JSON(t, &customers)
		if len(customers.Items) != 2 || customers.NextCursor == "" {
			t.Fatalf("first page of customers %+v", customers)
		}

		expectProblem(t, s.Do(t, "POST", "/api/v1/handover/preview", w.Key, map[string]any{"handover_staff_id": zs, "takeover_staff_id": zs, "all_customers": true}), 422, "same_staff")
		expectProblem(t, s.Do(t, "POST", "/api/v1/handover/preview", w.Key, map[string]any{"handover_staff_id": zs, "takeover_staff_id": 424242, "all_customers": true}), 422, "unknown_staff")
		var pv handover.Assessment
		mustStatus(t, s.Do(t, "POST", "/api/v1/handover/preview", w.Key,
			map[string]any{"handover_staff_id": zs, "takeover_staff_id": ls, "customers": []string{customers.Items[0].ExternalUserID, "wmSomeoneElse"}}), 200).JSON(t, &pv)
		if pv.Customers != 1 || pv.Blocked != 1 || pv.WeComCalls != 1 {
			t.Fatalf("preview %+v", pv)
		}

		start := map[string]any{"handover_staff_id": zs, "takeover_staff_id": ls, "all_customers": true}
		r := doKeyed(t, s, "POST", "/api/v1/handover/jobs", w.Key, "", start)
		if r.Status != 422 {
			t.Fatalf("start without a key: %d %s", r.Status, r.Body)
		}
		var job, again handover.Handover
		mustStatus(t, doKeyed(t, s, "POST", "/api/v1/handover/jobs", w.Key, "k1", start), 201).JSON(t, &job)
		mustStatus(t, doKeyed(t, s, "POST", "/api/v1/handover/jobs", w.Key, "k1", start), 201).JSON(t, &again)
		if job.ID == 0 || again.ID != job.ID || job.Customers.Total != 3 {
			t.Fatalf("start %+v, retried %+v", job, again)
		}
		deadline := time.Now().Add(20 * time.Second)
		for job.Customers.Waiting != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("not sent: %+v", job)
			}
			if res := s.Do(t, "POST", fmt.Sprintf("/api/v1/handover/jobs/%d/refresh", job.ID), w.Key, nil); res.Status == 200 {
				res.JSON(t, &job)
			} else {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if n := sim.CallCount("externalcontact/transfer_customer"); n != 1 {
			t.Fatalf("%d transfer calls", n)
		}
		var items apptestList[handover.Transfer]
		mustStatus(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/handover/jobs/%d/items?limit=2&state=waiting", job.ID), w.Key, nil), 200).JSON(t, &items)
		if len(items.Items) != 2 || items.NextCursor == "" || items.Items[0].State != handover.ItemWaiting {
			t.Fatalf("items %+v", items)
		}
		expectProblem(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/handover/jobs/%d/items?cursor=bad", job.ID), w.Key, nil), 422, "invalid_cursor")
		expectProblem(t, s.Do(t, "GET", "/api/v1/handover/jobs/999999", w.Key, nil), 404, "handover_not_found")
		var jobs apptestList[handover.Handover]
		mustStatus(t, s.Do(t, "GET", "/api/v1/handover/jobs", w.Key, nil), 200).JSON(t, &jobs)
		if len(jobs.Items) != 1 || jobs.Items[0].ID != job.ID {
			t.Fatalf("jobs %+v", jobs)
		}
	})
}

type apptestList[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}
