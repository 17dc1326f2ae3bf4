package acquire

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"
	"time"
)

func ptr(n int) *int { return &n }

// run picks n times, counting each pick as an add of today.
func run(c CodeConfig, at time.Time, n int) []string {
	today, rot := map[string]int{}, map[string]int{}
	var out []string
	for range n {
		var who string
		who, rot = pick(c, at, today, rot)
		out = append(out, who)
		today[who]++
	}
	return out
}

func count(seq []string) map[string]int {
	m := map[string]int{}
	for _, s := range seq {
		m[s]++
	}
	return m
}

var monday10 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) // a Monday

func TestPickWeighted(t *testing.T) {
	c := CodeConfig{Mode: ModeWeighted, Staff: []StaffRule{{UserID: "a", Weight: ptr(3)}, {UserID: "b", Weight: ptr(1)}}}
	seq := run(c, monday10, 8)
	if got := count(seq); got["a"] != 6 || got["b"] != 2 {
		t.Fatalf("3:1 weights over 8 adds gave %v (%v)", got, seq)
	}
	// Smooth: b never waits more than 3 adds.
	if seq[0] != "a" || seq[1] != "a" || seq[2] != "b" && seq[3] != "b" {
		t.Fatalf("not smooth: %v", seq)
	}
}

func TestPickRoundRobin(t *testing.T) {
	c := CodeConfig{Mode: ModeRoundRobin, Staff: []StaffRule{{UserID: "a", Weight: ptr(5)}, {UserID: "b"}, {UserID: "c"}}}
	seq := run(c, monday10, 6)
	want := []string{"a", "b", "c", "a", "b", "c"}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("round robin ignores weights and takes turns: got %v, want %v", seq, want)
		}
	}
}

func TestPickCapsAndBackup(t *testing.T) {
	c := CodeConfig{Mode: ModeWeighted, Staff: []StaffRule{
		{UserID: "a", DailyCap: ptr(2)}, {UserID: "b", DailyCap: ptr(1)}, {UserID: "z", Backup: true, DailyCap: ptr(1)}}}
	seq := run(c, monday10, 6)
	got := count(seq)
	// a and b reach their caps (3 adds), then the backup (1), then —
	// everyone capped — the backup keeps the code.
	if got["a"] != 2 || got["b"] != 1 || got["z"] != 3 {
		t.Fatalf("caps and backup: %v (%v)", got, seq)
	}
	if seq[3] != "z" {
		t.Fatalf("the backup takes over only once the regular staff are capped: %v", seq)
	}
}

