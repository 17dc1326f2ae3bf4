package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// maxAudienceDescription is the API's limit on a saved audience's description.
const maxAudienceDescription = 500

// audienceEditor is the data of the builder: a new audience, or a saved one
// with its members and the log of who entered and left.
type audienceEditor struct {
	Audience    *audience.Audience // nil for a new audience
	Members     number             // a saved audience's members, counted now
	Form        audienceForm
	Err         formError
	CondErr     *condError // why the tree was refused, shown beside its node
	CanWrite    bool
	Builder     string // builderData as JSON, for audience.js
	Columns     []previewColumn
	BreakdownBy []choice
	Changes     *changesView
}

// Action is where the save form posts.
func (d audienceEditor) Action() string {
	if d.Audience != nil {
		return fmt.Sprintf("/audiences/%d", d.Audience.ID)
	}
	return "/audiences"
}

// audienceForm is what the save form carries.
type audienceForm struct {
	Name, Description string
	Conditions        string // the tree as JSON text
}

// choice is one value a builder select offers, with its label.
type choice struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// builderData is everything audience.js needs to offer names instead of
// making operators type them: attributes with their kinds and values, tags,
// events and their properties, the other saved audiences, the channels, and
// its own strings in the user's language.
type builderData struct {
	Lang      string                   `json:"lang"`
	Attrs     []builderAttr            `json:"attrs"`
	Tags      []builderTag             `json:"tags"`
	Events    []string                 `json:"events"`
	Props     map[string][]builderProp `json:"props"`
	Audiences []choice                 `json:"audiences"`
	Sources   []choice                 `json:"sources"`
	Text      map[string]string        `json:"text"`
	Error     *condError               `json:"error,omitempty"` // from a refused save
}

// builderAttr is one attribute a condition may compare.
type builderAttr struct {
	Name   string   `json:"name"`
	Label  string   `json:"label"`
	Kind   string   `json:"kind"`  // text, number, money (fen, typed in yuan), date, bool
	Group  string   `json:"group"` // profile, commerce, computed, custom
	Values []choice `json:"values,omitempty"`
}

// builderTag is one tag of the picker.
type builderTag struct {
	Ref   string `json:"ref"`
	Name  string `json:"name"`
	Group string `json:"group"`
}

// builderProp is one property an event has carried.
type builderProp struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// condError is a refused condition tree: what is wrong, in the user's
// language, and the path of the node it is about, so the builder can show it
// beside that row.
type condError struct {
	Path    string `json:"path"` // e.g. "and[1].value"; "" for the tree as a whole
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty"` // the engine's own words, with specifics
}

// conditionError words an error of the audience engine for the builder.
func (c *Console) conditionError(lang string, err error) *condError {
	e, ok := errs.As(err)
	if !ok || e.Kind == errs.Internal {
		return &condError{Message: c.cat.text(lang, "error.internal")}
	}
	ce := &condError{Detail: e.Message}
	if len(e.Fields) > 0 {
		ce.Path = e.Fields[0].Location
	}
	if ce.Path == "(root)" || ce.Path == "conditions" {
		ce.Path = ""
	}
	key := "audiences.err." + e.Code
	if e.Code == "invalid_condition" {
		key = "audiences.err.field." + conditionField(ce.Path)
	}
	if s, ok := c.cat.lookup(lang, key); ok {
		ce.Message = s
	} else {
		ce.Message = c.cat.errorText(lang, err)
	}
	return ce
}

// treeError is conditionError for a tree the engine refused. Errors about
// the saved audiences a tree refers to come without the node's path, so it
// is found here: the first reference to a missing audience, or to the
// audience itself (self; 0 for a new one).
func (c *Console) treeError(r *http.Request, s *signedIn, cond audience.Condition, self int64, err error) *condError {
	ce := c.conditionError(s.Lang, err)
	if ce.Path != "" {
		return ce
	}
	var match func(int64) bool
	switch errs.CodeOf(err) {
	case "audience_not_found":
		match = func(id int64) bool {
			_, err := c.deps.Audiences.Audience(r.Context(), s.Principal.TenantID, id)
			return errs.Is(err, errs.NotFound)
		}
	case "audience_cycle":
		match = func(id int64) bool { return self != 0 && id == self }
	default:
		return ce
	}
	if p, ok := audiencePath(cond, "", match); ok {
		ce.Path = p
	}
	return ce
}

