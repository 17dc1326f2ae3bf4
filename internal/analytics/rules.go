package analytics

import (
	"math"
	"time"
)

// The eight RFM classes (RFM 客户分层), named by which of R, F and M are high.
const (
	ImportantValue       = "重要价值客户" // R↑ F↑ M↑
	ImportantDevelopment = "重要发展客户" // R↑ F↓ M↑
	ImportantMaintain    = "重要保持客户" // R↓ F↑ M↑
	ImportantWinBack     = "重要挽留客户" // R↓ F↓ M↑
	GeneralValue         = "一般价值客户" // R↑ F↑ M↓
	GeneralDevelopment   = "一般发展客户" // R↑ F↓ M↓
	GeneralMaintain      = "一般保持客户" // R↓ F↑ M↓
	GeneralWinBack       = "一般挽留客户" // R↓ F↓ M↓
)

// Lifecycle stages (生命周期).
const (
	Onboarding = "初培期"
	Growth     = "成长期"
	Maturity   = "成熟期"
	Extension  = "延展期"
	Decline    = "衰退期"
)

// Fan tiers (粉丝亲密度).
const (
	PasserBy   = "路人粉"
	Favourable = "好感粉"
	Devoted    = "真爱粉"
)

// ScoreLabel is a computed value with its stable English key (for clients that
// translate) in the order the console shows them.
type ScoreLabel struct {
	Value string `json:"value" doc:"The value as stored and used in conditions, e.g. 重要价值客户."`
	Key   string `json:"key" doc:"A stable English key, e.g. important_value."`
}

// RFMClasses lists the eight classes, most valuable first.
func RFMClasses() []ScoreLabel {
	return []ScoreLabel{
		{ImportantValue, "important_value"}, {ImportantDevelopment, "important_development"},
		{ImportantMaintain, "important_maintain"}, {ImportantWinBack, "important_win_back"},
		{GeneralValue, "general_value"}, {GeneralDevelopment, "general_development"},
		{GeneralMaintain, "general_maintain"}, {GeneralWinBack, "general_win_back"},
	}
}

// LifecycleStages lists the stages in the order a customer passes them.
func LifecycleStages() []ScoreLabel {
	return []ScoreLabel{{Onboarding, "onboarding"}, {Growth, "growth"}, {Maturity, "maturity"}, {Extension, "extension"}, {Decline, "decline"}}
}

// FanTiers lists the tiers, coolest first.
func FanTiers() []ScoreLabel {
	return []ScoreLabel{{PasserBy, "passer_by"}, {Favourable, "favourable"}, {Devoted, "devoted"}}
}

// rfmClass maps high/low of R, F and M to the class: M splits 重要 from 一般,
// then R and F pick value (both high), development (recent, infrequent),
// maintain (frequent, not recent) or win back (neither).
func rfmClass(rHigh, fHigh, mHigh bool) string {
	switch {
	case rHigh && fHigh && mHigh:
		return ImportantValue
	case rHigh && !fHigh && mHigh:
		return ImportantDevelopment
	case !rHigh && fHigh && mHigh:
		return ImportantMaintain
	case !rHigh && !fHigh && mHigh:
		return ImportantWinBack
	case rHigh && fHigh:
		return GeneralValue
	case rHigh:
		return GeneralDevelopment
	case fHigh:
		return GeneralMaintain
	default:
		return GeneralWinBack
	}
}

// Metric indexes R, F and M in arrays.
const (
	mR = iota
	mF
	mM
)

// Cuts are the boundaries of one metric's scores: Cuts[k] is the smallest
// value that scores k+2, so a value v scores 1 + |{k : v ≥ Cuts[k]}|. A score
// no value reached has math.MaxInt64. For R the value is minus the days
// since the last order, so that higher is better for all three.
type Cuts [4]int64

// Score returns the 1–5 score of v.
func (c Cuts) Score(v int64) int {
	s := 1
	for _, b := range c {
		if v >= b {
			s++
		}
	}
	return s
}

// cutsOf computes the boundaries from a sorted sample (ascending). Each
// distinct value scores by its mid-rank percentile p = (below + equal/2) / n
// as 1 + ⌊5p⌋: without ties these are exact quintiles, and equal values
// always share a score (ties are not split arbitrarily). It also returns the
// mean score over the sample.
func cutsOf(sorted []int64) (Cuts, float64) {
	c := Cuts{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64}
	n := int64(len(sorted))
	if n == 0 {
		return c, 0
	}
	var sum int64
	for i := int64(0); i < n; {
		j := i
		for j < n && sorted[j] == sorted[i] {
			j++
		}
		eq := j - i
		s := min(1+5*(2*i+eq)/(2*n), 5)
		for k := int64(0); k < s-1; k++ {
			if c[k] == math.MaxInt64 {
				c[k] = sorted[i]
			}
		}
		sum += s * eq
		i = j
	}
	return c, float64(sum) / float64(n)
}

// Scale is what scoring a customer needs of the whole workspace: each
// metric's boundaries and mean score, measured by the last full run.
type Scale struct {
	AsOf   time.Time  `json:"as_of"`
	Buyers int64      `json:"buyers"`
	Sample int64      `json:"sample"` // values the boundaries came from; < Buyers when sampled
	Cuts   [3]Cuts    `json:"cuts"`   // R (minus days), F (orders), M (fen)
	Mean   [3]float64 `json:"mean"`   // mean score of R, F, M over buyers
	// ValueMean is the mean value of R (minus days), F and M over every
	// buyer, exact even when the cuts are sampled.
	ValueMean [3]float64 `json:"value_mean"`
}

