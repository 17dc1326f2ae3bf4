package audience

import (
	"context"
	"fmt"
	"time"
)

// The index follows the database rather than trusting every writer to tell
// it about changes: each tick it asks each source what changed since its last
// position. This sees writes of every node sharing the database, writes made
// inside other domains' transactions, and needs nothing from writers.
//
// Positions are times; each read starts followOverlap before the last one so
// a row written by a transaction that committed late is still seen. Re-reading
// a customer twice is harmless.
const followOverlap = 10 * time.Second

// ChangeFeeds are the "what changed since" reads of each source. A nil field
// means that source is not followed.
type ChangeFeeds struct {
	Profiles interface {
		ChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error)
		MergesAfter(ctx context.Context, tenantID, after int64) ([][2]int64, int64, error)
		LastMergeID(ctx context.Context, tenantID int64) (int64, error)
	}
	Spend interface {
		SpendChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error)
	}
	Tags interface {
		TagsChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error)
		TagsOf(ctx context.Context, tenantID int64, ids []int64) (map[int64][]int64, error)
	}
	Scores interface {
		ScoresChangedSince(ctx context.Context, tenantID int64, since time.Time) ([]int64, error)
	}
	Groups GroupFeed
	Events interface {
		EventsProcessedSince(ctx context.Context, tenantID int64, since time.Time, fn func(customerID int64, name string, at time.Time) error) error
	}
}

type followState struct {
	since       time.Time // start of the next read window, before overlap
	mergesAfter int64
}

// Sync brings a workspace's index up to date with the database now.
func (s *Service) Sync(ctx context.Context, tenantID int64) error {
	t, err := s.index(ctx, tenantID)
	if err != nil {
		return err
	}
	if err := s.follow(ctx, tenantID, t); err != nil {
		return err
	}
	s.flush(ctx, tenantID, t)
	return nil
}

func (s *Service) follow(ctx context.Context, tenantID int64, t *tenantIndex) error {
	f := s.feeds
	t.followMu.Lock()
	defer t.followMu.Unlock()
	now := s.now()
	from := t.follow.since.Add(-s.overlap)
	var touched []int64
	if f.Profiles != nil {
		pairs, last, err := f.Profiles.MergesAfter(ctx, tenantID, t.follow.mergesAfter)
		if err != nil {
			return fmt.Errorf("audience: follow merges: %w", err)
		}
		for _, p := range pairs {
			t.x.Merge(p[0], p[1])
			touched = append(touched, p[0], p[1])
		}
		t.follow.mergesAfter = last
		ids, err := f.Profiles.ChangedSince(ctx, tenantID, from)
		if err != nil {
			return fmt.Errorf("audience: follow profiles: %w", err)
		}
		touched = append(touched, ids...)
	}
	if f.Spend != nil {
		ids, err := f.Spend.SpendChangedSince(ctx, tenantID, from)
		if err != nil {
			return fmt.Errorf("audience: follow spend: %w", err)
		}
		touched = append(touched, ids...)
	}
	if f.Scores != nil {
		ids, err := f.Scores.ScoresChangedSince(ctx, tenantID, from)
		if err != nil {
			return fmt.Errorf("audience: follow scores: %w", err)
		}
		touched = append(touched, ids...)
	}
	if f.Tags != nil {
		ids, err := f.Tags.TagsChangedSince(ctx, tenantID, from)
		if err != nil {
			return fmt.Errorf("audience: follow tags: %w", err)
		}
		if len(ids) > 0 {
			tags, err := f.Tags.TagsOf(ctx, tenantID, ids)
			if err != nil {
				return fmt.Errorf("audience: follow tags: %w", err)
			}
			for _, id := range ids {
				t.x.SetAllTags(id, tags[id])
			}
			t.markChanged()
		}
	}
	if f.Groups != nil {
		ids, err := f.Groups.GroupsChangedSince(ctx, tenantID, from)
		if err != nil {
			return fmt.Errorf("audience: follow groups: %w", err)
		}
		if len(ids) > 0 {
			groups, err := f.Groups.GroupsOf(ctx, tenantID, ids)
			if err != nil {
				return fmt.Errorf("audience: follow groups: %w", err)
			}
			for _, id := range ids {
				t.x.SetAllGroups(id, groups[id])
			}
			t.markChanged()
		}
	}
	if f.Events != nil {
		env := Env{Loc: t.loc}
		n := 0
		err := f.Events.EventsProcessedSince(ctx, tenantID, from, func(id int64, name string, at time.Time) error {
			t.x.AddEvent(id, name, env.day(at))
			n++
			return nil
		})
		if err != nil {
			return fmt.Errorf("audience: follow events: %w", err)
		}
		if n > 0 {
			t.markChanged()
		}
	}
	if len(touched) > 0 {
		s.Touch(tenantID, touched...)
	}
	t.follow.since = now
	return nil
}
