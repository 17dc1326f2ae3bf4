// Package e2e drives the whole program as a user would: the real server,
// started in-process on 127.0.0.1:0 against a fresh database, and a headless
// Chromium controlled through chromedp.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Environment the test reads.
const (
	envChromium    = "SIYU_CHROMIUM"    // path of the browser; default /usr/bin/chromium
	envScreenshots = "SIYU_SCREENSHOTS" // "1": save README screenshots to docs/screenshots
)

// browserTestBudget bounds a browser test over every engine. Alone, each
// takes well under half of it; the rest is for a machine busy with other
// packages' tests (go test runs packages in parallel).
const browserTestBudget = 100 * time.Second

const (
	adminEmail    = "admin@e2e.test"
	adminPassword = "e2e-password-123"
	workspaceSlug = "e2e-brand"
	workspaceName = "晨光咖啡"
)

// startServer runs the real Siyu (app.New + Serve on 127.0.0.1:0, via
// apptest) on a fresh database of the given engine, with a workspace and an
// admin made through a.Tenant.
func startServer(t *testing.T, engine db.Dialect) *apptest.Server {
	t.Helper()
	srv := apptest.Start(t, engine)
	ctx := context.Background()
	ws, err := srv.App.Tenant.CreateWorkspace(ctx, tenant.NewWorkspace{Slug: workspaceSlug, Name: workspaceName})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.App.Tenant.CreateUser(ctx, ws.ID, tenant.NewUser{Email: adminEmail, Name: "林晓", Password: adminPassword, Role: tenant.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	return srv
}

// chromium returns the browser to drive, or skips the test when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv(envChromium)
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no Chromium at %s (install chromium, or point %s at one): %v", path, envChromium, err)
	}
	return path
}

// startBrowser launches a headless Chromium with a fresh profile in the
// background and returns a function that waits for it (failing the test if
// it did not start), so that a test can seed its data meanwhile. The
// browser lives as long as ctx.
func startBrowser(t *testing.T, ctx context.Context, path string) func() context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(bctx) }() // starts the browser for the life of ctx
	return func() context.Context {
		t.Helper()
		if err := <-started; err != nil {
			t.Fatalf("start Chromium: %v", err)
		}
		// Accept the confirmation dialogs (hx-confirm) the test triggers.
		// The loop ends with the browser's context.
		dialogs := chromedp.Events(bctx, page.JavascriptDialogOpening)
		go func() {
			for _, err := range dialogs {
				if err != nil {
					return
				}
				_, _ = chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}
		}()
		return bctx
	}
}

// tab runs steps in the browser, each bounded by a timeout.
type tab struct {
	t   *testing.T
	ctx context.Context
}

func (b tab) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", step, err)
	}
}

// signIn opens url, is sent to the login page, signs in as the seeded admin
// and waits until visible (a selector) shows on the page it returns to.
func (b tab) signIn(url string, visible chromedp.CSS) {
	b.t.Helper()
	b.do("sign in",
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), adminEmail),
		chromedp.SendKeys(chromedp.CSS(`#password`), adminPassword),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(visible),
	)
}

// text is the visible text of the first element matching a CSS selector.
func (b tab) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (b tab) location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("read location: %v", err)
	}
	return s
}

