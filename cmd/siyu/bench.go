package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/db"
)

// benchCmd runs Siyu's benchmarks; figures go to docs/benchmarks.md.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "audience" {
		fmt.Fprintln(stderr, "Usage: siyu bench audience [--customers N] [--queries N] [--sql-runs N] [--db DSN ...]")
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("bench audience", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o audience.BenchOptions
	fs.IntVar(&o.Customers, "customers", 1_000_000, "synthetic customers")
	fs.IntVar(&o.Queries, "queries", 500, "engine counts to time")
	fs.IntVar(&o.SQLRuns, "sql-runs", 5, "SQL counts to time per database")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of each rebuild to this file (the engine's name is added)")
	dbs := fs.String("db", "", "comma-separated databases to compare with (a SQLite path and/or a postgres:// URL); bench tables are created there")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dbs != "" {
		o.DSNs = strings.Split(*dbs, ",")
	}
	o.Sources = func(d *db.DB) audience.Sources { return app.AudienceSourcesOn(d, slog.New(slog.DiscardHandler)) }
	return audience.RunBench(ctx, o, stdout)
}
