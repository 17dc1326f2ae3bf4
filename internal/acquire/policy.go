package acquire

import (
	"time"
)

// The staff policy. WeCom's multi-member code (type 2) only rotates evenly
// over its members, so Siyu keeps exactly one member on the code: the one
// who should get the next add. After each add, and whenever a schedule
// window opens or closes, a cap is reached or a day begins, the next member
// is chosen and the code is updated (update_contact_way).
//
// Eligible, in order of preference:
//  1. regular staff on schedule and under their daily cap;
//  2. backup staff on schedule and under their cap;
//  3. backup staff under their cap, whatever their schedule;
//  4. when everyone is capped or off: all backups, else all regular staff —
//     a code always has someone, and a customer is never turned away.
//
// Among the eligible, smooth weighted round-robin (the nginx algorithm)
// picks: each gets its weight added to its current value, the highest wins
// and loses the total. Over any stretch the shares follow the weights and
// no one gets long runs. Round-robin mode is the same with weight 1.

// eligible returns the pool's members eligible at local time t given the
// adds each had today, and the tier they come from (1–4).
func eligible(c CodeConfig, t time.Time, today map[string]int) ([]StaffRule, int) {
	under := func(r StaffRule) bool { return r.DailyCap == nil || today[r.UserID] < *r.DailyCap }
	tiers := []func(r StaffRule) bool{
		func(r StaffRule) bool { return !r.Backup && onSchedule(r.Schedule, t) && under(r) },
		func(r StaffRule) bool { return r.Backup && onSchedule(r.Schedule, t) && under(r) },
		func(r StaffRule) bool { return r.Backup && under(r) },
		func(r StaffRule) bool { return r.Backup },
		func(r StaffRule) bool { return !r.Backup },
	}
	for i, ok := range tiers {
		var out []StaffRule
		for _, r := range c.Staff {
			if ok(r) {
				out = append(out, r)
			}
		}
		if len(out) > 0 {
			return out, min(i+1, 4)
		}
	}
	return nil, 0
}

// pick chooses the next member by smooth weighted round-robin over the
// eligible members and returns it with the new rotation state.
func pick(c CodeConfig, t time.Time, today map[string]int, rot map[string]int) (string, map[string]int) {
	el, _ := eligible(c, t, today)
	next := map[string]int{}
	for _, r := range c.Staff {
		next[r.UserID] = rot[r.UserID] // members who left the pool are forgotten
	}
	if len(el) == 0 {
		return "", next
	}
	total, best := 0, -1
	for i, r := range el {
		w := r.weight()
		if c.Mode == ModeRoundRobin {
			w = 1
		}
		total += w
		next[r.UserID] += w
		if best < 0 || next[r.UserID] > next[el[best].UserID] {
			best = i
		}
	}
	who := el[best].UserID
	next[who] -= total
	return who, next
}

// stillEligible reports whether userID may keep the code at local time t.
func stillEligible(c CodeConfig, t time.Time, today map[string]int, userID string) bool {
	el, _ := eligible(c, t, today)
	for _, r := range el {
		if r.UserID == userID {
			return true
		}
	}
	return false
}

// dayStart is the start of t's day in loc.
func dayStart(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
}
