package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// ruleRoutes are the pages of auto-tag rules (自动打标): the list, the
// editor, and a rule's statistics, back-fill and test.
func (c *Console) ruleRoutes() []route {
	return []route{
		{pattern: "GET /tags/rules", perm: tenant.PermTagsRead, handle: c.rulesPage,
			nav: &navEntry{Section: "tags.nav.section", Label: "tags.nav.rules", Icon: "bolt"}},
		{pattern: "GET /tags/rules/new", perm: tenant.PermTagsManage, handle: c.ruleNewPage},
		{pattern: "POST /tags/rules", perm: tenant.PermTagsManage, handle: c.ruleCreate},
		{pattern: "POST /tags/rules/try", perm: tenant.PermTagsManage, handle: c.ruleTry},
		{pattern: "GET /tags/rules/{id}", perm: tenant.PermTagsRead, handle: c.rulePage},
		{pattern: "POST /tags/rules/{id}/save", perm: tenant.PermTagsManage, handle: c.ruleSave},
		{pattern: "POST /tags/rules/{id}/enable", perm: tenant.PermTagsManage, handle: c.ruleEnable},
		{pattern: "POST /tags/rules/{id}/disable", perm: tenant.PermTagsManage, handle: c.ruleDisable},
		{pattern: "POST /tags/rules/{id}/delete", perm: tenant.PermTagsManage, handle: c.ruleDelete},
		{pattern: "POST /tags/rules/{id}/backfill", perm: tenant.PermTagsManage, handle: c.ruleBackfill},
		{pattern: "GET /tags/rules/{id}/backfill", perm: tenant.PermTagsRead, handle: c.ruleBackfillProgress},
	}
}

// ---- list ----

// rulesPage is the data of the rule list.
type rulesPage struct {
	Rows      []ruleRow
	CanManage bool
	CSRF      string
	Loc       *time.Location
}

// ruleRow is one rule of the list with its latest back-fill.
type ruleRow struct {
	tag.Rule
	Summary  string       // the trigger in words
	Backfill *tag.RuleJob // nil: never back-filled
}

// Adds and Removes name the rule's tags for display.
func (r ruleRow) Adds() []string    { return refsOf(r.Rule, r.Add) }
func (r ruleRow) Removes() []string { return refsOf(r.Rule, r.Remove) }

func refsOf(r tag.Rule, ids []int64) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if ref, ok := r.TagRefs[strconv.FormatInt(id, 10)]; ok {
			out = append(out, ref)
		} else {
			out = append(out, "#"+strconv.FormatInt(id, 10))
		}
	}
	return out
}

func (c *Console) rulesPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	rules, err := c.deps.TagRules.Rules(ctx, s.Principal.TenantID)
	if err != nil {
		return fmt.Errorf("console: rules: %w", err)
	}
	d := rulesPage{CanManage: s.Principal.Can(tenant.PermTagsManage), CSRF: s.Session.CSRFToken, Loc: s.Workspace.Location()}
	for _, ru := range rules {
		row := ruleRow{Rule: ru, Summary: c.triggerSummary(s.Lang, ru.Trigger)}
		j, err := c.deps.TagRules.Backfill(ctx, s.Principal.TenantID, ru.ID)
		switch {
		case err == nil:
			row.Backfill = &j
		case !errs.Is(err, errs.NotFound):
			return fmt.Errorf("console: rules: %w", err)
		}
		d.Rows = append(d.Rows, row)
	}
	c.render(w, r, http.StatusOK, "rules", c.pageView(w, r, s, "rules.title", d))
	return nil
}

