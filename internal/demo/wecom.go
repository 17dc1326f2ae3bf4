package demo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// The demo brand's live WeCom corp: the WeCom simulator runs in-process as
// the brand's corp — its store managers and first guides as members, a few
// thousand customers (a third of them the brand's mini-program members, by
// their WeChat unionid), customer groups and corp tags bound to the brand's
// tag groups. Siyu is connected to it as to WeCom, syncs it in the
// background, and then the corp lives on in real time: customers add staff
// and delete them, join and leave groups, staff note and tag customers,
// every few seconds, each a signed callback to Siyu.

// WeComOptions size the demo corp; zero values mean the defaults.
type WeComOptions struct {
	Contacts int           // external contacts (default 4,000)
	Members  int           // of them, mini-program members matched by unionid (default a third)
	Groups   int           // customer groups (default 12)
	Trickle  time.Duration // mean pause between live events (default 4 s; negative: no live events)
	Seed     int64         // the corp's seed (default the demo's)
	// LeaveAfter is when, after the corp is live, a guide leaves and is
	// inherited (default 2 minutes; negative: never).
	LeaveAfter time.Duration
}

func (o *WeComOptions) defaults() {
	if o.Contacts <= 0 {
		o.Contacts = 4000
	}
	if o.Members <= 0 {
		o.Members = o.Contacts / 3
	}
	o.Members = min(o.Members, o.Contacts)
	if o.Groups <= 0 {
		o.Groups = 12
	}
	if o.Trickle == 0 {
		o.Trickle = 4 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = 2026
	}
	if o.LeaveAfter == 0 {
		o.LeaveAfter = 2 * time.Minute
	}
}

// Corp tag groups the demo corp has: the first two bear the names of demo
// tag groups and are bound to them.
var demoCorpTags = []struct {
	group string
	tags  []string
	bound bool
}{
	{"客户属性", []string{"学生", "白领", "宝妈"}, true},
	{"产品偏好", []string{"乌龙", "抹茶", "果茶", "奶茶", "纯茶"}, true},
	{"到店频次", []string{"每周", "每月", "偶尔"}, false},
}

// LiveCorp is the demo brand's simulated WeCom corp.
type LiveCorp struct {
	sim      *wecomtest.Server
	a        *app.App
	tenantID int64
	callback string
	o        WeComOptions
	log      *slog.Logger
	ready    chan struct{}

	// Built and used by Run (one goroutine): the members and their stores'
	// channel codes, the mini-program members who are not WeCom contacts
	// yet, and what live events need.
	members   []string
	storeCode map[string]string // member → "store-SH-01"
	pending   []int64           // mini-program members who may add staff later
	rng       *rand.Rand
	added     int
	runTag    string   // makes the IDs of live contacts unique to this run
	ops       opsState // ops.go: codes, the group code, the pending handover
}

// StartWeCom starts the demo brand's simulated WeCom corp, its API listening
// on a local port, and returns at once; Run fills it, connects Siyu and
// keeps it alive. siyuURL is where Siyu listens (http://host:port).
func StartWeCom(a *app.App, tenantID int64, siyuURL string, o WeComOptions) *LiveCorp {
	o.defaults()
	slug := Slug
	if w, err := a.Tenant.Workspace(context.Background(), tenantID); err == nil {
		slug = w.Slug
	}
	c := &LiveCorp{
		a: a, tenantID: tenantID, o: o, log: a.Log, ready: make(chan struct{}),
		callback:  strings.TrimRight(siyuURL, "/") + "/connect/wecom/" + slug + "/callback",
		storeCode: map[string]string{},
		rng:       rand.New(rand.NewPCG(uint64(o.Seed), uint64(time.Now().UnixNano()))),
		runTag:    fmt.Sprintf("%x", time.Now().Unix()),
	}
	// Real time: tokens expire and rate limits roll over as in WeCom.
	c.sim = wecomtest.New(wecomtest.Options{
		CorpOptions: wecomtest.CorpOptions{ID: "wwdemo5179teatime", Name: BrandName, Seed: o.Seed, Now: time.Now},
		// WeCom tries a callback again a few seconds after a failure.
		CallbackRetryDelay: 3 * time.Second,
		Logger:             a.Log,
	})
	return c
}