func TestPickSchedule(t *testing.T) {
	c := CodeConfig{Mode: ModeWeighted, Staff: []StaffRule{
		{UserID: "day", Schedule: []ShiftWindow{{Days: []int{1, 2, 3, 4, 5}, Start: "09:00", End: "18:00"}}},
		{UserID: "weekend", Schedule: []ShiftWindow{{Days: []int{6, 7}, Start: "00:00", End: "24:00"}}},
		{UserID: "night", Backup: true},
	}}
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{monday10, "day"},
		{time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC), "night"}, // end is exclusive: backup
		{time.Date(2026, 11, 28, 23, 59, 0, 0, time.UTC), "weekend"},
		{time.Date(2026, 11, 24, 8, 59, 0, 0, time.UTC), "night"},
	} {
		if got := run(c, tc.at, 1)[0]; got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.at.Format(time.RFC1123), got, tc.want)
		}
	}
	if !stillEligible(c, monday10, nil, "day") || stillEligible(c, monday10, nil, "night") {
		t.Error("the backup is not eligible while a regular member is on duty")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   CodeInput
		code string
	}{
		{"state too long", CodeInput{Name: "x", Source: "ad", State: "abcdefghijklmnopqrstuvwxyz12345"}, "state_too_long"},
		{"state 30 CJK is fine but 31 is not", CodeInput{Name: "x", Source: "ad", State: "一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一"}, "state_too_long"},
		{"bad source", CodeInput{Name: "x", Source: "tv", State: "s"}, "invalid_source"},
		{"no staff", CodeInput{Name: "x", Source: "ad", State: "s"}, "staff_required"},
		{"only backups", CodeInput{Name: "x", Source: "ad", State: "s", Config: CodeConfig{Staff: []StaffRule{{UserID: "a", Backup: true}}}}, "staff_required"},
		{"weight 0", CodeInput{Name: "x", Source: "ad", State: "s", Config: CodeConfig{Staff: []StaffRule{{UserID: "a", Weight: ptr(0)}}}}, "invalid_weight"},
		{"cap 0", CodeInput{Name: "x", Source: "ad", State: "s", Config: CodeConfig{Staff: []StaffRule{{UserID: "a", DailyCap: ptr(0)}}}}, "invalid_cap"},
		{"cap negative", CodeInput{Name: "x", Source: "ad", State: "s", Config: CodeConfig{Staff: []StaffRule{{UserID: "a", DailyCap: ptr(-3)}}}}, "invalid_cap"},
		{"duplicate staff", CodeInput{Name: "x", Source: "ad", State: "s", Config: CodeConfig{Staff: []StaffRule{{UserID: "a"}, {UserID: "a"}}}}, "duplicate_staff"},
		{"bad window", CodeInput{Name: "x", Source: "ad", State: "s", Config: CodeConfig{Staff: []StaffRule{{UserID: "a", Schedule: []ShiftWindow{{Days: []int{1}, Start: "18:00", End: "09:00"}}}}}}, "invalid_schedule"},
		{"bad weekday", CodeInput{Name: "x", Source: "ad", State: "s", Config: CodeConfig{Staff: []StaffRule{{UserID: "a", Schedule: []ShiftWindow{{Days: []int{0}, Start: "08:00", End: "09:00"}}}}}}, "invalid_schedule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.normalize()
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.code)) {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	ok := CodeInput{Name: " 门店 ", Source: "store", State: "一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十", Config: CodeConfig{Staff: []StaffRule{{UserID: "a"}}}}
	if err := ok.normalize(); err != nil || ok.Name != "门店" || ok.Config.Mode != ModeWeighted {
		t.Fatalf("a 30-character state is fine: %v %+v", err, ok)
	}
}

func TestQRGridRoundTrip(t *testing.T) {
	// A 25-module pattern at 4 px per module, like WeCom's (and the
	// simulator's) images, with a white margin.
	const n, m, margin = 25, 4, 12
	src := image.NewGray(image.Rect(0, 0, n*m+2*margin, n*m+2*margin))
	for i := range src.Pix {
		src.Pix[i] = 255
	}
	want := make([][]bool, n)
	for j := range n {
		want[j] = make([]bool, n)
		for i := range n {
			want[j][i] = (i*7+j*13+i*j)%3 == 0 || i == 0 || j == 0 || i == n-1 || j == n-1
			if want[j][i] {
				for y := range m {
					for x := range m {
						src.SetGray(margin+i*m+x, margin+j*m+y, color.Gray{})
					}
				}
			}
		}
	}
	grid := readGrid(src)
	if grid == nil {
		t.Fatal("the module grid was not read")
	}
	for _, px := range []int{945, 1772} {
		out := drawGrid(grid, px)
		if out.Bounds().Dx() != px || out.Bounds().Dy() != px {
			t.Fatalf("size %v, want %d", out.Bounds(), px)
		}
		var b bytes.Buffer
		if err := png.Encode(&b, out); err != nil {
			t.Fatal(err)
		}
		back, err := png.Decode(&b)
		if err != nil {
			t.Fatal(err)
		}
		again := readGrid(back)
		if len(again) != n {
			t.Fatalf("%d px: read back %d modules, want %d", px, len(again), n)
		}
		for j := range n {
			for i := range n {
				if again[j][i] != want[j][i] {
					t.Fatalf("%d px: module (%d,%d) differs", px, i, j)
				}
			}
		}
		// Crisp: only black and white, whole pixels per module.
		k := px / (n + 8)
		off := (px - k*n) / 2
		if out.ColorIndexAt(off, off) != 1 || out.ColorIndexAt(off-1, off) != 0 || out.ColorIndexAt(off+k*n, off) != 0 {
			t.Fatalf("%d px: modules are not on whole pixels", px)
		}
	}
}
