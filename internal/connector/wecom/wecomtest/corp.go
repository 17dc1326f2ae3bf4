package wecomtest

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
)

// Department is a directory department.
type Department struct {
	ID       int64
	Name     string
	ParentID int64
	Order    int64
}

// Staff is a corp member (成员). Deleted members stay known to the corp (their
// customers wait for inheritance) but leave the directory and the APIs.
type Staff struct {
	UserID         string
	Name           string
	Departments    []int64 // default [1]
	MainDepartment int64   // default the first department
	Position       string
	Mobile         string
	Gender         int // 0 unknown, 1 male, 2 female
	Alias          string
	Status         int // wecom.UserActive (default), UserDisabled, …
}

// Contact is an external contact (a customer).
type Contact struct {
	ExternalUserID string // generated when empty: "wm…" for WeChat users, "wo…" for WeCom users
	UnionID        string // generated for WeChat users when empty
	Name           string
	Avatar         string
	Type           int // wecom.ContactWeChat (default) or wecom.ContactWeCom
	Gender         int
	CorpName       string
	CorpFullName   string
	Position       string
}

// Follow is one staff member's relation to a customer: WeCom keeps remark,
// description, tags and how the customer was added per staff member.
type Follow struct {
	UserID         string
	ExternalUserID string
	Remark         string
	Description    string
	CreateTime     time.Time
	TagIDs         []string
	RemarkCorpName string
	RemarkMobiles  []string
	AddWay         int
	State          string
	OperUserID     string
}

// Member is a member of a customer group.
type Member struct {
	UserID        string // a staff userid or an external_userid
	Type          int    // wecom.MemberStaff or wecom.MemberExternal
	UnionID       string
	JoinTime      time.Time
	JoinScene     int    // wecom.JoinByInvite, JoinByInviteLink or JoinByQRCode
	Invitor       string // who invited them (scenes 1 and 2)
	GroupNickname string
	Name          string
}

// Group is a customer group (客户群).
type Group struct {
	ChatID        string
	Name          string
	Owner         string
	Notice        string
	CreateTime    time.Time
	Members       []Member
	Admins        []string
	Status        int    // wecom.ChatNormal, …
	MemberVersion string // changes with every membership change
	Dismissed     bool
}

// Tag is a corp tag.
type Tag struct {
	ID         string
	Name       string
	Order      int64
	CreateTime time.Time
	Deleted    bool
}

// TagGroup is a corp tag group and its tags.
type TagGroup struct {
	ID         string
	Name       string
	Order      int64
	CreateTime time.Time
	Deleted    bool
	Tags       []Tag
}

// CorpOptions configure a Corp; zero values mean the defaults.
type CorpOptions struct {
	ID    string    // corp ID; default DefaultCorpID
	Name  string    // default "Siyu Simulated Corp"
	Seed  int64     // seeds generated IDs, so a run is reproducible
	Start time.Time // simulated time starts here; default 2025-01-06 09:00 Asia/Shanghai
	// Now, when set, is the base clock instead of Start (e.g. time.Now for
	// the demo); Advance still moves the corp's time ahead of it.
	Now func() time.Time
}

// DefaultCorpID is the corp ID of a simulated corp unless configured.
const DefaultCorpID = "ww5a7e0c1d2b3f4e01"

// Corp is an in-memory WeCom corp: directory, customers with their per-staff
// relations, customer groups and corp tags. It is safe for concurrent use.
// Its Put methods change it silently (set-up, fixtures); the Server's event
// methods change it and fire callbacks as WeCom does.
type Corp struct {
	id   string
	name string

	clockMu sync.Mutex
	base    func() time.Time
	start   time.Time
	offset  time.Duration

	mu        sync.RWMutex
	seq       uint64
	salt      uint64
	depts     map[int64]*Department
	staff     map[string]*staffRec
	staffIDs  []string // insertion order
	contacts  map[string]*contactRec
	groups    map[string]*groupRec
	groupIDs  []string // creation order
	tagGroups []*tagGroupRec
	tags      map[string]*tagRec
	ways      map[string]*wayRec
	welcomes  map[string]*welcomeRec

	// State of the operations APIs, one per area (api_<area>.go); each
	// area initialises its maps lazily, under c.mu.
	msgs      msgState      // api_message.go: mass messages (群发)
	joinWays  joinWayState  // api_group.go: group codes, group welcome templates, statistics
	transfers transferState // api_transfer.go: on-job and resigned handover
	moments   momentState   // api_moment.go: moments (朋友圈) tasks
}