func TestConsoleInBrowser(t *testing.T) {
	browser := chromium(t)
	deadline := time.Now().Add(browserTestBudget)
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			browserReady := startBrowser(t, ctx, browser)
			srv := startServer(t, engine)
			b := tab{t: t, ctx: browserReady()}
			css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

			// Sign in: the console sends us to the login page, then back.
			b.do("open the console",
				chromedp.Navigate(srv.URL+"/settings/api-keys"),
				chromedp.WaitVisible(css(`#email`)),
			)
			if loc := b.location(); !strings.Contains(loc, "/login?next=%2Fsettings%2Fapi-keys") {
				t.Fatalf("not sent to the login page: %s", loc)
			}
			b.do("sign in",
				chromedp.SendKeys(css(`#email`), adminEmail),
				chromedp.SendKeys(css(`#password`), adminPassword),
				chromedp.Submit(css(`#password`)),
				chromedp.WaitVisible(css(`#key-name`)),
				chromedp.Click(css(`a.nav-link[href="/"]`)),
				chromedp.WaitVisible(css(`.hero`)),
			)
			if nav := b.text(`.nav`); !strings.Contains(nav, "概览") || !strings.Contains(nav, "API 密钥") {
				t.Fatalf("the console is not in Chinese by default; nav: %q", nav)
			}

			// Switch to English and back.
			b.do("switch to English",
				chromedp.Click(css(`form.lang button[value="en"]`)),
				chromedp.WaitReady(css(`html[lang="en"] .hero`)),
			)
			nav, heading := b.text(`.nav`), b.text(`.hero h1`)
			if !strings.Contains(nav, "Overview") || !strings.Contains(nav, "API keys") || !strings.Contains(heading, "Welcome back") {
				t.Fatalf("after switching to English: nav %q, heading %q", nav, heading)
			}
			b.do("switch back to Chinese",
				chromedp.Click(css(`form.lang button[value="zh-CN"]`)),
				chromedp.WaitReady(css(`html[lang="zh-CN"] .hero`)),
			)
			if heading := b.text(`.hero h1`); !strings.Contains(heading, "欢迎回来") {
				t.Fatalf("after switching back: heading %q", heading)
			}
			if os.Getenv(envScreenshots) == "1" {
				screenshots(b, srv, "home", "/")
			}

			// Settings → API keys: create a key and read it off the page.
			b.do("create an API key",
				chromedp.Click(css(`a.nav-link[href="/settings/api-keys"]`)),
				chromedp.WaitVisible(css(`#key-name`)),
				chromedp.SendKeys(css(`#key-name`), "ERP 订单同步"),
				chromedp.SetValue(css(`#key-role`), "admin"),
				chromedp.Click(css(`#new-key-form button[type="submit"]`)),
				chromedp.WaitVisible(css(`#new-api-key`)),
			)
			key := b.text(`#new-api-key`)
			if !strings.HasPrefix(key, tenant.APIKeyPrefix) {
				t.Fatalf("the page shows %q, not an API key", key)
			}

			// The key works against the API.
			var me struct {
				Workspace struct{ Slug, Name string }
				Actor     struct{ Kind, Role string }
			}
			getJSON(t, srv.URL+"/api/v1/me", key, http.StatusOK, &me)
			if me.Workspace.Slug != workspaceSlug || me.Workspace.Name != workspaceName || me.Actor.Kind != "api_key" || me.Actor.Role != "admin" {
				t.Fatalf("/api/v1/me answered %+v", me)
			}
			var users struct{ Items []struct{ Email string } }
			getJSON(t, srv.URL+"/api/v1/users", key, http.StatusOK, &users)
			if len(users.Items) != 1 || users.Items[0].Email != adminEmail {
				t.Fatalf("/api/v1/users answered %+v", users)
			}

			// Revoke it in the console, accepting the confirmation; htmx
			// turns the row to revoked in place.
			b.do("revoke the key",
				chromedp.Click(css(`#api-keys tbody tr:first-child button`)),
				chromedp.WaitVisible(css(`#api-keys tbody tr:first-child .status-revoked`)),
			)
			if status := b.text(`#api-keys tbody tr:first-child .status-revoked`); status != "已吊销" {
				t.Fatalf("revoked row says %q", status)
			}
			var prob struct {
				Status int
				Code   string
			}
			getJSON(t, srv.URL+"/api/v1/me", key, http.StatusUnauthorized, &prob)
			if prob.Status != http.StatusUnauthorized || prob.Code != "invalid_api_key" {
				t.Fatalf("a revoked key got %+v", prob)
			}

			if os.Getenv(envScreenshots) == "1" {
				// A fresh key, so the picture shows the one-time panel
				// above a list with an active and a revoked key.
				b.do("create a second key",
					chromedp.SendKeys(css(`#key-name`), "小程序后端"),
					chromedp.Click(css(`#new-key-form button[type="submit"]`)),
					chromedp.WaitVisible(css(`#key-created`)),
				)
				screenshots(b, srv, "api-keys", "")
			}
		})
	}
}

// getJSON calls the API with an API key and decodes the answer.
func getJSON(t *testing.T, url, key string, wantStatus int, into any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %s", url, res.StatusCode, wantStatus, body)
	}
	ct := res.Header.Get("Content-Type")
	if wantStatus >= 400 && ct != "application/problem+json" {
		t.Fatalf("GET %s: error with Content-Type %q, want application/problem+json", url, ct)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

// screenshots saves full-page pictures of the page at path ("" for the page
// as it is) on a desktop and on a phone, into docs/screenshots.
func screenshots(b tab, srv *apptest.Server, name, path string) {
	t := b.t
	t.Helper()
	dir := filepath.Join(repoRoot(t), "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if path != "" {
		b.do("open "+path, chromedp.Navigate(srv.URL+path), chromedp.WaitVisible(chromedp.CSS(`main`)))
	}
	for _, size := range []struct {
		suffix string
		view   chromedp.Action[chromedp.Void]
	}{
		{"desktop", chromedp.EmulateViewport(1280, 800)},
		{"phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait)},
	} {
		b.do("resize to "+size.suffix, size.view, chromedp.Sleep(200*time.Millisecond))
		ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatalf("screenshot %s %s: %v", name, size.suffix, err)
		}
		file := filepath.Join(dir, fmt.Sprintf("console-%s-%s.png", name, size.suffix))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("saved %s", file)
	}
	b.do("reset the viewport", chromedp.EmulateViewport(1280, 800))
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal(errors.New("no go.mod above the test's directory"))
		}
		dir = parent
	}
}
