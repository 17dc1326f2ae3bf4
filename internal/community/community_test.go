package community_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/community"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// env is a running Siyu connected to a simulated corp with one staff member
// (zhangsan) and one group of hers with two customers.
type env struct {
	s     *apptest.Server
	w     apptest.Workspace
	sim   *wecomtest.Server
	p     tenant.Principal
	group wecomtest.Group // 茶友群1: zhangsan, 客户A, 客户B
	a, b  wecomtest.Contact
}

func eachEnv(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			s := apptest.Start(t, engine)
			w := s.NewWorkspace(t, "community")
			// The corp's clock is the real one, so Siyu's days and WeCom's agree.
			sim := s.NewWeComSim(t, w, wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now}})
			e := &env{s: s, w: w, sim: sim, p: tenant.System(w.ID)}
			if _, err := sim.PutStaff(wecomtest.Staff{UserID: "zhangsan", Name: "张三"}); err != nil {
				t.Fatal(err)
			}
			var err error
			if e.a, err = sim.PutContact(wecomtest.Contact{Name: "客户A"}, wecomtest.Follow{UserID: "zhangsan"}); err != nil {
				t.Fatal(err)
			}
			if e.b, err = sim.PutContact(wecomtest.Contact{Name: "客户B"}, wecomtest.Follow{UserID: "zhangsan"}); err != nil {
				t.Fatal(err)
			}
			if e.group, err = sim.PutGroup(wecomtest.Group{Name: "茶友群1", Owner: "zhangsan", Members: []wecomtest.Member{
				{UserID: e.a.ExternalUserID}, {UserID: e.b.ExternalUserID}}}); err != nil {
				t.Fatal(err)
			}
			connect(t, s, w, sim)
			fn(t, e)
		})
	}
}

// connect connects the workspace through the API and runs a full sync to its
// end (started here rather than waiting for the sync worker's schedule).
func connect(t *testing.T, s *apptest.Server, w apptest.Workspace, sim *wecomtest.Server) {
	t.Helper()
	body := map[string]any{"corp_id": sim.CorpID(), "agent_id": sim.AgentID(), "secret": sim.Secret(), "token": sim.CallbackToken(),
		"encoding_aes_key": sim.EncodingAESKey(), "base_url": sim.URL()}
	if res := s.Do(t, "PUT", "/api/v1/connectors/wecom", w.Key, body); res.Status != 200 {
		t.Fatalf("connect WeCom: %d %s", res.Status, res.Body)
	}
	if _, err := s.App.WeCom.StartSync(context.Background(), w.ID, wecom.SyncFull); err != nil && !errors.Is(err, wecom.ErrSyncRunning) {
		t.Fatal(err)
	}
	s.WeComSyncDone(t, w)
}

