package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/community"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// communityRoutes lists its pages when its service is set: customer groups
// with their members and statistics, group tags, group codes and group
// welcome templates.
func (c *Console) communityRoutes() []route {
	if c.deps.Community == nil {
		return nil
	}
	return []route{
		{pattern: "GET /community", perm: tenant.PermCommunityRead, handle: c.communityGroupsPage,
			nav: &navEntry{Section: "nav.operations", Label: "nav.community", Icon: "users"}},
		{pattern: "GET /community/groups/{chat_id}", perm: tenant.PermCommunityRead, handle: c.communityGroupPage},
		{pattern: "POST /community/groups/{chat_id}/tags", perm: tenant.PermCommunityManage, handle: c.communityGroupTags},
		{pattern: "GET /community/tags", perm: tenant.PermCommunityRead, handle: c.communityTagsPage},
		{pattern: "POST /community/tags", perm: tenant.PermCommunityManage, handle: c.communityTagCreate},
		{pattern: "POST /community/tags/{id}/delete", perm: tenant.PermCommunityManage, handle: c.communityTagDelete},
		{pattern: "GET /community/codes", perm: tenant.PermCommunityRead, handle: c.communityCodesPage},
		{pattern: "POST /community/codes", perm: tenant.PermCommunityManage, handle: c.communityCodeSave},
		{pattern: "GET /community/codes/{id}", perm: tenant.PermCommunityRead, handle: c.communityCodePage},
		{pattern: "POST /community/codes/{id}", perm: tenant.PermCommunityManage, handle: c.communityCodeSave},
		{pattern: "POST /community/codes/{id}/delete", perm: tenant.PermCommunityManage, handle: c.communityCodeDelete},
		{pattern: "GET /community/welcome", perm: tenant.PermCommunityRead, handle: c.communityWelcomePage},
		{pattern: "POST /community/welcome", perm: tenant.PermCommunityManage, handle: c.communityWelcomeSave},
		{pattern: "GET /community/welcome/{id}", perm: tenant.PermCommunityRead, handle: c.communityWelcomeEdit},
		{pattern: "POST /community/welcome/{id}", perm: tenant.PermCommunityManage, handle: c.communityWelcomeSave},
		{pattern: "POST /community/welcome/{id}/delete", perm: tenant.PermCommunityManage, handle: c.communityWelcomeDelete},
	}
}

// communityFormError translates a domain error for a community form: the
// area's own wording (community.error.<code>) first, then the console's.
func (c *Console) communityFormError(lang string, err error, fields ...string) formError {
	fe := c.cat.formErrorFor(lang, err, fields...)
	e, ok := errs.As(err)
	if !ok || e.Kind == errs.Internal {
		return fe
	}
	s, ok := c.cat.lookup(lang, "community.error."+errs.CodeOf(e))
	if !ok {
		return fe
	}
	if len(fe.Fields) == 0 {
		fe.Message = s
	}
	for k := range fe.Fields {
		fe.Fields[k] = s
	}
	return fe
}

// communityTab says which tab of the area a page is.
type communityTab struct {
	Tab       string
	CanManage bool
	CSRF      string
	Loc       *time.Location
}

func (c *Console) communityTab(s *signedIn, tab string) communityTab {
	return communityTab{Tab: tab, CanManage: s.Principal.Can(tenant.PermCommunityManage), CSRF: s.Session.CSRFToken, Loc: s.Workspace.Location()}
}

// ---- groups ----

// communityGroupsData is the group list with its filters.
type communityGroupsData struct {
	communityTab
	Groups []community.CustomerGroup
	Owners []community.Owner
	Tags   []community.GroupTag
	Query  community.GroupQuery
	Filter template.URL // the filters as a query string, for the pager
	Next   string
	Later  bool
}

