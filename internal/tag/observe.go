package tag

import (
	"context"
	"fmt"
)

// Observer is told what each committed write changed: the tags added to and
// removed from one customer (ascending ids; never both empty). It is called
// after the transaction commits, never inside it, and not at all when the
// transaction rolls back or changes nothing.
//
// Calls for one customer come in commit order: the writer holds that
// customer's lock until its observers return. So an observer must be quick,
// must not block on other tag writes, must not write tags itself, and must
// not keep or modify the slices it is given.
//
// One ID merges are the exception: the merge hook moves tags inside the
// customer service's merge transaction, whose commit this package does not
// see, so they are not told here. An index handles a merge as a whole: the
// merged profile's tags become the survivor's.
type Observer interface {
	TagsChanged(tenantID, customerID int64, added, removed []int64)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(tenantID, customerID int64, added, removed []int64)

// TagsChanged calls f.
func (f ObserverFunc) TagsChanged(tenantID, customerID int64, added, removed []int64) {
	f(tenantID, customerID, added, removed)
}

// Observe registers an observer of every later tag change.
func (s *Service) Observe(o Observer) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	s.observers = append(s.observers, o)
}

// notify tells the observers about committed changes.
func (s *Service) notify(tenantID int64, changes []Change) {
	s.obsMu.RLock()
	obs := s.observers
	s.obsMu.RUnlock()
	if len(obs) == 0 {
		return
	}
	for _, c := range changes {
		if c.empty() {
			continue
		}
		for _, o := range obs {
			o.TagsChanged(tenantID, c.CustomerID, c.Added, c.Removed)
		}
	}
}

// Snapshot streams every (tag, customer) pair of the workspace to fn,
// ordered by tag then customer, in one query that reads only the
// (tenant_id, tag_id, customer_id) index: what the audience index rebuilds
// from at start. It stops at the first error fn returns.
//
// To end up current, register the Observer first and hold the changes it is
// told during the Snapshot, then apply them in the order received once the
// Snapshot returns: a change committed while it runs may or may not be in
// it, and replaying the change settles it either way.
func (s *Service) Snapshot(ctx context.Context, tenantID int64, fn func(tagID, customerID int64) error) error {
	rows, err := s.db.QueryContext(ctx,
		`SELECT tag_id, customer_id FROM customer_tags WHERE tenant_id = $1 ORDER BY tag_id, customer_id`, tenantID)
	if err != nil {
		return fmt.Errorf("tag: unable to read the tag snapshot: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tagID, customerID int64
		if err := rows.Scan(&tagID, &customerID); err != nil {
			return fmt.Errorf("tag: unable to read the tag snapshot: %w", err)
		}
		if err := fn(tagID, customerID); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("tag: unable to read the tag snapshot: %w", err)
	}
	return nil
}
