// Package importer brings customers and orders in from the spreadsheets
// operators already have (CSV in UTF-8 or GBK, XLSX) and exports the customer
// list back out.
//
// An import is a job the console's wizard walks through: upload (the file is
// kept in the database, its header row found and a column mapping suggested)
// → mapping → dry run (every row validated, nothing written) → run (rows
// resolved through One ID in chunks, progress visible, resumable after a
// crash). Every row carries the message id "import:<file sha256>:<row>", and
// the same identifiers find the same profiles, so importing a file again
// changes nothing.
package importer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Job statuses.
const (
	StatusUploaded  = "uploaded"  // mapping may change; nothing validated yet
	StatusDryRun    = "dry_run"   // validated; the report is on the job
	StatusRunning   = "running"   // queued or being processed by a worker
	StatusDone      = "done"      // every row processed (some may have failed)
	StatusFailed    = "failed"    // stopped by an error; running it again resumes
	StatusCancelled = "cancelled" // stopped by an operator
)

// Phases of row errors.
const (
	PhaseDryRun = "dry_run"
	PhaseRun    = "run"
)

// Defaults of Options.
const (
	DefaultMaxFileBytes    = 50 << 20
	DefaultChunkSize       = 500
	DefaultLease           = time.Minute
	DefaultPoll            = 5 * time.Second
	DefaultMaxStoredErrors = 10_000
	previewRows            = 5
	reportErrors           = 100
	headerSearchRows       = 20
	maxColumns             = 500
)

// Options tune a Service; zero values mean the defaults.
type Options struct {
	MaxFileBytes    int64         // largest accepted file
	ChunkSize       int           // rows per transaction
	Lease           time.Duration // how long a worker owns a job without renewing
	Poll            time.Duration // how often idle workers look for queued jobs
	MaxStoredErrors int           // row errors kept per job and phase (counts stay exact)
	Now             func() time.Time
	// Orders writes imported orders; nil turns order imports off.
	Orders OrderWriter
}

// Service runs imports and exports.
type Service struct {
	db        *db.DB
	customers *customer.Service
	tenants   *tenant.Service
	orders    OrderWriter
	log       *slog.Logger
	o         Options
	owner     string        // this process's lease owner id
	wake      chan struct{} // nudges the worker when a job is queued here
}

