package staff

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// RelationStatus is where a staff member's relation with a customer stands.
type RelationStatus string

// Relation statuses. Only active and half relations are current: the customer
// is in the staff member's contacts.
const (
	RelationActive            RelationStatus = "active"              // 已添加
	RelationHalf              RelationStatus = "half"                // the customer added the staff member without verification; not yet added back
	RelationDeletedByStaff    RelationStatus = "deleted_by_staff"    // the staff member deleted the customer
	RelationDeletedByCustomer RelationStatus = "deleted_by_customer" // the customer deleted the staff member (流失)
	RelationTransferred       RelationStatus = "transferred"         // ended by a transfer to another staff member, not a loss
	RelationTransferFailed    RelationStatus = "transfer_failed"     // a transfer to this staff member failed; they never served the customer
)

// Current reports whether the customer is in the staff member's contacts.
func (s RelationStatus) Current() bool { return s == RelationActive || s == RelationHalf }

// rank orders statuses changed at the same instant (channel event times have
// one-second resolution), so that events applied in any order end in the same
// state: a deletion beats an add made in the same second, a full add beats a
// half one.
func (s RelationStatus) rank() int {
	switch s {
	case RelationHalf:
		return 1
	case RelationActive:
		return 2
	case RelationDeletedByCustomer:
		return 3
	case RelationDeletedByStaff:
		return 4
	case RelationTransferred:
		return 5
	}
	return 0
}

func (s RelationStatus) valid() bool { return s.rank() > 0 || s == RelationTransferFailed }

// Relation is one staff member's relation with one customer on a channel
// (客户归属): what the staff member recorded about the customer, how and when
// they were added, and how it ended.
type Relation struct {
	StaffID            int64          `json:"staff_id"`
	StaffName          string         `json:"staff_name"`
	StaffWeComUserID   string         `json:"staff_wecom_userid,omitempty"`
	CustomerID         int64          `json:"customer_id"`
	Channel            string         `json:"channel" doc:"wecom"`
	ExternalID         string         `json:"external_id" doc:"The customer's id on the channel (WeCom external_userid)."`
	Status             RelationStatus `json:"status" enum:"active,half,deleted_by_staff,deleted_by_customer,transferred,transfer_failed"`
	Remark             string         `json:"remark,omitempty" doc:"The staff member's name for the customer (备注)."`
	Description        string         `json:"description,omitempty"`
	RemarkCorpName     string         `json:"remark_corp_name,omitempty"`
	AddWay             int            `json:"add_way" doc:"How the customer was added (WeCom add_way: 1 QR code, 2 phone search, 3 card share, …)."`
	State              string         `json:"state,omitempty" doc:"The channel code's state that brought the customer."`
	WelcomeCode        string         `json:"-"`
	OperUserID         string         `json:"oper_userid,omitempty" doc:"Who initiated the add (the staff member or the customer)."`
	ChannelTagIDs      []string       `json:"channel_tag_ids" nullable:"false" doc:"Tags this staff member gave the customer on the channel (WeCom corp tag ids)."`
	AddedAt            time.Time      `json:"added_at,omitzero"`
	DeletedAt          time.Time      `json:"deleted_at,omitzero"`
	TransferFailReason string         `json:"transfer_fail_reason,omitempty" doc:"customer_refused or customer_limit_exceed when a transfer to this staff member failed."`
	TransferFailedAt   time.Time      `json:"transfer_failed_at,omitzero"`
	UpdatedAt          time.Time      `json:"updated_at"`
}

// RelationKey names one relation.
type RelationKey struct {
	StaffID    int64
	Channel    string
	ExternalID string
}

// RelationDetails is what the staff member recorded about the customer, as
// the channel reported it at At.
type RelationDetails struct {
	Remark         string
	Description    string
	RemarkCorpName string
	AddWay         int
	State          string
	OperUserID     string
	TagIDs         []string
	AddedAt        time.Time // the channel's own time of the add; zero: unknown
	At             time.Time // when the channel reported these details
}

// RelationChange is one change to a relation. Status changes are applied
// only when At is not older than the status already stored, and details only
// when their At is not older than the stored details: events may arrive in
// any order and in duplicate, and the relation converges all the same.
type RelationChange struct {
	RelationKey
	CustomerID int64
	// Status, when set, is the new status as of At.
	Status RelationStatus
	At     time.Time
	// State and WelcomeCode come with an add (channel code, welcome message).
	State       string
	WelcomeCode string
	// Details, when set, replace the recorded details.
	Details *RelationDetails
	// TransferFail, when set, records that a transfer to this staff member
	// failed at At, and why.
	TransferFail string
}

