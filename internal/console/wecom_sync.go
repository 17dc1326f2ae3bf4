package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// wecomSyncPage is the data of WeCom → Sync: the run in progress with its
// progress bar, the last result, and the reconciliation schedule.
type wecomSyncPage struct {
	Configured      bool
	Current         *wecomRunView
	Last            *wecomRunView
	LastSuccess     *wecomRunView
	Resumable       bool
	NextReconcileAt time.Time
	CanManage       bool
	Err             string // why the last action was refused, translated
	Loc             *time.Location
}

// wecomRunView is a sync run as the page shows it.
type wecomRunView struct {
	wecom.SyncRun
	Exp wecomExplanation // why it failed
	Loc *time.Location
}

// Active reports whether the run is queued or running: the page polls it.
func (v wecomRunView) Active() bool {
	return v.Status == wecom.SyncQueued || v.Status == wecom.SyncRunning
}

// Calls is how many WeCom API calls the run made.
func (v wecomRunView) Calls() int {
	n := 0
	for _, c := range v.Counts.Calls {
		n += c
	}
	return n
}

func (c *Console) wecomRunViewOf(s *signedIn, r *wecom.SyncRun) *wecomRunView {
	if r == nil {
		return nil
	}
	v := &wecomRunView{SyncRun: *r, Loc: s.Workspace.Location()}
	if r.Status == wecom.SyncFailed {
		v.Exp = c.explainWeCom(s.Lang, r.ErrCode, r.Error, r.Fix)
	}
	return v
}

func (c *Console) wecomSyncData(r *http.Request, s *signedIn) (wecomSyncPage, error) {
	ctx := r.Context()
	d := wecomSyncPage{CanManage: s.Principal.Can(tenant.PermConnectorsManage), Loc: s.Workspace.Location()}
	_, err := c.deps.WeCom.Settings(ctx, s.Principal.TenantID)
	switch {
	case errors.Is(err, wecom.ErrNotConfigured):
	case err != nil:
		return d, fmt.Errorf("console: wecom sync: %w", err)
	default:
		d.Configured = true
	}
	rep, err := c.deps.WeCom.SyncStatus(ctx, s.Principal.TenantID)
	if err != nil {
		return d, fmt.Errorf("console: wecom sync: %w", err)
	}
	d.Current, d.Last, d.LastSuccess = c.wecomRunViewOf(s, rep.Current), c.wecomRunViewOf(s, rep.Last), c.wecomRunViewOf(s, rep.LastSuccess)
	d.Resumable, d.NextReconcileAt = rep.Resumable, rep.NextReconcileAt
	return d, nil
}

func (c *Console) wecomSyncPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.wecomSyncData(r, s)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "wecom_sync", c.pageView(w, r, s, "wecom.sync.title", d))
	return nil
}

// wecomSyncProgress is polled by the progress bar of a run in progress;
// once the run has ended it asks the browser to reload the page, which then
// shows the result.
func (c *Console) wecomSyncProgress(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	if !isHTMX(r) {
		http.Redirect(w, r, "/connectors/wecom/sync", http.StatusSeeOther)
		return nil
	}
	d, err := c.wecomSyncData(r, s)
	if err != nil {
		return err
	}
	run := d.Current
	if run == nil {
		// Ended: show it finished until the page reloads.
		w.Header().Set("HX-Refresh", "true")
		run = d.Last
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "wecom_sync", "wecom_sync_progress", run)
	return nil
}

// wecomSyncStart queues a full sync (or a reconciliation); the sync worker
// starts it within seconds and the page follows its progress.
func (c *Console) wecomSyncStart(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	kind := wecom.SyncKind(r.PostFormValue("kind"))
	if kind == "" {
		kind = wecom.SyncFull
	}
	run, err := c.deps.WeCom.StartSync(r.Context(), s.Principal.TenantID, kind)
	if err != nil {
		return c.wecomSyncRefused(w, r, s, err)
	}
	c.log.InfoContext(r.Context(), "console: wecom sync started", "tenant_id", s.Principal.TenantID, "run", run.ID, "kind", kind, "user_id", s.User.ID)
	c.redirectWithFlash(w, r, "/connectors/wecom/sync", "flash.wecom.sync_started")
	return nil
}

// wecomSyncResume queues the failed run again, to go on from where it
// stopped.
func (c *Console) wecomSyncResume(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	run, err := c.deps.WeCom.ResumeSync(r.Context(), s.Principal.TenantID)
	if err != nil {
		return c.wecomSyncRefused(w, r, s, err)
	}
	c.log.InfoContext(r.Context(), "console: wecom sync resumed", "tenant_id", s.Principal.TenantID, "run", run.ID, "user_id", s.User.ID)
	c.redirectWithFlash(w, r, "/connectors/wecom/sync", "flash.wecom.sync_resumed")
	return nil
}

// wecomSyncRefused shows the sync page with why a start or resume was
// refused (one is running already, WeCom is not connected).
func (c *Console) wecomSyncRefused(w http.ResponseWriter, r *http.Request, s *signedIn, err error) error {
	if !isUserError(err) {
		return err
	}
	d, lerr := c.wecomSyncData(r, s)
	if lerr != nil {
		return lerr
	}
	d.Err = c.cat.errorText(s.Lang, err)
	c.render(w, r, statusOf(errs.KindOf(err)), "wecom_sync", c.pageView(w, r, s, "wecom.sync.title", d))
	return nil
}

