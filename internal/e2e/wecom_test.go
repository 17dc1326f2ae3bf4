package e2e

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
)

// TestWeComInBrowser connects WeCom as an admin would: a Token and an
// EncodingAESKey generated in Siyu and pasted into WeCom (here: the
// simulator starts with them), the settings saved, the connection tested,
// WeCom verifying the callback URL; then a customer adds a staff member in
// WeCom and the callback shows up in the event log.
func TestWeComInBrowser(t *testing.T) {
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

			b.signIn(srv.URL+"/connectors/wecom", css(`#wecom-form`))
			if nav := b.text(`.nav`); !strings.Contains(nav, "企业微信") || !strings.Contains(nav, "回调日志") {
				t.Fatalf("the sidebar lacks the WeCom pages: %q", nav)
			}
			if state := b.text(`#wecom-state`); state != "未连接" {
				t.Fatalf("a new workspace's WeCom state is %q", state)
			}
			callback := b.text(`#wecom-callback-url`)
			if !strings.HasSuffix(callback, "/connect/wecom/"+workspaceSlug+"/callback") {
				t.Fatalf("the callback URL shown is %q", callback)
			}

			// Generate the Token and the EncodingAESKey in Siyu.
			b.do("generate a token and a key",
				chromedp.Click(css(`#wc-token-generate`)),
				chromedp.WaitVisible(css(`#wc-token-value`)),
				chromedp.Click(css(`#wc-encoding_aes_key-generate`)),
				chromedp.WaitVisible(css(`#wc-encoding_aes_key-value`)),
			)
			token, key := wecomValue(b, `#wc-token`), wecomValue(b, `#wc-encoding_aes_key`)
			if !regexp.MustCompile(`^[A-Za-z0-9]{32}$`).MatchString(token) || !regexp.MustCompile(`^[A-Za-z0-9]{43}$`).MatchString(key) {
				t.Fatalf("generated token %q, key %q", token, key)
			}
			if shown := b.text(`#wc-token-value`); shown != token {
				t.Fatalf("the copyable token %q differs from the input's %q", shown, token)
			}

			// The admin pastes them into WeCom: the simulated corp uses them.
			sim := wecomtest.New(wecomtest.Options{Token: token, EncodingAESKey: key,
				CallbackURL: srv.URL + "/connect/wecom/" + workspaceSlug + "/callback", CallbackRetries: -1})
			t.Cleanup(sim.Close)
			if _, err := sim.PutStaff(wecomtest.Staff{UserID: "zhangsan", Name: "张三"}); err != nil {
				t.Fatal(err)
			}
			b.do("fill in and save the settings",
				chromedp.SendKeys(css(`#wc-corp-id`), sim.CorpID()),
				chromedp.SendKeys(css(`#wc-agent-id`), "1000002"),
				chromedp.SendKeys(css(`#wc-secret`), sim.Secret()),
				chromedp.Click(css(`.wecom-advanced summary`)),
				chromedp.WaitVisible(css(`#wc-base-url`)),
				chromedp.SendKeys(css(`#wc-base-url`), sim.URL()),
				chromedp.Click(css(`#wecom-save`)),
				chromedp.WaitVisible(css(`#wecom-test-btn`)),
			)
			if state := b.text(`#wecom-state`); state != "已连接" {
				t.Fatalf("after saving, the state is %q", state)
			}
			if masked := b.text(`#wecom-secret-masked`); strings.Contains(masked, sim.Secret()) || !strings.HasSuffix(masked, sim.Secret()[len(sim.Secret())-4:]) {
				t.Fatalf("the secret is shown as %q", masked)
			}

			b.do("test the connection",
				chromedp.Click(css(`#wecom-test-btn`)),
				chromedp.WaitVisible(css(`#wecom-test-ok`)),
			)
			if ok := b.text(`#wecom-test-ok`); !strings.Contains(ok, "连接成功") {
				t.Fatalf("the test says %q", ok)
			}

			// WeCom verifies the URL with the Token and key generated above.
			if err := sim.VerifyCallbackURL(context.Background()); err != nil {
				t.Fatal(err)
			}
			b.do("reload", chromedp.Reload(), chromedp.WaitVisible(css(`#wecom-verified .status-on`)))
			if os.Getenv(envScreenshots) == "1" {
				screenshots(b, srv, "wecom", "")
			}

			// A customer adds 张三 in WeCom; the callback reaches the log.
			add, err := sim.AddContact(context.Background(), "zhangsan", wecomtest.Contact{Name: "王五"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if ds := sim.Deliveries(); len(ds) != 1 || !ds[0].OK {
				t.Fatalf("WeCom's delivery: %+v", ds)
			}
			b.do("open the callback log",
				chromedp.Click(css(`a.nav-link[href="/connectors/wecom/events"]`)),
				chromedp.WaitVisible(css(`#wecom-events tbody tr`)),
			)
			if row := b.text(`#wecom-events tbody tr`); !strings.Contains(row, "添加客户") || !strings.Contains(row, add.Contact.ExternalUserID) {
				t.Fatalf("the log's row says %q", row)
			}
			b.do("open the event",
				chromedp.Click(css(`#wecom-events tbody tr .row-actions a`)),
				chromedp.WaitVisible(css(`#wecom-event-payload`)),
			)
			payload := b.text(`#wecom-event-payload`)
			if !strings.Contains(payload, "<ExternalUserID>"+add.Contact.ExternalUserID+"</ExternalUserID>") ||
				strings.Contains(payload, add.WelcomeCode) {
				t.Fatalf("the event's message is %q", payload)
			}
		})
	}
}

// wecomValue is the current value of the first input matching sel.
func wecomValue(b tab, sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return v
}
