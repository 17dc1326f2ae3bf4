package audience

import (
	"math"
	"math/bits"
	"slices"
	"sort"

	"github.com/RoaringBitmap/roaring/v2"
)

// numBins is how many quantile bins a numeric column keeps.
const numBins = 64

// numColumn indexes one numeric (or date) attribute so that a range query
// costs a few bitmap operations instead of a scan: customers are split into
// numBins bins by value quantiles; a query ORs the bins wholly inside the
// range and checks only the customers of the two edge bins against their exact
// values. Values are kept by ordinal for that check, as zigzagged offsets
// from a base value in as few bytes as the spread of the values needs.
type numColumn struct {
	vals    packedInts // zigzag(value - base) by ordinal
	base    int64
	has     *roaring.Bitmap // ordinals with a value
	bounds  []int64         // bounds[i] is the lowest value of bin i (ascending); bin 0 also takes anything lower
	bins    []*roaring.Bitmap
	changes int // values set since the bins were last recomputed
}

func newNumColumn() *numColumn {
	return &numColumn{has: roaring.New(), bounds: []int64{math.MinInt64}, bins: []*roaring.Bitmap{roaring.New()}}
}

// val returns the value of ordinal o (0 when it has none).
func (c *numColumn) val(o uint32) int64 { return c.base + unzigzag(c.vals.get(int(o))) }

func (c *numColumn) put(o uint32, v int64) { c.vals.set(int(o), zigzag(v-c.base)) }

// binOf returns the bin holding value v.
func (c *numColumn) binOf(v int64) int {
	return sort.Search(len(c.bounds), func(i int) bool { return c.bounds[i] > v }) - 1
}

func (c *numColumn) set(o uint32, v *int64) {
	if c.has.Contains(o) {
		c.bins[c.binOf(c.val(o))].Remove(o)
	}
	if v == nil {
		c.has.Remove(o)
		return
	}
	if c.has.IsEmpty() {
		c.base = *v
	}
	c.put(o, *v)
	c.has.Add(o)
	c.bins[c.binOf(*v)].Add(o)
	c.changes++
}

// stale reports whether enough values changed since the bins were computed
// that they should be recomputed: ranges stay correct with stale bins, but
// lopsided bins mean more edge values to check.
func (c *numColumn) stale() bool {
	return c.changes > 1024 && c.changes > int(c.has.GetCardinality()/10)
}

// rebin recomputes quantile bounds from the current values.
func (c *numColumn) rebin() {
	c.changes = 0
	n := c.has.GetCardinality()
	if n == 0 {
		c.bounds, c.bins = []int64{math.MinInt64}, []*roaring.Bitmap{roaring.New()}
		return
	}
	sample := make([]int64, 0, min(n, 100_000))
	step := max(n/100_000, 1)
	it := c.has.Iterator()
	for i := uint64(0); it.HasNext(); i++ {
		o := it.Next()
		if i%step == 0 {
			sample = append(sample, c.val(o))
		}
	}
	slices.Sort(sample)
	c.rebase(sample[len(sample)/2])
	bounds := []int64{math.MinInt64}
	for i := 1; i < numBins; i++ {
		b := sample[len(sample)*i/numBins]
		if b > bounds[len(bounds)-1] {
			bounds = append(bounds, b)
		}
	}
	c.bounds = bounds
	c.bins = make([]*roaring.Bitmap, len(bounds))
	buf := make([][]uint32, len(bounds))
	it = c.has.Iterator()
	for it.HasNext() {
		o := it.Next()
		bi := c.binOf(c.val(o))
		buf[bi] = append(buf[bi], o)
	}
	for i := range c.bins {
		c.bins[i] = roaring.BitmapOf(buf[i]...)
		c.bins[i].RunOptimize()
	}
}

// rebase re-encodes the values as offsets from base; a base in the middle of
// the values keeps the offsets, and so the bytes per value, smallest.
func (c *numColumn) rebase(base int64) {
	if base == c.base {
		return
	}
	var widest uint64
	it := c.has.Iterator()
	for it.HasNext() {
		widest = max(widest, zigzag(c.val(it.Next())-base))
	}
	w := max(1, (bits.Len64(widest)+7)/8)
	nv := packedInts{width: w, mask: maskOf(w)}
	nv.grow(c.vals.len())
	it = c.has.Iterator()
	for it.HasNext() {
		o := it.Next()
		nv.set(int(o), zigzag(c.val(o)-base))
	}
	c.vals, c.base = nv, base
}

// rangeOf returns the ordinals whose value v satisfies lo ≤ v ≤ hi.
func (c *numColumn) rangeOf(lo, hi int64) *roaring.Bitmap {
	if lo > hi || c.has.IsEmpty() {
		return roaring.New()
	}
	bl, bh := c.binOf(lo), c.binOf(hi)
	var full []*roaring.Bitmap
	for i := bl + 1; i < bh; i++ {
		full = append(full, c.bins[i])
	}
	out := roaring.FastOr(full...)
	edge := func(b *roaring.Bitmap) {
		it := b.Iterator()
		for it.HasNext() {
			o := it.Next()
			if v := c.val(o); v >= lo && v <= hi {
				out.Add(o)
			}
		}
	}
	// An edge bin wholly inside the range joins without checking.
	if bl == bh {
		edge(c.bins[bl])
		return out
	}
	if c.bounds[bl] >= lo {
		out.Or(c.bins[bl])
	} else {
		edge(c.bins[bl])
	}
	if bh+1 < len(c.bounds) && c.bounds[bh+1]-1 <= hi {
		out.Or(c.bins[bh])
	} else {
		edge(c.bins[bh])
	}
	return out
}

func (c *numColumn) shiftFrom(o uint32, shift func(*roaring.Bitmap) *roaring.Bitmap) {
	if int(o) < c.vals.len() {
		c.vals.insert(int(o))
	}
	c.has = shift(c.has)
	for i, b := range c.bins {
		c.bins[i] = shift(b)
	}
}

func (c *numColumn) memoryBytes() uint64 {
	n := c.vals.bytes() + c.has.GetSizeInBytes()
	for _, b := range c.bins {
		n += b.GetSizeInBytes()
	}
	return n
}
