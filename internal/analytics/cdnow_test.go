package analytics_test

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// cdnowPurchase is one line of the CDNOW sample.
type cdnowPurchase struct {
	customer string // sample id, e.g. "0157"
	day      time.Time
	cents    int64
}

func readCDNOW(t *testing.T) []cdnowPurchase {
	t.Helper()
	f, err := os.Open("testdata/cdnow_sample_300.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []cdnowPurchase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		col := strings.Fields(sc.Text())
		if len(col) != 5 {
			t.Fatalf("bad line %q", sc.Text())
		}
		day, err := time.Parse("20060102", col[2])
		if err != nil {
			t.Fatal(err)
		}
		dollars, err := strconv.ParseFloat(col[4], 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cdnowPurchase{customer: col[1], day: day, cents: int64(math.Round(dollars * 100))})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCDNOWCustomersLandInPlausibleClasses scores real purchase histories:
// the CDNOW cohort, as of the day after its last observation. Known customers
// must land where an analyst would put them, and the classes must have the
// shape of the data (most customers bought once in early 1997 and left).
func TestCDNOWCustomersLandInPlausibleClasses(t *testing.T) {
	t.Parallel()
	purchases := readCDNOW(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		e := newEnv(t, d, analytics.Options{})
		loc, _ := time.LoadLocation("Asia/Shanghai")
		// Orders must be after 2000: move every date by the same number of
		// days, which keeps every gap (and so R) as it was.
		shift := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Sub(time.Date(1997, 1, 1, 0, 0, 0, 0, time.UTC))
		moved := func(day time.Time) time.Time {
			day = day.Add(shift)
			return time.Date(day.Year(), day.Month(), day.Day(), 12, 0, 0, 0, loc)
		}
		first, last := map[string]time.Time{}, map[string]time.Time{}
		var order []string
		for _, p := range purchases {
			if _, ok := first[p.customer]; !ok {
				first[p.customer] = p.day
				order = append(order, p.customer)
			}
			last[p.customer] = p.day
		}
		news := make([]customer.NewCustomer, len(order))
		for i, c := range order {
			news[i] = customer.NewCustomer{Name: "cdnow " + c, FirstSeenAt: moved(first[c]), LastSeenAt: moved(last[c]),
				Identities: []customer.Identity{{Kind: customer.KindUserID, Value: "cdnow-" + c}}}
		}
		ids, err := e.cust.CreateMany(ctx, e.tenantID, news)
		if err != nil {
			t.Fatal(err)
		}
		byCustomer := map[string]int64{}
		for i, c := range order {
			byCustomer[c] = ids[i]
		}
		for i, p := range purchases {
			if _, err := e.com.UpsertOrder(ctx, e.tenantID, commerce.OrderInput{
				Source: commerce.SourceOther, OrderID: fmt.Sprint("cdnow-", i), CustomerID: byCustomer[p.customer], Status: commerce.Paid,
				Items:  []commerce.ItemInput{{SKU: "cd", Name: "CD", Quantity: 1, UnitPriceFen: p.cents}},
				PaidAt: moved(p.day),
			}); err != nil {
				t.Fatalf("purchase %d: %v", i, err)
			}
		}
		asOf := moved(time.Date(1998, 7, 1, 0, 0, 0, 0, time.UTC))
		e.clock.advance(time.Until(asOf))
		if _, err := e.svc.Recompute(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		got := e.scores(t)
		for _, tc := range []struct {
			customer, why      string
			class, stage, tier string
		}{
			{"0157", "47 purchases, $1,124, last 20 days before", analytics.ImportantValue, analytics.Extension, analytics.Devoted},
			{"0006", "16 purchases, $1,107, last 11 days before", analytics.ImportantValue, analytics.Extension, analytics.Devoted},
			// Scores are relative: in this cohort most last bought in early
			// 1997, so a last purchase in February 1997 is recent enough
			// for R 4, above the mean score. value_average (below) judges
			// it by days instead.
			{"0244", "7 purchases, $990, none since February 1997", analytics.ImportantValue, analytics.Decline, analytics.PasserBy},
			{"0062", "one $187 purchase in January 1997", analytics.ImportantWinBack, analytics.Decline, analytics.PasserBy},
			{"0111", "3 small purchases, the last 27 days before", analytics.GeneralValue, analytics.Growth, analytics.Devoted},
			{"0254", "one $4.99 purchase in January 1997", analytics.GeneralWinBack, analytics.Decline, analytics.PasserBy},
		} {
			r := got[byCustomer[tc.customer]]
			if r.RFMClass != tc.class || r.Lifecycle != tc.stage || r.FanTier != tc.tier {
				t.Errorf("customer %s (%s): R%d F%d M%d %s %s %s, want %s %s %s", tc.customer, tc.why,
					r.R, r.F, r.M, r.RFMClass, r.Lifecycle, r.FanTier, tc.class, tc.stage, tc.tier)
			}
		}
		dist, err := e.svc.Distribution(ctx, e.tenantID)
		if err != nil {
			t.Fatal(err)
		}
		count := func(bs []analytics.LabelCount, v string) int64 {
			for _, b := range bs {
				if b.Value == v {
					return b.Count
				}
			}
			return -1
		}
		if dist.Customers != 300 || dist.Buyers != 300 {
			t.Fatalf("customers %d buyers %d", dist.Customers, dist.Buyers)
		}
		// Most of the cohort bought a little, once, long ago.
		winBack := count(dist.RFMClasses, analytics.GeneralWinBack)
		for _, b := range dist.RFMClasses {
			if b.Value != analytics.GeneralWinBack && b.Count >= winBack {
				t.Errorf("%s (%d) outnumbers %s (%d)", b.Value, b.Count, analytics.GeneralWinBack, winBack)
			}
		}
		if winBack < 100 {
			t.Errorf("only %d 一般挽留客户 of 300", winBack)
		}
		// Important-value customers are a minority, yet there are some.
		if n := count(dist.RFMClasses, analytics.ImportantValue); n < 5 || n > 100 {
			t.Errorf("%d 重要价值客户 of 300", n)
		}
		// 18 months on, most have declined; the few still buying are not.
		if n := count(dist.Lifecycle, analytics.Decline); n < 200 {
			t.Errorf("%d in decline of 300", n)
		}
		if n := count(dist.FanTiers, analytics.Devoted); n < 5 || n > 60 {
			t.Errorf("%d devoted of 300", n)
		}
		// R's top score is the buyers of the last six months.
		if r5 := dist.R[4]; r5.Min == nil || *r5.Min != 0 || r5.Max == nil || *r5.Max > 183 {
			t.Errorf("R5 covers %s", bands(dist.R))
		}
		t.Logf("classes %v\nstages %v\ntiers %v\nR %v\nF %v\nM %v", dist.RFMClasses, dist.Lifecycle, dist.FanTiers, bands(dist.R), bands(dist.F), bands(dist.M))

		// Judged by values against their means (about 430 days, 3 orders,
		// ¥100 here), February 1997 is long ago: 0244 needs keeping, and
		// fewer customers are important-value.
		set := analytics.Defaults()
		set.RFM.ClassBy = analytics.ClassByValueAverage
		if _, err := e.svc.SetSettings(ctx, tenant.System(e.tenantID), set); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Recompute(ctx, e.tenantID); err != nil {
			t.Fatal(err)
		}
		got = e.scores(t)
		for c, want := range map[string]string{"0157": analytics.ImportantValue, "0006": analytics.ImportantValue,
			"0244": analytics.ImportantMaintain, "0062": analytics.ImportantWinBack, "0254": analytics.GeneralWinBack} {
			if r := got[byCustomer[c]]; r.RFMClass != want {
				t.Errorf("value_average: customer %s is %s, want %s", c, r.RFMClass, want)
			}
		}
		byValue, err := e.svc.Distribution(ctx, e.tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if n := count(byValue.RFMClasses, analytics.ImportantValue); n >= count(dist.RFMClasses, analytics.ImportantValue) || n < 5 {
			t.Errorf("value_average: %d 重要价值客户", n)
		}
		if byValue.MeanValue.Days < 300 || byValue.MeanValue.Orders < 2 || byValue.MeanValue.Fen < 5000 {
			t.Errorf("mean values %+v", byValue.MeanValue)
		}
		t.Logf("value_average classes %v, means %+v", byValue.RFMClasses, byValue.MeanValue)
	})
}

func bands(bs []analytics.ScoreCount) string {
	var b strings.Builder
	for _, s := range bs {
		lo, hi := "-∞", "∞"
		if s.Min != nil {
			lo = strconv.FormatInt(*s.Min, 10)
		}
		if s.Max != nil {
			hi = strconv.FormatInt(*s.Max, 10)
		}
		if !s.Used {
			lo, hi = "—", "—"
		}
		fmt.Fprintf(&b, "%d:[%s,%s]×%d ", s.Score, lo, hi, s.Count)
	}
	return b.String()
}