// ListenURL is the base URL at which a local client reaches a listener:
// an unspecified host (":8080") is reached on the loopback address.
func ListenURL(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok && (ta.IP == nil || ta.IP.IsUnspecified()) {
		return fmt.Sprintf("http://127.0.0.1:%d", ta.Port)
	}
	return "http://" + addr.String()
}

// URL is the simulated corp's API base URL.
func (c *LiveCorp) URL() string { return c.sim.URL() }

// CorpID is the simulated corp's ID.
func (c *LiveCorp) CorpID() string { return c.sim.CorpID() }

// CallbackURL is where the corp sends its callbacks.
func (c *LiveCorp) CallbackURL() string { return c.callback }

// Server is the simulator itself, for tests.
func (c *LiveCorp) Server() *wecomtest.Server { return c.sim }

// Ready is closed once Siyu has synced the corp and live events begin.
func (c *LiveCorp) Ready() <-chan struct{} { return c.ready }

// Close stops the corp's API.
func (c *LiveCorp) Close() { c.sim.Close() }

// Summary is the line the demo prints about its WeCom corp.
func (c *LiveCorp) Summary() string {
	return fmt.Sprintf("simulated corp %s, API at %s (about %d customers, %d groups), callbacks to %s; synced in the background, then live",
		c.CorpID(), c.URL(), c.o.Contacts, c.o.Groups, c.callback)
}

