package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/tenant"
)

const campaignFlow = "A mass message (群发) goes to customers — a saved audience or an inline condition, each sent by the staff member " +
	"who owns them (the earliest current WeCom relation) — or to customer groups, through their owners. Create a draft, look at the " +
	"estimate (recipients, staff, add_msg_template calls of ≤ 10,000, customers skipped by the corp's per-customer cap or without a " +
	"WeCom relation) and per-customer previews, then send now or schedule it. Siyu plans it (one envelope per recipient, keyed " +
	"(campaign, recipient), so nothing is sent twice), delivers it in quiet-hour-aware, paced batches, and polls WeCom's results " +
	"until final. Status: draft → scheduled → sending → sent (staff confirm) → done, or cancelled / failed."

// CampaignBody creates or edits a campaign.
type CampaignBody struct {
	Body message.CampaignInput
}

// CampaignOutput is one campaign.
type CampaignOutput struct {
	Body message.Campaign
}

// CampaignPath names a campaign.
type CampaignPath struct {
	ID int64 `path:"id" doc:"The campaign's id."`
}

// CampaignListInput filters the campaign list.
type CampaignListInput struct {
	Status string `query:"status" enum:"draft,scheduled,sending,sent,done,cancelled,failed," doc:"Only campaigns in this status."`
	Kind   string `query:"kind" enum:"customers,groups," doc:"Only campaigns of this kind."`
	PageParams
}

// EstimateOutput is a campaign estimate.
type EstimateOutput struct {
	Body message.Estimate
}

// PreviewMessageInput renders a campaign for one customer.
type PreviewMessageInput struct {
	Body struct {
		Campaign   message.CampaignInput `json:"campaign" doc:"The campaign as composed (it need not be saved)."`
		CustomerID int64                 `json:"customer_id" minimum:"1"`
	}
}

// PreviewMessageOutput is a rendered message.
type PreviewMessageOutput struct {
	Body message.Preview
}

// ScheduleInput schedules a campaign.
type ScheduleInput struct {
	CampaignPath
	Body struct {
		SendAt time.Time `json:"send_at" doc:"When to send (RFC 3339, in the future). Quiet hours may delay delivery."`
	}
}

// RemindInput reminds staff who have not sent.
type RemindInput struct {
	CampaignPath
	Body struct {
		StaffUserIDs []string `json:"staff_userids,omitempty" doc:"Only these staff members (WeCom userids); empty: every one who has not sent."`
	}
}

// RemindOutput says who was reminded and who was not, and why.
type RemindOutput struct {
	Body message.RemindResult
}

// RecipientsInput pages a campaign's recipients.
type RecipientsInput struct {
	CampaignPath
	Status      string `query:"status" doc:"Only recipients with this status (queued, submitted, sent, not_sent, failed, skipped, expired, cancelled) or reason (over_cap, no_relation, not_friend)."`
	StaffUserID string `query:"staff_userid" doc:"Only this sender's recipients."`
	PageParams
}

// MessageSettings are the sending rules (named apart from the WeCom
// connector's settings in the OpenAPI document).
type MessageSettings message.Settings

// SettingsBody carries the sending rules.
type SettingsBody struct {
	Body MessageSettings
}

// EnvelopeOutput is one envelope.
type EnvelopeOutput struct {
	Body message.EnvelopeRecord
}

// campaignPaths makes condition errors point into the request body.
func campaignPaths(prefix string, err error) error {
	e, ok := errs.As(err)
	if !ok || len(e.Fields) == 0 {
		return err
	}
	out := *e
	out.Fields = make([]errs.FieldError, len(e.Fields))
	for i, f := range e.Fields {
		loc := f.Location
		if loc == "(root)" {
			loc = ""
		}
		if !strings.HasPrefix(loc, "target") && !strings.HasPrefix(loc, "content") && !strings.HasPrefix(loc, "name") &&
			!strings.HasPrefix(loc, "kind") && !strings.HasPrefix(loc, "send_at") && !strings.HasPrefix(loc, "cap_policy") &&
			!strings.HasPrefix(loc, "quiet") && !strings.HasPrefix(loc, "pacing") && !strings.HasPrefix(loc, "cursor") {
			loc = strings.TrimSuffix("target.condition."+loc, ".")
		}
		f.Location = prefix + loc
		out.Fields[i] = f
	}
	return &out
}

