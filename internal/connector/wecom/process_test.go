package wecom_test

import (
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
)

func hasIdentity(ids []customer.Identity, kind, value string) bool {
	return slices.Contains(ids, customer.Identity{Kind: kind, Value: value})
}

// A WeCom add becomes a customer with the external_userid and the unionid;
// when the same person is already known from the mini program (same
// unionid), it is that customer.
func TestAddContactResolvesThroughOneID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const union = "oUNIONID-of-wang"
		var mini int64
		f.tx(t, func(tx *sql.Tx) (err error) {
			mini, err = f.customers.Resolve(f.ctx, tx, f.ws.ID, customer.Observation{Source: "miniapp",
				Identities: []customer.Identity{{Kind: customer.KindMiniOpenID, Value: "mini-1"}, {Kind: customer.KindUnionID, Value: union}}})
			return err
		})
		res, err := f.sim.AddContact(f.ctx, "zhangsan", wecomtest.Contact{Name: "王五", UnionID: union, Gender: 2, Avatar: "https://img/x.png"}, "store-12")
		if err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		f.requireDone(t)
		c := f.customerByExt(t, res.Contact.ExternalUserID)
		if c.ID != mini {
			t.Fatalf("the WeCom contact is customer %d, not the mini-program customer %d", c.ID, mini)
		}
		if c.Name != "王五" || c.Gender != "female" || c.Avatar != "https://img/x.png" {
			t.Fatalf("customer %+v", c)
		}
		ids, err := f.customers.Identities(f.ctx, f.ws.ID, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !hasIdentity(ids, customer.KindWeComExtID, res.Contact.ExternalUserID) || !hasIdentity(ids, customer.KindUnionID, union) ||
			!hasIdentity(ids, customer.KindMiniOpenID, "mini-1") {
			t.Fatalf("identities %+v", ids)
		}
		r, ok := f.relation(t, c.ID, "zhangsan")
		if !ok || r.Status != staff.RelationActive || r.State != "store-12" || r.WelcomeCode != res.WelcomeCode || r.AddWay != 1 ||
			r.StaffName != "zhangsan" || r.AddedAt.IsZero() {
			t.Fatalf("relation %+v", r)
		}
		if kinds := f.timelineKinds(t, c.ID); !slices.Equal(kinds, []string{wecom.TimelineAddContact}) {
			t.Fatalf("timeline %v", kinds)
		}
		// A brand-new person becomes a new customer whose first source is
		// WeCom and the channel code.
		res2, err := f.sim.AddContact(f.ctx, "lisi", wecomtest.Contact{Name: "赵六"}, "live-0618")
		if err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		c2 := f.customerByExt(t, res2.Contact.ExternalUserID)
		if c2.ID == c.ID || c2.FirstSource != wecom.Source || c2.FirstSourceCode != "live-0618" {
			t.Fatalf("new customer %+v", c2)
		}
		// The timeline source is registered: the customer timeline shows it.
		tl, err := f.customers.Timeline(f.ctx, f.ws.ID, c2.ID, page.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if len(tl.Items) != 1 || tl.Items[0].Kind != wecom.TimelineAddContact || !contains(tl.Items[0].Title, "lisi") {
			t.Fatalf("timeline %+v", tl.Items)
		}
	})
}

