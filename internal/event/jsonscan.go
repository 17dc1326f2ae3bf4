package event

import (
	"bytes"
	"encoding/json"
)

// A single-pass JSON reader for ingest bodies. encoding/json reads a batch
// four times over (validating the body, decoding it, then validating and
// decoding each message), and that was most of the CPU an event cost. This
// reader validates the body once and, on the way, notes where each message
// and each of its top-level members lie; the values ingest stores (context,
// properties, traits) are then kept as the exact bytes received. It accepts
// exactly what encoding/json accepts (a fuzz test holds it to that); when it
// refuses a body, encoding/json is asked where the body broke, for the
// message to the sender.

// span is a half-open byte range of the body.
type span struct{ start, end int }

// member is one key and value of an object, as spans (the key with quotes).
type member struct{ key, val span }

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

type jsonReader struct {
	b     []byte
	depth int
	// members collects the members of messages, one run per message; a
	// rawMessage holds its run as a span of this slice.
	members []member
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (r *jsonReader) ws(i int) int {
	for i < len(r.b) && isSpace(r.b[i]) {
		i++
	}
	return i
}

// value validates the value at i (after whitespace) and returns its end.
func (r *jsonReader) value(i int) (int, bool) {
	if i >= len(r.b) {
		return i, false
	}
	switch c := r.b[i]; {
	case c == '"':
		return r.str(i)
	case c == '{':
		return r.object(i, nil)
	case c == '[':
		return r.array(i, nil)
	case c == 't':
		return r.lit(i, "true")
	case c == 'f':
		return r.lit(i, "false")
	case c == 'n':
		return r.lit(i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return r.number(i)
	}
	return i, false
}

func (r *jsonReader) lit(i int, s string) (int, bool) {
	if len(r.b)-i < len(s) || string(r.b[i:i+len(s)]) != s {
		return i, false
	}
	return i + len(s), true
}

// str validates the string starting at the quote at i.
func (r *jsonReader) str(i int) (int, bool) {
	b := r.b
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return i, false
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at i.
func (r *jsonReader) number(i int) (int, bool) {
	b := r.b
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	return i, true
}

// object validates the object at i. For each member, val (when not nil)
// validates the value at its start and returns its end, in place of value.
func (r *jsonReader) object(i int, val func(key span, at int) (int, bool)) (int, bool) {
	if r.depth++; r.depth > maxDepth {
		return i, false
	}
	defer func() { r.depth-- }()
	i = r.ws(i + 1)
	if i < len(r.b) && r.b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(r.b) || r.b[i] != '"' {
			return i, false
		}
		ks := i
		var ok bool
		if i, ok = r.str(i); !ok {
			return i, false
		}
		ke := i
		i = r.ws(i)
		if i >= len(r.b) || r.b[i] != ':' {
			return i, false
		}
		vs := r.ws(i + 1)
		var ve int
		if val != nil {
			ve, ok = val(span{ks, ke}, vs)
		} else {
			ve, ok = r.value(vs)
		}
		if !ok {
			return ve, false
		}
		i = r.ws(ve)
		if i >= len(r.b) {
			return i, false
		}
		switch r.b[i] {
		case ',':
			i = r.ws(i + 1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// array validates the array at i. For each element, each (when not nil)
// validates it at its start and returns its end, in place of value.
func (r *jsonReader) array(i int, each func(at int) (int, bool)) (int, bool) {
	if r.depth++; r.depth > maxDepth {
		return i, false
	}
	defer func() { r.depth-- }()
	i = r.ws(i + 1)
	if i < len(r.b) && r.b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if each != nil {
			i, ok = each(i)
		} else {
			i, ok = r.value(i)
		}
		if !ok {
			return i, false
		}
		i = r.ws(i)
		if i >= len(r.b) {
			return i, false
		}
		switch r.b[i] {
		case ',':
			i = r.ws(i + 1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// rawMessage is one message of a body: its bytes, and its members when it
// is an object.
type rawMessage struct {
	span
	object  bool
	members span // into jsonReader.members
}

// message validates the value at i as a message, recording its members when
// it is an object.
func (r *jsonReader) message(i int) (rawMessage, bool) {
	m := rawMessage{span: span{start: i}}
	var ok bool
	if i < len(r.b) && r.b[i] == '{' {
		m.object = true
		m.members.start = len(r.members)
		m.end, ok = r.object(i, r.recordMember)
		m.members.end = len(r.members)
	} else {
		m.end, ok = r.value(i)
	}
	return m, ok
}

func (r *jsonReader) recordMember(key span, at int) (int, bool) {
	e, ok := r.value(at)
	r.members = append(r.members, member{key, span{at, e}})
	return e, ok
}

// batchBody is what readBatch found in a /v1/batch body.
type batchBody struct {
	object   bool     // the body is an object
	top      []member // its members
	hasBatch bool     // it has a batch member that is an array
	batchKey bool     // it has a batch member, array or not
	msgs     []rawMessage
}

// readBatch validates a /v1/batch body, recording the messages of its batch
// array in the same pass.
func (r *jsonReader) readBatch() (batchBody, bool) {
	var bb batchBody
	i := r.ws(0)
	var e int
	var ok bool
	if i < len(r.b) && r.b[i] == '{' {
		bb.object = true
		e, ok = r.object(i, func(key span, at int) (int, bool) {
			isBatch := r.keyIs(key, "batch")
			bb.batchKey = bb.batchKey || isBatch
			var e int
			var ok bool
			if isBatch && at < len(r.b) && r.b[at] == '[' {
				bb.hasBatch, bb.msgs = true, bb.msgs[:0]
				e, ok = r.array(at, func(at int) (int, bool) {
					m, ok := r.message(at)
					bb.msgs = append(bb.msgs, m)
					return m.end, ok
				})
			} else {
				if isBatch {
					bb.hasBatch, bb.msgs = false, nil
				}
				e, ok = r.value(at)
			}
			bb.top = append(bb.top, member{key, span{at, e}})
			return e, ok
		})
	} else {
		e, ok = r.value(i)
	}
	if bb.hasBatch && bb.msgs == nil {
		bb.msgs = []rawMessage{}
	}
	return bb, ok && r.ws(e) == len(r.b)
}

// readMessage validates a single-message body.
func (r *jsonReader) readMessage() (rawMessage, bool) {
	m, ok := r.message(r.ws(0))
	return m, ok && r.ws(m.end) == len(r.b)
}

// valid reports whether b is one JSON value (what json.Valid says).
func valid(b []byte) bool {
	r := jsonReader{b: b}
	e, ok := r.value(r.ws(0))
	return ok && r.ws(e) == len(b)
}

// text returns the bytes of a span.
func (r *jsonReader) text(s span) []byte { return r.b[s.start:s.end] }

// keyIs reports whether a key (a string span, quotes included) is name.
func (r *jsonReader) keyIs(k span, name string) bool {
	raw := r.b[k.start+1 : k.end-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name
	}
	var s string
	return json.Unmarshal(r.text(k), &s) == nil && s == name
}

// key returns a key as text.
func (r *jsonReader) key(k span) string {
	raw := r.b[k.start+1 : k.end-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var s string
	_ = json.Unmarshal(r.text(k), &s)
	return s
}

// stringValue reads a string value; null reads as "". ok is false for any
// other type.
func (r *jsonReader) stringValue(v span) (s string, ok bool) {
	b := r.text(v)
	switch b[0] {
	case '"':
		raw := b[1 : len(b)-1]
		if bytes.IndexByte(raw, '\\') < 0 {
			return string(raw), true
		}
		return s, json.Unmarshal(b, &s) == nil
	case 'n':
		return "", true
	}
	return "", false
}

// idValue reads an identifier: a string, or a number kept as written
// (analytics.js accepts numeric ids); null reads as "".
func (r *jsonReader) idValue(v span) (string, bool) {
	if c := r.b[v.start]; c == '-' || isDigit(c) {
		return string(r.text(v)), true
	}
	return r.stringValue(v)
}