// Run builds the corp from the demo brand's staff and customers, connects
// the workspace to it, syncs it with progress on progress, binds the corp
// tag groups to the brand's, and then keeps live events coming until ctx
// is done.
func (c *LiveCorp) Run(ctx context.Context, progress io.Writer) error {
	start := time.Now()
	fmt.Fprintf(progress, "demo: WeCom: building the simulated corp (%d customers, %d groups)…\n", c.o.Contacts, c.o.Groups)
	if err := c.build(ctx, progress); err != nil {
		return err
	}
	sys := tenant.System(c.tenantID)
	err := retry(ctx, func() error {
		_, err := c.a.WeCom.Configure(ctx, sys, wecom.SettingsInput{
			CorpID: c.sim.CorpID(), AgentID: c.sim.AgentID(), Secret: c.sim.Secret(), Token: c.sim.CallbackToken(),
			EncodingAESKey: c.sim.EncodingAESKey(), BaseURL: c.sim.URL(),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("demo: WeCom: connect: %w", err)
	}
	// The corp sends callbacks from now on; WeCom checks the URL first.
	c.sim.SetCallbackURL(c.callback)
	if err := c.sim.VerifyCallbackURL(ctx); err != nil {
		c.log.Warn("demo: the WeCom callback URL did not verify", "err", err)
	}
	if err := retry(ctx, func() error { _, err := c.a.WeCom.TestConnection(ctx, sys); return err }); err != nil {
		return fmt.Errorf("demo: WeCom: connection test: %w", err)
	}
	run, err := c.sync(ctx, progress)
	if err != nil {
		return err
	}
	if err := retry(ctx, func() error { return c.bindTags(ctx) }); err != nil {
		return err
	}
	fmt.Fprintf(progress, "demo: WeCom synced in %s: %d customer relations, %d groups, %d corp tags; the corp lives on (callbacks every few seconds)\n",
		time.Since(start).Round(time.Second), run.Counts.Contacts, run.Counts.Groups, run.Counts.CorpTags)
	// Operations (ops.go) are a show, not the corp: a failure is logged.
	if err := c.operate(ctx, progress); err != nil && ctx.Err() == nil {
		c.log.Warn("demo: operations not set up", "err", err)
	}
	close(c.ready)
	if c.o.Trickle < 0 {
		<-ctx.Done()
		return nil
	}
	return c.live(ctx)
}

// unionID is a mini-program member's WeChat unionid in the demo corp.
func unionID(userID string) string {
	h := fnv.New64a()
	_, _ = io.WriteString(h, "teatime:"+userID)
	return fmt.Sprintf("oTeaTime%016x", h.Sum64())
}

// build fills the corp: departments and members from the brand's stores and
// staff (each store's manager and first guide), corp tags, contacts — the
// mini-program members among them known to Siyu by their unionid from now
// on — and customer groups. Nothing is sent to Siyu yet.
func (c *LiveCorp) build(ctx context.Context, progress io.Writer) error {
	a, tid := c.a, c.tenantID
	r := rand.New(rand.NewPCG(uint64(c.o.Seed), 5179))
	corp := c.sim.Corp
	stores := map[int64]staff.Store{}
	cities := map[string]int64{}
	for req := (page.Request{Limit: page.MaxLimit}); ; {
		pg, err := a.Staff.Stores(ctx, tid, req)
		if err != nil {
			return fmt.Errorf("demo: WeCom: stores: %w", err)
		}
		for _, st := range pg.Items {
			stores[st.ID] = st
			city, ok := cities[st.City]
			if !ok {
				city = int64(10 + len(cities))
				cities[st.City] = city
				corp.PutDepartment(wecomtest.Department{ID: city, Name: st.City, ParentID: 1, Order: 1000 - city})
			}
			corp.PutDepartment(wecomtest.Department{ID: 1000 + st.ID, Name: st.Name, ParentID: city, Order: 1000 - st.ID})
		}
		if pg.Next == "" {
			break
		}
		req.Cursor = pg.Next
	}
	perStore := map[int64]int{}
	byCity := map[string][]string{}
	for req := (page.Request{Limit: page.MaxLimit}); ; {
		pg, err := a.Staff.Members(ctx, tid, req)
		if err != nil {
			return fmt.Errorf("demo: WeCom: staff: %w", err)
		}
		for _, m := range pg.Items {
			if m.WeComUserID == "" || m.Status != staff.Active || len(c.members) >= 60 {
				continue
			}
			st, inStore := stores[m.StoreID]
			if inStore && (perStore[m.StoreID] >= 2 || (m.Title != "店长" && m.Title != "导购")) {
				continue
			}
			s := wecomtest.Staff{UserID: m.WeComUserID, Name: m.Name, Position: m.Title}
			if inStore {
				perStore[m.StoreID]++
				s.Departments = []int64{1000 + st.ID}
				c.storeCode[m.WeComUserID] = "store-" + st.Code
				byCity[st.City] = append(byCity[st.City], m.WeComUserID)
			}
			if _, err := corp.PutStaff(s); err != nil {
				return fmt.Errorf("demo: WeCom: member %s: %w", m.WeComUserID, err)
			}
			c.members = append(c.members, m.WeComUserID)
		}
		if pg.Next == "" {
			break
		}
		req.Cursor = pg.Next
	}
	if len(c.members) == 0 {
		return errors.New("demo: WeCom: the brand has no staff with a WeCom user id")
	}
	var tagIDs [][]string // per corp tag group
	for i, g := range demoCorpTags {
		var tags []wecomtest.Tag
		for j, n := range g.tags {
			tags = append(tags, wecomtest.Tag{Name: n, Order: int64(len(g.tags) - j)})
		}
		tg, err := corp.PutTagGroup(wecomtest.TagGroup{Name: g.group, Order: int64(len(demoCorpTags) - i), Tags: tags})
		if err != nil {
			return fmt.Errorf("demo: WeCom: corp tags: %w", err)
		}
		var ids []string
		for _, t := range tg.Tags {
			ids = append(ids, t.ID)
		}
		tagIDs = append(tagIDs, ids)
	}
	now := time.Now()
	follow := func(user string, added time.Time, state string) wecomtest.Follow {
		f := wecomtest.Follow{UserID: user, CreateTime: added, State: state, AddWay: 1}
		if state == "" {
			f.AddWay = []int{2, 3, 5}[r.IntN(3)] // phone search, card share, mobile contacts
		}
		for gi, ids := range tagIDs {
			if r.IntN(10) < []int{4, 3, 2}[gi%3] {
				f.TagIDs = append(f.TagIDs, ids[r.IntN(len(ids))])
			}
		}
		if r.IntN(5) == 0 {
			f.Remark = "老顾客"
			f.Description = "常点" + demoCorpTags[1].tags[r.IntN(5)]
		}
		return f
	}
	pickMember := func(city string) string {
		if ms := byCity[city]; len(ms) > 0 && r.IntN(10) < 8 {
			return ms[r.IntN(len(ms))]
		}
		return c.members[r.IntN(len(c.members))]
	}
	stateOf := func(user string) string {
		switch r.IntN(10) {
		case 0, 1, 2, 3, 4:
			return c.storeCode[user]
		case 5:
			return "douyin-live"
		case 6:
			return "tmall-parcel"
		}
		return ""
	}
	put := func(ct wecomtest.Contact, user string, added time.Time) error {
		fs := []wecomtest.Follow{follow(user, added, stateOf(user))}
		if r.IntN(10) == 0 {
			if other := c.members[r.IntN(len(c.members))]; other != user {
				fs = append(fs, follow(other, added.Add(time.Duration(r.IntN(30*24))*time.Hour), ""))
			}
		}
		for i := range fs {
			if fs[i].CreateTime.After(now) {
				fs[i].CreateTime = now.Add(-time.Hour)
			}
		}
		_, err := corp.PutContact(ct, fs...)
		return err
	}
	// Mini-program members: every k-th demo customer who has a member id.
	members, err := c.miniMembers(ctx)
	if err != nil {
		return err
	}
	step := max(1, len(members)/max(1, c.o.Members))
	linked := 0
	for i := 0; i < len(members); i++ {
		if i%step != 0 || linked >= c.o.Members {
			c.pending = append(c.pending, members[i])
			continue
		}
		cu, err := c.link(ctx, members[i])
		if err != nil {
			return err
		}
		if cu.ID == 0 {
			continue
		}
		gender := map[string]int{"male": 1, "female": 2}[cu.Gender]
		added := cu.FirstSeenAt.Add(time.Duration(r.IntN(60*24)) * time.Hour)
		if err := put(wecomtest.Contact{UnionID: unionID(cu.userID), Name: cu.Name, Gender: gender,
			Avatar: fmt.Sprintf("https://wework.qpic.cn/sim/avatar/%d", r.IntN(256))}, pickMember(cu.City), added); err != nil {
			return fmt.Errorf("demo: WeCom: contact: %w", err)
		}
		linked++
		if linked%500 == 0 {
			fmt.Fprintf(progress, "demo: WeCom: %d mini-program members are WeCom contacts too\n", linked)
		}
	}
	// Everyone else: people Siyu has not met, from the brand's channels.
	cityNames := slices.Sorted(func(yield func(string) bool) {
		for n := range cities {
			if !yield(n) {
				return
			}
		}
	})
	for i := linked; i < c.o.Contacts; i++ {
		isFemale := r.IntN(100) < 64
		gender := 1
		if isFemale {
			gender = 2
		}
		ct := wecomtest.Contact{Name: personName(r, isFemale), Gender: gender, Avatar: fmt.Sprintf("https://wework.qpic.cn/sim/avatar/%d", r.IntN(256))}
		city := ""
		if len(cityNames) > 0 {
			city = cityNames[r.IntN(len(cityNames))]
		}
		added := now.Add(-time.Duration(r.Int64N(int64(540 * 24 * time.Hour))))
		if err := put(ct, pickMember(city), added); err != nil {
			return fmt.Errorf("demo: WeCom: contact: %w", err)
		}
	}
	// Customer groups: a store manager's group of their customers.
	owners := slices.Clone(c.members)
	for i := 0; i < c.o.Groups && len(owners) > 0; i++ {
		owner := owners[(i*2)%len(owners)]
		var ids []string
		for _, f := range corp.FollowsOf(owner) {
			if len(ids) >= 20+r.IntN(60) {
				break
			}
			ids = append(ids, f.ExternalUserID)
		}
		name := "茶语时光会员群"
		if code, ok := c.storeCode[owner]; ok {
			for _, st := range stores {
				if "store-"+st.Code == code {
					name = st.Name + "会员群"
				}
			}
		}
		if _, err := c.sim.CreateGroup(ctx, owner, fmt.Sprintf("%s%d", name, i/len(owners)+1), ids...); err != nil {
			return fmt.Errorf("demo: WeCom: group: %w", err)
		}
	}
	contacts, follows := corp.Counts()
	fmt.Fprintf(progress, "demo: WeCom: corp %s has %d members, %d customers (%d mini-program members), %d relations, %d groups\n",
		c.sim.CorpID(), len(c.members), contacts, linked, follows, len(corp.Groups()))
	return nil
}

// miniMembers lists the demo customers known by a mini-program member id.
func (c *LiveCorp) miniMembers(ctx context.Context) ([]int64, error) {
	var out []int64
	for req := (page.Request{Limit: page.MaxLimit}); ; {
		pg, err := c.a.Customers.List(ctx, c.tenantID, customer.Query{}, req)
		if err != nil {
			return nil, fmt.Errorf("demo: WeCom: customers: %w", err)
		}
		for _, cu := range pg.Items {
			if cu.FirstSource != "wecom" {
				out = append(out, cu.ID)
			}
		}
		if pg.Next == "" {
			break
		}
		req.Cursor = pg.Next
	}
	slices.Sort(out)
	return out, nil
}

// linkedCustomer is a mini-program member whose unionid Siyu now knows.
type linkedCustomer struct {
	customer.Customer
	userID string
}

// link records a mini-program member's WeChat unionid, as the mini program
// does when the member signs in (wx.login), so that One ID makes their
// WeCom contact the same customer. A customer without a member id is
// skipped (zero ID).
func (c *LiveCorp) link(ctx context.Context, id int64) (linkedCustomer, error) {
	ids, err := c.a.Customers.Identities(ctx, c.tenantID, id)
	if err != nil {
		return linkedCustomer{}, fmt.Errorf("demo: WeCom: identities: %w", err)
	}
	i := slices.IndexFunc(ids, func(x customer.Identity) bool { return x.Kind == customer.KindUserID })
	if i < 0 {
		return linkedCustomer{}, nil
	}
	user := ids[i].Value
	if !slices.ContainsFunc(ids, func(x customer.Identity) bool { return x.Kind == customer.KindUnionID }) {
		err = retry(ctx, func() error {
			return c.a.DB.Tx(ctx, func(tx *sql.Tx) error {
				_, err := c.a.Customers.Resolve(ctx, tx, c.tenantID, customer.Observation{Source: "miniapp", At: time.Now(),
					Identities: []customer.Identity{{Kind: customer.KindUserID, Value: user}, {Kind: customer.KindUnionID, Value: unionID(user)}}})
				return err
			})
		})
		if err != nil {
			return linkedCustomer{}, fmt.Errorf("demo: WeCom: link unionid: %w", err)
		}
	}
	cu, err := c.a.Customers.Get(ctx, c.tenantID, id, false)
	if err != nil {
		return linkedCustomer{}, fmt.Errorf("demo: WeCom: customer: %w", err)
	}
	return linkedCustomer{cu, user}, nil
}

// sync runs the first sync — full, or a reconciliation when the workspace
// was synced before (a restarted demo) — printing its progress.
func (c *LiveCorp) sync(ctx context.Context, progress io.Writer) (wecom.SyncRun, error) {
	svc := c.a.WeCom
	kind := wecom.SyncFull
	if st, err := svc.SyncStatus(ctx, c.tenantID); err == nil && st.LastSuccess != nil {
		kind = wecom.SyncReconcile
	}
	fmt.Fprintf(progress, "demo: WeCom: connected; %s sync running in the background…\n", kind)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.reportSync(ctx, progress, done)
	}()
	defer wg.Wait()
	defer close(done)
	var last error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		st, err := svc.SyncStatus(ctx, c.tenantID)
		if err != nil {
			return wecom.SyncRun{}, err
		}
		var run wecom.SyncRun
		switch {
		case st.Current != nil:
			// The app's sync worker runs one (on connect): wait for it.
			run, err = c.waitSync(ctx)
		case attempt > 0 && st.Resumable:
			run, err = svc.ResumeSyncNow(ctx, c.tenantID)
		default:
			run, err = svc.SyncNow(ctx, c.tenantID, kind)
		}
		if err == nil && run.Status == wecom.SyncDone {
			return run, nil
		}
		if ctx.Err() != nil {
			return run, ctx.Err()
		}
		last = err
		if run.Status == wecom.SyncFailed {
			// The demo's other background work keeps the database busy
			// at times: the sync goes on from where it stopped.
			fmt.Fprintf(progress, "demo: WeCom sync stopped (%s); resuming…\n", run.Error)
		}
		if err := sleep(ctx, 3*time.Second); err != nil {
			return run, err
		}
	}
	return wecom.SyncRun{}, fmt.Errorf("demo: WeCom sync did not complete: %w", last)
}

// waitSync waits for the sync run in progress to end and returns it.
func (c *LiveCorp) waitSync(ctx context.Context) (wecom.SyncRun, error) {
	for {
		st, err := c.a.WeCom.SyncStatus(ctx, c.tenantID)
		if err != nil {
			return wecom.SyncRun{}, err
		}
		if st.Current == nil {
			if st.Last == nil {
				return wecom.SyncRun{}, errors.New("no sync run")
			}
			return *st.Last, nil
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return wecom.SyncRun{}, err
		}
	}
}

// maxAttempts is how often the demo tries a step that failed.
const maxAttempts = 20

// retry runs fn until it succeeds, up to maxAttempts times a few seconds
// apart: the demo's background generation competes for the database (on
// SQLite, one writer at a time) and may make a step time out.
func retry(ctx context.Context, fn func() error) error {
	var err error
	for range maxAttempts {
		if err = fn(); err == nil || ctx.Err() != nil {
			return err
		}
		if errs.KindOf(err) != errs.Internal {
			return err // a refusal, not a busy database: trying again will not help
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// reportSync prints the sync's phase and progress as it moves.
func (c *LiveCorp) reportSync(ctx context.Context, progress io.Writer, done <-chan struct{}) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-t.C:
		}
		st, err := c.a.WeCom.SyncStatus(ctx, c.tenantID)
		if err != nil || st.Current == nil {
			continue
		}
		line := fmt.Sprintf("demo: WeCom sync: %s, %d%%", st.Current.Phase, st.Current.Percent)
		if line != last {
			fmt.Fprintln(progress, line)
			last = line
		}
	}
}

// bindTags binds the demo's tag groups to the corp tag groups of the same
// name (once), and brings in the marks WeCom has.
func (c *LiveCorp) bindTags(ctx context.Context) error {
	sys := tenant.System(c.tenantID)
	groups, err := c.a.Tags.Groups(ctx, c.tenantID)
	if err != nil {
		return err
	}
	bound := false
	for _, g := range demoCorpTags {
		if !g.bound {
			continue
		}
		i := slices.IndexFunc(groups, func(x tag.Group) bool { return x.Name == g.group })
		if i < 0 || groups[i].WeComGroupID != "" {
			continue
		}
		if _, err := c.a.WeCom.BindTagGroup(ctx, sys, groups[i].ID, wecom.BindTagGroupInput{}); err != nil {
			return fmt.Errorf("demo: WeCom: bind %s: %w", g.group, err)
		}
		bound = true
	}
	if bound {
		if _, err := c.a.WeCom.SyncDue(ctx); err != nil {
			return fmt.Errorf("demo: WeCom: tags sync: %w", err)
		}
	}
	return nil
}

// live keeps the corp alive: every few seconds a customer adds a member
// (through a store's channel code, or a mini-program member meeting the
// brand on WeCom), deletes one, is noted or tagged, or joins or leaves a
// group.
func (c *LiveCorp) live(ctx context.Context) error {
	for n := 0; ; n++ {
		pause := c.o.Trickle/2 + time.Duration(c.rng.Int64N(int64(c.o.Trickle)+1))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		if err := c.event(ctx); err != nil && ctx.Err() == nil {
			c.log.Debug("demo: WeCom live event skipped", "err", err)
		}
		if n%200 == 199 {
			c.sim.ResetCalls() // the simulator records every call; the demo runs for hours
		}
	}
}

var errNothing = errors.New("nothing to do")

// event makes one thing happen in the corp.
func (c *LiveCorp) event(ctx context.Context) error {
	r, sim := c.rng, c.sim
	member := c.members[r.IntN(len(c.members))]
	someFollow := func() (wecomtest.Follow, error) {
		for range 5 {
			if fs := sim.FollowsOf(c.members[r.IntN(len(c.members))]); len(fs) > 0 {
				return fs[r.IntN(len(fs))], nil
			}
		}
		return wecomtest.Follow{}, errNothing
	}
	liveGroup := func() (wecomtest.Group, error) {
		gs := sim.Groups()
		if len(gs) == 0 {
			return wecomtest.Group{}, errNothing
		}
		return gs[r.IntN(len(gs))], nil
	}
	if r.IntN(8) == 0 {
		if err := c.opsEvent(ctx); !errors.Is(err, errNothing) {
			return err
		}
	}
	switch k := r.IntN(100); {
	case k < 30: // a new customer scans a store's code, or a member meets the brand on WeCom
		c.added++
		n := c.added
		var mini int64
		if len(c.pending) > 0 && r.IntN(4) == 0 {
			i := r.IntN(len(c.pending))
			mini = c.pending[i]
			c.pending = slices.Delete(c.pending, i, i+1)
		}
		ct := wecomtest.Contact{ExternalUserID: fmt.Sprintf("wmTeaTimeLive%s%06d", c.runTag, n)}
		if mini != 0 {
			cu, err := c.link(ctx, mini)
			if err != nil || cu.ID == 0 {
				return err
			}
			ct.Name, ct.UnionID = cu.Name, unionID(cu.userID)
		} else {
			isFemale := r.IntN(100) < 64
			ct.Name, ct.UnionID = personName(r, isFemale), fmt.Sprintf("oTeaTimeLive%s%06d", c.runTag, n)
		}
		state := c.storeCode[member]
		if r.IntN(3) == 0 {
			state = "douyin-live"
		}
		if way := c.ops.ways[member]; way != "" && state == c.storeCode[member] {
			// Through the store's channel code: Siyu tags, notes and welcomes.
			if _, err := sim.AddContactByWay(ctx, way, ct); err == nil {
				return nil
			}
		}
		_, err := sim.AddContact(ctx, member, ct, state)
		return err
	case k < 38: // a customer adds a second member
		f, err := someFollow()
		if err != nil {
			return err
		}
		_, err = sim.AddContact(ctx, member, wecomtest.Contact{ExternalUserID: f.ExternalUserID}, c.storeCode[member])
		return err
	case k < 46: // a customer deletes their member (流失)
		f, err := someFollow()
		if err != nil {
			return err
		}
		return sim.CustomerDeletesStaff(ctx, f.UserID, f.ExternalUserID)
	case k < 49:
		f, err := someFollow()
		if err != nil {
			return err
		}
		return sim.StaffDeletesCustomer(ctx, f.UserID, f.ExternalUserID)
	case k < 64: // a member notes or tags a customer
		f, err := someFollow()
		if err != nil {
			return err
		}
		tgs := sim.TagGroups()
		return sim.EditContact(ctx, f.UserID, f.ExternalUserID, func(fl *wecomtest.Follow) {
			if r.IntN(2) == 0 {
				fl.Remark = "回头客"
				fl.Description = "喜欢" + demoCorpTags[1].tags[r.IntN(5)] + "，少糖"
			}
			if len(tgs) > 0 {
				g := tgs[r.IntN(len(tgs))]
				if len(g.Tags) > 0 {
					if id := g.Tags[r.IntN(len(g.Tags))].ID; !slices.Contains(fl.TagIDs, id) {
						fl.TagIDs = append(fl.TagIDs, id)
					}
				}
			}
		})
	case k < 86: // a customer joins a group
		g, err := liveGroup()
		if err != nil {
			return err
		}
		f, err := someFollow()
		if err != nil {
			return err
		}
		if slices.ContainsFunc(g.Members, func(m wecomtest.Member) bool { return m.UserID == f.ExternalUserID }) {
			return errNothing
		}
		scene := []int{wecom.JoinByInvite, wecom.JoinByInviteLink, wecom.JoinByQRCode}[r.IntN(3)]
		return sim.JoinGroup(ctx, g.ChatID, []string{f.ExternalUserID}, scene)
	default: // a customer leaves a group
		g, err := liveGroup()
		if err != nil {
			return err
		}
		var ids []string
		for _, m := range g.Members {
			if m.Type == wecom.MemberExternal {
				ids = append(ids, m.UserID)
			}
		}
		if len(ids) == 0 {
			return errNothing
		}
		quit := wecom.QuitSceneSelf
		if r.IntN(5) == 0 {
			quit = wecom.QuitSceneRemoved
		}
		return sim.LeaveGroup(ctx, g.ChatID, []string{ids[r.IntN(len(ids))]}, quit)
	}
}