// audiencePath finds the first node referring to an audience that matches,
// and returns its path as the engine writes paths (and[1].or[0].not).
func audiencePath(cond audience.Condition, path string, match func(int64) bool) (string, bool) {
	if cond.Audience != 0 && match(cond.Audience) {
		return path, true
	}
	for name, list := range map[string][]audience.Condition{"and": cond.And, "or": cond.Or} {
		for i, k := range list {
			if p, ok := audiencePath(k, joinPath(path, fmt.Sprintf("%s[%d]", name, i)), match); ok {
				return p, true
			}
		}
	}
	if cond.Not != nil {
		return audiencePath(*cond.Not, joinPath(path, "not"), match)
	}
	return "", false
}

func joinPath(path, part string) string {
	if path == "" {
		return part
	}
	return path + "." + part
}

// conditionField names the part of a node an invalid_condition error is
// about, from the end of its path ("and[1].count.op" → "count"), so the
// message can say which input to fix.
func conditionField(path string) string {
	parts := strings.Split(path, ".")
	last, parent := parts[len(parts)-1], ""
	if len(parts) > 1 {
		parent = parts[len(parts)-2]
	}
	switch {
	case last == "op" || strings.HasPrefix(last, "value"):
		switch {
		case parent == "count":
			return "count"
		case strings.HasPrefix(parent, "where["):
			return "where"
		case last == "op":
			return "op"
		}
		return "value"
	case strings.HasPrefix(last, "where["):
		return "where"
	case last == "within_days", last == "between":
		return "window"
	case last == "metric", last == "order":
		return "order"
	case last == "and", last == "or":
		return "group"
	}
	return "node"
}

// audienceNewPage opens an empty builder, or one started from a tree passed
// in the URL (the charts of the scores page link here).
func (c *Console) audienceNewPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.audienceEditorData(r, s, nil)
	if err != nil {
		return err
	}
	if q := r.URL.Query().Get("conditions"); q != "" {
		d.Form.Conditions = prettyTree(q)
	}
	return c.renderAudienceEditor(w, r, s, http.StatusOK, d)
}

// audienceEditPage opens a saved audience in the builder.
func (c *Console) audienceEditPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := audienceID(r)
	if err != nil {
		return err
	}
	a, err := c.deps.Audiences.Audience(r.Context(), s.Principal.TenantID, id)
	if err != nil {
		return err
	}
	d, err := c.audienceEditorData(r, s, &a)
	if err != nil {
		return err
	}
	d.Form = audienceForm{Name: a.Name, Description: a.Description, Conditions: treeText(a.Conditions)}
	return c.renderAudienceEditor(w, r, s, http.StatusOK, d)
}

// audienceEditorData gathers the builder's page around a (nil for a new
// audience).
func (c *Console) audienceEditorData(r *http.Request, s *signedIn, a *audience.Audience) (audienceEditor, error) {
	ctx := r.Context()
	tid := s.Principal.TenantID
	d := audienceEditor{Audience: a, CanWrite: s.Principal.Can(tenant.PermCustomersWrite)}
	var self int64
	if a != nil {
		self = a.ID
		d.Members = number(a.MemberCount)
		if res, err := c.deps.Audiences.Members(ctx, tid, a.ID); err == nil {
			d.Members = number(res.Count)
		}
		cv, err := c.changes(r, s, a.ID, r.URL.Query().Get("cursor"))
		if err != nil {
			return d, err
		}
		d.Changes = &cv
	}
	bd, custom, err := c.builderData(r, s, self)
	if err != nil {
		return d, err
	}
	d.Columns = c.previewColumns(s.Lang, custom)
	d.BreakdownBy = c.breakdownOptions(s.Lang, custom)
	b, err := json.Marshal(bd)
	if err != nil {
		return d, fmt.Errorf("console: builder: %w", err)
	}
	d.Builder = string(b)
	return d, nil
}

