package audience

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Sources are the domains the index reads. Each is a small interface that its
// domain's service implements, so this package never reads their tables.
type Sources struct {
	Profiles ProfileSource
	Spend    SpendSource // optional until commerce exists
	Tags     TagSource   // optional until tags exist
	Events   EventSource // optional until ingest exists
	Scores   ScoreSource // optional until analytics exists
	Groups   GroupSource // customer groups; optional (UseGroups sets it)
	// Scan answers the predicates no bitmap holds; per workspace.
	Scan func(tenantID int64) Scanner
	// Location returns a workspace's time zone.
	Location func(ctx context.Context, tenantID int64) (*time.Location, error)
	// Feeds say what changed since a time, so the index follows the database.
	Feeds ChangeFeeds
}

// ProfileSource streams profiles (customer.Service).
type ProfileSource interface {
	EachForIndex(ctx context.Context, tenantID int64, fn func(customer.IndexRow) error) error
	ForIndex(ctx context.Context, tenantID int64, ids []int64, fn func(customer.IndexRow) error) error
	Attributes(ctx context.Context, tenantID int64) ([]customer.Attribute, error)
}

// SpendRow is a customer's order summary.
type SpendRow struct {
	CustomerID   int64
	OrderCount   int64
	NetFen       int64 // paid minus refunded
	FirstOrderAt time.Time
	LastOrderAt  time.Time
}

// SpendSource streams order summaries (commerce.Service).
type SpendSource interface {
	EachSpend(ctx context.Context, tenantID int64, fn func(SpendRow) error) error
	SpendFor(ctx context.Context, tenantID int64, ids []int64, fn func(SpendRow) error) error
}

// TagSource resolves tag references and streams (tag, customer) pairs.
type TagSource interface {
	Resolve(ctx context.Context, tenantID int64, ref string) (int64, error)
	Snapshot(ctx context.Context, tenantID int64, fn func(tagID, customerID int64) error) error
}

// ScoreRow is a customer's computed classification (analytics).
type ScoreRow struct {
	CustomerID int64
	R, F, M    int    // RFM scores 1–5 (0: no orders)
	RFMClass   string // one of the eight RFM classes, e.g. 重要价值客户
	Lifecycle  string // 初培期, 成长期, 成熟期, 延展期, 衰退期
	FanTier    string // 路人粉, 好感粉, 真爱粉
}

// ScoreSource streams computed scores (analytics.Service).
type ScoreSource interface {
	EachScore(ctx context.Context, tenantID int64, fn func(ScoreRow) error) error
	ScoresFor(ctx context.Context, tenantID int64, ids []int64, fn func(ScoreRow) error) error
}

// GroupSource streams which customers are in which customer groups now
// (community.Service).
type GroupSource interface {
	EachGroupMember(ctx context.Context, tenantID int64, fn func(chatID string, customerID int64) error) error
}

// GroupTagSource resolves group tags to the groups carrying them
// (community.Service); a GroupSource that is one enables "group_tag".
type GroupTagSource interface {
	ChatsTaggedName(ctx context.Context, tenantID int64, name string) ([]string, error)
}

// GroupFeed says whose group membership changed (community.Service).
type GroupFeed interface {
	GroupsChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error)
	GroupsOf(ctx context.Context, tenantID int64, ids []int64) (map[int64][]string, error)
}

// UseGroups makes customer group membership part of the index (the "group"
// and "groups_any" conditions), read from src and followed through feed.
// Call it while the program is built, before any index is.
func (s *Service) UseGroups(src GroupSource, feed GroupFeed) {
	s.src.Groups = src
	s.feeds.Groups = feed
}

// EventSource streams which customers performed which events when.
type EventSource interface {
	EachEventTime(ctx context.Context, tenantID int64, since time.Time, fn func(customerID int64, name string, at time.Time) error) error
}

// EventHistoryDays is how far back the day bitmaps reach; windows longer than
// this are answered by the event log.
const EventHistoryDays = 400

