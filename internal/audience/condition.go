// Package audience turns conditions on customers into sets of customers, at
// once, on brands of tens of millions. One JSON condition tree is shared by
// audiences, auto-tag rules and journeys; it compiles to a plan of bitmap
// operations over an in-memory index that is rebuilt from the database at start
// and kept current on every write.
package audience

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/siyu-dev/siyu/internal/errs"
)

// Condition is one node of a condition tree. Exactly one of its groups of
// fields is set: a combinator (and, or, not) or one predicate.
//
//	{"and": [
//	  {"tag": "价值/高价值"},
//	  {"not": {"tag": "已流失"}},
//	  {"attr": "city", "op": "in", "value": ["上海", "杭州"]},
//	  {"attr": "total_spend", "op": "between", "value": [10000, 500000]},
//	  {"event": "view_product", "where": [{"prop": "category", "op": "=", "value": "茶饮"}],
//	   "count": {"op": ">=", "value": 2}, "within_days": 30},
//	  {"or": [{"audience": 12}, {"attr": "lifecycle", "op": "=", "value": "成熟期"}]}
//	]}
type Condition struct {
	And []Condition `json:"and,omitempty" doc:"All of these hold."`
	Or  []Condition `json:"or,omitempty" doc:"At least one of these holds."`
	Not *Condition  `json:"not,omitempty" doc:"This does not hold."`

	// Tags, by "group/name" or, when unique in the workspace, by name.
	Tag      string   `json:"tag,omitempty" doc:"Has this tag."`
	TagsAny  []string `json:"tags_any,omitempty" doc:"Has at least one of these tags."`
	TagsAll  []string `json:"tags_all,omitempty" doc:"Has all of these tags."`
	TagsNone []string `json:"tags_none,omitempty" doc:"Has none of these tags."`

	// Attribute comparison: a profile field, a computed attribute or a custom trait.
	Attr  string `json:"attr,omitempty" doc:"Attribute name, e.g. city, gender, total_spend, rfm_class, lifecycle, or a custom trait."`
	Op    string `json:"op,omitempty" enum:"=,!=,in,not_in,>,>=,<,<=,between,is_set,is_not_set,contains,before,after,within_last_days"`
	Value any    `json:"value,omitempty" doc:"Operand: a string, number, bool, list, [low, high] for between, a date for before/after, days for within_last_days."`

	// Behaviour: performed an event, with property filters, a count, in a window.
	Event      string     `json:"event,omitempty" doc:"Event name (track event, or page/screen name)."`
	Where      []PropCond `json:"where,omitempty" doc:"Property filters on the event."`
	Count      *CountCond `json:"count,omitempty" doc:"How many times; default at least once. {op: '=', value: 0} means did not perform."`
	WithinDays int        `json:"within_days,omitempty" doc:"Window: the last N days (workspace time zone)."`
	Between    []string   `json:"between,omitempty" doc:"Window: [from, to] dates, inclusive (YYYY-MM-DD)."`
	Order      *OrderCond `json:"order,omitempty" doc:"Orders: spend or count in a window, or bought a product or category."`
	Source     string     `json:"source,omitempty" doc:"First source channel, e.g. store, miniapp, douyin_live."`
	SourceCode string     `json:"source_code,omitempty" doc:"The channel code (渠道活码) that brought the customer."`
	Staff      int64      `json:"staff,omitempty" doc:"Served by this staff member."`
	Group      string     `json:"group,omitempty" doc:"Member of this customer group (WeCom chat id)."`
	GroupsAny  []string   `json:"groups_any,omitempty" doc:"Member of at least one of these customer groups (WeCom chat ids)."`
	GroupTag   string     `json:"group_tag,omitempty" doc:"Member of a customer group carrying this group tag (by name)."`
	Audience   int64      `json:"audience,omitempty" doc:"Member of this saved audience."`
}

// PropCond filters an event by one property.
type PropCond struct {
	Prop  string `json:"prop"`
	Op    string `json:"op" enum:"=,!=,in,not_in,>,>=,<,<=,contains,is_set"`
	Value any    `json:"value,omitempty"`
}

// CountCond compares a number of occurrences.
type CountCond struct {
	Op    string `json:"op" enum:"=,!=,>,>=,<,<="`
	Value int    `json:"value" minimum:"0"`
}

// OrderCond selects customers by their orders.
type OrderCond struct {
	Metric     string   `json:"metric,omitempty" enum:"spend,count," doc:"spend (paid minus refunded, in fen) or count (paid orders)."`
	Op         string   `json:"op,omitempty" enum:"=,!=,>,>=,<,<=,between,"`
	Value      any      `json:"value,omitempty"`
	SKU        string   `json:"sku,omitempty" doc:"Bought this product."`
	Category   string   `json:"category,omitempty" doc:"Bought in this category."`
	WithinDays int      `json:"within_days,omitempty"`
	Between    []string `json:"between,omitempty"`
}

