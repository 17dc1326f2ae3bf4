package handover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Selection asks to move customers and groups from one staff member to another.
type Selection struct {
	HandoverStaffID int64    `json:"handover_staff_id" doc:"The staff member whose customers and groups move (on-job or resigned)."`
	TakeoverStaffID int64    `json:"takeover_staff_id" doc:"The staff member who takes them over."`
	Customers       []string `json:"customers,omitempty" doc:"external_userids of the customers to move."`
	AllCustomers    bool     `json:"all_customers,omitempty" doc:"Move all their customers (for a resigned staff member, also those WeCom lists as waiting for inheritance)."`
	Groups          []string `json:"groups,omitempty" doc:"chat_ids of the groups to move."`
	AllGroups       bool     `json:"all_groups,omitempty" doc:"Move all the groups they own."`
	Message         string   `json:"transfer_success_msg,omitempty" maxLength:"200" doc:"On-job only: what WeCom sends the customer once moved (at most 200 characters; empty: WeCom's default)."`
}

// Verdict is the verdict on one customer or group before anything is sent.
type Verdict struct {
	Kind       string `json:"kind" enum:"customer,group"`
	ExternalID string `json:"external_id" doc:"external_userid of a customer, chat_id of a group."`
	CustomerID int64  `json:"customer_id,omitempty"`
	Name       string `json:"name"`
	OK         bool   `json:"ok"`
	Reason     string `json:"reason,omitempty" doc:"Why not: not_their_customer, not_their_group, takeover_serves_customer, transfer_in_progress, transfer_limit_90d."`
	Detail     string `json:"detail,omitempty"`
	// For transfer_limit_90d: the transfers counted and when another is allowed.
	Transfers90d  int       `json:"transfers_90d,omitempty"`
	NextAllowedAt time.Time `json:"next_allowed_at,omitzero"`
}

// Assessment is what a request would do.
type Assessment struct {
	Kind         Kind      `json:"kind" enum:"onjob,resigned"`
	Handover     Holder    `json:"handover"`
	Takeover     Holder    `json:"takeover"`
	Customers    int       `json:"customers" doc:"Customers that would be sent to WeCom."`
	Groups       int       `json:"groups" doc:"Groups that would be sent to WeCom."`
	Blocked      int       `json:"blocked" doc:"Customers and groups that would be skipped, with the reason in checks."`
	WeComCalls   int       `json:"wecom_calls" doc:"Calls to WeCom it takes (at most 100 customers or groups each)."`
	Checks       []Verdict `json:"checks" nullable:"false"`
	handoverUser string
	takeoverUser string
}

// plan checks a request: who, which customers and groups, and the rules.
func (s *Service) plan(ctx context.Context, tenantID int64, r Selection) (Assessment, error) {
	if r.HandoverStaffID != 0 && r.HandoverStaffID == r.TakeoverStaffID {
		return Assessment{}, errs.Field("takeover_staff_id", "same_staff", "the staff member taking over must be someone else")
	}
	if n := len([]rune(r.Message)); n > maxMsgRunes {
		return Assessment{}, errs.Field("transfer_success_msg", "too_long", "the message to customers is at most %d characters, not %d", maxMsgRunes, n)
	}
	from, err := s.member(ctx, tenantID, r.HandoverStaffID, "handover_staff_id")
	if err != nil {
		return Assessment{}, err
	}
	to, err := s.member(ctx, tenantID, r.TakeoverStaffID, "takeover_staff_id")
	if err != nil {
		return Assessment{}, err
	}
	if to.Status != staff.Active {
		return Assessment{}, errs.Field("takeover_staff_id", "takeover_resigned", "%s has left; choose a current staff member to take over", to.Name)
	}
	if from.WeComUserID == to.WeComUserID {
		return Assessment{}, errs.Field("takeover_staff_id", "same_staff", "the staff member taking over must be someone else")
	}
	kind := kindOf(from.Status)
	if kind == Resigned && r.Message != "" {
		return Assessment{}, errs.Field("transfer_success_msg", "not_for_resigned", "WeCom sends its own message when a resigned staff member's customers are inherited")
	}
	if len(r.Customers) == 0 && !r.AllCustomers && len(r.Groups) == 0 && !r.AllGroups {
		return Assessment{}, errs.Field("customers", "nothing_chosen", "choose customers or groups to hand over")
	}
	p := Assessment{Kind: kind, handoverUser: from.WeComUserID, takeoverUser: to.WeComUserID,
		Handover: Holder{ID: from.ID, Name: from.Name, WeComUserID: from.WeComUserID, Status: from.Status, Kind: kind},
		Takeover: Holder{ID: to.ID, Name: to.Name, WeComUserID: to.WeComUserID, Status: to.Status, Kind: OnJob}}
	customers, err := s.planCustomers(ctx, tenantID, kind, from, to, r)
	if err != nil {
		return Assessment{}, err
	}
	groups, err := s.planGroups(ctx, tenantID, kind, from, r)
	if err != nil {
		return Assessment{}, err
	}
	p.Checks = append(customers, groups...)
	for _, c := range p.Checks {
		switch {
		case !c.OK:
			p.Blocked++
		case c.Kind == ItemCustomer:
			p.Customers++
		default:
			p.Groups++
		}
	}
	p.WeComCalls = (p.Customers+maxChunk-1)/maxChunk + (p.Groups+maxChunk-1)/maxChunk
	p.Handover.Customers, p.Handover.Groups = int64(len(customers)), int64(len(groups))
	return p, nil
}

