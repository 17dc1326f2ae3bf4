package acquire

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

const codeCols = `id, name, source, state, store_id, status, config, config_id, qr_code, rotation, want_users, users, sync_error, created_by, created_at, updated_at`

// codeRow is a code with its rotation state.
type codeRow struct {
	ChannelCode
	rotation map[string]int
}

func scanCode(row interface{ Scan(...any) error }) (codeRow, error) {
	var c codeRow
	var store sql.NullInt64
	var cfg, rot, want, users string
	var created, updated int64
	if err := row.Scan(&c.ID, &c.Name, &c.Source, &c.State, &store, &c.Status, &cfg, &c.ConfigID, &c.QRCode, &rot, &want, &users,
		&c.SyncError, &c.CreatedBy, &created, &updated); err != nil {
		return codeRow{}, err
	}
	c.StoreID = store.Int64
	if err := json.Unmarshal([]byte(cfg), &c.Config); err != nil {
		return codeRow{}, fmt.Errorf("acquire: code %d has an unreadable config: %w", c.ID, err)
	}
	c.rotation = map[string]int{}
	_ = json.Unmarshal([]byte(rot), &c.rotation)
	c.WantUsers, c.Users = splitUsers(want), splitUsers(users)
	c.CreatedAt, c.UpdatedAt = db.FromMillis(created), db.FromMillis(updated)
	return c, nil
}

func splitUsers(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

func joinUsers(u []string) string { return strings.Join(u, ",") }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain types are marshalled
	}
	return string(b)
}

