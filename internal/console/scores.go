package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// scoreRoutes are the score charts and their settings: what the API's
// /score-settings, /scores/recompute, /scores/status and
// /scores/distribution do, with the same permissions.
func (c *Console) scoreRoutes() []route {
	if c.deps.Analytics == nil {
		return nil
	}
	return []route{
		{pattern: "GET /analytics/scores", perm: tenant.PermCustomersRead, handle: c.scoresPage,
			nav: &navEntry{Section: "audiences.nav.section", Label: "scores.nav", Icon: "chart"}},
		{pattern: "GET /analytics/scores/status", perm: tenant.PermCustomersRead, handle: c.scoreStatus},
		{pattern: "POST /analytics/scores/recompute", perm: tenant.PermCustomersWrite, handle: c.scoreRecompute},
		{pattern: "GET /analytics/scores/settings", perm: tenant.PermWorkspaceManage, handle: c.scoreSettingsPage},
		{pattern: "POST /analytics/scores/settings", perm: tenant.PermWorkspaceManage, handle: c.scoreSettingsSave},
	}
}

// scoresPage is the data of the score charts.
type scoresPage struct {
	D            analytics.ScoreDistribution
	Customers    number
	Buyers       number
	Set          analytics.ScoreSettings
	Status       scoreStatusData
	Classes      scoreChart
	Lifecycle    scoreChart
	Fans         scoreChart
	Scores       []scoreHistogram // R, F, M
	CanSettings  bool
	CanRecompute bool
}

// scoreChart is one distribution: its chart and the same counts as a table.
type scoreChart struct {
	Chart string // chartSpec JSON
	Rows  []scoreRow
}

// scoreRow is one value of a distribution.
type scoreRow struct {
	Label string
	Count number
	Share string
	Link  string // the builder on the customers with this value
}

// scoreHistogram is the spread of one of the R, F and M scores.
type scoreHistogram struct {
	Metric string // r, f or m
	Chart  string
	Mean   string
	Bands  []scoreBand
}

// scoreBand is one score with the range of values that earn it.
type scoreBand struct {
	Score int
	Count number
	Range string
	Used  bool
}

// scoreRunView is the state of the full recompute as the page shows it.
type scoreRunView struct {
	analytics.ScoreRun
	Busy bool // queued or running: the page polls
	Poll bool // the fragment answers a poll: reload the page when it ends
}

// scoresPage draws how the customers spread over RFM classes, lifecycle
// stages and fan tiers, with the thresholds in force.
func (c *Console) scoresPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	tid := s.Principal.TenantID
	dist, err := c.deps.Analytics.Distribution(ctx, tid)
	if err != nil {
		return fmt.Errorf("console: scores: %w", err)
	}
	set, err := c.deps.Analytics.Settings(ctx, tid)
	if err != nil {
		return fmt.Errorf("console: scores: %w", err)
	}
	run, err := c.deps.Analytics.Status(ctx, tid)
	if err != nil {
		return fmt.Errorf("console: scores: %w", err)
	}
	lang := s.Lang
	d := scoresPage{
		D: dist, Customers: number(dist.Customers), Buyers: number(dist.Buyers), Set: set,
		CanSettings:  s.Principal.Can(tenant.PermWorkspaceManage),
		CanRecompute: s.Principal.Can(tenant.PermCustomersWrite),
	}
	d.Status = scoreStatusData{Run: runView(run, false), CanRecompute: d.CanRecompute, CSRF: s.Session.CSRFToken}
	series := c.cat.text(lang, "scores.series")
	d.Classes = c.distribution(lang, "hbar", series, "rfm_class", "scores.rfm.", dist.RFMClasses, dist.Customers)
	d.Lifecycle = c.distribution(lang, "bar", series, "lifecycle", "scores.lifecycle.", dist.Lifecycle, dist.Customers)
	d.Fans = c.distribution(lang, "pie", series, "fan_tier", "scores.fan.", dist.FanTiers, dist.Customers)
	for _, m := range []struct {
		metric string
		counts []analytics.ScoreCount
		mean   float64
	}{{"r", dist.R, dist.Mean.R}, {"f", dist.F, dist.Mean.F}, {"m", dist.M, dist.Mean.M}} {
		d.Scores = append(d.Scores, c.histogram(lang, series, m.metric, m.counts, m.mean))
	}
	c.render(w, r, http.StatusOK, "scores", c.pageView(w, r, s, "scores.title", d))
	return nil
}

