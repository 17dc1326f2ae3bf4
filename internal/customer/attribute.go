package customer

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Attribute types.
const (
	TypeString = "string"
	TypeNumber = "number"
	TypeBool   = "bool"
	TypeDate   = "date"
	TypeList   = "list"
	TypeObject = "object"
)

// Attribute is a custom trait in the workspace's catalogue.
type Attribute struct {
	Name          string    `json:"name"`
	DisplayName   string    `json:"display_name,omitempty"`
	Type          string    `json:"type" enum:"string,number,bool,date,list,object"`
	Defined       bool      `json:"defined" doc:"An operator defined it: writes of another type are rejected. Otherwise the type was inferred from the first value seen."`
	FirstSeenAt   time.Time `json:"first_seen_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
	RejectedCount int64     `json:"rejected_count" doc:"Writes refused because their value did not match the defined type."`
}

// InferType names the type of a JSON value; dates are strings that parse as
// YYYY-MM-DD or RFC 3339.
func InferType(v any) string {
	switch x := v.(type) {
	case bool:
		return TypeBool
	case float64, float32, int, int64, int32, uint, uint64, uint32:
		return TypeNumber
	case string:
		if _, err := time.Parse(time.DateOnly, x); err == nil {
			return TypeDate
		}
		if _, err := time.Parse(time.RFC3339, x); err == nil {
			return TypeDate
		}
		return TypeString
	case []any:
		return TypeList
	case map[string]any:
		return TypeObject
	default:
		return TypeString
	}
}

// accepts reports whether a value may be written to an attribute of type t.
func accepts(t string, v any) bool {
	if v == nil {
		return true // null clears the trait
	}
	got := InferType(v)
	return got == t || (t == TypeString && got == TypeDate)
}

// attrCatalog caches each workspace's attributes, and when each was last
// marked seen, so that catalogue writes stay rare on the ingest path.
type attrCatalog struct {
	mu     sync.Mutex
	byTen  map[int64]map[string]Attribute
	loaded map[int64]time.Time
}

const (
	attrTTL       = 30 * time.Second
	attrSeenEvery = time.Minute
)

var attrNameRE = regexp.MustCompile(`^[\p{L}\p{N}_][\p{L}\p{N}_.\-]{0,63}$`)

func (s *Service) attributes(ctx context.Context, q db.Querier, tenantID int64) (map[string]Attribute, error) {
	s.attrs.mu.Lock()
	m, ok := s.attrs.byTen[tenantID]
	fresh := ok && s.now().Sub(s.attrs.loaded[tenantID]) < attrTTL
	s.attrs.mu.Unlock()
	if fresh {
		return m, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT name, display_name, type, defined, first_seen_at, last_seen_at, rejected_count
		FROM customer_attributes WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("customer: unable to load attributes: %w", err)
	}
	defer rows.Close()
	m = map[string]Attribute{}
	for rows.Next() {
		var a Attribute
		var first, last int64
		if err := rows.Scan(&a.Name, &a.DisplayName, &a.Type, &a.Defined, &first, &last, &a.RejectedCount); err != nil {
			return nil, fmt.Errorf("customer: unable to read attribute: %w", err)
		}
		a.FirstSeenAt, a.LastSeenAt = db.FromMillis(first), db.FromMillis(last)
		m[a.Name] = a
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.attrs.mu.Lock()
	s.attrs.byTen[tenantID] = m
	s.attrs.loaded[tenantID] = s.now()
	s.attrs.mu.Unlock()
	return m, nil
}

func (s *Service) forgetAttributes(tenantID int64) {
	s.attrs.mu.Lock()
	delete(s.attrs.byTen, tenantID)
	s.attrs.mu.Unlock()
}

// checkTraits catalogues custom traits and drops those whose value does not
// match a defined type, counting the rejection where operators see it.
func (s *Service) checkTraits(ctx context.Context, tx *sql.Tx, tenantID int64, traits map[string]any, at time.Time) (map[string]any, error) {
	if len(traits) == 0 {
		return traits, nil
	}
	cat, err := s.attributes(ctx, tx, tenantID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(traits))
	changed := false
	for name, v := range traits {
		if !attrNameRE.MatchString(name) {
			continue // not addressable in conditions; dropped like an unknown field
		}
		a, known := cat[name]
		switch {
		case known && a.Defined && !accepts(a.Type, v):
			if _, err := tx.ExecContext(ctx, `UPDATE customer_attributes SET rejected_count = rejected_count + 1 WHERE tenant_id = $1 AND name = $2`,
				tenantID, name); err != nil {
				return nil, fmt.Errorf("customer: unable to count a rejected attribute: %w", err)
			}
			s.log.InfoContext(ctx, "attribute value rejected: wrong type", "tenant", tenantID, "attribute", name, "type", a.Type, "got", InferType(v))
			changed = true
			continue
		case !known && v != nil:
			if _, err := tx.ExecContext(ctx, `INSERT INTO customer_attributes (tenant_id, name, type, first_seen_at, last_seen_at)
				VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, name) DO NOTHING`, tenantID, name, InferType(v), db.Millis(at)); err != nil {
				return nil, fmt.Errorf("customer: unable to catalogue attribute: %w", err)
			}
			changed = true
		case known && at.Sub(a.LastSeenAt) > attrSeenEvery:
			if _, err := tx.ExecContext(ctx, `UPDATE customer_attributes SET last_seen_at = $3 WHERE tenant_id = $1 AND name = $2 AND last_seen_at < $3`,
				tenantID, name, db.Millis(at)); err != nil {
				return nil, fmt.Errorf("customer: unable to mark attribute seen: %w", err)
			}
			changed = true
		}
		out[name] = v
	}
	if changed {
		s.forgetAttributes(tenantID)
	}
	return out, nil
}

// Attributes lists the workspace's custom attributes by name.
func (s *Service) Attributes(ctx context.Context, tenantID int64) ([]Attribute, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, display_name, type, defined, first_seen_at, last_seen_at, rejected_count
		FROM customer_attributes WHERE tenant_id = $1 ORDER BY name`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("customer: unable to list attributes: %w", err)
	}
	defer rows.Close()
	out := []Attribute{}
	for rows.Next() {
		var a Attribute
		var first, last int64
		if err := rows.Scan(&a.Name, &a.DisplayName, &a.Type, &a.Defined, &first, &last, &a.RejectedCount); err != nil {
			return nil, fmt.Errorf("customer: unable to read attribute: %w", err)
		}
		a.FirstSeenAt, a.LastSeenAt = db.FromMillis(first), db.FromMillis(last)
		out = append(out, a)
	}
	return out, rows.Err()
}