func (s *Service) forUpdate() string {
	if s.db.Dialect == db.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (s *Service) code(ctx context.Context, q db.Querier, tenantID, id int64, lock bool) (codeRow, error) {
	query := `SELECT ` + codeCols + ` FROM acquire_codes WHERE tenant_id = $1 AND id = $2`
	if lock {
		query += s.forUpdate()
	}
	c, err := scanCode(q.QueryRowContext(ctx, query, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return codeRow{}, errs.NotFoundf("code", "no channel code %d", id)
	}
	if err != nil {
		return codeRow{}, fmt.Errorf("acquire: unable to read code %d: %w", id, err)
	}
	return c, nil
}

// Code returns one code with today's adds.
func (s *Service) Code(ctx context.Context, tenantID, id int64) (ChannelCode, error) {
	c, err := s.code(ctx, s.db, tenantID, id, false)
	if err != nil {
		return ChannelCode{}, err
	}
	out := []ChannelCode{c.ChannelCode}
	if err := s.fillToday(ctx, tenantID, out); err != nil {
		return ChannelCode{}, err
	}
	return out[0], nil
}

// Filter narrows a list of codes.
type Filter struct {
	Source  string // "" all
	Deleted bool   // list deleted codes instead of active ones
}

// Codes lists codes, newest first, with today's adds.
func (s *Service) Codes(ctx context.Context, tenantID int64, f Filter, r page.Request) (page.Page[ChannelCode], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[ChannelCode]{}, err
	}
	status := StatusActive
	if f.Deleted {
		status = StatusDeleted
	}
	q := `SELECT ` + codeCols + ` FROM acquire_codes WHERE tenant_id = $1 AND status = $2`
	args := []any{tenantID, status}
	if f.Source != "" {
		args = append(args, f.Source)
		q += fmt.Sprintf(` AND source = $%d`, len(args))
	}
	if ok {
		args = append(args, after)
		q += fmt.Sprintf(` AND id < $%d`, len(args))
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[ChannelCode]{}, fmt.Errorf("acquire: unable to list codes: %w", err)
	}
	defer rows.Close()
	var out []ChannelCode
	for rows.Next() {
		c, err := scanCode(rows)
		if err != nil {
			return page.Page[ChannelCode]{}, fmt.Errorf("acquire: unable to read code: %w", err)
		}
		out = append(out, c.ChannelCode)
	}
	if err := rows.Err(); err != nil {
		return page.Page[ChannelCode]{}, fmt.Errorf("acquire: unable to list codes: %w", err)
	}
	p := page.Trim(out, r, func(c ChannelCode) string { return page.ByID(c.ID) })
	return p, s.fillToday(ctx, tenantID, p.Items)
}

// fillToday sets TodayAdds on codes.
func (s *Service) fillToday(ctx context.Context, tenantID int64, codes []ChannelCode) error {
	if len(codes) == 0 {
		return nil
	}
	ws, err := s.tenant.Workspace(ctx, tenantID)
	if err != nil {
		return err
	}
	start := dayStart(s.now(), ws.Location())
	args := []any{tenantID, db.Millis(start)}
	ph := make([]string, len(codes))
	for i, c := range codes {
		args = append(args, c.ID)
		ph[i] = "$" + strconv.Itoa(len(args))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT code_id, count(*) FROM acquire_events
		WHERE tenant_id = $1 AND kind = 'add' AND at >= $2 AND code_id IN (`+strings.Join(ph, ", ")+`) GROUP BY code_id`, args...)
	if err != nil {
		return fmt.Errorf("acquire: unable to count today's adds: %w", err)
	}
	defer rows.Close()
	n := map[int64]int64{}
	for rows.Next() {
		var id, c int64
		if err := rows.Scan(&id, &c); err != nil {
			return fmt.Errorf("acquire: unable to count today's adds: %w", err)
		}
		n[id] = c
	}
	for i := range codes {
		codes[i].TodayAdds = n[codes[i].ID]
	}
	return rows.Err()
}

// todayByUser counts a code's adds per staff member since start.
func todayByUser(ctx context.Context, q db.Querier, tenantID, codeID int64, start int64) (map[string]int, error) {
	rows, err := q.QueryContext(ctx, `SELECT userid, count(*) FROM acquire_events
		WHERE tenant_id = $1 AND code_id = $2 AND kind = 'add' AND at >= $3 GROUP BY userid`, tenantID, codeID, start)
	if err != nil {
		return nil, fmt.Errorf("acquire: unable to count adds per staff member: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var u string
		var n int
		if err := rows.Scan(&u, &n); err != nil {
			return nil, fmt.Errorf("acquire: unable to count adds per staff member: %w", err)
		}
		out[u] = n
	}
	return out, rows.Err()
}

// check validates what needs the database: the state is free, the staff
// exist with a WeCom userid and are active, the tags exist.
func (s *Service) check(ctx context.Context, tenantID, selfID int64, in *CodeInput) error {
	var other int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM acquire_codes WHERE tenant_id = $1 AND state = $2`, tenantID, in.State).Scan(&other)
	switch {
	case err == nil && other != selfID:
		return errs.E(errs.Conflict, "state_taken", "the state %q is already used by channel code %d; each code needs its own", in.State, other)
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("acquire: unable to check the state: %w", err)
	}
	for i, r := range in.Config.Staff {
		m, err := s.staff.MemberByWeComUserID(ctx, tenantID, r.UserID)
		if errs.Is(err, errs.NotFound) {
			return errs.Field(fmt.Sprintf("config.staff[%d].userid", i), "unknown_staff", "no staff member has the WeCom userid %q; sync WeCom or pick another", r.UserID)
		}
		if err != nil {
			return err
		}
		if m.Status != "active" {
			return errs.Field(fmt.Sprintf("config.staff[%d].userid", i), "staff_resigned", "%s (%s) has left; pick another staff member", m.Name, r.UserID)
		}
	}
	if len(in.Config.TagIDs) > 0 {
		all, err := s.tags.AllTags(ctx, tenantID)
		if err != nil {
			return err
		}
		have := map[int64]bool{}
		for _, t := range all {
			have[t.ID] = true
		}
		for _, id := range in.Config.TagIDs {
			if !have[id] {
				return errs.Field("config.tag_ids", "unknown_tag", "no tag %d in this workspace", id)
			}
		}
	}
	if in.StoreID != 0 {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM stores WHERE tenant_id = $1 AND id = $2`, tenantID, in.StoreID).Scan(&n); err != nil {
			return fmt.Errorf("acquire: unable to check the store: %w", err)
		}
		if n == 0 {
			return errs.Field("store_id", "unknown_store", "no store %d in this workspace", in.StoreID)
		}
	}
	return nil
}

// Create validates the input, creates the code in WeCom (add_contact_way:
// several members, QR code, the state) and stores it. A state already in
// use is a conflict, so a retried create makes no second code.
func (s *Service) Create(ctx context.Context, p tenant.Principal, in CodeInput) (ChannelCode, error) {
	if err := in.normalize(); err != nil {
		return ChannelCode{}, err
	}
	if err := s.check(ctx, p.TenantID, 0, &in); err != nil {
		return ChannelCode{}, err
	}
	ws, err := s.tenant.Workspace(ctx, p.TenantID)
	if err != nil {
		return ChannelCode{}, err
	}
	now := s.now()
	who, rot := pick(in.Config, now.In(ws.Location()), nil, nil)
	cl, err := s.wecom.Client(ctx, p.TenantID)
	if err != nil {
		return ChannelCode{}, err
	}
	made, err := cl.AddContactWay(ctx, wecom.ContactWay{Type: 2, Scene: 2, SkipVerify: in.Config.SkipVerify, State: in.State,
		Users: []string{who}, Remark: cut(in.Name, 30)})
	if err != nil {
		return ChannelCode{}, fmt.Errorf("acquire: unable to create the code in WeCom: %w", err)
	}
	var id int64
	var store any
	if in.StoreID != 0 {
		store = in.StoreID
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO acquire_codes (tenant_id, name, source, state, store_id, status, config, config_id, qr_code,
			rotation, want_users, users, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $9, $10, $10, $11, $12, $12) RETURNING id`,
			p.TenantID, in.Name, in.Source, in.State, store, mustJSON(in.Config), made.ConfigID, made.QRCode, mustJSON(rot), who, p.Name,
			db.Millis(now)).Scan(&id)
		if db.IsUniqueViolation(err) {
			return errs.E(errs.Conflict, "state_taken", "the state %q or the store already has a channel code", in.State)
		}
		if err != nil {
			return fmt.Errorf("acquire: unable to store the code: %w", err)
		}
		return s.tenant.Audit(ctx, tx, p, "acquire.code.create", "acquire_code", strconv.FormatInt(id, 10), in.Name+" ("+in.State+")")
	})
	if err != nil {
		// Leave no orphan in WeCom.
		if derr := cl.DelContactWay(context.WithoutCancel(ctx), made.ConfigID); derr != nil {
			s.log.Warn("acquire: unable to delete a code WeCom created but Siyu could not store", "config_id", made.ConfigID, "err", derr)
		}
		return ChannelCode{}, err
	}
	return s.Code(ctx, p.TenantID, id)
}

