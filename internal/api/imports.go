package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/importer"
	"github.com/siyu-dev/siyu/internal/tenant"
)

const importFlow = "An import is a job the console's wizard walks through: upload the file (POST /imports: its header row is found, " +
	"a mapping suggested and the first rows previewed) → adjust the mapping (PUT /imports/{id}/mapping) → dry run " +
	"(POST /imports/{id}/dry-run: every row validated, nothing written) → run (POST /imports/{id}/run, 202; poll " +
	"GET /imports/{id} for rows_processed/rows_total and progress). Row errors, with row numbers as a spreadsheet shows them, " +
	"are listed by GET /imports/{id}/errors. Importing the same file again changes nothing."

// ImportUploadInput is POST /imports. The file itself is the body, read by
// the operation's middleware (see uploadMiddleware) so that its size limit is
// enforced while reading.
type ImportUploadInput struct {
	Kind     string `query:"kind" enum:"customers,orders" default:"customers" doc:"What the file holds."`
	Filename string `query:"filename" maxLength:"255" doc:"The file's name, for a raw body (a multipart upload carries its own)."`
}

// ImportOutput is one import job.
type ImportOutput struct {
	Body importer.Job
}

// ImportPath names one import job.
type ImportPath struct {
	ID int64 `path:"id" doc:"The import's id."`
}

// ImportMappingInput is PUT /imports/{id}/mapping.
type ImportMappingInput struct {
	ImportPath
	Body struct {
		Mapping importer.Mapping `json:"mapping" doc:"Column header → target: a field (GET /imports/fields), \"trait:NAME\" for a custom trait (customers), or \"\" to ignore. Columns left out are ignored; omit the mapping to change only the source." example:"{\"姓名\":\"name\",\"手机号\":\"phone\",\"会员等级\":\"trait:会员等级\",\"备注\":\"\"}"`
		Source  *string          `json:"source,omitempty" maxLength:"64" doc:"Customers: the first source recorded for rows without a source column (default import). Orders: the channel of rows without a channel column (tmall, jd, douyin_shop, miniapp, offline_store, other)."`
	}
}

// ImportErrorsInput is GET /imports/{id}/errors.
type ImportErrorsInput struct {
	ImportPath
	PageParams
	Phase string `query:"phase" enum:"run,dry_run" doc:"Whose errors: the dry run's or the run's. Default: the run's once the job has run, else the dry run's."`
}

// ImportFieldsInput is GET /imports/fields.
type ImportFieldsInput struct {
	Kind string `query:"kind" enum:"customers,orders" default:"customers"`
}

// ImportFieldsOutput lists mapping targets.
type ImportFieldsOutput struct {
	Body struct {
		Fields []importer.Field `json:"fields" nullable:"false"`
	}
}

// CustomerExportInput is GET /customers/export.
type CustomerExportInput struct {
	Format     string `query:"format" enum:"csv,xlsx" default:"csv" doc:"csv (UTF-8 with a BOM, so Excel reads Chinese correctly) or xlsx."`
	Q          string `query:"q" maxLength:"100" doc:"As GET /customers: a name prefix, or a whole phone number."`
	Identifier string `query:"identifier" maxLength:"300" doc:"As GET /customers: KIND:VALUE." example:"user_id:u123"`
	Lang       string `query:"lang" enum:"en,zh-CN" default:"en" doc:"Language of the header row; an import recognises both."`
}

type uploadCtxKey struct{}

// upload is a file read from a request.
type upload struct {
	name, kind string
	data       []byte
}

