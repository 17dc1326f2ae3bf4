package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/console"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// cheapHash keeps password hashing fast in tests.
var cheapHash = tenant.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}

const (
	ownerEmail    = "owner@brand.test"
	analystEmail  = "analyst@brand.test"
	testPassword  = "correct horse battery"
	workspaceName = "测试品牌"
)

// harness is a console on a fresh database, served by httptest, with a
// workspace, an owner and an analyst.
type harness struct {
	t   *testing.T
	srv *httptest.Server
	ts  *tenant.Service
	d   *db.DB
	ws  tenant.Workspace
}

func newHarness(t *testing.T, d *db.DB) *harness {
	t.Helper()
	return newHarnessWith(t, d, console.Deps{Version: "test"})
}

// newHarnessWith is newHarness with deps (Log and Tenant are filled in).
func newHarnessWith(t *testing.T, d *db.DB, deps console.Deps) *harness {
	t.Helper()
	return newHarnessFunc(t, d, func(*tenant.Service) console.Deps { return deps })
}

// newHarnessFunc is newHarness with the deps made by fn from the tenant
// service (Log and Tenant are filled in).
func newHarnessFunc(t *testing.T, d *db.DB, fn func(*tenant.Service) console.Deps) *harness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ts := tenant.NewService(d, tenant.Options{Logger: log, HashParams: cheapHash})
	deps := fn(ts)
	deps.Log, deps.Tenant = log, ts
	con, err := console.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	con.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx := context.Background()
	ws, err := ts.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: "test-brand", Name: workspaceName})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []tenant.NewUser{
		{Email: ownerEmail, Name: "Owner", Password: testPassword, Role: tenant.RoleOwner},
		{Email: analystEmail, Name: "Analyst", Password: testPassword, Role: tenant.RoleAnalyst},
	} {
		if _, err := ts.CreateUser(ctx, ws.ID, u); err != nil {
			t.Fatal(err)
		}
	}
	return &harness{t: t, srv: srv, ts: ts, d: d, ws: ws}
}

// browser is a client with a cookie jar that does not follow redirects, so
// tests see each 303.
type browser struct {
	h   *harness
	c   *http.Client
	jar *cookiejar.Jar
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{h: h, jar: jar, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// response is a read response.
type response struct {
	*http.Response
	body string
}

func (b *browser) do(req *http.Request) response {
	b.h.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return response{Response: res, body: string(body)}
}

func (b *browser) get(path string) response {
	b.h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.h.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, header ...string) response {
	b.h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.h.srv.URL)
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.h.srv.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfFrom returns the CSRF token of the first form on a page.
func csrfFrom(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field on the page:\n%s", body)
	}
	return m[1]
}

// signIn signs b in through the login form and returns the session's CSRF token.
func (b *browser) signIn(email string) string {
	t := b.h.t
	t.Helper()
	login := b.get("/login")
	res := b.post("/login", url.Values{"csrf": {csrfFrom(t, login.body)}, "email": {email}, "password": {testPassword}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in as %s: status %d\n%s", email, res.StatusCode, res.body)
	}
	home := b.get("/")
	if home.StatusCode != http.StatusOK {
		t.Fatalf("home after sign-in: status %d", home.StatusCode)
	}
	return csrfFrom(t, home.body)
}

func wantStatus(t *testing.T, res response, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d\n%s", res.Request.Method, res.Request.URL.Path, res.StatusCode, want, res.body)
	}
}

func wantBody(t *testing.T, res response, substrings ...string) {
	t.Helper()
	for _, s := range substrings {
		if !strings.Contains(res.body, s) {
			t.Fatalf("%s %s: body lacks %q\n%s", res.Request.Method, res.Request.URL.Path, s, res.body)
		}
	}
}

func wantNoBody(t *testing.T, res response, substrings ...string) {
	t.Helper()
	for _, s := range substrings {
		if strings.Contains(res.body, s) {
			t.Fatalf("%s %s: body has %q", res.Request.Method, res.Request.URL.Path, s)
		}
	}
}

func TestLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)
		b := h.browser()

		res := b.get("/settings/users")
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/login?next=%2Fsettings%2Fusers" {
			t.Fatalf("unauthenticated redirect to %q", loc)
		}

		login := b.get("/login?next=%2Fsettings%2Fusers")
		wantStatus(t, login, http.StatusOK)
		wantBody(t, login, `lang="zh-CN"`, "登录 Siyu")
		token := csrfFrom(t, login.body)

		// Wrong password: the form again, with a readable message, no session.
		res = b.post("/login", url.Values{"csrf": {token}, "email": {ownerEmail}, "password": {"not the password"}, "next": {"/settings/users"}})
		wantStatus(t, res, http.StatusUnauthorized)
		wantBody(t, res, "邮箱或密码错误", `value="owner@brand.test"`)
		if b.cookie("siyu_session") != nil {
			t.Fatal("a failed sign-in set a session cookie")
		}

		res = b.post("/login", url.Values{"csrf": {token}, "email": {ownerEmail}, "password": {testPassword}, "next": {"/settings/users"}})
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/settings/users" {
			t.Fatalf("after sign-in, redirect to %q", loc)
		}
		var sc *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == "siyu_session" {
				sc = c
			}
		}
		if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" || sc.Secure {
			t.Fatalf("session cookie: %+v", sc)
		}
		res = b.get("/settings/users")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, ownerEmail, analystEmail, workspaceName)

		// Signed in, /login moves on.
		res = b.get("/login")
		wantStatus(t, res, http.StatusSeeOther)
	})
}