// Update changes a code: its settings are stored, the next staff member is
// chosen again under the new policy, and WeCom is updated
// (update_contact_way; the QR image stays the same).
func (s *Service) Update(ctx context.Context, p tenant.Principal, id int64, in CodeInput) (ChannelCode, error) {
	if err := in.normalize(); err != nil {
		return ChannelCode{}, err
	}
	cur, err := s.code(ctx, s.db, p.TenantID, id, false)
	if err != nil {
		return ChannelCode{}, err
	}
	if cur.Status != StatusActive {
		return ChannelCode{}, errs.E(errs.Conflict, "code_deleted", "channel code %d was deleted; create a new one", id)
	}
	in.StoreID = cur.StoreID // a store code stays with its store
	if err := s.check(ctx, p.TenantID, id, &in); err != nil {
		return ChannelCode{}, err
	}
	ws, err := s.tenant.Workspace(ctx, p.TenantID)
	if err != nil {
		return ChannelCode{}, err
	}
	cl, err := s.wecom.Client(ctx, p.TenantID)
	if err != nil {
		return ChannelCode{}, err
	}
	now := s.now()
	var who string
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		c, err := s.code(ctx, tx, p.TenantID, id, true)
		if err != nil {
			return err
		}
		today, err := todayByUser(ctx, tx, p.TenantID, id, db.Millis(dayStart(now, ws.Location())))
		if err != nil {
			return err
		}
		rot := c.rotation
		who = first(c.WantUsers)
		if !stillEligible(in.Config, now.In(ws.Location()), today, who) {
			who, rot = pick(in.Config, now.In(ws.Location()), today, c.rotation)
		}
		_, err = tx.ExecContext(ctx, `UPDATE acquire_codes SET name = $3, source = $4, state = $5, config = $6, rotation = $7, want_users = $8,
			updated_at = $9 WHERE tenant_id = $1 AND id = $2`, p.TenantID, id, in.Name, in.Source, in.State, mustJSON(in.Config), mustJSON(rot), who, db.Millis(now))
		if db.IsUniqueViolation(err) {
			return errs.E(errs.Conflict, "state_taken", "the state %q is already used by another channel code", in.State)
		}
		if err != nil {
			return fmt.Errorf("acquire: unable to update code %d: %w", id, err)
		}
		return s.tenant.Audit(ctx, tx, p, "acquire.code.update", "acquire_code", strconv.FormatInt(id, 10), in.Name+" ("+in.State+")")
	})
	if err != nil {
		return ChannelCode{}, err
	}
	err = cl.UpdateContactWay(ctx, wecom.ContactWayUpdate{ConfigID: cur.ConfigID, Remark: cut(in.Name, 30), SkipVerify: in.Config.SkipVerify,
		State: in.State, Users: []string{who}})
	if err != nil {
		s.recordSyncError(ctx, p.TenantID, id, err)
		return ChannelCode{}, fmt.Errorf("acquire: saved, but WeCom could not be updated (Siyu retries): %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE acquire_codes SET users = $3, sync_error = '' WHERE tenant_id = $1 AND id = $2 AND want_users = $3`,
		p.TenantID, id, who); err != nil {
		return ChannelCode{}, fmt.Errorf("acquire: unable to record the update of code %d: %w", id, err)
	}
	return s.Code(ctx, p.TenantID, id)
}

