package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"

	"github.com/siyu-dev/siyu/internal/errs"
)

// Mass messages (企业群发): add_msg_template creates a task per sending staff
// member, who confirms it in WeCom; the results are read later.

// Mass message limits (add_msg_template, 92135).
const (
	MaxMassRecipients   = 10000 // external_userid per add_msg_template
	MaxMassChats        = 2000  // chat_id_list per add_msg_template
	MaxMassAttachments  = 9
	MaxMassTextBytes    = 4000
	MaxGroupMsgListPage = 100  // get_groupmsg_list_v2
	MaxGroupMsgPage     = 1000 // get_groupmsg_task, get_groupmsg_send_result
)

// Chat types of a mass message.
const (
	ChatSingle = "single" // to customers
	ChatGroup  = "group"  // to customer groups
)

// Mass message send statuses (get_groupmsg_send_result).
const (
	MassNotSent   = 0 // not sent (yet)
	MassSent      = 1 // sent
	MassNotFriend = 2 // failed: the customer is not the member's contact
	MassOverCap   = 3 // failed: the customer already received another mass message (the corp's cap)
)

// Task statuses (get_groupmsg_task).
const (
	TaskNotSent = 0
	TaskSent    = 2
)

// MsgTemplate is an add_msg_template request.
type MsgTemplate struct {
	ChatType       string       `json:"chat_type"`
	ExternalUserID []string     `json:"external_userid,omitempty"` // single: ≤ 10,000
	ChatIDList     []string     `json:"chat_id_list,omitempty"`    // group: ≤ 2,000
	Sender         string       `json:"sender,omitempty"`
	AllowSelect    bool         `json:"allow_select,omitempty"`
	Text           *Text        `json:"text,omitempty"`
	Attachments    []Attachment `json:"attachments,omitempty"` // ≤ 9
}

// MsgTemplateCreated is add_msg_template's answer.
type MsgTemplateCreated struct {
	MsgID    string   `json:"msgid"`
	FailList []string `json:"fail_list"` // recipients that cannot receive it (not the sender's contacts)
}

// checkMsgTemplate applies WeCom's documented limits before the call.
func checkMsgTemplate(m MsgTemplate) error {
	switch m.ChatType {
	case ChatSingle:
		if len(m.ExternalUserID) > MaxMassRecipients {
			return errs.Field("external_userid", "too_many", "a mass message goes to at most %d customers per call, not %d", MaxMassRecipients, len(m.ExternalUserID))
		}
	case ChatGroup:
		if len(m.ChatIDList) > MaxMassChats {
			return errs.Field("chat_id_list", "too_many", "a group mass message goes to at most %d groups per call, not %d", MaxMassChats, len(m.ChatIDList))
		}
	default:
		return errs.Field("chat_type", "invalid", "chat_type is single or group, not %q", m.ChatType)
	}
	if (m.Text == nil || m.Text.Content == "") && len(m.Attachments) == 0 {
		return errs.Field("text", "empty", "a mass message needs text or attachments")
	}
	if m.Text != nil && len(m.Text.Content) > MaxMassTextBytes {
		return errs.Field("text", "too_long", "the text is at most %d bytes, not %d", MaxMassTextBytes, len(m.Text.Content))
	}
	if len(m.Attachments) > MaxMassAttachments {
		return errs.Field("attachments", "too_many", "a mass message has at most %d attachments, not %d", MaxMassAttachments, len(m.Attachments))
	}
	return nil
}

// AddMsgTemplate creates a mass message task (externalcontact/add_msg_template,
// 92135). Never retried on network errors: a retry could create a second task
// (the outbox looks it up with GroupMsgListV2 instead).
func (c *Client) AddMsgTemplate(ctx context.Context, m MsgTemplate) (MsgTemplateCreated, error) {
	if err := checkMsgTemplate(m); err != nil {
		return MsgTemplateCreated{}, err
	}
	var out struct {
		respHeader
		MsgTemplateCreated
	}
	err := c.call(ctx, endpoint{path: "externalcontact/add_msg_template", post: true}, nil, m, &out)
	return out.MsgTemplateCreated, err
}