func TestWrongPasswordMessageInEnglish(t *testing.T) {
	h := newHarness(t, dbtest.Open(t, db.SQLite))
	b := h.browser()
	b.setCookie("lang", "en")
	token := csrfFrom(t, b.get("/login").body)
	res := b.post("/login", url.Values{"csrf": {token}, "email": {ownerEmail}, "password": {"nope nope nope"}})
	wantStatus(t, res, http.StatusUnauthorized)
	wantBody(t, res, `lang="en"`, "Wrong email or password.")
	wantNoBody(t, res, "邮箱或密码错误")
}

func TestLoginRateLimited(t *testing.T) {
	h := newHarness(t, dbtest.Open(t, db.SQLite))
	b := h.browser()
	token := csrfFrom(t, b.get("/login").body)
	for i := 0; i < 5; i++ {
		res := b.post("/login", url.Values{"csrf": {token}, "email": {ownerEmail}, "password": {"wrong password"}})
		wantStatus(t, res, http.StatusUnauthorized)
	}
	// Even the right password waits now.
	res := b.post("/login", url.Values{"csrf": {token}, "email": {ownerEmail}, "password": {testPassword}})
	wantStatus(t, res, http.StatusTooManyRequests)
	wantBody(t, res, "登录失败次数过多")
}

func TestLoginNeedsItsCSRFToken(t *testing.T) {
	h := newHarness(t, dbtest.Open(t, db.SQLite))
	b := h.browser()
	b.get("/login") // sets the double-submit cookie
	for _, token := range []string{"", "forged-forged-forged-forged-forged-forged"} {
		res := b.post("/login", url.Values{"csrf": {token}, "email": {ownerEmail}, "password": {testPassword}})
		wantStatus(t, res, http.StatusForbidden)
		wantBody(t, res, "安全令牌")
		if b.cookie("siyu_session") != nil {
			t.Fatal("a sign-in without its CSRF token opened a session")
		}
	}
}

func TestLoginRedirectsOnlyToLocalPaths(t *testing.T) {
	h := newHarness(t, dbtest.Open(t, db.SQLite))
	for _, tc := range []struct{ next, want string }{
		{"/settings/audit?cursor=abc", "/settings/audit?cursor=abc"},
		{"//evil.example/steal", "/"},
		{"https://evil.example/", "/"},
		{"/\\evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"", "/"},
	} {
		b := h.browser()
		token := csrfFrom(t, b.get("/login").body)
		res := b.post("/login", url.Values{"csrf": {token}, "email": {ownerEmail}, "password": {testPassword}, "next": {tc.next}})
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != tc.want {
			t.Errorf("next=%q: redirect to %q, want %q", tc.next, loc, tc.want)
		}
	}
}

func TestExpiredSessionSaysSo(t *testing.T) {
	h := newHarness(t, dbtest.Open(t, db.SQLite))
	b := h.browser()
	b.setCookie("siyu_session", "no-such-session")
	res := b.get("/settings/workspace")
	wantStatus(t, res, http.StatusSeeOther)
	loc := res.Header.Get("Location")
	if !strings.HasPrefix(loc, "/login?") || !strings.Contains(loc, "expired=1") || !strings.Contains(loc, "next=%2Fsettings%2Fworkspace") {
		t.Fatalf("expired session redirected to %q", loc)
	}
	res = b.get(loc)
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, "登录已过期，请重新登录")

	// htmx requests are told to navigate instead of following a redirect.
	b.setCookie("siyu_session", "no-such-session")
	res = b.post("/settings/api-keys/1/revoke", url.Values{}, "HX-Request", "true")
	wantStatus(t, res, http.StatusUnauthorized)
	if hx := res.Header.Get("HX-Redirect"); !strings.HasPrefix(hx, "/login") {
		t.Fatalf("HX-Redirect %q", hx)
	}
}