func (a *API) registerImports() {
	if a.deps.Imports == nil {
		return
	}
	svc := a.deps.Imports
	limit := svc.MaxFileBytes()
	binary := &huma.Schema{Type: "string", Format: "binary"}
	register(a, huma.Operation{
		OperationID: "upload-import", Method: http.MethodPost, Path: "/imports", Tags: []string{"Imports"},
		Summary: "Upload a file to import", DefaultStatus: http.StatusCreated,
		Description: importFlow + fmt.Sprintf("\n\nSend the file as multipart/form-data (field `file`) or as the raw body with ?filename=. "+
			"CSV (UTF-8 with or without BOM, GBK/GB18030, UTF-16; comma, semicolon or tab separated) or XLSX (first sheet). "+
			"At most %d MB; a larger file is refused with 413 and code file_too_large. If the same file was imported before, "+
			"previous_imports and warnings say when.", limit>>20),
		// Not marked required: the middleware has consumed the body by the
		// time huma would check it.
		RequestBody: &huma.RequestBody{Content: map[string]*huma.MediaType{
			"multipart/form-data": {Schema: &huma.Schema{Type: "object", Required: []string{"file"}, Properties: map[string]*huma.Schema{
				"file": {Type: "string", Format: "binary", Description: "The CSV or XLSX file."},
				"kind": {Type: "string", Enum: []any{"customers", "orders"}, Description: "Overrides ?kind= when sent before the file."},
			}}},
			"text/csv":                 {Schema: binary},
			"application/octet-stream": {Schema: binary},
			"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {Schema: binary},
		}},
		Middlewares: huma.Middlewares{longRequest, a.uploadMiddleware(limit)},
		Errors:      []int{http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity},
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *ImportUploadInput) (*ImportOutput, error) {
		up, ok := ctx.Value(uploadCtxKey{}).(*upload)
		if !ok {
			return nil, errs.Field("body", "file_required", "send the file as the body or as the multipart field file")
		}
		kind := in.Kind
		if up.kind != "" {
			kind = up.kind
		}
		name := in.Filename
		if up.name != "" {
			name = up.name
		}
		j, err := svc.Upload(ctx, p, importer.Upload{Kind: kind, FileName: name, Data: up.data})
		if err != nil {
			return nil, err
		}
		return &ImportOutput{Body: j}, nil
	})
	register(a, huma.Operation{
		OperationID: "list-imports", Method: http.MethodGet, Path: "/imports", Tags: []string{"Imports"},
		Summary: "List imports", Description: "The workspace's imports, newest first.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[importer.Job], error) {
		pg, err := svc.Jobs(ctx, p.TenantID, in.Request(), p.Can(tenant.PermPIIRead))
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(j importer.Job) importer.Job { return j }), nil
	})
	register(a, huma.Operation{
		OperationID: "list-import-fields", Method: http.MethodGet, Path: "/imports/fields", Tags: []string{"Imports"},
		Summary:     "Mapping targets",
		Description: "The fields a column of an import can map to. Customer imports also take trait:NAME for any custom trait.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *ImportFieldsInput) (*ImportFieldsOutput, error) {
		out := &ImportFieldsOutput{}
		out.Body.Fields = importer.Fields(in.Kind)
		return out, nil
	})
	register(a, huma.Operation{
		OperationID: "get-import", Method: http.MethodGet, Path: "/imports/{id}", Tags: []string{"Imports"},
		Summary: "Get an import", Description: "The job with its columns, mapping, dry-run report and progress.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *ImportPath) (*ImportOutput, error) {
		j, err := svc.Job(ctx, p.TenantID, in.ID, p.Can(tenant.PermPIIRead))
		if err != nil {
			return nil, err
		}
		return &ImportOutput{Body: j}, nil
	})
	register(a, huma.Operation{
		OperationID: "set-import-mapping", Method: http.MethodPut, Path: "/imports/{id}/mapping", Tags: []string{"Imports"},
		Summary:     "Change an import's mapping",
		Description: "Replaces the mapping (and the default source) until the import runs. A previous dry run's report is discarded.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *ImportMappingInput) (*ImportOutput, error) {
		j, err := svc.SetMapping(ctx, p, in.ID, importer.MappingInput{Mapping: in.Body.Mapping, Source: in.Body.Source})
		if err != nil {
			return nil, err
		}
		return &ImportOutput{Body: j}, nil
	})
	register(a, huma.Operation{
		OperationID: "dry-run-import", Method: http.MethodPost, Path: "/imports/{id}/dry-run", Tags: []string{"Imports"},
		Summary: "Dry-run an import",
		Description: "Validates every row (identifiers, phones, dates, amounts) without writing anything and returns the job with its " +
			"report in dry_run: counts, errors by code, and the first row errors (all of them: GET /imports/{id}/errors?phase=dry_run).",
		Middlewares: huma.Middlewares{longRequest},
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *ImportPath) (*ImportOutput, error) {
		j, err := svc.DryRun(ctx, p, in.ID)
		if err != nil {
			return nil, err
		}
		return &ImportOutput{Body: j}, nil
	})
	register(a, huma.Operation{
		OperationID: "run-import", Method: http.MethodPost, Path: "/imports/{id}/run", Tags: []string{"Imports"},
		Summary: "Run an import", DefaultStatus: http.StatusAccepted,
		Description: "Queues the import; a worker processes it in chunks, each committed with the progress. Poll GET /imports/{id}. " +
			"A failed import runs again from where it stopped; one interrupted by a restart resumes by itself.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *ImportPath) (*ImportOutput, error) {
		j, err := svc.Start(ctx, p, in.ID)
		if err != nil {
			return nil, err
		}
		return &ImportOutput{Body: j}, nil
	})
	register(a, huma.Operation{
		OperationID: "cancel-import", Method: http.MethodPost, Path: "/imports/{id}/cancel", Tags: []string{"Imports"},
		Summary: "Cancel an import", Description: "Stops the import after the chunk in progress; rows already committed stay imported.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *ImportPath) (*ImportOutput, error) {
		j, err := svc.Cancel(ctx, p, in.ID)
		if err != nil {
			return nil, err
		}
		return &ImportOutput{Body: j}, nil
	})
	register(a, huma.Operation{
		OperationID: "list-import-errors", Method: http.MethodGet, Path: "/imports/{id}/errors", Tags: []string{"Imports"},
		Summary:     "List an import's row errors",
		Description: "Row errors in row order: row number, column, a stable code and a message.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *ImportErrorsInput) (*ListOutput[importer.RowError], error) {
		phase := in.Phase
		if phase == "" {
			j, err := svc.Job(ctx, p.TenantID, in.ID, false)
			if err != nil {
				return nil, err
			}
			phase = importer.PhaseRun
			if j.Status == importer.StatusUploaded || j.Status == importer.StatusDryRun {
				phase = importer.PhaseDryRun
			}
		}
		pg, err := svc.RowErrors(ctx, p.TenantID, in.ID, phase, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(e importer.RowError) importer.RowError { return e }), nil
	})
	register(a, huma.Operation{
		OperationID: "export-customers", Method: http.MethodGet, Path: "/customers/export", Tags: []string{"Customers"},
		Summary: "Export customers",
		Description: "The customer list with the same filter as GET /customers, as CSV or XLSX, streamed. Phones are masked unless " +
			"the key's role may see personal data. The file imports back unchanged (POST /imports). Exports are recorded in the audit log.",
		Responses: map[string]*huma.Response{"200": {Description: "The file.", Content: map[string]*huma.MediaType{
			"text/csv": {Schema: binary},
			"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {Schema: binary},
		}}},
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *CustomerExportInput) (*huma.StreamResponse, error) {
		ex, err := svc.NewExport(ctx, p, importer.ExportRequest{Search: in.Q, Identifier: in.Identifier, Format: in.Format, Lang: in.Lang})
		if err != nil {
			return nil, err
		}
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			_, w := humago.Unwrap(hctx)
			rc := http.NewResponseController(w)
			// A large export outlasts the server's write timeout.
			_ = rc.SetWriteDeadline(time.Now().Add(time.Hour))
			hctx.SetHeader("Content-Type", ex.ContentType())
			hctx.SetHeader("Content-Disposition", "attachment; filename="+strconv.Quote(ex.FileName)+"; filename*=UTF-8''"+url.PathEscape(ex.FileName))
			hctx.SetHeader("Cache-Control", "no-store")
			hctx.SetStatus(http.StatusOK)
			if err := ex.WriteTo(hctx.Context(), hctx.BodyWriter()); err != nil {
				a.deps.Log.ErrorContext(ctx, "api: customer export failed midway", "err", err)
				// Cut the connection so the client sees a broken download,
				// never a short file that looks complete.
				_ = rc.SetWriteDeadline(time.Unix(1, 0))
			}
		}}, nil
	})
}

