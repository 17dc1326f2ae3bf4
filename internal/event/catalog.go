package event

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Catalogue kinds.
const (
	CatalogEvent    = "event"    // a track event name
	CatalogProperty = "property" // a property of a track event (Parent names the event)
	CatalogTrait    = "trait"    // a trait of a person (identify traits, context.traits)
)

// Value types the catalogue infers.
const (
	TypeString = "string"
	TypeNumber = "number"
	TypeBool   = "bool"
	TypeDate   = "date"
	TypeList   = "list"
	TypeObject = "object"
	TypeMixed  = "mixed" // seen with more than one type
)

// CatalogEntry is a name seen in the event stream.
type CatalogEntry struct {
	Kind      string    `json:"kind" enum:"event,property,trait"`
	Parent    string    `json:"parent,omitempty" doc:"For a property, the event it belongs to."`
	Name      string    `json:"name"`
	Type      string    `json:"type" doc:"Inferred value type: string, number, bool, date, list, object, or mixed; empty for events."`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Volume    int64     `json:"volume" doc:"How many times it was seen."`
}

// Catalog lists what the workspace's events have carried, most seen first:
// kind "" lists every kind; parent limits properties to one event.
func (s *Service) Catalog(ctx context.Context, tenantID int64, kind, parent string) ([]CatalogEntry, error) {
	q := `SELECT kind, parent, name, type, first_seen, last_seen, volume FROM event_catalog WHERE tenant_id = $1`
	args := []any{tenantID}
	switch kind {
	case "":
	case CatalogEvent, CatalogProperty, CatalogTrait:
		args = append(args, kind)
		q += fmt.Sprintf(` AND kind = $%d`, len(args))
	default:
		return nil, errs.Field("kind", "invalid_kind", "kind must be event, property or trait")
	}
	if parent != "" {
		args = append(args, parent)
		q += fmt.Sprintf(` AND parent = $%d`, len(args))
	}
	q += ` ORDER BY volume DESC, kind, parent, name LIMIT 2000`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("event: unable to list the catalogue: %w", err)
	}
	defer rows.Close()
	out := []CatalogEntry{}
	for rows.Next() {
		var e CatalogEntry
		var first, last int64
		if err := rows.Scan(&e.Kind, &e.Parent, &e.Name, &e.Type, &first, &last, &e.Volume); err != nil {
			return nil, fmt.Errorf("event: unable to read the catalogue: %w", err)
		}
		e.FirstSeen, e.LastSeen = db.FromMillis(first), db.FromMillis(last)
		out = append(out, e)
	}
	return out, rows.Err()
}

type catalogKey struct {
	tenantID           int64
	kind, parent, name string
}

type catalogAgg struct {
	typ                 string
	first, last, volume int64
}

// catalog gathers one batch's sightings, written with one upsert per name.
type catalog map[catalogKey]*catalogAgg

// Bounds keep a misbehaving client from flooding the catalogue.
const (
	catalogMaxKeys    = 100 // properties or traits catalogued per message
	catalogMaxNameLen = 200
)

func (c catalog) see(k catalogKey, typ string, at int64) {
	if len(k.name) > catalogMaxNameLen || k.name == "" {
		return
	}
	a := c[k]
	if a == nil {
		c[k] = &catalogAgg{typ: typ, first: at, last: at, volume: 1}
		return
	}
	if a.typ != typ {
		a.typ = TypeMixed
	}
	a.first, a.last = min(a.first, at), max(a.last, at)
	a.volume++
}

// observe records an event's name and properties, and the traits its
// observation carried.
func (c catalog) observe(e queued, traits map[string]any) {
	if e.typ == string(Track) {
		c.see(catalogKey{e.tenantID, CatalogEvent, "", e.name}, "", e.timestamp)
		if e.properties != "{}" {
			var props map[string]json.RawMessage
			if json.Unmarshal([]byte(e.properties), &props) == nil {
				n := 0
				for k, v := range props {
					if t := rawType(v); t != "" && n < catalogMaxKeys {
						c.see(catalogKey{e.tenantID, CatalogProperty, e.name, k}, t, e.timestamp)
						n++
					}
				}
			}
		}
	}
	n := 0
	for k, v := range traits {
		if t := valueType(v); t != "" && n < catalogMaxKeys {
			c.see(catalogKey{e.tenantID, CatalogTrait, "", k}, t, e.timestamp)
			n++
		}
	}
}

// store upserts the batch's sightings in key order, so that processors on
// several nodes lock catalogue rows in the same order.
func (c catalog) store(ctx context.Context, tx *sql.Tx) error {
	keys := make([]catalogKey, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b catalogKey) int {
		return cmp.Or(cmp.Compare(a.tenantID, b.tenantID), cmp.Compare(a.kind, b.kind), cmp.Compare(a.parent, b.parent), cmp.Compare(a.name, b.name))
	})
	for _, k := range keys {
		a := c[k]
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO event_catalog (tenant_id, kind, parent, name, type, first_seen, last_seen, volume)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			 ON CONFLICT (tenant_id, kind, parent, name) DO UPDATE SET
			   type = CASE WHEN event_catalog.type = excluded.type THEN event_catalog.type ELSE 'mixed' END,
			   first_seen = CASE WHEN excluded.first_seen < event_catalog.first_seen THEN excluded.first_seen ELSE event_catalog.first_seen END,
			   last_seen = CASE WHEN excluded.last_seen > event_catalog.last_seen THEN excluded.last_seen ELSE event_catalog.last_seen END,
			   volume = event_catalog.volume + excluded.volume`,
			k.tenantID, k.kind, k.parent, k.name, a.typ, a.first, a.last, a.volume); err != nil {
			return fmt.Errorf("event: unable to update the catalogue: %w", err)
		}
	}
	return nil
}

// rawType infers the type of a JSON value; "" for null.
func rawType(v json.RawMessage) string {
	if len(v) == 0 {
		return ""
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			return stringType(s)
		}
		return TypeString
	case 't', 'f':
		return TypeBool
	case '[':
		return TypeList
	case '{':
		return TypeObject
	case 'n':
		return ""
	default:
		return TypeNumber
	}
}

// valueType infers the type of a decoded JSON value; "" for null.
func valueType(v any) string {
	switch x := v.(type) {
	case string:
		return stringType(x)
	case float64, json.Number:
		return TypeNumber
	case bool:
		return TypeBool
	case []any:
		return TypeList
	case map[string]any:
		return TypeObject
	default:
		return ""
	}
}

// stringType tells dates (ISO 8601, as SDKs send them) from other strings.
func stringType(s string) string {
	if len(s) >= 10 && s[4] == '-' && s[7] == '-' {
		if _, err := parseTime(s); err == nil {
			return TypeDate
		}
	}
	return TypeString
}
