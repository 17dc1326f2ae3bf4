package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/analytics"
	"github.com/siyu-dev/siyu/internal/audience"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/console"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// audienceHarness is a console with customers, orders, tags, the audience
// engine and the score computation on one database, wired as the app wires
// them (the engine reads profiles, tags and scores).
type audienceHarness struct {
	*harness
	customers *customer.Service
	commerce  *commerce.Service
	tags      *tag.Service
	audiences *audience.Service
	analytics *analytics.Service
}

func newAudienceHarness(t *testing.T, d *db.DB) *audienceHarness {
	t.Helper()
	kr, err := pii.NewKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ah := &audienceHarness{}
	ah.harness = newHarnessFunc(t, d, func(ts *tenant.Service) console.Deps {
		loc := func(ctx context.Context, tenantID int64) (*time.Location, error) {
			w, err := ts.Workspace(ctx, tenantID)
			if err != nil {
				return nil, err
			}
			return w.Location(), nil
		}
		ah.customers = customer.NewService(d, kr, log)
		ah.commerce = commerce.NewService(d, ah.customers, staff.NewService(d), log)
		ah.tags = tag.NewService(d, tag.Options{Logger: log, Auditor: ts})
		ah.analytics = analytics.NewService(d, analytics.Sources{Profiles: ah.customers, Spend: ah.commerce, Location: loc},
			analytics.Options{Logger: log, Auditor: ts})
		ah.audiences = audience.NewService(d, audience.Sources{Profiles: ah.customers, Tags: ah.tags, Scores: ah.analytics, Location: loc}, log)
		ah.tags.Observe(ah.audiences)
		return console.Deps{Version: "test", Customers: ah.customers, Commerce: ah.commerce, Tags: ah.tags,
			Audiences: ah.audiences, Analytics: ah.analytics}
	})
	ctx := context.Background()
	for _, u := range []tenant.NewUser{
		{Email: operatorEmail, Name: "运营小王", Password: testPassword, Role: tenant.RoleOperator},
		{Email: staffEmail, Name: "导购小李", Password: testPassword, Role: tenant.RoleStaff},
	} {
		if _, err := ah.ts.CreateUser(ctx, ah.ws.ID, u); err != nil {
			t.Fatal(err)
		}
	}
	return ah
}