// uploadMiddleware reads the file of an upload, multipart or raw, refusing
// more than limit bytes as soon as it is exceeded, and hands it to the handler
// in the context. It runs after authentication and checks the permission
// first, so no one without it can make the server read a large body.
func (a *API) uploadMiddleware(limit int64) func(huma.Context, func(huma.Context)) {
	fail := func(ctx huma.Context, err error) {
		prob := problemFor(ctx.Context(), a.deps.Log, err)
		prob.Instance = ctx.URL().Path
		_ = huma.WriteErr(a.API, ctx, prob.Status, prob.Detail, &codeCarrier{prob})
	}
	tooLarge := a.deps.Imports.TooLarge()
	return func(ctx huma.Context, next func(huma.Context)) {
		p, ok := ctx.Context().Value(principalCtxKey{}).(tenant.Principal)
		if !ok {
			fail(ctx, missingKey)
			return
		}
		if err := p.Require(tenant.PermCustomersWrite); err != nil {
			fail(ctx, err)
			return
		}
		if n, err := strconv.ParseInt(ctx.Header("Content-Length"), 10, 64); err == nil && n > limit+1<<20 {
			fail(ctx, tooLarge)
			return
		}
		// A slow link needs longer than the server's read timeout for 50 MB.
		_ = ctx.SetReadDeadline(time.Now().Add(15 * time.Minute))
		up, err := readUpload(ctx, limit)
		if errors.Is(err, errFileTooLarge) {
			err = tooLarge
		}
		if err != nil {
			fail(ctx, err)
			return
		}
		next(huma.WithValue(ctx, uploadCtxKey{}, up))
	}
}

