package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// tagHarness is the whole app (services, workers, the audience index the
// rules read) with the console served by httptest, a workspace and a user
// of each role the tag pages tell apart.
type tagHarness struct {
	*harness
	app *app.App
}

func newTagHarness(t *testing.T, engine db.Dialect) *tagHarness {
	t.Helper()
	srv := apptest.Start(t, engine)
	hs := httptest.NewServer(srv.App.Handler())
	t.Cleanup(hs.Close)
	ctx := context.Background()
	ws, err := srv.App.Tenant.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "test-brand", Name: workspaceName})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []tenant.NewUser{
		{Email: ownerEmail, Name: "Owner", Password: testPassword, Role: tenant.RoleOwner},
		{Email: analystEmail, Name: "Analyst", Password: testPassword, Role: tenant.RoleAnalyst},
		{Email: operatorEmail, Name: "运营小王", Password: testPassword, Role: tenant.RoleOperator},
		{Email: staffEmail, Name: "导购小李", Password: testPassword, Role: tenant.RoleStaff},
	} {
		if _, err := srv.App.Tenant.CreateUser(ctx, ws.ID, u); err != nil {
			t.Fatal(err)
		}
	}
	return &tagHarness{harness: &harness{t: t, srv: hs, ts: srv.App.Tenant, d: srv.App.DB, ws: ws}, app: srv.App}
}

// eachTagEngine runs fn on a fresh app per database engine.
func eachTagEngine(t *testing.T, fn func(t *testing.T, th *tagHarness)) {
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) { fn(t, newTagHarness(t, engine)) })
	}
}