// NewService returns an import service writing customers through One ID.
func NewService(d *db.DB, customers *customer.Service, tenants *tenant.Service, log *slog.Logger, o Options) *Service {
	if log == nil {
		log = slog.Default()
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.MaxStoredErrors <= 0 {
		o.MaxStoredErrors = DefaultMaxStoredErrors
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return &Service{db: d, customers: customers, tenants: tenants, orders: o.Orders, log: log, o: o,
		owner: hex.EncodeToString(b), wake: make(chan struct{}, 1)}
}

// MaxFileBytes is the largest file an upload may carry.
func (s *Service) MaxFileBytes() int64 { return s.o.MaxFileBytes }

// TooLarge is the error for a file over the limit.
func (s *Service) TooLarge() error {
	return errs.E(errs.TooLarge, "file_too_large", "the file is over the %d MB limit (%d bytes): split it into smaller files",
		s.o.MaxFileBytes>>20, s.o.MaxFileBytes)
}

// Job is one import: a file, its mapping and its progress.
type Job struct {
	ID              int64      `json:"id"`
	Kind            string     `json:"kind" enum:"customers,orders"`
	FileName        string     `json:"file_name"`
	Format          string     `json:"format" enum:"csv,xlsx"`
	Encoding        string     `json:"encoding,omitempty" doc:"The text encoding detected in a CSV: utf-8, gb18030 (GBK) or utf-16."`
	Size            int64      `json:"size" doc:"File size in bytes."`
	SHA256          string     `json:"sha256" doc:"SHA-256 of the file, hex."`
	HeaderRow       int64      `json:"header_row" doc:"The row (1-based) read as the header; rows above it (titles) are skipped."`
	Columns         []Column   `json:"columns" nullable:"false"`
	Preview         [][]string `json:"preview" nullable:"false" doc:"The first data rows, cell by cell (phones masked unless the caller may see personal data)."`
	Mapping         Mapping    `json:"mapping" doc:"Column header → target: a field, trait:NAME, or \"\" to ignore."`
	Source          string     `json:"source" doc:"The source recorded for rows without a source column (customers: first source; orders: the channel)."`
	Status          string     `json:"status" enum:"uploaded,dry_run,running,done,failed,cancelled"`
	RowsTotal       int64      `json:"rows_total" doc:"Data rows in the file (blank rows aside)."`
	RowsProcessed   int64      `json:"rows_processed"`
	RowsOK          int64      `json:"rows_ok"`
	RowsFailed      int64      `json:"rows_failed"`
	Progress        int        `json:"progress" doc:"Percent of rows processed, 0–100."`
	DryRun          *Report    `json:"dry_run,omitempty" doc:"The last dry run's report."`
	Error           string     `json:"error,omitempty" doc:"Why the job failed or what went wrong with rows."`
	Warnings        []string   `json:"warnings" nullable:"false"`
	PreviousImports []Previous `json:"previous_imports" nullable:"false" doc:"Earlier jobs of this workspace with the same file."`
	CreatedBy       string     `json:"created_by"`
	CreatedAt       time.Time  `json:"created_at"`
	StartedAt       time.Time  `json:"started_at,omitzero"`
	FinishedAt      time.Time  `json:"finished_at,omitzero"`

	observedAt int64
}

// Previous is an earlier import of the same file.
type Previous struct {
	ID         int64     `json:"id"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Report is what a dry run found.
type Report struct {
	Rows         int64            `json:"rows" doc:"Data rows checked."`
	Valid        int64            `json:"valid" doc:"Rows that would be imported."`
	Invalid      int64            `json:"invalid" doc:"Rows with at least one error."`
	ErrorsByCode map[string]int64 `json:"errors_by_code" doc:"How many errors of each code."`
	Errors       []RowError       `json:"errors" nullable:"false" doc:"The first errors; list them all with GET /imports/{id}/errors?phase=dry_run."`
	FinishedAt   time.Time        `json:"finished_at"`
}

// RowError is one problem with one row.
type RowError struct {
	Row     int64  `json:"row" doc:"The row number as a spreadsheet program shows it."`
	Column  string `json:"column,omitempty" doc:"The column header, when one column is at fault."`
	Code    string `json:"code" doc:"Stable machine-readable code, e.g. invalid_phone, invalid_date, no_identifier."`
	Message string `json:"message"`
}

// Upload is a file to import.
type Upload struct {
	Kind     string
	FileName string
	Data     []byte
}

const jobCols = `id, kind, file_name, file_format, file_encoding, file_size, sha256, header_row, columns, preview, mapping, source, status,
	rows_total, rows_processed, rows_ok, rows_failed, dry_run, error, observed_at, created_by, created_at, started_at, finished_at`

func scanJob(row interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var cols, preview, mapping, report string
	var created int64
	var started, finished sql.NullInt64
	err := row.Scan(&j.ID, &j.Kind, &j.FileName, &j.Format, &j.Encoding, &j.Size, &j.SHA256, &j.HeaderRow, &cols, &preview, &mapping, &j.Source, &j.Status,
		&j.RowsTotal, &j.RowsProcessed, &j.RowsOK, &j.RowsFailed, &report, &j.Error, &j.observedAt, &j.CreatedBy, &created, &started, &finished)
	if err != nil {
		return j, err
	}
	// These documents are written by this package only.
	for _, d := range []struct {
		doc string
		v   any
	}{{cols, &j.Columns}, {preview, &j.Preview}, {mapping, &j.Mapping}} {
		if err := json.Unmarshal([]byte(d.doc), d.v); err != nil {
			return j, fmt.Errorf("importer: damaged job %d: %w", j.ID, err)
		}
	}
	if report != "" {
		j.DryRun = new(Report)
		if err := json.Unmarshal([]byte(report), j.DryRun); err != nil {
			return j, fmt.Errorf("importer: damaged report of job %d: %w", j.ID, err)
		}
	}
	j.CreatedAt, j.StartedAt, j.FinishedAt = db.FromMillis(created), db.NullMillis(started), db.NullMillis(finished)
	if j.RowsTotal > 0 {
		j.Progress = int(min(100, j.RowsProcessed*100/j.RowsTotal))
	} else if j.Status == StatusDone {
		j.Progress = 100
	}
	j.Warnings, j.PreviousImports = []string{}, []Previous{}
	return j, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain structs, slices and maps of strings get here.
		panic(fmt.Sprintf("importer: marshal: %v", err))
	}
	return string(b)
}

// Upload stores a file as a new job: it finds the header row, suggests a
// mapping and counts the rows. Nothing is imported yet.
func (s *Service) Upload(ctx context.Context, p tenant.Principal, in Upload) (Job, error) {
	if err := p.Require(tenant.PermCustomersWrite); err != nil {
		return Job{}, err
	}
	if !slices.Contains(Kinds(), in.Kind) {
		return Job{}, errs.Field("kind", "invalid_kind", "kind must be customers or orders")
	}
	if in.Kind == KindOrders && s.orders == nil {
		return Job{}, errs.E(errs.Invalid, "orders_unavailable", "order imports are not available on this server")
	}
	if int64(len(in.Data)) > s.o.MaxFileBytes {
		return Job{}, s.TooLarge()
	}
	name := path.Base(strings.ReplaceAll(strings.TrimSpace(in.FileName), `\`, "/"))
	if name == "." || name == "/" || name == "" {
		name = "upload"
	}
	if !utf8.ValidString(name) || len(name) > 255 {
		return Job{}, errs.Field("filename", "invalid_filename", "the file name must be UTF-8 and at most 255 bytes")
	}
	format, encoding, err := sniff(in.Data)
	if err != nil {
		return Job{}, err
	}
	scan, err := scanFile(in.Kind, in.Data, format, encoding)
	if err != nil {
		return Job{}, err
	}
	sum := sha256.Sum256(in.Data)
	j := Job{Kind: in.Kind, FileName: name, Format: format, Encoding: encoding, Size: int64(len(in.Data)), SHA256: hex.EncodeToString(sum[:]),
		HeaderRow: scan.headerRow, Columns: scan.columns, Preview: scan.preview, Mapping: suggestMapping(in.Kind, scan.columns),
		Status: StatusUploaded, RowsTotal: scan.rows, CreatedBy: p.Name}
	now := s.o.Now().UTC()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		// Rows of a file imported before are observed at the time of its first
		// import, so importing it again does not even move last-seen times.
		var first sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT min(observed_at) FROM import_jobs WHERE tenant_id = $1 AND sha256 = $2`,
			p.TenantID, j.SHA256).Scan(&first); err != nil {
			return fmt.Errorf("importer: unable to look up earlier imports: %w", err)
		}
		j.observedAt = db.Millis(now)
		if first.Valid {
			j.observedAt = first.Int64
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO import_jobs (tenant_id, kind, file_name, file_format, file_encoding, file_size, sha256,
			  header_row, columns, preview, mapping, source, status, rows_total, observed_at, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '', $12, $13, $14, $15, $16, $16) RETURNING id`,
			p.TenantID, j.Kind, j.FileName, j.Format, j.Encoding, j.Size, j.SHA256, j.HeaderRow, mustJSON(j.Columns), mustJSON(j.Preview),
			mustJSON(j.Mapping), j.Status, j.RowsTotal, j.observedAt, j.CreatedBy, db.Millis(now)).Scan(&j.ID); err != nil {
			return fmt.Errorf("importer: unable to create job: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO import_files (tenant_id, job_id, content) VALUES ($1, $2, $3)`,
			p.TenantID, j.ID, in.Data); err != nil {
			return fmt.Errorf("importer: unable to store file: %w", err)
		}
		return s.tenants.Audit(ctx, tx, p, "import.upload", "import_job", fmt.Sprint(j.ID),
			fmt.Sprintf("%s import of %s (%d rows, sha256 %s)", j.Kind, j.FileName, j.RowsTotal, j.SHA256[:12]))
	})
	if err != nil {
		return Job{}, err
	}
	return s.Job(ctx, p.TenantID, j.ID, p.Can(tenant.PermPIIRead))
}

