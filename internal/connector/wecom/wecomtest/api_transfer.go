package wecomtest

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
)

// The simulator's handover: transfer_customer, transfer_result, resigned/*,
// get_unassigned_list, groupchat/transfer and groupchat/onjob_transfer.
//
// As in WeCom, a customer transfer only starts when it is accepted: the
// customer has 24 hours (simulated) to refuse, then it completes and the
// corp sends del_external_contact (DELETE_BY_TRANSFER) and
// add_external_contact, or transfer_fail when the customer refused or the
// taking-over member has too many customers. Transfers complete when
// transfer_result is read after their 24 hours, or at once through
// CompleteTransfers. Group transfers take effect at once.

// Transfer statuses of transfer_result (94088).
const (
	TransferDone        = 1 // 接替完毕
	TransferWaiting     = 2 // 等待接替
	TransferRefused     = 3 // 客户拒绝
	TransferLimit       = 4 // 接替成员客户达到上限
	TransferNoRecord    = 5 // 无接替记录
	transferWindow      = 24 * time.Hour
	transferRuleWindow  = 90 * 24 * time.Hour
	transferRuleMax     = 2
	maxTransferPerCall  = 100
	maxTransferMsgRunes = 200
	unassignedPageMax   = 1000
)

// Error codes of the handover APIs.
const (
	codeNotResigned       = 40097 // 该成员尚未离职
	codeTransferTooOften  = wecom.CodeTransferTooOften
	codeTransferring      = wecom.CodeTransferInProgress
	codeSameStaff         = 40130 // 原跟进人与接手人一样，不可继承
	codeNotHandoverFollow = 40131 // handover_userid 并不是外部联系人的跟进人
	codeOwnerNotResigned  = 90500 // 群主并未离职
	codeNotCustomerGroup  = 90501 // 该群不是客户群
	codeOwnerResigned     = 90502 // 群主已经离职
	codeGroupTooOften     = 90503 // 满额了: the group was transferred twice in 90 days
	codeSameOwner         = 90504 // 群主没变
)

// transferState is the corp's state for these APIs (a field of Corp, guarded by its mu).
type transferState struct {
	recs     []*transferRec
	refuses  map[string]bool        // customers who refuse any transfer
	limits   map[string]int         // customer limits of members
	history  map[string][]time.Time // on-job transfers of a customer (not refused), for the 90-day rule
	groupHis map[string][]time.Time // on-job transfers of a group
}

type transferRec struct {
	resigned           bool
	handover, takeover string
	externalUserID     string
	started            time.Time
	status             int
	takeoverTime       time.Time
	msg                string
}

func (t *transferState) init() {
	if t.refuses == nil {
		t.refuses, t.limits = map[string]bool{}, map[string]int{}
		t.history, t.groupHis = map[string][]time.Time{}, map[string][]time.Time{}
	}
}

// transferHandlers are these APIs, by path after /cgi-bin/.
var transferHandlers = map[string]handler{
	"externalcontact/transfer_customer":          {post: true, fn: func(s *Server, q *request) (map[string]any, *apiError) { return s.transferCustomer(q, false) }},
	"externalcontact/resigned/transfer_customer": {post: true, fn: func(s *Server, q *request) (map[string]any, *apiError) { return s.transferCustomer(q, true) }},
	"externalcontact/transfer_result":            {post: true, fn: func(s *Server, q *request) (map[string]any, *apiError) { return s.transferResult(q, false) }},
	"externalcontact/resigned/transfer_result":   {post: true, fn: func(s *Server, q *request) (map[string]any, *apiError) { return s.transferResult(q, true) }},
	"externalcontact/get_unassigned_list":        {post: true, fn: (*Server).getUnassignedList},
	"externalcontact/groupchat/transfer":         {post: true, fn: func(s *Server, q *request) (map[string]any, *apiError) { return s.groupTransfer(q, true) }},
	"externalcontact/groupchat/onjob_transfer":   {post: true, fn: func(s *Server, q *request) (map[string]any, *apiError) { return s.groupTransfer(q, false) }},
}

// SetRefuses makes customers refuse every transfer offered to them (they
// answer within the 24 hours WeCom gives them).
func (s *Server) SetRefuses(externalUserIDs ...string) {
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transfers.init()
	for _, id := range externalUserIDs {
		c.transfers.refuses[id] = true
	}
}

// SetCustomerLimit caps how many customers a member may have: a transfer
// that would take them over it fails (status 4, customer_limit_exceed).
func (s *Server) SetCustomerLimit(userID string, n int) {
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transfers.init()
	c.transfers.limits[userID] = n
}

