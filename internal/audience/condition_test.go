package audience

import (
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/errs"
)

func TestParseAcceptsTheDocumentedExample(t *testing.T) {
	t.Parallel()
	doc := `{"and": [
	  {"tag": "高价值"},
	  {"not": {"tag": "已流失"}},
	  {"attr": "city", "op": "in", "value": ["上海", "杭州"]},
	  {"attr": "total_spend", "op": "between", "value": [10000, 500000]},
	  {"event": "view_product", "where": [{"prop": "category", "op": "=", "value": "茶饮"}],
	   "count": {"op": ">=", "value": 2}, "within_days": 30},
	  {"or": [{"audience": 123}, {"attr": "lifecycle", "op": "=", "value": "成熟期"}]}
	]}`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind() != "and" || len(c.And) != 6 || c.And[4].Kind() != "event" || c.And[5].Or[0].Audience != 123 {
		t.Fatalf("parsed %+v", c)
	}
}

func TestParseRejectsWithPath(t *testing.T) {
	t.Parallel()
	cases := []struct{ doc, path string }{
		{`{}`, "(root)"},
		{`{"and": []}`, "and"},
		{`{"and": [{"tag": "a"}, {"attr": "city", "op": "like", "value": "x"}]}`, "and[1].op"},
		{`{"and": [{"tag": "a", "attr": "city"}]}`, "and[0]"},
		{`{"or": [{"attr": "total_spend", "op": "between", "value": [5, 1]}]}`, "or[0].value"},
		{`{"attr": "age", "op": ">", "value": "old"}`, "value"},
		{`{"attr": "city", "op": "in", "value": []}`, "value"},
		{`{"attr": "city", "op": "is_set", "value": 1}`, "value"},
		{`{"event": "buy", "count": {"op": "~", "value": 1}}`, "count.op"},
		{`{"event": "buy", "within_days": 30, "between": ["2026-01-01", "2026-02-01"]}`, "(root)"},
		{`{"event": "buy", "between": ["2026-02-01", "2026-01-01"]}`, "between"},
		{`{"event": "buy", "where": [{"op": "=", "value": 1}]}`, "where[0]"},
		{`{"order": {"metric": "spend", "sku": "x"}}`, "order"},
		{`{"order": {"metric": "margin", "op": ">", "value": 1}}`, "order.metric"},
		{`{"not": {"not": {"not": {}}}}`, "not.not.not"},
		{`{"tag": "a", "within_days": 3}`, "(root)"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.doc))
		e, ok := errs.As(err)
		if !ok || e.Kind != errs.Invalid || len(e.Fields) != 1 || e.Fields[0].Location != c.path {
			t.Errorf("%s: got %v (fields %+v), want an invalid error at %s", c.doc, err, fieldsOf(e), c.path)
		}
	}
	if _, err := Parse([]byte(`{"tagz": "a"}`)); errs.CodeOf(err) != "invalid_conditions" {
		t.Errorf("unknown field: %v", err)
	}
	deep := strings.Repeat(`{"not":`, MaxDepth+2) + `{"tag":"a"}` + strings.Repeat(`}`, MaxDepth+2)
	if _, err := Parse([]byte(deep)); err == nil {
		t.Error("a tree deeper than the limit was accepted")
	}
}

func fieldsOf(e *errs.Error) []errs.FieldError {
	if e == nil {
		return nil
	}
	return e.Fields
}
