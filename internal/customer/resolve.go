package customer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/pii"
)

// Observation is what one inbound message says about a person: the
// identifiers it carries and the traits it sets, at a time, from a source.
// Ingest, connectors, order imports and the API all resolve through it.
type Observation struct {
	At         time.Time
	Identities []Identity     // raw values; phones in any common format
	Traits     map[string]any // standard traits set profile columns; others are custom
	Source     string         // channel, e.g. "miniapp", "wecom", "tmall"
	SourceCode string         // channel code that brought the customer, if any
	MessageID  string         // the message that caused this, for merge records
}

// MergeHook moves a domain's rows from a merged profile to the survivor. It
// runs inside the merge's transaction. Each domain that keys rows by customer
// (events, orders, tags, staff relations) registers one at start-up.
type MergeHook func(ctx context.Context, tx *sql.Tx, tenantID, fromID, toID int64) error

// OnMerge registers a merge hook. Call it while wiring the app, before serving.
func (s *Service) OnMerge(name string, h MergeHook) {
	s.mergeHooks = append(s.mergeHooks, namedHook{name, h})
}

type namedHook struct {
	name string
	h    MergeHook
}

// resolvedID is one identifier ready to look up: value normalised (phones:
// blind index) and a display form for merge records.
type resolvedID struct {
	Identity
	display string
	phone   string // E.164, for phone identities
	owner   int64
}

// prepare normalises, filters and orders the identifiers of an observation.
func (s *Service) prepare(rules Rules, obs Observation) ([]resolvedID, error) {
	ids := slices.Clone(obs.Identities)
	if v, ok := obs.Traits["phone"].(string); ok && v != "" {
		ids = append(ids, Identity{Kind: KindPhone, Value: v})
	}
	if v, ok := obs.Traits["email"].(string); ok && v != "" {
		ids = append(ids, Identity{Kind: KindEmail, Value: v})
	}
	known := Kinds()
	seen := map[Identity]bool{}
	var out []resolvedID
	for _, id := range ids {
		if !slices.Contains(known, id.Kind) {
			return nil, errs.Field("identities", "unknown_identity_kind", "unknown identity kind %q (known: %s)", id.Kind, strings.Join(known, ", "))
		}
		v := strings.TrimSpace(id.Value)
		if rules.blocked(v) || len(v) > 256 {
			continue
		}
		r := resolvedID{Identity: Identity{Kind: id.Kind, Value: v}, display: v}
		switch id.Kind {
		case KindPhone:
			p, err := NormalizePhone(v)
			if err != nil {
				continue // an unusable phone identifies no one; the rest still count
			}
			r.phone, r.Value, r.display = p, s.keys.Index(KindPhone, p), pii.MaskPhone(p)
		case KindEmail:
			r.Value = strings.ToLower(v)
			r.display = r.Value
		}
		if seen[r.Identity] {
			continue
		}
		seen[r.Identity] = true
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b resolvedID) int { return rules.rank(a.Kind) - rules.rank(b.Kind) })
	return out, nil
}

// kindCounts counts a profile's identities by kind. It groups in Go: with
// GROUP BY kind, SQLite's planner prefers the (tenant, kind, value) primary
// key to skip a sort and scans the whole workspace's identities.
func kindCounts(ctx context.Context, q db.Querier, tenantID, customerID int64) (map[string]int, error) {
	rows, err := q.QueryContext(ctx, `SELECT kind FROM customer_identities WHERE tenant_id = $1 AND customer_id = $2`, tenantID, customerID)
	if err != nil {
		return nil, fmt.Errorf("customer: unable to count identities: %w", err)
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		m[k]++
	}
	return m, rows.Err()
}

func fits(rules Rules, a, b map[string]int) bool {
	for k, n := range b {
		if a[k]+n > rules.limit(k) {
			return false
		}
	}
	return true
}

