package wecom_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/errs"
)

func TestMassMessageAPIs(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	c := newClient(t, s, nil)
	for _, u := range []string{"zhangsan", "lisi"} {
		if _, err := s.PutStaff(wecomtest.Staff{UserID: u}); err != nil {
			t.Fatal(err)
		}
	}
	var ext []string
	for i := range 5 {
		ct, err := s.PutContact(wecomtest.Contact{Name: fmt.Sprint("c", i)}, wecomtest.Follow{UserID: "zhangsan", CreateTime: s.Now()})
		if err != nil {
			t.Fatal(err)
		}
		ext = append(ext, ct.ExternalUserID)
	}
	other, _ := s.PutContact(wecomtest.Contact{Name: "other"}, wecomtest.Follow{UserID: "lisi", CreateTime: s.Now()})

	// Siyu's own checks refuse what WeCom would, before calling.
	for name, m := range map[string]wecom.MsgTemplate{
		"too many":    {ChatType: wecom.ChatSingle, Sender: "zhangsan", ExternalUserID: make([]string, wecom.MaxMassRecipients+1), Text: &wecom.Text{Content: "x"}},
		"long text":   {ChatType: wecom.ChatSingle, Sender: "zhangsan", ExternalUserID: ext, Text: &wecom.Text{Content: strings.Repeat("茶", 1334)}},
		"attachments": {ChatType: wecom.ChatSingle, Sender: "zhangsan", ExternalUserID: ext, Attachments: make([]wecom.Attachment, 10)},
		"empty":       {ChatType: wecom.ChatSingle, Sender: "zhangsan", ExternalUserID: ext},
	} {
		if _, err := c.AddMsgTemplate(ctx, m); !errs.Is(err, errs.Invalid) || wecom.ErrorCode(err) != 0 {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if n := s.CallCount("externalcontact/add_msg_template"); n != 0 {
		t.Fatalf("%d calls reached WeCom", n)
	}
	// WeCom's: an unknown media_id, an unknown sender.
	_, err := c.AddMsgTemplate(ctx, wecom.MsgTemplate{ChatType: wecom.ChatSingle, Sender: "zhangsan", ExternalUserID: ext,
		Attachments: []wecom.Attachment{{MsgType: "video", Video: &wecom.Media{MediaID: "nope"}}}})
	if wecom.ErrorCode(err) != 40007 {
		t.Fatalf("unknown media: %v", err)
	}
	if _, err := c.AddMsgTemplate(ctx, wecom.MsgTemplate{ChatType: wecom.ChatSingle, Sender: "nobody", ExternalUserID: ext,
		Text: &wecom.Text{Content: "x"}}); wecom.ErrorCode(err) != wecom.CodeInvalidUserID {
		t.Fatalf("unknown sender: %v", err)
	}
	// An uploaded video is accepted for three days.
	up, err := c.UploadMedia(ctx, wecom.MediaVideo, "a.mp4", []byte("not really a video"))
	if err != nil || up.MediaID == "" || up.Created() != s.Now().Unix() {
		t.Fatalf("upload %+v %v", up, err)
	}
	created, err := c.AddMsgTemplate(ctx, wecom.MsgTemplate{ChatType: wecom.ChatSingle, Sender: "zhangsan", ExternalUserID: append(ext, other.ExternalUserID),
		Text: &wecom.Text{Content: "新品"}, Attachments: []wecom.Attachment{{MsgType: "video", Video: &wecom.Media{MediaID: up.MediaID}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.FailList) != 1 || created.FailList[0] != other.ExternalUserID || created.MsgID == "" {
		t.Fatalf("created %+v", created)
	}

	// Listed for the time range (≤ one month), with the sender's task.
	list, _, err := c.GroupMsgListV2(ctx, wecom.GroupMsgListQuery{ChatType: wecom.ChatSingle, StartTime: s.Now().Add(-time.Hour).Unix(), EndTime: s.Now().Unix()})
	if err != nil || len(list) != 1 || list[0].MsgID != created.MsgID || list[0].Text.Content != "新品" || list[0].CreateType != 0 {
		t.Fatalf("list %+v %v", list, err)
	}
	if _, _, err := c.GroupMsgListV2(ctx, wecom.GroupMsgListQuery{ChatType: wecom.ChatSingle, StartTime: s.Now().Add(-40 * 24 * time.Hour).Unix(),
		EndTime: s.Now().Unix()}); wecom.ErrorCode(err) != wecom.CodeInvalidParam {
		t.Fatalf("a range over a month: %v", err)
	}
	tasks, _, err := c.GroupMsgTasks(ctx, created.MsgID, "", 0)
	if err != nil || len(tasks) != 1 || tasks[0].UserID != "zhangsan" || tasks[0].Status != wecom.TaskNotSent {
		t.Fatalf("tasks %+v %v", tasks, err)
	}

	// The staff member sends later; results page with a cursor. A customer
	// who left gets status 2; one over the cap status 3.
	s.SetMassCap("day")
	if err := s.StaffDeletesCustomer(ctx, "zhangsan", ext[4]); err != nil {
		t.Fatal(err)
	}
	first, err := c.AddMsgTemplate(ctx, wecom.MsgTemplate{ChatType: wecom.ChatSingle, Sender: "zhangsan", ExternalUserID: ext[:1], Text: &wecom.Text{Content: "早"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StaffSends("zhangsan", first.MsgID); err != nil {
		t.Fatal(err)
	}
	s.Advance(time.Hour)
	if err := s.StaffSends("zhangsan", created.MsgID); err != nil {
		t.Fatal(err)
	}
	status := map[string]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		res, next, err := c.GroupMsgSendResult(ctx, created.MsgID, "zhangsan", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			status[r.ExternalUserID] = r.Status
		}
		if next == "" {
			if pages != 2 {
				t.Fatalf("%d pages, want 3", pages+1)
			}
			break
		}
		cursor = next
	}
	if status[ext[0]] != wecom.MassOverCap || status[ext[1]] != wecom.MassSent || status[ext[4]] != wecom.MassNotFriend || len(status) != 5 {
		t.Fatalf("statuses %v", status)
	}

	// Remind: 3 per message in 24 hours. Cancel: no more sending.
	for range 3 {
		if err := c.RemindGroupMsgSend(ctx, first.MsgID); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.RemindGroupMsgSend(ctx, first.MsgID); wecom.ErrorCode(err) == 0 {
		t.Fatal("a fourth reminder in 24 hours was accepted")
	}
	third, err := c.AddMsgTemplate(ctx, wecom.MsgTemplate{ChatType: wecom.ChatSingle, Sender: "zhangsan", ExternalUserID: ext[2:3], Text: &wecom.Text{Content: "晚"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CancelGroupMsgSend(ctx, third.MsgID); err != nil {
		t.Fatal(err)
	}
	if s.StaffSends("zhangsan", third.MsgID) == nil {
		t.Fatal("a cancelled message was sent")
	}
}