func (c *Console) renderAudienceEditor(w http.ResponseWriter, r *http.Request, s *signedIn, status int, d audienceEditor) error {
	if d.CondErr != nil {
		// The builder shows a refused save's error beside its row.
		var bd map[string]any
		if err := json.Unmarshal([]byte(d.Builder), &bd); err == nil {
			bd["error"] = d.CondErr
			if b, err := json.Marshal(bd); err == nil {
				d.Builder = string(b)
			}
		}
	}
	v := c.pageView(w, r, s, "audiences.new_title", d)
	if d.Audience != nil {
		v.Heading = d.Audience.Name
	}
	c.render(w, r, status, "audience", v)
	return nil
}

// builderData lists what the builder offers; it also returns the custom
// attributes, which the preview columns and the breakdown offer too.
func (c *Console) builderData(r *http.Request, s *signedIn, self int64) (builderData, []customer.Attribute, error) {
	ctx := r.Context()
	tid := s.Principal.TenantID
	lang := s.Lang
	bd := builderData{Lang: lang, Tags: []builderTag{}, Events: []string{}, Props: map[string][]builderProp{},
		Audiences: []choice{}, Text: c.cat.withPrefix(lang, "audiences.js.")}
	attrs := c.standardAttrs(lang)
	custom, err := c.deps.Customers.Attributes(ctx, tid)
	if err != nil {
		return bd, nil, fmt.Errorf("console: builder: %w", err)
	}
	std := map[string]bool{}
	for _, a := range attrs {
		std[a.Name] = true
	}
	for _, a := range custom {
		kind := map[string]string{customer.TypeString: "text", customer.TypeNumber: "number", customer.TypeDate: "date", customer.TypeBool: "bool"}[a.Type]
		if kind == "" || std[a.Name] {
			continue // lists and objects are not indexed
		}
		label := a.DisplayName
		if label == "" {
			label = a.Name
		}
		attrs = append(attrs, builderAttr{Name: a.Name, Label: label, Kind: kind, Group: "custom"})
	}
	bd.Attrs = attrs
	if c.deps.Tags != nil {
		tags, err := c.deps.Tags.AllTags(ctx, tid)
		if err != nil {
			return bd, nil, fmt.Errorf("console: builder: %w", err)
		}
		for _, t := range tags {
			bd.Tags = append(bd.Tags, builderTag{Ref: t.Ref, Name: t.Name, Group: t.Group})
		}
	}
	if c.deps.Events != nil {
		cat, err := c.deps.Events.Catalog(ctx, tid, "", "")
		if err != nil {
			return bd, nil, fmt.Errorf("console: builder: %w", err)
		}
		for _, e := range cat {
			switch e.Kind {
			case event.CatalogEvent:
				bd.Events = append(bd.Events, e.Name)
			case event.CatalogProperty:
				bd.Props[e.Parent] = append(bd.Props[e.Parent], builderProp{Name: e.Name, Type: e.Type})
			}
		}
	}
	all, err := c.allAudiences(r, tid)
	if err != nil {
		return bd, nil, err
	}
	for _, a := range all {
		if a.ID != self {
			bd.Audiences = append(bd.Audiences, choice{Value: fmt.Sprint(a.ID), Label: a.Name})
		}
	}
	bd.Sources = c.channelOptions(lang)
	return bd, custom, nil
}

// allAudiences lists every saved audience (a workspace keeps tens of them).
func (c *Console) allAudiences(r *http.Request, tid int64) ([]audience.Audience, error) {
	var out []audience.Audience
	req := page.Request{Limit: page.MaxLimit}
	for {
		pg, err := c.deps.Audiences.Audiences(r.Context(), tid, req)
		if err != nil {
			return nil, fmt.Errorf("console: audiences: %w", err)
		}
		out = append(out, pg.Items...)
		if pg.Next == "" {
			return out, nil
		}
		req.Cursor = pg.Next
	}
}

