package app

import (
	"context"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/message"
)

// newMessages builds a.Messages, the outbox every message goes through, with
// the WeCom channels (welcome messages, mass messages to customers and to
// groups).
func (a *App) newMessages() {
	a.Messages = message.NewService(a.DB, a.Audiences, a.Tenant, message.Options{Logger: a.Log})
	for _, ch := range a.WeCom.MessageChannels(wecom.ChannelOptions{}) {
		a.Messages.Register(ch)
	}
}

// runMessages starts the outbox dispatcher: scheduled campaigns, deliveries,
// results.
func (a *App) runMessages(ctx context.Context) {
	a.workers.Add(1)
	go func() { defer a.workers.Done(); a.Messages.Run(ctx) }()
}