func (th *tagHarness) customer(t *testing.T, name, phone string) int64 {
	t.Helper()
	c, err := th.app.Customers.Create(context.Background(), th.ws.ID, customer.NewCustomer{Name: name, Phone: phone})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func (th *tagHarness) group(t *testing.T, name string) tag.Group {
	t.Helper()
	g, err := th.app.Tags.CreateGroup(context.Background(), tenant.System(th.ws.ID), tag.GroupInput{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (th *tagHarness) tag(t *testing.T, groupID int64, name string) tag.Tag {
	t.Helper()
	tg, err := th.app.Tags.CreateTag(context.Background(), tenant.System(th.ws.ID), tag.TagInput{GroupID: groupID, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func (th *tagHarness) apply(t *testing.T, customerID int64, tagIDs ...int64) {
	t.Helper()
	if _, err := th.app.Tags.Apply(context.Background(), th.ws.ID, customerID, tagIDs, tag.ByPrincipal(tenant.System(th.ws.ID))); err != nil {
		t.Fatal(err)
	}
}

// synced brings the audience index rules read up to date with the
// database: the app may build a new workspace's index while the test is
// seeding it, and changes committed during a build reach the index at its
// next follow.
func (th *tagHarness) synced(t *testing.T) {
	t.Helper()
	if err := th.app.Audiences.Sync(context.Background(), th.ws.ID); err != nil {
		t.Fatal(err)
	}
}

func (th *tagHarness) tagsOf(t *testing.T, customerID int64) []string {
	t.Helper()
	as, err := th.app.Tags.TagsOf(context.Background(), th.ws.ID, customerID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.Ref+"@"+string(a.Source))
	}
	return out
}

func wantRedirect(t *testing.T, res response, prefix string) {
	t.Helper()
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, prefix) {
		t.Fatalf("%s %s: redirected to %q, want %s…", res.Request.Method, res.Request.URL.Path, loc, prefix)
	}
}

var hxHeaders = []string{"HX-Request", "true"}

// Groups and tags are created, renamed, recoloured, reordered and deleted
// from the page, and the domain's refusals are shown beside the form that
// caused them.
func TestTagsPageManagesGroupsAndTags(t *testing.T) {
	eachTagEngine(t, func(t *testing.T, th *tagHarness) {
		ctx := context.Background()
		b := th.browser()
		token := b.signIn(ownerEmail)
		res := b.get("/tags")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "还没有标签组", `action="/tags/groups#new-group"`, `href="/tags/rules"`, "自动打标")

		res = b.post("/tags/groups", url.Values{"csrf": {token}, "name": {"价值"}, "dimension": {"value"}, "description": {"消费能力"}})
		wantRedirect(t, res, "/tags#group-")
		res = b.get("/tags")
		wantBody(t, res, "标签组已创建", "价值", "消费能力")
		groups, err := th.app.Tags.Groups(ctx, th.ws.ID)
		if err != nil || len(groups) != 1 || groups[0].Dimension != tag.DimValue {
			t.Fatalf("groups %+v, %v", groups, err)
		}
		value := groups[0]

		// A second group of the same name: refused beside the name, as typed.
		res = b.post("/tags/groups", url.Values{"csrf": {token}, "name": {" 价值 "}, "dimension": {"product"}})
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, `<p class="field-error" id="ng-name-err">已有同名的标签组。</p>`, `value=" 价值 "`)
		res = b.post("/tags/groups", url.Values{"csrf": {token}, "name": {"a/b"}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "名称须为 1–30 个字符，且不能包含“/”。")

		// Tags: added with a colour; the same name again in the group is a
		// conflict shown on that group's add form, in another group it is fine.
		newTag := func(g int64, name, color string) response {
			return b.post(fmt.Sprintf("/tags/groups/%d/tags", g), url.Values{"csrf": {token}, "name": {name}, "color": {color}})
		}
		wantRedirect(t, newTag(value.ID, "高价值", "#ff7a45"), "/tags#tag-")
		wantRedirect(t, newTag(value.ID, "沉睡", ""), "/tags#tag-")
		res = newTag(value.ID, "高价值", "#000000")
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, fmt.Sprintf(`<p class="field-error" id="n%d-name-err">这个标签组里已有同名标签。</p>`, value.ID))
		res = newTag(value.ID, "坏颜色", "red")
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "颜色须为 #RRGGBB 格式")
		product := th.group(t, "产品偏好")
		wantRedirect(t, newTag(product.ID, "高价值", ""), "/tags#tag-")

		tags, err := th.app.Tags.AllTags(ctx, th.ws.ID)
		if err != nil || len(tags) != 3 {
			t.Fatalf("tags %+v, %v", tags, err)
		}
		high, sleepy := tags[0], tags[1]
		if high.Name != "高价值" || high.Color != "#FF7A45" || sleepy.Color != tag.DefaultColor {
			t.Fatalf("tags %+v", tags)
		}
		res = b.get("/tags")
		wantBody(t, res, `fill="#FF7A45"`, fmt.Sprintf(`href="/tags/%d"`, high.ID), "2 个标签组，共 3 个标签")

		// Rename and recolour a tag; renaming it onto its neighbour is
		// refused with the form left open.
		res = b.post(fmt.Sprintf("/tags/%d/edit", high.ID), url.Values{"csrf": {token}, "name": {"高价值客户"}, "color": {"#1677ff"},
			"description": {"近一年消费 ≥ 5000"}, "group_id": {strconv.FormatInt(value.ID, 10)}})
		wantRedirect(t, res, fmt.Sprintf("/tags#tag-%d", high.ID))
		if got, _ := th.app.Tags.Tag(ctx, th.ws.ID, high.ID); got.Name != "高价值客户" || got.Color != "#1677FF" {
			t.Fatalf("after edit: %+v", got)
		}
		res = b.post(fmt.Sprintf("/tags/%d/edit", sleepy.ID), url.Values{"csrf": {token}, "name": {"高价值客户"}, "color": {"#8c8c8c"},
			"group_id": {strconv.FormatInt(value.ID, 10)}})
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, fmt.Sprintf(`class="tag-edit is-open" id="edit-tag-%d"`, sleepy.ID), "这个标签组里已有同名标签。")
		res = b.post(fmt.Sprintf("/tags/groups/%d/edit", value.ID), url.Values{"csrf": {token}, "name": {"产品偏好"}, "dimension": {"value"}})
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, fmt.Sprintf(`class="tag-edit is-open" id="edit-group-%d"`, value.ID), "已有同名的标签组。")
		wantRedirect(t, b.post(fmt.Sprintf("/tags/groups/%d/edit", value.ID), url.Values{"csrf": {token}, "name": {"客户价值"}, "dimension": {"value"}}),
			"/tags#group-")

		// Reorder: the second group moves up, the first tag moves down.
		wantRedirect(t, b.post(fmt.Sprintf("/tags/groups/%d/move", product.ID), url.Values{"csrf": {token}, "dir": {"up"}}), "/tags#group-")
		if gs, _ := th.app.Tags.Groups(ctx, th.ws.ID); gs[0].ID != product.ID || gs[1].ID != value.ID {
			t.Fatalf("after moving up: %+v", gs)
		}
		wantRedirect(t, b.post(fmt.Sprintf("/tags/%d/move", high.ID), url.Values{"csrf": {token}, "dir": {"down"}}), "/tags#tag-")
		pg, _ := th.app.Tags.Tags(ctx, th.ws.ID, tag.TagQuery{GroupID: value.ID}, pageAll)
		if len(pg.Items) != 2 || pg.Items[0].ID != sleepy.ID || pg.Items[1].ID != high.ID {
			t.Fatalf("after moving down: %+v", pg.Items)
		}

		// Deleting a tag customers hold asks first, then takes it from them.
		cid := th.customer(t, "王芳", "13800138000")
		th.apply(t, cid, high.ID)
		res = b.post(fmt.Sprintf("/tags/%d/delete", high.ID), url.Values{"csrf": {token}})
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, "有 1 位客户带有标签“客户价值/高价值客户”", fmt.Sprintf(`id="confirm-delete-tag-%d"`, high.ID))
		if got := th.tagsOf(t, cid); len(got) != 1 {
			t.Fatalf("asking removed the tag: %v", got)
		}
		wantRedirect(t, b.post(fmt.Sprintf("/tags/%d/delete", high.ID), url.Values{"csrf": {token}, "confirm": {"1"}}), "/tags")
		if got := th.tagsOf(t, cid); len(got) != 0 {
			t.Fatalf("the deleted tag stays on the customer: %v", got)
		}

		// Deleting a group with tags needs force, offered beside the group.
		res = b.post(fmt.Sprintf("/tags/groups/%d/delete", value.ID), url.Values{"csrf": {token}})
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, "这个标签组里还有标签", fmt.Sprintf(`id="force-delete-group-%d"`, value.ID), "删除标签组及其 1 个标签")
		wantRedirect(t, b.post(fmt.Sprintf("/tags/groups/%d/delete", value.ID), url.Values{"csrf": {token}, "force": {"1"}}), "/tags")
		if gs, _ := th.app.Tags.Groups(ctx, th.ws.ID); len(gs) != 1 || gs[0].ID != product.ID {
			t.Fatalf("after force delete: %+v", gs)
		}
		wantBody(t, b.get("/tags"), "标签组已删除。")
	})
}

