package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// WeComSettingsOutput is a workspace's WeCom connection, secrets masked.
type WeComSettingsOutput struct {
	Body wecom.Settings
}

// WeComSettingsInput is the body of PUT /connectors/wecom.
type WeComSettingsInput struct {
	Body struct {
		CorpID         string `json:"corp_id" minLength:"1" maxLength:"64" doc:"The corp ID (企业ID), from 我的企业 → 企业信息 in WeCom's admin."`
		AgentID        int64  `json:"agent_id,omitempty" minimum:"0" doc:"The self-built app's AgentId."`
		Secret         string `json:"secret,omitempty" maxLength:"128" doc:"The self-built app's Secret (the system 客户联系 secret can no longer call these APIs for new corps). Leave out to keep the saved one."`
		Token          string `json:"token,omitempty" maxLength:"32" doc:"The callback Token set in the app's 接收消息 settings: 1–32 letters or digits. Leave out to keep the saved one."`
		EncodingAESKey string `json:"encoding_aes_key,omitempty" maxLength:"43" doc:"The callback EncodingAESKey: 43 letters and digits. Leave out to keep the saved one."`
		BaseURL        string `json:"base_url,omitempty" maxLength:"300" doc:"WeCom's API base URL; leave out for WeCom itself (https://qyapi.weixin.qq.com)."`
	}
}

// WeComTestOutput is the outcome of a connection test.
type WeComTestOutput struct {
	Body wecom.TestResult
}

// WeComEventsInput filters the callback event log.
type WeComEventsInput struct {
	PageParams
	Status string `query:"status" enum:"pending,done,failed,ignored," doc:"Only events with this status."`
}

// WeComEventOutput is one stored callback.
type WeComEventOutput struct {
	Body wecom.InboxEntry
}

func (a *API) registerConnectors() {
	if a.deps.WeCom == nil {
		return
	}
	w := a.deps.WeCom
	tags := []string{"Connectors"}
	register(a, huma.Operation{
		OperationID: "get-wecom-connector", Method: http.MethodGet, Path: "/connectors/wecom", Tags: tags,
		Summary:     "Get the WeCom connection",
		Description: "The saved WeCom settings with secrets masked, and the callback URL to paste into WeCom's admin. 404 `wecom_not_configured` until WeCom is connected.",
		Errors:      []int{http.StatusNotFound},
	}, tenant.PermConnectorsRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*WeComSettingsOutput, error) {
		st, err := w.Settings(ctx, p.TenantID)
		return &WeComSettingsOutput{Body: st}, err
	})
	register(a, huma.Operation{
		OperationID: "put-wecom-connector", Method: http.MethodPut, Path: "/connectors/wecom", Tags: tags,
		Summary: "Connect WeCom or change its settings",
		Description: "Saves the corp ID, the self-built app's agent ID and secret, and the callback Token and EncodingAESKey " +
			"(checked as WeCom's admin checks them). Secrets are stored encrypted and never returned; leave one out to keep the saved value. " +
			"Answers the saved settings and `callback_url`, the URL to paste into the app's 接收消息 settings in WeCom's admin.",
		Errors: []int{http.StatusUnprocessableEntity},
	}, tenant.PermConnectorsManage, func(ctx context.Context, p tenant.Principal, in *WeComSettingsInput) (*WeComSettingsOutput, error) {
		b := in.Body
		st, err := w.Configure(ctx, p, wecom.SettingsInput{CorpID: b.CorpID, AgentID: b.AgentID, Secret: b.Secret, Token: b.Token,
			EncodingAESKey: b.EncodingAESKey, BaseURL: b.BaseURL})
		return &WeComSettingsOutput{Body: st}, err
	})
	register(a, huma.Operation{
		OperationID: "test-wecom-connector", Method: http.MethodPost, Path: "/connectors/wecom/test", Tags: tags,
		Summary: "Test the WeCom connection",
		Description: "Fetches an access token with the saved corp ID and secret and reports WeCom's answer in plain words, " +
			"with the fix when it failed (e.g. errcode 60020: this server's IP is not in the app's trusted IP list).",
		Errors: []int{http.StatusNotFound},
	}, tenant.PermConnectorsManage, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*WeComTestOutput, error) {
		res, err := w.TestConnection(ctx, p)
		return &WeComTestOutput{Body: res}, err
	})
	register(a, huma.Operation{
		OperationID: "list-wecom-events", Method: http.MethodGet, Path: "/connectors/wecom/events", Tags: tags,
		Summary: "List WeCom callback events",
		Description: "The callback event log, newest first: every event WeCom delivered, how often, and what processing did " +
			"(done, ignored, or failed with the reason and the attempts made).",
	}, tenant.PermConnectorsRead, func(ctx context.Context, p tenant.Principal, in *WeComEventsInput) (*ListOutput[wecom.InboxEntry], error) {
		pg, err := w.Inbox(ctx, p.TenantID, wecom.InboxQuery{Status: wecom.InboxStatus(in.Status)}, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(e wecom.InboxEntry) wecom.InboxEntry { return e }), nil
	})
	register(a, huma.Operation{
		OperationID: "retry-wecom-event", Method: http.MethodPost, Path: "/connectors/wecom/events/{id}/retry", Tags: tags,
		Summary:     "Retry a failed WeCom event",
		Description: "Puts a failed or ignored event back in the queue to be processed at once, e.g. after fixing the secret.",
		Errors:      []int{http.StatusNotFound, http.StatusConflict},
	}, tenant.PermConnectorsManage, func(ctx context.Context, p tenant.Principal, in *struct {
		ID int64 `path:"id"`
	}) (*WeComEventOutput, error) {
		e, err := w.Retry(ctx, p, in.ID)
		return &WeComEventOutput{Body: e}, err
	})
}
