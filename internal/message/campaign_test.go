package message_test

import (
	"slices"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/page"
)

// corp3 is three staff members and their customers: 茶1–茶4 with zhangsan,
// 茶5–茶6 with lisi, 茶7 with wangwu and then zhangsan (wangwu added first).
func corp3(t *testing.T, e *env) map[string]string {
	e.staff(t, "zhangsan", "lisi", "wangwu")
	ext := map[string]string{}
	for _, c := range []struct {
		name  string
		staff []string
	}{{"茶1", []string{"zhangsan"}}, {"茶2", []string{"zhangsan"}}, {"茶3", []string{"zhangsan"}}, {"茶4", []string{"zhangsan"}},
		{"茶5", []string{"lisi"}}, {"茶6", []string{"lisi"}}, {"茶7", []string{"wangwu", "zhangsan"}}} {
		ext[c.name] = e.contact(t, c.name, c.staff...)
	}
	e.sync(t)
	return ext
}

func TestCampaignSplitByStaffAndResults(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{ChunkSize: 2})
		ext := corp3(t, e)
		c := e.campaign(t, "新品上市", message.Target{})
		est, err := e.msgs.EstimateCampaign(e.ctx, e.ws.ID, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		// zhangsan 4 (2 batches), lisi 2 (1), wangwu 1 (1).
		if est.Targeted != 7 || est.Recipients != 7 || est.Staff != 3 || est.Batches != 4 || est.OverCap != 0 || est.NoRelation != 0 ||
			est.CapPolicy != "month" || est.CapLimit != 31 || len(est.PerStaff) != 3 || est.PerStaff[0].UserID != "zhangsan" || est.PerStaff[0].Name != "员工zhangsan" {
			t.Fatalf("estimate %+v", est)
		}
		// Preview: 茶7 goes through wangwu, who added them first.
		cust := e.customerByExt(t, ext["茶7"])
		pv, err := e.msgs.Preview(e.ctx, e.ws.ID, message.CampaignInput{Kind: message.KindCustomers, Target: message.Target{Condition: everyone()},
			Content: message.Content{Text: "{{customer_name}}，{{staff_name}}为您推荐"}}, cust.ID)
		if err != nil {
			t.Fatal(err)
		}
		if pv.StaffUserID != "wangwu" || pv.Text != "茶7，员工wangwu为您推荐" || pv.Skip != "" {
			t.Fatalf("preview %+v", pv)
		}

		if c, err = e.msgs.SendCampaign(e.ctx, e.admin(), c.ID); err != nil {
			t.Fatal(err)
		}
		if c.Status != message.CampaignSending || c.Stats.Recipients != 7 || c.Stats.Staff != 3 || c.Stats.Batches != 4 || c.Stats.Queued != 7 {
			t.Fatalf("planned %+v", c)
		}
		e.drain(t)
		mm := e.sim.MassMessages()
		if len(mm) != 4 {
			t.Fatalf("%d templates, want 4", len(mm))
		}
		owner := map[string]string{}
		for _, m := range mm {
			if len(m.Recipients) > 2 || m.ChatType != "single" || m.Text != "新品上市 from 员工"+m.Sender {
				t.Fatalf("template %+v", m)
			}
			for _, r := range m.Recipients {
				owner[r] = m.Sender
			}
		}
		if n := e.perRecipient(t); len(n) != 7 || owner[ext["茶7"]] != "wangwu" || owner[ext["茶5"]] != "lisi" || owner[ext["茶1"]] != "zhangsan" {
			t.Fatalf("recipients %v owners %v", n, owner)
		}
		if c = e.get(t, c.ID); c.Status != message.CampaignSent || c.Stats.Submitted != 7 {
			t.Fatalf("after delivery %+v", c)
		}

		// zhangsan sends his; lisi stops being 茶6's contact and then sends;
		// wangwu never sends.
		for _, m := range mm {
			switch m.Sender {
			case "zhangsan":
				if err := e.sim.StaffSends("zhangsan", m.MsgID); err != nil {
					t.Fatal(err)
				}
			case "lisi":
				if err := e.sim.StaffDeletesCustomer(e.ctx, "lisi", ext["茶6"]); err != nil {
					t.Fatal(err)
				}
				if err := e.sim.StaffSends("lisi", m.MsgID); err != nil {
					t.Fatal(err)
				}
			}
		}
		e.sim.Advance(pollEvery)
		e.drain(t)
		c = e.get(t, c.ID)
		if c.Status != message.CampaignSent || c.Stats.Sent != 5 || c.Stats.NotFriend != 1 || c.Stats.Submitted != 1 {
			t.Fatalf("after the first poll %+v", c.Stats)
		}
		// Results are final after the window: wangwu's is not sent.
		e.sim.Advance(73 * time.Hour)
		e.drain(t)
		c = e.get(t, c.ID)
		if c.Status != message.CampaignDone || c.Stats.Sent != 5 || c.Stats.NotFriend != 1 || c.Stats.NotSent != 1 || c.FinishedAt.IsZero() {
			t.Fatalf("final %+v", c)
		}
		// Per staff and per customer, paginated.
		var staff []message.StaffResult
		r := page.Request{Limit: 2}
		for {
			pg, err := e.msgs.StaffResults(e.ctx, e.ws.ID, c.ID, r)
			if err != nil {
				t.Fatal(err)
			}
			staff = append(staff, pg.Items...)
			if pg.Next == "" {
				break
			}
			r.Cursor = pg.Next
		}
		if len(staff) != 3 || staff[0].UserID != "lisi" || staff[0].Sent != 1 || staff[0].NotFriend != 1 || staff[1].UserID != "wangwu" ||
			staff[1].NotSent != 1 || staff[1].Status != "unsent" || staff[2].Sent != 4 || staff[2].Status != "sent" {
			t.Fatalf("staff results %+v", staff)
		}
		all := e.recipients(t, c.ID, message.RecipientQuery{})
		notFriend := e.recipients(t, c.ID, message.RecipientQuery{Status: "not_friend"})
		if len(all) != 7 || len(notFriend) != 1 || notFriend[0].Recipient != ext["茶6"] || notFriend[0].CustomerName != "茶6" {
			t.Fatalf("recipients %d %+v", len(all), notFriend)
		}
		// Sending again does nothing more.
		if _, err := e.msgs.SendCampaign(e.ctx, e.admin(), c.ID); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		if len(e.sim.MassMessages()) != 4 {
			t.Fatal("a campaign was sent twice")
		}
	})
}

