package app

import (
	"context"
	"time"

	"github.com/siyu-dev/siyu/internal/community"
)

// newCommunity builds a.Community: customer groups read from the WeCom
// connector's tables, group tags, group codes and welcome templates. Group
// membership becomes part of the audience index ("group"/"groups_any").
func (a *App) newCommunity() {
	a.Community = community.NewService(a.DB, a.WeCom, community.Options{
		Logger: a.Log, Auditor: a.Tenant, Staff: a.Staff,
		Location: func(ctx context.Context, tenantID int64) (*time.Location, error) {
			w, err := a.Tenant.Workspace(ctx, tenantID)
			if err != nil {
				return nil, err
			}
			return w.Location(), nil
		},
	})
	if a.Audiences != nil {
		a.Audiences.UseGroups(a.Community, a.Community)
	}
}

// runCommunity starts its workers (a.workers.Add, stopped by ctx). Groups
// follow WeCom's callbacks (an observer) and need no worker of their own.
func (a *App) runCommunity(ctx context.Context) { _ = ctx }
