package audience

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-dev/siyu/internal/customer"
)

// How a build stays fast (docs/benchmarks.md has the figures):
//
//   - Tags and events, most of the rows, come from the checkpoint when there
//     is one (checkpoint.go), read while profiles are.
//   - Profiles come first, in id order, so ordinals are appended; each value
//     goes straight into its column (no per-customer maps), and traits are
//     read without decoding whole documents.
//   - Spend, scores, and tags and events when read from their tables, are
//     then read at the same time, each into structures of its own, merged
//     when all are done: on PostgreSQL the server scans while Siyu decodes,
//     and SQLite reads on several cores.
//   - Customer ids map to ordinals through a table, not a search per row.
//   - A tag's customers, which come sorted, are added to its bitmap at once.

// built is what a build produced.
type built struct {
	x      *Index
	loc    *time.Location
	follow followState // where following the feeds continues
	// checkpoint is the checkpoint the build started from (nil: none), whose
	// feed position must be caught up with before the index is used.
	checkpoint *checkpoint
}

// build reads a workspace's index from its sources, or from its checkpoint
// and its sources; from is the feeds' position at the start, where following
// continues after a build without a checkpoint.
func (s *Service) build(ctx context.Context, tenantID int64, from followState) (built, error) {
	start := time.Now()
	loc := time.UTC
	if s.src.Location != nil {
		l, err := s.src.Location(ctx, tenantID)
		if err != nil {
			return built{}, err
		}
		loc = l
	}
	kinds, err := s.customKinds(ctx, tenantID)
	if err != nil {
		return built{}, err
	}
	x := NewIndex()
	var took []any
	phase := func(name string, t0 time.Time) { took = append(took, name, time.Since(t0).Round(time.Millisecond)) }

	// The checkpoint is read while profiles are: it does not need them until
	// its ordinals are matched to theirs.
	ckTags, ckEvents := s.src.Tags != nil && s.feeds.Tags != nil, s.src.Events != nil && s.feeds.Events != nil
	var ck *checkpoint
	ckDone := make(chan error, 1)
	if s.feeds.Profiles != nil && (ckTags || ckEvents) {
		go func() {
			t0 := time.Now()
			var err error
			ck, err = s.readCheckpoint(ctx, tenantID, loc)
			if ck != nil {
				phase("checkpoint", t0) // before the next phase is noted
			}
			ckDone <- err
		}()
	} else {
		ckDone <- nil
	}

	t0 := time.Now()
	err = s.loadProfiles(ctx, tenantID, x, kinds)
	ckErr := <-ckDone
	if err != nil {
		return built{}, fmt.Errorf("audience: load profiles: %w", err)
	}
	phase("profiles", t0)
	if ckErr != nil {
		s.log.Warn("audience index: the checkpoint is unreadable; rebuilding in full", "tenant", tenantID, "err", ckErr)
		ck = nil
	}
	if len(x.ids) > 0 {
		s.log.Info("audience index: profiles loaded", "tenant", tenantID, "profiles", len(x.ids), "took", time.Since(t0).Round(time.Millisecond))
	}

	// The other sources are read at the same time, each into a part of its
	// own, merged afterwards.
	ords := newIDMap(x.ids)
	var mu sync.Mutex
	var parts []*Index
	var tasks []func(context.Context) error
	add := func(name string, read func(context.Context, *Index) error) {
		tasks = append(tasks, func(ctx context.Context) error {
			t0 := time.Now()
			p := x.part()
			if err := read(ctx, p); err != nil {
				return fmt.Errorf("audience: load %s: %w", name, err)
			}
			mu.Lock()
			parts = append(parts, p)
			phase(name, t0)
			mu.Unlock()
			return nil
		})
	}
	since := s.now().AddDate(0, 0, -EventHistoryDays)
	if ck != nil {
		oldest := Env{Loc: loc}.day(since)
		add("from checkpoint", func(_ context.Context, p *Index) error {
			if !ckTags {
				ck.tags = nil
			}
			if !ckEvents {
				ck.events = nil
			}
			ck.apply(p, ords, oldest)
			return nil
		})
	}
	if s.src.Spend != nil {
		add("spend", func(ctx context.Context, p *Index) error { return s.loadSpend(ctx, tenantID, p, ords) })
	}
	if s.src.Scores != nil {
		add("scores", func(ctx context.Context, p *Index) error { return s.loadScores(ctx, tenantID, p, ords) })
	}
	if s.src.Tags != nil && (ck == nil || !ckTags) {
		add("tags", func(ctx context.Context, p *Index) error { return s.loadTags(ctx, tenantID, p, ords) })
	}
	if s.src.Groups != nil {
		// Not in checkpoints: group members are few next to customers.
		add("groups", func(ctx context.Context, p *Index) error { return s.loadGroups(ctx, tenantID, p, ords) })
	}
	if s.src.Events != nil && (ck == nil || !ckEvents) {
		add("events", func(ctx context.Context, p *Index) error { return s.loadEvents(ctx, tenantID, p, ords, loc, since) })
	}
	if err := together(ctx, tasks...); err != nil {
		return built{}, err
	}
	for _, p := range parts {
		x.mergePart(p)
	}
	t0 = time.Now()
	x.optimize()
	phase("optimize", t0)
	res := built{x: x, loc: loc, follow: from}
	if ck != nil {
		// Never later than this build's own start, whatever another node's
		// clock said.
		res.follow = followState{since: ck.asOf, mergesAfter: min(ck.mergesAfter, from.mergesAfter)}
		if from.since.Before(ck.asOf) {
			res.follow.since = from.since
		}
		res.checkpoint = ck
		took = append(took, "checkpoint_as_of", ck.asOf)
	}
	s.log.Info("audience index built", append([]any{"tenant", tenantID, "customers", x.Size(), "memory_mb", x.MemoryBytes() >> 20,
		"took", time.Since(start).Round(time.Millisecond)}, took...)...)
	return res, nil
}

