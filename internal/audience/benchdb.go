package audience

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// The rebuild is timed on Siyu's own tables (customers, customer_tags, events,
// customer_spend, customer_scores) of a bench workspace, read through the
// same sources the server uses, so the figure is the server's start-up cost.
// The plain bench_* tables only serve the SQL comparison.

// benchDataVersion changes when the generated rows change, so an old bench
// workspace is not reused.
const benchDataVersion = 3

// benchSchema keeps the bench's copy of Siyu's tables apart on PostgreSQL, so
// a shared development database's public schema is left alone.
const benchSchema = "siyu_bench"

// benchZone is the bench workspace's time zone: most workspaces are in China.
const benchZone = "Asia/Shanghai"

// benchContext is a typical mini-program SDK context (events carry one, and
// a rebuild that scans the table pays for reading it).
const benchContext = `{"library":{"name":"analytics-miniprogram","version":"2.4.1"},"os":{"name":"iOS","version":"17.5"},` +
	`"device":{"model":"iPhone15,2","manufacturer":"Apple"},"ip":"10.12.3.4","locale":"zh-CN",` +
	`"userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) MicroMessenger/8.0.49"}`

// benchWorkspace is where the synthetic customers live in Siyu's tables.
type benchWorkspace struct {
	tenantID int64
	firstID  int64 // customer id of synthetic customer 0; the rest follow
}

