package wecom

import (
	"context"

	"github.com/siyu-dev/siyu/internal/errs"
)

// Handover APIs (在职继承 / 离职继承). A customer transfer WeCom accepts is
// only started: the customer has 24 hours to refuse, and the outcome is read
// later from transfer_result. None of the writes is retried on a network
// error: whether it reached WeCom is settled by reading the results.

// Limits and codes of the handover APIs.
const (
	MaxTransferPerCall    = 100   // customers per transfer_customer, chats per groupchat transfer
	MaxTransferMsgRunes   = 200   // transfer_success_msg
	MaxUnassignedPageSize = 1000  // get_unassigned_list page_size
	CodeNotResigned       = 40097 // resigned/transfer_customer: the member has not resigned
	CodeTakeoverLimit     = 40099 // the taking-over member has too many customers
	CodeSameHandover      = 40130 // the handover and takeover members are the same
	CodeNotHandoverFollow = 40131 // the customer is not the handover member's
	CodeOwnerNotResigned  = 90500 // groupchat/transfer: the owner has not resigned
	CodeNotCustomerGroup  = 90501 // not a customer group
	CodeOwnerResigned     = 90502 // groupchat/onjob_transfer: the owner resigned
	CodeGroupTransferCap  = 90503 // the group cannot be transferred again now
	CodeSameOwner         = 90504 // the new owner is the owner
)

// Statuses of transfer_result (94088, 94082).
const (
	TransferDone     = 1 // 接替完毕
	TransferWaiting  = 2 // 等待接替
	TransferRefused  = 3 // 客户拒绝
	TransferLimit    = 4 // 接替成员客户达到上限
	TransferNoRecord = 5 // 无接替记录
)

func init() {
	for code, s := range map[int]string{
		CodeNotResigned:       "The staff member has not left the corp, so their customers cannot be inherited; use an on-job transfer.",
		CodeTakeoverLimit:     "The staff member taking over has reached WeCom's limit of customers.",
		CodeSameHandover:      "The customer cannot be handed over to the staff member who already serves them.",
		CodeNotHandoverFollow: "The customer is not (any more) a customer of the staff member handing over.",
		CodeOwnerNotResigned:  "The group's owner has not left the corp; use an on-job group transfer.",
		CodeNotCustomerGroup:  "The chat is not a customer group (or does not exist).",
		CodeOwnerResigned:     "The group's owner has left the corp; inherit the group instead.",
		CodeGroupTransferCap:  "The group cannot be transferred again now: WeCom allows a group to be transferred at most twice in 90 days.",
		CodeSameOwner:         "The new owner already owns the group.",
	} {
		if _, ok := explanations[code]; !ok {
			explanations[code] = s
		}
	}
}

// TransferRequest moves customers of one member to another.
type TransferRequest struct {
	HandoverUserID  string   `json:"handover_userid"`
	TakeoverUserID  string   `json:"takeover_userid"`
	ExternalUserIDs []string `json:"external_userid"`
	// SuccessMsg is sent to the customer when the transfer completes (on-job
	// only; at most 200 characters; empty: WeCom's default text).
	SuccessMsg string `json:"transfer_success_msg,omitempty"`
}

// CustomerTransfer is WeCom's answer for one customer: 0 means the transfer
// started (it completes after 24 hours unless the customer refuses).
type CustomerTransfer struct {
	ExternalUserID string `json:"external_userid"`
	ErrCode        int    `json:"errcode"`
}

// TransferStatus is one customer's transfer result.
type TransferStatus struct {
	ExternalUserID string `json:"external_userid"`
	Status         int    `json:"status"`        // TransferDone, TransferWaiting, …
	TakeoverTime   int64  `json:"takeover_time"` // unix seconds; 0 until done
}

// TransferResultPage is one page of transfer_result.
type TransferResultPage struct {
	Customers  []TransferStatus `json:"customer"`
	NextCursor string           `json:"next_cursor"`
}

// Unassigned is a customer of a resigned member waiting for inheritance.
type Unassigned struct {
	HandoverUserID string `json:"handover_userid"`
	ExternalUserID string `json:"external_userid"`
	DimissionTime  int64  `json:"dimission_time"`
}

// UnassignedPage is one page of get_unassigned_list.
type UnassignedPage struct {
	Info       []Unassigned `json:"info"`
	IsLast     bool         `json:"is_last"`
	NextCursor string       `json:"next_cursor"`
}