// RelationResult says what ApplyRelation did.
type RelationResult struct {
	Created       bool           // the relation did not exist before
	StatusChanged bool           // the status was applied (the change was not older than the stored one)
	Before        RelationStatus // the status before ("" when created)
	After         RelationStatus
}

// Channel names used in relations.
const ChannelWeCom = "wecom"

func relationTags(ids []string) string {
	if ids == nil {
		ids = []string{}
	}
	b, _ := json.Marshal(ids) // a []string always marshals
	return string(b)
}

// ApplyRelation applies one change to a staff member's relation with a
// customer inside tx, creating the relation on first sight. The customer id
// is updated to ch.CustomerID (a customer may have been merged since).
//
// Every field converges whatever order changes arrive in: the status is the
// one of the latest add or deletion (ties broken by rank), added_at and
// deleted_at are the latest add and deletion times, the channel code state
// is the latest one reported, and the details are the latest read.
func (s *Service) ApplyRelation(ctx context.Context, tx *sql.Tx, tenantID int64, ch RelationChange) (RelationResult, error) {
	if ch.StaffID == 0 || ch.CustomerID == 0 || ch.Channel == "" || ch.ExternalID == "" {
		return RelationResult{}, errs.E(errs.Invalid, "invalid_relation", "a relation needs a staff member, a customer, a channel and the customer's id on it")
	}
	if ch.Status != "" && !ch.Status.valid() {
		return RelationResult{}, errs.E(errs.Invalid, "invalid_relation_status", "unknown relation status %q", ch.Status)
	}
	now := db.Millis(s.now())
	at := db.Millis(ch.At)
	var (
		r       relationRow
		created bool
		res     RelationResult
	)
	err := tx.QueryRowContext(ctx, `SELECT status, status_at, detail_at, state_at, added_at, deleted_at, state, welcome_code, remark, description,
		remark_corp_name, oper_userid, channel_tag_ids, add_way, transfer_fail_reason, transfer_failed_at
		FROM staff_relations WHERE tenant_id = $1 AND staff_id = $2 AND channel = $3 AND external_id = $4`,
		tenantID, ch.StaffID, ch.Channel, ch.ExternalID).Scan(&r.status, &r.statusAt, &r.detailAt, &r.stateAt, &r.addedAt, &r.deletedAt,
		&r.state, &r.welcome, &r.remark, &r.desc, &r.corp, &r.oper, &r.tags, &r.addWay, &r.transferReason, &r.transferAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// A relation first seen through an edit or a sync is current; one
		// first seen through a failed transfer never was.
		created = true
		r.status, r.tags = string(RelationActive), "[]"
		if ch.TransferFail != "" && ch.Status == "" {
			r.status = string(RelationTransferFailed)
		}
	case err != nil:
		return RelationResult{}, fmt.Errorf("staff: unable to read relation: %w", err)
	}
	res.Created = created
	if !created {
		res.Before = RelationStatus(r.status)
	}
	if ch.Status != "" && ch.Status != RelationTransferFailed {
		old := RelationStatus(r.status)
		if created || at > r.statusAt || (at == r.statusAt && ch.Status.rank() >= old.rank()) {
			res.StatusChanged = true
			r.status, r.statusAt = string(ch.Status), at
		}
		if ch.Status.Current() {
			// The welcome code is the latest add's (it is valid for seconds).
			if at >= r.addedAt && ch.WelcomeCode != "" {
				r.welcome = ch.WelcomeCode
			}
			r.addedAt = max(r.addedAt, at)
			if at > r.stateAt || (at == r.stateAt && ch.State > r.state) {
				r.state, r.stateAt = ch.State, at
			}
		} else {
			r.deletedAt = max(r.deletedAt, at)
		}
	}
	if d := ch.Details; d != nil {
		dat := db.Millis(d.At)
		if created || dat >= r.detailAt {
			r.remark, r.desc, r.corp, r.oper, r.addWay = d.Remark, d.Description, d.RemarkCorpName, d.OperUserID, d.AddWay
			ids := slices.Clone(d.TagIDs)
			slices.Sort(ids)
			r.tags = relationTags(slices.Compact(ids))
			r.detailAt = dat
		}
		// The channel's own add time and state describe the relation as it
		// was when the details were read.
		if !d.AddedAt.IsZero() {
			r.addedAt = max(r.addedAt, db.Millis(d.AddedAt))
		}
		if dat > r.stateAt {
			r.state, r.stateAt = d.State, dat
		}
	}
	if ch.TransferFail != "" && at >= r.transferAt {
		r.transferReason, r.transferAt = ch.TransferFail, at
	}
	res.After = RelationStatus(r.status)
	args := []any{tenantID, ch.StaffID, ch.Channel, ch.ExternalID, ch.CustomerID, r.status, r.remark, r.desc, r.corp, r.addWay, r.state, r.welcome,
		r.oper, r.tags, r.addedAt, r.deletedAt, r.transferReason, r.transferAt, r.statusAt, r.detailAt, r.stateAt, now}
	if created {
		_, err = tx.ExecContext(ctx, `INSERT INTO staff_relations (tenant_id, staff_id, channel, external_id, customer_id, status, remark, description,
			remark_corp_name, add_way, state, welcome_code, oper_userid, channel_tag_ids, added_at, deleted_at, transfer_fail_reason, transfer_failed_at,
			status_at, detail_at, state_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $22)`, args...)
		if err != nil {
			return RelationResult{}, fmt.Errorf("staff: unable to create relation: %w", err)
		}
		return res, nil
	}
	_, err = tx.ExecContext(ctx, `UPDATE staff_relations SET customer_id = $5, status = $6, remark = $7, description = $8, remark_corp_name = $9,
		add_way = $10, state = $11, welcome_code = $12, oper_userid = $13, channel_tag_ids = $14, added_at = $15, deleted_at = $16,
		transfer_fail_reason = $17, transfer_failed_at = $18, status_at = $19, detail_at = $20, state_at = $21, updated_at = $22
		WHERE tenant_id = $1 AND staff_id = $2 AND channel = $3 AND external_id = $4`, args...)
	if err != nil {
		return RelationResult{}, fmt.Errorf("staff: unable to update relation: %w", err)
	}
	return res, nil
}