// getWith is get with request headers (name, value, …).
func (b *browser) getWith(path string, header ...string) response {
	b.h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.h.srv.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

func condTag(ref string) *audience.Condition { return &audience.Condition{Tag: ref} }

// Reading needs tags.read, tagging a customer tags.write, defining tags and
// rules tags.manage: an analyst reads only, staff tag customers only.
func TestTagPagesFollowPermissions(t *testing.T) {
	eachTagEngine(t, func(t *testing.T, th *tagHarness) {
		g := th.group(t, "价值")
		high := th.tag(t, g.ID, "高价值")
		cid := th.customer(t, "王芳", "13800138000")
		th.apply(t, cid, high.ID)

		a := th.browser()
		at := a.signIn(analystEmail)
		res := a.get("/tags")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "高价值", `href="/tags/rules"`)
		wantNoBody(t, res, `action="/tags/groups#new-group"`, "/delete")
		wantStatus(t, a.post("/tags/groups", url.Values{"csrf": {at}, "name": {"x"}}), http.StatusForbidden)
		wantStatus(t, a.post(fmt.Sprintf("/tags/%d/delete", high.ID), url.Values{"csrf": {at}}), http.StatusForbidden)
		wantStatus(t, a.post(fmt.Sprintf("/customers/%d/tags", cid), url.Values{"csrf": {at}, "tag": {strconv.FormatInt(high.ID, 10)}}), http.StatusForbidden)
		wantStatus(t, a.get("/tags/rules"), http.StatusOK)
		wantStatus(t, a.get("/tags/rules/new"), http.StatusForbidden)
		wantStatus(t, a.post("/tags/rules", url.Values{"csrf": {at}, "name": {"x"}}), http.StatusForbidden)
		wantStatus(t, a.post("/tags/rules/try", url.Values{"csrf": {at}, "customer": {"1"}}), http.StatusForbidden)
		res = a.get(fmt.Sprintf("/customers/%d", cid))
		wantBody(t, res, `id="customer-tags"`, "高价值")
		wantNoBody(t, res, `id="customer-tag-add"`, "/tags/remove")

		s := th.browser()
		st := s.signIn(staffEmail)
		wantStatus(t, s.post("/tags/groups", url.Values{"csrf": {st}, "name": {"x"}}), http.StatusForbidden)
		wantStatus(t, s.post(fmt.Sprintf("/tags/groups/%d/tags", g.ID), url.Values{"csrf": {st}, "name": {"x"}}), http.StatusForbidden)
		res = s.get(fmt.Sprintf("/customers/%d", cid))
		wantBody(t, res, `id="customer-tags"`, "/tags/remove")
		wantRedirect(t, s.post(fmt.Sprintf("/customers/%d/tags/remove", cid), url.Values{"csrf": {st}, "tag": {strconv.FormatInt(high.ID, 10)}}),
			fmt.Sprintf("/customers/%d", cid))
		if got := th.tagsOf(t, cid); len(got) != 0 {
			t.Fatalf("staff could not untag: %v", got)
		}
		nav := s.get("/tags")
		wantBody(t, nav, `href="/tags/rules"`)
		wantNoBody(t, nav, `id="new-group-submit"`)

		// The operator manages tags.
		o := th.browser()
		ot := o.signIn(operatorEmail)
		wantRedirect(t, o.post("/tags/groups", url.Values{"csrf": {ot}, "name": {"渠道来源"}, "dimension": {"channel"}}), "/tags#group-")
	})
}

