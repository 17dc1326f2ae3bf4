package message

import (
	"time"

	"github.com/siyu-dev/siyu/internal/audience"
)

// Mass messages (群发): a campaign sends one content to customers (an
// audience, through the staff member who owns each customer) or to customer
// groups (through their owners). Planning a campaign turns it into envelopes
// (one per recipient, keyed (campaign, recipient)) and batches (one per
// sending account and ≤ the channel's recipients per delivery), after cap
// accounting; the dispatcher delivers the batches and polls their results.

// Campaign kinds.
const (
	KindCustomers = "customers" // to customers, through their owning staff (wecom.customer_mass)
	KindGroups    = "groups"    // to customer groups, through their owners (wecom.group_mass)
)

// CampaignStatus is where a campaign stands.
type CampaignStatus string

// Campaign statuses.
const (
	CampaignDraft     CampaignStatus = "draft"     // being composed; may be edited
	CampaignScheduled CampaignStatus = "scheduled" // planned at SendAt (envelopes are made then)
	CampaignSending   CampaignStatus = "sending"   // planned: batches are being delivered to WeCom
	CampaignSent      CampaignStatus = "sent"      // every batch delivered; staff confirm, results are polled
	CampaignDone      CampaignStatus = "done"      // results are final
	CampaignCancelled CampaignStatus = "cancelled" // cancelled; what was not yet sent will not be
	CampaignFailed    CampaignStatus = "failed"    // planning failed (Error says why)
)

// Target is who a campaign is for. Customers: AudienceID or Condition
// (the audience engine's JSON), optionally only the customers of StaffUserIDs.
// Groups: ChatIDs, or every active group of GroupOwners (both may be given;
// neither means every active group).
type Target struct {
	AudienceID   int64               `json:"audience_id,omitempty" doc:"A saved audience (customers)."`
	Condition    *audience.Condition `json:"condition,omitempty" doc:"An inline audience condition (customers)."`
	StaffUserIDs []string            `json:"staff_userids,omitempty" doc:"Only customers of these staff members (WeCom userids), sent by them."`
	ChatIDs      []string            `json:"chat_ids,omitempty" doc:"Groups: these chat ids."`
	GroupOwners  []string            `json:"group_owners,omitempty" doc:"Groups: every active group these staff members own."`
}

// CampaignInput creates or edits a draft campaign.
type CampaignInput struct {
	// Key, when set, makes creation idempotent: creating again with the same
	// key returns the campaign created first.
	Key     string  `json:"key,omitempty" maxLength:"100" doc:"Idempotency key for creation."`
	Name    string  `json:"name" minLength:"1" maxLength:"200"`
	Kind    string  `json:"kind" enum:"customers,groups"`
	Target  Target  `json:"target"`
	Content Content `json:"content" doc:"Text (≤ 4,000 bytes; placeholders {{staff_name}}, and for previews {{customer_name}}) and ≤ 9 attachments."`
}

