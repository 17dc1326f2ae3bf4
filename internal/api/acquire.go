package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/acquire"
	"github.com/siyu-dev/siyu/internal/tenant"
)

const acquireDoc = "A channel code (渠道活码) is a WeCom 联系我 QR code (add_contact_way, several members, QR scene) for one source " +
	"(store checkout, parcel card, ad, live stream, event). Its `state` (≤ 30 characters, unique in the workspace) comes back " +
	"with every add, so Siyu knows which code brought the customer. WeCom only rotates evenly over a code's members, so Siyu " +
	"keeps exactly one member on the code — the one its policy picks for the next add (smooth weighted round-robin or plain " +
	"round-robin over the staff on schedule and under their daily cap; backups when none is) — and updates the code " +
	"(update_contact_way) after each add and at schedule boundaries. On each add the code's tags are applied (bound tags are " +
	"marked in WeCom), the remark and description are set from the templates, and the welcome message is sent through the " +
	"outbox within WeCom's 20-second window."

// AcquireCodesInput filters the list of codes.
type AcquireCodesInput struct {
	PageParams
	Source  string `query:"source" enum:"store,parcel,ad,live,event,other," doc:"Only codes of this source."`
	Deleted bool   `query:"deleted" doc:"List deleted codes instead of active ones."`
}

type acquireCodeID struct {
	ID int64 `path:"id"`
}

// AcquireCodeOutput is one code.
type AcquireCodeOutput struct {
	Body acquire.ChannelCode
}

// AcquireStatsInput asks for statistics.
type AcquireStatsInput struct {
	From string `query:"from" doc:"First day, YYYY-MM-DD in the workspace time zone; default 29 days before to."`
	To   string `query:"to" doc:"Last day, inclusive; default today."`
}

// AcquireQRInput picks a print size.
type AcquireQRInput struct {
	ID   int64  `path:"id"`
	Size string `query:"size" enum:"original,8cm,15cm,50cm" default:"original" doc:"original: WeCom's image as is; a print size: a black-and-white PNG at 300 dpi (945, 1,772 or 5,906 px square) drawn module by module, sharp at any size."`
}

// AcquireStoreCodesOutput is the result per store.
type AcquireStoreCodesOutput struct {
	Body struct {
		Created int                       `json:"created"`
		Skipped int                       `json:"skipped"`
		Failed  int                       `json:"failed" doc:"Stores that failed or have no staff with a WeCom userid."`
		Results []acquire.StoreCodeResult `json:"results" nullable:"false"`
	}
}

