package audience

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-dev/siyu/internal/db"
)

// BenchOptions configure `siyu bench audience`.
type BenchOptions struct {
	Customers int      // synthetic customers
	Queries   int      // engine queries to time
	SQLRuns   int      // SQL runs to time per engine (they are slow)
	DSNs      []string // databases to compare against (SQLite path, postgres:// URL); empty: engine only
	Seed      uint64
	// Sources returns the index's sources reading a database, wired as the
	// server wires them; the rebuild is timed through them (nil: not timed).
	Sources func(d *db.DB) Sources
	// CPUProfile, when set, receives a CPU profile of the rebuilds.
	CPUProfile string
}

// Synthetic data shape (the issue's: 200 tags, 20 attributes, 30 days of events).
const (
	benchTags      = 200
	benchCatAttrs  = 5
	benchNumAttrs  = 15
	benchEvents    = 5
	benchDays      = 30
	benchTagsPerC  = 8
	benchActiveDay = 0.15 // share of customers active on a given day, per event
)

type benchCustomer struct {
	tags []int64
	cats [benchCatAttrs]string
	nums [benchNumAttrs]int64
}

// benchGen makes customer i's data deterministically, so the engine and the
// databases receive the same customers without holding them all in memory.
func benchGen(seed uint64, i int) benchCustomer {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	var c benchCustomer
	// Tag popularity is skewed: low ids are common, high ids rare.
	seen := map[int64]bool{}
	for len(c.tags) < benchTagsPerC {
		t := int64(1 + int(float64(benchTags)*r.Float64()*r.Float64()))
		if !seen[t] {
			seen[t] = true
			c.tags = append(c.tags, t)
		}
	}
	sizes := [benchCatAttrs]int{30, 2, 6, 5, 12}
	for a := range c.cats {
		c.cats[a] = fmt.Sprintf("v%d", r.IntN(sizes[a]))
	}
	for a := range c.nums {
		c.nums[a] = int64(r.ExpFloat64() * float64(10000*(a+1)))
	}
	return c
}

// benchEventDays returns the (event, day) pairs customer i performed.
func benchEventDays(seed uint64, i int, fn func(event, day int)) {
	r := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(i)))
	for e := range benchEvents {
		for d := range benchDays {
			if r.Float64() < benchActiveDay/float64(e+1) {
				fn(e, d)
			}
		}
	}
}

// benchCondition is the five-predicate count of the issue: 2 tags, 1
// attribute range, 1 behaviour window, 1 negated tag; q varies the values.
func benchCondition(q int) Condition {
	t1, t2, t3 := int64(1+q%20), int64(21+q%30), int64(60+q%40)
	lo := float64(5000 + (q%10)*1000)
	return Condition{And: []Condition{
		{Tag: fmt.Sprint(t1)},
		{Tag: fmt.Sprint(t2)},
		{Attr: "n0", Op: "between", Value: []any{lo, lo * 4}},
		{Event: "e0", WithinDays: 7},
		{Not: &Condition{Tag: fmt.Sprint(t3)}},
	}}
}

func benchEnv(now time.Time) Env {
	return Env{
		Now: now, Loc: time.UTC,
		TagID: func(_ context.Context, ref string) (int64, error) {
			var id int64
			_, err := fmt.Sscan(ref, &id)
			return id, err
		},
		AttrKind: func(name string) (string, bool) {
			if strings.HasPrefix(name, "c") {
				return AttrCategorical, true
			}
			return AttrNumeric, strings.HasPrefix(name, "n")
		},
	}
}