func (a *API) registerMessages() {
	if a.deps.Messages == nil {
		return
	}
	m := a.deps.Messages
	tags := []string{"Mass messages"}
	register(a, huma.Operation{
		OperationID: "create-campaign", Method: http.MethodPost, Path: "/messages/campaigns", Tags: tags, DefaultStatus: http.StatusCreated,
		Summary: "Create a mass message (draft)", Description: campaignFlow + " Creating again with the same key returns the first campaign.",
	}, tenant.PermMessagesSend, func(ctx context.Context, p tenant.Principal, in *CampaignBody) (*CampaignOutput, error) {
		c, err := m.CreateCampaign(ctx, p, in.Body)
		if err != nil {
			return nil, campaignPaths("body.", err)
		}
		return &CampaignOutput{Body: c}, nil
	})
	register(a, huma.Operation{
		OperationID: "list-campaigns", Method: http.MethodGet, Path: "/messages/campaigns", Tags: tags,
		Summary: "List mass messages, newest first", Description: "Stats carry the planned counts; get one campaign for its outcomes.",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *CampaignListInput) (*ListOutput[message.Campaign], error) {
		pg, err := m.Campaigns(ctx, p.TenantID, message.CampaignQuery{Status: message.CampaignStatus(in.Status), Kind: in.Kind}, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(c message.Campaign) message.Campaign { return c }), nil
	})
	register(a, huma.Operation{
		OperationID: "get-campaign", Method: http.MethodGet, Path: "/messages/campaigns/{id}", Tags: tags,
		Summary: "Get a mass message with its counts by outcome",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *CampaignPath) (*CampaignOutput, error) {
		c, err := m.Campaign(ctx, p.TenantID, in.ID)
		return &CampaignOutput{Body: c}, err
	})
	register(a, huma.Operation{
		OperationID: "update-campaign", Method: http.MethodPut, Path: "/messages/campaigns/{id}", Tags: tags,
		Summary: "Edit a draft or scheduled mass message",
	}, tenant.PermMessagesSend, func(ctx context.Context, p tenant.Principal, in *struct {
		CampaignPath
		CampaignBody
	}) (*CampaignOutput, error) {
		c, err := m.UpdateCampaign(ctx, p, in.ID, in.Body)
		if err != nil {
			return nil, campaignPaths("body.", err)
		}
		return &CampaignOutput{Body: c}, nil
	})
	register(a, huma.Operation{
		OperationID: "estimate-message", Method: http.MethodPost, Path: "/messages/estimate", Tags: tags,
		Summary:     "Estimate a mass message as composed",
		Description: "Who would receive it now, through how many staff and calls, and who the per-customer cap or a missing WeCom relation would skip. Nothing is stored.",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *CampaignBody) (*EstimateOutput, error) {
		e, err := m.Estimate(ctx, p.TenantID, in.Body)
		if err != nil {
			return nil, campaignPaths("body.", err)
		}
		return &EstimateOutput{Body: e}, nil
	})
	register(a, huma.Operation{
		OperationID: "estimate-campaign", Method: http.MethodGet, Path: "/messages/campaigns/{id}/estimate", Tags: tags,
		Summary: "Estimate a saved mass message at its send time",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *CampaignPath) (*EstimateOutput, error) {
		e, err := m.EstimateCampaign(ctx, p.TenantID, in.ID)
		return &EstimateOutput{Body: e}, err
	})
	register(a, huma.Operation{
		OperationID: "preview-message", Method: http.MethodPost, Path: "/messages/preview", Tags: tags,
		Summary:     "Render a mass message for one customer",
		Description: "The text with {{customer_name}} and {{staff_name}} filled in, who would send it, or why the customer would be skipped (over_cap, no_relation, not_in_target).",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *PreviewMessageInput) (*PreviewMessageOutput, error) {
		pv, err := m.Preview(ctx, p.TenantID, in.Body.Campaign, in.Body.CustomerID)
		if err != nil {
			return nil, campaignPaths("body.campaign.", err)
		}
		return &PreviewMessageOutput{Body: pv}, nil
	})
	register(a, huma.Operation{
		OperationID: "schedule-campaign", Method: http.MethodPost, Path: "/messages/campaigns/{id}/schedule", Tags: tags,
		Summary: "Schedule a mass message", Description: "Scheduling again moves the time; a scheduled campaign can still be edited or cancelled.",
	}, tenant.PermMessagesSend, func(ctx context.Context, p tenant.Principal, in *ScheduleInput) (*CampaignOutput, error) {
		c, err := m.ScheduleCampaign(ctx, p, in.ID, in.Body.SendAt)
		if err != nil {
			return nil, campaignPaths("body.", err)
		}
		return &CampaignOutput{Body: c}, nil
	})
	register(a, huma.Operation{
		OperationID: "send-campaign", Method: http.MethodPost, Path: "/messages/campaigns/{id}/send", Tags: tags,
		Summary:     "Send a mass message now",
		Description: "Plans it at once (envelopes, cap accounting, batches) and delivers in the background. Sending again is harmless.",
	}, tenant.PermMessagesSend, func(ctx context.Context, p tenant.Principal, in *CampaignPath) (*CampaignOutput, error) {
		c, err := m.SendCampaign(ctx, p, in.ID)
		return &CampaignOutput{Body: c}, err
	})
	register(a, huma.Operation{
		OperationID: "cancel-campaign", Method: http.MethodPost, Path: "/messages/campaigns/{id}/cancel", Tags: tags,
		Summary:     "Cancel a mass message",
		Description: "Batches not yet delivered are cancelled; delivered ones are withdrawn from WeCom (cancel_groupmsg_send). What a staff member already sent stays sent.",
	}, tenant.PermMessagesSend, func(ctx context.Context, p tenant.Principal, in *CampaignPath) (*CampaignOutput, error) {
		c, err := m.CancelCampaign(ctx, p, in.ID)
		return &CampaignOutput{Body: c}, err
	})
	register(a, huma.Operation{
		OperationID: "remind-campaign", Method: http.MethodPost, Path: "/messages/campaigns/{id}/remind", Tags: tags,
		Summary:     "Remind staff who have not sent",
		Description: "Through WeCom (remind_groupmsg_send): at most 3 reminders per staff member's message in 24 hours; refusals say why and when a reminder is possible again.",
	}, tenant.PermMessagesSend, func(ctx context.Context, p tenant.Principal, in *RemindInput) (*RemindOutput, error) {
		r, err := m.RemindCampaign(ctx, p, in.ID, in.Body.StaffUserIDs)
		if r.Reminded == nil {
			r.Reminded = []string{}
		}
		return &RemindOutput{Body: r}, err
	})
	register(a, huma.Operation{
		OperationID: "campaign-staff", Method: http.MethodGet, Path: "/messages/campaigns/{id}/staff", Tags: tags,
		Summary: "A mass message's results per sending staff member",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *struct {
		CampaignPath
		PageParams
	}) (*ListOutput[message.StaffResult], error) {
		pg, err := m.StaffResults(ctx, p.TenantID, in.ID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(s message.StaffResult) message.StaffResult { return s }), nil
	})
	register(a, huma.Operation{
		OperationID: "campaign-recipients", Method: http.MethodGet, Path: "/messages/campaigns/{id}/recipients", Tags: tags,
		Summary: "A mass message's results per customer (or group)",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *RecipientsInput) (*ListOutput[message.RecipientResult], error) {
		pg, err := m.RecipientResults(ctx, p.TenantID, in.ID, message.RecipientQuery{Status: in.Status, StaffUserID: in.StaffUserID}, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(r message.RecipientResult) message.RecipientResult { return r }), nil
	})
	register(a, huma.Operation{
		OperationID: "get-message-settings", Method: http.MethodGet, Path: "/messages/settings", Tags: tags,
		Summary: "The workspace's sending rules: cap policy, quiet hours, pacing",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*SettingsBody, error) {
		s, err := m.Settings(ctx, p.TenantID)
		return &SettingsBody{Body: MessageSettings(s)}, err
	})
	register(a, huma.Operation{
		OperationID: "update-message-settings", Method: http.MethodPut, Path: "/messages/settings", Tags: tags,
		Summary:     "Change the workspace's sending rules",
		Description: "cap_policy must match the corp's WeCom setting (客户接收群发消息的上限): month, week or day.",
	}, tenant.PermMessagesSend, func(ctx context.Context, p tenant.Principal, in *SettingsBody) (*SettingsBody, error) {
		s, err := m.UpdateSettings(ctx, p, message.Settings(in.Body))
		if err != nil {
			return nil, campaignPaths("body.", err)
		}
		return &SettingsBody{Body: MessageSettings(s)}, nil
	})
	register(a, huma.Operation{
		OperationID: "get-envelope", Method: http.MethodGet, Path: "/messages/envelopes/{id}", Tags: tags,
		Summary: "One outbound message and its outcome",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*EnvelopeOutput, error) {
		e, err := m.Envelope(ctx, p.TenantID, in.ID)
		return &EnvelopeOutput{Body: e}, err
	})
	register(a, huma.Operation{
		OperationID: "find-envelope", Method: http.MethodGet, Path: "/messages/envelopes", Tags: tags,
		Summary: "Find an outbound message by its idempotency key",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *struct {
		Key string `query:"key" required:"true" minLength:"1"`
	}) (*EnvelopeOutput, error) {
		e, err := m.EnvelopeByKey(ctx, p.TenantID, in.Key)
		return &EnvelopeOutput{Body: e}, err
	})
}
