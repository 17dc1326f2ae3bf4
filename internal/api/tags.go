package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// MaxBulkTagCustomers bounds one synchronous bulk tagging request.
const MaxBulkTagCustomers = 10000

// TagRef names a tag in a request: its id (a number) or its reference (a
// string: "group/name", or a bare name when only one group has it).
type TagRef struct {
	ID  int64
	Ref string
}

// UnmarshalJSON accepts a number or a string.
func (r *TagRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &r.Ref)
	}
	return json.Unmarshal(b, &r.ID)
}

// MarshalJSON writes the id or the reference.
func (r TagRef) MarshalJSON() ([]byte, error) {
	if r.Ref != "" {
		return json.Marshal(r.Ref)
	}
	return json.Marshal(r.ID)
}

// Schema describes a TagRef in the OpenAPI document.
func (TagRef) Schema(huma.Registry) *huma.Schema {
	minID, minLen, maxLen := 1.0, 1, 2*tag.MaxNameLen+1
	return &huma.Schema{
		Description: `A tag id, or a reference: "group/name" (e.g. "价值/高价值"), or a bare name when only one group has a tag of that name.`,
		OneOf: []*huma.Schema{
			{Type: huma.TypeInteger, Format: "int64", Minimum: &minID},
			{Type: huma.TypeString, MinLength: &minLen, MaxLength: &maxLen},
		},
		Examples: []any{12, "价值/高价值"},
	}
}

