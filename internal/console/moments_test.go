package console_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/moment"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

var momentKeyRE = regexp.MustCompile(`name="key" value="([^"]+)"`)

// postMultipart sends a form with files as the composer does.
func (b *browser) postMultipart(path string, fields map[string][]string, files map[string][]string) response {
	b.h.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range fields {
		for _, v := range vs {
			_ = mw.WriteField(k, v)
		}
	}
	for field, names := range files {
		for _, name := range names {
			fw, _ := mw.CreateFormFile(field, name)
			_, _ = fw.Write([]byte("\x89PNG fake image " + name))
		}
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.h.srv.URL+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

// momentsHarness is a workspace connected to a corp where alice serves two
// customers tagged 兴趣/茶, with that group bound and a local tag unbound.
func momentsHarness(t *testing.T) (*wecomHarness, int64, int64, int64) {
	t.Helper()
	wh := newWeComHarness(t, db.SQLite)
	ctx := context.Background()
	if _, err := wh.sim.PutStaff(wecomtest.Staff{UserID: "alice", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	g, err := wh.sim.PutTagGroup(wecomtest.TagGroup{Name: "兴趣", Tags: []wecomtest.Tag{{Name: "茶"}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := wh.sim.PutContact(wecomtest.Contact{}, wecomtest.Follow{UserID: "alice", TagIDs: []string{g.Tags[0].ID}}); err != nil {
			t.Fatal(err)
		}
	}
	b := wh.browser()
	token := b.signIn(wecomAdminEmail)
	wh.connect(t, b, token)
	if _, err := wh.app.WeCom.ScheduleSyncs(ctx); err != nil {
		t.Fatal(err)
	}
	wh.syncDone(t)
	p := tenant.Principal{TenantID: wh.ws.ID, Kind: tenant.ActorSystem, Name: "test", Role: tenant.RoleOwner}
	sg, err := wh.app.Tags.CreateGroup(ctx, p, tag.GroupInput{Name: "兴趣"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wh.app.WeCom.BindTagGroup(ctx, p, sg.ID, wecom.BindTagGroupInput{}); err != nil {
		t.Fatal(err)
	}
	lg, err := wh.app.Tags.CreateGroup(ctx, p, tag.GroupInput{Name: "门店"})
	if err != nil {
		t.Fatal(err)
	}
	loose, err := wh.app.Tags.CreateTag(ctx, p, tag.TagInput{GroupID: lg.ID, Name: "静安店"})
	if err != nil {
		t.Fatal(err)
	}
	var tea int64
	all, _ := wh.app.Tags.AllTags(ctx, wh.ws.ID)
	for _, x := range all {
		if x.Ref == "兴趣/茶" {
			tea = x.ID
		}
	}
	alice, err := wh.app.Staff.MemberByWeComUserID(ctx, wh.ws.ID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return wh, alice.ID, tea, loose.ID
}

// The composer refuses what WeCom would refuse, in the user's language and
// before uploading anything; a valid moment goes to WeCom with its image,
// and its page follows each staff member's result.
func TestMomentsComposeAndResults(t *testing.T) {
	wh, alice, tea, loose := momentsHarness(t)
	b := wh.browser()
	token := b.signIn(ownerEmail)

	list := b.get("/moments")
	wantStatus(t, list, 200)
	wantBody(t, list, "还没有朋友圈任务", `href="/moments/new"`)
	compose := b.get("/moments/new")
	wantStatus(t, compose, 200)
	wantBody(t, compose, "Alice", fmt.Sprintf(`name="tag" value="%d"`, tea), fmt.Sprintf(`name="tag" value="%d" disabled`, loose), "（未绑定企业微信）")
	key := momentKeyRE.FindStringSubmatch(compose.body)
	if key == nil {
		t.Fatal("no idempotency key in the composer")
	}
	base := map[string][]string{"csrf": {token}, "key": {key[1]}, "staff": {fmt.Sprint(alice)}, "kind": {"image"}, "hours": {"24"}}
	with := func(extra map[string][]string) map[string][]string {
		out := map[string][]string{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}

	res := b.postMultipart("/moments", with(map[string][]string{"text": {strings.Repeat("茶", 2001)}}), map[string][]string{"images": {"a.png"}})
	wantStatus(t, res, 422)
	wantBody(t, res, "朋友圈文字最多 2000 字。")
	res = b.postMultipart("/moments", with(map[string][]string{"text": {"新茶"}, "tag": {fmt.Sprint(loose)}}), map[string][]string{"images": {"a.png"}})
	wantStatus(t, res, 422)
	wantBody(t, res, "未绑定企业微信企业标签")
	images := make([]string, 10)
	for i := range images {
		images[i] = fmt.Sprintf("%d.png", i)
	}
	res = b.postMultipart("/moments", with(map[string][]string{"text": {"新茶"}}), map[string][]string{"images": images})
	wantStatus(t, res, 422)
	wantBody(t, res, "朋友圈最多 9 张图片。")
	if n := wh.sim.CallCount("media/upload_attachment"); n != 0 {
		t.Fatalf("refused moments uploaded %d files", n)
	}

	res = b.postMultipart("/moments", with(map[string][]string{"text": {"春茶上新"}, "tag": {fmt.Sprint(tea)}}), map[string][]string{"images": {"a.png", "b.png"}})
	wecomWantRedirect(t, res, "/moments/")
	// A second submit of the same form is the same task.
	again := b.postMultipart("/moments", with(map[string][]string{"text": {"春茶上新"}, "tag": {fmt.Sprint(tea)}}), map[string][]string{"images": {"a.png", "b.png"}})
	if again.Header.Get("Location") != res.Header.Get("Location") {
		t.Fatalf("two tasks for one form: %s %s", res.Header.Get("Location"), again.Header.Get("Location"))
	}
	path := res.Header.Get("Location")
	var id int64
	fmt.Sscanf(path, "/moments/%d", &id)
	p := tenant.Principal{TenantID: wh.ws.ID, Kind: tenant.ActorSystem, Name: "test", Role: tenant.RoleOwner}
	task := waitMoment(t, wh, p, id, func(x moment.Task) bool { return x.Status == moment.StatusPublishing })
	if text, atts, _ := wh.sim.MomentText(task.MomentID); text != "春茶上新" || len(atts) != 2 {
		t.Fatalf("WeCom has %q with %d attachments", text, len(atts))
	}
	page1 := b.get(path)
	wantStatus(t, page1, 200)
	wantBody(t, page1, "发表中", "待发表", "兴趣/茶", `id="moment-cancel"`)

	if err := wh.sim.StaffPublishes("alice", task.MomentID); err != nil {
		t.Fatal(err)
	}
	wecomWantRedirect(t, b.post(path+"/refresh", map[string][]string{"csrf": {token}}), path)
	task = waitMoment(t, wh, p, id, func(x moment.Task) bool { return x.Status == moment.StatusFinished })
	done := b.get(path)
	wantBody(t, done, "已结束", "已发表", `id="stat-reached">2<`)
	wantNoBody(t, done, `id="moment-cancel"`)
	viewers := b.get(path + "?reached=true")
	wantBody(t, viewers, `href="/customers/`)
	res = b.post(path+"/cancel", map[string][]string{"csrf": {token}})
	wantStatus(t, res, 409)
	wantBody(t, res, "任务已结束，无法取消。")

	// An analyst reads results but cannot compose.
	ab := wh.browser()
	ab.signIn(analystEmail)
	al := ab.get("/moments")
	wantStatus(t, al, 200)
	wantBody(t, al, "春茶上新")
	wantNoBody(t, al, `href="/moments/new"`)
	wantStatus(t, ab.get("/moments/new"), 403)
}

func waitMoment(t *testing.T, wh *wecomHarness, p tenant.Principal, id int64, cond func(moment.Task) bool) moment.Task {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		task, err := wh.app.Moments.Refresh(context.Background(), p, id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(task) {
			return task
		}
		if time.Now().After(deadline) {
			pg, _ := wh.app.Moments.Senders(context.Background(), p, id, page.Request{})
			t.Fatalf("task %+v, senders %+v", task, pg.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
