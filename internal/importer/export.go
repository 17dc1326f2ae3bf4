package importer

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Export languages: the header row is English field labels or Chinese ones;
// an import recognises both.
const (
	LangEN = "en"
	LangZH = "zh-CN"
)

// exportColumn is one column of a customer export.
type exportColumn struct {
	en, zh string
	value  func(c customer.Customer, ids map[string]string, loc *time.Location, zh bool) any
}

// The labels below are file-format data (what spreadsheets exchanged with
// operators say), like the header aliases in fields.go, not UI text.
func exportColumns() []exportColumn {
	str := func(f func(customer.Customer) string) func(customer.Customer, map[string]string, *time.Location, bool) any {
		return func(c customer.Customer, _ map[string]string, _ *time.Location, _ bool) any { return f(c) }
	}
	ident := func(kind string) func(customer.Customer, map[string]string, *time.Location, bool) any {
		return func(_ customer.Customer, ids map[string]string, _ *time.Location, _ bool) any { return ids[kind] }
	}
	at := func(f func(customer.Customer) time.Time) func(customer.Customer, map[string]string, *time.Location, bool) any {
		return func(c customer.Customer, _ map[string]string, loc *time.Location, _ bool) any {
			if t := f(c); !t.IsZero() {
				return t.In(loc)
			}
			return ""
		}
	}
	return []exportColumn{
		{"ID", "系统ID", func(c customer.Customer, _ map[string]string, _ *time.Location, _ bool) any { return c.ID }},
		{"Name", "姓名", str(func(c customer.Customer) string { return c.Name })},
		{"Phone", "手机号", str(func(c customer.Customer) string {
			// Mainland numbers as dialled at home (13800138000): what
			// operators expect, and Excel shows it whole.
			if strings.HasPrefix(c.Phone, "+86") && len(c.Phone) == 14 {
				return c.Phone[3:]
			}
			return c.Phone
		})},
		{"Email", "邮箱", str(func(c customer.Customer) string { return c.Email })},
		{"Gender", "性别", func(c customer.Customer, _ map[string]string, _ *time.Location, zh bool) any {
			if !zh {
				return c.Gender
			}
			return map[string]string{"male": "男", "female": "女"}[c.Gender]
		}},
		{"Birthday", "生日", str(func(c customer.Customer) string { return c.Birthday })},
		{"Province", "省份", str(func(c customer.Customer) string { return c.Province })},
		{"City", "城市", str(func(c customer.Customer) string { return c.City })},
		{"User ID", "会员ID", ident(customer.KindUserID)},
		{"WeChat UnionID", "微信UnionID", ident(customer.KindUnionID)},
		{"WeCom external_userid", "企微外部联系人ID", ident(customer.KindWeComExtID)},
		{"First source", "首次来源", str(func(c customer.Customer) string { return c.FirstSource })},
		{"First seen", "首次访问时间", at(func(c customer.Customer) time.Time { return c.FirstSeenAt })},
		{"Last seen", "最近访问时间", at(func(c customer.Customer) time.Time { return c.LastSeenAt })},
	}
}

// ExportRequest says what to export.
type ExportRequest struct {
	Search     string // as the customer list's q
	Identifier string // as the customer list's identifier
	Format     string // csv or xlsx
	Lang       string // en (default) or zh-CN: the header row's language
}

// Export is a customer export ready to stream.
type Export struct {
	s     *Service
	p     tenant.Principal
	q     customer.Query
	first page.Page[customer.Customer]
	loc   *time.Location
	zh    bool
	// Format is csv or xlsx; FileName suggests a name for the download.
	Format, FileName string
}

