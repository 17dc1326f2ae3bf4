package audience

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-dev/siyu/internal/customer"
)

// collectTraits reads a document with eachTrait, keeping every member.
func collectTraits(b []byte) (map[string]any, bool) {
	var keys []string
	out := map[string]any{}
	ok := eachTrait(b, func(k []byte) int { keys = append(keys, string(k)); return len(keys) - 1 },
		func(i int, v traitVal) { out[keys[i]] = v.any() })
	return out, ok
}

// eachTrait reads exactly what encoding/json reads, or declines.
func FuzzEachTrait(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"city":"上海","vip":2.5,"ok":true,"no":false,"x":null}`,
		`{"a":"q\"uote","b":"\u4e0a\\n"}`, `{"a":1,"a":2}`, `{"n":-0,"m":1e3,"k":-12.5E-2}`,
		`{"a":[1,2]}`, `{"a":{"b":1}}`, `{"a":1,}`, `{"a":01}`, `{"a":1} x`, `{"a":"\x01"}`, `{"\u0061":1}`,
		`{"a":1e400}`, "{\"a\":\"\xff\"}", `{"a":tru}`, `{"a":"x"`, `[1]`, `null`, `{"a" 1}`, `{"a":.5}`, `{"a":5.}`,
		`{"a":123456789012345678901234567890}`, `{"a":-}`, `{"a":9007199254740993}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := collectTraits(b)
		if !ok {
			return
		}
		var want map[string]any
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%q: read %v, encoding/json refuses it: %v", b, got, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: read %v, encoding/json %v", b, got, want)
		}
	})
}

// randomTraits returns a traits document and what it holds, in the forms
// stored documents take (flat mostly, sometimes nested or escaped).
func randomTraits(r *rand.Rand) []byte {
	m := map[string]any{}
	if r.IntN(5) > 0 {
		m["city"] = []string{"上海", "杭州", "北\"京", "成都\n", ""}[r.IntN(5)]
	}
	if r.IntN(3) > 0 {
		m["tea_pref"] = []any{"乌龙", "抹茶", true, 3.5, nil, []any{"x"}}[r.IntN(6)]
	}
	if r.IntN(2) == 0 {
		m["vip_level"] = []any{float64(r.IntN(9) - 3), r.Float64() * 1000, "7", nil, 1e15 + 0.5}[r.IntN(5)]
	}
	if r.IntN(2) == 0 {
		m["member_since"] = []any{"2024-03-05", "2024-03-05T08:00:00Z", "not a date", 20240305}[r.IntN(4)]
	}
	if r.IntN(4) == 0 {
		m["address"] = map[string]any{"street": "南京路"}
	}
	if r.IntN(3) == 0 {
		m["other"] = r.IntN(100)
	}
	if r.IntN(3) == 0 {
		m["birthday"] = "1988-07-0" + fmt.Sprint(1+r.IntN(9))
	}
	if r.IntN(3) == 0 {
		m["first_seen_at"] = r.IntN(1000)
	}
	b, _ := json.Marshal(m)
	switch r.IntN(10) {
	case 0:
		return []byte("{}")
	case 1:
		return bytes.ReplaceAll(b, []byte(`,`), []byte(" ,\n "))
	}
	return b
}

func TestEachTraitAgreesWithEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	declined := 0
	for range 5000 {
		b := randomTraits(r)
		got, ok := collectTraits(b)
		if !ok {
			declined++
			continue
		}
		var want map[string]any
		if err := json.Unmarshal(b, &want); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: read %v, encoding/json %v (%v)", b, got, want, err)
		}
	}
	if declined > 2500 {
		t.Fatalf("declined %d of 5000 ordinary documents", declined)
	}
}