// fileScan is what an upload learns by reading the whole file once.
type fileScan struct {
	headerRow int64
	columns   []Column
	preview   [][]string
	rows      int64
}

// scanFile finds the header (the row among the first ones naming the most
// known fields; else the first non-blank row), collects samples and counts
// the data rows.
func scanFile(kind string, data []byte, format, encoding string) (fileScan, error) {
	t, err := openTable(data, format, encoding)
	if err != nil {
		return fileScan{}, err
	}
	defer t.Close()
	var head []dataRow
	var sc fileScan
	for len(head) < headerSearchRows {
		cells, no, err := t.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fileScan{}, err
		}
		if !blank(cells) {
			head = append(head, dataRow{no: no, cells: cells})
		}
	}
	if len(head) == 0 {
		return fileScan{}, errs.Field("file", "empty_file", "the file has no rows")
	}
	best, bestScore := 0, -1
	for i, r := range head {
		if n := headerScore(kind, r.cells); n > bestScore {
			best, bestScore = i, n
		}
	}
	if bestScore == 0 {
		best = 0
	}
	header := head[best]
	if len(header.cells) > maxColumns {
		return fileScan{}, errs.Field("file", "too_many_columns", "the header row (row %d) has %d columns; at most %d are supported", header.no, len(header.cells), maxColumns)
	}
	sc.headerRow = header.no
	sc.columns = columnsOf(header.cells)
	sample := func(cells []string) {
		sc.rows++
		if len(sc.preview) < previewRows {
			row := make([]string, len(sc.columns))
			copy(row, cells)
			sc.preview = append(sc.preview, row)
			for i := range sc.columns {
				sc.columns[i].Samples = append(sc.columns[i].Samples, row[i])
			}
		}
	}
	for _, r := range head[best+1:] {
		sample(r.cells)
	}
	for {
		cells, _, err := t.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fileScan{}, err
		}
		if !blank(cells) {
			sample(cells)
		}
	}
	if sc.preview == nil {
		sc.preview = [][]string{}
	}
	return sc, nil
}

