// Package db opens Siyu's database (embedded SQLite or PostgreSQL), applies the
// embedded migrations, and holds the small dialect shim for the places where the
// two engines' SQL differs.
//
// Conventions every domain package follows:
//   - placeholders are $1, $2, … on both engines;
//   - times are BIGINT Unix milliseconds in UTC (see Millis / FromMillis);
//   - booleans are BOOLEAN (SQLite stores 0/1), JSON documents are TEXT;
//   - every table has tenant_id and every query filters by it.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect names the SQL engine behind a DB.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is a database handle that knows its dialect.
type DB struct {
	*sql.DB
	Dialect Dialect
	// Location is a human-readable description of where the data lives (a file
	// path, or the Postgres host/database with no password).
	Location string
}

// Querier is what *sql.DB, *sql.Tx and *DB have in common; store functions take
// it so they run inside or outside a transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens dsn: a postgres:// URL, or otherwise a SQLite file path (created
// with its directory if missing). It checks the connection before returning.
func Open(ctx context.Context, dsn string) (*DB, error) {
	var d *DB
	if IsPostgres(dsn) {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("db: unable to parse PostgreSQL URL: %w", err)
		}
		sdb := stdlib.OpenDB(*cfg)
		sdb.SetMaxOpenConns(32)
		sdb.SetMaxIdleConns(16)
		sdb.SetConnMaxIdleTime(5 * time.Minute)
		d = &DB{DB: sdb, Dialect: Postgres, Location: fmt.Sprintf("postgres %s/%s", cfg.Host, cfg.Database)}
	} else {
		path := strings.TrimPrefix(dsn, "sqlite://")
		if path == "" {
			return nil, errors.New("db: empty database path")
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("db: unable to create directory for %s: %w", path, err)
			}
		}
		q := url.Values{}
		for _, p := range []string{
			"busy_timeout(10000)",
			"journal_mode(WAL)",
			"foreign_keys(1)",
			// FULL: a commit that returned is on disk, even across power loss.
			"synchronous(FULL)",
		} {
			q.Add("_pragma", p)
		}
		// BEGIN IMMEDIATE takes the write lock at the start of a transaction, so
		// two writers never deadlock upgrading a read lock.
		q.Set("_txlock", "immediate")
		sdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("db: unable to open SQLite %s: %w", path, err)
		}
		sdb.SetMaxOpenConns(8)
		sdb.SetMaxIdleConns(8)
		d = &DB{DB: sdb, Dialect: SQLite, Location: path}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.PingContext(pctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: unable to reach %s: %w", d.Location, err)
	}
	return d, nil
}

// Tx runs fn in a transaction, committing when it returns nil and rolling back
// otherwise (also on panic).
func (d *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: unable to begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("db: unable to commit: %w", err)
	}
	return nil
}

// SkipLocked returns the row-locking suffix for a work-queue SELECT: workers on
// several nodes each take different rows on PostgreSQL. SQLite has one writer
// and needs none.
func (d *DB) SkipLocked() string {
	if d.Dialect == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// CaseInsensitiveLike returns "col ILIKE $n" on PostgreSQL and "col LIKE $n" on
// SQLite (whose LIKE already ignores ASCII case).
func (d *DB) CaseInsensitiveLike(col string, n int) string {
	if d.Dialect == Postgres {
		return fmt.Sprintf("%s ILIKE $%d", col, n)
	}
	return fmt.Sprintf("%s LIKE $%d", col, n)
}

// IsUniqueViolation reports whether err is a unique-constraint violation on
// either engine.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || // SQLite
		strings.Contains(s, "SQLSTATE 23505") // PostgreSQL
}

// Millis converts t to the stored form: Unix milliseconds, UTC.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis converts a stored time back; 0 is the zero time.
func FromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// NullMillis converts a nullable stored time; NULL and 0 are the zero time.
func NullMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return FromMillis(v.Int64)
}

// LikeEscape escapes %, _ and \ so s matches literally inside a LIKE pattern
// written with ESCAPE '\'.
func LikeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}
