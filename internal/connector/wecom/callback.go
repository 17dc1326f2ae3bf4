package wecom

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
)

// ErrBadEvent means a decrypted callback message is not a WeCom message:
// neither XML with an <xml> root nor a JSON object, no MsgType, or a field
// that should be a number is not one. The message was still signed by WeCom
// (or someone holding the token), so the inbox should keep its raw text.
var ErrBadEvent = errs.E(errs.Invalid, "wecom_bad_event",
	"the callback's message could not be read as a WeCom event")

// MsgTypeEvent is the MsgType of every event callback; other MsgTypes are
// messages sent to the app.
const MsgTypeEvent = "event"

// Event names (the Event field).
const (
	EventChangeExternalContact = "change_external_contact" // a staff member's customer was added, edited, deleted…
	EventChangeExternalChat    = "change_external_chat"    // a customer group was created, changed or dismissed
	EventChangeExternalTag     = "change_external_tag"     // a corp customer tag or tag group changed
	EventChangeContact         = "change_contact"          // the corp directory (staff, departments) changed
)

// Change types of change_external_contact (developer.work.weixin.qq.com/document/path/92130).
const (
	ChangeAddExternalContact     = "add_external_contact"      // staff added a customer; carries State and WelcomeCode
	ChangeEditExternalContact    = "edit_external_contact"     // staff edited the remark, description or corp tags
	ChangeAddHalfExternalContact = "add_half_external_contact" // the customer added staff without verification; not yet mutual
	ChangeDelExternalContact     = "del_external_contact"      // staff deleted the customer (Source=DELETE_BY_TRANSFER on handover)
	ChangeDelFollowUser          = "del_follow_user"           // the customer deleted the staff member
	ChangeTransferFail           = "transfer_fail"             // a handover of the customer failed; see FailReason
)

// Change types of change_external_chat.
const (
	ChangeChatCreate  = "create"
	ChangeChatUpdate  = "update"
	ChangeChatDismiss = "dismiss"
)

// UpdateDetail values of a change_external_chat update.
const (
	UpdateAddMember    = "add_member"    // members joined; JoinScene, MemChangeList
	UpdateDelMember    = "del_member"    // members left; QuitScene, MemChangeList
	UpdateChangeOwner  = "change_owner"  // the owner changed
	UpdateChangeName   = "change_name"   // the group was renamed
	UpdateChangeNotice = "change_notice" // the group notice changed
)

// JoinScene and QuitScene values.
const (
	JoinSceneInvited = 0 // invited by a member, directly or by an invitation link
	JoinSceneQRCode  = 3 // scanned the group's QR code
	QuitSceneSelf    = 0 // left by themselves
	QuitSceneRemoved = 1 // removed by the owner or an admin
)

// Change types of change_external_tag.
const (
	ChangeTagCreate  = "create"
	ChangeTagUpdate  = "update"
	ChangeTagDelete  = "delete"
	ChangeTagShuffle = "shuffle" // tags or groups were reordered; Id is the group, or empty for the groups' order
)

// TagType values of change_external_tag.
const (
	TagTypeTag      = "tag"
	TagTypeTagGroup = "tag_group"
)

// Change types of change_contact (developer.work.weixin.qq.com/document/path/90970).
const (
	ChangeCreateUser  = "create_user"
	ChangeUpdateUser  = "update_user" // NewUserID is set when the UserID itself changed
	ChangeDeleteUser  = "delete_user"
	ChangeCreateParty = "create_party"
	ChangeUpdateParty = "update_party"
	ChangeDeleteParty = "delete_party"
	ChangeUpdateTag   = "update_tag" // a member (not customer) tag's members changed
)

// Values of Source and FailReason.
const (
	SourceDeleteByTransfer        = "DELETE_BY_TRANSFER"    // del_external_contact caused by an in-service handover
	FailReasonCustomerRefused     = "customer_refused"      // the customer refused the handover
	FailReasonCustomerLimitExceed = "customer_limit_exceed" // the taking-over staff member has too many customers
)

