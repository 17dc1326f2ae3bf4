// Package handover: staff handover (在职转接 / 离职继承): moving customers and groups from one staff member to another through WeCom, with the 2-transfers-in-90-days rule checked first and results followed until final.
//
// A handover is a durable job with one item per customer and per group. The
// request is checked and explained item by item before anything is sent;
// a worker then sends the pending items to WeCom in chunks of at most 100
// and polls the transfer results until every item is final. An item is
// marked "sending" (committed) before its call, so after a crash or an
// outage the worker asks WeCom what happened instead of sending it again.
package handover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Kind of a handover: decided by the staff member handing over.
type Kind string

// Kinds of handover.
const (
	OnJob    Kind = "onjob"    // 在职转接: the staff member is still with the brand
	Resigned Kind = "resigned" // 离职继承: the staff member left; their customers wait for inheritance
)

// Handover statuses.
const (
	JobRunning = "running"
	JobDone    = "done"
)

// ItemState is where one customer's or group's transfer stands.
type ItemState string

// Transfer states. Done, refused, failed and skipped are final.
const (
	ItemPending ItemState = "pending" // to send
	ItemSending ItemState = "sending" // sent, answer not recorded: WeCom is asked before anything is sent again
	ItemWaiting ItemState = "waiting" // WeCom accepted; the customer has 24 hours to refuse
	ItemDone    ItemState = "done"
	ItemRefused ItemState = "refused" // the customer refused
	ItemFailed  ItemState = "failed"
	ItemSkipped ItemState = "skipped" // not sent: a check said no
)

// Final reports whether nothing more will happen to the item.
func (s ItemState) Final() bool {
	return s == ItemDone || s == ItemRefused || s == ItemFailed || s == ItemSkipped
}

// Transfer kinds.
const (
	ItemCustomer = "customer"
	ItemGroup    = "group"
)

// The 2-transfers-in-90-days rule of WeCom for on-job transfers.
const (
	RuleWindow   = 90 * 24 * time.Hour
	RuleMax      = 2
	maxChunk     = wecom.MaxTransferPerCall
	maxMsgRunes  = wecom.MaxTransferMsgRunes
	maxKeyLength = 128
)

// Reason codes of items that were skipped, refused or failed.
const (
	ReasonNotTheirs      = "not_their_customer"
	ReasonNotTheirGroup  = "not_their_group"
	ReasonTakeoverServes = "takeover_serves_customer"
	ReasonInProgress     = "transfer_in_progress"
	ReasonRule90d        = "transfer_limit_90d"
	ReasonRefused        = "customer_refused"
	ReasonLimit          = "customer_limit_exceed"
	ReasonNoRecord       = "no_transfer_record"
)

// Auditor records operator actions (the tenant service).
type Auditor interface {
	Audit(ctx context.Context, q db.Querier, p tenant.Principal, action, targetKind, targetID, detail string) error
}

// Options configure a Service; zero values mean the defaults.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// PollInterval is how often transfer results are read while customers
	// decide (WeCom gives them 24 hours); default 10 minutes.
	PollInterval time.Duration
	// RetryInterval is the pause after WeCom failed; default 1 minute.
	RetryInterval time.Duration
}

// Service is the handover domain.
type Service struct {
	db    *db.DB
	staff *staff.Service
	wecom *wecom.Service
	audit Auditor
	log   *slog.Logger
	now   func() time.Time
	o     Options
	wake  chan struct{}
}

// NewService returns the handover service and registers its observer of
// WeCom events (transfer_fail, completed transfers).
func NewService(d *db.DB, st *staff.Service, wc *wecom.Service, audit Auditor, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 10 * time.Minute
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Minute
	}
	s := &Service{db: d, staff: st, wecom: wc, audit: audit, log: o.Logger, now: o.Now, o: o, wake: make(chan struct{}, 1)}
	wc.Observe("handover", s.observe)
	return s
}

// nudge wakes the worker.
func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Holder is a staff member with what they could hand over.
type Holder struct {
	ID          int64        `json:"id"`
	Name        string       `json:"name"`
	WeComUserID string       `json:"wecom_userid"`
	Status      staff.Status `json:"status" enum:"active,resigned"`
	Kind        Kind         `json:"handover_kind" enum:"onjob,resigned" doc:"How their customers move: on-job transfer or resigned inheritance."`
	Customers   int64        `json:"customers" doc:"Customers they serve now (current WeCom relations)."`
	Groups      int64        `json:"groups" doc:"Customer groups they own."`
}

func kindOf(st staff.Status) Kind {
	if st == staff.Resigned {
		return Resigned
	}
	return OnJob
}

