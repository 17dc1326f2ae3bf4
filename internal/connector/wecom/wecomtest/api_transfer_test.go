package wecomtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
)

func transferCorp(t *testing.T, customers int) (*wecomtest.Server, *wecom.Client, []string) {
	t.Helper()
	s := newSim(t, wecomtest.Options{})
	for _, u := range []string{"zhangsan", "lisi", "wangwu"} {
		if _, err := s.PutStaff(wecomtest.Staff{UserID: u}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for i := range customers {
		ct, err := s.PutContact(wecomtest.Contact{Name: fmt.Sprint("c", i)}, wecomtest.Follow{UserID: "zhangsan"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ct.ExternalUserID)
	}
	c, err := wecom.New(wecom.Config{BaseURL: s.URL(), CorpID: s.CorpID(), Secret: s.Secret(), Now: s.Now, Sleep: s.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, ids
}

func results(t *testing.T, c *wecom.Client, handover, takeover string) map[string]int {
	t.Helper()
	out := map[string]int{}
	cursor := ""
	for {
		pg, err := c.TransferResult(context.Background(), handover, takeover, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range pg.Customers {
			out[st.ExternalUserID] = st.Status
		}
		if pg.NextCursor == "" {
			return out
		}
		cursor = pg.NextCursor
	}
}

// On-job transfers: at most 100 per call, an errcode per customer, results
// after 24 hours with refusals, and at most 2 transfers in 90 days.
func TestOnJobTransferRules(t *testing.T) {
	ctx := context.Background()
	s, c, ids := transferCorp(t, 101)
	if _, err := c.TransferCustomer(ctx, wecom.TransferRequest{HandoverUserID: "zhangsan", TakeoverUserID: "lisi", ExternalUserIDs: ids}); err == nil {
		t.Fatal("101 customers in one call were accepted by the client")
	}
	r := newReceiver(t, s)
	s.SetRefuses(ids[1])
	ans, err := c.TransferCustomer(ctx, wecom.TransferRequest{HandoverUserID: "zhangsan", TakeoverUserID: "lisi",
		ExternalUserIDs: []string{ids[0], ids[1], "wmUnknown"}, SuccessMsg: "你好"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ans) != 3 || ans[0].ErrCode != 0 || ans[1].ErrCode != 0 || ans[2].ErrCode != wecom.CodeInvalidExternalUser {
		t.Fatalf("answer %+v", ans)
	}
	again, _ := c.TransferCustomer(ctx, wecom.TransferRequest{HandoverUserID: "zhangsan", TakeoverUserID: "wangwu", ExternalUserIDs: ids[:1]})
	if again[0].ErrCode != wecom.CodeTransferInProgress {
		t.Fatalf("second transfer while waiting %+v", again)
	}
	if got := results(t, c, "zhangsan", "lisi"); got[ids[0]] != wecom.TransferWaiting {
		t.Fatalf("results before 24 h %v", got)
	}
	s.Advance(24 * time.Hour)
	if got := results(t, c, "zhangsan", "lisi"); got[ids[0]] != wecom.TransferDone || got[ids[1]] != wecom.TransferRefused {
		t.Fatalf("results after 24 h %v", got)
	}
	got := map[wecom.Kind]bool{}
	for range 3 {
		got[r.next().Kind()] = true
	}
	for _, want := range []wecom.Kind{wecom.KindTransferFail, wecom.KindDelExternalContact, wecom.KindAddExternalContact} {
		if !got[want] {
			t.Fatalf("no %s callback: %v", want, got)
		}
	}
	if _, fs, _ := s.Contact(ids[0]); len(fs) != 1 || fs[0].UserID != "lisi" {
		t.Fatalf("relations after the transfer %+v", fs)
	}
	// Back to zhangsan (the second transfer), then a third is refused.
	if a, _ := c.TransferCustomer(ctx, wecom.TransferRequest{HandoverUserID: "lisi", TakeoverUserID: "zhangsan", ExternalUserIDs: ids[:1]}); a[0].ErrCode != 0 {
		t.Fatalf("second transfer %+v", a)
	}
	s.CompleteTransfers(ctx)
	if a, _ := c.TransferCustomer(ctx, wecom.TransferRequest{HandoverUserID: "zhangsan", TakeoverUserID: "lisi", ExternalUserIDs: ids[:1]}); a[0].ErrCode != wecom.CodeTransferTooOften {
		t.Fatalf("third transfer in 90 days %+v", a)
	}
	s.Advance(91 * 24 * time.Hour)
	if a, _ := c.TransferCustomer(ctx, wecom.TransferRequest{HandoverUserID: "zhangsan", TakeoverUserID: "lisi", ExternalUserIDs: ids[:1]}); a[0].ErrCode != 0 {
		t.Fatalf("a transfer after 90 days %+v", a)
	}
	if a, _ := c.TransferCustomer(ctx, wecom.TransferRequest{HandoverUserID: "zhangsan", TakeoverUserID: "zhangsan", ExternalUserIDs: ids[2:3]}); a[0].ErrCode != wecom.CodeSameHandover {
		t.Fatalf("to the same member %+v", a)
	}
}

// A resigned member's customers are listed with a cursor and inherited;
// their groups move at once, with failures per group.
func TestResignedTransfer(t *testing.T) {
	ctx := context.Background()
	s, c, ids := transferCorp(t, 5)
	g, err := s.PutGroup(wecomtest.Group{Owner: "zhangsan", Name: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResignedTransferCustomer(ctx, wecom.TransferRequest{HandoverUserID: "zhangsan", TakeoverUserID: "lisi", ExternalUserIDs: ids}); !wecom.IsCode(err, wecom.CodeNotResigned) {
		t.Fatalf("inheriting from a current member: %v", err)
	}
	if err := s.DeleteStaff(ctx, "zhangsan"); err != nil {
		t.Fatal(err)
	}
	var listed []string
	cursor := ""
	for {
		pg, err := c.GetUnassignedList(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range pg.Info {
			listed = append(listed, u.ExternalUserID)
		}
		if pg.IsLast {
			break
		}
		cursor = pg.NextCursor
	}
	if len(listed) != 5 {
		t.Fatalf("unassigned %v", listed)
	}
	ans, err := c.ResignedTransferCustomer(ctx, wecom.TransferRequest{HandoverUserID: "zhangsan", TakeoverUserID: "lisi", ExternalUserIDs: ids})
	if err != nil || len(ans) != 5 || ans[0].ErrCode != 0 {
		t.Fatalf("inherit %+v %v", ans, err)
	}
	if pg, _ := c.GetUnassignedList(ctx, "", 0); len(pg.Info) != 0 {
		t.Fatalf("still unassigned while transferring: %+v", pg.Info)
	}
	failed, err := c.GroupChatOnJobTransfer(ctx, []string{g.ChatID}, "lisi")
	if err != nil || len(failed) != 1 || failed[0].ErrCode != wecom.CodeOwnerResigned {
		t.Fatalf("on-job transfer of a resigned owner's group %+v %v", failed, err)
	}
	failed, err = c.GroupChatTransfer(ctx, []string{g.ChatID, "wrUnknown"}, "lisi")
	if err != nil || len(failed) != 1 || failed[0].ChatID != "wrUnknown" {
		t.Fatalf("group inheritance %+v %v", failed, err)
	}
	if got, _ := s.Group(g.ChatID); got.Owner != "lisi" || got.Status != wecom.ChatInheritanceDone {
		t.Fatalf("group %+v", got)
	}
	s.Advance(25 * time.Hour)
	pg, err := c.ResignedTransferResult(ctx, "zhangsan", "lisi", "")
	if err != nil || len(pg.Customers) != 5 || pg.Customers[0].Status != wecom.TransferDone || pg.Customers[0].TakeoverTime == 0 {
		t.Fatalf("results %+v %v", pg, err)
	}
}

// A member over their customer limit cannot take a customer over: the
// transfer ends with status 4 and transfer_fail customer_limit_exceed.
func TestTransferOverCustomerLimit(t *testing.T) {
	ctx := context.Background()
	s, c, ids := transferCorp(t, 1)
	r := newReceiver(t, s)
	s.SetCustomerLimit("lisi", 0)
	if a, err := c.TransferCustomer(ctx, wecom.TransferRequest{HandoverUserID: "zhangsan", TakeoverUserID: "lisi", ExternalUserIDs: ids}); err != nil || a[0].ErrCode != 0 {
		t.Fatalf("transfer %+v %v", a, err)
	}
	if n := s.CompleteTransfers(ctx); n != 1 {
		t.Fatalf("%d transfers completed", n)
	}
	if ev := r.next(); ev.Kind() != wecom.KindTransferFail || ev.FailReason != wecom.FailReasonCustomerLimitExceed {
		t.Fatalf("callback %+v", ev)
	}
	if got := results(t, c, "zhangsan", "lisi"); got[ids[0]] != wecom.TransferLimit {
		t.Fatalf("results %v", got)
	}
	if _, fs, _ := s.Contact(ids[0]); len(fs) != 1 || fs[0].UserID != "zhangsan" {
		t.Fatalf("the customer moved: %+v", fs)
	}
}