// A customer who deletes their staff member is lost to that staff member
// (del_follow_user); a handover is not a loss; a half add is not yet mutual.
func TestContactDeletions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		a, err := f.sim.AddContact(f.ctx, "zhangsan", wecomtest.Contact{Name: "甲"}, "")
		if err != nil {
			t.Fatal(err)
		}
		f.sim.Advance(time.Minute)
		if err := f.sim.CustomerDeletesStaff(f.ctx, "zhangsan", a.Contact.ExternalUserID); err != nil {
			t.Fatal(err)
		}
		b, err := f.sim.AddHalfContact(f.ctx, "lisi", wecomtest.Contact{Name: "乙"}, "")
		if err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		f.requireDone(t)
		ca := f.customerByExt(t, a.Contact.ExternalUserID)
		r, _ := f.relation(t, ca.ID, "zhangsan")
		if r.Status != staff.RelationDeletedByCustomer || r.DeletedAt.IsZero() || r.Status.Current() {
			t.Fatalf("after del_follow_user: %+v", r)
		}
		if kinds := f.timelineKinds(t, ca.ID); !slices.Equal(kinds, []string{wecom.TimelineAddContact, wecom.TimelineDelFollowUser}) {
			t.Fatalf("timeline %v", kinds)
		}
		cb := f.customerByExt(t, b.Contact.ExternalUserID)
		if r, _ := f.relation(t, cb.ID, "lisi"); r.Status != staff.RelationHalf {
			t.Fatalf("half add: %+v", r)
		}
		// Handover (Source=DELETE_BY_TRANSFER) and a failed handover.
		good := f.crypt(t, f.sim.CallbackToken(), f.sim.EncodingAESKey(), f.sim.CorpID())
		at := f.sim.Now().Unix() + 60
		if status, _ := f.post(t, good, eventXML(f.sim.CorpID(), at, wecom.EventChangeExternalContact, wecom.ChangeDelExternalContact,
			"UserID", "lisi", "ExternalUserID", b.Contact.ExternalUserID, "Source", wecom.SourceDeleteByTransfer)); status != 200 {
			t.Fatal(status)
		}
		if status, _ := f.post(t, good, eventXML(f.sim.CorpID(), at, wecom.EventChangeExternalContact, wecom.ChangeTransferFail,
			"UserID", "zhangsan", "ExternalUserID", b.Contact.ExternalUserID, "FailReason", wecom.FailReasonCustomerRefused)); status != 200 {
			t.Fatal(status)
		}
		f.drain(t)
		f.requireDone(t)
		if r, _ := f.relation(t, cb.ID, "lisi"); r.Status != staff.RelationTransferred {
			t.Fatalf("handover: %+v", r)
		}
		if r, _ := f.relation(t, cb.ID, "zhangsan"); r.Status != staff.RelationTransferFailed || r.TransferFailReason != wecom.FailReasonCustomerRefused {
			t.Fatalf("failed handover: %+v", r)
		}
		kinds := f.timelineKinds(t, cb.ID)
		if !slices.Contains(kinds, wecom.TimelineTransfer) || !slices.Contains(kinds, wecom.TimelineTransferFail) {
			t.Fatalf("timeline %v", kinds)
		}
		counts, err := f.staff.CustomerCounts(f.ctx, f.ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(counts) != 0 {
			t.Fatalf("customers per staff %v", counts)
		}
	})
}

// Whatever order a contact's add, edit, deletion and re-add arrive in, with
// duplicates, Siyu ends where WeCom is.
func TestOutOfOrderContactEventsConverge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		orders := [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1, 1}, {1, 3, 0, 2, 3}}
		for _, order := range orders {
			f := newFixture(t, d)
			f.sim.HoldCallbacks()
			a, err := f.sim.AddContact(f.ctx, "zhangsan", wecomtest.Contact{Name: "丙"}, "code-a")
			if err != nil {
				t.Fatal(err)
			}
			ext := a.Contact.ExternalUserID
			f.sim.Advance(time.Minute)
			if err := f.sim.EditContact(f.ctx, "zhangsan", ext, func(fl *wecomtest.Follow) { fl.Remark = "VIP 丙" }); err != nil {
				t.Fatal(err)
			}
			f.sim.Advance(time.Minute)
			if err := f.sim.StaffDeletesCustomer(f.ctx, "zhangsan", ext); err != nil {
				t.Fatal(err)
			}
			f.sim.Advance(time.Minute)
			again, err := f.sim.AddContact(f.ctx, "zhangsan", wecomtest.Contact{ExternalUserID: ext}, "code-b")
			if err != nil {
				t.Fatal(err)
			}
			if err := f.sim.Release(f.ctx, order...); err != nil {
				t.Fatal(err)
			}
			f.drain(t)
			f.requireDone(t)
			c := f.customerByExt(t, ext)
			r, ok := f.relation(t, c.ID, "zhangsan")
			_, follows, _ := f.sim.Contact(ext)
			if !ok || len(follows) != 1 || r.Status != staff.RelationActive || r.State != "code-b" || r.WelcomeCode != again.WelcomeCode ||
				r.Remark != follows[0].Remark ||
				!r.AddedAt.Equal(follows[0].CreateTime.Truncate(time.Second).UTC()) {
				t.Fatalf("order %v: relation %+v, WeCom %+v", order, r, follows)
			}
			if n := len(f.timelineKinds(t, c.ID)); n != 4 {
				t.Fatalf("order %v: %d timeline entries", order, n)
			}
			// The workspace is dropped for the next order.
			f.reset(t)
		}
	})
}

