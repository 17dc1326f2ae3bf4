package community

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
)

// CustomerGroup is a customer group as Siyu knows it from WeCom, with Siyu's tags.
type CustomerGroup struct {
	ChatID        string     `json:"chat_id"`
	Name          string     `json:"name"`
	OwnerUserID   string     `json:"owner_userid" doc:"The owner's WeCom userid."`
	OwnerName     string     `json:"owner_name"`
	Notice        string     `json:"notice,omitempty"`
	Status        string     `json:"status" enum:"active,dismissed"`
	MemberCount   int64      `json:"member_count"`
	CustomerCount int64      `json:"customer_count" doc:"Members who are customers (external contacts)."`
	CreatedAt     time.Time  `json:"created_at" doc:"When the group was created in WeCom."`
	Tags          []GroupTag `json:"tags"`
}

// GroupQuery filters the group list; zero fields do not filter.
type GroupQuery struct {
	Owner  string // owner's WeCom userid
	Name   string // part of the name
	TagID  int64  // carries this group tag
	Status string // active or dismissed
}

const groupCols = `g.chat_id, g.name, g.owner_userid, g.notice, g.status, g.member_count, g.created_time,
	(SELECT count(*) FROM wecom_group_members m WHERE m.tenant_id = g.tenant_id AND m.chat_id = g.chat_id AND m.status = 'in' AND m.member_type = 2)`

func scanGroup(sc interface{ Scan(...any) error }) (CustomerGroup, error) {
	var g CustomerGroup
	var created int64
	if err := sc.Scan(&g.ChatID, &g.Name, &g.OwnerUserID, &g.Notice, &g.Status, &g.MemberCount, &created, &g.CustomerCount); err != nil {
		return CustomerGroup{}, err
	}
	g.CreatedAt = db.FromMillis(created)
	g.Tags = []GroupTag{}
	return g, nil
}

// Groups lists a workspace's customer groups, newest first.
func (s *Service) Groups(ctx context.Context, tenantID int64, q GroupQuery, r page.Request) (page.Page[CustomerGroup], error) {
	where := []string{"g.tenant_id = $1"}
	args := []any{tenantID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Owner != "" {
		where = append(where, "g.owner_userid = "+arg(q.Owner))
	}
	if name := strings.TrimSpace(q.Name); name != "" {
		args = append(args, "%"+db.LikeEscape(name)+"%")
		where = append(where, s.db.CaseInsensitiveLike("g.name", len(args))+` ESCAPE '\'`)
	}
	switch q.Status {
	case "":
	case "active", "dismissed":
		where = append(where, "g.status = "+arg(q.Status))
	default:
		return page.Page[CustomerGroup]{}, errs.Field("status", "invalid_status", "status is active or dismissed, not %q", q.Status)
	}
	if q.TagID != 0 {
		where = append(where, "EXISTS (SELECT 1 FROM community_group_tag_links l WHERE l.tenant_id = g.tenant_id AND l.chat_id = g.chat_id AND l.tag_id = "+arg(q.TagID)+")")
	}
	if r.Cursor != "" {
		var created int64
		var chatID string
		if err := page.Decode(r.Cursor, &created, &chatID); err != nil {
			return page.Page[CustomerGroup]{}, err
		}
		c, id := arg(created), arg(chatID)
		where = append(where, fmt.Sprintf("(g.created_time < %s OR (g.created_time = %s AND g.chat_id < %s))", c, c, id))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+groupCols+` FROM wecom_groups g WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY g.created_time DESC, g.chat_id DESC LIMIT %d`, r.Size()+1), args...)
	if err != nil {
		return page.Page[CustomerGroup]{}, fmt.Errorf("community: unable to list groups: %w", err)
	}
	defer rows.Close()
	var out []CustomerGroup
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return page.Page[CustomerGroup]{}, fmt.Errorf("community: unable to read a group: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return page.Page[CustomerGroup]{}, fmt.Errorf("community: unable to list groups: %w", err)
	}
	p := page.Trim(out, r, func(g CustomerGroup) string { return page.Encode(db.Millis(g.CreatedAt), g.ChatID) })
	if err := s.decorate(ctx, tenantID, p.Items); err != nil {
		return page.Page[CustomerGroup]{}, err
	}
	return p, nil
}

