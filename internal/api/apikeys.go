package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/tenant"
)

// APIKeyOutput is one API key's record (never the key).
type APIKeyOutput struct {
	Body tenant.APIKey
}

// APIKeyCreated is a new key, with the key itself shown this once.
type APIKeyCreated struct {
	Body struct {
		tenant.APIKey
		Key string `json:"key" doc:"The API key. It is shown only in this response; store it now."`
	}
}

// APIKeyCreate is the body of POST /api-keys.
type APIKeyCreate struct {
	Body struct {
		Name string `json:"name" minLength:"1" maxLength:"100" doc:"What the key is for, e.g. 'ERP order sync'."`
		Role string `json:"role" enum:"admin,operator,staff,analyst" doc:"At most your own role."`
	}
}

func (a *API) registerAPIKeys() {
	register(a, huma.Operation{
		OperationID: "list-api-keys", Method: http.MethodGet, Path: "/api-keys", Tags: []string{"API keys"},
		Summary: "List API keys",
	}, tenant.PermAPIKeysManage, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[tenant.APIKey], error) {
		pg, err := a.deps.Tenant.APIKeys(ctx, p.TenantID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(k tenant.APIKey) tenant.APIKey { return k }), nil
	})
	register(a, huma.Operation{
		OperationID: "create-api-key", Method: http.MethodPost, Path: "/api-keys", Tags: []string{"API keys"},
		Summary: "Create an API key", DefaultStatus: http.StatusCreated,
		Description: "Creates a key scoped to this workspace and a role. The key is returned once; only its hash is stored.",
	}, tenant.PermAPIKeysManage, func(ctx context.Context, p tenant.Principal, in *APIKeyCreate) (*APIKeyCreated, error) {
		k, plain, err := a.deps.Tenant.CreateAPIKey(ctx, p, in.Body.Name, tenant.Role(in.Body.Role))
		if err != nil {
			return nil, err
		}
		out := &APIKeyCreated{}
		out.Body.APIKey, out.Body.Key = k, plain
		return out, nil
	})
	register(a, huma.Operation{
		OperationID: "revoke-api-key", Method: http.MethodDelete, Path: "/api-keys/{id}", Tags: []string{"API keys"},
		Summary:     "Revoke an API key",
		Description: "Revokes the key at once. Revoking a revoked key changes nothing.",
	}, tenant.PermAPIKeysManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*APIKeyOutput, error) {
		k, err := a.deps.Tenant.RevokeAPIKey(ctx, p, in.ID)
		return &APIKeyOutput{Body: k}, err
	})
}

func (a *API) registerAudit() {
	register(a, huma.Operation{
		OperationID: "list-audit-log", Method: http.MethodGet, Path: "/audit-log", Tags: []string{"Audit log"},
		Summary:     "List the audit log",
		Description: "Administrative actions, newest first: who did what, when and from where.",
	}, tenant.PermAuditRead, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[tenant.AuditEntry], error) {
		pg, err := a.deps.Tenant.AuditLog(ctx, p.TenantID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(e tenant.AuditEntry) tenant.AuditEntry { return e }), nil
	})
}