// distribution turns the counts of one computed attribute into a chart and
// a table, each value linking to the builder on its customers.
func (c *Console) distribution(lang, kind, series, attr, prefix string, counts []analytics.LabelCount, total int64) scoreChart {
	cs := chartSpec{Kind: kind, Series: series}
	var out scoreChart
	for _, lc := range counts {
		label := c.cat.label(lang, prefix, lc.Key)
		link := builderLink(audience.Condition{And: []audience.Condition{{Attr: attr, Op: "=", Value: lc.Value}}})
		out.Rows = append(out.Rows, scoreRow{Label: label, Count: number(lc.Count), Share: share(lc.Count, total), Link: link})
		cs.Labels, cs.Values, cs.Links = append(cs.Labels, label), append(cs.Values, lc.Count), append(cs.Links, link)
	}
	out.Chart = cs.JSON()
	return out
}

// histogram is the chart of one of R, F and M with each score's range.
func (c *Console) histogram(lang, series, metric string, counts []analytics.ScoreCount, mean float64) scoreHistogram {
	h := scoreHistogram{Metric: metric, Mean: strconv.FormatFloat(mean, 'f', 2, 64)}
	cs := chartSpec{Kind: "bar", Series: series}
	for _, sc := range counts {
		label := c.cat.text(lang, "scores.score_n", sc.Score)
		link := builderLink(audience.Condition{And: []audience.Condition{{Attr: "rfm_" + metric, Op: "=", Value: sc.Score}}})
		cs.Labels, cs.Values, cs.Links = append(cs.Labels, label), append(cs.Values, sc.Count), append(cs.Links, link)
		h.Bands = append(h.Bands, scoreBand{Score: sc.Score, Count: number(sc.Count), Used: sc.Used, Range: c.scoreRange(lang, metric, sc)})
	}
	h.Chart = cs.JSON()
	return h
}

// scoreRange words the values that earn a score: days since the last order
// for R, kept orders for F, net spend for M.
func (c *Console) scoreRange(lang, metric string, sc analytics.ScoreCount) string {
	if !sc.Used {
		return c.cat.text(lang, "scores.range.unused")
	}
	unit := map[string]string{"r": "days", "f": "orders", "m": "money"}[metric]
	key := func(form string) string { return "scores.range." + unit + "." + form }
	v := func(n int64) string {
		if metric == "m" {
			return yuan(n)
		}
		return number(n).String()
	}
	switch {
	case sc.Min != nil && sc.Max != nil && *sc.Min == *sc.Max:
		return c.cat.text(lang, key("one"), v(*sc.Min))
	case sc.Min != nil && sc.Max != nil:
		return c.cat.text(lang, key("between"), v(*sc.Min), v(*sc.Max))
	case sc.Min != nil:
		return c.cat.text(lang, key("at_least"), v(*sc.Min))
	case sc.Max != nil:
		return c.cat.text(lang, key("at_most"), v(*sc.Max))
	}
	return c.cat.text(lang, "scores.range.any")
}

func runView(run analytics.ScoreRun, poll bool) scoreRunView {
	return scoreRunView{ScoreRun: run, Busy: run.State == analytics.RunQueued || run.State == analytics.RunRunning, Poll: poll}
}

// Percent is how far a running recompute is.
func (v scoreRunView) Percent() int64 {
	if v.Total <= 0 {
		return 0
	}
	return min(v.Processed*100/v.Total, 100)
}

// scoreStatus answers the status box's poll while a recompute is queued or
// running; when it ends, the page reloads to draw the new numbers.
func (c *Console) scoreStatus(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	run, err := c.deps.Analytics.Status(r.Context(), s.Principal.TenantID)
	if err != nil {
		return fmt.Errorf("console: score status: %w", err)
	}
	v := runView(run, r.URL.Query().Get("poll") == "1")
	if !isHTMX(r) {
		http.Redirect(w, r, "/analytics/scores", http.StatusSeeOther)
		return nil
	}
	if v.Poll && !v.Busy {
		w.Header().Set("HX-Refresh", "true")
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "scores", "score_status", scoreStatusData{Run: v, CanRecompute: s.Principal.Can(tenant.PermCustomersWrite), CSRF: s.Session.CSRFToken})
	return nil
}