// RunBench generates the data, builds the index, times counts on it, and
// times the same condition as SQL on each database given.
func RunBench(ctx context.Context, o BenchOptions, w io.Writer) error {
	if o.Customers <= 0 {
		o.Customers = 1_000_000
	}
	if o.Queries <= 0 {
		o.Queries = 500
	}
	if o.SQLRuns <= 0 {
		o.SQLRuns = 5
	}
	if o.Seed == 0 {
		o.Seed = 42
	}
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	env := benchEnv(now)
	fmt.Fprintf(w, "siyu bench audience: %d customers, %d tags, %d attributes, %d days of %d events; %d CPUs, %s\n",
		o.Customers, benchTags, benchCatAttrs+benchNumAttrs, benchDays, benchEvents, runtime.NumCPU(), runtime.Version())

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	x := buildBenchIndex(o, env)
	build := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	fmt.Fprintf(w, "index: built from memory in %s; heap %d MB (index estimate %d MB)\n",
		build.Round(time.Millisecond), (after.HeapAlloc-before.HeapAlloc)>>20, x.MemoryBytes()>>20)

	// Time the steady state: the build's garbage is collected first, as it
	// would be long before a live server's first audience question.
	runtime.GC()
	lat := make([]time.Duration, 0, o.Queries)
	var total uint64
	for q := range o.Queries {
		c := benchCondition(q)
		t0 := time.Now()
		b, err := x.Eval(ctx, c, env)
		if err != nil {
			return err
		}
		total += b.GetCardinality()
		lat = append(lat, time.Since(t0))
	}
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	fmt.Fprintf(w, "engine: five-predicate count p50 %s, p99 %s over %d queries (mean matches %d)\n",
		p50.Round(time.Microsecond), p99.Round(time.Microsecond), o.Queries, total/uint64(o.Queries))

	for _, dsn := range o.DSNs {
		if err := benchSQL(ctx, o, dsn, x, env, p50, w); err != nil {
			return err
		}
	}
	return nil
}

// buildBenchIndex builds the index of the synthetic customers in memory.
func buildBenchIndex(o BenchOptions, env Env) *Index {
	today := env.day(env.Now)
	x := NewIndex()
	x.mu.Lock()
	tagSets := make([][]uint32, benchTags+1)
	for i := range o.Customers {
		c := benchGen(o.Seed, i)
		id := int64(i + 1)
		live := true
		p := Profile{ID: id, Live: &live, Cats: map[string]string{}, Nums: map[string]*int64{}}
		for a, v := range c.cats {
			p.Cats[fmt.Sprintf("c%d", a)] = v
		}
		for a := range c.nums {
			p.Nums[fmt.Sprintf("n%d", a)] = &c.nums[a]
		}
		x.setProfile(p)
		o32 := uint32(i)
		for _, t := range c.tags {
			tagSets[t] = append(tagSets[t], o32)
		}
		benchEventDays(o.Seed, i, func(e, d int) { x.addEvent(o32, fmt.Sprintf("e%d", e), today-int32(d)) })
	}
	for t, ords := range tagSets {
		if len(ords) > 0 {
			x.tags[int64(t)] = roaring.BitmapOf(ords...)
		}
	}
	x.mu.Unlock()
	x.Optimize()
	return x
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// benchSQL loads the same customers into plain tables of one database, then
// times the condition as SQL and the index rebuild from those tables.
func benchSQL(ctx context.Context, o BenchOptions, dsn string, x *Index, env Env, engineP50 time.Duration, w io.Writer) error {
	d, err := db.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(w, "%s: bench tables for %d customers (loaded unless an earlier run left them)…\n", d.Dialect, o.Customers)
	if err := benchLoad(ctx, d, o, env); err != nil {
		return fmt.Errorf("bench: load %s: %w", d.Dialect, err)
	}
	var lat []time.Duration
	for q := range o.SQLRuns {
		c := benchCondition(q)
		query, args := benchSQLFor(c, env)
		t0 := time.Now()
		var n int64
		if err := d.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			return fmt.Errorf("bench: %s query: %w", d.Dialect, err)
		}
		lat = append(lat, time.Since(t0))
		b, _ := x.Eval(ctx, c, env)
		if uint64(n) != b.GetCardinality() {
			return fmt.Errorf("bench: %s counted %d, the engine %d: the two disagree", d.Dialect, n, b.GetCardinality())
		}
	}
	sp50 := percentile(lat, 50)
	fmt.Fprintf(w, "%s: same count as SQL p50 %s over %d runs; engine is %.0f× faster (results identical)\n",
		d.Dialect, sp50.Round(time.Millisecond), o.SQLRuns, float64(sp50)/float64(max(engineP50, time.Microsecond)))

	return benchRebuild(ctx, o, dsn, d, x, env, w)
}