func TestCampaignCapAndNoRelation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{})
		corp3(t, e)
		if _, err := e.msgs.UpdateSettings(e.ctx, e.admin(), message.Settings{CapPolicy: "day"}); err != nil {
			t.Fatal(err)
		}
		first := e.campaign(t, "早安", message.Target{StaffUserIDs: []string{"lisi"}})
		if _, err := e.msgs.SendCampaign(e.ctx, e.admin(), first.ID); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		second := e.campaign(t, "午安", message.Target{})
		est, err := e.msgs.EstimateCampaign(e.ctx, e.ws.ID, second.ID)
		if err != nil {
			t.Fatal(err)
		}
		if est.Targeted != 7 || est.OverCap != 2 || est.Recipients != 5 || est.CapLimit != 1 || len(est.Warnings) != 1 {
			t.Fatalf("estimate %+v", est)
		}
		if _, err := e.msgs.SendCampaign(e.ctx, e.admin(), second.ID); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		c := e.get(t, second.ID)
		if c.Stats.OverCap != 2 || c.Stats.Submitted != 5 {
			t.Fatalf("stats %+v", c.Stats)
		}
		over := e.recipients(t, c.ID, message.RecipientQuery{Status: message.ReasonOverCap})
		if len(over) != 2 || over[0].Status != message.StatusSkipped || over[0].StaffUserID != "lisi" {
			t.Fatalf("over cap %+v", over)
		}
		// lisi's customers are in no template of the second campaign.
		for _, m := range e.sim.MassMessages()[1:] {
			if m.Sender == "lisi" {
				t.Fatalf("lisi sent over the cap: %+v", m)
			}
		}
		// The next day the cap is free again.
		e.sim.Advance(24 * time.Hour)
		est, err = e.msgs.Estimate(e.ctx, e.ws.ID, message.CampaignInput{Name: "x", Target: message.Target{Condition: everyone()}, Content: message.Content{Text: "x"}})
		if err != nil || est.OverCap != 0 {
			t.Fatalf("next day %+v %v", est, err)
		}
		// A customer nobody follows is recorded as skipped (no_relation).
		if _, err := e.sim.PutContact(wecomtest0("茶8")); err != nil {
			t.Fatal(err)
		}
		e.sync(t)
		est, err = e.msgs.Estimate(e.ctx, e.ws.ID, message.CampaignInput{Name: "x", Target: message.Target{Condition: everyone()}, Content: message.Content{Text: "x"}})
		if err != nil {
			t.Fatal(err)
		}
		// 茶8 without staff is not a WeCom customer Siyu learns by sync; the
		// estimate counts all targeted customers either way.
		if est.Targeted != est.Recipients+est.NoRelation+est.OverCap {
			t.Fatalf("estimate does not add up: %+v", est)
		}
		// {{customer_name}} cannot be sent to many customers at once.
		_, err = e.msgs.CreateCampaign(e.ctx, e.admin(), message.CampaignInput{Name: "x", Target: message.Target{Condition: everyone()},
			Content: message.Content{Text: "{{customer_name}}"}})
		if code := errCode(err); code != "placeholder_per_customer" {
			t.Fatalf("customer_name: %v", err)
		}
	})
}