type relationRow struct {
	customerID int64
	name       string
}

func (s *Service) planCustomers(ctx context.Context, tenantID int64, kind Kind, from, to member, r Selection) ([]Verdict, error) {
	if len(r.Customers) == 0 && !r.AllCustomers {
		return nil, nil
	}
	theirs, err := s.currentCustomers(ctx, tenantID, from.ID)
	if err != nil {
		return nil, err
	}
	var ids []string
	if r.AllCustomers {
		for id := range theirs {
			ids = append(ids, id)
		}
		if kind == Resigned {
			// WeCom knows customers Siyu may not (the relation was never synced).
			waiting, err := s.unassigned(ctx, tenantID, from.WeComUserID)
			if err != nil {
				return nil, err
			}
			for _, id := range waiting {
				if _, ok := theirs[id]; !ok {
					theirs[id] = relationRow{}
					ids = append(ids, id)
				}
			}
		}
	}
	ids = append(ids, r.Customers...)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	served, err := s.currentCustomers(ctx, tenantID, to.ID)
	if err != nil {
		return nil, err
	}
	busy, err := s.inProgress(ctx, tenantID, ItemCustomer, ids)
	if err != nil {
		return nil, err
	}
	hist, err := s.history(ctx, s.db, tenantID, ItemCustomer, ids)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]Verdict, 0, len(ids))
	for _, id := range ids {
		rel, ok := theirs[id]
		c := Verdict{Kind: ItemCustomer, ExternalID: id, CustomerID: rel.customerID, Name: rel.name, OK: true}
		if c.Name == "" {
			c.Name = id
		}
		switch {
		case strings.TrimSpace(id) == "":
			c.OK, c.Reason, c.Detail = false, ReasonNotTheirs, "an empty customer id"
		case !ok:
			c.OK, c.Reason, c.Detail = false, ReasonNotTheirs, fmt.Sprintf("not a current customer of %s", from.Name)
		case served[id].customerID != 0:
			c.OK, c.Reason, c.Detail = false, ReasonTakeoverServes, fmt.Sprintf("%s already serves this customer", to.Name)
		case busy[id] != 0:
			c.OK, c.Reason, c.Detail = false, ReasonInProgress, fmt.Sprintf("already being handed over (handover #%d)", busy[id])
		case kind == OnJob && len(hist[id]) >= RuleMax:
			h := hist[id]
			dates := make([]string, len(h))
			for i, t := range h {
				dates[i] = t.UTC().Format("2006-01-02")
			}
			c.OK, c.Reason, c.Transfers90d, c.NextAllowedAt = false, ReasonRule90d, len(h), nextAllowed(h, now)
			c.Detail = fmt.Sprintf("transferred %d times in the last 90 days (%s); WeCom allows 2, again from %s",
				len(h), strings.Join(dates, ", "), c.NextAllowedAt.UTC().Format("2006-01-02"))
		}
		out = append(out, c)
	}
	return out, nil
}

