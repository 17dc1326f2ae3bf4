package analytics

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
)

// pageSize is how many customers one step of a run reads and writes.
const pageSize = 1000

// reservoir keeps a uniform sample of at most size buyers' (R, F, M) values
// (Vitter's algorithm R), seeded per workspace so that a rerun on the same
// data measures the same scale.
type reservoir struct {
	size  int
	seen  int64
	sum   [3]float64 // over every value seen, not only the sample
	items [][3]int64
	rng   *rand.Rand
}

func newReservoir(size int, seed uint64) *reservoir {
	return &reservoir{size: size, items: make([][3]int64, 0, min(size, 1<<16)), rng: rand.New(rand.NewPCG(seed, 0x5379_7521))}
}

func (r *reservoir) add(v [3]int64) {
	r.seen++
	for m, x := range v {
		r.sum[m] += float64(x)
	}
	if len(r.items) < r.size {
		r.items = append(r.items, v)
		return
	}
	if j := r.rng.Int64N(r.seen); j < int64(r.size) {
		r.items[j] = v
	}
}

// scale computes each metric's boundaries and mean score from the sample.
func (r *reservoir) scale(asOf time.Time) Scale {
	sc := Scale{AsOf: asOf, Buyers: r.seen, Sample: int64(len(r.items))}
	if r.seen > 0 {
		for m := range 3 {
			sc.ValueMean[m] = r.sum[m] / float64(r.seen)
		}
	}
	col := make([]int64, len(r.items))
	for m := range 3 {
		for i, v := range r.items {
			col[i] = v[m]
		}
		slices.Sort(col)
		sc.Cuts[m], sc.Mean[m] = cutsOf(col)
	}
	return sc
}

// keptOrders is F: paid orders, less those refunded in full.
func keptOrders(sp commerce.Spend) int64 { return sp.OrderCount - sp.RefundedOrderCount }

// measure reads every buyer's values once and returns the workspace's scale.
func (s *Service) measure(ctx context.Context, tenantID int64, asOf time.Time, loc *time.Location) (Scale, error) {
	res := newReservoir(s.o.SampleSize, uint64(tenantID))
	r := rules{loc: loc, today: dayNumber(asOf, loc)}
	err := s.src.Spend.EachSpend(ctx, tenantID, func(sp commerce.Spend) error {
		if keptOrders(sp) <= 0 {
			return nil
		}
		res.add(r.rfmValues(Input{Orders: keptOrders(sp), NetFen: sp.NetFen, LastOrderAt: sp.LastOrderAt}))
		return nil
	})
	if err != nil {
		return Scale{}, err
	}
	return res.scale(asOf), nil
}

// job is one run over some of a workspace's customers.
type job struct {
	s        *Service
	tenantID int64
	rules    rules
	since    [2]time.Time // starts of the last 30 and 90 days
	now      time.Time
	changed  int64
	deleted  int64
}

func (s *Service) newJob(tenantID int64, set ScoreSettings, scale Scale, now time.Time, loc *time.Location) *job {
	return &job{s: s, tenantID: tenantID, rules: newRules(set, scale, now, loc), now: now,
		since: [2]time.Time{dayStart(now, loc, 30), dayStart(now, loc, 90)}}
}

// inputs gathers what the rules read of the given live customers.
func (j *job) inputs(ctx context.Context, seen []customer.Seen) ([]Input, error) {
	ids := make([]int64, len(seen))
	for i, c := range seen {
		ids[i] = c.ID
	}
	spends, err := j.s.src.Spend.Spends(ctx, j.tenantID, ids)
	if err != nil {
		return nil, err
	}
	var buyers []int64
	for _, id := range ids {
		if sp, ok := spends[id]; ok && keptOrders(sp) > 0 {
			buyers = append(buyers, id)
		}
	}
	var cats map[int64]int64
	if len(buyers) > 0 {
		if cats, err = j.s.src.Spend.CategoryCounts(ctx, j.tenantID, buyers); err != nil {
			return nil, err
		}
	}
	var events map[int64][]int64
	if j.s.src.Events != nil {
		names := j.rules.set.FanTier.InteractionEvents
		if events, err = j.s.src.Events.CountInteractions(ctx, j.tenantID, ids, names, j.since[0], j.since[1]); err != nil {
			return nil, err
		}
	}
	out := make([]Input, len(seen))
	for i, c := range seen {
		in := Input{CustomerID: c.ID, FirstSeenAt: c.FirstSeenAt, LastSeenAt: c.LastSeenAt}
		if sp, ok := spends[c.ID]; ok {
			in.Orders, in.NetFen = max(keptOrders(sp), 0), sp.NetFen
			in.FirstOrderAt, in.LastOrderAt = sp.FirstOrderAt, sp.LastOrderAt
		}
		in.Categories = cats[c.ID]
		if n, ok := events[c.ID]; ok {
			in.Events30, in.Events90 = n[0], n[1]
		}
		out[i] = in
	}
	return out, nil
}

