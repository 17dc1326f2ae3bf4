package acquire

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/message"
)

// Sources a code can be for.
const (
	SourceStore  = "store"  // store checkout (门店)
	SourceParcel = "parcel" // parcel card (包裹卡)
	SourceAd     = "ad"     // advertising
	SourceLive   = "live"   // live stream
	SourceEvent  = "event"  // offline or online event
	SourceOther  = "other"
)

// Sources lists the valid sources.
func Sources() []string {
	return []string{SourceStore, SourceParcel, SourceAd, SourceLive, SourceEvent, SourceOther}
}

// Rotation modes.
const (
	ModeWeighted   = "weighted"    // smooth weighted round-robin by Weight
	ModeRoundRobin = "round_robin" // every eligible staff member in turn
)

// Code statuses.
const (
	StatusActive  = "active"
	StatusDeleted = "deleted" // del_contact_way done; statistics and attribution stay
)

// Limits.
const (
	MaxStateLen        = 30 // WeCom's limit on state
	MaxStaff           = 100
	MaxWeight          = 100
	MaxAttachments     = 9
	MaxWelcomeBytes    = 4000
	maxNameLen         = 64
	maxRemarkTmplLen   = 60
	maxDescTmplLen     = 300
	welcomeWindow      = 20 * time.Second
	placeholderCust    = "{{customer_name}}"
	placeholderStaff   = "{{staff_name}}"
	placeholderCode    = "{{code_name}}"
	remarkMaxRunes     = 20  // WeCom's remark limit
	descriptionMaxRune = 150 // WeCom's description limit
)

// ShiftWindow is a weekly time window in the workspace's time zone: on Days
// (1 Monday … 7 Sunday), from Start to End ("HH:MM", End after Start;
// "24:00" is the end of the day).
type ShiftWindow struct {
	Days  []int  `json:"days" doc:"ISO weekdays, 1 Monday … 7 Sunday." minItems:"1"`
	Start string `json:"start" doc:"HH:MM, inclusive." example:"09:00"`
	End   string `json:"end" doc:"HH:MM, exclusive; 24:00 is midnight." example:"18:00"`
}

// StaffRule is one staff member of a code's pool.
type StaffRule struct {
	UserID   string        `json:"userid" doc:"The staff member's WeCom userid."`
	Weight   *int          `json:"weight,omitempty" doc:"Share of adds in weighted mode, 1–100 (default 1)."`
	DailyCap *int          `json:"daily_cap,omitempty" doc:"Adds per day through this code, at least 1; when reached the next staff member takes over. Omitted: no cap."`
	Backup   bool          `json:"backup,omitempty" doc:"Only gets adds when no regular staff member is eligible (off schedule or capped)."`
	Schedule []ShiftWindow `json:"schedule,omitempty" doc:"When the staff member takes adds; empty: always."`
}

func (r StaffRule) weight() int {
	if r.Weight == nil {
		return 1
	}
	return *r.Weight
}

// CodeConfig is what an operator sets on a code.
type CodeConfig struct {
	Mode                string          `json:"mode,omitempty" enum:"weighted,round_robin" doc:"How adds are spread over the eligible staff (default weighted)."`
	Staff               []StaffRule     `json:"staff,omitempty" doc:"The staff pool (required for a code; ignored for store codes, whose pool is the store's staff)."`
	SkipVerify          bool            `json:"skip_verify,omitempty" doc:"Auto-accept: customers are added without the staff member confirming."`
	TagIDs              []int64         `json:"tag_ids,omitempty" doc:"Siyu tags applied to each customer added (bound tags are marked in WeCom as well)."`
	Welcome             message.Content `json:"welcome,omitempty" doc:"The welcome message; {{customer_name}} and {{staff_name}} are filled in."`
	RemarkTemplate      string          `json:"remark_template,omitempty" doc:"The staff member's remark for the customer (≤ 20 characters after filling in); {{customer_name}}, {{code_name}}."`
	DescriptionTemplate string          `json:"description_template,omitempty" doc:"The description (≤ 150 characters after filling in)."`
	GroupCodeID         int64           `json:"group_code_id,omitempty" doc:"A group code (社群活码) whose QR is added to the welcome message."`
}