func TestCampaignScheduleQuietHours(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{})
		corp3(t, e)
		// The simulated day starts 2025-01-06 09:00 in Shanghai, the
		// workspace's zone.
		if _, err := e.msgs.UpdateSettings(e.ctx, e.admin(), message.Settings{CapPolicy: "month", QuietStart: "21:00", QuietEnd: "08:00"}); err != nil {
			t.Fatal(err)
		}
		loc, _ := time.LoadLocation("Asia/Shanghai")
		c := e.campaign(t, "晚安", message.Target{})
		at := time.Date(2025, 1, 6, 22, 0, 0, 0, loc)
		if _, err := e.msgs.ScheduleCampaign(e.ctx, e.admin(), c.ID, e.sim.Now().Add(-time.Minute)); errCode(err) != "send_at_past" {
			t.Fatalf("schedule in the past: %v", err)
		}
		c, err := e.msgs.ScheduleCampaign(e.ctx, e.admin(), c.ID, at)
		if err != nil || c.Status != message.CampaignScheduled || !c.SendAt.Equal(at) {
			t.Fatalf("schedule %+v %v", c, err)
		}
		e.drain(t)
		if len(e.sim.MassMessages()) != 0 || e.get(t, c.ID).Status != message.CampaignScheduled {
			t.Fatal("sent before its time")
		}
		e.sim.Advance(at.Sub(e.sim.Now()))
		e.drain(t)
		if c = e.get(t, c.ID); c.Status != message.CampaignSending || len(e.sim.MassMessages()) != 0 {
			t.Fatalf("in quiet hours: %s, %d sent", c.Status, len(e.sim.MassMessages()))
		}
		e.sim.Advance(9*time.Hour + 59*time.Minute) // 07:59
		e.drain(t)
		if len(e.sim.MassMessages()) != 0 {
			t.Fatal("sent in quiet hours")
		}
		e.sim.Advance(time.Minute)
		e.drain(t)
		mm := e.sim.MassMessages()
		if len(mm) != 3 || mm[0].Created.In(loc).Hour() != 8 {
			t.Fatalf("after quiet hours: %+v", mm)
		}
	})
}

