package tag

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Audiences is what rules need of the audience engine (*audience.Service).
type Audiences interface {
	// Match checks a condition tree for one customer.
	Match(ctx context.Context, tenantID, customerID int64, c audience.Condition) (bool, error)
	// Evaluate selects every customer matching a condition tree.
	Evaluate(ctx context.Context, tenantID int64, c audience.Condition) (audience.Result, error)
	// Sync brings a workspace's index up to date with the database.
	Sync(ctx context.Context, tenantID int64) error
	// Touch makes the index re-read customers before its next answer.
	Touch(tenantID int64, ids ...int64)
	// EventSeen records that a customer performed an event.
	EventSeen(tenantID, customerID int64, name string, at time.Time)
}

var _ Audiences = (*audience.Service)(nil)

// Profiles gives rules what they read of customers: the attributes
// expressions and attribute triggers see, and which profiles changed.
type Profiles interface {
	// Attributes returns the attributes of the given live customers (merged
	// profiles are left out), named as in condition trees: gender, city,
	// total_spend, order_count, rfm_class, custom traits, …
	Attributes(ctx context.Context, tenantID int64, ids []int64) (map[int64]map[string]any, error)
	// ChangedSince returns the customers whose profile was written at or
	// after since.
	ChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error)
}

// EventLog reads a customer's recent events, for "at least N times within D
// days" event triggers.
type EventLog interface {
	// CustomerEvents returns the customer's events named name since a time,
	// newest first, at most limit.
	CustomerEvents(ctx context.Context, tenantID, customerID int64, name string, since time.Time, limit int) ([]EventFact, error)
}

// RuleDeps are what the rule engine works with. Audiences and Profiles are
// required; the rest are optional.
type RuleDeps struct {
	Audiences Audiences
	Profiles  Profiles
	Events    EventLog // nil: event triggers with a count cannot be used
	// Location returns a workspace's time zone (nil: UTC).
	Location func(ctx context.Context, tenantID int64) (*time.Location, error)
	Logger   *slog.Logger
	Now      func() time.Time
	// Workers is how many goroutines apply real-time rules (default 4). An
	// occurrence goes to the worker of its customer, so one customer's
	// occurrences are handled in order.
	Workers int
	// CacheTTL is how long a node trusts its cached rules before reading
	// them again, so edits made on other nodes take effect (default 5s).
	CacheTTL time.Duration
	// Tick is how often the engine writes statistics, looks for due
	// schedule rules and queued jobs, and reads attribute changes (default 1s).
	Tick time.Duration
}

// Rules is the auto-tag rule engine and store.
type Rules struct {
	tags *Service
	db   *db.DB
	deps RuleDeps
	log  *slog.Logger
	now  func() time.Time

	cacheMu sync.Mutex
	cache   map[int64]*ruleSet

	statsMu sync.Mutex
	flushMu sync.Mutex // serialises FlushStats
	stats   map[ruleKey]*statDelta

	running atomic.Bool
	queues  []chan Occurrence
	wake    chan struct{} // a job was queued
	owner   string        // this process, as a job lease owner
}

// NewRules returns the rule engine over the tag service.
func NewRules(tags *Service, deps RuleDeps) *Rules {
	if deps.Logger == nil {
		deps.Logger = tags.log
	}
	if deps.Now == nil {
		deps.Now = tags.now
	}
	if deps.Workers <= 0 {
		deps.Workers = 4
	}
	if deps.CacheTTL <= 0 {
		deps.CacheTTL = 5 * time.Second
	}
	if deps.Tick <= 0 {
		deps.Tick = time.Second
	}
	rs := &Rules{tags: tags, db: tags.db, deps: deps, log: deps.Logger, now: deps.Now,
		cache: map[int64]*ruleSet{}, stats: map[ruleKey]*statDelta{}, wake: make(chan struct{}, 1),
		owner: newOwner()}
	for range deps.Workers {
		rs.queues = append(rs.queues, make(chan Occurrence, 1024))
	}
	return rs
}

