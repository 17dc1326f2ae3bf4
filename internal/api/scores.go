package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// ScoreSettingsOutput is a workspace's score settings.
type ScoreSettingsOutput struct {
	Body analytics.ScoreSettings
}

// ScoreSettingsInput replaces a workspace's score settings.
type ScoreSettingsInput struct {
	Body analytics.ScoreSettings
}

// ScoreRunOutput is the state of the full recompute.
type ScoreRunOutput struct {
	Body analytics.ScoreRun
}

// ScoreDistributionOutput counts customers by computed attribute.
type ScoreDistributionOutput struct {
	Body analytics.ScoreDistribution
}

// bodyPaths makes settings errors point into the request body.
func bodyPaths(err error) error {
	e, ok := errs.As(err)
	if !ok || len(e.Fields) == 0 {
		return err
	}
	out := *e
	out.Fields = make([]errs.FieldError, len(e.Fields))
	for i, f := range e.Fields {
		f.Location = "body." + f.Location
		out.Fields[i] = f
	}
	return &out
}

const scoresDoc = "RFM scores (1–5 by the workspace's quintiles) and the eight RFM classes, lifecycle stage (初培期, 成长期, 成熟期, 延展期, 衰退期) " +
	"and fan tier (路人粉, 好感粉, 真爱粉), by the rules in docs/scores.md. They are attributes in audience conditions: " +
	"rfm_r, rfm_f, rfm_m, rfm_class, lifecycle, fan_tier."

func (a *API) registerScores() {
	svc := a.deps.Analytics
	if svc == nil {
		return
	}
	register(a, huma.Operation{
		OperationID: "get-score-settings", Method: http.MethodGet, Path: "/score-settings", Tags: []string{"Scores"},
		Summary: "Get the score thresholds", Description: "The thresholds of the computed attributes; defaults until changed. " + scoresDoc,
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*ScoreSettingsOutput, error) {
		set, err := svc.Settings(ctx, p.TenantID)
		return &ScoreSettingsOutput{Body: set}, err
	})
	register(a, huma.Operation{
		OperationID: "put-score-settings", Method: http.MethodPut, Path: "/score-settings", Tags: []string{"Scores"},
		Summary:     "Change the score thresholds",
		Description: "Replaces the settings (send every field; GET them first) and queues a full recompute. " + scoresDoc,
	}, tenant.PermWorkspaceManage, func(ctx context.Context, p tenant.Principal, in *ScoreSettingsInput) (*ScoreSettingsOutput, error) {
		set, err := svc.SetSettings(ctx, p, in.Body)
		if err != nil {
			return nil, bodyPaths(err)
		}
		return &ScoreSettingsOutput{Body: set}, nil
	})
	register(a, huma.Operation{
		OperationID: "recompute-scores", Method: http.MethodPost, Path: "/scores/recompute", Tags: []string{"Scores"},
		Summary: "Recompute every customer's scores", DefaultStatus: http.StatusAccepted,
		Description: "Queues a full recompute (quintiles measured again, every customer scored); a worker starts it within seconds. " +
			"Poll GET /scores/status for progress. Scores are also recomputed daily, and customers whose orders or activity change are rescored every minute.",
	}, tenant.PermCustomersWrite, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*ScoreRunOutput, error) {
		r, err := svc.RequestRecompute(ctx, p.TenantID)
		return &ScoreRunOutput{Body: r}, err
	})
	register(a, huma.Operation{
		OperationID: "get-score-status", Method: http.MethodGet, Path: "/scores/status", Tags: []string{"Scores"},
		Summary: "State of the full recompute",
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*ScoreRunOutput, error) {
		r, err := svc.Status(ctx, p.TenantID)
		return &ScoreRunOutput{Body: r}, err
	})
	register(a, huma.Operation{
		OperationID: "get-score-distribution", Method: http.MethodGet, Path: "/scores/distribution", Tags: []string{"Scores"},
		Summary:     "Customers by RFM class, lifecycle stage, fan tier and score",
		Description: "Counts for the console's charts, with the value range of each R, F and M score. " + scoresDoc,
	}, tenant.PermCustomersRead, func(ctx context.Context, p tenant.Principal, _ *struct{}) (*ScoreDistributionOutput, error) {
		d, err := svc.Distribution(ctx, p.TenantID)
		return &ScoreDistributionOutput{Body: d}, err
	})
}