// together runs fns concurrently and returns the first error; the others are
// cancelled then.
func together(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(fns))
	for _, fn := range fns {
		go func() { errc <- fn(ctx) }()
	}
	var first error
	for range fns {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// idMap maps customer ids to ordinals during a build: a table indexed by id
// where ids are dense enough (they are sequences), a search otherwise.
type idMap struct {
	ids   []int64
	base  int64
	dense []uint32 // ordinal+1 by id-base; 0: no such customer
}

func newIDMap(ids []int64) idMap {
	m := idMap{ids: ids}
	if len(ids) == 0 {
		return m
	}
	m.base = ids[0]
	if span := ids[len(ids)-1] - ids[0] + 1; span <= int64(len(ids))*4+1024 {
		m.dense = make([]uint32, span)
		for o, id := range ids {
			m.dense[id-m.base] = uint32(o) + 1
		}
	}
	return m
}

func (m idMap) get(id int64) (uint32, bool) {
	if m.dense != nil {
		i := id - m.base
		if i < 0 || i >= int64(len(m.dense)) || m.dense[i] == 0 {
			return 0, false
		}
		return m.dense[i] - 1, true
	}
	i, ok := slices.BinarySearch(m.ids, id)
	return uint32(i), ok
}

// catLoad fills one categorical column of a fresh index: a value's bitmap is
// found by its dictionary code, and a value given as bytes is only copied
// the first time it is seen.
type catLoad struct {
	attr   string
	x      *Index
	cc     *catColumn
	byCode []*roaring.Bitmap // code-1 → the value's bitmap
}

func (x *Index) catLoader(attr string) *catLoad {
	cc := x.catOf[attr]
	if cc == nil {
		cc = &catColumn{code: map[string]uint32{}}
		x.catOf[attr] = cc
	}
	l := &catLoad{attr: attr, x: x, cc: cc}
	for _, v := range cc.dict {
		l.byCode = append(l.byCode, x.cats[attr][v])
	}
	return l
}

// set records value v of a customer that has none yet ("" leaves it unset).
func (l *catLoad) set(o uint32, v string) {
	if v == "" {
		return
	}
	c, ok := l.cc.code[v]
	if !ok {
		c = l.newValue(v)
	}
	l.add(o, c)
}

// setBytes is set for a value in bytes.
func (l *catLoad) setBytes(o uint32, v []byte) {
	if len(v) == 0 {
		return
	}
	c, ok := l.cc.code[string(v)]
	if !ok {
		c = l.newValue(string(v))
	}
	l.add(o, c)
}

func (l *catLoad) newValue(v string) uint32 {
	l.cc.dict = append(l.cc.dict, v)
	c := uint32(len(l.cc.dict))
	l.cc.code[v] = c
	return c
}

func (l *catLoad) add(o uint32, c uint32) {
	for int(c) > len(l.byCode) {
		l.byCode = append(l.byCode, nil)
	}
	b := l.byCode[c-1]
	if b == nil {
		vals := l.x.cats[l.attr]
		if vals == nil {
			vals = map[string]*roaring.Bitmap{}
			l.x.cats[l.attr] = vals
		}
		v := l.cc.dict[c-1]
		if b = vals[v]; b == nil {
			b = roaring.New()
			vals[v] = b
		}
		l.byCode[c-1] = b
	}
	b.Add(o)
	l.cc.codes.set(int(o), uint64(c))
}

// numLoader returns attr's column for a fresh load: values are put without
// bins, which optimize computes once at the end.
func (x *Index) numLoader(attr string) *numColumn {
	c := x.nums[attr]
	if c == nil {
		c = newNumColumn()
		x.nums[attr] = c
	}
	return c
}

func (c *numColumn) load(o uint32, v int64) {
	if c.has.IsEmpty() {
		c.base = v
	}
	c.put(o, v)
	c.has.Add(o)
}

// profileLoad applies profile rows to a fresh index.
type profileLoad struct {
	x        *Index
	catNames []string // standard, then custom categorical attributes
	cats     []*catLoad
	numNames []string // standard, then custom numeric and date attributes
	nums     []*numColumn
	custom   map[string]int // custom attribute → index into attrs
	attrs    []customAttr
	shadow   []customAttr // custom attributes named like standard ones
	guess    int          // the attribute the next key probably names
	kinds    map[string]string
	// per row, the values to set
	catVal []catStage
	numVal []int64
	numSet []bool
}

type customAttr struct {
	name, kind string
	at         int // index into cats or nums
}

// catStage is a categorical value to set: a string, or bytes of the traits
// document (which are only valid during the row).
type catStage struct {
	s     string
	b     []byte
	bytes bool
}

var profileCats = []string{"gender", "province", "city", "source", "source_code"}

const (
	numBirthday = iota
	numFirstSeen
	numLastSeen
)

func newProfileLoad(x *Index, kinds map[string]string) *profileLoad {
	l := &profileLoad{x: x, custom: map[string]int{}, kinds: kinds}
	l.catNames = append(l.catNames, profileCats...)
	l.numNames = append(l.numNames, "birthday", "first_seen_at", "last_seen_at")
	names := make([]string, 0, len(kinds))
	for name := range kinds {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		a := customAttr{name: name, kind: kinds[name]}
		switch a.kind {
		case AttrCategorical:
			if a.at = slices.Index(l.catNames, name); a.at >= 0 {
				l.shadow = append(l.shadow, a) // a trait named like a column: the trait wins
			} else {
				a.at = len(l.catNames)
				l.catNames = append(l.catNames, name)
			}
		case AttrNumeric, AttrDate:
			if a.at = slices.Index(l.numNames, name); a.at >= 0 {
				l.shadow = append(l.shadow, a)
			} else {
				a.at = len(l.numNames)
				l.numNames = append(l.numNames, name)
			}
		default:
			continue
		}
		l.custom[name] = len(l.attrs)
		l.attrs = append(l.attrs, a)
	}
	for _, name := range l.catNames {
		l.cats = append(l.cats, x.catLoader(name))
	}
	for _, name := range l.numNames {
		l.nums = append(l.nums, x.numLoader(name))
	}
	l.catVal = make([]catStage, len(l.catNames))
	l.numVal = make([]int64, len(l.numNames))
	l.numSet = make([]bool, len(l.numNames))
	return l
}

// trait stages one custom attribute's value as profileOf would set it.
func (l *profileLoad) trait(a customAttr, v traitVal) {
	i := a.at
	switch a.kind {
	case AttrCategorical:
		switch v.kind {
		case '"':
			l.catVal[i] = catStage{b: v.b, bytes: true}
		case 'n':
			l.catVal[i] = catStage{}
		default:
			l.catVal[i] = catStage{s: catValue(v.any())}
		}
	case AttrNumeric:
		f, isNum := v.number()
		l.numVal[i], l.numSet[i] = int64(f*customScale), isNum
	case AttrDate:
		var p *int64
		if v.kind == '"' {
			p = dateMillis(string(v.b))
		}
		l.numSet[i] = p != nil
		if p != nil {
			l.numVal[i] = *p
		}
	}
}

// traitAny stages a value decoded by encoding/json.
func (l *profileLoad) traitAny(a customAttr, v any) {
	i := a.at
	switch a.kind {
	case AttrCategorical:
		l.catVal[i] = catStage{}
		if v != nil {
			l.catVal[i].s = catValue(v)
		}
	case AttrNumeric:
		f, isNum := number(v)
		l.numVal[i], l.numSet[i] = int64(f*customScale), isNum
	case AttrDate:
		str, _ := v.(string)
		p := dateMillis(str)
		l.numSet[i] = p != nil
		if p != nil {
			l.numVal[i] = *p
		}
	}
}

func (l *profileLoad) row(r customer.IndexRow) error {
	x := l.x
	if n := len(x.ids); n > 0 && r.ID <= x.ids[n-1] {
		// Not in id order after all: take the general path.
		return l.general(r)
	}
	o := x.ordinal(r.ID)
	if r.Live {
		x.live.Add(o)
	}
	clear(l.catVal)
	clear(l.numSet)
	for i, v := range [...]string{r.Gender, r.Province, r.City, r.Source, r.SourceCode} {
		l.catVal[i].s = v
	}
	if b := dateMillis(r.Birthday); b != nil {
		l.numVal[numBirthday], l.numSet[numBirthday] = *b, true
	}
	l.numVal[numFirstSeen], l.numSet[numFirstSeen] = r.FirstSeen.UnixMilli(), true
	l.numVal[numLastSeen], l.numSet[numLastSeen] = r.LastSeen.UnixMilli(), true
	for _, a := range l.shadow { // as profileOf: only the trait counts
		if a.kind == AttrCategorical {
			l.catVal[a.at] = catStage{}
		} else {
			l.numSet[a.at] = false
		}
	}
	if len(l.custom) > 0 {
		if err := l.traits(r); err != nil {
			return err
		}
	}
	for i, v := range l.catVal {
		if v.bytes {
			l.cats[i].setBytes(o, v.b)
		} else {
			l.cats[i].set(o, v.s)
		}
	}
	for i, set := range l.numSet {
		if set {
			l.nums[i].load(o, l.numVal[i])
		}
	}
	return nil
}

// general applies a row that is not the next in id order, as a refresh does.
func (l *profileLoad) general(r customer.IndexRow) error {
	if r.Traits == nil && len(r.RawTraits) > 0 {
		if err := json.Unmarshal(r.RawTraits, &r.Traits); err != nil {
			return fmt.Errorf("customer %d: damaged traits: %w", r.ID, err)
		}
	}
	l.x.setProfile(profileOf(r, l.kinds))
	// Inserting an ordinal replaces bitmaps: find them again.
	for _, c := range l.cats {
		clear(c.byCode)
	}
	return nil
}

func (l *profileLoad) traits(r customer.IndexRow) error {
	traits := r.Traits
	if traits == nil {
		raw := r.RawTraits
		if len(raw) == 0 || string(raw) == "{}" {
			return nil
		}
		want := func(key []byte) int {
			// Documents written by the same code list keys in the same order:
			// try the attribute after the last one first.
			if g := l.guess; g < len(l.attrs) && string(key) == l.attrs[g].name {
				l.guess++
				return g
			}
			if i, ok := l.custom[string(key)]; ok {
				l.guess = i + 1
				return i
			}
			return -1
		}
		l.guess = 0
		if eachTrait(raw, want, func(i int, v traitVal) { l.trait(l.attrs[i], v) }) {
			return nil
		}
		// Not a flat document: decode it whole, from a clean slate.
		for _, a := range l.attrs {
			if a.kind == AttrCategorical {
				l.catVal[a.at] = catStage{}
			} else {
				l.numSet[a.at] = false
			}
		}
		if err := json.Unmarshal(raw, &traits); err != nil {
			return fmt.Errorf("customer %d: damaged traits: %w", r.ID, err)
		}
	}
	for name, v := range traits {
		if i, ok := l.custom[name]; ok {
			l.traitAny(l.attrs[i], v)
		}
	}
	return nil
}

// profileBatch is rows handed from the reader to the applier; the rows'
// RawTraits point into buf.
type profileBatch struct {
	rows []customer.IndexRow
	buf  []byte
}

// loadProfiles reads profiles in one goroutine and applies them in another,
// so that decoding rows (the driver's work, and on SQLite the database's)
// and filling the index run on two cores.
func (s *Service) loadProfiles(ctx context.Context, tenantID int64, x *Index, kinds map[string]string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const batchRows = 512
	full := make(chan *profileBatch, 4)
	free := make(chan *profileBatch, 6)
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		b := &profileBatch{}
		readErr <- s.src.Profiles.EachForIndex(ctx, tenantID, func(r customer.IndexRow) error {
			if r.RawTraits != nil {
				// The driver reuses the bytes: keep a copy.
				at := len(b.buf)
				b.buf = append(b.buf, r.RawTraits...)
				r.RawTraits = b.buf[at:len(b.buf):len(b.buf)]
			}
			b.rows = append(b.rows, r)
			if len(b.rows) < batchRows {
				return nil
			}
			select {
			case full <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case b = <-free:
				b.rows, b.buf = b.rows[:0], b.buf[:0]
			default:
				b = &profileBatch{}
			}
			return nil
		})
		if len(b.rows) > 0 {
			select {
			case full <- b:
			case <-ctx.Done():
			}
		}
	}()
	l := newProfileLoad(x, kinds)
	n := 0
	var applyErr error
	for b := range full {
		if applyErr != nil {
			continue // drain, so the reader ends
		}
		for _, r := range b.rows {
			if applyErr = l.row(r); applyErr != nil {
				cancel()
				break
			}
			if n++; n%1_000_000 == 0 {
				s.log.Info("audience index: loading profiles", "tenant", tenantID, "profiles", n)
			}
		}
		select {
		case free <- b:
		default:
		}
	}
	if err := <-readErr; applyErr == nil {
		return err
	}
	return applyErr
}