// ---- what happened ----

// EventFact is an event as rules see it.
type EventFact struct {
	Name       string         `json:"name" doc:"The event name (track event, or page/screen name)."`
	Type       string         `json:"type,omitempty" doc:"track, page, screen, …"`
	Properties map[string]any `json:"properties,omitempty"`
	Timestamp  time.Time      `json:"timestamp,omitzero"`
	// RawProperties, when Properties is nil, is decoded the first time a
	// rule looks at the properties: most events meet no rule.
	RawProperties json.RawMessage `json:"-"`
}

func (e *EventFact) props() map[string]any {
	if e.Properties == nil && len(e.RawProperties) > 0 {
		var m map[string]any
		if err := json.Unmarshal(e.RawProperties, &m); err == nil {
			e.Properties = m
		}
		e.RawProperties = nil
	}
	if e.Properties == nil {
		e.Properties = map[string]any{}
	}
	return e.Properties
}

// OrderItemFact is one line of an order.
type OrderItemFact struct {
	SKU          string `json:"sku"`
	Name         string `json:"name,omitempty"`
	Category     string `json:"category,omitempty"`
	Quantity     int64  `json:"quantity,omitempty"`
	UnitPriceFen int64  `json:"unit_price_fen,omitempty"`
	AmountFen    int64  `json:"amount_fen,omitempty"`
}

// OrderFact is a paid or refunded order as rules see it (money in fen).
type OrderFact struct {
	Source      string          `json:"source,omitempty"`
	OrderID     string          `json:"order_id,omitempty"`
	Status      string          `json:"status,omitempty"`
	TotalFen    int64           `json:"total_fen,omitempty"`
	DiscountFen int64           `json:"discount_fen,omitempty"`
	PaidFen     int64           `json:"paid_fen,omitempty"`
	RefundedFen int64           `json:"refunded_fen,omitempty"`
	RefundFen   int64           `json:"refund_fen,omitempty" doc:"The refund that triggered an order_refunded rule."`
	PaidAt      time.Time       `json:"paid_at,omitzero"`
	Items       []OrderItemFact `json:"items,omitempty"`
}

// Occurrence is something that happened to a customer that rules react to.
type Occurrence struct {
	TenantID   int64
	CustomerID int64
	Kind       TriggerKind // event, order_paid or order_refunded
	Event      *EventFact  // Kind event
	Order      *OrderFact  // order kinds
	// At is when it was committed; zero means now.
	At time.Time

	// rule, when set, limits the occurrence to one rule (attribute changes
	// are found per rule).
	rule *compiled
}

// Notify hands an occurrence to the engine. While the engine runs (Run), it
// is queued for the customer's worker — blocking when that queue is full, so
// a burst slows its producer rather than being dropped; otherwise it is
// handled at once on the caller's goroutine.
func (rs *Rules) Notify(o Occurrence) {
	if o.At.IsZero() {
		o.At = rs.now()
	}
	if !rs.running.Load() {
		rs.handle(context.Background(), o)
		return
	}
	q := rs.queues[uint64(o.CustomerID)%uint64(len(rs.queues))]
	for {
		select {
		case q <- o:
			return
		case <-time.After(100 * time.Millisecond):
			// Full for a while: still running means wait on, stopped means
			// nobody will take it.
			if !rs.running.Load() {
				rs.handle(context.Background(), o)
				return
			}
		}
	}
}

// ---- the cache of rules ----

// compiled is a rule ready to run.
type compiled struct {
	Rule
	prog *exprProgram
}

// ruleSet is a workspace's enabled rules by what triggers them.
type ruleSet struct {
	loaded  time.Time
	byEvent map[string][]*compiled
	byKind  map[TriggerKind][]*compiled
}

