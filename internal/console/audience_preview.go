package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Sizes of the builder's previews.
const (
	previewSize       = 20 // customers the preview lists
	breakdownBars     = 15 // values the breakdown draws; the rest are summed
	changesPageSize   = 20
	traitColumnPrefix = "trait:"
)

// previewColumn is a column the preview may show.
type previewColumn struct {
	Key     string
	Label   string
	Default bool
}

// previewColumns lists the columns an operator may pick for the preview:
// the profile's fields, spend, the computed classes and custom attributes.
func (c *Console) previewColumns(lang string, custom []customer.Attribute) []previewColumn {
	col := func(key string, def bool) previewColumn {
		return previewColumn{Key: key, Label: c.cat.text(lang, "audiences.col."+key), Default: def}
	}
	out := []previewColumn{col("phone", true), col("gender", false), col("city", true), col("province", false), col("source", true)}
	if c.deps.Commerce != nil {
		out = append(out, col("spend", true), col("orders", true))
	}
	if c.deps.Analytics != nil {
		out = append(out, col("rfm_class", false), col("lifecycle", true), col("fan_tier", false))
	}
	out = append(out, col("first_seen", false), col("last_seen", true))
	for _, a := range custom {
		if a.Type == customer.TypeObject {
			continue
		}
		label := a.DisplayName
		if label == "" {
			label = a.Name
		}
		out = append(out, previewColumn{Key: traitColumnPrefix + a.Name, Label: label})
	}
	return out
}

// breakdownOptions are the categorical attributes a breakdown may group by.
func (c *Console) breakdownOptions(lang string, custom []customer.Attribute) []choice {
	names := []string{"city", "province", "gender", "source", "source_code"}
	if c.deps.Analytics != nil {
		names = append(names, "rfm_class", "lifecycle", "fan_tier")
	}
	out := make([]choice, 0, len(names))
	for _, n := range names {
		out = append(out, choice{Value: n, Label: c.cat.text(lang, "audiences.attr."+n)})
	}
	for _, a := range custom {
		if a.Type == customer.TypeString || a.Type == customer.TypeBool {
			label := a.DisplayName
			if label == "" {
				label = a.Name
			}
			out = append(out, choice{Value: a.Name, Label: label})
		}
	}
	return out
}

// previewView is the preview fragment: the count and the first customers.
type previewView struct {
	Err     *condError
	Count   number
	Columns []previewColumn
	Rows    []previewRow
}

// previewRow is one customer of the preview with the chosen columns' values.
type previewRow struct {
	ID    int64
	Name  string
	Cells []string
}

// parseTree reads the tree a builder request carries.
func parseTree(r *http.Request) (audience.Condition, error) {
	return audience.Parse([]byte(r.PostFormValue("conditions")))
}

// audiencePreview lists the first customers a tree selects, with the
// columns the operator picked, each linking to the customer's profile.
func (c *Console) audiencePreview(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	p := s.Principal
	var v previewView
	cond, err := parseTree(r)
	var res audience.Result
	if err == nil {
		res, err = c.deps.Audiences.Evaluate(ctx, p.TenantID, cond)
	}
	if err != nil {
		if !isUserError(err) {
			return fmt.Errorf("console: preview: %w", err)
		}
		v.Err = c.treeError(r, s, cond, 0, err)
		c.renderTemplate(w, r, http.StatusUnprocessableEntity, s.Lang, "audience", "audience_preview", v)
		return nil
	}
	v.Count = number(res.Count)
	custom, err := c.deps.Customers.Attributes(ctx, p.TenantID)
	if err != nil {
		return fmt.Errorf("console: preview: %w", err)
	}
	chosen := r.PostForm["col"]
	for _, col := range c.previewColumns(s.Lang, custom) {
		if slices.Contains(chosen, col.Key) {
			v.Columns = append(v.Columns, col)
		}
	}
	showPII := p.Can(tenant.PermPIIRead)
	var customers []customer.Customer
	for _, id := range res.IDs(0, previewSize) {
		cu, err := c.deps.Customers.Get(ctx, p.TenantID, id, showPII)
		if errs.Is(err, errs.NotFound) {
			continue // merged since the index last looked
		}
		if err != nil {
			return fmt.Errorf("console: preview: %w", err)
		}
		maskEmail(&cu, p)
		customers = append(customers, cu)
	}
	ids := make([]int64, len(customers))
	for i, cu := range customers {
		ids[i] = cu.ID
	}
	var spends map[int64]commerce.Spend
	if c.deps.Commerce != nil && len(ids) > 0 {
		if spends, err = c.deps.Commerce.Spends(ctx, p.TenantID, ids); err != nil {
			return fmt.Errorf("console: preview: %w", err)
		}
	}
	scores := map[int64]audience.ScoreRow{}
	if c.deps.Analytics != nil && len(ids) > 0 {
		err := c.deps.Analytics.ScoresFor(ctx, p.TenantID, ids, func(sr audience.ScoreRow) error {
			scores[sr.CustomerID] = sr
			return nil
		})
		if err != nil {
			return fmt.Errorf("console: preview: %w", err)
		}
	}
	loc := s.Workspace.Location()
	for _, cu := range customers {
		row := previewRow{ID: cu.ID, Name: cu.Name}
		if row.Name == "" {
			row.Name = c.cat.text(s.Lang, "customer.unnamed", cu.ID)
		}
		for _, col := range v.Columns {
			row.Cells = append(row.Cells, c.previewCell(s.Lang, col.Key, cu, spends[cu.ID], scores[cu.ID], showPII, loc))
		}
		v.Rows = append(v.Rows, row)
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "audience", "audience_preview", v)
	return nil
}