// part returns an empty index sharing x's customers, for one reader of a
// build to fill on its own.
func (x *Index) part() *Index {
	p := NewIndex()
	p.ids = x.ids
	return p
}

// mergePart moves what a reader filled into x. Parts fill different
// structures, so this mostly moves maps; where x already has an attribute
// (a custom trait named like a standard one), the part's values win, as the
// part's source was applied after profiles.
func (x *Index) mergePart(p *Index) {
	for k, b := range p.groups {
		if have := x.groups[k]; have != nil {
			have.Or(b)
		} else {
			x.groups[k] = b
		}
	}
	for k, b := range p.tags {
		if have := x.tags[k]; have != nil {
			have.Or(b)
		} else {
			x.tags[k] = b
		}
	}
	for name, days := range p.events {
		have := x.events[name]
		if have == nil {
			x.events[name] = days
			continue
		}
		for d, b := range days {
			if h := have[d]; h != nil {
				h.Or(b)
			} else {
				have[d] = b
			}
		}
	}
	for attr, c := range p.nums {
		have := x.nums[attr]
		if have == nil {
			x.nums[attr] = c
			continue
		}
		it := c.has.Iterator()
		for it.HasNext() {
			o := it.Next()
			v := c.val(o)
			have.set(o, &v)
		}
	}
	for attr, cc := range p.catOf {
		if x.catOf[attr] == nil {
			x.catOf[attr] = cc
			if vals := p.cats[attr]; vals != nil {
				x.cats[attr] = vals
			}
			continue
		}
		for v, b := range p.cats[attr] {
			it := b.Iterator()
			for it.HasNext() {
				x.setCat(attr, it.Next(), v)
			}
		}
	}
}