// A customer is tagged and untagged from their profile, with htmx swapping
// the card; the change is recorded as manual, by the user.
func TestTagCustomerFromProfile(t *testing.T) {
	eachTagEngine(t, func(t *testing.T, th *tagHarness) {
		g := th.group(t, "价值")
		high := th.tag(t, g.ID, "高价值")
		cid := th.customer(t, "王芳", "13800138000")
		b := th.browser()
		token := b.signIn(operatorEmail)

		res := b.get(fmt.Sprintf("/customers/%d", cid))
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `id="customer-tags"`, "还没有标签。", fmt.Sprintf(`<option value="%d">高价值</option>`, high.ID), `<optgroup label="价值">`)

		add := url.Values{"csrf": {token}, "tag": {strconv.FormatInt(high.ID, 10)}}
		res = b.post(fmt.Sprintf("/customers/%d/tags", cid), add, hxHeaders...)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, fmt.Sprintf(`id="customer-tag-%d"`, high.ID), "已保存", "移除标签 价值/高价值")
		wantNoBody(t, res, "<html", fmt.Sprintf(`<option value="%d">`, high.ID))
		if got := th.tagsOf(t, cid); len(got) != 1 || got[0] != "价值/高价值@manual" {
			t.Fatalf("tags after adding: %v", got)
		}
		as, _ := th.app.Tags.TagsOf(context.Background(), th.ws.ID, cid)
		if as[0].AppliedBy != "运营小王" {
			t.Fatalf("applied by %q", as[0].AppliedBy)
		}
		// The timeline says so.
		wantBody(t, b.get(fmt.Sprintf("/customers/%d", cid)), "价值/高价值", "手动")

		// No tag chosen: the card says why.
		res = b.post(fmt.Sprintf("/customers/%d/tags", cid), url.Values{"csrf": {token}}, hxHeaders...)
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "请选择一个标签。")

		res = b.post(fmt.Sprintf("/customers/%d/tags/remove", cid), add, hxHeaders...)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "还没有标签。")
		if got := th.tagsOf(t, cid); len(got) != 0 {
			t.Fatalf("tags after removing: %v", got)
		}

		// Without JavaScript the form posts and comes back to the profile.
		wantRedirect(t, b.post(fmt.Sprintf("/customers/%d/tags", cid), add), fmt.Sprintf("/customers/%d#customer-tags", cid))
		wantBody(t, b.get(fmt.Sprintf("/customers/%d", cid)), "已打上标签。")
		wantStatus(t, b.post("/customers/999999/tags", add), http.StatusNotFound)
	})
}