// wecomTagsPage is the data of WeCom → Corp tags: Siyu's tag groups and the
// WeCom corp tag group each is bound to, so that marks travel both ways.
type wecomTagsPage struct {
	Configured bool
	Groups     []wecomTagGroup
	Corp       []wecom.CorpTagGroup // WeCom's groups, read live
	CorpErr    *wecomExplanation    // why WeCom's groups could not be read
	CanManage  bool
	Err        string // why the last bind was refused, translated
	ErrGroup   int64  // the group it was for
}

// wecomTagGroup is one Siyu tag group with its binding.
type wecomTagGroup struct {
	tag.Group
	WeComName string // the bound WeCom group's name, when WeCom has it
}

// wecomCorpTagTimeout bounds the live read of WeCom's corp tags on the page.
const wecomCorpTagTimeout = 10 * time.Second

func (c *Console) wecomTagsData(r *http.Request, s *signedIn) (wecomTagsPage, error) {
	ctx := r.Context()
	tenantID := s.Principal.TenantID
	d := wecomTagsPage{CanManage: s.Principal.Can(tenant.PermConnectorsManage) && s.Principal.Can(tenant.PermTagsManage)}
	groups, err := c.deps.Tags.Groups(ctx, tenantID)
	if err != nil {
		return d, fmt.Errorf("console: wecom tags: %w", err)
	}
	cl, err := c.deps.WeCom.Client(ctx, tenantID)
	switch {
	case errors.Is(err, wecom.ErrNotConfigured):
	case err != nil:
		return d, fmt.Errorf("console: wecom tags: %w", err)
	default:
		d.Configured = true
		lctx, cancel := context.WithTimeout(ctx, wecomCorpTagTimeout)
		all, err := cl.GetCorpTagList(lctx, nil, nil)
		cancel()
		if err != nil {
			c.log.WarnContext(ctx, "console: unable to read WeCom corp tags", "tenant_id", tenantID, "err", err)
			exp := c.wecomErrorExplanation(s.Lang, err)
			d.CorpErr = &exp
		}
		for _, g := range all {
			if !g.Deleted {
				d.Corp = append(d.Corp, g)
			}
		}
	}
	for _, g := range groups {
		row := wecomTagGroup{Group: g}
		for _, cg := range d.Corp {
			if cg.GroupID == g.WeComGroupID {
				row.WeComName = cg.GroupName
			}
		}
		d.Groups = append(d.Groups, row)
	}
	return d, nil
}

// wecomErrorExplanation explains an error from a WeCom call: WeCom's code
// with its explanation, or that WeCom could not be reached.
func (c *Console) wecomErrorExplanation(lang string, err error) wecomExplanation {
	if code := wecom.ErrorCode(err); code != 0 {
		return c.explainWeCom(lang, code, wecom.Explain(code), "")
	}
	return wecomExplanation{Code: -1, Text: c.cat.text(lang, "wecom.unreachable"), Detail: err.Error()}
}

func (c *Console) wecomTagsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.wecomTagsData(r, s)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "wecom_tags", c.pageView(w, r, s, "wecom.tags.title", d))
	return nil
}

// wecomTagBind binds a Siyu tag group to a WeCom corp tag group: the one
// chosen, or the one of the same name, or a new one made from the Siyu
// group. A tags sync follows to bring WeCom's marks in.
func (c *Console) wecomTagBind(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := wecomPathID(r.PathValue("id"), "tag_group")
	if err != nil {
		return err
	}
	in := wecom.BindTagGroupInput{WeComGroupID: strings.TrimSpace(r.PostFormValue("wecom_group_id"))}
	b, err := c.deps.WeCom.BindTagGroup(r.Context(), s.Principal, id, in)
	if err != nil {
		if !isUserError(err) {
			return err
		}
		d, lerr := c.wecomTagsData(r, s)
		if lerr != nil {
			return lerr
		}
		d.Err, d.ErrGroup = c.wecomErrorText(s.Lang, err), id
		c.render(w, r, statusOf(errs.KindOf(err)), "wecom_tags", c.pageView(w, r, s, "wecom.tags.title", d))
		return nil
	}
	c.log.InfoContext(r.Context(), "console: wecom tag group bound", "tenant_id", s.Principal.TenantID, "group", id,
		"wecom_group", b.WeComGroupID, "sync_run", b.SyncRunID)
	c.redirectWithFlash(w, r, "/connectors/wecom/tags#group-"+strconv.FormatInt(id, 10), "flash.wecom.tag_bound")
	return nil
}

// wecomErrorText is a domain error in the user's language, with WeCom's
// explanation of a WeCom error code when the catalogue has one.
func (c *Console) wecomErrorText(lang string, err error) string {
	if code := wecom.ErrorCode(err); code != 0 {
		return c.wecomErrorExplanation(lang, err).Text
	}
	return c.cat.errorText(lang, err)
}

// wecomTagUnbind ends a binding: both sides keep their tags and marks.
func (c *Console) wecomTagUnbind(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id, err := wecomPathID(r.PathValue("id"), "tag_group")
	if err != nil {
		return err
	}
	if err := c.deps.WeCom.UnbindTagGroup(r.Context(), s.Principal, id); err != nil {
		return err
	}
	c.wecomRedirect(w, r, "/connectors/wecom/tags#group-"+strconv.FormatInt(id, 10), "flash.wecom.tag_unbound")
	return nil
}
