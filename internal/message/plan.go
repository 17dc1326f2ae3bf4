package message

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Planning. A customer followed by several staff members is sent to by one:
// the staff member with the earliest current relation (added first; the
// lower staff id on a tie), among StaffUserIDs when the target names some.
// Only current relations (active or half) of active staff count.

// planRecipient is one envelope-to-be.
type planRecipient struct {
	customerID int64
	account    string
	recipient  string
	skip       string // "", over_cap, no_relation
	batch      int    // index of its batch
}

type plan struct {
	channel  string
	targeted int64
	recips   []planRecipient // sorted by account, then customer (groups: chat id)
	per      period
	policy   string
	warnings []string
	timing   []any // phase durations, for the planning log line
}

// smallAudience is below this many customers relations are read by
// customer; above, all relations are streamed once in customer order.
const smallAudience = 5000

// resolvePlan works out who receives a campaign sent at at, through whom,
// and who is skipped, without storing anything.
func (s *Service) resolvePlan(ctx context.Context, tenantID int64, kind string, t Target, at time.Time) (*plan, error) {
	set, err := s.Settings(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	loc := s.location(ctx, tenantID)
	pl := &plan{channel: channelOf(kind), policy: set.CapPolicy, per: periodOf(set.CapPolicy, at.In(loc))}
	if kind == KindGroups {
		return pl, s.resolveGroups(ctx, tenantID, t, pl)
	}
	t0 := time.Now()
	ids, err := s.targetIDs(ctx, tenantID, t)
	if err != nil {
		return nil, err
	}
	pl.targeted = int64(len(ids))
	t1 := time.Now()
	staffOK := map[string]bool{}
	for _, u := range t.StaffUserIDs {
		staffOK[u] = true
	}
	owners, err := s.owners(ctx, tenantID, ids, staffOK)
	if err != nil {
		return nil, err
	}
	t2 := time.Now()
	capped, err := s.capCounts(ctx, tenantID, pl.channel, pl.per, len(ids) < smallAudience, ids)
	if err != nil {
		return nil, err
	}
	t3 := time.Now()
	pl.recips = make([]planRecipient, len(ids))
	for i, id := range ids {
		r := planRecipient{customerID: id}
		o, ok := owners[i], owners[i].account != ""
		switch {
		case !ok:
			r.skip = ReasonNoRelation
		default:
			r.account, r.recipient = o.account, o.external
			if capped[id] >= pl.per.limit {
				r.skip = ReasonOverCap
			}
		}
		pl.recips[i] = r
	}
	slices.SortStableFunc(pl.recips, func(a, b planRecipient) int { return strings.Compare(a.account, b.account) })
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	pl.timing = []any{"audience", ms(t1.Sub(t0)), "owners", ms(t2.Sub(t1)), "caps", ms(t3.Sub(t2)), "split", ms(time.Since(t3))}
	return pl, nil
}

// targetIDs resolves a customer target to ascending customer ids.
func (s *Service) targetIDs(ctx context.Context, tenantID int64, t Target) ([]int64, error) {
	if s.aud == nil {
		return nil, errs.E(errs.Internal, "audiences_unavailable", "audiences are not available")
	}
	var res audience.Result
	var err error
	switch {
	case t.AudienceID != 0:
		res, err = s.aud.Members(ctx, tenantID, t.AudienceID)
	case t.Condition != nil:
		res, err = s.aud.Evaluate(ctx, tenantID, *t.Condition)
	default:
		return nil, errs.Field("target", "target_required", "choose a saved audience or give a condition")
	}
	if err != nil {
		return nil, err
	}
	if res.Count == 0 {
		return nil, nil
	}
	return res.IDs(0, int(res.Count)), nil
}

type owner struct {
	account, external string
	added, staffID    int64
}

const relationSelect = `SELECT r.customer_id, r.external_id, s.wecom_userid, r.added_at, r.staff_id FROM staff_relations r
	JOIN staff s ON s.tenant_id = r.tenant_id AND s.id = r.staff_id
	WHERE r.tenant_id = $1 AND r.channel = 'wecom' AND r.status IN ('active', 'half') AND s.status = 'active' AND s.wecom_userid IS NOT NULL`

// owners returns, for each of ids (ascending), its sending staff member
// (zero when none).
func (s *Service) owners(ctx context.Context, tenantID int64, ids []int64, staffOK map[string]bool) ([]owner, error) {
	out := make([]owner, len(ids))
	intern := map[string]string{}
	consider := func(i int, o owner) {
		if len(staffOK) > 0 && !staffOK[o.account] {
			return
		}
		if a, ok := intern[o.account]; ok {
			o.account = a
		} else {
			intern[o.account] = o.account
		}
		cur := out[i]
		if cur.account == "" || o.added < cur.added || (o.added == cur.added && o.staffID < cur.staffID) {
			out[i] = o
		}
	}
	scan := func(rows *sql.Rows, each func(cust int64, o owner)) error {
		defer rows.Close()
		for rows.Next() {
			var cust int64
			var o owner
			if err := rows.Scan(&cust, &o.external, &o.account, &o.added, &o.staffID); err != nil {
				return fmt.Errorf("message: unable to read relations: %w", err)
			}
			each(cust, o)
		}
		return rows.Err()
	}
	if len(ids) < smallAudience {
		pos := make(map[int64]int, len(ids))
		for i, id := range ids {
			pos[id] = i
		}
		for start := 0; start < len(ids); start += 500 {
			chunk := ids[start:min(start+500, len(ids))]
			rows, err := s.db.QueryContext(ctx, relationSelect+` AND r.customer_id IN (`+idList(chunk)+`)`, tenantID)
			if err != nil {
				return nil, fmt.Errorf("message: unable to read relations: %w", err)
			}
			if err := scan(rows, func(cust int64, o owner) { consider(pos[cust], o) }); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	// Large audiences: one pass over the workspace's relations in table
	// order (reading them in customer order costs a random row lookup
	// each), the sending staff from a map, each customer found by binary
	// search in the ascending ids.
	accounts := map[int64]string{}
	srows, err := s.db.QueryContext(ctx, `SELECT id, wecom_userid FROM staff WHERE tenant_id = $1 AND status = 'active' AND wecom_userid IS NOT NULL`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("message: unable to read staff: %w", err)
	}
	for srows.Next() {
		var id int64
		var u string
		if err := srows.Scan(&id, &u); err != nil {
			srows.Close()
			return nil, fmt.Errorf("message: unable to read staff: %w", err)
		}
		accounts[id] = u
	}
	srows.Close()
	rows, err := s.db.QueryContext(ctx, `SELECT customer_id, staff_id, external_id, added_at FROM staff_relations
		WHERE tenant_id = $1 AND channel = 'wecom' AND status IN ('active', 'half')`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("message: unable to read relations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cust int64
		var o owner
		if err := rows.Scan(&cust, &o.staffID, &o.external, &o.added); err != nil {
			return nil, fmt.Errorf("message: unable to read relations: %w", err)
		}
		acc, ok := accounts[o.staffID]
		if !ok {
			continue
		}
		if i, found := slices.BinarySearch(ids, cust); found {
			o.account = acc
			consider(i, o)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("message: unable to read relations: %w", err)
	}
	return out, nil
}

// capCounts counts, per customer, the messages of the channel that count
// against the cap in the period: sent, accepted or queued.
func (s *Service) capCounts(ctx context.Context, tenantID int64, channel string, p period, small bool, ids []int64) (map[int64]int, error) {
	out := map[int64]int{}
	q := `SELECT customer_id, count(*) FROM message_envelopes WHERE tenant_id = $1 AND channel = $2 AND cap_at >= $3 AND cap_at < $4
		AND status IN ('queued', 'submitted', 'sent')`
	var chunks [][]int64
	if small {
		for start := 0; start < len(ids); start += 500 {
			chunks = append(chunks, ids[start:min(start+500, len(ids))])
		}
	} else {
		chunks = [][]int64{nil}
	}
	for _, c := range chunks {
		qq := q
		if c != nil {
			qq += ` AND customer_id IN (` + idList(c) + `)`
		}
		rows, err := s.db.QueryContext(ctx, qq+` GROUP BY customer_id`, tenantID, channel, db.Millis(p.start), db.Millis(p.end))
		if err != nil {
			return nil, fmt.Errorf("message: unable to count messages per customer: %w", err)
		}
		for rows.Next() {
			var id int64
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("message: unable to count messages per customer: %w", err)
			}
			out[id] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("message: unable to count messages per customer: %w", err)
		}
	}
	return out, nil
}

// resolveGroups selects the groups of a group campaign.
func (s *Service) resolveGroups(ctx context.Context, tenantID int64, t Target, pl *plan) error {
	q := `SELECT chat_id, owner_userid FROM wecom_groups WHERE tenant_id = $1 AND status = 'active'`
	args := []any{tenantID}
	var ors []string
	if len(t.ChatIDs) > 0 {
		ors = append(ors, `chat_id IN (`+placeholders(&args, t.ChatIDs)+`)`)
	}
	if len(t.GroupOwners) > 0 {
		ors = append(ors, `owner_userid IN (`+placeholders(&args, t.GroupOwners)+`)`)
	}
	if len(ors) > 0 {
		q += ` AND (` + strings.Join(ors, ` OR `) + `)`
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY owner_userid, chat_id`, args...)
	if err != nil {
		return fmt.Errorf("message: unable to read groups: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var r planRecipient
		if err := rows.Scan(&r.recipient, &r.account); err != nil {
			return fmt.Errorf("message: unable to read groups: %w", err)
		}
		seen[r.recipient] = true
		if r.account == "" {
			r.skip = ReasonNoRelation
		}
		pl.recips = append(pl.recips, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("message: unable to read groups: %w", err)
	}
	pl.targeted = int64(len(pl.recips))
	for _, id := range t.ChatIDs {
		if !seen[id] {
			pl.warnings = append(pl.warnings, fmt.Sprintf("group %s is unknown or dismissed", id))
		}
	}
	return nil
}

func placeholders(args *[]any, vals []string) string {
	var b strings.Builder
	for i, v := range vals {
		*args = append(*args, v)
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "$%d", len(*args))
	}
	return b.String()
}

// staffNames maps WeCom userids to staff names.
func (s *Service) staffNames(ctx context.Context, tenantID int64, userIDs []string) (map[string]string, error) {
	out := map[string]string{}
	for start := 0; start < len(userIDs); start += 500 {
		chunk := userIDs[start:min(start+500, len(userIDs))]
		args := []any{tenantID}
		rows, err := s.db.QueryContext(ctx, `SELECT wecom_userid, name FROM staff WHERE tenant_id = $1 AND wecom_userid IN (`+placeholders(&args, chunk)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("message: unable to read staff names: %w", err)
		}
		for rows.Next() {
			var u, n string
			if err := rows.Scan(&u, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("message: unable to read staff names: %w", err)
			}
			out[u] = n
		}
		rows.Close()
	}
	return out, nil
}

// render fills the placeholders of a content.
func render(c Content, customerName, staffName string) Content {
	r := strings.NewReplacer("{{customer_name}}", customerName, "{{staff_name}}", staffName)
	out := c
	out.Text = r.Replace(c.Text)
	return out
}

// accounts lists the distinct sending accounts of a plan, in order.
func (pl *plan) accounts() []string {
	var out []string
	for _, r := range pl.recips {
		if r.account != "" && (len(out) == 0 || out[len(out)-1] != r.account) {
			out = append(out, r.account)
		}
	}
	return out
}

// envelopeRows is how many envelopes one INSERT carries.
const envelopeRows = 2000

// sqlQuote makes a SQL string literal (standard SQL: quotes doubled; both
// SQLite and PostgreSQL with standard_conforming_strings, the default).
func sqlQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// envelopeKey is the idempotency key of a campaign's envelope to a
// customer (or, for a group campaign, to a group).
func envelopeKey(campaignID int64, rc planRecipient) string {
	if rc.customerID != 0 {
		return "c" + strconv.FormatInt(campaignID, 10) + ":" + strconv.FormatInt(rc.customerID, 10)
	}
	return "c" + strconv.FormatInt(campaignID, 10) + ":" + rc.recipient
}

// keyOrder returns the plan's envelope keys and the order to write its
// recipients in: by key when byKey, else as planned (by batch). On SQLite
// envelopes go in by key so that every index of message_envelopes but the
// campaign's (batch) one receives appends: the unique (tenant_id, idem_key)
// index otherwise gets a million keys in random order, more than the page
// cache holds (27 s → 15 s for a million). PostgreSQL's larger buffer pool
// absorbs the random keys, and there batch order keeps a campaign's counts
// a sequential read of the heap (no index-only scan before a vacuum).
func keyOrder(campaignID int64, pl *plan, byKey bool) ([]string, []int32) {
	keys := make([]string, len(pl.recips))
	order := make([]int32, len(pl.recips))
	for i, rc := range pl.recips {
		keys[i] = envelopeKey(campaignID, rc)
		order[i] = int32(i)
	}
	if byKey {
		slices.SortFunc(order, func(a, b int32) int { return strings.Compare(keys[a], keys[b]) })
	}
	return keys, order
}

// store writes a plan: contents, batches, envelopes, and the campaign moved
// to sending, in one transaction.
func (s *Service) store(ctx context.Context, tenantID int64, c Campaign, pl *plan, now time.Time) error {
	r, ok := s.rules(pl.channel)
	if !ok {
		return errs.E(errs.Internal, "channel_unavailable", "the %s channel is not available (is WeCom connected?)", pl.channel)
	}
	names := map[string]string{}
	perStaff := strings.Contains(c.Content.Text, "{{staff_name}}")
	accounts := pl.accounts()
	if perStaff {
		var err error
		if names, err = s.staffNames(ctx, tenantID, accounts); err != nil {
			return err
		}
	}
	ms := db.Millis(now)
	// One connection for the whole transaction, so that on PostgreSQL the
	// envelopes can go in by COPY on the transaction's own connection.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("message: unable to get a connection: %w", err)
	}
	defer conn.Close()
	if s.db.Dialect == db.SQLite {
		// A larger page cache for this connection while it writes the plan:
		// the campaign index receives envelopes at one point per batch (450
		// for a million), more hot pages than the default 2 MB holds. It is
		// a cache size, not a durability setting, and is put back after.
		var prev int64
		if err := conn.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&prev); err != nil {
			return fmt.Errorf("message: unable to read the page cache size: %w", err)
		}
		if _, err := conn.ExecContext(ctx, `PRAGMA cache_size = -65536`); err != nil {
			return fmt.Errorf("message: unable to set the page cache size: %w", err)
		}
		defer func() {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA cache_size = %d`, prev))
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("message: unable to begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	err = func() error {
		contents := map[string]int64{}
		contentFor := func(account string) (int64, error) {
			key := ""
			if perStaff {
				key = account
			}
			if id, ok := contents[key]; ok {
				return id, nil
			}
			id, err := s.contentID(ctx, tx, tenantID, render(c.Content, "", names[account]))
			contents[key] = id
			return id, err
		}
		// Batches: per account, ≤ MaxRecipients each.
		type batch struct {
			id      int64
			account string
			content int64
			n       int
		}
		var batches []batch
		cur := -1
		for i := range pl.recips {
			rc := &pl.recips[i]
			if rc.skip != "" {
				rc.batch = -1
				continue
			}
			if cur < 0 || batches[cur].account != rc.account || batches[cur].n >= r.MaxRecipients {
				cid, err := contentFor(rc.account)
				if err != nil {
					return err
				}
				batches = append(batches, batch{account: rc.account, content: cid})
				cur = len(batches) - 1
			}
			batches[cur].n++
			rc.batch = cur
		}
		for i := range batches {
			b := &batches[i]
			if err := tx.QueryRowContext(ctx, `INSERT INTO message_batches (tenant_id, channel, account, content_id, campaign_id, status, recipients,
				due_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $7, $7) RETURNING id`,
				tenantID, pl.channel, b.account, b.content, c.ID, b.n, ms).Scan(&b.id); err != nil {
				return fmt.Errorf("message: unable to create a batch: %w", err)
			}
		}
		if _, err := contentFor(""); err != nil { // skipped envelopes' content
			return err
		}
		keys, order := keyOrder(c.ID, pl, s.db.Dialect == db.SQLite)
		if s.db.Dialect == db.Postgres {
			if err := copyEnvelopes(ctx, conn, tenantID, c.ID, pl, keys, order, func(i int) (int64, int64) {
				if b := pl.recips[i].batch; b >= 0 {
					return batches[b].id, batches[b].content
				}
				return 0, contents[""]
			}, ms); err != nil {
				return err
			}
		} else if err := func() error {
			// Envelopes: multi-row INSERTs of literal values. Every value is a
			// number Siyu made or a string quoted by sqlQuote. Bound
			// parameters cost more than parsing here: the SQLite driver's
			// binding doubled the CPU time of a prepared 250-row INSERT.
			var sb strings.Builder
			rows := 0
			// The values every envelope shares are written once per
			// statement: parsing is much of the cost per row.
			head := fmt.Sprintf(`INSERT INTO message_envelopes (tenant_id, channel, campaign_id, due_at, cap_at, created_at, updated_at,
			idem_key, customer_id, account, recipient, content_id, batch_id, status, reason)
			SELECT %d, %s, %d, %d, %d, %d, %d, column1, column2, column3, column4, column5, column6, column7, column8 FROM (VALUES `,
				tenantID, sqlQuote(pl.channel), c.ID, ms, ms, ms, ms)
			flush := func() error {
				if rows == 0 {
					return nil
				}
				sb.WriteByte(')')
				if _, err := tx.ExecContext(ctx, sb.String()); err != nil {
					return fmt.Errorf("message: unable to store envelopes: %w", err)
				}
				sb.Reset()
				rows = 0
				return nil
			}
			defaultContent, err := contentFor("")
			if err != nil {
				return err
			}
			for _, i := range order {
				rc := pl.recips[i]
				if rows == 0 {
					sb.WriteString(head)
				} else {
					sb.WriteByte(',')
				}
				status, reason, bid, cid := "queued", "", int64(0), defaultContent
				if rc.batch >= 0 {
					b := batches[rc.batch]
					bid, cid = b.id, b.content
				} else {
					status, reason = "skipped", rc.skip
				}
				sb.WriteByte('(')
				sb.WriteString(sqlQuote(keys[i]))
				fmt.Fprintf(&sb, ", %d, %s, %s, %d, %d, '%s', '%s')", rc.customerID, sqlQuote(rc.account), sqlQuote(rc.recipient), cid, bid,
					status, reason)
				rows++
				if rows >= envelopeRows {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			return flush()
		}(); err != nil {
			return err
		}
		status := CampaignSending
		finished := int64(0)
		if len(batches) == 0 {
			status, finished = CampaignDone, ms
		}
		res, err := tx.ExecContext(ctx, `UPDATE message_campaigns SET status = $4, planned_at = $5, finished_at = $6, recipients = $7, staff = $8,
			batches = $9, error = '', lease_owner = '', lease_until = 0, updated_at = $5
			WHERE tenant_id = $1 AND id = $2 AND status = 'scheduled' AND lease_owner = $3`,
			tenantID, c.ID, s.owner, string(status), ms, finished, len(pl.recips), len(accounts), len(batches))
		if err != nil {
			return fmt.Errorf("message: unable to update campaign %d: %w", c.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.E(errs.Conflict, "campaign_changed", "the mass message was cancelled or changed while it was being planned")
		}
		return nil
	}()
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("message: unable to commit the plan: %w", err)
	}
	return nil
}

// copyEnvelopes writes a plan's envelopes with COPY, on the connection of
// the open transaction (PostgreSQL).
func copyEnvelopes(ctx context.Context, conn *sql.Conn, tenantID, campaignID int64, pl *plan, keys []string, order []int32, batchOf func(i int) (batch, content int64), ms int64) error {
	cols := []string{"tenant_id", "channel", "idem_key", "customer_id", "account", "recipient", "content_id", "campaign_id", "batch_id",
		"status", "reason", "due_at", "cap_at", "created_at", "updated_at"}
	err := conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("message: not a PostgreSQL connection: %T", dc)
		}
		_, err := sc.Conn().CopyFrom(ctx, pgx.Identifier{"message_envelopes"}, cols, pgx.CopyFromFunc(func() func() ([]any, error) {
			n := -1
			row := make([]any, len(cols))
			return func() ([]any, error) {
				n++
				if n >= len(order) {
					return nil, nil
				}
				i := int(order[n])
				rc := pl.recips[i]
				bid, cid := batchOf(i)
				status := "queued"
				if rc.skip != "" {
					status = "skipped"
				}
				key := keys[i]
				row[0], row[1], row[2], row[3], row[4], row[5] = tenantID, pl.channel, key, rc.customerID, rc.account, rc.recipient
				row[6], row[7], row[8], row[9], row[10] = cid, campaignID, bid, status, rc.skip
				row[11], row[12], row[13], row[14] = ms, ms, ms, ms
				return row, nil
			}
		}()))
		return err
	})
	if err != nil {
		return fmt.Errorf("message: unable to copy envelopes: %w", err)
	}
	return nil
}

// Estimate is what sending in now would do (nothing is stored): who would
// receive it, through how many staff and calls, who the cap and missing
// relations would skip.
func (s *Service) Estimate(ctx context.Context, tenantID int64, in CampaignInput) (Estimate, error) {
	if err := s.checkCampaign(&in); err != nil {
		return Estimate{}, err
	}
	return s.estimate(ctx, tenantID, in.Kind, in.Target, s.now())
}

// EstimateCampaign estimates a stored campaign at its send time (now when
// unscheduled or past).
func (s *Service) EstimateCampaign(ctx context.Context, tenantID, id int64) (Estimate, error) {
	c, err := s.campaign(ctx, s.db, tenantID, id)
	if err != nil {
		return Estimate{}, err
	}
	at := s.now()
	if c.SendAt.After(at) {
		at = c.SendAt
	}
	return s.estimate(ctx, tenantID, c.Kind, c.Target, at)
}

func (s *Service) estimate(ctx context.Context, tenantID int64, kind string, t Target, at time.Time) (Estimate, error) {
	pl, err := s.resolvePlan(ctx, tenantID, kind, t, at)
	if err != nil {
		return Estimate{}, err
	}
	r, ok := s.rules(pl.channel)
	if !ok {
		r = defaultRules
	}
	e := Estimate{Targeted: pl.targeted, CapPolicy: pl.policy, CapLimit: pl.per.limit, PeriodStart: pl.per.start, PeriodEnd: pl.per.end,
		Warnings: pl.warnings, PerStaff: []StaffEstimate{}}
	if kind == KindGroups {
		e.CapPolicy, e.CapLimit = "", 0
	}
	per := map[string]*StaffEstimate{}
	for _, rc := range pl.recips {
		switch rc.skip {
		case ReasonNoRelation:
			e.NoRelation++
			continue
		case ReasonOverCap:
			e.OverCap++
		default:
			e.Recipients++
		}
		se := per[rc.account]
		if se == nil {
			se = &StaffEstimate{UserID: rc.account}
			per[rc.account] = se
		}
		if rc.skip == ReasonOverCap {
			se.OverCap++
		} else {
			se.Recipients++
		}
	}
	for _, se := range per {
		if se.Recipients > 0 {
			e.Staff++
			e.Batches += (se.Recipients + int64(r.MaxRecipients) - 1) / int64(r.MaxRecipients)
		}
		e.PerStaff = append(e.PerStaff, *se)
	}
	sort.Slice(e.PerStaff, func(i, j int) bool {
		a, b := e.PerStaff[i], e.PerStaff[j]
		if a.Recipients != b.Recipients {
			return a.Recipients > b.Recipients
		}
		return a.UserID < b.UserID
	})
	if len(e.PerStaff) > 100 {
		e.PerStaff = e.PerStaff[:100]
	}
	ids := make([]string, len(e.PerStaff))
	for i, se := range e.PerStaff {
		ids[i] = se.UserID
	}
	names, err := s.staffNames(ctx, tenantID, ids)
	if err != nil {
		return Estimate{}, err
	}
	for i := range e.PerStaff {
		e.PerStaff[i].Name = names[e.PerStaff[i].UserID]
	}
	if e.OverCap > 0 {
		e.Warnings = append(e.Warnings, fmt.Sprintf("%d customers reached the corp's cap (%d per %s) and will be skipped", e.OverCap, pl.per.limit, pl.policy))
	}
	return e, nil
}

// Preview renders a campaign's message for one customer, with who would
// send it, or why the customer would be skipped.
func (s *Service) Preview(ctx context.Context, tenantID int64, in CampaignInput, customerID int64) (Preview, error) {
	if in.Kind == "" {
		in.Kind = KindCustomers
	}
	var p Preview
	p.CustomerID = customerID
	err := s.db.QueryRowContext(ctx, `SELECT name FROM customers WHERE tenant_id = $1 AND id = $2`, tenantID, customerID).Scan(&p.CustomerName)
	if err == sql.ErrNoRows {
		return Preview{}, errs.NotFoundf("customer", "no customer with id %d", customerID)
	}
	if err != nil {
		return Preview{}, fmt.Errorf("message: unable to read customer %d: %w", customerID, err)
	}
	if in.Kind == KindCustomers && (in.Target.AudienceID != 0 || in.Target.Condition != nil) {
		ids, err := s.targetIDs(ctx, tenantID, in.Target)
		if err != nil {
			return Preview{}, err
		}
		if _, found := slices.BinarySearch(ids, customerID); !found {
			p.Skip = "not_in_target"
		}
	}
	staffOK := map[string]bool{}
	for _, u := range in.Target.StaffUserIDs {
		staffOK[u] = true
	}
	owners, err := s.owners(ctx, tenantID, []int64{customerID}, staffOK)
	if err != nil {
		return Preview{}, err
	}
	if o := owners[0]; o.account != "" {
		p.StaffUserID = o.account
		names, err := s.staffNames(ctx, tenantID, []string{o.account})
		if err != nil {
			return Preview{}, err
		}
		p.StaffName = names[o.account]
		set, err := s.Settings(ctx, tenantID)
		if err != nil {
			return Preview{}, err
		}
		per := periodOf(set.CapPolicy, s.now().In(s.location(ctx, tenantID)))
		counts, err := s.capCounts(ctx, tenantID, ChannelWeComCustomer, per, true, []int64{customerID})
		if err != nil {
			return Preview{}, err
		}
		if p.Skip == "" && counts[customerID] >= per.limit {
			p.Skip = ReasonOverCap
		}
	} else if p.Skip == "" {
		p.Skip = ReasonNoRelation
	}
	out := render(in.Content, p.CustomerName, p.StaffName)
	p.Text, p.Attachments = out.Text, out.Attachments
	return p, nil
}