// Service keeps one index per workspace and answers audience questions.
type Service struct {
	db    *db.DB
	log   *slog.Logger
	src   Sources
	feeds ChangeFeeds
	now   func() time.Time
	// overlap is how far before its last position a follower reads again
	// (followOverlap; tests shorten it).
	overlap time.Duration

	mu      sync.Mutex
	tenants map[int64]*tenantIndex

	background sync.WaitGroup // checkpoints being written
	writing    sync.Mutex     // one checkpoint at a time: they are large writes
}

type tenantIndex struct {
	x     *Index
	loc   *time.Location
	ready chan struct{} // closed when built
	err   error

	mu      sync.Mutex
	dirty   map[int64]struct{} // customers to re-read
	changed bool               // something changed since saved audiences were last evaluated

	followMu sync.Mutex
	follow   followState

	// checkpointAt is when the checkpoint this index last wrote or started
	// from was written (under mu); checkpointing is set while one is written.
	checkpointAt  time.Time
	checkpointing bool
}

// NewService returns an audience service.
func NewService(d *db.DB, src Sources, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{db: d, log: log, src: src, feeds: src.Feeds, now: time.Now, overlap: followOverlap, tenants: map[int64]*tenantIndex{}}
}

// index returns the workspace's index, building it on first use; callers
// arriving during the build wait for it.
func (s *Service) index(ctx context.Context, tenantID int64) (*tenantIndex, error) {
	s.mu.Lock()
	t, ok := s.tenants[tenantID]
	if !ok {
		t = &tenantIndex{ready: make(chan struct{}), dirty: map[int64]struct{}{}}
		s.tenants[tenantID] = t
		go func() {
			ctx := context.WithoutCancel(ctx)
			// Changes from the moment the build starts are followed after it.
			from := followState{since: s.now()}
			if s.feeds.Profiles != nil {
				from.mergesAfter, _ = s.feeds.Profiles.LastMergeID(ctx, tenantID)
			}
			var b built
			b, t.err = s.build(ctx, tenantID, from)
			if t.err == nil {
				t.x, t.loc, t.follow = b.x, b.loc, b.follow
				if b.checkpoint != nil {
					// Catch up from the checkpoint's position before anyone
					// reads the index; what fails here the next tick retries.
					t.checkpointAt = b.checkpoint.writtenAt
					if err := s.follow(ctx, tenantID, t); err != nil {
						s.log.Error("audience: catching up after the checkpoint failed; will retry", "tenant", tenantID, "err", err)
					}
					s.flush(ctx, tenantID, t)
				}
			}
			close(t.ready)
			if t.err != nil {
				s.mu.Lock()
				delete(s.tenants, tenantID) // let a later call retry
				s.mu.Unlock()
			}
		}()
	}
	s.mu.Unlock()
	select {
	case <-t.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if t.err != nil {
		return nil, t.err
	}
	return t, nil
}

// Build builds (or rebuilds) the index of a workspace now; `serve` calls it for
// every workspace at start so the first query is fast.
func (s *Service) Build(ctx context.Context, tenantID int64) error {
	_, err := s.index(ctx, tenantID)
	return err
}

// attrKinds lists the attributes every workspace has.
func standardKinds() map[string]string {
	return map[string]string{
		"gender": AttrCategorical, "province": AttrCategorical, "city": AttrCategorical,
		"source": AttrCategorical, "source_code": AttrCategorical,
		"birthday": AttrDate, "first_seen_at": AttrDate, "last_seen_at": AttrDate,
		"total_spend": AttrNumeric, "order_count": AttrNumeric, "avg_order_value": AttrNumeric,
		"first_order_at": AttrDate, "last_order_at": AttrDate,
		"rfm_r": AttrNumeric, "rfm_f": AttrNumeric, "rfm_m": AttrNumeric,
		"rfm_class": AttrCategorical, "lifecycle": AttrCategorical, "fan_tier": AttrCategorical,
	}
}

// customScale stores custom numbers with three decimals in the integer index.
const customScale = 1000

// customKinds maps custom attributes to index kinds (lists are not indexed).
func (s *Service) customKinds(ctx context.Context, tenantID int64) (map[string]string, error) {
	attrs, err := s.src.Profiles.Attributes(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	kinds := map[string]string{}
	for _, a := range attrs {
		switch a.Type {
		case customer.TypeString, customer.TypeBool:
			kinds[a.Name] = AttrCategorical
		case customer.TypeNumber:
			kinds[a.Name] = AttrNumeric
		case customer.TypeDate:
			kinds[a.Name] = AttrDate
		}
	}
	return kinds, nil
}

func ptr(v int64) *int64 { return &v }

func dateMillis(s string) *int64 {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.DateOnly, s[:min(len(s), 10)])
	if err != nil {
		if t, err = time.Parse(time.RFC3339, s); err != nil {
			return nil
		}
	}
	return ptr(t.UnixMilli())
}

// profileOf converts a profile row to what the index keeps. Custom
// attributes take the kind their catalogue entry gives.
func profileOf(r customer.IndexRow, custom map[string]string) Profile {
	live := r.Live
	p := Profile{ID: r.ID, Live: &live,
		Cats: map[string]string{"gender": r.Gender, "province": r.Province, "city": r.City, "source": r.Source, "source_code": r.SourceCode},
		Nums: map[string]*int64{"birthday": dateMillis(r.Birthday), "first_seen_at": ptr(r.FirstSeen.UnixMilli()), "last_seen_at": ptr(r.LastSeen.UnixMilli())},
	}
	for name, kind := range custom {
		v, ok := r.Traits[name]
		switch kind {
		case AttrCategorical:
			if ok && v != nil {
				p.Cats[name] = catValue(v)
			} else {
				p.Cats[name] = ""
			}
		case AttrNumeric:
			if f, isNum := number(v); ok && isNum {
				p.Nums[name] = ptr(int64(f * customScale))
			} else {
				p.Nums[name] = nil
			}
		case AttrDate:
			str, _ := v.(string)
			p.Nums[name] = dateMillis(str)
		}
	}
	return p
}

func spendProfile(r SpendRow) Profile {
	p := Profile{ID: r.CustomerID, Nums: map[string]*int64{
		"total_spend": ptr(r.NetFen), "order_count": ptr(r.OrderCount), "avg_order_value": nil,
		"first_order_at": nil, "last_order_at": nil,
	}}
	if r.OrderCount > 0 {
		p.Nums["avg_order_value"] = ptr(r.NetFen / r.OrderCount)
	}
	if !r.FirstOrderAt.IsZero() {
		p.Nums["first_order_at"] = ptr(r.FirstOrderAt.UnixMilli())
		p.Nums["last_order_at"] = ptr(r.LastOrderAt.UnixMilli())
	}
	return p
}

func scoreProfile(r ScoreRow) Profile {
	p := Profile{ID: r.CustomerID, Cats: map[string]string{"rfm_class": r.RFMClass, "lifecycle": r.Lifecycle, "fan_tier": r.FanTier},
		Nums: map[string]*int64{"rfm_r": nil, "rfm_f": nil, "rfm_m": nil}}
	if r.R > 0 {
		p.Nums["rfm_r"], p.Nums["rfm_f"], p.Nums["rfm_m"] = ptr(int64(r.R)), ptr(int64(r.F)), ptr(int64(r.M))
	}
	return p
}

// env builds the evaluation environment of a workspace.
func (s *Service) env(ctx context.Context, tenantID int64, t *tenantIndex) (Env, error) {
	kinds, err := s.customKinds(ctx, tenantID)
	if err != nil {
		return Env{}, err
	}
	std := standardKinds()
	e := Env{
		Now: s.now(), Loc: t.loc,
		AttrKind: func(name string) (string, bool) {
			if k, ok := std[name]; ok {
				return k, true
			}
			k, ok := kinds[name]
			return k, ok
		},
		AttrScale: func(name string) float64 {
			if _, ok := std[name]; !ok && kinds[name] == AttrNumeric {
				return customScale
			}
			return 1
		},
	}
	if s.src.Tags != nil {
		e.TagID = func(ctx context.Context, ref string) (int64, error) { return s.src.Tags.Resolve(ctx, tenantID, ref) }
	}
	if s.src.Scan != nil {
		e.Scan = s.src.Scan(tenantID)
	}
	if gt, ok := s.src.Groups.(GroupTagSource); ok {
		e.GroupsTagged = func(ctx context.Context, name string) ([]string, error) {
			return gt.ChatsTaggedName(ctx, tenantID, name)
		}
	}
	return e, nil
}

// Result is the answer to an audience question.
type Result struct {
	Count int64
	set   *roaring.Bitmap
	t     *tenantIndex
}

// Evaluate runs a validated condition in a workspace.
func (s *Service) Evaluate(ctx context.Context, tenantID int64, c Condition) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	t, err := s.index(ctx, tenantID)
	if err != nil {
		return Result{}, err
	}
	s.flush(ctx, tenantID, t)
	env, err := s.env(ctx, tenantID, t)
	if err != nil {
		return Result{}, err
	}
	env.Audience = s.savedResolver(tenantID, t, env, 0)
	b, err := t.x.Eval(ctx, c, env)
	if err != nil {
		return Result{}, err
	}
	return Result{Count: int64(b.GetCardinality()), set: b, t: t}, nil
}

