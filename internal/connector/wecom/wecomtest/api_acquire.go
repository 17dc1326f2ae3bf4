package wecomtest

import (
	"github.com/siyu-dev/siyu/internal/connector/wecom"
)

// The simulator's channel codes beyond the core (api.go has add, get and
// del_contact_way and send_welcome_msg): update_contact_way.

// acquireHandlers are these APIs, by path after /cgi-bin/.
var acquireHandlers = map[string]handler{
	"externalcontact/update_contact_way": {post: true, fn: (*Server).updateContactWay},
}

// updateContactWay follows WeCom's update_contact_way: the fields sent
// replace the code's (user replaces the member list); type and scene stay.
func (s *Server) updateContactWay(q *request) (map[string]any, *apiError) {
	var in struct {
		ConfigID   string   `json:"config_id"`
		Remark     *string  `json:"remark"`
		SkipVerify *bool    `json:"skip_verify"`
		Style      *int     `json:"style"`
		State      *string  `json:"state"`
		Users      []string `json:"user"`
		Parties    []int64  `json:"party"`
	}
	if e := q.decode(&in); e != nil {
		return nil, e
	}
	if in.ConfigID == "" {
		return nil, fail(wecom.CodeInvalidContactWay, "invalid config_id")
	}
	if in.State != nil && len([]rune(*in.State)) > 30 {
		return nil, fail(wecom.CodeInvalidParam, "state exceeds 30 characters")
	}
	if len(in.Users) > 100 {
		return nil, fail(41041, "contact way user count exceeds the limit")
	}
	c := s.Corp
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.ways[in.ConfigID]
	if w == nil {
		return nil, fail(wecom.CodeInvalidContactWay, "invalid config_id")
	}
	for _, u := range in.Users {
		if c.liveStaff(u) == nil {
			return nil, fail(wecom.CodeInvalidUserID, "invalid userid %s", u)
		}
	}
	if w.Type == 1 && len(in.Users)+len(in.Parties) > 1 {
		return nil, fail(wecom.CodeInvalidParam, "a single-member contact way takes one user")
	}
	if in.Remark != nil {
		w.Remark = *in.Remark
	}
	if in.SkipVerify != nil {
		w.SkipVerify = *in.SkipVerify
	}
	if in.Style != nil {
		w.Style = *in.Style
	}
	if in.State != nil {
		w.State = *in.State
	}
	if len(in.Users) > 0 || len(in.Parties) > 0 {
		w.Users = append([]string(nil), in.Users...)
		w.Parties = append([]int64(nil), in.Parties...)
		w.next = 0
	}
	return nil, nil
}

// ContactWay returns a 联系我 configuration as the simulator holds it.
func (c *Corp) ContactWay(configID string) (wecom.ContactWay, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	w := c.ways[configID]
	if w == nil {
		return wecom.ContactWay{}, false
	}
	out := w.ContactWay
	out.Users = append([]string(nil), w.Users...)
	return out, true
}

// ContactWays returns the number of 联系我 configurations the corp has.
func (c *Corp) ContactWays() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.ways)
}