// Resolve finds or creates the one profile for an observation, inside tx:
//
//  1. identifiers are normalised, blocked values dropped, and ordered by the
//     workspace's priority;
//  2. the profile owning the highest-priority known identifier becomes the
//     anchor; other profiles met are merged into it (the older profile
//     survives) unless the merge would exceed a per-kind limit, in which case
//     the lower-priority identifier stays with its own profile;
//  3. new identifiers attach to the anchor within the limits, or a new profile
//     is created for them;
//  4. traits and last-seen time are applied.
func (s *Service) Resolve(ctx context.Context, tx *sql.Tx, tenantID int64, obs Observation) (int64, error) {
	rules, err := s.rulesFor(ctx, tx, tenantID)
	if err != nil {
		return 0, err
	}
	ids, err := s.prepare(rules, obs)
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, errs.E(errs.Invalid, "no_identifier", "the message carries no usable identifier (blocked or empty values only)")
	}
	if obs.At.IsZero() {
		obs.At = s.now()
	}
	for i := range ids {
		if err := tx.QueryRowContext(ctx, `SELECT customer_id FROM customer_identities WHERE tenant_id = $1 AND kind = $2 AND value = $3`,
			tenantID, ids[i].Kind, ids[i].Value).Scan(&ids[i].owner); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("customer: unable to look up identity: %w", err)
		}
	}

	var current int64          // the anchor profile, once known
	counts := map[string]int{} // identities of current + pending, by kind
	var pending []resolvedID   // identifiers to attach to current
	for _, id := range ids {
		switch {
		case id.owner == 0:
			if counts[id.Kind] < rules.limit(id.Kind) {
				pending = append(pending, id)
				counts[id.Kind]++
			} else {
				s.log.InfoContext(ctx, "identity not linked: over the per-profile limit", "tenant", tenantID, "kind", id.Kind, "message", obs.MessageID)
			}
		case id.owner == current:
		case current == 0:
			theirs, err := kindCounts(ctx, tx, tenantID, id.owner)
			if err != nil {
				return 0, err
			}
			if !fits(rules, theirs, counts) {
				// A stronger identifier of this message cannot live on that
				// profile: this identifier stays where it is.
				continue
			}
			current = id.owner
			for k, n := range theirs {
				counts[k] += n
			}
		default:
			theirs, err := kindCounts(ctx, tx, tenantID, id.owner)
			if err != nil {
				return 0, err
			}
			if !fits(rules, counts, theirs) {
				s.log.InfoContext(ctx, "profiles not merged: would exceed a per-profile limit", "tenant", tenantID,
					"kind", id.Kind, "profiles", []int64{current, id.owner}, "message", obs.MessageID)
				continue
			}
			survivor, err := s.merge(ctx, tx, tenantID, current, id.owner, id, obs)
			if err != nil {
				return 0, err
			}
			// Identifiers looked up before the merge may name the profile that
			// was just folded in: they now belong to the survivor.
			lost := id.owner
			if survivor == id.owner {
				lost = current
			}
			for j := range ids {
				if ids[j].owner == lost {
					ids[j].owner = survivor
				}
			}
			current = survivor
			for k, n := range theirs {
				counts[k] += n
			}
		}
	}
	if current == 0 {
		if current, err = s.insert(ctx, tx, tenantID, NewCustomer{
			FirstSource: obs.Source, FirstSourceCode: obs.SourceCode, FirstSeenAt: obs.At, LastSeenAt: obs.At,
		}, s.now().UTC()); err != nil {
			return 0, err
		}
	}
	for _, id := range pending {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO customer_identities (tenant_id, kind, value, customer_id, created_at) VALUES ($1, $2, $3, $4, $5)
			 ON CONFLICT (tenant_id, kind, value) DO NOTHING`,
			tenantID, id.Kind, id.Value, current, db.Millis(obs.At))
		if err != nil {
			return 0, fmt.Errorf("customer: unable to link identity: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// Another transaction linked this identifier since we looked (on
			// PostgreSQL two resolutions run at once): it is the same person.
			var owner int64
			if err := tx.QueryRowContext(ctx, `SELECT customer_id FROM customer_identities WHERE tenant_id = $1 AND kind = $2 AND value = $3`,
				tenantID, id.Kind, id.Value).Scan(&owner); err != nil {
				return 0, fmt.Errorf("customer: unable to look up identity: %w", err)
			}
			if owner != current {
				if current, err = s.merge(ctx, tx, tenantID, current, owner, id, obs); err != nil {
					return 0, err
				}
			}
			continue
		}
		if id.Kind == KindPhone {
			if err := s.setPhoneIfEmpty(ctx, tx, tenantID, current, id.phone); err != nil {
				return 0, err
			}
		}
	}
	if err := s.applyTraits(ctx, tx, tenantID, current, obs); err != nil {
		return 0, err
	}
	return current, nil
}

func (s *Service) setPhoneIfEmpty(ctx context.Context, tx *sql.Tx, tenantID, id int64, phone string) error {
	enc, err := s.keys.Encrypt(phone)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE customers SET phone_enc = $3, phone_masked = $4 WHERE tenant_id = $1 AND id = $2 AND phone_enc = ''`,
		tenantID, id, enc, pii.MaskPhone(phone))
	if err != nil {
		return fmt.Errorf("customer: unable to set phone: %w", err)
	}
	return nil
}

