package audience

import (
	"slices"
	"sort"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
)

// Index holds one workspace's hot sets in memory. Customers are numbered by
// dense uint32 ordinals in customer-id order (ids only grow, so a new customer
// appends); every set is a roaring bitmap of ordinals.
//
//   - tags: tag id → customers
//   - categorical attributes (city, gender, source, rfm_class, custom strings):
//     attribute → value → customers
//   - numeric and date attributes: a numColumn (values by ordinal plus
//     quantile bins as bitmaps) that answers ranges without scanning customers
//   - behaviour: event name → day → customers who performed it that day
//
// An Index is safe for concurrent use: queries share a read lock, writes take
// the write lock briefly.
type Index struct {
	mu     sync.RWMutex
	ids    []int64         // ordinal → customer id, ascending
	live   *roaring.Bitmap // ordinals of live (not merged) customers
	tags   map[int64]*roaring.Bitmap
	cats   map[string]map[string]*roaring.Bitmap
	nums   map[string]*numColumn
	events map[string]map[int32]*roaring.Bitmap
	// groups: customer group (WeCom chat id) → customers in it now
	groups map[string]*roaring.Bitmap
	// catOf remembers each customer's categorical values, so an update knows
	// which bitmap to leave: a dictionary code per ordinal (0: unset), 4 bytes
	// a customer instead of a string header's 16.
	catOf map[string]*catColumn
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		live:   roaring.New(),
		tags:   map[int64]*roaring.Bitmap{},
		cats:   map[string]map[string]*roaring.Bitmap{},
		nums:   map[string]*numColumn{},
		events: map[string]map[int32]*roaring.Bitmap{},
		groups: map[string]*roaring.Bitmap{},
		catOf:  map[string]*catColumn{},
	}
}

// ordinal returns the ordinal of customer id, adding it when new (ids arrive
// in ascending order except during a rebuild, which sorts first).
func (x *Index) ordinal(id int64) uint32 {
	n := len(x.ids)
	if n == 0 || id > x.ids[n-1] {
		x.ids = append(x.ids, id)
		return uint32(n)
	}
	i := sort.Search(n, func(i int) bool { return x.ids[i] >= id })
	if i < n && x.ids[i] == id {
		return uint32(i)
	}
	// An id below the highest known one that was never seen: a row committed
	// out of order on PostgreSQL. Insert it and shift later ordinals.
	x.ids = slices.Insert(x.ids, i, id)
	x.shiftFrom(uint32(i))
	return uint32(i)
}

// lookup returns the ordinal of a known customer.
func (x *Index) lookup(id int64) (uint32, bool) {
	i := sort.Search(len(x.ids), func(i int) bool { return x.ids[i] >= id })
	if i < len(x.ids) && x.ids[i] == id {
		return uint32(i), true
	}
	return 0, false
}

// shiftFrom renumbers every ordinal ≥ o up by one. It is rare (out-of-order
// commits) and costs a pass over the index.
func (x *Index) shiftFrom(o uint32) {
	shift := func(b *roaring.Bitmap) *roaring.Bitmap {
		out := roaring.New()
		it := b.Iterator()
		for it.HasNext() {
			v := it.Next()
			if v >= o {
				v++
			}
			out.Add(v)
		}
		return out
	}
	x.live = shift(x.live)
	for k, b := range x.tags {
		x.tags[k] = shift(b)
	}
	for _, vals := range x.cats {
		for v, b := range vals {
			vals[v] = shift(b)
		}
	}
	for _, days := range x.events {
		for d, b := range days {
			days[d] = shift(b)
		}
	}
	for k, b := range x.groups {
		x.groups[k] = shift(b)
	}
	for _, c := range x.nums {
		c.shiftFrom(o, shift)
	}
	for _, cc := range x.catOf {
		if int(o) < cc.codes.len() {
			cc.codes.insert(int(o))
		}
	}
}

// Size returns the number of live customers.
func (x *Index) Size() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.live.GetCardinality()
}

// ---- writes (callers hold no lock; each takes the write lock) ----

// Profile is what the index keeps of one customer's attributes.
type Profile struct {
	ID   int64
	Live *bool             // nil leaves liveness as it is
	Cats map[string]string // categorical attributes; "" means unset
	Nums map[string]*int64 // numeric/date attributes; nil means unset
}

// SetProfile records a customer's attributes, replacing earlier values of the
// attributes it names.
func (x *Index) SetProfile(p Profile) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setProfile(p)
}

func (x *Index) setProfile(p Profile) {
	o := x.ordinal(p.ID)
	if p.Live != nil {
		if *p.Live {
			x.live.Add(o)
		} else {
			x.live.Remove(o)
		}
	}
	for attr, v := range p.Cats {
		x.setCat(attr, o, v)
	}
	for attr, v := range p.Nums {
		c := x.nums[attr]
		if c == nil {
			c = newNumColumn()
			x.nums[attr] = c
		}
		c.set(o, v)
	}
}

// catColumn holds one categorical attribute's value per ordinal as codes into
// a dictionary of the values seen.
type catColumn struct {
	codes packedInts        // by ordinal; 0 means unset
	dict  []string          // code-1 → value
	code  map[string]uint32 // value → code
}

func (cc *catColumn) get(o uint32) string {
	c := cc.codes.get(int(o))
	if c == 0 {
		return ""
	}
	return cc.dict[c-1]
}

