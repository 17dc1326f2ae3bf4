package wecom

import "encoding/json"

// The types below follow WeCom's JSON shapes field for field
// (developer.work.weixin.qq.com/document/path/…); comments give the page.

// respHeader is the errcode/errmsg pair every WeCom answer starts with.
type respHeader struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// Token is an access token with its lifetime as WeCom gave it (gettoken, 91039).
type Token struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"` // seconds, normally 7200
}

// Department is one directory department (department/list, 90208).
type Department struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name,omitempty"`
	NameEN   string   `json:"name_en,omitempty"`
	Leaders  []string `json:"department_leader,omitempty"`
	ParentID int64    `json:"parentid"`
	Order    int64    `json:"order"`
}

// User is one directory member (user/get, user/list; 90196, 90201). Apps
// created after mid-2022 no longer receive mobile, gender, email and avatar.
type User struct {
	UserID         string  `json:"userid"`
	Name           string  `json:"name"`
	Department     []int64 `json:"department"`
	Order          []int64 `json:"order,omitempty"`
	Position       string  `json:"position,omitempty"`
	Mobile         string  `json:"mobile,omitempty"`
	Gender         string  `json:"gender,omitempty"` // "0" unknown, "1" male, "2" female (a string here, unlike contacts)
	Email          string  `json:"email,omitempty"`
	IsLeaderInDept []int   `json:"is_leader_in_dept,omitempty"`
	Avatar         string  `json:"avatar,omitempty"`
	Alias          string  `json:"alias,omitempty"`
	Status         int     `json:"status"` // 1 active, 2 disabled, 4 not activated, 5 left the corp
	MainDepartment int64   `json:"main_department,omitempty"`
	OpenUserID     string  `json:"open_userid,omitempty"`
}

// User status values.
const (
	UserActive      = 1
	UserDisabled    = 2
	UserNotActive   = 4
	UserLeftTheCorp = 5
)

// DeptUser is one entry of user/list_id (96067): a member and one of their departments.
type DeptUser struct {
	UserID     string `json:"userid"`
	Department int64  `json:"department"`
}

// UserIDPage is one page of user/list_id.
type UserIDPage struct {
	DeptUsers  []DeptUser `json:"dept_user"`
	NextCursor string     `json:"next_cursor"`
}

// Contact types and genders.
const (
	ContactWeChat = 1 // a WeChat user
	ContactWeCom  = 2 // a member of another WeCom corp
)

// ExternalContact is a customer as WeCom describes them (externalcontact/get, 92114).
type ExternalContact struct {
	ExternalUserID  string          `json:"external_userid"`
	Name            string          `json:"name"`
	Position        string          `json:"position,omitempty"`
	Avatar          string          `json:"avatar,omitempty"`
	CorpName        string          `json:"corp_name,omitempty"`
	CorpFullName    string          `json:"corp_full_name,omitempty"`
	Type            int             `json:"type"`   // ContactWeChat or ContactWeCom
	Gender          int             `json:"gender"` // 0 unknown, 1 male, 2 female
	UnionID         string          `json:"unionid,omitempty"`
	ExternalProfile json.RawMessage `json:"external_profile,omitempty"`
}

// FollowTag is a tag a staff member gave a customer, as externalcontact/get lists it.
type FollowTag struct {
	GroupName string `json:"group_name"`
	TagName   string `json:"tag_name"`
	TagID     string `json:"tag_id,omitempty"` // only for corp tags (Type 1)
	Type      int    `json:"type"`             // 1 corp tag, 2 personal tag, 3 rule-group tag
}

// WechatChannels tells which Channels (视频号) account a customer came through.
type WechatChannels struct {
	Nickname string `json:"nickname"`
	Source   int    `json:"source"`
}

// FollowUser is one staff member's relation to a customer (externalcontact/get).
type FollowUser struct {
	UserID         string          `json:"userid"`
	Remark         string          `json:"remark"`
	Description    string          `json:"description"`
	CreateTime     int64           `json:"createtime"` // unix seconds
	Tags           []FollowTag     `json:"tags,omitempty"`
	RemarkCorpName string          `json:"remark_corp_name,omitempty"`
	RemarkMobiles  []string        `json:"remark_mobiles,omitempty"`
	OperUserID     string          `json:"oper_userid"`
	AddWay         int             `json:"add_way"`
	State          string          `json:"state,omitempty"`
	WechatChannels *WechatChannels `json:"wechat_channels,omitempty"`
}

// ContactDetail is a customer with the staff who follow them. FollowUsers is
// paged (500 a page); NextCursor is empty on the last page.
type ContactDetail struct {
	ExternalContact ExternalContact `json:"external_contact"`
	FollowUsers     []FollowUser    `json:"follow_user"`
	NextCursor      string          `json:"next_cursor"`
}

