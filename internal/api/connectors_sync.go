package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// The WeCom connector's operations beyond its settings (connectors.go): the
// sync and its status, the staff WeCom brought with their customer counts,
// one callback event, and the binding of tag groups to corp tag groups.
// The console's WeCom pages do the same, with the same permissions.

// WeComSyncReportOutput is a workspace's sync status.
type WeComSyncReportOutput struct {
	Body wecom.SyncReport
}

// WeComSyncRunOutput is one sync run.
type WeComSyncRunOutput struct {
	Body wecom.SyncRun
}

// WeComSyncInput starts a sync; without a body, a full one.
type WeComSyncInput struct {
	Body *struct {
		Kind string `json:"kind,omitempty" enum:"full,reconcile,tags" default:"full" doc:"full: everything (on demand); reconcile: everything again, to repair what callbacks missed; tags: corp tags and customers' bound tags only."`
	}
}

// WeComStaff is a staff member WeCom's directory brought, with how many
// customers they serve now.
type WeComStaff struct {
	ID          int64        `json:"id"`
	Name        string       `json:"name"`
	Title       string       `json:"title" doc:"The position (职务) in WeCom's directory."`
	WeComUserID string       `json:"wecom_userid" doc:"The member's userid in WeCom."`
	StoreID     int64        `json:"store_id,omitempty"`
	Status      staff.Status `json:"status" enum:"active,resigned" doc:"resigned: deleted from WeCom's directory (离职); their customers await inheritance."`
	Customers   int64        `json:"customers" doc:"Customers the member serves now: current relations (added, or added by the customer and not yet accepted)."`
	CreatedAt   time.Time    `json:"created_at"`
	ResignedAt  time.Time    `json:"resigned_at,omitzero"`
}

// WeComCorpTagGroupsOutput is WeCom's corp tag groups, read live.
type WeComCorpTagGroupsOutput struct {
	Body struct {
		Items []wecom.CorpTagGroup `json:"items" nullable:"false"`
	}
}

// WeComTagBindingInput binds a Siyu tag group.
type WeComTagBindingInput struct {
	GroupID int64 `path:"group_id" doc:"The Siyu tag group."`
	Body    *struct {
		WeComGroupID string `json:"wecom_group_id,omitempty" maxLength:"64" doc:"The WeCom corp tag group to bind. Leave out to bind the WeCom group of the same name, or to create one from the Siyu group."`
	}
}

// WeComTagBindingOutput is a binding made.
type WeComTagBindingOutput struct {
	Body wecom.TagBinding
}

// corpTagListTimeout bounds the live read of WeCom's corp tags.
const corpTagListTimeout = 20 * time.Second

