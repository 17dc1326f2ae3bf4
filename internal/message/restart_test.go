package message_test

import (
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/message"
)

// requireOnce checks that every customer of ext is in exactly one accepted
// template, and that Siyu's states agree with the simulator once everyone
// sent.
func requireOnce(t *testing.T, e *env, id int64, ext map[string]string) {
	t.Helper()
	n := e.perRecipient(t)
	for name, x := range ext {
		if n[x] != 1 {
			t.Fatalf("%s is in %d templates", name, n[x])
		}
	}
	e.sim.ConfirmAll()
	e.sim.Advance(pollEvery)
	e.drain(t)
	c := e.get(t, id)
	if c.Status != message.CampaignDone || c.Stats.Sent != int64(len(ext)) || c.Stats.Recipients != int64(len(ext)) {
		t.Fatalf("final %+v", c)
	}
	for _, r := range e.recipients(t, id, message.RecipientQuery{}) {
		m := e.sim.MassMessages()
		found := false
		for _, mm := range m {
			if mm.Status[r.Recipient] == 1 && mm.Sender == r.StaffUserID {
				found = true
			}
		}
		if r.Status != message.StatusSent || !found {
			t.Fatalf("recipient %+v: sent in Siyu %v, in WeCom %v", r, r.Status, found)
		}
	}
}

func TestRestartBetweenBatches(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{ChunkSize: 2})
		ext := corp3(t, e)
		if _, err := e.msgs.UpdateSettings(e.ctx, e.admin(), message.Settings{CapPolicy: "month",
			Pacing: map[string]int{message.ChannelWeComCustomer: 60}}); err != nil {
			t.Fatal(err)
		}
		c := e.campaign(t, "重启", message.Target{})
		if _, err := e.msgs.SendCampaign(e.ctx, e.admin(), c.ID); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		if n := len(e.sim.MassMessages()); n != 3 {
			t.Fatalf("%d delivered before the restart, want 3 (zhangsan's second waits)", n)
		}
		// Siyu stops here and a new process starts on the same database.
		e.msgs = e.start()
		e.drain(t)
		e.sim.Advance(time.Minute)
		e.drain(t)
		if n := len(e.sim.MassMessages()); n != 4 {
			t.Fatalf("%d delivered after the restart, want 4", n)
		}
		requireOnce(t, e, c.ID, ext)
	})
}

func TestRestartWithBatchInDoubt(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{ChunkSize: 2})
		ext := corp3(t, e)
		c := e.campaign(t, "答复丢失", message.Target{})
		if _, err := e.msgs.SendCampaign(e.ctx, e.admin(), c.ID); err != nil {
			t.Fatal(err)
		}
		// WeCom creates the first template but its answer is lost.
		e.sim.FailNextHTTP("externalcontact/add_msg_template", -1, 1)
		e.drain(t)
		if n := len(e.sim.MassMessages()); n != 4 {
			t.Fatalf("%d templates, want 4", n)
		}
		if n := e.count(t, `SELECT count(*) FROM message_batches WHERE status = 'submitting'`); n != 1 {
			t.Fatalf("%d batches in doubt", n)
		}
		// Nothing is sent again while the batch is in doubt, and a restart
		// resolves it by looking it up in WeCom.
		e.drain(t)
		e.msgs = e.start()
		e.sim.Advance(31 * time.Second)
		e.drain(t)
		if n := len(e.sim.MassMessages()); n != 4 {
			t.Fatalf("%d templates after the restart, want 4", n)
		}
		if n := e.count(t, `SELECT count(*) FROM message_batches WHERE status = 'submitted' AND remote_id <> ''`); n != 4 {
			t.Fatalf("%d batches submitted", n)
		}
		if e.sim.CallCount("externalcontact/get_groupmsg_list_v2") == 0 {
			t.Fatal("the batch in doubt was not looked up")
		}
		requireOnce(t, e, c.ID, ext)
	})
}

func TestRestartAfterMarkingSubmitting(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{ChunkSize: 2})
		ext := corp3(t, e)
		c := e.campaign(t, "崩溃", message.Target{})
		if _, err := e.msgs.SendCampaign(e.ctx, e.admin(), c.ID); err != nil {
			t.Fatal(err)
		}
		// A worker marked a batch submitting and died before calling WeCom.
		now := e.sim.Now().UnixMilli()
		var id int64
		if err := e.d.QueryRowContext(e.ctx, `SELECT min(id) FROM message_batches WHERE campaign_id = $1`, c.ID).Scan(&id); err != nil {
			t.Fatal(err)
		}
		e.exec(t, `UPDATE message_batches SET status = 'submitting', submit_at = $2, lease_owner = 'dead', lease_until = $3 WHERE id = $1`,
			id, now, now+2*60*1000)
		e.msgs = e.start()
		e.drain(t)
		if n := len(e.sim.MassMessages()); n != 3 {
			t.Fatalf("%d templates while the dead worker holds its batch, want 3", n)
		}
		e.sim.Advance(2*time.Minute + time.Second)
		e.drain(t)
		if n := len(e.sim.MassMessages()); n != 4 {
			t.Fatalf("%d templates, want 4", n)
		}
		requireOnce(t, e, c.ID, ext)
	})
}

func TestWelcomeInDoubt(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{})
		e.staff(t, "zhangsan")
		add, err := e.sim.AddContact(e.ctx, "zhangsan", wecomtest.Contact{Name: "a"}, "")
		if err != nil {
			t.Fatal(err)
		}
		e.sim.FailNextHTTP("externalcontact/send_welcome_msg", -1, 1)
		id, _ := e.enqueue(t, message.Envelope{TenantID: e.ws.ID, Channel: message.ChannelWeComWelcome, Key: "w", Account: "zhangsan",
			Recipient: add.Contact.ExternalUserID, Content: message.Content{Text: "hi"}, Params: map[string]string{"welcome_code": add.WelcomeCode},
			NotAfter: e.sim.Now().Add(20 * time.Second)})
		e.drain(t)
		e.msgs = e.start()
		e.sim.Advance(31 * time.Second)
		e.drain(t)
		// WeCom got it once; Siyu cannot know, and says so rather than
		// "sent" or "expired".
		if n := len(e.sim.WelcomeMessages()); n != 1 {
			t.Fatalf("%d welcome messages", n)
		}
		if r := e.envelope(t, id); r.Status != message.StatusFailed || r.Reason != message.ReasonOutcomeUnknow {
			t.Fatalf("envelope %+v", r)
		}
	})
}