func TestLogout(t *testing.T) {
	h := newHarness(t, dbtest.Open(t, db.SQLite))
	b := h.browser()
	token := b.signIn(ownerEmail)

	res := b.post("/logout", url.Values{"csrf": {"forged"}})
	wantStatus(t, res, http.StatusForbidden)
	wantStatus(t, b.get("/"), http.StatusOK) // still signed in

	res = b.post("/logout", url.Values{"csrf": {token}})
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/login?signed_out=1" {
		t.Fatalf("logout redirected to %q", loc)
	}
	wantBody(t, b.get("/login?signed_out=1"), "你已安全退出")
	wantStatus(t, b.get("/"), http.StatusSeeOther)
}

// A forged or missing CSRF token is refused with a readable 403 and the
// change is not made; the session's token, as a field or as htmx's header,
// is accepted.
func TestCSRFForgedTokenChangesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)
		b := h.browser()
		token := b.signIn(ownerEmail)
		ctx := context.Background()

		for _, forged := range []url.Values{
			{"csrf": {"forged-token"}, "name": {"Evil key"}, "role": {"admin"}},
			{"name": {"Evil key"}, "role": {"admin"}},
		} {
			res := b.post("/settings/api-keys", forged)
			wantStatus(t, res, http.StatusForbidden)
			wantBody(t, res, "请求已失效", "未做任何更改")
		}
		keys, err := h.ts.APIKeys(ctx, h.ws.ID, page.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if len(keys.Items) != 0 {
			t.Fatalf("a forged request created %d API keys", len(keys.Items))
		}

		res := b.post("/settings/workspace", url.Values{"csrf": {token + "x"}, "name": {"Hijacked"}, "timezone": {"UTC"}})
		wantStatus(t, res, http.StatusForbidden)
		res = b.post("/settings/workspace", url.Values{"name": {"Hijacked"}, "timezone": {"UTC"}}, "X-CSRF-Token", "forged")
		wantStatus(t, res, http.StatusForbidden)
		ws, err := h.ts.Workspace(ctx, h.ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ws.Name != workspaceName || ws.Timezone != "Asia/Shanghai" {
			t.Fatalf("a forged request changed the workspace: %+v", ws)
		}

		// The real token works, as a field and as a header.
		res = b.post("/settings/workspace", url.Values{"csrf": {token}, "name": {"新名字"}, "timezone": {"Asia/Tokyo"}})
		wantStatus(t, res, http.StatusSeeOther)
		res = b.post("/settings/api-keys", url.Values{"name": {"ERP"}, "role": {"operator"}}, "X-CSRF-Token", token)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "siyu_")
	})
}