func (a *API) registerConnectorSync() {
	if a.deps.WeCom == nil {
		return
	}
	w := a.deps.WeCom
	tags := []string{"Connectors"}
	register(a, huma.Operation{
		OperationID: "get-wecom-sync", Method: http.MethodGet, Path: "/connectors/wecom/sync", Tags: tags,
		Summary: "Get the WeCom sync status",
		Description: "The run queued or in progress (`current`, with its phase and `percent`), the last run that ended (`last`: done, or " +
			"failed with WeCom's error code, what it means and the fix), the last successful one, whether the failed run can be resumed, " +
			"and when the scheduled reconciliation runs next.",
	}, tenant.PermConnectorsRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*WeComSyncReportOutput, error) {
		rep, err := w.SyncStatus(ctx, p.TenantID)
		return &WeComSyncReportOutput{Body: rep}, err
	})
	register(a, huma.Operation{
		OperationID: "start-wecom-sync", Method: http.MethodPost, Path: "/connectors/wecom/sync", Tags: tags,
		Summary: "Start a WeCom sync", DefaultStatus: http.StatusAccepted,
		Description: "Queues a sync; a worker starts it within seconds. Poll GET /connectors/wecom/sync for progress. A failed run left behind " +
			"is cancelled (POST /connectors/wecom/sync/resume goes on from where it stopped instead). " +
			"409 `wecom_sync_running` while another run is queued or running; 404 `wecom_not_configured` until WeCom is connected.",
		Errors: []int{http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity},
	}, tenant.PermConnectorsManage, func(ctx context.Context, p tenant.Principal, in *WeComSyncInput) (*WeComSyncRunOutput, error) {
		kind := wecom.SyncFull
		if in.Body != nil && in.Body.Kind != "" {
			kind = wecom.SyncKind(in.Body.Kind)
		}
		run, err := w.StartSync(ctx, p.TenantID, kind)
		if err != nil {
			return nil, bodyPaths(err)
		}
		a.deps.Log.InfoContext(ctx, "api: wecom sync started", "tenant_id", p.TenantID, "run", run.ID, "kind", kind, "by", p.Name)
		return &WeComSyncRunOutput{Body: run}, nil
	})
	register(a, huma.Operation{
		OperationID: "resume-wecom-sync", Method: http.MethodPost, Path: "/connectors/wecom/sync/resume", Tags: tags,
		Summary: "Resume the failed WeCom sync", DefaultStatus: http.StatusAccepted,
		Description: "Queues the last run again when it failed, to go on from the position it stopped at (after fixing what WeCom " +
			"complained about, e.g. saving a new secret). 409 `wecom_sync_not_resumable` when the last run did not fail.",
		Errors: []int{http.StatusConflict},
	}, tenant.PermConnectorsManage, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*WeComSyncRunOutput, error) {
		run, err := w.ResumeSync(ctx, p.TenantID)
		if err != nil {
			return nil, err
		}
		a.deps.Log.InfoContext(ctx, "api: wecom sync resumed", "tenant_id", p.TenantID, "run", run.ID, "by", p.Name)
		return &WeComSyncRunOutput{Body: run}, nil
	})
	register(a, huma.Operation{
		OperationID: "get-wecom-sync-run", Method: http.MethodGet, Path: "/connectors/wecom/sync/runs/{id}", Tags: tags,
		Summary: "Get one WeCom sync run",
		Errors:  []int{http.StatusNotFound},
	}, tenant.PermConnectorsRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*WeComSyncRunOutput, error) {
		run, err := w.SyncRun(ctx, p.TenantID, in.ID)
		return &WeComSyncRunOutput{Body: run}, err
	})
	register(a, huma.Operation{
		OperationID: "get-wecom-event", Method: http.MethodGet, Path: "/connectors/wecom/events/{id}", Tags: tags,
		Summary:     "Get one WeCom callback event",
		Description: "One stored callback: the decrypted message as WeCom sent it, how often it was delivered, and what processing made of it.",
		Errors:      []int{http.StatusNotFound},
	}, tenant.PermConnectorsRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*WeComEventOutput, error) {
		e, err := w.InboxEntry(ctx, p.TenantID, in.ID)
		return &WeComEventOutput{Body: e}, err
	})
	if a.deps.Staff != nil {
		register(a, huma.Operation{
			OperationID: "list-wecom-staff", Method: http.MethodGet, Path: "/connectors/wecom/staff", Tags: tags,
			Summary: "List the staff from WeCom",
			Description: "Staff members with a WeCom userid, newest first, each with how many customers they serve now. " +
				"Staff without a WeCom userid are left out, so a page may hold fewer than `limit` items; follow `next_cursor` to the end.",
		}, tenant.PermConnectorsRead, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[WeComStaff], error) {
			return a.wecomStaff(ctx, p.TenantID, in.Request())
		})
	}
	if a.deps.Tags != nil {
		register(a, huma.Operation{
			OperationID: "list-wecom-corp-tag-groups", Method: http.MethodGet, Path: "/connectors/wecom/corp-tag-groups", Tags: tags,
			Summary:     "List WeCom's corp tag groups",
			Description: "The corp customer tag groups (企业客户标签) with their tags, read from WeCom now, to choose one to bind a tag group to.",
			Errors:      []int{http.StatusNotFound, http.StatusUnprocessableEntity},
		}, tenant.PermConnectorsRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*WeComCorpTagGroupsOutput, error) {
			c, err := w.Client(ctx, p.TenantID)
			if err != nil {
				return nil, err
			}
			lctx, cancel := context.WithTimeout(ctx, corpTagListTimeout)
			defer cancel()
			all, err := c.GetCorpTagList(lctx, nil, nil)
			if err != nil {
				return nil, err
			}
			out := &WeComCorpTagGroupsOutput{}
			out.Body.Items = []wecom.CorpTagGroup{}
			for _, g := range all {
				if !g.Deleted {
					out.Body.Items = append(out.Body.Items, g)
				}
			}
			return out, nil
		})
		register(a, huma.Operation{
			OperationID: "bind-wecom-tag-group", Method: http.MethodPut, Path: "/connectors/wecom/tag-bindings/{group_id}", Tags: tags,
			Summary: "Bind a tag group to a WeCom corp tag group",
			Description: "Binds the Siyu tag group to a WeCom corp tag group: the one given, or the one of the same name, or a new one created " +
				"from the Siyu group. Tags are matched by name and created on whichever side lacks them; from then on marks travel both ways. " +
				"A tags sync is queued to bring in the marks WeCom has. Also needs `tags.manage`.",
			Errors: []int{http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity},
		}, tenant.PermConnectorsManage, func(ctx context.Context, p tenant.Principal, in *WeComTagBindingInput) (*WeComTagBindingOutput, error) {
			var bin wecom.BindTagGroupInput
			if in.Body != nil {
				bin.WeComGroupID = in.Body.WeComGroupID
			}
			b, err := w.BindTagGroup(ctx, p, in.GroupID, bin)
			return &WeComTagBindingOutput{Body: b}, err
		})
		register(a, huma.Operation{
			OperationID: "unbind-wecom-tag-group", Method: http.MethodDelete, Path: "/connectors/wecom/tag-bindings/{group_id}", Tags: tags,
			Summary: "Unbind a tag group from WeCom", DefaultStatus: http.StatusNoContent,
			Description: "Ends the binding: both sides keep their tags and marks; changes no longer travel. Needs `tags.manage` too.",
			Errors:      []int{http.StatusNotFound},
		}, tenant.PermConnectorsManage, func(ctx context.Context, p tenant.Principal, in *struct {
			GroupID int64 `path:"group_id"`
		}) (*struct{}, error) {
			return nil, w.UnbindTagGroup(ctx, p, in.GroupID)
		})
	}
}

// wecomStaff reads a page of staff and keeps those with a WeCom userid, with
// their current customer counts.
func (a *API) wecomStaff(ctx context.Context, tenantID int64, r page.Request) (*ListOutput[WeComStaff], error) {
	pg, err := a.deps.Staff.Members(ctx, tenantID, r)
	if err != nil {
		return nil, err
	}
	counts, err := a.deps.Staff.CustomerCounts(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := &ListOutput[WeComStaff]{Body: List[WeComStaff]{Items: []WeComStaff{}, NextCursor: pg.Next}}
	for _, m := range pg.Items {
		if m.WeComUserID == "" {
			continue
		}
		out.Body.Items = append(out.Body.Items, WeComStaff{ID: m.ID, Name: m.Name, Title: m.Title, WeComUserID: m.WeComUserID,
			StoreID: m.StoreID, Status: m.Status, Customers: counts[m.ID], CreatedAt: m.CreatedAt, ResignedAt: m.ResignedAt})
	}
	return out, nil
}
