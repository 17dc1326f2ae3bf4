package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// CustomerListInput filters GET /customers.
type CustomerListInput struct {
	PageParams
	Q          string `query:"q" maxLength:"100" doc:"Search: a name prefix, or a whole phone number in any common format."`
	Identifier string `query:"identifier" maxLength:"300" doc:"Exact identifier as KIND:VALUE, e.g. user_id:u123 or phone:13800138000." example:"user_id:u123"`
}

// CustomerDetail is a profile with its identities.
type CustomerDetail struct {
	customer.Customer
	Identities []customer.Identity `json:"identities" nullable:"false"`
}

// CustomerOutput is one customer.
type CustomerOutput struct {
	Body CustomerDetail
}

func (a *API) registerCustomers() {
	a.registerCustomerExtras()
	a.registerAttributes()
	register(a, huma.Operation{
		OperationID: "list-customers", Method: http.MethodGet, Path: "/customers", Tags: []string{"Customers"},
		Summary:     "List customers",
		Description: "Customers, newest first. Phone numbers are masked unless the key's role may see personal data.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *CustomerListInput) (*ListOutput[customer.Customer], error) {
		pg, err := a.deps.Customers.List(ctx, p.TenantID, customer.Query{Search: in.Q, Identifier: in.Identifier, ShowPII: p.Can(tenant.PermPIIRead)}, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(c customer.Customer) customer.Customer { return c }), nil
	})
	register(a, huma.Operation{
		OperationID: "get-customer", Method: http.MethodGet, Path: "/customers/{id}", Tags: []string{"Customers"},
		Summary: "Get a customer",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*CustomerOutput, error) {
		c, err := a.deps.Customers.Get(ctx, p.TenantID, in.ID, p.Can(tenant.PermPIIRead))
		if err != nil {
			return nil, err
		}
		ids, err := a.deps.Customers.Identities(ctx, p.TenantID, c.ID)
		if err != nil {
			return nil, err
		}
		return &CustomerOutput{Body: CustomerDetail{Customer: c, Identities: ids}}, nil
	})
}

// TimelineInput pages a customer's timeline.
type TimelineInput struct {
	PageParams
	ID int64 `path:"id"`
}

// IdentityRulesBody carries a workspace's One ID rules.
type IdentityRulesBody struct {
	Body customer.Rules
}

func (a *API) registerCustomerExtras() {
	register(a, huma.Operation{
		OperationID: "get-customer-timeline", Method: http.MethodGet, Path: "/customers/{id}/timeline", Tags: []string{"Customers"},
		Summary:     "A customer's timeline",
		Description: "Everything that happened to the customer, newest first: events, orders and refunds, identity merges, channel events.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *TimelineInput) (*ListOutput[customer.TimelineEntry], error) {
		pg, err := a.deps.Customers.Timeline(ctx, p.TenantID, in.ID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(e customer.TimelineEntry) customer.TimelineEntry { return e }), nil
	})
	register(a, huma.Operation{
		OperationID: "get-identity-rules", Method: http.MethodGet, Path: "/identity-rules", Tags: []string{"Customers"},
		Summary:     "One ID rules",
		Description: "Blocked identifier values, the most identities of each kind one profile may hold, and the priority of kinds when rules conflict.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*IdentityRulesBody, error) {
		r, err := a.deps.Customers.IdentityRules(ctx, p.TenantID)
		return &IdentityRulesBody{Body: r}, err
	})
	register(a, huma.Operation{
		OperationID: "set-identity-rules", Method: http.MethodPut, Path: "/identity-rules", Tags: []string{"Customers"},
		Summary:     "Change One ID rules",
		Description: "Replaces the rules; omitted parts take the defaults. Applies to messages processed from now on.",
	}, tenant.PermWorkspaceManage, func(ctx context.Context, p tenant.Principal, in *IdentityRulesBody) (*IdentityRulesBody, error) {
		r, err := a.deps.Customers.SetIdentityRules(ctx, p.TenantID, in.Body)
		return &IdentityRulesBody{Body: r}, err
	})
}

// AttributeDefine is the body of PUT /attributes/{name}.
type AttributeDefine struct {
	Name string `path:"name" maxLength:"64"`
	Body struct {
		DisplayName string `json:"display_name,omitempty" maxLength:"100" doc:"Name shown in the console, e.g. 会员等级."`
		Type        string `json:"type" enum:"string,number,bool,date,list,object"`
	}
}

func (a *API) registerAttributes() {
	register(a, huma.Operation{
		OperationID: "list-attributes", Method: http.MethodGet, Path: "/attributes", Tags: []string{"Customers"},
		Summary:     "List custom attributes",
		Description: "Custom traits catalogued as they arrive, with their inferred or defined type.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*struct{ Body List[customer.Attribute] }, error) {
		attrs, err := a.deps.Customers.Attributes(ctx, p.TenantID)
		return &struct{ Body List[customer.Attribute] }{Body: List[customer.Attribute]{Items: attrs}}, err
	})
	register(a, huma.Operation{
		OperationID: "define-attribute", Method: http.MethodPut, Path: "/attributes/{name}", Tags: []string{"Customers"},
		Summary:     "Define a custom attribute",
		Description: "Sets the display name and type. From then on, writes of another type are refused (and counted in rejected_count).",
	}, tenant.PermWorkspaceManage, func(ctx context.Context, p tenant.Principal, in *AttributeDefine) (*struct{ Body customer.Attribute }, error) {
		at, err := a.deps.Customers.DefineAttribute(ctx, p.TenantID, in.Name, in.Body.DisplayName, in.Body.Type)
		return &struct{ Body customer.Attribute }{Body: at}, err
	})
}

func (a *API) registerStaff() {
	register(a, huma.Operation{
		OperationID: "list-staff", Method: http.MethodGet, Path: "/staff", Tags: []string{"Staff"},
		Summary: "List staff",
	}, tenant.PermStaffRead, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[staff.Member], error) {
		pg, err := a.deps.Staff.Members(ctx, p.TenantID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(m staff.Member) staff.Member { return m }), nil
	})
	register(a, huma.Operation{
		OperationID: "list-stores", Method: http.MethodGet, Path: "/stores", Tags: []string{"Staff"},
		Summary: "List stores",
	}, tenant.PermStaffRead, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[staff.Store], error) {
		pg, err := a.deps.Staff.Stores(ctx, p.TenantID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(s staff.Store) staff.Store { return s }), nil
	})
}
