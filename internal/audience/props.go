package audience

import (
	"strings"
)

// MatchProps returns a filter that reports whether an event's properties pass
// every property condition: a missing property passes only is_set's negation
// (it fails is_set and every comparison).
func MatchProps(where []PropCond) func(props map[string]any) bool {
	return func(props map[string]any) bool {
		for _, w := range where {
			v, ok := props[w.Prop]
			if !ok || v == nil {
				return false
			}
			if !propMatches(v, w) {
				return false
			}
		}
		return true
	}
}

func propMatches(v any, w PropCond) bool {
	switch w.Op {
	case "is_set":
		return true
	case "=", "!=":
		eq := sameValue(v, w.Value)
		return eq == (w.Op == "=")
	case "in", "not_in":
		items, _ := w.Value.([]any)
		in := false
		for _, it := range items {
			if sameValue(v, it) {
				in = true
				break
			}
		}
		return in == (w.Op == "in")
	case "contains":
		s, ok := v.(string)
		return ok && strings.Contains(strings.ToLower(s), strings.ToLower(catValue(w.Value)))
	default:
		a, ok1 := number(v)
		b, ok2 := number(w.Value)
		return ok1 && ok2 && compare(a, w.Op, b)
	}
}

// sameValue compares a property with an operand: numbers by value, the rest
// by their text.
func sameValue(a, b any) bool {
	fa, okA := number(a)
	fb, okB := number(b)
	if okA && okB {
		return fa == fb
	}
	return catValue(a) == catValue(b)
}