// Kind names which kind of node a condition is.
func (c *Condition) Kind() string {
	switch {
	case c.And != nil:
		return "and"
	case c.Or != nil:
		return "or"
	case c.Not != nil:
		return "not"
	case c.Tag != "" || c.TagsAny != nil || c.TagsAll != nil || c.TagsNone != nil:
		return "tag"
	case c.Attr != "":
		return "attr"
	case c.Event != "":
		return "event"
	case c.Order != nil:
		return "order"
	case c.Source != "" || c.SourceCode != "":
		return "source"
	case c.Staff != 0:
		return "staff"
	case c.Group != "" || c.GroupsAny != nil || c.GroupTag != "":
		return "group"
	case c.Audience != 0:
		return "audience"
	}
	return ""
}

// Limits on a tree, so a request cannot make the engine do unbounded work.
const (
	MaxDepth  = 12
	MaxNodes  = 200
	MaxGroups = 200 // chat ids in one groups_any
)

// Parse decodes a condition tree strictly (unknown fields are errors) and
// validates it. Errors name the path of the bad node, e.g. "and[2].op".
func Parse(b []byte) (Condition, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var c Condition
	if err := dec.Decode(&c); err != nil {
		return Condition{}, errs.Field("conditions", "invalid_conditions", "the condition tree is not valid JSON of the documented shape: %v", err)
	}
	if err := c.Validate(); err != nil {
		return Condition{}, err
	}
	return c, nil
}

// Validate checks the tree's shape: one kind per node, known operators,
// operands of the right type, windows that make sense, bounded size.
func (c *Condition) Validate() error {
	n := 0
	return c.validate("", 0, &n)
}

func bad(path, format string, args ...any) error {
	if path == "" {
		path = "(root)"
	}
	return errs.Field(path, "invalid_condition", "%s: %s", path, fmt.Sprintf(format, args...))
}

func join(path, part string) string {
	if path == "" {
		return part
	}
	if strings.HasPrefix(part, "[") {
		return path + part
	}
	return path + "." + part
}

func (c *Condition) validate(path string, depth int, n *int) error {
	*n++
	if *n > MaxNodes {
		return bad(path, "the tree has more than %d nodes", MaxNodes)
	}
	if depth > MaxDepth {
		return bad(path, "the tree is nested deeper than %d levels", MaxDepth)
	}
	kinds := 0
	for _, set := range []bool{c.And != nil, c.Or != nil, c.Not != nil,
		c.Tag != "" || c.TagsAny != nil || c.TagsAll != nil || c.TagsNone != nil,
		c.Attr != "", c.Event != "", c.Order != nil, c.Source != "" || c.SourceCode != "", c.Staff != 0, c.Group != "" || c.GroupsAny != nil || c.GroupTag != "", c.Audience != 0} {
		if set {
			kinds++
		}
	}
	if kinds == 0 {
		return bad(path, "empty condition: give one of and, or, not, tag, attr, event, order, source, staff, group, audience")
	}
	if kinds > 1 {
		return bad(path, "a condition node holds one kind of condition; wrap several in \"and\"")
	}
	switch c.Kind() {
	case "and", "or":
		list, name := c.And, "and"
		if c.Or != nil {
			list, name = c.Or, "or"
		}
		if len(list) == 0 {
			return bad(join(path, name), "needs at least one condition")
		}
		for i := range list {
			if err := list[i].validate(join(path, fmt.Sprintf("%s[%d]", name, i)), depth+1, n); err != nil {
				return err
			}
		}
	case "not":
		return c.Not.validate(join(path, "not"), depth+1, n)
	case "tag":
		set := 0
		for _, v := range [][]string{c.TagsAny, c.TagsAll, c.TagsNone} {
			if v != nil {
				set++
				if len(v) == 0 {
					return bad(path, "the tag list is empty")
				}
			}
		}
		if c.Tag != "" {
			set++
		}
		if set > 1 {
			return bad(path, "use one of tag, tags_any, tags_all, tags_none per node")
		}
	case "attr":
		return validateCompare(path, c.Op, c.Value, true)
	case "group":
		set := 0
		for _, b := range []bool{c.Group != "", c.GroupsAny != nil, c.GroupTag != ""} {
			if b {
				set++
			}
		}
		switch {
		case set > 1:
			return bad(path, "use one of group, groups_any, group_tag per node")
		case c.GroupsAny != nil && len(c.GroupsAny) == 0:
			return bad(join(path, "groups_any"), "the group list is empty")
		case len(c.GroupsAny) > MaxGroups:
			return bad(join(path, "groups_any"), "at most %d groups", MaxGroups)
		}
		if slices.Contains(c.GroupsAny, "") {
			return bad(join(path, "groups_any"), "a group's chat id is empty")
		}
	case "event":
		for i, w := range c.Where {
			p := join(path, fmt.Sprintf("where[%d]", i))
			if w.Prop == "" {
				return bad(p, "prop is required")
			}
			if err := validateCompare(p, w.Op, w.Value, false); err != nil {
				return err
			}
		}
		if c.Count != nil {
			if !isCountOp(c.Count.Op) {
				return bad(join(path, "count.op"), "unknown operator %q (use =, !=, >, >=, <, <=)", c.Count.Op)
			}
			if c.Count.Value < 0 {
				return bad(join(path, "count.value"), "must be 0 or more")
			}
		}
		return validateWindow(path, c.WithinDays, c.Between)
	case "order":
		o := c.Order
		p := join(path, "order")
		switch {
		case o.Metric != "" && (o.SKU != "" || o.Category != ""):
			return bad(p, "use metric, or sku/category, not both")
		case o.Metric == "spend" || o.Metric == "count":
			if err := validateCompare(p, o.Op, o.Value, false); err != nil {
				return err
			}
		case o.Metric != "":
			return bad(join(p, "metric"), "unknown metric %q (use spend or count)", o.Metric)
		case o.SKU == "" && o.Category == "":
			return bad(p, "give metric, sku or category")
		}
		return validateWindow(p, o.WithinDays, o.Between)
	}
	if c.WithinDays != 0 || c.Between != nil || c.Where != nil || c.Count != nil {
		if c.Kind() != "event" {
			return bad(path, "where, count, within_days and between belong to event conditions")
		}
	}
	return nil
}