// loadTags reads the (tag, customer) pairs, which come sorted by tag then
// customer, so each tag's ordinals arrive ascending and are added at once.
func (s *Service) loadTags(ctx context.Context, tenantID int64, p *Index, ords idMap) error {
	var cur int64
	var buf []uint32
	flush := func() {
		if len(buf) == 0 {
			return
		}
		if !slices.IsSorted(buf) { // not sorted by customer after all
			slices.Sort(buf)
		}
		b := p.tags[cur]
		if b == nil {
			b = roaring.New()
			p.tags[cur] = b
		}
		b.AddMany(buf)
		buf = buf[:0]
	}
	err := s.src.Tags.Snapshot(ctx, tenantID, func(tagID, customerID int64) error {
		if tagID != cur {
			flush()
			cur = tagID
		}
		if o, ok := ords.get(customerID); ok {
			buf = append(buf, o)
		}
		return nil
	})
	flush()
	return err
}

// loadGroups reads which customers are in which groups now, by group.
func (s *Service) loadGroups(ctx context.Context, tenantID int64, p *Index, ords idMap) error {
	return s.src.Groups.EachGroupMember(ctx, tenantID, func(chatID string, customerID int64) error {
		o, ok := ords.get(customerID)
		if !ok {
			return nil
		}
		b := p.groups[chatID]
		if b == nil {
			b = roaring.New()
			p.groups[chatID] = b
		}
		b.Add(o)
		return nil
	})
}