func (c *Console) communityGroupsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	q := r.URL.Query()
	tagID, _ := strconv.ParseInt(q.Get("tag_id"), 10, 64)
	query := community.GroupQuery{Owner: q.Get("owner"), Name: strings.TrimSpace(q.Get("name")), TagID: tagID, Status: q.Get("status")}
	cursor := q.Get("cursor")
	pg, err := c.deps.Community.Groups(ctx, s.Principal.TenantID, query, page.Request{Cursor: cursor})
	if err != nil {
		return err
	}
	owners, err := c.deps.Community.Owners(ctx, s.Principal.TenantID)
	if err != nil {
		return err
	}
	tags, err := c.deps.Community.GroupTags(ctx, s.Principal.TenantID)
	if err != nil {
		return err
	}
	f := q
	f.Del("cursor")
	d := communityGroupsData{communityTab: c.communityTab(s, "groups"), Groups: pg.Items, Owners: owners, Tags: tags, Query: query,
		Filter: template.URL(f.Encode()), Next: pg.Next, Later: cursor != ""}
	c.render(w, r, http.StatusOK, "community", c.pageView(w, r, s, "community.title", d))
	return nil
}

// communityGroupData is one group's page.
type communityGroupData struct {
	communityTab
	Group   community.CustomerGroup
	Members []community.GroupMember
	Status  string
	Next    string
	Later   bool
	Tags    []communityTagChoice
	Chart   string // the joins/leaves chart, JSON for data-community-chart
	Stats   []community.GroupDayStat
	Err     formError
}

// communityTagChoice is one group tag with whether the group carries it.
type communityTagChoice struct {
	community.GroupTag
	On bool
}

// communityChart is what static/community.js draws: joins and leaves as
// bars, members as a line, per day.
type communityChart struct {
	Days    []string          `json:"days"`
	Joins   []int64           `json:"joins"`
	Leaves  []int64           `json:"leaves"`
	Members []int64           `json:"members"`
	Names   map[string]string `json:"names"`
}

func (c *Console) communityGroupData(r *http.Request, s *signedIn) (communityGroupData, error) {
	ctx := r.Context()
	chatID := r.PathValue("chat_id")
	g, err := c.deps.Community.Group(ctx, s.Principal.TenantID, chatID)
	if err != nil {
		return communityGroupData{}, err
	}
	status := r.URL.Query().Get("status")
	if status != "left" && status != "all" {
		status = "in"
	}
	cursor := r.URL.Query().Get("cursor")
	members, err := c.deps.Community.Members(ctx, s.Principal.TenantID, chatID, community.MemberQuery{Status: status}, page.Request{Cursor: cursor, Limit: page.MaxLimit})
	if err != nil {
		return communityGroupData{}, err
	}
	stats, err := c.deps.Community.DailyStats(ctx, s.Principal.TenantID, community.StatsQuery{ChatID: chatID})
	if err != nil {
		return communityGroupData{}, err
	}
	all, err := c.deps.Community.GroupTags(ctx, s.Principal.TenantID)
	if err != nil {
		return communityGroupData{}, err
	}
	on := map[int64]bool{}
	for _, t := range g.Tags {
		on[t.ID] = true
	}
	d := communityGroupData{communityTab: c.communityTab(s, "groups"), Group: g, Members: members.Items, Status: status, Next: members.Next,
		Later: cursor != "", Stats: stats}
	for _, t := range all {
		d.Tags = append(d.Tags, communityTagChoice{GroupTag: t, On: on[t.ID]})
	}
	ch := communityChart{Names: map[string]string{
		"joins": c.cat.text(s.Lang, "community.stats.joins"), "leaves": c.cat.text(s.Lang, "community.stats.leaves"),
		"members": c.cat.text(s.Lang, "community.stats.members"),
	}}
	for _, st := range stats {
		ch.Days = append(ch.Days, st.Day[5:])
		ch.Joins = append(ch.Joins, st.Joins)
		ch.Leaves = append(ch.Leaves, st.Leaves)
		ch.Members = append(ch.Members, st.Members)
	}
	b, _ := json.Marshal(ch)
	d.Chart = string(b)
	return d, nil
}

func (c *Console) communityGroupPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.communityGroupData(r, s)
	if err != nil {
		return err
	}
	v := c.pageView(w, r, s, "community.group.title", d)
	v.Heading = d.Group.Name
	c.render(w, r, http.StatusOK, "community_group", v)
	return nil
}