// Job returns one job of the workspace; showPII decides whether phones in
// its samples are shown.
func (s *Service) Job(ctx context.Context, tenantID, id int64, showPII bool) (Job, error) {
	j, err := s.job(ctx, s.db, tenantID, id)
	if err != nil {
		return Job{}, err
	}
	if err := s.annotate(ctx, tenantID, &j); err != nil {
		return Job{}, err
	}
	if !showPII {
		maskJob(&j)
	}
	return j, nil
}

func (s *Service) job(ctx context.Context, q db.Querier, tenantID, id int64) (Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, `SELECT `+jobCols+` FROM import_jobs WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, errs.NotFoundf("import", "no such import")
	}
	if err != nil {
		return Job{}, fmt.Errorf("importer: unable to fetch job: %w", err)
	}
	return j, nil
}

// annotate adds what other jobs say about this one: earlier imports of the
// same file.
func (s *Service) annotate(ctx context.Context, tenantID int64, j *Job) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, status, created_at, finished_at FROM import_jobs
		WHERE tenant_id = $1 AND sha256 = $2 AND id < $3 AND status IN ($4, $5, $6) ORDER BY id DESC LIMIT 10`,
		tenantID, j.SHA256, j.ID, StatusDone, StatusRunning, StatusFailed)
	if err != nil {
		return fmt.Errorf("importer: unable to look up earlier imports: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pr Previous
		var created int64
		var finished sql.NullInt64
		if err := rows.Scan(&pr.ID, &pr.Status, &created, &finished); err != nil {
			return fmt.Errorf("importer: unable to read earlier import: %w", err)
		}
		pr.CreatedAt, pr.FinishedAt = db.FromMillis(created), db.NullMillis(finished)
		j.PreviousImports = append(j.PreviousImports, pr)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("importer: unable to look up earlier imports: %w", err)
	}
	if len(j.PreviousImports) > 0 && (j.Status == StatusUploaded || j.Status == StatusDryRun) {
		pr := j.PreviousImports[0]
		j.Warnings = append(j.Warnings, fmt.Sprintf("this file was already imported on %s (import %d, %s): importing it again changes nothing",
			pr.CreatedAt.Format(time.DateOnly), pr.ID, pr.Status))
	}
	return nil
}