// apply scores the given live customers, writes those whose values differ
// from existing, and deletes the rows in existing of customers not among
// them (merged into another profile since).
func (j *job) apply(ctx context.Context, seen []customer.Seen, existing map[int64]Score) error {
	ins, err := j.inputs(ctx, seen)
	if err != nil {
		return err
	}
	type row struct {
		id int64
		sc Score
	}
	var changed []row
	live := make(map[int64]bool, len(ins))
	for _, in := range ins {
		live[in.CustomerID] = true
		sc := j.rules.classify(in)
		if old, ok := existing[in.CustomerID]; ok && old == sc {
			continue
		}
		changed = append(changed, row{in.CustomerID, sc})
	}
	var gone []int64
	for id := range existing {
		if !live[id] {
			gone = append(gone, id)
		}
	}
	if len(changed) == 0 && len(gone) == 0 {
		return nil
	}
	slices.Sort(gone)
	err = j.s.db.Tx(ctx, func(tx *sql.Tx) error {
		const chunk = 200
		asOf, written := db.Millis(j.now), db.Millis(j.s.now())
		for len(changed) > 0 {
			part := changed[:min(len(changed), chunk)]
			changed = changed[len(part):]
			var q strings.Builder
			q.WriteString(`INSERT INTO customer_scores (tenant_id, customer_id, r, f, m, rfm_class, lifecycle, fan_tier, computed_at, updated_at) VALUES `)
			args := []any{j.tenantID, asOf, written}
			for i, r := range part {
				if i > 0 {
					q.WriteString(", ")
				}
				n := len(args)
				fmt.Fprintf(&q, "($1, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $2, $3)", n+1, n+2, n+3, n+4, n+5, n+6, n+7)
				args = append(args, r.id, r.sc.R, r.sc.F, r.sc.M, r.sc.RFMClass, r.sc.Lifecycle, r.sc.FanTier)
			}
			q.WriteString(` ON CONFLICT (tenant_id, customer_id) DO UPDATE SET r = excluded.r, f = excluded.f, m = excluded.m,
				rfm_class = excluded.rfm_class, lifecycle = excluded.lifecycle, fan_tier = excluded.fan_tier,
				computed_at = excluded.computed_at, updated_at = excluded.updated_at`)
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return fmt.Errorf("analytics: unable to write scores: %w", err)
			}
			j.changed += int64(len(part))
		}
		if len(gone) > 0 {
			if err := deleteScores(ctx, tx, j.tenantID, gone); err != nil {
				return err
			}
			j.deleted += int64(len(gone))
		}
		return nil
	})
	return err
}

func deleteScores(ctx context.Context, q db.Querier, tenantID int64, ids []int64) error {
	for len(ids) > 0 {
		part := ids[:min(len(ids), 500)]
		ids = ids[len(part):]
		ph, args := inList(2, part)
		if _, err := q.ExecContext(ctx, `DELETE FROM customer_scores WHERE tenant_id = $1 AND customer_id IN (`+ph+`)`,
			append([]any{tenantID}, args...)...); err != nil {
			return fmt.Errorf("analytics: unable to delete scores: %w", err)
		}
	}
	return nil
}

// inList returns "$from, $from+1, …" and the ids as arguments.
func inList(from int, ids []int64) (string, []any) {
	var b strings.Builder
	args := make([]any, len(ids))
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
		args[i] = id
	}
	return b.String(), args
}

const scoreCols = `customer_id, r, f, m, rfm_class, lifecycle, fan_tier`

func scanStored(rows *sql.Rows, into map[int64]Score) error {
	defer rows.Close()
	for rows.Next() {
		var id int64
		var sc Score
		if err := rows.Scan(&id, &sc.R, &sc.F, &sc.M, &sc.RFMClass, &sc.Lifecycle, &sc.FanTier); err != nil {
			return fmt.Errorf("analytics: unable to read scores: %w", err)
		}
		into[id] = sc
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("analytics: unable to read scores: %w", err)
	}
	return nil
}

// storedBetween reads the stored rows with after < customer_id ≤ upTo.
func (s *Service) storedBetween(ctx context.Context, tenantID, after, upTo int64) (map[int64]Score, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+scoreCols+` FROM customer_scores
		WHERE tenant_id = $1 AND customer_id > $2 AND customer_id <= $3`, tenantID, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("analytics: unable to read scores: %w", err)
	}
	out := map[int64]Score{}
	return out, scanStored(rows, out)
}

