package tag

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Auto-tag rules (自动打标). A rule says: when something happens to a
// customer (its trigger), if the customer's state satisfies the rule's
// condition tree and expression, add and/or remove tags. Triggers:
//
//   - event: the customer performed an event (name + property filters),
//     optionally for at least the Nth time within D days;
//   - order_paid / order_refunded: an order of the customer was paid or
//     refunded (amount range, product, category, channel, the customer's
//     paid order count);
//   - attribute_changed: one of the named attributes of the profile changed;
//   - schedule: daily at HH:MM in the workspace's time zone, over every
//     customer the condition tree selects.
//
// Rules act in real time (rule_run.go), on schedule and through back-fills
// (rule_job.go), and can be tried against one customer (rule_test_run.go).

// TriggerKind says what makes a rule run.
type TriggerKind string

// Trigger kinds.
const (
	TriggerEvent            TriggerKind = "event"
	TriggerOrderPaid        TriggerKind = "order_paid"
	TriggerOrderRefunded    TriggerKind = "order_refunded"
	TriggerAttributeChanged TriggerKind = "attribute_changed"
	TriggerSchedule         TriggerKind = "schedule"
)

// TriggerKinds lists every trigger kind.
func TriggerKinds() []TriggerKind {
	return []TriggerKind{TriggerEvent, TriggerOrderPaid, TriggerOrderRefunded, TriggerAttributeChanged, TriggerSchedule}
}

// Limits on rules.
const (
	MaxRules          = 500 // per workspace
	MaxRuleNameLen    = 50
	MaxRuleTags       = 20 // tags one rule adds, and tags it removes
	MaxExprLen        = 2000
	MaxWatched        = 20   // attributes one attribute_changed rule watches
	MaxTriggerCount   = 1000 // "at least N times" of an event trigger
	DefaultCountDays  = 400  // window of a count without within_days
	maxTriggerTextLen = 255
)

// Trigger is what makes a rule run. Only the fields of its kind may be set.
type Trigger struct {
	Kind TriggerKind `json:"kind" enum:"event,order_paid,order_refunded,attribute_changed,schedule" doc:"What makes the rule run."`

	// event
	Event      string              `json:"event,omitempty" doc:"event: the event name (track event, or page/screen name)."`
	Where      []audience.PropCond `json:"where,omitempty" doc:"event: filters on the event's properties, as in a condition tree's event predicate (same matcher); all must hold."`
	Count      int                 `json:"count,omitempty" doc:"event: fire only when this is at least the count-th matching event of the customer within within_days (this one included), counted among the customer's latest 1,000 events of that name; default 1."`
	WithinDays int                 `json:"within_days,omitempty" doc:"event: the window of count, in days of the workspace time zone (today included); default 400."`

	// order_paid, order_refunded
	MinFen     *int64              `json:"min_fen,omitempty" doc:"Orders: at least this amount in fen — paid_fen of a paid order, the refund's amount of a refund."`
	MaxFen     *int64              `json:"max_fen,omitempty" doc:"Orders: at most this amount in fen."`
	SKU        string              `json:"sku,omitempty" doc:"Orders: the order has an item of this SKU."`
	Category   string              `json:"category,omitempty" doc:"Orders: the order has an item of this category."`
	Source     string              `json:"source,omitempty" doc:"Orders: the order came from this channel (miniapp, tmall, jd, douyin_shop, offline_store, other)."`
	OrderCount *audience.CountCond `json:"order_count,omitempty" doc:"Orders: the customer's number of paid orders, this one included, e.g. {\"op\": \"=\", \"value\": 1} for a first order."`

	// attribute_changed
	Attributes []string `json:"attributes,omitempty" doc:"attribute_changed: the attributes watched (city, gender, birthday, a custom trait, …); a change to any fires the rule."`

	// schedule
	At string `json:"at,omitempty" doc:"schedule: the time of day, HH:MM in the workspace time zone." example:"03:00"`
}