// profileRow is the part of a profile that merges and trait updates touch.
type profileRow struct {
	id                                                    int64
	name, gender, birthday, province, city, email, avatar string
	phoneEnc, phoneMasked, traits, firstSource, firstCode string
	firstSeen, lastSeen, created                          int64
}

func loadProfile(ctx context.Context, tx *sql.Tx, tenantID, id int64) (profileRow, error) {
	var p profileRow
	err := tx.QueryRowContext(ctx, `SELECT id, name, gender, birthday, province, city, email, avatar, phone_enc, phone_masked, traits,
		first_source, first_source_code, first_seen_at, last_seen_at, created_at FROM customers WHERE tenant_id = $1 AND id = $2`, tenantID, id).
		Scan(&p.id, &p.name, &p.gender, &p.birthday, &p.province, &p.city, &p.email, &p.avatar, &p.phoneEnc, &p.phoneMasked, &p.traits,
			&p.firstSource, &p.firstCode, &p.firstSeen, &p.lastSeen, &p.created)
	if err != nil {
		return p, fmt.Errorf("customer: unable to load profile %d: %w", id, err)
	}
	return p, nil
}

func saveProfile(ctx context.Context, tx *sql.Tx, tenantID int64, p profileRow, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE customers SET name = $3, gender = $4, birthday = $5, province = $6, city = $7, email = $8, avatar = $9,
		phone_enc = $10, phone_masked = $11, traits = $12, first_source = $13, first_source_code = $14, first_seen_at = $15, last_seen_at = $16,
		updated_at = $17 WHERE tenant_id = $1 AND id = $2`,
		tenantID, p.id, p.name, p.gender, p.birthday, p.province, p.city, p.email, p.avatar, p.phoneEnc, p.phoneMasked, p.traits,
		p.firstSource, p.firstCode, p.firstSeen, p.lastSeen, db.Millis(now))
	if err != nil {
		return fmt.Errorf("customer: unable to save profile %d: %w", p.id, err)
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// merge folds one profile into the other (the older survives) and returns the
// survivor. Everything keyed by the merged profile moves: identities here,
// other domains' rows through their merge hooks.
func (s *Service) merge(ctx context.Context, tx *sql.Tx, tenantID, a, b int64, why resolvedID, obs Observation) (int64, error) {
	pa, err := loadProfile(ctx, tx, tenantID, a)
	if err != nil {
		return 0, err
	}
	pb, err := loadProfile(ctx, tx, tenantID, b)
	if err != nil {
		return 0, err
	}
	surv, lost := pa, pb
	if pb.created < pa.created || (pb.created == pa.created && pb.id < pa.id) {
		surv, lost = pb, pa
	}
	surv.name = firstNonEmpty(surv.name, lost.name)
	surv.gender = firstNonEmpty(surv.gender, lost.gender)
	surv.birthday = firstNonEmpty(surv.birthday, lost.birthday)
	surv.province = firstNonEmpty(surv.province, lost.province)
	surv.city = firstNonEmpty(surv.city, lost.city)
	surv.email = firstNonEmpty(surv.email, lost.email)
	surv.avatar = firstNonEmpty(surv.avatar, lost.avatar)
	if surv.phoneEnc == "" {
		surv.phoneEnc, surv.phoneMasked = lost.phoneEnc, lost.phoneMasked
	}
	if lost.firstSeen < surv.firstSeen {
		surv.firstSeen, surv.firstSource, surv.firstCode = lost.firstSeen, firstNonEmpty(lost.firstSource, surv.firstSource), firstNonEmpty(lost.firstCode, surv.firstCode)
	}
	surv.lastSeen = max(surv.lastSeen, lost.lastSeen)
	surv.traits, err = mergeTraits(lost.traits, surv.traits)
	if err != nil {
		return 0, err
	}
	now := s.now().UTC()
	stmts := []struct {
		q    string
		args []any
	}{
		{`UPDATE customer_identities SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2`, []any{tenantID, lost.id, surv.id}},
		{`UPDATE customers SET merged_into = $3, updated_at = $4 WHERE tenant_id = $1 AND (id = $2 OR merged_into = $2)`, []any{tenantID, lost.id, surv.id, db.Millis(now)}},
		{`UPDATE customer_merges SET survivor_id = $3 WHERE tenant_id = $1 AND survivor_id = $2`, []any{tenantID, lost.id, surv.id}},
		{`INSERT INTO customer_merges (tenant_id, survivor_id, merged_id, identity_kind, identity_value, message_id, source, merged_at)
		  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, []any{tenantID, surv.id, lost.id, why.Kind, why.display, obs.MessageID, obs.Source, db.Millis(obs.At)}},
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return 0, fmt.Errorf("customer: merge %d into %d: %w", lost.id, surv.id, err)
		}
	}
	if err := saveProfile(ctx, tx, tenantID, surv, now); err != nil {
		return 0, err
	}
	for _, h := range s.mergeHooks {
		if err := h.h(ctx, tx, tenantID, lost.id, surv.id); err != nil {
			return 0, fmt.Errorf("customer: merge hook %s: %w", h.name, err)
		}
	}
	s.log.InfoContext(ctx, "profiles merged", slog.Int64("tenant", tenantID), slog.Int64("survivor", surv.id), slog.Int64("merged", lost.id),
		slog.String("by", why.Kind), slog.String("message", obs.MessageID))
	return surv.id, nil
}