// registerAcquire mounts its operations when Deps.Acquire is set.
func (a *API) registerAcquire() {
	if a.deps.Acquire == nil {
		return
	}
	svc := a.deps.Acquire
	groups := []string{"Channel codes"}
	register(a, huma.Operation{
		OperationID: "list-acquire-codes", Method: http.MethodGet, Path: "/acquire/codes", Tags: groups,
		Summary:     "List channel codes",
		Description: "Active channel codes, newest first, each with today's adds (workspace time zone).",
	}, tenant.PermAcquireRead, func(ctx context.Context, p tenant.Principal, in *AcquireCodesInput) (*ListOutput[acquire.ChannelCode], error) {
		pg, err := svc.Codes(ctx, p.TenantID, acquire.Filter{Source: in.Source, Deleted: in.Deleted}, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(c acquire.ChannelCode) acquire.ChannelCode { return c }), nil
	})
	register(a, huma.Operation{
		OperationID: "create-acquire-code", Method: http.MethodPost, Path: "/acquire/codes", Tags: groups,
		Summary: "Create a channel code", DefaultStatus: http.StatusCreated,
		Description: acquireDoc + " The state is the idempotency key: creating a code with a state in use answers 409 state_taken " +
			"and creates nothing in WeCom. Errors: state_too_long, unknown_staff, invalid_weight, invalid_cap, invalid_schedule, " +
			"unknown_tag, and WeCom's own (wecom_<errcode>, explained).",
		Errors: []int{http.StatusConflict, http.StatusUnprocessableEntity},
	}, tenant.PermAcquireManage, func(ctx context.Context, p tenant.Principal, in *struct{ Body acquire.CodeInput }) (*AcquireCodeOutput, error) {
		c, err := svc.Create(ctx, p, in.Body)
		return &AcquireCodeOutput{Body: c}, bodyPaths(err)
	})
	register(a, huma.Operation{
		OperationID: "get-acquire-code", Method: http.MethodGet, Path: "/acquire/codes/{id}", Tags: groups,
		Summary: "Get a channel code",
	}, tenant.PermAcquireRead, func(ctx context.Context, p tenant.Principal, in *acquireCodeID) (*AcquireCodeOutput, error) {
		c, err := svc.Code(ctx, p.TenantID, in.ID)
		return &AcquireCodeOutput{Body: c}, err
	})
	register(a, huma.Operation{
		OperationID: "replace-acquire-code", Method: http.MethodPut, Path: "/acquire/codes/{id}", Tags: groups,
		Summary: "Change a channel code",
		Description: "Replaces the code's settings. WeCom's code is updated in place (update_contact_way): its QR image stays " +
			"the same, so printed codes keep working. A store code stays with its store.",
		Errors: []int{http.StatusConflict, http.StatusUnprocessableEntity},
	}, tenant.PermAcquireManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID   int64 `path:"id"`
		Body acquire.CodeInput
	}) (*AcquireCodeOutput, error) {
		c, err := svc.Update(ctx, p, in.ID, in.Body)
		return &AcquireCodeOutput{Body: c}, bodyPaths(err)
	})
	register(a, huma.Operation{
		OperationID: "delete-acquire-code", Method: http.MethodDelete, Path: "/acquire/codes/{id}", Tags: groups,
		Summary: "Delete a channel code", DefaultStatus: http.StatusNoContent,
		Description: "Deletes the code in WeCom (del_contact_way: its QR stops working). Its statistics and the customers it " +
			"brought stay. Deleting a deleted code does nothing.",
	}, tenant.PermAcquireManage, func(ctx context.Context, p tenant.Principal, in *acquireCodeID) (*struct{}, error) {
		return nil, svc.Delete(ctx, p, in.ID)
	})
	register(a, huma.Operation{
		OperationID: "get-acquire-code-stats", Method: http.MethodGet, Path: "/acquire/codes/{id}/stats", Tags: groups,
		Summary: "Channel code statistics by day",
		Description: "Per day (workspace time zone): adds, deletions, net, first orders and spend (fen, after refunds) of the " +
			"customers the code brought (a customer belongs to the code that first brought them), with totals. At most 366 days.",
	}, tenant.PermAcquireRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
		AcquireStatsInput
	}) (*struct{ Body acquire.CodeStats }, error) {
		st, err := svc.Stats(ctx, p.TenantID, in.ID, in.From, in.To)
		return &struct{ Body acquire.CodeStats }{Body: st}, err
	})
	register(a, huma.Operation{
		OperationID: "get-acquire-stats", Method: http.MethodGet, Path: "/acquire/stats", Tags: groups,
		Summary:     "Statistics of all channel codes by day",
		Description: "As for one code, summed over every code (code_id 0).",
	}, tenant.PermAcquireRead, func(ctx context.Context, p tenant.Principal, in *AcquireStatsInput) (*struct{ Body acquire.CodeStats }, error) {
		st, err := svc.Stats(ctx, p.TenantID, 0, in.From, in.To)
		return &struct{ Body acquire.CodeStats }{Body: st}, err
	})
	binary := &huma.Schema{Type: "string", Format: "binary"}
	register(a, huma.Operation{
		OperationID: "get-acquire-code-qr", Method: http.MethodGet, Path: "/acquire/codes/{id}/qr.png", Tags: groups,
		Summary: "Download a channel code's QR image",
		Description: "WeCom's QR image (fetched once and kept), or a print size. Print sizes redraw the QR's module grid with " +
			"whole pixels per module and a quiet zone, so they stay sharp.",
		Responses: map[string]*huma.Response{"200": {Description: "The PNG.", Content: map[string]*huma.MediaType{"image/png": {Schema: binary}}}},
	}, tenant.PermAcquireRead, func(ctx context.Context, p tenant.Principal, in *AcquireQRInput) (*huma.StreamResponse, error) {
		var img []byte
		var err error
		name := "code-" + strconv.FormatInt(in.ID, 10)
		if px, ok := acquire.SizePixels(in.Size); ok {
			img, err = svc.QRPrint(ctx, p.TenantID, in.ID, px)
			name += "-" + in.Size
		} else {
			img, err = svc.QR(ctx, p.TenantID, in.ID)
		}
		if err != nil {
			return nil, err
		}
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			hctx.SetHeader("Content-Type", "image/png")
			hctx.SetHeader("Content-Disposition", "attachment; filename="+strconv.Quote(name+".png"))
			hctx.SetHeader("Cache-Control", "private, max-age=300")
			hctx.SetStatus(http.StatusOK)
			_, _ = hctx.BodyWriter().Write(img)
		}}, nil
	})
	register(a, huma.Operation{
		OperationID: "create-acquire-store-codes", Method: http.MethodPost, Path: "/acquire/store-codes", Tags: groups,
		Summary: "Create store codes in bulk",
		Description: "Creates a store code (门店活码) for each store (or the stores given) that has none: state store_<store code>, " +
			"the store's active staff with a WeCom userid in turn, the shared settings given. Stores with a code are skipped, " +
			"so running it again resumes a run cut short. Answers the result per store.",
	}, tenant.PermAcquireManage, func(ctx context.Context, p tenant.Principal, in *struct{ Body acquire.StoreCodesInput }) (*AcquireStoreCodesOutput, error) {
		res, err := svc.CreateStoreCodes(ctx, p, in.Body, nil)
		if err != nil {
			return nil, bodyPaths(err)
		}
		out := &AcquireStoreCodesOutput{}
		out.Body.Results = res
		for _, r := range res {
			switch r.Status {
			case acquire.StoreCreated:
				out.Body.Created++
			case acquire.StoreSkipped:
				out.Body.Skipped++
			default:
				out.Body.Failed++
			}
		}
		return out, nil
	})
}