type staffRec struct {
	Staff
	deleted bool
	follows []*followRec // by seq: the order batch/get_by_user pages through
}

type contactRec struct {
	Contact
	follows []*followRec // in the order staff added the customer
}

type followRec struct {
	Follow
	seq     uint64
	chatted bool // the customer and staff member have chatted: no welcome message any more
}

type groupRec struct {
	Group
	seq uint64
	ver int // membership version counter behind MemberVersion
}

type tagGroupRec struct {
	TagGroup
	seq  uint64
	tags []*tagRec
}

type tagRec struct {
	Tag
	seq   uint64
	group *tagGroupRec
}

type wayRec struct {
	wecom.ContactWay
	next int // round-robin over Users
}

type welcomeRec struct {
	userID, externalUserID string
	expires                time.Time
	used                   bool
}

// NewCorp returns an empty corp with the root department.
func NewCorp(o CorpOptions) *Corp {
	if o.ID == "" {
		o.ID = DefaultCorpID
	}
	if o.Name == "" {
		o.Name = "Siyu Simulated Corp"
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2025, 1, 6, 9, 0, 0, 0, time.FixedZone("CST", 8*3600))
	}
	c := &Corp{
		id: o.ID, name: o.Name, base: o.Now, start: o.Start,
		salt:     splitmix(uint64(o.Seed) ^ 0x5179_5179),
		depts:    map[int64]*Department{},
		staff:    map[string]*staffRec{},
		contacts: map[string]*contactRec{},
		groups:   map[string]*groupRec{},
		tags:     map[string]*tagRec{},
		ways:     map[string]*wayRec{},
		welcomes: map[string]*welcomeRec{},
	}
	c.depts[1] = &Department{ID: 1, Name: o.Name, ParentID: 0, Order: 100000000}
	return c
}

// ID returns the corp ID.
func (c *Corp) ID() string { return c.id }

// Now returns the corp's simulated time.
func (c *Corp) Now() time.Time {
	c.clockMu.Lock()
	defer c.clockMu.Unlock()
	if c.base != nil {
		return c.base().Add(c.offset)
	}
	return c.start.Add(c.offset)
}

// Advance moves simulated time forward by d: tokens and welcome codes
// expire, rate-limit windows roll over, new events carry the later time.
func (c *Corp) Advance(d time.Duration) {
	c.clockMu.Lock()
	c.offset += d
	c.clockMu.Unlock()
}

// Sleep advances simulated time by d at once; pass it as the API client's
// Sleep so back-off and rate-limit waits take no real time in tests.
func (c *Corp) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d > 0 {
		c.Advance(d)
	}
	return nil
}

// splitmix is SplitMix64's finaliser: a bijection, so distinct counters give
// distinct IDs.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID returns prefix followed by n ID characters, unique within the corp.
// The caller holds c.mu.
func (c *Corp) newID(prefix string, n int) string {
	c.seq++
	b := make([]byte, len(prefix), len(prefix)+n)
	copy(b, prefix)
	// The first 11 characters encode a bijection of the counter (62^11 > 2^64),
	// so IDs are unique; the rest only give them the length WeCom's have.
	orig := splitmix(c.seq ^ c.salt)
	x := orig
	for i := 0; i < n; i++ {
		if i > 0 && i%11 == 0 {
			x = splitmix(orig + uint64(i))
		}
		b = append(b, idAlphabet[x%62])
		x /= 62
	}
	return string(b)
}

func memberVersion(chatID string, ver int) string {
	sum := md5.Sum(fmt.Appendf(nil, "%s:%d", chatID, ver))
	return hex.EncodeToString(sum[:])
}

// PutDepartment adds or replaces a department silently.
func (c *Corp) PutDepartment(d Department) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d.ParentID == 0 && d.ID != 1 {
		d.ParentID = 1
	}
	c.depts[d.ID] = &d
}

// PutStaff adds or replaces a member silently, filling defaults.
func (c *Corp) PutStaff(s Staff) (Staff, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.putStaff(s)
}

