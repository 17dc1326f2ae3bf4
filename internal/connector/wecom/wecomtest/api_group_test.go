package wecomtest_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
)

// Group codes speak WeCom's shapes and rules, fill their groups in order and
// open a new group, reported before the join, when the last one is full.
func TestJoinWayFillsAndOpensGroups(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	if _, err := s.PutStaff(wecomtest.Staff{UserID: "zhangsan"}); err != nil {
		t.Fatal(err)
	}
	g, err := s.PutGroup(wecomtest.Group{Name: "茶友群1", Owner: "zhangsan"})
	if err != nil {
		t.Fatal(err)
	}
	s.SetGroupMemberLimit(2) // the owner and one customer
	q := url.Values{"access_token": {token(t, s)}}
	api := "externalcontact/groupchat/add_join_way"
	for _, bad := range []struct {
		body map[string]any
		code int
	}{
		{map[string]any{"scene": 2, "chat_id_list": []string{"a", "b", "c", "d", "e", "f"}}, wecom.CodeInvalidParam},
		{map[string]any{"scene": 2, "chat_id_list": []string{g.ChatID}, "state": strings.Repeat("s", 31)}, wecom.CodeInvalidParam},
		{map[string]any{"scene": 2, "chat_id_list": []string{"wrUnknown"}}, wecom.CodeChatNotFound},
		{map[string]any{"scene": 2, "chat_id_list": []string{g.ChatID}, "auto_create_room": 1}, wecom.CodeInvalidParam},
	} {
		if out := raw(t, s, "POST", api, q, bad.body); code(out) != bad.code {
			t.Fatalf("%v: %v, want errcode %d", bad.body, out, bad.code)
		}
	}
	out := raw(t, s, "POST", api, q, map[string]any{"scene": 2, "remark": "门店", "auto_create_room": 1, "room_base_name": "茶友群",
		"room_base_id": 2, "chat_id_list": []string{g.ChatID}, "state": "store-01"})
	configID, _ := out["config_id"].(string)
	if code(out) != 0 || configID == "" || out["qr_code"] != nil {
		t.Fatalf("add_join_way answered %v", out)
	}
	got := raw(t, s, "POST", "externalcontact/groupchat/get_join_way", q, map[string]any{"config_id": configID})
	jw, _ := got["join_way"].(map[string]any)
	if code(got) != 0 || jw["qr_code"] == "" || jw["state"] != "store-01" || jw["room_base_name"] != "茶友群" {
		t.Fatalf("get_join_way answered %v", got)
	}

	first, err := s.JoinByWay(ctx, configID, wecomtest.Contact{Name: "甲"})
	if err != nil || first.ChatID != g.ChatID {
		t.Fatalf("the first customer joined %+v, %v", first, err)
	}
	second, err := s.JoinByWay(ctx, configID, wecomtest.Contact{Name: "乙"})
	if err != nil || second.Name != "茶友群2" || second.Owner != "zhangsan" || len(second.Members) != 2 {
		t.Fatalf("the second customer joined %+v, %v", second, err)
	}
	third, err := s.JoinByWay(ctx, configID, wecomtest.Contact{Name: "丙"})
	if err != nil || third.Name != "茶友群3" {
		t.Fatalf("the third customer joined %+v, %v", third, err)
	}
	w, _ := s.JoinWay(configID)
	if len(w.ChatIDs) != 3 || w.ChatIDs[1] != second.ChatID || w.ChatIDs[2] != third.ChatID {
		t.Fatalf("the code's groups %v", w.ChatIDs)
	}
	var kinds []string
	for _, cb := range s.Callbacks() {
		kinds = append(kinds, cb.Kind)
	}
	want := []string{"change_external_chat/update", "change_external_chat/create", "change_external_chat/update",
		"change_external_chat/create", "change_external_chat/update"}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Fatalf("callbacks %v, want %v", kinds, want)
	}

	// Without auto_create_room a full code refuses.
	out = raw(t, s, "POST", "externalcontact/groupchat/update_join_way", q, map[string]any{"config_id": configID, "scene": 2,
		"chat_id_list": []string{g.ChatID}})
	if code(out) != 0 {
		t.Fatalf("update_join_way answered %v", out)
	}
	if _, err := s.JoinByWay(ctx, configID, wecomtest.Contact{Name: "丁"}); err == nil {
		t.Fatal("a full code without auto_create_room took a customer")
	}

	// Statistics count the simulated groups.
	stats := raw(t, s, "POST", "externalcontact/groupchat/statistic", q, map[string]any{"day_begin_time": s.Now().Unix() - 3600,
		"owner_filter": map[string]any{"userid_list": []string{"zhangsan"}}})
	items, _ := stats["items"].([]any)
	if code(stats) != 0 || len(items) != 1 {
		t.Fatalf("statistic answered %v", stats)
	}
	data := items[0].(map[string]any)["data"].(map[string]any)
	if data["chat_total"] != float64(3) || data["member_total"] != float64(6) || data["new_member_cnt"] != float64(6) {
		t.Fatalf("statistic data %v", data)
	}
	if out := raw(t, s, "POST", "externalcontact/groupchat/statistic", q, map[string]any{"day_begin_time": 100, "day_end_time": 100 + 40*86400}); code(out) != wecom.CodeInvalidParam {
		t.Fatalf("a 40-day range: %v", out)
	}
	if out := raw(t, s, "POST", "externalcontact/groupchat/del_join_way", q, map[string]any{"config_id": configID}); code(out) != 0 {
		t.Fatalf("del_join_way answered %v", out)
	}
	if out := raw(t, s, "POST", "externalcontact/groupchat/get_join_way", q, map[string]any{"config_id": configID}); code(out) != wecom.CodeInvalidJoinWay {
		t.Fatalf("a deleted code: %v", out)
	}
}