func TestCrossOriginPostRefused(t *testing.T) {
	h := newHarness(t, dbtest.Open(t, db.SQLite))
	b := h.browser()
	token := b.signIn(ownerEmail)
	res := b.post("/settings/workspace", url.Values{"csrf": {token}, "name": {"Cross"}, "timezone": {"UTC"}},
		"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	wantStatus(t, res, http.StatusForbidden)
	wantBody(t, res, "请求已失效")
	ws, _ := h.ts.Workspace(context.Background(), h.ws.ID)
	if ws.Name != workspaceName {
		t.Fatalf("a cross-origin request changed the workspace name to %q", ws.Name)
	}
}

func TestAnalystIsForbiddenFromUsersPage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)
		b := h.browser()
		token := b.signIn(analystEmail)

		res := b.get("/settings/users")
		wantStatus(t, res, http.StatusForbidden)
		wantBody(t, res, "没有权限", "分析师", "users.manage")

		res = b.post("/settings/users", url.Values{"csrf": {token}, "email": {"new@brand.test"}, "password": {testPassword}, "role": {"analyst"}})
		wantStatus(t, res, http.StatusForbidden)
		users, _ := h.ts.Users(context.Background(), h.ws.ID)
		if len(users) != 2 {
			t.Fatalf("an analyst added a user")
		}

		// The sidebar shows what the role may open, and nothing else.
		home := b.get("/")
		wantBody(t, home, `href="/settings/audit"`, `href="/settings/workspace"`)
		wantNoBody(t, home, `href="/settings/users"`, `href="/settings/api-keys"`)
		wantStatus(t, b.get("/settings/api-keys"), http.StatusForbidden)
		wantStatus(t, b.get("/settings/audit"), http.StatusOK)
		ws := b.get("/settings/workspace")
		wantStatus(t, ws, http.StatusOK)
		wantBody(t, ws, "只有所有者和管理员可以修改")
		wantNoBody(t, ws, `action="/settings/workspace"`)

		// In the user's language.
		b.setCookie("lang", "en")
		res = b.get("/settings/users")
		wantStatus(t, res, http.StatusForbidden)
		wantBody(t, res, "Access denied", "Analyst")
	})
}

func TestLanguageSwitch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)

		// Before sign-in: the switch on the login page.
		b := h.browser()
		login := b.get("/login")
		wantBody(t, login, `lang="zh-CN"`, "登录 Siyu")
		res := b.post("/lang", url.Values{"csrf": {csrfFrom(t, login.body)}, "lang": {"en"}, "next": {"/login"}})
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/login" {
			t.Fatalf("language switch redirected to %q", loc)
		}
		wantBody(t, b.get("/login"), `lang="en"`, "Sign in to Siyu")

		// A forged switch is refused.
		res = b.post("/lang", url.Values{"csrf": {"forged"}, "lang": {"zh-CN"}})
		wantStatus(t, res, http.StatusForbidden)

		// After sign-in: the switch in the header saves the user's locale,
		// which then applies in a browser without the cookie.
		b2 := h.browser()
		token := b2.signIn(ownerEmail)
		wantBody(t, b2.get("/settings/workspace"), "工作区名称")
		res = b2.post("/lang", url.Values{"csrf": {token}, "lang": {"en"}, "next": {"/settings/workspace"}})
		wantStatus(t, res, http.StatusSeeOther)
		wantBody(t, b2.get("/settings/workspace"), "Workspace name")

		b3 := h.browser()
		b3.signIn(ownerEmail)
		wantBody(t, b3.get("/"), `lang="en"`, "Overview")
		// The cookie wins over the saved locale.
		b3.setCookie("lang", "zh-CN")
		wantBody(t, b3.get("/"), `lang="zh-CN"`, "概览")
	})
}

func TestUsersPage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)
		b := h.browser()
		token := b.signIn(ownerEmail)
		ctx := context.Background()

		// A domain validation error is shown beside its field, in zh-CN.
		res := b.post("/settings/users", url.Values{"csrf": {token}, "email": {"new@brand.test"}, "name": {"新人"}, "password": {"short"}, "role": {"staff"}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "密码至少需要 10 个字符", `value="new@brand.test"`, `aria-invalid="true"`)
		res = b.post("/settings/users", url.Values{"csrf": {token}, "email": {analystEmail}, "password": {testPassword}, "role": {"staff"}})
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, "已有成员使用这个邮箱")

		res = b.post("/settings/users", url.Values{"csrf": {token}, "email": {"new@brand.test"}, "name": {"新人"}, "password": {testPassword}, "role": {"staff"}})
		wantStatus(t, res, http.StatusSeeOther)
		page := b.get("/settings/users")
		wantBody(t, page, "成员已添加", "new@brand.test", "从未登录")
		wantNoBody(t, b.get("/settings/users"), "成员已添加") // the notice shows once

		users, _ := h.ts.Users(ctx, h.ws.ID)
		var newID, ownerID int64
		for _, u := range users {
			switch u.Email {
			case "new@brand.test":
				newID = u.ID
			case ownerEmail:
				ownerID = u.ID
			}
		}

		// Row actions through htmx answer with the row.
		hx := []string{"HX-Request", "true", "X-CSRF-Token", token}
		res = b.post(fmt.Sprintf("/settings/users/%d/role", newID), url.Values{"role": {"operator"}}, hx...)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, fmt.Sprintf(`id="user-%d"`, newID), "已保存")
		res = b.post(fmt.Sprintf("/settings/users/%d/disable", newID), url.Values{}, hx...)
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "已停用", "启用")
		u, _ := h.ts.User(ctx, h.ws.ID, newID)
		if !u.Disabled() || u.Role != tenant.RoleOperator {
			t.Fatalf("after role change and disable: %+v", u)
		}
		// A refused action keeps the row and says why.
		res = b.post(fmt.Sprintf("/settings/users/%d/disable", ownerID), url.Values{}, hx...)
		wantStatus(t, res, http.StatusConflict)
		wantBody(t, res, "不能停用自己的账号")
		// Without htmx: back to the page.
		res = b.post(fmt.Sprintf("/settings/users/%d/enable", newID), url.Values{"csrf": {token}})
		wantStatus(t, res, http.StatusSeeOther)
		wantStatus(t, b.post("/settings/users/999999/enable", url.Values{"csrf": {token}}), http.StatusNotFound)
	})
}