func (c *Corp) putStaff(s Staff) (Staff, error) {
	if s.UserID == "" {
		return Staff{}, fmt.Errorf("wecomtest: a member needs a userid")
	}
	if len(s.Departments) == 0 {
		s.Departments = []int64{1}
	}
	s.Departments = slices.Clone(s.Departments)
	for _, d := range s.Departments {
		if c.depts[d] == nil {
			return Staff{}, fmt.Errorf("wecomtest: department %d does not exist", d)
		}
	}
	if s.MainDepartment == 0 {
		s.MainDepartment = s.Departments[0]
	}
	if s.Status == 0 {
		s.Status = wecom.UserActive
	}
	if s.Name == "" {
		s.Name = s.UserID
	}
	if r := c.staff[s.UserID]; r != nil {
		r.Staff, r.deleted = s, false
		return s, nil
	}
	c.staff[s.UserID] = &staffRec{Staff: s}
	c.staffIDs = append(c.staffIDs, s.UserID)
	return s, nil
}

// liveStaff returns a member who has not been deleted.
func (c *Corp) liveStaff(userID string) *staffRec {
	if r := c.staff[userID]; r != nil && !r.deleted {
		return r
	}
	return nil
}

// PutContact adds or replaces a customer silently, with relations to the
// staff in follows (UserID set, ExternalUserID ignored). It returns the
// contact with its generated IDs.
func (c *Corp) PutContact(ct Contact, follows ...Follow) (Contact, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.putContact(ct)
	if err != nil {
		return Contact{}, err
	}
	for _, f := range follows {
		if _, err := c.addFollow(r, f); err != nil {
			return Contact{}, err
		}
	}
	return r.Contact, nil
}

func (c *Corp) putContact(ct Contact) (*contactRec, error) {
	if ct.Type == 0 {
		ct.Type = wecom.ContactWeChat
	}
	if ct.ExternalUserID == "" {
		prefix := "wm"
		if ct.Type == wecom.ContactWeCom {
			prefix = "wo"
		}
		ct.ExternalUserID = c.newID(prefix, 28)
	}
	if ct.UnionID == "" && ct.Type == wecom.ContactWeChat {
		ct.UnionID = c.newID("o", 27)
	}
	if ct.Name == "" {
		ct.Name = "Customer " + ct.ExternalUserID[len(ct.ExternalUserID)-4:]
	}
	if r := c.contacts[ct.ExternalUserID]; r != nil {
		r.Contact = ct
		return r, nil
	}
	r := &contactRec{Contact: ct}
	c.contacts[ct.ExternalUserID] = r
	return r, nil
}

// addFollow links a customer to a member. The caller holds c.mu.
func (c *Corp) addFollow(r *contactRec, f Follow) (*followRec, error) {
	st := c.liveStaff(f.UserID)
	if st == nil {
		return nil, fmt.Errorf("wecomtest: member %q does not exist", f.UserID)
	}
	for _, x := range r.follows {
		if x.UserID == f.UserID {
			return nil, fmt.Errorf("wecomtest: %s already follows %s", f.UserID, r.ExternalUserID)
		}
	}
	for _, id := range f.TagIDs {
		if t := c.tags[id]; t == nil || t.Deleted {
			return nil, fmt.Errorf("wecomtest: tag %q does not exist", id)
		}
	}
	f.ExternalUserID = r.ExternalUserID
	f.TagIDs = slices.Clone(f.TagIDs)
	f.RemarkMobiles = slices.Clone(f.RemarkMobiles)
	if f.CreateTime.IsZero() {
		f.CreateTime = c.Now()
	}
	if f.OperUserID == "" {
		f.OperUserID = r.ExternalUserID // the customer initiated the add
	}
	c.seq++
	fr := &followRec{Follow: f, seq: c.seq}
	r.follows = append(r.follows, fr)
	st.follows = append(st.follows, fr)
	return fr, nil
}

