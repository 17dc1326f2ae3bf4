package app

import (
	"context"

	"github.com/siyu-dev/siyu/internal/moment"
)

// newMoments builds a.Moments: moments tasks sent through each workspace's
// WeCom client.
func (a *App) newMoments() {
	clients := func(ctx context.Context, tenantID int64) (moment.API, error) {
		c, err := a.WeCom.Client(ctx, tenantID)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	a.Moments = moment.NewService(a.DB, clients, a.Staff, a.Tags, a.Tenant, moment.Options{Logger: a.Log})
}

// runMoments starts the worker that sends tasks to WeCom and polls their
// results (a.workers.Add, stopped by ctx).
func (a *App) runMoments(ctx context.Context) {
	a.workers.Add(1)
	go func() { defer a.workers.Done(); a.Moments.Run(ctx) }()
}
