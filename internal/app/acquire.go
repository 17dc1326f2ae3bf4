package app

import (
	"context"
	"time"

	"github.com/siyu-dev/siyu/internal/acquire"
)

// newAcquire builds a.Acquire: channel codes. It observes WeCom adds and
// deletions and sends welcome messages through a.Messages.
func (a *App) newAcquire() {
	a.Acquire = acquire.NewService(acquire.Options{DB: a.DB, WeCom: a.WeCom, Tags: a.Tags, Tenant: a.Tenant, Staff: a.Staff,
		Customers: a.Customers, Messages: a.Messages, Groups: groupCodes{a}, Logger: a.Log})
	a.WeCom.Observe("acquire", a.Acquire.Observe)
	a.Customers.OnMerge("acquire", a.Acquire.MoveCustomer)
}

// runAcquire keeps codes' WeCom members in line with their staff policy
// (schedules, caps, a new day) and retries failed updates.
func (a *App) runAcquire(ctx context.Context) {
	a.workers.Add(1)
	go func() { defer a.workers.Done(); a.Acquire.Run(ctx, 30*time.Second) }()
}

// groupCodes reaches the community area's group codes, which is built after
// acquire; until it offers JoinWayQR, welcome messages go without a group QR.
type groupCodes struct{ a *App }

func (g groupCodes) JoinWayQR(ctx context.Context, tenantID, groupCodeID int64) (string, error) {
	if c, ok := any(g.a.Community).(acquire.GroupCodes); ok && g.a.Community != nil {
		return c.JoinWayQR(ctx, tenantID, groupCodeID)
	}
	return "", acquire.ErrNoGroupCodes
}
