package wecom

import (
	"context"
	"fmt"
)

// Processed is an inbox event that was applied: the event as WeCom sent it
// and the customer it was about (0 when it was not about one).
type Processed struct {
	TenantID   int64
	InboxID    int64
	Key        string // the event's identity (Event.Key): an idempotency key for what observers do
	Event      Event
	CustomerID int64
}

// Observer reacts to a processed event (channel codes apply tags and send
// welcome messages, handover records refusals, …). It runs after the event's
// changes are committed and before the event is marked processed; an error
// makes the event fail and be retried, so an observer must be idempotent on
// Processed.Key.
type Observer func(ctx context.Context, p Processed) error

// Observe registers an observer under a name (for error messages). Call it
// while the program is built, before the workers run.
func (s *Service) Observe(name string, o Observer) {
	s.observers = append(s.observers, namedObserver{name: name, fn: o})
}

type namedObserver struct {
	name string
	fn   Observer
}

// notify runs the observers for an event processed just now.
func (s *Service) notify(ctx context.Context, j job, out outcome) error {
	if len(s.observers) == 0 {
		return nil
	}
	ev, err := ParseEvent([]byte(j.payload))
	if err != nil {
		return err
	}
	p := Processed{TenantID: j.tenantID, InboxID: j.id, Key: j.key, Event: ev, CustomerID: out.customerID}
	for _, o := range s.observers {
		if err := o.fn(ctx, p); err != nil {
			return fmt.Errorf("wecom: %s: %w", o.name, err)
		}
	}
	return nil
}