// DefineAttribute sets an attribute's display name and type; from then on
// writes of another type are rejected.
func (s *Service) DefineAttribute(ctx context.Context, tenantID int64, name, displayName, typ string) (Attribute, error) {
	name = strings.TrimSpace(name)
	if !attrNameRE.MatchString(name) {
		return Attribute{}, errs.Field("name", "invalid_attribute_name", "attribute names are 1–64 letters, digits, _ . - and start with a letter, digit or _")
	}
	if isStandardTrait(name) {
		return Attribute{}, errs.Field("name", "standard_attribute", "%q is a standard profile field, not a custom attribute", name)
	}
	switch typ {
	case TypeString, TypeNumber, TypeBool, TypeDate, TypeList, TypeObject:
	default:
		return Attribute{}, errs.Field("type", "invalid_attribute_type", "type must be string, number, bool, date, list or object")
	}
	now := db.Millis(s.now())
	_, err := s.db.ExecContext(ctx, `INSERT INTO customer_attributes (tenant_id, name, display_name, type, defined, first_seen_at, last_seen_at)
		VALUES ($1, $2, $3, $4, TRUE, $5, $5)
		ON CONFLICT (tenant_id, name) DO UPDATE SET display_name = excluded.display_name, type = excluded.type, defined = TRUE`,
		tenantID, name, strings.TrimSpace(displayName), typ, now)
	if err != nil {
		return Attribute{}, fmt.Errorf("customer: unable to define attribute: %w", err)
	}
	s.forgetAttributes(tenantID)
	all, err := s.Attributes(ctx, tenantID)
	if err != nil {
		return Attribute{}, err
	}
	for _, a := range all {
		if a.Name == name {
			return a, nil
		}
	}
	return Attribute{}, fmt.Errorf("customer: attribute %q vanished", name)
}