func (rs *Rules) invalidate(tenantID int64) {
	rs.cacheMu.Lock()
	delete(rs.cache, tenantID)
	rs.cacheMu.Unlock()
}

func compileRule(r Rule) (*compiled, error) {
	c := &compiled{Rule: r}
	if r.Expr != "" {
		p, err := compileExpr(r.Expr)
		if err != nil {
			return nil, err
		}
		c.prog = p
	}
	return c, nil
}

// ruleSet returns the workspace's enabled rules, from the cache when fresh.
func (rs *Rules) ruleSet(ctx context.Context, tenantID int64) (*ruleSet, error) {
	rs.cacheMu.Lock()
	set, ok := rs.cache[tenantID]
	rs.cacheMu.Unlock()
	if ok && rs.now().Sub(set.loaded) < rs.deps.CacheTTL {
		return set, nil
	}
	loaded := rs.now()
	list, err := rs.rulesWhere(ctx, rs.db, `tenant_id = $1 AND enabled ORDER BY id`, tenantID)
	if err != nil {
		return nil, err
	}
	set = &ruleSet{loaded: loaded, byEvent: map[string][]*compiled{}, byKind: map[TriggerKind][]*compiled{}}
	for _, r := range list {
		c, err := compileRule(r)
		if err != nil {
			rs.log.ErrorContext(ctx, "tag rule: expression no longer compiles; rule skipped", "tenant", tenantID, "rule", r.ID, "err", err)
			rs.recordError(tenantID, r.ID, err)
			continue
		}
		if r.Trigger.Kind == TriggerEvent {
			set.byEvent[r.Trigger.Event] = append(set.byEvent[r.Trigger.Event], c)
		} else {
			set.byKind[r.Trigger.Kind] = append(set.byKind[r.Trigger.Kind], c)
		}
	}
	rs.cacheMu.Lock()
	rs.cache[tenantID] = set
	rs.cacheMu.Unlock()
	return set, nil
}

// ---- statistics ----

// ruleKey names a rule with its workspace.
type ruleKey struct{ tenantID, ruleID int64 }

type statDelta struct {
	fired, changed int64
	lastFired      time.Time
	err            string
	errAt          time.Time
}

func (rs *Rules) delta(tenantID, ruleID int64) *statDelta {
	k := ruleKey{tenantID, ruleID}
	d := rs.stats[k]
	if d == nil {
		d = &statDelta{}
		rs.stats[k] = d
	}
	return d
}

func (rs *Rules) recordFired(tenantID, ruleID int64, changed int) {
	rs.statsMu.Lock()
	defer rs.statsMu.Unlock()
	d := rs.delta(tenantID, ruleID)
	d.fired++
	d.changed += int64(changed)
	d.lastFired = rs.now()
}

func (rs *Rules) recordError(tenantID, ruleID int64, err error) {
	rs.statsMu.Lock()
	defer rs.statsMu.Unlock()
	d := rs.delta(tenantID, ruleID)
	d.err, d.errAt = errorText(err), rs.now()
}

// errorText is what a rule's last_error says: the user-facing message of a
// domain error, the text of any other.
func errorText(err error) string {
	s := err.Error()
	if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
		s = e.Message
	}
	if utf8Len := len([]rune(s)); utf8Len > 500 {
		s = string([]rune(s)[:500])
	}
	return s
}

