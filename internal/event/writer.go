package event

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// row is one accepted message, ready to insert.
type row struct {
	tenantID                                  int64
	messageID, typ, name, userID, anonymousID string
	timestamp, receivedAt                     int64
	sentAt, originalTimestamp                 int64 // 0 is NULL
	properties, traits, context, integrations string
	previousID, groupID                       string
}

// errorRow is one refused message (index ≥ 0) or refused request (index -1).
type errorRow struct {
	tenantID                              int64
	receivedAt                            int64
	index                                 int
	messageID, typ, code, reason, payload string
}

// pending is one request's share of a commit.
type pending struct {
	rows   []row
	errors []errorRow
	err    error
	done   chan struct{}
	lead   chan struct{} // leadership handed over; buffered
	handed bool          // lead has been sent (at most once, so it never blocks)
}

// writer commits requests' events with group commit: while one transaction
// is committing, requests that arrive queue up, and the next transaction
// carries all of them. Every request still gets its answer only after its
// own rows are durable, and each request is all-or-nothing, but the cost of
// a durable commit (an fsync) is shared, which is what bounds ingest
// throughput on SQLite (one writer) and on PostgreSQL under many clients.
//
// There is no background goroutine: the first request to find no committer
// running becomes the committer ("leader"), and when it is done it hands the
// role to the oldest waiting request.
type writer struct {
	db       *db.DB
	lanes    int // committers at once: 1 on SQLite (one writer), more on PostgreSQL
	maxRows  int // rows per transaction, at most
	onCommit func()

	mu      sync.Mutex
	leaders int
	queue   []*pending

	stmtMu sync.Mutex
	stmts  map[int]*sql.Stmt // SQLite multi-row INSERTs by rows per statement
}

// sqliteChunk returns the rows of the next multi-row INSERT on SQLite when n
// are left (16 parameters a row, far below SQLite's 32766). A commit's rows
// are cut into a few fixed sizes so that a handful of statements, each
// prepared once per connection, serve every batch size: parsing a 500-row
// INSERT costs as much as running it.
func sqliteChunk(n int) int {
	for _, c := range [...]int{500, 100, 20, 5} {
		if n >= c {
			return c
		}
	}
	return 1
}

func newWriter(d *db.DB, onCommit func()) *writer {
	w := &writer{db: d, lanes: 1, maxRows: 10000, onCommit: onCommit, stmts: map[int]*sql.Stmt{}}
	if d.Dialect == db.Postgres {
		w.lanes = 4
	}
	return w
}

// write commits p's rows and errors, returning once they are durable.
func (w *writer) write(p *pending) error {
	p.done = make(chan struct{})
	p.lead = make(chan struct{}, 1)
	w.mu.Lock()
	w.queue = append(w.queue, p)
	if w.leaders < w.lanes {
		w.leaders++
		w.mu.Unlock()
		w.lead()
	} else {
		w.mu.Unlock()
		select {
		case <-p.done:
		case <-p.lead:
			w.lead()
		}
	}
	<-p.done
	// Another committer may have taken p while leadership was being handed
	// to it; the hand-over was sent before p left the queue, so it is here.
	select {
	case <-p.lead:
		w.lead()
	default:
	}
	return p.err
}

// lead commits one group from the queue, then hands the role on.
func (w *writer) lead() {
	w.mu.Lock()
	n, rows := 0, 0
	for n < len(w.queue) && (n == 0 || rows+len(w.queue[n].rows) <= w.maxRows) {
		rows += len(w.queue[n].rows)
		n++
	}
	group := make([]*pending, n)
	copy(group, w.queue)
	w.queue = w.queue[n:]
	w.mu.Unlock()

	if len(group) > 0 {
		w.commitGroup(group)
	}

	w.mu.Lock()
	w.handOff()
	w.mu.Unlock()
}

// handOff passes the committer role to the oldest waiting request not yet
// given it, or gives the role up. w.mu is held.
func (w *writer) handOff() {
	for _, p := range w.queue {
		if !p.handed {
			p.handed = true
			p.lead <- struct{}{}
			return
		}
	}
	w.leaders--
	if len(w.queue) == 0 {
		w.queue = nil
	}
}

// commitGroup commits the group in one transaction; if that fails, each
// request is tried alone so that one bad request fails no other.
func (w *writer) commitGroup(group []*pending) {
	// Not the request's context: the group carries other requests too, and a
	// client that hangs up must not abort their commit.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := w.commit(ctx, group)
	if err != nil && len(group) > 1 {
		for _, p := range group {
			p.err = w.commit(ctx, []*pending{p})
			close(p.done)
		}
	} else {
		for _, p := range group {
			p.err = err
			close(p.done)
		}
	}
	if err == nil && w.onCommit != nil {
		w.onCommit()
	}
}