// storedOf reads the stored rows of the given customers.
func (s *Service) storedOf(ctx context.Context, tenantID int64, ids []int64) (map[int64]Score, error) {
	out := map[int64]Score{}
	for len(ids) > 0 {
		part := ids[:min(len(ids), 500)]
		ids = ids[len(part):]
		ph, args := inList(2, part)
		rows, err := s.db.QueryContext(ctx, `SELECT `+scoreCols+` FROM customer_scores WHERE tenant_id = $1 AND customer_id IN (`+ph+`)`,
			append([]any{tenantID}, args...)...)
		if err != nil {
			return nil, fmt.Errorf("analytics: unable to read scores: %w", err)
		}
		if err := scanStored(rows, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// full recomputes every customer of a workspace: measure the scale, then
// page through the customers, writing what changed. The caller holds the
// lease.
func (s *Service) full(ctx context.Context, tenantID int64, l *lease) error {
	start := s.now()
	total, err := s.src.Profiles.Count(ctx, tenantID)
	if err != nil {
		return err
	}
	if err := l.begin(ctx, start, total); err != nil {
		return err
	}
	err = s.fullPass(ctx, tenantID, l, start)
	if err != nil {
		s.log.Error("analytics: full recompute failed", "tenant", tenantID, "err", err)
		if ferr := l.fail(context.WithoutCancel(ctx)); ferr != nil {
			s.log.Error("analytics: unable to record a failed recompute", "tenant", tenantID, "err", ferr)
		}
	}
	return err
}

func (s *Service) fullPass(ctx context.Context, tenantID int64, l *lease, start time.Time) error {
	set, err := s.Settings(ctx, tenantID)
	if err != nil {
		return err
	}
	loc, err := s.src.Location(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("analytics: workspace time zone: %w", err)
	}
	scale, err := s.measure(ctx, tenantID, start, loc)
	if err != nil {
		return err
	}
	j := s.newJob(tenantID, set, scale, start, loc)
	var after, processed int64
	for {
		seen, err := s.src.Profiles.SeenPage(ctx, tenantID, after, pageSize)
		if err != nil {
			return err
		}
		if len(seen) == 0 {
			break
		}
		last := seen[len(seen)-1].ID
		existing, err := s.storedBetween(ctx, tenantID, after, last)
		if err != nil {
			return err
		}
		if err := j.apply(ctx, seen, existing); err != nil {
			return err
		}
		processed += int64(len(seen))
		after = last
		if err := l.progress(ctx, processed, j.changed); err != nil {
			return err
		}
	}
	// Rows past the last live customer belong to merged ones.
	rest, err := s.storedBetween(ctx, tenantID, after, 1<<62)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		ids := make([]int64, 0, len(rest))
		for id := range rest {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if err := deleteScores(ctx, s.db, tenantID, ids); err != nil {
			return err
		}
		j.deleted += int64(len(ids))
	}
	if err := l.finish(ctx, scale, processed, j.changed, start); err != nil {
		return err
	}
	s.log.Info("analytics: scores recomputed", "tenant", tenantID, "customers", processed, "buyers", scale.Buyers,
		"sampled", scale.Sample < scale.Buyers, "changed", j.changed, "removed", j.deleted, "took", s.now().Sub(start).Round(time.Millisecond))
	return nil
}

// followOverlap re-reads a little of the change feeds each time, so a row
// written by a transaction that committed late is still seen.
const followOverlap = 10 * time.Second

// incremental rescores the customers whose spend or profile changed since
// the last pass, against the scale of the last full run. The caller holds
// the lease.
func (s *Service) incremental(ctx context.Context, tenantID int64, l *lease, st runRow) error {
	now := s.now()
	from := st.followedUntil.Add(-followOverlap)
	spendIDs, err := s.src.Spend.SpendChangedSince(ctx, tenantID, from)
	if err != nil {
		return err
	}
	profileIDs, err := s.src.Profiles.ChangedSince(ctx, tenantID, from)
	if err != nil {
		return err
	}
	ids := append(spendIDs, profileIDs...)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > 0 {
		set, err := s.Settings(ctx, tenantID)
		if err != nil {
			return err
		}
		loc, err := s.src.Location(ctx, tenantID)
		if err != nil {
			return fmt.Errorf("analytics: workspace time zone: %w", err)
		}
		j := s.newJob(tenantID, set, *st.scale, now, loc)
		for part := range slices.Chunk(ids, pageSize) {
			seen, err := s.src.Profiles.SeenOf(ctx, tenantID, part)
			if err != nil {
				return err
			}
			existing, err := s.storedOf(ctx, tenantID, part)
			if err != nil {
				return err
			}
			if err := j.apply(ctx, seen, existing); err != nil {
				return err
			}
			if err := l.extend(ctx); err != nil {
				return err
			}
		}
		if j.changed > 0 || j.deleted > 0 {
			s.log.Debug("analytics: rescored changed customers", "tenant", tenantID, "read", len(ids), "changed", j.changed, "removed", j.deleted)
		}
	}
	return l.followed(ctx, now)
}