// loadEvents reads which customers performed which events on which days.
func (s *Service) loadEvents(ctx context.Context, tenantID int64, p *Index, ords idMap, loc *time.Location, since time.Time) error {
	days := dayCalc{loc: loc}
	var lastName string
	var last map[int32]*roaring.Bitmap
	return s.src.Events.EachEventTime(ctx, tenantID, since, func(id int64, name string, at time.Time) error {
		o, ok := ords.get(id)
		if !ok {
			return nil
		}
		if last == nil || name != lastName {
			last = p.events[name]
			if last == nil {
				last = map[int32]*roaring.Bitmap{}
				p.events[name] = last
			}
			lastName = name
		}
		d := days.day(at)
		b := last[d]
		if b == nil {
			b = roaring.New()
			last[d] = b
		}
		b.Add(o)
		return nil
	})
}

// loadSpend reads order summaries as spendProfile would apply them.
func (s *Service) loadSpend(ctx context.Context, tenantID int64, p *Index, ords idMap) error {
	var total, count, avg, first, last *numColumn
	return s.src.Spend.EachSpend(ctx, tenantID, func(r SpendRow) error {
		o, ok := ords.get(r.CustomerID)
		if !ok {
			return nil
		}
		if total == nil {
			total, count, avg = p.numLoader("total_spend"), p.numLoader("order_count"), p.numLoader("avg_order_value")
			first, last = p.numLoader("first_order_at"), p.numLoader("last_order_at")
		}
		total.load(o, r.NetFen)
		count.load(o, r.OrderCount)
		if r.OrderCount > 0 {
			avg.load(o, r.NetFen/r.OrderCount)
		}
		if !r.FirstOrderAt.IsZero() {
			first.load(o, r.FirstOrderAt.UnixMilli())
			last.load(o, r.LastOrderAt.UnixMilli())
		}
		return nil
	})
}

