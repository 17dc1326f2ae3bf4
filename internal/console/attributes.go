package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// attributesPageSize is how many attributes one page lists.
const attributesPageSize = 50

// attributesPage is the data of Customers → Custom attributes.
type attributesPage struct {
	Rows      []customer.Attribute
	Next      string
	Later     bool
	CanDefine bool
	Types     []string
	Form      attributeForm
	Err       formError
}

// attributeForm keeps what was typed into the define form.
type attributeForm struct {
	Name, DisplayName, Type string
}

func attributeTypes() []string {
	return []string{customer.TypeString, customer.TypeNumber, customer.TypeBool, customer.TypeDate, customer.TypeList, customer.TypeObject}
}

// attributesData lists the catalogue a page at a time. The catalogue is
// small (names operators and SDKs chose) and read whole; pages follow the
// cursor convention all the same, keyed by name.
func (c *Console) attributesData(r *http.Request, s *signedIn, cursor string) (attributesPage, error) {
	all, err := c.deps.Customers.Attributes(r.Context(), s.Principal.TenantID)
	if err != nil {
		return attributesPage{}, fmt.Errorf("console: attributes: %w", err)
	}
	d := attributesPage{Later: cursor != "", CanDefine: s.Principal.Can(tenant.PermWorkspaceManage), Types: attributeTypes(),
		Form: attributeForm{Type: customer.TypeString}}
	rest := all
	if cursor != "" {
		var after string
		if err := page.Decode(cursor, &after); err != nil {
			return attributesPage{}, err
		}
		i := 0
		for i < len(all) && all[i].Name <= after {
			i++
		}
		rest = all[i:]
	}
	pg := page.Trim(rest, page.Request{Limit: attributesPageSize}, func(a customer.Attribute) string { return page.Encode(a.Name) })
	d.Rows, d.Next = pg.Items, pg.Next
	// ?define=NAME opens the form on an attribute of the catalogue.
	if name := r.URL.Query().Get("define"); name != "" {
		d.Form.Name = name
		for _, a := range all {
			if a.Name == name {
				d.Form.DisplayName, d.Form.Type = a.DisplayName, a.Type
			}
		}
	}
	return d, nil
}

func (c *Console) attributesPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.attributesData(r, s, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "attributes", c.pageView(w, r, s, "attributes.title", d))
	return nil
}

// attributeDefine sets an attribute's display name and type; later writes
// of another type are refused and counted.
func (c *Console) attributeDefine(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	form := attributeForm{Name: strings.TrimSpace(r.PostFormValue("name")), DisplayName: r.PostFormValue("display_name"),
		Type: r.PostFormValue("type")}
	if len([]rune(form.DisplayName)) > 100 {
		return c.attributeFormError(w, r, s, form, errs.Field("display_name", "invalid_display_name", "the display name has at most 100 characters"))
	}
	a, err := c.deps.Customers.DefineAttribute(r.Context(), s.Principal.TenantID, form.Name, form.DisplayName, form.Type)
	if err != nil {
		if !isUserError(err) {
			return err
		}
		return c.attributeFormError(w, r, s, form, err)
	}
	c.log.InfoContext(r.Context(), "console: attribute defined", "tenant_id", s.Principal.TenantID, "attribute", a.Name,
		"type", a.Type, "user_id", s.User.ID)
	c.redirectWithFlash(w, r, "/customers/attributes#attr-"+url.PathEscape(a.Name), "flash.attribute_defined")
	return nil
}

func (c *Console) attributeFormError(w http.ResponseWriter, r *http.Request, s *signedIn, form attributeForm, err error) error {
	d, lerr := c.attributesData(r, s, "")
	if lerr != nil {
		return lerr
	}
	d.Form, d.Err = form, c.cat.formErrorFor(s.Lang, err, "name", "display_name", "type")
	c.render(w, r, statusOf(errs.KindOf(err)), "attributes", c.pageView(w, r, s, "attributes.title", d))
	return nil
}