func TestAPIKeyShownOnceAndRevoked(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)
		b := h.browser()
		token := b.signIn(ownerEmail)
		ctx := context.Background()

		wantBody(t, b.get("/settings/api-keys"), "还没有 API 密钥")
		res := b.post("/settings/api-keys", url.Values{"csrf": {token}, "name": {""}, "role": {"operator"}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantBody(t, res, "名称须为 1–100 个字符")

		res = b.post("/settings/api-keys", url.Values{"csrf": {token}, "name": {"ERP 订单同步"}, "role": {"operator"}})
		wantStatus(t, res, http.StatusOK)
		m := regexp.MustCompile(`id="new-api-key"[^>]*>(siyu_[a-z0-9]+)<`).FindStringSubmatch(res.body)
		if m == nil {
			t.Fatalf("no plaintext key on the page:\n%s", res.body)
		}
		plain := m[1]
		p, err := h.ts.AuthenticateAPIKey(ctx, plain, tenant.RequestMeta{})
		if err != nil || p.TenantID != h.ws.ID || p.Role != tenant.RoleOperator {
			t.Fatalf("the shown key: %+v, %v", p, err)
		}
		list := b.get("/settings/api-keys")
		wantBody(t, list, "ERP 订单同步", plain[:11]+"…")
		wantNoBody(t, list, plain)

		keys, _ := h.ts.APIKeys(ctx, h.ws.ID, page.Request{})
		res = b.post(fmt.Sprintf("/settings/api-keys/%d/revoke", keys.Items[0].ID), url.Values{"csrf": {token}})
		wantStatus(t, res, http.StatusSeeOther)
		wantBody(t, b.get("/settings/api-keys"), "API 密钥已吊销", "已吊销")
		if _, err := h.ts.AuthenticateAPIKey(ctx, plain, tenant.RequestMeta{}); err == nil {
			t.Fatal("a revoked key still authenticates")
		}
	})
}