// Kind names what an event is: its Event and ChangeType joined by "/", e.g.
// "change_external_contact/add_external_contact"; for a message that is not
// an event (or an event without an Event name), its MsgType ("text").
type Kind string

// Kinds of every event the connector handles.
const (
	KindAddExternalContact     Kind = EventChangeExternalContact + "/" + ChangeAddExternalContact
	KindEditExternalContact    Kind = EventChangeExternalContact + "/" + ChangeEditExternalContact
	KindAddHalfExternalContact Kind = EventChangeExternalContact + "/" + ChangeAddHalfExternalContact
	KindDelExternalContact     Kind = EventChangeExternalContact + "/" + ChangeDelExternalContact
	KindDelFollowUser          Kind = EventChangeExternalContact + "/" + ChangeDelFollowUser
	KindTransferFail           Kind = EventChangeExternalContact + "/" + ChangeTransferFail

	KindChatCreate  Kind = EventChangeExternalChat + "/" + ChangeChatCreate
	KindChatUpdate  Kind = EventChangeExternalChat + "/" + ChangeChatUpdate
	KindChatDismiss Kind = EventChangeExternalChat + "/" + ChangeChatDismiss

	KindTagCreate  Kind = EventChangeExternalTag + "/" + ChangeTagCreate
	KindTagUpdate  Kind = EventChangeExternalTag + "/" + ChangeTagUpdate
	KindTagDelete  Kind = EventChangeExternalTag + "/" + ChangeTagDelete
	KindTagShuffle Kind = EventChangeExternalTag + "/" + ChangeTagShuffle

	KindCreateUser  Kind = EventChangeContact + "/" + ChangeCreateUser
	KindUpdateUser  Kind = EventChangeContact + "/" + ChangeUpdateUser
	KindDeleteUser  Kind = EventChangeContact + "/" + ChangeDeleteUser
	KindCreateParty Kind = EventChangeContact + "/" + ChangeCreateParty
	KindUpdateParty Kind = EventChangeContact + "/" + ChangeUpdateParty
	KindDeleteParty Kind = EventChangeContact + "/" + ChangeDeleteParty
	KindUpdateTag   Kind = EventChangeContact + "/" + ChangeUpdateTag
)

// Known reports whether k is one of the kinds above; anything else is stored
// and shown but not applied.
func (k Kind) Known() bool {
	switch k {
	case KindAddExternalContact, KindEditExternalContact, KindAddHalfExternalContact,
		KindDelExternalContact, KindDelFollowUser, KindTransferFail,
		KindChatCreate, KindChatUpdate, KindChatDismiss,
		KindTagCreate, KindTagUpdate, KindTagDelete, KindTagShuffle,
		KindCreateUser, KindUpdateUser, KindDeleteUser,
		KindCreateParty, KindUpdateParty, KindDeleteParty, KindUpdateTag:
		return true
	}
	return false
}