// Group welcome templates: text plus one attachment, added, read, edited, deleted.
func TestGroupWelcomeTemplates(t *testing.T) {
	s := newSim(t, wecomtest.Options{})
	q := url.Values{"access_token": {token(t, s)}}
	base := "externalcontact/group_welcome_template/"
	if out := raw(t, s, "POST", base+"add", q, map[string]any{"notify": 1}); code(out) != wecom.CodeInvalidParam {
		t.Fatalf("an empty template: %v", out)
	}
	out := raw(t, s, "POST", base+"add", q, map[string]any{"text": map[string]any{"content": "欢迎 %NICKNAME%"},
		"link": map[string]any{"title": "新人礼", "url": "https://example.com"}, "notify": 0})
	id, _ := out["template_id"].(string)
	if code(out) != 0 || id == "" {
		t.Fatalf("add answered %v", out)
	}
	got := raw(t, s, "POST", base+"get", q, map[string]any{"template_id": id})
	if link, _ := got["link"].(map[string]any); code(got) != 0 || link["title"] != "新人礼" || got["image"] != nil {
		t.Fatalf("get answered %v", got)
	}
	if out := raw(t, s, "POST", base+"edit", q, map[string]any{"template_id": id, "text": map[string]any{"content": "你好"}}); code(out) != 0 {
		t.Fatalf("edit answered %v", out)
	}
	if tpl, _ := s.GroupWelcomeTemplate(id); tpl.Text == nil || tpl.Text.Content != "你好" || tpl.Link != nil || tpl.Notify == nil || *tpl.Notify != 0 {
		t.Fatalf("after the edit %+v", tpl)
	}
	if out := raw(t, s, "POST", base+"del", q, map[string]any{"template_id": id}); code(out) != 0 {
		t.Fatalf("del answered %v", out)
	}
	if out := raw(t, s, "POST", base+"get", q, map[string]any{"template_id": id}); code(out) == 0 {
		t.Fatalf("a deleted template: %v", out)
	}
}
