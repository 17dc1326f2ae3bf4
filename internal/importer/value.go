package importer

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Cell parsers. Each returns a message safe to show the operator (it never
// echoes a phone number) when the value does not parse.

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// excelEpoch is day 0 of Excel's 1900 date system (which counts the
// non-existent 1900-02-29, hence the 30th).
var excelEpoch = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)

// excelSerial reads a spreadsheet date serial ("45292", "45292.5").
func excelSerial(s string, loc *time.Location) (time.Time, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	if !digits(whole) || !digits(frac) || whole == "" || len(whole) > 6 {
		return time.Time{}, false
	}
	days, _ := strconv.Atoi(whole)
	// Below 3653 (1910) a number is more likely a year or a count than a date.
	if days < 3653 || days > 2958465 {
		return time.Time{}, false
	}
	var ms int64
	if frac != "" {
		r, ok := new(big.Rat).SetString("0." + frac)
		if !ok {
			return time.Time{}, false
		}
		r.Mul(r, big.NewRat(86_400_000, 1))
		f, _ := r.Float64()
		ms = int64(f + 0.5)
	}
	d := excelEpoch.AddDate(0, 0, days).Add(time.Duration(ms) * time.Millisecond)
	// The serial is a wall-clock time: read it in the workspace's zone.
	return time.Date(d.Year(), d.Month(), d.Day(), d.Hour(), d.Minute(), d.Second(), 0, loc), true
}

var dateLayouts = []string{
	"2006-01-02", "2006/01/02", "2006.01.02", "2006-1-2", "2006/1/2", "2006.1.2", "20060102",
	"2006年1月2日", "2006年01月02日",
}

var timeLayouts = []string{
	"2006-01-02 15:04:05", "2006-01-02 15:04", "2006/01/02 15:04:05", "2006/01/02 15:04", "2006/1/2 15:04:05", "2006/1/2 15:04",
	"2006-1-2 15:04:05", "2006-1-2 15:04", "2006.01.02 15:04:05", "2006年1月2日 15:04:05", "2006年1月2日 15:04",
	"2006-01-02T15:04:05", "2006-01-02T15:04",
}

// parseDate reads a calendar date in the common Chinese and ISO forms, or a
// spreadsheet serial, as YYYY-MM-DD.
func parseDate(s string) (string, error) {
	if t, ok := excelSerial(s, time.UTC); ok {
		return t.Format(time.DateOnly), nil
	}
	v := strings.TrimSpace(s)
	if len(v) > 10 {
		// A date-time where a date is wanted: keep the date.
		if t, err := parseTime(v, time.UTC); err == nil {
			return t.Format(time.DateOnly), nil
		}
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.Format(time.DateOnly), nil
		}
	}
	return "", fmt.Errorf("%q is not a date (e.g. 1990-05-20, 1990/5/20 or 1990年5月20日)", s)
}

// parseTime reads a point in time: RFC 3339 with its offset, a wall-clock
// date-time in the workspace's zone, a date (midnight), a spreadsheet serial,
// or Unix seconds or milliseconds.
func parseTime(s string, loc *time.Location) (time.Time, error) {
	v := strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, ok := excelSerial(v, loc); ok {
		return t, nil
	}
	if digits(v) && (len(v) == 10 || len(v) == 13) {
		n, _ := strconv.ParseInt(v, 10, 64)
		if len(v) == 10 {
			return time.Unix(n, 0), nil
		}
		return time.UnixMilli(n), nil
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, nil
		}
	}
	for _, l := range dateLayouts {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date and time (e.g. 2026-03-01 14:30:00)", s)
}

// parseGender reads the ways files write gender; "" means not given.
func parseGender(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "男", "male", "m", "man", "1", "先生":
		return "male", nil
	case "女", "female", "f", "woman", "2", "女士":
		return "female", nil
	case "", "未知", "unknown", "保密", "0", "-", "其他", "other":
		return "", nil
	}
	return "", fmt.Errorf("%q is not a gender (男/女, male/female, 1/2)", s)
}

// parseInt reads a whole number, allowing "3.0" as spreadsheets store it.
func parseInt(s string) (int64, error) {
	v := strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if whole, frac, ok := strings.Cut(v, "."); ok && strings.Trim(frac, "0") == "" {
		v = whole
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return n, nil
}

// masked reports whether a value is a masked phone (138****5678), which an
// export made without the right to see personal data contains.
func masked(s string) bool { return strings.Contains(s, "****") }