func (c *Console) communityGroupTags(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	var ids []int64
	for _, v := range r.PostForm["tag_id"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errs.Field("tag_id", "invalid_tag", "not a group tag")
		}
		ids = append(ids, id)
	}
	chatID := r.PathValue("chat_id")
	if _, err := c.deps.Community.SetGroupTags(r.Context(), s.Principal, chatID, ids); err != nil {
		if !isUserError(err) || errs.KindOf(err) == errs.NotFound && strings.HasPrefix(errs.CodeOf(err), "group_not") {
			return err
		}
		d, derr := c.communityGroupData(r, s)
		if derr != nil {
			return derr
		}
		d.Err = c.communityFormError(s.Lang, err)
		v := c.pageView(w, r, s, "community.group.title", d)
		v.Heading = d.Group.Name
		c.render(w, r, statusOf(errs.KindOf(err)), "community_group", v)
		return nil
	}
	http.Redirect(w, r, "/community/groups/"+chatID, http.StatusSeeOther)
	return nil
}

// ---- group tags ----

// communityTagsData is the group tag page.
type communityTagsData struct {
	communityTab
	Tags []community.GroupTag
	Form community.GroupTagInput
	Err  formError
}

func (c *Console) renderCommunityTags(w http.ResponseWriter, r *http.Request, s *signedIn, status int, form community.GroupTagInput, ferr formError) error {
	tags, err := c.deps.Community.GroupTags(r.Context(), s.Principal.TenantID)
	if err != nil {
		return err
	}
	d := communityTagsData{communityTab: c.communityTab(s, "tags"), Tags: tags, Form: form, Err: ferr}
	c.render(w, r, status, "community_tags", c.pageView(w, r, s, "community.tags.title", d))
	return nil
}

func (c *Console) communityTagsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	return c.renderCommunityTags(w, r, s, http.StatusOK, community.GroupTagInput{}, formError{})
}

func (c *Console) communityTagCreate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	form := community.GroupTagInput{Name: r.PostFormValue("name"), Color: r.PostFormValue("color")}
	if _, err := c.deps.Community.CreateGroupTag(r.Context(), s.Principal, form); err != nil {
		if !isUserError(err) {
			return err
		}
		return c.renderCommunityTags(w, r, s, statusOf(errs.KindOf(err)), form, c.communityFormError(s.Lang, err, "name", "color"))
	}
	http.Redirect(w, r, "/community/tags", http.StatusSeeOther)
	return nil
}

func (c *Console) communityTagDelete(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errs.NotFoundf("group_tag", "no such group tag")
	}
	if err := c.deps.Community.DeleteGroupTag(r.Context(), s.Principal, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/community/tags", http.StatusSeeOther)
	return nil
}

// ---- group codes ----

// communityCodesData is the group code page: the codes, and the editor (new
// or one code).
type communityCodesData struct {
	communityTab
	Codes  []community.GroupCode
	Next   string
	Later  bool
	Editor communityCodeEditor
	Names  map[string]string // chat id → group name
}

// communityCodeEditor is the form of a group code.
type communityCodeEditor struct {
	ID       int64 // 0: a new code
	Code     *community.GroupCode
	Form     community.GroupCodeInput
	Groups   []community.CustomerGroup // groups to choose from
	Selected map[string]bool
	Key      string // idempotency key of a new code's form
	Err      formError
}

func (c *Console) communityCodesData(r *http.Request, s *signedIn, cursor string, ed communityCodeEditor) (communityCodesData, error) {
	ctx := r.Context()
	pg, err := c.deps.Community.GroupCodes(ctx, s.Principal.TenantID, page.Request{Cursor: cursor})
	if err != nil {
		return communityCodesData{}, err
	}
	groups, err := c.deps.Community.Groups(ctx, s.Principal.TenantID, community.GroupQuery{Status: "active"}, page.Request{Limit: page.MaxLimit})
	if err != nil {
		return communityCodesData{}, err
	}
	ed.Groups = groups.Items
	ed.Selected = map[string]bool{}
	for _, id := range ed.Form.ChatIDs {
		ed.Selected[id] = true
	}
	if ed.ID == 0 && ed.Key == "" {
		ed.Key = fmt.Sprintf("console-%d-%d", s.Session.UserID, time.Now().UnixNano())
	}
	names := map[string]string{}
	for _, g := range groups.Items {
		names[g.ChatID] = g.Name
	}
	for _, code := range pg.Items {
		for _, id := range code.ChatIDs {
			if _, ok := names[id]; !ok {
				if g, err := c.deps.Community.Group(ctx, s.Principal.TenantID, id); err == nil {
					names[id] = g.Name
				}
			}
		}
	}
	return communityCodesData{communityTab: c.communityTab(s, "codes"), Codes: pg.Items, Next: pg.Next, Later: cursor != "", Editor: ed, Names: names}, nil
}

