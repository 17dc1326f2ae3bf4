package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// tagRoutes lists the pages of tags, tag groups and auto-tag rules.
//
// Paths under /tags keep a fixed number of segments per kind of action
// (/tags/{id}/edit, /tags/groups/{id}/edit, /tags/rules/{id}/save) so that
// no two patterns overlap on the mux.
func (c *Console) tagRoutes() []route {
	if c.deps.Tags == nil {
		return nil
	}
	rs := []route{
		{pattern: "GET /tags", perm: tenant.PermTagsRead, handle: c.tagsPage,
			nav: &navEntry{Section: "tags.nav.section", Label: "tags.nav.tags", Icon: "tag"}},
		{pattern: "GET /tags/{id}", perm: tenant.PermTagsRead, handle: c.tagPage},
		{pattern: "POST /tags/groups", perm: tenant.PermTagsManage, handle: c.groupCreate},
		{pattern: "POST /tags/groups/{id}/edit", perm: tenant.PermTagsManage, handle: c.groupUpdate},
		{pattern: "POST /tags/groups/{id}/move", perm: tenant.PermTagsManage, handle: c.groupMove},
		{pattern: "POST /tags/groups/{id}/delete", perm: tenant.PermTagsManage, handle: c.groupDelete},
		{pattern: "POST /tags/groups/{id}/tags", perm: tenant.PermTagsManage, handle: c.tagCreate},
		{pattern: "POST /tags/{id}/edit", perm: tenant.PermTagsManage, handle: c.tagUpdate},
		{pattern: "POST /tags/{id}/move", perm: tenant.PermTagsManage, handle: c.tagMove},
		{pattern: "POST /tags/{id}/delete", perm: tenant.PermTagsManage, handle: c.tagDelete},
	}
	if c.deps.TagRules != nil {
		rs = append(rs, c.ruleRoutes()...)
	}
	if c.deps.Customers != nil {
		// Tagging one customer from their profile (customer_detail.go shows
		// the card): staff may do it, only managers define tags.
		rs = append(rs,
			route{pattern: "POST /customers/{id}/tags", perm: tenant.PermTagsWrite, handle: c.customerTagsAdd},
			route{pattern: "POST /customers/{id}/tags/remove", perm: tenant.PermTagsWrite, handle: c.customerTagsRemove},
		)
	}
	return rs
}

// tagsPage is the data of the tag system page: every group with its tags,
// and the state of whichever form was just submitted.
type tagsPage struct {
	Groups     []groupView
	Dimensions []tag.Dimension
	TagCount   int
	CanManage  bool
	CanRules   bool // the rules pages exist
	NewGroup   groupForm
	CSRF       string
}

// groupView is one group of the page with its tags.
type groupView struct {
	tag.Group
	Tags        []tagView
	First, Last bool
	Edit        groupForm // the rename form
	NewTag      tagForm   // the add-tag form
	// DeleteErr is why deleting the group was refused; NeedsForce offers to
	// delete it with its tags.
	DeleteErr  string
	NeedsForce bool
}

// tagView is one tag of a group with the customers holding it.
type tagView struct {
	tag.Tag
	Count       int64
	First, Last bool
	Edit        tagForm
	// ConfirmDelete asks before taking the tag from the customers holding it.
	ConfirmDelete bool
}

// groupForm is what was typed into a group form, and its error.
type groupForm struct {
	Name, Dimension, Description string
	Open                         bool // show the form open (it failed)
	Err                          formError
}

// tagForm is what was typed into a tag form, and its error.
type tagForm struct {
	GroupID                  int64
	Name, Color, Description string
	Open                     bool
	Err                      formError
}

// pathID reads the {id} of a path; a malformed one is a not-found of what.
func pathID(r *http.Request, what string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.NotFoundf(what, "no such %s", what)
	}
	return id, nil
}

