package audience

import (
	"context"

	"github.com/RoaringBitmap/roaring/v2"
)

// Match reports whether one customer satisfies a validated condition. Auto-tag
// rules call it for each customer an event or order touched, so it checks that
// customer's bits and values only; predicates that need the database (counts
// above one, property filters, windowed order metrics, saved audiences) are
// answered for the whole workspace and then looked up.
func (s *Service) Match(ctx context.Context, tenantID, customerID int64, c Condition) (bool, error) {
	if err := c.Validate(); err != nil {
		return false, err
	}
	t, err := s.index(ctx, tenantID)
	if err != nil {
		return false, err
	}
	s.flush(ctx, tenantID, t)
	env, err := s.env(ctx, tenantID, t)
	if err != nil {
		return false, err
	}
	env.Audience = s.savedResolver(tenantID, t, env, 0)
	return t.x.Match(ctx, c, env, customerID)
}

// Match evaluates c for one customer id.
func (x *Index) Match(ctx context.Context, c Condition, env Env, id int64) (bool, error) {
	pre := map[*Condition]*roaring.Bitmap{}
	if err := x.prefetch(ctx, &c, env, pre); err != nil {
		return false, err
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	o, ok := x.lookup(id)
	if !ok || !x.live.Contains(o) {
		return false, nil
	}
	// A one-element candidate set: every predicate checks just this customer.
	b, err := x.eval(ctx, &c, env, pre, "", roaring.BitmapOf(o))
	if err != nil {
		return false, err
	}
	return b.Contains(o), nil
}