// GroupTransferFailure is a group WeCom did not transfer, and why.
type GroupTransferFailure struct {
	ChatID  string `json:"chat_id"`
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func checkTransfer(r TransferRequest) error {
	switch {
	case len(r.ExternalUserIDs) == 0:
		return errs.Field("external_userid", "required", "choose at least one customer to transfer")
	case len(r.ExternalUserIDs) > MaxTransferPerCall:
		return errs.Field("external_userid", "too_many", "WeCom transfers at most %d customers per call, not %d", MaxTransferPerCall, len(r.ExternalUserIDs))
	case len([]rune(r.SuccessMsg)) > MaxTransferMsgRunes:
		return errs.Field("transfer_success_msg", "too_long", "the message to customers is at most %d characters", MaxTransferMsgRunes)
	}
	return nil
}

// TransferCustomer starts on-job transfers of up to 100 customers
// (externalcontact/transfer_customer, 92125); the answer has one errcode per
// customer.
func (c *Client) TransferCustomer(ctx context.Context, r TransferRequest) ([]CustomerTransfer, error) {
	if err := checkTransfer(r); err != nil {
		return nil, err
	}
	var out struct {
		respHeader
		Customer []CustomerTransfer `json:"customer"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/transfer_customer", post: true}, nil, r, &out)
	return out.Customer, err
}

// ResignedTransferCustomer starts the inheritance of up to 100 customers of
// a resigned member (externalcontact/resigned/transfer_customer, 94081).
func (c *Client) ResignedTransferCustomer(ctx context.Context, r TransferRequest) ([]CustomerTransfer, error) {
	r.SuccessMsg = ""
	if err := checkTransfer(r); err != nil {
		return nil, err
	}
	var out struct {
		respHeader
		Customer []CustomerTransfer `json:"customer"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/resigned/transfer_customer", post: true}, nil, r, &out)
	return out.Customer, err
}

func (c *Client) transferResult(ctx context.Context, path, handover, takeover, cursor string) (TransferResultPage, error) {
	body := struct {
		HandoverUserID string `json:"handover_userid"`
		TakeoverUserID string `json:"takeover_userid"`
		Cursor         string `json:"cursor,omitempty"`
	}{handover, takeover, cursor}
	var out struct {
		respHeader
		TransferResultPage
	}
	err := c.call(ctx, endpoint{path: path, post: true, safe: true}, nil, body, &out)
	return out.TransferResultPage, err
}

// TransferResult reads a page of on-job transfer results of a pair of
// members (externalcontact/transfer_result, 94088).
func (c *Client) TransferResult(ctx context.Context, handover, takeover, cursor string) (TransferResultPage, error) {
	return c.transferResult(ctx, "externalcontact/transfer_result", handover, takeover, cursor)
}

// ResignedTransferResult reads a page of inheritance results of a pair of
// members (externalcontact/resigned/transfer_result, 94082).
func (c *Client) ResignedTransferResult(ctx context.Context, handover, takeover, cursor string) (TransferResultPage, error) {
	return c.transferResult(ctx, "externalcontact/resigned/transfer_result", handover, takeover, cursor)
}

// GetUnassignedList reads a page of the customers of resigned members
// waiting for inheritance (externalcontact/get_unassigned_list, 92124);
// pageSize 0 or over 1,000 means 1,000.
func (c *Client) GetUnassignedList(ctx context.Context, cursor string, pageSize int) (UnassignedPage, error) {
	if pageSize <= 0 || pageSize > MaxUnassignedPageSize {
		pageSize = MaxUnassignedPageSize
	}
	body := struct {
		Cursor   string `json:"cursor,omitempty"`
		PageSize int    `json:"page_size"`
	}{cursor, pageSize}
	var out struct {
		respHeader
		UnassignedPage
	}
	err := c.call(ctx, endpoint{path: "externalcontact/get_unassigned_list", post: true, safe: true}, nil, body, &out)
	return out.UnassignedPage, err
}

func (c *Client) groupTransfer(ctx context.Context, path string, chatIDs []string, newOwner string) ([]GroupTransferFailure, error) {
	switch {
	case len(chatIDs) == 0:
		return nil, errs.Field("chat_id_list", "required", "choose at least one group to transfer")
	case len(chatIDs) > MaxTransferPerCall:
		return nil, errs.Field("chat_id_list", "too_many", "WeCom transfers at most %d groups per call, not %d", MaxTransferPerCall, len(chatIDs))
	}
	body := struct {
		ChatIDList []string `json:"chat_id_list"`
		NewOwner   string   `json:"new_owner"`
	}{chatIDs, newOwner}
	var out struct {
		respHeader
		Failed []GroupTransferFailure `json:"failed_chat_list"`
	}
	err := c.call(ctx, endpoint{path: path, post: true}, nil, body, &out)
	return out.Failed, err
}

// GroupChatTransfer gives groups of resigned owners a new owner
// (externalcontact/groupchat/transfer, 92127); it returns the groups that
// were not transferred.
func (c *Client) GroupChatTransfer(ctx context.Context, chatIDs []string, newOwner string) ([]GroupTransferFailure, error) {
	return c.groupTransfer(ctx, "externalcontact/groupchat/transfer", chatIDs, newOwner)
}

// GroupChatOnJobTransfer gives groups of current members a new owner
// (externalcontact/groupchat/onjob_transfer, 95703).
func (c *Client) GroupChatOnJobTransfer(ctx context.Context, chatIDs []string, newOwner string) ([]GroupTransferFailure, error) {
	return c.groupTransfer(ctx, "externalcontact/groupchat/onjob_transfer", chatIDs, newOwner)
}
