package wecom

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The samples in testdata/callbacks are modelled on the examples of WeCom's
// event docs for self-built apps: customer contact events
// (developer.work.weixin.qq.com/document/path/92130) and directory events
// (…/90970); the JSON ones carry the same fields in WeCom's JSON mode.

const sampleCorp = "ww0123456789abcdef"

// sampleEvent is the header every sample shares.
func sampleEvent(event, change string) Event {
	return Event{
		ToUserName: sampleCorp, FromUserName: "sys", CreateTime: 1403610513,
		MsgType: MsgTypeEvent, Event: event, ChangeType: change,
	}
}

func withFields(e Event, f func(*Event)) Event { f(&e); return e }

func TestParseEventSamples(t *testing.T) {
	t.Parallel()
	const (
		staff    = "zhangsan"
		customer = "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"
		chat     = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
		tag      = "etmnJ8CAAAwAV7pQnzGQIsJsVpHA3g6g"
		group    = "etmnJ8CAAA0n2FLlQ3PK7mUEJ-jE4kPQ"
		avatar   = "http://wx.qlogo.cn/mmopen/ajNVdqHZLLA3WJ6DSZUfiakYe37PKnQhBIeOQBO4czqrnZDS79FH5Wm5m4X69TBicnHFlhiafvDwklOpZeXYQQ2icg/0"
	)
	contact := func(change string, f func(*Event)) Event {
		return withFields(sampleEvent(EventChangeExternalContact, change), func(e *Event) {
			e.UserID, e.ExternalUserID = staff, customer
			if f != nil {
				f(e)
			}
		})
	}
	chatUpdate := func(detail string, f func(*Event)) Event {
		return withFields(sampleEvent(EventChangeExternalChat, ChangeChatUpdate), func(e *Event) {
			e.ChatID, e.UpdateDetail = chat, detail
			if f != nil {
				f(e)
			}
		})
	}
	addMember := chatUpdate(UpdateAddMember, func(e *Event) {
		e.JoinScene, e.MemChangeCnt = JoinSceneQRCode, 2
		e.MemChangeList = []string{"wmOgQhDgAAuXFJGwbve4g4iXknfOAAAA", staff}
		e.LastMemVer, e.CurMemVer = "9c3f97c2ada667dfb5f6d03308d963e1", "71217227bbd112ecfe3a49c482195cb4"
	})
	createUser := withFields(sampleEvent(EventChangeContact, ChangeCreateUser), func(e *Event) {
		e.UserID, e.Name, e.Position, e.Alias, e.Avatar, e.Status = staff, "张三", "产品经理", staff, avatar, 1
		e.Department, e.MainDepartment, e.IsLeaderInDept = []int64{1, 2, 3}, 1, []int{1, 0, 0}
		e.DirectLeader = []string{"lisi", "wangwu"}
	})
	tagCreate := withFields(sampleEvent(EventChangeExternalTag, ChangeTagCreate), func(e *Event) {
		e.ID, e.TagType, e.StrategyID = tag, TagTypeTag, 1
	})
	addContact := contact(ChangeAddExternalContact, func(e *Event) { e.State, e.WelcomeCode = "teststate", "WELCOMECODE" })

	cases := []struct {
		file string
		kind Kind
		want Event
	}{
		{"add_external_contact.xml", KindAddExternalContact, addContact},
		{"add_external_contact.json", KindAddExternalContact, addContact},
		{"edit_external_contact.xml", KindEditExternalContact, contact(ChangeEditExternalContact, nil)},
		{"add_half_external_contact.xml", KindAddHalfExternalContact, contact(ChangeAddHalfExternalContact, func(e *Event) {
			e.ExternalUserID, e.State, e.WelcomeCode = "woAJ2GCAAAXtWyujaWJHDDGi0mACBBBB", "teststate", "WELCOMECODE"
		})},
		{"del_external_contact.xml", KindDelExternalContact, contact(ChangeDelExternalContact, func(e *Event) { e.Source = SourceDeleteByTransfer })},
		{"del_follow_user.xml", KindDelFollowUser, contact(ChangeDelFollowUser, nil)},
		{"transfer_fail.xml", KindTransferFail, contact(ChangeTransferFail, func(e *Event) { e.FailReason = FailReasonCustomerRefused })},
		{"chat_create.xml", KindChatCreate, withFields(sampleEvent(EventChangeExternalChat, ChangeChatCreate), func(e *Event) { e.ChatID = chat })},
		{"chat_update_add_member.xml", KindChatUpdate, addMember},
		{"chat_update_add_member.json", KindChatUpdate, addMember},
		{"chat_update_del_member.xml", KindChatUpdate, chatUpdate(UpdateDelMember, func(e *Event) {
			e.QuitScene, e.MemChangeCnt = QuitSceneRemoved, 1
			e.MemChangeList = []string{"wmOgQhDgAAuXFJGwbve4g4iXknfOAAAA"}
			e.LastMemVer, e.CurMemVer = "71217227bbd112ecfe3a49c482195cb4", "0b5fb2bd6e8e6c3b20e1f8f4b8e5a1c7"
		})},
		{"chat_update_change_owner.xml", KindChatUpdate, chatUpdate(UpdateChangeOwner, nil)},
		{"chat_update_change_name.xml", KindChatUpdate, chatUpdate(UpdateChangeName, nil)},
		{"chat_update_change_notice.xml", KindChatUpdate, chatUpdate(UpdateChangeNotice, nil)},
		{"chat_dismiss.xml", KindChatDismiss, withFields(sampleEvent(EventChangeExternalChat, ChangeChatDismiss), func(e *Event) { e.ChatID = chat })},
		{"tag_create.xml", KindTagCreate, tagCreate},
		{"tag_create.json", KindTagCreate, tagCreate},
		{"tag_update.xml", KindTagUpdate, withFields(sampleEvent(EventChangeExternalTag, ChangeTagUpdate), func(e *Event) { e.ID, e.TagType = group, TagTypeTagGroup })},
		{"tag_delete.xml", KindTagDelete, withFields(sampleEvent(EventChangeExternalTag, ChangeTagDelete), func(e *Event) { e.ID, e.TagType, e.StrategyID = tag, TagTypeTag, 1 })},
		{"tag_shuffle.xml", KindTagShuffle, withFields(sampleEvent(EventChangeExternalTag, ChangeTagShuffle), func(e *Event) { e.ID, e.StrategyID = group, 1 })},
		{"create_user.xml", KindCreateUser, createUser},
		{"create_user.json", KindCreateUser, createUser},
		{"update_user.xml", KindUpdateUser, withFields(sampleEvent(EventChangeContact, ChangeUpdateUser), func(e *Event) {
			e.UserID, e.NewUserID, e.Name, e.Position, e.Status = staff, "zhangsan001", "张三", "运营", 1
			e.Department, e.MainDepartment, e.IsLeaderInDept = []int64{1, 2}, 2, []int{0, 1}
		})},
		{"delete_user.xml", KindDeleteUser, withFields(sampleEvent(EventChangeContact, ChangeDeleteUser), func(e *Event) { e.UserID = staff })},
		{"create_party.xml", KindCreateParty, withFields(sampleEvent(EventChangeContact, ChangeCreateParty), func(e *Event) {
			e.ID, e.Name, e.ParentID, e.Order = "2", "张三", "1", 1
		})},
		{"update_party.xml", KindUpdateParty, withFields(sampleEvent(EventChangeContact, ChangeUpdateParty), func(e *Event) {
			e.ID, e.Name, e.ParentID = "2", "华南运营", "1"
		})},
		{"delete_party.xml", KindDeleteParty, withFields(sampleEvent(EventChangeContact, ChangeDeleteParty), func(e *Event) { e.ID = "2" })},
		{"update_tag.xml", KindUpdateTag, withFields(sampleEvent(EventChangeContact, ChangeUpdateTag), func(e *Event) {
			e.TagID = "1"
			e.AddUserItems, e.DelUserItems = []string{"zhangsan", "lisi"}, []string{"zhangsan1", "lisi1"}
			e.AddPartyItems, e.DelPartyItems = []int64{1, 2}, []int64{3, 4}
		})},
		{"unknown_event.xml", "change_external_contact/customer_acquisition_quota_used_up",
			sampleEvent(EventChangeExternalContact, "customer_acquisition_quota_used_up")},
	}

	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.file] = true
		raw, err := os.ReadFile(filepath.Join("testdata", "callbacks", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseEvent(raw)
		if err != nil {
			t.Errorf("%s: ParseEvent: %v", tc.file, err)
			continue
		}
		if string(got.Raw) != string(raw) {
			t.Errorf("%s: Raw is not the message as received", tc.file)
		}
		wantFormat := FormatXML
		if strings.HasSuffix(tc.file, ".json") {
			wantFormat = FormatJSON
		}
		if got.Format != wantFormat {
			t.Errorf("%s: Format = %s", tc.file, got.Format)
		}
		if got.Kind() != tc.kind {
			t.Errorf("%s: Kind = %q, want %q", tc.file, got.Kind(), tc.kind)
		}
		if known := tc.file != "unknown_event.xml"; got.Kind().Known() != known {
			t.Errorf("%s: Known = %v", tc.file, !known)
		}
		got.Raw, got.Format = nil, ""
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: ParseEvent =\n%+v\nwant\n%+v", tc.file, got, tc.want)
		}
	}

	// Every sample is in the table, so a new one cannot go untested.
	files, _ := filepath.Glob(filepath.Join("testdata", "callbacks", "*"))
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("testdata/callbacks/%s is not in the table", filepath.Base(f))
		}
	}
}