func (w *writer) commit(ctx context.Context, group []*pending) error {
	var rows []row
	var errRows []errorRow
	if len(group) == 1 {
		rows, errRows = group[0].rows, group[0].errors
	} else {
		for _, p := range group {
			rows = append(rows, p.rows...)
			errRows = append(errRows, p.errors...)
		}
	}
	err := w.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := w.insertEvents(ctx, tx, rows); err != nil {
			return err
		}
		return insertErrors(ctx, tx, errRows)
	})
	if err != nil {
		return fmt.Errorf("event: unable to store %d events: %w", len(rows), err)
	}
	return nil
}

const eventCols = `tenant_id, message_id, type, name, user_id, anonymous_id, timestamp, sent_at, received_at,
	original_timestamp, properties, traits, context, integrations, previous_id, group_id`

const nEventCols = 16

// insertEvents inserts rows, skipping messageIds the workspace already has.
func (w *writer) insertEvents(ctx context.Context, tx *sql.Tx, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	if w.db.Dialect == db.Postgres {
		return insertEventsPostgres(ctx, tx, rows)
	}
	args := make([]any, 0, nEventCols*sqliteChunk(len(rows)))
	for len(rows) > 0 {
		n := sqliteChunk(len(rows))
		chunk := rows[:n]
		rows = rows[n:]
		args = args[:0]
		for i := range chunk {
			r := &chunk[i]
			args = append(args, r.tenantID, r.messageID, r.typ, r.name, r.userID, r.anonymousID, r.timestamp, nullMillis(r.sentAt),
				r.receivedAt, nullMillis(r.originalTimestamp), r.properties, r.traits, r.context, r.integrations, r.previousID, r.groupID)
		}
		stmt, err := w.sqliteStmt(ctx, n)
		if err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
	}
	return nil
}

// sqliteStmt returns the prepared multi-row INSERT for n rows.
func (w *writer) sqliteStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	w.stmtMu.Lock()
	defer w.stmtMu.Unlock()
	if st := w.stmts[n]; st != nil {
		return st, nil
	}
	st, err := w.db.PrepareContext(ctx, sqliteInsert(n))
	if err != nil {
		return nil, fmt.Errorf("prepare insert of %d events: %w", n, err)
	}
	w.stmts[n] = st
	return st, nil
}

// sqliteInsert returns the multi-row INSERT for n rows. Its placeholders are
// plain ?, not $N: SQLite treats $N as a parameter name and looks every one
// up in a list, which is quadratic in the thousands of parameters here.
func sqliteInsert(n int) string {
	var b strings.Builder
	b.Grow(200 + n*nEventCols*2)
	b.WriteString(`INSERT INTO events (` + eventCols + `) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?" + strings.Repeat(",?", nEventCols-1) + ")")
	}
	b.WriteString(` ON CONFLICT (tenant_id, message_id) DO NOTHING`)
	return b.String()
}

// insertEventsPostgres sends all rows as sixteen arrays in one statement,
// whatever their number, so PostgreSQL plans it once per connection.
const insertEventsPostgresSQL = `INSERT INTO events (` + eventCols + `)
	SELECT t, m, ty, n, u, a, ts, NULLIF(sa, 0), ra, NULLIF(ot, 0), p, tr, c, i, pr, g
	FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[],
	            $9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[])
	     AS x(t, m, ty, n, u, a, ts, sa, ra, ot, p, tr, c, i, pr, g)
	ON CONFLICT (tenant_id, message_id) DO NOTHING`

func insertEventsPostgres(ctx context.Context, tx *sql.Tx, rows []row) error {
	n := len(rows)
	var (
		tenant, ts, sent, recv, orig                                      = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		msg, typ, name, user, anon, props, traits, ctxs, integ, prev, grp = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	)
	for i := range rows {
		r := &rows[i]
		tenant[i], msg[i], typ[i], name[i], user[i], anon[i] = r.tenantID, r.messageID, r.typ, r.name, r.userID, r.anonymousID
		ts[i], sent[i], recv[i], orig[i] = r.timestamp, r.sentAt, r.receivedAt, r.originalTimestamp
		props[i], traits[i], ctxs[i], integ[i], prev[i], grp[i] = r.properties, r.traits, r.context, r.integrations, r.previousID, r.groupID
	}
	if _, err := tx.ExecContext(ctx, insertEventsPostgresSQL,
		tenant, msg, typ, name, user, anon, ts, sent, recv, orig, props, traits, ctxs, integ, prev, grp); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

func insertErrors(ctx context.Context, tx *sql.Tx, rows []errorRow) error {
	for _, e := range rows {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO ingest_errors (tenant_id, received_at, batch_index, message_id, type, code, reason, payload)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			e.tenantID, e.receivedAt, e.index, e.messageID, e.typ, e.code, e.reason, e.payload); err != nil {
			return fmt.Errorf("insert ingest error: %w", err)
		}
	}
	return nil
}

func nullMillis(ms int64) any {
	if ms == 0 {
		return nil
	}
	return ms
}