// scoreStatusData is the status box fragment.
type scoreStatusData struct {
	Run          scoreRunView
	CanRecompute bool
	CSRF         string // for the recompute form without htmx
}

// scoreRecompute queues a full recompute.
func (c *Console) scoreRecompute(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	run, err := c.deps.Analytics.RequestRecompute(r.Context(), s.Principal.TenantID)
	if err != nil {
		if isUserError(err) {
			return err
		}
		return fmt.Errorf("console: recompute scores: %w", err)
	}
	c.log.InfoContext(r.Context(), "console: score recompute requested", "tenant_id", s.Principal.TenantID, "user_id", s.User.ID)
	if !isHTMX(r) {
		c.redirectWithFlash(w, r, "/analytics/scores", "flash.scores.recompute")
		return nil
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "scores", "score_status", scoreStatusData{Run: runView(run, true), CanRecompute: true, CSRF: s.Session.CSRFToken})
	return nil
}

// scoreSettingsPage is the data of the thresholds form.
type scoreSettingsPage struct {
	Set      analytics.ScoreSettings
	Events   string // interaction events, one per line
	Known    []string
	Hours    []int
	ClassBy  []string
	Sections []settingSection
	Err      formError // Fields by JSON path, e.g. "lifecycle.decline_days"
}

// settingSection is a group of whole-number settings of the form.
type settingSection struct {
	ID     string // rfm, lifecycle, fan_tier
	Fields []settingField
}

// settingField is one whole-number setting as the form shows it.
type settingField struct {
	Name     string // JSON path, the input's name
	Value    string
	Min, Max int
	Err      string // why it was refused, in the API's words
}

// scoreSettingSections lists the form's whole-number settings in the order
// docs/scores.md explains them, with the API's ranges.
func scoreSettingSections() []settingSection {
	f := func(name string, lo, hi int) settingField { return settingField{Name: name, Min: lo, Max: hi} }
	return []settingSection{
		{ID: "rfm", Fields: []settingField{f("rfm.thresholds.r", 1, 4), f("rfm.thresholds.f", 1, 4), f("rfm.thresholds.m", 1, 4)}},
		{ID: "lifecycle", Fields: []settingField{
			f("lifecycle.growth_min_orders", 2, 1000), f("lifecycle.mature_min_orders", 2, 1000),
			f("lifecycle.mature_min_score", 1, 5), f("lifecycle.mature_recent_days", 1, 3650),
			f("lifecycle.extension_min_categories", 0, 1000), f("lifecycle.extension_min_tenure_days", 0, 3650),
			f("lifecycle.decline_days", 1, 3650), f("lifecycle.lapsed_buyer_days", 0, 3650)}},
		{ID: "fan_tier", Fields: []settingField{
			f("fan_tier.devoted_min_orders", 1, 1000), f("fan_tier.devoted_min_events_30d", 0, 100000),
			f("fan_tier.favourable_min_orders", 1, 1000), f("fan_tier.favourable_min_events_90d", 0, 100000),
			f("fan_tier.cool_off_days", 0, 3650)}},
	}
}

// scoreSettingsPage shows the thresholds with a form to change them.
func (c *Console) scoreSettingsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	set, err := c.deps.Analytics.Settings(r.Context(), s.Principal.TenantID)
	if err != nil {
		return fmt.Errorf("console: score settings: %w", err)
	}
	d, err := c.scoreSettingsData(r, s, set, nil)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "scores_settings", c.pageView(w, r, s, "scores.settings.title", d))
	return nil
}

// scoreSettingsData fills the form with set, or with what was typed (typed,
// by input name) where the form was refused.
func (c *Console) scoreSettingsData(r *http.Request, s *signedIn, set analytics.ScoreSettings, typed map[string]string) (scoreSettingsPage, error) {
	d := scoreSettingsPage{Set: set, Events: strings.Join(set.FanTier.InteractionEvents, "\n"), Sections: scoreSettingSections(),
		ClassBy: []string{analytics.ClassByAverage, analytics.ClassByThreshold, analytics.ClassByValueAverage}}
	values := scoreSettingFields(&set)
	for i := range d.Sections {
		for j := range d.Sections[i].Fields {
			f := &d.Sections[i].Fields[j]
			if raw, ok := typed[f.Name]; ok {
				f.Value = raw
			} else if p, ok := values[f.Name]; ok {
				f.Value = strconv.Itoa(*p)
			}
		}
	}
	for h := range 24 {
		d.Hours = append(d.Hours, h)
	}
	if c.deps.Events != nil {
		cat, err := c.deps.Events.Catalog(r.Context(), s.Principal.TenantID, event.CatalogEvent, "")
		if err != nil {
			return d, fmt.Errorf("console: score settings: %w", err)
		}
		for _, e := range cat {
			d.Known = append(d.Known, e.Name)
		}
	}
	return d, nil
}

