package console

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/importer"
	"github.com/siyu-dev/siyu/internal/tenant"
)

func TestRouteWithoutPermissionPanics(t *testing.T) {
	defer func() {
		p := recover()
		if p == nil || !strings.Contains(p.(string), "declares no permission") {
			t.Fatalf("recovered %v", p)
		}
	}()
	mustDeclarePermission(route{pattern: "GET /x", handle: func(http.ResponseWriter, *http.Request, *signedIn) error { return nil }})
}

// Every page of the console declares a permission (New would panic
// otherwise) and every sidebar entry names a catalogue key.
func TestEveryRouteDeclaresAPermission(t *testing.T) {
	// With every optional service, so that every route is listed.
	c := &Console{deps: Deps{Customers: &customer.Service{}, Commerce: &commerce.Service{}, Events: &event.Service{},
		Imports: &importer.Service{}}}
	cat, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range c.routes() {
		if rt.perm == "" {
			t.Errorf("%s declares no permission", rt.pattern)
		}
		if rt.nav != nil {
			for _, key := range []string{rt.nav.Label, rt.nav.Section} {
				if _, ok := cat.lookup(defaultLang, key); key != "" && !ok {
					t.Errorf("%s: nav key %q is not in the catalogue", rt.pattern, key)
				}
			}
		}
	}
}

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/settings/users", "/settings/users"},
		{"/settings/audit?cursor=x", "/settings/audit?cursor=x"},
		{"", "/"},
		{"settings", "/"},
		{"//evil.example", "/"},
		{"/\\evil.example", "/"},
		{"https://evil.example/x", "/"},
		{"/%0d%0aSet-Cookie:x", "/%0d%0aSet-Cookie:x"}, // stays encoded: harmless
		{"/a\r\nb", "/"},
	} {
		if got := localPath(tc.in); got != tc.want {
			t.Errorf("localPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The entry whose path is the longest prefix of the page's is the one
// marked active: a customer's page is the list's, the attribute catalogue
// is its own.
func TestNavMarksTheLongestMatch(t *testing.T) {
	c := &Console{deps: Deps{Customers: &customer.Service{}, Events: &event.Service{}}}
	c.pages = c.routes()
	owner := tenant.Principal{Role: tenant.RoleOwner}
	for _, tc := range []struct{ path, want string }{
		{"/", "/"},
		{"/customers", "/customers"},
		{"/customers/42", "/customers"},
		{"/customers/attributes", "/customers/attributes"},
		{"/write-keys", "/write-keys"},
		{"/settings/users", "/settings/users"},
	} {
		var active []string
		for _, sec := range c.navFor(owner, tc.path) {
			for _, it := range sec.Items {
				if it.Active {
					active = append(active, it.Path)
				}
			}
		}
		if len(active) != 1 || active[0] != tc.want {
			t.Errorf("%s: active %v, want [%s]", tc.path, active, tc.want)
		}
	}
}

func TestAgo(t *testing.T) {
	cat, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	c := &Console{cat: cat}
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Time{}, ""},
		{now.Add(-20 * time.Second), "刚刚"},
		{now.Add(-5 * time.Minute), "5 分钟前"},
		{now.Add(-3 * time.Hour), "3 小时前"},
		{now.Add(-50 * time.Hour), "2 天前"},
		{now.Add(-40 * 24 * time.Hour), "2026-01-29"},
	} {
		if got := c.ago("zh-CN", tc.at, time.UTC, now); got != tc.want {
			t.Errorf("ago(%v) = %q, want %q", tc.at, got, tc.want)
		}
	}
}

func TestMaskedValues(t *testing.T) {
	for _, tc := range []struct{ key, in, want string }{
		{"phone", "13800138000", "138****8000"},
		{"mobile", "+86 139 0013 9000", "139****9000"},
		{"email", "lilei@example.com", "li***@example.com"},
		{"contact", "x@brand.cn", "x***@brand.cn"},
		{"手机号", "not a number", strings.Repeat("*", 11)},
		{"order_id", "13800138000", "13800138000"}, // not personal by its key
		{"city", "上海", "上海"},
	} {
		if got := maskedValue(tc.key, tc.in); got != tc.want {
			t.Errorf("maskedValue(%q, %q) = %q, want %q", tc.key, tc.in, got, tc.want)
		}
	}
}

func TestSearchQuery(t *testing.T) {
	for _, tc := range []struct {
		in            string
		search, ident string
	}{
		{"李", "李", ""},
		{" 138 0013 8000 ", "138 0013 8000", ""},
		{"user_id:M0001", "", "user_id:M0001"},
		{"wechat_unionid: o6_abc ", "", "wechat_unionid:o6_abc"},
		{"note:vip", "note:vip", ""}, // not an identifier kind: a name search
	} {
		q := searchQuery(tc.in, false)
		if q.Search != tc.search || q.Identifier != tc.ident {
			t.Errorf("searchQuery(%q) = %+v", tc.in, q)
		}
	}
}

func TestYuan(t *testing.T) {
	for _, tc := range []struct {
		fen  int64
		want string
	}{
		{0, "¥0.00"}, {5, "¥0.05"}, {12800, "¥128.00"}, {153600, "¥1,536.00"}, {12345678901, "¥123,456,789.01"}, {-2000, "-¥20.00"},
		{-100000, "-¥1,000.00"},
	} {
		if got := yuan(tc.fen); got != tc.want {
			t.Errorf("yuan(%d) = %q, want %q", tc.fen, got, tc.want)
		}
	}
}

func TestDisplayPhone(t *testing.T) {
	for in, want := range map[string]string{"+8613800138000": "138 0013 8000", "138****8000": "138****8000", "+14155550100": "+14155550100", "": ""} {
		if got := displayPhone(in); got != want {
			t.Errorf("displayPhone(%q) = %q, want %q", in, got, want)
		}
	}
}