// previewCell is one value of the preview, as the customer list shows it;
// "" when the customer has none.
func (c *Console) previewCell(lang, key string, cu customer.Customer, sp commerce.Spend, sc audience.ScoreRow, showPII bool, loc *time.Location) string {
	classes := func(prefix string, labels []analytics.ScoreLabel, v string) string {
		for _, l := range labels {
			if l.Value == v {
				return c.cat.label(lang, prefix, l.Key)
			}
		}
		return v
	}
	switch key {
	case "phone":
		return displayPhone(cu.Phone)
	case "gender":
		if cu.Gender == "" {
			return ""
		}
		return c.cat.label(lang, "gender.", cu.Gender)
	case "city":
		return cu.City
	case "province":
		return cu.Province
	case "source":
		if cu.FirstSource == "" {
			return ""
		}
		return c.cat.label(lang, "channel.", cu.FirstSource)
	case "spend":
		if sp.OrderCount == 0 {
			return ""
		}
		return yuan(sp.NetFen)
	case "orders":
		return strconv.FormatInt(sp.OrderCount, 10)
	case "rfm_class":
		return classes("scores.rfm.", analytics.RFMClasses(), sc.RFMClass)
	case "lifecycle":
		return classes("scores.lifecycle.", analytics.LifecycleStages(), sc.Lifecycle)
	case "fan_tier":
		return classes("scores.fan.", analytics.FanTiers(), sc.FanTier)
	case "first_seen":
		return c.ago(lang, cu.FirstSeenAt, loc, time.Now())
	case "last_seen":
		return c.ago(lang, cu.LastSeenAt, loc, time.Now())
	}
	if name, ok := strings.CutPrefix(key, traitColumnPrefix); ok {
		v := c.valueText(lang, cu.Traits[name])
		if !showPII {
			v = maskedValue(name, v)
		}
		return v
	}
	return ""
}

// breakdownView is the breakdown fragment: counts per value, drawn and listed.
type breakdownView struct {
	Err   *condError
	By    string
	Count number
	Rows  []breakdownRow
	Chart string // chartSpec JSON
}

// breakdownRow is one value of a breakdown.
type breakdownRow struct {
	Label string
	Count number
	Share string // of the audience, e.g. 12.5%
}

// audienceBreakdown counts a tree's customers by a categorical attribute
// (their cities, say), largest first.
func (c *Console) audienceBreakdown(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	by := r.PostFormValue("by")
	v := breakdownView{By: by}
	var cond audience.Condition
	fail := func(err error) error {
		if !isUserError(err) {
			return fmt.Errorf("console: breakdown: %w", err)
		}
		v.Err = c.treeError(r, s, cond, 0, err)
		c.renderTemplate(w, r, http.StatusUnprocessableEntity, s.Lang, "audience", "audience_breakdown", v)
		return nil
	}
	cond, err := parseTree(r)
	if err != nil {
		return fail(err)
	}
	res, err := c.deps.Audiences.Evaluate(ctx, s.Principal.TenantID, cond)
	if err != nil {
		return fail(err)
	}
	buckets, err := res.Breakdown(by)
	if err != nil {
		return fail(err)
	}
	v.Count = number(res.Count)
	label := c.bucketLabeller(s.Lang, by)
	chart := chartSpec{Kind: "hbar", Series: c.cat.text(s.Lang, "audiences.breakdown.series")}
	var rest int64
	for i, b := range buckets {
		if i >= breakdownBars {
			rest += b.Count
			continue
		}
		v.Rows = append(v.Rows, breakdownRow{Label: label(b.Value), Count: number(b.Count), Share: share(b.Count, res.Count)})
		chart.Labels, chart.Values = append(chart.Labels, label(b.Value)), append(chart.Values, b.Count)
	}
	if rest > 0 {
		others := c.cat.text(s.Lang, "audiences.breakdown.others")
		v.Rows = append(v.Rows, breakdownRow{Label: others, Count: number(rest), Share: share(rest, res.Count)})
		chart.Labels, chart.Values = append(chart.Labels, others), append(chart.Values, rest)
	}
	v.Chart = chart.JSON()
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "audience", "audience_breakdown", v)
	return nil
}

