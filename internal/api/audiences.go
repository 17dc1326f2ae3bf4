package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

const conditionDoc = "A condition tree (see docs/audiences.md): {\"and\": [...]}, {\"or\": [...]}, {\"not\": {...}}, " +
	"{\"tag\": \"group/name\"}, {\"attr\": \"city\", \"op\": \"in\", \"value\": [\"上海\"]}, " +
	"{\"event\": \"view_product\", \"where\": [...], \"count\": {\"op\": \">=\", \"value\": 2}, \"within_days\": 30}, " +
	"{\"order\": {\"metric\": \"spend\", \"op\": \">=\", \"value\": 10000, \"within_days\": 90}}, {\"source\": \"store\"}, {\"audience\": 12}."

// ConditionBody carries a condition tree.
type ConditionBody struct {
	Body struct {
		Conditions audience.Condition `json:"conditions" doc:"The condition tree."`
	}
}

// CountOutput is a count.
type CountOutput struct {
	Body struct {
		Count int64 `json:"count"`
	}
}

// prefixPaths makes condition errors point into the request body.
func prefixPaths(err error) error {
	e, ok := errs.As(err)
	if !ok || len(e.Fields) == 0 {
		return err
	}
	out := *e
	out.Fields = make([]errs.FieldError, len(e.Fields))
	for i, f := range e.Fields {
		loc := f.Location
		if loc == "(root)" {
			loc = ""
		}
		f.Location = strings.TrimSuffix("body.conditions."+loc, ".")
		out.Fields[i] = f
	}
	return &out
}

// PreviewInput asks for the first customers of a condition.
type PreviewInput struct {
	Body struct {
		Conditions audience.Condition `json:"conditions"`
		Limit      int                `json:"limit,omitempty" minimum:"1" maximum:"200" default:"20"`
	}
}

// PreviewOutput is a count and the first matching customers.
type PreviewOutput struct {
	Body struct {
		Count int64               `json:"count"`
		Items []customer.Customer `json:"items" nullable:"false"`
	}
}

// BreakdownInput asks for a count by attribute.
type BreakdownInput struct {
	Body struct {
		Conditions audience.Condition `json:"conditions"`
		By         string             `json:"by" example:"city" doc:"A categorical attribute: gender, province, city, source, source_code, or a custom text attribute."`
	}
}

// BreakdownOutput counts by value.
type BreakdownOutput struct {
	Body struct {
		Count   int64             `json:"count"`
		Buckets []audience.Bucket `json:"buckets" nullable:"false"`
	}
}

// AudienceBody creates or replaces a saved audience.
type AudienceBody struct {
	Body struct {
		Name        string             `json:"name" minLength:"1" maxLength:"100"`
		Description string             `json:"description,omitempty" maxLength:"500"`
		Conditions  audience.Condition `json:"conditions"`
	}
}

// AudienceOutput is one saved audience.
type AudienceOutput struct {
	Body audience.Audience
}

