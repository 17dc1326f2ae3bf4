package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/community"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// CommunityGroupList filters GET /community/groups.
type CommunityGroupList struct {
	PageParams
	Owner  string `query:"owner" doc:"Only groups owned by this staff member (WeCom userid)."`
	Name   string `query:"name" doc:"Only groups whose name contains this."`
	TagID  int64  `query:"tag_id" doc:"Only groups carrying this group tag."`
	Status string `query:"status" enum:"active,dismissed," doc:"active or dismissed; default both."`
}

// CommunityGroupOutput is one group.
type CommunityGroupOutput struct {
	Body community.CustomerGroup
}

// CommunityMemberList filters GET /community/groups/{chat_id}/members.
type CommunityMemberList struct {
	PageParams
	ChatID string `path:"chat_id"`
	Status string `query:"status" enum:"in,left,all," doc:"in (default): members now; left: past members; all."`
}

// CommunityStatsInput selects GET /community/groups/{chat_id}/stats.
type CommunityStatsInput struct {
	ChatID string `path:"chat_id"`
	From   string `query:"from" doc:"First day, YYYY-MM-DD (workspace time zone); default 29 days before to."`
	To     string `query:"to" doc:"Last day, YYYY-MM-DD; default today."`
}

// CommunityGroupCodeInput is the body of POST and PUT /community/group-codes.
type CommunityGroupCodeInput struct {
	IdempotencyKey string `header:"Idempotency-Key" doc:"Retries with the same key return the first request's code instead of creating another."`
	Body           community.GroupCodeInput
}

// CommunityWelcomeInput is the body of POST and PUT /community/welcome-templates.
type CommunityWelcomeInput struct {
	IdempotencyKey string `header:"Idempotency-Key" doc:"Retries with the same key return the first request's template instead of adding another."`
	Body           community.GroupWelcomeInput
}