// RuleInput is a rule's definition, as created or replaced.
type RuleInput struct {
	Name        string
	Description string
	Enabled     *bool // nil: enabled
	Trigger     Trigger
	Conditions  *audience.Condition // nil: no condition on the customer's state
	Expr        string              // "": none
	Add         []int64             // tags to add
	Remove      []int64             // tags to remove
	Retract     bool
}

// RuleStats are what a rule has done.
type RuleStats struct {
	TimesFired       int64     `json:"times_fired" doc:"Times the rule's trigger and conditions held and its actions ran; a daily run of a schedule rule counts each customer it matched; back-fills are not counted."`
	CustomersChanged int64     `json:"customers_changed" doc:"Times the actions changed a customer's tags."`
	CustomersTagged  int64     `json:"customers_tagged" doc:"Customers now holding a tag this rule applied (only from the stats operation; 0 in lists)."`
	LastFiredAt      time.Time `json:"last_fired_at,omitzero"`
	LastError        string    `json:"last_error,omitempty" doc:"The last error the rule met (cleared when the rule is edited)."`
	LastErrorAt      time.Time `json:"last_error_at,omitzero"`
}

// Rule is an auto-tag rule.
type Rule struct {
	ID          int64               `json:"id"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Enabled     bool                `json:"enabled"`
	Trigger     Trigger             `json:"trigger"`
	Conditions  *audience.Condition `json:"conditions,omitempty" doc:"A condition tree on the customer's state when the rule runs."`
	Expr        string              `json:"expr,omitempty" doc:"An expr-lang expression that must be true; sees event, order and customer."`
	Add         []int64             `json:"add" nullable:"false" doc:"Tags the rule adds."`
	Remove      []int64             `json:"remove" nullable:"false" doc:"Tags the rule removes."`
	Retract     bool                `json:"retract" doc:"Runs over the workspace (schedule, back-fill) also take the rule's added tags back from customers that no longer match — only applications this rule made."`
	TagRefs     map[string]string   `json:"tag_refs" doc:"group/name of each tag in add and remove, by id, for display; a deleted tag is absent."`
	NextRunAt   time.Time           `json:"next_run_at,omitzero" doc:"schedule: when the next daily run is due."`
	Stats       RuleStats           `json:"stats"`
	CreatedBy   string              `json:"created_by"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
}

// definition is what the definition column holds.
type definition struct {
	Trigger    Trigger             `json:"trigger"`
	Conditions *audience.Condition `json:"conditions,omitempty"`
	Expr       string              `json:"expr,omitempty"`
	Add        []int64             `json:"add"`
	Remove     []int64             `json:"remove"`
	Retract    bool                `json:"retract,omitempty"`
}

// sourceRef is the source_ref of a rule's tag applications.
func sourceRef(ruleID int64) string { return "rule:" + strconv.FormatInt(ruleID, 10) }

// application is how a rule's writes are recorded.
func (r *Rule) application() Application {
	return Application{Source: SourceRule, SourceRef: sourceRef(r.ID), AppliedBy: r.Name}
}

// ---- validation ----

// prefixed re-roots the field paths of an error under prefix.
func prefixed(prefix string, err error) error {
	e, ok := errs.As(err)
	if !ok || len(e.Fields) == 0 {
		return err
	}
	out := *e
	out.Fields = make([]errs.FieldError, len(e.Fields))
	for i, f := range e.Fields {
		loc := f.Location
		if loc == "(root)" || loc == "" {
			loc = prefix
		} else if strings.HasPrefix(loc, "[") {
			loc = prefix + loc
		} else {
			loc = prefix + "." + loc
		}
		out.Message = strings.Replace(out.Message, f.Location+":", loc+":", 1)
		f.Location, f.Message = loc, strings.Replace(f.Message, f.Location+":", loc+":", 1)
		out.Fields[i] = f
	}
	return &out
}

