package wecom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/message"
)

// The WeCom channels of the outbox (message.Channel): welcome messages
// (send_welcome_msg), mass messages to customers and to groups
// (add_msg_template). They turn outbox deliveries into API calls and WeCom's
// answers into outcomes; the outbox keeps the state.

// ChannelOptions configure the WeCom channels.
type ChannelOptions struct {
	// PollEvery is how often mass message results are read (default 10 min).
	PollEvery time.Duration
	// ResultWindow is how long after a mass message Siyu keeps reading its
	// results; recipients a staff member has not sent to by then are
	// recorded not_sent (default 72 h).
	ResultWindow time.Duration
	// Pacing is the default minimum gap between two mass messages of one
	// staff member (workspace settings override it; default 0).
	Pacing time.Duration
	// HTTPClient fetches attachment URLs for upload (default: 30 s timeout).
	HTTPClient *http.Client
}

// MessageChannels returns the WeCom channels for the outbox to register.
func (s *Service) MessageChannels(o ChannelOptions) []message.Channel {
	if o.PollEvery <= 0 {
		o.PollEvery = 10 * time.Minute
	}
	if o.ResultWindow <= 0 {
		o.ResultWindow = 72 * time.Hour
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	m := &media{svc: s, http: o.HTTPClient, cache: map[mediaKey]cachedMedia{}}
	return []message.Channel{
		&welcomeChannel{svc: s, media: m},
		&massChannel{svc: s, media: m, o: o, chatType: ChatSingle},
		&massChannel{svc: s, media: m, o: o, chatType: ChatGroup},
	}
}

// media uploads attachment files given by URL and keeps their media_id for
// its validity (three days, less a margin).
type media struct {
	svc   *Service
	http  *http.Client
	mu    sync.Mutex
	cache map[mediaKey]cachedMedia
}

type mediaKey struct {
	tenantID int64
	kind     string
	url      string
}

type cachedMedia struct {
	id      string
	expires time.Time
}

// mediaValid is how long Siyu uses an uploaded media_id: WeCom keeps it three
// days; the margin covers a delivery that waits in quiet hours.
const mediaValid = 3*24*time.Hour - 6*time.Hour

func (m *media) id(ctx context.Context, c *Client, tenantID int64, kind, u string) (string, error) {
	k := mediaKey{tenantID, kind, u}
	now := m.svc.now()
	m.mu.Lock()
	if cm, ok := m.cache[k]; ok && now.Before(cm.expires) {
		m.mu.Unlock()
		return cm.id, nil
	}
	m.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", errs.Field("attachments", "invalid_url", "the attachment URL %q is not valid", u)
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("wecom: unable to fetch attachment %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", errs.Field("attachments", "unreachable_url", "the attachment URL %s answered HTTP %d", u, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 20<<20+1))
	if err != nil {
		return "", fmt.Errorf("wecom: unable to fetch attachment %s: %w", u, err)
	}
	name := path.Base(req.URL.Path)
	if name == "" || name == "/" || name == "." {
		name = kind
	}
	up, err := c.UploadMedia(ctx, kind, name, data)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	m.cache[k] = cachedMedia{id: up.MediaID, expires: now.Add(mediaValid)}
	m.mu.Unlock()
	return up.MediaID, nil
}

// attachments converts the outbox's attachments into WeCom's, uploading
// files given by URL.
func (m *media) attachments(ctx context.Context, c *Client, tenantID int64, in []message.Attachment) ([]Attachment, error) {
	out := make([]Attachment, 0, len(in))
	for _, a := range in {
		switch a.Kind {
		case "image":
			img := &Image{MediaID: a.MediaID}
			if img.MediaID == "" {
				img.PicURL = a.ImageURL
			}
			out = append(out, Attachment{MsgType: "image", Image: img})
		case "link":
			out = append(out, Attachment{MsgType: "link", Link: &Link{Title: a.Title, PicURL: a.ImageURL, Desc: a.Description, URL: a.URL}})
		case "miniprogram":
			id := a.MediaID
			if id == "" {
				var err error
				if id, err = m.id(ctx, c, tenantID, MediaImage, a.ImageURL); err != nil {
					return nil, err
				}
			}
			out = append(out, Attachment{MsgType: "miniprogram", MiniProgram: &MiniProgram{Title: a.Title, PicMediaID: id, AppID: a.AppID, Page: a.Page}})
		case "video", "file":
			id := a.MediaID
			if id == "" {
				var err error
				if id, err = m.id(ctx, c, tenantID, a.Kind, a.URL); err != nil {
					return nil, err
				}
			}
			at := Attachment{MsgType: a.Kind}
			if a.Kind == "video" {
				at.Video = &Media{MediaID: id}
			} else {
				at.File = &Media{MediaID: id}
			}
			out = append(out, at)
		default:
			return nil, errs.Field("attachments", "unknown_kind", "attachment kind %q is not one WeCom sends", a.Kind)
		}
	}
	return out, nil
}

// refusal turns a WeCom error into the outbox's terms: a definite refusal
// (*message.DeliveryError) or, for errors without an answer, the error
// itself (the outcome is in doubt).
func refusal(err error) error {
	var api *APIError
	if errors.As(err, &api) {
		de := &message.DeliveryError{Status: message.StatusFailed, Reason: "wecom_" + strconv.Itoa(api.Code), Code: "wecom_" + strconv.Itoa(api.Code), Err: err}
		if isRateCode(api.Code) || api.Code == CodeBusy {
			de.Retry = true
		}
		if api.Code == CodeNotExternalContact {
			de.Reason = message.ReasonNotFriend
		}
		return de
	}
	var te *transientError
	if errors.As(err, &te) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
		// Rejected by Siyu's own checks before the call.
		return &message.DeliveryError{Status: message.StatusFailed, Reason: e.Code, Code: e.Code, Err: err}
	}
	return err
}