// A tag's page lists the customers holding it, linking to their profiles,
// a page at a time.
func TestTagPageListsItsCustomers(t *testing.T) {
	eachTagEngine(t, func(t *testing.T, th *tagHarness) {
		ctx := context.Background()
		g := th.group(t, "价值")
		high := th.tag(t, g.ID, "高价值")
		var in []customer.NewCustomer
		for i := range 51 {
			in = append(in, customer.NewCustomer{Name: fmt.Sprintf("客户%02d", i)})
		}
		ids, err := th.app.Customers.CreateMany(ctx, th.ws.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := th.app.Tags.BulkApply(ctx, th.ws.ID, []int64{high.ID}, ids, tag.ByPrincipal(tenant.System(th.ws.ID)), nil); err != nil {
			t.Fatal(err)
		}
		b := th.browser()
		b.signIn(analystEmail)
		res := b.get("/tags")
		wantBody(t, res, fmt.Sprintf(`href="/tags/%d"`, high.ID), `<span class="strong">51</span>`)
		res = b.get(fmt.Sprintf("/tags/%d", high.ID))
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "51 位客户带有此标签", fmt.Sprintf(`href="/customers/%d"`, ids[0]), "客户00", `rel="next"`)
		if n := strings.Count(res.body, `<tr id="customer-`); n != 50 {
			t.Fatalf("the first page lists %d customers", n)
		}
		next := regexp.MustCompile(`href="(/tags/\d+\?cursor=[^"]+)" rel="next"`).FindStringSubmatch(res.body)
		if next == nil {
			t.Fatal("no next page link")
		}
		res = b.get(strings.ReplaceAll(next[1], "&amp;", "&"))
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "客户50", "第一页")
		if n := strings.Count(res.body, `<tr id="customer-`); n != 1 {
			t.Fatalf("the last page lists %d customers", n)
		}
		wantStatus(t, b.get("/tags/999999"), http.StatusNotFound)
	})
}

