package wecom

import (
	"context"

	"github.com/siyu-dev/siyu/internal/errs"
)

// ContactWayUpdate changes a 联系我 configuration (update_contact_way,
// 92228): the fields given replace the code's; Users replaces its whole
// member list. The QR image and config_id stay, so printed codes keep working.
type ContactWayUpdate struct {
	ConfigID   string   `json:"config_id"`
	Remark     string   `json:"remark,omitempty"`
	SkipVerify bool     `json:"skip_verify"` // sent always: WeCom's default is true
	State      string   `json:"state,omitempty"`
	Users      []string `json:"user,omitempty"`
	Parties    []int64  `json:"party,omitempty"`
}

// UpdateContactWay changes a 联系我 configuration
// (externalcontact/update_contact_way). Safe to repeat: it sets, it does not add.
func (c *Client) UpdateContactWay(ctx context.Context, u ContactWayUpdate) error {
	if u.ConfigID == "" {
		return errs.Field("config_id", "required", "a contact way update needs the config_id")
	}
	if n := len([]rune(u.State)); n > 30 {
		return errs.Field("state", "too_long", "a channel code's state is at most 30 characters, not %d", n)
	}
	if len(u.Users) == 0 && len(u.Parties) == 0 {
		return errs.Field("user", "required", "a channel code needs at least one staff member")
	}
	return c.call(ctx, endpoint{path: "externalcontact/update_contact_way", post: true, safe: true}, nil, u, nil)
}
