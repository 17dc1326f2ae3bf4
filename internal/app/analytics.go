package app

import (
	"context"
	"time"

	"github.com/siyu-dev/siyu/internal/analytics"
)

// newAnalytics builds the computed attributes (RFM, lifecycle, fan tier)
// over the domains they read.
func (a *App) newAnalytics() *analytics.Service {
	return analytics.NewService(a.DB, analytics.Sources{
		Profiles:   a.Customers,
		Spend:      a.Commerce,
		Events:     a.Events,
		Workspaces: a.Tenant.WorkspaceIDs,
		Location: func(ctx context.Context, tenantID int64) (*time.Location, error) {
			w, err := a.Tenant.Workspace(ctx, tenantID)
			if err != nil {
				return nil, err
			}
			return w.Location(), nil
		},
	}, analytics.Options{Logger: a.Log, Auditor: a.Tenant})
}