// triggerSummary says what makes a rule run, in lang.
func (c *Console) triggerSummary(lang string, t tag.Trigger) string {
	txt := func(key string, args ...any) string { return c.cat.text(lang, key, args...) }
	switch t.Kind {
	case tag.TriggerEvent:
		s := txt("rules.sum.event", t.Event)
		if len(t.Where) > 0 {
			s += txt("rules.sum.where", len(t.Where))
		}
		if t.Count > 1 {
			days := t.WithinDays
			if days == 0 {
				days = tag.DefaultCountDays
			}
			s += txt("rules.sum.count", days, t.Count)
		}
		return s
	case tag.TriggerOrderPaid, tag.TriggerOrderRefunded:
		s := txt("rules.kind." + string(t.Kind))
		switch {
		case t.MinFen != nil && t.MaxFen != nil:
			s += txt("rules.sum.between", yuan(*t.MinFen), yuan(*t.MaxFen))
		case t.MinFen != nil:
			s += txt("rules.sum.min", yuan(*t.MinFen))
		case t.MaxFen != nil:
			s += txt("rules.sum.max", yuan(*t.MaxFen))
		}
		for _, f := range []struct{ key, v string }{{"rules.sum.sku", t.SKU}, {"rules.sum.category", t.Category}} {
			if f.v != "" {
				s += txt(f.key, f.v)
			}
		}
		if t.Source != "" {
			s += txt("rules.sum.source", c.cat.label(lang, "channel.", t.Source))
		}
		if t.OrderCount != nil {
			s += txt("rules.sum.order_count", t.OrderCount.Op, t.OrderCount.Value)
		}
		return s
	case tag.TriggerAttributeChanged:
		return txt("rules.sum.attributes", strings.Join(t.Attributes, ", "))
	case tag.TriggerSchedule:
		return txt("rules.sum.schedule", t.At)
	}
	return string(t.Kind)
}

// ---- editor ----

// ruleForm is the editor's fields as typed, so a refused form comes back
// as it was.
type ruleForm struct {
	Name, Description string
	Enabled           bool // new rules only
	Kind              string
	// event
	Event, Where, Count, WithinDays string
	// orders
	MinYuan, MaxYuan, SKU, Category, Source, OrderCountOp, OrderCountValue string
	// attribute_changed
	Attributes string
	// schedule
	At string

	Conditions, Expr string
	Add, Remove      []int64
	Retract          bool

	// The test panel.
	Customer                              string
	Sample                                bool
	SampleProps, SampleAmount, SampleItem string
}

// ruleError is a refused rule, shown beside the part it names.
type ruleError struct {
	Field  string // the editor field (name, where, conditions, …); "" above the form
	Path   string // the domain's path of the bad part, e.g. conditions.and[1].tag
	Text   string // translated
	Detail string // the domain's own explanation
}

// At returns the error when it belongs to field, for the template.
func (e *ruleError) At(field string) *ruleError {
	if e != nil && e.Field == field {
		return e
	}
	return nil
}

// ruleEditor is the data of the editor page (new or existing rule).
type ruleEditor struct {
	Rule      *tag.Rule // nil: a new rule
	Summary   string
	Form      ruleForm
	Kinds     []tag.TriggerKind
	Channels  []commerce.Source
	Ops       []string
	Tags      []tagOptionGroup
	Err       *ruleError
	CanManage bool
	Stats     tag.RuleStats
	Backfill  backfillView
	Try       *tryView
	CSRF      string
	Loc       *time.Location
}

// Action is where the editor posts.
func (e ruleEditor) Action() string {
	if e.Rule == nil {
		return "/tags/rules"
	}
	return fmt.Sprintf("/tags/rules/%d/save", e.Rule.ID)
}

// Adding and Removing say whether a tag is ticked in the add or remove list.
func (e ruleEditor) Adding(id int64) bool   { return slices.Contains(e.Form.Add, id) }
func (e ruleEditor) Removing(id int64) bool { return slices.Contains(e.Form.Remove, id) }

// KindIcon is the sprite icon of a trigger kind.
func (e ruleEditor) KindIcon(k tag.TriggerKind) string {
	switch k {
	case tag.TriggerEvent:
		return "eye"
	case tag.TriggerOrderPaid:
		return "bag"
	case tag.TriggerOrderRefunded:
		return "undo"
	case tag.TriggerAttributeChanged:
		return "id-card"
	}
	return "clock"
}

// formOf fills the editor from a saved rule.
func formOf(ru tag.Rule) ruleForm {
	t := ru.Trigger
	f := ruleForm{Name: ru.Name, Description: ru.Description, Enabled: ru.Enabled, Kind: string(t.Kind),
		Event: t.Event, SKU: t.SKU, Category: t.Category, Source: t.Source, At: t.At,
		Attributes: strings.Join(t.Attributes, ", "), Expr: ru.Expr, Add: ru.Add, Remove: ru.Remove, Retract: ru.Retract}
	if len(t.Where) > 0 {
		f.Where = indentJSON(t.Where)
	}
	if t.Count > 0 {
		f.Count = strconv.Itoa(t.Count)
	}
	if t.WithinDays > 0 {
		f.WithinDays = strconv.Itoa(t.WithinDays)
	}
	if t.MinFen != nil {
		f.MinYuan = fenText(*t.MinFen)
	}
	if t.MaxFen != nil {
		f.MaxYuan = fenText(*t.MaxFen)
	}
	if t.OrderCount != nil {
		f.OrderCountOp, f.OrderCountValue = t.OrderCount.Op, strconv.Itoa(t.OrderCount.Value)
	}
	if ru.Conditions != nil {
		f.Conditions = indentJSON(ru.Conditions)
	}
	return f
}

func indentJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSpace(buf.String())
}

// fenText writes fen as a plain yuan amount for an input: 12800 → 128,
// 12850 → 128.50.
func fenText(fen int64) string {
	if fen%100 == 0 {
		return strconv.FormatInt(fen/100, 10)
	}
	return strings.TrimPrefix(commerce.Yuan(fen), "¥")
}

// readRuleForm reads the editor's fields.
func readRuleForm(r *http.Request) ruleForm {
	v := r.PostFormValue
	f := ruleForm{
		Name: v("name"), Description: v("description"), Enabled: v("enabled") == "1", Kind: v("kind"),
		Event: v("event"), Where: v("where"), Count: v("count"), WithinDays: v("within_days"),
		MinYuan: v("min_yuan"), MaxYuan: v("max_yuan"), SKU: v("sku"), Category: v("category"), Source: v("source"),
		OrderCountOp: v("order_count_op"), OrderCountValue: v("order_count_value"),
		Attributes: v("attributes"), At: v("at"), Conditions: v("conditions"), Expr: v("expr"), Retract: v("retract") == "1",
		Customer: v("customer"), Sample: v("sample") == "1", SampleProps: v("sample_props"), SampleAmount: v("sample_amount"),
		SampleItem: v("sample_item"),
	}
	for _, l := range []struct {
		name string
		out  *[]int64
	}{{"add", &f.Add}, {"remove", &f.Remove}} {
		for _, s := range r.PostForm[l.name] {
			if id, err := strconv.ParseInt(s, 10, 64); err == nil && id > 0 {
				*l.out = append(*l.out, id)
			}
		}
	}
	return f
}

// decodeStrict reads JSON into v, refusing unknown fields, numbers kept
// exact as the audience engine reads them.
func decodeStrict(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	return nil
}

// input turns the editor's fields into a rule definition. Only the fields
// of the chosen trigger are read, since the others stay in the page
// (hidden) when the user switches kinds. Errors use the domain's paths.
func (f ruleForm) input() (tag.RuleInput, error) {
	in := tag.RuleInput{Name: f.Name, Description: f.Description, Trigger: tag.Trigger{Kind: tag.TriggerKind(f.Kind)},
		Expr: f.Expr, Add: f.Add, Remove: f.Remove, Retract: f.Retract}
	t := &in.Trigger
	atoi := func(path, s string) (int, error) {
		if strings.TrimSpace(s) == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return 0, errs.Field(path, "invalid_number", "%s: %q is not a whole number", path, s)
		}
		return n, nil
	}
	var err error
	switch t.Kind {
	case tag.TriggerEvent:
		t.Event = f.Event
		if strings.TrimSpace(f.Where) != "" {
			if err := decodeStrict(f.Where, &t.Where); err != nil {
				return in, errs.Field("trigger.where", "invalid_json", "trigger.where: not a JSON list of property filters: %v", err)
			}
		}
		if t.Count, err = atoi("trigger.count", f.Count); err != nil {
			return in, err
		}
		if t.WithinDays, err = atoi("trigger.within_days", f.WithinDays); err != nil {
			return in, err
		}
	case tag.TriggerOrderPaid, tag.TriggerOrderRefunded:
		for _, a := range []struct {
			path, v string
			out     **int64
		}{{"trigger.min_fen", f.MinYuan, &t.MinFen}, {"trigger.max_fen", f.MaxYuan, &t.MaxFen}} {
			if strings.TrimSpace(a.v) == "" {
				continue
			}
			fen, err := commerce.ParseYuan(a.v)
			if err != nil {
				return in, errs.Field(a.path, "invalid_amount", "%s: %q is not an amount in yuan", a.path, a.v)
			}
			*a.out = &fen
		}
		t.SKU, t.Category, t.Source = strings.TrimSpace(f.SKU), strings.TrimSpace(f.Category), f.Source
		if f.OrderCountOp != "" {
			n, err := atoi("trigger.order_count.value", f.OrderCountValue)
			if err != nil {
				return in, err
			}
			t.OrderCount = &audience.CountCond{Op: f.OrderCountOp, Value: n}
		}
	case tag.TriggerAttributeChanged:
		// Commas as typed on a Chinese keyboard (，、) separate too.
		t.Attributes = append([]string{}, strings.FieldsFunc(f.Attributes, func(r rune) bool {
			return r == ',' || r == '\n' || r == ' ' || r == '\u3001' || r == '\uff0c'
		})...)
	case tag.TriggerSchedule:
		t.At = strings.TrimSpace(f.At)
	}
	if strings.TrimSpace(f.Conditions) != "" {
		var cond audience.Condition
		if err := decodeStrict(f.Conditions, &cond); err != nil {
			return in, errs.Field("conditions", "invalid_json", "conditions: not a condition tree in JSON: %v", err)
		}
		in.Conditions = &cond
	}
	return in, nil
}