func (s *Service) planGroups(ctx context.Context, tenantID int64, kind Kind, from member, r Selection) ([]Verdict, error) {
	if len(r.Groups) == 0 && !r.AllGroups {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT chat_id, name FROM wecom_groups WHERE tenant_id = $1 AND owner_userid = $2 AND status = 'active'`,
		tenantID, from.WeComUserID)
	if err != nil {
		return nil, fmt.Errorf("handover: unable to list groups: %w", err)
	}
	owned := map[string]string{}
	var ids []string
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("handover: unable to read group: %w", err)
		}
		owned[id] = name
		if r.AllGroups {
			ids = append(ids, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("handover: unable to list groups: %w", err)
	}
	ids = append(ids, r.Groups...)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	busy, err := s.inProgress(ctx, tenantID, ItemGroup, ids)
	if err != nil {
		return nil, err
	}
	hist, err := s.history(ctx, s.db, tenantID, ItemGroup, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Verdict, 0, len(ids))
	for _, id := range ids {
		name, ok := owned[id]
		c := Verdict{Kind: ItemGroup, ExternalID: id, Name: name, OK: true}
		if c.Name == "" {
			c.Name = id
		}
		switch {
		case !ok:
			c.OK, c.Reason, c.Detail = false, ReasonNotTheirGroup, fmt.Sprintf("not a group %s owns", from.Name)
		case busy[id] != 0:
			c.OK, c.Reason, c.Detail = false, ReasonInProgress, fmt.Sprintf("already being handed over (handover #%d)", busy[id])
		case kind == OnJob && len(hist[id]) >= RuleMax:
			c.OK, c.Reason, c.Transfers90d, c.NextAllowedAt = false, ReasonRule90d, len(hist[id]), nextAllowed(hist[id], s.now())
			c.Detail = fmt.Sprintf("transferred %d times in the last 90 days; WeCom allows 2, again from %s",
				len(hist[id]), c.NextAllowedAt.UTC().Format("2006-01-02"))
		}
		out = append(out, c)
	}
	return out, nil
}

// currentCustomers maps the external_userids of a staff member's current
// WeCom customers to the customer.
func (s *Service) currentCustomers(ctx context.Context, tenantID, staffID int64) (map[string]relationRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT r.external_id, r.customer_id, coalesce(c.name, '')
		FROM staff_relations r LEFT JOIN customers c ON c.tenant_id = r.tenant_id AND c.id = r.customer_id
		WHERE r.tenant_id = $1 AND r.staff_id = $2 AND r.channel = 'wecom' AND r.status IN ('active', 'half')`, tenantID, staffID)
	if err != nil {
		return nil, fmt.Errorf("handover: unable to list customers: %w", err)
	}
	defer rows.Close()
	out := map[string]relationRow{}
	for rows.Next() {
		var id string
		var r relationRow
		if err := rows.Scan(&id, &r.customerID, &r.name); err != nil {
			return nil, fmt.Errorf("handover: unable to read customer: %w", err)
		}
		out[id] = r
	}
	return out, rows.Err()
}