// Event is one decrypted callback message. Fields carry WeCom's names (the
// XML element and JSON key are given where Go's spelling differs); a field an
// event does not have is zero. Events only say what changed: the service
// reads the current state from the API before it writes.
type Event struct {
	ToUserName   string // the corp ID
	FromUserName string // "sys" for system events
	CreateTime   int64  // unix seconds
	MsgType      string // "event" for events
	Event        string // e.g. change_external_contact
	ChangeType   string
	AgentID      string // AgentID, on app events and messages
	MsgID        string // MsgId, on messages (not events)

	// change_external_contact
	UserID         string // the staff member
	ExternalUserID string // the customer
	State          string // the "contact me" / acquisition-link state the customer came through
	WelcomeCode    string // lets Siyu send the welcome message, for 20 seconds
	Source         string // del_external_contact: DELETE_BY_TRANSFER on handover
	FailReason     string // transfer_fail: customer_refused or customer_limit_exceed

	// change_external_chat
	ChatID        string   // ChatId
	UpdateDetail  string   // add_member, del_member, change_owner, change_name, change_notice
	JoinScene     int      // add_member: JoinSceneInvited or JoinSceneQRCode
	QuitScene     int      // del_member: QuitSceneSelf or QuitSceneRemoved
	MemChangeCnt  int      // how many members changed, which may exceed len(MemChangeList)
	MemChangeList []string // the member IDs (staff UserIDs or external UserIDs), in WeCom's order
	LastMemVer    string   // the member version before the change
	CurMemVer     string   // the member version after it

	// change_external_tag (Id is also the department of a party change)
	ID         string // Id: the tag, tag group or department
	TagType    string // tag or tag_group
	StrategyID int64  // StrategyId: the rule group, 0 for corp-wide tags

	// change_contact
	NewUserID      string   // update_user: the new UserID when it changed
	Name           string   // the user's or department's name
	Alias          string   // the user's alias
	Position       string   // the user's job title
	Department     []int64  // the user's departments
	MainDepartment int64    // the user's main department
	IsLeaderInDept []int    // per Department: 1 when the user leads it
	DirectLeader   []string // the user's direct leaders' UserIDs
	Status         int      // 1 active, 2 disabled, 4 not yet activated, 5 left
	Avatar         string   // the user's avatar URL
	ParentID       string   // ParentId: a department's parent
	Order          int64    // a department's order
	TagID          string   // TagId: update_tag's member tag
	AddUserItems   []string // update_tag: users added
	DelUserItems   []string // update_tag: users removed
	AddPartyItems  []int64  // update_tag: departments added
	DelPartyItems  []int64  // update_tag: departments removed

	// Raw is the decrypted message as received, kept so an event Siyu does
	// not understand can still be stored, shown and reprocessed later.
	Raw []byte
	// Format is the message's format.
	Format Format
}

// Kind returns what the event is, e.g. KindAddExternalContact.
func (e Event) Kind() Kind {
	if e.MsgType != MsgTypeEvent || e.Event == "" {
		return Kind(e.MsgType)
	}
	if e.ChangeType == "" {
		return Kind(e.Event)
	}
	return Kind(e.Event + "/" + e.ChangeType)
}

// Time returns CreateTime as a time.
func (e Event) Time() time.Time { return time.Unix(e.CreateTime, 0) }

// Key returns the event's idempotency key for the durable inbox. WeCom
// retries a callback it got no timely answer to, and may send one twice; the
// retry has the same key. Events that differ in anything that identifies
// them (kind, corp, time, staff, customer, group, tag, members, versions…)
// have different keys, so two customers added in the same second are two
// events. For a kind Siyu does not know, the raw message is part of the key,
// as it is the only thing known to identify it.
//
// The key is "<kind>@<CreateTime>#<hash>", readable in logs; kind is cut to
// 64 bytes, so the key is at most about 110 bytes.
func (e Event) Key() string {
	h := sha256.New()
	field := func(name, value string) {
		// Length-prefixed, so no two field lists encode alike.
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		io.WriteString(h, name)
		binary.BigEndian.PutUint64(n[:], uint64(len(value)))
		h.Write(n[:])
		io.WriteString(h, value)
	}
	list := func(name string, values []string) {
		field(name+"#", strconv.Itoa(len(values)))
		for _, v := range values {
			field(name, v)
		}
	}
	ints := func(name string, values []int64) {
		s := make([]string, len(values))
		for i, v := range values {
			s[i] = strconv.FormatInt(v, 10)
		}
		list(name, s)
	}
	field("ToUserName", e.ToUserName)
	field("CreateTime", strconv.FormatInt(e.CreateTime, 10))
	field("MsgType", e.MsgType)
	field("Event", e.Event)
	field("ChangeType", e.ChangeType)
	field("MsgId", e.MsgID)
	field("UserID", e.UserID)
	field("NewUserID", e.NewUserID)
	field("ExternalUserID", e.ExternalUserID)
	field("Source", e.Source)
	field("FailReason", e.FailReason)
	field("ChatId", e.ChatID)
	field("UpdateDetail", e.UpdateDetail)
	list("MemChangeList", e.MemChangeList)
	field("LastMemVer", e.LastMemVer)
	field("CurMemVer", e.CurMemVer)
	field("Id", e.ID)
	field("TagType", e.TagType)
	field("StrategyId", strconv.FormatInt(e.StrategyID, 10))
	field("TagId", e.TagID)
	list("AddUserItems", e.AddUserItems)
	list("DelUserItems", e.DelUserItems)
	ints("AddPartyItems", e.AddPartyItems)
	ints("DelPartyItems", e.DelPartyItems)
	kind := e.Kind()
	if !kind.Known() {
		field("Raw", string(e.Raw))
	}
	return fmt.Sprintf("%s@%d#%s", truncate(string(kind), 64), e.CreateTime, hex.EncodeToString(h.Sum(nil))[:32])
}

