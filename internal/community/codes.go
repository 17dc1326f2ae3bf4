package community

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// GroupCode is a group code (群活码): a QR code in WeCom (加入群聊,
// add_join_way scene 2) that brings customers into up to five groups and,
// with AutoCreateRoom, opens a new group when the last one fills. ChatIDs
// follows WeCom's list as it grows.
type GroupCode struct {
	ID             int64     `json:"id"`
	Name           string    `json:"name"`
	ConfigID       string    `json:"config_id"`
	QRCode         string    `json:"qr_code" doc:"URL of the QR image WeCom serves."`
	Remark         string    `json:"remark,omitempty"`
	State          string    `json:"state,omitempty" doc:"Up to 30 characters; tells which code brought a customer."`
	AutoCreateRoom bool      `json:"auto_create_room"`
	RoomBaseName   string    `json:"room_base_name,omitempty"`
	RoomBaseID     int64     `json:"room_base_id,omitempty"`
	ChatIDs        []string  `json:"chat_ids"`
	Status         string    `json:"status" enum:"pending,active,deleted"`
	SyncedAt       time.Time `json:"synced_at,omitzero" doc:"When the group list was last read from WeCom."`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// GroupCodeInput creates or changes a group code.
type GroupCodeInput struct {
	Name           string   `json:"name" minLength:"1" maxLength:"60"`
	Remark         string   `json:"remark,omitempty" maxLength:"30"`
	State          string   `json:"state,omitempty" doc:"Up to 30 characters."`
	ChatIDs        []string `json:"chat_ids" doc:"1 to 5 groups, in the order customers fill them."`
	AutoCreateRoom bool     `json:"auto_create_room,omitempty" doc:"Open a new group when the last one fills."`
	RoomBaseName   string   `json:"room_base_name,omitempty" doc:"Name of new groups, followed by a number; required with auto_create_room."`
	RoomBaseID     int64    `json:"room_base_id,omitempty" doc:"Number of the first new group (default 1)."`
	// IdempotencyKey makes a retried create return the first one's code.
	IdempotencyKey string `json:"idempotency_key,omitempty" maxLength:"100"`
}

func (s *Service) cleanCode(ctx context.Context, tenantID int64, in GroupCodeInput) (GroupCodeInput, error) {
	var err error
	if in.Name, err = cleanText("name", in.Name, 1, 60); err != nil {
		return in, err
	}
	if in.Remark, err = cleanText("remark", in.Remark, 0, wecom.MaxJoinWayRemark); err != nil {
		return in, err
	}
	in.State = strings.TrimSpace(in.State)
	if n := utf8.RuneCountInString(in.State); n > wecom.MaxJoinWayState {
		return in, errs.Field("state", "state_too_long", "the state is at most %d characters (WeCom's limit), not %d", wecom.MaxJoinWayState, n)
	}
	var chats []string
	for _, c := range in.ChatIDs {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(chats, c) {
			chats = append(chats, c)
		}
	}
	switch {
	case len(chats) == 0:
		return in, errs.Field("chat_ids", "chat_ids_required", "choose at least one group for the code")
	case len(chats) > wecom.MaxJoinWayChats:
		return in, errs.Field("chat_ids", "too_many_chats", "a group code takes at most %d groups (WeCom's limit), not %d", wecom.MaxJoinWayChats, len(chats))
	}
	live, err := s.activeChats(ctx, tenantID, chats)
	if err != nil {
		return in, err
	}
	for _, c := range chats {
		active, known := live[c]
		if !known {
			return in, errs.Field("chat_ids", "unknown_group", "there is no customer group %q in this workspace (sync WeCom if it is new)", c)
		}
		if !active {
			return in, errs.Field("chat_ids", "group_dismissed", "the customer group %q was dismissed", c)
		}
	}
	in.ChatIDs = chats
	if in.AutoCreateRoom {
		if in.RoomBaseName, err = cleanText("room_base_name", in.RoomBaseName, 1, wecom.MaxRoomBaseName); err != nil {
			return in, err
		}
		if in.RoomBaseID == 0 {
			in.RoomBaseID = 1
		}
		if in.RoomBaseID < 0 || in.RoomBaseID > 1_000_000 {
			return in, errs.Field("room_base_id", "invalid_room_base_id", "the first number of new groups is 1–1000000")
		}
	} else {
		in.RoomBaseName, in.RoomBaseID = "", 0
	}
	if len(in.IdempotencyKey) > 100 {
		return in, errs.Field("idempotency_key", "too_long", "the idempotency key is at most 100 characters")
	}
	return in, nil
}

func (in GroupCodeInput) joinWay() wecom.JoinWay {
	w := wecom.JoinWay{Scene: 2, Remark: in.Remark, State: in.State, ChatIDs: in.ChatIDs}
	if in.AutoCreateRoom {
		w.AutoCreateRoom, w.RoomBaseName, w.RoomBaseID = 1, in.RoomBaseName, int(in.RoomBaseID)
	}
	return w
}

const codeCols = `id, name, config_id, qr_code, remark, state, auto_create_room, room_base_name, room_base_id, chat_ids, status, synced_at, created_at, updated_at`

func scanCode(sc interface{ Scan(...any) error }) (GroupCode, error) {
	var c GroupCode
	var auto int
	var chats string
	var synced, created, updated int64
	if err := sc.Scan(&c.ID, &c.Name, &c.ConfigID, &c.QRCode, &c.Remark, &c.State, &auto, &c.RoomBaseName, &c.RoomBaseID, &chats, &c.Status,
		&synced, &created, &updated); err != nil {
		return GroupCode{}, err
	}
	c.AutoCreateRoom = auto == 1
	if err := json.Unmarshal([]byte(chats), &c.ChatIDs); err != nil || c.ChatIDs == nil {
		c.ChatIDs = []string{}
	}
	c.SyncedAt, c.CreatedAt, c.UpdatedAt = db.FromMillis(synced), db.FromMillis(created), db.FromMillis(updated)
	return c, nil
}

// GroupCode returns a group code.
func (s *Service) GroupCode(ctx context.Context, tenantID, id int64) (GroupCode, error) {
	c, err := scanCode(s.db.QueryRowContext(ctx, `SELECT `+codeCols+` FROM community_group_codes WHERE tenant_id = $1 AND id = $2 AND status <> 'deleted'`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return GroupCode{}, errs.E(errs.NotFound, "group_code_not_found", "group code %d does not exist in this workspace", id)
	}
	if err != nil {
		return GroupCode{}, fmt.Errorf("community: unable to read group code %d: %w", id, err)
	}
	return c, nil
}

// GroupCodes lists the workspace's group codes, newest first.
func (s *Service) GroupCodes(ctx context.Context, tenantID int64, r page.Request) (page.Page[GroupCode], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[GroupCode]{}, err
	}
	q := `SELECT ` + codeCols + ` FROM community_group_codes WHERE tenant_id = $1 AND status <> 'deleted'`
	args := []any{tenantID}
	if ok {
		q += ` AND id < $2`
		args = append(args, after)
	}
	rows, err := s.db.QueryContext(ctx, q+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1), args...)
	if err != nil {
		return page.Page[GroupCode]{}, fmt.Errorf("community: unable to list group codes: %w", err)
	}
	defer rows.Close()
	var out []GroupCode
	for rows.Next() {
		c, err := scanCode(rows)
		if err != nil {
			return page.Page[GroupCode]{}, fmt.Errorf("community: unable to read a group code: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return page.Page[GroupCode]{}, err
	}
	return page.Trim(out, r, func(c GroupCode) string { return page.ByID(c.ID) }), nil
}

func chatsJSON(ids []string) string {
	if ids == nil {
		ids = []string{}
	}
	b, _ := json.Marshal(ids)
	return string(b)
}

// CreateGroupCode creates a group code in WeCom and stores it. The request
// is recorded first (pending) so that a retry with the same idempotency key
// finishes it instead of creating a second code.
func (s *Service) CreateGroupCode(ctx context.Context, p tenant.Principal, in GroupCodeInput) (GroupCode, error) {
	in, err := s.cleanCode(ctx, p.TenantID, in)
	if err != nil {
		return GroupCode{}, err
	}
	var id int64
	if in.IdempotencyKey != "" {
		var status string
		err := s.db.QueryRowContext(ctx, `SELECT id, status FROM community_group_codes WHERE tenant_id = $1 AND idem_key = $2`, p.TenantID, in.IdempotencyKey).
			Scan(&id, &status)
		switch {
		case err == nil && status != "pending":
			return s.GroupCode(ctx, p.TenantID, id)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return GroupCode{}, fmt.Errorf("community: unable to look up the idempotency key: %w", err)
		}
	}
	c, err := s.client(ctx, p.TenantID)
	if err != nil {
		return GroupCode{}, err
	}
	now := db.Millis(s.now())
	auto := 0
	if in.AutoCreateRoom {
		auto = 1
	}
	if id == 0 {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			err := tx.QueryRowContext(ctx, `INSERT INTO community_group_codes (tenant_id, name, remark, state, auto_create_room, room_base_name, room_base_id,
				chat_ids, status, idem_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $10) RETURNING id`,
				p.TenantID, in.Name, in.Remark, in.State, auto, in.RoomBaseName, in.RoomBaseID, chatsJSON(in.ChatIDs), in.IdempotencyKey, now).Scan(&id)
			if db.IsUniqueViolation(err) {
				return errs.E(errs.Conflict, "request_in_progress", "a request with this idempotency key is in progress; retry in a moment")
			}
			if err != nil {
				return fmt.Errorf("community: unable to record group code: %w", err)
			}
			return s.auditTx(ctx, tx, p, "community.group_code.create", "group_code", id, in.Name)
		})
		if err != nil {
			return GroupCode{}, err
		}
	}
	configID, err := c.AddJoinWay(ctx, in.joinWay())
	if err != nil {
		return GroupCode{}, fmt.Errorf("community: unable to create the group code in WeCom: %w", err)
	}
	w, err := c.GetJoinWay(ctx, configID)
	if err != nil {
		return GroupCode{}, fmt.Errorf("community: unable to read the new group code from WeCom: %w", err)
	}
	if w.ChatIDs == nil {
		w.ChatIDs = in.ChatIDs
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE community_group_codes SET config_id = $3, qr_code = $4, chat_ids = $5, status = 'active', synced_at = $6, updated_at = $6
		WHERE tenant_id = $1 AND id = $2`, p.TenantID, id, configID, w.QRCode, chatsJSON(w.ChatIDs), db.Millis(s.now())); err != nil {
		return GroupCode{}, fmt.Errorf("community: unable to store group code %s: %w", configID, err)
	}
	return s.GroupCode(ctx, p.TenantID, id)
}

// UpdateGroupCode changes a group code in WeCom and in Siyu; the QR code stays.
func (s *Service) UpdateGroupCode(ctx context.Context, p tenant.Principal, id int64, in GroupCodeInput) (GroupCode, error) {
	cur, err := s.GroupCode(ctx, p.TenantID, id)
	if err != nil {
		return GroupCode{}, err
	}
	if cur.Status != "active" {
		return GroupCode{}, errs.E(errs.Conflict, "group_code_pending", "the group code is still being created; retry its creation first")
	}
	if in, err = s.cleanCode(ctx, p.TenantID, in); err != nil {
		return GroupCode{}, err
	}
	c, err := s.client(ctx, p.TenantID)
	if err != nil {
		return GroupCode{}, err
	}
	w := in.joinWay()
	w.ConfigID = cur.ConfigID
	if err := c.UpdateJoinWay(ctx, w); err != nil {
		return GroupCode{}, fmt.Errorf("community: unable to change the group code in WeCom: %w", err)
	}
	auto := 0
	if in.AutoCreateRoom {
		auto = 1
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE community_group_codes SET name = $3, remark = $4, state = $5, auto_create_room = $6, room_base_name = $7,
			room_base_id = $8, chat_ids = $9, updated_at = $10 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, in.Name, in.Remark, in.State, auto, in.RoomBaseName, in.RoomBaseID, chatsJSON(in.ChatIDs), db.Millis(s.now())); err != nil {
			return fmt.Errorf("community: unable to update group code %d: %w", id, err)
		}
		return s.auditTx(ctx, tx, p, "community.group_code.update", "group_code", id, in.Name)
	})
	if err != nil {
		return GroupCode{}, err
	}
	return s.GroupCode(ctx, p.TenantID, id)
}

// DeleteGroupCode deletes a group code in WeCom (one already gone there is
// fine) and in Siyu.
func (s *Service) DeleteGroupCode(ctx context.Context, p tenant.Principal, id int64) error {
	cur, err := s.GroupCode(ctx, p.TenantID, id)
	if err != nil {
		return err
	}
	if cur.ConfigID != "" {
		c, err := s.client(ctx, p.TenantID)
		if err != nil {
			return err
		}
		if err := c.DelJoinWay(ctx, cur.ConfigID); err != nil && !wecom.IsCode(err, wecom.CodeInvalidJoinWay) {
			return fmt.Errorf("community: unable to delete the group code in WeCom: %w", err)
		}
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		now := db.Millis(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE community_group_codes SET status = 'deleted', deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, now); err != nil {
			return fmt.Errorf("community: unable to delete group code %d: %w", id, err)
		}
		return s.auditTx(ctx, tx, p, "community.group_code.delete", "group_code", id, cur.Name)
	})
}

// RefreshGroupCode reads a code's groups from WeCom: when WeCom opened a new
// group for it, the code's list follows.
func (s *Service) RefreshGroupCode(ctx context.Context, tenantID, id int64) (GroupCode, error) {
	cur, err := s.GroupCode(ctx, tenantID, id)
	if err != nil {
		return GroupCode{}, err
	}
	if cur.ConfigID == "" {
		return cur, nil
	}
	c, err := s.client(ctx, tenantID)
	if err != nil {
		return GroupCode{}, err
	}
	w, err := c.GetJoinWay(ctx, cur.ConfigID)
	if err != nil {
		return GroupCode{}, fmt.Errorf("community: unable to read group code %s from WeCom: %w", cur.ConfigID, err)
	}
	qr := w.QRCode
	if qr == "" {
		qr = cur.QRCode
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE community_group_codes SET chat_ids = $3, qr_code = $4, synced_at = $5 WHERE tenant_id = $1 AND id = $2`,
		tenantID, id, chatsJSON(w.ChatIDs), qr, db.Millis(s.now())); err != nil {
		return GroupCode{}, fmt.Errorf("community: unable to update group code %d: %w", id, err)
	}
	return s.GroupCode(ctx, tenantID, id)
}