// maskJob masks phone numbers in a job's samples and preview.
func maskJob(j *Job) {
	mask := func(v string) string {
		if p, err := customer.NormalizePhone(v); err == nil {
			return pii.MaskPhone(p)
		}
		return v
	}
	for i := range j.Columns {
		for k, v := range j.Columns[i].Samples {
			j.Columns[i].Samples[k] = mask(v)
		}
	}
	for _, row := range j.Preview {
		for k, v := range row {
			row[k] = mask(v)
		}
	}
}

// Jobs lists the workspace's jobs, newest first.
func (s *Service) Jobs(ctx context.Context, tenantID int64, r page.Request, showPII bool) (page.Page[Job], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[Job]{}, err
	}
	q := `SELECT ` + jobCols + ` FROM import_jobs WHERE tenant_id = $1`
	args := []any{tenantID}
	if ok {
		q += ` AND id < $2`
		args = append(args, after)
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[Job]{}, fmt.Errorf("importer: unable to list jobs: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return page.Page[Job]{}, fmt.Errorf("importer: unable to read job: %w", err)
		}
		if !showPII {
			maskJob(&j)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Job]{}, fmt.Errorf("importer: unable to list jobs: %w", err)
	}
	return page.Trim(out, r, func(j Job) string { return page.ByID(j.ID) }), nil
}

// MappingInput changes how a job reads its columns.
type MappingInput struct {
	Mapping Mapping
	Source  *string // nil: unchanged
}

// SetMapping replaces a job's mapping (and default source). It is possible
// until the job runs; a dry run's report is discarded.
func (s *Service) SetMapping(ctx context.Context, p tenant.Principal, id int64, in MappingInput) (Job, error) {
	if err := p.Require(tenant.PermCustomersWrite); err != nil {
		return Job{}, err
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		j, err := s.job(ctx, tx, p.TenantID, id)
		if err != nil {
			return err
		}
		if j.Status != StatusUploaded && j.Status != StatusDryRun {
			return errs.E(errs.Conflict, "import_started", "the import has already run (%s): upload the file again to import it differently", j.Status)
		}
		if in.Mapping == nil {
			in.Mapping = j.Mapping
		}
		if err := in.Mapping.validate(j.Kind, j.Columns); err != nil {
			return err
		}
		// Columns left out of the mapping are ignored.
		full := Mapping{}
		for _, c := range j.Columns {
			full[c.Header] = in.Mapping[c.Header]
		}
		source := j.Source
		if in.Source != nil {
			source = strings.TrimSpace(*in.Source)
			if err := validSource(j.Kind, source); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE import_jobs SET mapping = $3, source = $4, status = $5, dry_run = '', updated_at = $6
			WHERE tenant_id = $1 AND id = $2`, p.TenantID, id, mustJSON(full), source, StatusUploaded, db.Millis(s.o.Now())); err != nil {
			return fmt.Errorf("importer: unable to save mapping: %w", err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM import_row_errors WHERE tenant_id = $1 AND job_id = $2 AND phase = $3`, p.TenantID, id, PhaseDryRun)
		if err != nil {
			return fmt.Errorf("importer: unable to clear dry-run errors: %w", err)
		}
		return nil
	})
	if err != nil {
		return Job{}, err
	}
	return s.Job(ctx, p.TenantID, id, p.Can(tenant.PermPIIRead))
}

