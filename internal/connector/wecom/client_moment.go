package wecom

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
)

// Moments (客户朋友圈): the corp creates a publishing task for chosen staff
// (add_moment_task, 95094), WeCom creates it asynchronously (a jobid, read
// with get_moment_task_result), each staff member then publishes it from
// their WeCom app, and its results are read per staff (get_moment_task),
// per customer (get_moment_customer_list, get_moment_send_result) and in the
// corp's list of moments (get_moment_list, 93333).

// Moment limits WeCom documents for add_moment_task.
const (
	MaxMomentTextRunes   = 2000 // text.content: 2,000 characters (4,000 bytes); more is "invalid text size"
	MaxMomentTextBytes   = 4000
	MaxMomentImages      = 9  // images; or 1 video; or 1 link — never mixed
	MaxMomentLinkTitle   = 64 // link.title, bytes
	MaxMomentSenders     = 100000
	MaxMomentTaskPage    = 1000 // get_moment_task, get_moment_customer_list
	MaxMomentSendPage    = 5000 // get_moment_send_result
	MaxMomentListPage    = 20   // get_moment_list
	MaxMomentListSpan    = 30 * 24 * time.Hour
	MaxMomentMediaBytes  = 10 << 20 // images and videos: 10 MB
	momentAttachmentType = "1"      // upload_attachment's attachment_type for moments (朋友圈)
)

// Moment task job states (get_moment_task_result's status).
const (
	MomentJobStarted  = 1 // 开始创建任务
	MomentJobCreating = 2 // 正在创建任务中
	MomentJobDone     = 3 // 创建任务已完成
)

// Moment publish states per staff member (get_moment_task's publish_status).
const (
	MomentUnpublished = 0
	MomentPublished   = 1
)

// MomentLink is a moment's link attachment; MediaID is its cover image.
type MomentLink struct {
	Title   string `json:"title,omitempty"`
	URL     string `json:"url"`
	MediaID string `json:"media_id,omitempty"`
}

// MomentAttachment is one attachment of a moment: 1–9 images, or one video,
// or one link. MsgType names the field that is set ("image", "video", "link").
type MomentAttachment struct {
	MsgType string      `json:"msgtype"`
	Image   *Media      `json:"image,omitempty"`
	Video   *Media      `json:"video,omitempty"`
	Link    *MomentLink `json:"link,omitempty"`
}

// MomentSenders are the staff (or departments) asked to publish.
type MomentSenders struct {
	UserList       []string `json:"user_list,omitempty"`
	DepartmentList []int64  `json:"department_list,omitempty"`
}

// MomentCustomers chooses the customers who can see the moment by corp tag.
type MomentCustomers struct {
	TagList []string `json:"tag_list,omitempty"`
}

// MomentVisibleRange is who publishes and who sees a moment. Without a
// sender list every member in the app's visible range is asked; without a
// tag list every customer of the senders sees it.
type MomentVisibleRange struct {
	SenderList          *MomentSenders   `json:"sender_list,omitempty"`
	ExternalContactList *MomentCustomers `json:"external_contact_list,omitempty"`
}

// MomentTask is add_moment_task's request.
type MomentTask struct {
	Text         *Text               `json:"text,omitempty"`
	Attachments  []MomentAttachment  `json:"attachments,omitempty"`
	VisibleRange *MomentVisibleRange `json:"visible_range,omitempty"`
}

// MomentTaskResult is get_moment_task_result's answer. Result is set once
// Status is MomentJobDone; its ErrCode tells whether the task was created.
type MomentTaskResult struct {
	Status int    `json:"status"`
	Type   string `json:"type"`
	Result struct {
		ErrCode                    int              `json:"errcode"`
		ErrMsg                     string           `json:"errmsg"`
		MomentID                   string           `json:"moment_id"`
		InvalidSenderList          *MomentSenders   `json:"invalid_sender_list,omitempty"`
		InvalidExternalContactList *MomentCustomers `json:"invalid_external_contact_list,omitempty"`
	} `json:"result"`
}