// decorate fills owner names and tags.
func (s *Service) decorate(ctx context.Context, tenantID int64, gs []CustomerGroup) error {
	if len(gs) == 0 {
		return nil
	}
	owners := make([]string, 0, len(gs))
	chats := make([]string, 0, len(gs))
	for _, g := range gs {
		owners = append(owners, g.OwnerUserID)
		chats = append(chats, g.ChatID)
	}
	if s.staff != nil {
		names, err := s.staff.NamesByWeComUserID(ctx, tenantID, owners)
		if err != nil {
			return err
		}
		for i := range gs {
			gs[i].OwnerName = names[gs[i].OwnerUserID]
		}
	}
	tags, err := s.tagsOfGroups(ctx, tenantID, chats)
	if err != nil {
		return err
	}
	for i := range gs {
		if t := tags[gs[i].ChatID]; t != nil {
			gs[i].Tags = t
		}
	}
	return nil
}

// Group returns one group.
func (s *Service) Group(ctx context.Context, tenantID int64, chatID string) (CustomerGroup, error) {
	g, err := scanGroup(s.db.QueryRowContext(ctx, `SELECT `+groupCols+` FROM wecom_groups g WHERE g.tenant_id = $1 AND g.chat_id = $2`, tenantID, chatID))
	if err == sql.ErrNoRows {
		return CustomerGroup{}, errs.E(errs.NotFound, "group_not_found", "no customer group %q in this workspace (it may not be synced from WeCom yet)", chatID)
	}
	if err != nil {
		return CustomerGroup{}, fmt.Errorf("community: unable to read group %s: %w", chatID, err)
	}
	gs := []CustomerGroup{g}
	if err := s.decorate(ctx, tenantID, gs); err != nil {
		return CustomerGroup{}, err
	}
	return gs[0], nil
}

// GroupMember is one member of a group, present or past.
type GroupMember struct {
	MemberID   string    `json:"member_id" doc:"A staff userid or a customer's external_userid."`
	Type       string    `json:"type" enum:"staff,customer"`
	CustomerID int64     `json:"customer_id,omitempty" doc:"The customer profile, for customers."`
	Name       string    `json:"name"`
	Nickname   string    `json:"group_nickname,omitempty"`
	Status     string    `json:"status" enum:"in,left"`
	JoinedAt   time.Time `json:"joined_at,omitzero"`
	JoinScene  int       `json:"join_scene" doc:"1 invited, 2 invitation link, 3 QR code."`
	LeftAt     time.Time `json:"left_at,omitzero"`
	Invitor    string    `json:"invitor_userid,omitempty"`
}

// MemberQuery filters a group's members.
type MemberQuery struct {
	Status string // in (default), left or all
}

