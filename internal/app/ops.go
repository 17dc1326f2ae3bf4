package app

import "context"

// Operations (the issue "acquisition and WeCom operations"): each area builds
// its service in its own file and starts its workers there.

func (a *App) newOperations() {
	a.newMessages()  // messages.go: the outbox first; the others send through it
	a.newAcquire()   // acquire.go
	a.newCommunity() // community.go
	a.newMoments()   // moments.go
	a.newHandover()  // handover.go
}

func (a *App) startOperations(ctx context.Context) {
	a.runMessages(ctx)
	a.runAcquire(ctx)
	a.runCommunity(ctx)
	a.runMoments(ctx)
	a.runHandover(ctx)
}