// ruleForm is an editor submission.
func ruleForm(token string, kv ...string) url.Values {
	v := url.Values{"csrf": {token}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// A rule is created from the editor; a refused definition comes back as
// typed with the error at the part it names, with the node's path.
func TestRuleEditorShowsTheBadPart(t *testing.T) {
	eachTagEngine(t, func(t *testing.T, th *tagHarness) {
		ctx := context.Background()
		g := th.group(t, "价值")
		high := th.tag(t, g.ID, "高价值")
		vip := th.tag(t, g.ID, "重点客户")
		b := th.browser()
		token := b.signIn(ownerEmail)

		res := b.get("/tags/rules")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "还没有自动打标规则", `href="/tags/rules/new"`)
		res = b.get("/tags/rules/new")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `id="kind-event" checked`, `id="kind-schedule"`, fmt.Sprintf(`name="add" value="%d"`, vip.ID), `id="rule-try"`)

		add := strconv.FormatInt(vip.ID, 10)
		bad := `{"and": [{"tag": "价值/高价值"}, {"attr": "city", "op": "~", "value": "上海"}]}`
		res = b.post("/tags/rules", ruleForm(token, "name", "上海高价值", "kind", "schedule", "at", "03:00", "conditions", bad, "add", add))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, `<code class="err-path">conditions.and[1].op</code>`, "条件有误", "请修正下方标出的问题",
			`value="上海高价值"`, `id="kind-schedule" checked`, fmt.Sprintf(`name="add" value="%d" checked`, vip.ID))
		if !regexp.MustCompile(`(?s)id="rule-conditions".*?</textarea>\s*<p class="field-error">`).MatchString(res.body) {
			t.Fatalf("the error is not beside the conditions:\n%s", res.body)
		}
		res = b.post("/tags/rules", ruleForm(token, "name", "x", "kind", "schedule", "at", "03:00", "conditions", `{"tag": "价值/不存在"}`, "add", add))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "规则引用的标签不存在", `<code class="err-path">conditions.tag</code>`)
		res = b.post("/tags/rules", ruleForm(token, "name", "x", "kind", "schedule", "at", "03:00", "conditions", `{"tag": `, "add", add))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "不是有效的 JSON", `<code class="err-path">conditions</code>`)
		res = b.post("/tags/rules", ruleForm(token, "name", "x", "kind", "event", "event", "view_product",
			"where", `[{"prop": "category", "op": "≈", "value": "抹茶"}]`, "add", add))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, `<code class="err-path">trigger.where[0].op</code>`)
		res = b.post("/tags/rules", ruleForm(token, "name", "x", "kind", "schedule", "at", "3pm", "conditions", `{"tag": "价值/高价值"}`, "add", add))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, `<code class="err-path">trigger.at</code>`)
		res = b.post("/tags/rules", ruleForm(token, "name", "x", "kind", "schedule", "at", "03:00", "conditions", `{"tag": "价值/高价值"}`))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "规则至少要添加或移除一个标签。")
		res = b.post("/tags/rules", ruleForm(token, "name", "x", "kind", "schedule", "at", "03:00", "add", add))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "这条规则需要客户条件")
		res = b.post("/tags/rules", ruleForm(token, "name", "x", "kind", "order_paid", "min_yuan", "abc", "add", add))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, `<code class="err-path">trigger.min_fen</code>`, "请输入以元为单位的金额")

		// A good one: a first paid order of at least ¥100 on the mini-program.
		res = b.post("/tags/rules", ruleForm(token, "name", "小程序首单", "kind", "order_paid", "min_yuan", "100", "source", "miniapp",
			"order_count_op", "=", "order_count_value", "1", "conditions", `{"not": {"tag": "价值/高价值"}}`, "add", add, "enabled", "1",
			// Fields of other trigger kinds stay in the page; they are ignored.
			"event", "view_product", "at", "03:00"))
		wantRedirect(t, res, "/tags/rules/")
		id, _ := strconv.ParseInt(strings.TrimPrefix(res.Header.Get("Location"), "/tags/rules/"), 10, 64)
		ru, err := th.app.TagRules.Rule(ctx, th.ws.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if !ru.Enabled || ru.Trigger.Kind != tag.TriggerOrderPaid || *ru.Trigger.MinFen != 10000 || ru.Trigger.Source != "miniapp" ||
			ru.Trigger.OrderCount.Value != 1 || ru.Trigger.Event != "" || ru.Conditions == nil || len(ru.Add) != 1 || ru.Add[0] != vip.ID {
			t.Fatalf("saved %+v", ru)
		}
		res = b.get(res.Header.Get("Location"))
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "规则已创建", "小程序首单", "订单付款", "金额 ≥ ¥100.00", "渠道 小程序", `name="min_yuan" inputmode="decimal" autocomplete="off" value="100"`)
		res = b.get("/tags/rules")
		wantBody(t, res, fmt.Sprintf(`id="rule-%d"`, id), "小程序首单", "+ 价值/重点客户", "启用中")

		// Names are unique.
		res = b.post("/tags/rules", ruleForm(token, "name", "小程序首单", "kind", "schedule", "at", "03:00", "conditions", `{"tag": "价值/高价值"}`, "add", add))
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, "已有同名的规则。")

		// Save changes; switch it off and on from the list.
		res = b.post(fmt.Sprintf("/tags/rules/%d/save", id), ruleForm(token, "name", "小程序首单", "kind", "order_paid", "min_yuan", "99.5",
			"conditions", "", "add", add, "remove", strconv.FormatInt(high.ID, 10)))
		wantRedirect(t, res, fmt.Sprintf("/tags/rules/%d", id))
		if ru, _ = th.app.TagRules.Rule(ctx, th.ws.ID, id); *ru.Trigger.MinFen != 9950 || ru.Conditions != nil || len(ru.Remove) != 1 || !ru.Enabled {
			t.Fatalf("after saving %+v", ru)
		}
		wantRedirect(t, b.post(fmt.Sprintf("/tags/rules/%d/disable", id), url.Values{"csrf": {token}, "back": {"list"}}), "/tags/rules#rule-")
		wantBody(t, b.get("/tags/rules"), "规则已停用", "已停用")
		wantRedirect(t, b.post(fmt.Sprintf("/tags/rules/%d/enable", id), url.Values{"csrf": {token}}), fmt.Sprintf("/tags/rules/%d", id))
		wantRedirect(t, b.post(fmt.Sprintf("/tags/rules/%d/delete", id), url.Values{"csrf": {token}}), "/tags/rules")
		wantStatus(t, b.get(fmt.Sprintf("/tags/rules/%d", id)), http.StatusNotFound)
	})
}

