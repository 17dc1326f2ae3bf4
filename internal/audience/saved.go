package audience

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/RoaringBitmap/roaring/v2/roaring64"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
)

// Audience is a saved, live segment.
type Audience struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Conditions  Condition `json:"conditions"`
	MemberCount int64     `json:"member_count" doc:"Members at the last evaluation."`
	EvaluatedAt time.Time `json:"evaluated_at,omitzero"`
	CreatedBy   string    `json:"created_by,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Change is one customer entering or leaving an audience.
type Change struct {
	ID         int64     `json:"id"`
	AudienceID int64     `json:"audience_id"`
	CustomerID int64     `json:"customer_id"`
	Entered    bool      `json:"entered"`
	At         time.Time `json:"at"`
}

const audienceCols = `id, name, description, conditions, member_count, evaluated_at, created_by, created_at, updated_at`

func scanAudience(row interface{ Scan(...any) error }) (Audience, error) {
	var a Audience
	var cond string
	var evaluated sql.NullInt64
	var created, updated int64
	if err := row.Scan(&a.ID, &a.Name, &a.Description, &cond, &a.MemberCount, &evaluated, &a.CreatedBy, &created, &updated); err != nil {
		return a, err
	}
	if err := json.Unmarshal([]byte(cond), &a.Conditions); err != nil {
		return a, fmt.Errorf("audience %d: damaged conditions: %w", a.ID, err)
	}
	a.EvaluatedAt, a.CreatedAt, a.UpdatedAt = db.NullMillis(evaluated), db.FromMillis(created), db.FromMillis(updated)
	return a, nil
}

// AudienceInput creates or changes a saved audience.
type AudienceInput struct {
	Name        string
	Description string
	Conditions  Condition
}

func (s *Service) checkInput(ctx context.Context, tenantID, selfID int64, in *AudienceInput) error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len([]rune(in.Name)) > 100 {
		return errs.Field("name", "invalid_name", "the audience name must be 1–100 characters")
	}
	if err := in.Conditions.Validate(); err != nil {
		return err
	}
	// References to other audiences must exist and not lead back here.
	if err := s.checkRefs(ctx, tenantID, selfID, in.Conditions, map[int64]bool{}); err != nil {
		return err
	}
	// Evaluating once proves every tag and attribute it names exists.
	_, err := s.Evaluate(ctx, tenantID, in.Conditions)
	return err
}

func (s *Service) checkRefs(ctx context.Context, tenantID, selfID int64, c Condition, seen map[int64]bool) error {
	var walk func(c Condition) error
	walk = func(c Condition) error {
		for _, k := range append(append([]Condition{}, c.And...), c.Or...) {
			if err := walk(k); err != nil {
				return err
			}
		}
		if c.Not != nil {
			if err := walk(*c.Not); err != nil {
				return err
			}
		}
		if c.Audience == 0 {
			return nil
		}
		if c.Audience == selfID && selfID != 0 {
			return errs.Field("conditions", "audience_cycle", "an audience cannot include itself")
		}
		if seen[c.Audience] {
			return nil
		}
		seen[c.Audience] = true
		ref, err := s.Audience(ctx, tenantID, c.Audience)
		if err != nil {
			return errs.Field("conditions", "audience_not_found", "audience %d does not exist", c.Audience)
		}
		return s.checkRefs(ctx, tenantID, selfID, ref.Conditions, seen)
	}
	return walk(c)
}

// CreateAudience saves an audience and computes its members.
func (s *Service) CreateAudience(ctx context.Context, tenantID int64, actor string, in AudienceInput) (Audience, error) {
	if err := s.checkInput(ctx, tenantID, 0, &in); err != nil {
		return Audience{}, err
	}
	cond, _ := json.Marshal(in.Conditions)
	now := db.Millis(s.now())
	var id int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO audiences (tenant_id, name, description, conditions, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`, tenantID, in.Name, in.Description, string(cond), actor, now).Scan(&id)
	if db.IsUniqueViolation(err) {
		return Audience{}, errs.E(errs.Conflict, "audience_name_taken", "an audience named %q already exists", in.Name)
	}
	if err != nil {
		return Audience{}, fmt.Errorf("audience: unable to save: %w", err)
	}
	if err := s.Reevaluate(ctx, tenantID); err != nil {
		return Audience{}, err
	}
	return s.Audience(ctx, tenantID, id)
}