func text(c message.Content) *Text {
	if c.Text == "" {
		return nil
	}
	return &Text{Content: c.Text}
}

// welcomeChannel sends welcome messages with the WelcomeCode of an add.
type welcomeChannel struct {
	svc   *Service
	media *media
}

func (w *welcomeChannel) Name() string { return message.ChannelWeComWelcome }

func (w *welcomeChannel) Rules() message.Rules {
	return message.Rules{MaxRecipients: 1, MaxAttachments: MaxMassAttachments, MaxTextBytes: MaxMassTextBytes, QuietExempt: true}
}

func (w *welcomeChannel) Deliver(ctx context.Context, d message.Delivery) (message.Accepted, error) {
	if len(d.Recipients) != 1 {
		return message.Accepted{}, &message.DeliveryError{Reason: "invalid_batch", Err: fmt.Errorf("wecom: a welcome message has one recipient, not %d", len(d.Recipients))}
	}
	code := d.Recipients[0].Params["welcome_code"]
	if code == "" {
		return message.Accepted{}, &message.DeliveryError{Reason: "code_missing", Code: "wecom_41049", Err: errors.New("wecom: the envelope has no welcome_code")}
	}
	c, err := w.svc.Client(ctx, d.TenantID)
	if err != nil {
		return message.Accepted{}, &message.DeliveryError{Retry: true, Reason: "not_connected", Err: err}
	}
	atts, err := w.media.attachments(ctx, c, d.TenantID, d.Content.Attachments)
	if err != nil {
		return message.Accepted{}, refusal(err)
	}
	err = c.SendWelcomeMsg(ctx, WelcomeMessage{WelcomeCode: code, Text: text(d.Content), Attachments: atts})
	switch {
	case err == nil:
		return message.Accepted{}, nil
	case IsCode(err, CodeWelcomeChatStarted):
		return message.Accepted{}, &message.DeliveryError{Status: message.StatusFailed, Reason: message.ReasonChatStarted, Code: "wecom_41051", Err: err}
	case IsCode(err, CodeWelcomeCodeInvalid) && d.Resumed:
		// The lost first call may have used the code.
		return message.Accepted{}, &message.DeliveryError{Status: message.StatusFailed, Reason: message.ReasonOutcomeUnknow, Code: "wecom_41050", Err: err}
	case IsCode(err, CodeWelcomeCodeInvalid):
		return message.Accepted{}, &message.DeliveryError{Status: message.StatusExpired, Reason: message.ReasonCodeInvalid, Code: "wecom_41050", Err: err}
	}
	return message.Accepted{}, refusal(err)
}