// ruleErrorOf places a refused rule's error in the editor: the field its
// path names, the path itself, the translated reason and the domain's.
func (c *Console) ruleErrorOf(lang string, err error) *ruleError {
	re := &ruleError{Text: c.areaErrorText(lang, err, "rules", "tags")}
	e, ok := errs.As(err)
	if !ok {
		return re
	}
	re.Detail = e.Message
	if len(e.Fields) > 0 {
		re.Path = e.Fields[0].Location
	}
	if e.Code == "duplicate_rule" {
		re.Path = "name"
	}
	re.Field = ruleField(re.Path)
	if re.Text == re.Detail {
		re.Detail = "" // no translation: the domain's text is shown once
	}
	return re
}

// ruleField is the editor field a domain path points into.
func ruleField(path string) string {
	switch {
	case path == "":
		return ""
	case strings.HasPrefix(path, "conditions"):
		return "conditions"
	case strings.HasPrefix(path, "add"):
		return "add"
	case strings.HasPrefix(path, "remove"):
		return "remove"
	case strings.HasPrefix(path, "trigger.where"):
		return "where"
	case strings.HasPrefix(path, "trigger.min_fen"):
		return "min_yuan"
	case strings.HasPrefix(path, "trigger.max_fen"):
		return "max_yuan"
	case strings.HasPrefix(path, "trigger.order_count"):
		return "order_count"
	case strings.HasPrefix(path, "trigger.attributes"):
		return "attributes"
	case strings.HasPrefix(path, "trigger.") && !strings.ContainsAny(path[len("trigger."):], ".["):
		return path[len("trigger."):] // kind, event, count, within_days, sku, category, source, at
	case path == "trigger":
		return "kind"
	case slices.Contains([]string{"name", "description", "expr", "retract"}, path):
		return path
	}
	return ""
}

// editor starts the editor's data.
func (c *Console) editor(r *http.Request, s *signedIn, ru *tag.Rule, f ruleForm) (ruleEditor, error) {
	all, err := c.deps.Tags.AllTags(r.Context(), s.Principal.TenantID)
	if err != nil {
		return ruleEditor{}, fmt.Errorf("console: rule editor: %w", err)
	}
	e := ruleEditor{Rule: ru, Form: f, Kinds: tag.TriggerKinds(), Channels: commerce.Sources(),
		Ops: []string{"=", "!=", ">", ">=", "<", "<="}, Tags: tagOptions(all, nil),
		CanManage: s.Principal.Can(tenant.PermTagsManage), CSRF: s.Session.CSRFToken, Loc: s.Workspace.Location()}
	if ru != nil {
		e.Summary = c.triggerSummary(s.Lang, ru.Trigger)
		if e.Stats, err = c.deps.TagRules.RuleStats(r.Context(), s.Principal.TenantID, ru.ID); err != nil {
			return ruleEditor{}, err
		}
		if e.Backfill, err = c.backfillOf(r, s, ru.ID); err != nil {
			return ruleEditor{}, err
		}
	}
	return e, nil
}

// showEditor renders the editor page.
func (c *Console) showEditor(w http.ResponseWriter, r *http.Request, s *signedIn, status int, e ruleEditor) {
	title := "rules.new"
	v := c.pageView(w, r, s, title, e)
	if e.Rule != nil {
		v.Heading = e.Rule.Name
	}
	c.render(w, r, status, "rule", v)
}

