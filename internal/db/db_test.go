package db_test

import (
	"context"
	"database/sql"
	"io/fs"
	"slices"
	"testing"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
)

// Both dialects must carry the same migration versions, or a deployment that
// moves from SQLite to PostgreSQL would end up with a different schema.
func TestMigrationVersionsMatchAcrossDialects(t *testing.T) {
	names := func(d db.Dialect) []string {
		fsys, err := db.MigrationsFS(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fs.Glob(fsys, "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	lite, pg := names(db.SQLite), names(db.Postgres)
	if len(lite) == 0 {
		t.Fatal("no migrations found")
	}
	if !slices.Equal(lite, pg) {
		t.Fatalf("migration files differ:\nsqlite:   %v\npostgres: %v", lite, pg)
	}
}

func TestMigrateIsIdempotentAndReportsVersion(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		cur, latest, err := d.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cur != latest || latest == 0 {
			t.Fatalf("after migrate: current %d, latest %d", cur, latest)
		}
		again, err := d.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 {
			t.Fatalf("second migrate applied %d migrations", len(again))
		}
	})
}

func TestTxRollsBackOnError(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		err := d.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO workspaces (slug, name, created_at) VALUES ($1, $2, $3)`, "rb", "Rollback", 1); err != nil {
				return err
			}
			return context.Canceled
		})
		if err != context.Canceled {
			t.Fatalf("Tx returned %v", err)
		}
		var n int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM workspaces WHERE slug = $1`, "rb").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("rolled-back row is visible")
		}
	})
}
