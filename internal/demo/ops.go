package demo

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/acquire"
	"github.com/siyu-dev/siyu/internal/community"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/handover"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/moment"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// The demo brand's operations on its live corp: a channel code per store
// (new customers come in through them, tagged and welcomed), a group code
// whose group fills and overflows into new ones, a win-back mass message to
// a saved audience that the staff send over the following minutes, a
// moments post, and a guide who has left and whose customers and groups the
// store manager inherits. Everything goes through the same services the
// console and the API use; the simulated staff confirm sends, publish posts
// and customers accept transfers as the live loop runs.

// opsState is what the live loop needs of the operations.
type opsState struct {
	ways      map[string]string // member → their store code's config_id
	groupWay  string            // the group code's config_id
	leaveAt   time.Time         // when a guide leaves (zero: never, or done)
	inherited bool              // a handover is waiting for WeCom to complete it
	campaign  bool              // the mass message went out
}

// demoGroupExtra is how many more members the group code's group takes
// before WeCom opens a new one: few, so a visitor sees it happen.
const demoGroupExtra = 12

func (c *LiveCorp) operate(ctx context.Context, progress io.Writer) error {
	sys := tenant.System(c.tenantID)
	a := c.a
	c.ops = opsState{ways: map[string]string{}}

	// 1. A channel code per store, its staff the pool; auto-accept, a
	// welcome message, the remark set to the customer's name.
	if a.Acquire != nil {
		res, err := a.Acquire.CreateStoreCodes(ctx, sys, acquire.StoreCodesInput{Config: acquire.CodeConfig{
			SkipVerify:     true,
			Welcome:        message.Content{Text: "{{customer_name}}您好，我是" + BrandName + "的{{staff_name}}～到店出示本消息，第一杯饮品立减 5 元。回复“菜单”看本周新品。"},
			RemarkTemplate: "{{customer_name}}",
		}}, nil)
		if err != nil {
			return fmt.Errorf("demo: store codes: %w", err)
		}
		created := 0
		for _, r := range res {
			if r.Status == acquire.StoreCreated {
				created++
			}
		}
		byStore := map[int64]acquire.ChannelCode{}
		for req := (page.Request{Limit: page.MaxLimit}); ; {
			pg, err := a.Acquire.Codes(ctx, c.tenantID, acquire.Filter{}, req)
			if err != nil {
				return fmt.Errorf("demo: store codes: %w", err)
			}
			for _, code := range pg.Items {
				if code.StoreID != 0 {
					byStore[code.StoreID] = code
				}
			}
			if pg.Next == "" {
				break
			}
			req.Cursor = pg.Next
		}
		for _, userID := range c.members {
			m, err := a.Staff.MemberByWeComUserID(ctx, c.tenantID, userID)
			if err != nil {
				continue
			}
			if code, ok := byStore[m.StoreID]; ok {
				c.ops.ways[userID] = code.ConfigID
			}
		}
		fmt.Fprintf(progress, "demo: operations: %d store channel codes (%d new)\n", len(byStore), created)
	}

	// 2. A group code over the first group: when it fills, WeCom opens
	// 茶友福利群2, 3, … and the code follows.
	if a.Community != nil {
		if gs := c.sim.Groups(); len(gs) > 0 {
			g := gs[0]
			c.sim.SetGroupMemberLimit(len(g.Members) + demoGroupExtra)
			code, err := a.Community.CreateGroupCode(ctx, sys, community.GroupCodeInput{
				Name: "茶友福利群活码", State: "group-fans", ChatIDs: []string{g.ChatID},
				AutoCreateRoom: true, RoomBaseName: "茶友福利群", RoomBaseID: 2, IdempotencyKey: "demo-group-code",
			})
			if err != nil {
				return fmt.Errorf("demo: group code: %w", err)
			}
			c.ops.groupWay = code.ConfigID
			fmt.Fprintf(progress, "demo: operations: group code %q over %s (opens a new group every %d joins)\n", code.Name, g.Name, demoGroupExtra)
		}
	}

	// 3. A win-back mass message to the dormant members, sent by their
	// staff — once the brand's history has made the audience.
	if a.Messages != nil && a.Audiences != nil {
		if err := c.massMessage(ctx); err != nil {
			return err
		}
	}

	// 4. A moments post by the first store staff.
	if a.Moments != nil {
		senders := c.members[:min(6, len(c.members))]
		t, _, err := a.Moments.Create(ctx, sys, moment.TaskInput{Key: "demo-moment-matcha",
			Text: "春季限定：抹茶生椰拿铁上市，第二杯半价！到店或小程序下单都可以～", StaffUserIDs: senders})
		if err != nil {
			return fmt.Errorf("demo: moments: %w", err)
		}
		fmt.Fprintf(progress, "demo: operations: moments post #%d by %d staff\n", t.ID, len(senders))
	}

	// 5. A guide leaves; the store manager inherits their customers and
	// groups (once: a restarted demo keeps the first handover).
	if a.Handover != nil {
		jobs, err := a.Handover.Jobs(ctx, c.tenantID, page.Request{Limit: 1})
		if err != nil {
			return fmt.Errorf("demo: handover: %w", err)
		}
		if len(jobs.Items) == 0 && c.o.LeaveAfter >= 0 {
			c.ops.leaveAt = time.Now().Add(c.o.LeaveAfter)
			fmt.Fprintf(progress, "demo: operations: a guide leaves in %s and a colleague inherits their customers\n", c.o.LeaveAfter)
		}
	}
	return nil
}

