package audience

import "time"

// SetFollowOverlap sets how far back a follower re-reads (tests).
func SetFollowOverlap(s *Service, d time.Duration) { s.overlap = d }