// areaErrorText shows a domain error in lang, preferring the wording an
// area gives its codes ("tags.error.invalid_name": a tag name is 1–30
// characters, not the 1–100 of a user's name) over the shared "error.*".
func (c *Console) areaErrorText(lang string, err error, areas ...string) string {
	if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
		for _, a := range areas {
			if s, ok := c.cat.lookup(lang, a+".error."+errs.CodeOf(err)); ok {
				return s
			}
		}
	}
	return c.cat.errorText(lang, err)
}

// tagFormError translates a tag or group error for a small form: beside the
// field it names (a duplicate name is the name's), else above the form.
func (c *Console) tagFormError(lang string, err error, fields ...string) formError {
	msg := c.areaErrorText(lang, err, "tags")
	fe := formError{Message: msg}
	name := ""
	if e, ok := errs.As(err); ok {
		if len(e.Fields) > 0 {
			name = e.Fields[0].Location
			if i := strings.LastIndexByte(name, '.'); i >= 0 {
				name = name[i+1:]
			}
		}
		if e.Code == "duplicate_group" || e.Code == "duplicate_tag" {
			name = "name"
		}
	}
	if slices.Contains(fields, name) {
		fe.Fields = map[string]string{name: msg}
	}
	return fe
}

// tagsData loads every group and tag with the customer counts.
func (c *Console) tagsData(r *http.Request, s *signedIn) (tagsPage, error) {
	ctx := r.Context()
	tid := s.Principal.TenantID
	groups, err := c.deps.Tags.Groups(ctx, tid)
	if err != nil {
		return tagsPage{}, fmt.Errorf("console: tags: %w", err)
	}
	tags, err := c.deps.Tags.AllTags(ctx, tid)
	if err != nil {
		return tagsPage{}, fmt.Errorf("console: tags: %w", err)
	}
	counts, err := c.deps.Tags.Counts(ctx, tid)
	if err != nil {
		return tagsPage{}, fmt.Errorf("console: tags: %w", err)
	}
	d := tagsPage{
		Dimensions: tag.Dimensions(),
		TagCount:   len(tags),
		CanManage:  s.Principal.Can(tenant.PermTagsManage),
		CanRules:   c.deps.TagRules != nil,
		NewGroup:   groupForm{Dimension: string(tag.DimOther)},
		CSRF:       s.Session.CSRFToken,
	}
	byGroup := map[int64][]tag.Tag{}
	for _, t := range tags {
		byGroup[t.GroupID] = append(byGroup[t.GroupID], t)
	}
	for i, g := range groups {
		gv := groupView{Group: g, First: i == 0, Last: i == len(groups)-1,
			Edit:   groupForm{Name: g.Name, Dimension: string(g.Dimension), Description: g.Description},
			NewTag: tagForm{GroupID: g.ID, Color: tag.DefaultColor}}
		ts := byGroup[g.ID]
		for k, t := range ts {
			gv.Tags = append(gv.Tags, tagView{Tag: t, Count: counts[t.ID], First: k == 0, Last: k == len(ts)-1,
				Edit: tagForm{GroupID: t.GroupID, Name: t.Name, Color: t.Color, Description: t.Description}})
		}
		d.Groups = append(d.Groups, gv)
	}
	return d, nil
}

// moveButtons are the up and down buttons of a group or tag.
type moveButtons struct {
	Action      string
	First, Last bool
	CSRF        string
}

// GroupMove and TagMove are the move buttons of a group or tag.
func (d tagsPage) GroupMove(g groupView) moveButtons {
	return moveButtons{Action: fmt.Sprintf("/tags/groups/%d/move#group-%d", g.ID, g.ID), First: g.First, Last: g.Last, CSRF: d.CSRF}
}

// TagMove is the move buttons of a tag within its group.
func (d tagsPage) TagMove(t tagView) moveButtons {
	return moveButtons{Action: fmt.Sprintf("/tags/%d/move#tag-%d", t.ID, t.ID), First: t.First, Last: t.Last, CSRF: d.CSRF}
}