// standardAttrs are the attributes every workspace has (docs/audiences.md),
// with the values the enumerated ones take.
func (c *Console) standardAttrs(lang string) []builderAttr {
	t := func(name string) string { return c.cat.text(lang, "audiences.attr."+name) }
	attr := func(name, kind, group string, values ...choice) builderAttr {
		return builderAttr{Name: name, Label: t(name), Kind: kind, Group: group, Values: values}
	}
	out := []builderAttr{
		attr("gender", "text", "profile", choice{"male", c.cat.text(lang, "gender.male")}, choice{"female", c.cat.text(lang, "gender.female")}),
		attr("province", "text", "profile"),
		attr("city", "text", "profile"),
		attr("birthday", "date", "profile"),
		attr("source", "text", "profile", c.channelOptions(lang)...),
		attr("source_code", "text", "profile"),
		attr("first_seen_at", "date", "profile"),
		attr("last_seen_at", "date", "profile"),
	}
	if c.deps.Commerce != nil {
		out = append(out,
			attr("total_spend", "money", "commerce"),
			attr("order_count", "number", "commerce"),
			attr("avg_order_value", "money", "commerce"),
			attr("first_order_at", "date", "commerce"),
			attr("last_order_at", "date", "commerce"),
		)
	}
	if c.deps.Analytics != nil {
		out = append(out,
			attr("rfm_class", "text", "computed", c.scoreOptions(lang, "scores.rfm.", analytics.RFMClasses())...),
			attr("lifecycle", "text", "computed", c.scoreOptions(lang, "scores.lifecycle.", analytics.LifecycleStages())...),
			attr("fan_tier", "text", "computed", c.scoreOptions(lang, "scores.fan.", analytics.FanTiers())...),
			attr("rfm_r", "number", "computed"),
			attr("rfm_f", "number", "computed"),
			attr("rfm_m", "number", "computed"),
		)
	}
	return out
}

// scoreOptions are the values of a computed attribute, named in lang.
func (c *Console) scoreOptions(lang, prefix string, labels []analytics.ScoreLabel) []choice {
	out := make([]choice, len(labels))
	for i, l := range labels {
		out[i] = choice{Value: l.Value, Label: c.cat.label(lang, prefix, l.Key)}
	}
	return out
}

// channelOptions are the source channels the catalogue names, by label.
func (c *Console) channelOptions(lang string) []choice {
	var out []choice
	for k, v := range c.cat.withPrefix(lang, "channel.") {
		out = append(out, choice{Value: k, Label: v})
	}
	slices.SortFunc(out, func(a, b choice) int { return strings.Compare(a.Value, b.Value) })
	return out
}

// withPrefix returns the keys of lang that start with prefix, without it,
// and their texts.
func (c *catalogue) withPrefix(lang, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range c.msgs[lang] {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = v
		}
	}
	return out
}

// treeText is a tree as the JSON view shows it, indented.
func treeText(cond audience.Condition) string {
	b, err := json.MarshalIndent(cond, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

// prettyTree indents JSON text, leaving text that is not JSON as it is (the
// builder then shows it in the JSON view with the parser's complaint).
func prettyTree(s string) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(strings.TrimSpace(s)), "", "  "); err != nil {
		return s
	}
	return buf.String()
}

// readAudienceForm reads the save form and parses its tree.
func readAudienceForm(r *http.Request) (audienceForm, audience.AudienceInput, error) {
	f := audienceForm{Name: strings.TrimSpace(r.PostFormValue("name")), Description: strings.TrimSpace(r.PostFormValue("description")),
		Conditions: r.PostFormValue("conditions")}
	in := audience.AudienceInput{Name: f.Name, Description: f.Description}
	if len([]rune(f.Description)) > maxAudienceDescription {
		return f, in, errs.Field("description", "audience_description_too_long", "the description has at most %d characters", maxAudienceDescription)
	}
	if strings.TrimSpace(f.Conditions) == "" {
		return f, in, errs.Field("conditions", "audience_no_conditions", "add at least one condition")
	}
	cond, err := audience.Parse([]byte(f.Conditions))
	if err != nil {
		return f, in, err
	}
	in.Conditions = cond
	return f, in, nil
}