func TestAuditLogPages(t *testing.T) {
	d := dbtest.Open(t, db.SQLite)
	h := newHarness(t, d)
	ctx := context.Background()
	sys := tenant.System(h.ws.ID)
	sys.IP = "203.0.113.9"
	for i := 0; i < 60; i++ {
		if err := h.ts.Audit(ctx, d, sys, "user.update", "user", fmt.Sprint(i), fmt.Sprintf("change %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	b := h.browser()
	b.signIn(analystEmail)
	first := b.get("/settings/audit")
	wantStatus(t, first, http.StatusOK)
	wantBody(t, first, "修改成员", "203.0.113.9", "登录", "下一页")
	m := regexp.MustCompile(`href="(/settings/audit\?cursor=[^"]+)"`).FindStringSubmatch(first.body)
	if m == nil {
		t.Fatal("no next-page link")
	}
	next := b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	wantStatus(t, next, http.StatusOK)
	wantBody(t, next, "change 00", "回到最新")
	wantNoBody(t, next, "change 59")
	wantStatus(t, b.get("/settings/audit?cursor=garbage!"), http.StatusUnprocessableEntity)
}

func TestNotFound(t *testing.T) {
	h := newHarness(t, dbtest.Open(t, db.SQLite))
	b := h.browser()
	res := b.get("/no/such/page")
	wantStatus(t, res, http.StatusNotFound)
	wantBody(t, res, "页面不存在")
	b.signIn(ownerEmail)
	res = b.get("/no/such/page")
	wantStatus(t, res, http.StatusNotFound)
	wantBody(t, res, "页面不存在", `href="/settings/users"`) // inside the layout
	res = b.get("/api/v2/nothing")
	wantStatus(t, res, http.StatusNotFound)
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("API-looking 404 has Content-Type %q", ct)
	}
}

func TestStaticAssetsAreChecksummedAndCacheable(t *testing.T) {
	h := newHarness(t, dbtest.Open(t, db.SQLite))
	b := h.browser()
	login := b.get("/login")
	for _, tc := range []struct{ file, pattern, ctype string }{
		{"static/app.css", `href="(/static/app\.([0-9a-f]{8})\.css)"`, "text/css; charset=utf-8"},
		{"static/app.js", `src="(/static/app\.([0-9a-f]{8})\.js)"`, "text/javascript; charset=utf-8"},
		{"static/vendor/htmx.min.js", `src="(/static/htmx\.min\.([0-9a-f]{8})\.js)"`, "text/javascript; charset=utf-8"},
	} {
		m := regexp.MustCompile(tc.pattern).FindStringSubmatch(login.body)
		if m == nil {
			t.Fatalf("no link matching %s on the login page", tc.pattern)
		}
		content, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		if want := hex.EncodeToString(sum[:])[:8]; m[2] != want {
			t.Fatalf("%s is served as %s, want hash %s", tc.file, m[1], want)
		}
		res := b.get(m[1])
		wantStatus(t, res, http.StatusOK)
		if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Fatalf("%s: Cache-Control %q", m[1], cc)
		}
		if ct := res.Header.Get("Content-Type"); ct != tc.ctype {
			t.Fatalf("%s: Content-Type %q", m[1], ct)
		}
		if res.body != string(content) { // the Go client undoes gzip itself
			t.Fatalf("%s: body differs from %s", m[1], tc.file)
		}
	}
	wantStatus(t, b.get("/static/app.css"), http.StatusNotFound)
	wantStatus(t, b.get("/static/app.00000000.css"), http.StatusNotFound)
}

// The vendored htmx is the file VENDOR.md describes.
func TestVendoredHTMXMatchesVendorNote(t *testing.T) {
	js, err := os.ReadFile("static/vendor/htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	note, err := os.ReadFile("static/vendor/VENDOR.md")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(js)
	if !strings.Contains(string(note), hex.EncodeToString(sum[:])) {
		t.Fatalf("VENDOR.md does not list htmx.min.js's sha256 %x", sum)
	}
	if !strings.Contains(string(js), `version:"2.0.`) {
		t.Fatal("htmx.min.js is not htmx 2.0.x")
	}
}

// readCatalogue reads a language as the console loads it: its main file
// plus its area files (zh-CN.tags.json, …).
func readCatalogue(t *testing.T, lang string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("i18n", lang+".*json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no catalogue for %s: %v", lang, err)
	}
	m := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		part := map[string]string{}
		if err := json.Unmarshal(b, &part); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for k, v := range part {
			if _, dup := m[k]; dup {
				t.Errorf("%s: %q is defined twice", f, k)
			}
			m[k] = v
		}
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestCataloguesHaveTheSameKeys(t *testing.T) {
	zh, en := readCatalogue(t, "zh-CN"), readCatalogue(t, "en")
	for _, k := range sortedKeys(zh) {
		if _, ok := en[k]; !ok {
			t.Errorf("en.json lacks %q", k)
		}
		if zh[k] == "" {
			t.Errorf("zh-CN.json: %q is empty", k)
		}
	}
	for _, k := range sortedKeys(en) {
		if _, ok := zh[k]; !ok {
			t.Errorf("zh-CN.json lacks %q", k)
		}
		if en[k] == "" {
			t.Errorf("en.json: %q is empty", k)
		}
		if strings.Count(zh[k], "%") != strings.Count(en[k], "%") {
			t.Errorf("%q: the translations take different arguments", k)
		}
	}
}

// Every key the templates and the Go code name literally is in the catalogue
// (keys built at run time, like "role."+role, are covered by the pages the
// other tests render).
func TestCatalogueHasEveryKeyUsed(t *testing.T) {
	zh := readCatalogue(t, "zh-CN")
	check := func(file, key string) {
		if _, ok := zh[key]; ok {
			return
		}
		for k := range zh { // a prefix the code completes, e.g. "home.step.team" + ".title"
			if strings.HasPrefix(k, key+".") {
				return
			}
		}
		t.Errorf("%s uses %q, which the catalogue lacks", file, key)
	}
	tmplKey := regexp.MustCompile(`\{\{-?\s*(?:t|tx)\s+"([^"]+)"`)
	tmplKey2 := regexp.MustCompile(`\(t "([^"]+)"`)
	files, _ := filepath.Glob("templates/*.html")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range append(tmplKey.FindAllStringSubmatch(string(b), -1), tmplKey2.FindAllStringSubmatch(string(b), -1)...) {
			check(f, m[1])
		}
	}
	goKey := regexp.MustCompile(`"((?:nav|lang|role|common|form|login|error|forbidden|notfound|home|workspace|users|apikeys|audit|flash|` +
		`customers|customer|attributes|imports|import|writekeys|ingesterrors|timeline|orders|time)\.[A-Za-z0-9_.-]*[A-Za-z0-9_-])"`)
	files, _ = filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue // examples in comments
			}
			for _, m := range goKey.FindAllStringSubmatch(line, -1) {
				check(f, m[1])
			}
		}
	}
}