// reset empties the workspace's WeCom data so a fixture can be built again
// on the same database.
func (f *fixture) reset(t *testing.T) {
	t.Helper()
	for _, q := range []string{
		`UPDATE workspaces SET slug = slug || '-' || id WHERE id = $1`,
	} {
		if _, err := f.d.ExecContext(f.ctx, q, f.ws.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// Corp tag events update the Siyu tags bound to WeCom's (and leave the
// others), and the tags a staff member gives a customer in WeCom reach the
// customer in Siyu.
func TestCorpTagEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		interest, err := f.sim.PutTagGroup(wecomtest.TagGroup{Name: "兴趣", Tags: []wecomtest.Tag{{Name: "绿茶", Order: 3}, {Name: "红茶", Order: 2}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.sim.PutTagGroup(wecomtest.TagGroup{Name: "渠道", Tags: []wecomtest.Tag{{Name: "门店"}}}); err != nil {
			t.Fatal(err)
		}
		p := f.admin()
		g, err := f.tags.CreateGroup(f.ctx, p, tag.GroupInput{Name: "兴趣", Dimension: tag.DimProduct})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.tags.BindWeComGroup(f.ctx, p, g.ID, interest.ID); err != nil {
			t.Fatal(err)
		}
		local, err := f.tags.CreateTag(f.ctx, p, tag.TagInput{GroupID: g.ID, Name: "本地"})
		if err != nil {
			t.Fatal(err)
		}
		// A new tag in the bound group: WeCom's list is read, bound tags made.
		white, err := f.sim.CreateTag(f.ctx, interest.ID, "白茶", 1)
		if err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		f.requireDone(t)
		byWeCom := func() map[string]tag.Tag {
			all, err := f.tags.AllTags(f.ctx, f.ws.ID)
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]tag.Tag{}
			for _, x := range all {
				m[x.WeComTagID] = x
			}
			return m
		}
		bound := byWeCom()
		green, _ := f.sim.TagByName("兴趣", "绿茶")
		red, _ := f.sim.TagByName("兴趣", "红茶")
		if len(bound) != 4 || bound[white.ID].Name != "白茶" || bound[green.ID].Name != "绿茶" || bound[red.ID].GroupID != g.ID ||
			bound[""].ID != local.ID {
			t.Fatalf("tags after create: %+v", bound)
		}
		if bound[green.ID].SortOrder >= bound[red.ID].SortOrder {
			t.Fatalf("WeCom's order (higher first) is not kept: %+v", bound)
		}
		if n := f.count(t, `SELECT count(*) FROM wecom_corp_tags WHERE tenant_id = $1`, f.ws.ID); n != 6 {
			t.Fatalf("%d corp tags mirrored", n)
		}
		// A staff member tags a customer in WeCom: the customer gets the bound tag.
		a, err := f.sim.AddContact(f.ctx, "zhangsan", wecomtest.Contact{Name: "丁"}, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.sim.EditContact(f.ctx, "zhangsan", a.Contact.ExternalUserID, func(fl *wecomtest.Follow) { fl.TagIDs = []string{green.ID, red.ID} }); err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		c := f.customerByExt(t, a.Contact.ExternalUserID)
		held := func() []string {
			as, err := f.tags.TagsOf(f.ctx, f.ws.ID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, x := range as {
				out = append(out, x.Name+"/"+string(x.Source))
			}
			slices.Sort(out)
			return out
		}
		if got := held(); !slices.Equal(got, []string{"红茶/sync", "绿茶/sync"}) {
			t.Fatalf("customer tags %v", got)
		}
		if r, _ := f.relation(t, c.ID, "zhangsan"); len(r.ChannelTagIDs) != 2 {
			t.Fatalf("relation tags %+v", r)
		}
		// Renamed and deleted in WeCom: the same in Siyu; the unbound tag stays.
		if err := f.sim.UpdateTag(f.ctx, green.ID, "龙井", 3); err != nil {
			t.Fatal(err)
		}
		if err := f.sim.DeleteTag(f.ctx, red.ID); err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		f.requireDone(t)
		bound = byWeCom()
		if bound[green.ID].Name != "龙井" || bound[red.ID].ID != 0 || bound[""].ID != local.ID {
			t.Fatalf("tags after rename and delete: %+v", bound)
		}
		if got := held(); !slices.Equal(got, []string{"龙井/sync"}) {
			t.Fatalf("customer tags %v", got)
		}
		// The staff member takes the tag off in WeCom: Siyu takes it off.
		if err := f.sim.EditContact(f.ctx, "zhangsan", a.Contact.ExternalUserID, func(fl *wecomtest.Follow) { fl.TagIDs = nil }); err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		if got := held(); len(got) != 0 {
			t.Fatalf("customer tags %v", got)
		}
	})
}

// Group members joining and leaving are applied as they come while the
// member versions follow each other; a missed event (a version gap) makes
// Siyu read the group again, and Siyu's members equal WeCom's.
func TestGroupMembersAndMissedEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		var exts []string
		for i := range 4 {
			res, err := f.sim.AddContact(f.ctx, "zhangsan", wecomtest.Contact{Name: "群友" + string(rune('A'+i))}, "")
			if err != nil {
				t.Fatal(err)
			}
			exts = append(exts, res.Contact.ExternalUserID)
		}
		g, err := f.sim.CreateGroup(f.ctx, "zhangsan", "福利群", exts[0])
		if err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		gets := f.sim.CallCount("externalcontact/groupchat/get")
		// In sequence: applied from the callback alone.
		if err := f.sim.JoinGroup(f.ctx, g.ChatID, []string{exts[1]}, wecom.JoinByQRCode); err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		if n := f.sim.CallCount("externalcontact/groupchat/get"); n != gets {
			t.Fatalf("an in-sequence join read the group (%d → %d)", gets, n)
		}
		members := func() map[string]string {
			rows, err := f.d.QueryContext(f.ctx, `SELECT member_id, status FROM wecom_group_members WHERE tenant_id = $1 AND chat_id = $2`, f.ws.ID, g.ChatID)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			m := map[string]string{}
			for rows.Next() {
				var id, st string
				if err := rows.Scan(&id, &st); err != nil {
					t.Fatal(err)
				}
				m[id] = st
			}
			return m
		}
		if m := members(); m[exts[1]] != "in" || m["zhangsan"] != "in" || m[exts[0]] != "in" {
			t.Fatalf("members %v", m)
		}
		c1 := f.customerByExt(t, exts[1])
		if kinds := f.timelineKinds(t, c1.ID); kinds[len(kinds)-1] != wecom.TimelineJoinGroup {
			t.Fatalf("timeline %v", kinds)
		}
		// A join whose callback is lost, then a leave: the gap is noticed.
		f.sim.HoldCallbacks()
		if err := f.sim.JoinGroup(f.ctx, g.ChatID, []string{exts[2], exts[3]}, wecom.JoinByInvite); err != nil {
			t.Fatal(err)
		}
		f.sim.ResumeCallbacks()
		if err := f.sim.Release(f.ctx, []int{}...); err != nil {
			t.Fatal(err)
		}
		f.sim.Advance(time.Minute)
		if err := f.sim.LeaveGroup(f.ctx, g.ChatID, []string{exts[0]}, wecom.QuitSceneRemoved); err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		f.requireDone(t)
		if n := f.sim.CallCount("externalcontact/groupchat/get"); n != gets+1 {
			t.Fatalf("the missed event did not make Siyu read the group (%d → %d)", gets, n)
		}
		want, _ := f.sim.Group(g.ChatID)
		m := members()
		in := 0
		for _, st := range m {
			if st == "in" {
				in++
			}
		}
		if in != len(want.Members) || m[exts[0]] != "left" || m[exts[2]] != "in" || m[exts[3]] != "in" {
			t.Fatalf("members %v, WeCom %+v", m, want.Members)
		}
		var version string
		if err := f.d.QueryRowContext(f.ctx, `SELECT member_version FROM wecom_groups WHERE tenant_id = $1 AND chat_id = $2`, f.ws.ID, g.ChatID).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if version != want.MemberVersion {
			t.Fatalf("version %s, WeCom %s", version, want.MemberVersion)
		}
		c0 := f.customerByExt(t, exts[0])
		if kinds := f.timelineKinds(t, c0.ID); kinds[len(kinds)-1] != wecom.TimelineLeaveGroup {
			t.Fatalf("timeline %v", kinds)
		}
		if kinds := f.timelineKinds(t, f.customerByExt(t, exts[3]).ID); kinds[len(kinds)-1] != wecom.TimelineJoinGroup {
			t.Fatalf("the missed joiner's timeline %v", kinds)
		}
		// Renamed, then dismissed.
		if err := f.sim.ChangeGroupName(f.ctx, g.ChatID, "会员福利群"); err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		var name string
		_ = f.d.QueryRowContext(f.ctx, `SELECT name FROM wecom_groups WHERE tenant_id = $1 AND chat_id = $2`, f.ws.ID, g.ChatID).Scan(&name)
		if name != "会员福利群" {
			t.Fatalf("name %q", name)
		}
		if err := f.sim.DismissGroup(f.ctx, g.ChatID); err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		f.requireDone(t)
		if n := f.count(t, `SELECT count(*) FROM wecom_group_members WHERE tenant_id = $1 AND chat_id = $2 AND status = 'in'`, f.ws.ID, g.ChatID); n != 0 {
			t.Fatalf("%d members left in a dismissed group", n)
		}
	})
}

// Directory events keep staff in line; a deleted member is resigned and
// their customers stay, awaiting inheritance.
func TestDirectoryEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		if _, err := f.sim.AddStaff(f.ctx, wecomtest.Staff{UserID: "wangwu", Name: "王五", Position: "导购"}); err != nil {
			t.Fatal(err)
		}
		a, err := f.sim.AddContact(f.ctx, "wangwu", wecomtest.Contact{Name: "戊"}, "")
		if err != nil {
			t.Fatal(err)
		}
		f.sim.Advance(time.Minute)
		if err := f.sim.DeleteStaff(f.ctx, "wangwu"); err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		f.requireDone(t)
		m, err := f.staff.MemberByWeComUserID(f.ctx, f.ws.ID, "wangwu")
		if err != nil {
			t.Fatal(err)
		}
		if m.Name != "王五" || m.Title != "导购" || m.Status != staff.Resigned {
			t.Fatalf("member %+v", m)
		}
		c := f.customerByExt(t, a.Contact.ExternalUserID)
		if r, _ := f.relation(t, c.ID, "wangwu"); r.Status != staff.RelationActive {
			t.Fatalf("the resigned member's customer: %+v", r)
		}
	})
}