// savedResolver evaluates referenced saved audiences, bounded in depth (the
// graph is kept acyclic when audiences are saved).
func (s *Service) savedResolver(tenantID int64, t *tenantIndex, env Env, depth int) func(context.Context, int64) (*roaring.Bitmap, error) {
	return func(ctx context.Context, id int64) (*roaring.Bitmap, error) {
		if depth >= MaxDepth {
			return nil, errs.E(errs.Invalid, "audience_cycle", "audiences refer to each other too deeply")
		}
		a, err := s.Audience(ctx, tenantID, id)
		if err != nil {
			return nil, errs.E(errs.Invalid, "audience_not_found", "audience %d does not exist", id)
		}
		inner := env
		inner.Audience = s.savedResolver(tenantID, t, env, depth+1)
		return t.x.Eval(ctx, a.Conditions, inner)
	}
}

// Count returns how many customers match.
func (s *Service) Count(ctx context.Context, tenantID int64, c Condition) (int64, error) {
	r, err := s.Evaluate(ctx, tenantID, c)
	return r.Count, err
}

// IDs returns up to limit matching customer ids, lowest first, after the
// given id (0: from the start).
func (r Result) IDs(after int64, limit int) []int64 {
	if r.set == nil {
		return nil
	}
	b := r.set
	if after > 0 {
		r.t.x.mu.RLock()
		o, ok := r.t.x.lookup(after)
		if !ok {
			o = uint32(sort.Search(len(r.t.x.ids), func(i int) bool { return r.t.x.ids[i] > after }))
		} else {
			o++
		}
		r.t.x.mu.RUnlock()
		b = b.Clone()
		b.RemoveRange(0, uint64(o))
	}
	return r.t.x.IDs(b, limit)
}