// seed makes five customers: three women (two in Shanghai) and two men, one
// of whom has the tag 价值/高价值. It returns their ids by name.
func (ah *audienceHarness) seed(t *testing.T) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	ids := map[string]int64{}
	for _, nc := range []customer.NewCustomer{
		{Name: "王芳", Gender: "female", City: "上海", Phone: "13800138000"},
		{Name: "李娜", Gender: "female", City: "上海"},
		{Name: "张敏", Gender: "female", City: "杭州"},
		{Name: "刘洋", Gender: "male", City: "北京"},
		{Name: "周杰", Gender: "male", City: "上海"},
	} {
		c, err := ah.customers.Create(ctx, ah.ws.ID, nc)
		if err != nil {
			t.Fatal(err)
		}
		ids[nc.Name] = c.ID
	}
	p := tenant.System(ah.ws.ID)
	g, err := ah.tags.CreateGroup(ctx, p, tag.GroupInput{Name: "价值"})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := ah.tags.CreateTag(ctx, p, tag.TagInput{GroupID: g.ID, Name: "高价值"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ah.tags.Apply(ctx, ah.ws.ID, ids["周杰"], []int64{tg.ID}, tag.ByPrincipal(p)); err != nil {
		t.Fatal(err)
	}
	return ids
}

// countReply is the count endpoint's answer.
type countReply struct {
	Count *int64 `json:"count"`
	Text  string `json:"text"`
	Error *struct {
		Path    string `json:"path"`
		Message string `json:"message"`
		Detail  string `json:"detail"`
	} `json:"error"`
}

// count asks the builder's count endpoint as audience.js does: the tree in
// a form field, the CSRF token in the header.
func (b *browser) count(token, tree string) (int, countReply) {
	b.h.t.Helper()
	res := b.post("/audiences/count", url.Values{"conditions": {tree}}, "X-CSRF-Token", token)
	var r countReply
	if err := json.Unmarshal([]byte(res.body), &r); err != nil {
		b.h.t.Fatalf("count %s: status %d, not JSON: %v\n%s", tree, res.StatusCode, err, res.body)
	}
	return res.StatusCode, r
}

func TestAudienceCountUpdatesAsConditionsChange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ah := newAudienceHarness(t, d)
		ah.seed(t)
		b := ah.browser()
		token := b.signIn(analystEmail) // counting is reading: an analyst may
		for _, tc := range []struct {
			tree string
			want int64
		}{
			{`{"and":[{"attr":"gender","op":"=","value":"female"}]}`, 3},
			{`{"and":[{"attr":"gender","op":"=","value":"female"},{"attr":"city","op":"in","value":["上海"]}]}`, 2},
			{`{"or":[{"tag":"价值/高价值"},{"attr":"city","op":"=","value":"杭州"}]}`, 2},
			{`{"and":[{"attr":"city","op":"=","value":"上海"},{"not":{"tag":"高价值"}}]}`, 2},
		} {
			status, r := b.count(token, tc.tree)
			if status != http.StatusOK || r.Count == nil || *r.Count != tc.want || r.Error != nil {
				t.Fatalf("count %s: status %d, %+v; want %d", tc.tree, status, r, tc.want)
			}
			if r.Text != fmt.Sprint(tc.want) {
				t.Fatalf("count text %q", r.Text)
			}
		}
		// Without the session's token the request changes nothing and
		// answers nothing.
		res := b.post("/audiences/count", url.Values{"conditions": {`{"attr":"city","op":"=","value":"上海"}`}})
		wantStatus(t, res, http.StatusForbidden)
	})
}

func TestAudienceCountNamesTheBadNode(t *testing.T) {
	ah := newAudienceHarness(t, dbtest.Open(t, db.SQLite))
	ah.seed(t)
	b := ah.browser()
	token := b.signIn(ownerEmail)
	for _, tc := range []struct {
		tree, path, message string
	}{
		{`{"and":[{"attr":"gender","op":"=","value":"female"},{"attr":"total_spend","op":"between","value":[500,100]}]}`, "and[1].value", "请填写正确的值。"},
		{`{"and":[{"attr":"gender","op":"=","value":"female"},{"or":[{"attr":"city","op":"=","value":"上海"},{"attr":"city","op":"="}]}]}`, "and[1].or[1].value", "请填写正确的值。"},
		{`{"and":[{"attr":"shoe_size","op":"=","value":"42"}]}`, "and[0].attr", "没有这个属性。"},
		{`{"and":[{"not":{"tag":"不存在"}}]}`, "and[0].not", "找不到这个标签。"},
		{`{"and":[{"event":"view_product","count":{"op":"~","value":2}}]}`, "and[0].count.op", "次数需为 0 或以上的整数。"},
		{`{"and":[{"attr":"city","op":"=","value":"上海"},{"and":[]}]}`, "and[1].and", "条件组里至少要有一个条件。"},
		{`{"and":[{"city":"上海"}]}`, "", "条件 JSON 格式不正确。"},
		// The engine names no node for a missing saved audience; the console finds it.
		{`{"and":[{"attr":"city","op":"=","value":"上海"},{"or":[{"attr":"city","op":"=","value":"杭州"},{"not":{"audience":999}}]}]}`, "and[1].or[1].not", "引用的人群不存在或已归档。"},
	} {
		status, r := b.count(token, tc.tree)
		if status != http.StatusUnprocessableEntity || r.Error == nil || r.Count != nil {
			t.Fatalf("count %s: status %d, %+v", tc.tree, status, r)
		}
		if r.Error.Path != tc.path || r.Error.Message != tc.message || r.Error.Detail == "" {
			t.Fatalf("count %s: error %+v, want path %q, message %q", tc.tree, *r.Error, tc.path, tc.message)
		}
	}
}

