package importer

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
)

// dataRow is one non-blank row below the header.
type dataRow struct {
	no    int64
	cells []string
}

// plan is a job's mapping compiled for reading rows.
type plan struct {
	kind    string
	sha     string
	source  string
	loc     *time.Location
	blocked map[string]bool
	at      time.Time // when rows without a time were observed
	cols    []planCol
}

type planCol struct {
	index  int
	header string
	field  Field  // a known field, or
	trait  string // a custom trait
}

func newPlan(j Job, loc *time.Location, rules customer.Rules) *plan {
	pl := &plan{kind: j.Kind, sha: j.SHA256, source: j.Source, loc: loc, blocked: map[string]bool{}, at: time.UnixMilli(j.observedAt).UTC()}
	for _, b := range rules.Blocked {
		pl.blocked[strings.ToLower(strings.TrimSpace(b))] = true
	}
	fields := map[string]Field{}
	for _, f := range Fields(j.Kind) {
		fields[f.Name] = f
	}
	for _, c := range j.Columns {
		target := j.Mapping[c.Header]
		switch {
		case target == "":
		case strings.HasPrefix(target, TraitPrefix):
			pl.cols = append(pl.cols, planCol{index: c.Index, header: c.Header, trait: strings.TrimPrefix(target, TraitPrefix)})
		default:
			pl.cols = append(pl.cols, planCol{index: c.Index, header: c.Header, field: fields[target]})
		}
	}
	return pl
}

// isBlocked reports whether an identifier value identifies no one under the
// workspace's rules (blocked values, all-zero strings).
func (pl *plan) isBlocked(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	return v == "" || pl.blocked[v] || strings.Trim(v, "0") == ""
}

// messageID names a row of a file for One ID's merge records.
func (pl *plan) messageID(row int64) string { return fmt.Sprintf("import:%s:%d", pl.sha, row) }

// rowErrors collects the problems of one row.
type rowErrors struct {
	row  int64
	list []RowError
}

func (e *rowErrors) add(col, code, format string, args ...any) {
	e.list = append(e.list, RowError{Row: e.row, Column: col, Code: code, Message: fmt.Sprintf(format, args...)})
}

// customerRow is a validated row of a customer file.
type customerRow struct {
	obs      customer.Observation
	lastSeen time.Time // later than obs.At when the file says so
}

// customer validates a row of a customer file and builds its observation.
func (pl *plan) customer(r dataRow) (customerRow, []RowError) {
	e := rowErrors{row: r.no}
	out := customerRow{obs: customer.Observation{Traits: map[string]any{}, Source: pl.source, MessageID: pl.messageID(r.no)}}
	if out.obs.Source == "" {
		out.obs.Source = "import"
	}
	usable, idErrs := 0, 0
	var firstSeen time.Time
	for _, c := range pl.cols {
		v := ""
		if c.index < len(r.cells) {
			v = r.cells[c.index]
		}
		if v == "" {
			continue // an empty cell never clears what a profile has
		}
		if c.trait != "" {
			out.obs.Traits[c.trait] = v
			continue
		}
		if c.field.Identity != "" {
			n := len(e.list)
			if !pl.identity(&e, c, v) {
				idErrs += len(e.list) - n
				continue
			}
			out.obs.Identities = append(out.obs.Identities, customer.Identity{Kind: c.field.Identity, Value: v})
			usable++
			if c.field.Identity == customer.KindEmail && out.obs.Traits["email"] == nil {
				out.obs.Traits["email"] = v // the profile's email, besides the identifier
			}
			continue
		}
		switch c.field.Name {
		case "name", "nickname", "province", "city", "avatar":
			if err := checkText(v, 200); err != nil {
				e.add(c.header, "invalid_text", "%s", err)
				continue
			}
			out.obs.Traits[c.field.Name] = v
		case "gender":
			g, err := parseGender(v)
			if err != nil {
				e.add(c.header, "invalid_gender", "%s", err)
			} else if g != "" {
				out.obs.Traits["gender"] = g
			}
		case "birthday":
			d, err := parseDate(v)
			if err == nil && (d < "1900-01-01" || d > time.Now().Format(time.DateOnly)) {
				err = fmt.Errorf("%q is not a plausible birthday", v)
			}
			if err != nil {
				e.add(c.header, "invalid_date", "%s", err)
				continue
			}
			out.obs.Traits["birthday"] = d
		case "source":
			if err := checkText(v, 64); err != nil {
				e.add(c.header, "invalid_source", "%s", err)
				continue
			}
			out.obs.Source = v
		case "first_seen", "last_seen":
			t, err := parseTime(v, pl.loc)
			if err != nil {
				e.add(c.header, "invalid_time", "%s", err)
				continue
			}
			if c.field.Name == "first_seen" {
				firstSeen = t
			} else {
				out.lastSeen = t
			}
		}
	}
	if usable == 0 && idErrs == 0 {
		e.add("", "no_identifier", "the row has no usable customer identifier (%s): it cannot be matched to a profile", strings.Join(identityFields(pl.kind), ", "))
	}
	out.obs.At = pl.at
	switch {
	case !firstSeen.IsZero():
		out.obs.At = firstSeen
	case !out.lastSeen.IsZero():
		out.obs.At = out.lastSeen
	}
	if !out.lastSeen.After(out.obs.At) {
		out.lastSeen = time.Time{}
	}
	return out, e.list
}

// identity checks an identifier cell; false means it is not used (an error
// was recorded, or the value is blocked and identifies no one).
func (pl *plan) identity(e *rowErrors, c planCol, v string) bool {
	switch {
	case len(v) > 256:
		e.add(c.header, "invalid_identifier", "the %s is longer than 256 bytes", c.field.Name)
		return false
	case pl.isBlocked(v):
		return false
	}
	switch c.field.Identity {
	case customer.KindPhone:
		if masked(v) {
			e.add(c.header, "phone_masked", "the phone number is masked (***): export the customers with a role that may see personal data, then import that file")
			return false
		}
		if _, err := customer.NormalizePhone(v); err != nil {
			e.add(c.header, "invalid_phone", "not a phone number: expected an 11-digit mainland mobile number (138 0013 8000) or +country code")
			return false
		}
	case customer.KindEmail:
		at := strings.IndexByte(v, '@')
		if at < 1 || at == len(v)-1 || strings.ContainsAny(v, " ,;") {
			e.add(c.header, "invalid_email", "%q is not an email address", v)
			return false
		}
	}
	return true
}

func checkText(v string, n int) error {
	if len(v) > n {
		return fmt.Errorf("the text is longer than %d bytes", n)
	}
	return nil
}

// eachRow reads a job's file and calls fn with every data row after the
// first skip ones, in order.
func eachRow(data []byte, j Job, skip int64, fn func(dataRow) error) error {
	t, err := openTable(data, j.Format, j.Encoding)
	if err != nil {
		return err
	}
	defer t.Close()
	var n int64
	for {
		cells, no, err := t.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if no <= j.HeaderRow || blank(cells) {
			continue
		}
		n++
		if n <= skip {
			continue
		}
		if err := fn(dataRow{no: no, cells: cells}); err != nil {
			return err
		}
	}
}
