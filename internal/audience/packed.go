package audience

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// packedInts is a growable array of unsigned integers, each stored in the
// fewest whole bytes (1–8) that hold the largest value set so far. Columns
// keep one value per customer ordinal, so at tens of millions of customers the
// width is most of the index's memory: a city code fits in one byte, an order
// count in one or two, an amount in fen in three or four, where a plain
// []int64 would spend eight on each.
//
// Values are little-endian at i*width; the buffer keeps 8 spare bytes so that
// get can load a whole uint64 and mask it.
type packedInts struct {
	buf   []byte
	width int    // bytes per value, 1–8
	mask  uint64 // the low width bytes
	n     int
}

func (p *packedInts) len() int { return p.n }

func maskOf(width int) uint64 {
	if width >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*width) - 1
}

// get returns element i; elements never set read as 0.
func (p *packedInts) get(i int) uint64 {
	if i >= p.n {
		return 0
	}
	return binary.LittleEndian.Uint64(p.buf[i*p.width:]) & p.mask
}

// set stores v at i, growing the array to hold i and widening it to hold v.
func (p *packedInts) set(i int, v uint64) {
	if p.width == 0 {
		p.width, p.mask = 1, maskOf(1)
	}
	if w := (bits.Len64(v) + 7) / 8; w > p.width {
		p.widen(w)
	}
	if i >= p.n {
		p.grow(i + 1)
	}
	off := i * p.width
	for k := range p.width {
		p.buf[off+k] = byte(v >> (8 * k))
	}
}

// grow extends the array to n elements, the new ones 0.
func (p *packedInts) grow(n int) {
	need := n*p.width + 8
	if need > cap(p.buf) {
		// Grow by a quarter at a time: the array is built one customer at
		// a time, and doubling would waste up to half of a large column.
		nb := make([]byte, need, max(need, cap(p.buf)+cap(p.buf)/4))
		copy(nb, p.buf)
		p.buf = nb
	}
	p.buf = p.buf[:need]
	p.n = n
}

// widen re-encodes every element in w bytes.
func (p *packedInts) widen(w int) {
	old := *p
	p.width, p.mask = w, maskOf(w)
	p.buf = make([]byte, old.n*w+8, old.n*w+8+old.n*w/8)
	for i := range old.n {
		v := old.get(i)
		off := i * w
		for k := range w {
			p.buf[off+k] = byte(v >> (8 * k))
		}
	}
}

// insert inserts a 0 at i (i ≤ len), shifting later elements up.
func (p *packedInts) insert(i int) {
	if i > p.n {
		return
	}
	if p.width == 0 {
		p.width, p.mask = 1, maskOf(1)
	}
	p.buf = slices.Insert(p.buf, i*p.width, make([]byte, p.width)...)
	p.n++
}

// bytes is the memory the array holds.
func (p *packedInts) bytes() uint64 { return uint64(cap(p.buf)) }

// zigzag maps signed offsets to unsigned ones so that small magnitudes of
// either sign stay small: 0, -1, 1, -2, 2 → 0, 1, 2, 3, 4.
func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }
