package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// wireBatch is the envelope of POST /v1/batch: what applies to every
// message of its batch.
type wireBatch struct {
	Context      json.RawMessage
	Integrations json.RawMessage
	WriteKey     string
	SentAt       string
}

// readEnvelope reads the members of a batch body other than batch itself.
func readEnvelope(r *jsonReader, top []member) (wireBatch, error) {
	var env wireBatch
	for _, m := range top {
		k := r.key(m.key)
		var ok bool
		switch k {
		case "context", "integrations":
			raw := r.text(m.val)
			if !isObject(raw) {
				return env, fmt.Errorf("%s must be an object", k)
			}
			if k == "context" {
				env.Context = raw
			} else {
				env.Integrations = raw
			}
			continue
		case "writeKey":
			env.WriteKey, ok = r.stringValue(m.val)
		case "sentAt":
			env.SentAt, ok = r.stringValue(m.val)
		default:
			continue
		}
		if !ok {
			return env, fmt.Errorf("%s must be a string", k)
		}
	}
	return env, nil
}

// wireMessage is one message as Segment libraries send it. JSON documents
// are the bytes received.
type wireMessage struct {
	Type, Event, Name                                   string
	MessageID, UserID, AnonymousID, PreviousID, GroupID string
	Timestamp, OriginalTimestamp, SentAt, WriteKey      string
	Properties, Traits, Context, Integrations           json.RawMessage
}

// readMessageFields reads a message's members. problem says what is wrong
// with the first member of the wrong type.
func readMessageFields(r *jsonReader, m rawMessage) (w wireMessage, problem string) {
	for _, mb := range r.members[m.members.start:m.members.end] {
		k := r.key(mb.key)
		var dst *string
		var raw *json.RawMessage
		id := false
		switch k {
		case "type":
			dst = &w.Type
		case "event":
			dst = &w.Event
		case "name":
			dst = &w.Name
		case "timestamp":
			dst = &w.Timestamp
		case "originalTimestamp":
			dst = &w.OriginalTimestamp
		case "sentAt":
			dst = &w.SentAt
		case "writeKey":
			dst = &w.WriteKey
		case "messageId":
			dst, id = &w.MessageID, true
		case "userId":
			dst, id = &w.UserID, true
		case "anonymousId":
			dst, id = &w.AnonymousID, true
		case "previousId":
			dst, id = &w.PreviousID, true
		case "groupId":
			dst, id = &w.GroupID, true
		case "properties":
			raw = &w.Properties
		case "traits":
			raw = &w.Traits
		case "context":
			raw = &w.Context
		case "integrations":
			raw = &w.Integrations
		default:
			continue
		}
		var ok bool
		switch {
		case raw != nil:
			*raw = r.text(mb.val)
			ok = isObject(*raw)
		case id:
			*dst, ok = r.idValue(mb.val)
		default:
			*dst, ok = r.stringValue(mb.val)
		}
		if !ok && problem == "" {
			switch {
			case raw != nil:
				problem = k + " must be an object"
			case id:
				problem = k + " must be a string or a number"
			default:
				problem = k + " must be a string"
			}
		}
	}
	return w, problem
}

// flexString is an identifier sent as a JSON string or number.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		if bytes.IndexByte(b[1:len(b)-1], '\\') < 0 {
			*f = flexString(b[1 : len(b)-1])
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*f = flexString(b)
	default:
		return errNotString
	}
	return nil
}

var errNotString = errors.New("must be a string or a number")

// isObject reports whether raw is absent, null or a JSON object: what
// properties, traits, context and integrations may be.
func isObject(raw json.RawMessage) bool {
	return len(raw) == 0 || raw[0] == '{' || string(raw) == "null"
}

// document returns a JSON object as stored: "{}" when absent or null.
func document(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return "{}"
	}
	return string(raw)
}

// emptyObject reports whether raw carries no members.
func emptyObject(raw json.RawMessage) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	return len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0
}

// mergeObjects returns the batch-level object with the message's members laid
// over it: the message wins, key by key.
func mergeObjects(batch, msg json.RawMessage) (json.RawMessage, error) {
	if emptyObject(batch) {
		return msg, nil
	}
	if emptyObject(msg) {
		return batch, nil
	}
	var b, m map[string]json.RawMessage
	if err := json.Unmarshal(batch, &b); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return nil, err
	}
	for k, v := range m {
		b[k] = v
	}
	return json.Marshal(b)
}

// parseTime reads an ISO 8601 timestamp; "" is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	// The ISO 8601 forms SDKs send; the last ones have no zone and are taken
	// as UTC.
	for _, l := range [...]string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02",
	} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 timestamp", truncate(s, 64))
}

// syntaxProblem describes where JSON broke, for people: the byte offset with
// its line and column.
func syntaxProblem(body []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := lineCol(body, se.Offset)
		return fmt.Sprintf("the body is not valid JSON: %s at byte %d (line %d, column %d)", se.Error(), se.Offset, line, col)
	case errors.As(err, &te):
		line, col := lineCol(body, te.Offset)
		where := te.Field
		if where == "" {
			where = "the body"
		}
		return fmt.Sprintf("%s must be %s, not %s (byte %d, line %d, column %d)", where, jsonKind(te.Type.Kind().String()), te.Value, te.Offset, line, col)
	default:
		return "the body is not valid JSON: " + err.Error()
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	default:
		return "a " + goKind
	}
}

// lineCol converts a byte offset (as json errors report it) to a 1-based line
// and column.
func lineCol(b []byte, off int64) (line, col int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	if off < 0 {
		off = 0
	}
	head := b[:off]
	line = bytes.Count(head, []byte{'\n'}) + 1
	col = int(off) - (bytes.LastIndexByte(head, '\n') + 1)
	if col == 0 {
		col = 1
	}
	return line, col
}

// clean makes a decoded string storable on both engines: PostgreSQL refuses
// NUL in text.
func clean(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// quoteID formats an identifier for a message a person reads.
func quoteID(s string) string { return strconv.Quote(truncate(s, 64)) }
