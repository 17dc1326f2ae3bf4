package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/tenant"
)

// UserOutput is one user.
type UserOutput struct {
	Body tenant.User
}

// UserListOutput is every user of the workspace (a workspace has few).
type UserListOutput struct {
	Body struct {
		Items []tenant.User `json:"items" nullable:"false"`
	}
}

// UserCreate is the body of POST /users.
type UserCreate struct {
	Body struct {
		Email    string `json:"email" format:"email" maxLength:"200"`
		Name     string `json:"name,omitempty" maxLength:"100"`
		Password string `json:"password" minLength:"10" maxLength:"256" doc:"Initial password; the user can change it."`
		Role     string `json:"role" enum:"owner,admin,operator,staff,analyst"`
	}
}

// UserPatch is the body of PATCH /users/{id}.
type UserPatch struct {
	ID   int64 `path:"id"`
	Body struct {
		Name     *string `json:"name,omitempty" minLength:"1" maxLength:"100"`
		Role     *string `json:"role,omitempty" enum:"owner,admin,operator,staff,analyst"`
		Disabled *bool   `json:"disabled,omitempty" doc:"true disables sign-in and ends the user's sessions."`
		Password *string `json:"password,omitempty" minLength:"10" maxLength:"256"`
		Locale   *string `json:"locale,omitempty" enum:"zh-CN,en,"`
	}
}

func (a *API) registerUsers() {
	register(a, huma.Operation{
		OperationID: "list-users", Method: http.MethodGet, Path: "/users", Tags: []string{"Users"},
		Summary: "List users",
	}, tenant.PermUsersManage, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*UserListOutput, error) {
		users, err := a.deps.Tenant.Users(ctx, p.TenantID)
		out := &UserListOutput{}
		out.Body.Items = append([]tenant.User{}, users...)
		return out, err
	})
	register(a, huma.Operation{
		OperationID: "get-user", Method: http.MethodGet, Path: "/users/{id}", Tags: []string{"Users"},
		Summary: "Get a user",
	}, tenant.PermUsersManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*UserOutput, error) {
		u, err := a.deps.Tenant.User(ctx, p.TenantID, in.ID)
		return &UserOutput{Body: u}, err
	})
	register(a, huma.Operation{
		OperationID: "create-user", Method: http.MethodPost, Path: "/users", Tags: []string{"Users"},
		Summary: "Add a user", DefaultStatus: http.StatusCreated,
		Description: "Adds a console user to the workspace. You may not grant a role above your own.",
	}, tenant.PermUsersManage, func(ctx context.Context, p tenant.Principal, in *UserCreate) (*UserOutput, error) {
		u, err := a.deps.Tenant.AddUser(ctx, p, tenant.NewUser{Email: in.Body.Email, Name: in.Body.Name, Password: in.Body.Password, Role: tenant.Role(in.Body.Role)})
		return &UserOutput{Body: u}, err
	})
	register(a, huma.Operation{
		OperationID: "update-user", Method: http.MethodPatch, Path: "/users/{id}", Tags: []string{"Users"},
		Summary:     "Change a user",
		Description: "Changes a user's name, role, password, locale, or disables them. A workspace always keeps one active owner.",
	}, tenant.PermUsersManage, func(ctx context.Context, p tenant.Principal, in *UserPatch) (*UserOutput, error) {
		upd := tenant.UserUpdate{Name: in.Body.Name, Disabled: in.Body.Disabled, Password: in.Body.Password, Locale: in.Body.Locale}
		if in.Body.Role != nil {
			r := tenant.Role(*in.Body.Role)
			upd.Role = &r
		}
		u, err := a.deps.Tenant.UpdateUser(ctx, p, in.ID, upd)
		return &UserOutput{Body: u}, err
	})
}
