package handover_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/handover"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// corp is a simulated corp connected to a workspace: zhangsan serves the
// customers, lisi and wangwu can take over.
type corp struct {
	s    *apptest.Server
	w    apptest.Workspace
	sim  *wecomtest.Server
	p    tenant.Principal
	ids  map[string]int64 // staff id by WeCom userid
	cust []string         // zhangsan's customers' external_userids
	chat string           // a group zhangsan owns
}

func eachCorp(t *testing.T, customers int, fn func(t *testing.T, c *corp)) {
	for _, e := range dbtest.Engines() {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			s := apptest.Start(t, e)
			w := s.NewWorkspace(t, "handover")
			// The corp's clock is the wall clock (moved on by Advance), as
			// Siyu's is: directory events are ordered by their time.
			sim := s.NewWeComSim(t, w, wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now}})
			for _, st := range []wecomtest.Staff{{UserID: "zhangsan", Name: "张三"}, {UserID: "lisi", Name: "李四"}, {UserID: "wangwu", Name: "王五"}} {
				if _, err := sim.PutStaff(st); err != nil {
					t.Fatal(err)
				}
			}
			c := &corp{s: s, w: w, sim: sim, p: tenant.System(w.ID), ids: map[string]int64{}}
			for i := range customers {
				ct, err := sim.PutContact(wecomtest.Contact{Name: fmt.Sprintf("客户%03d", i)}, wecomtest.Follow{UserID: "zhangsan"})
				if err != nil {
					t.Fatal(err)
				}
				c.cust = append(c.cust, ct.ExternalUserID)
			}
			g, err := sim.PutGroup(wecomtest.Group{Owner: "zhangsan", Name: "VIP 群", Members: []wecomtest.Member{{UserID: c.cust[0]}}})
			if err != nil {
				t.Fatal(err)
			}
			c.chat = g.ChatID
			connect(t, s, w, sim)
			for _, u := range []string{"zhangsan", "lisi", "wangwu"} {
				m, err := s.App.Staff.MemberByWeComUserID(context.Background(), w.ID, u)
				if err != nil {
					t.Fatal(err)
				}
				c.ids[u] = m.ID
			}
			fn(t, c)
		})
	}
}