// Campaign is a mass message.
type Campaign struct {
	ID          int64          `json:"id"`
	Name        string         `json:"name"`
	Kind        string         `json:"kind" enum:"customers,groups"`
	Status      CampaignStatus `json:"status" enum:"draft,scheduled,sending,sent,done,cancelled,failed"`
	Target      Target         `json:"target"`
	Content     Content        `json:"content"`
	SendAt      time.Time      `json:"send_at,omitzero" doc:"When it is (or was) to be sent; quiet hours may move delivery later."`
	PlannedAt   time.Time      `json:"planned_at,omitzero" doc:"When its envelopes were made."`
	FinishedAt  time.Time      `json:"finished_at,omitzero"`
	CancelledAt time.Time      `json:"cancelled_at,omitzero"`
	Error       string         `json:"error,omitempty"`
	CreatedBy   string         `json:"created_by,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
	Stats       CampaignStats  `json:"stats"`
}

// CampaignStats counts a planned campaign's recipients by outcome.
type CampaignStats struct {
	Recipients int64 `json:"recipients" doc:"Envelopes made (every customer or group targeted, skipped ones included)."`
	Staff      int64 `json:"staff" doc:"Sending staff members."`
	Batches    int64 `json:"batches" doc:"Deliveries (add_msg_template calls)."`
	Queued     int64 `json:"queued" doc:"Not yet delivered to WeCom."`
	Submitted  int64 `json:"submitted" doc:"Delivered to WeCom, waiting for the staff member to send."`
	Sent       int64 `json:"sent"`
	NotSent    int64 `json:"not_sent" doc:"The staff member did not send before results were final."`
	NotFriend  int64 `json:"not_friend" doc:"No longer the staff member's contact."`
	OverCap    int64 `json:"over_cap" doc:"Skipped before sending, or refused by WeCom, for the per-customer cap."`
	Skipped    int64 `json:"skipped" doc:"Skipped for other reasons (see per-recipient results)."`
	Failed     int64 `json:"failed"`
	Cancelled  int64 `json:"cancelled"`
	Expired    int64 `json:"expired"`
}

// Estimate is what sending a campaign now would do, computed the way
// planning does, without storing anything.
type Estimate struct {
	Targeted   int64 `json:"targeted" doc:"Customers (or groups) the target selects."`
	Recipients int64 `json:"recipients" doc:"Who would receive it."`
	Staff      int64 `json:"staff" doc:"Staff members who would send."`
	Batches    int64 `json:"batches" doc:"add_msg_template calls (≤ 10,000 recipients each)."`
	OverCap    int64 `json:"over_cap" doc:"Skipped: the customer reached the corp's cap in the period."`
	NoRelation int64 `json:"no_relation" doc:"Skipped: no current WeCom relation with a staff member (in the staff filter)."`
	// CapPolicy and CapLimit describe the cap applied; Period the cap period
	// the send falls in, in the workspace's time zone.
	CapPolicy   string          `json:"cap_policy" enum:"month,week,day"`
	CapLimit    int             `json:"cap_limit"`
	PeriodStart time.Time       `json:"period_start"`
	PeriodEnd   time.Time       `json:"period_end"`
	PerStaff    []StaffEstimate `json:"per_staff" doc:"Sending staff, most recipients first (at most 100)."`
	Warnings    []string        `json:"warnings,omitempty"`
}

// StaffEstimate is one sending staff member's share of an estimate.
type StaffEstimate struct {
	UserID     string `json:"userid"`
	Name       string `json:"name"`
	Recipients int64  `json:"recipients"`
	OverCap    int64  `json:"over_cap"`
}

// Preview is a campaign's message as one customer would receive it.
type Preview struct {
	CustomerID   int64        `json:"customer_id"`
	CustomerName string       `json:"customer_name"`
	StaffUserID  string       `json:"staff_userid,omitempty" doc:"Who would send it; empty when nobody can."`
	StaffName    string       `json:"staff_name,omitempty"`
	Text         string       `json:"text"`
	Attachments  []Attachment `json:"attachments,omitempty"`
	// Skip, when set, is why this customer would not receive it (over_cap,
	// no_relation, not_in_target).
	Skip string `json:"skip,omitempty"`
}

// StaffResult is one sending account's results in a campaign.
type StaffResult struct {
	UserID     string    `json:"userid"`
	Name       string    `json:"name"`
	Recipients int64     `json:"recipients"`
	Queued     int64     `json:"queued"`
	Submitted  int64     `json:"submitted"`
	Sent       int64     `json:"sent"`
	NotSent    int64     `json:"not_sent"`
	NotFriend  int64     `json:"not_friend"`
	OverCap    int64     `json:"over_cap"`
	Failed     int64     `json:"failed"`
	Cancelled  int64     `json:"cancelled"`
	Status     string    `json:"status" enum:"waiting,unsent,sent,mixed" doc:"waiting: not yet delivered to WeCom; unsent: the staff member has not sent; sent: sent."`
	Reminders  int       `json:"reminders" doc:"Reminders sent in the last 24 hours (WeCom allows 3)."`
	RemindedAt time.Time `json:"reminded_at,omitzero"`
}

// RecipientQuery filters a campaign's per-recipient results.
type RecipientQuery struct {
	Status      string // an envelope status or outcome ("sent", "not_sent", "not_friend", "over_cap", …); "" for all
	StaffUserID string // only this sender's recipients
}

// RemindResult is what a reminder did.
type RemindResult struct {
	Reminded []string        `json:"reminded" doc:"Staff userids WeCom reminded."`
	Refused  []RemindRefusal `json:"refused,omitempty" doc:"Staff not reminded, and why."`
}

// RemindRefusal explains a reminder not sent.
type RemindRefusal struct {
	UserID  string    `json:"userid"`
	Code    string    `json:"code" doc:"remind_limit (3 per 24 h), nothing_to_remind, not_submitted."`
	Message string    `json:"message"`
	RetryAt time.Time `json:"retry_at,omitzero" doc:"When a reminder becomes possible again."`
}

// CampaignQuery filters the campaign list.
type CampaignQuery struct {
	Status CampaignStatus // "" for all
	Kind   string         // "" for all
}
