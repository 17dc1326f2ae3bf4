package wecom_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// send POSTs a callback body with a signed query to a workspace's endpoint.
func (f *fixture) send(t *testing.T, slug string, q wecom.Query, body []byte) (int, string) {
	t.Helper()
	u := f.srv.URL + "/connect/wecom/" + slug + "/callback?" + q.Values().Encode()
	res, err := http.Post(u, "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// post encrypts msg with c (which may be wrong on purpose) and sends it.
func (f *fixture) post(t *testing.T, c *wecom.Crypt, msg string) (int, string) {
	t.Helper()
	ts, nonce := strconv.FormatInt(f.sim.Now().Unix(), 10), "1234567"
	body, sig, err := c.EncryptEnvelope([]byte(msg), "1000002", ts, nonce, wecom.FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	return f.send(t, "tea", wecom.Query{MsgSignature: sig, Timestamp: ts, Nonce: nonce}, body)
}

func (f *fixture) crypt(t *testing.T, token, key, corp string) *wecom.Crypt {
	t.Helper()
	c, err := wecom.NewCrypt(token, key, corp)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func eventXML(corp string, at int64, event, change string, fields ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>%d</CreateTime>"+
		"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[%s]]></Event><ChangeType><![CDATA[%s]]></ChangeType>", corp, at, event, change)
	for i := 0; i+1 < len(fields); i += 2 {
		fmt.Fprintf(&b, "<%s><![CDATA[%s]]></%s>", fields[i], fields[i+1], fields[i])
	}
	b.WriteString("</xml>")
	return b.String()
}

func TestCallbackURLVerification(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		if err := f.sim.VerifyCallbackURL(f.ctx); err != nil {
			t.Fatal(err)
		}
		st, err := f.svc.Settings(f.ctx, f.ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.VerifiedAt.IsZero() {
			t.Fatal("the verification is not recorded")
		}
		// A verification signed with another token is refused.
		other := f.crypt(t, "OtherToken", f.sim.EncodingAESKey(), f.sim.CorpID())
		echo, sig, err := other.Encrypt([]byte("hello"), "1", "2")
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.Get(f.srv.URL + "/connect/wecom/tea/callback?" + wecom.Query{MsgSignature: sig, Timestamp: "1", Nonce: "2", EchoStr: echo}.Values().Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("forged verification: %d", res.StatusCode)
		}
	})
}

// Every way a callback can be wrong gets its status, and forged ones a log
// line naming the workspace and the sender; nothing of them is stored.
func TestCallbackRefusals(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		corp, token, key := f.sim.CorpID(), f.sim.CallbackToken(), f.sim.EncodingAESKey()
		msg := eventXML(corp, f.sim.Now().Unix(), wecom.EventChangeExternalContact, wecom.ChangeDelFollowUser, "UserID", "zhangsan", "ExternalUserID", "wmX")

		if status, _ := f.post(t, f.crypt(t, "ForgedToken", key, corp), msg); status != http.StatusForbidden {
			t.Fatalf("forged signature: %d", status)
		}
		if logs := f.logs.String(); !contains(logs, "callback refused") || !contains(logs, "workspace=tea") || !contains(logs, "remote_addr=127.0.0.1") ||
			!contains(logs, "wecom_bad_signature") {
			t.Fatalf("the forged callback is not logged as such:\n%s", logs)
		}
		if status, _ := f.post(t, f.crypt(t, token, key, "wwSomeOtherCorp"), msg); status != http.StatusBadRequest {
			t.Fatalf("wrong corp: %d", status)
		}
		if !contains(f.logs.String(), "wecom_wrong_receive_id") {
			t.Fatalf("wrong corp not logged:\n%s", f.logs.String())
		}
		otherKey := strings.Repeat("A", 42) + "B"
		if status, _ := f.post(t, f.crypt(t, token, otherKey, corp), msg); status != http.StatusBadRequest {
			t.Fatalf("another EncodingAESKey: %d", status)
		}
		// Truncated ciphertext, signed as it is.
		good := f.crypt(t, token, key, corp)
		ct, _, err := good.Encrypt([]byte(msg), "1", "2")
		if err != nil {
			t.Fatal(err)
		}
		cut := ct[:len(ct)-44]
		body := wecom.Envelope{ToUserName: corp, Encrypt: cut, AgentID: "1000002"}.Marshal()
		if status, _ := f.send(t, "tea", wecom.Query{MsgSignature: good.Signature("1", "2", cut), Timestamp: "1", Nonce: "2"}, body); status != http.StatusBadRequest {
			t.Fatalf("truncated: %d", status)
		}
		if status, _ := f.send(t, "tea", wecom.Query{Timestamp: "1", Nonce: "2"}, body); status != http.StatusBadRequest {
			t.Fatalf("no signature: %d", status)
		}
		if status, _ := f.send(t, "tea", wecom.Query{MsgSignature: "x", Timestamp: "1", Nonce: "2"}, []byte("not a callback")); status != http.StatusBadRequest {
			t.Fatalf("garbage body: %d", status)
		}
		big := bytes.Repeat([]byte("x"), wecom.MaxCallbackBytes+10)
		if status, _ := f.send(t, "tea", wecom.Query{MsgSignature: "x", Timestamp: "1", Nonce: "2"}, big); status != http.StatusRequestEntityTooLarge {
			t.Fatalf("huge body: %d", status)
		}
		if status, _ := f.send(t, "nobody", wecom.Query{MsgSignature: "x", Timestamp: "1", Nonce: "2"}, body); status != http.StatusNotFound {
			t.Fatalf("unknown workspace: %d", status)
		}
		if _, err := f.tenants.CreateWorkspace(f.ctx, tenant.NewWorkspace{Slug: "milk", Name: "奶茶"}); err != nil {
			t.Fatal(err)
		}
		if status, _ := f.send(t, "milk", wecom.Query{MsgSignature: "x", Timestamp: "1", Nonce: "2"}, body); status != http.StatusNotFound {
			t.Fatalf("workspace without WeCom: %d", status)
		}
		if n := len(f.inbox(t)); n != 0 {
			t.Fatalf("%d refused callbacks stored", n)
		}
	})
}