// relationRow is the stored state ApplyRelation works on.
type relationRow struct {
	status                                   string
	statusAt, detailAt, stateAt              int64
	addedAt, deletedAt                       int64
	state, welcome, remark, desc, corp, oper string
	tags                                     string
	addWay                                   int
	transferReason                           string
	transferAt                               int64
}

const relationCols = `r.staff_id, s.name, coalesce(s.wecom_userid, ''), r.customer_id, r.channel, r.external_id, r.status, r.remark, r.description,
	r.remark_corp_name, r.add_way, r.state, r.welcome_code, r.oper_userid, r.channel_tag_ids, r.added_at, r.deleted_at,
	r.transfer_fail_reason, r.transfer_failed_at, r.updated_at`

const relationFrom = ` FROM staff_relations r JOIN staff s ON s.tenant_id = r.tenant_id AND s.id = r.staff_id WHERE r.tenant_id = $1`

func scanRelation(row interface{ Scan(...any) error }) (Relation, error) {
	var r Relation
	var status, tags string
	var added, deleted, failed, updated int64
	err := row.Scan(&r.StaffID, &r.StaffName, &r.StaffWeComUserID, &r.CustomerID, &r.Channel, &r.ExternalID, &status, &r.Remark, &r.Description,
		&r.RemarkCorpName, &r.AddWay, &r.State, &r.WelcomeCode, &r.OperUserID, &tags, &added, &deleted, &r.TransferFailReason, &failed, &updated)
	if err != nil {
		return r, err
	}
	r.Status = RelationStatus(status)
	if err := json.Unmarshal([]byte(tags), &r.ChannelTagIDs); err != nil || r.ChannelTagIDs == nil {
		r.ChannelTagIDs = []string{}
	}
	if r.Status.Current() {
		deleted = 0 // an earlier deletion, undone by a new add
	}
	r.AddedAt, r.DeletedAt, r.TransferFailedAt, r.UpdatedAt = db.FromMillis(added), db.FromMillis(deleted), db.FromMillis(failed), db.FromMillis(updated)
	return r, nil
}