// groupFields is the data of a group form's fields; ID prefixes the input ids.
type groupFields struct {
	ID         string
	Form       groupForm
	Dimensions []tag.Dimension
}

// tagFields is the data of a tag form's fields.
type tagFields struct {
	ID   string
	Form tagForm
}

// GroupFields and TagFields give a form's fields their ids and values.
func (d tagsPage) GroupFields(id string, f groupForm) groupFields {
	return groupFields{ID: id, Form: f, Dimensions: d.Dimensions}
}

// TagFields gives a tag form's fields their ids and values.
func (d tagsPage) TagFields(id string, f tagForm) tagFields { return tagFields{ID: id, Form: f} }

// group finds a group of the page.
func (d *tagsPage) group(id int64) *groupView {
	for i := range d.Groups {
		if d.Groups[i].ID == id {
			return &d.Groups[i]
		}
	}
	return nil
}

// tag finds a tag of the page.
func (d *tagsPage) tag(id int64) *tagView {
	for i := range d.Groups {
		for k := range d.Groups[i].Tags {
			if d.Groups[i].Tags[k].ID == id {
				return &d.Groups[i].Tags[k]
			}
		}
	}
	return nil
}

func (c *Console) tagsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.tagsData(r, s)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "tags", c.pageView(w, r, s, "tags.title", d))
	return nil
}

// tagsFailed shows the page again with a form's error beside it; mark puts
// the error on the right form of the freshly loaded page.
func (c *Console) tagsFailed(w http.ResponseWriter, r *http.Request, s *signedIn, err error, mark func(d *tagsPage)) error {
	if !isUserError(err) {
		return err
	}
	d, lerr := c.tagsData(r, s)
	if lerr != nil {
		return lerr
	}
	mark(&d)
	c.render(w, r, statusOf(errs.KindOf(err)), "tags", c.pageView(w, r, s, "tags.title", d))
	return nil
}

func (c *Console) groupCreate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	f := groupForm{Name: r.PostFormValue("name"), Dimension: r.PostFormValue("dimension"), Description: r.PostFormValue("description")}
	g, err := c.deps.Tags.CreateGroup(r.Context(), s.Principal, tag.GroupInput{
		Name: f.Name, Dimension: tag.Dimension(f.Dimension), Description: f.Description})
	if err != nil {
		return c.tagsFailed(w, r, s, err, func(d *tagsPage) {
			f.Open, f.Err = true, c.tagFormError(s.Lang, err, "name", "dimension", "description")
			d.NewGroup = f
		})
	}
	c.redirectWithFlash(w, r, fmt.Sprintf("/tags#group-%d", g.ID), "flash.tags.group_created")
	return nil
}

func (c *Console) groupUpdate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "tag_group")
	if err != nil {
		return err
	}
	f := groupForm{Name: r.PostFormValue("name"), Dimension: r.PostFormValue("dimension"), Description: r.PostFormValue("description")}
	dim := tag.Dimension(f.Dimension)
	_, err = c.deps.Tags.UpdateGroup(r.Context(), s.Principal, id, tag.GroupUpdate{Name: &f.Name, Dimension: &dim, Description: &f.Description})
	if err != nil {
		return c.tagsFailed(w, r, s, err, func(d *tagsPage) {
			if g := d.group(id); g != nil {
				f.Open, f.Err = true, c.tagFormError(s.Lang, err, "name", "dimension", "description")
				g.Edit = f
			}
		})
	}
	c.redirectWithFlash(w, r, fmt.Sprintf("/tags#group-%d", id), "flash.tags.group_saved")
	return nil
}

