package audience

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestPackedIntsMatchesSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var p packedInts
	var ref []uint64
	for step := range 20000 {
		switch op := r.IntN(10); {
		case op == 0 && len(ref) > 0:
			i := r.IntN(len(ref) + 1)
			p.insert(i)
			ref = append(ref[:i], append([]uint64{0}, ref[i:]...)...)
		default:
			i := r.IntN(len(ref) + 50)
			// Mostly small values, now and then a wide one.
			v := uint64(r.IntN(300))
			if step%500 == 0 {
				v = r.Uint64() >> r.IntN(64)
			}
			p.set(i, v)
			for len(ref) <= i {
				ref = append(ref, 0)
			}
			ref[i] = v
		}
	}
	if p.len() != len(ref) {
		t.Fatalf("len %d, want %d", p.len(), len(ref))
	}
	for i, v := range ref {
		if got := p.get(i); got != v {
			t.Fatalf("element %d = %d, want %d", i, got, v)
		}
	}
	if p.get(len(ref)+10) != 0 {
		t.Fatal("an element past the end reads as non-zero")
	}
}

func TestPackedIntsWidth(t *testing.T) {
	var p packedInts
	for i := range 1000 {
		p.set(i, uint64(i%200))
	}
	if p.width != 1 {
		t.Fatalf("values below 256 take %d bytes, want 1", p.width)
	}
	p.set(3, 70000)
	if p.width != 3 || p.get(3) != 70000 || p.get(999) != 999%200 {
		t.Fatalf("after widening: width %d, get(3) %d, get(999) %d", p.width, p.get(3), p.get(999))
	}
}

func TestZigzag(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 2, -2, 1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64} {
		if got := unzigzag(zigzag(v)); got != v {
			t.Errorf("unzigzag(zigzag(%d)) = %d", v, got)
		}
	}
	if zigzag(-1) != 1 || zigzag(1) != 2 {
		t.Error("zigzag does not interleave signs")
	}
}