// removeFollow ends a relation. The caller holds c.mu.
func (c *Corp) removeFollow(userID, externalUserID string) (*followRec, error) {
	r := c.contacts[externalUserID]
	if r == nil {
		return nil, fmt.Errorf("wecomtest: customer %q does not exist", externalUserID)
	}
	i := slices.IndexFunc(r.follows, func(f *followRec) bool { return f.UserID == userID })
	if i < 0 {
		return nil, fmt.Errorf("wecomtest: %s does not follow %s", userID, externalUserID)
	}
	fr := r.follows[i]
	r.follows = slices.Delete(r.follows, i, i+1)
	if st := c.staff[userID]; st != nil {
		if j := slices.Index(st.follows, fr); j >= 0 {
			st.follows = slices.Delete(st.follows, j, j+1)
		}
	}
	return fr, nil
}

// follow returns the live relation of a member and a customer, or nil.
func (c *Corp) follow(userID, externalUserID string) *followRec {
	r := c.contacts[externalUserID]
	if r == nil {
		return nil
	}
	for _, f := range r.follows {
		if f.UserID == userID {
			return f
		}
	}
	return nil
}

// PutTagGroup adds a corp tag group with its tags silently, generating IDs
// and create times, and returns it.
func (c *Corp) PutTagGroup(g TagGroup) (TagGroup, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gr, err := c.addTagGroup(g.Name, g.Order)
	if err != nil {
		return TagGroup{}, err
	}
	for _, t := range g.Tags {
		if _, err := c.addTag(gr, t.Name, t.Order); err != nil {
			return TagGroup{}, err
		}
	}
	return gr.snapshot(false), nil
}

func (c *Corp) addTagGroup(name string, order int64) (*tagGroupRec, error) {
	if name == "" || len([]rune(name)) > 30 {
		return nil, fmt.Errorf("wecomtest: a tag group name has 1 to 30 characters")
	}
	for _, g := range c.tagGroups {
		if !g.Deleted && g.Name == name {
			return nil, fmt.Errorf("wecomtest: tag group %q exists", name)
		}
	}
	gr := &tagGroupRec{TagGroup: TagGroup{ID: c.newID("et", 22), Name: name, Order: order, CreateTime: c.Now()}}
	gr.seq = c.seq
	c.tagGroups = append(c.tagGroups, gr)
	return gr, nil
}

func (c *Corp) liveTagCount() int {
	n := 0
	for _, t := range c.tags {
		if !t.Deleted {
			n++
		}
	}
	return n
}

func (c *Corp) addTag(gr *tagGroupRec, name string, order int64) (*tagRec, error) {
	if name == "" || len([]rune(name)) > 30 {
		return nil, fmt.Errorf("wecomtest: a tag name has 1 to 30 characters")
	}
	for _, t := range gr.tags {
		if !t.Deleted && t.Name == name {
			return nil, fmt.Errorf("wecomtest: tag %q exists in group %q", name, gr.Name)
		}
	}
	t := &tagRec{Tag: Tag{ID: c.newID("et", 30), Name: name, Order: order, CreateTime: c.Now()}, group: gr}
	t.seq = c.seq
	gr.tags = append(gr.tags, t)
	c.tags[t.ID] = t
	return t, nil
}

func (c *Corp) tagGroup(id string) *tagGroupRec {
	for _, g := range c.tagGroups {
		if g.ID == id {
			return g
		}
	}
	return nil
}

// deleteTag marks a tag deleted and takes it off every customer. The caller holds c.mu.
func (c *Corp) deleteTag(t *tagRec) {
	t.Deleted = true
	for _, r := range c.contacts {
		for _, f := range r.follows {
			if slices.Contains(f.TagIDs, t.ID) {
				// Copy on write: Populate shares tag slices between relations.
				f.TagIDs = slices.DeleteFunc(slices.Clone(f.TagIDs), func(id string) bool { return id == t.ID })
			}
		}
	}
}

// snapshot copies a tag group; deleted tags only when asked.
func (g *tagGroupRec) snapshot(withDeleted bool) TagGroup {
	out := g.TagGroup
	out.Tags = nil
	for _, t := range g.sortedTags() {
		if withDeleted || !t.Deleted {
			out.Tags = append(out.Tags, t.Tag)
		}
	}
	return out
}

// sortedTags orders tags as WeCom lists them: higher order first, then by creation.
func (g *tagGroupRec) sortedTags() []*tagRec {
	ts := slices.Clone(g.tags)
	sort.SliceStable(ts, func(i, j int) bool {
		if ts[i].Order != ts[j].Order {
			return ts[i].Order > ts[j].Order
		}
		return ts[i].seq < ts[j].seq
	})
	return ts
}

func (c *Corp) sortedTagGroups() []*tagGroupRec {
	gs := slices.Clone(c.tagGroups)
	sort.SliceStable(gs, func(i, j int) bool {
		if gs[i].Order != gs[j].Order {
			return gs[i].Order > gs[j].Order
		}
		return gs[i].seq < gs[j].seq
	})
	return gs
}

// PutGroup adds a customer group silently. Members must be staff or known
// customers; the owner is added as a member when missing. It returns the
// group with its chat ID and member version.
func (c *Corp) PutGroup(g Group) (Group, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gr, err := c.addGroup(g.Owner, g.Name, nil, wecom.JoinByInvite)
	if err != nil {
		return Group{}, err
	}
	if !g.CreateTime.IsZero() {
		gr.CreateTime = g.CreateTime
	}
	gr.Notice, gr.Admins, gr.Status = g.Notice, slices.Clone(g.Admins), g.Status
	for _, m := range g.Members {
		if m.UserID == gr.Owner {
			continue
		}
		nm, err := c.newMember(m.UserID, m.JoinScene, m.Invitor)
		if err != nil {
			return Group{}, err
		}
		if !m.JoinTime.IsZero() {
			nm.JoinTime = m.JoinTime
		}
		nm.GroupNickname = m.GroupNickname
		gr.Members = append(gr.Members, nm)
	}
	gr.MemberVersion = memberVersion(gr.ChatID, gr.ver)
	return gr.snapshot(), nil
}

// addGroup creates a group owned by a member. The caller holds c.mu.
func (c *Corp) addGroup(owner, name string, memberIDs []string, scene int) (*groupRec, error) {
	if c.liveStaff(owner) == nil {
		return nil, fmt.Errorf("wecomtest: owner %q is not a member of the corp", owner)
	}
	gr := &groupRec{Group: Group{ChatID: c.newID("wr", 30), Name: name, Owner: owner, CreateTime: c.Now()}}
	gr.seq = c.seq
	om, _ := c.newMember(owner, wecom.JoinByInvite, "")
	gr.Members = append(gr.Members, om)
	for _, id := range memberIDs {
		if id == owner {
			continue
		}
		m, err := c.newMember(id, scene, owner)
		if err != nil {
			return nil, err
		}
		gr.Members = append(gr.Members, m)
	}
	gr.ver = 1
	gr.MemberVersion = memberVersion(gr.ChatID, gr.ver)
	c.groups[gr.ChatID] = gr
	c.groupIDs = append(c.groupIDs, gr.ChatID)
	return gr, nil
}

// newMember describes a staff member or customer joining a group. The caller holds c.mu.
func (c *Corp) newMember(id string, scene int, invitor string) (Member, error) {
	if scene == 0 {
		scene = wecom.JoinByInvite
	}
	m := Member{UserID: id, JoinTime: c.Now(), JoinScene: scene}
	if scene != wecom.JoinByQRCode {
		m.Invitor = invitor
	}
	if st := c.liveStaff(id); st != nil {
		m.Type, m.Name = wecom.MemberStaff, st.Name
		return m, nil
	}
	if r := c.contacts[id]; r != nil {
		m.Type, m.Name, m.UnionID = wecom.MemberExternal, r.Name, r.UnionID
		return m, nil
	}
	return Member{}, fmt.Errorf("wecomtest: %q is neither a member of the corp nor a known customer", id)
}

func (g *groupRec) snapshot() Group {
	out := g.Group
	out.Members = slices.Clone(g.Members)
	out.Admins = slices.Clone(g.Admins)
	return out
}

func (g *groupRec) memberIndex(id string) int {
	return slices.IndexFunc(g.Members, func(m Member) bool { return m.UserID == id })
}

// Departments returns the departments by ID.
func (c *Corp) Departments() []Department {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Department, 0, len(c.depts))
	for _, d := range c.depts {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Department) int { return int(a.ID - b.ID) })
	return out
}

// StaffList returns the members who have not been deleted, in the order they were added.
func (c *Corp) StaffList() []Staff {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Staff
	for _, id := range c.staffIDs {
		if r := c.liveStaff(id); r != nil {
			s := r.Staff
			s.Departments = slices.Clone(s.Departments)
			out = append(out, s)
		}
	}
	return out
}

