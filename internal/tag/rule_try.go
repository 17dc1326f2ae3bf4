package tag

import (
	"context"
	"slices"

	"github.com/siyu-dev/siyu/internal/errs"
)

// TryInput asks what a rule would do for one customer, without doing it.
type TryInput struct {
	RuleID     int64      // a saved rule; 0 means Rule
	Rule       *RuleInput // an unsaved rule (validated as if saved)
	CustomerID int64
	// Event is a sample event for an event rule: it is checked against the
	// trigger and counts as one more occurrence. Without it the trigger is
	// not checked.
	Event *EventFact
	// Order is a sample order for an order rule (refund_fen for a refund).
	Order *OrderFact
}

// TryResult is what a rule would do for one customer now.
type TryResult struct {
	CustomerID int64             `json:"customer_id" doc:"The customer checked (the surviving profile, when a merged id was given)."`
	Fires      bool              `json:"fires" doc:"The rule would fire: its trigger (or sample), count, conditions and expression all hold."`
	Add        []int64           `json:"add" nullable:"false" doc:"Tags the rule would add that the customer does not hold yet (empty when it would not fire)."`
	Remove     []int64           `json:"remove" nullable:"false" doc:"Tags the rule would remove that the customer holds (empty when it would not fire)."`
	TagRefs    map[string]string `json:"tag_refs" doc:"group/name of every tag the rule adds or removes, by id."`
	Steps      []Step            `json:"steps" nullable:"false" doc:"Each part checked, in order, up to the first that failed."`
	Reason     string            `json:"reason" doc:"Why the rule would not fire (the failing part), or what it would change."`
}

// TryRule checks a rule, saved or not, against one customer as things stand,
// optionally with a sample event or order standing for its trigger, and says
// whether it would fire, which tags it would add and remove, and which part
// failed when it would not. Nothing is written.
func (rs *Rules) TryRule(ctx context.Context, tenantID int64, in TryInput) (TryResult, error) {
	var r Rule
	switch {
	case in.RuleID != 0:
		var err error
		if r, err = rs.Rule(ctx, tenantID, in.RuleID); err != nil {
			return TryResult{}, err
		}
	case in.Rule != nil:
		ri := *in.Rule
		d, err := rs.checkRule(ctx, tenantID, &ri)
		if err != nil {
			return TryResult{}, err
		}
		r = Rule{Name: ri.Name, Enabled: true, Trigger: d.Trigger, Conditions: d.Conditions, Expr: d.Expr, Add: d.Add, Remove: d.Remove, Retract: d.Retract}
	default:
		return TryResult{}, errs.Field("rule", "rule_required", "give rule_id or rule")
	}
	c, err := compileRule(r)
	if err != nil {
		return TryResult{}, err
	}
	cid, err := survivor(ctx, rs.db, tenantID, in.CustomerID)
	if err != nil {
		return TryResult{}, err
	}
	f := &facts{tenantID: tenantID, customerID: cid}
	switch {
	case in.Event != nil && in.Order != nil:
		return TryResult{}, errs.Field("event", "invalid_sample", "give a sample event or a sample order, not both")
	case in.Event != nil:
		ev := *in.Event
		if ev.Timestamp.IsZero() {
			ev.Timestamp = rs.now()
		}
		f.kind, f.event, f.sample = TriggerEvent, &ev, true
	case in.Order != nil:
		o := *in.Order
		f.kind, f.order = TriggerOrderPaid, &o
		if r.Trigger.Kind == TriggerOrderRefunded || o.RefundFen > 0 {
			f.kind = TriggerOrderRefunded
		}
	}
	out := TryResult{CustomerID: cid, Add: []int64{}, Remove: []int64{}, Steps: []Step{}}
	fires, steps, err := rs.evaluate(ctx, c, f, true)
	out.Steps = append(out.Steps, steps...)
	if err != nil && errs.KindOf(err) == errs.Internal && !isExprError(steps) {
		return TryResult{}, err
	}
	out.Fires = fires && err == nil
	if len(steps) > 0 && !steps[len(steps)-1].OK {
		last := steps[len(steps)-1]
		out.Reason = last.Part + ": " + last.Detail
	}
	held, herr := rs.tags.TagIDsOf(ctx, tenantID, []int64{cid})
	if herr != nil {
		return TryResult{}, herr
	}
	if out.Fires {
		for _, id := range r.Add {
			if !slices.Contains(held[cid], id) {
				out.Add = append(out.Add, id)
			}
		}
		for _, id := range r.Remove {
			if slices.Contains(held[cid], id) {
				out.Remove = append(out.Remove, id)
			}
		}
		detail := "the customer already is as the rule would leave them"
		if len(out.Add)+len(out.Remove) > 0 {
			detail = "the rule would change the customer's tags"
		}
		out.Steps = append(out.Steps, Step{Part: "actions", OK: true, Detail: detail})
		out.Reason = detail
	}
	list := []Rule{{Add: r.Add, Remove: r.Remove}}
	if err := rs.fillTagRefs(ctx, tenantID, list); err != nil {
		return TryResult{}, err
	}
	out.TagRefs = list[0].TagRefs
	return out, nil
}

// isExprError says whether the failing step was the expression's run, whose
// errors (a missing field, a budget) are the rule's fault, reported as a
// failing step rather than a server error.
func isExprError(steps []Step) bool {
	return len(steps) > 0 && steps[len(steps)-1].Part == "expr"
}
