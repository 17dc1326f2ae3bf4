package analytics

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
)

const unreached = math.MaxInt64

func TestCutsAreQuintilesWithoutTies(t *testing.T) {
	t.Parallel()
	vals := make([]int64, 100)
	for i := range vals {
		vals[i] = int64(i + 1)
	}
	c, mean := cutsOf(vals)
	if want := (Cuts{21, 41, 61, 81}); c != want {
		t.Fatalf("cuts %v, want %v", c, want)
	}
	if mean != 3 {
		t.Fatalf("mean %v, want 3", mean)
	}
	for v, want := range map[int64]int{-5: 1, 1: 1, 20: 1, 21: 2, 40: 2, 41: 3, 80: 4, 81: 5, 100: 5, 1000: 5} {
		if got := c.Score(v); got != want {
			t.Errorf("score(%d) = %d, want %d", v, got, want)
		}
	}
	// Every score holds a fifth of the values.
	var per [6]int
	for _, v := range vals {
		per[c.Score(v)]++
	}
	if per != [6]int{0, 20, 20, 20, 20, 20} {
		t.Fatalf("per score %v", per)
	}
}

func TestCutsWithTies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		vals  []int64 // value × count pairs
		cuts  Cuts
		mean  float64
		score map[int64]int
	}{
		// A tea brand's F: most customers bought once. Equal values share a
		// score by their mid-rank: 1 order sits at the 30th percentile.
		{"mostly one order", []int64{1, 60, 2, 20, 3, 20}, Cuts{1, 2, 2, 3}, 3, map[int64]int{0: 1, 1: 2, 2: 4, 3: 5, 9: 5}},
		{"all equal", []int64{7, 10}, Cuts{7, 7, unreached, unreached}, 3, map[int64]int{6: 1, 7: 3, 8: 3}},
		{"one buyer", []int64{5, 1}, Cuts{5, 5, unreached, unreached}, 3, map[int64]int{5: 3}},
		{"two values", []int64{1, 50, 9, 50}, Cuts{1, 9, 9, unreached}, 3, map[int64]int{1: 2, 9: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var vals []int64
			for i := 0; i < len(tc.vals); i += 2 {
				for range tc.vals[i+1] {
					vals = append(vals, tc.vals[i])
				}
			}
			c, mean := cutsOf(vals)
			if c != tc.cuts || mean != tc.mean {
				t.Fatalf("cuts %v mean %v, want %v %v", c, mean, tc.cuts, tc.mean)
			}
			for v, want := range tc.score {
				if got := c.Score(v); got != want {
					t.Errorf("score(%d) = %d, want %d", v, got, want)
				}
			}
		})
	}
	if c, mean := cutsOf(nil); c != (Cuts{unreached, unreached, unreached, unreached}) || mean != 0 {
		t.Fatalf("empty: %v %v", c, mean)
	}
}

func TestReservoirExactThenSampled(t *testing.T) {
	t.Parallel()
	// Up to its size the reservoir holds every value: exact quintiles.
	r := newReservoir(1000, 1)
	for i := range 1000 {
		r.add([3]int64{0, int64(i), 0})
	}
	if sc := r.scale(time.Time{}); sc.Sample != 1000 || sc.Buyers != 1000 || sc.Cuts[mF] != (Cuts{200, 400, 600, 800}) {
		t.Fatalf("exact scale %+v", sc)
	}
	// Beyond it, a uniform sample: boundaries within a percentile point of
	// the true ones, and the same for the same seed and order.
	measure := func() Scale {
		r := newReservoir(20000, 42)
		rng := rand.New(rand.NewPCG(7, 7))
		for _, v := range rng.Perm(500_000) {
			r.add([3]int64{0, int64(v), 0})
		}
		return r.scale(time.Time{})
	}
	a, b := measure(), measure()
	if a != b {
		t.Fatal("the same data measured twice gave different scales")
	}
	if a.Buyers != 500_000 || a.Sample != 20000 {
		t.Fatalf("counts %+v", a)
	}
	for k, want := range []int64{100_000, 200_000, 300_000, 400_000} {
		if got := a.Cuts[mF][k]; math.Abs(float64(got-want)) > 5000 {
			t.Errorf("cut %d = %d, want about %d", k, got, want)
		}
	}
}

func TestRFMClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		r, f, m bool
		want    string
	}{
		{true, true, true, ImportantValue},
		{true, false, true, ImportantDevelopment},
		{false, true, true, ImportantMaintain},
		{false, false, true, ImportantWinBack},
		{true, true, false, GeneralValue},
		{true, false, false, GeneralDevelopment},
		{false, true, false, GeneralMaintain},
		{false, false, false, GeneralWinBack},
	} {
		if got := rfmClass(tc.r, tc.f, tc.m); got != tc.want {
			t.Errorf("R%v F%v M%v: %s, want %s", tc.r, tc.f, tc.m, got, tc.want)
		}
	}
	if len(RFMClasses()) != 8 || len(LifecycleStages()) != 5 || len(FanTiers()) != 3 {
		t.Fatal("label lists")
	}
}

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// testNow is noon on 2024-07-01 in Shanghai.
var testNow = time.Date(2024, 7, 1, 12, 0, 0, 0, shanghai)

func daysAgo(n int) time.Time { return testNow.AddDate(0, 0, -n) }

// testScale: R scores by days since the last order (5: ≤ 7 days, 4: ≤ 30,
// 3: ≤ 90, 2: ≤ 180), F by orders (2, 3, 4, 6 for scores 2–5), M by fen.
func testScale() Scale {
	return Scale{AsOf: testNow, Buyers: 100, Sample: 100,
		Cuts: [3]Cuts{{-180, -90, -30, -7}, {2, 3, 4, 6}, {1000, 5000, 10000, 50000}},
		Mean: [3]float64{3, 2.5, 3}}
}

func TestClassifyRFM(t *testing.T) {
	t.Parallel()
	set := Defaults()
	r := newRules(set, testScale(), testNow, shanghai)
	for _, tc := range []struct {
		name      string
		in        Input
		r, f, m   int
		class     string
		threshold string // class with class_by threshold (3)
	}{
		{"no orders", Input{LastSeenAt: testNow}, 0, 0, 0, "", ""},
		{"best", Input{Orders: 8, NetFen: 90000, LastOrderAt: daysAgo(1)}, 5, 5, 5, ImportantValue, ImportantValue},
		{"recent big first order", Input{Orders: 1, NetFen: 20000, LastOrderAt: daysAgo(7)}, 5, 1, 4, ImportantDevelopment, ImportantDevelopment},
		{"loyal but away", Input{Orders: 6, NetFen: 60000, LastOrderAt: daysAgo(200)}, 1, 5, 5, ImportantMaintain, ImportantMaintain},
		{"big spender gone", Input{Orders: 1, NetFen: 50000, LastOrderAt: daysAgo(181)}, 1, 1, 5, ImportantWinBack, ImportantWinBack},
		{"frequent small", Input{Orders: 4, NetFen: 3000, LastOrderAt: daysAgo(8)}, 4, 4, 2, GeneralValue, GeneralValue},
		{"new small", Input{Orders: 1, NetFen: 900, LastOrderAt: daysAgo(0)}, 5, 1, 1, GeneralDevelopment, GeneralDevelopment},
		{"frequent small away", Input{Orders: 3, NetFen: 4000, LastOrderAt: daysAgo(120)}, 2, 3, 2, GeneralMaintain, GeneralWinBack},
		{"one small long ago", Input{Orders: 1, NetFen: 100, LastOrderAt: daysAgo(400)}, 1, 1, 1, GeneralWinBack, GeneralWinBack},
	} {
		in := tc.in
		if in.LastSeenAt.IsZero() {
			in.LastSeenAt = in.LastOrderAt
		}
		got := r.classify(in)
		if got.R != tc.r || got.F != tc.f || got.M != tc.m || got.RFMClass != tc.class {
			t.Errorf("%s: %d%d%d %s, want %d%d%d %s", tc.name, got.R, got.F, got.M, got.RFMClass, tc.r, tc.f, tc.m, tc.class)
		}
		// By threshold 3 a score of 3 is low; the mean of F here (2.5) makes
		// it high.
		th := set
		th.RFM.ClassBy = ClassByThreshold
		if got := newRules(th, testScale(), testNow, shanghai).classify(in); got.RFMClass != tc.threshold {
			t.Errorf("%s by threshold: %s, want %s", tc.name, got.RFMClass, tc.threshold)
		}
	}
}