// TestParseEventThroughCrypto sends every sample the way WeCom does,
// encrypted in its envelope, and reads it back, so the simulator's path and
// the handler's path are the same code.
func TestParseEventThroughCrypto(t *testing.T) {
	t.Parallel()
	c, err := NewCrypt("Token123", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", sampleCorp)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "callbacks", "*"))
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		want, err := ParseEvent(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		format := want.Format
		body, sig, err := c.EncryptEnvelope(raw, "1000002", "1403610514", "nonce", format)
		if err != nil {
			t.Fatal(err)
		}
		msg, env, err := c.DecryptEnvelope(sig, "1403610514", "nonce", body)
		if err != nil || env.Format != format {
			t.Fatalf("%s: DecryptEnvelope: %v (format %s)", f, err, env.Format)
		}
		got, err := ParseEvent(msg)
		if err != nil || got.Key() != want.Key() || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: through crypto = %+v, %v", f, got, err)
		}
	}
}

func TestEventKey(t *testing.T) {
	t.Parallel()
	parse := func(s string) Event {
		t.Helper()
		e, err := ParseEvent([]byte(s))
		if err != nil {
			t.Fatalf("ParseEvent(%s): %v", s, err)
		}
		return e
	}
	add := func(ext string, created string) string {
		return `<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName>sys</FromUserName><CreateTime>` + created +
			`</CreateTime><MsgType>event</MsgType><Event>change_external_contact</Event><ChangeType>add_external_contact</ChangeType>` +
			`<UserID>zhangsan</UserID><ExternalUserID>` + ext + `</ExternalUserID><State>s</State><WelcomeCode>W</WelcomeCode></xml>`
	}
	a := parse(add("wmA", "1700000000"))

	// A retry is the same message again: same key.
	if parse(add("wmA", "1700000000")).Key() != a.Key() {
		t.Error("a retried callback has a different key")
	}
	// The same event in JSON, or laid out differently, is the same event.
	sameJSON := parse(`{"ToUserName":"ww1","FromUserName":"sys","CreateTime":1700000000,"MsgType":"event","Event":"change_external_contact",` +
		`"ChangeType":"add_external_contact","UserID":"zhangsan","ExternalUserID":"wmA","State":"s","WelcomeCode":"W"}`)
	if sameJSON.Key() != a.Key() {
		t.Error("the same event in JSON has a different key")
	}
	if want := "change_external_contact/add_external_contact@1700000000#"; !strings.HasPrefix(a.Key(), want) || len(a.Key()) != len(want)+32 {
		t.Errorf("Key = %q, want %q + 32 hex digits", a.Key(), want)
	}

	// Two customers added in the same second are two events.
	differ := map[string]string{
		"another customer, same second": add("wmB", "1700000000"),
		"same customer, another second": add("wmA", "1700000001"),
		"another staff member":          strings.Replace(add("wmA", "1700000000"), "zhangsan", "lisi", 1),
		"another corp":                  strings.Replace(add("wmA", "1700000000"), "ww1", "ww2", 1),
		"another change":                strings.Replace(add("wmA", "1700000000"), "add_external_contact", "del_follow_user", 1),
	}
	for name, msg := range differ {
		if parse(msg).Key() == a.Key() {
			t.Errorf("%s: same key as the first add", name)
		}
	}

	chatMsg := func(detail string, members ...string) string {
		items := ""
		for _, m := range members {
			items += "<Item>" + m + "</Item>"
		}
		return `<xml><ToUserName>ww1</ToUserName><CreateTime>1700000000</CreateTime><MsgType>event</MsgType>` +
			`<Event>change_external_chat</Event><ChatId>wr1</ChatId><ChangeType>update</ChangeType><UpdateDetail>` + detail +
			`</UpdateDetail><MemChangeList>` + items + `</MemChangeList><LastMemVer>v1</LastMemVer><CurMemVer>v2</CurMemVer></xml>`
	}
	joined := parse(chatMsg(UpdateAddMember, "wmA", "wmB"))
	if parse(chatMsg(UpdateAddMember, "wmA", "wmB")).Key() != joined.Key() {
		t.Error("a retried group change has a different key")
	}
	for name, msg := range map[string]string{
		"other members":   chatMsg(UpdateAddMember, "wmA", "wmC"),
		"fewer members":   chatMsg(UpdateAddMember, "wmA"),
		"split members":   chatMsg(UpdateAddMember, "wm", "AwmB"),
		"members leaving": chatMsg(UpdateDelMember, "wmA", "wmB"),
		"other versions":  strings.Replace(chatMsg(UpdateAddMember, "wmA", "wmB"), "v2", "v3", 1),
	} {
		if parse(msg).Key() == joined.Key() {
			t.Errorf("group change with %s has the same key", name)
		}
	}

	tagMsg := func(id, typ string) string {
		return `<xml><ToUserName>ww1</ToUserName><CreateTime>1700000000</CreateTime><MsgType>event</MsgType>` +
			`<Event>change_external_tag</Event><Id>` + id + `</Id><TagType>` + typ + `</TagType><ChangeType>create</ChangeType></xml>`
	}
	if parse(tagMsg("et1", TagTypeTag)).Key() == parse(tagMsg("et2", TagTypeTag)).Key() ||
		parse(tagMsg("et1", TagTypeTag)).Key() == parse(tagMsg("et1", TagTypeTagGroup)).Key() {
		t.Error("different tags created in the same second have the same key")
	}

	// Unknown events have no known identity fields: their raw text tells
	// them apart.
	unknown := func(link string) string {
		return `<xml><ToUserName>ww1</ToUserName><CreateTime>1700000000</CreateTime><MsgType>event</MsgType>` +
			`<Event>change_external_contact</Event><ChangeType>customer_acquisition_quota_used_up</ChangeType><LinkId>` + link + `</LinkId></xml>`
	}
	first, retried := parse(unknown("l1")), parse(unknown("l1"))
	if first.Key() == parse(unknown("l2")).Key() {
		t.Error("two different unknown events in the same second have the same key")
	}
	if first.Key() != retried.Key() {
		t.Error("a retried unknown event has a different key")
	}
}