// ParseEvent reads a decrypted callback message, XML or JSON (told apart by
// the first non-blank byte). Any well-formed message with a MsgType parses,
// known kind or not; errors wrap ErrBadEvent.
func ParseEvent(msg []byte) (Event, error) {
	trimmed := bytes.TrimLeft(msg, " \t\r\n\ufeff")
	var w wireEvent
	var format Format
	switch {
	case len(trimmed) > 0 && trimmed[0] == '<':
		format = FormatXML
		if err := xml.Unmarshal(trimmed, &w); err != nil {
			return Event{}, fmt.Errorf("wecom: callback message is not XML with an <xml> root: %v: %w", err, ErrBadEvent)
		}
	case len(trimmed) > 0 && trimmed[0] == '{':
		format = FormatJSON
		if err := json.Unmarshal(trimmed, &w); err != nil {
			return Event{}, fmt.Errorf("wecom: callback message is not a JSON object of WeCom's fields: %v: %w", err, ErrBadEvent)
		}
	default:
		return Event{}, fmt.Errorf("wecom: callback message is neither XML nor JSON: %w", ErrBadEvent)
	}
	e, err := w.event()
	if err != nil {
		return Event{}, fmt.Errorf("wecom: %v: %w", err, ErrBadEvent)
	}
	if e.MsgType == "" {
		return Event{}, fmt.Errorf("wecom: callback message has no MsgType: %w", ErrBadEvent)
	}
	e.Raw = bytes.Clone(msg)
	e.Format = format
	return e, nil
}