// FollowInfo is one staff member's relation as batch/get_by_user gives it: tag IDs only.
type FollowInfo struct {
	UserID         string          `json:"userid"`
	Remark         string          `json:"remark"`
	Description    string          `json:"description"`
	CreateTime     int64           `json:"createtime"`
	TagIDs         []string        `json:"tag_id"`
	RemarkCorpName string          `json:"remark_corp_name,omitempty"`
	RemarkMobiles  []string        `json:"remark_mobiles,omitempty"`
	OperUserID     string          `json:"oper_userid"`
	AddWay         int             `json:"add_way"`
	State          string          `json:"state,omitempty"`
	WechatChannels *WechatChannels `json:"wechat_channels,omitempty"`
}

// ContactFollow is one (customer, staff member) pair of batch/get_by_user.
type ContactFollow struct {
	ExternalContact ExternalContact `json:"external_contact"`
	FollowInfo      FollowInfo      `json:"follow_info"`
}

// ContactPage is one page of batch/get_by_user (92994); NextCursor is empty on the last page.
type ContactPage struct {
	Contacts   []ContactFollow `json:"external_contact_list"`
	NextCursor string          `json:"next_cursor"`
}

// RemarkRequest changes a staff member's notes about a customer (externalcontact/remark, 92115).
// Nil fields are left as they are; an empty string clears the field.
type RemarkRequest struct {
	UserID           string   `json:"userid"`
	ExternalUserID   string   `json:"external_userid"`
	Remark           *string  `json:"remark,omitempty"`      // ≤ 20 characters
	Description      *string  `json:"description,omitempty"` // ≤ 150 characters
	RemarkCompany    *string  `json:"remark_company,omitempty"`
	RemarkMobiles    []string `json:"remark_mobiles,omitempty"` // []string{""} clears them
	RemarkPicMediaID string   `json:"remark_pic_mediaid,omitempty"`
}

// CorpTag is one corp tag (企业标签). Higher Order sorts first.
type CorpTag struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	CreateTime int64  `json:"create_time"`
	Order      int64  `json:"order"`
	Deleted    bool   `json:"deleted,omitempty"` // only reported when queried by tag ID
}

// CorpTagGroup is a corp tag group with its tags (get_corp_tag_list, 92117).
type CorpTagGroup struct {
	GroupID    string    `json:"group_id"`
	GroupName  string    `json:"group_name"`
	CreateTime int64     `json:"create_time"`
	Order      int64     `json:"order"`
	Deleted    bool      `json:"deleted,omitempty"`
	Tags       []CorpTag `json:"tag"`
}

// NewCorpTag is a tag to create.
type NewCorpTag struct {
	Name  string `json:"name"`
	Order int64  `json:"order,omitempty"`
}

// AddCorpTagRequest creates tags in an existing group (GroupID) or in a group
// found or created by name (GroupName).
type AddCorpTagRequest struct {
	GroupID   string       `json:"group_id,omitempty"`
	GroupName string       `json:"group_name,omitempty"`
	Order     int64        `json:"order,omitempty"`
	Tags      []NewCorpTag `json:"tag"`
	AgentID   int64        `json:"agentid,omitempty"`
}

// EditCorpTagRequest renames or reorders a tag or a tag group (by its ID).
type EditCorpTagRequest struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Order   *int64 `json:"order,omitempty"`
	AgentID int64  `json:"agentid,omitempty"`
}

// Group chat status values of groupchat/list.
const (
	ChatNormal            = 0
	ChatOwnerResigned     = 1 // the owner left; waiting for inheritance
	ChatInheritanceActive = 2
	ChatInheritanceDone   = 3
)

// GroupChatFilter selects customer groups for groupchat/list (92120).
type GroupChatFilter struct {
	StatusFilter int      // 0 all, 1 owner resigned, 2 inheritance in progress, 3 inheritance done
	OwnerUserIDs []string // empty: every owner
}

// GroupChatStatus is one entry of groupchat/list.
type GroupChatStatus struct {
	ChatID string `json:"chat_id"`
	Status int    `json:"status"`
}

// GroupChatPage is one page of groupchat/list; NextCursor is empty on the last page.
type GroupChatPage struct {
	GroupChats []GroupChatStatus `json:"group_chat_list"`
	NextCursor string            `json:"next_cursor"`
}

// Group member types and join scenes (groupchat/get).
const (
	MemberStaff    = 1
	MemberExternal = 2

	JoinByInvite     = 1 // invited directly by a member
	JoinByInviteLink = 2 // through an invitation link
	JoinByQRCode     = 3 // scanned the group QR code
)

