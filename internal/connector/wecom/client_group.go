package wecom

import (
	"context"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/errs"
)

// Customer groups (社群): group codes (加入群聊, add_join_way, 92229), group
// welcome templates (入群欢迎语素材, 92366) and group statistics (92133).

// Limits of the group APIs, as WeCom documents them.
const (
	MaxJoinWayChats       = 5  // chat_id_list of a group code
	MaxJoinWayState       = 30 // state, characters
	MaxJoinWayRemark      = 30 // remark, characters
	MaxRoomBaseName       = 40 // room_base_name, characters
	MaxGroupWelcomeText   = 4000
	MaxStatisticRangeDays = 30 // groupchat/statistic: day_end_time − day_begin_time
)

// CodeInvalidJoinWay is the answer for an unknown group code config_id: the
// same code as an unknown 联系我 config_id.
const CodeInvalidJoinWay = CodeInvalidContactWay

// JoinWay is a group code (加入群聊, groupchat/add_join_way): a QR code
// (scene 2) or mini-program button (scene 1) that brings customers into one
// of up to five groups, opening a new group when the last one fills
// (auto_create_room).
type JoinWay struct {
	ConfigID       string   `json:"config_id,omitempty"` // set by WeCom
	Scene          int      `json:"scene"`               // 1 mini-program, 2 QR code
	Remark         string   `json:"remark,omitempty"`
	AutoCreateRoom int      `json:"auto_create_room"`         // 1: open a new group when the last fills
	RoomBaseName   string   `json:"room_base_name,omitempty"` // name of auto-created groups, followed by a number
	RoomBaseID     int      `json:"room_base_id,omitempty"`   // the number of the first auto-created group
	ChatIDs        []string `json:"chat_id_list"`
	QRCode         string   `json:"qr_code,omitempty"` // set by WeCom for scene 2
	State          string   `json:"state,omitempty"`   // ≤ 30 characters; comes back in the join callback
}

// checkJoinWay validates a group code before WeCom sees it, with Siyu's codes.
func checkJoinWay(w JoinWay) error {
	switch {
	case len(w.ChatIDs) == 0:
		return errs.Field("chat_ids", "chat_ids_required", "a group code needs at least one group")
	case len(w.ChatIDs) > MaxJoinWayChats:
		return errs.Field("chat_ids", "too_many_chats", "a group code takes at most %d groups, not %d", MaxJoinWayChats, len(w.ChatIDs))
	case utf8.RuneCountInString(w.State) > MaxJoinWayState:
		return errs.Field("state", "too_long", "a group code's state is at most %d characters, not %d", MaxJoinWayState, utf8.RuneCountInString(w.State))
	case utf8.RuneCountInString(w.Remark) > MaxJoinWayRemark:
		return errs.Field("remark", "too_long", "a group code's remark is at most %d characters", MaxJoinWayRemark)
	case w.AutoCreateRoom == 1 && (w.RoomBaseName == "" || utf8.RuneCountInString(w.RoomBaseName) > MaxRoomBaseName):
		return errs.Field("room_base_name", "invalid_room_base_name", "new groups need a base name of 1–%d characters", MaxRoomBaseName)
	}
	return nil
}