// unassigned reads WeCom's list of a resigned member's customers waiting
// for inheritance.
func (s *Service) unassigned(ctx context.Context, tenantID int64, userID string) ([]string, error) {
	c, err := s.wecom.Client(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	var out []string
	cursor := ""
	for range 10000 {
		pg, err := c.GetUnassignedList(ctx, cursor, wecom.MaxUnassignedPageSize)
		if err != nil {
			return nil, fmt.Errorf("handover: unable to read WeCom's customers waiting for inheritance: %w", err)
		}
		for _, u := range pg.Info {
			if u.HandoverUserID == userID {
				out = append(out, u.ExternalUserID)
			}
		}
		if pg.IsLast || pg.NextCursor == "" {
			break
		}
		cursor = pg.NextCursor
	}
	return out, nil
}

// inProgress maps ids with an unfinished item in a running job to that job.
func (s *Service) inProgress(ctx context.Context, tenantID int64, kind string, ids []string) (map[string]int64, error) {
	out := map[string]int64{}
	for rest := ids; len(rest) > 0; {
		chunk := rest[:min(len(rest), 500)]
		rest = rest[len(chunk):]
		args := []any{tenantID, kind}
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args = append(args, id)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		rows, err := s.db.QueryContext(ctx, `SELECT external_id, job_id FROM handover_items WHERE tenant_id = $1 AND kind = $2
			AND state IN ('pending', 'sending', 'waiting') AND external_id IN (`+strings.Join(ph, ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("handover: unable to find transfers in progress: %w", err)
		}
		for rows.Next() {
			var id string
			var job int64
			if err := rows.Scan(&id, &job); err != nil {
				rows.Close()
				return nil, fmt.Errorf("handover: unable to find transfers in progress: %w", err)
			}
			out[id] = job
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("handover: unable to find transfers in progress: %w", err)
		}
	}
	return out, nil
}

// Assessment checks a request and explains, per customer and group, what
// would be sent and what would be skipped, without sending anything.
func (s *Service) Preview(ctx context.Context, p tenant.Principal, r Selection) (Assessment, error) {
	if err := p.Require(tenant.PermHandover); err != nil {
		return Assessment{}, err
	}
	return s.plan(ctx, p.TenantID, r)
}

// Tally are a job's items by state.
type Tally struct {
	Total   int `json:"total"`
	Pending int `json:"pending" doc:"To send, or sent and not answered yet."`
	Waiting int `json:"waiting" doc:"Accepted by WeCom; the customer has 24 hours to refuse."`
	Done    int `json:"done"`
	Refused int `json:"refused"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Handover is one handover.
type Handover struct {
	ID              int64     `json:"id"`
	Kind            Kind      `json:"kind" enum:"onjob,resigned"`
	HandoverStaffID int64     `json:"handover_staff_id"`
	HandoverName    string    `json:"handover_name"`
	TakeoverStaffID int64     `json:"takeover_staff_id"`
	TakeoverName    string    `json:"takeover_name"`
	Message         string    `json:"transfer_success_msg,omitempty"`
	Status          string    `json:"status" enum:"running,done"`
	Customers       Tally     `json:"customers"`
	Groups          Tally     `json:"groups"`
	LastError       string    `json:"last_error,omitempty" doc:"The last WeCom failure; the job retries by itself."`
	CreatedBy       string    `json:"created_by"`
	CreatedAt       time.Time `json:"created_at"`
	NextRunAt       time.Time `json:"next_run_at,omitzero"`
	FinishedAt      time.Time `json:"finished_at,omitzero"`
	handoverUser    string
	takeoverUser    string
	idemKey         string
}

// Start creates a handover job from a request and returns it; the worker
// sends it. A request repeated with the same idempotency key returns the
// job the first one created (created false) and sends nothing again.
func (s *Service) Start(ctx context.Context, p tenant.Principal, r Selection, idemKey string) (Handover, bool, error) {
	if err := p.Require(tenant.PermHandover); err != nil {
		return Handover{}, false, err
	}
	idemKey = strings.TrimSpace(idemKey)
	if idemKey == "" {
		return Handover{}, false, errs.Field("idempotency_key", "required", "an idempotency key is required, so a retried request does not hand over twice")
	}
	if len(idemKey) > maxKeyLength {
		return Handover{}, false, errs.Field("idempotency_key", "too_long", "the idempotency key is at most %d characters", maxKeyLength)
	}
	if j, err := s.jobByKey(ctx, p.TenantID, idemKey); err == nil {
		return j, false, nil
	} else if errs.KindOf(err) != errs.NotFound {
		return Handover{}, false, err
	}
	pv, err := s.plan(ctx, p.TenantID, r)
	if err != nil {
		return Handover{}, false, err
	}
	if pv.Customers+pv.Groups == 0 {
		return Handover{}, false, errs.E(errs.Invalid, "nothing_to_hand_over", "none of the chosen customers or groups can be handed over: %s", firstReason(pv.Checks))
	}
	now := db.Millis(s.now())
	var id int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO handover_jobs (tenant_id, kind, handover_staff_id, takeover_staff_id, handover_userid, takeover_userid,
			message, status, idem_key, created_by, next_run_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10, $10, $10) RETURNING id`,
			p.TenantID, string(pv.Kind), pv.Handover.ID, pv.Takeover.ID, pv.handoverUser, pv.takeoverUser, r.Message, idemKey, p.Name, now).Scan(&id)
		if err != nil {
			return err
		}
		for _, c := range pv.Checks {
			state := ItemPending
			if !c.OK {
				state = ItemSkipped
			}
			var cid any
			if c.CustomerID != 0 {
				cid = c.CustomerID
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO handover_items (tenant_id, job_id, kind, external_id, customer_id, name, state, reason, detail, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				p.TenantID, id, c.Kind, c.ExternalID, cid, c.Name, string(state), c.Reason, c.Detail, now); err != nil {
				return fmt.Errorf("handover: unable to add item: %w", err)
			}
		}
		detail := fmt.Sprintf("%s from %s to %s: %d customers, %d groups, %d skipped", pv.Kind, pv.Handover.Name, pv.Takeover.Name,
			pv.Customers, pv.Groups, pv.Blocked)
		return s.audit.Audit(ctx, tx, p, "handover.start", "handover", fmt.Sprint(id), detail)
	})
	if db.IsUniqueViolation(err) {
		// The same key raced with us: theirs is the job.
		j, err := s.jobByKey(ctx, p.TenantID, idemKey)
		return j, false, err
	}
	if err != nil {
		return Handover{}, false, fmt.Errorf("handover: unable to create the handover: %w", err)
	}
	s.nudge()
	j, err := s.Job(ctx, p.TenantID, id)
	return j, true, err
}