// StaffList lists the staff with a WeCom account, with how many customers
// and groups each has: resigned staff first (their customers wait), then by
// id descending. onlyWithCustomers leaves out those with nothing to move.
func (s *Service) StaffList(ctx context.Context, tenantID int64, onlyWithCustomers bool, r page.Request) (page.Page[Holder], error) {
	var (
		afterRank int
		afterID   int64
	)
	if r.Cursor != "" {
		if err := page.Decode(r.Cursor, &afterRank, &afterID); err != nil {
			return page.Page[Holder]{}, err
		}
	}
	q := `SELECT id, name, wecom_userid, status, rank, customers, groups FROM (
		SELECT s.id, s.name, s.wecom_userid, s.status, CASE WHEN s.status = 'resigned' THEN 0 ELSE 1 END AS rank,
			(SELECT count(DISTINCT r.customer_id) FROM staff_relations r WHERE r.tenant_id = s.tenant_id AND r.staff_id = s.id
				AND r.channel = 'wecom' AND r.status IN ('active', 'half')) AS customers,
			(SELECT count(*) FROM wecom_groups g WHERE g.tenant_id = s.tenant_id AND g.owner_userid = s.wecom_userid AND g.status = 'active') AS groups
		FROM staff s WHERE s.tenant_id = $1 AND s.wecom_userid IS NOT NULL) x WHERE 1 = 1`
	args := []any{tenantID}
	if onlyWithCustomers {
		q += ` AND (customers > 0 OR groups > 0)`
	}
	if r.Cursor != "" {
		q += ` AND (rank > $2 OR (rank = $2 AND id < $3))`
		args = append(args, afterRank, afterID)
	}
	q += fmt.Sprintf(` ORDER BY rank, id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[Holder]{}, fmt.Errorf("handover: unable to list staff: %w", err)
	}
	defer rows.Close()
	var out []Holder
	var ranks []int
	for rows.Next() {
		var m Holder
		var status string
		var rank int
		if err := rows.Scan(&m.ID, &m.Name, &m.WeComUserID, &status, &rank, &m.Customers, &m.Groups); err != nil {
			return page.Page[Holder]{}, fmt.Errorf("handover: unable to read staff: %w", err)
		}
		m.Status = staff.Status(status)
		m.Kind = kindOf(m.Status)
		out = append(out, m)
		ranks = append(ranks, rank)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Holder]{}, fmt.Errorf("handover: unable to list staff: %w", err)
	}
	rankOf := map[int64]int{}
	for i, m := range out {
		rankOf[m.ID] = ranks[i]
	}
	return page.Trim(out, r, func(m Holder) string { return page.Encode(rankOf[m.ID], m.ID) }), nil
}

// member is a staff member as a handover needs them.
type member struct {
	staff.Member
}

func (s *Service) member(ctx context.Context, tenantID, id int64, field string) (member, error) {
	if id == 0 {
		return member{}, errs.Field(field, "required", "choose a staff member")
	}
	m, err := s.staff.Member(ctx, tenantID, id)
	if errs.KindOf(err) == errs.NotFound {
		return member{}, errs.Field(field, "unknown_staff", "there is no staff member %d", id)
	}
	if err != nil {
		return member{}, err
	}
	if m.WeComUserID == "" {
		return member{}, errs.Field(field, "no_wecom_account", "%s has no WeCom account", m.Name)
	}
	return member{m}, nil
}

// HeldCustomer is one customer of a staff member, with the 90-day rule's
// view of them.
type HeldCustomer struct {
	CustomerID     int64     `json:"customer_id"`
	ExternalUserID string    `json:"external_userid"`
	Name           string    `json:"name"`
	Remark         string    `json:"remark,omitempty"`
	AddedAt        time.Time `json:"added_at,omitzero"`
	Transfers90d   int       `json:"transfers_90d" doc:"On-job transfers of this customer in the last 90 days (WeCom allows 2)."`
	NextAllowedAt  time.Time `json:"next_allowed_at,omitzero" doc:"When an on-job transfer is allowed again, when it is not now."`
}

// Customers lists the customers a staff member serves now (Siyu's current
// WeCom relations), by customer id.
func (s *Service) Customers(ctx context.Context, tenantID, staffID int64, r page.Request) (page.Page[HeldCustomer], error) {
	var (
		after    int64
		afterExt string
	)
	if r.Cursor != "" {
		if err := page.Decode(r.Cursor, &after, &afterExt); err != nil {
			return page.Page[HeldCustomer]{}, err
		}
	}
	// Keyset on (customer, external id): a merged customer may have two.
	rows, err := s.db.QueryContext(ctx, `SELECT r.customer_id, r.external_id, coalesce(c.name, ''), r.remark, r.added_at
		FROM staff_relations r LEFT JOIN customers c ON c.tenant_id = r.tenant_id AND c.id = r.customer_id
		WHERE r.tenant_id = $1 AND r.staff_id = $2 AND r.channel = 'wecom' AND r.status IN ('active', 'half')
		AND (r.customer_id > $3 OR (r.customer_id = $3 AND r.external_id > $4))
		ORDER BY r.customer_id, r.external_id LIMIT `+fmt.Sprint(r.Size()+1), tenantID, staffID, after, afterExt)
	if err != nil {
		return page.Page[HeldCustomer]{}, fmt.Errorf("handover: unable to list customers: %w", err)
	}
	var out []HeldCustomer
	for rows.Next() {
		var e HeldCustomer
		var added int64
		if err := rows.Scan(&e.CustomerID, &e.ExternalUserID, &e.Name, &e.Remark, &added); err != nil {
			rows.Close()
			return page.Page[HeldCustomer]{}, fmt.Errorf("handover: unable to read customer: %w", err)
		}
		e.AddedAt = db.FromMillis(added)
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page.Page[HeldCustomer]{}, fmt.Errorf("handover: unable to list customers: %w", err)
	}
	ids := make([]string, len(out))
	for i, e := range out {
		ids[i] = e.ExternalUserID
	}
	hist, err := s.history(ctx, s.db, tenantID, ItemCustomer, ids)
	if err != nil {
		return page.Page[HeldCustomer]{}, err
	}
	now := s.now()
	for i := range out {
		h := hist[out[i].ExternalUserID]
		out[i].Transfers90d = len(h)
		out[i].NextAllowedAt = nextAllowed(h, now)
	}
	return page.Trim(out, r, func(e HeldCustomer) string { return page.Encode(e.CustomerID, e.ExternalUserID) }), nil
}

// HeldGroup is a customer group a staff member owns.
type HeldGroup struct {
	ChatID       string    `json:"chat_id"`
	Name         string    `json:"name"`
	MemberCount  int       `json:"member_count"`
	Transfers90d int       `json:"transfers_90d"`
	NextAllowed  time.Time `json:"next_allowed_at,omitzero"`
}

// Groups lists the customer groups a staff member owns, by chat id.
func (s *Service) Groups(ctx context.Context, tenantID, staffID int64, r page.Request) (page.Page[HeldGroup], error) {
	m, err := s.staff.Member(ctx, tenantID, staffID)
	if err != nil {
		return page.Page[HeldGroup]{}, err
	}
	var after string
	if r.Cursor != "" {
		if err := page.Decode(r.Cursor, &after); err != nil {
			return page.Page[HeldGroup]{}, err
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT chat_id, name, member_count FROM wecom_groups
		WHERE tenant_id = $1 AND owner_userid = $2 AND status = 'active' AND chat_id > $3 ORDER BY chat_id LIMIT `+fmt.Sprint(r.Size()+1),
		tenantID, m.WeComUserID, after)
	if err != nil {
		return page.Page[HeldGroup]{}, fmt.Errorf("handover: unable to list groups: %w", err)
	}
	var out []HeldGroup
	for rows.Next() {
		var g HeldGroup
		if err := rows.Scan(&g.ChatID, &g.Name, &g.MemberCount); err != nil {
			rows.Close()
			return page.Page[HeldGroup]{}, fmt.Errorf("handover: unable to read group: %w", err)
		}
		out = append(out, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page.Page[HeldGroup]{}, fmt.Errorf("handover: unable to list groups: %w", err)
	}
	ids := make([]string, len(out))
	for i, g := range out {
		ids[i] = g.ChatID
	}
	hist, err := s.history(ctx, s.db, tenantID, ItemGroup, ids)
	if err != nil {
		return page.Page[HeldGroup]{}, err
	}
	now := s.now()
	for i := range out {
		h := hist[out[i].ChatID]
		out[i].Transfers90d = len(h)
		out[i].NextAllowed = nextAllowed(h, now)
	}
	return page.Trim(out, r, func(g HeldGroup) string { return page.Encode(g.ChatID) }), nil
}

// history returns, per customer (or group), the times of their on-job
// transfers within the 90-day window that WeCom accepted and that were not
// refused: what the rule counts.
func (s *Service) history(ctx context.Context, q db.Querier, tenantID int64, kind string, ids []string) (map[string][]time.Time, error) {
	out := map[string][]time.Time{}
	since := db.Millis(s.now().Add(-RuleWindow))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := []any{tenantID, kind, since}
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args = append(args, id)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		rows, err := q.QueryContext(ctx, `SELECT i.external_id, i.sent_at FROM handover_items i
			JOIN handover_jobs j ON j.tenant_id = i.tenant_id AND j.id = i.job_id
			WHERE i.tenant_id = $1 AND i.kind = $2 AND j.kind = 'onjob' AND i.state IN ('waiting', 'done') AND i.sent_at >= $3
			AND i.external_id IN (`+strings.Join(ph, ", ")+`) ORDER BY i.sent_at`, args...)
		if err != nil {
			return nil, fmt.Errorf("handover: unable to read past transfers: %w", err)
		}
		for rows.Next() {
			var id string
			var at int64
			if err := rows.Scan(&id, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("handover: unable to read past transfers: %w", err)
			}
			out[id] = append(out[id], db.FromMillis(at))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("handover: unable to read past transfers: %w", err)
		}
	}
	return out, nil
}

// nextAllowed is when the rule allows another transfer, or zero when it
// does now: 90 days after the earlier of the last two.
func nextAllowed(h []time.Time, now time.Time) time.Time {
	if len(h) < RuleMax {
		return time.Time{}
	}
	t := h[len(h)-RuleMax].Add(RuleWindow)
	if !t.After(now) {
		return time.Time{}
	}
	return t
}

// errNoRows maps sql.ErrNoRows to a NotFound error.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return errs.NotFoundf(what, "no such %s", what)
	}
	return err
}