// ChannelCode is a channel code.
type ChannelCode struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Source    string     `json:"source"`
	State     string     `json:"state" doc:"Comes back with each add; names the code."`
	StoreID   int64      `json:"store_id,omitempty"`
	Status    string     `json:"status" enum:"active,deleted"`
	Config    CodeConfig `json:"config"`
	ConfigID  string     `json:"config_id" doc:"WeCom's 联系我 config_id."`
	QRCode    string     `json:"qr_code" doc:"WeCom's QR image URL."`
	Users     []string   `json:"users" doc:"The staff the code currently routes to in WeCom."`
	WantUsers []string   `json:"next_users" doc:"The staff the policy chose for the next add (equal to users once WeCom is updated)."`
	SyncError string     `json:"sync_error,omitempty" doc:"Why WeCom could not be updated, if it could not."`
	TodayAdds int64      `json:"today_adds" doc:"Adds today (workspace time zone)."`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// CodeInput creates or changes a code.
type CodeInput struct {
	Name    string     `json:"name" minLength:"1" maxLength:"64"`
	Source  string     `json:"source" enum:"store,parcel,ad,live,event,other"`
	State   string     `json:"state" doc:"1–30 characters, unique in the workspace; comes back with each add." minLength:"1"`
	StoreID int64      `json:"store_id,omitempty" doc:"Makes it the store code of this store (one per store)."`
	Config  CodeConfig `json:"config"`
}

// normalize trims the input and checks what needs no database.
func (in *CodeInput) normalize() error {
	in.Name = strings.TrimSpace(in.Name)
	in.State = strings.TrimSpace(in.State)
	switch {
	case in.Name == "" || utf8.RuneCountInString(in.Name) > maxNameLen:
		return errs.Field("name", "invalid_name", "a code's name must be 1–%d characters", maxNameLen)
	case !slices.Contains(Sources(), in.Source):
		return errs.Field("source", "invalid_source", "unknown source %q (expected %s)", in.Source, strings.Join(Sources(), ", "))
	case in.State == "":
		return errs.Field("state", "state_required", "a code needs a state, the label WeCom sends back with each add")
	case utf8.RuneCountInString(in.State) > MaxStateLen:
		return errs.Field("state", "state_too_long", "the state %q is %d characters; WeCom allows at most %d", in.State, utf8.RuneCountInString(in.State), MaxStateLen)
	}
	return in.Config.normalize()
}

func (c *CodeConfig) normalize() error {
	if c.Mode == "" {
		c.Mode = ModeWeighted
	}
	if c.Mode != ModeWeighted && c.Mode != ModeRoundRobin {
		return errs.Field("config.mode", "invalid_mode", "unknown mode %q (expected weighted or round_robin)", c.Mode)
	}
	if len(c.Staff) == 0 {
		return errs.Field("config.staff", "staff_required", "a code needs at least one staff member")
	}
	if len(c.Staff) > MaxStaff {
		return errs.Field("config.staff", "too_many_staff", "a code takes at most %d staff members", MaxStaff)
	}
	seen := map[string]bool{}
	regular := 0
	for i := range c.Staff {
		r := &c.Staff[i]
		loc := fmt.Sprintf("config.staff[%d]", i)
		r.UserID = strings.TrimSpace(r.UserID)
		switch {
		case r.UserID == "":
			return errs.Field(loc+".userid", "staff_required", "staff member %d has no userid", i+1)
		case seen[r.UserID]:
			return errs.Field(loc+".userid", "duplicate_staff", "%s is in the pool twice", r.UserID)
		case r.Weight != nil && (*r.Weight <= 0 || *r.Weight > MaxWeight):
			return errs.Field(loc+".weight", "invalid_weight", "the weight of %s must be 1–%d, not %d", r.UserID, MaxWeight, *r.Weight)
		case r.DailyCap != nil && *r.DailyCap <= 0:
			return errs.Field(loc+".daily_cap", "invalid_cap", "the daily cap of %s must be at least 1, not %d (leave it empty for no cap)", r.UserID, *r.DailyCap)
		}
		seen[r.UserID] = true
		if !r.Backup {
			regular++
		}
		for j, w := range r.Schedule {
			if err := w.check(fmt.Sprintf("%s.schedule[%d]", loc, j)); err != nil {
				return err
			}
		}
	}
	if regular == 0 {
		return errs.Field("config.staff", "staff_required", "a code needs at least one staff member who is not a backup")
	}
	c.TagIDs = slices.Compact(slices.Sorted(slices.Values(c.TagIDs)))
	if len(c.TagIDs) > 100 {
		return errs.Field("config.tag_ids", "too_many_tags", "a code applies at most 100 tags")
	}
	if utf8.RuneCountInString(c.RemarkTemplate) > maxRemarkTmplLen {
		return errs.Field("config.remark_template", "remark_too_long", "the remark template is at most %d characters (WeCom keeps 20 after filling in)", maxRemarkTmplLen)
	}
	if utf8.RuneCountInString(c.DescriptionTemplate) > maxDescTmplLen {
		return errs.Field("config.description_template", "description_too_long", "the description template is at most %d characters", maxDescTmplLen)
	}
	return checkWelcome(c.Welcome, c.GroupCodeID != 0)
}