func TestDaysFollowTheWorkspaceTimeZone(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 7, 1, 0, 30, 0, 0, shanghai)     // 2024-06-30 16:30 UTC
	order := time.Date(2024, 6, 30, 23, 30, 0, 0, shanghai) // 2024-06-30 15:30 UTC
	if d := newRules(Defaults(), testScale(), now, shanghai).daysSince(order); d != 1 {
		t.Fatalf("Shanghai: %d days, want 1", d)
	}
	if d := newRules(Defaults(), testScale(), now, time.UTC).daysSince(order); d != 0 {
		t.Fatalf("UTC: %d days, want 0", d)
	}
	if d := newRules(Defaults(), testScale(), now, shanghai).daysSince(now.Add(time.Hour * 30)); d != 0 {
		t.Fatalf("future: %d days, want 0", d)
	}
	if got := dayStart(now, shanghai, 30); !got.Equal(time.Date(2024, 6, 2, 0, 0, 0, 0, shanghai)) {
		t.Fatalf("start of the last 30 days: %v", got)
	}
}

func TestLifecycleBoundaries(t *testing.T) {
	t.Parallel()
	set := Defaults()
	r := newRules(set, testScale(), testNow, shanghai)
	// mature: 6 orders (F 5), 60000 fen (M 5).
	mature := func(lastOrder int) Input {
		return Input{Orders: 6, NetFen: 60000, FirstOrderAt: daysAgo(300), LastOrderAt: daysAgo(lastOrder), LastSeenAt: daysAgo(lastOrder), FirstSeenAt: daysAgo(400)}
	}
	with := func(in Input, f func(*Input)) Input { f(&in); return in }
	for _, tc := range []struct {
		name string
		in   Input
		want string
	}{
		{"new visitor", Input{FirstSeenAt: daysAgo(0), LastSeenAt: daysAgo(0)}, Onboarding},
		{"one order, still around", Input{Orders: 1, NetFen: 500, FirstOrderAt: daysAgo(100), LastOrderAt: daysAgo(100), LastSeenAt: daysAgo(3)}, Onboarding},
		{"idle 89 days", Input{FirstSeenAt: daysAgo(200), LastSeenAt: daysAgo(89)}, Onboarding},
		{"idle 90 days", Input{FirstSeenAt: daysAgo(200), LastSeenAt: daysAgo(90)}, Decline},
		{"order keeps a buyer active", Input{Orders: 1, NetFen: 500, LastOrderAt: daysAgo(10), FirstOrderAt: daysAgo(10), LastSeenAt: daysAgo(120)}, Onboarding},
		{"two orders", Input{Orders: 2, NetFen: 900, FirstOrderAt: daysAgo(50), LastOrderAt: daysAgo(5), LastSeenAt: daysAgo(5)}, Growth},
		{"buyer lapsed 179 days, browsing", Input{Orders: 2, NetFen: 900, LastOrderAt: daysAgo(179), LastSeenAt: daysAgo(1)}, Growth},
		{"buyer lapsed 180 days, browsing", Input{Orders: 2, NetFen: 900, LastOrderAt: daysAgo(180), LastSeenAt: daysAgo(1)}, Decline},
		{"mature, last order 60 days ago", mature(60), Maturity},
		{"mature but last order 61 days ago", mature(61), Growth},
		{"F score 3 is not mature", with(mature(5), func(in *Input) { in.Orders = 3 }), Growth},
		{"M score 3 is not mature", with(mature(5), func(in *Input) { in.NetFen = 9999 }), Growth},
		{"mature, 2 categories", with(mature(5), func(in *Input) { in.Categories = 2 }), Maturity},
		{"mature, 3 categories", with(mature(5), func(in *Input) { in.Categories = 3 }), Extension},
		{"mature, first order 364 days ago", with(mature(5), func(in *Input) { in.FirstOrderAt = daysAgo(364) }), Maturity},
		{"mature, first order 365 days ago", with(mature(5), func(in *Input) { in.FirstOrderAt = daysAgo(365) }), Extension},
	} {
		if got := r.classify(tc.in).Lifecycle; got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// Where most customers bought once, two orders score F 5: the order
	// floor keeps them growing.
	tied := testScale()
	tied.Cuts[mF] = Cuts{1, 1, 2, 2}
	rt := newRules(set, tied, testNow, shanghai)
	if got := rt.classify(with(mature(5), func(in *Input) { in.Orders = 2 })).Lifecycle; got != Growth {
		t.Errorf("two orders, F 5: %s", got)
	}
	if got := rt.classify(with(mature(5), func(in *Input) { in.Orders = 3 })).Lifecycle; got != Maturity {
		t.Errorf("three orders, F 5: %s", got)
	}
	// Rules switched off.
	set.Lifecycle.ExtensionMinCategories, set.Lifecycle.ExtensionMinTenureDays, set.Lifecycle.LapsedBuyerDays = 0, 0, 0
	r = newRules(set, testScale(), testNow, shanghai)
	if got := r.classify(with(mature(5), func(in *Input) { in.Categories, in.FirstOrderAt = 9, daysAgo(900) })).Lifecycle; got != Maturity {
		t.Errorf("extension off: %s", got)
	}
	if got := r.classify(Input{Orders: 2, NetFen: 900, LastOrderAt: daysAgo(300), LastSeenAt: daysAgo(1)}).Lifecycle; got != Growth {
		t.Errorf("lapsed buyers off: %s", got)
	}
}

func TestFanTierBoundaries(t *testing.T) {
	t.Parallel()
	set := Defaults()
	r := newRules(set, testScale(), testNow, shanghai)
	bought := func(orders int64, lastDays int) Input {
		return Input{Orders: orders, NetFen: 1000, FirstOrderAt: daysAgo(lastDays + 20), LastOrderAt: daysAgo(lastDays), LastSeenAt: daysAgo(lastDays)}
	}
	for _, tc := range []struct {
		name string
		in   Input
		want string
	}{
		{"nothing", Input{LastSeenAt: daysAgo(1)}, PasserBy},
		{"2 interactions in 90 days", Input{Events90: 2, Events30: 2, LastSeenAt: daysAgo(1)}, PasserBy},
		{"3 interactions in 90 days", Input{Events90: 3, LastSeenAt: daysAgo(1)}, Favourable},
		{"one order", bought(1, 2), Favourable},
		{"two orders", bought(2, 2), Favourable},
		{"three orders", bought(3, 2), Devoted},
		{"9 interactions in 30 days", Input{Events30: 9, Events90: 9, LastSeenAt: daysAgo(1)}, Favourable},
		{"10 interactions in 30 days", Input{Events30: 10, Events90: 10, LastSeenAt: daysAgo(1)}, Devoted},
		{"cooled off after 180 idle days", bought(5, 180), PasserBy},
		{"179 idle days", bought(5, 179), Devoted},
	} {
		if got := r.classify(tc.in).FanTier; got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// Interaction thresholds at 0 are not used; cool-off at 0 never applies.
	set.FanTier.DevotedMinEvents30, set.FanTier.FavourableMinEvents90, set.FanTier.CoolOffDays = 0, 0, 0
	r = newRules(set, testScale(), testNow, shanghai)
	if got := r.classify(Input{Events30: 50, Events90: 50, LastSeenAt: daysAgo(0)}).FanTier; got != PasserBy {
		t.Errorf("events off: %s", got)
	}
	if got := r.classify(Input{Orders: 3, NetFen: 1, LastOrderAt: daysAgo(900), LastSeenAt: daysAgo(900)}).FanTier; got != Devoted {
		t.Errorf("cool-off off: %s", got)
	}
}

func TestLastScheduled(t *testing.T) {
	t.Parallel()
	at := func(h, m int) time.Time { return time.Date(2024, 7, 1, h, m, 0, 0, shanghai) }
	if got := lastScheduled(at(3, 59), 4, shanghai); !got.Equal(time.Date(2024, 6, 30, 4, 0, 0, 0, shanghai)) {
		t.Fatalf("before the hour: %v", got)
	}
	if got := lastScheduled(at(4, 0), 4, shanghai); !got.Equal(at(4, 0)) {
		t.Fatalf("at the hour: %v", got)
	}
	if got := lastScheduled(at(23, 0), 0, shanghai); !got.Equal(at(0, 0)) {
		t.Fatalf("midnight: %v", got)
	}
}

func TestSettingsValidation(t *testing.T) {
	t.Parallel()
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		change func(*ScoreSettings)
		loc    string
	}{
		{func(s *ScoreSettings) { s.RecomputeHour = 24 }, "recompute_hour"},
		{func(s *ScoreSettings) { s.RFM.ClassBy = "median" }, "rfm.class_by"},
		{func(s *ScoreSettings) { s.RFM.Thresholds.F = 5 }, "rfm.thresholds.f"},
		{func(s *ScoreSettings) { s.Lifecycle.GrowthMinOrders = 1 }, "lifecycle.growth_min_orders"},
		{func(s *ScoreSettings) { s.Lifecycle.MatureMinScore = 0 }, "lifecycle.mature_min_score"},
		{func(s *ScoreSettings) { s.Lifecycle.GrowthMinOrders = 4 }, "lifecycle.mature_min_orders"},
		{func(s *ScoreSettings) { s.Lifecycle.DeclineDays = 0 }, "lifecycle.decline_days"},
		{func(s *ScoreSettings) { s.Lifecycle.MatureRecentDays = 90 }, "lifecycle.mature_recent_days"},
		{func(s *ScoreSettings) { s.Lifecycle.LapsedBuyerDays = 60 }, "lifecycle.lapsed_buyer_days"},
		{func(s *ScoreSettings) { s.Lifecycle.ExtensionMinCategories = -1 }, "lifecycle.extension_min_categories"},
		{func(s *ScoreSettings) { s.FanTier.FavourableMinOrders = 0 }, "fan_tier.favourable_min_orders"},
		{func(s *ScoreSettings) { s.FanTier.DevotedMinOrders = 1; s.FanTier.FavourableMinOrders = 2 }, "fan_tier.devoted_min_orders"},
		{func(s *ScoreSettings) { s.FanTier.DevotedMinEvents30 = 2 }, "fan_tier.devoted_min_events_30d"},
		{func(s *ScoreSettings) { s.FanTier.CoolOffDays = -1 }, "fan_tier.cool_off_days"},
		{func(s *ScoreSettings) { s.FanTier.InteractionEvents = []string{"view", " view"} }, "fan_tier.interaction_events[1]"},
		{func(s *ScoreSettings) { s.FanTier.InteractionEvents = []string{"view", "view"} }, "fan_tier.interaction_events[1]"},
	} {
		s := Defaults()
		tc.change(&s)
		err := s.Validate()
		e, ok := errs.As(err)
		if !ok || e.Kind != errs.Invalid || !slices.ContainsFunc(e.Fields, func(f errs.FieldError) bool { return f.Location == tc.loc }) {
			t.Errorf("%s: got %v", tc.loc, err)
		}
	}
}

func TestClassifyByValueAverage(t *testing.T) {
	t.Parallel()
	set := Defaults()
	set.RFM.ClassBy = ClassByValueAverage
	sc := testScale()
	sc.ValueMean = [3]float64{-30, 2, 5000} // 30 days, 2 orders, ¥50
	r := newRules(set, sc, testNow, shanghai)
	for _, tc := range []struct {
		in   Input
		want string
	}{
		// The values decide, not the scores.
		{Input{Orders: 3, NetFen: 5001, LastOrderAt: daysAgo(29)}, ImportantValue},
		{Input{Orders: 3, NetFen: 5001, LastOrderAt: daysAgo(30)}, ImportantMaintain},
		{Input{Orders: 2, NetFen: 5001, LastOrderAt: daysAgo(8)}, ImportantDevelopment},
		{Input{Orders: 3, NetFen: 5000, LastOrderAt: daysAgo(8)}, GeneralValue},
	} {
		tc.in.LastSeenAt = tc.in.LastOrderAt
		if got := r.classify(tc.in).RFMClass; got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.in, got, tc.want)
		}
	}
}
