package app

import (
	"context"
	"time"

	"github.com/siyu-dev/siyu/internal/handover"
)

// newHandover builds a.Handover: staff handover through WeCom, following
// WeCom's handover events.
func (a *App) newHandover() {
	a.Handover = handover.NewService(a.DB, a.Staff, a.WeCom, a.Tenant, handover.Options{Logger: a.Log})
}

// runHandover starts the worker that sends handovers to WeCom and polls
// their results until final.
func (a *App) runHandover(ctx context.Context) {
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		a.Handover.Run(ctx, 5*time.Second)
	}()
}