func badRule(path, format string, args ...any) error {
	return errs.Field(path, "invalid_rule", "%s: %s", path, fmt.Sprintf(format, args...))
}

func cleanRuleName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n == 0 || n > MaxRuleNameLen {
		return "", errs.Field("name", "invalid_name", "the name must be 1–%d characters", MaxRuleNameLen)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", errs.Field("name", "invalid_name", "the name may not contain control characters")
	}
	return s, nil
}

// parseClock reads HH:MM.
func parseClock(s string) (h, m int, ok bool) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, 0, false
	}
	return t.Hour(), t.Minute(), true
}

// checkTrigger validates a trigger; paths start at "trigger".
func checkTrigger(t *Trigger) error {
	const p = "trigger"
	t.Event = strings.TrimSpace(t.Event)
	eventSet := t.Event != "" || t.Where != nil || t.Count != 0 || t.WithinDays != 0
	orderSet := t.MinFen != nil || t.MaxFen != nil || t.SKU != "" || t.Category != "" || t.Source != "" || t.OrderCount != nil
	isOrder := t.Kind == TriggerOrderPaid || t.Kind == TriggerOrderRefunded
	switch {
	case !slices.Contains(TriggerKinds(), t.Kind):
		return badRule(p+".kind", "unknown trigger %q (use event, order_paid, order_refunded, attribute_changed or schedule)", t.Kind)
	case eventSet && t.Kind != TriggerEvent:
		return badRule(p, "event, where, count and within_days belong to event triggers")
	case orderSet && !isOrder:
		return badRule(p, "min_fen, max_fen, sku, category, source and order_count belong to order triggers")
	case t.Attributes != nil && t.Kind != TriggerAttributeChanged:
		return badRule(p+".attributes", "attributes belong to attribute_changed triggers")
	case t.At != "" && t.Kind != TriggerSchedule:
		return badRule(p+".at", "at belongs to schedule triggers")
	}
	switch t.Kind {
	case TriggerEvent:
		if t.Event == "" {
			return badRule(p+".event", "the event name is required")
		}
		if len(t.Event) > maxTriggerTextLen {
			return badRule(p+".event", "the event name may be at most %d bytes", maxTriggerTextLen)
		}
		// The filters are a condition tree's event predicate: let the tree
		// check them, then point its paths into the trigger.
		c := audience.Condition{Event: t.Event, Where: t.Where}
		if err := c.Validate(); err != nil {
			return prefixed(p, err)
		}
		if t.Count < 0 || t.Count > MaxTriggerCount {
			return badRule(p+".count", "must be 1–%d", MaxTriggerCount)
		}
		if t.WithinDays < 0 || t.WithinDays > 3660 {
			return badRule(p+".within_days", "must be 1–3660")
		}
		if t.WithinDays != 0 && t.Count <= 1 {
			return badRule(p+".within_days", "within_days is the window of count; give a count of 2 or more")
		}
	case TriggerOrderPaid, TriggerOrderRefunded:
		for _, f := range []struct {
			name string
			v    *int64
		}{{"min_fen", t.MinFen}, {"max_fen", t.MaxFen}} {
			if f.v != nil && *f.v < 0 {
				return badRule(p+"."+f.name, "must be 0 or more fen")
			}
		}
		if t.MinFen != nil && t.MaxFen != nil && *t.MaxFen < *t.MinFen {
			return badRule(p+".max_fen", "is below min_fen")
		}
		for _, f := range []struct{ name, v string }{{"sku", t.SKU}, {"category", t.Category}, {"source", t.Source}} {
			if len(f.v) > maxTriggerTextLen {
				return badRule(p+"."+f.name, "may be at most %d bytes", maxTriggerTextLen)
			}
		}
		if c := t.OrderCount; c != nil {
			if !slices.Contains([]string{"=", "!=", ">", ">=", "<", "<="}, c.Op) {
				return badRule(p+".order_count.op", "unknown operator %q (use =, !=, >, >=, <, <=)", c.Op)
			}
			if c.Value < 0 {
				return badRule(p+".order_count.value", "must be 0 or more")
			}
		}
	case TriggerAttributeChanged:
		if len(t.Attributes) == 0 || len(t.Attributes) > MaxWatched {
			return badRule(p+".attributes", "name 1–%d attributes to watch", MaxWatched)
		}
		for i, a := range t.Attributes {
			a = strings.TrimSpace(a)
			if a == "" || len(a) > 64 {
				return badRule(fmt.Sprintf("%s.attributes[%d]", p, i), "an attribute name is 1–64 bytes")
			}
			t.Attributes[i] = a
		}
		t.Attributes = slices.Compact(slices.Sorted(slices.Values(t.Attributes)))
	case TriggerSchedule:
		if _, _, ok := parseClock(t.At); !ok {
			return badRule(p+".at", "give the time of day as HH:MM, e.g. 03:00")
		}
	}
	return nil
}

