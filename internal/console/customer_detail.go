package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Page sizes of a customer's profile.
const (
	timelinePageSize      = 20
	recentOrders          = 5
	customerOrdersPerPage = 20
	maxProps              = 8 // event properties shown per timeline entry
)

// customerDetail is the data of a customer's profile.
type customerDetail struct {
	C          customer.Customer
	ShowPII    bool
	Traits     []traitView
	Identities []customer.Identity
	Commerce   bool // commerce is wired: show spend and orders
	Spend      commerce.Spend
	OrderTable orderTable // the most recent orders
	MoreOrders bool
	Merges     []customer.Merge
	Timeline   timelineView
	Tags       *customerTags // the tags card (tags_customer.go); nil without tags or tags.read
}

// orderTable is a list of orders as the "order_table" fragment shows them.
type orderTable struct {
	Orders []commerce.Order
	Loc    *time.Location
}

// traitView is one custom attribute of a profile.
type traitView struct {
	Name    string
	Display string // the catalogue's display name, if defined
	Value   string
}

// timelineView is one page of a customer's timeline: the first on the
// profile, the next ones appended by htmx.
type timelineView struct {
	CustomerID int64
	Items      []timelineItem
	Next       string
	Loc        *time.Location
}

// timelineItem is one timeline entry ready to show.
type timelineItem struct {
	At    time.Time
	Kind  string // css modifier: event, page, identify, order, refund, merge, tag, other
	Icon  string
	Title string
	Chips []string // short facts: amount, status, channel
	Props []prop   // properties or traits, masked per role
	Note  string   // a line of detail, e.g. a refund's reason
}

// prop is one key and value of an event's properties or traits.
type prop struct{ Key, Value string }

// NextURL continues the timeline after this page: an htmx fragment; the
// profile page itself for browsers without JavaScript.
func (t timelineView) NextURL() string {
	return fmt.Sprintf("/customers/%d/timeline?cursor=%s", t.CustomerID, t.Next)
}

// customerID reads the {id} of a customer path.
func customerID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.NotFoundf("customer", "no such customer")
	}
	return id, nil
}

// customerPage shows one profile: the card, attributes, identities, spend
// and recent orders, merges, and the first page of the timeline. The id of a
// merged profile shows (and redirects to) the profile it was merged into.
func (c *Console) customerPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	p := s.Principal
	id, err := customerID(r)
	if err != nil {
		return err
	}
	showPII := p.Can(tenant.PermPIIRead)
	cu, err := c.deps.Customers.Get(ctx, p.TenantID, id, showPII)
	if err != nil {
		return err
	}
	if cu.ID != id {
		http.Redirect(w, r, fmt.Sprintf("/customers/%d", cu.ID), http.StatusSeeOther)
		return nil
	}
	maskEmail(&cu, p)
	d := customerDetail{C: cu, ShowPII: showPII, Commerce: c.deps.Commerce != nil}
	if d.Traits, err = c.traitsOf(r, s, cu); err != nil {
		return err
	}
	if d.Identities, err = c.deps.Customers.Identities(ctx, p.TenantID, cu.ID); err != nil {
		return fmt.Errorf("console: customer: %w", err)
	}
	if !showPII {
		for i := range d.Identities {
			if d.Identities[i].Kind == customer.KindEmail {
				d.Identities[i].Value = maskedEmail(d.Identities[i].Value)
			}
		}
	}
	if d.Merges, err = c.deps.Customers.Merges(ctx, p.TenantID, cu.ID); err != nil {
		return fmt.Errorf("console: customer: %w", err)
	}
	if c.deps.Commerce != nil {
		if d.Spend, err = c.deps.Commerce.Spend(ctx, p.TenantID, cu.ID); err != nil {
			return fmt.Errorf("console: customer: %w", err)
		}
		orders, err := c.deps.Commerce.Orders(ctx, p.TenantID, cu.ID, page.Request{Limit: recentOrders})
		if err != nil {
			return fmt.Errorf("console: customer: %w", err)
		}
		d.OrderTable, d.MoreOrders = orderTable{Orders: orders.Items, Loc: s.Workspace.Location()}, orders.Next != ""
	}
	if d.Timeline, err = c.timeline(r, s, cu.ID, r.URL.Query().Get("cursor")); err != nil {
		return err
	}
	if c.deps.Tags != nil && p.Can(tenant.PermTagsRead) {
		ct, err := c.customerTagsCard(r, s, cu.ID)
		if err != nil {
			return err
		}
		d.Tags = &ct
	}
	title := cu.Name
	if title == "" {
		title = c.cat.text(s.Lang, "customer.unnamed", cu.ID)
	}
	v := c.pageView(w, r, s, "customer.title", d)
	v.Heading = title
	c.render(w, r, http.StatusOK, "customer", v)
	return nil
}