// UpdateAudience changes an audience; members move at once.
func (s *Service) UpdateAudience(ctx context.Context, tenantID, id int64, in AudienceInput) (Audience, error) {
	if _, err := s.Audience(ctx, tenantID, id); err != nil {
		return Audience{}, err
	}
	if err := s.checkInput(ctx, tenantID, id, &in); err != nil {
		return Audience{}, err
	}
	cond, _ := json.Marshal(in.Conditions)
	_, err := s.db.ExecContext(ctx, `UPDATE audiences SET name = $3, description = $4, conditions = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2`,
		tenantID, id, in.Name, in.Description, string(cond), db.Millis(s.now()))
	if db.IsUniqueViolation(err) {
		return Audience{}, errs.E(errs.Conflict, "audience_name_taken", "an audience named %q already exists", in.Name)
	}
	if err != nil {
		return Audience{}, fmt.Errorf("audience: unable to update: %w", err)
	}
	if err := s.Reevaluate(ctx, tenantID); err != nil {
		return Audience{}, err
	}
	return s.Audience(ctx, tenantID, id)
}

// ArchiveAudience stops an audience; other audiences may not refer to it.
func (s *Service) ArchiveAudience(ctx context.Context, tenantID, id int64) error {
	if _, err := s.Audience(ctx, tenantID, id); err != nil {
		return err
	}
	all, err := s.liveAudiences(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, a := range all {
		if a.ID != id && refersTo(a.Conditions, id) {
			return errs.E(errs.Conflict, "audience_in_use", "audience %q uses this audience; change it first", a.Name)
		}
	}
	_, err = s.db.ExecContext(ctx, `UPDATE audiences SET archived_at = $3 WHERE tenant_id = $1 AND id = $2`, tenantID, id, db.Millis(s.now()))
	if err != nil {
		return fmt.Errorf("audience: unable to archive: %w", err)
	}
	return nil
}

func refersTo(c Condition, id int64) bool {
	if c.Audience == id {
		return true
	}
	for _, k := range append(append([]Condition{}, c.And...), c.Or...) {
		if refersTo(k, id) {
			return true
		}
	}
	return c.Not != nil && refersTo(*c.Not, id)
}

// Audience returns one saved audience.
func (s *Service) Audience(ctx context.Context, tenantID, id int64) (Audience, error) {
	a, err := scanAudience(s.db.QueryRowContext(ctx, `SELECT `+audienceCols+` FROM audiences WHERE tenant_id = $1 AND id = $2 AND archived_at IS NULL`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Audience{}, errs.NotFoundf("audience", "no such audience")
	}
	if err != nil {
		return Audience{}, fmt.Errorf("audience: unable to fetch: %w", err)
	}
	return a, nil
}

// Audiences lists saved audiences, newest first.
func (s *Service) Audiences(ctx context.Context, tenantID int64, r page.Request) (page.Page[Audience], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[Audience]{}, err
	}
	q := `SELECT ` + audienceCols + ` FROM audiences WHERE tenant_id = $1 AND archived_at IS NULL`
	args := []any{tenantID}
	if ok {
		q += ` AND id < $2`
		args = append(args, after)
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[Audience]{}, fmt.Errorf("audience: unable to list: %w", err)
	}
	defer rows.Close()
	var out []Audience
	for rows.Next() {
		a, err := scanAudience(rows)
		if err != nil {
			return page.Page[Audience]{}, err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Audience]{}, err
	}
	return page.Trim(out, r, func(a Audience) string { return page.ByID(a.ID) }), nil
}

func (s *Service) liveAudiences(ctx context.Context, tenantID int64) ([]Audience, error) {
	var all []Audience
	r := page.Request{Limit: page.MaxLimit}
	for {
		pg, err := s.Audiences(ctx, tenantID, r)
		if err != nil {
			return nil, err
		}
		all = append(all, pg.Items...)
		if pg.Next == "" {
			return all, nil
		}
		r.Cursor = pg.Next
	}
}

// Members evaluates a saved audience now.
func (s *Service) Members(ctx context.Context, tenantID, id int64) (Result, error) {
	a, err := s.Audience(ctx, tenantID, id)
	if err != nil {
		return Result{}, err
	}
	return s.Evaluate(ctx, tenantID, a.Conditions)
}

// Reevaluate recomputes every saved audience of a workspace, records who
// entered and left since the last snapshot, and saves the new snapshots.
// Audiences referring to others are evaluated after them.
func (s *Service) Reevaluate(ctx context.Context, tenantID int64) error {
	all, err := s.liveAudiences(ctx, tenantID)
	if err != nil {
		return err
	}
	byID := map[int64]Audience{}
	for _, a := range all {
		byID[a.ID] = a
	}
	done := map[int64]*roaring.Bitmap{} // ordinals, per audience
	t, err := s.index(ctx, tenantID)
	if err != nil {
		return err
	}
	s.flush(ctx, tenantID, t)
	var eval func(id int64, depth int) (*roaring.Bitmap, error)
	eval = func(id int64, depth int) (*roaring.Bitmap, error) {
		if b, ok := done[id]; ok {
			return b, nil
		}
		a, ok := byID[id]
		if !ok || depth > MaxDepth {
			return nil, errs.E(errs.Invalid, "audience_not_found", "audience %d does not exist", id)
		}
		env, err := s.env(ctx, tenantID, t)
		if err != nil {
			return nil, err
		}
		env.Audience = func(ctx context.Context, ref int64) (*roaring.Bitmap, error) { return eval(ref, depth+1) }
		b, err := t.x.Eval(ctx, a.Conditions, env)
		if err != nil {
			return nil, err
		}
		done[id] = b
		return b, nil
	}
	now := s.now()
	for _, a := range all {
		b, err := eval(a.ID, 0)
		if err != nil {
			s.log.Warn("audience cannot be evaluated", "tenant", tenantID, "audience", a.ID, "err", err)
			continue
		}
		if err := s.saveSnapshot(ctx, tenantID, a.ID, t, b, now); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) saveSnapshot(ctx context.Context, tenantID, id int64, t *tenantIndex, ords *roaring.Bitmap, now time.Time) error {
	members := roaring64.New()
	for _, cid := range t.x.IDs(ords, int(ords.GetCardinality())) {
		members.Add(uint64(cid))
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		var blob []byte
		if err := tx.QueryRowContext(ctx, `SELECT members FROM audiences WHERE tenant_id = $1 AND id = $2`, tenantID, id).Scan(&blob); err != nil {
			return fmt.Errorf("audience: unable to read snapshot: %w", err)
		}
		prev := roaring64.New()
		if len(blob) > 0 {
			if _, err := prev.ReadFrom(bytes.NewReader(blob)); err != nil {
				s.log.Warn("audience snapshot unreadable; starting afresh", "audience", id, "err", err)
				prev = roaring64.New()
			}
		}
		entered := roaring64.AndNot(members, prev)
		left := roaring64.AndNot(prev, members)
		if entered.IsEmpty() && left.IsEmpty() && len(blob) > 0 {
			return nil
		}
		for _, set := range []struct {
			b  *roaring64.Bitmap
			in bool
		}{{entered, true}, {left, false}} {
			if err := insertChanges(ctx, tx, tenantID, id, set.b, set.in, now); err != nil {
				return err
			}
		}
		members.RunOptimize()
		var buf bytes.Buffer
		if _, err := members.WriteTo(&buf); err != nil {
			return fmt.Errorf("audience: unable to serialise members: %w", err)
		}
		_, err := tx.ExecContext(ctx, `UPDATE audiences SET members = $3, member_count = $4, evaluated_at = $5 WHERE tenant_id = $1 AND id = $2`,
			tenantID, id, buf.Bytes(), int64(members.GetCardinality()), db.Millis(now))
		if err != nil {
			return fmt.Errorf("audience: unable to save snapshot: %w", err)
		}
		return nil
	})
}

// insertChanges writes entered/left rows in multi-row statements.
func insertChanges(ctx context.Context, tx *sql.Tx, tenantID, audienceID int64, ids *roaring64.Bitmap, entered bool, now time.Time) error {
	const per = 200
	it := ids.Iterator()
	for it.HasNext() {
		var vals []string
		args := []any{tenantID, audienceID, entered, db.Millis(now)}
		for len(vals) < per && it.HasNext() {
			args = append(args, int64(it.Next()))
			vals = append(vals, fmt.Sprintf("($1, $2, $%d, $3, $4)", len(args)))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audience_changes (tenant_id, audience_id, customer_id, entered, at) VALUES `+strings.Join(vals, ", "), args...); err != nil {
			return fmt.Errorf("audience: unable to record membership changes: %w", err)
		}
	}
	return nil
}

// Changes lists who entered and left an audience, newest first.
func (s *Service) Changes(ctx context.Context, tenantID, audienceID int64, r page.Request) (page.Page[Change], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[Change]{}, err
	}
	q := `SELECT id, audience_id, customer_id, entered, at FROM audience_changes WHERE tenant_id = $1 AND audience_id = $2`
	args := []any{tenantID, audienceID}
	if ok {
		q += ` AND id < $3`
		args = append(args, after)
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[Change]{}, fmt.Errorf("audience: unable to list changes: %w", err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		var at int64
		if err := rows.Scan(&c.ID, &c.AudienceID, &c.CustomerID, &c.Entered, &at); err != nil {
			return page.Page[Change]{}, err
		}
		c.At = db.FromMillis(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Change]{}, err
	}
	return page.Trim(out, r, func(c Change) string { return page.ByID(c.ID) }), nil
}