// conditionTags resolves every tag reference of a condition tree, so a rule
// naming a tag that does not exist is refused when saved, with the node's
// path.
func (s *Service) conditionTags(ctx context.Context, tenantID int64, c *audience.Condition, path string) error {
	at := func(i int, part string) string {
		if path == "" {
			return fmt.Sprintf("%s[%d]", part, i)
		}
		return fmt.Sprintf("%s.%s[%d]", path, part, i)
	}
	sub := func(part string) string {
		if path == "" {
			return part
		}
		return path + "." + part
	}
	for i := range c.And {
		if err := s.conditionTags(ctx, tenantID, &c.And[i], at(i, "and")); err != nil {
			return err
		}
	}
	for i := range c.Or {
		if err := s.conditionTags(ctx, tenantID, &c.Or[i], at(i, "or")); err != nil {
			return err
		}
	}
	if c.Not != nil {
		return s.conditionTags(ctx, tenantID, c.Not, sub("not"))
	}
	check := func(loc, ref string) error {
		if _, err := s.Resolve(ctx, tenantID, ref); err != nil {
			if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
				return errs.Field(loc, e.Code, "%s: %s", loc, e.Message)
			}
			return err
		}
		return nil
	}
	if c.Tag != "" {
		return check(sub("tag"), c.Tag)
	}
	for _, l := range []struct {
		name string
		refs []string
	}{{"tags_any", c.TagsAny}, {"tags_all", c.TagsAll}, {"tags_none", c.TagsNone}} {
		for i, ref := range l.refs {
			if err := check(at(i, l.name), ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkRule validates a definition and compiles its expression. Errors name
// the bad part: name, trigger.where[0].op, conditions.and[1].tag, expr, add[0].
func (rs *Rules) checkRule(ctx context.Context, tenantID int64, in *RuleInput) (definition, error) {
	name, err := cleanRuleName(in.Name)
	if err != nil {
		return definition{}, err
	}
	in.Name = name
	if in.Description, err = cleanDescription(in.Description); err != nil {
		return definition{}, err
	}
	if err := checkTrigger(&in.Trigger); err != nil {
		return definition{}, err
	}
	d := definition{Trigger: in.Trigger, Conditions: in.Conditions, Expr: strings.TrimSpace(in.Expr), Retract: in.Retract}
	if d.Conditions != nil {
		if err := d.Conditions.Validate(); err != nil {
			return definition{}, prefixed("conditions", err)
		}
		if err := rs.tags.conditionTags(ctx, tenantID, d.Conditions, "conditions"); err != nil {
			return definition{}, err
		}
	}
	if d.Trigger.Kind == TriggerSchedule && d.Conditions == nil {
		return definition{}, errs.Field("conditions", "conditions_required",
			"a schedule rule runs over the whole workspace: give the conditions that select its customers")
	}
	if d.Expr != "" {
		if len(d.Expr) > MaxExprLen {
			return definition{}, errs.Field("expr", "invalid_expr", "the expression may be at most %d bytes", MaxExprLen)
		}
		if _, err := compileExpr(d.Expr); err != nil {
			return definition{}, err
		}
	}
	d.Add, d.Remove = uniq(in.Add), uniq(in.Remove)
	switch {
	case len(d.Add)+len(d.Remove) == 0:
		return definition{}, errs.Field("add", "no_actions", "a rule adds or removes at least one tag")
	case len(d.Add) > MaxRuleTags:
		return definition{}, errs.Field("add", "too_many_tags", "a rule adds at most %d tags", MaxRuleTags)
	case len(d.Remove) > MaxRuleTags:
		return definition{}, errs.Field("remove", "too_many_tags", "a rule removes at most %d tags", MaxRuleTags)
	}
	for i, id := range in.Add {
		if slices.Contains(d.Remove, id) {
			return definition{}, errs.Field(fmt.Sprintf("add[%d]", i), "tag_in_add_and_remove", "tag %d is both added and removed: a rule cannot do both", id)
		}
	}
	for _, l := range []struct {
		name string
		ids  []int64
	}{{"add", in.Add}, {"remove", in.Remove}} {
		for i, id := range l.ids {
			if _, err := tagRefs(ctx, rs.db, tenantID, []int64{id}); err != nil {
				if errs.Is(err, errs.NotFound) {
					return definition{}, errs.Field(fmt.Sprintf("%s[%d]", l.name, i), "tag_not_found", "%s[%d]: no tag with id %d", l.name, i, id)
				}
				return definition{}, err
			}
		}
	}
	if d.Retract && len(d.Add) == 0 {
		return definition{}, errs.Field("retract", "invalid_rule", "retract takes back added tags; this rule adds none")
	}
	return d, nil
}

// ---- store ----

const ruleCols = `id, tenant_id, name, description, enabled, definition, next_run_at, fired_count, changed_count,
	last_fired_at, last_error, last_error_at, created_by, created_at, updated_at`

func scanRule(row interface{ Scan(...any) error }) (Rule, error) {
	var r Rule
	var tenantID int64
	var def string
	var next, lastFired, lastErr sql.NullInt64
	var created, updated int64
	if err := row.Scan(&r.ID, &tenantID, &r.Name, &r.Description, &r.Enabled, &def, &next, &r.Stats.TimesFired, &r.Stats.CustomersChanged,
		&lastFired, &r.Stats.LastError, &lastErr, &r.CreatedBy, &created, &updated); err != nil {
		return Rule{}, err
	}
	var d definition
	if err := json.Unmarshal([]byte(def), &d); err != nil {
		return Rule{}, fmt.Errorf("tag: rule %d has a damaged definition: %w", r.ID, err)
	}
	r.Trigger, r.Conditions, r.Expr, r.Add, r.Remove, r.Retract = d.Trigger, d.Conditions, d.Expr, d.Add, d.Remove, d.Retract
	if r.Add == nil {
		r.Add = []int64{}
	}
	if r.Remove == nil {
		r.Remove = []int64{}
	}
	r.NextRunAt = db.NullMillis(next)
	r.Stats.LastFiredAt, r.Stats.LastErrorAt = db.NullMillis(lastFired), db.NullMillis(lastErr)
	r.CreatedAt, r.UpdatedAt = db.FromMillis(created), db.FromMillis(updated)
	return r, nil
}

func ruleNotFound(id int64) error {
	return errs.NotFoundf("tag_rule", "no auto-tag rule with id %d", id)
}

func duplicateRule(name string) error {
	return errs.E(errs.Conflict, "duplicate_rule", "an auto-tag rule named %q already exists", name)
}

// Rule returns one rule.
func (rs *Rules) Rule(ctx context.Context, tenantID, id int64) (Rule, error) {
	r, err := scanRule(rs.db.QueryRowContext(ctx, `SELECT `+ruleCols+` FROM tag_rules WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Rule{}, ruleNotFound(id)
	}
	if err != nil {
		return Rule{}, fmt.Errorf("tag: unable to fetch rule %d: %w", id, err)
	}
	list := []Rule{r}
	if err := rs.fillTagRefs(ctx, tenantID, list); err != nil {
		return Rule{}, err
	}
	return list[0], nil
}

// Rules lists the workspace's rules by id (at most MaxRules, so unpaged).
func (rs *Rules) Rules(ctx context.Context, tenantID int64) ([]Rule, error) {
	out, err := rs.rulesWhere(ctx, rs.db, `tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		return nil, err
	}
	if err := rs.fillTagRefs(ctx, tenantID, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (rs *Rules) rulesWhere(ctx context.Context, q db.Querier, where string, args ...any) ([]Rule, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+ruleCols+` FROM tag_rules WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("tag: unable to list rules: %w", err)
	}
	defer rows.Close()
	out := []Rule{}
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, fmt.Errorf("tag: unable to read rule: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tag: unable to list rules: %w", err)
	}
	return out, nil
}

// fillTagRefs names the tags of rules for display.
func (rs *Rules) fillTagRefs(ctx context.Context, tenantID int64, list []Rule) error {
	var ids []int64
	for _, r := range list {
		ids = append(ids, r.Add...)
		ids = append(ids, r.Remove...)
	}
	names := map[string]string{}
	if ids = uniq(ids); len(ids) > 0 {
		args := []any{tenantID}
		in := placeholders(&args, ids)
		rows, err := rs.db.QueryContext(ctx, `SELECT t.id, g.name, t.name FROM tags t JOIN tag_groups g ON g.tenant_id = t.tenant_id AND g.id = t.group_id
			WHERE t.tenant_id = $1 AND t.id IN (`+in+`)`, args...)
		if err != nil {
			return fmt.Errorf("tag: unable to name the tags of rules: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var g, n string
			if err := rows.Scan(&id, &g, &n); err != nil {
				return fmt.Errorf("tag: unable to name the tags of rules: %w", err)
			}
			names[strconv.FormatInt(id, 10)] = g + "/" + n
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("tag: unable to name the tags of rules: %w", err)
		}
	}
	for i := range list {
		list[i].TagRefs = map[string]string{}
		for _, id := range slices.Concat(list[i].Add, list[i].Remove) {
			k := strconv.FormatInt(id, 10)
			if n, ok := names[k]; ok {
				list[i].TagRefs[k] = n
			}
		}
	}
	return nil
}

// nextRun is the first HH:MM in loc strictly after now.
func nextRun(at string, loc *time.Location, now time.Time) time.Time {
	h, m, _ := parseClock(at)
	n := now.In(loc)
	t := time.Date(n.Year(), n.Month(), n.Day(), h, m, 0, 0, loc)
	for !t.After(now) {
		t = time.Date(t.Year(), t.Month(), t.Day()+1, h, m, 0, 0, loc)
	}
	return t.UTC()
}

// schedule returns the next_run_at column of a rule: the next run of an
// enabled schedule rule, NULL otherwise.
func (rs *Rules) schedule(ctx context.Context, tenantID int64, enabled bool, t Trigger) (any, error) {
	if !enabled || t.Kind != TriggerSchedule {
		return nil, nil
	}
	loc, err := rs.location(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return db.Millis(nextRun(t.At, loc, rs.now())), nil
}

func (rs *Rules) location(ctx context.Context, tenantID int64) (*time.Location, error) {
	if rs.deps.Location == nil {
		return time.UTC, nil
	}
	loc, err := rs.deps.Location(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("tag: unable to find the time zone of workspace %d: %w", tenantID, err)
	}
	return loc, nil
}

// CreateRule adds a rule. An enabled rule acts on what happens from now on;
// a back-fill (StartBackfill) applies it to the customers that already
// qualify.
func (rs *Rules) CreateRule(ctx context.Context, p tenant.Principal, in RuleInput) (Rule, error) {
	d, err := rs.checkRule(ctx, p.TenantID, &in)
	if err != nil {
		return Rule{}, err
	}
	enabled := in.Enabled == nil || *in.Enabled
	def, err := json.Marshal(d)
	if err != nil {
		return Rule{}, fmt.Errorf("tag: unable to encode rule: %w", err)
	}
	next, err := rs.schedule(ctx, p.TenantID, enabled, d.Trigger)
	if err != nil {
		return Rule{}, err
	}
	now := db.Millis(rs.now())
	var watch any
	if d.Trigger.Kind == TriggerAttributeChanged {
		watch = now
	}
	var id int64
	err = rs.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tag_rules WHERE tenant_id = $1`, p.TenantID).Scan(&n); err != nil {
			return fmt.Errorf("tag: unable to count rules: %w", err)
		}
		if n >= MaxRules {
			return errs.E(errs.Conflict, "too_many_rules", "a workspace may have at most %d auto-tag rules", MaxRules)
		}
		err := tx.QueryRowContext(ctx,
			`INSERT INTO tag_rules (tenant_id, name, description, enabled, trigger_kind, definition, next_run_at, watch_from, created_by, created_at, updated_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id`,
			p.TenantID, in.Name, in.Description, enabled, string(d.Trigger.Kind), string(def), next, watch, p.Name, now).Scan(&id)
		if db.IsUniqueViolation(err) {
			return duplicateRule(in.Name)
		}
		if err != nil {
			return fmt.Errorf("tag: unable to create rule: %w", err)
		}
		return rs.tags.auditTx(ctx, tx, p, "tag_rule.create", "tag_rule", id, in.Name)
	})
	if err != nil {
		return Rule{}, err
	}
	rs.invalidate(p.TenantID)
	return rs.Rule(ctx, p.TenantID, id)
}

// UpdateRule replaces a rule's definition (name, trigger, conditions,
// expression, actions, enabled). Its statistics stay; its last error is
// cleared. Customers tagged under the old definition keep their tags until a
// back-fill with retract, or another rule, takes them back.
func (rs *Rules) UpdateRule(ctx context.Context, p tenant.Principal, id int64, in RuleInput) (Rule, error) {
	old, err := rs.Rule(ctx, p.TenantID, id)
	if err != nil {
		return Rule{}, err
	}
	d, err := rs.checkRule(ctx, p.TenantID, &in)
	if err != nil {
		return Rule{}, err
	}
	enabled := old.Enabled
	if in.Enabled != nil {
		enabled = *in.Enabled
	}
	def, err := json.Marshal(d)
	if err != nil {
		return Rule{}, fmt.Errorf("tag: unable to encode rule: %w", err)
	}
	next, err := rs.schedule(ctx, p.TenantID, enabled, d.Trigger)
	if err != nil {
		return Rule{}, err
	}
	now := db.Millis(rs.now())
	watched := d.Trigger.Kind == TriggerAttributeChanged
	err = rs.db.Tx(ctx, func(tx *sql.Tx) error {
		// An attribute rule keeps its watch position unless it only now
		// became one.
		res, err := tx.ExecContext(ctx,
			`UPDATE tag_rules SET name = $3, description = $4, enabled = $5, trigger_kind = $6, definition = $7, next_run_at = $8,
			   watch_from = CASE WHEN $9 THEN coalesce(watch_from, $10) ELSE NULL END,
			   last_error = '', last_error_at = NULL, updated_at = $10
			 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, in.Name, in.Description, enabled, string(d.Trigger.Kind), string(def), next, watched, now)
		if db.IsUniqueViolation(err) {
			return duplicateRule(in.Name)
		}
		if err != nil {
			return fmt.Errorf("tag: unable to update rule %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ruleNotFound(id)
		}
		if old.Trigger.Kind == TriggerAttributeChanged && !slices.Equal(old.Trigger.Attributes, d.Trigger.Attributes) {
			// What was seen of other attributes says nothing about these.
			if _, err := tx.ExecContext(ctx, `DELETE FROM tag_rule_seen WHERE tenant_id = $1 AND rule_id = $2`, p.TenantID, id); err != nil {
				return fmt.Errorf("tag: unable to reset rule %d: %w", id, err)
			}
		}
		return rs.tags.auditTx(ctx, tx, p, "tag_rule.update", "tag_rule", id, in.Name)
	})
	if err != nil {
		return Rule{}, err
	}
	rs.invalidate(p.TenantID)
	return rs.Rule(ctx, p.TenantID, id)
}

// SetRuleEnabled turns a rule on or off. A schedule rule turned on runs next
// at its time of day.
func (rs *Rules) SetRuleEnabled(ctx context.Context, p tenant.Principal, id int64, enabled bool) (Rule, error) {
	r, err := rs.Rule(ctx, p.TenantID, id)
	if err != nil {
		return Rule{}, err
	}
	if r.Enabled == enabled {
		return r, nil
	}
	next, err := rs.schedule(ctx, p.TenantID, enabled, r.Trigger)
	if err != nil {
		return Rule{}, err
	}
	action := "tag_rule.disable"
	if enabled {
		action = "tag_rule.enable"
	}
	err = rs.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE tag_rules SET enabled = $3, next_run_at = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, enabled, next, db.Millis(rs.now())); err != nil {
			return fmt.Errorf("tag: unable to switch rule %d: %w", id, err)
		}
		return rs.tags.auditTx(ctx, tx, p, action, "tag_rule", id, r.Name)
	})
	if err != nil {
		return Rule{}, err
	}
	rs.invalidate(p.TenantID)
	return rs.Rule(ctx, p.TenantID, id)
}

// DeleteRule deletes a rule and its runs. The tags it applied stay (their
// history says which rule applied them).
func (rs *Rules) DeleteRule(ctx context.Context, p tenant.Principal, id int64) error {
	r, err := rs.Rule(ctx, p.TenantID, id)
	if err != nil {
		return err
	}
	err = rs.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM tag_rule_seen WHERE tenant_id = $1 AND rule_id = $2`,
			`DELETE FROM tag_rule_jobs WHERE tenant_id = $1 AND rule_id = $2`,
			`DELETE FROM tag_rules WHERE tenant_id = $1 AND id = $2`,
		} {
			if _, err := tx.ExecContext(ctx, q, p.TenantID, id); err != nil {
				return fmt.Errorf("tag: unable to delete rule %d: %w", id, err)
			}
		}
		return rs.tags.auditTx(ctx, tx, p, "tag_rule.delete", "tag_rule", id, r.Name)
	})
	if err != nil {
		return err
	}
	rs.invalidate(p.TenantID)
	return nil
}

// RuleStats returns a rule's statistics, with the number of customers now
// holding a tag the rule applied. Counts the engine has not yet written
// (at most a second's worth) are included.
func (rs *Rules) RuleStats(ctx context.Context, tenantID, id int64) (RuleStats, error) {
	if err := rs.FlushStats(ctx); err != nil {
		return RuleStats{}, err
	}
	r, err := rs.Rule(ctx, tenantID, id)
	if err != nil {
		return RuleStats{}, err
	}
	st := r.Stats
	if len(r.Add) > 0 {
		args := []any{tenantID, string(SourceRule), sourceRef(id)}
		in := placeholders(&args, r.Add)
		if err := rs.db.QueryRowContext(ctx, `SELECT count(DISTINCT customer_id) FROM customer_tags
			WHERE tenant_id = $1 AND tag_id IN (`+in+`) AND source = $2 AND source_ref = $3`, args...).Scan(&st.CustomersTagged); err != nil {
			return RuleStats{}, fmt.Errorf("tag: unable to count customers of rule %d: %w", id, err)
		}
	}
	return st, nil
}
