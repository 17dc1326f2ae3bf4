package moment_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/moment"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// fix is a workspace connected to a simulated corp: alice and bob serve
// customers, some tagged 兴趣/茶 in WeCom, and the Siyu group 兴趣 is bound to
// the corp's, so its tags can choose who sees a moment.
type fix struct {
	srv     *apptest.Server
	ws      apptest.Workspace
	sim     *wecomtest.Server
	svc     *moment.Service
	p       tenant.Principal
	ctx     context.Context
	tea     int64 // Siyu tag bound to 兴趣/茶
	unbound int64 // a Siyu tag bound to nothing
	alice   int64 // staff ids
	bob     int64
	cust    map[string]string // name → external_userid
}

func newFix(t *testing.T, engine db.Dialect) *fix {
	t.Helper()
	ctx := context.Background()
	srv := apptest.Start(t, engine)
	ws := srv.NewWorkspace(t, "moments")
	// The corp's clock is the wall clock, as Siyu's is: the worker compares them.
	sim := srv.NewWeComSim(t, ws, wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now}})
	f := &fix{srv: srv, ws: ws, sim: sim, svc: srv.App.Moments, ctx: ctx, cust: map[string]string{},
		p: tenant.Principal{TenantID: ws.ID, Kind: tenant.ActorUser, ID: ws.Owner.ID, Name: "Owner", Role: tenant.RoleOwner}}
	for _, u := range []string{"alice", "bob"} {
		if _, err := sim.PutStaff(wecomtest.Staff{UserID: u, Name: strings.ToUpper(u[:1]) + u[1:]}); err != nil {
			t.Fatal(err)
		}
	}
	g, err := sim.PutTagGroup(wecomtest.TagGroup{Name: "兴趣", Tags: []wecomtest.Tag{{Name: "茶"}, {Name: "咖啡"}}})
	if err != nil {
		t.Fatal(err)
	}
	teaID, coffeeID := g.Tags[0].ID, g.Tags[1].ID
	if g.Tags[0].Name != "茶" {
		teaID, coffeeID = coffeeID, teaID
	}
	for _, c := range []struct {
		name, staff, tag string
	}{{"c1", "alice", teaID}, {"c2", "alice", ""}, {"c3", "bob", teaID}, {"c4", "bob", coffeeID}} {
		fo := wecomtest.Follow{UserID: c.staff}
		if c.tag != "" {
			fo.TagIDs = []string{c.tag}
		}
		ct, err := sim.PutContact(wecomtest.Contact{Name: c.name}, fo)
		if err != nil {
			t.Fatal(err)
		}
		f.cust[c.name] = ct.ExternalUserID
	}
	srv.ConnectWeCom(t, ws, sim)
	tags := srv.App.Tags
	sg, err := tags.CreateGroup(ctx, f.p, tag.GroupInput{Name: "兴趣"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.App.WeCom.BindTagGroup(ctx, f.p, sg.ID, wecom.BindTagGroupInput{}); err != nil {
		t.Fatal(err)
	}
	other, err := tags.CreateGroup(ctx, f.p, tag.GroupInput{Name: "本地"})
	if err != nil {
		t.Fatal(err)
	}
	loose, err := tags.CreateTag(ctx, f.p, tag.TagInput{GroupID: other.ID, Name: "未绑定"})
	if err != nil {
		t.Fatal(err)
	}
	f.unbound = loose.ID
	all, err := tags.AllTags(ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range all {
		if x.Ref == "兴趣/茶" {
			f.tea = x.ID
		}
	}
	if f.tea == 0 {
		t.Fatalf("no bound tag 兴趣/茶 among %+v", all)
	}
	for _, u := range []struct {
		id  *int64
		uid string
	}{{&f.alice, "alice"}, {&f.bob, "bob"}} {
		m, err := srv.App.Staff.MemberByWeComUserID(ctx, ws.ID, u.uid)
		if err != nil {
			t.Fatal(err)
		}
		*u.id = m.ID
	}
	return f
}

// upload puts an image into WeCom for a moment.
func (f *fix) upload(t *testing.T) string {
	t.Helper()
	id, err := f.svc.UploadMedia(f.ctx, f.p, "image", "a.png", []byte("\x89PNG fake image"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// until refreshes a task until cond holds, for at most 10 seconds.
func (f *fix) until(t *testing.T, id int64, what string, cond func(moment.Task) bool) moment.Task {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		task, err := f.svc.Refresh(f.ctx, f.p, id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(task) {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("task never %s: %+v", what, task)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func status(s moment.Status) func(moment.Task) bool {
	return func(t moment.Task) bool { return t.Status == s }
}

func senders(t *testing.T, f *fix, id int64) map[string]moment.Sender {
	t.Helper()
	pg, err := f.svc.Senders(f.ctx, f.p, id, page.Request{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]moment.Sender{}
	for _, s := range pg.Items {
		out[s.UserID] = s
	}
	return out
}

func TestMomentPublishedByStaffWithResults(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			f := newFix(t, engine)
			img1, img2 := f.upload(t), f.upload(t)
			in := moment.TaskInput{Key: "spring-tea", Text: "春茶上新 🍵", StaffIDs: []int64{f.alice, f.bob}, TagIDs: []int64{f.tea},
				Attachments: []moment.MediaItem{{Type: "image", MediaID: img1}, {Type: "image", MediaID: img2}}}
			task, created, err := f.svc.Create(f.ctx, f.p, in)
			if err != nil || !created {
				t.Fatalf("create: %v %v", created, err)
			}
			// The same key again is the same task, not a second one.
			again, created, err := f.svc.Create(f.ctx, f.p, in)
			if err != nil || created || again.ID != task.ID {
				t.Fatalf("create again: %+v %v %v", again, created, err)
			}
			task = f.until(t, task.ID, "published", status(moment.StatusPublishing))
			if ids := f.sim.MomentIDs(); len(ids) != 1 || ids[0] != task.MomentID {
				t.Fatalf("WeCom has moments %v, the task %q", ids, task.MomentID)
			}
			if text, atts, _ := f.sim.MomentText(task.MomentID); text != in.Text || len(atts) != 2 {
				t.Fatalf("WeCom has %q with %d attachments", text, len(atts))
			}
			// Each sender's range: their customers holding 茶.
			if task.VisibleCount != 2 || task.ReachedCount != 0 || task.PublishedCount != 0 || task.SenderCount != 2 {
				t.Fatalf("before publishing: %+v", task)
			}
			if err := f.sim.StaffPublishes("alice", task.MomentID); err != nil {
				t.Fatal(err)
			}
			task = f.until(t, task.ID, "seen published by alice", func(x moment.Task) bool { return x.PublishedCount == 1 })
			if task.Status != moment.StatusPublishing || task.ReachedCount != 1 {
				t.Fatalf("after alice: %+v", task)
			}
			ss := senders(t, f, task.ID)
			if ss["alice"].Status != moment.SenderPublished || ss["alice"].PublishedAt.IsZero() || ss["alice"].ReachedCount != 1 ||
				ss["bob"].Status != moment.SenderPending || ss["bob"].VisibleCount != 1 || ss["alice"].Name != "Alice" {
				t.Fatalf("senders %+v", ss)
			}
			reached := true
			cs, err := f.svc.Viewers(f.ctx, f.p, task.ID, moment.ViewerFilter{Reached: &reached}, page.Request{})
			if err != nil {
				t.Fatal(err)
			}
			if len(cs.Items) != 1 || cs.Items[0].ExternalUserID != f.cust["c1"] || cs.Items[0].CustomerID == 0 {
				t.Fatalf("reached customers %+v", cs.Items)
			}
			if err := f.sim.StaffPublishes("bob", task.MomentID); err != nil {
				t.Fatal(err)
			}
			task = f.until(t, task.ID, "finished", status(moment.StatusFinished))
			if task.PublishedCount != 2 || task.ReachedCount != 2 || task.FinishedAt.IsZero() {
				t.Fatalf("finished: %+v", task)
			}
			// Customers page by sender and customer.
			p1, err := f.svc.Viewers(f.ctx, f.p, task.ID, moment.ViewerFilter{}, page.Request{Limit: 1})
			if err != nil || len(p1.Items) != 1 || p1.Next == "" {
				t.Fatalf("page 1: %+v %v", p1, err)
			}
			p2, err := f.svc.Viewers(f.ctx, f.p, task.ID, moment.ViewerFilter{}, page.Request{Limit: 1, Cursor: p1.Next})
			if err != nil || len(p2.Items) != 1 || p2.Next != "" || p2.Items[0].UserID != "bob" {
				t.Fatalf("page 2: %+v %v", p2, err)
			}
			list, err := f.svc.List(f.ctx, f.p, moment.Filter{}, page.Request{})
			if err != nil || len(list.Items) != 1 {
				t.Fatalf("list: %+v %v", list, err)
			}
		})
	}
}

func TestMomentRefusedBeforeWeCom(t *testing.T) {
	f := newFix(t, db.SQLite)
	img := f.upload(t)
	images := func(n int) []moment.MediaItem {
		var out []moment.MediaItem
		for range n {
			out = append(out, moment.MediaItem{Type: "image", MediaID: img})
		}
		return out
	}
	ok := func(in moment.TaskInput) moment.TaskInput {
		if in.Text == "" && in.Attachments == nil {
			in.Text = "hello"
		}
		if in.StaffIDs == nil && in.StaffUserIDs == nil {
			in.StaffIDs = []int64{f.alice}
		}
		return in
	}
	for _, c := range []struct {
		name string
		in   moment.TaskInput
		code string
	}{
		{"empty", moment.TaskInput{StaffIDs: []int64{f.alice}, Attachments: []moment.MediaItem{}}, "empty"},
		{"text too long", moment.TaskInput{Text: strings.Repeat("茶", 2001)}, "too_long"},
		{"ten images", moment.TaskInput{Attachments: images(10)}, "too_many_images"},
		{"image and link", moment.TaskInput{Attachments: append(images(1), moment.MediaItem{Type: "link", URL: "https://example.com"})}, "mixed"},
		{"two videos", moment.TaskInput{Attachments: []moment.MediaItem{{Type: "video", MediaID: "v1"}, {Type: "video", MediaID: "v2"}}}, "too_many_videos"},
		{"link without URL", moment.TaskInput{Attachments: []moment.MediaItem{{Type: "link", Title: "x"}}}, "url_required"},
		{"unbound tag", moment.TaskInput{TagIDs: []int64{f.unbound}}, "tag_not_bound"},
		{"unknown tag", moment.TaskInput{TagIDs: []int64{999999}}, "unknown_tag"},
		{"unknown staff", moment.TaskInput{StaffIDs: []int64{999999}}, "unknown_staff"},
		{"unknown userid", moment.TaskInput{StaffUserIDs: []string{"nobody"}}, "unknown_staff"},
		{"no senders", moment.TaskInput{Text: "hello", StaffIDs: []int64{}, StaffUserIDs: []string{}}, "senders_required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			if c.name != "empty" && c.name != "no senders" {
				in = ok(in)
			}
			_, _, err := f.svc.Create(f.ctx, f.p, in)
			if errs.CodeOf(err) != c.code || errs.KindOf(err) != errs.Invalid {
				t.Fatalf("got %v, want code %s", err, c.code)
			}
		})
	}
	list, err := f.svc.List(f.ctx, f.p, moment.Filter{}, page.Request{})
	if err != nil || len(list.Items) != 0 {
		t.Fatalf("refused tasks were stored: %+v %v", list.Items, err)
	}
	if n := f.sim.CallCount("externalcontact/add_moment_task"); n != 0 {
		t.Fatalf("add_moment_task called %d times", n)
	}
	// A reader may look but not publish.
	viewer := f.p
	viewer.Role = tenant.RoleAnalyst
	if _, _, err := f.svc.Create(f.ctx, viewer, ok(moment.TaskInput{})); !errs.Is(err, errs.Forbidden) {
		t.Fatalf("viewer create: %v", err)
	}
}

func TestMomentInvalidSenderAndCancel(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) { invalidSenderAndCancel(t, newFix(t, engine)) })
	}
}

func invalidSenderAndCancel(t *testing.T, f *fix) {
	// A staff member Siyu knows with a userid WeCom does not: WeCom refuses
	// the sender, the others still publish.
	ghost, err := f.srv.App.Staff.CreateMember(f.ctx, f.ws.ID, staff.Member{Name: "Ghost", WeComUserID: "ghost"})
	if err != nil {
		t.Fatal(err)
	}
	task, _, err := f.svc.Create(f.ctx, f.p, moment.TaskInput{Key: "k", Text: "周末活动", StaffIDs: []int64{f.alice, f.bob, ghost.ID},
		Attachments: []moment.MediaItem{{Type: "link", Title: "活动", URL: "https://example.com/e"}}})
	if err != nil {
		t.Fatal(err)
	}
	task = f.until(t, task.ID, "published", status(moment.StatusPublishing))
	if !slices.Equal(task.InvalidSenders, []string{"ghost"}) || task.VisibleCount != 4 {
		t.Fatalf("task %+v", task)
	}
	if err := f.sim.StaffPublishes("alice", task.MomentID); err != nil {
		t.Fatal(err)
	}
	f.until(t, task.ID, "seen published", func(x moment.Task) bool { return x.PublishedCount == 1 })
	task, err = f.svc.Cancel(f.ctx, f.p, task.ID)
	if err != nil || task.Status != moment.StatusCancelled {
		t.Fatalf("cancel: %+v %v", task, err)
	}
	ss := senders(t, f, task.ID)
	if ss["alice"].Status != moment.SenderPublished || ss["bob"].Status != moment.SenderCancelled || ss["ghost"].Status != moment.SenderInvalid {
		t.Fatalf("senders %+v", ss)
	}
	if err := f.sim.StaffPublishes("bob", task.MomentID); err == nil {
		t.Fatal("bob published a cancelled moment")
	}
	if _, err := f.svc.Cancel(f.ctx, f.p, task.ID); errs.CodeOf(err) != "moment_final" {
		t.Fatalf("cancel twice: %v", err)
	}
}

func TestMomentUnansweredSendIsNotRepeated(t *testing.T) {
	f := newFix(t, db.SQLite)
	// WeCom creates the task but the answer is lost: Siyu finds it in
	// WeCom's list instead of creating a second one.
	f.sim.FailNextHTTP("externalcontact/add_moment_task", -1, 1)
	task, _, err := f.svc.Create(f.ctx, f.p, moment.TaskInput{Key: "lost", Text: "lost answer", StaffUserIDs: []string{"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	task = f.until(t, task.ID, "published", status(moment.StatusPublishing))
	if ids := f.sim.MomentIDs(); len(ids) != 1 || ids[0] != task.MomentID {
		t.Fatalf("moments %v, task %q", ids, task.MomentID)
	}
	if n := f.sim.CallCount("externalcontact/add_moment_task"); n != 1 {
		t.Fatalf("add_moment_task called %d times", n)
	}

	// WeCom never got it: after ten minutes without it in the list, it is
	// sent again, once.
	now := time.Now()
	clock := func() time.Time { return now }
	svc := moment.NewService(f.srv.App.DB, func(ctx context.Context, id int64) (moment.API, error) { return f.srv.App.WeCom.Client(ctx, id) },
		f.srv.App.Staff, f.srv.App.Tags, f.srv.App.Tenant, moment.Options{Now: clock})
	f.sim.FailNextHTTP("externalcontact/add_moment_task", 502, 1)
	t2, _, err := svc.Create(f.ctx, f.p, moment.TaskInput{Key: "never", Text: "never arrived", StaffUserIDs: []string{"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	if t2, err = svc.Refresh(f.ctx, f.p, t2.ID); err != nil || t2.Status != moment.StatusSubmitting {
		t.Fatalf("after the lost send: %+v %v", t2, err)
	}
	now = now.Add(2 * time.Minute)
	if t2, err = svc.Refresh(f.ctx, f.p, t2.ID); err != nil || t2.Status != moment.StatusSubmitting {
		t.Fatalf("still unknown: %+v %v", t2, err)
	}
	now = now.Add(11 * time.Minute)
	for range 6 {
		if t2, err = svc.Refresh(f.ctx, f.p, t2.ID); err != nil {
			t.Fatal(err)
		}
		if t2.Status == moment.StatusPublishing {
			break
		}
	}
	if t2.Status != moment.StatusPublishing || len(f.sim.MomentIDs()) != 2 {
		t.Fatalf("resent: %+v, moments %v", t2, f.sim.MomentIDs())
	}
}

func TestMomentFinishesAtItsDeadline(t *testing.T) {
	f := newFix(t, db.SQLite)
	now := time.Now()
	svc := moment.NewService(f.srv.App.DB, func(ctx context.Context, id int64) (moment.API, error) { return f.srv.App.WeCom.Client(ctx, id) },
		f.srv.App.Staff, f.srv.App.Tags, f.srv.App.Tenant, moment.Options{Now: func() time.Time { return now }})
	task, _, err := svc.Create(f.ctx, f.p, moment.TaskInput{Key: "short", Text: "限时", StaffIDs: []int64{f.alice, f.bob}, ResultHours: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !task.DeadlineAt.Equal(now.Add(2 * time.Hour).Truncate(time.Millisecond)) {
		t.Fatalf("deadline %v", task.DeadlineAt)
	}
	for range 6 {
		if task, err = svc.Refresh(f.ctx, f.p, task.ID); err != nil {
			t.Fatal(err)
		}
		if task.Status == moment.StatusPublishing {
			break
		}
	}
	if err := f.sim.StaffPublishes("bob", task.MomentID); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Minute)
	if task, err = svc.Refresh(f.ctx, f.p, task.ID); err != nil || task.Status != moment.StatusPublishing || task.PublishedCount != 1 {
		t.Fatalf("within the window: %+v %v", task, err)
	}
	// Alice never publishes: past the deadline the task is final and she
	// stays unpublished.
	now = now.Add(2 * time.Hour)
	if task, err = svc.Refresh(f.ctx, f.p, task.ID); err != nil || task.Status != moment.StatusFinished {
		t.Fatalf("past the deadline: %+v %v", task, err)
	}
	ss := senders(t, f, task.ID)
	if ss["alice"].Status != moment.SenderPending || ss["bob"].Status != moment.SenderPublished || task.ReachedCount != 2 {
		t.Fatalf("senders %+v, task %+v", ss, task)
	}
}