func (cc *catColumn) set(o uint32, v string) {
	if v == "" {
		if int(o) < cc.codes.len() {
			cc.codes.set(int(o), 0)
		}
		return
	}
	c, ok := cc.code[v]
	if !ok {
		cc.dict = append(cc.dict, v)
		c = uint32(len(cc.dict))
		cc.code[v] = c
	}
	cc.codes.set(int(o), uint64(c))
}

func (x *Index) setCat(attr string, o uint32, v string) {
	cc := x.catOf[attr]
	if cc == nil {
		cc = &catColumn{code: map[string]uint32{}}
		x.catOf[attr] = cc
	}
	old := cc.get(o)
	if old == v {
		return
	}
	m := x.cats[attr]
	if m == nil {
		m = map[string]*roaring.Bitmap{}
		x.cats[attr] = m
	}
	if old != "" {
		if b := m[old]; b != nil {
			b.Remove(o)
			if b.IsEmpty() {
				delete(m, old)
			}
		}
	}
	if v != "" {
		b := m[v]
		if b == nil {
			b = roaring.New()
			m[v] = b
		}
		b.Add(o)
	}
	cc.set(o, v)
}

// SetTags records which tags were added to and removed from a customer.
func (x *Index) SetTags(id int64, added, removed []int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	o := x.ordinal(id)
	for _, t := range added {
		b := x.tags[t]
		if b == nil {
			b = roaring.New()
			x.tags[t] = b
		}
		b.Add(o)
	}
	for _, t := range removed {
		if b := x.tags[t]; b != nil {
			b.Remove(o)
		}
	}
}

// SetAllTags replaces a customer's tags with exactly the given ones.
func (x *Index) SetAllTags(id int64, tags []int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	o := x.ordinal(id)
	want := map[int64]bool{}
	for _, t := range tags {
		want[t] = true
	}
	for t, b := range x.tags {
		if !want[t] {
			b.Remove(o)
		}
	}
	for t := range want {
		b := x.tags[t]
		if b == nil {
			b = roaring.New()
			x.tags[t] = b
		}
		b.Add(o)
	}
}

// SetAllGroups replaces the customer groups (WeCom chat ids) a customer is
// in with exactly the given ones.
func (x *Index) SetAllGroups(id int64, chats []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	o := x.ordinal(id)
	want := map[string]bool{}
	for _, c := range chats {
		want[c] = true
	}
	for c, b := range x.groups {
		if !want[c] {
			b.Remove(o)
			if b.IsEmpty() {
				delete(x.groups, c)
			}
		}
	}
	for c := range want {
		b := x.groups[c]
		if b == nil {
			b = roaring.New()
			x.groups[c] = b
		}
		b.Add(o)
	}
}

// AddEvent records that a customer performed an event on a day (days since
// the Unix epoch in the workspace's time zone).
func (x *Index) AddEvent(id int64, name string, day int32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addEvent(x.ordinal(id), name, day)
}

func (x *Index) addEvent(o uint32, name string, day int32) {
	days := x.events[name]
	if days == nil {
		days = map[int32]*roaring.Bitmap{}
		x.events[name] = days
	}
	b := days[day]
	if b == nil {
		b = roaring.New()
		days[day] = b
	}
	b.Add(o)
}

// Merge moves what the index knows of customer from onto customer to, and
// marks from as no longer live.
func (x *Index) Merge(from, to int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	of, ok := x.lookup(from)
	if !ok {
		return
	}
	ot := x.ordinal(to)
	x.live.Remove(of)
	for _, b := range x.tags {
		if b.Contains(of) {
			b.Remove(of)
			b.Add(ot)
		}
	}
	for _, days := range x.events {
		for _, b := range days {
			if b.Contains(of) {
				b.Remove(of)
				b.Add(ot)
			}
		}
	}
	for _, b := range x.groups {
		if b.Contains(of) {
			b.Remove(of)
			b.Add(ot)
		}
	}
}

// Optimize compresses runs; call after a bulk load.
func (x *Index) Optimize() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.live.RunOptimize()
	for _, b := range x.tags {
		b.RunOptimize()
	}
	for _, m := range x.cats {
		for _, b := range m {
			b.RunOptimize()
		}
	}
	for _, days := range x.events {
		for _, b := range days {
			b.RunOptimize()
		}
	}
	for _, c := range x.nums {
		c.rebin()
	}
}

// Maintain recomputes the bins of numeric columns whose values changed a lot.
// The service calls it between queries; it takes the write lock.
func (x *Index) Maintain() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range x.nums {
		if c.stale() {
			c.rebin()
		}
	}
}

// MemoryBytes estimates the index's memory use.
func (x *Index) MemoryBytes() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := uint64(len(x.ids))*8 + x.live.GetSizeInBytes()
	for _, b := range x.tags {
		n += b.GetSizeInBytes()
	}
	for a, m := range x.cats {
		for v, b := range m {
			n += b.GetSizeInBytes() + uint64(len(v))
		}
		if cc := x.catOf[a]; cc != nil {
			n += cc.codes.bytes()
		}
	}
	for _, days := range x.events {
		for _, b := range days {
			n += b.GetSizeInBytes()
		}
	}
	for c, b := range x.groups {
		n += b.GetSizeInBytes() + uint64(len(c))
	}
	for _, c := range x.nums {
		n += c.memoryBytes()
	}
	return n
}