// MomentPublish is one staff member's state of a moment task (get_moment_task).
type MomentPublish struct {
	UserID        string `json:"userid"`
	PublishStatus int    `json:"publish_status"`
}

// MomentCustomer is a customer who can see (or saw) a staff member's moment.
type MomentCustomer struct {
	UserID         string `json:"userid,omitempty"`
	ExternalUserID string `json:"external_userid"`
}

// Moment is one moment in get_moment_list.
type Moment struct {
	MomentID    string `json:"moment_id"`
	Creator     string `json:"creator"`
	CreateTime  int64  `json:"create_time"`
	CreateType  int    `json:"create_type"`  // 0 the corp, 1 a staff member
	VisibleType int    `json:"visible_type"` // 0 some customers, 1 all
	Text        *Text  `json:"text,omitempty"`
	Image       []struct {
		MediaID string `json:"media_id"`
	} `json:"image,omitempty"`
	Video *struct {
		MediaID      string `json:"media_id"`
		ThumbMediaID string `json:"thumb_media_id"`
	} `json:"video,omitempty"`
	Link *struct {
		Title string `json:"title"`
		URL   string `json:"url"`
	} `json:"link,omitempty"`
}

// MomentFilter narrows get_moment_list: a time span of at most 30 days and,
// optionally, the creator and who created it (0 the corp, 1 staff, 2 both).
type MomentFilter struct {
	Start, End time.Time
	Creator    string
	FilterType int
}

// CheckMomentTask applies WeCom's rules for add_moment_task locally, so a bad
// task is refused with a clear message before anything is sent.
func CheckMomentTask(t MomentTask) error {
	text := ""
	if t.Text != nil {
		text = t.Text.Content
	}
	if text == "" && len(t.Attachments) == 0 {
		return errs.Field("text", "empty", "a moment needs text or an attachment")
	}
	if n := len([]rune(text)); n > MaxMomentTextRunes || len(text) > MaxMomentTextBytes {
		return errs.Field("text", "too_long", "a moment's text is at most %d characters (%d bytes), not %d characters", MaxMomentTextRunes, MaxMomentTextBytes, n)
	}
	kinds := map[string]int{}
	for i, a := range t.Attachments {
		loc := "attachments[" + strconv.Itoa(i) + "]"
		switch a.MsgType {
		case "image":
			if a.Image == nil || a.Image.MediaID == "" {
				return errs.Field(loc, "media_required", "an image attachment needs its uploaded media_id")
			}
		case "video":
			if a.Video == nil || a.Video.MediaID == "" {
				return errs.Field(loc, "media_required", "a video attachment needs its uploaded media_id")
			}
		case "link":
			if a.Link == nil || a.Link.URL == "" {
				return errs.Field(loc, "url_required", "a link attachment needs a URL")
			}
			if len(a.Link.Title) > MaxMomentLinkTitle {
				return errs.Field(loc+".title", "too_long", "a link's title is at most %d bytes", MaxMomentLinkTitle)
			}
		default:
			return errs.Field(loc, "invalid_type", "a moment's attachment is an image, a video or a link, not %q", a.MsgType)
		}
		kinds[a.MsgType]++
	}
	switch {
	case len(kinds) > 1:
		return errs.Field("attachments", "mixed", "a moment has images, or one video, or one link — not a mix")
	case kinds["image"] > MaxMomentImages:
		return errs.Field("attachments", "too_many_images", "a moment has at most %d images, not %d", MaxMomentImages, kinds["image"])
	case kinds["video"] > 1:
		return errs.Field("attachments", "too_many_videos", "a moment has at most one video")
	case kinds["link"] > 1:
		return errs.Field("attachments", "too_many_links", "a moment has at most one link")
	}
	if t.VisibleRange != nil && t.VisibleRange.SenderList != nil && len(t.VisibleRange.SenderList.UserList) > MaxMomentSenders {
		return errs.Field("senders", "too_many", "a moment task has at most %d senders", MaxMomentSenders)
	}
	return nil
}

