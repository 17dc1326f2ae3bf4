package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/community"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/page"
)

var codeLinkRE = regexp.MustCompile(`/community/codes/(\d+)`)

// The community pages: the group list and a group's members linked to their
// profiles, group tags, group codes with their errors inline, welcome
// messages; an analyst sees them but changes nothing.
func TestCommunityPages(t *testing.T) {
	eachWeComEngine(t, func(t *testing.T, wh *wecomHarness) {
		ctx := context.Background()
		if _, err := wh.sim.PutStaff(wecomtest.Staff{UserID: "zhangsan", Name: "张三"}); err != nil {
			t.Fatal(err)
		}
		a, err := wh.sim.PutContact(wecomtest.Contact{Name: "客户甲"}, wecomtest.Follow{UserID: "zhangsan"})
		if err != nil {
			t.Fatal(err)
		}
		g, err := wh.sim.PutGroup(wecomtest.Group{Name: "茶友一群", Owner: "zhangsan", Members: []wecomtest.Member{{UserID: a.ExternalUserID}}})
		if err != nil {
			t.Fatal(err)
		}
		b := wh.browser()
		token := b.signIn(wecomAdminEmail)
		wh.connect(t, b, token)
		if _, err := wh.app.WeCom.StartSync(ctx, wh.ws.ID, wecom.SyncFull); err != nil && err != wecom.ErrSyncRunning {
			t.Fatal(err)
		}
		wh.syncDone(t)

		list := b.get("/community?name=" + url.QueryEscape("茶友"))
		wantStatus(t, list, http.StatusOK)
		wantBody(t, list, "茶友一群", "/community/groups/"+g.ChatID, "张三")
		wantNoBody(t, b.get("/community?name=nothing"), "茶友一群")

		members, err := wh.app.Community.Members(ctx, wh.ws.ID, g.ChatID, communityMembersIn(), page.Request{})
		if err != nil {
			t.Fatal(err)
		}
		var customerID int64
		for _, m := range members.Items {
			if m.Type == "customer" {
				customerID = m.CustomerID
			}
		}
		detail := b.get("/community/groups/" + g.ChatID)
		wantStatus(t, detail, http.StatusOK)
		wantBody(t, detail, "客户甲", "/customers/"+itoa(customerID), "data-community-chart=")
		wantStatus(t, b.get("/community/groups/wrNoSuchGroup"), http.StatusNotFound)

		// Group tags: created, put on the group, listed.
		wecomWantRedirect(t, b.post("/community/tags", url.Values{"csrf": {token}, "name": {"门店群"}, "color": {"#ff7a45"}}), "/community/tags")
		dup := b.post("/community/tags", url.Values{"csrf": {token}, "name": {"门店群"}})
		wantStatus(t, dup, http.StatusConflict)
		wantBody(t, dup, "已有同名的群标签")
		tags, err := wh.app.Community.GroupTags(ctx, wh.ws.ID)
		if err != nil || len(tags) != 1 {
			t.Fatalf("tags %+v, %v", tags, err)
		}
		wecomWantRedirect(t, b.post("/community/groups/"+g.ChatID+"/tags", url.Values{"csrf": {token}, "tag_id": {itoa(tags[0].ID)}}), "/community/groups/")
		wantBody(t, b.get("/community?tag_id="+itoa(tags[0].ID)), "茶友一群")

		// Group codes: a state over 30 characters is refused beside the field.
		bad := b.post("/community/codes", url.Values{"csrf": {token}, "name": {"门店码"}, "chat_id": {g.ChatID}, "state": {strings.Repeat("s", 31)}})
		wantStatus(t, bad, http.StatusUnprocessableEntity)
		wantBody(t, bad, "渠道标识 state 最多 30 个字符", `id="code-state-err"`)
		none := b.post("/community/codes", url.Values{"csrf": {token}, "name": {"门店码"}})
		wantStatus(t, none, http.StatusUnprocessableEntity)
		wantBody(t, none, "请至少选择一个群")
		ok := b.post("/community/codes", url.Values{"csrf": {token}, "name": {"门店码"}, "chat_id": {g.ChatID}, "state": {"store-01"},
			"auto_create_room": {"1"}, "room_base_name": {"茶友群"}, "room_base_id": {"2"}, "idempotency_key": {"form-1"}})
		wecomWantRedirect(t, ok, "/community/codes/")
		m := codeLinkRE.FindStringSubmatch(ok.Header.Get("Location"))
		code := b.get(m[0])
		wantStatus(t, code, http.StatusOK)
		wantBody(t, code, "/sim/qr/", "茶友一群", "store-01")
		// The same form posted twice makes one code.
		wecomWantRedirect(t, b.post("/community/codes", url.Values{"csrf": {token}, "name": {"门店码"}, "chat_id": {g.ChatID},
			"auto_create_room": {"1"}, "room_base_name": {"茶友群"}, "idempotency_key": {"form-1"}}), m[0])

		// Welcome messages.
		empty := b.post("/community/welcome", url.Values{"csrf": {token}, "name": {"欢迎"}})
		wantStatus(t, empty, http.StatusUnprocessableEntity)
		wantBody(t, empty, "欢迎语需要文字或附件")
		wecomWantRedirect(t, b.post("/community/welcome", url.Values{"csrf": {token}, "name": {"欢迎"}, "text": {"欢迎 %NICKNAME%"},
			"att_kind": {"link"}, "att_title": {"新人礼"}, "att_url": {"https://example.com"}, "notify": {"1"}}), "/community/welcome")
		wantBody(t, b.get("/community/welcome"), "欢迎 %NICKNAME%", "新人礼")

		// An analyst reads but does not change.
		an := wh.browser()
		at := an.signIn(analystEmail)
		wantStatus(t, an.get("/community"), http.StatusOK)
		wantNoBody(t, an.get("/community/tags"), `id="new-gtag-form"`)
		wantStatus(t, an.post("/community/tags", url.Values{"csrf": {at}, "name": {"x"}}), http.StatusForbidden)
	})
}

func communityMembersIn() community.MemberQuery { return community.MemberQuery{Status: "in"} }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