// inherit makes the last guide with customers leave the corp and hands
// their customers and groups to another member of the corp.
func (c *LiveCorp) inherit(ctx context.Context) error {
	a, sys := c.a, tenant.System(c.tenantID)
	var leaver, heir string
	for i := len(c.members) - 1; i > 0 && leaver == ""; i-- {
		if len(c.sim.FollowsOf(c.members[i])) > 0 {
			leaver, heir = c.members[i], c.members[0]
		}
	}
	if leaver == "" {
		return nil
	}
	from, err := a.Staff.MemberByWeComUserID(ctx, c.tenantID, leaver)
	if err != nil {
		return fmt.Errorf("demo: handover: %w", err)
	}
	to, err := a.Staff.MemberByWeComUserID(ctx, c.tenantID, heir)
	if err != nil {
		return fmt.Errorf("demo: handover: %w", err)
	}
	if err := c.sim.DeleteStaff(ctx, leaver); err != nil {
		return fmt.Errorf("demo: handover: %w", err)
	}
	c.members = slices.DeleteFunc(c.members, func(m string) bool { return m == leaver })
	// Inheritance is for members who have left: wait until Siyu has the
	// departure from WeCom's callback (a handover started before would be
	// an on-job transfer, which WeCom refuses for a deleted member).
	for i := 0; i < 60; i++ {
		if m, err := a.Staff.MemberByWeComUserID(ctx, c.tenantID, leaver); err == nil && m.Status == staff.Resigned {
			break
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	job, _, err := a.Handover.Start(ctx, sys, handover.Selection{HandoverStaffID: from.ID, TakeoverStaffID: to.ID,
		AllCustomers: true, AllGroups: true}, "demo-inherit")
	if err != nil {
		return fmt.Errorf("demo: handover: %w", err)
	}
	c.ops.inherited = true
	c.log.Info("demo: a guide left; a colleague inherits their customers and groups", "left", from.Name, "heir", to.Name, "handover", job.ID)
	return nil
}

// opsEvent makes one operations thing happen in the corp, or reports
// errNothing: a staff member sends the pending mass message or publishes
// the post, WeCom completes the inheritance, a customer joins through the
// group code.
func (c *LiveCorp) opsEvent(ctx context.Context) error {
	r, sim := c.rng, c.sim
	if !c.ops.campaign && c.a.Messages != nil && c.a.Audiences != nil && r.IntN(4) == 0 {
		if err := c.massMessage(ctx); err != nil || c.ops.campaign {
			return err
		}
	}
	if !c.ops.leaveAt.IsZero() && time.Now().After(c.ops.leaveAt) {
		c.ops.leaveAt = time.Time{}
		return c.inherit(ctx)
	}
	switch k := r.IntN(4); k {
	case 0:
		if n := sim.ConfirmAll(); n == 0 {
			return errNothing
		}
		return nil
	case 1:
		ids := sim.MomentIDs()
		if len(ids) == 0 {
			return errNothing
		}
		return sim.StaffPublishes(c.members[r.IntN(len(c.members))], ids[r.IntN(len(ids))])
	case 2:
		if !c.ops.inherited || sim.CompleteTransfers(ctx) == 0 {
			return errNothing
		}
		return nil
	default:
		if c.ops.groupWay == "" {
			return errNothing
		}
		fs := sim.FollowsOf(c.members[r.IntN(len(c.members))])
		if len(fs) == 0 {
			return errNothing
		}
		_, err := sim.JoinByWay(ctx, c.ops.groupWay, wecomtest.Contact{ExternalUserID: fs[r.IntN(len(fs))].ExternalUserID})
		return err
	}
}

// massMessage sends the win-back mass message to the dormant members once
// their saved audience exists (the brand's history makes it a few minutes
// into the demo); until then it does nothing.
func (c *LiveCorp) massMessage(ctx context.Context) error {
	a, sys := c.a, tenant.System(c.tenantID)
	var target int64
	pg, err := a.Audiences.Audiences(ctx, c.tenantID, page.Request{Limit: page.MaxLimit})
	if err != nil {
		return fmt.Errorf("demo: audiences: %w", err)
	}
	for _, au := range pg.Items {
		if strings.HasPrefix(au.Name, "沉睡会员") {
			target = au.ID
		}
	}
	if target == 0 {
		return nil
	}
	camp, err := a.Messages.CreateCampaign(ctx, sys, message.CampaignInput{
		Key: "demo-winback", Name: "沉睡会员唤醒：回归券", Kind: "customers",
		Target:  message.Target{AudienceID: target},
		Content: message.Content{Text: "好久不见～{{staff_name}}给您留了一张满 50 减 15 的回归券，本周到店可用，期待再见！"},
	})
	if err != nil {
		return fmt.Errorf("demo: mass message: %w", err)
	}
	if camp.Status == message.CampaignStatus("draft") {
		if camp, err = a.Messages.SendCampaign(ctx, sys, camp.ID); err != nil {
			return fmt.Errorf("demo: mass message: %w", err)
		}
	}
	c.ops.campaign = true
	c.log.Info("demo: a win-back mass message goes out; the staff confirm it over the next minutes", "campaign", camp.ID, "status", camp.Status)
	return nil
}
