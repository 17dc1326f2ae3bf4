package event

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

var jsonSeeds = []string{
	``, ` `, `{}`, `[]`, `null`, `true`, `false`, `nul`, `tru`, `0`, `-0`, `01`, `-`, `1.`, `.5`, `1.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `-1.5e10`,
	`"x"`, `"\u00e9"`, `"\uD83D\uDE00"`, `"\x"`, `"\u12"`, `"a` + "\t" + `b"`, `"a\/b"`, `"\"\\\b\f\n\r\t"`, `"` + "\x7f" + `"`,
	`{"a":1,}`, `{"a":1 "b":2}`, `{"a" 1}`, `{a:1}`, `{"a":1}}`, `[1,]`, `[1 2]`, `[[[[]]]]`, `{"a":[{"b":{"c":[1,2,{"d":null}]}}]}`,
	` { "batch" : [ ] } `, `{"batch":[{"type":"track"},1,"x",[],null]}`, `{"batch":{}}`, `{"batch":[],"batch":[{"a":1}]}`,
	`{"batch":[{"a":1}],"batch":5}`, `{"b\u0061tch":[{"type":"track"}]}`, `{"batch":[{"userId":1e3,"messageId":"m","context":{"x":[1]}}],"context":{"a":1},"writeKey":"k"}`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 9999) + strings.Repeat("]", 9999),
	`{"batch":[` + strings.Repeat(`{"a":`, 50) + `1` + strings.Repeat(`}`, 50) + `]}`, "{\"a\":\"\xff\"}", `{"a":1}` + "\n", `{"a":1} x`,
}

// The reader must accept exactly what encoding/json accepts, and record
// each message's members as encoding/json sees them.
func FuzzJSONReader(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := json.Valid(b)
		if got := valid(b); got != want {
			t.Fatalf("valid(%q) = %v, json.Valid says %v", b, got, want)
		}
		r := &jsonReader{b: b}
		bb, ok := r.readBatch()
		if ok != want {
			t.Fatalf("readBatch(%q) ok = %v, json.Valid says %v", b, ok, want)
		}
		r2 := &jsonReader{b: b}
		if _, ok := r2.readMessage(); ok != want {
			t.Fatalf("readMessage(%q) ok = %v, json.Valid says %v", b, ok, want)
		}
		if !ok || !bb.object || !utf8.Valid(b) {
			// Ingest makes bodies valid UTF-8 before reading them.
			return
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		var batch []json.RawMessage
		if json.Unmarshal(top["batch"], &batch) != nil {
			batch = nil
		}
		if bb.hasBatch != (batch != nil) || len(bb.msgs) != len(batch) {
			t.Fatalf("%q: batch %v with %d messages; encoding/json found %d", b, bb.hasBatch, len(bb.msgs), len(batch))
		}
		for i, m := range bb.msgs {
			if !bytes.Equal(r.text(m.span), batch[i]) {
				t.Fatalf("%q: message %d is %q, encoding/json says %q", b, i, r.text(m.span), batch[i])
			}
			var members map[string]json.RawMessage
			isObj := batch[i][0] == '{' && json.Unmarshal(batch[i], &members) == nil
			if m.object != isObj {
				t.Fatalf("%q: message %d object=%v", b, i, m.object)
			}
			got := map[string]string{}
			for _, mb := range r.members[m.members.start:m.members.end] {
				got[r.key(mb.key)] = string(r.text(mb.val))
			}
			for k, v := range members {
				if got[k] != string(v) {
					t.Fatalf("%q: message %d member %q is %q, encoding/json says %q", b, i, k, got[k], v)
				}
			}
			if len(got) != len(members) {
				t.Fatalf("%q: message %d has %d members, encoding/json found %d", b, i, len(got), len(members))
			}
		}
	})
}

func TestReadMessageFields(t *testing.T) {
	b := []byte(`{"type":"track","event":"Order \"Completed\"","userId":42,"anonymousId":null,"messageId":"m\u00e9",
		"properties":{"a":[1,2]},"context":{},"traits":null,"timestamp":"2024-01-01T00:00:00Z","extra":{"x":1}}`)
	r := &jsonReader{b: b}
	m, ok := r.readMessage()
	if !ok {
		t.Fatal("not read")
	}
	w, problem := readMessageFields(r, m)
	if problem != "" {
		t.Fatal(problem)
	}
	if w.Type != "track" || w.Event != `Order "Completed"` || w.UserID != "42" || w.AnonymousID != "" || w.MessageID != "mé" ||
		string(w.Properties) != `{"a":[1,2]}` || string(w.Context) != `{}` || string(w.Traits) != "null" || w.Timestamp != "2024-01-01T00:00:00Z" {
		t.Fatalf("%+v", w)
	}
	for body, want := range map[string]string{
		`{"userId":true}`:       "userId must be a string or a number",
		`{"event":5}`:           "event must be a string",
		`{"properties":[1]}`:    "properties must be an object",
		`{"timestamp":{"a":1}}`: "timestamp must be a string",
	} {
		r := &jsonReader{b: []byte(body)}
		m, _ := r.readMessage()
		if _, p := readMessageFields(r, m); p != want {
			t.Errorf("%s: %q, want %q", body, p, want)
		}
	}
}