func (c *Console) ruleNewPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	f := ruleForm{Kind: string(tag.TriggerEvent), Enabled: true}
	e, err := c.editor(r, s, nil, f)
	if err != nil {
		return err
	}
	c.showEditor(w, r, s, http.StatusOK, e)
	return nil
}

// ruleID reads the {id} of a rule path.
func ruleID(r *http.Request) (int64, error) { return pathID(r, "tag_rule") }

func (c *Console) rulePage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	ru, err := c.deps.TagRules.Rule(r.Context(), s.Principal.TenantID, id)
	if err != nil {
		return err
	}
	e, err := c.editor(r, s, &ru, formOf(ru))
	if err != nil {
		return err
	}
	c.showEditor(w, r, s, http.StatusOK, e)
	return nil
}

func (c *Console) ruleCreate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	f := readRuleForm(r)
	in, err := f.input()
	if err == nil {
		in.Enabled = &f.Enabled
		var ru tag.Rule
		if ru, err = c.deps.TagRules.CreateRule(r.Context(), s.Principal, in); err == nil {
			c.redirectWithFlash(w, r, fmt.Sprintf("/tags/rules/%d", ru.ID), "flash.tags.rule_created")
			return nil
		}
	}
	return c.ruleRefused(w, r, s, nil, f, err)
}

func (c *Console) ruleSave(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	ru, err := c.deps.TagRules.Rule(r.Context(), s.Principal.TenantID, id)
	if err != nil {
		return err
	}
	f := readRuleForm(r)
	in, err := f.input()
	if err == nil {
		if _, err = c.deps.TagRules.UpdateRule(r.Context(), s.Principal, id, in); err == nil {
			c.redirectWithFlash(w, r, fmt.Sprintf("/tags/rules/%d", id), "flash.tags.rule_saved")
			return nil
		}
	}
	f.Enabled = ru.Enabled
	return c.ruleRefused(w, r, s, &ru, f, err)
}

// ruleRefused shows the editor again with the typed form and the error at
// the part of the rule it names.
func (c *Console) ruleRefused(w http.ResponseWriter, r *http.Request, s *signedIn, ru *tag.Rule, f ruleForm, err error) error {
	if !isUserError(err) {
		return err
	}
	e, lerr := c.editor(r, s, ru, f)
	if lerr != nil {
		return lerr
	}
	e.Err = c.ruleErrorOf(s.Lang, err)
	c.showEditor(w, r, s, statusOf(errs.KindOf(err)), e)
	return nil
}

func (c *Console) ruleEnable(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	return c.switchRule(w, r, s, true)
}

func (c *Console) ruleDisable(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	return c.switchRule(w, r, s, false)
}

// switchRule turns a rule on or off and goes back where the user was (the
// list or the rule).
func (c *Console) switchRule(w http.ResponseWriter, r *http.Request, s *signedIn, on bool) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	if _, err := c.deps.TagRules.SetRuleEnabled(r.Context(), s.Principal, id, on); err != nil {
		return err
	}
	to := fmt.Sprintf("/tags/rules/%d", id)
	if r.PostFormValue("back") == "list" {
		to = fmt.Sprintf("/tags/rules#rule-%d", id)
	}
	flash := "flash.tags.rule_enabled"
	if !on {
		flash = "flash.tags.rule_disabled"
	}
	c.redirectWithFlash(w, r, to, flash)
	return nil
}

func (c *Console) ruleDelete(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	if err := c.deps.TagRules.DeleteRule(r.Context(), s.Principal, id); err != nil {
		return err
	}
	c.redirectWithFlash(w, r, "/tags/rules", "flash.tags.rule_deleted")
	return nil
}

// ---- back-fill ----

// backfillView is the latest back-fill of a rule, as the progress fragment
// shows it.
type backfillView struct {
	RuleID    int64
	Job       *tag.RuleJob // nil: never back-filled
	CanStart  bool
	HasConds  bool // the rule has conditions (a back-fill needs them)
	Err       string
	CSRF      string
	Loc       *time.Location
	Requested bool // this answer follows the user's start
}

// Active reports whether the job is still to finish, so the page polls.
func (b backfillView) Active() bool {
	return b.Job != nil && (b.Job.Status == tag.JobQueued || b.Job.Status == tag.JobRunning)
}