func TestParseEventLenient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, msg string
		check     func(Event) bool
	}{
		{"members as comma-separated text", `<xml><MsgType>event</MsgType><MemChangeList><![CDATA[wmA,wmB]]></MemChangeList></xml>`,
			func(e Event) bool { return reflect.DeepEqual(e.MemChangeList, []string{"wmA", "wmB"}) }},
		{"no members", `<xml><MsgType>event</MsgType><MemChangeList></MemChangeList></xml>`,
			func(e Event) bool { return e.MemChangeList == nil }},
		{"JSON members as an array", `{"MsgType":"event","MemChangeList":["wmA","wmB"]}`,
			func(e Event) bool { return reflect.DeepEqual(e.MemChangeList, []string{"wmA", "wmB"}) }},
		{"JSON single member item", `{"MsgType":"event","MemChangeList":{"Item":"wmA"}}`,
			func(e Event) bool { return reflect.DeepEqual(e.MemChangeList, []string{"wmA"}) }},
		{"JSON null fields", `{"MsgType":"event","UserID":null,"MemChangeList":null,"StrategyId":null}`,
			func(e Event) bool { return e.UserID == "" && e.MemChangeList == nil && e.StrategyID == 0 }},
		{"numbers in CDATA with spaces", `<xml><MsgType>event</MsgType><CreateTime><![CDATA[ 1700000000 ]]></CreateTime><StrategyId> 7 </StrategyId></xml>`,
			func(e Event) bool { return e.CreateTime == 1700000000 && e.StrategyID == 7 }},
		{"large MsgId kept exact", `{"MsgType":"text","MsgId":4561255354251345929}`,
			func(e Event) bool { return e.MsgID == "4561255354251345929" }},
		{"unknown elements and objects ignored", `{"MsgType":"event","Name":{"x":1},"Extra":[{"a":1}]}`,
			func(e Event) bool { return e.Name == "" }},
		{"nested Name in ExtAttr does not leak", `<xml><MsgType>event</MsgType><ExtAttr><Item><Name>爱好</Name></Item></ExtAttr></xml>`,
			func(e Event) bool { return e.Name == "" }},
	} {
		e, err := ParseEvent([]byte(tc.msg))
		if err != nil || !tc.check(e) {
			t.Errorf("%s: ParseEvent = %+v, %v", tc.name, e, err)
		}
	}
}