// FlushStats writes the statistics gathered since the last flush. The engine
// flushes every tick; the stats operation flushes first.
func (rs *Rules) FlushStats(ctx context.Context) error {
	// One flush at a time: a flush that finds nothing pending must not
	// return (and its caller read the counts) while another's writes are
	// still on their way.
	rs.flushMu.Lock()
	defer rs.flushMu.Unlock()
	rs.statsMu.Lock()
	pending := rs.stats
	rs.stats = map[ruleKey]*statDelta{}
	rs.statsMu.Unlock()
	for k, d := range pending {
		var lastFired, errAt any
		if !d.lastFired.IsZero() {
			lastFired = db.Millis(d.lastFired)
		}
		if !d.errAt.IsZero() {
			errAt = db.Millis(d.errAt)
		}
		_, err := rs.db.ExecContext(ctx, `UPDATE tag_rules SET fired_count = fired_count + $2, changed_count = changed_count + $3,
			last_fired_at = CASE WHEN $4 > coalesce(last_fired_at, 0) THEN $4 ELSE last_fired_at END,
			last_error = CASE WHEN $6 > coalesce(last_error_at, 0) THEN $5 ELSE last_error END,
			last_error_at = CASE WHEN $6 > coalesce(last_error_at, 0) THEN $6 ELSE last_error_at END
			WHERE tenant_id = $7 AND id = $1`, k.ruleID, d.fired, d.changed, coalesceMillis(lastFired), d.err, coalesceMillis(errAt), k.tenantID)
		if err != nil {
			// Put them back for the next flush.
			rs.statsMu.Lock()
			m := rs.delta(k.tenantID, k.ruleID)
			m.fired += d.fired
			m.changed += d.changed
			if d.lastFired.After(m.lastFired) {
				m.lastFired = d.lastFired
			}
			if d.errAt.After(m.errAt) {
				m.err, m.errAt = d.err, d.errAt
			}
			rs.statsMu.Unlock()
			return fmt.Errorf("tag: unable to write statistics of rule %d: %w", k.ruleID, err)
		}
	}
	return nil
}

// coalesceMillis turns "no time" into 0, which never wins the comparisons
// of FlushStats.
func coalesceMillis(v any) int64 {
	if v == nil {
		return 0
	}
	return v.(int64)
}

// ---- evaluation ----

// facts are what one occurrence lets rules look at; the costly parts load
// at most once per occurrence, and only when a rule asks.
type facts struct {
	tenantID, customerID int64
	kind                 TriggerKind
	event                *EventFact
	order                *OrderFact
	// sample: the event is a test's sample, not in the event log.
	sample bool

	attrs    map[string]any
	attrsErr error
	loaded   bool
	indexed  bool
}

// attributes loads the customer's attributes and tags.
func (rs *Rules) attributes(ctx context.Context, f *facts) (map[string]any, error) {
	if f.loaded {
		return f.attrs, f.attrsErr
	}
	f.loaded = true
	m, err := rs.deps.Profiles.Attributes(ctx, f.tenantID, []int64{f.customerID})
	if err != nil {
		f.attrsErr = err
		return nil, err
	}
	a, ok := m[f.customerID]
	if !ok {
		f.attrsErr = errs.NotFoundf("customer", "no live customer with id %d", f.customerID)
		return nil, f.attrsErr
	}
	applied, err := rs.tags.TagsOf(ctx, f.tenantID, f.customerID)
	if err != nil {
		f.attrsErr = err
		return nil, err
	}
	refs := make([]string, len(applied))
	for i, t := range applied {
		refs[i] = t.Ref
	}
	a["tags"] = refs
	f.attrs = a
	return a, nil
}

// Step is one part of a rule's evaluation, as the test operation reports it.
type Step struct {
	Part    string `json:"part" enum:"trigger,count,conditions,expr,actions" doc:"The part of the rule."`
	OK      bool   `json:"ok" doc:"The part holds (skipped parts count as holding)."`
	Skipped bool   `json:"skipped,omitempty" doc:"The part was not checked, e.g. the trigger when no sample was given."`
	Path    string `json:"path,omitempty" doc:"Where in the rule the part failed, e.g. trigger.where[0] or conditions.and[1]."`
	Detail  string `json:"detail" doc:"What was checked and what was found."`
}