// settle processes the stored callbacks until none is pending, including
// those the app's own worker holds at the moment.
func (e *env) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.s.WeComSettled(t)
		var pending int
		if err := e.s.App.DB.QueryRow(`SELECT count(*) FROM wecom_inbox WHERE status = 'pending'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callbacks still pending", pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) cs() *community.Service { return e.s.App.Community }

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	ee, ok := errs.As(err)
	if !ok || ee.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

func (e *env) today() string { return time.Now().In(e.w.Location()).Format(time.DateOnly) }

// A group code fills its group; WeCom opens 茶友群2 for the next customer,
// and Siyu shows the new group in the code, in the group list, with the
// customer as a member linked to their profile.
func TestGroupCodeOverflowsIntoNewGroup(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.sim.SetGroupMemberLimit(4) // zhangsan, A, B and one more
		code, err := e.cs().CreateGroupCode(ctx, e.p, community.GroupCodeInput{Name: "门店群码", State: "store-sh-01", ChatIDs: []string{e.group.ChatID},
			AutoCreateRoom: true, RoomBaseName: "茶友群", RoomBaseID: 2, IdempotencyKey: "code-1"})
		if err != nil {
			t.Fatal(err)
		}
		if code.ConfigID == "" || code.QRCode == "" || code.Status != "active" || !slices.Equal(code.ChatIDs, []string{e.group.ChatID}) {
			t.Fatalf("created %+v", code)
		}
		if w, ok := e.sim.JoinWay(code.ConfigID); !ok || w.AutoCreateRoom != 1 || w.RoomBaseName != "茶友群" || w.State != "store-sh-01" {
			t.Fatalf("WeCom has %+v", w)
		}
		again, err := e.cs().CreateGroupCode(ctx, e.p, community.GroupCodeInput{Name: "门店群码", ChatIDs: []string{e.group.ChatID},
			AutoCreateRoom: true, RoomBaseName: "茶友群", IdempotencyKey: "code-1"})
		if err != nil || again.ID != code.ID || e.sim.CallCount("externalcontact/groupchat/add_join_way") != 1 {
			t.Fatalf("retry gave %+v, %v (%d adds)", again, err, e.sim.CallCount("externalcontact/groupchat/add_join_way"))
		}
		qr, err := e.cs().JoinWayQR(ctx, e.w.ID, code.ID)
		if err != nil || qr != code.QRCode {
			t.Fatalf("QR %q, %v", qr, err)
		}
		_, err = e.cs().JoinWayQR(ctx, e.w.ID, code.ID+100)
		wantCode(t, err, "group_code_not_found")

		first, err := e.sim.JoinByWay(ctx, code.ConfigID, wecomtest.Contact{Name: "客户C"})
		if err != nil || first.ChatID != e.group.ChatID {
			t.Fatalf("first join went to %+v, %v", first, err)
		}
		second, err := e.sim.JoinByWay(ctx, code.ConfigID, wecomtest.Contact{Name: "客户D"})
		if err != nil || second.ChatID == e.group.ChatID || second.Name != "茶友群2" || second.Owner != "zhangsan" {
			t.Fatalf("second join went to %+v, %v", second, err)
		}
		e.settle(t)

		got, err := e.cs().GroupCode(ctx, e.w.ID, code.ID)
		if err != nil || !slices.Equal(got.ChatIDs, []string{e.group.ChatID, second.ChatID}) {
			t.Fatalf("the code's groups %v, %v; want the new group added", got.ChatIDs, err)
		}
		groups, err := e.cs().Groups(ctx, e.w.ID, community.GroupQuery{Name: "茶友群"}, page.Request{})
		if err != nil || len(groups.Items) != 2 || groups.Items[0].ChatID != second.ChatID || groups.Items[0].OwnerName != "张三" {
			t.Fatalf("groups %+v, %v", groups.Items, err)
		}
		if full := groups.Items[1]; full.MemberCount != 4 || full.CustomerCount != 3 {
			t.Fatalf("the full group %+v", full)
		}
		members, err := e.cs().Members(ctx, e.w.ID, second.ChatID, community.MemberQuery{}, page.Request{})
		if err != nil {
			t.Fatal(err)
		}
		var customers []community.GroupMember
		for _, m := range members.Items {
			if m.Type == "customer" {
				customers = append(customers, m)
			}
		}
		if len(customers) != 1 || customers[0].CustomerID == 0 || customers[0].JoinScene != wecom.JoinByQRCode {
			t.Fatalf("members of the new group %+v", members.Items)
		}
		if _, err := e.s.App.Customers.Get(ctx, e.w.ID, customers[0].CustomerID, false); err != nil {
			t.Fatalf("the member's profile: %v", err)
		}
	})
}

// Joins and leaves show per day; the audience predicate counts a group's
// customers and follows a leave.
func TestMemberHistoryAndAudience(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		c, err := e.sim.PutContact(wecomtest.Contact{Name: "客户C"}, wecomtest.Follow{UserID: "zhangsan"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.sim.JoinGroup(ctx, e.group.ChatID, []string{c.ExternalUserID}, wecom.JoinByQRCode); err != nil {
			t.Fatal(err)
		}
		e.settle(t)
		count := func(cond audience.Condition) int64 {
			t.Helper()
			if err := e.s.App.Audiences.Sync(ctx, e.w.ID); err != nil {
				t.Fatal(err)
			}
			n, err := e.s.App.Audiences.Count(ctx, e.w.ID, cond)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		inGroup := audience.Condition{Group: e.group.ChatID}
		if n := count(inGroup); n != 3 {
			t.Fatalf("customers in the group: %d, want 3 (its customer members)", n)
		}
		if err := e.sim.LeaveGroup(ctx, e.group.ChatID, []string{e.a.ExternalUserID}, wecom.QuitSceneSelf); err != nil {
			t.Fatal(err)
		}
		e.settle(t)
		if n := count(inGroup); n != 2 {
			t.Fatalf("customers in the group after one left: %d, want 2", n)
		}
		if n := count(audience.Condition{GroupsAny: []string{e.group.ChatID, "wrUnknown"}}); n != 2 {
			t.Fatalf("groups_any: %d", n)
		}
		if n := count(audience.Condition{Not: &inGroup}); n != 1 {
			t.Fatalf("customers not in the group: %d, want 1 (the one who left)", n)
		}
		if _, err := audience.Parse([]byte(`{"groups_any": []}`)); err == nil {
			t.Fatal("an empty groups_any was accepted")
		}

		day := e.today()
		stats, err := e.cs().DailyStats(ctx, e.w.ID, community.StatsQuery{ChatID: e.group.ChatID, From: day, To: day})
		if err != nil || len(stats) != 1 {
			t.Fatalf("stats %+v, %v", stats, err)
		}
		// Today: zhangsan, A, B (put today) and C joined; A left.
		if s := stats[0]; s.Joins != 4 || s.Leaves != 1 || s.Members != 3 || s.Net != 3 {
			t.Fatalf("today %+v", s)
		}
		left, err := e.cs().Members(ctx, e.w.ID, e.group.ChatID, community.MemberQuery{Status: "left"}, page.Request{})
		if err != nil || len(left.Items) != 1 || left.Items[0].MemberID != e.a.ExternalUserID || left.Items[0].LeftAt.IsZero() {
			t.Fatalf("past members %+v, %v", left.Items, err)
		}
		ws, err := e.cs().WeComDailyStats(ctx, e.w.ID, []string{"zhangsan"}, day, day)
		if err != nil || len(ws) != 1 || ws[0].Chats != 1 {
			t.Fatalf("WeCom's statistics %+v, %v", ws, err)
		}
		_, err = e.cs().DailyStats(ctx, e.w.ID, community.StatsQuery{ChatID: e.group.ChatID, From: "2020-01-01", To: day})
		wantCode(t, err, "range_too_long")
	})
}

// Group tags are Siyu's: they tag groups and filter the list.
func TestGroupTags(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		other, err := e.sim.CreateGroup(ctx, "zhangsan", "新品群", e.a.ExternalUserID)
		if err != nil {
			t.Fatal(err)
		}
		e.settle(t)
		tg, err := e.cs().CreateGroupTag(ctx, e.p, community.GroupTagInput{Name: "门店群", Color: "#ff7a45"})
		if err != nil || tg.Color != "#FF7A45" {
			t.Fatalf("tag %+v, %v", tg, err)
		}
		_, err = e.cs().CreateGroupTag(ctx, e.p, community.GroupTagInput{Name: "门店群"})
		wantCode(t, err, "group_tag_exists")
		g, err := e.cs().SetGroupTags(ctx, e.p, e.group.ChatID, []int64{tg.ID})
		if err != nil || len(g.Tags) != 1 || g.Tags[0].Name != "门店群" {
			t.Fatalf("tagged %+v, %v", g, err)
		}
		_, err = e.cs().SetGroupTags(ctx, e.p, other.ChatID, []int64{tg.ID + 99})
		wantCode(t, err, "group_tag_not_found")
		_, err = e.cs().SetGroupTags(ctx, e.p, "wrNoSuchGroup", []int64{tg.ID})
		wantCode(t, err, "group_not_found")
		list, err := e.cs().Groups(ctx, e.w.ID, community.GroupQuery{TagID: tg.ID}, page.Request{})
		if err != nil || len(list.Items) != 1 || list.Items[0].ChatID != e.group.ChatID {
			t.Fatalf("tagged groups %+v, %v", list.Items, err)
		}
		all, err := e.cs().Groups(ctx, e.w.ID, community.GroupQuery{}, page.Request{Limit: 1})
		if err != nil || len(all.Items) != 1 || all.Next == "" {
			t.Fatalf("first page %+v, %v", all, err)
		}
		rest, err := e.cs().Groups(ctx, e.w.ID, community.GroupQuery{}, page.Request{Limit: 1, Cursor: all.Next})
		if err != nil || len(rest.Items) != 1 || rest.Items[0].ChatID == all.Items[0].ChatID || rest.Next != "" {
			t.Fatalf("second page %+v, %v", rest, err)
		}
		tags, err := e.cs().GroupTags(ctx, e.w.ID)
		if err != nil || len(tags) != 1 || tags[0].Groups != 1 {
			t.Fatalf("tags %+v, %v", tags, err)
		}
		// The group tag as an audience condition: the customers of the
		// tagged groups (A and B in 茶友群1; not the other group's).
		if err := e.s.App.Audiences.Sync(ctx, e.w.ID); err != nil {
			t.Fatal(err)
		}
		if n, err := e.s.App.Audiences.Count(ctx, e.w.ID, audience.Condition{GroupTag: "门店群"}); err != nil || n != 2 {
			t.Fatalf("customers in groups tagged 门店群: %d, %v", n, err)
		}
		_, err = e.s.App.Audiences.Count(ctx, e.w.ID, audience.Condition{GroupTag: "没有"})
		wantCode(t, err, "unknown_group_tag")
		if err := e.cs().DeleteGroupTag(ctx, e.p, tg.ID); err != nil {
			t.Fatal(err)
		}
		if g, _ := e.cs().Group(ctx, e.w.ID, e.group.ChatID); len(g.Tags) != 0 {
			t.Fatalf("tags after deletion %+v", g.Tags)
		}
	})
}

// A welcome template goes to WeCom and back: added, read, edited, deleted.
func TestWelcomeTemplateRoundTrip(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		no := false
		tpl, err := e.cs().CreateWelcomeTemplate(ctx, e.p, community.GroupWelcomeInput{Name: "欢迎", Text: "欢迎 %NICKNAME% 入群",
			Attachment: &community.WelcomeAttachment{Kind: "link", Title: "新人礼", URL: "https://example.com/gift"}, Notify: &no, IdempotencyKey: "w-1"})
		if err != nil || tpl.TemplateID == "" || tpl.Notify || tpl.Attachment == nil || tpl.Attachment.Kind != "link" {
			t.Fatalf("template %+v, %v", tpl, err)
		}
		in, ok := e.sim.GroupWelcomeTemplate(tpl.TemplateID)
		if !ok || in.Text == nil || in.Text.Content != "欢迎 %NICKNAME% 入群" || in.Link == nil || in.Link.URL != "https://example.com/gift" ||
			in.Notify == nil || *in.Notify != 0 {
			t.Fatalf("WeCom has %+v", in)
		}
		again, err := e.cs().CreateWelcomeTemplate(ctx, e.p, community.GroupWelcomeInput{Name: "欢迎", Text: "x", IdempotencyKey: "w-1"})
		if err != nil || again.ID != tpl.ID {
			t.Fatalf("retry %+v, %v", again, err)
		}
		upd, err := e.cs().UpdateWelcomeTemplate(ctx, e.p, tpl.ID, community.GroupWelcomeInput{Name: "欢迎2", Text: "你好",
			Attachment: &community.WelcomeAttachment{Kind: "image", PicURL: "https://example.com/a.png"}})
		if err != nil || upd.Name != "欢迎2" || upd.Attachment.Kind != "image" {
			t.Fatalf("updated %+v, %v", upd, err)
		}
		c, err := e.s.App.WeCom.Client(ctx, e.w.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.GetGroupWelcomeTemplate(ctx, tpl.TemplateID)
		if err != nil || got.Text == nil || got.Text.Content != "你好" || got.Image == nil || got.Image.PicURL != "https://example.com/a.png" || got.Link != nil {
			t.Fatalf("WeCom reads back %+v, %v", got, err)
		}
		_, err = e.cs().CreateWelcomeTemplate(ctx, e.p, community.GroupWelcomeInput{Name: "空"})
		wantCode(t, err, "empty_template")
		_, err = e.cs().CreateWelcomeTemplate(ctx, e.p, community.GroupWelcomeInput{Name: "长", Text: strings.Repeat("字", 1400)})
		wantCode(t, err, "text_too_long")
		if err := e.cs().DeleteWelcomeTemplate(ctx, e.p, tpl.ID); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.sim.GroupWelcomeTemplate(tpl.TemplateID); ok {
			t.Fatal("the template is still in WeCom")
		}
		_, err = e.cs().WelcomeTemplate(ctx, e.w.ID, tpl.ID)
		wantCode(t, err, "welcome_template_not_found")
	})
}

// Bad group codes are refused before WeCom sees them, with clear codes.
func TestGroupCodeBadInput(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		six := make([]string, 6)
		for i := range six {
			six[i] = fmt.Sprintf("wrChat%d", i)
		}
		_, err := e.cs().CreateGroupCode(ctx, e.p, community.GroupCodeInput{Name: "x", ChatIDs: six})
		wantCode(t, err, "too_many_chats")
		_, err = e.cs().CreateGroupCode(ctx, e.p, community.GroupCodeInput{Name: "x", ChatIDs: []string{e.group.ChatID}, State: strings.Repeat("s", 31)})
		wantCode(t, err, "state_too_long")
		_, err = e.cs().CreateGroupCode(ctx, e.p, community.GroupCodeInput{Name: "x", ChatIDs: []string{"wrUnknownChat"}})
		wantCode(t, err, "unknown_group")
		_, err = e.cs().CreateGroupCode(ctx, e.p, community.GroupCodeInput{Name: "x", ChatIDs: []string{e.group.ChatID}, AutoCreateRoom: true})
		wantCode(t, err, "invalid_room_base_name")
		_, err = e.cs().CreateGroupCode(ctx, e.p, community.GroupCodeInput{Name: "", ChatIDs: []string{e.group.ChatID}})
		wantCode(t, err, "invalid_name")
		if n := e.sim.CallCount("externalcontact/groupchat/add_join_way"); n != 0 {
			t.Fatalf("%d add_join_way calls for bad input", n)
		}
		// WeCom's own checks answer too: the client refuses six groups.
		c, err := e.s.App.WeCom.Client(ctx, e.w.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.AddJoinWay(ctx, wecom.JoinWay{Scene: 2, ChatIDs: six})
		wantCode(t, err, "too_many_chats")
		_, err = c.AddJoinWay(ctx, wecom.JoinWay{Scene: 2, ChatIDs: []string{"wrUnknownChat"}})
		if wecom.ErrorCode(err) != wecom.CodeChatNotFound {
			t.Fatalf("unknown chat in WeCom: %v", err)
		}

		// WeCom fails the first try: the code is recorded as pending, and
		// the retry with the same key finishes it; one code, not two.
		e.sim.FailNext("externalcontact/groupchat/add_join_way", wecom.CodeBusy, 1)
		in := community.GroupCodeInput{Name: "x", ChatIDs: []string{e.group.ChatID}, IdempotencyKey: "retry-1"}
		if _, err := e.cs().CreateGroupCode(ctx, e.p, in); err == nil {
			t.Fatal("a failed add_join_way made a code")
		}
		code, err := e.cs().CreateGroupCode(ctx, e.p, in)
		if err != nil || code.Status != "active" || code.ConfigID == "" {
			t.Fatalf("the retry gave %+v, %v", code, err)
		}
		if codes, _ := e.cs().GroupCodes(ctx, e.w.ID, page.Request{}); len(codes.Items) != 1 {
			t.Fatalf("codes after a retry: %+v", codes.Items)
		}
		upd, err := e.cs().UpdateGroupCode(ctx, e.p, code.ID, community.GroupCodeInput{Name: "y", Remark: "改", ChatIDs: []string{e.group.ChatID}, State: "s2"})
		if err != nil || upd.Name != "y" || upd.State != "s2" || upd.QRCode != code.QRCode {
			t.Fatalf("updated %+v, %v", upd, err)
		}
		if w, _ := e.sim.JoinWay(code.ConfigID); w.State != "s2" || w.Remark != "改" {
			t.Fatalf("WeCom has %+v", w)
		}
		if err := e.cs().DeleteGroupCode(ctx, e.p, code.ID); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.sim.JoinWay(code.ConfigID); ok {
			t.Fatal("the code is still in WeCom")
		}
		_, err = e.cs().GroupCode(ctx, e.w.ID, code.ID)
		wantCode(t, err, "group_code_not_found")
	})
}