// Members lists a group's members by member id.
func (s *Service) Members(ctx context.Context, tenantID int64, chatID string, q MemberQuery, r page.Request) (page.Page[GroupMember], error) {
	if _, err := s.Group(ctx, tenantID, chatID); err != nil {
		return page.Page[GroupMember]{}, err
	}
	where := "tenant_id = $1 AND chat_id = $2"
	args := []any{tenantID, chatID}
	switch q.Status {
	case "", "in":
		where += " AND status = 'in'"
	case "left":
		where += " AND status = 'left'"
	case "all":
	default:
		return page.Page[GroupMember]{}, errs.Field("status", "invalid_status", "status is in, left or all, not %q", q.Status)
	}
	if r.Cursor != "" {
		var after string
		if err := page.Decode(r.Cursor, &after); err != nil {
			return page.Page[GroupMember]{}, err
		}
		args = append(args, after)
		where += fmt.Sprintf(" AND member_id > $%d", len(args))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT member_id, member_type, coalesce(customer_id, 0), name, group_nickname, status, join_time, join_scene,
		left_at, invitor_userid FROM wecom_group_members WHERE `+where+fmt.Sprintf(` ORDER BY member_id LIMIT %d`, r.Size()+1), args...)
	if err != nil {
		return page.Page[GroupMember]{}, fmt.Errorf("community: unable to list members of %s: %w", chatID, err)
	}
	defer rows.Close()
	var out []GroupMember
	for rows.Next() {
		var m GroupMember
		var typ int
		var joined, left int64
		if err := rows.Scan(&m.MemberID, &typ, &m.CustomerID, &m.Name, &m.Nickname, &m.Status, &joined, &m.JoinScene, &left, &m.Invitor); err != nil {
			return page.Page[GroupMember]{}, fmt.Errorf("community: unable to read a member: %w", err)
		}
		m.Type = "staff"
		if typ == wecom.MemberExternal {
			m.Type = "customer"
		}
		m.JoinedAt, m.LeftAt = db.FromMillis(joined), db.FromMillis(left)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return page.Page[GroupMember]{}, err
	}
	p := page.Trim(out, r, func(m GroupMember) string { return page.Encode(m.MemberID) })
	// Staff named by the directory when WeCom gave no name.
	var staffIDs []string
	for _, m := range p.Items {
		if m.Type == "staff" && m.Name == "" {
			staffIDs = append(staffIDs, m.MemberID)
		}
	}
	if len(staffIDs) > 0 && s.staff != nil {
		names, err := s.staff.NamesByWeComUserID(ctx, tenantID, staffIDs)
		if err != nil {
			return page.Page[GroupMember]{}, err
		}
		for i := range p.Items {
			if n := names[p.Items[i].MemberID]; n != "" && p.Items[i].Name == "" {
				p.Items[i].Name = n
			}
		}
	}
	return p, nil
}

// GroupDayStat is one day of a group's (or several groups') membership: members
// at the end of the day, joins and leaves during it.
type GroupDayStat struct {
	Day     string `json:"day" doc:"YYYY-MM-DD in the workspace's time zone."`
	Members int64  `json:"members"`
	Joins   int64  `json:"joins"`
	Leaves  int64  `json:"leaves"`
	Net     int64  `json:"net"`
}

// MaxStatDays bounds a statistics range.
const MaxStatDays = 366

// StatsQuery selects the groups and days of DailyStats.
type StatsQuery struct {
	ChatID string // one group; "" with Owner: the owner's groups; both empty: every group
	Owner  string
	From   string // YYYY-MM-DD, inclusive; default 29 days before To
	To     string // YYYY-MM-DD, inclusive; default today
}

// DailyStats computes members, joins, leaves and net change per day from the
// member history the connector keeps (each member's latest join and leave:
// someone who left and came back counts once, at their latest join).
func (s *Service) DailyStats(ctx context.Context, tenantID int64, q StatsQuery) ([]GroupDayStat, error) {
	loc := s.location(ctx, tenantID)
	today := s.now().In(loc)
	to := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, loc)
	if q.To != "" {
		t, err := time.ParseInLocation(time.DateOnly, q.To, loc)
		if err != nil {
			return nil, errs.Field("to", "invalid_date", "to must be a date YYYY-MM-DD")
		}
		to = t
	}
	from := to.AddDate(0, 0, -29)
	if q.From != "" {
		t, err := time.ParseInLocation(time.DateOnly, q.From, loc)
		if err != nil {
			return nil, errs.Field("from", "invalid_date", "from must be a date YYYY-MM-DD")
		}
		from = t
	}
	if to.Before(from) {
		return nil, errs.Field("to", "invalid_range", "to is before from")
	}
	var days []time.Time
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
		if len(days) > MaxStatDays {
			return nil, errs.Field("from", "range_too_long", "statistics cover at most %d days", MaxStatDays)
		}
	}
	where := "m.tenant_id = $1"
	args := []any{tenantID}
	switch {
	case q.ChatID != "":
		if _, err := s.Group(ctx, tenantID, q.ChatID); err != nil {
			return nil, err
		}
		args = append(args, q.ChatID)
		where += " AND m.chat_id = $2"
	case q.Owner != "":
		args = append(args, q.Owner)
		where += " AND m.chat_id IN (SELECT chat_id FROM wecom_groups WHERE tenant_id = $1 AND owner_userid = $2)"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT m.join_time, m.status, m.left_at FROM wecom_group_members m WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("community: unable to read member history: %w", err)
	}
	defer rows.Close()
	ends := make([]int64, len(days)) // end of each day, exclusive, in millis
	starts := make([]int64, len(days))
	for i, d := range days {
		starts[i], ends[i] = db.Millis(d), db.Millis(d.AddDate(0, 0, 1))
	}
	dayOf := func(ms int64) int {
		i, found := slices.BinarySearch(starts, ms)
		if !found {
			i--
		}
		if i < 0 || ms >= ends[len(ends)-1] {
			return -1
		}
		return i
	}
	out := make([]GroupDayStat, len(days))
	for i, d := range days {
		out[i].Day = d.Format(time.DateOnly)
	}
	for rows.Next() {
		var joined, left int64
		var status string
		if err := rows.Scan(&joined, &status, &left); err != nil {
			return nil, fmt.Errorf("community: unable to read member history: %w", err)
		}
		hasLeft := status == "left"
		if i := dayOf(joined); joined > 0 && i >= 0 {
			out[i].Joins++
		}
		if i := dayOf(left); hasLeft && left > 0 && i >= 0 {
			out[i].Leaves++
		}
		for i := range days {
			if joined < ends[i] && (!hasLeft || left >= ends[i]) {
				out[i].Members++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Net = out[i].Joins - out[i].Leaves
	}
	return out, nil
}

// GroupWeComStats are WeCom's own statistics of an owner's groups per day
// (groupchat/statistic_group_by_day): they include message counts, which
// Siyu does not see.
type GroupWeComStats struct {
	Day          string `json:"day"`
	NewChats     int64  `json:"new_chat_cnt"`
	Chats        int64  `json:"chat_total"`
	ChatsWithMsg int64  `json:"chat_has_msg"`
	NewMembers   int64  `json:"new_member_cnt"`
	Members      int64  `json:"member_total"`
	MembersMsg   int64  `json:"member_has_msg"`
	Messages     int64  `json:"msg_total"`
}

// WeComDailyStats asks WeCom for its statistics of the groups of the owners
// (all owners when empty) for the days from–to (at most 30).
func (s *Service) WeComDailyStats(ctx context.Context, tenantID int64, owners []string, from, to string) ([]GroupWeComStats, error) {
	loc := s.location(ctx, tenantID)
	f, err1 := time.ParseInLocation(time.DateOnly, from, loc)
	t, err2 := time.ParseInLocation(time.DateOnly, to, loc)
	if err1 != nil || err2 != nil {
		return nil, errs.Field("from", "invalid_date", "from and to must be dates YYYY-MM-DD")
	}
	if t.Before(f) || t.Sub(f) > (wecom.MaxStatisticRangeDays-1)*24*time.Hour {
		return nil, errs.Field("to", "invalid_range", "WeCom's statistics cover 1 to %d days", wecom.MaxStatisticRangeDays)
	}
	c, err := s.client(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	items, err := c.GroupChatStatisticByDay(ctx, wecom.GroupStatQuery{DayBegin: f.Unix(), DayEnd: t.Unix(), Owners: owners})
	if err != nil {
		return nil, fmt.Errorf("community: unable to read WeCom's group statistics: %w", err)
	}
	out := make([]GroupWeComStats, 0, len(items))
	for _, it := range items {
		d := it.Data
		out = append(out, GroupWeComStats{Day: time.Unix(it.StatTime, 0).In(loc).Format(time.DateOnly), NewChats: d.NewChatCnt, Chats: d.ChatTotal,
			ChatsWithMsg: d.ChatHasMsg, NewMembers: d.NewMemberCnt, Members: d.MemberTotal, MembersMsg: d.MemberHasMsg, Messages: d.MsgTotal})
	}
	return out, nil
}

// activeChats returns which of the chat ids are live groups of the workspace.
func (s *Service) activeChats(ctx context.Context, tenantID int64, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range ids {
		var status string
		err := s.db.QueryRowContext(ctx, `SELECT status FROM wecom_groups WHERE tenant_id = $1 AND chat_id = $2`, tenantID, id).Scan(&status)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("community: unable to read group %s: %w", id, err)
		}
		out[id] = status == "active"
	}
	return out, nil
}

// Owner is a staff member who owns customer groups.
type Owner struct {
	UserID string `json:"userid"`
	Name   string `json:"name"`
	Groups int64  `json:"groups"`
}

// Owners lists the owners of live groups with how many each owns, by userid.
func (s *Service) Owners(ctx context.Context, tenantID int64) ([]Owner, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT owner_userid, count(*) FROM wecom_groups WHERE tenant_id = $1 AND status = 'active' AND owner_userid <> ''
		GROUP BY owner_userid ORDER BY owner_userid`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("community: unable to list group owners: %w", err)
	}
	defer rows.Close()
	var out []Owner
	var ids []string
	for rows.Next() {
		var o Owner
		if err := rows.Scan(&o.UserID, &o.Groups); err != nil {
			return nil, err
		}
		out = append(out, o)
		ids = append(ids, o.UserID)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if s.staff != nil && len(ids) > 0 {
		names, err := s.staff.NamesByWeComUserID(ctx, tenantID, ids)
		if err != nil {
			return nil, err
		}
		for i := range out {
			out[i].Name = names[out[i].UserID]
		}
	}
	return out, nil
}