// evaluate checks a rule against an occurrence, cheapest part first:
// trigger, count, conditions, expression. With explain it goes on to find
// which part and node failed, and returns every step. An error means the
// rule could not be checked (a condition the index cannot answer, a failed
// expression run, a database error).
func (rs *Rules) evaluate(ctx context.Context, c *compiled, f *facts, explain bool) (bool, []Step, error) {
	var steps []Step
	add := func(s Step) { steps = append(steps, s) }
	fail := func(s Step) (bool, []Step, error) {
		s.OK = false
		add(s)
		return false, steps, nil
	}
	// broke records the part that could not be checked.
	broke := func(part, path string, err error) (bool, []Step, error) {
		if e, ok := errs.As(err); ok && len(e.Fields) > 0 {
			path = e.Fields[0].Location
		}
		add(Step{Part: part, Path: path, Detail: "could not be checked: " + errorText(err)})
		return false, steps, err
	}
	t := c.Trigger
	// Trigger.
	switch {
	case f.kind == "" && explain:
		add(Step{Part: "trigger", OK: true, Skipped: true, Detail: "no sample given: checked as if the trigger had fired"})
	case f.kind != t.Kind:
		return fail(Step{Part: "trigger", Detail: fmt.Sprintf("the rule is triggered by %s, not %s", t.Kind, f.kind)})
	case t.Kind == TriggerEvent:
		if f.event.Name != t.Event {
			return fail(Step{Part: "trigger", Path: "trigger.event", Detail: fmt.Sprintf("the event is %q, not %q", f.event.Name, t.Event)})
		}
		if i, why := matchWhere(t.Where, f.event.props()); i >= 0 {
			return fail(Step{Part: "trigger", Path: fmt.Sprintf("trigger.where[%d]", i), Detail: why})
		}
		add(Step{Part: "trigger", OK: true, Detail: fmt.Sprintf("event %q matches", t.Event)})
	case t.Kind == TriggerOrderPaid || t.Kind == TriggerOrderRefunded:
		path, why, err := rs.matchOrder(ctx, t, f)
		if err != nil {
			return broke("trigger", "trigger", err)
		}
		if path != "" {
			return fail(Step{Part: "trigger", Path: path, Detail: why})
		}
		add(Step{Part: "trigger", OK: true, Detail: "the order matches"})
	default:
		add(Step{Part: "trigger", OK: true, Detail: string(t.Kind)})
	}
	// Count of an event trigger.
	if t.Kind == TriggerEvent && t.Count > 1 {
		if f.kind == "" {
			add(Step{Part: "count", OK: true, Skipped: true, Detail: "no sample event given: the count was not checked"})
		} else {
			n, err := rs.countEvents(ctx, c, f)
			if err != nil {
				return broke("count", "trigger.count", err)
			}
			days := t.WithinDays
			if days == 0 {
				days = DefaultCountDays
			}
			detail := fmt.Sprintf("%d matching %q events within %d days; the rule needs %d", n, t.Event, days, t.Count)
			if n < t.Count {
				return fail(Step{Part: "count", Path: "trigger.count", Detail: detail})
			}
			add(Step{Part: "count", OK: true, Detail: detail})
		}
	}
	// Conditions on the customer's state.
	if c.Conditions != nil {
		rs.index(f)
		ok, err := rs.deps.Audiences.Match(ctx, f.tenantID, f.customerID, *c.Conditions)
		if err != nil {
			return broke("conditions", "conditions", prefixed("conditions", err))
		}
		if !ok {
			s := Step{Part: "conditions", Path: "conditions", Detail: "the customer does not match the conditions"}
			if explain {
				path, detail, err := rs.explainCondition(ctx, f, c.Conditions, "conditions")
				if err != nil {
					return broke("conditions", "conditions", prefixed("conditions", err))
				}
				s.Path, s.Detail = path, detail
			}
			return fail(s)
		}
		add(Step{Part: "conditions", OK: true, Detail: "the customer matches the conditions"})
	}
	// Expression.
	if c.prog != nil {
		ok, err := rs.runExpr(ctx, c.prog, f)
		if err != nil {
			return broke("expr", "expr", err)
		}
		if !ok {
			return fail(Step{Part: "expr", Path: "expr", Detail: "the expression is false: " + c.Expr})
		}
		add(Step{Part: "expr", OK: true, Detail: "the expression is true"})
	}
	return true, steps, nil
}

