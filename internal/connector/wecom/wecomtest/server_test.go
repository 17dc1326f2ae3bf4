package wecomtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
)

func newSim(t *testing.T, o wecomtest.Options) *wecomtest.Server {
	t.Helper()
	s := wecomtest.New(o)
	t.Cleanup(s.Close)
	return s
}

// raw calls the simulator as plain HTTP and returns the decoded JSON answer,
// so the tests check WeCom's shapes rather than the client's types.
func raw(t *testing.T, s *wecomtest.Server, method, api string, query url.Values, body any) map[string]any {
	t.Helper()
	u := s.URL() + "/cgi-bin/" + api
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, api, err)
	}
	return out
}

func token(t *testing.T, s *wecomtest.Server) string {
	t.Helper()
	out := raw(t, s, "GET", "gettoken", url.Values{"corpid": {s.CorpID()}, "corpsecret": {s.Secret()}}, nil)
	if code(out) != 0 {
		t.Fatalf("gettoken: %v", out)
	}
	return out["access_token"].(string)
}

func code(out map[string]any) int {
	n, _ := out["errcode"].(float64)
	return int(n)
}

func keys(m any) []string {
	var out []string
	for k := range m.(map[string]any) {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestTokensAndErrors(t *testing.T) {
	t.Parallel()
	s := newSim(t, wecomtest.Options{TokenLifetime: time.Hour})
	cases := []struct {
		name  string
		query url.Values
		want  int
	}{
		{"wrong corp", url.Values{"corpid": {"wwother"}, "corpsecret": {s.Secret()}}, wecom.CodeInvalidCorpID},
		{"wrong secret", url.Values{"corpid": {s.CorpID()}, "corpsecret": {"nope"}}, wecom.CodeInvalidSecret},
	}
	for _, c := range cases {
		if got := code(raw(t, s, "GET", "gettoken", c.query, nil)); got != c.want {
			t.Errorf("%s: errcode %d, want %d", c.name, got, c.want)
		}
	}
	out := raw(t, s, "GET", "gettoken", url.Values{"corpid": {s.CorpID()}, "corpsecret": {s.Secret()}}, nil)
	if got := keys(out); !reflect.DeepEqual(got, []string{"access_token", "errcode", "errmsg", "expires_in"}) || out["expires_in"].(float64) != 3600 {
		t.Errorf("gettoken answer = %v", out)
	}
	tok := out["access_token"].(string)
	s.Advance(10 * time.Minute)
	again := raw(t, s, "GET", "gettoken", url.Values{"corpid": {s.CorpID()}, "corpsecret": {s.Secret()}}, nil)
	if again["access_token"] != tok || again["expires_in"].(float64) != 3000 {
		t.Errorf("gettoken within the lifetime = %v, want the same token with 3000 s left", again)
	}

	for _, c := range []struct {
		name, method, api string
		query             url.Values
		want              int
	}{
		{"no token", "GET", "department/list", nil, wecom.CodeMissingToken},
		{"bad token", "GET", "department/list", url.Values{"access_token": {"forged"}}, wecom.CodeInvalidToken},
		{"GET on a POST API", "GET", "externalcontact/batch/get_by_user", url.Values{"access_token": {tok}}, wecom.CodeRequirePOST},
		{"unknown API", "GET", "externalcontact/no_such_api", url.Values{"access_token": {tok}}, 404},
	} {
		if got := code(raw(t, s, c.method, c.api, c.query, nil)); got != c.want {
			t.Errorf("%s: errcode %d, want %d", c.name, got, c.want)
		}
	}
	s.Advance(time.Hour)
	if got := code(raw(t, s, "GET", "department/list", url.Values{"access_token": {tok}}, nil)); got != wecom.CodeTokenExpired {
		t.Errorf("expired token: errcode %d, want 42001", got)
	}
	tok = token(t, s)
	s.SetTrustedIP(false)
	if got := code(raw(t, s, "GET", "department/list", url.Values{"access_token": {tok}}, nil)); got != wecom.CodeIPNotAllowed {
		t.Errorf("untrusted IP: errcode %d, want 60020", got)
	}
	s.SetTrustedIP(true)
	s.SetForbidden("department/list", true)
	if got := code(raw(t, s, "GET", "department/list", url.Values{"access_token": {tok}}, nil)); got != wecom.CodeForbidden {
		t.Errorf("forbidden API: errcode %d, want 48002", got)
	}
}

func TestRateLimitWindows(t *testing.T) {
	t.Parallel()
	s := newSim(t, wecomtest.Options{})
	s.SetLimits("department/list", wecom.Limits{PerMinute: 2, PerHour: 3})
	tok := url.Values{"access_token": {token(t, s)}}
	var got []int
	for range 3 {
		got = append(got, code(raw(t, s, "GET", "department/list", tok, nil)))
	}
	s.Advance(time.Minute)
	got = append(got, code(raw(t, s, "GET", "department/list", tok, nil)), code(raw(t, s, "GET", "department/list", tok, nil)))
	s.Advance(time.Hour)
	got = append(got, code(raw(t, s, "GET", "department/list", tok, nil)))
	want := []int{0, 0, 45009, 0, 45009, 0} // per minute, then per hour
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errcodes = %v, want %v", got, want)
	}
	if other := code(raw(t, s, "GET", "externalcontact/get_follow_user_list", tok, nil)); other != 0 {
		t.Errorf("limits are per API: another API answered %d", other)
	}
}

func TestBatchGetByUserShapeAndLimits(t *testing.T) {
	t.Parallel()
	s := newSim(t, wecomtest.Options{})
	if _, err := s.PutStaff(wecomtest.Staff{UserID: "amy"}); err != nil {
		t.Fatal(err)
	}
	tg, err := s.PutTagGroup(wecomtest.TagGroup{Name: "Level", Tags: []wecomtest.Tag{{Name: "Gold"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		f := wecomtest.Follow{UserID: "amy", Remark: fmt.Sprint("r", i), State: "s1", TagIDs: []string{tg.Tags[0].ID}, RemarkMobiles: []string{"13800000000"}}
		if _, err := s.PutContact(wecomtest.Contact{}, f); err != nil {
			t.Fatal(err)
		}
	}
	tok := url.Values{"access_token": {token(t, s)}}
	over := raw(t, s, "POST", "externalcontact/batch/get_by_user", tok, map[string]any{"userid_list": []string{"amy"}, "limit": 101})
	if code(over) != wecom.CodeInvalidParam {
		t.Errorf("limit 101: errcode %d, want 40058", code(over))
	}
	// Without a limit WeCom answers 50: a caller that does not page stops there.
	def := raw(t, s, "POST", "externalcontact/batch/get_by_user", tok, map[string]any{"userid_list": []string{"amy"}})
	if n := len(def["external_contact_list"].([]any)); n != 50 || def["next_cursor"] == "" {
		t.Errorf("default page: %d entries, next_cursor %q; want 50 and a cursor", n, def["next_cursor"])
	}
	out := raw(t, s, "POST", "externalcontact/batch/get_by_user", tok, map[string]any{"userid_list": []string{"amy"}, "limit": 100})
	list := out["external_contact_list"].([]any)
	if len(list) != 60 || out["next_cursor"] != "" {
		t.Fatalf("limit 100: %d entries, next_cursor %q", len(list), out["next_cursor"])
	}
	entry := list[0].(map[string]any)
	if got := keys(entry); !reflect.DeepEqual(got, []string{"external_contact", "follow_info"}) {
		t.Errorf("entry keys = %v", got)
	}
	if got := keys(entry["external_contact"]); !reflect.DeepEqual(got, []string{"external_userid", "gender", "name", "type", "unionid"}) {
		t.Errorf("external_contact keys = %v", got)
	}
	wantFollow := []string{"add_way", "createtime", "description", "oper_userid", "remark", "remark_mobiles", "state", "tag_id", "userid"}
	if got := keys(entry["follow_info"]); !reflect.DeepEqual(got, wantFollow) {
		t.Errorf("follow_info keys = %v, want %v", got, wantFollow)
	}
	if calls := s.Calls(); calls[len(calls)-1].Limit != 100 || s.MaxLimit("externalcontact/batch/get_by_user") != 101 {
		t.Errorf("recorded limits: last %d, max %d", calls[len(calls)-1].Limit, s.MaxLimit("externalcontact/batch/get_by_user"))
	}
	bad := raw(t, s, "POST", "externalcontact/batch/get_by_user", tok, map[string]any{"userid_list": []string{"amy"}, "cursor": "garbage!", "limit": 10})
	if code(bad) != wecom.CodeInvalidCursor {
		t.Errorf("bad cursor: errcode %d, want 50100", code(bad))
	}
}

func TestContactAndGroupShapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	if _, err := s.PutStaff(wecomtest.Staff{UserID: "amy", Name: "Amy"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.AddContact(ctx, "amy", wecomtest.Contact{Name: "Li"}, "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.CreateGroup(ctx, "amy", "VIP", a.Contact.ExternalUserID)
	if err != nil {
		t.Fatal(err)
	}
	tok := url.Values{"access_token": {token(t, s)}}
	q := url.Values{"access_token": tok["access_token"], "external_userid": {a.Contact.ExternalUserID}}
	out := raw(t, s, "GET", "externalcontact/get", q, nil)
	if got := keys(out); !reflect.DeepEqual(got, []string{"errcode", "errmsg", "external_contact", "follow_user", "next_cursor"}) {
		t.Errorf("externalcontact/get keys = %v", got)
	}
	fu := out["follow_user"].([]any)[0]
	if got := keys(fu); !reflect.DeepEqual(got, []string{"add_way", "createtime", "description", "oper_userid", "remark", "remark_mobiles", "tags", "userid"}) {
		t.Errorf("follow_user keys = %v", got)
	}
	gc := raw(t, s, "POST", "externalcontact/groupchat/get", tok, map[string]any{"chat_id": g.ChatID, "need_name": 1})["group_chat"]
	if got := keys(gc); !reflect.DeepEqual(got, []string{"admin_list", "chat_id", "create_time", "member_list", "member_version", "name", "notice", "owner"}) {
		t.Errorf("group_chat keys = %v", got)
	}
	members := gc.(map[string]any)["member_list"].([]any)
	ext := members[1].(map[string]any)
	if got := keys(ext); !reflect.DeepEqual(got, []string{"group_nickname", "invitor", "join_scene", "join_time", "name", "type", "unionid", "userid"}) {
		t.Errorf("external member keys = %v", got)
	}
	if ext["type"].(float64) != 2 || ext["invitor"].(map[string]any)["userid"] != "amy" {
		t.Errorf("external member = %v", ext)
	}
	list := raw(t, s, "POST", "externalcontact/groupchat/list", tok, map[string]any{"status_filter": 0})
	if code(list) != wecom.CodeInvalidParam {
		t.Errorf("groupchat/list without a limit: errcode %d, want 40058", code(list))
	}
	list = raw(t, s, "POST", "externalcontact/groupchat/list", tok, map[string]any{"limit": 1001})
	if code(list) != wecom.CodeInvalidParam {
		t.Errorf("groupchat/list limit 1001: errcode %d, want 40058", code(list))
	}
}

// receiver is Siyu's side of callbacks in these tests: it checks the
// signature and decrypts with the connector's crypto, as the real endpoint does.
type receiver struct {
	t      *testing.T
	crypt  *wecom.Crypt
	url    string
	events chan wecom.Event
	// fail answers the next n requests with HTTP 500; slow delays the next one.
	fail, slow chan struct{}
}

func newReceiver(t *testing.T, s *wecomtest.Server) *receiver {
	t.Helper()
	crypt, err := wecom.NewCrypt(s.CallbackToken(), s.EncodingAESKey(), s.CorpID())
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, crypt: crypt, events: make(chan wecom.Event, 100), fail: make(chan struct{}, 10), slow: make(chan struct{}, 10)}
	mux := http.NewServeMux()
	mux.HandleFunc("/cb", r.serve)
	ts := newHTTPServer(t, mux)
	r.url = ts + "/cb"
	s.SetCallbackURL(r.url)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	q, err := wecom.ParseQuery(req.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if req.Method == http.MethodGet {
		plain, err := r.crypt.VerifyURL(q.MsgSignature, q.Timestamp, q.Nonce, q.EchoStr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_, _ = w.Write(plain)
		return
	}
	select {
	case <-r.fail:
		http.Error(w, "busy", http.StatusInternalServerError)
		return
	default:
	}
	select {
	case <-r.slow:
		time.Sleep(1200 * time.Millisecond)
	default:
	}
	body, _ := io.ReadAll(req.Body)
	msg, env, err := r.crypt.DecryptEnvelope(q.MsgSignature, q.Timestamp, q.Nonce, body)
	if err != nil {
		r.t.Errorf("callback does not verify: %v", err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if env.ToUserName != r.crypt.ReceiveID() || env.AgentID != fmt.Sprint(wecomtest.DefaultAgentID) {
		r.t.Errorf("envelope = %+v", env)
	}
	ev, err := wecom.ParseEvent(msg)
	if err != nil {
		r.t.Errorf("callback message does not parse: %v\n%s", err, msg)
	}
	r.events <- ev
	_, _ = w.Write([]byte("success"))
}

func newHTTPServer(t *testing.T, h http.Handler) string {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

func (r *receiver) next() wecom.Event {
	r.t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-time.After(5 * time.Second):
		r.t.Fatal("no callback arrived")
		return wecom.Event{}
	}
}

func (r *receiver) none() {
	r.t.Helper()
	select {
	case ev := <-r.events:
		r.t.Errorf("unexpected callback %s", ev.Kind())
	default:
	}
}

func TestCallbacksAreSignedEncryptedAndParse(t *testing.T) {
	t.Parallel()
	for _, format := range []wecom.Format{wecom.FormatXML, wecom.FormatJSON} {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newSim(t, wecomtest.Options{CallbackFormat: format})
			r := newReceiver(t, s)
			if err := s.VerifyCallbackURL(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AddStaff(ctx, wecomtest.Staff{UserID: "amy", Name: "Amy", Position: "导购"}); err != nil {
				t.Fatal(err)
			}
			ev := r.next()
			if ev.Kind() != wecom.KindCreateUser || ev.UserID != "amy" || ev.Name != "Amy" || !slices.Equal(ev.Department, []int64{1}) || ev.Status != 1 {
				t.Errorf("create_user = %+v", ev)
			}
			s.Advance(time.Minute)
			a, err := s.AddContact(ctx, "amy", wecomtest.Contact{Name: "Li"}, "store_7")
			if err != nil {
				t.Fatal(err)
			}
			ev = r.next()
			if ev.Kind() != wecom.KindAddExternalContact || ev.UserID != "amy" || ev.ExternalUserID != a.Contact.ExternalUserID ||
				ev.State != "store_7" || ev.WelcomeCode != a.WelcomeCode || ev.ToUserName != s.CorpID() || ev.FromUserName != "sys" ||
				ev.CreateTime != s.Now().Unix() {
				t.Errorf("add_external_contact = %+v", ev)
			}
			g, err := s.CreateGroup(ctx, "amy", "VIP")
			if err != nil {
				t.Fatal(err)
			}
			if ev = r.next(); ev.Kind() != wecom.KindChatCreate || ev.ChatID != g.ChatID {
				t.Errorf("create = %+v", ev)
			}
			if err := s.JoinGroup(ctx, g.ChatID, []string{a.Contact.ExternalUserID}, wecom.JoinByQRCode); err != nil {
				t.Fatal(err)
			}
			ev = r.next()
			if ev.UpdateDetail != wecom.UpdateAddMember || ev.JoinScene != wecom.JoinSceneQRCode || ev.MemChangeCnt != 1 ||
				!slices.Equal(ev.MemChangeList, []string{a.Contact.ExternalUserID}) || ev.LastMemVer != g.MemberVersion || ev.CurMemVer == g.MemberVersion {
				t.Errorf("add_member = %+v", ev)
			}
		})
	}
}

func TestEveryEventKind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	r := newReceiver(t, s)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	expect := func(kind wecom.Kind, check func(wecom.Event) bool) {
		t.Helper()
		ev := r.next()
		if ev.Kind() != kind || (check != nil && !check(ev)) {
			t.Errorf("got %s %+v, want %s", ev.Kind(), ev, kind)
		}
	}

	d, err := s.AddDepartment(ctx, wecomtest.Department{Name: "Shanghai"})
	must(err)
	expect(wecom.KindCreateParty, func(e wecom.Event) bool { return e.ID == fmt.Sprint(d.ID) && e.Name == "Shanghai" && e.ParentID == "1" })
	_, err = s.AddStaff(ctx, wecomtest.Staff{UserID: "amy", Departments: []int64{d.ID}})
	must(err)
	expect(wecom.KindCreateUser, nil)
	_, err = s.AddStaff(ctx, wecomtest.Staff{UserID: "bob"})
	must(err)
	expect(wecom.KindCreateUser, nil)
	_, err = s.UpdateStaff(ctx, "bob", wecomtest.Staff{UserID: "bob2", Name: "Bob"})
	must(err)
	expect(wecom.KindUpdateUser, func(e wecom.Event) bool { return e.UserID == "bob" && e.NewUserID == "bob2" && e.Name == "Bob" })

	a, err := s.AddContact(ctx, "amy", wecomtest.Contact{}, "")
	must(err)
	expect(wecom.KindAddExternalContact, func(e wecom.Event) bool { return e.State == "" && e.WelcomeCode != "" })
	ext := a.Contact.ExternalUserID
	_, err = s.AddHalfContact(ctx, "bob2", wecomtest.Contact{ExternalUserID: ext}, "half")
	must(err)
	expect(wecom.KindAddHalfExternalContact, func(e wecom.Event) bool { return e.UserID == "bob2" && e.ExternalUserID == ext && e.State == "half" })

	tg, err := s.CreateTagGroup(ctx, "Level", 1, "Gold", "Silver")
	must(err)
	expect(wecom.KindTagCreate, func(e wecom.Event) bool { return e.ID == tg.ID && e.TagType == wecom.TagTypeTagGroup })
	bronze, err := s.CreateTag(ctx, tg.ID, "Bronze", 0)
	must(err)
	expect(wecom.KindTagCreate, func(e wecom.Event) bool { return e.ID == bronze.ID && e.TagType == wecom.TagTypeTag })
	must(s.UpdateTag(ctx, bronze.ID, "Copper", 9))
	expect(wecom.KindTagUpdate, func(e wecom.Event) bool { return e.ID == bronze.ID && e.TagType == wecom.TagTypeTag })
	must(s.ShuffleTags(ctx, tg.ID, []string{tg.Tags[1].ID, tg.Tags[0].ID, bronze.ID}))
	expect(wecom.KindTagShuffle, func(e wecom.Event) bool { return e.ID == tg.ID && e.TagType == "" })
	if got := s.TagGroups()[0].Tags; got[0].Name != "Silver" || got[2].Name != "Copper" {
		t.Errorf("tags after the shuffle = %+v", got)
	}

	must(s.EditContact(ctx, "amy", ext, func(f *wecomtest.Follow) {
		f.Remark, f.TagIDs = "big spender", []string{tg.Tags[0].ID, bronze.ID}
	}))
	expect(wecom.KindEditExternalContact, func(e wecom.Event) bool { return e.UserID == "amy" && e.ExternalUserID == ext })
	must(s.DeleteTag(ctx, bronze.ID))
	expect(wecom.KindTagDelete, func(e wecom.Event) bool { return e.ID == bronze.ID && e.TagType == wecom.TagTypeTag })
	if _, follows, _ := s.Contact(ext); !slices.Equal(follows[0].TagIDs, []string{tg.Tags[0].ID}) || follows[0].Remark != "big spender" {
		t.Errorf("amy's relation after the tag was deleted = %+v", follows[0])
	}

	g, err := s.CreateGroup(ctx, "amy", "VIP", "bob2")
	must(err)
	expect(wecom.KindChatCreate, nil)
	must(s.JoinGroup(ctx, g.ChatID, []string{ext}, wecom.JoinByInviteLink))
	expect(wecom.KindChatUpdate, func(e wecom.Event) bool {
		return e.UpdateDetail == wecom.UpdateAddMember && e.JoinScene == wecom.JoinSceneInvited
	})
	must(s.LeaveGroup(ctx, g.ChatID, []string{ext}, wecom.QuitSceneRemoved))
	expect(wecom.KindChatUpdate, func(e wecom.Event) bool { return e.UpdateDetail == wecom.UpdateDelMember && e.QuitScene == 1 })
	must(s.ChangeGroupOwner(ctx, g.ChatID, "bob2"))
	expect(wecom.KindChatUpdate, func(e wecom.Event) bool { return e.UpdateDetail == wecom.UpdateChangeOwner })
	must(s.ChangeGroupName(ctx, g.ChatID, "VIP 2"))
	expect(wecom.KindChatUpdate, func(e wecom.Event) bool { return e.UpdateDetail == wecom.UpdateChangeName })
	must(s.ChangeGroupNotice(ctx, g.ChatID, "Sale on Friday"))
	expect(wecom.KindChatUpdate, func(e wecom.Event) bool { return e.UpdateDetail == wecom.UpdateChangeNotice })
	if got, _ := s.Group(g.ChatID); got.Owner != "bob2" || got.Name != "VIP 2" || got.Notice != "Sale on Friday" || len(got.Members) != 2 {
		t.Errorf("group = %+v", got)
	}
	must(s.DismissGroup(ctx, g.ChatID))
	expect(wecom.KindChatDismiss, nil)

	_, err = s.AddStaff(ctx, wecomtest.Staff{UserID: "cat"})
	must(err)
	expect(wecom.KindCreateUser, nil)
	must(s.FailTransfer(ctx, "cat", ext, wecom.FailReasonCustomerRefused))
	expect(wecom.KindTransferFail, func(e wecom.Event) bool { return e.UserID == "cat" && e.FailReason == wecom.FailReasonCustomerRefused })
	must(s.TransferContact(ctx, "amy", "cat", ext))
	expect(wecom.KindDelExternalContact, func(e wecom.Event) bool { return e.UserID == "amy" && e.Source == wecom.SourceDeleteByTransfer })
	expect(wecom.KindAddExternalContact, func(e wecom.Event) bool { return e.UserID == "cat" && e.ExternalUserID == ext && e.WelcomeCode == "" })
	if _, follows, _ := s.Contact(ext); len(follows) != 2 || follows[1].UserID != "cat" || follows[1].Remark != "big spender" {
		t.Errorf("relations after the transfer = %+v", follows)
	}
	must(s.TransferContact(ctx, "cat", "amy", ext))
	expect(wecom.KindDelExternalContact, nil)
	expect(wecom.KindAddExternalContact, nil)

	must(s.CustomerDeletesStaff(ctx, "bob2", ext))
	expect(wecom.KindDelFollowUser, func(e wecom.Event) bool { return e.UserID == "bob2" && e.ExternalUserID == ext })
	must(s.StaffDeletesCustomer(ctx, "amy", ext))
	expect(wecom.KindDelExternalContact, func(e wecom.Event) bool { return e.UserID == "amy" && e.Source == "" })
	if n, f := s.Counts(); n != 0 || f != 0 {
		t.Errorf("after both deletions: %d customers, %d relations", n, f)
	}
	must(s.DeleteTag(ctx, tg.ID))
	expect(wecom.KindTagDelete, func(e wecom.Event) bool { return e.TagType == wecom.TagTypeTagGroup })
	must(s.DeleteStaff(ctx, "amy"))
	expect(wecom.KindDeleteUser, func(e wecom.Event) bool { return e.UserID == "amy" })
	tok := url.Values{"access_token": {token(t, s)}}
	if got := raw(t, s, "GET", "externalcontact/get_follow_user_list", tok, nil)["follow_user"]; !reflect.DeepEqual(got, []any{"bob2", "cat"}) {
		t.Errorf("follow users after amy left = %v", got)
	}
	if got := code(raw(t, s, "GET", "user/get", url.Values{"access_token": tok["access_token"], "userid": {"amy"}}, nil)); got != wecom.CodeUserNotFound {
		t.Errorf("user/get of a deleted member: errcode %d", got)
	}
	r.none()
	for _, d := range s.Deliveries() {
		if !d.OK || d.Attempt != 1 {
			t.Errorf("delivery %+v", d)
		}
	}
}

func TestCallbackRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{CallbackTimeout: 500 * time.Millisecond})
	r := newReceiver(t, s)
	r.fail <- struct{}{}
	r.slow <- struct{}{} // the second attempt times out
	if _, err := s.AddStaff(ctx, wecomtest.Staff{UserID: "amy"}); err != nil {
		t.Fatal(err)
	}
	r.next()
	var attempts []string
	for _, d := range s.Deliveries() {
		attempts = append(attempts, fmt.Sprintf("%d:%d:%v", d.Seq, d.Attempt, d.OK))
	}
	if want := []string{"1:1:false", "1:2:false", "1:3:true"}; !slices.Equal(attempts, want) {
		t.Errorf("attempts = %v, want %v", attempts, want)
	}
	// The timed-out attempt may still have reached the receiver: Siyu sees
	// the same event twice and must deduplicate.
	select {
	case ev := <-r.events:
		if ev.Kind() != wecom.KindCreateUser {
			t.Errorf("late duplicate = %s", ev.Kind())
		}
	case <-time.After(2 * time.Second):
	}

	// A receiver that never answers "success" gets 1 + 3 attempts.
	for range 4 {
		r.fail <- struct{}{}
	}
	if _, err := s.AddStaff(ctx, wecomtest.Staff{UserID: "bob"}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range s.Deliveries() {
		if d.Seq == 2 {
			n++
			if d.OK || d.Status != http.StatusInternalServerError {
				t.Errorf("delivery %+v", d)
			}
		}
	}
	if n != 4 {
		t.Errorf("attempts at an unhealthy receiver = %d, want 4", n)
	}
	if err := s.Redeliver(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if ev := r.next(); ev.UserID != "bob" {
		t.Errorf("redelivered %+v", ev)
	}
}

func TestHoldAndReleaseOutOfOrderDuplicatedAndDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	r := newReceiver(t, s)
	if _, err := s.PutStaff(wecomtest.Staff{UserID: "amy"}); err != nil {
		t.Fatal(err)
	}
	g, err := s.PutGroup(wecomtest.Group{Owner: "amy", Name: "VIP"})
	if err != nil {
		t.Fatal(err)
	}
	s.HoldCallbacks()
	var exts []string
	for range 3 {
		a, err := s.AddContact(ctx, "amy", wecomtest.Contact{}, "")
		if err != nil {
			t.Fatal(err)
		}
		exts = append(exts, a.Contact.ExternalUserID)
	}
	for _, e := range exts {
		if err := s.JoinGroup(ctx, g.ChatID, []string{e}, wecom.JoinByQRCode); err != nil {
			t.Fatal(err)
		}
	}
	r.none()
	held := s.Held()
	if len(held) != 6 {
		t.Fatalf("held %d callbacks, want 6", len(held))
	}
	// Deliver the third join first, the first add twice, drop the second join.
	if err := s.Release(ctx, 5, 0, 0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 6 {
		ev := r.next()
		got = append(got, ev.ExternalUserID+ev.CurMemVer)
	}
	r.none()
	if got[1] != got[2] || got[1] != exts[0] {
		t.Errorf("the duplicate did not arrive twice: %v", got)
	}
	// The member versions show the gap: the last join's LastMemVer is not
	// the CurMemVer of any join delivered before it.
	join := func(i int) wecom.Event {
		ev, err := wecom.ParseEvent(held[i].Message)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	if join(3).LastMemVer != g.MemberVersion || join(4).LastMemVer != join(3).CurMemVer || join(5).LastMemVer != join(4).CurMemVer {
		t.Error("member versions do not chain")
	}
	final, _ := s.Group(g.ChatID)
	if final.MemberVersion != join(5).CurMemVer || len(final.Members) != 4 {
		t.Errorf("group version %s members %d", final.MemberVersion, len(final.Members))
	}
	s.ResumeCallbacks()
	if _, err := s.AddContact(ctx, "amy", wecomtest.Contact{}, ""); err != nil {
		t.Fatal(err)
	}
	if ev := r.next(); ev.Kind() != wecom.KindAddExternalContact {
		t.Errorf("after resuming: %s", ev.Kind())
	}
}

func TestPopulateIsReproducible(t *testing.T) {
	t.Parallel()
	build := func() *wecomtest.Corp {
		c := wecomtest.NewCorp(wecomtest.CorpOptions{Seed: 42})
		if err := wecomtest.Populate(c, 2000, 20, 42); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := build(), build()
	contacts, follows := a.Counts()
	if contacts != 2000 || follows < 2100 || follows > 2400 {
		t.Errorf("populated %d customers with %d relations", contacts, follows)
	}
	if !reflect.DeepEqual(a.Contacts(), b.Contacts()) || !reflect.DeepEqual(a.FollowsOf("staff0003"), b.FollowsOf("staff0003")) ||
		!reflect.DeepEqual(a.Groups(), b.Groups()) {
		t.Error("the same seed gave different corps")
	}
	if len(a.StaffList()) != 20 || len(a.Groups()) != 4 || len(a.TagGroups()) != 4 {
		t.Errorf("%d staff, %d groups, %d tag groups", len(a.StaffList()), len(a.Groups()), len(a.TagGroups()))
	}
	seen := map[string]bool{}
	for _, c := range a.Contacts() {
		if seen[c.ExternalUserID] || !strings.HasPrefix(c.ExternalUserID, "w") || len(c.ExternalUserID) != 30 {
			t.Fatalf("bad or duplicate external_userid %q", c.ExternalUserID)
		}
		seen[c.ExternalUserID] = true
	}
}

func BenchmarkPopulate100k(b *testing.B) {
	for b.Loop() {
		c := wecomtest.NewCorp(wecomtest.CorpOptions{})
		if err := wecomtest.Populate(c, 100_000, 200, 1); err != nil {
			b.Fatal(err)
		}
	}
}