func isCountOp(op string) bool {
	switch op {
	case "=", "!=", ">", ">=", "<", "<=":
		return true
	}
	return false
}

func validateWindow(path string, within int, between []string) error {
	if within < 0 || within > 3660 {
		return bad(join(path, "within_days"), "must be 1–3660")
	}
	if between != nil {
		if within != 0 {
			return bad(path, "use within_days or between, not both")
		}
		if len(between) != 2 {
			return bad(join(path, "between"), "needs [from, to]")
		}
		from, err1 := parseDate(between[0])
		to, err2 := parseDate(between[1])
		if err1 != nil || err2 != nil {
			return bad(join(path, "between"), "dates must be YYYY-MM-DD")
		}
		if to.Before(from) {
			return bad(join(path, "between"), "to is before from")
		}
	}
	return nil
}

// validateCompare checks an operator and its operand; unary operators take no
// value.
func validateCompare(path, op string, v any, attr bool) error {
	switch op {
	case "is_set", "is_not_set":
		if v != nil {
			return bad(join(path, "value"), "%s takes no value", op)
		}
		return nil
	case "=", "!=", "contains":
		if v == nil {
			return bad(join(path, "value"), "%s needs a value", op)
		}
		if _, ok := scalar(v); !ok {
			return bad(join(path, "value"), "%s needs a string, number or bool", op)
		}
	case ">", ">=", "<", "<=":
		if _, ok := number(v); !ok {
			return bad(join(path, "value"), "%s needs a number", op)
		}
	case "in", "not_in":
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return bad(join(path, "value"), "%s needs a non-empty list", op)
		}
		for i, x := range list {
			if _, ok := scalar(x); !ok {
				return bad(join(path, fmt.Sprintf("value[%d]", i)), "list items must be strings, numbers or bools")
			}
		}
	case "between":
		list, ok := v.([]any)
		if !ok || len(list) != 2 {
			return bad(join(path, "value"), "between needs [low, high]")
		}
		lo, ok1 := number(list[0])
		hi, ok2 := number(list[1])
		if !ok1 || !ok2 {
			return bad(join(path, "value"), "between needs two numbers")
		}
		if hi < lo {
			return bad(join(path, "value"), "high is below low")
		}
	case "before", "after":
		if !attr {
			return bad(join(path, "op"), "%s applies to attributes", op)
		}
		s, ok := v.(string)
		if _, err := parseDate(s); !ok || err != nil {
			return bad(join(path, "value"), "%s needs a date YYYY-MM-DD", op)
		}
	case "within_last_days":
		if !attr {
			return bad(join(path, "op"), "%s applies to attributes", op)
		}
		if d, ok := number(v); !ok || d < 0 || d != float64(int64(d)) {
			return bad(join(path, "value"), "within_last_days needs a whole number of days")
		}
	case "":
		return bad(join(path, "op"), "op is required")
	default:
		return bad(join(path, "op"), "unknown operator %q", op)
	}
	return nil
}