func first(u []string) string {
	if len(u) == 0 {
		return ""
	}
	return u[0]
}

// Delete removes a code from WeCom (del_contact_way: its QR stops working)
// and marks it deleted; its statistics and the customers it brought stay.
func (s *Service) Delete(ctx context.Context, p tenant.Principal, id int64) error {
	c, err := s.code(ctx, s.db, p.TenantID, id, false)
	if err != nil {
		return err
	}
	if c.Status == StatusDeleted {
		return nil
	}
	cl, err := s.wecom.Client(ctx, p.TenantID)
	if err != nil {
		return err
	}
	if err := cl.DelContactWay(ctx, c.ConfigID); err != nil && !wecom.IsCode(err, wecom.CodeInvalidContactWay) {
		return fmt.Errorf("acquire: unable to delete the code in WeCom: %w", err)
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE acquire_codes SET status = 'deleted', updated_at = $3 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, db.Millis(s.now())); err != nil {
			return fmt.Errorf("acquire: unable to delete code %d: %w", id, err)
		}
		return s.tenant.Audit(ctx, tx, p, "acquire.code.delete", "acquire_code", strconv.FormatInt(id, 10), c.Name+" ("+c.State+")")
	})
}

func (s *Service) recordSyncError(ctx context.Context, tenantID, id int64, cause error) {
	msg := cause.Error()
	if e, ok := errs.As(cause); ok {
		msg = e.Message
	}
	if _, err := s.db.ExecContext(context.WithoutCancel(ctx), `UPDATE acquire_codes SET sync_error = $3 WHERE tenant_id = $1 AND id = $2`,
		tenantID, id, cut(msg, 500)); err != nil {
		s.log.Warn("acquire: unable to record a sync error", "code", id, "err", err)
	}
}

// syncUsers brings a code's member list in WeCom in line with the one the
// policy chose, when they differ.
func (s *Service) syncUsers(ctx context.Context, tenantID int64, c codeRow) error {
	if c.Status != StatusActive || joinUsers(c.WantUsers) == joinUsers(c.Users) || len(c.WantUsers) == 0 {
		return nil
	}
	cl, err := s.wecom.Client(ctx, tenantID)
	if err != nil {
		return err
	}
	err = cl.UpdateContactWay(ctx, wecom.ContactWayUpdate{ConfigID: c.ConfigID, Remark: cut(c.Name, 30), SkipVerify: c.Config.SkipVerify,
		State: c.State, Users: c.WantUsers})
	if err != nil {
		s.recordSyncError(ctx, tenantID, c.ID, err)
		return fmt.Errorf("acquire: unable to update code %d in WeCom: %w", c.ID, err)
	}
	_, err = s.db.ExecContext(ctx, `UPDATE acquire_codes SET users = $3, sync_error = '' WHERE tenant_id = $1 AND id = $2 AND want_users = $3`,
		tenantID, c.ID, joinUsers(c.WantUsers))
	if err != nil {
		return fmt.Errorf("acquire: unable to record the update of code %d: %w", c.ID, err)
	}
	return nil
}