// The test panel checks the rule as typed against one customer, found by
// id or phone, and says whether it fires and what it would change.
func TestRuleTryAgainstOneCustomer(t *testing.T) {
	eachTagEngine(t, func(t *testing.T, th *tagHarness) {
		g := th.group(t, "价值")
		high := th.tag(t, g.ID, "高价值")
		vip := th.tag(t, g.ID, "重点客户")
		wang := th.customer(t, "王芳", "13800138000")
		chen := th.customer(t, "陈静", "13900139000")
		th.apply(t, wang, high.ID)
		th.synced(t)
		b := th.browser()
		token := b.signIn(operatorEmail)

		rule := func(customer string, kv ...string) url.Values {
			return ruleForm(token, append([]string{"kind", "schedule", "at", "03:00", "conditions", `{"tag": "价值/高价值"}`,
				"add", strconv.FormatInt(vip.ID, 10), "customer", customer}, kv...)...)
		}
		res := b.post("/tags/rules/try", rule("138 0013 8000"), hxHeaders...)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `data-fires="true"`, "会触发", "将添加", "+ 价值/重点客户", fmt.Sprintf(`href="/customers/%d"`, wang), "王芳")
		wantNoBody(t, res, "<html")

		res = b.post("/tags/rules/try", rule(fmt.Sprintf("#%d", chen)), hxHeaders...)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `data-fires="false"`, "不会触发", "陈静", `<li class="is-bad">`, "条件")

		// Already as the rule would leave them.
		th.apply(t, wang, vip.ID)
		th.synced(t)
		res = b.post("/tags/rules/try", rule(strconv.FormatInt(wang, 10)), hxHeaders...)
		wantBody(t, res, `data-fires="true"`, "不会有变化")

		// An event rule with a sample: the trigger is checked against it.
		ev := func(props string) url.Values {
			return ruleForm(token, "kind", "event", "event", "view_product", "where", `[{"prop": "category", "op": "=", "value": "抹茶"}]`,
				"add", strconv.FormatInt(vip.ID, 10), "remove", strconv.FormatInt(high.ID, 10), "customer", "13800138000", "sample", "1", "sample_props", props)
		}
		res = b.post("/tags/rules/try", ev(`{"category": "咖啡"}`), hxHeaders...)
		wantBody(t, res, `data-fires="false"`, "trigger.where")
		res = b.post("/tags/rules/try", ev(`{"category": "抹茶"}`), hxHeaders...)
		wantBody(t, res, `data-fires="true"`, "将移除", "− 价值/高价值")

		// What cannot be tested says why.
		res = b.post("/tags/rules/try", rule("13700000000"), hxHeaders...)
		wantStatus(t, res, http.StatusNotFound)
		wantBody(t, res, "找不到该客户。")
		res = b.post("/tags/rules/try", rule(""), hxHeaders...)
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "请输入客户 ID、手机号或 类型:值。")
		res = b.post("/tags/rules/try", ruleForm(token, "kind", "schedule", "at", "03:00", "conditions", `{"tag": "x/y"}`,
			"add", strconv.FormatInt(vip.ID, 10), "customer", "1"), hxHeaders...)
		wantBody(t, res, `<code class="err-path">conditions.tag</code>`)

		// Without JavaScript the editor comes back with the answer.
		res = b.post("/tags/rules/try", rule("13800138000", "name", "草稿"))
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `value="草稿"`, `id="try-outcome"`, `value="13800138000"`)
		if got := th.tagsOf(t, chen); len(got) != 0 {
			t.Fatalf("a test wrote tags: %v", got)
		}
	})
}