// connect connects the workspace as an admin would and runs the full sync
// connecting asks for (queued here rather than waiting for the scheduler).
func connect(t *testing.T, s *apptest.Server, w apptest.Workspace, sim *wecomtest.Server) {
	t.Helper()
	body := map[string]any{"corp_id": sim.CorpID(), "agent_id": sim.AgentID(), "secret": sim.Secret(), "token": sim.CallbackToken(),
		"encoding_aes_key": sim.EncodingAESKey(), "base_url": sim.URL()}
	if res := s.Do(t, "PUT", "/api/v1/connectors/wecom", w.Key, body); res.Status != 200 {
		t.Fatalf("connect WeCom: %d %s", res.Status, res.Body)
	}
	if _, err := s.App.WeCom.ScheduleSyncs(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.WeComSyncDone(t, w)
}

// work moves a job on as far as it goes now (the app's worker may hold it
// for a moment) after the callbacks so far are processed.
func (c *corp) work(t *testing.T, id int64) handover.Handover {
	t.Helper()
	ctx := context.Background()
	c.settled(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := c.s.App.Handover.Work(ctx, c.w.ID, id)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("work: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.settled(t)
	j, err := c.s.App.Handover.Job(ctx, c.w.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// settled waits until every callback so far is processed (the app's
// worker may be processing some).
func (c *corp) settled(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.s.WeComSettled(t)
		var n int
		if err := c.s.App.DB.QueryRowContext(context.Background(), `SELECT count(*) FROM wecom_inbox WHERE tenant_id = $1 AND status = 'pending'`,
			c.w.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callbacks still pending", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *corp) items(t *testing.T, id int64) map[string]handover.Transfer {
	t.Helper()
	out := map[string]handover.Transfer{}
	r := page.Request{Limit: page.MaxLimit}
	for {
		pg, err := c.s.App.Handover.Items(context.Background(), c.w.ID, id, "", r)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range pg.Items {
			out[it.ExternalID] = it
		}
		if pg.Next == "" {
			return out
		}
		r.Cursor = pg.Next
	}
}

func (c *corp) relation(t *testing.T, userID, ext string) staff.RelationStatus {
	t.Helper()
	r, err := c.s.App.Staff.Relation(context.Background(), c.s.App.DB, c.w.ID, staff.RelationKey{StaffID: c.ids[userID], Channel: staff.ChannelWeCom, ExternalID: ext})
	if errs.KindOf(err) == errs.NotFound {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

func (c *corp) start(t *testing.T, r handover.Selection, key string) handover.Handover {
	t.Helper()
	j, created, err := c.s.App.Handover.Start(context.Background(), c.p, r, key)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatalf("job %d was not created by key %q", j.ID, key)
	}
	return j
}

func verdict(a handover.Assessment, id string) handover.Verdict {
	for _, v := range a.Checks {
		if v.ExternalID == id {
			return v
		}
	}
	return handover.Verdict{}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := errs.As(err)
	if !ok || e.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

// An on-job transfer of customers and a group: WeCom accepts, the group
// moves at once, customers move after their 24 hours unless they refuse;
// ownership in Siyu follows with one timeline entry per transfer; the
// 2-in-90-days rule is checked before anything is sent.
func TestOnJobTransfer(t *testing.T) {
	eachCorp(t, 3, func(t *testing.T, c *corp) {
		ctx := context.Background()
		h := c.s.App.Handover
		zs, ls := c.ids["zhangsan"], c.ids["lisi"]

		// Bad input is refused before anything is sent.
		_, err := h.Preview(ctx, c.p, handover.Selection{HandoverStaffID: zs, TakeoverStaffID: zs, AllCustomers: true})
		wantCode(t, err, "same_staff")
		_, err = h.Preview(ctx, c.p, handover.Selection{HandoverStaffID: zs, TakeoverStaffID: 999999, AllCustomers: true})
		wantCode(t, err, "unknown_staff")
		_, _, err = h.Start(ctx, c.p, handover.Selection{HandoverStaffID: zs, TakeoverStaffID: ls, AllCustomers: true}, "")
		wantCode(t, err, "required")
		pv, err := h.Preview(ctx, c.p, handover.Selection{HandoverStaffID: zs, TakeoverStaffID: ls, Customers: []string{c.cust[0], "wmNotTheirs"}})
		if err != nil {
			t.Fatal(err)
		}
		if pv.Kind != handover.OnJob || pv.Customers != 1 || pv.Blocked != 1 || verdict(pv, "wmNotTheirs").Reason != handover.ReasonNotTheirs {
			t.Fatalf("preview %+v", pv)
		}

		c.sim.SetRefuses(c.cust[2])
		req := handover.Selection{HandoverStaffID: zs, TakeoverStaffID: ls, AllCustomers: true, AllGroups: true, Message: "您好，我是李四，今后由我为您服务"}
		j := c.start(t, req, "job-1")
		again, created, err := h.Start(ctx, c.p, req, "job-1")
		if err != nil || created || again.ID != j.ID {
			t.Fatalf("retried start: %+v created %v err %v", again, created, err)
		}
		j = c.work(t, j.ID)
		if j.Customers.Waiting != 3 || j.Groups.Done != 1 || j.Status != handover.JobRunning {
			t.Fatalf("after sending: %+v", j)
		}
		if got := c.sim.CallCount("externalcontact/transfer_customer"); got != 1 {
			t.Fatalf("%d transfer_customer calls", got)
		}
		for _, tr := range c.sim.Transfers() {
			if tr.TransferSuccessMsg != req.Message {
				t.Fatalf("transfer %+v without the message", tr)
			}
		}
		if g, _ := c.sim.Group(c.chat); g.Owner != "lisi" {
			t.Fatalf("group owner %s", g.Owner)
		}
		var owner string
		if err := c.s.App.DB.QueryRowContext(ctx, `SELECT owner_userid FROM wecom_groups WHERE tenant_id = $1 AND chat_id = $2`, c.w.ID, c.chat).Scan(&owner); err != nil || owner != "lisi" {
			t.Fatalf("group owner in Siyu %q %v", owner, err)
		}
		// A second start while it runs is explained, not sent.
		pv, err = h.Preview(ctx, c.p, handover.Selection{HandoverStaffID: zs, TakeoverStaffID: c.ids["wangwu"], Customers: c.cust[:1]})
		if err != nil || verdict(pv, c.cust[0]).Reason != handover.ReasonInProgress {
			t.Fatalf("preview during the transfer %+v %v", pv, err)
		}

		// Within the 24 hours nothing is final.
		c.sim.Advance(time.Hour)
		if j = c.work(t, j.ID); j.Customers.Waiting != 3 {
			t.Fatalf("after an hour: %+v", j)
		}
		c.sim.Advance(24 * time.Hour)
		j = c.work(t, j.ID)
		if j.Status != handover.JobDone || j.Customers.Done != 2 || j.Customers.Refused != 1 {
			t.Fatalf("after 24 hours: %+v", j)
		}
		items := c.items(t, j.ID)
		if it := items[c.cust[2]]; it.State != handover.ItemRefused || it.Reason != handover.ReasonRefused {
			t.Fatalf("refused item %+v", it)
		}
		for _, ext := range c.cust[:2] {
			if a, b := c.relation(t, "zhangsan", ext), c.relation(t, "lisi", ext); a != staff.RelationTransferred || b != staff.RelationActive {
				t.Fatalf("%s: zhangsan %s, lisi %s", ext, a, b)
			}
		}
		if a := c.relation(t, "zhangsan", c.cust[2]); a != staff.RelationActive {
			t.Fatalf("refused customer's relation %s", a)
		}
		var n int
		if err := c.s.App.DB.QueryRowContext(ctx, `SELECT count(*) FROM wecom_customer_events WHERE tenant_id = $1 AND customer_id = $2 AND kind = 'wecom.transfer'`,
			c.w.ID, items[c.cust[0]].CustomerID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d transfer timeline entries (%v)", n, err)
		}

		// The customer moves back (a second transfer); a third within 90
		// days is refused by the rule before anything is sent.
		back := c.start(t, handover.Selection{HandoverStaffID: ls, TakeoverStaffID: zs, Customers: c.cust[:1]}, "job-2")
		c.work(t, back.ID)
		c.sim.Advance(25 * time.Hour)
		if back = c.work(t, back.ID); back.Customers.Done != 1 {
			t.Fatalf("back: %+v", back)
		}
		pv, err = h.Preview(ctx, c.p, handover.Selection{HandoverStaffID: zs, TakeoverStaffID: ls, Customers: c.cust[:2]})
		if err != nil {
			t.Fatal(err)
		}
		if v := verdict(pv, c.cust[0]); v.Reason != handover.ReasonRule90d || v.Detail == "" || v.Transfers90d != 2 ||
			v.NextAllowedAt.Before(time.Now().Add(89*24*time.Hour)) || pv.Customers != 0 {
			t.Fatalf("rule check %+v", pv)
		}
		calls := c.sim.CallCount("externalcontact/transfer_customer")
		_, _, err = h.Start(ctx, c.p, handover.Selection{HandoverStaffID: zs, TakeoverStaffID: ls, Customers: c.cust[:1]}, "job-3")
		wantCode(t, err, "nothing_to_hand_over")
		if c.sim.CallCount("externalcontact/transfer_customer") != calls {
			t.Fatal("a transfer over the rule was sent")
		}
	})
}

// More than 100 customers go in chunks of 100; WeCom failing mid-job (an
// answer lost after WeCom acted, then an outage) leaves the job resumable:
// every customer and group is transferred exactly once and none is marked
// done early.
func TestChunksAndOutage(t *testing.T) {
	eachCorp(t, 205, func(t *testing.T, c *corp) {
		zs, ls := c.ids["zhangsan"], c.ids["lisi"]
		c.sim.FailNextHTTP("externalcontact/transfer_customer", -1, 1) // first chunk: done in WeCom, answer lost
		c.sim.FailNextHTTP("externalcontact/transfer_result", 502, 1)  // then WeCom down when asked what happened
		c.sim.FailNextHTTP("externalcontact/groupchat/onjob_transfer", -1, 1)
		j := c.start(t, handover.Selection{HandoverStaffID: zs, TakeoverStaffID: ls, AllCustomers: true, AllGroups: true}, "bulk")
		for range 10 {
			if j = c.work(t, j.ID); j.Customers.Waiting == 205 && j.Groups.Done == 1 {
				break
			}
			if j.Customers.Done != 0 {
				t.Fatalf("done before the customers' 24 hours: %+v", j)
			}
		}
		if j.Customers.Waiting != 205 || j.LastError != "" {
			t.Fatalf("after the outage: %+v", j)
		}
		if n := c.sim.CallCount("externalcontact/groupchat/onjob_transfer"); n != 1 || j.Groups.Done != 1 {
			t.Fatalf("%d group transfer calls, group %+v: the group moved with the lost answer is looked up, not sent again", n, j.Groups)
		}
		if n := c.sim.CallCount("externalcontact/transfer_customer"); n != 3 {
			t.Fatalf("%d transfer_customer calls, want 3 chunks: the one whose answer was lost is looked up, not sent again", n)
		}
		seen := map[string]int{}
		for _, tr := range c.sim.Transfers() {
			seen[tr.ExternalUserID]++
		}
		if len(seen) != 205 {
			t.Fatalf("%d customers transferred", len(seen))
		}
		for ext, n := range seen {
			if n != 1 {
				t.Fatalf("%s transferred %d times", ext, n)
			}
		}
		for _, call := range c.sim.Calls() {
			if call.API == "externalcontact/transfer_customer" && len(call.Body) > 0 && countIDs(call.Body) > 100 {
				t.Fatalf("a call with %d customers", countIDs(call.Body))
			}
		}
		c.sim.Advance(25 * time.Hour)
		if j = c.work(t, j.ID); j.Status != handover.JobDone || j.Customers.Done != 205 {
			t.Fatalf("at the end: %+v", j)
		}
	})
}

func countIDs(body []byte) int {
	n := 0
	for i := 0; i+1 < len(body); i++ {
		if body[i] == '"' && body[i+1] == 'w' {
			n++
		}
	}
	return n
}

// A staff member leaves: their customers (also one Siyu never saw) and
// groups are inherited through the resigned APIs.
func TestResignedInheritance(t *testing.T) {
	eachCorp(t, 2, func(t *testing.T, c *corp) {
		ctx := context.Background()
		unseen, err := c.sim.PutContact(wecomtest.Contact{Name: "未同步客户"}, wecomtest.Follow{UserID: "zhangsan"})
		if err != nil {
			t.Fatal(err)
		}
		c.sim.Advance(2 * time.Second) // directory events carry seconds; the sync's own time must be behind
		if err := c.sim.DeleteStaff(ctx, "zhangsan"); err != nil {
			t.Fatal(err)
		}
		c.settled(t)
		list, err := c.s.App.Handover.StaffList(ctx, c.w.ID, true, page.Request{})
		if err != nil || len(list.Items) == 0 || list.Items[0].Kind != handover.Resigned || list.Items[0].Customers != 2 || list.Items[0].Groups != 1 {
			t.Fatalf("staff to hand over %+v %v", list.Items, err)
		}
		zs, ww := c.ids["zhangsan"], c.ids["wangwu"]
		_, err = c.s.App.Handover.Preview(ctx, c.p, handover.Selection{HandoverStaffID: zs, TakeoverStaffID: ww, AllCustomers: true, Message: "hi"})
		wantCode(t, err, "not_for_resigned")
		j := c.start(t, handover.Selection{HandoverStaffID: zs, TakeoverStaffID: ww, AllCustomers: true, AllGroups: true}, "inherit")
		if j.Kind != handover.Resigned || j.Customers.Total != 3 || j.Groups.Total != 1 {
			t.Fatalf("job %+v", j)
		}
		j = c.work(t, j.ID)
		if j.Customers.Waiting != 3 || j.Groups.Done != 1 || c.sim.CallCount("externalcontact/resigned/transfer_customer") != 1 ||
			c.sim.CallCount("externalcontact/groupchat/transfer") != 1 {
			t.Fatalf("after sending: %+v", j)
		}
		c.sim.Advance(25 * time.Hour)
		j = c.work(t, j.ID)
		if j.Status != handover.JobDone || j.Customers.Done != 3 {
			t.Fatalf("at the end: %+v", j)
		}
		for _, ext := range append(c.cust, unseen.ExternalUserID) {
			if st := c.relation(t, "wangwu", ext); st != staff.RelationActive {
				t.Fatalf("%s with wangwu: %s", ext, st)
			}
		}
		if _, err := c.s.App.Handover.Job(ctx, c.w.ID, 999999); errs.KindOf(err) != errs.NotFound {
			t.Fatalf("unknown job: %v", err)
		}
	})
}