func (c *Console) communityCodesPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.communityCodesData(r, s, r.URL.Query().Get("cursor"), communityCodeEditor{Form: community.GroupCodeInput{AutoCreateRoom: true, RoomBaseID: 1}})
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "community_codes", c.pageView(w, r, s, "community.codes.title", d))
	return nil
}

func (c *Console) communityCodePage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errs.NotFoundf("group_code", "no such group code")
	}
	code, err := c.deps.Community.GroupCode(r.Context(), s.Principal.TenantID, id)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("refresh") == "1" {
		if code, err = c.deps.Community.RefreshGroupCode(r.Context(), s.Principal.TenantID, id); err != nil {
			return err
		}
	}
	ed := communityCodeEditor{ID: id, Code: &code, Form: community.GroupCodeInput{Name: code.Name, Remark: code.Remark, State: code.State,
		ChatIDs: code.ChatIDs, AutoCreateRoom: code.AutoCreateRoom, RoomBaseName: code.RoomBaseName, RoomBaseID: code.RoomBaseID}}
	d, err := c.communityCodesData(r, s, "", ed)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "community_codes", c.pageView(w, r, s, "community.codes.title", d))
	return nil
}

func (c *Console) communityCodeSave(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	baseID, _ := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("room_base_id")), 10, 64)
	form := community.GroupCodeInput{
		Name: r.PostFormValue("name"), Remark: r.PostFormValue("remark"), State: r.PostFormValue("state"), ChatIDs: r.PostForm["chat_id"],
		AutoCreateRoom: r.PostFormValue("auto_create_room") == "1", RoomBaseName: r.PostFormValue("room_base_name"), RoomBaseID: baseID,
		IdempotencyKey: r.PostFormValue("idempotency_key"),
	}
	ed := communityCodeEditor{Form: form, Key: form.IdempotencyKey}
	var err error
	var code community.GroupCode
	if idv := r.PathValue("id"); idv != "" {
		id, perr := strconv.ParseInt(idv, 10, 64)
		if perr != nil {
			return errs.NotFoundf("group_code", "no such group code")
		}
		ed.ID = id
		code, err = c.deps.Community.UpdateGroupCode(r.Context(), s.Principal, id, form)
		if cur, gerr := c.deps.Community.GroupCode(r.Context(), s.Principal.TenantID, id); gerr == nil {
			ed.Code = &cur
		}
	} else {
		code, err = c.deps.Community.CreateGroupCode(r.Context(), s.Principal, form)
	}
	if err != nil {
		if !isUserError(err) {
			return err
		}
		ed.Err = c.communityFormError(s.Lang, err, "name", "remark", "state", "chat_ids", "room_base_name", "room_base_id")
		d, derr := c.communityCodesData(r, s, "", ed)
		if derr != nil {
			return derr
		}
		c.render(w, r, statusOf(errs.KindOf(err)), "community_codes", c.pageView(w, r, s, "community.codes.title", d))
		return nil
	}
	http.Redirect(w, r, fmt.Sprintf("/community/codes/%d", code.ID), http.StatusSeeOther)
	return nil
}

func (c *Console) communityCodeDelete(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errs.NotFoundf("group_code", "no such group code")
	}
	if err := c.deps.Community.DeleteGroupCode(r.Context(), s.Principal, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/community/codes", http.StatusSeeOther)
	return nil
}

// ---- welcome templates ----

// communityWelcomeData is the welcome template page.
type communityWelcomeData struct {
	communityTab
	Templates []community.GroupWelcome
	Next      string
	Later     bool
	Editor    communityWelcomeEditor
}