// sameIndex reports how two indexes differ in the structures a build fills.
func sameIndex(t *testing.T, what string, got, want *Index) {
	t.Helper()
	if !slices.Equal(got.ids, want.ids) {
		t.Fatalf("%s: ids %v, want %v", what, got.ids, want.ids)
	}
	if !got.live.Equals(want.live) {
		t.Fatalf("%s: live %v, want %v", what, got.live, want.live)
	}
	nonEmpty := func(m map[string]map[string]*roaring.Bitmap) map[string]map[string][]uint32 {
		out := map[string]map[string][]uint32{}
		for a, vals := range m {
			for v, b := range vals {
				if !b.IsEmpty() {
					if out[a] == nil {
						out[a] = map[string][]uint32{}
					}
					out[a][v] = b.ToArray()
				}
			}
		}
		return out
	}
	g, w := nonEmpty(got.cats), nonEmpty(want.cats)
	for a := range w {
		for v := range w[a] {
			if !slices.Equal(g[a][v], w[a][v]) {
				t.Fatalf("%s: %s = %q: %v, want %v", what, a, v, g[a][v], w[a][v])
			}
		}
	}
	for a := range g {
		for v := range g[a] {
			if w[a][v] == nil {
				t.Fatalf("%s: %s = %q: %v, want none", what, a, v, g[a][v])
			}
		}
	}
	for _, attr := range slices.Sorted(maps.Keys(want.catOf)) {
		for o := range want.ids {
			if g, w := got.catOf[attr].get(uint32(o)), want.catOf[attr].get(uint32(o)); g != w {
				t.Fatalf("%s: %s of ordinal %d is %q, want %q", what, attr, o, g, w)
			}
		}
	}
	values := func(x *Index) map[string]map[uint32]int64 {
		out := map[string]map[uint32]int64{}
		for a, c := range x.nums {
			it := c.has.Iterator()
			for it.HasNext() {
				o := it.Next()
				if out[a] == nil {
					out[a] = map[uint32]int64{}
				}
				out[a][o] = c.val(o)
			}
		}
		return out
	}
	gv, wv := values(got), values(want)
	for a := range wv {
		for o, v := range wv[a] {
			if gv[a][o] != v {
				t.Fatalf("%s: %s of ordinal %d: %d, want %d", what, a, o, gv[a][o], v)
			}
		}
	}
	if !reflect.DeepEqual(gv, wv) {
		t.Fatalf("%s: numbers set that should not be", what)
	}
}

// A build applies profile rows exactly as a refresh applies them, whatever
// the traits documents hold and in whatever order rows come.
func TestBulkProfilesMatchRefresh(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	// city, birthday and first_seen_at are also columns: the trait wins, as
	// in profileOf.
	kinds := map[string]string{"city": AttrCategorical, "tea_pref": AttrCategorical, "vip_level": AttrNumeric, "member_since": AttrDate,
		"never": AttrNumeric, "birthday": AttrDate, "first_seen_at": AttrNumeric}
	var rows []customer.IndexRow
	for i := range 3000 {
		rows = append(rows, customer.IndexRow{
			ID: int64(10 + i*2 + r.IntN(2)), Live: r.IntN(10) > 0,
			Gender: []string{"", "male", "female"}[r.IntN(3)], Province: "浙江", City: []string{"", "杭州", "宁波"}[r.IntN(3)],
			Source: "miniapp", SourceCode: []string{"", "store-1"}[r.IntN(2)], Birthday: []string{"", "1990-02-03", "bad"}[r.IntN(3)],
			FirstSeen: time.UnixMilli(r.Int64N(1 << 41)), LastSeen: time.UnixMilli(r.Int64N(1 << 41)),
			RawTraits: randomTraits(r),
		})
	}
	// A few rows out of order: a row committed late on PostgreSQL.
	rows = append(rows, customer.IndexRow{ID: 11, Live: true, City: "温州", RawTraits: []byte(`{"vip_level":4}`)})
	rows = append(rows, customer.IndexRow{ID: 3, Live: true, Gender: "male", RawTraits: []byte(`{"city":"x","tea_pref":"抹茶"}`)})

	bulk := NewIndex()
	l := newProfileLoad(bulk, kinds)
	for _, row := range rows {
		if err := l.row(row); err != nil {
			t.Fatal(err)
		}
	}
	ref := NewIndex()
	for _, row := range rows {
		if err := json.Unmarshal(row.RawTraits, &row.Traits); err != nil {
			t.Fatal(err)
		}
		ref.setProfile(profileOf(row, kinds))
	}
	sameIndex(t, "bulk", bulk, ref)

	// A damaged document fails the build, as it always has.
	err := newProfileLoad(NewIndex(), kinds).row(customer.IndexRow{ID: 1, RawTraits: []byte(`{"city":`)})
	if err == nil || !strings.Contains(err.Error(), "damaged traits") {
		t.Fatalf("damaged traits: %v", err)
	}
}

func TestDayCalcMatchesEnvDay(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, zone := range []string{"UTC", "Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Sao_Paulo"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		c := dayCalc{loc: loc}
		env := Env{Loc: loc}
		at := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
		for range 20000 {
			// Mostly forward in small steps, as events come, sometimes a jump.
			if r.IntN(50) == 0 {
				at = time.UnixMilli(r.Int64N(4e12) - 1e12)
			} else {
				at = at.Add(time.Duration(r.Int64N(int64(36 * time.Hour))))
			}
			if g, w := c.day(at), env.day(at); g != w {
				t.Fatalf("%s %v: day %d, want %d", zone, at, g, w)
			}
		}
	}
}

