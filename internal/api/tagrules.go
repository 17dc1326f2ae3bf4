package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

const tagRuleDoc = "An auto-tag rule (自动打标): when its trigger happens to a customer — an event (name + property filters, " +
	"optionally the Nth time within D days), a paid or refunded order (amount, SKU, category, channel, order count), " +
	"a change of named attributes, or daily at HH:MM in the workspace time zone — and the customer matches its conditions " +
	"(a condition tree, as for audiences) and its expression (expr-lang, sees event, order and customer), " +
	"it adds and/or removes tags. Event and order rules act in real time, as the event or order is committed; " +
	"applications are recorded with source rule and source_ref rule:<id>."

// TagRuleBody is a rule's definition in a request.
type TagRuleBody struct {
	Name        string              `json:"name,omitempty" doc:"Required: 1–50 characters, unique in the workspace (code duplicate_rule). Optional when testing an unsaved rule."`
	Description string              `json:"description,omitempty" doc:"Up to 200 characters."`
	Enabled     *bool               `json:"enabled,omitempty" doc:"Default true on create; unchanged on replace when absent."`
	Trigger     tag.Trigger         `json:"trigger"`
	Conditions  *audience.Condition `json:"conditions,omitempty" doc:"A condition tree on the customer's state (see the audiences operations); required for schedule rules and back-fills."`
	Expr        string              `json:"expr,omitempty" doc:"An expr-lang expression that must be true, e.g. event.properties.price >= 100 || \"价值/高价值\" in customer.tags. Sees event (name, type, timestamp, properties), order (paid_fen, refund_fen, items, skus, categories, …) and customer (attributes, traits, tags); event and order are nil when absent."`
	Add         []TagRef            `json:"add,omitempty" maxItems:"20" doc:"Tags to add, by id or group/name."`
	Remove      []TagRef            `json:"remove,omitempty" maxItems:"20" doc:"Tags to remove, by id or group/name. A tag cannot be both added and removed."`
	Retract     bool                `json:"retract,omitempty" doc:"Schedule runs and back-fills also take the rule's added tags back from customers that no longer match (only applications this rule made)."`
}

// input resolves the body's tag references into a rule definition.
func (a *API) ruleInput(ctx context.Context, tenantID int64, b *TagRuleBody, prefix string) (tag.RuleInput, error) {
	in := tag.RuleInput{Name: b.Name, Description: b.Description, Enabled: b.Enabled, Trigger: b.Trigger,
		Conditions: b.Conditions, Expr: b.Expr, Retract: b.Retract}
	for _, l := range []struct {
		name string
		refs []TagRef
		out  *[]int64
	}{{"add", b.Add, &in.Add}, {"remove", b.Remove, &in.Remove}} {
		for i, r := range l.refs {
			ids, err := a.resolveRefs(ctx, tenantID, []TagRef{r})
			if err != nil {
				if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
					loc := fmt.Sprintf("%s%s[%d]", prefix, l.name, i)
					return tag.RuleInput{}, errs.Field(loc, e.Code, "%s: %s", loc, e.Message)
				}
				return tag.RuleInput{}, err
			}
			*l.out = append(*l.out, ids...)
		}
	}
	return in, nil
}

// ruleBodyPaths points a domain error's field paths into the request body.
func ruleBodyPaths(prefix string, err error) error {
	e, ok := errs.As(err)
	if !ok || len(e.Fields) == 0 {
		return err
	}
	out := *e
	out.Fields = make([]errs.FieldError, len(e.Fields))
	for i, f := range e.Fields {
		if !strings.HasPrefix(f.Location, "body.") {
			f.Location = prefix + f.Location
		}
		out.Fields[i] = f
	}
	return &out
}

// TagRuleOutput is one rule.
type TagRuleOutput struct {
	Body tag.Rule
}

// TagRuleJobOutput is one run of a rule over the workspace.
type TagRuleJobOutput struct {
	Body tag.RuleJob
}

// TagRuleTestInput asks what a rule would do for one customer.
type TagRuleTestInput struct {
	Body struct {
		RuleID     int64          `json:"rule_id,omitempty" doc:"A saved rule to test; or give rule."`
		Rule       *TagRuleBody   `json:"rule,omitempty" doc:"An unsaved rule to test (validated as on create; name optional)."`
		CustomerID int64          `json:"customer_id" doc:"The customer to test against."`
		Event      *tag.EventFact `json:"event,omitempty" doc:"A sample event standing for an event rule's trigger; it counts as one more occurrence. Without it the trigger is not checked."`
		Order      *tag.OrderFact `json:"order,omitempty" doc:"A sample order standing for an order rule's trigger (refund_fen for a refund)."`
	}
}