// A back-fill is started from the rule's page and its progress polled
// until done; a rule without conditions cannot be back-filled.
func TestRuleBackfillProgress(t *testing.T) {
	eachTagEngine(t, func(t *testing.T, th *tagHarness) {
		ctx := context.Background()
		g := th.group(t, "价值")
		high := th.tag(t, g.ID, "高价值")
		vip := th.tag(t, g.ID, "重点客户")
		var holders []int64
		for i := range 3 {
			id := th.customer(t, fmt.Sprintf("客户%d", i), "")
			th.apply(t, id, high.ID)
			holders = append(holders, id)
		}
		th.customer(t, "路人", "")
		p := tenant.System(th.ws.ID)
		ru, err := th.app.TagRules.CreateRule(ctx, p, tag.RuleInput{Name: "重点", Trigger: tag.Trigger{Kind: tag.TriggerEvent, Event: "view_product"},
			Conditions: condTag("价值/高价值"), Add: []int64{vip.ID}})
		if err != nil {
			t.Fatal(err)
		}
		bare, err := th.app.TagRules.CreateRule(ctx, p, tag.RuleInput{Name: "无条件", Trigger: tag.Trigger{Kind: tag.TriggerEvent, Event: "x"},
			Add: []int64{vip.ID}})
		if err != nil {
			t.Fatal(err)
		}
		b := th.browser()
		token := b.signIn(ownerEmail)

		res := b.get(fmt.Sprintf("/tags/rules/%d", ru.ID))
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "这条规则还没有回溯过", `id="backfill-start"`)
		res = b.get(fmt.Sprintf("/tags/rules/%d", bare.ID))
		wantBody(t, res, `id="backfill-start" disabled`, "先为规则设置客户条件")
		res = b.post(fmt.Sprintf("/tags/rules/%d/backfill", bare.ID), url.Values{"csrf": {token}}, hxHeaders...)
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "这条规则需要客户条件", `id="backfill-progress"`)

		res = b.post(fmt.Sprintf("/tags/rules/%d/backfill", ru.ID), url.Values{"csrf": {token}}, hxHeaders...)
		wantStatus(t, res, http.StatusAccepted)
		wantBody(t, res, `id="backfill-progress"`, `id="backfill-status"`)
		if !strings.Contains(res.body, `hx-trigger="every 1s"`) && !strings.Contains(res.body, `data-status="done"`) {
			t.Fatalf("a queued back-fill does not poll:\n%s", res.body)
		}
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(res.body, `data-status="done"`) {
			if time.Now().After(deadline) {
				t.Fatalf("the back-fill did not finish:\n%s", res.body)
			}
			time.Sleep(100 * time.Millisecond)
			res = b.getWith(fmt.Sprintf("/tags/rules/%d/backfill", ru.ID), hxHeaders...)
			wantStatus(t, res, http.StatusOK)
			wantNoBody(t, res, "<html")
		}
		wantBody(t, res, "已完成", "已处理 3 / 3 位客户", "符合 3 · 打上标签 3 · 移除标签 0", "100%", "再次回溯")
		wantNoBody(t, res, `hx-trigger="every 1s"`)
		for _, id := range holders {
			if got := th.tagsOf(t, id); len(got) != 2 || got[1] != "价值/重点客户@rule" {
				t.Fatalf("customer %d after the back-fill: %v", id, got)
			}
		}
		// The list shows the last back-fill; without htmx the poll goes to the page.
		wantBody(t, b.get("/tags/rules"), `status-job-done`)
		wantRedirect(t, b.get(fmt.Sprintf("/tags/rules/%d/backfill", ru.ID)), fmt.Sprintf("/tags/rules/%d#backfill", ru.ID))
		wantBody(t, b.get(fmt.Sprintf("/tags/rules/%d", ru.ID)), `<span class="stat-value" id="stat-tagged">3</span>`)
	})
}

// The tag pages speak the user's language.
func TestTagPagesInEnglish(t *testing.T) {
	eachTagEngine(t, func(t *testing.T, th *tagHarness) {
		g := th.group(t, "Value")
		th.tag(t, g.ID, "High value")
		cid := th.customer(t, "Wang Fang", "13800138000")
		b := th.browser()
		b.setCookie("lang", "en")
		token := b.signIn(ownerEmail)
		wantBody(t, b.get("/tags"), "Tag system", "Tag groups: 1 · tags: 1", "Auto-tag rules", "New tag group")
		wantBody(t, b.get(fmt.Sprintf("/customers/%d", cid)), "Choose a tag…")
		wantBody(t, b.get("/tags/rules/new"), "Daily schedule", "Test the rule", "Customer conditions")
		res := b.post("/tags/groups", url.Values{"csrf": {token}, "name": {"Value"}})
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, "A tag group of that name already exists.")
	})
}