func TestIDMap(t *testing.T) {
	for _, ids := range [][]int64{{}, {5}, {1, 2, 3, 7, 9}, {1, 1 << 40, 1<<40 + 5}} {
		m := newIDMap(ids)
		for o, id := range ids {
			if got, ok := m.get(id); !ok || got != uint32(o) {
				t.Fatalf("%v: %d → %d %v, want %d", ids, id, got, ok, o)
			}
		}
		for _, id := range []int64{-1, 0, 4, 8, 1 << 39, 1<<40 + 1, 1 << 50} {
			if slices.Contains(ids, id) {
				continue
			}
			if _, ok := m.get(id); ok {
				t.Fatalf("%v: found %d", ids, id)
			}
		}
	}
}

func randomTagsEvents(r *rand.Rand, x *Index, ids []int64) {
	for _, id := range ids {
		x.ordinal(id)
	}
	for o := range ids {
		for tg := range int64(6) {
			if r.IntN(3) == 0 {
				x.SetTags(ids[o], []int64{tg * 7}, nil)
			}
		}
		for range r.IntN(5) {
			x.AddEvent(ids[o], []string{"view", "order", "分享"}[r.IntN(3)], int32(20000+r.IntN(30)))
		}
	}
}

// members lists each tag's and event day's customers by id.
func members(x *Index) map[string][]int64 {
	out := map[string][]int64{}
	for tg, b := range x.tags {
		if !b.IsEmpty() {
			out[fmt.Sprint("tag ", tg)] = x.IDs(b, 1<<30)
		}
	}
	for name, days := range x.events {
		for d, b := range days {
			if !b.IsEmpty() {
				out[fmt.Sprint(name, d)] = x.IDs(b, 1<<30)
			}
		}
	}
	return out
}

func TestCheckpointRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var ids []int64
	for i := range 5000 {
		ids = append(ids, int64(100+i*3))
	}
	x := NewIndex()
	randomTagsEvents(r, x, ids)
	x.Optimize()
	data := x.encodeCheckpoint()
	c, err := decodeCheckpoint(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.ids, x.ids) {
		t.Fatal("ids differ")
	}

	// The same customers and more after them: the bitmaps are used as they are.
	y := NewIndex()
	y.ids = append(slices.Clone(ids), 20000, 20001)
	c.apply(y, newIDMap(y.ids), 20010)
	got := members(y)
	want := members(x)
	for k := range want {
		if strings.HasPrefix(k, "view2000") || strings.HasPrefix(k, "order2000") || strings.HasPrefix(k, "分享2000") {
			delete(want, k) // before the oldest day kept
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("applied to the same customers, the members differ")
	}

	// Customers that were not known then sit among them now: ordinals move.
	c, _ = decodeCheckpoint(bytes.NewReader(data), int64(len(data)))
	z := NewIndex()
	for _, id := range ids {
		z.ids = append(z.ids, id, id+1)
	}
	c.apply(z, newIDMap(z.ids), 0)
	if got, want := members(z), members(x); !reflect.DeepEqual(got, want) {
		t.Fatal("applied among new customers, the members differ")
	}

	// Damage is refused, never half-read.
	for _, bad := range [][]byte{data[:len(data)-1], append(slices.Clone(data[:40]), data[41:]...), nil} {
		if _, err := decodeCheckpoint(bytes.NewReader(bad), int64(len(bad))); err == nil {
			t.Fatal("damaged checkpoint accepted")
		}
	}
	for i := range 200 {
		bad := slices.Clone(data)
		bad[r.IntN(len(bad))] ^= byte(1 + i%255)
		if _, err := decodeCheckpoint(bytes.NewReader(bad), int64(len(bad))); err == nil {
			t.Fatal("damaged checkpoint accepted")
		}
	}
}

// BenchmarkProfileLoad is the CPU a build spends per profile row, without the
// database: the bench's 20 custom attributes.
func BenchmarkProfileLoad(b *testing.B) {
	kinds := map[string]string{}
	for a := range benchCatAttrs {
		kinds[fmt.Sprintf("c%d", a)] = AttrCategorical
	}
	for a := range benchNumAttrs {
		kinds[fmt.Sprintf("n%d", a)] = AttrNumeric
	}
	rows := make([]customer.IndexRow, 10_000)
	for i := range rows {
		c := benchGen(1, i)
		var traits []string
		for a, v := range c.cats {
			traits = append(traits, fmt.Sprintf(`"c%d":"%s"`, a, v))
		}
		for a, v := range c.nums {
			traits = append(traits, fmt.Sprintf(`"n%d":%d`, a, v))
		}
		rows[i] = customer.IndexRow{Live: true, Gender: "male", Province: "浙江", City: "杭州", Source: "miniapp",
			FirstSeen: time.UnixMilli(1e12), LastSeen: time.UnixMilli(1e12), RawTraits: []byte("{" + strings.Join(traits, ",") + "}")}
	}
	b.ResetTimer()
	id := int64(0)
	for b.Loop() {
		x := NewIndex()
		l := newProfileLoad(x, kinds)
		for _, r := range rows {
			id++
			r.ID = id
			if err := l.row(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}
