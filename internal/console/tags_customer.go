package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// customerTags is the tags card of a customer's profile: the tags they hold
// and, for a role that may tag, a picker of the others.
type customerTags struct {
	CustomerID int64
	Applied    []tag.Applied
	Options    []tagOptionGroup // tags the customer does not hold, by group
	CanWrite   bool
	CanManage  bool // may define tags (the empty state links there)
	CSRF       string
	Loc        *time.Location
	Err        string // why the last change failed, translated
	Saved      bool   // the last change succeeded
}

// tagOptionGroup is one group of a tag picker.
type tagOptionGroup struct {
	Name string
	Tags []tag.Tag
}

// tagOptions groups tags for a picker, leaving out the ids in skip.
func tagOptions(all []tag.Tag, skip []int64) []tagOptionGroup {
	var out []tagOptionGroup
	for _, t := range all {
		if slices.Contains(skip, t.ID) {
			continue
		}
		if n := len(out); n == 0 || out[n-1].Name != t.Group {
			out = append(out, tagOptionGroup{Name: t.Group})
		}
		out[len(out)-1].Tags = append(out[len(out)-1].Tags, t)
	}
	return out
}

// customerTagsCard loads a customer's tags card.
func (c *Console) customerTagsCard(r *http.Request, s *signedIn, customerID int64) (customerTags, error) {
	ctx := r.Context()
	p := s.Principal
	applied, err := c.deps.Tags.TagsOf(ctx, p.TenantID, customerID)
	if err != nil {
		if isUserError(err) {
			return customerTags{}, err
		}
		return customerTags{}, fmt.Errorf("console: customer tags: %w", err)
	}
	ct := customerTags{CustomerID: customerID, Applied: applied, CanWrite: p.Can(tenant.PermTagsWrite),
		CanManage: p.Can(tenant.PermTagsManage), CSRF: s.Session.CSRFToken, Loc: s.Workspace.Location()}
	if ct.CanWrite {
		all, err := c.deps.Tags.AllTags(ctx, p.TenantID)
		if err != nil {
			return customerTags{}, fmt.Errorf("console: customer tags: %w", err)
		}
		held := make([]int64, len(applied))
		for i, a := range applied {
			held[i] = a.TagID
		}
		ct.Options = tagOptions(all, held)
	}
	return ct, nil
}

func (c *Console) customerTagsAdd(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	return c.changeCustomerTags(w, r, s, true)
}

func (c *Console) customerTagsRemove(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	return c.changeCustomerTags(w, r, s, false)
}

// changeCustomerTags adds or removes the posted tags ("tag", repeated) as a
// manual change by the signed-in user. For htmx it answers with the card
// as it now is; without JavaScript, with the profile.
func (c *Console) changeCustomerTags(w http.ResponseWriter, r *http.Request, s *signedIn, add bool) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	var ids []int64
	for _, v := range r.PostForm["tag"] {
		if n, perr := strconv.ParseInt(v, 10, 64); perr == nil && n > 0 {
			ids = append(ids, n)
		}
	}
	if len(ids) == 0 {
		err = errs.Field("tags", "no_tags", "choose a tag")
	} else if add {
		_, err = c.deps.Tags.Apply(r.Context(), s.Principal.TenantID, id, ids, tag.ByPrincipal(s.Principal))
	} else {
		_, err = c.deps.Tags.Remove(r.Context(), s.Principal.TenantID, id, ids, tag.ByPrincipal(s.Principal))
	}
	if err != nil && !isUserError(err) {
		return err
	}
	if !isHTMX(r) {
		if err != nil {
			return err
		}
		flash := "flash.tags.customer_tagged"
		if !add {
			flash = "flash.tags.customer_untagged"
		}
		c.redirectWithFlash(w, r, fmt.Sprintf("/customers/%d#customer-tags", id), flash)
		return nil
	}
	card, cerr := c.customerTagsCard(r, s, id)
	if cerr != nil {
		return cerr
	}
	status := http.StatusOK
	if err != nil {
		card.Err, status = c.areaErrorText(s.Lang, err, "tags"), statusOf(errs.KindOf(err))
	} else {
		card.Saved = true
	}
	c.renderTemplate(w, r, status, s.Lang, "customer", "customer_tags", card)
	return nil
}