// builderData reads the data-builder attribute audience.js starts from.
func builderData(t *testing.T, body string) map[string]any {
	t.Helper()
	m := regexp.MustCompile(`data-builder="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no builder on the page:\n%s", body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &out); err != nil {
		t.Fatalf("data-builder is not JSON: %v", err)
	}
	return out
}

func TestAudienceSaveListAndArchive(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ah := newAudienceHarness(t, d)
		ids := ah.seed(t)
		b := ah.browser()
		token := b.signIn(operatorEmail) // operators build audiences

		page := b.get("/audiences/new")
		wantStatus(t, page, http.StatusOK)
		wantBody(t, page, `id="audience-form"`, `name="conditions"`, "/static/audience.", "/static/echarts.min.", "/static/charts.")
		bd := builderData(t, page.body)
		if tags, _ := json.Marshal(bd["tags"]); !strings.Contains(string(tags), `"ref":"价值/高价值"`) {
			t.Fatalf("the tag picker lacks the workspace's tag: %s", tags)
		}
		if text, _ := bd["text"].(map[string]any); text["group.all"] != "满足以下全部条件" {
			t.Fatalf("the builder's strings are not the zh-CN catalogue's: %v", text["group.all"])
		}
		if attrs, _ := json.Marshal(bd["attrs"]); !strings.Contains(string(attrs), `"name":"lifecycle"`) || !strings.Contains(string(attrs), `"value":"衰退期"`) {
			t.Fatalf("the attributes lack the computed ones: %s", attrs)
		}

		tree := `{"and":[{"attr":"gender","op":"=","value":"female"},{"attr":"city","op":"=","value":"上海"}]}`
		res := b.post("/audiences", url.Values{"csrf": {token}, "name": {"上海女性客户"}, "description": {"会员日邀约"}, "conditions": {tree}})
		wantStatus(t, res, http.StatusSeeOther)
		loc := res.Header.Get("Location")
		if !regexp.MustCompile(`^/audiences/\d+$`).MatchString(loc) {
			t.Fatalf("after saving, sent to %q", loc)
		}
		res = b.get(loc)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "上海女性客户", "会员日邀约", "人群已保存", `id="changes"`, "王芳")
		if got := builderData(t, res.body); got["error"] != nil {
			t.Fatalf("a saved audience opens with an error: %v", got["error"])
		}

		list := b.get("/audiences")
		wantStatus(t, list, http.StatusOK)
		wantBody(t, list, "上海女性客户", `href="`+loc+`"`, `<td data-label="当前人数" class="num strong aud-members">2<`)
		wantNoBody(t, list, "echarts") // charts load only where they are drawn

		// The same name again is refused beside the name, with what was typed kept.
		res = b.post("/audiences", url.Values{"csrf": {token}, "name": {"上海女性客户"}, "conditions": {tree}})
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, "已有同名的人群", `aria-describedby="audience-name-err"`, "&#34;上海&#34;")

		// A bad tree is refused with its node's path for the builder.
		res = b.post("/audiences", url.Values{"csrf": {token}, "name": {"坏条件"}, "conditions": {`{"and":[{"attr":"city","op":"between","value":"x"}]}`}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "圈选条件有误")
		if e, _ := builderData(t, res.body)["error"].(map[string]any); e["path"] != "and[0].value" {
			t.Fatalf("the refused tree's error: %v", e)
		}

		// Members move as customers change, and the log says who entered.
		ctx := context.Background()
		nc, err := ah.customers.Create(ctx, ah.ws.ID, customer.NewCustomer{Name: "赵丽", Gender: "female", City: "上海"})
		if err != nil {
			t.Fatal(err)
		}
		ah.audiences.Touch(ah.ws.ID, nc.ID)
		if err := ah.audiences.Reevaluate(ctx, ah.ws.ID); err != nil {
			t.Fatal(err)
		}
		res = b.get(loc)
		wantBody(t, res, "赵丽", "进入", fmt.Sprintf(`href="/customers/%d"`, nc.ID))

		// Change it: the men of Shanghai instead.
		res = b.post(loc, url.Values{"csrf": {token}, "name": {"上海男性客户"}, "conditions": {`{"and":[{"attr":"gender","op":"=","value":"male"},{"attr":"city","op":"=","value":"上海"}]}`}})
		wantStatus(t, res, http.StatusSeeOther)
		res = b.get(loc)
		wantBody(t, res, "上海男性客户", "人群已更新")
		id := strings.TrimPrefix(loc, "/audiences/")
		a, err := ah.audiences.Audience(ctx, ah.ws.ID, mustInt(t, id))
		if err != nil || a.MemberCount != 1 {
			t.Fatalf("after the change: %+v, %v", a, err)
		}

		// It may not include itself: the error points at the reference.
		res = b.post(loc, url.Values{"csrf": {token}, "name": {"上海男性客户"}, "conditions": {
			fmt.Sprintf(`{"and":[{"attr":"city","op":"=","value":"上海"},{"audience":%s}]}`, id)}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		if e, _ := builderData(t, res.body)["error"].(map[string]any); e["path"] != "and[1]" || e["message"] != "人群不能引用自己（包括间接引用）。" {
			t.Fatalf("a self-reference's error: %v", e)
		}

		// Another audience refers to it: it cannot be archived until changed.
		res = b.post("/audiences", url.Values{"csrf": {token}, "name": {"上海男性高价值"}, "conditions": {
			fmt.Sprintf(`{"and":[{"audience":%s},{"tag":"价值/高价值"}]}`, id)}})
		wantStatus(t, res, http.StatusSeeOther)
		ref := res.Header.Get("Location")
		res = b.post(loc+"/archive", url.Values{"csrf": {token}, "from": {"list"}}, "HX-Request", "true")
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, "还有其他人群引用了它")
		res = b.post(ref+"/archive", url.Values{"csrf": {token}, "from": {"list"}}, "HX-Request", "true")
		wantStatus(t, res, http.StatusOK)
		if strings.TrimSpace(res.body) != "" {
			t.Fatalf("archiving from the list answers %q, not an empty row", res.body)
		}
		res = b.post(loc+"/archive", url.Values{"csrf": {token}})
		wantStatus(t, res, http.StatusSeeOther)
		list = b.get("/audiences")
		wantBody(t, list, "人群已归档", "还没有人群包")
		wantStatus(t, b.get(loc), http.StatusNotFound)
		_ = ids
	})
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAudiencePermissions(t *testing.T) {
	ah := newAudienceHarness(t, dbtest.Open(t, db.SQLite))
	ah.seed(t)
	tree := `{"and":[{"attr":"city","op":"=","value":"上海"}]}`
	saved, err := ah.audiences.CreateAudience(context.Background(), ah.ws.ID, "test", audience.AudienceInput{Name: "上海客户",
		Conditions: audience.Condition{And: []audience.Condition{{Attr: "city", Op: "=", Value: "上海"}}}})
	if err != nil {
		t.Fatal(err)
	}
	loc := fmt.Sprintf("/audiences/%d", saved.ID)
	for _, tc := range []struct {
		email string
		write bool
	}{
		{ownerEmail, true}, {operatorEmail, true}, {staffEmail, false}, {analystEmail, false},
	} {
		b := ah.browser()
		token := b.signIn(tc.email)
		home := b.get("/")
		wantBody(t, home, `href="/audiences"`, `href="/analytics/scores"`)
		for _, p := range []string{"/audiences", "/audiences/new", loc, "/analytics/scores"} {
			wantStatus(t, b.get(p), http.StatusOK)
		}
		status, _ := b.count(token, tree)
		wantStatus(t, b.post("/audiences/preview", url.Values{"conditions": {tree}}, "X-CSRF-Token", token, "HX-Request", "true"), http.StatusOK)
		if status != http.StatusOK {
			t.Fatalf("%s may not count: %d", tc.email, status)
		}
		page := b.get("/audiences/new")
		res := b.post("/audiences", url.Values{"csrf": {token}, "name": {"新人群 " + tc.email}, "conditions": {tree}})
		if tc.write {
			wantBody(t, page, `id="audience-form"`)
			wantStatus(t, res, http.StatusSeeOther)
			continue
		}
		wantBody(t, page, "不能保存人群包")
		wantNoBody(t, page, `id="audience-form"`)
		wantStatus(t, res, http.StatusForbidden)
		wantStatus(t, b.post(loc, url.Values{"csrf": {token}, "name": {"改名"}, "conditions": {tree}}), http.StatusForbidden)
		wantStatus(t, b.post(loc+"/archive", url.Values{"csrf": {token}}), http.StatusForbidden)
		wantStatus(t, b.post("/analytics/scores/recompute", url.Values{"csrf": {token}}), http.StatusForbidden)
		wantStatus(t, b.get("/analytics/scores/settings"), http.StatusForbidden)
	}
	all, err := ah.audiences.Audiences(context.Background(), ah.ws.ID, page.Request{})
	if err != nil || len(all.Items) != 3 {
		t.Fatalf("audiences after the roles tried: %d, %v", len(all.Items), err)
	}
}

func TestAudiencePreviewAndBreakdown(t *testing.T) {
	ah := newAudienceHarness(t, dbtest.Open(t, db.SQLite))
	ids := ah.seed(t)
	b := ah.browser()
	token := b.signIn(analystEmail)
	tree := `{"and":[{"attr":"gender","op":"=","value":"female"}]}`
	res := b.post("/audiences/preview", url.Values{"conditions": {tree}, "col": {"city", "phone", "gender"}}, "X-CSRF-Token", token, "HX-Request", "true")
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, "共 3 人", fmt.Sprintf(`href="/customers/%d"`, ids["王芳"]), "张敏", "<th scope=\"col\">城市</th>", "杭州", "女", "138****8000")
	wantNoBody(t, res, "刘洋", "13800138000", "<th scope=\"col\">累计消费</th>")

	res = b.post("/audiences/breakdown", url.Values{"conditions": {tree}, "by": {"city"}}, "X-CSRF-Token", token, "HX-Request", "true")
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, `data-chart="`, "上海", "66.7%", "杭州", "33.3%")
	res = b.post("/audiences/breakdown", url.Values{"conditions": {tree}, "by": {"shoe_size"}}, "X-CSRF-Token", token, "HX-Request", "true")
	wantStatus(t, res, http.StatusUnprocessableEntity)
	res = b.post("/audiences/preview", url.Values{"conditions": {`{"and":[{"attr":"city"}]}`}}, "X-CSRF-Token", token, "HX-Request", "true")
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantBody(t, res, "alert-danger")
}

func TestScoresPageAndSettings(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ah := newAudienceHarness(t, d)
		ids := ah.seed(t)
		ctx := context.Background()
		now := time.Now().UTC()
		for i, name := range []string{"王芳", "王芳", "王芳", "李娜"} {
			at := now.Add(-time.Duration(i+1) * 24 * time.Hour)
			if _, err := ah.commerce.UpsertOrder(ctx, ah.ws.ID, commerce.OrderInput{Source: commerce.SourceMiniApp, OrderID: fmt.Sprintf("MP%d", i),
				CustomerID: ids[name], Status: commerce.Paid, OrderedAt: at, PaidAt: at,
				Items: []commerce.ItemInput{{SKU: "LATTE", Name: "拿铁", Quantity: 1, UnitPriceFen: 3200}}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ah.analytics.Recompute(ctx, ah.ws.ID); err != nil {
			t.Fatal(err)
		}

		an := ah.browser()
		an.signIn(analystEmail)
		res := an.get("/analytics/scores")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "RFM 八类客户", "生命周期", "粉丝亲密度", "/static/echarts.min.", "/static/charts.",
			`id="chart-rfm"`, `id="chart-lifecycle"`, `id="chart-fans"`, `id="hist-r"`, "当前阈值", "高于平均分", "沉默 ≥ 90 天",
			`<div class="stat-value" id="scores-customers">5</div>`, `<div class="stat-value" id="scores-buyers">2</div>`)
		wantNoBody(t, res, `href="/analytics/scores/settings"`, `id="recompute"`, "scores.") // no key left untranslated
		if n := strings.Count(res.body, `data-chart="`); n != 6 {
			t.Fatalf("%d charts on the scores page, want 6", n)
		}
		// Each class links to the builder on its customers.
		link := "/audiences/new?conditions=" + url.QueryEscape(`{"and":[{"attr":"lifecycle","op":"=","value":"成长期"}]}`)
		wantBody(t, res, html.EscapeString(link))
		res = an.get(link)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "&#34;lifecycle&#34;")

		own := ah.browser()
		token := own.signIn(ownerEmail)
		res = own.get("/analytics/scores")
		wantBody(t, res, `href="/analytics/scores/settings"`, `id="recompute"`)
		res = own.get("/analytics/scores/settings")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `name="lifecycle.decline_days"`, `value="90"`, "保存并重新计算")
		wantNoBody(t, res, "scores.settings.")

		form := url.Values{"csrf": {token}, "recompute_hour": {"3"}, "rfm.class_by": {"threshold"}}
		set := analytics.Defaults()
		for k, v := range map[string]int{
			"rfm.thresholds.r": 3, "rfm.thresholds.f": 2, "rfm.thresholds.m": 3,
			"lifecycle.growth_min_orders": set.Lifecycle.GrowthMinOrders, "lifecycle.mature_min_orders": set.Lifecycle.MatureMinOrders,
			"lifecycle.mature_min_score": set.Lifecycle.MatureMinScore, "lifecycle.mature_recent_days": set.Lifecycle.MatureRecentDays,
			"lifecycle.extension_min_categories": set.Lifecycle.ExtensionMinCategories, "lifecycle.extension_min_tenure_days": set.Lifecycle.ExtensionMinTenureDays,
			"lifecycle.decline_days": 30, "lifecycle.lapsed_buyer_days": set.Lifecycle.LapsedBuyerDays,
			"fan_tier.devoted_min_orders": set.FanTier.DevotedMinOrders, "fan_tier.devoted_min_events_30d": set.FanTier.DevotedMinEvents30,
			"fan_tier.favourable_min_orders": set.FanTier.FavourableMinOrders, "fan_tier.favourable_min_events_90d": set.FanTier.FavourableMinEvents90,
			"fan_tier.cool_off_days": set.FanTier.CoolOffDays,
		} {
			form.Set(k, fmt.Sprint(v))
		}
		form.Set("fan_tier.interaction_events", "view_product\nadd_to_cart")
		// 30 idle days to decline, but maturity looks back 60: refused, beside the field.
		res = own.post("/analytics/scores/settings", form)
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "请修正下方标出的问题", "lifecycle.mature_recent_days must be less than", `value="30"`, "add_to_cart")
		got, err := ah.analytics.Settings(ctx, ah.ws.ID)
		if err != nil || got.Lifecycle.DeclineDays != 90 {
			t.Fatalf("a refused form changed the settings: %+v, %v", got.Lifecycle, err)
		}
		form.Set("lifecycle.decline_days", "120")
		res = own.post("/analytics/scores/settings", form)
		wantStatus(t, res, http.StatusSeeOther)
		got, err = ah.analytics.Settings(ctx, ah.ws.ID)
		if err != nil || got.Lifecycle.DeclineDays != 120 || got.RFM.ClassBy != "threshold" || got.RecomputeHour != 3 ||
			strings.Join(got.FanTier.InteractionEvents, ",") != "view_product,add_to_cart" {
			t.Fatalf("saved settings: %+v, %v", got, err)
		}
		res = own.get("/analytics/scores")
		wantBody(t, res, "阈值已保存", "高于固定分数", "R &gt; 3, F &gt; 2, M &gt; 3", "排队中", `hx-get="/analytics/scores/status?poll=1"`)

		// Recompute through the console: queued, shown in place.
		op := ah.browser()
		token = op.signIn(operatorEmail)
		res = op.post("/analytics/scores/recompute", url.Values{"csrf": {token}}, "HX-Request", "true")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `id="score-status"`, "排队中")
		res = op.get("/analytics/scores/status?poll=1")
		wantStatus(t, res, http.StatusSeeOther) // without htmx: the page
	})
}