// No user-visible text in Go: string literals in the console's Go code with
// CJK characters would be untranslated text.
func TestNoChineseInGoCode(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	cjk := regexp.MustCompile(`"[^"\n]*\p{Han}[^"\n]*"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := cjk.FindString(string(b)); m != "" {
			t.Errorf("%s has a user-visible string %s; put it in the catalogue", f, m)
		}
	}
}

func TestHomeSuggestsNextSteps(t *testing.T) {
	h := newHarness(t, dbtest.Open(t, db.SQLite))
	b := h.browser()
	b.signIn(ownerEmail)
	res := b.get("/")
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, workspaceName, "欢迎回来，Owner", "创建 API 密钥，接入数据", "邀请你的团队", `href="/settings/api-keys"`)
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("a page with a CSRF token is cacheable: %q", cc)
	}
	// An analyst is not sent to pages they cannot open.
	a := h.browser()
	a.signIn(analystEmail)
	res = a.get("/")
	wantNoBody(t, res, "创建 API 密钥，接入数据", "邀请你的团队")
	wantBody(t, res, "查看审计日志")
}

func TestSecureCookiesWhenServedOverHTTPS(t *testing.T) {
	h := newHarnessWith(t, dbtest.Open(t, db.SQLite), console.Deps{Secure: true})
	b := h.browser()
	login := b.get("/login")
	for _, c := range login.Cookies() {
		if !c.Secure || !c.HttpOnly {
			t.Errorf("cookie %s: Secure %v, HttpOnly %v", c.Name, c.Secure, c.HttpOnly)
		}
	}
	// The cookie jar keeps Secure cookies from plain-HTTP test servers out of
	// requests, so post the token by hand.
	token := csrfFrom(t, login.body)
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/login",
		strings.NewReader(url.Values{"csrf": {token}, "email": {ownerEmail}, "password": {testPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "siyu_csrf", Value: token})
	res := b.do(req)
	wantStatus(t, res, http.StatusSeeOther)
	var found bool
	for _, c := range res.Cookies() {
		if c.Name == "siyu_session" {
			found = true
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("session cookie %+v", c)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie")
	}
}

// An internal failure shows the error page and says nothing of the cause.
func TestInternalErrorPage(t *testing.T) {
	d := dbtest.Open(t, db.SQLite)
	h := newHarness(t, d)
	b := h.browser()
	b.signIn(ownerEmail)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	res := b.get("/settings/users")
	wantStatus(t, res, http.StatusInternalServerError)
	wantBody(t, res, "出错了", "服务器出现问题")
	wantNoBody(t, res, "sql:", "database is closed")
}