// mergeTraits overlays the JSON object top on base.
func mergeTraits(base, top string) (string, error) {
	m := map[string]any{}
	for _, doc := range []string{base, top} {
		if doc == "" {
			continue
		}
		var part map[string]any
		if err := json.Unmarshal([]byte(doc), &part); err != nil {
			return "", fmt.Errorf("customer: damaged traits: %w", err)
		}
		for k, v := range part {
			if v == nil {
				delete(m, k) // null clears a trait
				continue
			}
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// isStandardTrait reports whether a trait maps to profile columns; every
// other trait is a custom attribute.
func isStandardTrait(k string) bool {
	switch k {
	case "name", "firstName", "lastName", "first_name", "last_name", "gender", "birthday", "province", "city",
		"address", "phone", "email", "avatar", "nickname":
		return true
	}
	return false
}

// applyTraits sets standard traits on the profile's columns, merges the rest
// into its custom traits, and moves last-seen forward.
func (s *Service) applyTraits(ctx context.Context, tx *sql.Tx, tenantID, id int64, obs Observation) error {
	p, err := loadProfile(ctx, tx, tenantID, id)
	if err != nil {
		return err
	}
	t := obs.Traits
	str := func(k string) string {
		v, _ := t[k].(string)
		return strings.TrimSpace(v)
	}
	if n := str("name"); n != "" {
		p.name = n
	} else if n := strings.TrimSpace(str("lastName") + str("firstName") + str("last_name") + str("first_name")); n != "" {
		p.name = n // Chinese order: family name first
	} else if n := str("nickname"); n != "" && p.name == "" {
		p.name = n
	}
	switch strings.ToLower(str("gender")) {
	case "male", "m", "man", "男", "1":
		p.gender = "male"
	case "female", "f", "woman", "女", "2":
		p.gender = "female"
	}
	if b := str("birthday"); b != "" {
		if d, err := time.Parse(time.DateOnly, b[:min(len(b), 10)]); err == nil {
			p.birthday = d.Format(time.DateOnly)
		}
	}
	if addr, ok := t["address"].(map[string]any); ok {
		if v, _ := addr["state"].(string); v != "" {
			p.province = v
		}
		if v, _ := addr["city"].(string); v != "" {
			p.city = v
		}
	}
	p.province = firstNonEmpty(str("province"), p.province)
	p.city = firstNonEmpty(str("city"), p.city)
	if e := strings.ToLower(str("email")); e != "" {
		p.email = e
	}
	p.avatar = firstNonEmpty(str("avatar"), p.avatar)
	custom := map[string]any{}
	for k, v := range t {
		if !isStandardTrait(k) {
			custom[k] = v
		}
	}
	custom, err = s.checkTraits(ctx, tx, tenantID, custom, obs.At)
	if err != nil {
		return err
	}
	if len(custom) > 0 {
		b, err := json.Marshal(custom)
		if err != nil {
			return errs.Field("traits", "invalid_traits", "traits must be JSON values")
		}
		if p.traits, err = mergeTraits(p.traits, string(b)); err != nil {
			return err
		}
	}
	at := db.Millis(obs.At)
	p.lastSeen = max(p.lastSeen, at)
	if at < p.firstSeen {
		p.firstSeen = at
	}
	if p.firstSource == "" {
		p.firstSource, p.firstCode = obs.Source, firstNonEmpty(p.firstCode, obs.SourceCode)
	}
	return saveProfile(ctx, tx, tenantID, p, s.now().UTC())
}
