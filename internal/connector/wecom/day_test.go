package wecom_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tag"
)

// A day of a corp: Siyu connects to a simulated corp and syncs it, then the
// corp lives a day — customers add staff through channel codes, staff edit
// remarks and tag customers, customers and staff delete each other, customers
// are handed over, groups are created, joined, left, renamed and dismissed,
// corp tags are created, renamed, reordered and deleted, staff join and
// leave — while its callbacks arrive duplicated, out of order, late and, in
// the afternoon, some never. Siyu's state must equal the corp's: after the
// morning from the callbacks alone, after the afternoon once reconciliation
// repaired what the lost callbacks did not say (member-version gaps in
// groups are repaired before it).
//
// SIYU_DAY_SEED replays another day.
func TestDayOfACorp(t *testing.T) {
	seed := int64(4) // a day with every kind of operation, and a group repaired by member versions
	if s := os.Getenv("SIYU_DAY_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("SIYU_DAY_SEED: %v", err)
		}
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		started := time.Now()
		e := newDayEnv(t, d, seed)
		// The corp before Siyu is connected: staff in a store department,
		// customers with their relations and tags, two groups. Six people
		// are known from the mini program; two of them are contacts already.
		if err := wecomtest.Populate(e.sim.Corp, 80, 10, seed); err != nil {
			t.Fatal(err)
		}
		unions := make([]string, 6)
		for i := range unions {
			unions[i] = fmt.Sprintf("oDayMiniUnion%02d-%d", i, seed)
		}
		e.seedMiniProgram(t, unions)
		for i, u := range unions[:2] {
			if _, err := e.sim.PutContact(wecomtest.Contact{UnionID: u, Name: "小程序会员" + strconv.Itoa(i)},
				wecomtest.Follow{UserID: "staff0003", AddWay: 1, State: "store_checkout", CreateTime: e.sim.Now().Add(-time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		e.learn()

		// Connect, sync, and bind two tag groups both ways.
		e.configure(t)
		run := e.syncNow(t, wecom.SyncFull)
		e.bindTagGroup(t, "客户等级", "普通", "银卡", "金卡", "钻石")
		e.bindTagGroup(t, "兴趣", "护肤", "彩妆", "茶饮") // 茶饮 is Siyu's own: created in WeCom
		if _, err := e.svc.SyncDue(e.ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := e.svc.SyncStatus(e.ctx, e.ws.ID); err != nil || st.Current != nil || st.Last == nil || st.Last.Status != wecom.SyncDone {
			t.Fatalf("the tags sync after binding: %+v %v", st.Last, err)
		}
		e.requireEqual(t, "after the full sync")

		dy := &corpDay{e: e, rng: rand.New(rand.NewPCG(uint64(seed), 0xda7)), unions: unions[2:], done: map[string]int{}}
		staffList := e.sim.StaffList()
		for _, s := range staffList[len(staffList)-2:] {
			dy.leavers = append(dy.leavers, s.UserID)
		}
		e.sim.HoldCallbacks()

		// Morning: callbacks duplicated, reordered, some held back and
		// delivered after later ones; none lost. Callbacks alone converge.
		// Two members leave in the morning and their customers are
		// inherited; two join, one in the afternoon.
		dy.live(t, 120, deliveryChaos{dup: 0.15, late: 0.1}, map[int]string{
			20: "staff_leaves", 30: "staff_joins", 40: "inherit", 50: "staff_leaves", 60: "inherit", 70: "inherit"})
		dy.flush(t)
		e.quiesce(t)
		e.requireEqual(t, "after a morning of duplicated and out-of-order callbacks")
		morning := e.sent

		// Afternoon: some callbacks are lost for good.
		dy.live(t, 120, deliveryChaos{dup: 0.15, late: 0.1, lost: 0.1}, map[int]string{10: "staff_joins"})
		dy.flush(t)
		e.quiesce(t)
		healed := dy.requireGroupGapsHealed(t)
		rec := e.syncNow(t, wecom.SyncReconcile)
		e.quiesce(t)
		e.requireEqual(t, "after an afternoon with lost callbacks and a reconciliation")

		// Evening: staff tag customers in Siyu; the marks reach WeCom.
		marked := dy.markInSiyu(t)
		if _, err := e.svc.ProcessTagMarks(e.ctx); err != nil {
			t.Fatal(err)
		}
		e.requireEqual(t, "after tagging customers in Siyu")

		contacts, follows := e.sim.Counts()
		t.Logf("seed %d: full sync read %d relations; %d operations %v; %d callbacks (%d in the morning), %d duplicates, %d replays, %d late, %d lost; "+
			"%d groups repaired by member versions before reconciliation, which ended %d relations and added %d; %d customers tagged in Siyu; corp now %d contacts, %d relations; %s",
			seed, run.Counts.Contacts, dy.total, dy.done, len(e.sim.Callbacks()), morning, e.dups, e.replay, e.lates, e.lostN,
			healed, rec.Counts.EndedRelations, rec.Counts.NewRelations, marked, contacts, follows, time.Since(started).Round(time.Millisecond))
	})
}

// deliveryChaos says how a batch of callbacks is delivered: each is sent
// twice with probability dup, held back for a later batch with late, and
// lost for good with lost; the rest go in a shuffled order.
type deliveryChaos struct{ dup, late, lost float64 }

// corpDay drives the simulated corp through its operations.
type corpDay struct {
	e       *dayEnv
	rng     *rand.Rand
	unions  []string // mini-program unionids not yet WeCom contacts
	leavers []string // members who leave the corp today; nothing else happens to them
	chaos   deliveryChaos
	done    map[string]int
	total   int
	n       int // a counter for new names
}

// errSkip says an operation does not apply to the corp as it is now.
var errSkip = errors.New("not applicable")

// dayOp is one kind of thing that happens in a corp, with its weight.
type dayOp struct {
	name   string
	weight int
	do     func(ctx context.Context) error
}

func (dy *corpDay) ops() []dayOp {
	return []dayOp{
		{"add_new", 14, dy.addNew},
		{"add_existing", 6, dy.addExisting},
		{"edit", 16, dy.edit},
		{"customer_deletes", 5, dy.customerDeletes},
		{"staff_deletes", 4, dy.staffDeletes},
		{"transfer", 3, dy.transfer},
		{"inherit", 2, dy.inherit},
		{"transfer_fail", 1, dy.transferFail},
		{"create_group", 2, dy.createGroup},
		{"join_group", 10, dy.joinGroup},
		{"leave_group", 7, dy.leaveGroup},
		{"change_owner", 2, dy.changeOwner},
		{"rename_group", 2, dy.renameGroup},
		{"group_notice", 1, dy.groupNotice},
		{"dismiss_group", 1, dy.dismissGroup},
		{"create_tag", 2, dy.createTag},
		{"rename_tag", 2, dy.renameTag},
		{"delete_tag", 1, dy.deleteTag},
		{"create_tag_group", 1, dy.createTagGroup},
		{"delete_tag_group", 1, dy.deleteTagGroup},
		{"shuffle_tags", 1, dy.shuffleTags},
		{"staff_joins", 1, dy.staffJoins},
		{"staff_leaves", 1, dy.staffLeaves},
		{"staff_renamed", 1, dy.staffRenamed},
	}
}

// live runs n operations a minute or two apart, delivering the callbacks in
// batches of a few to a few dozen and processing the inbox after most.
func (dy *corpDay) live(t *testing.T, n int, chaos deliveryChaos, scheduled map[int]string) {
	t.Helper()
	dy.chaos = chaos
	ops := dy.ops()
	sum := 0
	for _, o := range ops {
		sum += o.weight
	}
	nextBatch := 5 + dy.rng.IntN(20)
	for i := 0; i < n; i++ {
		dy.e.sim.Advance(time.Second + time.Duration(dy.rng.IntN(150))*time.Second)
		for try := 0; ; try++ {
			if try == 100 {
				t.Fatal("no operation applies to the corp")
			}
			pick := dy.rng.IntN(sum)
			var op dayOp
			for _, o := range ops {
				if pick < o.weight {
					op = o
					break
				}
				pick -= o.weight
			}
			if name, ok := scheduled[i]; ok && try == 0 {
				op = ops[slices.IndexFunc(ops, func(o dayOp) bool { return o.name == name })]
			}
			err := op.do(dy.e.ctx)
			if errors.Is(err, errSkip) {
				continue
			}
			if err != nil {
				t.Fatalf("operation %d (%s): %v", dy.total+1, op.name, err)
			}
			dy.done[op.name]++
			dy.total++
			break
		}
		if nextBatch--; nextBatch == 0 || i == n-1 {
			dy.deliver(t, false)
			if dy.rng.IntN(10) < 7 {
				dy.e.sim.Advance(processingLag)
				if _, err := dy.e.svc.Drain(dy.e.ctx); err != nil {
					t.Fatalf("drain: %v", err)
				}
			}
			nextBatch = 5 + dy.rng.IntN(20)
		}
	}
}

// deliver sends the held callbacks as the chaos says; with final, nothing
// is held back any more and those held back before are sent too.
func (dy *corpDay) deliver(t *testing.T, final bool) {
	t.Helper()
	e, rng := dy.e, dy.rng
	held := e.sim.Held()
	var order, late []int
	for i, cb := range held {
		r := rng.Float64()
		switch {
		case r < dy.chaos.lost && !final:
			e.lost[cb.Seq] = true
			e.lostN++
			continue
		case r < dy.chaos.lost+dy.chaos.late && !final:
			late = append(late, cb.Seq)
			continue
		}
		order = append(order, i)
		if rng.Float64() < dy.chaos.dup {
			order = append(order, i)
			e.dups++
		}
	}
	if len(order) == 0 && len(held) > 0 {
		// Release with no order sends everything: keep one to send.
		cb := held[0]
		delete(e.lost, cb.Seq)
		late = slices.DeleteFunc(late, func(s int) bool { return s == cb.Seq })
		order = []int{0}
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	if len(held) > 0 {
		if err := e.sim.Release(e.ctx, order...); err != nil {
			t.Fatalf("release: %v", err)
		}
		e.sent += len(held)
	}
	// Callbacks held back from earlier batches arrive after this batch's.
	rng.Shuffle(len(e.late), func(i, j int) { e.late[i], e.late[j] = e.late[j], e.late[i] })
	for _, seq := range e.late {
		if err := e.sim.Redeliver(e.ctx, seq); err != nil {
			t.Fatalf("late delivery: %v", err)
		}
		e.lates++
	}
	e.late = late
	if final {
		for _, seq := range e.late {
			if err := e.sim.Redeliver(e.ctx, seq); err != nil {
				t.Fatalf("late delivery: %v", err)
			}
			e.lates++
		}
		e.late = nil
	}
	// Now and then WeCom sends an old callback again.
	if all := e.sim.Callbacks(); len(all) > 0 && rng.IntN(5) == 0 {
		seq := all[rng.IntN(len(all))].Seq
		if !e.lost[seq] && !slices.Contains(e.late, seq) {
			if err := e.sim.Redeliver(e.ctx, seq); err != nil {
				t.Fatalf("replay: %v", err)
			}
			e.replay++
		}
	}
}

// flush delivers everything still held back.
func (dy *corpDay) flush(t *testing.T) {
	t.Helper()
	dy.deliver(t, true)
}

// requireGroupGapsHealed checks, before any reconciliation, the groups
// whose last member change arrived and which lost no other callback: when
// member changes before it were lost, its member versions told Siyu so,
// and Siyu read the group again. It returns how many groups had lost member
// changes repaired that way.
func (dy *corpDay) requireGroupGapsHealed(t *testing.T) int {
	t.Helper()
	e := dy.e
	type story struct {
		lastMember   int
		lostMember   bool
		lostOther    bool
		memberEvents int
	}
	stories := map[string]*story{}
	for seq, ev := range e.corpCallbacks(t) {
		if ev.Event != wecom.EventChangeExternalChat {
			continue
		}
		s := stories[ev.ChatID]
		if s == nil {
			s = &story{}
			stories[ev.ChatID] = s
		}
		member := ev.UpdateDetail == wecom.UpdateAddMember || ev.UpdateDetail == wecom.UpdateDelMember
		switch {
		case member && e.lost[seq]:
			s.lostMember = true
		case e.lost[seq]:
			s.lostOther = true
		}
		if member {
			s.memberEvents++
			if seq > s.lastMember {
				s.lastMember = seq
			}
		}
	}
	var prefixes []string
	healed := 0
	for chat, s := range stories {
		if s.lostOther || s.memberEvents == 0 || e.lost[s.lastMember] {
			continue
		}
		prefixes = append(prefixes, "group/"+chat, "member/"+chat+"/")
		if s.lostMember {
			healed++
		}
	}
	if len(prefixes) > 0 {
		e.requireEqual(t, "groups after lost member changes, before reconciliation", prefixes...)
	}
	return healed
}

// markInSiyu tags a few customers in Siyu with a bound tag, and takes a
// bound tag WeCom gave away from some, as a person in the console does; it
// returns how many customers it changed. Only customers all of whose
// relations are with current members are chosen: WeCom cannot mark the
// customers of a member who left.
func (dy *corpDay) markInSiyu(t *testing.T) int {
	t.Helper()
	e := dy.e
	all, err := e.tags.AllTags(e.ctx, e.ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	var bound []tag.Tag
	for _, tg := range all {
		if tg.WeComTagID != "" {
			bound = append(bound, tg)
		}
	}
	if len(bound) == 0 {
		t.Fatal("no bound tags")
	}
	follows := map[string]int{}
	for _, u := range e.staffIDs {
		for _, f := range e.sim.FollowsOf(u) {
			follows[f.ExternalUserID]++
		}
	}
	var cands []string
	for _, c := range e.sim.Contacts() {
		if _, fs, _ := e.sim.Contact(c.ExternalUserID); len(fs) == follows[c.ExternalUserID] {
			cands = append(cands, c.ExternalUserID)
		}
	}
	app := tag.Application{Source: tag.SourceManual, SourceRef: "user:1", AppliedBy: "店长"}
	changed := 0
	for range min(4, len(cands)) {
		ext := pick(dy.rng, cands)
		pg, err := e.customers.List(e.ctx, e.ws.ID, customer.Query{Identifier: customer.KindWeComExtID + ":" + ext}, page.Request{})
		if err != nil || len(pg.Items) != 1 {
			t.Fatalf("customer of %s: %v %v", ext, pg.Items, err)
		}
		cid := pg.Items[0].ID
		held, err := e.tags.TagIDsOf(e.ctx, e.ws.ID, []int64{cid})
		if err != nil {
			t.Fatal(err)
		}
		var add, remove []int64
		if tg := pick(dy.rng, bound); !slices.Contains(held[cid], tg.ID) {
			add = append(add, tg.ID)
		}
		for _, tg := range bound {
			if slices.Contains(held[cid], tg.ID) && len(remove) == 0 && dy.rng.IntN(2) == 0 {
				remove = append(remove, tg.ID)
			}
		}
		if len(add)+len(remove) == 0 {
			continue
		}
		if _, err := e.tags.Update(e.ctx, e.ws.ID, cid, add, remove, app); err != nil {
			t.Fatal(err)
		}
		changed++
	}
	return changed
}

// Picking at random from the corp as it is now.

func (dy *corpDay) name() string {
	dy.n++
	return strconv.Itoa(dy.n)
}

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

// members returns the current members who take part in the day's work.
func (dy *corpDay) members() []string {
	var out []string
	for _, s := range dy.e.sim.StaffList() {
		if !slices.Contains(dy.leavers, s.UserID) {
			out = append(out, s.UserID)
		}
	}
	return out
}

// follow picks a current relation of a working member.
func (dy *corpDay) follow() (user, ext string, err error) {
	ms := dy.members()
	for range 10 {
		u := pick(dy.rng, ms)
		if fs := dy.e.sim.FollowsOf(u); len(fs) > 0 {
			return u, pick(dy.rng, fs).ExternalUserID, nil
		}
	}
	return "", "", errSkip
}

// otherMember picks a working member who does not follow ext.
func (dy *corpDay) otherMember(ext string, ok func(user string) bool) (string, error) {
	_, fs, _ := dy.e.sim.Contact(ext)
	ms := slices.DeleteFunc(dy.members(), func(u string) bool {
		return slices.ContainsFunc(fs, func(f wecomtest.Follow) bool { return f.UserID == u }) || !ok(u)
	})
	if len(ms) == 0 {
		return "", errSkip
	}
	return pick(dy.rng, ms), nil
}

func (dy *corpDay) liveGroups() []wecomtest.Group { return dy.e.sim.Groups() }

func (dy *corpDay) state() string {
	return pick(dy.rng, []string{"", "", "store-SH-01", "store-HZ-02", "live-0618", "parcel-card", "moments-ad"})
}

// Customers and staff.

func (dy *corpDay) addNew(ctx context.Context) error {
	ct := wecomtest.Contact{Name: "顾客" + dy.name(), Gender: 1 + dy.rng.IntN(2)}
	switch r := dy.rng.IntN(10); {
	case r < 3 && len(dy.unions) > 0:
		ct.UnionID, dy.unions = dy.unions[0], dy.unions[1:] // known from the mini program
	case r == 3:
		ct.Type, ct.CorpName = wecom.ContactWeCom, "合作伙伴"
	}
	u := pick(dy.rng, dy.members())
	res, err := dy.e.sim.AddContact(ctx, u, ct, dy.state())
	if err != nil {
		return err
	}
	dy.e.addContact(res.Contact.ExternalUserID)
	dy.e.everFollowed[dayPair{res.Contact.ExternalUserID, u}] = true
	return nil
}

func (dy *corpDay) addExisting(ctx context.Context) error {
	ext := pick(dy.rng, dy.e.contacts)
	u, err := dy.otherMember(ext, func(string) bool { return true })
	if err != nil {
		return err
	}
	if _, err := dy.e.sim.AddContact(ctx, u, wecomtest.Contact{ExternalUserID: ext}, dy.state()); err != nil {
		return err
	}
	dy.e.everFollowed[dayPair{ext, u}] = true
	return nil
}

func (dy *corpDay) edit(ctx context.Context) error {
	u, ext, err := dy.follow()
	if err != nil {
		return err
	}
	var live []string
	for _, g := range dy.e.sim.TagGroups() {
		for _, tg := range g.Tags {
			live = append(live, tg.ID)
		}
	}
	rng := dy.rng
	return dy.e.sim.EditContact(ctx, u, ext, func(f *wecomtest.Follow) {
		if rng.IntN(2) == 0 {
			f.Remark = "备注" + dy.name()
		}
		if rng.IntN(3) == 0 {
			f.Description = "喜欢" + pick(rng, []string{"乌龙", "抹茶", "果茶", "奶茶"})
		}
		if rng.IntN(3) > 0 && len(live) > 0 {
			if len(f.TagIDs) > 0 && rng.IntN(3) == 0 {
				f.TagIDs = slices.Delete(f.TagIDs, 0, 1)
			} else if id := pick(rng, live); !slices.Contains(f.TagIDs, id) {
				f.TagIDs = append(f.TagIDs, id)
			}
		}
	})
}

func (dy *corpDay) customerDeletes(ctx context.Context) error {
	u, ext, err := dy.follow()
	if err != nil {
		return err
	}
	return dy.e.sim.CustomerDeletesStaff(ctx, u, ext)
}

func (dy *corpDay) staffDeletes(ctx context.Context) error {
	u, ext, err := dy.follow()
	if err != nil {
		return err
	}
	return dy.e.sim.StaffDeletesCustomer(ctx, u, ext)
}

// transfer hands a customer over between working members (在职继承).
func (dy *corpDay) transfer(ctx context.Context) error {
	from, ext, err := dy.follow()
	if err != nil {
		return err
	}
	to, err := dy.otherMember(ext, func(u string) bool { return u != from })
	if err != nil {
		return err
	}
	if err := dy.e.sim.TransferContact(ctx, from, to, ext); err != nil {
		return err
	}
	dy.e.everFollowed[dayPair{ext, to}] = true
	return nil
}

// inherit hands a customer of a member who left over (离职继承). Only while
// no callback is lost: Siyu cannot tell that a member who left no longer has
// a customer unless WeCom says so.
func (dy *corpDay) inherit(ctx context.Context) error {
	if dy.chaos.lost > 0 {
		return errSkip
	}
	for _, l := range dy.leavers {
		if _, live := dy.e.sim.Staff(l); live {
			continue
		}
		fs := dy.e.sim.FollowsOf(l)
		if len(fs) == 0 {
			continue
		}
		ext := pick(dy.rng, fs).ExternalUserID
		to, err := dy.otherMember(ext, func(string) bool { return true })
		if err != nil {
			return err
		}
		if err := dy.e.sim.TransferContact(ctx, l, to, ext); err != nil {
			return err
		}
		dy.e.everFollowed[dayPair{ext, to}] = true
		return nil
	}
	return errSkip
}

func (dy *corpDay) transferFail(ctx context.Context) error {
	ext := pick(dy.rng, dy.e.contacts)
	to, err := dy.otherMember(ext, func(u string) bool { return !dy.e.everFollowed[dayPair{ext, u}] })
	if err != nil {
		return err
	}
	reason := pick(dy.rng, []string{wecom.FailReasonCustomerRefused, wecom.FailReasonCustomerLimitExceed})
	if err := dy.e.sim.FailTransfer(ctx, to, ext, reason); err != nil {
		return err
	}
	dy.e.failedTo[dayPair{ext, to}] = true
	return nil
}

func (dy *corpDay) staffJoins(ctx context.Context) error {
	if len(dy.e.staffIDs) >= 14 {
		return errSkip
	}
	id := "new" + dy.name()
	if _, err := dy.e.sim.AddStaff(ctx, wecomtest.Staff{UserID: id, Name: "新同事" + id, Departments: []int64{1000}, Position: "导购"}); err != nil {
		return err
	}
	dy.e.staffIDs = append(dy.e.staffIDs, id)
	return nil
}

func (dy *corpDay) staffLeaves(ctx context.Context) error {
	for _, l := range dy.leavers {
		if _, live := dy.e.sim.Staff(l); live {
			return dy.e.sim.DeleteStaff(ctx, l)
		}
	}
	return errSkip
}

func (dy *corpDay) staffRenamed(ctx context.Context) error {
	u := pick(dy.rng, dy.members())
	st, _ := dy.e.sim.Staff(u)
	st.Name = "店员" + dy.name()
	_, err := dy.e.sim.UpdateStaff(ctx, u, st)
	return err
}

// Customer groups.

func (dy *corpDay) createGroup(ctx context.Context) error {
	if len(dy.liveGroups()) >= 8 {
		return errSkip
	}
	owner := pick(dy.rng, dy.members())
	var ids []string
	for range 1 + dy.rng.IntN(4) {
		if ext := pick(dy.rng, dy.e.contacts); !slices.Contains(ids, ext) {
			ids = append(ids, ext)
		}
	}
	g, err := dy.e.sim.CreateGroup(ctx, owner, "茶友群"+dy.name(), ids...)
	if err != nil {
		return err
	}
	dy.e.chats = append(dy.e.chats, g.ChatID)
	return nil
}

func inGroup(g wecomtest.Group, id string) bool {
	return slices.ContainsFunc(g.Members, func(m wecomtest.Member) bool { return m.UserID == id })
}

func (dy *corpDay) joinGroup(ctx context.Context) error {
	gs := dy.liveGroups()
	if len(gs) == 0 {
		return errSkip
	}
	g := pick(dy.rng, gs)
	var ids []string
	for range 1 + dy.rng.IntN(3) {
		id := pick(dy.rng, dy.e.contacts)
		if dy.rng.IntN(7) == 0 {
			id = pick(dy.rng, dy.members())
		}
		if !inGroup(g, id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return errSkip
	}
	return dy.e.sim.JoinGroup(ctx, g.ChatID, ids, pick(dy.rng, []int{wecom.JoinByInvite, wecom.JoinByInviteLink, wecom.JoinByQRCode}))
}

func (dy *corpDay) leaveGroup(ctx context.Context) error {
	gs := dy.liveGroups()
	if len(gs) == 0 {
		return errSkip
	}
	g := pick(dy.rng, gs)
	var ids []string
	for range 1 + dy.rng.IntN(2) {
		m := pick(dy.rng, g.Members)
		if m.UserID != g.Owner && !slices.Contains(ids, m.UserID) && !slices.Contains(dy.leavers, m.UserID) {
			ids = append(ids, m.UserID)
		}
	}
	if len(ids) == 0 {
		return errSkip
	}
	return dy.e.sim.LeaveGroup(ctx, g.ChatID, ids, pick(dy.rng, []int{wecom.QuitSceneSelf, wecom.QuitSceneRemoved}))
}

func (dy *corpDay) changeOwner(ctx context.Context) error {
	gs := dy.liveGroups()
	if len(gs) == 0 {
		return errSkip
	}
	g := pick(dy.rng, gs)
	ms := dy.members()
	var cands []string
	for _, m := range g.Members {
		if m.Type == wecom.MemberStaff && m.UserID != g.Owner && slices.Contains(ms, m.UserID) {
			cands = append(cands, m.UserID)
		}
	}
	if len(cands) == 0 {
		// Bring a colleague in first; the hand-over comes another time.
		u := pick(dy.rng, ms)
		if inGroup(g, u) {
			return errSkip
		}
		return dy.e.sim.JoinGroup(ctx, g.ChatID, []string{u}, wecom.JoinByInvite)
	}
	return dy.e.sim.ChangeGroupOwner(ctx, g.ChatID, pick(dy.rng, cands))
}

func (dy *corpDay) renameGroup(ctx context.Context) error {
	gs := dy.liveGroups()
	if len(gs) == 0 {
		return errSkip
	}
	return dy.e.sim.ChangeGroupName(ctx, pick(dy.rng, gs).ChatID, "新品品鉴群"+dy.name())
}

func (dy *corpDay) groupNotice(ctx context.Context) error {
	gs := dy.liveGroups()
	if len(gs) == 0 {
		return errSkip
	}
	return dy.e.sim.ChangeGroupNotice(ctx, pick(dy.rng, gs).ChatID, "本周新品第二杯半价 #"+dy.name())
}

func (dy *corpDay) dismissGroup(ctx context.Context) error {
	gs := dy.liveGroups()
	if len(gs) <= 3 {
		return errSkip
	}
	return dy.e.sim.DismissGroup(ctx, pick(dy.rng, gs).ChatID)
}

// Corp tags.

func (dy *corpDay) createTag(ctx context.Context) error {
	g := pick(dy.rng, dy.e.sim.TagGroups())
	_, err := dy.e.sim.CreateTag(ctx, g.ID, "新标签"+dy.name(), int64(dy.rng.IntN(5)))
	return err
}

func (dy *corpDay) renameTag(ctx context.Context) error {
	g := pick(dy.rng, dy.e.sim.TagGroups())
	if dy.rng.IntN(5) == 0 {
		return dy.e.sim.UpdateTag(ctx, g.ID, g.Name+"·"+dy.name(), g.Order)
	}
	tg := pick(dy.rng, g.Tags)
	return dy.e.sim.UpdateTag(ctx, tg.ID, "改名"+dy.name(), tg.Order)
}

func (dy *corpDay) deleteTag(ctx context.Context) error {
	g := pick(dy.rng, dy.e.sim.TagGroups())
	if len(g.Tags) < 3 {
		return errSkip
	}
	return dy.e.sim.DeleteTag(ctx, pick(dy.rng, g.Tags).ID)
}

func (dy *corpDay) createTagGroup(ctx context.Context) error {
	n := dy.name()
	_, err := dy.e.sim.CreateTagGroup(ctx, "活动"+n, int64(dy.rng.IntN(5)), "报名"+n, "到场"+n)
	return err
}

// deleteTagGroup deletes a group no Siyu group is bound to.
func (dy *corpDay) deleteTagGroup(ctx context.Context) error {
	var cands []string
	for _, g := range dy.e.sim.TagGroups() {
		if !dy.e.bound[g.ID] {
			cands = append(cands, g.ID)
		}
	}
	if len(cands) <= 2 {
		return errSkip
	}
	return dy.e.sim.DeleteTag(ctx, pick(dy.rng, cands))
}

func (dy *corpDay) shuffleTags(ctx context.Context) error {
	g := pick(dy.rng, dy.e.sim.TagGroups())
	ids := make([]string, len(g.Tags))
	for i, tg := range g.Tags {
		ids[i] = tg.ID
	}
	dy.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return dy.e.sim.ShuffleTags(ctx, g.ID, ids)
}
