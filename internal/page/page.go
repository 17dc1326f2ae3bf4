// Package page is Siyu's one pagination convention: every list takes an opaque
// cursor and a limit and returns its items with the cursor of the next page
// ("" on the last page). Cursors are keyset positions, never offsets, so pages
// stay stable while rows are added and stay fast deep into a list.
package page

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/siyu-dev/siyu/internal/errs"
)

// Limits for every list.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// Request asks for one page.
type Request struct {
	Cursor string // "" for the first page
	Limit  int    // 0 means DefaultLimit; capped at MaxLimit
}

// Size returns the effective limit.
func (r Request) Size() int {
	switch {
	case r.Limit <= 0:
		return DefaultLimit
	case r.Limit > MaxLimit:
		return MaxLimit
	default:
		return r.Limit
	}
}

// Page is one page of a list.
type Page[T any] struct {
	Items []T
	Next  string // cursor of the next page; "" when this is the last
}

// Encode makes an opaque cursor from the sort key of the last item shown.
func Encode(key ...any) string {
	b, err := json.Marshal(key)
	if err != nil {
		// Keys are ints and strings; failing here is a programming error.
		panic(fmt.Sprintf("page: unable to encode cursor: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode reads a cursor made by Encode into dst (pointers, in the same order).
// A cursor that does not decode is an Invalid error with code "invalid_cursor".
func Decode(cursor string, dst ...any) error {
	bad := errs.Field("cursor", "invalid_cursor", "the cursor is not one this list returned")
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return bad
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || len(raw) != len(dst) {
		return bad
	}
	for i := range dst {
		if err := json.Unmarshal(raw[i], dst[i]); err != nil {
			return bad
		}
	}
	return nil
}

// Trim cuts a result fetched with Size()+1 rows to Size() and, when there was
// an extra row, returns the next cursor made by key from the last item kept.
func Trim[T any](items []T, r Request, key func(T) string) Page[T] {
	n := r.Size()
	if len(items) <= n {
		return Page[T]{Items: items}
	}
	items = items[:n]
	return Page[T]{Items: items, Next: key(items[n-1])}
}

// AfterID decodes an id-descending cursor: the id to continue below, or 0
// (with ok false) for the first page.
func AfterID(r Request) (id int64, ok bool, err error) {
	if r.Cursor == "" {
		return 0, false, nil
	}
	if err := Decode(r.Cursor, &id); err != nil {
		return 0, false, err
	}
	return id, true, nil
}

// ByID is the key function for lists ordered by id descending.
func ByID(id int64) string { return Encode(id) }
