package wecom_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// The "day of a corp" test's machinery: a workspace connected to a simulated
// corp whose callbacks reach the connector's endpoint over HTTP, the record
// of what the corp did and which callbacks were lost, and the comparison of
// Siyu's state with the corp's as two sets of facts.

// dayLog keeps the service's warnings, shown when the test fails.
type dayLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *dayLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// tail returns the last n bytes logged.
func (l *dayLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// dayPair names one staff member's relation with one customer.
type dayPair struct{ ext, user string }

// dayEnv is one workspace connected to a simulated corp.
type dayEnv struct {
	ctx       context.Context
	d         *db.DB
	sim       *wecomtest.Server
	svc       *wecom.Service
	customers *customer.Service
	staff     *staff.Service
	tags      *tag.Service
	ws        tenant.Workspace
	logs      *dayLog

	// What the corp has had, in the order it appeared, so that the sim's
	// side of the comparison covers contacts, staff and groups that are
	// gone from its lists.
	contacts     []string
	knownContact map[string]bool
	staffIDs     []string
	chats        []string
	everFollowed map[dayPair]bool
	initial      map[dayPair]bool // relations of the corp before the day
	initialChat  map[string]bool  // groups of the corp before the day
	failedTo     map[dayPair]bool // transfer_fail to a member who never followed the customer

	bound map[string]bool  // WeCom tag groups bound to Siyu groups
	mini  map[string]int64 // unionid → the mini-program customer who has it

	// Delivery bookkeeping: callbacks lost for good, callbacks held back
	// for a later batch, and counts for the log.
	lost                             map[int]bool
	late                             []int
	sent, dups, lates, lostN, replay int
}

const daySlug = "teatime"

func newDayEnv(t *testing.T, d *db.DB, seed int64) *dayEnv {
	t.Helper()
	ctx := context.Background()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := pii.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	logs := &dayLog{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tenants := tenant.NewService(d, tenant.Options{Logger: log})
	ws, err := tenants.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: daySlug, Name: "茶语时光"})
	if err != nil {
		t.Fatal(err)
	}
	e := &dayEnv{ctx: ctx, d: d, ws: ws, logs: logs, knownContact: map[string]bool{}, everFollowed: map[dayPair]bool{}, initial: map[dayPair]bool{},
		initialChat: map[string]bool{},
		failedTo:    map[dayPair]bool{}, bound: map[string]bool{}, mini: map[string]int64{}, lost: map[int]bool{}}
	e.customers = customer.NewService(d, kr, log)
	e.staff = staff.NewService(d)
	e.tags = tag.NewService(d, tag.Options{Logger: log, Auditor: tenants})
	// The callback endpoint mounted as the app mounts it.
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e.sim = wecomtest.New(wecomtest.Options{
		CorpOptions: wecomtest.CorpOptions{Seed: seed},
		CallbackURL: srv.URL + "/connect/wecom/" + daySlug + "/callback",
		Logger:      log,
	})
	t.Cleanup(e.sim.Close)
	// Siyu's clock is the corp's: event times, sync runs and retries all
	// live in simulated time.
	e.svc = wecom.NewService(d, kr, e.customers, e.staff, e.tags, tenants, wecom.Options{
		Logger: log, PublicURL: "https://siyu.example.com", Now: e.sim.Now,
		ClientConfig: func(_ int64, c *wecom.Config) { c.Now, c.Sleep = e.sim.Now, e.sim.Sleep },
	})
	e.customers.OnMerge("staff_relations", e.staff.MoveCustomer)
	e.customers.OnMerge("wecom", e.svc.MoveCustomer)
	e.customers.AddTimelineSource(e.svc)
	mux.Handle("GET "+wecom.CallbackPath, e.svc.Handler())
	mux.Handle("POST "+wecom.CallbackPath, e.svc.Handler())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d; connector log (warnings):\n%s", seed, logs.tail(6000))
		}
	})
	return e
}

func (e *dayEnv) admin() tenant.Principal { return tenant.System(e.ws.ID) }

