package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/tenant"
)

// MeOutput describes the caller.
type MeOutput struct {
	Body struct {
		Workspace tenant.Workspace `json:"workspace"`
		Actor     struct {
			Kind string `json:"kind" enum:"api_key,user"`
			ID   int64  `json:"id"`
			Name string `json:"name"`
			Role string `json:"role"`
		} `json:"actor"`
	}
}

func (a *API) registerMe() {
	register(a, huma.Operation{
		OperationID: "get-me", Method: http.MethodGet, Path: "/me", Tags: []string{"Workspace"},
		Summary:     "Who am I",
		Description: "Returns the workspace and role of the API key used, a quick way to check a key works.",
	}, tenant.PermWorkspaceRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*MeOutput, error) {
		w, err := a.deps.Tenant.Workspace(ctx, p.TenantID)
		if err != nil {
			return nil, err
		}
		out := &MeOutput{}
		out.Body.Workspace = w
		out.Body.Actor.Kind, out.Body.Actor.ID, out.Body.Actor.Name, out.Body.Actor.Role = string(p.Kind), p.ID, p.Name, string(p.Role)
		return out, nil
	})
}

// WorkspaceOutput is one workspace.
type WorkspaceOutput struct {
	Body tenant.Workspace
}

// WorkspacePatch is the body of PATCH /workspace.
type WorkspacePatch struct {
	Body struct {
		Name     *string `json:"name,omitempty" minLength:"1" maxLength:"100" doc:"Display name of the brand."`
		Timezone *string `json:"timezone,omitempty" example:"Asia/Shanghai" doc:"IANA time zone that decides what a day is for caps, windows and reports."`
	}
}

func (a *API) registerWorkspace() {
	register(a, huma.Operation{
		OperationID: "get-workspace", Method: http.MethodGet, Path: "/workspace", Tags: []string{"Workspace"},
		Summary: "Get the workspace",
	}, tenant.PermWorkspaceRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*WorkspaceOutput, error) {
		w, err := a.deps.Tenant.Workspace(ctx, p.TenantID)
		return &WorkspaceOutput{Body: w}, err
	})
	register(a, huma.Operation{
		OperationID: "update-workspace", Method: http.MethodPatch, Path: "/workspace", Tags: []string{"Workspace"},
		Summary: "Change workspace settings",
	}, tenant.PermWorkspaceManage, func(ctx context.Context, p tenant.Principal, in *WorkspacePatch) (*WorkspaceOutput, error) {
		if in.Body.Timezone != nil {
			if _, err := time.LoadLocation(*in.Body.Timezone); err != nil {
				return nil, huma.Error422UnprocessableEntity("unknown time zone", &huma.ErrorDetail{Location: "body.timezone", Message: "unknown IANA time zone", Value: *in.Body.Timezone})
			}
		}
		w, err := a.deps.Tenant.UpdateWorkspace(ctx, p, tenant.WorkspaceUpdate{Name: in.Body.Name, Timezone: in.Body.Timezone})
		return &WorkspaceOutput{Body: w}, err
	})
}
