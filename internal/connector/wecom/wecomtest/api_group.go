package wecomtest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
)

// The simulator's customer groups: group codes (add_join_way), group welcome templates, statistics.

// DefaultGroupMemberLimit is how many members a simulated group takes before
// a group code moves on to the next group (WeCom's real limit is 200 for a
// group joined by QR code, 500 or 2,000 otherwise).
const DefaultGroupMemberLimit = 200

// joinWayState is the corp's state for these APIs (a field of Corp, guarded by its mu).
type joinWayState struct {
	ways      map[string]*joinWayRec
	templates map[string]*wecom.GroupWelcomeTemplate
	limit     int // members per group; 0: DefaultGroupMemberLimit
}

type joinWayRec struct {
	wecom.JoinWay
	nextRoom int // number of the next auto-created group
}

// init makes the maps; the caller holds c.mu.
func (st *joinWayState) init() {
	if st.ways == nil {
		st.ways = map[string]*joinWayRec{}
		st.templates = map[string]*wecom.GroupWelcomeTemplate{}
	}
}

// SetGroupMemberLimit sets how many members a group takes before a group
// code fills it (0: DefaultGroupMemberLimit).
func (c *Corp) SetGroupMemberLimit(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.joinWays.limit = n
}

// JoinWay returns a group code as get_join_way shows it.
func (c *Corp) JoinWay(configID string) (wecom.JoinWay, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	w := c.joinWays.ways[configID]
	if w == nil {
		return wecom.JoinWay{}, false
	}
	out := w.JoinWay
	out.ChatIDs = slices.Clone(w.ChatIDs)
	return out, true
}

// GroupWelcomeTemplate returns a stored group welcome template.
func (c *Corp) GroupWelcomeTemplate(templateID string) (wecom.GroupWelcomeTemplate, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.joinWays.templates[templateID]
	if t == nil {
		return wecom.GroupWelcomeTemplate{}, false
	}
	return *t, true
}

// groupHandlers are these APIs, by path after /cgi-bin/.
var groupHandlers = map[string]handler{
	"externalcontact/groupchat/add_join_way":           {post: true, fn: (*Server).addJoinWay},
	"externalcontact/groupchat/get_join_way":           {post: true, fn: (*Server).getJoinWay},
	"externalcontact/groupchat/update_join_way":        {post: true, fn: (*Server).updateJoinWay},
	"externalcontact/groupchat/del_join_way":           {post: true, fn: (*Server).delJoinWay},
	"externalcontact/group_welcome_template/add":       {post: true, fn: (*Server).addGroupWelcome},
	"externalcontact/group_welcome_template/edit":      {post: true, fn: (*Server).editGroupWelcome},
	"externalcontact/group_welcome_template/get":       {post: true, fn: (*Server).getGroupWelcome},
	"externalcontact/group_welcome_template/del":       {post: true, fn: (*Server).delGroupWelcome},
	"externalcontact/groupchat/statistic":              {post: true, fn: (*Server).groupStatistic},
	"externalcontact/groupchat/statistic_group_by_day": {post: true, fn: (*Server).groupStatisticByDay},
}

// checkJoinWay applies WeCom's rules to a group code; the caller holds c.mu.
func (c *Corp) checkJoinWay(w wecom.JoinWay) *apiError {
	switch {
	case w.Scene != 1 && w.Scene != 2:
		return fail(wecom.CodeInvalidParam, "invalid scene")
	case len(w.ChatIDs) == 0:
		return fail(wecom.CodeInvalidParam, "chat_id_list is empty")
	case len(w.ChatIDs) > wecom.MaxJoinWayChats:
		return fail(wecom.CodeInvalidParam, "chat_id_list exceeds %d", wecom.MaxJoinWayChats)
	case utf8.RuneCountInString(w.State) > wecom.MaxJoinWayState:
		return fail(wecom.CodeInvalidParam, "state exceeds 30 characters")
	case utf8.RuneCountInString(w.Remark) > wecom.MaxJoinWayRemark:
		return fail(wecom.CodeInvalidParam, "remark exceeds 30 characters")
	case w.AutoCreateRoom == 1 && (w.RoomBaseName == "" || utf8.RuneCountInString(w.RoomBaseName) > wecom.MaxRoomBaseName):
		return fail(wecom.CodeInvalidParam, "invalid room_base_name")
	}
	for _, id := range w.ChatIDs {
		g := c.groups[id]
		switch {
		case g == nil:
			return fail(wecom.CodeChatNotFound, "chatid not found: %s", id)
		case g.Dismissed:
			return fail(wecom.CodeChatDismissed, "chat has been dismissed: %s", id)
		}
	}
	return nil
}