// benchRealDSN returns the DSN of the database holding the bench workspace:
// the same SQLite file, or a schema of its own on PostgreSQL.
func benchRealDSN(ctx context.Context, d *db.DB, dsn string) (string, error) {
	if d.Dialect != db.Postgres {
		return dsn, nil
	}
	if _, err := d.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+benchSchema); err != nil {
		return "", err
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("search_path", benchSchema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// benchSpend returns customer i's order summary, if it bought anything.
func benchSpend(seed uint64, i int, now time.Time) (r SpendRow, s ScoreRow, ok bool) {
	g := rand.New(rand.NewPCG(seed^0x5bd1e995, uint64(i)))
	if g.Float64() >= 0.4 {
		return r, s, false
	}
	n := 1 + int64(g.ExpFloat64()*2)
	last := now.Add(-time.Duration(g.IntN(365*24)) * time.Hour)
	first := last.Add(-time.Duration(g.IntN(700*24)) * time.Hour)
	r = SpendRow{OrderCount: n, NetFen: n * int64(2000+g.IntN(30000)), FirstOrderAt: first, LastOrderAt: last}
	classes := []string{"重要价值客户", "重要发展客户", "重要保持客户", "重要挽留客户", "一般价值客户", "一般发展客户", "一般保持客户", "一般挽留客户"}
	s = ScoreRow{R: 1 + g.IntN(5), F: 1 + g.IntN(5), M: 1 + g.IntN(5), RFMClass: classes[g.IntN(8)],
		Lifecycle: []string{"初培期", "成长期", "成熟期", "延展期", "衰退期"}[g.IntN(5)], FanTier: []string{"路人粉", "好感粉", "真爱粉"}[g.IntN(3)]}
	return r, s, true
}

// benchLoadWorkspace puts the synthetic customers into Siyu's own tables of a
// workspace named after the data (size, seed), loading them only when that
// workspace is not already complete, since loading takes far longer than
// reading back.
func benchLoadWorkspace(ctx context.Context, d *db.DB, o BenchOptions, now time.Time, logf func(string, ...any)) (benchWorkspace, error) {
	if _, err := d.Migrate(ctx); err != nil {
		return benchWorkspace{}, err
	}
	slug := fmt.Sprintf("bench-%d-%d-v%d", o.Customers, o.Seed, benchDataVersion)
	var ws benchWorkspace
	var state string
	err := d.QueryRowContext(ctx, `SELECT id, name FROM workspaces WHERE slug = $1`, slug).Scan(&ws.tenantID, &state)
	switch {
	case err == nil && state == "complete":
		err = d.QueryRowContext(ctx, `SELECT min(id) FROM customers WHERE tenant_id = $1`, ws.tenantID).Scan(&ws.firstID)
		return ws, err
	case err == nil:
		// An interrupted load: start that workspace again.
		logf("removing the incomplete bench workspace %s…", slug)
		for _, table := range []string{"events", "customer_tags", "customer_scores", "customer_spend", "customer_attributes", "customers", "tags", "tag_groups", "audience_checkpoint_parts", "audience_checkpoints", "workspaces"} {
			col := "tenant_id"
			if table == "workspaces" {
				col = "id"
			}
			if _, err := d.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+col+` = $1`, ws.tenantID); err != nil {
				return ws, err
			}
		}
	case err != sql.ErrNoRows:
		return ws, err
	}
	logf("%s: loading %d customers into Siyu's tables (workspace %s; done once, reused by later runs)…", d.Dialect, o.Customers, slug)
	ms := db.Millis(now)
	if err := d.QueryRowContext(ctx, `INSERT INTO workspaces (slug, name, timezone, created_at) VALUES ($1, 'loading', $2, $3) RETURNING id`,
		slug, benchZone, ms).Scan(&ws.tenantID); err != nil {
		return ws, err
	}
	tenant := ws.tenantID
	var group int64
	if err := d.QueryRowContext(ctx, `INSERT INTO tag_groups (tenant_id, name, created_at, updated_at) VALUES ($1, 'bench', $2, $2) RETURNING id`,
		tenant, ms).Scan(&group); err != nil {
		return ws, err
	}
	tagIDs := make([]int64, benchTags+1)
	for t := 1; t <= benchTags; t++ {
		// Named by number, so the bench condition's references resolve as is.
		if err := d.QueryRowContext(ctx, `INSERT INTO tags (tenant_id, group_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id`,
			tenant, group, fmt.Sprint(t), ms).Scan(&tagIDs[t]); err != nil {
			return ws, err
		}
	}
	for a := range benchCatAttrs + benchNumAttrs {
		name, typ := fmt.Sprintf("c%d", a), "string"
		if a >= benchCatAttrs {
			name, typ = fmt.Sprintf("n%d", a-benchCatAttrs), "number"
		}
		if _, err := d.ExecContext(ctx, `INSERT INTO customer_attributes (tenant_id, name, display_name, type, defined, first_seen_at, last_seen_at)
			VALUES ($1, $2, $2, $3, TRUE, $4, $4)`, tenant, name, typ, ms); err != nil {
			return ws, err
		}
	}
	if err := d.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM customers`).Scan(&ws.firstID); err != nil {
		return ws, err
	}
	loc, _ := time.LoadLocation(benchZone)
	today := Env{Loc: time.UTC}.day(now)
	// Events are processed in the order they are stored, all before now.
	var seq int64
	processedBase := ms - 2*3_600_000 - int64(o.Customers)*12
	const chunk = 2000
	for lo := 0; lo < o.Customers; lo += chunk {
		hi := min(lo+chunk, o.Customers)
		if lo%100_000 == 0 && lo > 0 {
			logf("%s: %d customers loaded…", d.Dialect, lo)
		}
		err := d.Tx(ctx, func(tx *sql.Tx) error {
			var cust, tags, spend, scores []string
			type ev struct {
				i, e, day int
				key       uint64
			}
			var evs []ev
			order := rand.New(rand.NewPCG(o.Seed, uint64(lo)))
			for i := lo; i < hi; i++ {
				c := benchGen(o.Seed, i)
				id := ws.firstID + int64(i)
				var traits []string
				for a, v := range c.cats {
					traits = append(traits, fmt.Sprintf(`"c%d":"%s"`, a, v))
				}
				for a, v := range c.nums {
					traits = append(traits, fmt.Sprintf(`"n%d":%d`, a, v))
				}
				// Written before the hour that a checkpoint at now replays.
				seen := ms - 2*3_600_000 - int64(i%1000)*60_000
				cust = append(cust, fmt.Sprintf("(%d,%d,'%s','%s','%s','%s','{%s}',%d,%d,%d,%d)", id, tenant,
					[]string{"", "male", "female"}[i%3], "浙江", "杭州", "miniapp", strings.Join(traits, ","), seen, seen, seen, seen))
				for _, t := range c.tags {
					tags = append(tags, fmt.Sprintf("(%d,%d,%d,'manual',%d)", tenant, id, tagIDs[t], ms))
				}
				if r, s, ok := benchSpend(o.Seed, i, now); ok {
					spend = append(spend, fmt.Sprintf("(%d,%d,%d,%d,%d,%d,%d)", tenant, id, r.OrderCount, r.NetFen,
						db.Millis(r.FirstOrderAt), db.Millis(r.LastOrderAt), seen))
					scores = append(scores, fmt.Sprintf("(%d,%d,%d,%d,%d,'%s','%s','%s',%d,%d)", tenant, id, s.R, s.F, s.M,
						s.RFMClass, s.Lifecycle, s.FanTier, seen, seen))
				}
				benchEventDays(o.Seed, i, func(e, day int) { evs = append(evs, ev{i, e, day, order.Uint64()}) })
			}
			// Events are stored as they arrive: oldest day first, customers
			// interleaved.
			slices.SortFunc(evs, func(a, b ev) int {
				if a.day != b.day {
					return b.day - a.day
				}
				return cmp.Compare(a.key, b.key)
			})
			var events []string
			for _, v := range evs {
				y, m, dd := time.Unix(int64(today-int32(v.day))*86400, 0).UTC().Date()
				dayStart := time.Date(y, m, dd, 0, 0, 0, 0, loc)
				span := min(uint64(86_400_000), uint64(now.Sub(dayStart).Milliseconds())) // none in the future
				atMs := db.Millis(dayStart) + int64(v.key%span)
				seq++
				events = append(events, fmt.Sprintf("(%d,'m%d-%d-%d','track','e%d','u%d',%d,%d,%d,%d,'{\"sku\":\"SKU-%d\",\"price\":%d}','%s',%d)",
					tenant, v.i, v.e, v.day, v.e, v.i, ws.firstID+int64(v.i), atMs, atMs+200, atMs+150, v.key%500, v.key%9900+100, benchContext, processedBase+seq))
			}
			for _, ins := range []struct {
				head string
				rows []string
			}{
				{`INSERT INTO customers (id, tenant_id, gender, province, city, first_source, traits, first_seen_at, last_seen_at, created_at, updated_at) VALUES `, cust},
				{`INSERT INTO customer_tags (tenant_id, customer_id, tag_id, source, applied_at) VALUES `, tags},
				{`INSERT INTO customer_spend (tenant_id, customer_id, order_count, paid_fen, first_order_at, last_order_at, updated_at) VALUES `, spend},
				{`INSERT INTO customer_scores (tenant_id, customer_id, r, f, m, rfm_class, lifecycle, fan_tier, computed_at, updated_at) VALUES `, scores},
				{`INSERT INTO events (tenant_id, message_id, type, name, user_id, customer_id, timestamp, received_at, sent_at, properties, context, processed_at) VALUES `, events},
			} {
				for len(ins.rows) > 0 {
					n := min(len(ins.rows), 2000)
					if _, err := tx.ExecContext(ctx, ins.head+strings.Join(ins.rows[:n], ",")); err != nil {
						return err
					}
					ins.rows = ins.rows[n:]
				}
			}
			return nil
		})
		if err != nil {
			return ws, err
		}
	}
	if d.Dialect == db.Postgres {
		if _, err := d.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers))`); err != nil {
			return ws, err
		}
	}
	analyze := `ANALYZE`
	if d.Dialect == db.Postgres {
		analyze = `VACUUM ANALYZE` // as autovacuum would have by now
	}
	if _, err := d.ExecContext(ctx, analyze); err != nil {
		return ws, err
	}
	_, err = d.ExecContext(ctx, `UPDATE workspaces SET name = 'complete' WHERE id = $1`, tenant)
	return ws, err
}