// audienceCreate saves a new live audience and opens it.
func (c *Console) audienceCreate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	f, in, err := readAudienceForm(r)
	if err == nil {
		var a audience.Audience
		a, err = c.deps.Audiences.CreateAudience(r.Context(), s.Principal.TenantID, s.Principal.Name, in)
		if err == nil {
			c.log.InfoContext(r.Context(), "console: audience saved", "tenant_id", s.Principal.TenantID, "audience_id", a.ID,
				"members", a.MemberCount, "user_id", s.User.ID)
			c.redirectWithFlash(w, r, fmt.Sprintf("/audiences/%d", a.ID), "flash.audiences.created")
			return nil
		}
	}
	return c.audienceSaveError(w, r, s, nil, f, in.Conditions, err)
}

// audienceUpdate changes a saved audience; its members move at once.
func (c *Console) audienceUpdate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := audienceID(r)
	if err != nil {
		return err
	}
	a, err := c.deps.Audiences.Audience(r.Context(), s.Principal.TenantID, id)
	if err != nil {
		return err
	}
	f, in, err := readAudienceForm(r)
	if err == nil {
		if _, err = c.deps.Audiences.UpdateAudience(r.Context(), s.Principal.TenantID, id, in); err == nil {
			c.log.InfoContext(r.Context(), "console: audience changed", "tenant_id", s.Principal.TenantID, "audience_id", id, "user_id", s.User.ID)
			c.redirectWithFlash(w, r, fmt.Sprintf("/audiences/%d", id), "flash.audiences.updated")
			return nil
		}
	}
	return c.audienceSaveError(w, r, s, &a, f, in.Conditions, err)
}

// audienceSaveError shows the builder again with what was typed and why it
// was refused: beside the name, or beside the condition's row.
func (c *Console) audienceSaveError(w http.ResponseWriter, r *http.Request, s *signedIn, a *audience.Audience, f audienceForm, cond audience.Condition, err error) error {
	if !isUserError(err) {
		return err
	}
	d, derr := c.audienceEditorData(r, s, a)
	if derr != nil {
		return derr
	}
	d.Form = f
	switch code := errs.CodeOf(err); {
	case code == "invalid_name" || code == "audience_name_taken":
		d.Err = formError{Message: c.cat.text(s.Lang, "form.fix_errors"), Fields: map[string]string{"name": c.cat.errorText(s.Lang, err)}}
	case code == "audience_description_too_long":
		d.Err = formError{Message: c.cat.text(s.Lang, "form.fix_errors"), Fields: map[string]string{"description": c.cat.errorText(s.Lang, err)}}
	default:
		var self int64
		if a != nil {
			self = a.ID
		}
		d.CondErr = c.treeError(r, s, cond, self, err)
		d.Err = formError{Message: c.cat.text(s.Lang, "audiences.save_fix_conditions")}
	}
	return c.renderAudienceEditor(w, r, s, statusOf(errs.KindOf(err)), d)
}

// countReply is the answer to the builder's count request.
type countReply struct {
	Count *int64     `json:"count,omitempty"`
	Text  string     `json:"text,omitempty"` // the count as the page shows it
	Error *condError `json:"error,omitempty"`
}

// audienceCount counts the customers a tree selects, for the builder's live
// estimate: the number, or why the tree does not work and at which node.
func (c *Console) audienceCount(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	cond, err := audience.Parse([]byte(r.PostFormValue("conditions")))
	var n int64
	if err == nil {
		n, err = c.deps.Audiences.Count(r.Context(), s.Principal.TenantID, cond)
	}
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, countReply{Count: &n, Text: number(n).String()})
	case isUserError(err):
		writeJSON(w, http.StatusUnprocessableEntity, countReply{Error: c.treeError(r, s, cond, 0, err)})
	default:
		c.log.ErrorContext(r.Context(), "console: unable to count an audience", "tenant_id", s.Principal.TenantID, "err", err)
		writeJSON(w, http.StatusInternalServerError, countReply{Error: &condError{Message: c.cat.text(s.Lang, "error.internal")}})
	}
	return nil
}

// writeJSON answers a script of the console's own pages.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	noStore(w)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