// index makes the audience index current for the occurrence's customer
// before conditions are checked: the profile (new customers, traits, spend)
// is re-read and the event recorded.
func (rs *Rules) index(f *facts) {
	if f.indexed {
		return
	}
	f.indexed = true
	rs.deps.Audiences.Touch(f.tenantID, f.customerID)
	if f.event != nil && !f.sample {
		at := f.event.Timestamp
		if at.IsZero() {
			at = rs.now()
		}
		rs.deps.Audiences.EventSeen(f.tenantID, f.customerID, f.event.Name, at)
	}
}

// explainCondition finds the node that makes a tree fail for the customer:
// the first failing child of an and, every child of an or (the or's path is
// reported), the child of a not that holds, or the leaf itself.
func (rs *Rules) explainCondition(ctx context.Context, f *facts, c *audience.Condition, path string) (string, string, error) {
	match := func(n *audience.Condition) (bool, error) {
		return rs.deps.Audiences.Match(ctx, f.tenantID, f.customerID, *n)
	}
	switch c.Kind() {
	case "and":
		for i := range c.And {
			ok, err := match(&c.And[i])
			if err != nil {
				return "", "", err
			}
			if !ok {
				return rs.explainCondition(ctx, f, &c.And[i], fmt.Sprintf("%s.and[%d]", path, i))
			}
		}
	case "or":
		return path, fmt.Sprintf("none of the %d alternatives holds", len(c.Or)), nil
	case "not":
		return path, "the negated condition holds: " + describe(c.Not), nil
	}
	return path, "does not hold: " + describe(c), nil
}