// benchRebuild times building the bench workspace's index from Siyu's own
// tables through the server's sources, then checks that it answers the bench
// condition exactly as the index built from memory does.
func benchRebuild(ctx context.Context, o BenchOptions, dsn string, d *db.DB, mem *Index, env Env, w io.Writer) error {
	if o.Sources == nil {
		fmt.Fprintf(w, "%s: rebuild not timed (no sources given)\n", d.Dialect)
		return nil
	}
	realDSN, err := benchRealDSN(ctx, d, dsn)
	if err != nil {
		return fmt.Errorf("bench: %s schema: %w", d.Dialect, err)
	}
	rd, err := db.Open(ctx, realDSN)
	if err != nil {
		return err
	}
	defer rd.Close()
	logf := func(f string, args ...any) { fmt.Fprintf(w, f+"\n", args...) }
	ws, err := benchLoadWorkspace(ctx, rd, o, env.Now, logf)
	if err != nil {
		return fmt.Errorf("bench: load %s workspace: %w", d.Dialect, err)
	}
	if ws.firstID != 1 {
		// Ordinals of both indexes line up whatever the first id; only the
		// ids differ, which the check below does not compare.
		logf("%s: bench customers start at id %d", d.Dialect, ws.firstID)
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The first rebuild reads everything: drop what an earlier run left.
	for _, q := range []string{`DELETE FROM audience_checkpoint_parts WHERE tenant_id = $1`, `DELETE FROM audience_checkpoints WHERE tenant_id = $1`} {
		if _, err := rd.ExecContext(ctx, q, ws.tenantID); err != nil {
			return err
		}
	}
	rebuild := func(what string) (*Service, error) {
		svc := NewService(rd, o.Sources(rd), logger)
		svc.now = func() time.Time { return env.Now }
		stop, err := benchProfile(o.CPUProfile, string(d.Dialect)+"-"+strings.ReplaceAll(what, " ", "-"))
		if err != nil {
			return nil, err
		}
		runtime.GC()
		start, cpu := time.Now(), processCPU()
		err = svc.Build(ctx, ws.tenantID)
		took, cpu := time.Since(start), processCPU()-cpu
		stop()
		if err != nil {
			return nil, fmt.Errorf("bench: %s rebuild %s: %w", d.Dialect, what, err)
		}
		t := svc.built(ws.tenantID)
		fmt.Fprintf(w, "%s: index rebuilt %s in %s, Siyu's CPU %s (%d customers, %d MB)\n", d.Dialect, what,
			took.Round(time.Millisecond), cpu.Round(time.Millisecond), t.x.Size(), t.x.MemoryBytes()>>20)
		for q := range 20 {
			c := benchCondition(q)
			got, err := svc.Count(ctx, ws.tenantID, c)
			if err != nil {
				return nil, fmt.Errorf("bench: %s count on the rebuilt index: %w", d.Dialect, err)
			}
			b, _ := mem.Eval(ctx, c, env)
			if uint64(got) != b.GetCardinality() {
				return nil, fmt.Errorf("bench: the index rebuilt %s from %s counted %d, the one built from memory %d: the two disagree", what, d.Dialect, got, b.GetCardinality())
			}
		}
		fmt.Fprintf(w, "%s: it answers 20 bench counts exactly as the index built from memory\n", d.Dialect)
		return svc, nil
	}
	svc, err := rebuild("from Siyu's tables")
	if err != nil {
		return err
	}
	start := time.Now()
	if err := svc.Checkpoint(ctx, ws.tenantID); err != nil {
		return err
	}
	var size int64
	if err := rd.QueryRowContext(ctx, `SELECT size FROM audience_checkpoints WHERE tenant_id = $1`, ws.tenantID).Scan(&size); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: checkpoint written in %s (%d MB)\n", d.Dialect, time.Since(start).Round(time.Millisecond), size>>20)
	_, err = rebuild("from the checkpoint and Siyu's tables")
	return err
}

// benchProfile starts a CPU profile into path (with the engine's name added)
// when path is set; stop ends it.
func benchProfile(path, engine string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	ext := filepath.Ext(path)
	f, err := os.Create(strings.TrimSuffix(path, ext) + "-" + engine + ext)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
