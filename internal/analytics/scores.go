package analytics

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/db"
)

func scanScoreRows(rows *sql.Rows) ([]audience.ScoreRow, error) {
	defer rows.Close()
	var out []audience.ScoreRow
	for rows.Next() {
		var r audience.ScoreRow
		if err := rows.Scan(&r.CustomerID, &r.R, &r.F, &r.M, &r.RFMClass, &r.Lifecycle, &r.FanTier); err != nil {
			return nil, fmt.Errorf("analytics: unable to read scores: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("analytics: unable to read scores: %w", err)
	}
	return out, nil
}

// EachScore calls fn with every scored customer of the workspace, in id
// order (audience.ScoreSource). It reads in pages, so fn may run queries.
func (s *Service) EachScore(ctx context.Context, tenantID int64, fn func(audience.ScoreRow) error) error {
	const pageSize = 5000
	var after int64
	for {
		rows, err := s.db.QueryContext(ctx, `SELECT `+scoreCols+` FROM customer_scores
			WHERE tenant_id = $1 AND customer_id > $2 ORDER BY customer_id LIMIT $3`, tenantID, after, pageSize)
		if err != nil {
			return fmt.Errorf("analytics: unable to scan scores: %w", err)
		}
		page, err := scanScoreRows(rows)
		if err != nil {
			return err
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = page[len(page)-1].CustomerID
	}
}

// ScoresFor calls fn with the scores of the given customers; customers not
// scored (yet, or merged) are skipped (audience.ScoreSource).
func (s *Service) ScoresFor(ctx context.Context, tenantID int64, ids []int64, fn func(audience.ScoreRow) error) error {
	for len(ids) > 0 {
		part := ids[:min(len(ids), 500)]
		ids = ids[len(part):]
		ph, args := inList(2, part)
		rows, err := s.db.QueryContext(ctx, `SELECT `+scoreCols+` FROM customer_scores WHERE tenant_id = $1 AND customer_id IN (`+ph+`)`,
			append([]any{tenantID}, args...)...)
		if err != nil {
			return fmt.Errorf("analytics: unable to read scores: %w", err)
		}
		got, err := scanScoreRows(rows)
		if err != nil {
			return err
		}
		for _, r := range got {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// ScoresChangedSince returns the customers whose scores were written at or
// after since, in id order (the audience index's change feed). A customer
// whose row was removed (merged into another) is not listed: the merge feed
// tells of it.
func (s *Service) ScoresChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT customer_id FROM customer_scores WHERE tenant_id = $1 AND updated_at >= $2 ORDER BY customer_id`,
		tenantID, db.Millis(since))
	if err != nil {
		return nil, fmt.Errorf("analytics: unable to read score changes: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("analytics: unable to read score changes: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("analytics: unable to read score changes: %w", err)
	}
	return out, nil
}

// LabelCount counts the customers with one value.
type LabelCount struct {
	ScoreLabel
	Count int64 `json:"count"`
}

// ScoreCount counts the customers with one R, F or M score, and gives the
// range of values that scores it (days since the last order for R, kept
// orders for F, net fen for M).
type ScoreCount struct {
	Score int    `json:"score" minimum:"1" maximum:"5"`
	Count int64  `json:"count"`
	Used  bool   `json:"used" doc:"False when no value scores this: equal values share a score, so a heavily tied value can skip scores."`
	Min   *int64 `json:"min,omitempty" doc:"Smallest value with this score; absent: no lower bound."`
	Max   *int64 `json:"max,omitempty" doc:"Largest value with this score; absent: no upper bound."`
}

// ScoreDistribution is how a workspace's customers spread over the computed
// attributes: what the console's charts show.
type ScoreDistribution struct {
	Customers  int64        `json:"customers" doc:"Customers scored."`
	Buyers     int64        `json:"buyers" doc:"Customers with at least one kept order, who have RFM scores."`
	RFMClasses []LabelCount `json:"rfm_classes" nullable:"false"`
	Lifecycle  []LabelCount `json:"lifecycle" nullable:"false"`
	FanTiers   []LabelCount `json:"fan_tiers" nullable:"false"`
	R          []ScoreCount `json:"r" nullable:"false" doc:"R scores; values are days since the last order."`
	F          []ScoreCount `json:"f" nullable:"false" doc:"F scores; values are kept orders."`
	M          []ScoreCount `json:"m" nullable:"false" doc:"M scores; values are net spend in fen."`
	Mean       struct {
		R float64 `json:"r"`
		F float64 `json:"f"`
		M float64 `json:"m"`
	} `json:"mean" doc:"Mean scores over the buyers when the quintiles were measured (the class reference when class_by is average)."`
	MeanValue struct {
		Days   float64 `json:"days" doc:"Mean days since the last order."`
		Orders float64 `json:"orders" doc:"Mean kept orders."`
		Fen    float64 `json:"fen" doc:"Mean net spend, in fen."`
	} `json:"mean_value" doc:"Mean values over the buyers (the class reference when class_by is value_average)."`
	ComputedAt time.Time `json:"computed_at,omitzero" doc:"When the quintiles were measured; absent before the first full recompute."`
}

// Distribution counts the workspace's customers by RFM class, lifecycle
// stage, fan tier and R, F and M score.
func (s *Service) Distribution(ctx context.Context, tenantID int64) (ScoreDistribution, error) {
	st, err := s.runRow(ctx, tenantID)
	if err != nil {
		return ScoreDistribution{}, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT r, f, m, rfm_class, lifecycle, fan_tier, COUNT(*) FROM customer_scores
		WHERE tenant_id = $1 GROUP BY r, f, m, rfm_class, lifecycle, fan_tier`, tenantID)
	if err != nil {
		return ScoreDistribution{}, fmt.Errorf("analytics: unable to count scores: %w", err)
	}
	defer rows.Close()
	var d ScoreDistribution
	var scores [3][6]int64
	byValue := map[string]int64{}
	for rows.Next() {
		var r, f, m int
		var class, stage, tier string
		var n int64
		if err := rows.Scan(&r, &f, &m, &class, &stage, &tier, &n); err != nil {
			return ScoreDistribution{}, fmt.Errorf("analytics: unable to count scores: %w", err)
		}
		d.Customers += n
		if r > 0 {
			d.Buyers += n
		}
		for i, v := range [3]int{r, f, m} {
			if v >= 0 && v <= 5 {
				scores[i][v] += n
			}
		}
		byValue["c:"+class] += n
		byValue["l:"+stage] += n
		byValue["t:"+tier] += n
	}
	if err := rows.Err(); err != nil {
		return ScoreDistribution{}, fmt.Errorf("analytics: unable to count scores: %w", err)
	}
	buckets := func(prefix string, labels []ScoreLabel) []LabelCount {
		out := make([]LabelCount, len(labels))
		for i, l := range labels {
			out[i] = LabelCount{ScoreLabel: l, Count: byValue[prefix+l.Value]}
		}
		return out
	}
	d.RFMClasses = buckets("c:", RFMClasses())
	d.Lifecycle = buckets("l:", LifecycleStages())
	d.FanTiers = buckets("t:", FanTiers())
	var cuts [3]Cuts
	for i := range cuts {
		cuts[i] = Cuts{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64}
	}
	if st.scale != nil {
		cuts = st.scale.Cuts
		d.Mean.R, d.Mean.F, d.Mean.M = st.scale.Mean[mR], st.scale.Mean[mF], st.scale.Mean[mM]
		d.MeanValue.Days, d.MeanValue.Orders, d.MeanValue.Fen = -st.scale.ValueMean[mR], st.scale.ValueMean[mF], st.scale.ValueMean[mM]
		d.ComputedAt = st.scale.AsOf
	}
	d.R = scoreBuckets(scores[mR], cuts[mR], true)
	d.F = scoreBuckets(scores[mF], cuts[mF], false)
	d.M = scoreBuckets(scores[mM], cuts[mM], false)
	return d, nil
}

// scoreBuckets turns boundaries into value ranges per score; for R the
// values are minus days, turned back into days.
func scoreBuckets(counts [6]int64, c Cuts, days bool) []ScoreCount {
	out := make([]ScoreCount, 5)
	for s := 1; s <= 5; s++ {
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64) // value range [lo, hi)
		if s > 1 {
			lo = c[s-2]
		}
		if s < 5 {
			hi = c[s-1]
		}
		b := ScoreCount{Score: s, Count: counts[s], Used: lo < hi && lo != math.MaxInt64}
		if b.Used {
			if days {
				// v ∈ [lo, hi) with v = −days: days ∈ (−hi, −lo].
				if hi != math.MaxInt64 {
					b.Min = ptr(max(1-hi, 0))
				} else {
					b.Min = ptr(0)
				}
				if lo != math.MinInt64 {
					b.Max = ptr(-lo)
				}
			} else {
				if lo != math.MinInt64 {
					b.Min = ptr(lo)
				}
				if hi != math.MaxInt64 {
					b.Max = ptr(hi - 1)
				}
			}
		}
		out[s-1] = b
	}
	return out
}

func ptr(v int64) *int64 { return &v }
