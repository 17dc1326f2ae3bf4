package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// CatalogInput filters GET /event-catalog.
type CatalogInput struct {
	Kind   string `query:"kind" enum:"event,property,trait," doc:"Only this kind; empty for all."`
	Parent string `query:"parent" maxLength:"200" doc:"Only the properties of this event."`
}

// CatalogOutput is the event catalogue.
type CatalogOutput struct {
	Body struct {
		Items []event.CatalogEntry `json:"items" nullable:"false"`
	}
}

func (a *API) registerEvents() {
	if a.deps.Events == nil {
		return
	}
	register(a, huma.Operation{
		OperationID: "list-ingest-errors", Method: http.MethodGet, Path: "/ingest-errors", Tags: []string{"Ingest"},
		Summary: "List ingest errors",
		Description: "Messages the ingest endpoints refused while accepting the rest of their batch, requests refused whole " +
			"(malformed JSON, over a size limit), and events no customer could be resolved for. Newest first.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[event.IngestError], error) {
		pg, err := a.deps.Events.IngestErrors(ctx, p.TenantID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(e event.IngestError) event.IngestError { return e }), nil
	})
	register(a, huma.Operation{
		OperationID: "list-event-catalog", Method: http.MethodGet, Path: "/event-catalog", Tags: []string{"Ingest"},
		Summary:     "The event catalogue",
		Description: "Event names, their properties, and traits seen in processed events, with inferred type, first and last seen, and volume; most seen first.",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, in *CatalogInput) (*CatalogOutput, error) {
		items, err := a.deps.Events.Catalog(ctx, p.TenantID, in.Kind, in.Parent)
		if err != nil {
			return nil, err
		}
		out := &CatalogOutput{}
		out.Body.Items = items
		return out, nil
	})
}
