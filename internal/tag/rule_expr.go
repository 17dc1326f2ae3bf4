package tag

import (
	"errors"
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/siyu-dev/siyu/internal/errs"
)

// A rule's expression (github.com/expr-lang/expr) says what the condition
// tree cannot: arithmetic across fields, string functions, comparisons
// between the event and the profile. It must evaluate to a bool and sees:
//
//	event     the triggering event: name, type, timestamp, properties (a map);
//	          nil when there is none (orders, attributes, schedule, back-fill)
//	order     the paid or refunded order: source, order_id, status, total_fen,
//	          discount_fen, paid_fen, refunded_fen, refund_fen (this refund),
//	          paid_at, items [{sku, name, category, quantity, unit_price_fen,
//	          amount_fen}], skus, categories; nil when there is none
//	customer  the profile: id, gender, province, city, birthday, source,
//	          source_code, first_seen_at, last_seen_at, total_spend,
//	          order_count, avg_order_value, first_order_at, last_order_at
//	          (money in fen, times as times), rfm_r/f/m, rfm_class, lifecycle,
//	          fan_tier, every custom trait by name, and tags ("group/name")
//
// for example `event.properties.price * event.properties.quantity >= 20000`,
// `customer.total_spend > 0 && now() - customer.last_order_at > duration("720h")`
// or `"价值/高价值" in customer.tags`. Use `?.` where a part may be missing:
// `event?.properties?.coupon != nil`.
//
// Expressions are compiled once (when the rule is saved and when rules are
// loaded), limited in size, and run with a memory budget and a time budget,
// so a rule cannot hold up ingest.
const (
	exprMaxNodes = 500
	// exprMemory bounds what one run may allocate (in expr's units: items of
	// ranges, arrays and maps); it also bounds loops, which need a range or
	// an array to iterate.
	exprMemory = 100_000
	// exprTimeout is the time budget of one run.
	exprTimeout = 50 * time.Millisecond
)

// exprProgram is a compiled expression.
type exprProgram struct {
	src  string
	prog *vm.Program
}

// exprEnv is the shape expressions are checked against; values are filled
// per run.
func exprEnv() map[string]any {
	return map[string]any{"event": map[string]any{}, "order": map[string]any{}, "customer": map[string]any{}}
}

// compileExpr compiles and checks an expression; errors point at "expr" and
// say where in the source the problem is.
func compileExpr(src string) (*exprProgram, error) {
	p, err := expr.Compile(src, expr.Env(exprEnv()), expr.AsBool(), expr.MaxNodes(exprMaxNodes))
	if err != nil {
		return nil, errs.Field("expr", "invalid_expr", "expr: %v", err)
	}
	return &exprProgram{src: src, prog: p}, nil
}

// errExprTimeout is returned by a run over its time budget.
var errExprTimeout = errors.New("the expression ran longer than its time budget")

// run evaluates the expression against env. A run that fails (a missing
// field used as a number, the memory or time budget exceeded) is an error:
// the rule does not fire, and the error is recorded on the rule.
func (p *exprProgram) run(env map[string]any) (bool, error) {
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Each run has its own VM: they are not safe for concurrent use.
		m := vm.VM{MemoryBudget: exprMemory}
		v, err := m.Run(p.prog, env)
		done <- result{v, err}
	}()
	t := time.NewTimer(exprTimeout)
	defer t.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return false, fmt.Errorf("expr: %w", r.err)
		}
		b, ok := r.v.(bool)
		if !ok {
			return false, fmt.Errorf("expr: the expression gave %T, not a bool", r.v)
		}
		return b, nil
	case <-t.C:
		// The run goes on until its memory budget stops it; nothing waits
		// for it.
		return false, fmt.Errorf("expr: %w (%s)", errExprTimeout, exprTimeout)
	}
}
