package message_test

import (
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/message"
)

func TestWelcomeMessages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{})
		e.staff(t, "zhangsan")
		welcome := func(key string) (message.Envelope, wecomtest.AddResult) {
			add, err := e.sim.AddContact(e.ctx, "zhangsan", wecomtest.Contact{Name: key}, "")
			if err != nil {
				t.Fatal(err)
			}
			return message.Envelope{TenantID: e.ws.ID, Channel: message.ChannelWeComWelcome, Key: "welcome:" + key, Account: "zhangsan",
				Recipient: add.Contact.ExternalUserID, Content: message.Content{Text: "你好 " + key, Attachments: []message.Attachment{
					{Kind: "link", Title: "会员中心", URL: "https://example.com/m"}}},
				Params: map[string]string{"welcome_code": add.WelcomeCode}, NotAfter: e.sim.Now().Add(20 * time.Second), Source: "test"}, add
		}

		// Within the window: sent, once, however often it is enqueued.
		env, add := welcome("a")
		id, created := e.enqueue(t, env)
		if again, created2 := e.enqueue(t, env); !created || created2 || again != id {
			t.Fatalf("enqueue twice: %d %v, %d %v", id, created, again, created2)
		}
		e.drain(t)
		if r := e.envelope(t, id); r.Status != message.StatusSent || r.SentAt.IsZero() {
			t.Fatalf("welcome a: %+v", r)
		}
		if w := e.sim.WelcomeMessages(); len(w) != 1 || w[0].ExternalUserID != add.Contact.ExternalUserID || w[0].Message.Text.Content != "你好 a" ||
			len(w[0].Message.Attachments) != 1 || w[0].Message.Attachments[0].Link.URL != "https://example.com/m" {
			t.Fatalf("welcome messages %+v", w)
		}

		// Past its deadline before delivery: expired, never sent.
		env, _ = welcome("b")
		id, _ = e.enqueue(t, env)
		e.sim.Advance(21 * time.Second)
		calls := e.sim.CallCount("externalcontact/send_welcome_msg")
		e.drain(t)
		if r := e.envelope(t, id); r.Status != message.StatusExpired || r.Reason != message.ReasonDeadline {
			t.Fatalf("welcome b: %+v", r)
		}
		if e.sim.CallCount("externalcontact/send_welcome_msg") != calls {
			t.Fatal("an expired welcome message was sent")
		}

		// WeCom finds the code used or expired: expired (code_invalid).
		env, _ = welcome("c")
		env.NotAfter = time.Time{}
		id, _ = e.enqueue(t, env)
		e.sim.Advance(21 * time.Second)
		e.drain(t)
		if r := e.envelope(t, id); r.Status != message.StatusExpired || r.Reason != message.ReasonCodeInvalid || r.ErrorCode != "wecom_41050" {
			t.Fatalf("welcome c: %+v", r)
		}

		// The customer already chatted (41051): failed with that reason,
		// not retried.
		env, add = welcome("d")
		if err := e.sim.MarkChatted("zhangsan", add.Contact.ExternalUserID); err != nil {
			t.Fatal(err)
		}
		id, _ = e.enqueue(t, env)
		calls = e.sim.CallCount("externalcontact/send_welcome_msg")
		e.drain(t)
		e.sim.Advance(time.Hour)
		e.drain(t)
		if r := e.envelope(t, id); r.Status != message.StatusFailed || r.Reason != message.ReasonChatStarted || r.ErrorCode != "wecom_41051" {
			t.Fatalf("welcome d: %+v", r)
		}
		if n := e.sim.CallCount("externalcontact/send_welcome_msg") - calls; n != 1 {
			t.Fatalf("41051 was tried %d times", n)
		}

		// Quiet hours do not hold welcome messages back.
		if _, err := e.msgs.UpdateSettings(e.ctx, e.admin(), message.Settings{CapPolicy: "month", QuietStart: "00:00", QuietEnd: "23:59"}); err != nil {
			t.Fatal(err)
		}
		env, _ = welcome("e")
		id, _ = e.enqueue(t, env)
		e.drain(t)
		if r := e.envelope(t, id); r.Status != message.StatusSent {
			t.Fatalf("welcome e in quiet hours: %+v", r)
		}

		// Bad input is refused at once.
		env.Key, env.Channel = "x", "sms"
		if _, _, err := e.msgs.Enqueue(e.ctx, nil, env); err == nil {
			t.Fatal("an unknown channel was accepted")
		}
	})
}