// Two profiles that turn out to be one person: the WeCom rows follow the
// survivor.
func TestMergeMovesWeComRows(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		var older int64
		f.tx(t, func(tx *sql.Tx) (err error) {
			older, err = f.customers.Resolve(f.ctx, tx, f.ws.ID, customer.Observation{Source: "miniapp",
				Identities: []customer.Identity{{Kind: customer.KindUserID, Value: "member-9"}}})
			return err
		})
		a, err := f.sim.AddContact(f.ctx, "zhangsan", wecomtest.Contact{Name: "己"}, "")
		if err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		c := f.customerByExt(t, a.Contact.ExternalUserID)
		if c.ID == older {
			t.Fatal("merged too early")
		}
		f.tx(t, func(tx *sql.Tx) error {
			_, err := f.customers.Resolve(f.ctx, tx, f.ws.ID, customer.Observation{Source: "miniapp",
				Identities: []customer.Identity{{Kind: customer.KindUserID, Value: "member-9"}, {Kind: customer.KindUnionID, Value: a.Contact.UnionID}}})
			return err
		})
		if got := f.customerByExt(t, a.Contact.ExternalUserID); got.ID != older {
			t.Fatalf("not merged: %d", got.ID)
		}
		if _, ok := f.relation(t, older, "zhangsan"); !ok {
			t.Fatal("the relation did not follow the merge")
		}
		if kinds := f.timelineKinds(t, older); !slices.Contains(kinds, wecom.TimelineAddContact) {
			t.Fatalf("timeline %v", kinds)
		}
		if n := f.count(t, `SELECT count(*) FROM wecom_contacts WHERE tenant_id = $1 AND customer_id = $2`, f.ws.ID, older); n != 1 {
			t.Fatalf("%d contacts on the survivor", n)
		}
	})
}

