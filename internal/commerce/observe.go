package commerce

import (
	"sync"
	"time"
)

// OrderActivityKind says what happened to an order.
type OrderActivityKind string

// Kinds of order activity observers are told about.
const (
	OrderPaid     OrderActivityKind = "paid"     // the order became paid (created paid, or paid after pending/cancelled)
	OrderRefunded OrderActivityKind = "refunded" // a new refund was recorded on it
)

// OrderActivity is one committed change to an order that observers react to
// (auto-tag rules, journeys).
type OrderActivity struct {
	Kind       OrderActivityKind
	TenantID   int64
	CustomerID int64
	// Order is the order as it stands after the write, items and refunds
	// included.
	Order Order
	// RefundFen is the new refund's amount (OrderRefunded only).
	RefundFen int64
	At        time.Time // when it was paid or refunded
}

// Observer is told about order activity after its transaction commits, on
// the writer's goroutine: it must be quick and must not keep or modify the
// order it is given.
type Observer interface {
	OrderActivity(a OrderActivity)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(a OrderActivity)

// OrderActivity calls f.
func (f ObserverFunc) OrderActivity(a OrderActivity) { f(a) }

// observers is the Service's list of Observers; its zero value is empty.
type observers struct {
	mu   sync.RWMutex
	list []Observer
}

// Observe registers an observer of every later paid or refunded order.
func (s *Service) Observe(o Observer) {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	s.obs.list = append(s.obs.list, o)
}

func (o *observers) notify(a OrderActivity) {
	o.mu.RLock()
	list := o.list
	o.mu.RUnlock()
	for _, ob := range list {
		ob.OrderActivity(a)
	}
}