// bucketLabeller names the values of an attribute in lang: channels and
// genders by the catalogue, computed classes by their keys, "" as not set.
func (c *Console) bucketLabeller(lang, by string) func(string) string {
	known := map[string]string{}
	switch by {
	case "gender":
		known["male"], known["female"] = c.cat.text(lang, "gender.male"), c.cat.text(lang, "gender.female")
	case "source":
		for _, o := range c.channelOptions(lang) {
			known[o.Value] = o.Label
		}
	case "rfm_class":
		for _, o := range c.scoreOptions(lang, "scores.rfm.", analytics.RFMClasses()) {
			known[o.Value] = o.Label
		}
	case "lifecycle":
		for _, o := range c.scoreOptions(lang, "scores.lifecycle.", analytics.LifecycleStages()) {
			known[o.Value] = o.Label
		}
	case "fan_tier":
		for _, o := range c.scoreOptions(lang, "scores.fan.", analytics.FanTiers()) {
			known[o.Value] = o.Label
		}
	}
	notSet := c.cat.text(lang, "audiences.breakdown.not_set")
	return func(v string) string {
		if v == "" {
			return notSet
		}
		if l, ok := known[v]; ok {
			return l
		}
		return v
	}
}

// share is part of whole as a percentage with one decimal.
func share(part, whole int64) string {
	if whole <= 0 {
		return "0%"
	}
	return strconv.FormatFloat(float64(part)*100/float64(whole), 'f', 1, 64) + "%"
}

// changesView is one page of the log of who entered and left an audience.
type changesView struct {
	AudienceID int64
	Items      []changeRow
	Next       string
	Later      bool
	Loc        *time.Location
}

// changeRow is one entry of the log with the customer's name.
type changeRow struct {
	audience.Change
	Name string // "" when the customer is gone (merged)
}

// NextURL loads the next page of the log.
func (v changesView) NextURL() string {
	return fmt.Sprintf("/audiences/%d/changes?cursor=%s", v.AudienceID, v.Next)
}

// changes loads one page of an audience's change log.
func (c *Console) changes(r *http.Request, s *signedIn, id int64, cursor string) (changesView, error) {
	ctx := r.Context()
	p := s.Principal
	pg, err := c.deps.Audiences.Changes(ctx, p.TenantID, id, page.Request{Cursor: cursor, Limit: changesPageSize})
	if err != nil {
		if isUserError(err) {
			return changesView{}, err
		}
		return changesView{}, fmt.Errorf("console: audience changes: %w", err)
	}
	v := changesView{AudienceID: id, Next: pg.Next, Later: cursor != "", Loc: s.Workspace.Location()}
	names := map[int64]string{}
	for _, ch := range pg.Items {
		name, seen := names[ch.CustomerID]
		if !seen {
			cu, err := c.deps.Customers.Get(ctx, p.TenantID, ch.CustomerID, false)
			switch {
			case err == nil:
				name = cu.Name
				if name == "" {
					name = c.cat.text(s.Lang, "customer.unnamed", cu.ID)
				}
			case !errs.Is(err, errs.NotFound):
				return changesView{}, fmt.Errorf("console: audience changes: %w", err)
			}
			names[ch.CustomerID] = name
		}
		v.Items = append(v.Items, changeRow{Change: ch, Name: name})
	}
	return v, nil
}

// audienceChanges pages the change log: the next page as a fragment for
// htmx, or the audience's page from that point without it.
func (c *Console) audienceChanges(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := audienceID(r)
	if err != nil {
		return err
	}
	if _, err := c.deps.Audiences.Audience(r.Context(), s.Principal.TenantID, id); err != nil {
		return err
	}
	cursor := r.URL.Query().Get("cursor")
	if !isHTMX(r) {
		http.Redirect(w, r, fmt.Sprintf("/audiences/%d?cursor=%s#changes", id, cursor), http.StatusSeeOther)
		return nil
	}
	v, err := c.changes(r, s, id, cursor)
	if err != nil {
		return err
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "audience", "audience_changes", v)
	return nil
}