// registerCommunity mounts its operations when Deps.Community is set.
func (a *API) registerCommunity() {
	if a.deps.Community == nil {
		return
	}
	cs := a.deps.Community
	tags := []string{"Community"}

	register(a, huma.Operation{
		OperationID: "list-community-groups", Method: http.MethodGet, Path: "/community/groups", Tags: tags,
		Summary:     "List customer groups",
		Description: "Customer groups (客户群) from WeCom, newest first, with owner, member counts and group tags. Filter by owner, name, group tag and status.",
	}, tenant.PermCommunityRead, func(ctx context.Context, p tenant.Principal, in *CommunityGroupList) (*ListOutput[community.CustomerGroup], error) {
		pg, err := cs.Groups(ctx, p.TenantID, community.GroupQuery{Owner: in.Owner, Name: in.Name, TagID: in.TagID, Status: in.Status}, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(g community.CustomerGroup) community.CustomerGroup { return g }), nil
	})
	register(a, huma.Operation{
		OperationID: "get-community-group", Method: http.MethodGet, Path: "/community/groups/{chat_id}", Tags: tags,
		Summary: "Get a customer group",
	}, tenant.PermCommunityRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ChatID string `path:"chat_id"`
	}) (*CommunityGroupOutput, error) {
		g, err := cs.Group(ctx, p.TenantID, in.ChatID)
		return &CommunityGroupOutput{Body: g}, err
	})
	register(a, huma.Operation{
		OperationID: "list-community-group-members", Method: http.MethodGet, Path: "/community/groups/{chat_id}/members", Tags: tags,
		Summary:     "List a group's members",
		Description: "Members by member id: staff and customers, each customer with its profile id (customer_id), join time and scene, and when they left.",
	}, tenant.PermCommunityRead, func(ctx context.Context, p tenant.Principal, in *CommunityMemberList) (*ListOutput[community.GroupMember], error) {
		pg, err := cs.Members(ctx, p.TenantID, in.ChatID, community.MemberQuery{Status: in.Status}, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(m community.GroupMember) community.GroupMember { return m }), nil
	})
	register(a, huma.Operation{
		OperationID: "get-community-group-stats", Method: http.MethodGet, Path: "/community/groups/{chat_id}/stats", Tags: tags,
		Summary:     "A group's members, joins and leaves per day",
		Description: "Computed by Siyu from the member history: members at the end of each day, joins, leaves and net change. At most 366 days.",
	}, tenant.PermCommunityRead, func(ctx context.Context, p tenant.Principal, in *CommunityStatsInput) (*struct{ Body List[community.GroupDayStat] }, error) {
		st, err := cs.DailyStats(ctx, p.TenantID, community.StatsQuery{ChatID: in.ChatID, From: in.From, To: in.To})
		return &struct{ Body List[community.GroupDayStat] }{Body: List[community.GroupDayStat]{Items: st}}, err
	})
	register(a, huma.Operation{
		OperationID: "get-community-stats", Method: http.MethodGet, Path: "/community/stats", Tags: tags,
		Summary:     "Members, joins and leaves per day over groups",
		Description: "Siyu's statistics over every group, or an owner's groups. With source=wecom, WeCom's own statistics (groupchat/statistic_group_by_day, at most 30 days, with message counts).",
	}, tenant.PermCommunityRead, func(ctx context.Context, p tenant.Principal, in *struct {
		Owner  string `query:"owner" doc:"Only this owner's groups (WeCom userid)."`
		From   string `query:"from"`
		To     string `query:"to"`
		Source string `query:"source" enum:"siyu,wecom," doc:"siyu (default) or wecom."`
	}) (*struct {
		Body struct {
			Items []community.GroupDayStat    `json:"items,omitempty"`
			WeCom []community.GroupWeComStats `json:"wecom,omitempty"`
		}
	}, error) {
		out := &struct {
			Body struct {
				Items []community.GroupDayStat    `json:"items,omitempty"`
				WeCom []community.GroupWeComStats `json:"wecom,omitempty"`
			}
		}{}
		var err error
		if in.Source == "wecom" {
			var owners []string
			if in.Owner != "" {
				owners = []string{in.Owner}
			}
			out.Body.WeCom, err = cs.WeComDailyStats(ctx, p.TenantID, owners, in.From, in.To)
		} else {
			out.Body.Items, err = cs.DailyStats(ctx, p.TenantID, community.StatsQuery{Owner: in.Owner, From: in.From, To: in.To})
		}
		return out, err
	})
	register(a, huma.Operation{
		OperationID: "set-community-group-tags", Method: http.MethodPut, Path: "/community/groups/{chat_id}/tags", Tags: tags,
		Summary: "Set a group's tags", Description: "Replaces the group's tags with the given group tags (at most 20).",
	}, tenant.PermCommunityManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ChatID string `path:"chat_id"`
		Body   struct {
			TagIDs []int64 `json:"tag_ids" nullable:"false" maxItems:"20"`
		}
	}) (*CommunityGroupOutput, error) {
		g, err := cs.SetGroupTags(ctx, p, in.ChatID, in.Body.TagIDs)
		return &CommunityGroupOutput{Body: g}, err
	})

	register(a, huma.Operation{
		OperationID: "list-community-group-tags", Method: http.MethodGet, Path: "/community/group-tags", Tags: tags,
		Summary: "List group tags", Description: "Siyu's tags on customer groups, by name, with how many groups carry each. Not paged: a workspace has few.",
	}, tenant.PermCommunityRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*struct{ Body List[community.GroupTag] }, error) {
		ts, err := cs.GroupTags(ctx, p.TenantID)
		return &struct{ Body List[community.GroupTag] }{Body: List[community.GroupTag]{Items: ts}}, err
	})
	register(a, huma.Operation{
		OperationID: "create-community-group-tag", Method: http.MethodPost, Path: "/community/group-tags", Tags: tags,
		Summary: "Create a group tag", DefaultStatus: http.StatusCreated,
	}, tenant.PermCommunityManage, func(ctx context.Context, p tenant.Principal, in *struct{ Body community.GroupTagInput }) (*struct{ Body community.GroupTag }, error) {
		t, err := cs.CreateGroupTag(ctx, p, in.Body)
		return &struct{ Body community.GroupTag }{Body: t}, err
	})
	register(a, huma.Operation{
		OperationID: "update-community-group-tag", Method: http.MethodPut, Path: "/community/group-tags/{id}", Tags: tags,
		Summary: "Change a group tag",
	}, tenant.PermCommunityManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID   int64 `path:"id"`
		Body community.GroupTagInput
	}) (*struct{ Body community.GroupTag }, error) {
		t, err := cs.UpdateGroupTag(ctx, p, in.ID, in.Body)
		return &struct{ Body community.GroupTag }{Body: t}, err
	})
	register(a, huma.Operation{
		OperationID: "delete-community-group-tag", Method: http.MethodDelete, Path: "/community/group-tags/{id}", Tags: tags,
		Summary: "Delete a group tag", DefaultStatus: http.StatusNoContent, Description: "Deletes the tag and takes it off every group.",
	}, tenant.PermCommunityManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*struct{}, error) {
		return nil, cs.DeleteGroupTag(ctx, p, in.ID)
	})

	register(a, huma.Operation{
		OperationID: "list-community-group-codes", Method: http.MethodGet, Path: "/community/group-codes", Tags: tags,
		Summary: "List group codes", Description: "CustomerGroup codes (群活码), newest first, with their QR code and the groups WeCom lists for them now.",
	}, tenant.PermCommunityRead, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[community.GroupCode], error) {
		pg, err := cs.GroupCodes(ctx, p.TenantID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(c community.GroupCode) community.GroupCode { return c }), nil
	})
	register(a, huma.Operation{
		OperationID: "create-community-group-code", Method: http.MethodPost, Path: "/community/group-codes", Tags: tags,
		Summary: "Create a group code", DefaultStatus: http.StatusCreated,
		Description: "Creates a group code in WeCom (groupchat/add_join_way, QR code): 1 to 5 groups (too_many_chats), a state of at most 30 characters " +
			"(state_too_long), groups known to Siyu (unknown_group). With auto_create_room, WeCom opens a new group named room_base_name plus a number " +
			"when the last one fills, and the code's groups follow.",
	}, tenant.PermCommunityManage, func(ctx context.Context, p tenant.Principal, in *CommunityGroupCodeInput) (*struct{ Body community.GroupCode }, error) {
		body := in.Body
		if body.IdempotencyKey == "" {
			body.IdempotencyKey = in.IdempotencyKey
		}
		c, err := cs.CreateGroupCode(ctx, p, body)
		return &struct{ Body community.GroupCode }{Body: c}, err
	})
	register(a, huma.Operation{
		OperationID: "get-community-group-code", Method: http.MethodGet, Path: "/community/group-codes/{id}", Tags: tags,
		Summary: "Get a group code", Description: "With refresh=true the code's groups are read from WeCom first.",
	}, tenant.PermCommunityRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID      int64 `path:"id"`
		Refresh bool  `query:"refresh"`
	}) (*struct{ Body community.GroupCode }, error) {
		var c community.GroupCode
		var err error
		if in.Refresh {
			c, err = cs.RefreshGroupCode(ctx, p.TenantID, in.ID)
		} else {
			c, err = cs.GroupCode(ctx, p.TenantID, in.ID)
		}
		return &struct{ Body community.GroupCode }{Body: c}, err
	})
	register(a, huma.Operation{
		OperationID: "update-community-group-code", Method: http.MethodPut, Path: "/community/group-codes/{id}", Tags: tags,
		Summary: "Change a group code", Description: "Replaces the code's settings in WeCom (groupchat/update_join_way); the QR code stays the same.",
	}, tenant.PermCommunityManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID   int64 `path:"id"`
		Body community.GroupCodeInput
	}) (*struct{ Body community.GroupCode }, error) {
		c, err := cs.UpdateGroupCode(ctx, p, in.ID, in.Body)
		return &struct{ Body community.GroupCode }{Body: c}, err
	})
	register(a, huma.Operation{
		OperationID: "delete-community-group-code", Method: http.MethodDelete, Path: "/community/group-codes/{id}", Tags: tags,
		Summary: "Delete a group code", DefaultStatus: http.StatusNoContent, Description: "Deletes the code in WeCom; its QR code stops working.",
	}, tenant.PermCommunityManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*struct{}, error) {
		return nil, cs.DeleteGroupCode(ctx, p, in.ID)
	})

	register(a, huma.Operation{
		OperationID: "list-community-welcome-templates", Method: http.MethodGet, Path: "/community/welcome-templates", Tags: tags,
		Summary: "List group welcome templates",
	}, tenant.PermCommunityRead, func(ctx context.Context, p tenant.Principal, in *PageParams) (*ListOutput[community.GroupWelcome], error) {
		pg, err := cs.WelcomeTemplates(ctx, p.TenantID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(t community.GroupWelcome) community.GroupWelcome { return t }), nil
	})
	register(a, huma.Operation{
		OperationID: "create-community-welcome-template", Method: http.MethodPost, Path: "/community/welcome-templates", Tags: tags,
		Summary: "Create a group welcome template", DefaultStatus: http.StatusCreated,
		Description: "Adds a group welcome template (入群欢迎语素材) in WeCom: text (at most 4,000 bytes, %NICKNAME% becomes the customer's name) and at most " +
			"one image, link or mini-program card. notify tells the staff in WeCom.",
	}, tenant.PermCommunityManage, func(ctx context.Context, p tenant.Principal, in *CommunityWelcomeInput) (*struct{ Body community.GroupWelcome }, error) {
		body := in.Body
		if body.IdempotencyKey == "" {
			body.IdempotencyKey = in.IdempotencyKey
		}
		t, err := cs.CreateWelcomeTemplate(ctx, p, body)
		return &struct{ Body community.GroupWelcome }{Body: t}, err
	})
	register(a, huma.Operation{
		OperationID: "get-community-welcome-template", Method: http.MethodGet, Path: "/community/welcome-templates/{id}", Tags: tags,
		Summary: "Get a group welcome template",
	}, tenant.PermCommunityRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*struct{ Body community.GroupWelcome }, error) {
		t, err := cs.WelcomeTemplate(ctx, p.TenantID, in.ID)
		return &struct{ Body community.GroupWelcome }{Body: t}, err
	})
	register(a, huma.Operation{
		OperationID: "update-community-welcome-template", Method: http.MethodPut, Path: "/community/welcome-templates/{id}", Tags: tags,
		Summary: "Change a group welcome template",
	}, tenant.PermCommunityManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID   int64 `path:"id"`
		Body community.GroupWelcomeInput
	}) (*struct{ Body community.GroupWelcome }, error) {
		t, err := cs.UpdateWelcomeTemplate(ctx, p, in.ID, in.Body)
		return &struct{ Body community.GroupWelcome }{Body: t}, err
	})
	register(a, huma.Operation{
		OperationID: "delete-community-welcome-template", Method: http.MethodDelete, Path: "/community/welcome-templates/{id}", Tags: tags,
		Summary: "Delete a group welcome template", DefaultStatus: http.StatusNoContent,
	}, tenant.PermCommunityManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*struct{}, error) {
		return nil, cs.DeleteWelcomeTemplate(ctx, p, in.ID)
	})
}