// scoreSettingFields are the form's whole-number inputs, by JSON path.
func scoreSettingFields(set *analytics.ScoreSettings) map[string]*int {
	return map[string]*int{
		"recompute_hour":                      &set.RecomputeHour,
		"rfm.thresholds.r":                    &set.RFM.Thresholds.R,
		"rfm.thresholds.f":                    &set.RFM.Thresholds.F,
		"rfm.thresholds.m":                    &set.RFM.Thresholds.M,
		"lifecycle.growth_min_orders":         &set.Lifecycle.GrowthMinOrders,
		"lifecycle.mature_min_orders":         &set.Lifecycle.MatureMinOrders,
		"lifecycle.mature_min_score":          &set.Lifecycle.MatureMinScore,
		"lifecycle.mature_recent_days":        &set.Lifecycle.MatureRecentDays,
		"lifecycle.extension_min_categories":  &set.Lifecycle.ExtensionMinCategories,
		"lifecycle.extension_min_tenure_days": &set.Lifecycle.ExtensionMinTenureDays,
		"lifecycle.decline_days":              &set.Lifecycle.DeclineDays,
		"lifecycle.lapsed_buyer_days":         &set.Lifecycle.LapsedBuyerDays,
		"fan_tier.devoted_min_orders":         &set.FanTier.DevotedMinOrders,
		"fan_tier.devoted_min_events_30d":     &set.FanTier.DevotedMinEvents30,
		"fan_tier.favourable_min_orders":      &set.FanTier.FavourableMinOrders,
		"fan_tier.favourable_min_events_90d":  &set.FanTier.FavourableMinEvents90,
		"fan_tier.cool_off_days":              &set.FanTier.CoolOffDays,
	}
}

// scoreSettingsSave replaces the thresholds (every field, as the API's PUT)
// and queues a full recompute.
func (c *Console) scoreSettingsSave(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	var set analytics.ScoreSettings
	fields, raw := map[string]string{}, map[string]string{}
	for name, p := range scoreSettingFields(&set) {
		raw[name] = strings.TrimSpace(r.PostFormValue(name))
		v, err := strconv.Atoi(raw[name])
		if err != nil {
			fields[name] = c.cat.text(s.Lang, "scores.settings.whole_number")
			continue
		}
		*p = v
	}
	set.RFM.ClassBy = r.PostFormValue("rfm.class_by")
	events := r.PostFormValue("fan_tier.interaction_events")
	set.FanTier.InteractionEvents = []string{}
	for _, line := range strings.FieldsFunc(events, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == '\uff0c' }) {
		if name := strings.TrimSpace(line); name != "" {
			set.FanTier.InteractionEvents = append(set.FanTier.InteractionEvents, name)
		}
	}
	var err error
	if len(fields) == 0 {
		_, err = c.deps.Analytics.SetSettings(r.Context(), s.Principal, set)
		if err == nil {
			c.redirectWithFlash(w, r, "/analytics/scores", "flash.scores.settings_saved")
			return nil
		}
		if !isUserError(err) {
			return fmt.Errorf("console: score settings: %w", err)
		}
		if e, ok := errs.As(err); ok {
			for _, f := range e.Fields {
				name := f.Location
				if strings.HasPrefix(name, "fan_tier.interaction_events") {
					name = "fan_tier.interaction_events"
				}
				if _, dup := fields[name]; !dup {
					fields[name] = f.Message
				}
			}
		}
	}
	d, derr := c.scoreSettingsData(r, s, set, raw)
	if derr != nil {
		return derr
	}
	d.Events = events
	d.Err = formError{Message: c.cat.text(s.Lang, "form.fix_errors"), Fields: fields}
	for i := range d.Sections {
		for j := range d.Sections[i].Fields {
			d.Sections[i].Fields[j].Err = fields[d.Sections[i].Fields[j].Name]
		}
	}
	c.render(w, r, http.StatusUnprocessableEntity, "scores_settings", c.pageView(w, r, s, "scores.settings.title", d))
	return nil
}