// JoinWayQR returns the QR image URL of a group code, for channel codes that
// invite new customers into groups.
func (s *Service) JoinWayQR(ctx context.Context, tenantID, groupCodeID int64) (string, error) {
	c, err := s.GroupCode(ctx, tenantID, groupCodeID)
	if err != nil {
		return "", err
	}
	if c.QRCode == "" {
		return "", errs.E(errs.Conflict, "group_code_pending", "group code %d has no QR code yet: its creation in WeCom did not finish", groupCodeID)
	}
	return c.QRCode, nil
}

// observe follows WeCom's callbacks: when a group is created, the codes that
// open groups by themselves are read again, so a new group WeCom opened for a
// full code shows in its list. Re-reading is idempotent.
func (s *Service) observe(ctx context.Context, p wecom.Processed) error {
	if p.Event.Kind() != wecom.KindChatCreate {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM community_group_codes WHERE tenant_id = $1 AND status = 'active' AND auto_create_room = 1 AND config_id <> ''`,
		p.TenantID)
	if err != nil {
		return fmt.Errorf("community: unable to list group codes: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := s.RefreshGroupCode(ctx, p.TenantID, id); err != nil {
			// WeCom refusing for good (the code deleted there, no permission)
			// must not hold the callback; busy and rate limits retry it.
			if c := wecom.ErrorCode(err); c != 0 && c != wecom.CodeBusy && c != wecom.CodeRateLimited && c != wecom.CodeConcurrencyLimited {
				s.log.Warn("community: unable to read a group code from WeCom", "tenant", p.TenantID, "group_code", id, "err", err)
				continue
			}
			return err
		}
	}
	return nil
}