// The audience catalogue files have the same keys in both languages, each
// with the same arguments, and no key the main catalogue also defines.
func TestAudienceCatalogues(t *testing.T) {
	read := func(name string) map[string]string {
		b, err := os.ReadFile("i18n/" + name)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	zh, en := read("zh-CN.audiences.json"), read("en.audiences.json")
	for k, v := range zh {
		e, ok := en[k]
		if !ok || v == "" || e == "" {
			t.Errorf("%q: zh-CN %q, en %q", k, v, e)
		}
		if strings.Count(v, "%") != strings.Count(e, "%") {
			t.Errorf("%q: the translations take different arguments", k)
		}
	}
	for k := range en {
		if _, ok := zh[k]; !ok {
			t.Errorf("zh-CN.audiences.json lacks %q", k)
		}
	}
	// Every string audience.js asks for is in the catalogue.
	js, err := os.ReadFile("static/audience.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\bt\("([a-z_.]+)"`).FindAllStringSubmatch(string(js), -1) {
		key := "audiences.js." + m[1]
		if _, ok := zh[key]; !ok && !strings.HasSuffix(m[1], ".") {
			t.Errorf("audience.js uses %q, which the catalogue lacks", key)
		}
	}
}

// ECharts is the file VENDOR.md describes, an Apache ECharts 6.
func TestVendoredEChartsMatchesVendorNote(t *testing.T) {
	js, err := os.ReadFile("static/vendor/echarts.min.js")
	if err != nil {
		t.Fatal(err)
	}
	note, err := os.ReadFile("static/vendor/VENDOR.md")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256Hex(js)
	if !strings.Contains(string(note), sum) {
		t.Fatalf("VENDOR.md does not list echarts.min.js's sha256 %s", sum)
	}
	if !strings.Contains(string(js), `version="6.`) || !strings.Contains(string(note), "Apache-2.0") {
		t.Fatal("echarts.min.js is not Apache ECharts 6, or VENDOR.md does not give its licence")
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestAudienceChangeLogPages(t *testing.T) {
	ah := newAudienceHarness(t, dbtest.Open(t, db.SQLite))
	ah.seed(t)
	ctx := context.Background()
	a, err := ah.audiences.CreateAudience(ctx, ah.ws.ID, "test", audience.AudienceInput{Name: "成都客户",
		Conditions: audience.Condition{Attr: "city", Op: "=", Value: "成都"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		c, err := ah.customers.Create(ctx, ah.ws.ID, customer.NewCustomer{Name: fmt.Sprintf("成都客户%02d", i), City: "成都"})
		if err != nil {
			t.Fatal(err)
		}
		ah.audiences.Touch(ah.ws.ID, c.ID)
	}
	if err := ah.audiences.Reevaluate(ctx, ah.ws.ID); err != nil {
		t.Fatal(err)
	}
	b := ah.browser()
	b.signIn(analystEmail)
	res := b.get(fmt.Sprintf("/audiences/%d", a.ID))
	wantStatus(t, res, http.StatusOK)
	if n := strings.Count(res.body, `<tr class="aud-change">`); n != 20 {
		t.Fatalf("the first page logs %d changes, want 20", n)
	}
	m := regexp.MustCompile(`hx-get="(/audiences/\d+/changes\?cursor=[^"]+)"`).FindStringSubmatch(res.body)
	if m == nil {
		t.Fatal("no link to the next page of the log")
	}
	more := b.do(func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, ah.srv.URL+html.UnescapeString(m[1]), nil)
		req.Header.Set("HX-Request", "true")
		return req
	}())
	wantStatus(t, more, http.StatusOK)
	if n := strings.Count(more.body, `<tr class="aud-change">`); n != 5 || strings.Contains(more.body, "hx-get") {
		t.Fatalf("the second page logs %d changes (want the last 5, and no further link):\n%s", n, more.body)
	}
	wantBody(t, more, "进入", "成都客户00")
	// Without htmx, the link opens the audience's page at that point.
	res = b.get(html.UnescapeString(m[1]))
	wantStatus(t, res, http.StatusSeeOther)
}

// Every page of the area reads in English too: no catalogue key shows
// through untranslated, in either language.
func TestAudiencePagesInBothLanguages(t *testing.T) {
	ah := newAudienceHarness(t, dbtest.Open(t, db.SQLite))
	ah.seed(t)
	ctx := context.Background()
	if _, err := ah.analytics.Recompute(ctx, ah.ws.ID); err != nil {
		t.Fatal(err)
	}
	a, err := ah.audiences.CreateAudience(ctx, ah.ws.ID, "test", audience.AudienceInput{Name: "上海客户",
		Conditions: audience.Condition{Attr: "city", Op: "=", Value: "上海"}})
	if err != nil {
		t.Fatal(err)
	}
	// A key the catalogue lacks shows as itself, e.g. "scores.metric.r".
	untranslated := regexp.MustCompile(`(?:^|[^/\w.])((?:audiences|scores|flash|error)\.[a-z_]+(?:\.[a-z_]+)*)`)
	tree := `{"and":[{"attr":"gender","op":"=","value":"female"}]}`
	for _, lang := range []string{"zh-CN", "en"} {
		b := ah.browser()
		token := b.signIn(ownerEmail)
		b.setCookie("lang", lang)
		pages := []response{
			b.get("/audiences"), b.get("/audiences/new"), b.get(fmt.Sprintf("/audiences/%d", a.ID)),
			b.get("/analytics/scores"), b.get("/analytics/scores/settings"),
			b.post("/audiences/preview", url.Values{"conditions": {tree}, "col": {"phone", "rfm_class", "lifecycle", "fan_tier", "source"}}, "X-CSRF-Token", token, "HX-Request", "true"),
			b.post("/audiences/breakdown", url.Values{"conditions": {tree}, "by": {"lifecycle"}}, "X-CSRF-Token", token, "HX-Request", "true"),
		}
		for _, res := range pages {
			wantStatus(t, res, http.StatusOK)
			body := regexp.MustCompile(`data-builder="[^"]*"`).ReplaceAllString(res.body, "")
			if m := untranslated.FindStringSubmatch(body); m != nil {
				t.Errorf("%s %s shows the key %q", lang, res.Request.URL.Path, m[1])
			}
		}
		if lang == "en" {
			wantBody(t, pages[3], "RFM classes", "Lifecycle stages", "Onboarding")
			wantBody(t, pages[1], "Estimated size", "Save audience")
			if text, _ := builderData(t, pages[1].body)["text"].(map[string]any); text["group.all"] != "Match all of" {
				t.Fatalf("the English builder's strings: %v", text["group.all"])
			}
		}
	}
}