func TestCampaignPacing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{ChunkSize: 1})
		corp3(t, e)
		if _, err := e.msgs.UpdateSettings(e.ctx, e.admin(), message.Settings{CapPolicy: "month",
			Pacing: map[string]int{message.ChannelWeComCustomer: 60}}); err != nil {
			t.Fatal(err)
		}
		c := e.campaign(t, "慢慢来", message.Target{StaffUserIDs: []string{"zhangsan"}})
		if _, err := e.msgs.SendCampaign(e.ctx, e.admin(), c.ID); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		if n := len(e.sim.MassMessages()); n != 1 {
			t.Fatalf("%d deliveries at once, want 1", n)
		}
		for i := 2; i <= 4; i++ {
			e.sim.Advance(60 * time.Second)
			e.drain(t)
			if n := len(e.sim.MassMessages()); n != i {
				t.Fatalf("%d deliveries after %d minutes", n, i-1)
			}
		}
		mm := e.sim.MassMessages()
		for i := 1; i < len(mm); i++ {
			if gap := mm[i].Created.Sub(mm[i-1].Created); gap < time.Minute {
				t.Fatalf("deliveries %s apart", gap)
			}
		}
	})
}

func TestCampaignCancel(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{})
		ext := corp3(t, e)
		// Cancelled while scheduled: nothing is planned or sent.
		c := e.campaign(t, "取消1", message.Target{})
		if _, err := e.msgs.ScheduleCampaign(e.ctx, e.admin(), c.ID, e.sim.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if c, err := e.msgs.CancelCampaign(e.ctx, e.admin(), c.ID); err != nil || c.Status != message.CampaignCancelled {
			t.Fatalf("cancel %+v %v", c, err)
		}
		e.sim.Advance(2 * time.Hour)
		e.drain(t)
		if len(e.sim.MassMessages()) != 0 {
			t.Fatal("a cancelled campaign was sent")
		}
		// Cancelled after delivery: zhangsan already sent, the others are
		// withdrawn from WeCom.
		c = e.campaign(t, "取消2", message.Target{})
		if _, err := e.msgs.SendCampaign(e.ctx, e.admin(), c.ID); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		for _, m := range e.sim.MassMessages() {
			if m.Sender == "zhangsan" {
				if err := e.sim.StaffSends("zhangsan", m.MsgID); err != nil {
					t.Fatal(err)
				}
			}
		}
		c, err := e.msgs.CancelCampaign(e.ctx, e.admin(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != message.CampaignCancelled || c.Stats.Sent != 4 || c.Stats.Cancelled != 3 {
			t.Fatalf("cancelled %+v", c.Stats)
		}
		for _, m := range e.sim.MassMessages() {
			if m.Sender != "zhangsan" && !m.Cancelled {
				t.Fatalf("%s's message was not withdrawn", m.Sender)
			}
			if m.Sender != "zhangsan" && e.sim.StaffSends(m.Sender, m.MsgID) == nil {
				t.Fatal("a withdrawn message could still be sent")
			}
		}
		if _, err := e.msgs.CancelCampaign(e.ctx, e.admin(), c.ID); err != nil {
			t.Fatalf("cancel twice: %v", err)
		}
		_ = ext
	})
}

func TestCampaignRemindLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{})
		corp3(t, e)
		c := e.campaign(t, "提醒", message.Target{})
		if _, err := e.msgs.RemindCampaign(e.ctx, e.admin(), c.ID, nil); errCode(err) != "campaign_not_remindable" {
			t.Fatalf("remind a draft: %v", err)
		}
		if _, err := e.msgs.SendCampaign(e.ctx, e.admin(), c.ID); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		for _, m := range e.sim.MassMessages() {
			if m.Sender == "lisi" {
				if err := e.sim.StaffSends("lisi", m.MsgID); err != nil {
					t.Fatal(err)
				}
			}
		}
		e.sim.Advance(pollEvery)
		e.drain(t)
		for i := range 3 {
			res, err := e.msgs.RemindCampaign(e.ctx, e.admin(), c.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Reminded, []string{"wangwu", "zhangsan"}) || len(res.Refused) != 1 || res.Refused[0].Code != "nothing_to_remind" {
				t.Fatalf("reminder %d: %+v", i+1, res)
			}
			e.sim.Advance(time.Hour)
		}
		res, err := e.msgs.RemindCampaign(e.ctx, e.admin(), c.ID, []string{"zhangsan"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Reminded) != 0 || len(res.Refused) != 1 || res.Refused[0].Code != "remind_limit" || res.Refused[0].RetryAt.IsZero() {
			t.Fatalf("fourth reminder: %+v", res)
		}
		for _, m := range e.sim.MassMessages() {
			if m.Sender == "zhangsan" && m.Reminders != 3 {
				t.Fatalf("WeCom saw %d reminders", m.Reminders)
			}
		}
		e.sim.Advance(res.Refused[0].RetryAt.Sub(e.sim.Now()))
		if res, err = e.msgs.RemindCampaign(e.ctx, e.admin(), c.ID, []string{"zhangsan"}); err != nil || len(res.Reminded) != 1 {
			t.Fatalf("after 24 hours: %+v %v", res, err)
		}
	})
}

func TestGroupCampaign(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{})
		ext := corp3(t, e)
		g1, err := e.sim.CreateGroup(e.ctx, "zhangsan", "茶友一群", ext["茶1"], ext["茶2"])
		if err != nil {
			t.Fatal(err)
		}
		g2, err := e.sim.CreateGroup(e.ctx, "zhangsan", "茶友二群", ext["茶3"])
		if err != nil {
			t.Fatal(err)
		}
		g3, err := e.sim.CreateGroup(e.ctx, "lisi", "李四的群", ext["茶5"])
		if err != nil {
			t.Fatal(err)
		}
		e.sync(t)
		c := e.campaign(t, "群公告", message.Target{GroupOwners: []string{"zhangsan"}, ChatIDs: []string{g3.ChatID, "wrNOPE"}})
		est, err := e.msgs.EstimateCampaign(e.ctx, e.ws.ID, c.ID)
		if err != nil || est.Targeted != 3 || est.Recipients != 3 || est.Staff != 2 || len(est.Warnings) != 1 {
			t.Fatalf("estimate %+v %v", est, err)
		}
		if _, err := e.msgs.SendCampaign(e.ctx, e.admin(), c.ID); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		mm := e.sim.MassMessages()
		if len(mm) != 2 || mm[0].ChatType != "group" {
			t.Fatalf("templates %+v", mm)
		}
		byOwner := map[string][]string{}
		for _, m := range mm {
			byOwner[m.Sender] = m.Recipients
		}
		if !slices.Equal(byOwner["zhangsan"], []string{g1.ChatID, g2.ChatID}) && !slices.Equal(byOwner["zhangsan"], []string{g2.ChatID, g1.ChatID}) ||
			!slices.Equal(byOwner["lisi"], []string{g3.ChatID}) {
			t.Fatalf("by owner %v", byOwner)
		}
		e.sim.ConfirmAll()
		e.sim.Advance(pollEvery)
		e.drain(t)
		if c = e.get(t, c.ID); c.Status != message.CampaignDone || c.Stats.Sent != 3 {
			t.Fatalf("group results %+v", c)
		}
	})
}

func TestCampaignSplitsAtTenThousand(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, message.Options{})
		e.staff(t, "zhangsan")
		const n = wecom.MaxMassRecipients + 1
		for i := range n {
			if _, err := e.sim.PutContact(wecomtest0(name(i)), followOf("zhangsan", e.sim.Now())); err != nil {
				t.Fatal(err)
			}
		}
		e.sync(t)
		c := e.campaign(t, "万人", message.Target{})
		if _, err := e.msgs.SendCampaign(e.ctx, e.admin(), c.ID); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		mm := e.sim.MassMessages()
		if len(mm) != 2 || len(mm[0].Recipients)+len(mm[1].Recipients) != n || max(len(mm[0].Recipients), len(mm[1].Recipients)) != wecom.MaxMassRecipients {
			t.Fatalf("%d templates", len(mm))
		}
		e.perRecipient(t)
	})
}
