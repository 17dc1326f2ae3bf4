package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// WriteKeyOutput is one write key.
type WriteKeyOutput struct {
	Body event.WriteKey
}

// WriteKeyCreate is the body of POST /write-keys.
type WriteKeyCreate struct {
	Body struct {
		Name string `json:"name" minLength:"1" maxLength:"100" doc:"Where the key is used, e.g. 'mini program' or 'website'."`
	}
}

func (a *API) registerWriteKeys() {
	if a.deps.Events == nil {
		return
	}
	register(a, huma.Operation{
		OperationID: "list-write-keys", Method: http.MethodGet, Path: "/write-keys", Tags: []string{"Ingest"},
		Summary:     "List write keys",
		Description: "Write keys identify the workspace to the Segment-compatible ingest endpoints (/v1/batch, /v1/track, …). They are embedded in apps and are not secret, so they are shown in full.",
	}, tenant.PermAPIKeysManage, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[event.WriteKey], error) {
		pg, err := a.deps.Events.WriteKeys(ctx, p.TenantID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(k event.WriteKey) event.WriteKey { return k }), nil
	})
	register(a, huma.Operation{
		OperationID: "create-write-key", Method: http.MethodPost, Path: "/write-keys", Tags: []string{"Ingest"},
		Summary: "Create a write key", DefaultStatus: http.StatusCreated,
		Description: "Point any Segment or RudderStack SDK at this server with the key as its write key.",
	}, tenant.PermAPIKeysManage, func(ctx context.Context, p tenant.Principal, in *WriteKeyCreate) (*WriteKeyOutput, error) {
		k, err := a.deps.Events.CreateWriteKey(ctx, p, in.Body.Name)
		if err != nil {
			return nil, err
		}
		return &WriteKeyOutput{Body: k}, nil
	})
	register(a, huma.Operation{
		OperationID: "revoke-write-key", Method: http.MethodDelete, Path: "/write-keys/{id}", Tags: []string{"Ingest"},
		Summary:     "Revoke a write key",
		Description: "Requests with the key are refused from now on (within seconds on other servers). Revoking a revoked key changes nothing.",
	}, tenant.PermAPIKeysManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*WriteKeyOutput, error) {
		k, err := a.deps.Events.RevokeWriteKey(ctx, p, in.ID)
		if err != nil {
			return nil, err
		}
		return &WriteKeyOutput{Body: k}, nil
	})
}