// configure connects the workspace to the simulated corp, as an operator
// does in the console, and has the corp verify the callback URL.
func (e *dayEnv) configure(t *testing.T) {
	t.Helper()
	if _, err := e.svc.Configure(e.ctx, e.admin(), wecom.SettingsInput{
		CorpID: e.sim.CorpID(), AgentID: e.sim.AgentID(), Secret: e.sim.Secret(), Token: e.sim.CallbackToken(),
		EncodingAESKey: e.sim.EncodingAESKey(), BaseURL: e.sim.URL(),
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.VerifyCallbackURL(e.ctx); err != nil {
		t.Fatal(err)
	}
}

// learn records the corp's current contacts, staff, groups and relations as
// known, so the comparison also covers them once they are gone.
func (e *dayEnv) learn() {
	for _, c := range e.sim.Contacts() {
		e.addContact(c.ExternalUserID)
	}
	for _, s := range e.sim.StaffList() {
		if !slices.Contains(e.staffIDs, s.UserID) {
			e.staffIDs = append(e.staffIDs, s.UserID)
		}
	}
	for _, g := range e.sim.Groups() {
		if !slices.Contains(e.chats, g.ChatID) {
			e.chats = append(e.chats, g.ChatID)
			e.initialChat[g.ChatID] = true
		}
	}
	for _, u := range e.staffIDs {
		for _, f := range e.sim.FollowsOf(u) {
			e.everFollowed[dayPair{f.ExternalUserID, u}] = true
			e.initial[dayPair{f.ExternalUserID, u}] = true
		}
	}
}

func (e *dayEnv) addContact(ext string) {
	if !e.knownContact[ext] {
		e.knownContact[ext] = true
		e.contacts = append(e.contacts, ext)
	}
}

// seedMiniProgram creates customers known from the mini program, with the
// unionids that some WeCom contacts will have: One ID must make each pair
// one customer.
func (e *dayEnv) seedMiniProgram(t *testing.T, unionIDs []string) {
	t.Helper()
	for i, u := range unionIDs {
		err := e.d.Tx(e.ctx, func(tx *sql.Tx) error {
			id, err := e.customers.Resolve(e.ctx, tx, e.ws.ID, customer.Observation{Source: "miniapp", At: e.sim.Now(),
				Identities: []customer.Identity{{Kind: customer.KindMiniOpenID, Value: fmt.Sprintf("mini-openid-%d", i)}, {Kind: customer.KindUnionID, Value: u}}})
			e.mini[u] = id
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// bindTagGroup creates a Siyu tag group with tags and binds it to the corp
// tag group of the same name.
func (e *dayEnv) bindTagGroup(t *testing.T, name string, tags ...string) wecom.TagBinding {
	t.Helper()
	g, err := e.tags.CreateGroup(e.ctx, e.admin(), tag.GroupInput{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tags {
		if _, err := e.tags.CreateTag(e.ctx, e.admin(), tag.TagInput{GroupID: g.ID, Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := e.svc.BindTagGroup(e.ctx, e.admin(), g.ID, wecom.BindTagGroupInput{})
	if err != nil {
		t.Fatal(err)
	}
	e.bound[b.WeComGroupID] = true
	return b
}

// syncNow runs a sync of the workspace to its end.
func (e *dayEnv) syncNow(t *testing.T, kind wecom.SyncKind) wecom.SyncRun {
	t.Helper()
	run, err := e.svc.SyncNow(e.ctx, e.ws.ID, kind)
	if err != nil {
		t.Fatalf("%s sync: %v (%s %s)", kind, err, run.Error, run.Fix)
	}
	if run.Status != wecom.SyncDone {
		t.Fatalf("%s sync ended %s: %s", kind, run.Status, run.Error)
	}
	return run
}

// processingLag is how long after a callback arrives Siyu processes it.
// WeCom's event times are whole seconds, and so is the simulated clock as
// the test moves it: without the lag, a relation's details read from WeCom
// at the instant of the event that made Siyu read them would tie with it.
const processingLag = 300 * time.Millisecond

// quiesce processes the inbox until nothing is pending — moving the corp's
// clock on when events wait for a retry — and fails on events given up.
func (e *dayEnv) quiesce(t *testing.T) {
	t.Helper()
	for i := 0; ; i++ {
		e.sim.Advance(processingLag)
		if _, err := e.svc.Drain(e.ctx); err != nil {
			t.Fatalf("drain: %v", err)
		}
		var pending int
		if err := e.d.QueryRowContext(e.ctx, `SELECT count(*) FROM wecom_inbox WHERE tenant_id = $1 AND status = 'pending'`, e.ws.ID).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if i == 30 {
			t.Fatalf("%d inbox events still pending", pending)
		}
		e.sim.Advance(2 * time.Minute)
	}
	failed, err := e.svc.Inbox(e.ctx, e.ws.ID, wecom.InboxQuery{Status: wecom.InboxFailed}, page.Request{Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed.Items) > 0 {
		var b strings.Builder
		for _, f := range failed.Items {
			fmt.Fprintf(&b, "\n  %s %s: %s", f.Kind, f.Subject, f.Error)
		}
		t.Fatalf("inbox events failed:%s", b.String())
	}
}

// dayFacts is a state as facts: a key naming a thing (a relation, a group
// member…) and what is true of it.
type dayFacts map[string]string

// Expectations the sim's side may hold instead of an exact value.
const (
	anyEnded = "ended:*" // any ended status: how the relation ended is unknown to Siyu (its callback was lost)
	optional = "?"       // prefix: Siyu may also lack the fact (the only callback telling it was lost)
)

// orSep separates the values a fact may have (see oneOf).
const orSep = " ‖ "

// oneOf is a fact that may be any of the values.
func oneOf(values ...string) string { return strings.Join(values, orSep) }

func factMatches(want, got string, present bool) bool {
	if alts := strings.Split(want, orSep); len(alts) > 1 {
		return slices.ContainsFunc(alts, func(w string) bool { return factMatches(w, got, present) })
	}
	if w, ok := strings.CutPrefix(want, optional); ok {
		return !present || factMatches(w, got, true)
	}
	if !present {
		return false
	}
	if want == anyEnded {
		return strings.HasPrefix(got, "ended:")
	}
	return want == got
}

// diffFacts lists, readably, where Siyu's facts differ from the corp's;
// empty when they agree. Only keys under one of the prefixes are compared
// (all with none).
func diffFacts(want, got dayFacts, prefixes ...string) string {
	in := func(k string) bool {
		if len(prefixes) == 0 {
			return true
		}
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				return true
			}
		}
		return false
	}
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var lines []string
	compared := 0
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		if !in(k) {
			continue
		}
		compared++
		w, inWant := want[k]
		g, inGot := got[k]
		switch {
		case !inWant:
			lines = append(lines, fmt.Sprintf("  + %s\n      Siyu has: %s (the corp does not)", k, g))
		case !factMatches(w, g, inGot):
			if !inGot {
				g = "(nothing)"
			}
			lines = append(lines, fmt.Sprintf("  ≠ %s\n      corp: %s\n      Siyu: %s", k, w, g))
		}
	}
	if len(lines) == 0 {
		return ""
	}
	const show = 40
	out := fmt.Sprintf("Siyu differs from the simulated corp in %d of %d facts:\n", len(lines), compared)
	if len(lines) > show {
		out += strings.Join(lines[:show], "\n") + fmt.Sprintf("\n  … and %d more", len(lines)-show)
	} else {
		out += strings.Join(lines, "\n")
	}
	return out
}

// requireEqual fails with the difference when Siyu's state is not the corp's.
func (e *dayEnv) requireEqual(t *testing.T, when string, prefixes ...string) {
	t.Helper()
	if d := diffFacts(e.simFacts(), e.siyuFacts(t), prefixes...); d != "" {
		t.Fatalf("%s: %s", when, d)
	}
}

// corpCallbacks parses every callback the corp produced, by Seq.
func (e *dayEnv) corpCallbacks(t *testing.T) map[int]wecom.Event {
	t.Helper()
	out := map[int]wecom.Event{}
	for _, cb := range e.sim.Callbacks() {
		ev, err := wecom.ParseEvent(cb.Message)
		if err != nil {
			t.Fatalf("callback %d: %v", cb.Seq, err)
		}
		out[cb.Seq] = ev
	}
	return out
}

// endStatus is how Siyu records a relation ended by an event.
func endStatus(ev wecom.Event) string {
	switch {
	case ev.ChangeType == wecom.ChangeDelFollowUser:
		return "ended:" + string(staff.RelationDeletedByCustomer)
	case ev.Source == wecom.SourceDeleteByTransfer:
		return "ended:" + string(staff.RelationTransferred)
	}
	return "ended:" + string(staff.RelationDeletedByStaff)
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return slices.Compact(out)
}

func relationFact(addWay int, state, remark, desc string, tags []string) string {
	if tags == nil {
		tags = []string{}
	}
	return fmt.Sprintf("active add_way=%d state=%q remark=%q description=%q tags=%v", addWay, state, remark, desc, tags)
}

// simFacts is the corp's state as facts, with what Siyu may not know
// marked: the end of a relation whose callback was lost is an ended relation
// of unknown kind; a failed handover whose callback was lost may be absent.
func (e *dayEnv) simFacts() dayFacts {
	f := dayFacts{}
	// Staff: current members are active with their name; deleted ones resigned.
	for _, u := range e.staffIDs {
		if s, ok := e.sim.Staff(u); ok {
			f["staff/"+u] = "active name=" + s.Name
		} else {
			f["staff/"+u] = "resigned"
		}
	}
	// Corp tags: the live tags of bound groups, and the bound groups.
	liveTag := map[string]bool{}
	boundTag := map[string]bool{}
	for _, g := range e.sim.TagGroups() {
		var names []string
		for _, t := range g.Tags {
			liveTag[t.ID] = true
			if e.bound[g.ID] {
				boundTag[t.ID] = true
				names = append(names, t.Name)
				f["boundtag/"+t.ID] = fmt.Sprintf("group=%s name=%s", g.ID, t.Name)
			}
		}
		if e.bound[g.ID] {
			f["taggroup/"+g.ID] = fmt.Sprintf("name=%s tags=%s", g.Name, strings.Join(names, ","))
		}
	}
	// Relations, including those of deleted members awaiting inheritance,
	// and each customer's bound corp tags from every current relation.
	ctags := map[string]map[string]bool{}
	live := map[dayPair]bool{}
	for _, u := range e.staffIDs {
		for _, fl := range e.sim.FollowsOf(u) {
			p := dayPair{fl.ExternalUserID, u}
			live[p] = true
			f["rel/"+p.ext+"/"+p.user] = relationFact(fl.AddWay, fl.State, fl.Remark, fl.Description, sortedCopy(fl.TagIDs))
			for _, id := range fl.TagIDs {
				if boundTag[id] {
					if ctags[p.ext] == nil {
						ctags[p.ext] = map[string]bool{}
					}
					ctags[p.ext][id] = true
				}
			}
		}
	}
	// Ended relations: ended as their last callback says, or of unknown kind
	// when that callback was lost.
	last := map[dayPair]int{}
	told := map[dayPair]bool{}    // a callback about the relation arrived
	toldChat := map[string]bool{} // a callback about the group arrived
	events := map[int]wecom.Event{}
	for _, cb := range e.sim.Callbacks() {
		ev, err := wecom.ParseEvent(cb.Message)
		if err != nil {
			continue
		}
		if ev.Event == wecom.EventChangeExternalChat && !e.lost[cb.Seq] {
			toldChat[ev.ChatID] = true
		}
		if ev.Event != wecom.EventChangeExternalContact || ev.ExternalUserID == "" {
			continue
		}
		if !e.lost[cb.Seq] {
			told[dayPair{ev.ExternalUserID, ev.UserID}] = true
		}
		switch ev.ChangeType {
		case wecom.ChangeAddExternalContact, wecom.ChangeDelExternalContact, wecom.ChangeDelFollowUser:
			events[cb.Seq] = ev
			last[dayPair{ev.ExternalUserID, ev.UserID}] = cb.Seq
		}
	}
	for p := range e.everFollowed {
		if live[p] {
			continue
		}
		key := "rel/" + p.ext + "/" + p.user
		seq, ok := last[p]
		switch {
		case !e.initial[p] && !told[p]:
			// Added and ended with every callback lost: Siyu may never
			// have heard of it.
			f[key] = optional + anyEnded
		case !ok || e.lost[seq]:
			f[key] = anyEnded
		default:
			f[key] = endStatus(events[seq])
		}
	}
	for p := range e.failedTo {
		if !e.everFollowed[p] {
			f["rel/"+p.ext+"/"+p.user] = optional + "transfer_failed"
		}
	}
	// Contacts: each is one customer with its unionid; those known from the
	// mini program are that customer. A contact no current member follows
	// cannot be read from WeCom: when every member it added was gone before
	// Siyu read it, Siyu knows its external_userid only, and when every
	// callback about it was lost, nothing (its relations' facts say which).
	for _, ext := range e.contacts {
		c, fs, _ := e.sim.Contact(ext)
		_, mini := e.mini[c.UnionID]
		f["contact/"+ext] = fmt.Sprintf("unionid=%s mini=%v", c.UnionID, mini)
		if len(fs) == 0 {
			f["contact/"+ext] = optional + oneOf(f["contact/"+ext], "unionid= mini=false")
		}
		if ids := ctags[ext]; len(ids) > 0 {
			f["ctags/"+ext] = strings.Join(slices.Sorted(func(yield func(string) bool) {
				for id := range ids {
					if !yield(id) {
						return
					}
				}
			}), ",")
		}
	}
	// Groups and their members.
	for _, id := range e.chats {
		g, _ := e.sim.Group(id)
		if g.Dismissed {
			f["group/"+id] = "dismissed"
			if !e.initialChat[id] && !toldChat[id] {
				// Created and dismissed with every callback lost: WeCom
				// lists only live groups, so Siyu may never hear of it.
				f["group/"+id] = optional + "dismissed"
			}
			continue
		}
		f["group/"+id] = fmt.Sprintf("active name=%q owner=%s notice=%q version=%s", g.Name, g.Owner, g.Notice, g.MemberVersion)
		for _, m := range g.Members {
			f["member/"+id+"/"+m.UserID] = "in"
		}
	}
	return f
}

// siyuFacts is Siyu's state as facts, read through the services where they
// offer it and from the connector's tables where they do not.
func (e *dayEnv) siyuFacts(t *testing.T) dayFacts {
	t.Helper()
	ctx, tid := e.ctx, e.ws.ID
	f := dayFacts{}
	for r := (page.Request{Limit: page.MaxLimit}); ; {
		p, err := e.staff.Members(ctx, tid, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Items {
			if m.WeComUserID == "" {
				continue
			}
			if m.Status == staff.Active {
				f["staff/"+m.WeComUserID] = "active name=" + m.Name
			} else {
				f["staff/"+m.WeComUserID] = string(m.Status)
			}
		}
		if p.Next == "" {
			break
		}
		r.Cursor = p.Next
	}
	// Corp tags: the live ones Siyu mirrors, and the bound Siyu tags.
	liveTag := map[string]bool{}
	trows, err := e.d.QueryContext(ctx, `SELECT id FROM wecom_corp_tags WHERE tenant_id = $1 AND kind = 'tag'`, tid)
	if err != nil {
		t.Fatal(err)
	}
	for trows.Next() {
		var id string
		if err := trows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		liveTag[id] = true
	}
	closeRows(t, trows)
	groups, err := e.tags.Groups(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.tags.AllTags(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(all, func(a, b tag.Tag) int {
		if a.SortOrder != b.SortOrder {
			return a.SortOrder - b.SortOrder
		}
		return int(a.ID - b.ID)
	})
	wecomGroup := map[int64]string{}
	for _, g := range groups {
		if g.WeComGroupID == "" {
			continue
		}
		wecomGroup[g.ID] = g.WeComGroupID
		var names []string
		for _, tg := range all {
			if tg.GroupID == g.ID && tg.WeComTagID != "" {
				names = append(names, tg.Name)
			}
		}
		f["taggroup/"+g.WeComGroupID] = fmt.Sprintf("name=%s tags=%s", g.Name, strings.Join(names, ","))
	}
	corpTagOf := map[int64]string{}
	for _, tg := range all {
		if tg.WeComTagID == "" {
			continue
		}
		corpTagOf[tg.ID] = tg.WeComTagID
		f["boundtag/"+tg.WeComTagID] = fmt.Sprintf("group=%s name=%s", wecomGroup[tg.GroupID], tg.Name)
	}
	// Relations.
	rels, err := e.staff.RelationsAfter(ctx, tid, staff.ChannelWeCom, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rels {
		key := "rel/" + r.ExternalID + "/" + r.StaffWeComUserID
		switch {
		case r.Status == staff.RelationActive:
			var tags []string
			for _, id := range r.ChannelTagIDs {
				if liveTag[id] {
					tags = append(tags, id)
				}
			}
			f[key] = relationFact(r.AddWay, r.State, r.Remark, r.Description, sortedCopy(tags))
		case r.Status == staff.RelationTransferFailed, r.Status == staff.RelationHalf:
			f[key] = string(r.Status)
		default:
			f[key] = "ended:" + string(r.Status)
		}
	}
	// Contacts through One ID: the profile holding each external_userid,
	// its unionids, and whether it is the mini-program customer.
	rows, err := e.d.QueryContext(ctx, `SELECT i.kind, i.value, i.customer_id FROM customer_identities i
		JOIN customers c ON c.tenant_id = i.tenant_id AND c.id = i.customer_id
		WHERE i.tenant_id = $1 AND i.kind IN ($2, $3) AND c.merged_into IS NULL`, tid, customer.KindWeComExtID, customer.KindUnionID)
	if err != nil {
		t.Fatal(err)
	}
	extOf := map[string]int64{}
	unions := map[int64][]string{}
	contactsOf := map[int64]int{}
	for rows.Next() {
		var kind, value string
		var cid int64
		if err := rows.Scan(&kind, &value, &cid); err != nil {
			t.Fatal(err)
		}
		if kind == customer.KindWeComExtID {
			extOf[value] = cid
			contactsOf[cid]++
		} else {
			unions[cid] = append(unions[cid], value)
		}
	}
	closeRows(t, rows)
	var cids []int64
	for ext, cid := range extOf {
		us := sortedCopy(unions[cid])
		mini := false
		for _, u := range us {
			mini = mini || e.mini[u] == cid
		}
		v := fmt.Sprintf("unionid=%s mini=%v", strings.Join(us, ","), mini)
		if n := contactsOf[cid]; n > 1 {
			v += fmt.Sprintf(" (one customer with %d contacts)", n)
		}
		f["contact/"+ext] = v
		cids = append(cids, cid)
	}
	held, err := e.tags.TagIDsOf(ctx, tid, cids)
	if err != nil {
		t.Fatal(err)
	}
	for ext, cid := range extOf {
		var ids []string
		for _, id := range held[cid] {
			if w, ok := corpTagOf[id]; ok {
				ids = append(ids, w)
			}
		}
		if len(ids) > 0 {
			f["ctags/"+ext] = strings.Join(sortedCopy(ids), ",")
		}
	}
	// Groups and the members who are in them.
	grows, err := e.d.QueryContext(ctx, `SELECT chat_id, status, name, owner_userid, notice, member_version FROM wecom_groups WHERE tenant_id = $1`, tid)
	if err != nil {
		t.Fatal(err)
	}
	for grows.Next() {
		var id, status, name, owner, notice, version string
		if err := grows.Scan(&id, &status, &name, &owner, &notice, &version); err != nil {
			t.Fatal(err)
		}
		if status == "dismissed" {
			f["group/"+id] = "dismissed"
		} else {
			f["group/"+id] = fmt.Sprintf("%s name=%q owner=%s notice=%q version=%s", status, name, owner, notice, version)
		}
	}
	closeRows(t, grows)
	mrows, err := e.d.QueryContext(ctx, `SELECT chat_id, member_id FROM wecom_group_members WHERE tenant_id = $1 AND status = 'in'`, tid)
	if err != nil {
		t.Fatal(err)
	}
	for mrows.Next() {
		var chat, member string
		if err := mrows.Scan(&chat, &member); err != nil {
			t.Fatal(err)
		}
		f["member/"+chat+"/"+member] = "in"
	}
	closeRows(t, mrows)
	return f
}

// closeRows fails the test on an error met while reading rows.
func closeRows(t *testing.T, rows *sql.Rows) {
	t.Helper()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
}
