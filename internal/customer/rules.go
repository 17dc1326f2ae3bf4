package customer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Kinds lists every identity kind, highest default priority first.
func Kinds() []string {
	return []string{KindUserID, KindUnionID, KindPhone, KindWeComExtID, KindShopBuyerID, KindEmail,
		KindMPOpenID, KindMiniOpenID, KindDouyinOpen, KindAnonymousID}
}

// Rules decide how identifiers link to profiles in one workspace.
type Rules struct {
	// Blocked values never identify anyone (compared case-insensitively after
	// trimming). All-zero strings are always blocked.
	Blocked []string `json:"blocked"`
	// Limits is the most identities of a kind one profile may hold. A merge
	// that would exceed a limit does not happen: the lower-priority identifier
	// stays with its own profile.
	Limits map[string]int `json:"limits"`
	// Priority orders kinds, most trusted first; when rules conflict the
	// identifier of the higher-priority kind wins.
	Priority []string `json:"priority"`
}

// DefaultRules are the rules of a workspace that set none.
func DefaultRules() Rules {
	return Rules{
		Blocked: []string{"", "null", "undefined", "0", "-1", "anonymous", "none", "nil", "unknown"},
		Limits: map[string]int{
			KindUserID: 1, KindUnionID: 1, KindPhone: 3, KindWeComExtID: 1, KindShopBuyerID: 20, KindEmail: 3,
			KindMPOpenID: 5, KindMiniOpenID: 5, KindDouyinOpen: 5, KindAnonymousID: 200,
		},
		Priority: Kinds(),
	}
}

// Validate checks rules an operator submits.
func (r Rules) Validate() error {
	known := Kinds()
	for k, n := range r.Limits {
		if !slices.Contains(known, k) {
			return errs.Field("limits."+k, "unknown_identity_kind", "unknown identity kind %q", k)
		}
		if n < 1 || n > 10000 {
			return errs.Field("limits."+k, "invalid_limit", "the limit for %s must be 1–10000", k)
		}
	}
	seen := map[string]bool{}
	for i, k := range r.Priority {
		if !slices.Contains(known, k) {
			return errs.Field(fmt.Sprintf("priority[%d]", i), "unknown_identity_kind", "unknown identity kind %q", k)
		}
		if seen[k] {
			return errs.Field(fmt.Sprintf("priority[%d]", i), "duplicate_kind", "%s appears twice in the priority", k)
		}
		seen[k] = true
	}
	return nil
}

// limit returns the limit for kind (defaults fill gaps).
func (r Rules) limit(kind string) int {
	if n, ok := r.Limits[kind]; ok {
		return n
	}
	return DefaultRules().Limits[kind]
}

// rank is the position of kind in the priority (lower is stronger).
func (r Rules) rank(kind string) int {
	if i := slices.Index(r.Priority, kind); i >= 0 {
		return i
	}
	return len(r.Priority) + slices.Index(Kinds(), kind)
}

// blocked reports whether v identifies no one.
func (r Rules) blocked(v string) bool {
	t := strings.TrimSpace(v)
	if t == "" || strings.Trim(t, "0") == "" {
		return true
	}
	for _, b := range r.Blocked {
		if strings.EqualFold(t, b) {
			return true
		}
	}
	return false
}

// rulesCache keeps each workspace's rules for a short while; on several nodes
// a change reaches the others within rulesTTL.
type rulesCache struct {
	mu sync.Mutex
	m  map[int64]cachedRules
}

type cachedRules struct {
	r  Rules
	at time.Time
}

const rulesTTL = 30 * time.Second

// IdentityRules returns the workspace's identity rules.
func (s *Service) IdentityRules(ctx context.Context, tenantID int64) (Rules, error) {
	return s.rulesFor(ctx, s.db, tenantID)
}

func (s *Service) rulesFor(ctx context.Context, q db.Querier, tenantID int64) (Rules, error) {
	s.rules.mu.Lock()
	c, ok := s.rules.m[tenantID]
	s.rules.mu.Unlock()
	if ok && s.now().Sub(c.at) < rulesTTL {
		return c.r, nil
	}
	r := DefaultRules()
	var doc string
	err := q.QueryRowContext(ctx, `SELECT rules FROM identity_rules WHERE tenant_id = $1`, tenantID).Scan(&doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return Rules{}, fmt.Errorf("customer: unable to read identity rules: %w", err)
	default:
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			return Rules{}, fmt.Errorf("customer: identity rules of workspace %d are damaged: %w", tenantID, err)
		}
	}
	s.rules.mu.Lock()
	s.rules.m[tenantID] = cachedRules{r: r, at: s.now()}
	s.rules.mu.Unlock()
	return r, nil
}

// SetIdentityRules replaces the workspace's identity rules. Missing parts
// take the defaults.
func (s *Service) SetIdentityRules(ctx context.Context, tenantID int64, r Rules) (Rules, error) {
	def := DefaultRules()
	if r.Blocked == nil {
		r.Blocked = def.Blocked
	}
	if r.Priority == nil {
		r.Priority = def.Priority
	}
	if r.Limits == nil {
		r.Limits = map[string]int{}
	}
	for k, n := range def.Limits {
		if _, ok := r.Limits[k]; !ok {
			r.Limits[k] = n
		}
	}
	if err := r.Validate(); err != nil {
		return Rules{}, err
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return Rules{}, err
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO identity_rules (tenant_id, rules, updated_at) VALUES ($1, $2, $3)
		 ON CONFLICT (tenant_id) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at`,
		tenantID, string(doc), db.Millis(s.now()))
	if err != nil {
		return Rules{}, fmt.Errorf("customer: unable to save identity rules: %w", err)
	}
	s.rules.mu.Lock()
	delete(s.rules.m, tenantID)
	s.rules.mu.Unlock()
	return r, nil
}
