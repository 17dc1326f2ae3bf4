package importer

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/siyu-dev/siyu/internal/errs"
)

// File formats.
const (
	FormatCSV  = "csv"
	FormatXLSX = "xlsx"
)

// Text encodings of CSV files.
const (
	EncodingUTF8    = "utf-8"
	EncodingGB18030 = "gb18030" // a superset of GBK, what Chinese Excel writes
	EncodingUTF16   = "utf-16"  // Excel's "Unicode text" export
)

// unzipLimit bounds what an XLSX may expand to, so a zip bomb cannot fill
// the disk or memory.
const unzipLimit = 1 << 30

var (
	zipMagic = []byte("PK\x03\x04")
	oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
	utf8BOM  = []byte{0xEF, 0xBB, 0xBF}
)

// sniff decides a file's format and, for CSV, its encoding, from its bytes
// (the name only breaks no ties: content wins).
func sniff(data []byte) (format, encoding string, err error) {
	switch {
	case len(data) == 0:
		return "", "", errs.Field("file", "empty_file", "the file is empty")
	case bytes.HasPrefix(data, zipMagic):
		return FormatXLSX, "", nil
	case bytes.HasPrefix(data, oleMagic):
		return "", "", errs.Field("file", "unsupported_format",
			"this looks like an old Excel (.xls) or a password-protected workbook: save it as .xlsx or CSV (UTF-8) and upload that")
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		return FormatCSV, EncodingUTF16, nil
	case bytes.HasPrefix(data, utf8BOM), utf8.Valid(data):
		if bytes.IndexByte(data[:min(len(data), 8192)], 0) >= 0 {
			return "", "", errs.Field("file", "unsupported_format", "the file is not a CSV or XLSX spreadsheet")
		}
		return FormatCSV, EncodingUTF8, nil
	default:
		return FormatCSV, EncodingGB18030, nil
	}
}

// table reads the rows of a spreadsheet one at a time. Next returns the
// cells of the next row and its 1-based row number as the operator sees it
// in a spreadsheet program, or io.EOF.
type table interface {
	Next() (cells []string, rowNo int64, err error)
	Close() error
}

// openTable opens the first sheet of an XLSX, or a CSV in the given encoding.
func openTable(data []byte, format, encoding string) (table, error) {
	if format == FormatXLSX {
		return openXLSX(data)
	}
	return openCSV(data, encoding)
}

// csvTable reads CSV text decoded to UTF-8.
type csvTable struct {
	r    *csv.Reader
	row  int64
	next int // the line a record would start on after no blank lines
}

func openCSV(data []byte, encoding string) (*csvTable, error) {
	var text io.Reader
	switch encoding {
	case EncodingGB18030:
		text = transform.NewReader(bytes.NewReader(data), simplifiedchinese.GB18030.NewDecoder())
	case EncodingUTF16:
		// The BOM says which byte order; the decoder drops it.
		text = transform.NewReader(bytes.NewReader(data), unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewDecoder())
	default:
		text = bytes.NewReader(bytes.TrimPrefix(data, utf8BOM))
	}
	// Peek at the first line to choose the delimiter: Excel writes commas,
	// semicolons in some locales, tabs for "Unicode text".
	buf := make([]byte, 16<<10)
	n, err := io.ReadFull(text, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("importer: unable to read the file: %w", err)
	}
	head := buf[:n]
	r := csv.NewReader(io.MultiReader(bytes.NewReader(head), text))
	r.Comma = delimiter(head)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.ReuseRecord = false
	return &csvTable{r: r}, nil
}

func delimiter(head []byte) rune {
	line, _, _ := bytes.Cut(head, []byte("\n"))
	best, bestN := ',', bytes.Count(line, []byte(","))
	for _, c := range []rune{'\t', ';'} {
		if n := bytes.Count(line, []byte(string(c))); n > bestN {
			best, bestN = c, n
		}
	}
	return best
}

func (t *csvTable) Next() ([]string, int64, error) {
	rec, err := t.r.Read()
	if errors.Is(err, io.EOF) {
		return nil, 0, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, 0, errs.Field("file", "malformed_csv", "the CSV is malformed at line %d: %v", pe.StartLine, pe.Err)
		}
		return nil, 0, fmt.Errorf("importer: unable to read CSV: %w", err)
	}
	// Row numbers are what a spreadsheet program shows: blank lines (which
	// the reader skips) count, a cell's embedded line breaks do not.
	line, _ := t.r.FieldPos(0)
	if t.row == 0 {
		t.row = int64(line)
	} else {
		t.row += 1 + int64(line-t.next)
	}
	t.next = line + 1
	for i, c := range rec {
		t.next += strings.Count(c, "\n")
		c = strings.TrimSpace(c)
		// An export's guard against formulas (see csvSafe) comes off.
		if len(c) > 1 && c[0] == '\'' && strings.ContainsRune("=+-@", rune(c[1])) {
			c = c[1:]
		}
		rec[i] = c
	}
	return rec, t.row, nil
}

func (t *csvTable) Close() error { return nil }

// xlsxTable streams the first sheet of a workbook with excelize's row
// iterator, so a large sheet is never held as a whole.
type xlsxTable struct {
	f    *excelize.File
	rows *excelize.Rows
	row  int64
}

func openXLSX(data []byte) (*xlsxTable, error) {
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: unzipLimit})
	if err != nil {
		return nil, errs.Field("file", "unreadable_xlsx", "the workbook cannot be read (%v): save it again as .xlsx or CSV", err)
	}
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		f.Close()
		return nil, errs.Field("file", "empty_file", "the workbook has no sheets")
	}
	rows, err := f.Rows(sheets[0])
	if err != nil {
		f.Close()
		return nil, errs.Field("file", "unreadable_xlsx", "the first sheet cannot be read: %v", err)
	}
	return &xlsxTable{f: f, rows: rows}, nil
}

func (t *xlsxTable) Next() ([]string, int64, error) {
	if !t.rows.Next() {
		if err := t.rows.Error(); err != nil {
			return nil, 0, errs.Field("file", "unreadable_xlsx", "the sheet cannot be read after row %d: %v", t.row, err)
		}
		return nil, 0, io.EOF
	}
	t.row++
	// Raw values: numbers as stored (a phone stays 13800138000, a date is its
	// serial number), never re-formatted by the cell's display format.
	cells, err := t.rows.Columns(excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, 0, errs.Field("file", "unreadable_xlsx", "row %d cannot be read: %v", t.row, err)
	}
	for i, c := range cells {
		cells[i] = strings.TrimSpace(c)
	}
	return cells, t.row, nil
}

func (t *xlsxTable) Close() error {
	err := t.rows.Close()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// blank reports whether a row has no content.
func blank(cells []string) bool {
	for _, c := range cells {
		if c != "" {
			return false
		}
	}
	return true
}

// columnLetter names a 0-based column as a spreadsheet does: 0 → A, 26 → AA.
func columnLetter(i int) string {
	s, err := excelize.ColumnNumberToName(i + 1)
	if err != nil {
		return fmt.Sprint(i + 1)
	}
	return s
}