// Percent is how far the job got.
func (b backfillView) Percent() int64 {
	switch {
	case b.Job == nil:
		return 0
	case b.Job.Status == tag.JobDone:
		return 100
	case b.Job.Total <= 0:
		return 0
	}
	return min(100, b.Job.Done*100/b.Job.Total)
}

func (c *Console) backfillOf(r *http.Request, s *signedIn, ruleID int64) (backfillView, error) {
	ru, err := c.deps.TagRules.Rule(r.Context(), s.Principal.TenantID, ruleID)
	if err != nil {
		return backfillView{}, err
	}
	b := backfillView{RuleID: ruleID, CanStart: s.Principal.Can(tenant.PermTagsManage), HasConds: ru.Conditions != nil,
		CSRF: s.Session.CSRFToken, Loc: s.Workspace.Location()}
	j, err := c.deps.TagRules.Backfill(r.Context(), s.Principal.TenantID, ruleID)
	switch {
	case err == nil:
		b.Job = &j
	case !errs.Is(err, errs.NotFound):
		return backfillView{}, fmt.Errorf("console: back-fill: %w", err)
	}
	return b, nil
}

// ruleBackfill queues a back-fill of the rule. htmx gets the progress,
// which then polls itself until the job ends.
func (c *Console) ruleBackfill(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	_, err = c.deps.TagRules.StartBackfill(r.Context(), s.Principal, id)
	if err != nil && !isUserError(err) {
		return err
	}
	if !isHTMX(r) && err == nil {
		c.redirectWithFlash(w, r, fmt.Sprintf("/tags/rules/%d#backfill", id), "flash.tags.backfill_started")
		return nil
	}
	b, berr := c.backfillOf(r, s, id)
	if berr != nil {
		return berr
	}
	status := http.StatusAccepted
	if err != nil {
		b.Err, status = c.areaErrorText(s.Lang, err, "rules", "tags"), statusOf(errs.KindOf(err))
	}
	b.Requested = true
	if !isHTMX(r) {
		ru, rerr := c.deps.TagRules.Rule(r.Context(), s.Principal.TenantID, id)
		if rerr != nil {
			return rerr
		}
		e, eerr := c.editor(r, s, &ru, formOf(ru))
		if eerr != nil {
			return eerr
		}
		e.Backfill = b
		c.showEditor(w, r, s, status, e)
		return nil
	}
	c.renderTemplate(w, r, status, s.Lang, "rule", "backfill_progress", b)
	return nil
}

// ruleBackfillProgress answers the progress poll.
func (c *Console) ruleBackfillProgress(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	if !isHTMX(r) {
		http.Redirect(w, r, fmt.Sprintf("/tags/rules/%d#backfill", id), http.StatusSeeOther)
		return nil
	}
	b, err := c.backfillOf(r, s, id)
	if err != nil {
		return err
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "rule", "backfill_progress", b)
	return nil
}

// ---- test against one customer ----

// tryView is the answer of a test: whether the rule fires for the
// customer, what it would change, and each part checked.
type tryView struct {
	Customer *customer.Customer // nil when the customer service is not wired
	Result   tag.TryResult
	Err      string
	Detail   string
	Path     string
}

// Adds and Removes name the tags the test would change.
func (t tryView) Adds() []string    { return tryRefs(t.Result, t.Result.Add) }
func (t tryView) Removes() []string { return tryRefs(t.Result, t.Result.Remove) }

func tryRefs(res tag.TryResult, ids []int64) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if ref, ok := res.TagRefs[strconv.FormatInt(id, 10)]; ok {
			out = append(out, ref)
		} else {
			out = append(out, "#"+strconv.FormatInt(id, 10))
		}
	}
	return out
}

// findCustomer reads the test's customer box: a customer id (#42 or 42), a
// phone number, or KIND:VALUE (user_id:M0001), as the customer search does.
func (c *Console) findCustomer(r *http.Request, s *signedIn, q string) (int64, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return 0, errs.Field("customer", "customer_required", "give a customer id, phone number or KIND:VALUE")
	}
	digits := strings.TrimPrefix(q, "#")
	// Customer ids are short; an 11-digit number is a phone.
	if id, err := strconv.ParseInt(digits, 10, 64); err == nil && id > 0 && (len(digits) < 11 || c.deps.Customers == nil) {
		return id, nil
	}
	if c.deps.Customers == nil {
		return 0, errs.E(errs.NotFound, "customer_not_found", "no customer %q", q)
	}
	pg, err := c.deps.Customers.List(r.Context(), s.Principal.TenantID, searchQuery(q, false), page.Request{Limit: 2})
	if err != nil {
		return 0, err
	}
	switch len(pg.Items) {
	case 0:
		return 0, errs.E(errs.NotFound, "customer_not_found", "no customer %q", q)
	case 1:
		return pg.Items[0].ID, nil
	}
	return 0, errs.Field("customer", "ambiguous_customer", "several customers match %q; give the customer id", q)
}