// GroupMsgListQuery filters get_groupmsg_list_v2 (93338). The range is at
// most one month.
type GroupMsgListQuery struct {
	ChatType   string `json:"chat_type"`
	StartTime  int64  `json:"start_time"` // unix seconds
	EndTime    int64  `json:"end_time"`
	Creator    string `json:"creator,omitempty"`
	FilterType int    `json:"filter_type"` // 0 created by the corp, 1 by members, 2 all
	Limit      int    `json:"limit,omitempty"`
	Cursor     string `json:"cursor,omitempty"`
}

// GroupMsg is one mass message in get_groupmsg_list_v2.
type GroupMsg struct {
	MsgID       string       `json:"msgid"`
	Creator     string       `json:"creator,omitempty"`
	CreateTime  string       `json:"create_time"`
	CreateType  int          `json:"create_type"` // 0 corp, 1 member
	Text        *Text        `json:"text,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
}

// GroupMsgListV2 lists the corp's mass messages in a time range
// (externalcontact/get_groupmsg_list_v2).
func (c *Client) GroupMsgListV2(ctx context.Context, q GroupMsgListQuery) ([]GroupMsg, string, error) {
	if q.Limit <= 0 || q.Limit > MaxGroupMsgListPage {
		q.Limit = MaxGroupMsgListPage
	}
	var out struct {
		respHeader
		NextCursor string     `json:"next_cursor"`
		List       []GroupMsg `json:"group_msg_list"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/get_groupmsg_list_v2", post: true, safe: true}, nil, q, &out)
	return out.List, out.NextCursor, err
}

// GroupMsgTask is one member's task of a mass message.
type GroupMsgTask struct {
	UserID   string `json:"userid"`
	Status   int    `json:"status"` // TaskNotSent, TaskSent
	SendTime int64  `json:"send_time,omitempty"`
}

