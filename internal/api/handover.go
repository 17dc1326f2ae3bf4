package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/handover"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// HandoverStaffList filters GET /handover/staff.
type HandoverStaffList struct {
	PageParams
	All bool `query:"all" doc:"Also staff with no customers or groups to hand over."`
}

// HandoverStaffPage selects one staff member's customers or groups.
type HandoverStaffPage struct {
	PageParams
	ID int64 `path:"id" doc:"The staff member's id."`
}

// HandoverStartInput is the body of POST /handover/jobs.
type HandoverStartInput struct {
	IdempotencyKey string `header:"Idempotency-Key" required:"true" doc:"Retries with the same key return the handover the first request started; nothing is sent twice."`
	Body           handover.Selection
}

// HandoverJobInput names a handover.
type HandoverJobInput struct {
	ID int64 `path:"id"`
}

// HandoverItemList filters GET /handover/jobs/{id}/items.
type HandoverItemList struct {
	PageParams
	ID    int64  `path:"id"`
	State string `query:"state" enum:"pending,sending,waiting,done,refused,failed,skipped," doc:"Only items in this state (pending includes sending)."`
}

// registerHandover mounts its operations when Deps.Handover is set.
func (a *API) registerHandover() {
	if a.deps.Handover == nil {
		return
	}
	hs := a.deps.Handover
	tags := []string{"Handover"}

	register(a, huma.Operation{
		OperationID: "list-handover-staff", Method: http.MethodGet, Path: "/handover/staff", Tags: tags,
		Summary: "Staff with customers and groups to hand over",
		Description: "Staff with a WeCom account and how many customers and groups each has: staff who left (resigned: their customers wait " +
			"for inheritance, 离职继承) first, then current staff (on-job transfer, 在职转接). By default only staff with something to hand over.",
	}, tenant.PermHandover, func(ctx context.Context, p tenant.Principal, in *HandoverStaffList) (*ListOutput[handover.Holder], error) {
		pg, err := hs.StaffList(ctx, p.TenantID, !in.All, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(m handover.Holder) handover.Holder { return m }), nil
	})
	register(a, huma.Operation{
		OperationID: "list-handover-customers", Method: http.MethodGet, Path: "/handover/staff/{id}/customers", Tags: tags,
		Summary:     "A staff member's customers",
		Description: "The customers the staff member serves now, with their on-job transfers in the last 90 days (WeCom allows 2) and when another is allowed.",
	}, tenant.PermHandover, func(ctx context.Context, p tenant.Principal, in *HandoverStaffPage) (*ListOutput[handover.HeldCustomer], error) {
		pg, err := hs.Customers(ctx, p.TenantID, in.ID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(e handover.HeldCustomer) handover.HeldCustomer { return e }), nil
	})
	register(a, huma.Operation{
		OperationID: "list-handover-groups", Method: http.MethodGet, Path: "/handover/staff/{id}/groups", Tags: tags,
		Summary: "A staff member's customer groups", Description: "The customer groups the staff member owns.",
	}, tenant.PermHandover, func(ctx context.Context, p tenant.Principal, in *HandoverStaffPage) (*ListOutput[handover.HeldGroup], error) {
		pg, err := hs.Groups(ctx, p.TenantID, in.ID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(g handover.HeldGroup) handover.HeldGroup { return g }), nil
	})
	register(a, huma.Operation{
		OperationID: "preview-handover", Method: http.MethodPost, Path: "/handover/preview", Tags: tags,
		Summary: "Verdict a handover before starting it",
		Description: "Checks who hands over to whom (same_staff, unknown_staff, takeover_resigned) and explains, per customer and group, " +
			"what would be sent and what skipped: not_their_customer, not_their_group, takeover_serves_customer, transfer_in_progress, and " +
			"transfer_limit_90d (WeCom allows an on-job transfer of a customer or group at most twice in 90 days). Nothing is sent.",
	}, tenant.PermHandover, func(ctx context.Context, p tenant.Principal, in *struct{ Body handover.Selection }) (*struct{ Body handover.Assessment }, error) {
		pv, err := hs.Preview(ctx, p, in.Body)
		return &struct{ Body handover.Assessment }{Body: pv}, err
	})
	register(a, huma.Operation{
		OperationID: "start-handover", Method: http.MethodPost, Path: "/handover/jobs", Tags: tags,
		Summary: "Start a handover", DefaultStatus: http.StatusCreated,
		Description: "Checks the request as the preview does and starts a handover job: customers that pass are sent to WeCom in calls of " +
			"at most 100 (transfer_customer, or resigned/transfer_customer when the staff member left), groups through groupchat/onjob_transfer " +
			"or groupchat/transfer. Customers have 24 hours to refuse; results are polled until final. Skipped customers are recorded with " +
			"their reason. nothing_to_hand_over when no chosen customer or group passes.",
	}, tenant.PermHandover, func(ctx context.Context, p tenant.Principal, in *HandoverStartInput) (*struct{ Body handover.Handover }, error) {
		j, _, err := hs.Start(ctx, p, in.Body, in.IdempotencyKey)
		return &struct{ Body handover.Handover }{Body: j}, err
	})
	register(a, huma.Operation{
		OperationID: "list-handovers", Method: http.MethodGet, Path: "/handover/jobs", Tags: tags,
		Summary: "List handovers", Description: "Handovers, newest first, with their customers and groups counted by state.",
	}, tenant.PermHandover, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[handover.Handover], error) {
		pg, err := hs.Jobs(ctx, p.TenantID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(j handover.Handover) handover.Handover { return j }), nil
	})
	register(a, huma.Operation{
		OperationID: "get-handover", Method: http.MethodGet, Path: "/handover/jobs/{id}", Tags: tags,
		Summary: "Get a handover's progress",
	}, tenant.PermHandover, func(ctx context.Context, p tenant.Principal, in *HandoverJobInput) (*struct{ Body handover.Handover }, error) {
		j, err := hs.Job(ctx, p.TenantID, in.ID)
		return &struct{ Body handover.Handover }{Body: j}, err
	})
	register(a, huma.Operation{
		OperationID: "refresh-handover", Method: http.MethodPost, Path: "/handover/jobs/{id}/refresh", Tags: tags,
		Summary:     "Read a handover's results from WeCom now",
		Description: "Sends what is pending and reads the transfer results now instead of at the next poll. handover_busy when the worker holds it.",
	}, tenant.PermHandover, func(ctx context.Context, p tenant.Principal, in *HandoverJobInput) (*struct{ Body handover.Handover }, error) {
		j, err := hs.Refresh(ctx, p.TenantID, in.ID)
		return &struct{ Body handover.Handover }{Body: j}, err
	})
	register(a, huma.Operation{
		OperationID: "list-handover-items", Method: http.MethodGet, Path: "/handover/jobs/{id}/items", Tags: tags,
		Summary:     "A handover's customers and groups",
		Description: "One item per customer and group, in order, with its state, the reason code and explanation when skipped, refused or failed, and WeCom's errcode.",
	}, tenant.PermHandover, func(ctx context.Context, p tenant.Principal, in *HandoverItemList) (*ListOutput[handover.Transfer], error) {
		pg, err := hs.Items(ctx, p.TenantID, in.ID, in.State, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(it handover.Transfer) handover.Transfer { return it }), nil
	})
}