// communityWelcomeEditor is the form of a template.
type communityWelcomeEditor struct {
	ID     int64
	Form   community.GroupWelcomeInput
	Att    community.WelcomeAttachment
	Notify bool
	Key    string
	Err    formError
}

func (c *Console) renderCommunityWelcome(w http.ResponseWriter, r *http.Request, s *signedIn, status int, ed communityWelcomeEditor) error {
	cursor := r.URL.Query().Get("cursor")
	pg, err := c.deps.Community.WelcomeTemplates(r.Context(), s.Principal.TenantID, page.Request{Cursor: cursor})
	if err != nil {
		return err
	}
	if ed.ID == 0 && ed.Key == "" {
		ed.Key = fmt.Sprintf("console-%d-%d", s.Session.UserID, time.Now().UnixNano())
	}
	d := communityWelcomeData{communityTab: c.communityTab(s, "welcome"), Templates: pg.Items, Next: pg.Next, Later: cursor != "", Editor: ed}
	c.render(w, r, status, "community_welcome", c.pageView(w, r, s, "community.welcome.title", d))
	return nil
}

func (c *Console) communityWelcomePage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	return c.renderCommunityWelcome(w, r, s, http.StatusOK, communityWelcomeEditor{Notify: true})
}

func (c *Console) communityWelcomeEdit(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errs.NotFoundf("welcome_template", "no such template")
	}
	t, err := c.deps.Community.WelcomeTemplate(r.Context(), s.Principal.TenantID, id)
	if err != nil {
		return err
	}
	ed := communityWelcomeEditor{ID: id, Form: community.GroupWelcomeInput{Name: t.Name, Text: t.Text}, Notify: t.Notify}
	if t.Attachment != nil {
		ed.Att = *t.Attachment
	}
	return c.renderCommunityWelcome(w, r, s, http.StatusOK, ed)
}

func (c *Console) communityWelcomeSave(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	notify := r.PostFormValue("notify") == "1"
	att := community.WelcomeAttachment{Kind: r.PostFormValue("att_kind"), PicURL: strings.TrimSpace(r.PostFormValue("att_pic_url")),
		Title: strings.TrimSpace(r.PostFormValue("att_title")), URL: strings.TrimSpace(r.PostFormValue("att_url")),
		Desc: strings.TrimSpace(r.PostFormValue("att_desc")), AppID: strings.TrimSpace(r.PostFormValue("att_appid")),
		Page: strings.TrimSpace(r.PostFormValue("att_page")), PicMediaID: strings.TrimSpace(r.PostFormValue("att_pic_media_id"))}
	form := community.GroupWelcomeInput{Name: r.PostFormValue("name"), Text: r.PostFormValue("text"), Notify: &notify,
		IdempotencyKey: r.PostFormValue("idempotency_key")}
	if att.Kind != "" {
		form.Attachment = &att
	}
	ed := communityWelcomeEditor{Form: form, Att: att, Notify: notify, Key: form.IdempotencyKey}
	var err error
	if idv := r.PathValue("id"); idv != "" {
		id, perr := strconv.ParseInt(idv, 10, 64)
		if perr != nil {
			return errs.NotFoundf("welcome_template", "no such template")
		}
		ed.ID = id
		_, err = c.deps.Community.UpdateWelcomeTemplate(r.Context(), s.Principal, id, form)
	} else {
		_, err = c.deps.Community.CreateWelcomeTemplate(r.Context(), s.Principal, form)
	}
	if err != nil {
		if !isUserError(err) {
			return err
		}
		ed.Err = c.communityFormError(s.Lang, err, "name", "text", "url", "pic_url")
		return c.renderCommunityWelcome(w, r, s, statusOf(errs.KindOf(err)), ed)
	}
	http.Redirect(w, r, "/community/welcome", http.StatusSeeOther)
	return nil
}

func (c *Console) communityWelcomeDelete(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errs.NotFoundf("welcome_template", "no such template")
	}
	if err := c.deps.Community.DeleteWelcomeTemplate(r.Context(), s.Principal, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/community/welcome", http.StatusSeeOther)
	return nil
}