// GroupMsgTasks lists the members' tasks of a mass message
// (externalcontact/get_groupmsg_task).
func (c *Client) GroupMsgTasks(ctx context.Context, msgID, cursor string, limit int) ([]GroupMsgTask, string, error) {
	if limit <= 0 || limit > MaxGroupMsgPage {
		limit = MaxGroupMsgPage
	}
	body := map[string]any{"msgid": msgID, "limit": limit}
	if cursor != "" {
		body["cursor"] = cursor
	}
	var out struct {
		respHeader
		NextCursor string         `json:"next_cursor"`
		TaskList   []GroupMsgTask `json:"task_list"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/get_groupmsg_task", post: true, safe: true}, nil, body, &out)
	return out.TaskList, out.NextCursor, err
}

// GroupMsgSend is one recipient's result of a member's task.
type GroupMsgSend struct {
	ExternalUserID string `json:"external_userid,omitempty"`
	ChatID         string `json:"chat_id,omitempty"`
	UserID         string `json:"userid"`
	Status         int    `json:"status"` // MassNotSent, MassSent, MassNotFriend, MassOverCap
	SendTime       int64  `json:"send_time,omitempty"`
}

// GroupMsgSendResult reads a member's results of a mass message
// (externalcontact/get_groupmsg_send_result).
func (c *Client) GroupMsgSendResult(ctx context.Context, msgID, userID, cursor string, limit int) ([]GroupMsgSend, string, error) {
	if limit <= 0 || limit > MaxGroupMsgPage {
		limit = MaxGroupMsgPage
	}
	body := map[string]any{"msgid": msgID, "userid": userID, "limit": limit}
	if cursor != "" {
		body["cursor"] = cursor
	}
	var out struct {
		respHeader
		NextCursor string         `json:"next_cursor"`
		SendList   []GroupMsgSend `json:"send_list"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/get_groupmsg_send_result", post: true, safe: true}, nil, body, &out)
	return out.SendList, out.NextCursor, err
}

// RemindGroupMsgSend reminds the members who have not sent a mass message
// (externalcontact/remind_groupmsg_send, 97610): at most 3 times per message
// in 24 hours.
func (c *Client) RemindGroupMsgSend(ctx context.Context, msgID string) error {
	return c.call(ctx, endpoint{path: "externalcontact/remind_groupmsg_send", post: true}, nil, map[string]string{"msgid": msgID}, nil)
}

// CancelGroupMsgSend stops a mass message (externalcontact/cancel_groupmsg_send,
// 97611): members can no longer send it; what was sent stays sent. Safe to
// repeat.
func (c *Client) CancelGroupMsgSend(ctx context.Context, msgID string) error {
	return c.call(ctx, endpoint{path: "externalcontact/cancel_groupmsg_send", post: true, safe: true}, nil, map[string]string{"msgid": msgID}, nil)
}

// Media types of media/upload.
const (
	MediaImage = "image" // ≤ 10 MB (jpg, png)
	MediaVideo = "video" // ≤ 10 MB (mp4)
	MediaFile  = "file"  // ≤ 20 MB
)

// Uploaded is media/upload's answer. A media_id is valid for three days.
type Uploaded struct {
	Type      string `json:"type"`
	MediaID   string `json:"media_id"`
	CreatedAt string `json:"created_at"` // unix seconds, as a string
}

// Created returns when the media was uploaded (unix seconds).
func (u Uploaded) Created() int64 {
	n, _ := strconv.ParseInt(u.CreatedAt, 10, 64)
	return n
}

// UploadMedia uploads a temporary file (media/upload, 90253) for a
// message's image, video or file attachment or a mini-program cover.
func (c *Client) UploadMedia(ctx context.Context, mediaType, filename string, data []byte) (Uploaded, error) {
	limit := 10 << 20
	switch mediaType {
	case MediaImage, MediaVideo:
	case MediaFile:
		limit = 20 << 20
	default:
		return Uploaded{}, errs.Field("type", "invalid", "media type is image, video or file, not %q", mediaType)
	}
	if len(data) < 5 {
		return Uploaded{}, errs.Field("media", "too_small", "the file is empty")
	}
	if len(data) > limit {
		return Uploaded{}, errs.E(errs.TooLarge, "file_too_large", "a %s is at most %d MB", mediaType, limit>>20)
	}
	const path = "media/upload"
	tokenRetried, rateTries := false, 0
	for {
		tok, err := c.AccessToken(ctx)
		if err != nil {
			return Uploaded{}, err
		}
		if err := c.limiter.wait(ctx, path, c.now, c.sleep); err != nil {
			return Uploaded{}, fmt.Errorf("wecom: %s: waiting for the rate limiter: %w", path, err)
		}
		var out struct {
			respHeader
			Uploaded
		}
		if err := c.postFile(ctx, path, url.Values{"access_token": {tok}, "type": {mediaType}}, filename, data, &out); err != nil {
			return Uploaded{}, err
		}
		switch code := out.ErrCode; {
		case code == 0:
			return out.Uploaded, nil
		case isTokenCode(code) && !tokenRetried:
			tokenRetried = true
			c.invalidate(tok)
		case isRateCode(code) && rateTries < c.maxRetries:
			if err := c.backoff(ctx, rateTries); err != nil {
				return Uploaded{}, fmt.Errorf("wecom: %s: %w", path, err)
			}
			rateTries++
		default:
			return Uploaded{}, &APIError{Code: code, Msg: out.ErrMsg, API: path}
		}
	}
}

// postFile posts one file as multipart/form-data (field "media").
func (c *Client) postFile(ctx context.Context, path string, q url.Values, filename string, data []byte, out any) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("media", filename)
	if err == nil {
		_, err = fw.Write(data)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return fmt.Errorf("wecom: %s: unable to encode the upload: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/cgi-bin/"+path+"?"+q.Encode(), &buf)
	if err != nil {
		return fmt.Errorf("wecom: %s: unable to build the request: %w", path, err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text quotes the URL with the token
		}
		return &transientError{fmt.Errorf("wecom: POST %s: %w", path, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &transientError{fmt.Errorf("wecom: %s: unable to read the answer: %w", path, err)}
	}
	if resp.StatusCode != http.StatusOK {
		return &transientError{fmt.Errorf("wecom: %s: HTTP %d", path, resp.StatusCode)}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &transientError{fmt.Errorf("wecom: %s: unable to decode the answer: %w", path, err)}
	}
	return nil
}