func firstReason(cs []Verdict) string {
	for _, c := range cs {
		if !c.OK {
			return c.Name + ": " + c.Detail
		}
	}
	return "nothing was chosen"
}

const jobCols = `j.id, j.kind, j.handover_staff_id, hs.name, j.takeover_staff_id, ts.name, j.message, j.status, j.last_error, j.created_by,
	j.created_at, j.next_run_at, j.finished_at, j.handover_userid, j.takeover_userid, j.idem_key`

const jobFrom = ` FROM handover_jobs j JOIN staff hs ON hs.tenant_id = j.tenant_id AND hs.id = j.handover_staff_id
	JOIN staff ts ON ts.tenant_id = j.tenant_id AND ts.id = j.takeover_staff_id WHERE j.tenant_id = $1`

func scanJob(row interface{ Scan(...any) error }) (Handover, error) {
	var j Handover
	var kind string
	var created, next, finished int64
	err := row.Scan(&j.ID, &kind, &j.HandoverStaffID, &j.HandoverName, &j.TakeoverStaffID, &j.TakeoverName, &j.Message, &j.Status, &j.LastError,
		&j.CreatedBy, &created, &next, &finished, &j.handoverUser, &j.takeoverUser, &j.idemKey)
	j.Kind = Kind(kind)
	j.CreatedAt, j.FinishedAt = db.FromMillis(created), db.FromMillis(finished)
	if j.Status == JobRunning {
		j.NextRunAt = db.FromMillis(next)
	}
	return j, err
}

func (s *Service) jobByKey(ctx context.Context, tenantID int64, key string) (Handover, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobCols+jobFrom+` AND j.idem_key = $2`, tenantID, key))
	if err != nil {
		return Handover{}, notFound(err, "handover")
	}
	return j, s.fillCounts(ctx, tenantID, []*Handover{&j})
}

// Handover returns one handover with its counts.
func (s *Service) Job(ctx context.Context, tenantID, id int64) (Handover, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobCols+jobFrom+` AND j.id = $2`, tenantID, id))
	if err != nil {
		return Handover{}, notFound(err, "handover")
	}
	return j, s.fillCounts(ctx, tenantID, []*Handover{&j})
}