// Transfer is one customer transfer the corp knows, for tests.
type Transfer struct {
	Resigned           bool
	HandoverUserID     string
	TakeoverUserID     string
	ExternalUserID     string
	Started            time.Time
	Status             int
	TransferSuccessMsg string
}

// Transfers returns every customer transfer started, in order.
func (s *Server) Transfers() []Transfer {
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Transfer, 0, len(c.transfers.recs))
	for _, r := range c.transfers.recs {
		out = append(out, Transfer{Resigned: r.resigned, HandoverUserID: r.handover, TakeoverUserID: r.takeover,
			ExternalUserID: r.externalUserID, Started: r.started, Status: r.status, TransferSuccessMsg: r.msg})
	}
	return out
}

// CompleteTransfers ends every waiting transfer now, as if their 24 hours
// had passed, firing the callbacks WeCom sends. It returns how many ended.
func (s *Server) CompleteTransfers(ctx context.Context) int {
	return s.completeTransfers(ctx, true)
}

// completeTransfers ends the waiting transfers whose 24 hours are over (all
// of them when all is set): refused ones fire transfer_fail, the others move
// the relation and fire del/add.
func (s *Server) completeTransfers(ctx context.Context, all bool) int {
	c := s.Corp
	now := s.Now()
	type outcome struct {
		rec    *transferRec
		reason string
	}
	var due []outcome
	c.mu.Lock()
	c.transfers.init()
	for _, r := range c.transfers.recs {
		if r.status != TransferWaiting || (!all && now.Sub(r.started) < transferWindow) {
			continue
		}
		switch {
		case c.transfers.refuses[r.externalUserID]:
			r.status = TransferRefused
			c.dropHistory(r)
			due = append(due, outcome{r, wecom.FailReasonCustomerRefused})
		case c.overLimit(r.takeover):
			r.status = TransferLimit
			c.dropHistory(r)
			due = append(due, outcome{r, wecom.FailReasonCustomerLimitExceed})
		default:
			r.status, r.takeoverTime = TransferDone, now
			due = append(due, outcome{rec: r})
		}
	}
	c.mu.Unlock()
	for _, o := range due {
		r := o.rec
		if o.reason != "" {
			if err := s.FailTransfer(ctx, r.takeover, r.externalUserID, o.reason); err != nil {
				s.log.Warn("wecomtest: transfer_fail", "err", err)
			}
			continue
		}
		if err := s.TransferContact(ctx, r.handover, r.takeover, r.externalUserID); err != nil {
			// The relation ended meanwhile (a deletion): nothing to move.
			c.mu.Lock()
			r.status = TransferNoRecord
			c.mu.Unlock()
			s.log.Warn("wecomtest: transfer not completed", "err", err)
		}
	}
	return len(due)
}

// dropHistory forgets a failed on-job transfer for the 90-day rule. The caller holds c.mu.
func (c *Corp) dropHistory(r *transferRec) {
	if r.resigned {
		return
	}
	h := c.transfers.history[r.externalUserID]
	if i := slices.Index(h, r.started); i >= 0 {
		c.transfers.history[r.externalUserID] = slices.Delete(h, i, i+1)
	}
}

// overLimit reports whether a member has reached their customer limit. The caller holds c.mu.
func (c *Corp) overLimit(userID string) bool {
	n, ok := c.transfers.limits[userID]
	if !ok {
		return false
	}
	st := c.staff[userID]
	return st != nil && len(st.follows) >= n
}

// recent returns the times within the 90-day window. The caller holds c.mu.
func recent(ts []time.Time, now time.Time) []time.Time {
	return slices.DeleteFunc(slices.Clone(ts), func(t time.Time) bool { return now.Sub(t) >= transferRuleWindow })
}

