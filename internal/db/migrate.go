package db

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// Migrations holds one folder per dialect; both carry the same versions, each
// written in its engine's SQL (a test fails if the versions diverge).
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// MigrationsFS returns the migrations of one dialect.
func MigrationsFS(d Dialect) (fs.FS, error) {
	return fs.Sub(migrations, "migrations/"+string(d))
}

// MigrationResult describes one applied migration.
type MigrationResult struct {
	Version int64
	Source  string
}

func (d *DB) provider() (*goose.Provider, error) {
	fsys, err := MigrationsFS(d.Dialect)
	if err != nil {
		return nil, fmt.Errorf("db: migrations for %s: %w", d.Dialect, err)
	}
	gd := goose.DialectSQLite3
	if d.Dialect == Postgres {
		gd = goose.DialectPostgres
	}
	// Migrations written on parallel branches may land with a lower version
	// than one already applied; each is independent, so apply it anyway.
	p, err := goose.NewProvider(gd, d.DB, fsys, goose.WithAllowOutofOrder(true))
	if err != nil {
		return nil, fmt.Errorf("db: unable to load migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration and returns what it applied.
func (d *DB) Migrate(ctx context.Context) ([]MigrationResult, error) {
	p, err := d.provider()
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: migration failed: %w", err)
	}
	out := make([]MigrationResult, 0, len(res))
	for _, r := range res {
		out = append(out, MigrationResult{Version: r.Source.Version, Source: r.Source.Path})
	}
	return out, nil
}

// SchemaVersion returns the current and the latest known migration versions.
func (d *DB) SchemaVersion(ctx context.Context) (current, latest int64, err error) {
	p, err := d.provider()
	if err != nil {
		return 0, 0, err
	}
	current, err = p.GetDBVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("db: unable to read schema version: %w", err)
	}
	srcs := p.ListSources()
	if len(srcs) > 0 {
		latest = srcs[len(srcs)-1].Version
	}
	return current, latest, nil
}