// Jobs lists handovers, newest first.
func (s *Service) Jobs(ctx context.Context, tenantID int64, r page.Request) (page.Page[Handover], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[Handover]{}, err
	}
	q := `SELECT ` + jobCols + jobFrom
	args := []any{tenantID}
	if ok {
		q += ` AND j.id < $2`
		args = append(args, after)
	}
	q += fmt.Sprintf(` ORDER BY j.id DESC LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[Handover]{}, fmt.Errorf("handover: unable to list handovers: %w", err)
	}
	var out []Handover
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			rows.Close()
			return page.Page[Handover]{}, fmt.Errorf("handover: unable to read handover: %w", err)
		}
		out = append(out, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page.Page[Handover]{}, fmt.Errorf("handover: unable to list handovers: %w", err)
	}
	pg := page.Trim(out, r, func(j Handover) string { return page.ByID(j.ID) })
	ptrs := make([]*Handover, len(pg.Items))
	for i := range pg.Items {
		ptrs[i] = &pg.Items[i]
	}
	return pg, s.fillCounts(ctx, tenantID, ptrs)
}

func (s *Service) fillCounts(ctx context.Context, tenantID int64, jobs []*Handover) error {
	for _, j := range jobs {
		rows, err := s.db.QueryContext(ctx, `SELECT kind, state, count(*) FROM handover_items WHERE tenant_id = $1 AND job_id = $2 GROUP BY kind, state`,
			tenantID, j.ID)
		if err != nil {
			return fmt.Errorf("handover: unable to count items: %w", err)
		}
		for rows.Next() {
			var kind, state string
			var n int
			if err := rows.Scan(&kind, &state, &n); err != nil {
				rows.Close()
				return fmt.Errorf("handover: unable to count items: %w", err)
			}
			c := &j.Customers
			if kind == ItemGroup {
				c = &j.Groups
			}
			c.Total += n
			switch ItemState(state) {
			case ItemPending, ItemSending:
				c.Pending += n
			case ItemWaiting:
				c.Waiting += n
			case ItemDone:
				c.Done += n
			case ItemRefused:
				c.Refused += n
			case ItemFailed:
				c.Failed += n
			case ItemSkipped:
				c.Skipped += n
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("handover: unable to count items: %w", err)
		}
	}
	return nil
}

// Transfer is one customer's or group's transfer in a job.
type Transfer struct {
	ID         int64     `json:"id"`
	Kind       string    `json:"kind" enum:"customer,group"`
	ExternalID string    `json:"external_id"`
	CustomerID int64     `json:"customer_id,omitempty"`
	Name       string    `json:"name"`
	State      ItemState `json:"state" enum:"pending,sending,waiting,done,refused,failed,skipped"`
	Reason     string    `json:"reason,omitempty"`
	Detail     string    `json:"detail,omitempty"`
	ErrCode    int       `json:"errcode,omitempty" doc:"WeCom's errcode for this customer or group, when it gave one."`
	SentAt     time.Time `json:"sent_at,omitzero"`
	DoneAt     time.Time `json:"done_at,omitzero"`
}

// Items lists a job's items in order; state filters ("" for all).
func (s *Service) Items(ctx context.Context, tenantID, jobID int64, state string, r page.Request) (page.Page[Transfer], error) {
	if _, err := s.Job(ctx, tenantID, jobID); err != nil {
		return page.Page[Transfer]{}, err
	}
	var after int64
	if r.Cursor != "" {
		if err := page.Decode(r.Cursor, &after); err != nil {
			return page.Page[Transfer]{}, err
		}
	}
	q := `SELECT id, kind, external_id, coalesce(customer_id, 0), name, state, reason, detail, errcode, sent_at, done_at
		FROM handover_items WHERE tenant_id = $1 AND job_id = $2 AND id > $3`
	args := []any{tenantID, jobID, after}
	switch state {
	case "":
	case string(ItemPending):
		q += ` AND state IN ('pending', 'sending')`
	case string(ItemSending), string(ItemWaiting), string(ItemDone), string(ItemRefused), string(ItemFailed), string(ItemSkipped):
		q += ` AND state = $4`
		args = append(args, state)
	default:
		return page.Page[Transfer]{}, errs.Field("state", "invalid_state", "unknown item state %q", state)
	}
	q += fmt.Sprintf(` ORDER BY id LIMIT %d`, r.Size()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return page.Page[Transfer]{}, fmt.Errorf("handover: unable to list items: %w", err)
	}
	defer rows.Close()
	var out []Transfer
	for rows.Next() {
		var it Transfer
		var st string
		var sent, done int64
		if err := rows.Scan(&it.ID, &it.Kind, &it.ExternalID, &it.CustomerID, &it.Name, &st, &it.Reason, &it.Detail, &it.ErrCode, &sent, &done); err != nil {
			return page.Page[Transfer]{}, fmt.Errorf("handover: unable to read item: %w", err)
		}
		it.State, it.SentAt, it.DoneAt = ItemState(st), db.FromMillis(sent), db.FromMillis(done)
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Transfer]{}, fmt.Errorf("handover: unable to list items: %w", err)
	}
	return page.Trim(out, r, func(it Transfer) string { return page.Encode(it.ID) }), nil
}

var errLeased = errors.New("handover: job leased by another worker")
