package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/importer"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// mapFlags collects repeated --map COLUMN=FIELD flags.
type mapFlags map[string]string

func (m mapFlags) String() string { return fmt.Sprint(map[string]string(m)) }

func (m mapFlags) Set(v string) error {
	col, field, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(col) == "" {
		return fmt.Errorf("--map takes COLUMN=FIELD (FIELD empty to ignore the column), got %q", v)
	}
	m[strings.TrimSpace(col)] = strings.TrimSpace(field)
	return nil
}

func importFlags(out io.Writer, cfg *app.Config) (*flag.FlagSet, *importOptions, error) {
	fs, err := serveFlags("import", out, cfg)
	if err != nil {
		return nil, nil, err
	}
	o := &importOptions{mapping: mapFlags{}}
	fs.StringVar(&o.workspace, "workspace", "", "slug of the workspace to import into (required)")
	fs.StringVar(&o.kind, "kind", importer.KindCustomers, "customers or orders")
	fs.StringVar(&o.file, "file", "", "the CSV or XLSX file (required)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "validate every row and report errors; write nothing")
	fs.Var(o.mapping, "map", "COLUMN=FIELD: map a column (by its header) to a field, trait:NAME, or nothing; repeatable, overrides the suggested mapping")
	fs.StringVar(&o.source, "source", "", "customers: the first source of rows without a source column (default import); orders: the channel of rows without one")
	fs.Usage = func() {
		fmt.Fprint(out, "Usage: siyu import --workspace SLUG --file FILE [--kind customers|orders] [--dry-run] [--map COLUMN=FIELD …] [--db …]\n\n"+
			"Imports customers or orders from a CSV (UTF-8 or GBK) or XLSX file, as the console's import wizard does: the header row\n"+
			"is found, a mapping suggested (printed first), every row validated, then imported in chunks with progress.\n"+
			"Importing the same file again changes nothing. Exits 1 when rows fail.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs, o, nil
}

type importOptions struct {
	workspace, kind, file, source string
	dryRun                        bool
	mapping                       mapFlags
}

func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	fs, o, err := importFlags(stderr, &cfg)
	if err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.workspace == "" || o.file == "" {
		fs.Usage()
		return fmt.Errorf("--workspace and --file are required")
	}
	data, err := os.ReadFile(o.file)
	if err != nil {
		return fmt.Errorf("unable to read the file: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(ctx, cfg, log, app.Options{Version: appVersion()})
	if err != nil {
		return err
	}
	defer a.Close()
	w, err := a.Tenant.WorkspaceBySlug(ctx, o.workspace)
	if err != nil {
		return err
	}
	p := tenant.System(w.ID)
	p.Name = "siyu import"
	svc := a.Imports
	job, err := svc.Upload(ctx, p, importer.Upload{Kind: o.kind, FileName: filepath.Base(o.file), Data: data})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "import %d: %s, %s%s, header on row %d, %d rows\n", job.ID, job.FileName, job.Format, encodingNote(job.Encoding), job.HeaderRow, job.RowsTotal)
	for _, warn := range job.Warnings {
		fmt.Fprintln(stdout, "warning:", warn)
	}
	mapping := job.Mapping
	for col, field := range o.mapping {
		if _, ok := mapping[col]; !ok {
			return fmt.Errorf("--map %s: the file has no column %q (columns: %s)", col, col, headers(job))
		}
		mapping[col] = field
	}
	var source *string
	if o.source != "" {
		source = &o.source
	}
	if job, err = svc.SetMapping(ctx, p, job.ID, importer.MappingInput{Mapping: mapping, Source: source}); err != nil {
		printMapping(stdout, job, mapping)
		return err
	}
	printMapping(stdout, job, job.Mapping)

	if o.dryRun {
		job, err = svc.DryRun(ctx, p, job.ID)
		if err != nil {
			return err
		}
		r := job.DryRun
		fmt.Fprintf(stdout, "dry run: %d rows, %d valid, %d with errors\n", r.Rows, r.Valid, r.Invalid)
		var n int64
		for _, c := range r.ErrorsByCode {
			n += c
		}
		printRowErrors(stdout, r.Errors, n > int64(len(r.Errors)))
		if r.Invalid > 0 {
			return fmt.Errorf("%d rows have errors; nothing was written", r.Invalid)
		}
		return nil
	}
	job, err = svc.RunNow(ctx, p, job.ID, func(pr importer.Progress) {
		pct := int64(100)
		if pr.Total > 0 {
			pct = pr.Processed * 100 / pr.Total
		}
		fmt.Fprintf(stdout, "\r%d/%d rows (%d%%), %d imported, %d failed", pr.Processed, pr.Total, pct, pr.OK, pr.Failed)
	})
	fmt.Fprintln(stdout)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped by the operator: do not leave the job for a server to resume.
			if j, cerr := svc.Cancel(context.WithoutCancel(ctx), p, job.ID); cerr == nil {
				return fmt.Errorf("interrupted after %d of %d rows; import the same file again to finish (rows already imported stay as they are)", j.RowsProcessed, j.RowsTotal)
			}
		}
		return err
	}
	fmt.Fprintf(stdout, "%s: %d rows, %d imported, %d failed\n", job.Status, job.RowsProcessed, job.RowsOK, job.RowsFailed)
	if job.Status != importer.StatusDone {
		return fmt.Errorf("the import is %s: %s", job.Status, job.Error)
	}
	if job.RowsFailed > 0 {
		pg, err := svc.RowErrors(ctx, w.ID, job.ID, importer.PhaseRun, page.Request{Limit: 20})
		if err != nil {
			return err
		}
		printRowErrors(stdout, pg.Items, pg.Next != "")
		return fmt.Errorf("%d rows failed (all of them: GET /api/v1/imports/%d/errors)", job.RowsFailed, job.ID)
	}
	return nil
}

func encodingNote(enc string) string {
	if enc == "" {
		return ""
	}
	return " (" + enc + ")"
}

func headers(j importer.Job) string {
	var hs []string
	for _, c := range j.Columns {
		hs = append(hs, c.Header)
	}
	return strings.Join(hs, ", ")
}

func printMapping(out io.Writer, j importer.Job, m importer.Mapping) {
	fmt.Fprintln(out, "mapping:")
	for _, c := range j.Columns {
		target := m[c.Header]
		if target == "" {
			target = "(ignored)"
		}
		fmt.Fprintf(out, "  %-3s %-24s → %s\n", c.Letter, c.Header, target)
	}
}

func printRowErrors(out io.Writer, es []importer.RowError, more bool) {
	sort.SliceStable(es, func(i, k int) bool { return es[i].Row < es[k].Row })
	for _, e := range es {
		col := ""
		if e.Column != "" {
			col = " [" + e.Column + "]"
		}
		fmt.Fprintf(out, "  row %d%s %s: %s\n", e.Row, col, e.Code, e.Message)
	}
	if more {
		fmt.Fprintln(out, "  …")
	}
}