// AudienceMembersInput pages an audience's members.
type AudienceMembersInput struct {
	ID     int64  `path:"id"`
	Cursor string `query:"cursor"`
	Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"50"`
}

func (a *API) registerAudiences() {
	register(a, huma.Operation{
		OperationID: "count-audience", Method: http.MethodPost, Path: "/audiences/count", Tags: []string{"Audiences"},
		Summary:     "Count customers matching a condition tree",
		Description: "Answers from the in-memory index in milliseconds. " + conditionDoc,
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *ConditionBody) (*CountOutput, error) {
		n, err := a.deps.Audiences.Count(ctx, p.TenantID, in.Body.Conditions)
		if err != nil {
			return nil, prefixPaths(err)
		}
		out := &CountOutput{}
		out.Body.Count = n
		return out, nil
	})
	register(a, huma.Operation{
		OperationID: "preview-audience", Method: http.MethodPost, Path: "/audiences/preview", Tags: []string{"Audiences"},
		Summary: "Count and the first matching customers",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *PreviewInput) (*PreviewOutput, error) {
		res, err := a.deps.Audiences.Evaluate(ctx, p.TenantID, in.Body.Conditions)
		if err != nil {
			return nil, prefixPaths(err)
		}
		out := &PreviewOutput{}
		out.Body.Count = res.Count
		out.Body.Items, err = a.customersByID(ctx, p, res.IDs(0, max(in.Body.Limit, 1)))
		return out, err
	})
	register(a, huma.Operation{
		OperationID: "breakdown-audience", Method: http.MethodPost, Path: "/audiences/breakdown", Tags: []string{"Audiences"},
		Summary: "Count matching customers by an attribute", Description: "E.g. the cities of an audience, largest first.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *BreakdownInput) (*BreakdownOutput, error) {
		res, err := a.deps.Audiences.Evaluate(ctx, p.TenantID, in.Body.Conditions)
		if err != nil {
			return nil, prefixPaths(err)
		}
		buckets, err := res.Breakdown(in.Body.By)
		if err != nil {
			return nil, err
		}
		out := &BreakdownOutput{}
		out.Body.Count, out.Body.Buckets = res.Count, append([]audience.Bucket{}, buckets...)
		return out, nil
	})
	register(a, huma.Operation{
		OperationID: "list-audiences", Method: http.MethodGet, Path: "/audiences", Tags: []string{"Audiences"},
		Summary: "List saved audiences",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[audience.Audience], error) {
		pg, err := a.deps.Audiences.Audiences(ctx, p.TenantID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(x audience.Audience) audience.Audience { return x }), nil
	})
	register(a, huma.Operation{
		OperationID: "create-audience", Method: http.MethodPost, Path: "/audiences", Tags: []string{"Audiences"},
		Summary: "Save an audience", DefaultStatus: http.StatusCreated,
		Description: "Saved audiences are live: members update as customers change, and who entered and left is recorded.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *AudienceBody) (*AudienceOutput, error) {
		au, err := a.deps.Audiences.CreateAudience(ctx, p.TenantID, p.Name, audience.AudienceInput{Name: in.Body.Name, Description: in.Body.Description, Conditions: in.Body.Conditions})
		if err != nil {
			return nil, prefixPaths(err)
		}
		return &AudienceOutput{Body: au}, nil
	})
	register(a, huma.Operation{
		OperationID: "get-audience", Method: http.MethodGet, Path: "/audiences/{id}", Tags: []string{"Audiences"},
		Summary: "Get a saved audience",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*AudienceOutput, error) {
		au, err := a.deps.Audiences.Audience(ctx, p.TenantID, in.ID)
		return &AudienceOutput{Body: au}, err
	})
	register(a, huma.Operation{
		OperationID: "update-audience", Method: http.MethodPut, Path: "/audiences/{id}", Tags: []string{"Audiences"},
		Summary: "Change a saved audience",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
		AudienceBody
	}) (*AudienceOutput, error) {
		au, err := a.deps.Audiences.UpdateAudience(ctx, p.TenantID, in.ID, audience.AudienceInput{Name: in.Body.Name, Description: in.Body.Description, Conditions: in.Body.Conditions})
		if err != nil {
			return nil, prefixPaths(err)
		}
		return &AudienceOutput{Body: au}, nil
	})
	register(a, huma.Operation{
		OperationID: "archive-audience", Method: http.MethodDelete, Path: "/audiences/{id}", Tags: []string{"Audiences"},
		Summary: "Archive a saved audience", DefaultStatus: http.StatusNoContent,
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*struct{}, error) {
		return nil, a.deps.Audiences.ArchiveAudience(ctx, p.TenantID, in.ID)
	})
	register(a, huma.Operation{
		OperationID: "list-audience-members", Method: http.MethodGet, Path: "/audiences/{id}/members", Tags: []string{"Audiences"},
		Summary: "List an audience's members", Description: "Current members in customer-id order.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *AudienceMembersInput) (*ListOutput[customer.Customer], error) {
		res, err := a.deps.Audiences.Members(ctx, p.TenantID, in.ID)
		if err != nil {
			return nil, err
		}
		var after int64
		if in.Cursor != "" {
			if err := page.Decode(in.Cursor, &after); err != nil {
				return nil, err
			}
		}
		r := page.Request{Cursor: in.Cursor, Limit: in.Limit}
		ids := res.IDs(after, r.Size()+1)
		items, err := a.customersByID(ctx, p, ids)
		if err != nil {
			return nil, err
		}
		pg := page.Trim(items, r, func(c customer.Customer) string { return page.Encode(c.ID) })
		return listOf(pg, func(c customer.Customer) customer.Customer { return c }), nil
	})
	register(a, huma.Operation{
		OperationID: "list-audience-changes", Method: http.MethodGet, Path: "/audiences/{id}/changes", Tags: []string{"Audiences"},
		Summary: "Who entered and left an audience", Description: "Newest first.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
		PageParams
	}) (*ListOutput[audience.Change], error) {
		if _, err := a.deps.Audiences.Audience(ctx, p.TenantID, in.ID); err != nil {
			return nil, err
		}
		pg, err := a.deps.Audiences.Changes(ctx, p.TenantID, in.ID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(c audience.Change) audience.Change { return c }), nil
	})
}

// customersByID loads customers in the given order (skipping any gone).
func (a *API) customersByID(ctx context.Context, p tenant.Principal, ids []int64) ([]customer.Customer, error) {
	out := make([]customer.Customer, 0, len(ids))
	for _, id := range ids {
		c, err := a.deps.Customers.Get(ctx, p.TenantID, id, p.Can(tenant.PermPIIRead))
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