// longRequest gives an operation that reads a whole file (up to a million
// spreadsheet rows: a minute or two) more time to answer than the server's
// write timeout.
func longRequest(ctx huma.Context, next func(huma.Context)) {
	_, w := humago.Unwrap(ctx)
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(15 * time.Minute))
	next(ctx)
}

var errFileTooLarge = errors.New("file too large")

// readAtMost reads r, failing with errFileTooLarge past limit bytes.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, errs.E(errs.Invalid, "upload_interrupted", "the upload could not be read to its end: %v", err)
	}
	if n > limit {
		return nil, errFileTooLarge
	}
	return buf.Bytes(), nil
}

func readUpload(ctx huma.Context, limit int64) (*upload, error) {
	body := ctx.BodyReader()
	mt, params, _ := mime.ParseMediaType(ctx.Header("Content-Type"))
	if mt != "multipart/form-data" {
		data, err := readAtMost(body, limit)
		if err != nil {
			return nil, err
		}
		return &upload{data: data}, nil
	}
	if params["boundary"] == "" {
		return nil, errs.Field("body", "malformed_multipart", "the multipart body has no boundary")
	}
	mr := multipart.NewReader(body, params["boundary"])
	up := &upload{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, errs.Field("body", "file_required", "the multipart body has no file part (send it as the field file)")
		}
		if err != nil {
			return nil, errs.Field("body", "malformed_multipart", "the multipart body is malformed: %v", err)
		}
		if part.FileName() == "" && part.FormName() != "file" {
			if part.FormName() == "kind" {
				v, err := readAtMost(part, 32)
				if err != nil {
					return nil, errs.Field("kind", "invalid_kind", "kind must be customers or orders")
				}
				up.kind = strings.TrimSpace(string(v))
			}
			continue
		}
		up.name = part.FileName()
		if up.data, err = readAtMost(part, limit); err != nil {
			return nil, err
		}
		return up, nil
	}
}