// Staff returns a member who has not been deleted.
func (c *Corp) Staff(userID string) (Staff, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r := c.liveStaff(userID)
	if r == nil {
		return Staff{}, false
	}
	s := r.Staff
	s.Departments = slices.Clone(s.Departments)
	return s, true
}

// liveFollows returns the relations of members who have not been deleted:
// what the APIs show. The caller holds c.mu.
func (c *Corp) liveFollows(r *contactRec) []*followRec {
	var out []*followRec
	for _, f := range r.follows {
		if c.liveStaff(f.UserID) != nil {
			out = append(out, f)
		}
	}
	return out
}

// liveCount is len(liveFollows(r)) without the allocation. The caller holds c.mu.
func (c *Corp) liveCount(r *contactRec) int {
	n := 0
	for _, f := range r.follows {
		if c.liveStaff(f.UserID) != nil {
			n++
		}
	}
	return n
}

// Contact returns a customer and their relations with current members, as
// the APIs show them.
func (c *Corp) Contact(externalUserID string) (Contact, []Follow, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r := c.contacts[externalUserID]
	if r == nil {
		return Contact{}, nil, false
	}
	return r.Contact, copyFollows(c.liveFollows(r)), true
}

// Contacts returns every customer with a relation to a current member, by
// external_userid: the customers a full sync must find.
func (c *Corp) Contacts() []Contact {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Contact, 0, len(c.contacts))
	for _, r := range c.contacts {
		if c.liveCount(r) > 0 {
			out = append(out, r.Contact)
		}
	}
	slices.SortFunc(out, func(a, b Contact) int { return cmpString(a.ExternalUserID, b.ExternalUserID) })
	return out
}

// FollowsOf returns a member's customer relations in the order they were
// made; for a deleted member, the relations waiting for inheritance.
func (c *Corp) FollowsOf(userID string) []Follow {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r := c.staff[userID]
	if r == nil {
		return nil
	}
	return copyFollows(r.follows)
}

// Counts returns how many customers and relations the APIs show: those of
// current members.
func (c *Corp) Counts() (contacts, follows int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, r := range c.contacts {
		if n := c.liveCount(r); n > 0 {
			contacts++
			follows += n
		}
	}
	return contacts, follows
}

func copyFollows(fs []*followRec) []Follow {
	out := make([]Follow, len(fs))
	for i, f := range fs {
		out[i] = f.Follow
		out[i].TagIDs = slices.Clone(f.TagIDs)
		out[i].RemarkMobiles = slices.Clone(f.RemarkMobiles)
	}
	return out
}

// Group returns a customer group, dismissed or not.
func (c *Corp) Group(chatID string) (Group, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	g := c.groups[chatID]
	if g == nil {
		return Group{}, false
	}
	return g.snapshot(), true
}

// Groups returns the customer groups that are not dismissed, in creation order.
func (c *Corp) Groups() []Group {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Group
	for _, id := range c.groupIDs {
		if g := c.groups[id]; !g.Dismissed {
			out = append(out, g.snapshot())
		}
	}
	return out
}

// TagGroups returns the corp tag groups and tags that are not deleted, in WeCom's order.
func (c *Corp) TagGroups() []TagGroup {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []TagGroup
	for _, g := range c.sortedTagGroups() {
		if !g.Deleted {
			out = append(out, g.snapshot(false))
		}
	}
	return out
}

// TagByName finds a live corp tag by group and tag name, for tests.
func (c *Corp) TagByName(group, name string) (Tag, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, g := range c.tagGroups {
		if g.Deleted || g.Name != group {
			continue
		}
		for _, t := range g.tags {
			if !t.Deleted && t.Name == name {
				return t.Tag, true
			}
		}
	}
	return Tag{}, false
}

// MarkChatted records that a member and a customer have chatted, after which
// WeCom refuses a welcome message for them (41051).
func (c *Corp) MarkChatted(userID, externalUserID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.follow(userID, externalUserID)
	if f == nil {
		return fmt.Errorf("wecomtest: %s does not follow %s", userID, externalUserID)
	}
	f.chatted = true
	return nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