// Find cannot look a welcome message up: WeCom lists none. Delivering again
// is safe (a welcome code is single-use: a second send answers 41050).
func (w *welcomeChannel) Find(context.Context, message.Delivery) (string, bool, error) {
	return "", false, nil
}

func (w *welcomeChannel) Results(context.Context, message.Delivery, string) (message.Results, error) {
	return message.Results{Final: true}, nil
}

// massChannel sends mass messages to customers (single) or groups (group).
type massChannel struct {
	svc      *Service
	media    *media
	o        ChannelOptions
	chatType string
}

func (m *massChannel) Name() string {
	if m.chatType == ChatGroup {
		return message.ChannelWeComGroup
	}
	return message.ChannelWeComCustomer
}

func (m *massChannel) Rules() message.Rules {
	r := message.Rules{MaxRecipients: MaxMassRecipients, MaxAttachments: MaxMassAttachments, MaxTextBytes: MaxMassTextBytes,
		Pacing: m.o.Pacing, Capped: true, PollEvery: m.o.PollEvery, ResultWindow: m.o.ResultWindow}
	if m.chatType == ChatGroup {
		r.MaxRecipients, r.Capped = MaxMassChats, false
	}
	return r
}

func (m *massChannel) template(ctx context.Context, c *Client, d message.Delivery) (MsgTemplate, error) {
	atts, err := m.media.attachments(ctx, c, d.TenantID, d.Content.Attachments)
	if err != nil {
		return MsgTemplate{}, err
	}
	t := MsgTemplate{ChatType: m.chatType, Sender: d.Account, Text: text(d.Content), Attachments: atts}
	for _, r := range d.Recipients {
		if m.chatType == ChatGroup {
			t.ChatIDList = append(t.ChatIDList, r.Recipient)
		} else {
			t.ExternalUserID = append(t.ExternalUserID, r.Recipient)
		}
	}
	return t, nil
}

func (m *massChannel) Deliver(ctx context.Context, d message.Delivery) (message.Accepted, error) {
	c, err := m.svc.Client(ctx, d.TenantID)
	if err != nil {
		return message.Accepted{}, &message.DeliveryError{Retry: true, Reason: "not_connected", Err: err}
	}
	t, err := m.template(ctx, c, d)
	if err != nil {
		return message.Accepted{}, refusal(err)
	}
	out, err := c.AddMsgTemplate(ctx, t)
	if err != nil {
		return message.Accepted{}, refusal(err)
	}
	acc := message.Accepted{RemoteID: out.MsgID}
	if len(out.FailList) > 0 {
		acc.Failed = map[string]string{}
		for _, id := range out.FailList {
			acc.Failed[id] = message.ReasonNotFriend
		}
	}
	return acc, nil
}

// Find looks for a mass message whose add_msg_template answer was lost: the
// corp's mass messages created since the batch was marked submitting, with
// the same text, whose task belongs to the sender and whose recipients are
// the batch's. A match is taken as this batch's; none means it was not
// created, and the batch may be sent again.
func (m *massChannel) Find(ctx context.Context, d message.Delivery) (string, bool, error) {
	c, err := m.svc.Client(ctx, d.TenantID)
	if err != nil {
		return "", false, err
	}
	start := d.SubmitAt.Add(-time.Minute)
	end := m.svc.now().Add(time.Minute)
	if end.Sub(start) > 30*24*time.Hour {
		start = end.Add(-30 * 24 * time.Hour)
	}
	ours := make(map[string]bool, len(d.Recipients))
	for _, r := range d.Recipients {
		ours[r.Recipient] = true
	}
	cursor := ""
	for {
		list, next, err := c.GroupMsgListV2(ctx, GroupMsgListQuery{ChatType: m.chatType, StartTime: start.Unix(), EndTime: end.Unix(), FilterType: 0, Cursor: cursor})
		if err != nil {
			return "", false, err
		}
		for _, g := range list {
			if d.KnownRemoteIDs[g.MsgID] || (g.Text == nil) != (d.Content.Text == "") || (g.Text != nil && g.Text.Content != d.Content.Text) ||
				len(g.Attachments) != len(d.Content.Attachments) {
				continue
			}
			ok, err := m.matches(ctx, c, g.MsgID, d.Account, ours)
			if err != nil {
				return "", false, err
			}
			if ok {
				return g.MsgID, true, nil
			}
		}
		if next == "" || next == cursor {
			return "", false, nil
		}
		cursor = next
	}
}