type ruleID struct {
	ID int64 `path:"id"`
}

func (a *API) registerTagRules() {
	if a.deps.TagRules == nil {
		return
	}
	rules := a.deps.TagRules
	groups := []string{"Tag rules"}
	register(a, huma.Operation{
		OperationID: "list-tag-rules", Method: http.MethodGet, Path: "/tag-rules", Tags: groups,
		Summary:     "List auto-tag rules",
		Description: "Every rule of the workspace by id, with its statistics. Not paged: a workspace has at most 500 rules.",
	}, tenant.PermTagsRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*struct{ Body List[tag.Rule] }, error) {
		list, err := rules.Rules(ctx, p.TenantID)
		return &struct{ Body List[tag.Rule] }{Body: List[tag.Rule]{Items: list}}, err
	})
	register(a, huma.Operation{
		OperationID: "create-tag-rule", Method: http.MethodPost, Path: "/tag-rules", Tags: groups,
		Summary: "Create an auto-tag rule", DefaultStatus: http.StatusCreated,
		Description: tagRuleDoc + " A new rule acts on what happens from now on; back-fill it to apply it to existing customers. " +
			"Invalid rules are refused with the path of the bad part (body.trigger.where[0].op, body.conditions.and[1].tag, body.expr, body.add[0]).",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *struct{ Body TagRuleBody }) (*TagRuleOutput, error) {
		ri, err := a.ruleInput(ctx, p.TenantID, &in.Body, "body.")
		if err != nil {
			return nil, err
		}
		r, err := rules.CreateRule(ctx, p, ri)
		if err != nil {
			return nil, ruleBodyPaths("body.", err)
		}
		return &TagRuleOutput{Body: r}, nil
	})
	register(a, huma.Operation{
		OperationID: "get-tag-rule", Method: http.MethodGet, Path: "/tag-rules/{id}", Tags: groups,
		Summary: "Get an auto-tag rule",
	}, tenant.PermTagsRead, func(ctx context.Context, p tenant.Principal, in *ruleID) (*TagRuleOutput, error) {
		r, err := rules.Rule(ctx, p.TenantID, in.ID)
		return &TagRuleOutput{Body: r}, err
	})
	register(a, huma.Operation{
		OperationID: "replace-tag-rule", Method: http.MethodPut, Path: "/tag-rules/{id}", Tags: groups,
		Summary:     "Replace an auto-tag rule",
		Description: "Replaces the rule's definition; its statistics stay and its last error is cleared. Tags applied under the old definition stay until a back-fill with retract takes them back.",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID   int64 `path:"id"`
		Body TagRuleBody
	}) (*TagRuleOutput, error) {
		ri, err := a.ruleInput(ctx, p.TenantID, &in.Body, "body.")
		if err != nil {
			return nil, err
		}
		r, err := rules.UpdateRule(ctx, p, in.ID, ri)
		if err != nil {
			return nil, ruleBodyPaths("body.", err)
		}
		return &TagRuleOutput{Body: r}, nil
	})
	register(a, huma.Operation{
		OperationID: "delete-tag-rule", Method: http.MethodDelete, Path: "/tag-rules/{id}", Tags: groups,
		Summary: "Delete an auto-tag rule", DefaultStatus: http.StatusNoContent,
		Description: "Deletes the rule and its runs. Tags it applied stay; their history names the rule.",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *ruleID) (*struct{}, error) {
		return nil, rules.DeleteRule(ctx, p, in.ID)
	})
	for _, on := range []bool{true, false} {
		verb, summary := "enable", "Enable an auto-tag rule"
		if !on {
			verb, summary = "disable", "Disable an auto-tag rule"
		}
		register(a, huma.Operation{
			OperationID: verb + "-tag-rule", Method: http.MethodPost, Path: "/tag-rules/{id}/" + verb, Tags: groups,
			Summary: summary, Description: "Idempotent. A disabled rule does not fire; a schedule rule enabled runs next at its time of day.",
		}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *ruleID) (*TagRuleOutput, error) {
			r, err := rules.SetRuleEnabled(ctx, p, in.ID, on)
			return &TagRuleOutput{Body: r}, err
		})
	}
	register(a, huma.Operation{
		OperationID: "get-tag-rule-stats", Method: http.MethodGet, Path: "/tag-rules/{id}/stats", Tags: groups,
		Summary:     "Statistics of an auto-tag rule",
		Description: "Times fired, times it changed a customer, customers now holding a tag it applied, when it last fired, and its last error.",
	}, tenant.PermTagsRead, func(ctx context.Context, p tenant.Principal, in *ruleID) (*struct{ Body tag.RuleStats }, error) {
		st, err := rules.RuleStats(ctx, p.TenantID, in.ID)
		return &struct{ Body tag.RuleStats }{Body: st}, err
	})
	register(a, huma.Operation{
		OperationID: "backfill-tag-rule", Method: http.MethodPost, Path: "/tag-rules/{id}/backfill", Tags: groups,
		Summary: "Back-fill an auto-tag rule over existing customers", DefaultStatus: http.StatusAccepted,
		Description: "Queues a job that applies the rule to the customers that qualify now: its conditions select customers (the trigger is not replayed, " +
			"so a rule without conditions is refused with conditions_required), its expression filters them without event or order, and its tags are " +
			"added and removed in chunks of 1,000; with retract, customers holding the rule's tags who no longer match lose them. " +
			"Answers at once with the job; GET the same path for its progress (total, done, matched, tagged, untagged). " +
			"One back-fill per rule at a time (409 backfill_running).",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *ruleID) (*TagRuleJobOutput, error) {
		j, err := rules.StartBackfill(ctx, p, in.ID)
		return &TagRuleJobOutput{Body: j}, err
	})
	register(a, huma.Operation{
		OperationID: "get-tag-rule-backfill", Method: http.MethodGet, Path: "/tag-rules/{id}/backfill", Tags: groups,
		Summary: "Progress of a rule's latest back-fill", Description: "404 (tag_rule_job_not_found) when the rule was never back-filled.",
	}, tenant.PermTagsRead, func(ctx context.Context, p tenant.Principal, in *ruleID) (*TagRuleJobOutput, error) {
		j, err := rules.Backfill(ctx, p.TenantID, in.ID)
		return &TagRuleJobOutput{Body: j}, err
	})
	register(a, huma.Operation{
		OperationID: "list-tag-rule-jobs", Method: http.MethodGet, Path: "/tag-rules/{id}/jobs", Tags: groups,
		Summary: "Runs of a rule over the workspace", Description: "The latest 50 back-fills and daily runs, newest first.",
	}, tenant.PermTagsRead, func(ctx context.Context, p tenant.Principal, in *ruleID) (*struct{ Body List[tag.RuleJob] }, error) {
		js, err := rules.Jobs(ctx, p.TenantID, in.ID)
		return &struct{ Body List[tag.RuleJob] }{Body: List[tag.RuleJob]{Items: js}}, err
	})
	register(a, huma.Operation{
		OperationID: "test-tag-rule", Method: http.MethodPost, Path: "/tag-rules/test", Tags: groups,
		Summary: "Test a rule against one customer",
		Description: "Checks a saved rule (rule_id) or an unsaved one (rule) against a customer as things stand, optionally with a sample event or order " +
			"standing for the trigger, and answers whether it would fire, which tags it would add and remove, and each part checked " +
			"(trigger, count, conditions, expr) with the path and reason of the part that failed. Nothing is written.",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *TagRuleTestInput) (*struct{ Body tag.TryResult }, error) {
		if in.Body.Event != nil && in.Body.Order != nil {
			return nil, errs.Field("body.event", "invalid_sample", "give a sample event or a sample order, not both")
		}
		ti := tag.TryInput{RuleID: in.Body.RuleID, CustomerID: in.Body.CustomerID, Event: in.Body.Event, Order: in.Body.Order}
		if in.Body.Rule != nil {
			if in.Body.RuleID != 0 {
				return nil, errs.Field("body.rule", "invalid_rule", "give rule_id or rule, not both")
			}
			if strings.TrimSpace(in.Body.Rule.Name) == "" {
				in.Body.Rule.Name = "(unsaved)"
			}
			ri, err := a.ruleInput(ctx, p.TenantID, in.Body.Rule, "body.rule.")
			if err != nil {
				return nil, err
			}
			ti.Rule = &ri
		}
		res, err := rules.TryRule(ctx, p.TenantID, ti)
		if err != nil {
			prefix := "body."
			if in.Body.Rule != nil {
				prefix = "body.rule."
			}
			return nil, ruleBodyPaths(prefix, err)
		}
		return &struct{ Body tag.TryResult }{Body: res}, nil
	})
}