// AddJoinWay creates a group code (externalcontact/groupchat/add_join_way)
// and returns its config_id; read the QR code with GetJoinWay. Not retried on
// network errors: a retry could create a second code.
func (c *Client) AddJoinWay(ctx context.Context, w JoinWay) (string, error) {
	if err := checkJoinWay(w); err != nil {
		return "", err
	}
	w.ConfigID, w.QRCode = "", ""
	var out struct {
		respHeader
		ConfigID string `json:"config_id"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/groupchat/add_join_way", post: true}, nil, w, &out)
	return out.ConfigID, err
}

// GetJoinWay reads a group code with its QR code and current groups
// (externalcontact/groupchat/get_join_way).
func (c *Client) GetJoinWay(ctx context.Context, configID string) (JoinWay, error) {
	body := struct {
		ConfigID string `json:"config_id"`
	}{configID}
	var out struct {
		respHeader
		JoinWay JoinWay `json:"join_way"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/groupchat/get_join_way", post: true, safe: true}, nil, body, &out)
	return out.JoinWay, err
}

// UpdateJoinWay replaces a group code's settings (externalcontact/groupchat/update_join_way).
func (c *Client) UpdateJoinWay(ctx context.Context, w JoinWay) error {
	if w.ConfigID == "" {
		return errs.Field("config_id", "required", "the group code's config_id is required")
	}
	if err := checkJoinWay(w); err != nil {
		return err
	}
	w.QRCode = ""
	return c.call(ctx, endpoint{path: "externalcontact/groupchat/update_join_way", post: true, safe: true}, nil, w, nil)
}

// DelJoinWay deletes a group code (externalcontact/groupchat/del_join_way).
func (c *Client) DelJoinWay(ctx context.Context, configID string) error {
	body := struct {
		ConfigID string `json:"config_id"`
	}{configID}
	return c.call(ctx, endpoint{path: "externalcontact/groupchat/del_join_way", post: true}, nil, body, nil)
}

// GroupWelcomeTemplate is a group welcome message (入群欢迎语素材): text with
// at most one of image, link, mini-program, file or video. %NICKNAME% in the
// text becomes the new member's name.
type GroupWelcomeTemplate struct {
	TemplateID  string       `json:"template_id,omitempty"`
	Text        *Text        `json:"text,omitempty"`
	Image       *Image       `json:"image,omitempty"`
	Link        *Link        `json:"link,omitempty"`
	MiniProgram *MiniProgram `json:"miniprogram,omitempty"`
	File        *Media       `json:"file,omitempty"`
	Video       *Media       `json:"video,omitempty"`
	AgentID     int64        `json:"agentid,omitempty"`
	Notify      *int         `json:"notify,omitempty"` // add only: 1 (default) tells the staff a template was added
}

func checkGroupWelcome(t GroupWelcomeTemplate) error {
	if (t.Text == nil || t.Text.Content == "") && t.Image == nil && t.Link == nil && t.MiniProgram == nil && t.File == nil && t.Video == nil {
		return errs.Field("text", "empty_template", "a group welcome template needs text or an attachment")
	}
	if t.Text != nil && len(t.Text.Content) > MaxGroupWelcomeText {
		return errs.Field("text", "too_long", "a group welcome text is at most %d bytes", MaxGroupWelcomeText)
	}
	return nil
}

// AddGroupWelcomeTemplate adds a group welcome template and returns its
// template_id (externalcontact/group_welcome_template/add). Not retried on
// network errors.
func (c *Client) AddGroupWelcomeTemplate(ctx context.Context, t GroupWelcomeTemplate) (string, error) {
	if err := checkGroupWelcome(t); err != nil {
		return "", err
	}
	t.TemplateID = ""
	var out struct {
		respHeader
		TemplateID string `json:"template_id"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/group_welcome_template/add", post: true}, nil, t, &out)
	return out.TemplateID, err
}

// EditGroupWelcomeTemplate replaces a template's content
// (externalcontact/group_welcome_template/edit).
func (c *Client) EditGroupWelcomeTemplate(ctx context.Context, t GroupWelcomeTemplate) error {
	if t.TemplateID == "" {
		return errs.Field("template_id", "required", "the template_id is required")
	}
	if err := checkGroupWelcome(t); err != nil {
		return err
	}
	t.Notify = nil
	return c.call(ctx, endpoint{path: "externalcontact/group_welcome_template/edit", post: true, safe: true}, nil, t, nil)
}

// GetGroupWelcomeTemplate reads a template (externalcontact/group_welcome_template/get).
func (c *Client) GetGroupWelcomeTemplate(ctx context.Context, templateID string) (GroupWelcomeTemplate, error) {
	body := struct {
		TemplateID string `json:"template_id"`
	}{templateID}
	var out struct {
		respHeader
		GroupWelcomeTemplate
	}
	err := c.call(ctx, endpoint{path: "externalcontact/group_welcome_template/get", post: true, safe: true}, nil, body, &out)
	out.TemplateID = templateID
	return out.GroupWelcomeTemplate, err
}

// DelGroupWelcomeTemplate deletes a template (externalcontact/group_welcome_template/del).
func (c *Client) DelGroupWelcomeTemplate(ctx context.Context, templateID string) error {
	body := struct {
		TemplateID string `json:"template_id"`
	}{templateID}
	return c.call(ctx, endpoint{path: "externalcontact/group_welcome_template/del", post: true}, nil, body, nil)
}

// GroupStatData is one row of group statistics (groupchat/statistic).
type GroupStatData struct {
	NewChatCnt            int64 `json:"new_chat_cnt"`
	ChatTotal             int64 `json:"chat_total"`
	ChatHasMsg            int64 `json:"chat_has_msg"`
	NewMemberCnt          int64 `json:"new_member_cnt"`
	MemberTotal           int64 `json:"member_total"`
	MemberHasMsg          int64 `json:"member_has_msg"`
	MsgTotal              int64 `json:"msg_total"`
	MigrateTraineeChatCnt int64 `json:"migrate_trainee_chat_cnt"`
}

// GroupStatByOwner is one owner's statistics (groupchat/statistic).
type GroupStatByOwner struct {
	Owner string        `json:"owner"`
	Data  GroupStatData `json:"data"`
}

// GroupStatByDay is one day's statistics (groupchat/statistic_group_by_day).
type GroupStatByDay struct {
	StatTime int64         `json:"stat_time"`
	Data     GroupStatData `json:"data"`
}

// GroupStatQuery selects days (unix seconds of day starts, at most 30 days
// apart) and owners.
type GroupStatQuery struct {
	DayBegin int64
	DayEnd   int64
	Owners   []string
}

type statOwnerFilter struct {
	UserIDList []string `json:"userid_list"`
}

// GroupChatStatistic returns group statistics per owner
// (externalcontact/groupchat/statistic), every page.
func (c *Client) GroupChatStatistic(ctx context.Context, q GroupStatQuery) ([]GroupStatByOwner, error) {
	var all []GroupStatByOwner
	offset := 0
	for {
		body := struct {
			DayBeginTime int64            `json:"day_begin_time"`
			DayEndTime   int64            `json:"day_end_time"`
			OwnerFilter  *statOwnerFilter `json:"owner_filter,omitempty"`
			OrderBy      int              `json:"order_by"`
			OrderAsc     int              `json:"order_asc"`
			Offset       int              `json:"offset"`
			Limit        int              `json:"limit"`
		}{DayBeginTime: q.DayBegin, DayEndTime: q.DayEnd, OrderBy: 1, Offset: offset, Limit: 1000}
		if len(q.Owners) > 0 {
			body.OwnerFilter = &statOwnerFilter{q.Owners}
		}
		var out struct {
			respHeader
			Total      int                `json:"total"`
			NextOffset int                `json:"next_offset"`
			Items      []GroupStatByOwner `json:"items"`
		}
		if err := c.call(ctx, endpoint{path: "externalcontact/groupchat/statistic", post: true, safe: true}, nil, body, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Items...)
		if len(out.Items) == 0 || out.NextOffset <= offset || out.NextOffset >= out.Total {
			return all, nil
		}
		offset = out.NextOffset
	}
}

// GroupChatStatisticByDay returns group statistics per day
// (externalcontact/groupchat/statistic_group_by_day).
func (c *Client) GroupChatStatisticByDay(ctx context.Context, q GroupStatQuery) ([]GroupStatByDay, error) {
	body := struct {
		DayBeginTime int64            `json:"day_begin_time"`
		DayEndTime   int64            `json:"day_end_time"`
		OwnerFilter  *statOwnerFilter `json:"owner_filter,omitempty"`
	}{DayBeginTime: q.DayBegin, DayEndTime: q.DayEnd}
	if len(q.Owners) > 0 {
		body.OwnerFilter = &statOwnerFilter{q.Owners}
	}
	var out struct {
		respHeader
		Items []GroupStatByDay `json:"items"`
	}
	err := c.call(ctx, endpoint{path: "externalcontact/groupchat/statistic_group_by_day", post: true, safe: true}, nil, body, &out)
	return out.Items, err
}