// Input is what the rules read of one customer.
type Input struct {
	CustomerID   int64
	FirstSeenAt  time.Time
	LastSeenAt   time.Time
	Orders       int64 // paid orders kept: paid, minus those refunded in full
	NetFen       int64 // paid minus refunded, in fen
	FirstOrderAt time.Time
	LastOrderAt  time.Time
	Categories   int64 // distinct product categories bought in kept orders
	Events30     int64 // interactions in the last 30 days (today included)
	Events90     int64 // interactions in the last 90 days
}

// Buyer reports whether the customer has an order to score.
func (in Input) Buyer() bool { return in.Orders > 0 }

// Score is a customer's computed attributes.
type Score struct {
	R, F, M   int
	RFMClass  string
	Lifecycle string
	FanTier   string
}

// rules applies a workspace's settings and scale at one moment.
type rules struct {
	set   ScoreSettings
	scale Scale
	loc   *time.Location
	today int64      // day number of now in the workspace's time zone
	ref   [3]float64 // a score (or with byValue a value) above ref[i] is high
	// byValue compares values rather than scores with ref.
	byValue bool
}

func newRules(set ScoreSettings, scale Scale, now time.Time, loc *time.Location) rules {
	r := rules{set: set, scale: scale, loc: loc, today: dayNumber(now, loc)}
	switch set.RFM.ClassBy {
	case ClassByThreshold:
		r.ref = [3]float64{float64(set.RFM.Thresholds.R), float64(set.RFM.Thresholds.F), float64(set.RFM.Thresholds.M)}
	case ClassByValueAverage:
		r.ref, r.byValue = scale.ValueMean, true
	default:
		r.ref = scale.Mean
	}
	return r
}

// dayNumber numbers calendar days in loc (days since 1970-01-01 there).
func dayNumber(t time.Time, loc *time.Location) int64 {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// daysSince counts calendar days from t to today in the workspace's time zone
// (0: today; a time in the future counts as today).
func (r rules) daysSince(t time.Time) int64 {
	return max(r.today-dayNumber(t, r.loc), 0)
}

// dayStart is the first instant of the last n calendar days, today included.
func dayStart(now time.Time, loc *time.Location, n int) time.Time {
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d-(n-1), 0, 0, 0, 0, loc)
}

// rfmValues are a buyer's R, F and M on the "higher is better" scale.
func (r rules) rfmValues(in Input) [3]int64 {
	return [3]int64{-r.daysSince(in.LastOrderAt), in.Orders, in.NetFen}
}

func (r rules) classify(in Input) Score {
	var s Score
	if in.Buyer() {
		v := r.rfmValues(in)
		s.R, s.F, s.M = r.scale.Cuts[mR].Score(v[mR]), r.scale.Cuts[mF].Score(v[mF]), r.scale.Cuts[mM].Score(v[mM])
		cmp := [3]float64{float64(s.R), float64(s.F), float64(s.M)}
		if r.byValue {
			cmp = [3]float64{float64(v[mR]), float64(v[mF]), float64(v[mM])}
		}
		s.RFMClass = rfmClass(cmp[mR] > r.ref[mR], cmp[mF] > r.ref[mF], cmp[mM] > r.ref[mM])
	}
	s.Lifecycle = r.lifecycle(in, s)
	s.FanTier = r.fanTier(in)
	return s
}

// idleDays is how long the customer has done nothing we know of: no order,
// no event, no profile activity.
func (r rules) idleDays(in Input) int64 {
	last := in.LastSeenAt
	if in.LastOrderAt.After(last) {
		last = in.LastOrderAt
	}
	return r.daysSince(last)
}

// lifecycle applies the stage rules in order; the first that holds wins.
func (r rules) lifecycle(in Input, s Score) string {
	l := r.set.Lifecycle
	if r.idleDays(in) >= int64(l.DeclineDays) {
		return Decline
	}
	if in.Buyer() && l.LapsedBuyerDays > 0 && r.daysSince(in.LastOrderAt) >= int64(l.LapsedBuyerDays) {
		return Decline
	}
	if in.Orders >= int64(l.MatureMinOrders) && s.F >= l.MatureMinScore && s.M >= l.MatureMinScore &&
		r.daysSince(in.LastOrderAt) <= int64(l.MatureRecentDays) {
		if (l.ExtensionMinCategories > 0 && in.Categories >= int64(l.ExtensionMinCategories)) ||
			(l.ExtensionMinTenureDays > 0 && r.daysSince(in.FirstOrderAt) >= int64(l.ExtensionMinTenureDays)) {
			return Extension
		}
		return Maturity
	}
	if in.Orders >= int64(l.GrowthMinOrders) {
		return Growth
	}
	return Onboarding
}

// fanTier applies the tier rules in order; the first that holds wins.
func (r rules) fanTier(in Input) string {
	f := r.set.FanTier
	if f.CoolOffDays > 0 && r.idleDays(in) >= int64(f.CoolOffDays) {
		return PasserBy
	}
	if in.Orders >= int64(f.DevotedMinOrders) || (f.DevotedMinEvents30 > 0 && in.Events30 >= int64(f.DevotedMinEvents30)) {
		return Devoted
	}
	if in.Orders >= int64(f.FavourableMinOrders) || (f.FavourableMinEvents90 > 0 && in.Events90 >= int64(f.FavourableMinEvents90)) {
		return Favourable
	}
	return PasserBy
}
