package console

import (
	"net/http"
	"strings"
	"testing"
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
	c := &Console{}
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