func (s *Service) relations(ctx context.Context, q db.Querier, where string, args ...any) ([]Relation, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+relationCols+relationFrom+where, args...)
	if err != nil {
		return nil, fmt.Errorf("staff: unable to list relations: %w", err)
	}
	defer rows.Close()
	out := []Relation{}
	for rows.Next() {
		r, err := scanRelation(rows)
		if err != nil {
			return nil, fmt.Errorf("staff: unable to read relation: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("staff: unable to list relations: %w", err)
	}
	return out, nil
}

// Relation returns one relation, read inside q (a transaction or the
// database).
func (s *Service) Relation(ctx context.Context, q db.Querier, tenantID int64, k RelationKey) (Relation, error) {
	rs, err := s.relations(ctx, q, ` AND r.staff_id = $2 AND r.channel = $3 AND r.external_id = $4`, tenantID, k.StaffID, k.Channel, k.ExternalID)
	if err != nil {
		return Relation{}, err
	}
	if len(rs) == 0 {
		return Relation{}, errs.NotFoundf("relation", "no such staff relation")
	}
	return rs[0], nil
}

// CustomerRelations lists the staff relations of a customer, current ones
// first, then by when they were added.
func (s *Service) CustomerRelations(ctx context.Context, tenantID, customerID int64) ([]Relation, error) {
	return s.customerRelations(ctx, s.db, tenantID, customerID)
}

// CustomerRelationsTx is CustomerRelations inside a transaction.
func (s *Service) CustomerRelationsTx(ctx context.Context, tx *sql.Tx, tenantID, customerID int64) ([]Relation, error) {
	return s.customerRelations(ctx, tx, tenantID, customerID)
}

func (s *Service) customerRelations(ctx context.Context, q db.Querier, tenantID, customerID int64) ([]Relation, error) {
	rs, err := s.relations(ctx, q, ` AND r.customer_id = $2`, tenantID, customerID)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(rs, func(a, b Relation) int {
		if a.Status.Current() != b.Status.Current() {
			if a.Status.Current() {
				return -1
			}
			return 1
		}
		if c := a.AddedAt.Compare(b.AddedAt); c != 0 {
			return c
		}
		return int(a.StaffID - b.StaffID)
	})
	return rs, nil
}

// CustomerCounts returns how many customers each staff member currently
// serves (active or half relations), by staff id.
func (s *Service) CustomerCounts(ctx context.Context, tenantID int64) (map[int64]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT staff_id, count(DISTINCT customer_id) FROM staff_relations
		WHERE tenant_id = $1 AND status IN ($2, $3) GROUP BY staff_id`, tenantID, string(RelationActive), string(RelationHalf))
	if err != nil {
		return nil, fmt.Errorf("staff: unable to count customers per staff member: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("staff: unable to count customers per staff member: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}

// MoveCustomer moves relations from a merged customer to the survivor; it is
// the customer service's merge hook for staff relations.
func (s *Service) MoveCustomer(ctx context.Context, tx *sql.Tx, tenantID, fromID, toID int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE staff_relations SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2`, tenantID, fromID, toID); err != nil {
		return fmt.Errorf("staff: unable to move relations of customer %d to %d: %w", fromID, toID, err)
	}
	return nil
}

// WeComMember is a staff member as WeCom's directory describes them.
type WeComMember struct {
	UserID string
	Name   string // "" keeps the stored name (a new member is named by UserID)
	Title  string
	// Status is Active, or Resigned when the member was deleted from the
	// directory (离职: their customers await inheritance); "" keeps the
	// stored status.
	Status Status
	At     time.Time // when the directory changed; older changes are ignored
}

// memberByWeCom returns the staff id and change time of a WeCom user id.
func memberByWeCom(ctx context.Context, q db.Querier, tenantID int64, userID string) (id, changed int64, err error) {
	err = q.QueryRowContext(ctx, `SELECT id, wecom_changed_at FROM staff WHERE tenant_id = $1 AND wecom_userid = $2`, tenantID, userID).Scan(&id, &changed)
	return id, changed, err
}

// EnsureWeComMember returns the staff member with a WeCom user id inside tx,
// creating one named by the user id when the directory has not been read yet
// (a contact event can name a staff member before the directory sync does).
func (s *Service) EnsureWeComMember(ctx context.Context, tx *sql.Tx, tenantID int64, userID string) (int64, error) {
	userID = strings.TrimSpace(userID)
	if userID == "" {
		return 0, errs.E(errs.Invalid, "missing_wecom_userid", "the WeCom user id of the staff member is missing")
	}
	id, _, err := memberByWeCom(ctx, tx, tenantID, userID)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("staff: unable to look up WeCom user %q: %w", userID, err)
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO staff (tenant_id, name, wecom_userid, status, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		tenantID, userID, userID, string(Active), db.Millis(s.now())).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("staff: unable to create staff member for WeCom user %q: %w", userID, err)
	}
	return id, nil
}