// resolveRefs turns request references into tag ids.
func (a *API) resolveRefs(ctx context.Context, tenantID int64, refs []TagRef) ([]int64, error) {
	ids := make([]int64, 0, len(refs))
	for _, r := range refs {
		if r.Ref == "" {
			ids = append(ids, r.ID)
			continue
		}
		id, err := a.deps.Tags.Resolve(ctx, tenantID, r.Ref)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// TagGroupOutput is one tag group.
type TagGroupOutput struct {
	Body tag.Group
}

// TagGroupCreate is the body of POST /tag-groups.
type TagGroupCreate struct {
	Body struct {
		Name        string `json:"name" doc:"1–30 characters without '/', unique in the workspace (code duplicate_group)."`
		Dimension   string `json:"dimension,omitempty" enum:"product,customer,value,lifecycle,channel,other" doc:"The axis of the tag system: 产品 product, 客户 customer, 价值 value, 生命周期 lifecycle, 渠道 channel; default other."`
		SortOrder   *int   `json:"sort_order,omitempty" doc:"Position among groups (ascending); default after the last."`
		Description string `json:"description,omitempty" doc:"Up to 200 characters."`
	}
}

// TagGroupPatch is the body of PATCH /tag-groups/{id}.
type TagGroupPatch struct {
	ID   int64 `path:"id"`
	Body struct {
		Name        *string `json:"name,omitempty"`
		Dimension   *string `json:"dimension,omitempty" enum:"product,customer,value,lifecycle,channel,other"`
		SortOrder   *int    `json:"sort_order,omitempty"`
		Description *string `json:"description,omitempty"`
	}
}

// TagOutput is one tag.
type TagOutput struct {
	Body tag.Tag
}

// TagCreate is the body of POST /tags.
type TagCreate struct {
	Body struct {
		GroupID     int64  `json:"group_id" doc:"The group the tag belongs to."`
		Name        string `json:"name" doc:"1–30 characters without '/', unique within the group (code duplicate_tag)."`
		Color       string `json:"color,omitempty" doc:"#RRGGBB (code invalid_color); default #8C8C8C." example:"#FF7A45"`
		SortOrder   *int   `json:"sort_order,omitempty" doc:"Position within the group (ascending); default after the last."`
		Description string `json:"description,omitempty" doc:"Up to 200 characters."`
	}
}

// TagPatch is the body of PATCH /tags/{id}.
type TagPatch struct {
	ID   int64 `path:"id"`
	Body struct {
		GroupID     *int64  `json:"group_id,omitempty" doc:"Moves the tag to this group; its name must be free there."`
		Name        *string `json:"name,omitempty"`
		Color       *string `json:"color,omitempty"`
		SortOrder   *int    `json:"sort_order,omitempty"`
		Description *string `json:"description,omitempty"`
	}
}

// TagListInput filters GET /tags.
type TagListInput struct {
	PageParams
	GroupID int64 `query:"group_id" doc:"Only this group's tags."`
}

// CustomerTagsChange is the body of POST and DELETE /customers/{id}/tags.
type CustomerTagsChange struct {
	ID   int64 `path:"id"`
	Body struct {
		Tags []TagRef `json:"tags" minItems:"1" maxItems:"100" doc:"Tags by id or by reference (\"价值/高价值\")."`
	}
}

// CustomerTagsResult is what a change did, and the customer's tags after it.
type CustomerTagsResult struct {
	Body struct {
		tag.Change
		Tags []tag.Applied `json:"tags" nullable:"false" doc:"The customer's tags after the change."`
	}
}

// TagBulkInput is the body of POST /tags/{id}/customers.
type TagBulkInput struct {
	ID   int64 `path:"id"`
	Body struct {
		CustomerIDs []int64 `json:"customer_ids" minItems:"1" maxItems:"10000" doc:"Up to 10,000 customer ids; ids of merged profiles tag the surviving profile; unknown ids are skipped and counted."`
		Action      string  `json:"action,omitempty" enum:"add,remove" default:"add" doc:"add (default) or remove the tag."`
	}
}

func (a *API) registerTags() {
	groups := []string{"Tags"}
	register(a, huma.Operation{
		OperationID: "list-tag-groups", Method: http.MethodGet, Path: "/tag-groups", Tags: groups,
		Summary:     "List tag groups",
		Description: "Every tag group of the workspace in display order (sort_order, then id), with its number of tags. Not paged: a workspace has at most 1,000 groups.",
	}, tenant.PermTagsRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*struct{ Body List[tag.Group] }, error) {
		gs, err := a.deps.Tags.Groups(ctx, p.TenantID)
		return &struct{ Body List[tag.Group] }{Body: List[tag.Group]{Items: gs}}, err
	})
	register(a, huma.Operation{
		OperationID: "create-tag-group", Method: http.MethodPost, Path: "/tag-groups", Tags: groups,
		Summary: "Create a tag group", DefaultStatus: http.StatusCreated,
		Description: "Adds a group of tags (标签组) along one dimension of the tag system. Names are unique in the workspace.",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *TagGroupCreate) (*TagGroupOutput, error) {
		g, err := a.deps.Tags.CreateGroup(ctx, p, tag.GroupInput{
			Name: in.Body.Name, Dimension: tag.Dimension(in.Body.Dimension), SortOrder: in.Body.SortOrder, Description: in.Body.Description,
		})
		return &TagGroupOutput{Body: g}, err
	})
	register(a, huma.Operation{
		OperationID: "get-tag-group", Method: http.MethodGet, Path: "/tag-groups/{id}", Tags: groups,
		Summary: "Get a tag group",
	}, tenant.PermTagsRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*TagGroupOutput, error) {
		g, err := a.deps.Tags.Group(ctx, p.TenantID, in.ID)
		return &TagGroupOutput{Body: g}, err
	})
	register(a, huma.Operation{
		OperationID: "update-tag-group", Method: http.MethodPatch, Path: "/tag-groups/{id}", Tags: groups,
		Summary: "Change a tag group", Description: "Changes the fields given: name, dimension, order, description.",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *TagGroupPatch) (*TagGroupOutput, error) {
		upd := tag.GroupUpdate{Name: in.Body.Name, SortOrder: in.Body.SortOrder, Description: in.Body.Description}
		if in.Body.Dimension != nil {
			d := tag.Dimension(*in.Body.Dimension)
			upd.Dimension = &d
		}
		g, err := a.deps.Tags.UpdateGroup(ctx, p, in.ID, upd)
		return &TagGroupOutput{Body: g}, err
	})
	register(a, huma.Operation{
		OperationID: "delete-tag-group", Method: http.MethodDelete, Path: "/tag-groups/{id}", Tags: groups,
		Summary: "Delete a tag group", DefaultStatus: http.StatusNoContent,
		Description: "Deletes an empty group. A group that still has tags answers 409 (group_not_empty) unless force=true, " +
			"which deletes its tags and takes them from every customer (recorded in their timelines).",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID    int64 `path:"id"`
		Force bool  `query:"force" doc:"Also delete the group's tags and their applications."`
	}) (*struct{}, error) {
		return nil, a.deps.Tags.DeleteGroup(ctx, p, in.ID, in.Force)
	})

	register(a, huma.Operation{
		OperationID: "list-tags", Method: http.MethodGet, Path: "/tags", Tags: groups,
		Summary:     "List tags",
		Description: "Tags in display order (group order, then tag order), each with its group, its reference (group/name) and the number of customers holding it.",
	}, tenant.PermTagsRead, func(ctx context.Context, p tenant.Principal, in *TagListInput) (*ListOutput[tag.Tag], error) {
		pg, err := a.deps.Tags.Tags(ctx, p.TenantID, tag.TagQuery{GroupID: in.GroupID}, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(t tag.Tag) tag.Tag { return t }), nil
	})
	register(a, huma.Operation{
		OperationID: "create-tag", Method: http.MethodPost, Path: "/tags", Tags: groups,
		Summary: "Create a tag", DefaultStatus: http.StatusCreated,
		Description: "Adds a tag to a group. Names are unique within their group; the same name may exist in other groups (then refer to it as group/name).",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *TagCreate) (*TagOutput, error) {
		t, err := a.deps.Tags.CreateTag(ctx, p, tag.TagInput{
			GroupID: in.Body.GroupID, Name: in.Body.Name, Color: in.Body.Color, SortOrder: in.Body.SortOrder, Description: in.Body.Description,
		})
		return &TagOutput{Body: t}, err
	})
	register(a, huma.Operation{
		OperationID: "get-tag", Method: http.MethodGet, Path: "/tags/{id}", Tags: groups,
		Summary: "Get a tag",
	}, tenant.PermTagsRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*TagOutput, error) {
		t, err := a.deps.Tags.Tag(ctx, p.TenantID, in.ID)
		return &TagOutput{Body: t}, err
	})
	register(a, huma.Operation{
		OperationID: "update-tag", Method: http.MethodPatch, Path: "/tags/{id}", Tags: groups,
		Summary: "Change a tag", Description: "Changes the fields given: name, colour, order, description, or the group (moving the tag).",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *TagPatch) (*TagOutput, error) {
		t, err := a.deps.Tags.UpdateTag(ctx, p, in.ID, tag.TagUpdate{
			GroupID: in.Body.GroupID, Name: in.Body.Name, Color: in.Body.Color, SortOrder: in.Body.SortOrder, Description: in.Body.Description,
		})
		return &TagOutput{Body: t}, err
	})
	register(a, huma.Operation{
		OperationID: "delete-tag", Method: http.MethodDelete, Path: "/tags/{id}", Tags: groups,
		Summary: "Delete a tag", DefaultStatus: http.StatusNoContent,
		Description: "Deletes the tag and takes it from every customer holding it; each removal is recorded in the customer's timeline.",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*struct{}, error) {
		return nil, a.deps.Tags.DeleteTag(ctx, p, in.ID)
	})
	register(a, huma.Operation{
		OperationID: "list-tag-customers", Method: http.MethodGet, Path: "/tags/{id}/customers", Tags: groups,
		Summary: "List the customers holding a tag", Description: "Customer ids, ascending.",
	}, tenant.PermTagsRead, func(ctx context.Context, p tenant.Principal, in *struct {
		PageParams
		ID int64 `path:"id"`
	}) (*ListOutput[int64], error) {
		pg, err := a.deps.Tags.CustomersWithTag(ctx, p.TenantID, in.ID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(id int64) int64 { return id }), nil
	})
	register(a, huma.Operation{
		OperationID: "bulk-tag-customers", Method: http.MethodPost, Path: "/tags/{id}/customers", Tags: groups,
		Summary: "Tag or untag many customers",
		Description: "Adds the tag to (or, with action remove, takes it from) up to 10,000 customers, 1,000 per transaction, and answers when done. " +
			"Customers who already hold the tag keep their first application (counted as unchanged). " +
			"Each change is recorded with source api and the key that made it. A failure part-way leaves the chunks done applied.",
	}, tenant.PermTagsManage, func(ctx context.Context, p tenant.Principal, in *TagBulkInput) (*struct{ Body tag.BulkResult }, error) {
		if len(in.Body.CustomerIDs) > MaxBulkTagCustomers {
			return nil, errs.E(errs.TooLarge, "too_many_customers", "at most %d customers per request", MaxBulkTagCustomers)
		}
		bulk := a.deps.Tags.BulkApply
		if in.Body.Action == "remove" {
			bulk = a.deps.Tags.BulkRemove
		}
		res, err := bulk(ctx, p.TenantID, []int64{in.ID}, in.Body.CustomerIDs, tag.ByPrincipal(p), nil)
		return &struct{ Body tag.BulkResult }{Body: res}, err
	})

	cust := []string{"Customers", "Tags"}
	register(a, huma.Operation{
		OperationID: "list-customer-tags", Method: http.MethodGet, Path: "/customers/{id}/tags", Tags: cust,
		Summary: "List a customer's tags", Description: "The tags the customer holds, in display order, each with its source, who applied it and when.",
	}, tenant.PermTagsRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*struct{ Body List[tag.Applied] }, error) {
		ts, err := a.deps.Tags.TagsOf(ctx, p.TenantID, in.ID)
		return &struct{ Body List[tag.Applied] }{Body: List[tag.Applied]{Items: ts}}, err
	})
	change := func(add bool) Handler[CustomerTagsChange, CustomerTagsResult] {
		return func(ctx context.Context, p tenant.Principal, in *CustomerTagsChange) (*CustomerTagsResult, error) {
			ids, err := a.resolveRefs(ctx, p.TenantID, in.Body.Tags)
			if err != nil {
				return nil, err
			}
			var ch tag.Change
			if add {
				ch, err = a.deps.Tags.Apply(ctx, p.TenantID, in.ID, ids, tag.ByPrincipal(p))
			} else {
				ch, err = a.deps.Tags.Remove(ctx, p.TenantID, in.ID, ids, tag.ByPrincipal(p))
			}
			if err != nil {
				return nil, err
			}
			ts, err := a.deps.Tags.TagsOf(ctx, p.TenantID, ch.CustomerID)
			if err != nil {
				return nil, err
			}
			out := &CustomerTagsResult{}
			out.Body.Change, out.Body.Tags = ch, ts
			return out, nil
		}
	}
	register(a, huma.Operation{
		OperationID: "add-customer-tags", Method: http.MethodPost, Path: "/customers/{id}/tags", Tags: cust,
		Summary: "Tag a customer",
		Description: "Adds tags (by id or group/name) to the customer. Tags the customer already holds are unchanged and keep their first application; " +
			"added lists only what is new. Recorded with source api and the key that made it. An unknown tag is a 404 (tag_not_found); " +
			"a bare name held by several groups is a 422 (ambiguous_tag).",
	}, tenant.PermTagsWrite, change(true))
	register(a, huma.Operation{
		OperationID: "remove-customer-tags", Method: http.MethodDelete, Path: "/customers/{id}/tags", Tags: cust,
		Summary:     "Untag a customer",
		Description: "Takes tags (by id or group/name) from the customer; tags it does not hold are ignored. removed lists what was taken.",
	}, tenant.PermTagsWrite, change(false))
}
