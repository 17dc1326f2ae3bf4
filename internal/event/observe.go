package event

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
)

// ProcessedEvent is an event the processor has resolved to a customer, as
// observers and readers of a customer's recent events see it.
type ProcessedEvent struct {
	ID         int64
	TenantID   int64
	CustomerID int64
	MessageID  string
	Type       Type
	// Name is the track event's name, or the page or screen name; "" for
	// identify, group and alias.
	Name string
	// Properties is the message's properties object as stored ({} when it
	// had none); observers decode it only when they need it.
	Properties json.RawMessage
	Timestamp  time.Time
}

// Observer is told about the events of each processed batch after its
// transaction commits, grouped by workspace, in processing order. It is
// called on the processor's goroutine, so it must be quick: hand the events
// to other goroutines for anything slow. It must not keep or modify evs.
type Observer interface {
	EventsProcessed(tenantID int64, evs []ProcessedEvent)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(tenantID int64, evs []ProcessedEvent)

// EventsProcessed calls f.
func (f ObserverFunc) EventsProcessed(tenantID int64, evs []ProcessedEvent) { f(tenantID, evs) }

// observers is the Service's list of Observers; its zero value is empty.
type observers struct {
	mu   sync.RWMutex
	list []Observer
}

// Observe registers an observer of every later processed batch.
func (s *Service) Observe(o Observer) {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	s.obs.list = append(s.obs.list, o)
}

// notify tells the observers about a committed batch, one call per
// workspace.
func (o *observers) notify(evs []ProcessedEvent) {
	o.mu.RLock()
	list := o.list
	o.mu.RUnlock()
	if len(list) == 0 || len(evs) == 0 {
		return
	}
	for start := 0; start < len(evs); {
		// A batch is usually one workspace; otherwise tell each run of
		// the same workspace in order.
		end := start + 1
		for end < len(evs) && evs[end].TenantID == evs[start].TenantID {
			end++
		}
		for _, ob := range list {
			ob.EventsProcessed(evs[start].TenantID, evs[start:end])
		}
		start = end
	}
}

// processed is what observers are told of a queued event resolved to
// customerID.
func processed(e queued, customerID int64) ProcessedEvent {
	return ProcessedEvent{ID: e.id, TenantID: e.tenantID, CustomerID: customerID, MessageID: e.messageID,
		Type: Type(e.typ), Name: e.name, Properties: json.RawMessage(e.properties), Timestamp: db.FromMillis(e.timestamp)}
}