func (s *Server) transferCustomer(q *request, resigned bool) (map[string]any, *apiError) {
	var in struct {
		HandoverUserID     string   `json:"handover_userid"`
		TakeoverUserID     string   `json:"takeover_userid"`
		ExternalUserID     []string `json:"external_userid"`
		TransferSuccessMsg string   `json:"transfer_success_msg"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	switch {
	case len(in.ExternalUserID) == 0:
		return nil, fail(wecom.CodeInvalidParam, "external_userid is empty")
	case len(in.ExternalUserID) > maxTransferPerCall:
		return nil, fail(wecom.CodeInvalidParam, "external_userid exceeds %d", maxTransferPerCall)
	case len([]rune(in.TransferSuccessMsg)) > maxTransferMsgRunes:
		return nil, fail(wecom.CodeInvalidParam, "transfer_success_msg exceeds %d characters", maxTransferMsgRunes)
	}
	now := s.Now()
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transfers.init()
	h := c.staff[in.HandoverUserID]
	switch {
	case h == nil || (!resigned && h.deleted):
		return nil, fail(wecom.CodeInvalidUserID, "invalid handover_userid")
	case resigned && !h.deleted:
		return nil, fail(codeNotResigned, "handover_userid has not resigned")
	case c.liveStaff(in.TakeoverUserID) == nil:
		return nil, fail(wecom.CodeInvalidUserID, "invalid takeover_userid")
	}
	out := make([]map[string]any, 0, len(in.ExternalUserID))
	for _, ext := range in.ExternalUserID {
		code := c.startTransfer(in.HandoverUserID, in.TakeoverUserID, ext, in.TransferSuccessMsg, resigned, now)
		out = append(out, map[string]any{"external_userid": ext, "errcode": code})
	}
	return map[string]any{"customer": out}, nil
}

// startTransfer checks one customer and starts their transfer, returning
// the customer's errcode. The caller holds c.mu.
func (c *Corp) startTransfer(handover, takeover, ext, msg string, resigned bool, now time.Time) int {
	t := &c.transfers
	switch {
	case c.contacts[ext] == nil:
		return wecom.CodeInvalidExternalUser
	case handover == takeover:
		return codeSameStaff
	case c.follow(handover, ext) == nil:
		return codeNotHandoverFollow
	case c.follow(takeover, ext) != nil:
		return wecom.CodeInvalidExternalUser // the takeover already serves the customer
	}
	for _, r := range t.recs {
		if r.externalUserID == ext && r.status == TransferWaiting {
			return codeTransferring
		}
	}
	if !resigned {
		h := recent(t.history[ext], now)
		if len(h) >= transferRuleMax {
			return codeTransferTooOften
		}
		t.history[ext] = append(h, now)
	}
	t.recs = append(t.recs, &transferRec{resigned: resigned, handover: handover, takeover: takeover, externalUserID: ext,
		started: now, status: TransferWaiting, msg: msg})
	return 0
}

func (s *Server) transferResult(q *request, resigned bool) (map[string]any, *apiError) {
	var in struct {
		HandoverUserID string `json:"handover_userid"`
		TakeoverUserID string `json:"takeover_userid"`
		Cursor         string `json:"cursor"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	q.call.Cursor = in.Cursor
	if in.HandoverUserID == "" || in.TakeoverUserID == "" {
		return nil, fail(wecom.CodeInvalidParam, "handover_userid and takeover_userid are required")
	}
	start := 0
	if in.Cursor != "" {
		_, n, ok := decodeCursor(in.Cursor)
		if !ok {
			return nil, fail(wecom.CodeInvalidCursor, "invalid cursor")
		}
		start = int(n)
	}
	// Transfers whose 24 hours are over end when their result is read.
	s.completeTransfers(q.r.Context(), false)
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	var matching []*transferRec
	for _, r := range c.transfers.recs {
		if r.resigned == resigned && r.handover == in.HandoverUserID && r.takeover == in.TakeoverUserID {
			matching = append(matching, r)
		}
	}
	// The latest transfer of each customer answers for them.
	latest := map[string]int{}
	var order []string
	for i, r := range matching {
		if _, ok := latest[r.externalUserID]; !ok {
			order = append(order, r.externalUserID)
		}
		latest[r.externalUserID] = i
	}
	const pageSize = 100
	out := []map[string]any{}
	next := ""
	for i := start; i < len(order); i++ {
		if len(out) == pageSize {
			next = encodeCursor("", uint64(i))
			break
		}
		r := matching[latest[order[i]]]
		var at int64
		if !r.takeoverTime.IsZero() {
			at = r.takeoverTime.Unix()
		}
		out = append(out, map[string]any{"external_userid": r.externalUserID, "status": r.status, "takeover_time": at})
	}
	return map[string]any{"customer": out, "next_cursor": next}, nil
}

func (s *Server) getUnassignedList(q *request) (map[string]any, *apiError) {
	var in struct {
		Cursor   string `json:"cursor"`
		PageSize int    `json:"page_size"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	q.call.Cursor, q.call.Limit = in.Cursor, in.PageSize
	size := in.PageSize
	if size <= 0 || size > unassignedPageMax {
		size = unassignedPageMax
	}
	start := 0
	if in.Cursor != "" {
		_, n, ok := decodeCursor(in.Cursor)
		if !ok {
			return nil, fail(wecom.CodeInvalidCursor, "invalid cursor")
		}
		start = int(n)
	}
	c := s.Corp
	c.mu.RLock()
	defer c.mu.RUnlock()
	type pair struct{ user, ext string }
	var all []pair
	for _, id := range c.staffIDs {
		st := c.staff[id]
		if st == nil || !st.deleted {
			continue
		}
		for _, f := range st.follows {
			if !c.transferring(f.ExternalUserID) {
				all = append(all, pair{id, f.ExternalUserID})
			}
		}
	}
	out := []map[string]any{}
	next := ""
	i := start
	for ; i < len(all) && len(out) < size; i++ {
		out = append(out, map[string]any{"handover_userid": all[i].user, "external_userid": all[i].ext, "dimission_time": 0})
	}
	last := i >= len(all)
	if !last {
		next = encodeCursor("", uint64(i))
	}
	return map[string]any{"info": out, "is_last": last, "next_cursor": next}, nil
}

// transferring reports whether a customer has a waiting transfer. The caller holds c.mu.
func (c *Corp) transferring(ext string) bool {
	for _, r := range c.transfers.recs {
		if r.externalUserID == ext && r.status == TransferWaiting {
			return true
		}
	}
	return false
}

func (s *Server) groupTransfer(q *request, resigned bool) (map[string]any, *apiError) {
	var in struct {
		ChatIDList []string `json:"chat_id_list"`
		NewOwner   string   `json:"new_owner"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	switch {
	case len(in.ChatIDList) == 0:
		return nil, fail(wecom.CodeInvalidParam, "chat_id_list is empty")
	case len(in.ChatIDList) > maxTransferPerCall:
		return nil, fail(wecom.CodeInvalidParam, "chat_id_list exceeds %d", maxTransferPerCall)
	}
	now := s.Now()
	c := s.Corp
	c.mu.Lock()
	c.transfers.init()
	if c.liveStaff(in.NewOwner) == nil {
		c.mu.Unlock()
		return nil, fail(wecom.CodeInvalidUserID, "invalid new_owner")
	}
	failed := []map[string]any{}
	var moved []string
	for _, id := range in.ChatIDList {
		code, msg := c.transferGroup(id, in.NewOwner, resigned, now)
		if code != 0 {
			failed = append(failed, map[string]any{"chat_id": id, "errcode": code, "errmsg": msg})
			continue
		}
		moved = append(moved, id)
	}
	c.mu.Unlock()
	for _, id := range moved {
		s.emit(q.r.Context(), s.chatEvent(id, wecom.ChangeChatUpdate, wecom.UpdateChangeOwner))
	}
	return map[string]any{"failed_chat_list": failed}, nil
}

// transferGroup gives a group a new owner, who joins it when not in it. The caller holds c.mu.
func (c *Corp) transferGroup(chatID, newOwner string, resigned bool, now time.Time) (int, string) {
	g := c.groups[chatID]
	switch {
	case g == nil:
		return codeNotCustomerGroup, "chat is not external group chat"
	case g.Dismissed:
		return wecom.CodeChatDismissed, "chat has been dismissed"
	case g.Owner == newOwner:
		return codeSameOwner, "owner not changed"
	}
	ownerLive := c.liveStaff(g.Owner) != nil
	switch {
	case resigned && ownerLive:
		return codeOwnerNotResigned, "owner has not resigned"
	case !resigned && !ownerLive:
		return codeOwnerResigned, "owner has resigned"
	}
	if !resigned {
		h := recent(c.transfers.groupHis[chatID], now)
		if len(h) >= transferRuleMax {
			return codeGroupTooOften, "the group was transferred " + strconv.Itoa(transferRuleMax) + " times in 90 days"
		}
		c.transfers.groupHis[chatID] = append(h, now)
	}
	if g.memberIndex(newOwner) < 0 {
		m, err := c.newMember(newOwner, wecom.JoinByInvite, g.Owner)
		if err == nil {
			g.Members = append(g.Members, m)
			g.ver++
			g.MemberVersion = memberVersion(g.ChatID, g.ver)
		}
	}
	g.Owner = newOwner
	if resigned {
		g.Status = wecom.ChatInheritanceDone
	}
	return 0, ""
}
