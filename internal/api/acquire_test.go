package api_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/acquire"
	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

func TestAcquireAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		w := s.NewWorkspace(t, "acquire")
		sim := s.NewWeComSim(t, w, wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now}})
		for _, u := range []string{"alice", "bob"} {
			if _, err := sim.PutStaff(wecomtest.Staff{UserID: u, Name: strings.ToUpper(u[:1]) + u[1:]}); err != nil {
				t.Fatal(err)
			}
		}
		st, err := s.App.Staff.CreateStore(ctx, w.ID, staff.Store{Code: "SH01", Name: "上海一店"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.App.Staff.CreateMember(ctx, w.ID, staff.Member{Name: "Bob", StoreID: st.ID, WeComUserID: "bob", Status: staff.Active}); err != nil {
			t.Fatal(err)
		}
		s.ConnectWeCom(t, w, sim)

		body := func(state string, staff ...map[string]any) map[string]any {
			return map[string]any{"name": "门店收银台", "source": "store", "state": state,
				"config": map[string]any{"staff": staff, "skip_verify": true, "welcome": map[string]any{"text": "你好 {{customer_name}}"}}}
		}
		alice := map[string]any{"userid": "alice", "weight": 2, "daily_cap": 100}
		expectProblem(t, s.Do(t, "POST", "/api/v1/acquire/codes", w.Key, body(strings.Repeat("x", 31), alice)), 422, "state_too_long")
		expectProblem(t, s.Do(t, "POST", "/api/v1/acquire/codes", w.Key, body("s1", map[string]any{"userid": "zoe"})), 422, "unknown_staff")
		expectProblem(t, s.Do(t, "POST", "/api/v1/acquire/codes", w.Key, body("s1", map[string]any{"userid": "alice", "daily_cap": 0})), 422, "invalid_cap")
		expectProblem(t, s.Do(t, "POST", "/api/v1/acquire/codes", w.Key, body("s1", map[string]any{"userid": "alice", "weight": -1})), 422, "invalid_weight")

		r := s.Do(t, "POST", "/api/v1/acquire/codes", w.Key, body("checkout", alice, map[string]any{"userid": "bob", "backup": true}))
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		var c acquire.ChannelCode
		r.JSON(t, &c)
		if c.ConfigID == "" || c.State != "checkout" || len(c.Users) != 1 || c.Users[0] != "alice" {
			t.Fatalf("created %+v", c)
		}
		expectProblem(t, s.Do(t, "POST", "/api/v1/acquire/codes", w.Key, body("checkout", alice)), 409, "state_taken")

		if _, err := sim.AddContactByWay(ctx, c.ConfigID, wecomtest.Contact{Name: "小红"}); err != nil {
			t.Fatal(err)
		}
		s.WeComSettled(t)
		deadline := time.Now().Add(10 * time.Second)
		var list struct {
			Items []acquire.ChannelCode `json:"items"`
		}
		for {
			s.Do(t, "GET", "/api/v1/acquire/codes", w.Key, nil).JSON(t, &list)
			if len(list.Items) == 1 && list.Items[0].TodayAdds == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("list: %+v", list)
			}
			time.Sleep(20 * time.Millisecond)
		}
		var stats acquire.CodeStats
		if r := s.Do(t, "GET", fmt.Sprintf("/api/v1/acquire/codes/%d/stats", c.ID), w.Key, nil); r.Status != 200 {
			t.Fatalf("stats: %d %s", r.Status, r.Body)
		} else if r.JSON(t, &stats); stats.Total.Adds != 1 || len(stats.Days) != 30 {
			t.Fatalf("stats: %+v", stats.Total)
		}
		expectProblem(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/acquire/codes/%d/stats?from=2026-13-01", c.ID), w.Key, nil), 422, "invalid_date")
		if r := s.Do(t, "GET", "/api/v1/acquire/stats", w.Key, nil); r.Status != 200 {
			t.Fatalf("all stats: %d %s", r.Status, r.Body)
		}

		r = s.Do(t, "GET", fmt.Sprintf("/api/v1/acquire/codes/%d/qr.png?size=8cm", c.ID), w.Key, nil)
		if r.Status != 200 || r.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("qr: %d %s", r.Status, r.Header)
		}
		img, err := png.Decode(bytes.NewReader(r.Body))
		if err != nil || img.Bounds().Dx() != 945 {
			t.Fatalf("qr 8cm: %v %v", img.Bounds(), err)
		}
		if r := s.Do(t, "GET", fmt.Sprintf("/api/v1/acquire/codes/%d/qr.png", c.ID), w.Key, nil); r.Status != 200 || len(r.Body) == 0 {
			t.Fatalf("qr original: %d", r.Status)
		}

		up := body("checkout", map[string]any{"userid": "bob"})
		up["name"] = "收银台"
		if r := s.Do(t, "PUT", fmt.Sprintf("/api/v1/acquire/codes/%d", c.ID), w.Key, up); r.Status != 200 {
			t.Fatalf("update: %d %s", r.Status, r.Body)
		}
		if way, _ := sim.ContactWay(c.ConfigID); len(way.Users) != 1 || way.Users[0] != "bob" {
			t.Fatalf("WeCom after update: %+v", way)
		}

		var bulk struct {
			Created, Skipped, Failed int
			Results                  []acquire.StoreCodeResult
		}
		r = s.Do(t, "POST", "/api/v1/acquire/store-codes", w.Key, map[string]any{"config": map[string]any{}})
		if r.Status != 200 {
			t.Fatalf("store codes: %d %s", r.Status, r.Body)
		}
		if r.JSON(t, &bulk); bulk.Created != 1 || bulk.Results[0].StoreCode != "SH01" {
			t.Fatalf("store codes: %+v", bulk)
		}
		s.Do(t, "POST", "/api/v1/acquire/store-codes", w.Key, map[string]any{"config": map[string]any{}}).JSON(t, &bulk)
		if bulk.Created != 0 || bulk.Skipped != 1 {
			t.Fatalf("store codes again: %+v", bulk)
		}

		// An analyst reads, but may not change codes.
		_, analyst, err := s.App.Tenant.CreateAPIKey(ctx, tenant.System(w.ID), "analyst", tenant.RoleAnalyst)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.Do(t, "GET", "/api/v1/acquire/codes", analyst, nil); r.Status != 200 {
			t.Fatalf("analyst list: %d", r.Status)
		}
		expectProblem(t, s.Do(t, "DELETE", fmt.Sprintf("/api/v1/acquire/codes/%d", c.ID), analyst, nil), 403, "forbidden")

		if r := s.Do(t, "DELETE", fmt.Sprintf("/api/v1/acquire/codes/%d", c.ID), w.Key, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		if _, ok := sim.ContactWay(c.ConfigID); ok {
			t.Fatal("the code is still in WeCom")
		}
		expectProblem(t, s.Do(t, "GET", "/api/v1/acquire/codes/999999", w.Key, nil), 404, "code_not_found")
	})
}
