package console

import "testing"

// The builder's messages name the input to fix, read from the end of the
// path of the node the engine refused.
func TestConditionField(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"and[1].value":            "value",
		"and[1].value[2]":         "value",
		"or[0].not.op":            "op",
		"and[2].count.op":         "count",
		"and[2].count.value":      "count",
		"and[0].where[1].value":   "where",
		"and[0].where[1].op":      "where",
		"and[0].where[1]":         "where",
		"and[0].within_days":      "window",
		"and[0].order.between":    "window",
		"and[0].order.metric":     "order",
		"and[0].order":            "order",
		"and[1].and":              "group",
		"and":                     "group",
		"and[3]":                  "node",
		"":                        "node",
		"and[1].or[0].and[2].not": "node",
	} {
		if got := conditionField(path); got != want {
			t.Errorf("conditionField(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestNumberGroupsThousands(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := number(n).String(); got != want {
			t.Errorf("number(%d) = %q, want %q", n, got, want)
		}
	}
}
