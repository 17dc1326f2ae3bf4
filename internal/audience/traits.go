package audience

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// traitVal is one value of a traits document, undecoded: kind is '"' for a
// string (b holds its unescaped contents), '0' for a number (b holds its
// text, which strconv.ParseFloat accepts), 't' or 'f' for a boolean and 'n'
// for null. b may point into the document.
type traitVal struct {
	kind byte
	b    []byte
}

// number returns a numeric value as encoding/json decodes it into any.
func (v traitVal) number() (float64, bool) {
	if v.kind != '0' {
		return 0, false
	}
	// Most numbers are small integers: skip the general parser for them.
	if n := len(v.b); n > 0 && n <= 15 {
		var x int64
		i := 0
		if v.b[0] == '-' {
			i = 1
		}
		plain := i < n
		for _, c := range v.b[i:] {
			if c < '0' || c > '9' {
				plain = false
				break
			}
			x = x*10 + int64(c-'0')
		}
		if plain {
			if i == 1 {
				return -float64(x), true
			}
			return float64(x), true
		}
	}
	f, err := strconv.ParseFloat(string(v.b), 64)
	return f, err == nil
}

// any returns the value as encoding/json decodes it into any.
func (v traitVal) any() any {
	switch v.kind {
	case '"':
		return string(v.b)
	case '0':
		f, _ := v.number()
		return f
	case 't':
		return true
	case 'f':
		return false
	}
	return nil
}

// eachTrait reads a traits document without building a map: it calls fn with
// the value of each top-level member whose key want accepts (want returns an
// index, or -1 to skip), in document order. Decoding every profile's traits
// into a map was most of a rebuild's cost.
//
// It reads only flat objects it can decode exactly as encoding/json would, and
// returns false for anything else (nested values, escapes in keys, invalid
// UTF-8, malformed input), possibly after some calls to fn; the caller then
// decodes the document with encoding/json.
func eachTrait(b []byte, want func(key []byte) int, fn func(i int, v traitVal)) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end, plain := scanString(b, i)
		if end < 0 || !plain {
			return false
		}
		key := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return false
		}
		k := want(key)
		var v traitVal
		switch c := b[i]; {
		case c == '"':
			end, plain = scanString(b, i)
			if end < 0 {
				return false
			}
			v = traitVal{'"', b[i+1 : end-1]}
			if k >= 0 && !plain {
				var s string
				if json.Unmarshal(b[i:end], &s) != nil {
					return false
				}
				v.b = []byte(s)
			}
		case c == 't' && bytes.HasPrefix(b[i:], []byte("true")):
			end, v = i+4, traitVal{kind: 't'}
		case c == 'f' && bytes.HasPrefix(b[i:], []byte("false")):
			end, v = i+5, traitVal{kind: 'f'}
		case c == 'n' && bytes.HasPrefix(b[i:], []byte("null")):
			end, v = i+4, traitVal{kind: 'n'}
		case c == '-' || (c >= '0' && c <= '9'):
			end = scanNumber(b, i)
			if end < 0 {
				return false
			}
			v = traitVal{'0', b[i:end]}
			if _, ok := v.number(); k >= 0 && !ok {
				return false // out of range: encoding/json refuses it too
			}
		default:
			return false // nested, or not JSON
		}
		if k >= 0 {
			fn(k, v)
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the end (after the closing quote) of the string starting
// at b[i] == '"', or -1 when it is not valid JSON; plain is false when it
// holds escapes. Invalid UTF-8, which encoding/json would replace, counts as
// not valid here.
func scanString(b []byte, i int) (end int, plain bool) {
	plain = true
	ascii := true
	start := i + 1
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			if !ascii && !utf8.Valid(b[start:i]) {
				return -1, false
			}
			return i + 1, plain
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				return -1, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return -1, false
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return -1, false
					}
				}
				i += 4
			default:
				return -1, false
			}
		case c < 0x20:
			return -1, false
		case c >= 0x80:
			ascii = false
		}
	}
	return -1, false
}

// scanNumber returns the end of the JSON number at b[i], or -1.
func scanNumber(b []byte, i int) int {
	digits := func(i int) int {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if i = digits(i); i < 0 {
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(i + 1); i < 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = digits(i); i < 0 {
			return -1
		}
	}
	return i
}