func checkWelcome(w message.Content, withGroup bool) error {
	if len(w.Text) > MaxWelcomeBytes {
		return errs.Field("config.welcome.text", "welcome_too_long", "the welcome text is at most %d bytes, not %d", MaxWelcomeBytes, len(w.Text))
	}
	limit := MaxAttachments
	if withGroup {
		limit-- // the group code's QR is one
	}
	if len(w.Attachments) > limit {
		return errs.Field("config.welcome.attachments", "too_many_attachments", "a welcome message has at most %d attachments here, not %d", limit, len(w.Attachments))
	}
	for i, a := range w.Attachments {
		loc := fmt.Sprintf("config.welcome.attachments[%d]", i)
		switch a.Kind {
		case "image":
			if a.ImageURL == "" && a.MediaID == "" {
				return errs.Field(loc+".image_url", "image_required", "an image attachment needs image_url or media_id")
			}
		case "link":
			if a.Title == "" || !httpURL(a.URL) {
				return errs.Field(loc+".url", "invalid_link", "a link needs a title and an http(s) url")
			}
		case "miniprogram":
			if a.Title == "" || a.AppID == "" || a.Page == "" || (a.ImageURL == "" && a.MediaID == "") {
				return errs.Field(loc, "invalid_miniprogram", "a mini-program card needs a title, appid, page and a cover (image_url or media_id)")
			}
		default:
			return errs.Field(loc+".kind", "invalid_attachment", "a welcome attachment is an image, link or miniprogram, not %q", a.Kind)
		}
		if a.ImageURL != "" && !httpURL(a.ImageURL) {
			return errs.Field(loc+".image_url", "invalid_url", "image_url must be an http(s) URL")
		}
	}
	return nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (w ShiftWindow) check(loc string) error {
	if len(w.Days) == 0 {
		return errs.Field(loc+".days", "invalid_schedule", "a schedule window needs at least one weekday")
	}
	for _, d := range w.Days {
		if d < 1 || d > 7 {
			return errs.Field(loc+".days", "invalid_schedule", "weekdays are 1 (Monday) to 7 (Sunday), not %d", d)
		}
	}
	s, ok1 := clock(w.Start)
	e, ok2 := clock(w.End)
	if !ok1 || !ok2 || e <= s {
		return errs.Field(loc, "invalid_schedule", "a schedule window runs from start to a later end, both HH:MM (got %q–%q)", w.Start, w.End)
	}
	return nil
}

// clock parses HH:MM into minutes after midnight; 24:00 is 1440.
func clock(s string) (int, bool) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil {
		return 0, false
	}
	if h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

// isoDay is t's ISO weekday, 1 Monday … 7 Sunday.
func isoDay(t time.Time) int {
	d := int(t.Weekday())
	if d == 0 {
		return 7
	}
	return d
}

// onSchedule reports whether local time t is within one of the windows
// (always, without windows).
func onSchedule(ws []ShiftWindow, t time.Time) bool {
	if len(ws) == 0 {
		return true
	}
	min := t.Hour()*60 + t.Minute()
	for _, w := range ws {
		s, _ := clock(w.Start)
		e, _ := clock(w.End)
		if slices.Contains(w.Days, isoDay(t)) && min >= s && min < e {
			return true
		}
	}
	return false
}

// fill replaces the placeholders of a template.
func fill(tmpl, customerName, staffName, codeName string) string {
	r := strings.NewReplacer(placeholderCust, customerName, placeholderStaff, staffName, placeholderCode, codeName)
	return r.Replace(tmpl)
}

// cut shortens s to at most n characters.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