// matches reports whether msgID is the sender's task to the given recipients.
func (m *massChannel) matches(ctx context.Context, c *Client, msgID, sender string, ours map[string]bool) (bool, error) {
	tasks, _, err := c.GroupMsgTasks(ctx, msgID, "", MaxGroupMsgPage)
	if err != nil {
		return false, err
	}
	if !slices.ContainsFunc(tasks, func(t GroupMsgTask) bool { return t.UserID == sender }) {
		return false, nil
	}
	seen, cursor := 0, ""
	for {
		list, next, err := c.GroupMsgSendResult(ctx, msgID, sender, cursor, MaxGroupMsgPage)
		if err != nil {
			return false, err
		}
		for _, r := range list {
			id := r.ExternalUserID
			if m.chatType == ChatGroup {
				id = r.ChatID
			}
			if !ours[id] {
				return false, nil
			}
			seen++
		}
		if next == "" || next == cursor {
			return seen > 0, nil
		}
		cursor = next
	}
}

func (m *massChannel) Results(ctx context.Context, d message.Delivery, remoteID string) (message.Results, error) {
	c, err := m.svc.Client(ctx, d.TenantID)
	if err != nil {
		return message.Results{}, err
	}
	var res message.Results
	pending, cursor := 0, ""
	for {
		list, next, err := c.GroupMsgSendResult(ctx, remoteID, d.Account, cursor, MaxGroupMsgPage)
		if err != nil {
			return message.Results{}, err
		}
		for _, r := range list {
			o := message.Outcome{Recipient: r.ExternalUserID}
			if m.chatType == ChatGroup {
				o.Recipient = r.ChatID
			}
			if r.SendTime > 0 {
				o.At = time.Unix(r.SendTime, 0)
			}
			switch r.Status {
			case MassSent:
				o.Status = message.StatusSent
			case MassNotFriend:
				o.Status, o.Reason = message.StatusFailed, message.ReasonNotFriend
			case MassOverCap:
				o.Status, o.Reason = message.StatusNotSent, message.ReasonOverCap
			default:
				o.Status = message.StatusSubmitted
				pending++
			}
			res.Outcomes = append(res.Outcomes, o)
		}
		if next == "" || next == cursor {
			break
		}
		cursor = next
	}
	res.Final = pending == 0 && len(res.Outcomes) > 0
	return res, nil
}

// Cancel stops a mass message (cancel_groupmsg_send).
func (m *massChannel) Cancel(ctx context.Context, d message.Delivery, remoteID string) error {
	c, err := m.svc.Client(ctx, d.TenantID)
	if err != nil {
		return err
	}
	return c.CancelGroupMsgSend(ctx, remoteID)
}

// Remind reminds the sender (remind_groupmsg_send).
func (m *massChannel) Remind(ctx context.Context, d message.Delivery, remoteID string) error {
	c, err := m.svc.Client(ctx, d.TenantID)
	if err != nil {
		return err
	}
	// WeCom documents the limit (3 per message in 24 h) but no error code
	// for it; the outbox checks the limit before calling, and any refusal
	// is reported with WeCom's code.
	if err := c.RemindGroupMsgSend(ctx, remoteID); err != nil {
		return refusal(err)
	}
	return nil
}