// Invitor is the member who invited someone into a group.
type Invitor struct {
	UserID string `json:"userid"`
}

// GroupMember is one member of a customer group.
type GroupMember struct {
	UserID        string   `json:"userid"`
	Type          int      `json:"type"` // MemberStaff or MemberExternal
	UnionID       string   `json:"unionid,omitempty"`
	JoinTime      int64    `json:"join_time"`
	JoinScene     int      `json:"join_scene"`
	Invitor       *Invitor `json:"invitor,omitempty"`
	GroupNickname string   `json:"group_nickname"`
	Name          string   `json:"name"` // only with need_name
}

// GroupAdmin is one administrator of a customer group.
type GroupAdmin struct {
	UserID string `json:"userid"`
}

// GroupChat is a customer group in full (groupchat/get, 92122). MemberVersion
// changes whenever membership changes; callbacks carry the versions before and
// after, so a gap shows a missed event.
type GroupChat struct {
	ChatID        string        `json:"chat_id"`
	Name          string        `json:"name"`
	Owner         string        `json:"owner"`
	CreateTime    int64         `json:"create_time"`
	Notice        string        `json:"notice"`
	Members       []GroupMember `json:"member_list"`
	Admins        []GroupAdmin  `json:"admin_list"`
	MemberVersion string        `json:"member_version"`
}

// ContactWayConclusions is what a temporary 联系我 session ends with.
type ContactWayConclusions struct {
	Text        *Text        `json:"text,omitempty"`
	Image       *Image       `json:"image,omitempty"`
	Link        *Link        `json:"link,omitempty"`
	MiniProgram *MiniProgram `json:"miniprogram,omitempty"`
}

// ContactWay is a 联系我 configuration (add_contact_way, 92228): the channel code.
type ContactWay struct {
	ConfigID      string                 `json:"config_id,omitempty"` // set by WeCom
	Type          int                    `json:"type"`                // 1 one member, 2 several
	Scene         int                    `json:"scene"`               // 1 mini-program button, 2 QR code
	Style         int                    `json:"style,omitempty"`
	Remark        string                 `json:"remark,omitempty"`
	SkipVerify    bool                   `json:"skip_verify"`     // sent always: WeCom's default is true
	State         string                 `json:"state,omitempty"` // ≤ 30 characters; comes back in add_external_contact
	Users         []string               `json:"user,omitempty"`
	Parties       []int64                `json:"party,omitempty"`
	IsTemp        bool                   `json:"is_temp,omitempty"`
	ExpiresIn     int                    `json:"expires_in,omitempty"`
	ChatExpiresIn int                    `json:"chat_expires_in,omitempty"`
	UnionID       string                 `json:"unionid,omitempty"`
	IsExclusive   bool                   `json:"is_exclusive,omitempty"`
	Conclusions   *ContactWayConclusions `json:"conclusions,omitempty"`
	QRCode        string                 `json:"qr_code,omitempty"` // set by WeCom for scene 2
}

// ContactWayCreated is add_contact_way's answer.
type ContactWayCreated struct {
	ConfigID string `json:"config_id"`
	QRCode   string `json:"qr_code"`
}

// Text is message text.
type Text struct {
	Content string `json:"content"`
}

// Image is an image attachment: an uploaded media_id or a picture URL.
type Image struct {
	MediaID string `json:"media_id,omitempty"`
	PicURL  string `json:"pic_url,omitempty"`
}

// Link is a link card.
type Link struct {
	Title  string `json:"title"`
	PicURL string `json:"picurl,omitempty"`
	Desc   string `json:"desc,omitempty"`
	URL    string `json:"url"`
}

// MiniProgram is a mini-program card.
type MiniProgram struct {
	Title      string `json:"title"`
	PicMediaID string `json:"pic_media_id"`
	AppID      string `json:"appid"`
	Page       string `json:"page"`
}

// Media is a video or file attachment.
type Media struct {
	MediaID string `json:"media_id"`
}

// Attachment is one attachment of a welcome message or mass message; MsgType
// names the one field that is set ("image", "link", "miniprogram", "video", "file").
type Attachment struct {
	MsgType     string       `json:"msgtype"`
	Image       *Image       `json:"image,omitempty"`
	Link        *Link        `json:"link,omitempty"`
	MiniProgram *MiniProgram `json:"miniprogram,omitempty"`
	Video       *Media       `json:"video,omitempty"`
	File        *Media       `json:"file,omitempty"`
}

// WelcomeMessage is sent with the WelcomeCode of an add_external_contact
// callback, within 20 seconds (send_welcome_msg, 92137).
type WelcomeMessage struct {
	WelcomeCode string       `json:"welcome_code"`
	Text        *Text        `json:"text,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"` // ≤ 9
}