func validSource(kind, source string) error {
	if len(source) > 64 {
		return errs.Field("source", "invalid_source", "the source has at most 64 bytes")
	}
	if kind == KindOrders && source != "" {
		return validOrderSource(source)
	}
	return nil
}

// RowErrors lists the row errors of a job's phase, in row order.
func (s *Service) RowErrors(ctx context.Context, tenantID, id int64, phase string, r page.Request) (page.Page[RowError], error) {
	if phase != PhaseDryRun && phase != PhaseRun {
		return page.Page[RowError]{}, errs.Field("phase", "invalid_phase", "phase must be dry_run or run")
	}
	if _, err := s.job(ctx, s.db, tenantID, id); err != nil {
		return page.Page[RowError]{}, err
	}
	var afterRow, afterSeq int64
	q := `SELECT row_no, seq, column_name, code, message FROM import_row_errors WHERE tenant_id = $1 AND job_id = $2 AND phase = $3`
	args := []any{tenantID, id, phase}
	if r.Cursor != "" {
		if err := page.Decode(r.Cursor, &afterRow, &afterSeq); err != nil {
			return page.Page[RowError]{}, err
		}
		q += ` AND (row_no > $4 OR (row_no = $4 AND seq > $5))`
		args = append(args, afterRow, afterSeq)
	}
	q += fmt.Sprintf(` ORDER BY row_no, seq LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[RowError]{}, fmt.Errorf("importer: unable to list row errors: %w", err)
	}
	defer rows.Close()
	type keyed struct {
		RowError
		seq int64
	}
	var out []keyed
	for rows.Next() {
		var e keyed
		if err := rows.Scan(&e.Row, &e.seq, &e.Column, &e.Code, &e.Message); err != nil {
			return page.Page[RowError]{}, fmt.Errorf("importer: unable to read row error: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return page.Page[RowError]{}, fmt.Errorf("importer: unable to list row errors: %w", err)
	}
	pg := page.Trim(out, r, func(e keyed) string { return page.Encode(e.Row, e.seq) })
	res := page.Page[RowError]{Items: make([]RowError, 0, len(pg.Items)), Next: pg.Next}
	for _, e := range pg.Items {
		res.Items = append(res.Items, e.RowError)
	}
	return res, nil
}

// file loads a job's bytes.
func (s *Service) file(ctx context.Context, tenantID, id int64) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT content FROM import_files WHERE tenant_id = $1 AND job_id = $2`, tenantID, id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.E(errs.Conflict, "file_gone", "the file of this import is no longer stored: upload it again")
	}
	if err != nil {
		return nil, fmt.Errorf("importer: unable to load file of job %d: %w", id, err)
	}
	return b, nil
}

// insertRowErrors stores row errors of a phase, up to the limit per job.
func (s *Service) insertRowErrors(ctx context.Context, tx *sql.Tx, tenantID, id int64, phase string, stored *int, es []RowError) error {
	seq := map[int64]int{}
	for _, e := range es {
		if *stored >= s.o.MaxStoredErrors {
			return nil
		}
		seq[e.Row]++
		if _, err := tx.ExecContext(ctx, `INSERT INTO import_row_errors (tenant_id, job_id, phase, row_no, seq, column_name, code, message)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, tenantID, id, phase, e.Row, seq[e.Row], e.Column, e.Code, truncate(e.Message, 500)); err != nil {
			return fmt.Errorf("importer: unable to record row error: %w", err)
		}
		*stored++
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
