package audience

import (
	"encoding/json"
	"time"
)

// number reads a numeric operand, whether decoded with UseNumber or built in Go.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	}
	return 0, false
}

// scalar normalises a string, number or bool operand for comparison: numbers
// become float64.
func scalar(v any) (any, bool) {
	switch x := v.(type) {
	case string, bool:
		return x, true
	}
	if f, ok := number(v); ok {
		return f, true
	}
	return nil, false
}

func parseDate(s string) (time.Time, error) { return time.Parse(time.DateOnly, s) }