// wireEvent is an event as it comes over the wire. Go's JSON decoding matches
// keys without regard to case, so the same names read WeCom's JSON form.
// Numbers are read as text first: WeCom's XML puts them in CDATA or not, and
// its JSON may quote them.
type wireEvent struct {
	XMLName        xml.Name   `xml:"xml" json:"-"`
	ToUserName     flexValue  `xml:"ToUserName" json:"ToUserName"`
	FromUserName   flexValue  `xml:"FromUserName" json:"FromUserName"`
	CreateTime     flexValue  `xml:"CreateTime" json:"CreateTime"`
	MsgType        flexValue  `xml:"MsgType" json:"MsgType"`
	Event          flexValue  `xml:"Event" json:"Event"`
	ChangeType     flexValue  `xml:"ChangeType" json:"ChangeType"`
	AgentID        flexValue  `xml:"AgentID" json:"AgentID"`
	MsgID          flexValue  `xml:"MsgId" json:"MsgId"`
	UserID         flexValue  `xml:"UserID" json:"UserID"`
	ExternalUserID flexValue  `xml:"ExternalUserID" json:"ExternalUserID"`
	State          flexValue  `xml:"State" json:"State"`
	WelcomeCode    flexValue  `xml:"WelcomeCode" json:"WelcomeCode"`
	Source         flexValue  `xml:"Source" json:"Source"`
	FailReason     flexValue  `xml:"FailReason" json:"FailReason"`
	ChatID         flexValue  `xml:"ChatId" json:"ChatId"`
	UpdateDetail   flexValue  `xml:"UpdateDetail" json:"UpdateDetail"`
	JoinScene      flexValue  `xml:"JoinScene" json:"JoinScene"`
	QuitScene      flexValue  `xml:"QuitScene" json:"QuitScene"`
	MemChangeCnt   flexValue  `xml:"MemChangeCnt" json:"MemChangeCnt"`
	MemChangeList  memberList `xml:"MemChangeList" json:"MemChangeList"`
	LastMemVer     flexValue  `xml:"LastMemVer" json:"LastMemVer"`
	CurMemVer      flexValue  `xml:"CurMemVer" json:"CurMemVer"`
	ID             flexValue  `xml:"Id" json:"Id"`
	TagType        flexValue  `xml:"TagType" json:"TagType"`
	StrategyID     flexValue  `xml:"StrategyId" json:"StrategyId"`
	NewUserID      flexValue  `xml:"NewUserID" json:"NewUserID"`
	Name           flexValue  `xml:"Name" json:"Name"`
	Alias          flexValue  `xml:"Alias" json:"Alias"`
	Position       flexValue  `xml:"Position" json:"Position"`
	Department     flexValue  `xml:"Department" json:"Department"`
	MainDepartment flexValue  `xml:"MainDepartment" json:"MainDepartment"`
	IsLeaderInDept flexValue  `xml:"IsLeaderInDept" json:"IsLeaderInDept"`
	DirectLeader   flexValue  `xml:"DirectLeader" json:"DirectLeader"`
	Status         flexValue  `xml:"Status" json:"Status"`
	Avatar         flexValue  `xml:"Avatar" json:"Avatar"`
	ParentID       flexValue  `xml:"ParentId" json:"ParentId"`
	Order          flexValue  `xml:"Order" json:"Order"`
	TagID          flexValue  `xml:"TagId" json:"TagId"`
	AddUserItems   flexValue  `xml:"AddUserItems" json:"AddUserItems"`
	DelUserItems   flexValue  `xml:"DelUserItems" json:"DelUserItems"`
	AddPartyItems  flexValue  `xml:"AddPartyItems" json:"AddPartyItems"`
	DelPartyItems  flexValue  `xml:"DelPartyItems" json:"DelPartyItems"`
}

// event converts the wire form, parsing numbers and lists; the first bad
// number is the error.
func (w *wireEvent) event() (Event, error) {
	p := numParser{}
	e := Event{
		ToUserName:     w.ToUserName.text(),
		FromUserName:   w.FromUserName.text(),
		CreateTime:     p.int64("CreateTime", w.CreateTime),
		MsgType:        w.MsgType.text(),
		Event:          w.Event.text(),
		ChangeType:     w.ChangeType.text(),
		AgentID:        w.AgentID.text(),
		MsgID:          w.MsgID.text(),
		UserID:         w.UserID.text(),
		ExternalUserID: w.ExternalUserID.text(),
		State:          w.State.text(),
		WelcomeCode:    w.WelcomeCode.text(),
		Source:         w.Source.text(),
		FailReason:     w.FailReason.text(),
		ChatID:         w.ChatID.text(),
		UpdateDetail:   w.UpdateDetail.text(),
		JoinScene:      int(p.int64("JoinScene", w.JoinScene)),
		QuitScene:      int(p.int64("QuitScene", w.QuitScene)),
		MemChangeCnt:   int(p.int64("MemChangeCnt", w.MemChangeCnt)),
		MemChangeList:  []string(w.MemChangeList),
		LastMemVer:     w.LastMemVer.text(),
		CurMemVer:      w.CurMemVer.text(),
		ID:             w.ID.text(),
		TagType:        w.TagType.text(),
		StrategyID:     p.int64("StrategyId", w.StrategyID),
		NewUserID:      w.NewUserID.text(),
		Name:           w.Name.text(),
		Alias:          w.Alias.text(),
		Position:       w.Position.text(),
		Department:     p.int64s("Department", w.Department),
		MainDepartment: p.int64("MainDepartment", w.MainDepartment),
		DirectLeader:   splitList(w.DirectLeader.text()),
		Status:         int(p.int64("Status", w.Status)),
		Avatar:         w.Avatar.text(),
		ParentID:       w.ParentID.text(),
		Order:          p.int64("Order", w.Order),
		TagID:          w.TagID.text(),
		AddUserItems:   splitList(w.AddUserItems.text()),
		DelUserItems:   splitList(w.DelUserItems.text()),
		AddPartyItems:  p.int64s("AddPartyItems", w.AddPartyItems),
		DelPartyItems:  p.int64s("DelPartyItems", w.DelPartyItems),
	}
	if leaders := p.int64s("IsLeaderInDept", w.IsLeaderInDept); leaders != nil {
		e.IsLeaderInDept = make([]int, len(leaders))
		for i, v := range leaders {
			e.IsLeaderInDept[i] = int(v)
		}
	}
	return e, p.err
}