// Rebalance re-checks every active code of every workspace: when the staff
// member on the code is no longer eligible (schedule, cap, a new day, a
// regular member back on duty) the next one is chosen, and WeCom is updated
// wherever it differs. It returns how many codes it updated in WeCom.
func (s *Service) Rebalance(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT tenant_id, id FROM acquire_codes WHERE status = 'active' ORDER BY tenant_id, id`)
	if err != nil {
		return 0, fmt.Errorf("acquire: unable to list codes: %w", err)
	}
	type ref struct{ tenant, id int64 }
	var refs []ref
	for rows.Next() {
		var r ref
		if err := rows.Scan(&r.tenant, &r.id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("acquire: unable to list codes: %w", err)
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("acquire: unable to list codes: %w", err)
	}
	updated := 0
	var firstErr error
	for _, r := range refs {
		if ctx.Err() != nil {
			return updated, ctx.Err()
		}
		c, moved, err := s.needsRepick(ctx, r.tenant, r.id)
		if err == nil && moved {
			c, err = s.repick(ctx, r.tenant, r.id, false)
		}
		if err == nil {
			before := joinUsers(c.Users)
			err = s.syncUsers(ctx, r.tenant, c)
			if err == nil && before != joinUsers(c.WantUsers) {
				updated++
			}
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return updated, firstErr
}

// needsRepick reads a code and reports, without writing, whether the staff
// member on it is no longer eligible, so that the worker's pass over every
// code writes only where something changes.
func (s *Service) needsRepick(ctx context.Context, tenantID, id int64) (codeRow, bool, error) {
	c, err := s.code(ctx, s.db, tenantID, id, false)
	if err != nil || c.Status != StatusActive {
		return c, false, err
	}
	ws, err := s.tenant.Workspace(ctx, tenantID)
	if err != nil {
		return c, false, err
	}
	now := s.now()
	today, err := todayByUser(ctx, s.db, tenantID, id, db.Millis(dayStart(now, ws.Location())))
	if err != nil {
		return c, false, err
	}
	return c, !stillEligible(c.Config, now.In(ws.Location()), today, first(c.WantUsers)), nil
}

// repick chooses the next staff member of a code again: always after an
// add (advance), otherwise only when the current one is no longer eligible.
// It returns the code as stored afterwards.
func (s *Service) repick(ctx context.Context, tenantID, id int64, advance bool) (codeRow, error) {
	ws, err := s.tenant.Workspace(ctx, tenantID)
	if err != nil {
		return codeRow{}, err
	}
	var out codeRow
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.repickTx(ctx, tx, tenantID, id, advance, ws.Location())
		return err
	})
	return out, err
}

func (s *Service) repickTx(ctx context.Context, tx *sql.Tx, tenantID, id int64, advance bool, l *time.Location) (codeRow, error) {
	c, err := s.code(ctx, tx, tenantID, id, true)
	if err != nil || c.Status != StatusActive {
		return c, err
	}
	now := s.now()
	today, err := todayByUser(ctx, tx, tenantID, id, db.Millis(dayStart(now, l)))
	if err != nil {
		return c, err
	}
	local := now.In(l)
	if !advance && stillEligible(c.Config, local, today, first(c.WantUsers)) {
		return c, nil
	}
	who, rot := pick(c.Config, local, today, c.rotation)
	if who == "" {
		return c, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE acquire_codes SET rotation = $3, want_users = $4 WHERE tenant_id = $1 AND id = $2`,
		tenantID, id, mustJSON(rot), who); err != nil {
		return c, fmt.Errorf("acquire: unable to store the next staff member of code %d: %w", id, err)
	}
	c.rotation, c.WantUsers = rot, []string{who}
	return c, nil
}