// AddMomentTask creates a moments publishing task for chosen staff
// (externalcontact/add_moment_task, 95094) and returns the jobid to poll with
// GetMomentTaskResult (valid 24 hours). Not retried on network errors: a
// retry could create a second task; see Moments in the moment package for
// how an unknown outcome is resolved.
func (c *Client) AddMomentTask(ctx context.Context, t MomentTask) (string, error) {
	if err := CheckMomentTask(t); err != nil {
		return "", err
	}
	var out struct {
		respHeader
		JobID string `json:"jobid"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/add_moment_task", post: true}, nil, t, &out)
	if err == nil && out.JobID == "" {
		err = fmt.Errorf("wecom: add_moment_task: the answer has no jobid")
	}
	return out.JobID, err
}

// GetMomentTaskResult reads the outcome of an add_moment_task job
// (externalcontact/get_moment_task_result).
func (c *Client) GetMomentTaskResult(ctx context.Context, jobID string) (MomentTaskResult, error) {
	var out struct {
		respHeader
		MomentTaskResult
	}
	err := c.call(ctx, endpoint{path: "externalcontact/get_moment_task_result", safe: true}, url.Values{"jobid": {jobID}}, nil, &out)
	return out.MomentTaskResult, err
}

// CancelMomentTask stops a corp moment task: staff who have not published it
// can no longer do so (externalcontact/cancel_moment_task).
func (c *Client) CancelMomentTask(ctx context.Context, momentID string) error {
	body := struct {
		MomentID string `json:"moment_id"`
	}{momentID}
	return c.call(ctx, endpoint{path: "externalcontact/cancel_moment_task", post: true, safe: true}, nil, body, nil)
}

// GetMomentTask lists each sender's publish state of a corp moment, a page at
// a time (externalcontact/get_moment_task); limit 0 or over 1,000 means 1,000.
func (c *Client) GetMomentTask(ctx context.Context, momentID, cursor string, limit int) ([]MomentPublish, string, error) {
	if limit <= 0 || limit > MaxMomentTaskPage {
		limit = MaxMomentTaskPage
	}
	body := struct {
		MomentID string `json:"moment_id"`
		Cursor   string `json:"cursor,omitempty"`
		Limit    int    `json:"limit"`
	}{momentID, cursor, limit}
	var out struct {
		respHeader
		TaskList   []MomentPublish `json:"task_list"`
		NextCursor string          `json:"next_cursor"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/get_moment_task", post: true, safe: true}, nil, body, &out)
	return out.TaskList, out.NextCursor, err
}

// GetMomentCustomerList lists the customers a sender's moment was meant for
// (the visible range chosen at creation), a page at a time
// (externalcontact/get_moment_customer_list); limit 0 or over 1,000 means 1,000.
func (c *Client) GetMomentCustomerList(ctx context.Context, momentID, userID, cursor string, limit int) ([]MomentCustomer, string, error) {
	return c.momentCustomers(ctx, "externalcontact/get_moment_customer_list", MaxMomentTaskPage, momentID, userID, cursor, limit)
}

// GetMomentSendResult lists the customers who can see a sender's moment now
// that it is published, a page at a time (externalcontact/get_moment_send_result);
// limit 0 or over 5,000 means 5,000.
func (c *Client) GetMomentSendResult(ctx context.Context, momentID, userID, cursor string, limit int) ([]MomentCustomer, string, error) {
	return c.momentCustomers(ctx, "externalcontact/get_moment_send_result", MaxMomentSendPage, momentID, userID, cursor, limit)
}

func (c *Client) momentCustomers(ctx context.Context, path string, max int, momentID, userID, cursor string, limit int) ([]MomentCustomer, string, error) {
	if limit <= 0 || limit > max {
		limit = max
	}
	body := struct {
		MomentID string `json:"moment_id"`
		UserID   string `json:"userid"`
		Cursor   string `json:"cursor,omitempty"`
		Limit    int    `json:"limit"`
	}{momentID, userID, cursor, limit}
	var out struct {
		respHeader
		CustomerList []MomentCustomer `json:"customer_list"`
		NextCursor   string           `json:"next_cursor"`
	}
	err := c.call(ctx, endpoint{path: path, post: true, safe: true}, nil, body, &out)
	return out.CustomerList, out.NextCursor, err
}

// GetMomentList lists the corp's moments created in a span of at most 30
// days, a page at a time (externalcontact/get_moment_list, 93333); limit 0 or
// over 20 means 20.
func (c *Client) GetMomentList(ctx context.Context, f MomentFilter, cursor string, limit int) ([]Moment, string, error) {
	if f.End.Sub(f.Start) > MaxMomentListSpan || f.End.Before(f.Start) {
		return nil, "", errs.Field("end_time", "invalid_span", "a moment list spans at most 30 days")
	}
	if limit <= 0 || limit > MaxMomentListPage {
		limit = MaxMomentListPage
	}
	body := struct {
		StartTime  int64  `json:"start_time"`
		EndTime    int64  `json:"end_time"`
		Creator    string `json:"creator,omitempty"`
		FilterType int    `json:"filter_type"`
		Cursor     string `json:"cursor,omitempty"`
		Limit      int    `json:"limit"`
	}{f.Start.Unix(), f.End.Unix(), f.Creator, f.FilterType, cursor, limit}
	var out struct {
		respHeader
		MomentList []Moment `json:"moment_list"`
		NextCursor string   `json:"next_cursor"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/get_moment_list", post: true, safe: true}, nil, body, &out)
	return out.MomentList, out.NextCursor, err
}

// UploadMomentMedia uploads an image or video for a moment
// (media/upload_attachment with attachment_type 1) and returns its media_id,
// valid for three days. mediaType is "image" or "video"; each is at most 10 MB.
func (c *Client) UploadMomentMedia(ctx context.Context, mediaType, filename string, data []byte) (string, error) {
	if mediaType != "image" && mediaType != "video" {
		return "", errs.Field("media_type", "invalid", "a moment's media is an image or a video, not %q", mediaType)
	}
	if len(data) == 0 {
		return "", errs.Field("file", "empty", "the file is empty")
	}
	if len(data) > MaxMomentMediaBytes {
		return "", errs.E(errs.TooLarge, "file_too_large", "a moment's image or video is at most 10 MB, not %.1f MB", float64(len(data))/(1<<20))
	}
	path := "media/upload_attachment"
	tokenRetried, rateTries := false, 0
	for {
		tok, err := c.AccessToken(ctx)
		if err != nil {
			return "", err
		}
		if err := c.limiter.wait(ctx, path, c.now, c.sleep); err != nil {
			return "", fmt.Errorf("wecom: %s: waiting for the rate limiter: %w", path, err)
		}
		var out struct {
			respHeader
			Type    string `json:"type"`
			MediaID string `json:"media_id"`
		}
		q := url.Values{"access_token": {tok}, "media_type": {mediaType}, "attachment_type": {momentAttachmentType}}
		if err := c.postFile(ctx, path, q, filename, data, &out); err != nil {
			return "", err
		}
		switch code := out.ErrCode; {
		case code == 0:
			if out.MediaID == "" {
				return "", fmt.Errorf("wecom: %s: the answer has no media_id", path)
			}
			return out.MediaID, nil
		case isTokenCode(code) && !tokenRetried:
			tokenRetried = true
			c.invalidate(tok)
		case isRateCode(code) && rateTries < c.maxRetries:
			if err := c.backoff(ctx, rateTries); err != nil {
				return "", fmt.Errorf("wecom: %s: %w", path, err)
			}
			rateTries++
		default:
			return "", &APIError{Code: code, Msg: out.ErrMsg, API: path}
		}
	}
}