// loadScores reads computed classifications as scoreProfile would apply them.
func (s *Service) loadScores(ctx context.Context, tenantID int64, p *Index, ords idMap) error {
	var class, life, tier *catLoad
	var rr, ff, mm *numColumn
	return s.src.Scores.EachScore(ctx, tenantID, func(r ScoreRow) error {
		o, ok := ords.get(r.CustomerID)
		if !ok {
			return nil
		}
		if class == nil {
			class, life, tier = p.catLoader("rfm_class"), p.catLoader("lifecycle"), p.catLoader("fan_tier")
			rr, ff, mm = p.numLoader("rfm_r"), p.numLoader("rfm_f"), p.numLoader("rfm_m")
		}
		class.set(o, r.RFMClass)
		life.set(o, r.Lifecycle)
		tier.set(o, r.FanTier)
		if r.R > 0 {
			rr.load(o, int64(r.R))
			ff.load(o, int64(r.F))
			mm.load(o, int64(r.M))
		}
		return nil
	})
}

// dayCalc is Env.day for many times in a row: it keeps the zone offset of
// the last time's period, so most days cost a division.
type dayCalc struct {
	loc    *time.Location
	lo, hi int64 // the period [lo, hi) in Unix seconds where off holds
	off    int64
	valid  bool
}

func (c *dayCalc) day(t time.Time) int32 {
	sec := t.Unix()
	if !c.valid || sec < c.lo || sec >= c.hi {
		lt := t.In(c.loc)
		_, off := lt.Zone()
		start, end := lt.ZoneBounds()
		c.lo, c.hi, c.off, c.valid = math.MinInt64, math.MaxInt64, int64(off), true
		if !start.IsZero() {
			c.lo = start.Unix()
		}
		if !end.IsZero() {
			c.hi = end.Unix()
		}
	}
	local := sec + c.off
	d := local / 86400
	if local%86400 < 0 {
		d--
	}
	return int32(d)
}

// optimize compresses runs and computes the numeric columns' bins, spread
// over the CPUs: after a bulk load every bitmap and column is touched.
func (x *Index) optimize() {
	var jobs []func()
	jobs = append(jobs, func() { x.live.RunOptimize() })
	for _, b := range x.tags {
		jobs = append(jobs, func() { b.RunOptimize() })
	}
	for _, m := range x.cats {
		for _, b := range m {
			jobs = append(jobs, func() { b.RunOptimize() })
		}
	}
	for _, days := range x.events {
		for _, b := range days {
			jobs = append(jobs, func() { b.RunOptimize() })
		}
	}
	for _, c := range x.nums {
		jobs = append(jobs, c.rebin)
	}
	work := make(chan func())
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for job := range work {
				job()
			}
		})
	}
	for _, job := range jobs {
		work <- job
	}
	close(work)
	wg.Wait()
}