// describe renders a condition node compactly for an explanation.
func describe(c *audience.Condition) string {
	b, err := json.Marshal(c)
	if err != nil {
		return c.Kind()
	}
	s := string(b)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// runExpr runs a rule's expression for the occurrence.
func (rs *Rules) runExpr(ctx context.Context, p *exprProgram, f *facts) (bool, error) {
	attrs, err := rs.attributes(ctx, f)
	if err != nil {
		return false, err
	}
	env := map[string]any{"customer": attrs, "event": nil, "order": nil}
	if f.event != nil {
		env["event"] = map[string]any{"name": f.event.Name, "type": f.event.Type, "timestamp": f.event.Timestamp, "properties": f.event.props()}
	}
	if o := f.order; o != nil {
		items := make([]any, len(o.Items))
		var skus, cats []any
		for i, it := range o.Items {
			items[i] = map[string]any{"sku": it.SKU, "name": it.Name, "category": it.Category, "quantity": it.Quantity,
				"unit_price_fen": it.UnitPriceFen, "amount_fen": it.AmountFen}
			skus = append(skus, it.SKU)
			if it.Category != "" {
				cats = append(cats, it.Category)
			}
		}
		env["order"] = map[string]any{"source": o.Source, "order_id": o.OrderID, "status": o.Status, "total_fen": o.TotalFen,
			"discount_fen": o.DiscountFen, "paid_fen": o.PaidFen, "refunded_fen": o.RefundedFen, "refund_fen": o.RefundFen,
			"paid_at": o.PaidAt, "items": items, "skus": skus, "categories": cats}
	}
	return p.run(env)
}

// matchOrder checks an order trigger; path names the failing field.
func (rs *Rules) matchOrder(ctx context.Context, t Trigger, f *facts) (path, why string, err error) {
	o := f.order
	amount, what := o.PaidFen, "paid"
	if t.Kind == TriggerOrderRefunded {
		amount, what = o.RefundFen, "refunded"
	}
	switch {
	case t.MinFen != nil && amount < *t.MinFen:
		return "trigger.min_fen", fmt.Sprintf("%d fen %s, under the minimum of %d", amount, what, *t.MinFen), nil
	case t.MaxFen != nil && amount > *t.MaxFen:
		return "trigger.max_fen", fmt.Sprintf("%d fen %s, over the maximum of %d", amount, what, *t.MaxFen), nil
	case t.Source != "" && o.Source != t.Source:
		return "trigger.source", fmt.Sprintf("the order came from %q, not %q", o.Source, t.Source), nil
	case t.SKU != "" && !slices.ContainsFunc(o.Items, func(it OrderItemFact) bool { return it.SKU == t.SKU }):
		return "trigger.sku", fmt.Sprintf("the order has no item of SKU %q", t.SKU), nil
	case t.Category != "" && !slices.ContainsFunc(o.Items, func(it OrderItemFact) bool { return it.Category == t.Category }):
		return "trigger.category", fmt.Sprintf("the order has no item in category %q", t.Category), nil
	}
	if c := t.OrderCount; c != nil {
		attrs, err := rs.attributes(ctx, f)
		if err != nil {
			return "", "", err
		}
		n, _ := toFloat(attrs["order_count"])
		if !compareNum(n, c.Op, float64(c.Value)) {
			return "trigger.order_count", fmt.Sprintf("the customer has %v paid orders; the rule needs %s %d", n, c.Op, c.Value), nil
		}
	}
	return "", "", nil
}

// maxCountedEvents bounds the events read to count one trigger: the
// customer's latest this many events of the trigger's name in its window.
const maxCountedEvents = 1000

// countEvents counts the customer's events that match an event trigger
// within its window (a sample event counts as one more).
func (rs *Rules) countEvents(ctx context.Context, c *compiled, f *facts) (int, error) {
	if rs.deps.Events == nil {
		return 0, errs.E(errs.Invalid, "count_unavailable", "counting events is not available here")
	}
	days := c.Trigger.WithinDays
	if days == 0 {
		days = DefaultCountDays
	}
	loc, err := rs.location(ctx, f.tenantID)
	if err != nil {
		return 0, err
	}
	now := rs.now().In(loc)
	since := time.Date(now.Year(), now.Month(), now.Day()-(days-1), 0, 0, 0, 0, loc)
	// Events that fail the filters come back too, so read up to the bound,
	// not the count.
	evs, err := rs.deps.Events.CustomerEvents(ctx, f.tenantID, f.customerID, c.Trigger.Event, since, maxCountedEvents)
	if err != nil {
		return 0, err
	}
	n := 0
	if f.sample {
		n++
	}
	for i := range evs {
		if j, _ := matchWhere(c.Trigger.Where, evs[i].props()); j < 0 {
			n++
		}
	}
	return n, nil
}

// ---- real time ----

// handle applies the rules an occurrence triggers.
func (rs *Rules) handle(ctx context.Context, o Occurrence) {
	var cands []*compiled
	if o.rule != nil {
		cands = []*compiled{o.rule}
	} else {
		set, err := rs.ruleSet(ctx, o.TenantID)
		if err != nil {
			rs.log.ErrorContext(ctx, "tag rule: unable to load rules", "tenant", o.TenantID, "err", err)
			return
		}
		if o.Kind == TriggerEvent {
			if o.Event == nil {
				return
			}
			cands = set.byEvent[o.Event.Name]
		} else {
			cands = set.byKind[o.Kind]
		}
	}
	if len(cands) == 0 {
		return
	}
	f := &facts{tenantID: o.TenantID, customerID: o.CustomerID, kind: o.Kind, event: o.Event, order: o.Order}
	for _, c := range cands {
		rs.fire(ctx, c, f)
	}
}

// fire evaluates one rule for an occurrence and applies its actions.
func (rs *Rules) fire(ctx context.Context, c *compiled, f *facts) {
	ok, _, err := rs.evaluate(ctx, c, f, false)
	if err == nil && ok {
		var ch Change
		ch, err = rs.tags.Update(ctx, f.tenantID, f.customerID, c.Add, c.Remove, c.application())
		if err == nil {
			changed := 0
			if !ch.empty() {
				changed = 1
				// Later rules of this occurrence see the new tags.
				f.loaded, f.attrs = false, nil
			}
			rs.recordFired(f.tenantID, c.ID, changed)
			return
		}
		if errs.Is(err, errs.NotFound) && errs.CodeOf(err) == "tag_not_found" {
			err = errs.E(errs.Invalid, "tag_not_found", "a tag of the rule no longer exists (%s); edit the rule", errorText(err))
		}
	}
	if err != nil {
		if errs.CodeOf(err) == "customer_not_found" {
			return // merged or deleted meanwhile: nothing to tag
		}
		rs.recordError(f.tenantID, c.ID, err)
		lvl := slog.LevelWarn
		if errs.KindOf(err) == errs.Internal {
			lvl = slog.LevelError
		}
		rs.log.Log(ctx, lvl, "tag rule failed", "tenant", f.tenantID, "rule", c.ID, "customer", f.customerID, "err", err)
	}
}

// Run runs the engine until ctx ends: the real-time workers, and every tick
// the statistics, due schedule rules, queued back-fills and attribute
// changes. Occurrences notified before Run or after it returns are handled
// on the notifier's goroutine.
func (rs *Rules) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, q := range rs.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case o := <-q:
					rs.handle(ctx, o)
				}
			}
		}()
	}
	rs.running.Store(true)
	wg.Add(1)
	go func() {
		defer wg.Done()
		rs.work(ctx)
	}()
	t := time.NewTicker(rs.deps.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rs.running.Store(false)
			wg.Wait()
			// Occurrences queued but not handled are handled now, on this
			// goroutine, with a context that outlives the cancelled one.
			bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			for _, q := range rs.queues {
			drain:
				for {
					select {
					case o := <-q:
						rs.handle(bg, o)
					default:
						break drain
					}
				}
			}
			if err := rs.FlushStats(bg); err != nil {
				rs.log.Warn("tag rule: unable to write statistics at shutdown", "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
		if err := rs.FlushStats(ctx); err != nil && ctx.Err() == nil {
			rs.log.Error("tag rule: unable to write statistics", "err", err)
		}
		if err := rs.queueDue(ctx); err != nil && ctx.Err() == nil {
			rs.log.Error("tag rule: unable to start due schedule rules", "err", err)
		}
		if err := rs.watch(ctx); err != nil && ctx.Err() == nil {
			rs.log.Error("tag rule: unable to follow attribute changes", "err", err)
		}
	}
}

// ---- property filters ----

// matchWhere checks an event's properties against a trigger's filters with
// the condition tree's own matcher (audience.MatchProps), so a trigger and a
// tree's event predicate agree on every filter. It returns the index of the
// first filter that fails (-1: all hold) and why.
func matchWhere(where []audience.PropCond, props map[string]any) (int, string) {
	for i, w := range where {
		if !audience.MatchProps(where[i : i+1])(props) {
			v, ok := props[w.Prop]
			return i, fmt.Sprintf("property %s is %s; the rule needs %s %s", w.Prop, show(v, ok), w.Op, show(w.Value, true))
		}
	}
	return -1, ""
}

func show(v any, ok bool) string {
	if !ok || v == nil {
		return "not set"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// toFloat reads a number from JSON-decoded or Go values.
func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func compareNum(a float64, op string, b float64) bool {
	switch op {
	case "=":
		return a == b
	case "!=":
		return a != b
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "<":
		return a < b
	case "<=":
		return a <= b
	}
	return false
}

// newOwner names this process as a job lease owner.
func newOwner() string {
	return strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatUint(uint64(rand.Uint32()), 36)
}