func benchLoad(ctx context.Context, d *db.DB, o BenchOptions, env Env) error {
	var numDefs []string
	for a := range benchNumAttrs {
		numDefs = append(numDefs, fmt.Sprintf("n%d BIGINT", a))
	}
	var catDefs []string
	for a := range benchCatAttrs {
		catDefs = append(catDefs, fmt.Sprintf("c%d TEXT", a))
	}
	// The tables of an earlier run with the same data are kept: loading
	// takes far longer than the timings.
	var n, seed int64
	if err := d.QueryRowContext(ctx, `SELECT customers, seed FROM bench_meta`).Scan(&n, &seed); err == nil && n == int64(o.Customers) && seed == int64(o.Seed) {
		return nil
	}
	stmts := []string{
		`DROP TABLE IF EXISTS bench_meta`,
		`DROP TABLE IF EXISTS bench_tags`, `DROP TABLE IF EXISTS bench_events`, `DROP TABLE IF EXISTS bench_customers`,
		`CREATE TABLE bench_customers (id BIGINT PRIMARY KEY, ` + strings.Join(catDefs, ", ") + `, ` + strings.Join(numDefs, ", ") + `)`,
		`CREATE TABLE bench_tags (customer_id BIGINT NOT NULL, tag_id BIGINT NOT NULL, PRIMARY KEY (tag_id, customer_id))`,
		`CREATE TABLE bench_events (customer_id BIGINT NOT NULL, name TEXT NOT NULL, day INTEGER NOT NULL)`,
	}
	for _, s := range stmts {
		if _, err := d.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	today := env.day(env.Now)
	const chunk = 2000
	for lo := 0; lo < o.Customers; lo += chunk {
		hi := min(lo+chunk, o.Customers)
		err := d.Tx(ctx, func(tx *sql.Tx) error {
			var cust, tags, evs []string
			for i := lo; i < hi; i++ {
				c := benchGen(o.Seed, i)
				id := int64(i + 1)
				row := []string{fmt.Sprint(id)}
				for _, v := range c.cats {
					row = append(row, "'"+v+"'")
				}
				for _, v := range c.nums {
					row = append(row, fmt.Sprint(v))
				}
				cust = append(cust, "("+strings.Join(row, ",")+")")
				for _, t := range c.tags {
					tags = append(tags, fmt.Sprintf("(%d,%d)", id, t))
				}
				benchEventDays(o.Seed, i, func(e, day int) { evs = append(evs, fmt.Sprintf("(%d,'e%d',%d)", id, e, today-int32(day))) })
			}
			for _, ins := range []struct {
				table string
				rows  []string
			}{{"bench_customers", cust}, {"bench_tags", tags}, {"bench_events", evs}} {
				for len(ins.rows) > 0 {
					n := min(len(ins.rows), 5000)
					if _, err := tx.ExecContext(ctx, `INSERT INTO `+ins.table+` VALUES `+strings.Join(ins.rows[:n], ",")); err != nil {
						return err
					}
					ins.rows = ins.rows[n:]
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, s := range []string{
		`CREATE INDEX bench_customers_n0 ON bench_customers (n0)`,
		`CREATE INDEX bench_tags_customer ON bench_tags (customer_id, tag_id)`,
		`CREATE INDEX bench_events_customer ON bench_events (customer_id, name, day)`,
		`ANALYZE`,
		`CREATE TABLE bench_meta (customers BIGINT NOT NULL, seed BIGINT NOT NULL)`,
		fmt.Sprintf(`INSERT INTO bench_meta VALUES (%d, %d)`, o.Customers, int64(o.Seed)),
	} {
		if _, err := d.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// benchSQLFor writes the bench condition as the SQL a straightforward segment
// builder would run: one EXISTS per predicate.
func benchSQLFor(c Condition, env Env) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	today := env.day(env.Now)
	for _, p := range c.And {
		switch {
		case p.Tag != "":
			where = append(where, "EXISTS (SELECT 1 FROM bench_tags t WHERE t.customer_id = c.id AND t.tag_id = "+arg(mustInt(p.Tag))+")")
		case p.Not != nil:
			where = append(where, "NOT EXISTS (SELECT 1 FROM bench_tags t WHERE t.customer_id = c.id AND t.tag_id = "+arg(mustInt(p.Not.Tag))+")")
		case p.Attr != "":
			l := p.Value.([]any)
			where = append(where, "c."+p.Attr+" BETWEEN "+arg(int64(l[0].(float64)))+" AND "+arg(int64(l[1].(float64))))
		case p.Event != "":
			where = append(where, "EXISTS (SELECT 1 FROM bench_events e WHERE e.customer_id = c.id AND e.name = "+arg(p.Event)+
				" AND e.day >= "+arg(int(today)-p.WithinDays+1)+")")
		}
	}
	return "SELECT count(*) FROM bench_customers c WHERE " + strings.Join(where, " AND "), args
}

func mustInt(s string) int64 {
	var n int64
	fmt.Sscan(s, &n)
	return n
}