// ApplyWeComMember creates or updates the staff member with m.UserID inside
// tx, unless a newer directory change was applied already. It returns the
// staff id.
func (s *Service) ApplyWeComMember(ctx context.Context, tx *sql.Tx, tenantID int64, m WeComMember) (int64, error) {
	id, err := s.EnsureWeComMember(ctx, tx, tenantID, m.UserID)
	if err != nil {
		return 0, err
	}
	_, changed, err := memberByWeCom(ctx, tx, tenantID, m.UserID)
	if err != nil {
		return 0, fmt.Errorf("staff: unable to look up WeCom user %q: %w", m.UserID, err)
	}
	at := db.Millis(m.At)
	// WeCom's event times are whole seconds, a sync's reads are not: a
	// change in the same second as a read happened after it (the read would
	// have shown it otherwise), so seconds decide.
	if at/1000 < changed/1000 {
		return id, nil
	}
	name := strings.TrimSpace(m.Name)
	if len([]rune(name)) > 64 {
		name = string([]rune(name)[:64])
	}
	_, err = tx.ExecContext(ctx, `UPDATE staff SET name = CASE WHEN $3 = '' THEN name ELSE $3 END, title = CASE WHEN $4 = '' THEN title ELSE $4 END,
		wecom_changed_at = $5 WHERE tenant_id = $1 AND id = $2`, tenantID, id, name, m.Title, at)
	if err != nil {
		return 0, fmt.Errorf("staff: unable to update WeCom user %q: %w", m.UserID, err)
	}
	switch m.Status {
	case Active:
		_, err = tx.ExecContext(ctx, `UPDATE staff SET status = $3, resigned_at = NULL WHERE tenant_id = $1 AND id = $2`, tenantID, id, string(Active))
	case Resigned:
		_, err = tx.ExecContext(ctx, `UPDATE staff SET status = $3, resigned_at = coalesce(resigned_at, $4) WHERE tenant_id = $1 AND id = $2`,
			tenantID, id, string(Resigned), at)
	}
	if err != nil {
		return 0, fmt.Errorf("staff: unable to update WeCom user %q: %w", m.UserID, err)
	}
	return id, nil
}

// RenameWeComMember changes a staff member's WeCom user id (WeCom allows one
// change of a user id) inside tx. When the new id already has a staff member,
// the old one is left as it is.
func (s *Service) RenameWeComMember(ctx context.Context, tx *sql.Tx, tenantID int64, oldID, newID string) error {
	if oldID == "" || newID == "" || oldID == newID {
		return nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM staff WHERE tenant_id = $1 AND wecom_userid = $2`, tenantID, newID).Scan(&n); err != nil {
		return fmt.Errorf("staff: unable to look up WeCom user %q: %w", newID, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE staff SET wecom_userid = $3 WHERE tenant_id = $1 AND wecom_userid = $2`, tenantID, oldID, newID); err != nil {
		return fmt.Errorf("staff: unable to rename WeCom user %q: %w", oldID, err)
	}
	return nil
}

// MemberByWeComUserID returns the staff member with a WeCom user id.
func (s *Service) MemberByWeComUserID(ctx context.Context, tenantID int64, userID string) (Member, error) {
	m, err := scanMember(s.db.QueryRowContext(ctx, `SELECT `+memberCols+` FROM staff WHERE tenant_id = $1 AND wecom_userid = $2`, tenantID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return Member{}, errs.NotFoundf("staff", "no staff member has WeCom user id %q", userID)
	}
	if err != nil {
		return Member{}, fmt.Errorf("staff: unable to fetch staff member: %w", err)
	}
	return m, nil
}

// NamesByWeComUserID maps WeCom user ids to staff names (ids without a staff
// member are left out), for timelines and logs.
func (s *Service) NamesByWeComUserID(ctx context.Context, tenantID int64, userIDs []string) (map[string]string, error) {
	out := map[string]string{}
	ids := slices.Compact(slices.Sorted(slices.Values(userIDs)))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := []any{tenantID}
		ph := make([]string, 0, len(chunk))
		for _, id := range chunk {
			args = append(args, id)
			ph = append(ph, fmt.Sprintf("$%d", len(args)))
		}
		rows, err := s.db.QueryContext(ctx, `SELECT wecom_userid, name FROM staff WHERE tenant_id = $1 AND wecom_userid IN (`+strings.Join(ph, ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("staff: unable to read staff names: %w", err)
		}
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, fmt.Errorf("staff: unable to read staff names: %w", err)
			}
			out[id] = name
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("staff: unable to read staff names: %w", err)
		}
	}
	return out, nil
}