func TestParseEventRejects(t *testing.T) {
	t.Parallel()
	for name, msg := range map[string]string{
		"empty":                   "",
		"plain text":              "success",
		"wrong root":              "<message><MsgType>event</MsgType></message>",
		"unterminated":            "<xml><MsgType>event</MsgType>",
		"no MsgType":              "<xml><Event>change_external_contact</Event></xml>",
		"CreateTime not a number": "<xml><MsgType>event</MsgType><CreateTime>yesterday</CreateTime></xml>",
		"bad department":          "<xml><MsgType>event</MsgType><Department>1,x</Department></xml>",
		"JSON array":              `[{"MsgType":"event"}]`,
		"JSON truncated":          `{"MsgType":"event"`,
		"JSON CreateTime":         `{"MsgType":"event","CreateTime":1.5}`,
	} {
		_, err := ParseEvent([]byte(msg))
		if !errors.Is(err, ErrBadEvent) {
			t.Errorf("%s: ParseEvent = %v, want ErrBadEvent", name, err)
		}
	}
}

func TestEventHelpers(t *testing.T) {
	t.Parallel()
	e := Event{MsgType: MsgTypeEvent, Event: EventChangeExternalChat, CreateTime: 1403610513}
	if e.Kind() != EventChangeExternalChat || e.Kind().Known() {
		t.Errorf("Kind without ChangeType = %q", e.Kind())
	}
	if got := e.Time().UTC().Format("2006-01-02T15:04:05Z"); got != "2014-06-24T11:48:33Z" {
		t.Errorf("Time = %s", got)
	}
	if (Event{MsgType: "text", Event: "x"}).Kind() != "text" {
		t.Error("a message's kind is not its MsgType")
	}
	if (Event{MsgType: MsgTypeEvent}).Kind() != MsgTypeEvent {
		t.Error("an event without an Event name has no kind")
	}
}

// FuzzParseEvent checks that no decrypted message makes ParseEvent panic,
// that it fails only with ErrBadEvent, and that a parsed event's key is a
// function of the message.
func FuzzParseEvent(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "callbacks", "*"))
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		e, err := ParseEvent(msg)
		if err != nil {
			if !errors.Is(err, ErrBadEvent) {
				t.Fatalf("ParseEvent error %v is not ErrBadEvent", err)
			}
			return
		}
		if e.MsgType == "" || e.Kind() == "" {
			t.Fatalf("parsed an event without MsgType: %+v", e)
		}
		again, err := ParseEvent(e.Raw)
		if err != nil || again.Key() != e.Key() {
			t.Fatalf("reparsing Raw: %v, key %s vs %s", err, again.Key(), e.Key())
		}
		if len(e.Key()) > 120 {
			t.Fatalf("key of %d bytes: %s", len(e.Key()), e.Key())
		}
	})
}
