package api_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/community"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
)

// communityConnect connects the workspace to the simulator and syncs it.
func communityConnect(t *testing.T, s *apptest.Server, w apptest.Workspace, sim *wecomtest.Server) {
	t.Helper()
	body := map[string]any{"corp_id": sim.CorpID(), "agent_id": sim.AgentID(), "secret": sim.Secret(), "token": sim.CallbackToken(),
		"encoding_aes_key": sim.EncodingAESKey(), "base_url": sim.URL()}
	mustStatus(t, s.Do(t, "PUT", "/api/v1/connectors/wecom", w.Key, body), 200)
	if _, err := s.App.WeCom.StartSync(context.Background(), w.ID, wecom.SyncFull); err != nil && !errors.Is(err, wecom.ErrSyncRunning) {
		t.Fatal(err)
	}
	s.WeComSyncDone(t, w)
}

// communitySettled waits until no callback is pending, the app's worker's included.
func communitySettled(t *testing.T, s *apptest.Server) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.WeComSettled(t)
		var pending int
		if err := s.App.DB.QueryRow(`SELECT count(*) FROM wecom_inbox WHERE status = 'pending'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callbacks pending", pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The community API: groups with members and statistics, group tags, group
// codes with their bad input, welcome templates.
func TestCommunityAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		w := s.NewWorkspace(t, "community")
		sim := s.NewWeComSim(t, w, wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now}})
		if _, err := sim.PutStaff(wecomtest.Staff{UserID: "zhangsan", Name: "张三"}); err != nil {
			t.Fatal(err)
		}
		a, err := sim.PutContact(wecomtest.Contact{Name: "客户A"}, wecomtest.Follow{UserID: "zhangsan"})
		if err != nil {
			t.Fatal(err)
		}
		communityConnect(t, s, w, sim)
		g, err := sim.CreateGroup(ctx, "zhangsan", "茶友群", a.ExternalUserID)
		if err != nil {
			t.Fatal(err)
		}
		communitySettled(t, s)
		const base = "/api/v1/community"

		var groups struct {
			Items []community.CustomerGroup `json:"items"`
		}
		mustStatus(t, s.Do(t, "GET", base+"/groups?owner=zhangsan", w.Key, nil), 200).JSON(t, &groups)
		if len(groups.Items) != 1 || groups.Items[0].ChatID != g.ChatID || groups.Items[0].CustomerCount != 1 || groups.Items[0].OwnerName != "张三" {
			t.Fatalf("groups %+v", groups.Items)
		}
		expectProblem(t, s.Do(t, "GET", base+"/groups/wrNoSuchGroup", w.Key, nil), 404, "group_not_found")
		var members struct {
			Items []community.GroupMember `json:"items"`
		}
		mustStatus(t, s.Do(t, "GET", base+"/groups/"+g.ChatID+"/members", w.Key, nil), 200).JSON(t, &members)
		if len(members.Items) != 2 {
			t.Fatalf("members %+v", members.Items)
		}
		var stats struct {
			Items []community.GroupDayStat `json:"items"`
		}
		mustStatus(t, s.Do(t, "GET", base+"/groups/"+g.ChatID+"/stats", w.Key, nil), 200).JSON(t, &stats)
		if n := len(stats.Items); n != 30 || stats.Items[n-1].Members != 2 || stats.Items[n-1].Joins != 2 {
			t.Fatalf("stats %+v", stats.Items)
		}
		expectProblem(t, s.Do(t, "GET", base+"/groups/"+g.ChatID+"/stats?from=soon", w.Key, nil), 422, "invalid_date")

		var tg community.GroupTag
		mustStatus(t, s.Do(t, "POST", base+"/group-tags", w.Key, map[string]any{"name": "新品群"}), 201).JSON(t, &tg)
		expectProblem(t, s.Do(t, "POST", base+"/group-tags", w.Key, map[string]any{"name": "新品群"}), 409, "group_tag_exists")
		var tagged community.CustomerGroup
		mustStatus(t, s.Do(t, "PUT", base+"/groups/"+g.ChatID+"/tags", w.Key, map[string]any{"tag_ids": []int64{tg.ID}}), 200).JSON(t, &tagged)
		if len(tagged.Tags) != 1 {
			t.Fatalf("tagged %+v", tagged)
		}

		six := []string{g.ChatID, "wr2", "wr3", "wr4", "wr5", "wr6"}
		expectProblem(t, s.Do(t, "POST", base+"/group-codes", w.Key, map[string]any{"name": "码", "chat_ids": six}), 422, "too_many_chats")
		expectProblem(t, s.Do(t, "POST", base+"/group-codes", w.Key, map[string]any{"name": "码", "chat_ids": []string{g.ChatID},
			"state": strings.Repeat("a", 31)}), 422, "state_too_long")
		expectProblem(t, s.Do(t, "POST", base+"/group-codes", w.Key, map[string]any{"name": "码", "chat_ids": []string{"wrUnknown"}}), 422, "unknown_group")
		var code community.GroupCode
		mustStatus(t, s.Do(t, "POST", base+"/group-codes", w.Key, map[string]any{"name": "码", "chat_ids": []string{g.ChatID},
			"auto_create_room": true, "room_base_name": "茶友群", "idempotency_key": "k1"}), 201).JSON(t, &code)
		if code.QRCode == "" || code.ConfigID == "" {
			t.Fatalf("code %+v", code)
		}
		var again community.GroupCode
		mustStatus(t, s.Do(t, "POST", base+"/group-codes", w.Key, map[string]any{"name": "码", "chat_ids": []string{g.ChatID},
			"auto_create_room": true, "room_base_name": "茶友群", "idempotency_key": "k1"}), 201).JSON(t, &again)
		if again.ID != code.ID {
			t.Fatalf("a retry made another code: %d, %d", again.ID, code.ID)
		}
		expectProblem(t, s.Do(t, "GET", base+"/group-codes/99999", w.Key, nil), 404, "group_code_not_found")

		var tpl community.GroupWelcome
		mustStatus(t, s.Do(t, "POST", base+"/welcome-templates", w.Key, map[string]any{"name": "欢迎", "text": "欢迎 %NICKNAME%",
			"attachment": map[string]any{"kind": "link", "title": "新人礼", "url": "https://example.com"}}), 201).JSON(t, &tpl)
		if tpl.TemplateID == "" {
			t.Fatalf("template %+v", tpl)
		}
		expectProblem(t, s.Do(t, "POST", base+"/welcome-templates", w.Key, map[string]any{"name": "空"}), 422, "empty_template")
		mustStatus(t, s.Do(t, "DELETE", base+"/welcome-templates/"+strconv.FormatInt(tpl.ID, 10), w.Key, nil), 204)
		mustStatus(t, s.Do(t, "DELETE", base+"/group-codes/"+strconv.FormatInt(code.ID, 10), w.Key, nil), 204)
	})
}