// A failing event is retried with back-off and finally given up, with
// WeCom's explanation; an operator can retry it.
func TestFailuresRetryAndGiveUp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{maxAttempts: 3})
		f.sim.SetForbidden("externalcontact/get", true)
		a, err := f.sim.AddContact(f.ctx, "zhangsan", wecomtest.Contact{Name: "庚"}, "")
		if err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		es := f.inbox(t)
		if es[0].Status != wecom.InboxPending || es[0].Attempts != 1 || !contains(es[0].Error, "可调用应用") || !es[0].NextAttemptAt.After(f.sim.Now()) {
			t.Fatalf("after one failure: %+v", es[0])
		}
		for range 5 {
			f.sim.Advance(time.Hour)
			f.drain(t)
		}
		es = f.inbox(t)
		if es[0].Status != wecom.InboxFailed || es[0].Attempts != 3 {
			t.Fatalf("after giving up: %+v", es[0])
		}
		f.sim.SetForbidden("externalcontact/get", false)
		if _, err := f.svc.Retry(f.ctx, f.admin(), es[0].ID); err != nil {
			t.Fatal(err)
		}
		f.drain(t)
		f.requireDone(t)
		c := f.customerByExt(t, a.Contact.ExternalUserID)
		if c.Name != "庚" {
			t.Fatalf("customer %+v", c)
		}
		if _, err := f.svc.Retry(f.ctx, f.admin(), es[0].ID); err == nil {
			t.Fatal("a done event was retried")
		}
	})
}
