// Package message is Siyu's one outbound path: every message to a customer or
// a group (WeCom welcome messages and mass messages today; SOP journeys,
// coupons, official-account, Douyin and SMS later) is an envelope in the
// outbox, with an idempotency key per (send, recipient), cap accounting
// before sending, quiet hours, per-account pacing and a recorded outcome.
// Channels (message.Channel) deliver; they live with their connector.
package message

import (
	"errors"
	"time"
)

// Channel names of the channels Siyu has.
const (
	ChannelWeComWelcome  = "wecom.welcome"       // send_welcome_msg, once per WelcomeCode, within 20 s of the add
	ChannelWeComCustomer = "wecom.customer_mass" // add_msg_template chat_type single: customers, through their staff
	ChannelWeComGroup    = "wecom.group_mass"    // add_msg_template chat_type group: groups, through their owners
)

// Attachment is one attachment of a message. Which kinds a channel takes,
// and how many, is the channel's rule (WeCom: ≤ 9 of image, link,
// miniprogram, video, file).
type Attachment struct {
	Kind        string `json:"kind" doc:"image, link, miniprogram, video or file."`
	Title       string `json:"title,omitempty" doc:"Link and mini-program card title."`
	Description string `json:"description,omitempty" doc:"Link description."`
	URL         string `json:"url,omitempty" doc:"Link target (http/https)."`
	ImageURL    string `json:"image_url,omitempty" doc:"Image, link cover or mini-program cover: an http(s) URL Siyu fetches and uploads to the channel."`
	MediaID     string `json:"media_id,omitempty" doc:"A media id the channel already has (images, video, file), instead of image_url."`
	AppID       string `json:"appid,omitempty" doc:"Mini-program AppID (must be linked to the corp)."`
	Page        string `json:"page,omitempty" doc:"Mini-program page path, e.g. pages/index.html."`
}

// Content is what a message says: text (placeholders rendered before it
// is enqueued) and attachments.
type Content struct {
	Text        string       `json:"text,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
}

// Envelope is one message to one recipient, enqueued in the caller's
// transaction so that it exists exactly when the caller's change does.
type Envelope struct {
	TenantID int64
	Channel  string // one of the Channel… names
	// Key is the idempotency key: enqueueing the same key again returns the
	// existing envelope and sends nothing more. Derive it from what caused
	// the send: (campaign, customer), (channel code, WeCom event key), …
	Key        string
	CustomerID int64  // the customer, when the recipient is one (0 for a group)
	Account    string // the sending account: a staff member's WeCom userid
	Recipient  string // the channel's recipient id: external_userid, chat_id, …
	Content    Content
	// Params are channel-specific (wecom.welcome: "welcome_code").
	Params map[string]string
	// NotAfter, when set, is the deadline: an envelope not delivered by then
	// is recorded as expired, not sent (a welcome code lives 20 s).
	NotAfter time.Time
	// Source names what sent it, for the customer's history and reports:
	// "acquire.code", "message.campaign", "journey.node", …; SourceID its id.
	Source   string
	SourceID string
}

// ErrNotImplemented was returned by the outbox stub. Enqueue no longer
// returns it; it stays for callers written against the stub.
var ErrNotImplemented = errors.New("message: the outbox is not built yet")