// A callback is committed before it is answered, WeCom is not called while
// answering, and a redelivery is stored once and still answered success.
func TestCallbackStoredBeforeAnswerAndOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		res, err := f.sim.AddContact(f.ctx, "zhangsan", wecomtest.Contact{Name: "王五"}, "store-1")
		if err != nil {
			t.Fatal(err)
		}
		ds := f.sim.Deliveries()
		if len(ds) != 1 || !ds[0].OK || ds[0].Response != "success" {
			t.Fatalf("deliveries %+v", ds)
		}
		// Answered: the event is in the inbox, and WeCom was not asked anything.
		es := f.inbox(t)
		if len(es) != 1 || es[0].Status != wecom.InboxPending || es[0].Kind != string(wecom.KindAddExternalContact) ||
			!contains(es[0].Subject, res.Contact.ExternalUserID) {
			t.Fatalf("inbox %+v", es)
		}
		if n := f.sim.CallCount("externalcontact/get"); n != 0 {
			t.Fatalf("the endpoint called WeCom %d times", n)
		}
		if err := f.sim.Redeliver(f.ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := f.sim.Redeliver(f.ctx, 1); err != nil {
			t.Fatal(err)
		}
		es = f.inbox(t)
		if len(es) != 1 || es[0].Deliveries != 3 {
			t.Fatalf("after redeliveries: %+v", es)
		}
		f.drain(t)
		f.requireDone(t)
		if n := f.sim.CallCount("externalcontact/get"); n != 1 {
			t.Fatalf("processed %d times", n)
		}
		c := f.customerByExt(t, res.Contact.ExternalUserID)
		if kinds := f.timelineKinds(t, c.ID); len(kinds) != 1 {
			t.Fatalf("timeline %v", kinds)
		}
	})
}

// An event Siyu does not know is stored, shown and acknowledged; so is a
// signed message that is not an event at all.
func TestUnknownEventStoredAndAcknowledged(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		good := f.crypt(t, f.sim.CallbackToken(), f.sim.EncodingAESKey(), f.sim.CorpID())
		msg := eventXML(f.sim.CorpID(), f.sim.Now().Unix(), "change_external_future", "brand_new", "Id", "x1")
		if status, body := f.post(t, good, msg); status != http.StatusOK || body != "success" {
			t.Fatalf("unknown event answered %d %q", status, body)
		}
		if status, body := f.post(t, good, "this is not xml"); status != http.StatusOK || body != "success" {
			t.Fatalf("unreadable message answered %d %q", status, body)
		}
		f.drain(t)
		es := f.inbox(t)
		if len(es) != 2 || es[0].Status != wecom.InboxIgnored || es[0].Kind != "change_external_future/brand_new" || es[0].Note == "" ||
			!contains(es[0].Payload, "brand_new") || es[1].Status != wecom.InboxIgnored || es[1].Kind != "unreadable" {
			t.Fatalf("inbox %+v", es)
		}
	})
}

// JSON callbacks (an app set to JSON in WeCom's admin) work the same.
func TestJSONCallbacks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{format: wecom.FormatJSON})
		res, err := f.sim.AddContact(f.ctx, "lisi", wecomtest.Contact{Name: "赵六"}, "")
		if err != nil {
			t.Fatal(err)
		}
		if ds := f.sim.Deliveries(); len(ds) != 1 || !ds[0].OK {
			t.Fatalf("deliveries %+v", ds)
		}
		f.drain(t)
		f.requireDone(t)
		c := f.customerByExt(t, res.Contact.ExternalUserID)
		if r, ok := f.relation(t, c.ID, "lisi"); !ok || r.Status != "active" {
			t.Fatalf("relation %+v", r)
		}
	})
}