// traitsOf lists a profile's custom attributes by name, with the display
// names operators gave them.
func (c *Console) traitsOf(r *http.Request, s *signedIn, cu customer.Customer) ([]traitView, error) {
	if len(cu.Traits) == 0 {
		return nil, nil
	}
	attrs, err := c.deps.Customers.Attributes(r.Context(), s.Principal.TenantID)
	if err != nil {
		return nil, fmt.Errorf("console: customer: %w", err)
	}
	display := map[string]string{}
	for _, a := range attrs {
		display[a.Name] = a.DisplayName
	}
	showPII := s.Principal.Can(tenant.PermPIIRead)
	out := make([]traitView, 0, len(cu.Traits))
	for name, v := range cu.Traits {
		val := c.valueText(s.Lang, v)
		if !showPII {
			val = maskedValue(name, val)
		}
		out = append(out, traitView{Name: name, Display: display[name], Value: val})
	}
	slices.SortFunc(out, func(a, b traitView) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// valueText shows a trait or property value: lists joined, booleans in
// words, objects as JSON.
func (c *Console) valueText(lang string, v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case bool:
		if x {
			return c.cat.text(lang, "common.yes")
		}
		return c.cat.text(lang, "common.no")
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			parts = append(parts, c.valueText(lang, e))
		}
		return strings.Join(parts, "、")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}

// customerTimeline answers the timeline's "load more": the next entries as
// a fragment for htmx, or the whole profile from that point without it.
func (c *Console) customerTimeline(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	if !isHTMX(r) {
		http.Redirect(w, r, fmt.Sprintf("/customers/%d?cursor=%s#timeline", id, r.URL.Query().Get("cursor")), http.StatusSeeOther)
		return nil
	}
	tv, err := c.timeline(r, s, id, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "customer", "timeline_page", tv)
	return nil
}

// timeline loads one page of a customer's timeline and words each entry in
// the user's language.
func (c *Console) timeline(r *http.Request, s *signedIn, id int64, cursor string) (timelineView, error) {
	p := s.Principal
	pg, err := c.deps.Customers.Timeline(r.Context(), p.TenantID, id, page.Request{Cursor: cursor, Limit: timelinePageSize})
	if err != nil {
		if isUserError(err) {
			return timelineView{}, err
		}
		return timelineView{}, fmt.Errorf("console: timeline: %w", err)
	}
	tv := timelineView{CustomerID: id, Next: pg.Next, Loc: s.Workspace.Location()}
	for _, e := range pg.Items {
		tv.Items = append(tv.Items, c.timelineItem(s.Lang, e, p.Can(tenant.PermPIIRead)))
	}
	return tv, nil
}

// timelineItem words one entry. Domains describe entries in Detail; the
// English Title is the fallback for kinds the console does not know yet.
func (c *Console) timelineItem(lang string, e customer.TimelineEntry, showPII bool) timelineItem {
	d := e.Detail
	str := func(k string) string {
		if v, ok := d[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	t := func(key string, args ...any) string { return c.cat.text(lang, key, args...) }
	it := timelineItem{At: e.At, Kind: "other", Icon: "dot", Title: e.Title}
	switch e.Kind {
	case "event":
		it.Kind, it.Icon = "event", "bolt"
		props, _ := d["properties"].(map[string]any)
		switch str("type") {
		case "identify":
			it.Kind, it.Icon, it.Title = "identify", "id-card", t("timeline.identify")
			props, _ = d["traits"].(map[string]any)
		case "page", "screen":
			it.Kind, it.Icon = "page", "eye"
			it.Title = t("timeline."+str("type"), strings.TrimPrefix(strings.TrimPrefix(e.Title, "page: "), "screen: "))
			if e.Title == "page" || e.Title == "screen" {
				it.Title = t("timeline." + str("type") + "_unnamed")
			}
		case "group":
			it.Icon, it.Title = "users", t("timeline.group", str("group_id"))
			props, _ = d["traits"].(map[string]any)
		case "alias":
			it.Icon, it.Title = "link", t("timeline.alias", str("previous_id"), str("user_id"))
		}
		it.Props = c.propsOf(lang, props, showPII)
	case commerce.TimelineOrder:
		it.Kind, it.Icon = "order", "bag"
		it.Title = t("timeline.order", c.cat.label(lang, "channel.", str("source")), str("order_id"))
		it.Chips = append(it.Chips, yuan(int64Of(d["paid_fen"])), c.cat.label(lang, "order.status.", str("status")))
		if n := int64Of(d["item_count"]); n > 0 {
			it.Chips = append(it.Chips, t("timeline.items", n))
		}
		if code := str("coupon_code"); code != "" {
			it.Note = t("timeline.coupon", code)
		}
		if store := str("store_code"); store != "" {
			it.Chips = append(it.Chips, t("timeline.store", store))
		}
	case commerce.TimelineRefund:
		it.Kind, it.Icon = "refund", "undo"
		it.Title = t("timeline.refund", c.cat.label(lang, "channel.", str("source")), str("order_id"))
		it.Chips = append(it.Chips, "-"+yuan(int64Of(d["amount_fen"])))
		it.Note = str("reason")
	case "merge":
		it.Kind, it.Icon = "merge", "merge"
		it.Title = t("timeline.merge", int64Of(d["merged_id"]), c.cat.label(lang, "idkind.", str("identity_kind")), str("identity_value"))
	case "tag":
		it.Kind, it.Icon = "tag", "tag"
		ref := str("current_ref")
		if ref == "" {
			ref = str("ref")
		}
		key := "timeline.tag_added"
		if str("action") == "remove" {
			key = "timeline.tag_removed"
		}
		it.Title = t(key, ref)
		it.Chips = append(it.Chips, c.cat.label(lang, "tag.source.", str("source")))
		if a := str("actor"); a != "" {
			it.Chips = append(it.Chips, a)
		}
	}
	return it
}

// propsOf lists up to maxProps properties by key, masking personal data for
// a role that may not see it.
func (c *Console) propsOf(lang string, m map[string]any, showPII bool) []prop {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []prop
	for _, k := range keys {
		if len(out) == maxProps {
			out = append(out, prop{Key: "…", Value: c.cat.text(lang, "timeline.more_props", len(keys)-maxProps)})
			break
		}
		v := c.valueText(lang, m[k])
		if !showPII {
			v = maskedValue(k, v)
		}
		if r := []rune(v); len(r) > 80 {
			v = string(r[:80]) + "…"
		}
		out = append(out, prop{Key: k, Value: v})
	}
	return out
}

// int64Of reads a number from a timeline detail, whichever numeric type the
// domain put there.
func int64Of(v any) int64 {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int64:
		return x
	case int32:
		return int64(x)
	case float64:
		return int64(x)
	case json.Number:
		n, _ := x.Int64()
		return n
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// customerOrders is the data of a customer's order list.
type customerOrders struct {
	C          customer.Customer
	OrderTable orderTable
	Spend      commerce.Spend
	Next       string
	Later      bool
}

// customerOrdersPage lists all of a customer's orders, newest first.
func (c *Console) customerOrdersPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	p := s.Principal
	id, err := customerID(r)
	if err != nil {
		return err
	}
	cu, err := c.deps.Customers.Get(ctx, p.TenantID, id, p.Can(tenant.PermPIIRead))
	if err != nil {
		return err
	}
	cursor := r.URL.Query().Get("cursor")
	pg, err := c.deps.Commerce.Orders(ctx, p.TenantID, cu.ID, page.Request{Cursor: cursor, Limit: customerOrdersPerPage})
	if err != nil {
		if isUserError(err) {
			return err
		}
		return fmt.Errorf("console: customer orders: %w", err)
	}
	sp, err := c.deps.Commerce.Spend(ctx, p.TenantID, cu.ID)
	if err != nil {
		return fmt.Errorf("console: customer orders: %w", err)
	}
	d := customerOrders{C: cu, OrderTable: orderTable{Orders: pg.Items, Loc: s.Workspace.Location()}, Spend: sp, Next: pg.Next, Later: cursor != ""}
	c.render(w, r, http.StatusOK, "customer_orders", c.pageView(w, r, s, "orders.title", d))
	return nil
}