func (s *Server) addJoinWay(q *request) (map[string]any, *apiError) {
	var w wecom.JoinWay
	if e := q.decode(&w); e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.checkJoinWay(w); e != nil {
		return nil, e
	}
	c.joinWays.init()
	c.seq++
	sum := splitmix(c.seq ^ c.salt ^ 0x6a01)
	w.ConfigID = fmt.Sprintf("%016x%016x", sum, splitmix(sum))
	if w.Scene == 2 {
		w.QRCode = s.URL() + "/sim/qr/" + w.ConfigID + ".png"
	}
	w.ChatIDs = slices.Clone(w.ChatIDs)
	c.joinWays.ways[w.ConfigID] = &joinWayRec{JoinWay: w, nextRoom: w.RoomBaseID}
	return map[string]any{"config_id": w.ConfigID}, nil
}

func (s *Server) getJoinWay(q *request) (map[string]any, *apiError) {
	var in struct {
		ConfigID string `json:"config_id"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	w, ok := s.Corp.JoinWay(in.ConfigID)
	if !ok {
		return nil, fail(wecom.CodeInvalidJoinWay, "invalid config_id")
	}
	return map[string]any{"join_way": w}, nil
}

func (s *Server) updateJoinWay(q *request) (map[string]any, *apiError) {
	var w wecom.JoinWay
	if e := q.decode(&w); e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.joinWays.ways[w.ConfigID]
	if r == nil {
		return nil, fail(wecom.CodeInvalidJoinWay, "invalid config_id")
	}
	if e := c.checkJoinWay(w); e != nil {
		return nil, e
	}
	w.QRCode = r.QRCode
	w.ChatIDs = slices.Clone(w.ChatIDs)
	if w.RoomBaseID != r.RoomBaseID {
		r.nextRoom = w.RoomBaseID
	}
	r.JoinWay = w
	return nil, nil
}

func (s *Server) delJoinWay(q *request) (map[string]any, *apiError) {
	var in struct {
		ConfigID string `json:"config_id"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.joinWays.ways[in.ConfigID] == nil {
		return nil, fail(wecom.CodeInvalidJoinWay, "invalid config_id")
	}
	delete(c.joinWays.ways, in.ConfigID)
	return nil, nil
}

// JoinByWay is a customer scanning a group code: they join the first of the
// code's groups that is not full. When all are full and the code has
// auto_create_room, WeCom opens a new group named room_base_name followed by
// the next number, owned by the owner of the code's last group, adds it to
// the code (keeping at most five groups: the oldest full one drops off) and
// reports it (change_external_chat/create) before the join
// (update/add_member, JoinScene 3). A new customer is created when
// ct.ExternalUserID is empty or unknown. It returns the group joined.
func (s *Server) JoinByWay(ctx context.Context, configID string, ct Contact) (Group, error) {
	c := s.Corp
	c.mu.Lock()
	w := c.joinWays.ways[configID]
	if w == nil {
		c.mu.Unlock()
		return Group{}, fmt.Errorf("wecomtest: no group code %q", configID)
	}
	limit := c.joinWays.limit
	if limit <= 0 {
		limit = DefaultGroupMemberLimit
	}
	r := c.contacts[ct.ExternalUserID]
	if r == nil || ct.ExternalUserID == "" {
		var err error
		if r, err = c.putContact(ct); err != nil {
			c.mu.Unlock()
			return Group{}, err
		}
	}
	var target *groupRec
	owner := ""
	for _, id := range w.ChatIDs {
		g := c.groups[id]
		if g == nil || g.Dismissed {
			continue
		}
		owner = g.Owner
		if g.memberIndex(r.ExternalUserID) >= 0 {
			c.mu.Unlock()
			return Group{}, fmt.Errorf("wecomtest: %s is already in group %s", r.ExternalUserID, id)
		}
		if len(g.Members) < limit {
			target = g
			break
		}
	}
	created := false
	if target == nil {
		if w.AutoCreateRoom != 1 || owner == "" {
			c.mu.Unlock()
			return Group{}, fmt.Errorf("wecomtest: every group of code %s is full", configID)
		}
		g, err := c.addGroup(owner, w.RoomBaseName+strconv.Itoa(w.nextRoom), nil, wecom.JoinByInvite)
		if err != nil {
			c.mu.Unlock()
			return Group{}, err
		}
		w.nextRoom++
		w.ChatIDs = append(w.ChatIDs, g.ChatID)
		if len(w.ChatIDs) > wecom.MaxJoinWayChats {
			w.ChatIDs = slices.Clone(w.ChatIDs[len(w.ChatIDs)-wecom.MaxJoinWayChats:])
		}
		target, created = g, true
	}
	m, err := c.newMember(r.ExternalUserID, wecom.JoinByQRCode, "")
	if err != nil {
		c.mu.Unlock()
		return Group{}, err
	}
	last := target.MemberVersion
	target.Members = append(target.Members, m)
	target.ver++
	target.MemberVersion = memberVersion(target.ChatID, target.ver)
	cur := target.MemberVersion
	out := target.snapshot()
	c.mu.Unlock()
	if created {
		createdMsg := s.chatEvent(out.ChatID, wecom.ChangeChatCreate, "")
		s.emit(ctx, createdMsg)
	}
	ev := s.chatEvent(out.ChatID, wecom.ChangeChatUpdate, wecom.UpdateAddMember).num("JoinScene", int64(wecom.JoinSceneQRCode))
	s.emit(ctx, memberChange(ev, []string{r.ExternalUserID}, last, cur))
	return out, nil
}

func (s *Server) addGroupWelcome(q *request) (map[string]any, *apiError) {
	var t wecom.GroupWelcomeTemplate
	if e := q.decode(&t); e != nil {
		return nil, e
	}
	if e := checkGroupWelcome(t); e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	c.joinWays.init()
	t.TemplateID = c.newID("msg", 24)
	c.joinWays.templates[t.TemplateID] = &t
	return map[string]any{"template_id": t.TemplateID}, nil
}

func checkGroupWelcome(t wecom.GroupWelcomeTemplate) *apiError {
	switch {
	case (t.Text == nil || t.Text.Content == "") && t.Image == nil && t.Link == nil && t.MiniProgram == nil && t.File == nil && t.Video == nil:
		return fail(wecom.CodeInvalidParam, "text and attachment are both empty")
	case t.Text != nil && len(t.Text.Content) > wecom.MaxGroupWelcomeText:
		return fail(wecom.CodeInvalidParam, "text exceeds 4000 bytes")
	case t.Link != nil && (t.Link.Title == "" || t.Link.URL == ""):
		return fail(wecom.CodeInvalidParam, "link needs title and url")
	case t.MiniProgram != nil && (t.MiniProgram.AppID == "" || t.MiniProgram.Page == "" || t.MiniProgram.Title == "" || t.MiniProgram.PicMediaID == ""):
		return fail(wecom.CodeInvalidParam, "miniprogram needs title, pic_media_id, appid and page")
	}
	return nil
}

func (s *Server) editGroupWelcome(q *request) (map[string]any, *apiError) {
	var t wecom.GroupWelcomeTemplate
	if e := q.decode(&t); e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.joinWays.templates[t.TemplateID]
	if old == nil {
		return nil, fail(wecom.CodeInvalidParam, "invalid template_id")
	}
	if e := checkGroupWelcome(t); e != nil {
		return nil, e
	}
	t.Notify = old.Notify
	*old = t
	return nil, nil
}

func (s *Server) getGroupWelcome(q *request) (map[string]any, *apiError) {
	var in struct {
		TemplateID string `json:"template_id"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	t, ok := s.Corp.GroupWelcomeTemplate(in.TemplateID)
	if !ok {
		return nil, fail(wecom.CodeInvalidParam, "invalid template_id")
	}
	out := map[string]any{}
	if t.Text != nil {
		out["text"] = t.Text
	}
	if t.Image != nil {
		out["image"] = t.Image
	}
	if t.Link != nil {
		out["link"] = t.Link
	}
	if t.MiniProgram != nil {
		out["miniprogram"] = t.MiniProgram
	}
	if t.File != nil {
		out["file"] = t.File
	}
	if t.Video != nil {
		out["video"] = t.Video
	}
	return out, nil
}

func (s *Server) delGroupWelcome(q *request) (map[string]any, *apiError) {
	var in struct {
		TemplateID string `json:"template_id"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.joinWays.templates[in.TemplateID] == nil {
		return nil, fail(wecom.CodeInvalidParam, "invalid template_id")
	}
	delete(c.joinWays.templates, in.TemplateID)
	return nil, nil
}

type statQuery struct {
	DayBeginTime int64 `json:"day_begin_time"`
	DayEndTime   int64 `json:"day_end_time"`
	OwnerFilter  struct {
		UserIDList []string `json:"userid_list"`
	} `json:"owner_filter"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

func (q statQuery) check() *apiError {
	switch {
	case q.DayBeginTime == 0:
		return fail(wecom.CodeInvalidParam, "day_begin_time is required")
	case q.DayEndTime != 0 && q.DayEndTime < q.DayBeginTime:
		return fail(wecom.CodeInvalidParam, "day_end_time is before day_begin_time")
	case q.DayEndTime != 0 && q.DayEndTime-q.DayBeginTime > (wecom.MaxStatisticRangeDays-1)*86400:
		return fail(wecom.CodeInvalidParam, "the range exceeds %d days", wecom.MaxStatisticRangeDays)
	}
	return nil
}

// statFor computes WeCom's group statistics of the groups of the given
// owners (all when empty) for the days [from, to) from the simulated groups:
// groups created and members who joined in the window, totals at its end.
// Messages are not simulated, so the message counts are zero. The caller
// holds c.mu.
func (c *Corp) statFor(owners []string, from, to time.Time) wecom.GroupStatData {
	var d wecom.GroupStatData
	for _, id := range c.groupIDs {
		g := c.groups[id]
		if g.Dismissed || (len(owners) > 0 && !slices.Contains(owners, g.Owner)) || !g.CreateTime.Before(to) {
			continue
		}
		d.ChatTotal++
		if !g.CreateTime.Before(from) {
			d.NewChatCnt++
		}
		for _, m := range g.Members {
			if m.JoinTime.Before(to) {
				d.MemberTotal++
				if !m.JoinTime.Before(from) {
					d.NewMemberCnt++
				}
			}
		}
	}
	return d
}

func (s *Server) groupStatistic(q *request) (map[string]any, *apiError) {
	var in statQuery
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	if e := in.check(); e != nil {
		return nil, e
	}
	end := in.DayEndTime
	if end == 0 {
		end = in.DayBeginTime
	}
	from, to := time.Unix(in.DayBeginTime, 0), time.Unix(end, 0).Add(24*time.Hour)
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	owners := in.OwnerFilter.UserIDList
	if len(owners) == 0 {
		seen := map[string]bool{}
		for _, id := range c.groupIDs {
			if g := c.groups[id]; !g.Dismissed && !seen[g.Owner] {
				seen[g.Owner] = true
				owners = append(owners, g.Owner)
			}
		}
	}
	items := []wecom.GroupStatByOwner{}
	for _, o := range owners {
		items = append(items, wecom.GroupStatByOwner{Owner: o, Data: c.statFor([]string{o}, from, to)})
	}
	slices.SortStableFunc(items, func(a, b wecom.GroupStatByOwner) int { return int(b.Data.NewChatCnt - a.Data.NewChatCnt) })
	total := len(items)
	limit := in.Limit
	if limit <= 0 || limit > 1000 {
		limit = 500
	}
	start := min(in.Offset, total)
	page := items[start:min(start+limit, total)]
	return map[string]any{"total": total, "next_offset": start + len(page), "items": page}, nil
}

func (s *Server) groupStatisticByDay(q *request) (map[string]any, *apiError) {
	var in statQuery
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	if e := in.check(); e != nil {
		return nil, e
	}
	end := in.DayEndTime
	if end == 0 {
		end = in.DayBeginTime
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	items := []wecom.GroupStatByDay{}
	for day := in.DayBeginTime; day <= end; day += 86400 {
		from := time.Unix(day, 0)
		items = append(items, wecom.GroupStatByDay{StatTime: day, Data: c.statFor(in.OwnerFilter.UserIDList, from, from.Add(24*time.Hour))})
	}
	return map[string]any{"items": items}, nil
}