// Bucket is one value of a breakdown.
type Bucket struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// Breakdown counts the matching customers by a categorical attribute (e.g. the
// cities of an audience), largest first; customers without a value are
// counted under "".
func (r Result) Breakdown(attr string) ([]Bucket, error) {
	x := r.t.x
	x.mu.RLock()
	defer x.mu.RUnlock()
	vals, ok := x.cats[attr]
	if !ok {
		if _, std := standardKinds()[attr]; !std {
			return nil, errs.Field("by", "unknown_attribute", "no categorical attribute %q to break down by", attr)
		}
	}
	var out []Bucket
	var seen uint64
	for v, b := range vals {
		if n := r.set.AndCardinality(b); n > 0 {
			out = append(out, Bucket{Value: v, Count: int64(n)})
			seen += n
		}
	}
	if rest := r.set.GetCardinality() - seen; rest > 0 {
		out = append(out, Bucket{Value: "", Count: int64(rest)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	return out, nil
}

// ---- keeping current ----

// Touch marks customers whose profile, traits or orders changed; the index
// re-reads them before the next query and on the next tick of Run.
func (s *Service) Touch(tenantID int64, ids ...int64) {
	s.mu.Lock()
	t, ok := s.tenants[tenantID]
	s.mu.Unlock()
	if !ok {
		return // not built yet: the build will read the current state
	}
	t.mu.Lock()
	for _, id := range ids {
		t.dirty[id] = struct{}{}
	}
	t.changed = true
	t.mu.Unlock()
}

func (t *tenantIndex) markChanged() {
	t.mu.Lock()
	t.changed = true
	t.mu.Unlock()
}

// TagsChanged applies a tag change (tag.Observer).
func (s *Service) TagsChanged(tenantID, customerID int64, added, removed []int64) {
	if t := s.built(tenantID); t != nil {
		t.x.SetTags(customerID, added, removed)
		t.markChanged()
	}
}

// EventSeen records that a customer performed an event (event processor).
func (s *Service) EventSeen(tenantID, customerID int64, name string, at time.Time) {
	if t := s.built(tenantID); t != nil {
		t.x.AddEvent(customerID, name, Env{Loc: t.loc}.day(at))
		t.markChanged()
	}
}

// Merged moves a merged profile's sets onto the survivor (customer merge hook,
// called after commit).
func (s *Service) Merged(tenantID, from, to int64) {
	if t := s.built(tenantID); t != nil {
		t.x.Merge(from, to)
		s.Touch(tenantID, to)
	}
}

func (s *Service) built(tenantID int64) *tenantIndex {
	s.mu.Lock()
	t, ok := s.tenants[tenantID]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-t.ready:
		if t.err == nil {
			return t
		}
	default:
		// Building: note nothing, the build reads the committed state. A change
		// committed after the build read its table is caught by Touch users
		// re-marking; tags and events racing a build are re-read at next start.
	}
	return nil
}

// flush re-reads dirty customers.
func (s *Service) flush(ctx context.Context, tenantID int64, t *tenantIndex) {
	t.mu.Lock()
	if len(t.dirty) == 0 {
		t.mu.Unlock()
		return
	}
	ids := make([]int64, 0, len(t.dirty))
	for id := range t.dirty {
		ids = append(ids, id)
	}
	t.dirty = map[int64]struct{}{}
	t.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if err := s.refresh(ctx, tenantID, t, ids); err != nil {
		s.log.Error("audience: refresh failed; will retry", "tenant", tenantID, "customers", len(ids), "err", err)
		s.Touch(tenantID, ids...)
	}
}

func (s *Service) refresh(ctx context.Context, tenantID int64, t *tenantIndex, ids []int64) error {
	kinds, err := s.customKinds(ctx, tenantID)
	if err != nil {
		return err
	}
	var rows []Profile
	if err := s.src.Profiles.ForIndex(ctx, tenantID, ids, func(r customer.IndexRow) error {
		rows = append(rows, profileOf(r, kinds))
		return nil
	}); err != nil {
		return err
	}
	if s.src.Spend != nil {
		if err := s.src.Spend.SpendFor(ctx, tenantID, ids, func(r SpendRow) error {
			p := spendProfile(r)
			rows = append(rows, p)
			return nil
		}); err != nil {
			return err
		}
	}
	if s.src.Scores != nil {
		if err := s.src.Scores.ScoresFor(ctx, tenantID, ids, func(r ScoreRow) error {
			rows = append(rows, scoreProfile(r))
			return nil
		}); err != nil {
			return err
		}
	}
	t.x.mu.Lock()
	for _, p := range rows {
		t.x.setProfile(p)
	}
	t.x.mu.Unlock()
	return nil
}

// Run flushes pending changes of every workspace until ctx ends, so live
// audiences move soon after writes even when nobody queries.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	defer s.background.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		var ids []int64
		for id := range s.tenants {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		for _, id := range ids {
			t := s.built(id)
			if t == nil {
				continue
			}
			t.x.Maintain()
			if err := s.follow(ctx, id, t); err != nil && ctx.Err() == nil {
				s.log.Error("audience: following changes failed; will retry", "tenant", id, "err", err)
			}
			s.flush(ctx, id, t)
			s.maybeCheckpoint(ctx, id, t)
			t.mu.Lock()
			changed := t.changed
			t.changed = false
			t.mu.Unlock()
			if changed {
				if err := s.Reevaluate(ctx, id); err != nil && ctx.Err() == nil {
					s.log.Error("audience: re-evaluation failed", "tenant", id, "err", err)
					t.markChanged()
				}
			}
		}
	}
}