// groupMove moves a group one place up or down.
func (c *Console) groupMove(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "tag_group")
	if err != nil {
		return err
	}
	ctx := r.Context()
	groups, err := c.deps.Tags.Groups(ctx, s.Principal.TenantID)
	if err != nil {
		return fmt.Errorf("console: move group: %w", err)
	}
	orders := make([]int, len(groups))
	ids := make([]int64, len(groups))
	for i, g := range groups {
		ids[i], orders[i] = g.ID, g.SortOrder
	}
	err = reorder(ids, orders, id, r.PostFormValue("dir"), func(gid int64, order int) error {
		_, err := c.deps.Tags.UpdateGroup(ctx, s.Principal, gid, tag.GroupUpdate{SortOrder: &order})
		return err
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/tags#group-%d", id), http.StatusSeeOther)
	return nil
}

// reorder moves id one place in dir ("up" or "down") among ids, shown in
// that order with the given sort orders, and writes the positions that
// changed. Positions are renumbered 0, 1, 2…: swapping two values is wrong
// when others tie with them (ties are shown by id).
func reorder(ids []int64, orders []int, id int64, dir string, save func(id int64, order int) error) error {
	i := slices.Index(ids, id)
	if i < 0 {
		return errs.NotFoundf("tag", "no such item")
	}
	j := i - 1
	if dir == "down" {
		j = i + 1
	}
	if j < 0 || j >= len(ids) {
		return nil // already first or last
	}
	old := make(map[int64]int, len(ids))
	for k, x := range ids {
		old[x] = orders[k]
	}
	moved := slices.Clone(ids)
	moved[i], moved[j] = moved[j], moved[i]
	for k, x := range moved {
		if old[x] != k {
			if err := save(x, k); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Console) groupDelete(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "tag_group")
	if err != nil {
		return err
	}
	force := r.PostFormValue("force") == "1"
	if err := c.deps.Tags.DeleteGroup(r.Context(), s.Principal, id, force); err != nil {
		return c.tagsFailed(w, r, s, err, func(d *tagsPage) {
			if g := d.group(id); g != nil {
				g.DeleteErr = c.areaErrorText(s.Lang, err, "tags")
				g.NeedsForce = errs.CodeOf(err) == "group_not_empty"
			}
		})
	}
	c.redirectWithFlash(w, r, "/tags", "flash.tags.group_deleted")
	return nil
}

func (c *Console) tagCreate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	gid, err := pathID(r, "tag_group")
	if err != nil {
		return err
	}
	f := tagForm{GroupID: gid, Name: r.PostFormValue("name"), Color: r.PostFormValue("color"), Description: r.PostFormValue("description")}
	t, err := c.deps.Tags.CreateTag(r.Context(), s.Principal, tag.TagInput{GroupID: gid, Name: f.Name, Color: f.Color, Description: f.Description})
	if err != nil {
		return c.tagsFailed(w, r, s, err, func(d *tagsPage) {
			if g := d.group(gid); g != nil {
				f.Open, f.Err = true, c.tagFormError(s.Lang, err, "name", "color", "description")
				g.NewTag = f
			}
		})
	}
	c.redirectWithFlash(w, r, fmt.Sprintf("/tags#tag-%d", t.ID), "flash.tags.tag_created")
	return nil
}

func (c *Console) tagUpdate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "tag")
	if err != nil {
		return err
	}
	f := tagForm{Name: r.PostFormValue("name"), Color: r.PostFormValue("color"), Description: r.PostFormValue("description")}
	upd := tag.TagUpdate{Name: &f.Name, Color: &f.Color, Description: &f.Description}
	if g, err := strconv.ParseInt(r.PostFormValue("group_id"), 10, 64); err == nil && g > 0 {
		f.GroupID, upd.GroupID = g, &g
	}
	_, err = c.deps.Tags.UpdateTag(r.Context(), s.Principal, id, upd)
	if err != nil {
		return c.tagsFailed(w, r, s, err, func(d *tagsPage) {
			if t := d.tag(id); t != nil {
				if f.GroupID == 0 {
					f.GroupID = t.GroupID
				}
				f.Open, f.Err = true, c.tagFormError(s.Lang, err, "name", "color", "description", "group_id")
				t.Edit = f
			}
		})
	}
	c.redirectWithFlash(w, r, fmt.Sprintf("/tags#tag-%d", id), "flash.tags.tag_saved")
	return nil
}