// sample builds the test's sample event or order from the test panel.
func (f ruleForm) sample(in tag.RuleInput) (*tag.EventFact, *tag.OrderFact, error) {
	if !f.Sample {
		return nil, nil, nil
	}
	switch in.Trigger.Kind {
	case tag.TriggerEvent:
		ev := &tag.EventFact{Name: in.Trigger.Event, Type: "track"}
		if strings.TrimSpace(f.SampleProps) != "" {
			if err := decodeStrict(f.SampleProps, &ev.Properties); err != nil {
				return nil, nil, errs.Field("sample_props", "invalid_json", "the sample properties are not a JSON object: %v", err)
			}
		}
		return ev, nil, nil
	case tag.TriggerOrderPaid, tag.TriggerOrderRefunded:
		fen, err := commerce.ParseYuan(f.SampleAmount)
		if err != nil {
			return nil, nil, errs.Field("sample_amount", "invalid_amount", "%q is not an amount in yuan", f.SampleAmount)
		}
		o := &tag.OrderFact{Source: in.Trigger.Source, Status: "paid", TotalFen: fen, PaidFen: fen, PaidAt: time.Now()}
		if in.Trigger.Kind == tag.TriggerOrderRefunded {
			o.RefundFen, o.RefundedFen = fen, fen
		}
		if item := strings.TrimSpace(f.SampleItem); item != "" {
			o.Items = []tag.OrderItemFact{{SKU: item, Name: item, Category: in.Trigger.Category, Quantity: 1, UnitPriceFen: fen, AmountFen: fen}}
		}
		return nil, o, nil
	}
	return nil, nil, nil
}

// ruleTry tests the rule as it stands in the editor (saved or not) against
// one customer, with the domain's try: nothing is written. htmx gets the
// result panel; without JavaScript the editor comes back with it.
func (c *Console) ruleTry(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	f := readRuleForm(r)
	var ru *tag.Rule
	if id, err := strconv.ParseInt(r.PostFormValue("rule_id"), 10, 64); err == nil && id > 0 {
		saved, err := c.deps.TagRules.Rule(ctx, s.Principal.TenantID, id)
		if err != nil {
			return err
		}
		ru = &saved
	}
	tv := &tryView{}
	in, err := f.input()
	if err == nil && strings.TrimSpace(in.Name) == "" {
		in.Name = "-" // the name does not matter to a test
	}
	var cid int64
	var ev *tag.EventFact
	var ord *tag.OrderFact
	if err == nil {
		ev, ord, err = f.sample(in)
	}
	if err == nil {
		cid, err = c.findCustomer(r, s, f.Customer)
	}
	if err == nil {
		tv.Result, err = c.deps.TagRules.TryRule(ctx, s.Principal.TenantID, tag.TryInput{Rule: &in, CustomerID: cid, Event: ev, Order: ord})
	}
	if err == nil && c.deps.Customers != nil {
		cu, gerr := c.deps.Customers.Get(ctx, s.Principal.TenantID, tv.Result.CustomerID, s.Principal.Can(tenant.PermPIIRead))
		if gerr == nil {
			maskEmail(&cu, s.Principal)
			tv.Customer = &cu
		}
	}
	if err != nil {
		if !isUserError(err) {
			return err
		}
		re := c.ruleErrorOf(s.Lang, err)
		tv.Err, tv.Detail, tv.Path = re.Text, re.Detail, re.Path
	}
	status := http.StatusOK
	if err != nil {
		status = statusOf(errs.KindOf(err))
	}
	if isHTMX(r) {
		c.renderTemplate(w, r, status, s.Lang, "rule", "try_result", tv)
		return nil
	}
	e, lerr := c.editor(r, s, ru, f)
	if lerr != nil {
		return lerr
	}
	if ru != nil {
		e.Form.Enabled = ru.Enabled
	}
	e.Try = tv
	c.showEditor(w, r, s, status, e)
	return nil
}
