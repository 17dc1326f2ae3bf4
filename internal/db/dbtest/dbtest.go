// Package dbtest opens a fresh, migrated database per test on every engine the
// environment offers: SQLite always, PostgreSQL whenever SIYU_TEST_POSTGRES
// holds a connection URL (CI always sets it). Store tests run on real databases,
// never mocks.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/db"
)

// EnvPostgres names the variable holding the PostgreSQL URL for tests.
const EnvPostgres = "SIYU_TEST_POSTGRES"

// Each runs fn as a subtest once per available engine ("sqlite", "postgres"),
// each with its own fresh migrated database.
func Each(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	for _, e := range Engines() {
		t.Run(string(e), func(t *testing.T) {
			fn(t, Open(t, e))
		})
	}
}

// Engines lists the engines tests should cover here.
func Engines() []db.Dialect {
	if os.Getenv(EnvPostgres) != "" {
		return []db.Dialect{db.SQLite, db.Postgres}
	}
	return []db.Dialect{db.SQLite}
}

// DSN returns a data source for a fresh, empty database of the given engine,
// dropped when the test ends. It is what Open migrates; tests that start the
// whole server pass it as --db.
func DSN(t testing.TB, engine db.Dialect) string {
	t.Helper()
	if engine == db.SQLite {
		return filepath.Join(t.TempDir(), "siyu.db")
	}
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Fatalf("dbtest: %s is not set", EnvPostgres)
	}
	// A schema per test keeps tests isolated and is far faster than a database
	// per test; search_path in the URL makes every connection use it.
	schema := "t_" + randomHex(8)
	admin, err := db.Open(context.Background(), base)
	if err != nil {
		t.Fatalf("dbtest: open PostgreSQL: %v", err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("dbtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	return withSearchPath(t, base, schema)
}

// Open returns a fresh migrated database of the given engine, closed when the
// test ends.
func Open(t testing.TB, engine db.Dialect) *db.DB {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, DSN(t, engine))
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", engine, err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatalf("dbtest: migrate %s: %v", engine, err)
	}
	return d
}

func withSearchPath(t testing.TB, base, schema string) string {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("dbtest: parse %s: %v", EnvPostgres, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	t.Fatalf("dbtest: %s must be a postgres:// URL", EnvPostgres)
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("dbtest: random: %v", err))
	}
	return hex.EncodeToString(b)
}