// tagMove moves a tag one place up or down within its group.
func (c *Console) tagMove(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "tag")
	if err != nil {
		return err
	}
	ctx := r.Context()
	t, err := c.deps.Tags.Tag(ctx, s.Principal.TenantID, id)
	if err != nil {
		return err
	}
	all, err := c.deps.Tags.AllTags(ctx, s.Principal.TenantID)
	if err != nil {
		return fmt.Errorf("console: move tag: %w", err)
	}
	var ids []int64
	var orders []int
	for _, x := range all {
		if x.GroupID == t.GroupID {
			ids, orders = append(ids, x.ID), append(orders, x.SortOrder)
		}
	}
	err = reorder(ids, orders, id, r.PostFormValue("dir"), func(tid int64, order int) error {
		_, err := c.deps.Tags.UpdateTag(ctx, s.Principal, tid, tag.TagUpdate{SortOrder: &order})
		return err
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/tags#tag-%d", id), http.StatusSeeOther)
	return nil
}

// tagDelete deletes a tag. A tag customers hold is deleted only once the
// user confirmed, since it is taken from all of them.
func (c *Console) tagDelete(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := pathID(r, "tag")
	if err != nil {
		return err
	}
	ctx := r.Context()
	if r.PostFormValue("confirm") != "1" {
		t, err := c.deps.Tags.Tag(ctx, s.Principal.TenantID, id)
		if err != nil {
			return err
		}
		if t.CustomerCount > 0 {
			d, err := c.tagsData(r, s)
			if err != nil {
				return err
			}
			if tv := d.tag(id); tv != nil {
				tv.ConfirmDelete = true
			}
			c.render(w, r, http.StatusConflict, "tags", c.pageView(w, r, s, "tags.title", d))
			return nil
		}
	}
	if err := c.deps.Tags.DeleteTag(ctx, s.Principal, id); err != nil {
		return err
	}
	c.redirectWithFlash(w, r, "/tags", "flash.tags.tag_deleted")
	return nil
}

// tagPageSize is how many customers a tag's page lists.
const tagPageSize = 50

// tagPage is the data of one tag's page: the customers holding it.
type tagPage struct {
	Tag       tag.Tag
	Count     int64
	Customers []customer.Customer
	Missing   []int64 // ids the customer service could not show
	Next      string
	Later     bool
	Loc       *time.Location
}

// tagPage lists the customers holding a tag, by customer id, with links to
// their profiles.
func (c *Console) tagPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	p := s.Principal
	id, err := pathID(r, "tag")
	if err != nil {
		return err
	}
	t, err := c.deps.Tags.Tag(ctx, p.TenantID, id)
	if err != nil {
		return err
	}
	cursor := r.URL.Query().Get("cursor")
	pg, err := c.deps.Tags.CustomersWithTag(ctx, p.TenantID, id, page.Request{Cursor: cursor, Limit: tagPageSize})
	if err != nil {
		if isUserError(err) {
			return err
		}
		return fmt.Errorf("console: tag customers: %w", err)
	}
	d := tagPage{Tag: t, Count: t.CustomerCount, Next: pg.Next, Later: cursor != "", Loc: s.Workspace.Location()}
	for _, cid := range pg.Items {
		if c.deps.Customers == nil {
			d.Missing = append(d.Missing, cid)
			continue
		}
		cu, err := c.deps.Customers.Get(ctx, p.TenantID, cid, p.Can(tenant.PermPIIRead))
		switch {
		case errs.Is(err, errs.NotFound):
			d.Missing = append(d.Missing, cid)
			continue
		case err != nil:
			return fmt.Errorf("console: tag customers: %w", err)
		}
		maskEmail(&cu, p)
		d.Customers = append(d.Customers, cu)
	}
	v := c.pageView(w, r, s, "tags.title", d)
	v.Heading = t.Ref
	c.render(w, r, http.StatusOK, "tag", v)
	return nil
}