// ContentType is the MIME type of the export.
func (e *Export) ContentType() string {
	if e.Format == FormatXLSX {
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "text/csv; charset=utf-8"
}

// xlsxMaxRows is the most rows a sheet holds.
const xlsxMaxRows = excelize.TotalRows

// exportPage is how many customers are read per query.
const exportPage = page.MaxLimit

// NewExport checks an export request (its filter is the customer list's)
// and records it in the audit log; nothing is written to the caller until
// WriteTo. Phones are masked unless the principal may see personal data.
func (s *Service) NewExport(ctx context.Context, p tenant.Principal, in ExportRequest) (*Export, error) {
	if err := p.Require(tenant.PermCustomersRead); err != nil {
		return nil, err
	}
	if in.Format == "" {
		in.Format = FormatCSV
	}
	if in.Format != FormatCSV && in.Format != FormatXLSX {
		return nil, errs.Field("format", "invalid_format", "format must be csv or xlsx")
	}
	zh := false
	switch strings.ToLower(in.Lang) {
	case "", "en":
	case "zh", "zh-cn":
		zh = true
	default:
		return nil, errs.Field("lang", "invalid_lang", "lang must be en or zh-CN")
	}
	w, err := s.tenants.Workspace(ctx, p.TenantID)
	if err != nil {
		return nil, err
	}
	e := &Export{s: s, p: p, loc: w.Location(), zh: zh, Format: in.Format,
		q: customer.Query{Search: in.Search, Identifier: in.Identifier, ShowPII: p.Can(tenant.PermPIIRead)}}
	// The first page now: a bad filter is an error before any byte is sent.
	if e.first, err = s.customers.List(ctx, p.TenantID, e.q, page.Request{Limit: exportPage}); err != nil {
		return nil, err
	}
	if in.Format == FormatXLSX && in.Search == "" && in.Identifier == "" {
		n, err := s.customers.Count(ctx, p.TenantID)
		if err != nil {
			return nil, err
		}
		if n >= xlsxMaxRows {
			return nil, errs.E(errs.TooLarge, "export_too_large", "%d customers do not fit in one sheet (at most %d rows): export CSV instead", n, xlsxMaxRows-1)
		}
	}
	e.FileName = fmt.Sprintf("customers-%s.%s", s.o.Now().In(e.loc).Format("20060102-150405"), in.Format)
	detail := fmt.Sprintf("format %s, q %q, identifier %q, phones %s", in.Format, in.Search, in.Identifier, map[bool]string{true: "shown", false: "masked"}[e.q.ShowPII])
	if err := s.tenants.Audit(ctx, s.db, p, "customers.export", "customers", "", detail); err != nil {
		return nil, err
	}
	return e, nil
}

// each calls fn with every customer of the export, page by page.
func (e *Export) each(ctx context.Context, fn func(customer.Customer, map[string]string) error) error {
	pg := e.first
	for {
		for _, c := range pg.Items {
			ids, err := e.s.customers.Identities(ctx, e.p.TenantID, c.ID)
			if err != nil {
				return err
			}
			first := map[string]string{}
			for _, id := range ids {
				if _, ok := first[id.Kind]; !ok {
					first[id.Kind] = id.Value
				}
			}
			if err := fn(c, first); err != nil {
				return err
			}
		}
		if pg.Next == "" {
			return nil
		}
		var err error
		if pg, err = e.s.customers.List(ctx, e.p.TenantID, e.q, page.Request{Cursor: pg.Next, Limit: exportPage}); err != nil {
			return err
		}
	}
}

// WriteTo streams the export to w.
func (e *Export) WriteTo(ctx context.Context, w io.Writer) error {
	cols := exportColumns()
	header := make([]any, len(cols))
	for i, c := range cols {
		header[i] = c.en
		if e.zh {
			header[i] = c.zh
		}
	}
	if e.Format == FormatXLSX {
		return e.writeXLSX(ctx, w, cols, header)
	}
	return e.writeCSV(ctx, w, cols, header)
}

func (e *Export) writeCSV(ctx context.Context, w io.Writer, cols []exportColumn, header []any) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	// A BOM makes Excel read the file as UTF-8 (Chinese names intact).
	if _, err := bw.Write(utf8BOM); err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	cw := csv.NewWriter(bw)
	rec := make([]string, len(cols))
	for i, h := range header {
		rec[i] = h.(string)
	}
	if err := cw.Write(rec); err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	err := e.each(ctx, func(c customer.Customer, ids map[string]string) error {
		for i, col := range cols {
			switch v := col.value(c, ids, e.loc, e.zh).(type) {
			case time.Time:
				rec[i] = v.Format(time.DateTime)
			default:
				rec[i] = csvSafe(fmt.Sprint(v))
			}
		}
		return cw.Write(rec)
	})
	if err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	return nil
}

// csvSafe keeps a spreadsheet program from running a cell as a formula
// (CSV injection): a leading = + - @ gets a quote, which the import strips.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// writeXLSX streams rows into a sheet (excelize spills them to a temporary
// file past a threshold, so memory stays bounded) and writes the workbook.
func (e *Export) writeXLSX(ctx context.Context, w io.Writer, cols []exportColumn, header []any) error {
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	dateTime := "yyyy-mm-dd hh:mm:ss"
	timeStyle, err := f.NewStyle(&excelize.Style{CustomNumFmt: &dateTime})
	if err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	for i := range cols {
		if err := sw.SetColWidth(i+1, i+1, 16); err != nil {
			return fmt.Errorf("importer: export: %w", err)
		}
	}
	if err := sw.SetRow("A1", header, excelize.RowOpts{StyleID: bold}); err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	row := 1
	vals := make([]any, len(cols))
	err = e.each(ctx, func(c customer.Customer, ids map[string]string) error {
		row++
		for i, col := range cols {
			switch v := col.value(c, ids, e.loc, e.zh).(type) {
			case time.Time:
				vals[i] = excelize.Cell{StyleID: timeStyle, Value: v}
			default:
				vals[i] = v
			}
		}
		cell, err := excelize.CoordinatesToCellName(1, row)
		if err != nil {
			return err
		}
		return sw.SetRow(cell, vals)
	})
	if err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	if err := f.Write(w); err != nil {
		return fmt.Errorf("importer: export: %w", err)
	}
	return nil
}