// numParser parses numeric fields, keeping the first error so event() reads
// as a plain list of fields.
type numParser struct{ err error }

func (p *numParser) int64(name string, v flexValue) int64 {
	s := v.text()
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s %q is not an integer", name, truncate(s, 32))
	}
	return n
}

func (p *numParser) int64s(name string, v flexValue) []int64 {
	items := splitList(v.text())
	if items == nil {
		return nil
	}
	out := make([]int64, len(items))
	for i, s := range items {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil && p.err == nil {
			p.err = fmt.Errorf("%s item %q is not an integer", name, truncate(s, 32))
		}
		out[i] = n
	}
	return out
}

// splitList splits WeCom's comma-separated lists ("1,2,3"), dropping blanks;
// nil when there is nothing.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// flexValue is a scalar field: XML character data (CDATA or not), or a JSON
// string, number or boolean. Lists WeCom sends as one comma-separated string
// come through here too; a JSON array of scalars is joined with commas.
type flexValue string

func (v flexValue) text() string { return strings.TrimSpace(string(v)) }

// UnmarshalJSON accepts a string, a number, a boolean, null or an array of
// those.
func (v *flexValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*v = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = flexValue(s)
	case b[0] == '[':
		var items []flexValue
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = it.text()
		}
		*v = flexValue(strings.Join(parts, ","))
	case b[0] == '{':
		// Not a field Siyu reads as a scalar; an unknown event may use the
		// name for something else, and must still parse.
		*v = ""
	default:
		// A number or boolean: keep its literal text (json.Number keeps
		// integers beyond 2^53 exact).
		var n json.Number
		if err := json.Unmarshal(b, &n); err == nil {
			*v = flexValue(n.String())
			return nil
		}
		var t bool
		if err := json.Unmarshal(b, &t); err != nil {
			return err
		}
		*v = flexValue(strconv.FormatBool(t))
	}
	return nil
}

// UnmarshalXML reads the element's character data, ignoring any child
// elements.
func (v *flexValue) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var s struct {
		Text string `xml:",chardata"`
	}
	if err := d.DecodeElement(&s, &start); err != nil {
		return err
	}
	*v = flexValue(s.Text)
	return nil
}

// memberList is MemChangeList: in XML, <Item> children (the documented form)
// or one comma-separated text; in JSON, an array, {"Item": [...]}, {"Item":
// "x"} or a comma-separated string.
type memberList []string

// UnmarshalXML reads <Item> children, falling back to comma-separated text.
func (m *memberList) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var s struct {
		Items []string `xml:"Item"`
		Text  string   `xml:",chardata"`
	}
	if err := d.DecodeElement(&s, &start); err != nil {
		return err
	}
	var out []string
	for _, it := range s.Items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	if len(s.Items) == 0 {
		out = splitList(strings.TrimSpace(s.Text))
	}
	*m = out
	return nil
}

// UnmarshalJSON accepts the shapes listed on memberList.
func (m *memberList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var obj map[string]flexValue
		if err := json.Unmarshal(b, &obj); err != nil {
			return err
		}
		for k, v := range obj {
			if strings.EqualFold(k, "Item") {
				*m = splitList(v.text())
				return nil
			}
		}
		*m = nil
		return nil
	}
	var v flexValue
	if err := v.UnmarshalJSON(b); err != nil {
		return err
	}
	*m = splitList(v.text())
	return nil
}
