package console

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// wecomSettingsPage is the data of WeCom → Connection: the settings form,
// the callback URL with the steps to set it up in WeCom's admin, and the
// connection test.
type wecomSettingsPage struct {
	Configured  bool
	Settings    wecom.Settings // secrets masked; zero until configured
	CallbackURL string
	// LocalCallback: the callback URL names this machine or a private
	// network, which WeCom's servers cannot reach.
	LocalCallback bool
	CanManage     bool
	Form          wecomForm
	Err           formError
	Test          *wecomTestView
	Loc           *time.Location
}

// wecomForm holds the form's values: the saved ones, or the submitted ones
// after an error. The secret is never put back in the page.
type wecomForm struct {
	CorpID, AgentID, BaseURL string
	Token, AESKey            string // only as typed or generated, never the saved ones
	Advanced                 bool   // open the advanced part (a base URL other than WeCom's)
}

// wecomTestView is a connection test as the page shows it.
type wecomTestView struct {
	OK  bool
	At  time.Time
	Exp wecomExplanation
	Loc *time.Location
}

// TokenInput is the callback Token's input.
func (d wecomSettingsPage) TokenInput() wecomSecretInput {
	return wecomSecretInput{Field: "token", Value: d.Form.Token, Err: d.Err.Fields["token"], Saved: d.Settings.Token, CanManage: d.CanManage}
}

// AESKeyInput is the EncodingAESKey's input.
func (d wecomSettingsPage) AESKeyInput() wecomSecretInput {
	return wecomSecretInput{Field: "encoding_aes_key", Value: d.Form.AESKey, Err: d.Err.Fields["encoding_aes_key"],
		Saved: d.Settings.EncodingAESKey, CanManage: d.CanManage}
}

// wecomFields are the settings form's inputs, for errors beside them.
var wecomFields = []string{"corp_id", "agent_id", "secret", "token", "encoding_aes_key", "base_url"}

func (c *Console) wecomSettingsData(r *http.Request, s *signedIn) (wecomSettingsPage, error) {
	d := wecomSettingsPage{
		CallbackURL: c.deps.WeCom.CallbackURL(s.Workspace.Slug),
		CanManage:   s.Principal.Can(tenant.PermConnectorsManage),
		Loc:         s.Workspace.Location(),
	}
	d.LocalCallback = wecomLocalURL(d.CallbackURL)
	st, err := c.deps.WeCom.Settings(r.Context(), s.Principal.TenantID)
	switch {
	case errors.Is(err, wecom.ErrNotConfigured):
		return d, nil
	case err != nil:
		return d, fmt.Errorf("console: wecom settings: %w", err)
	}
	d.Configured, d.Settings = true, st
	d.CallbackURL = st.CallbackURL
	d.LocalCallback = wecomLocalURL(d.CallbackURL)
	d.Form = wecomForm{CorpID: st.CorpID, BaseURL: st.BaseURL}
	if st.AgentID > 0 {
		d.Form.AgentID = strconv.FormatInt(st.AgentID, 10)
	}
	if st.BaseURL == wecom.DefaultBaseURL {
		d.Form.BaseURL = ""
	}
	d.Form.Advanced = d.Form.BaseURL != ""
	if t := st.LastTest; t != nil {
		d.Test = c.wecomTestView(s, *t)
	}
	return d, nil
}

func (c *Console) wecomTestView(s *signedIn, t wecom.TestResult) *wecomTestView {
	return &wecomTestView{OK: t.OK, At: t.At, Exp: c.explainWeCom(s.Lang, t.ErrCode, t.Message, t.Fix), Loc: s.Workspace.Location()}
}

// isLocalURL reports a URL whose host WeCom cannot reach: this machine, a
// private network, or no host at all.
func wecomLocalURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return true
	}
	host := u.Hostname()
	if host == "" || host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".local") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast())
}

func (c *Console) wecomSettingsPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d, err := c.wecomSettingsData(r, s)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "wecom_settings", c.pageView(w, r, s, "wecom.settings.title", d))
	return nil
}

// wecomSettingsSave saves the settings. An empty secret, Token or
// EncodingAESKey keeps the saved one: the page never shows them, so the form
// cannot send them back.
func (c *Console) wecomSettingsSave(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	form := wecomForm{
		CorpID:  strings.TrimSpace(r.PostFormValue("corp_id")),
		AgentID: strings.TrimSpace(r.PostFormValue("agent_id")),
		BaseURL: strings.TrimSpace(r.PostFormValue("base_url")),
		Token:   strings.TrimSpace(r.PostFormValue("token")),
		AESKey:  strings.TrimSpace(r.PostFormValue("encoding_aes_key")),
	}
	in := wecom.SettingsInput{CorpID: form.CorpID, Secret: r.PostFormValue("secret"), Token: form.Token,
		EncodingAESKey: form.AESKey, BaseURL: form.BaseURL}
	var err error
	if form.AgentID != "" {
		if in.AgentID, err = strconv.ParseInt(form.AgentID, 10, 64); err != nil || in.AgentID < 0 {
			err = errs.Field("agent_id", "wecom_bad_agent_id", "the AgentId is the number shown on the self-built app's page")
		}
	}
	_, wasErr := c.deps.WeCom.Settings(r.Context(), s.Principal.TenantID)
	if err == nil {
		_, err = c.deps.WeCom.Configure(r.Context(), s.Principal, in)
	}
	if err == nil {
		c.log.InfoContext(r.Context(), "console: wecom settings saved", "tenant_id", s.Principal.TenantID, "user_id", s.User.ID)
		flash := "flash.wecom.saved"
		if errors.Is(wasErr, wecom.ErrNotConfigured) {
			flash = "flash.wecom.connected"
		}
		c.redirectWithFlash(w, r, "/connectors/wecom", flash)
		return nil
	}
	if !isUserError(err) {
		return err
	}
	d, lerr := c.wecomSettingsData(r, s)
	if lerr != nil {
		return lerr
	}
	form.Advanced = form.BaseURL != ""
	d.Form, d.Err = form, c.cat.formErrorFor(s.Lang, err, wecomFields...)
	c.render(w, r, statusOf(errs.KindOf(err)), "wecom_settings", c.pageView(w, r, s, "wecom.settings.title", d))
	return nil
}

// Lengths of what wecomGenerate makes: WeCom's admin takes a Token of up
// to 32 letters and digits and an EncodingAESKey of exactly 43.
const (
	wecomTokenLen  = 32
	wecomAESKeyLen = 43
)

// wecomAlnum is what WeCom's admin generates Tokens and EncodingAESKeys from.
const wecomAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomAlnum returns n letters and digits from crypto/rand, uniformly
// (bytes past the largest multiple of 62 are drawn again).
func wecomRandomAlnum(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("console: unable to generate a random value: %w", err)
		}
		for _, b := range buf {
			if int(b) < 256-256%len(wecomAlnum) && len(out) < n {
				out = append(out, wecomAlnum[int(b)%len(wecomAlnum)])
			}
		}
	}
	return string(out), nil
}

// wecomSecretInput is the Token or EncodingAESKey input, with a value
// just generated.
type wecomSecretInput struct {
	Field     string // token or encoding_aes_key
	Value     string
	Generated bool
	Err       string
	Saved     string // the saved value, masked, for the placeholder
	CanManage bool
}

// wecomGenerate makes a new callback Token or EncodingAESKey for the form
// (htmx swaps the input): random, from crypto/rand, in the alphabet and
// length WeCom's admin accepts. Nothing is saved until the form is.
func (c *Console) wecomGenerate(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	field := r.URL.Query().Get("field")
	n := 0
	switch field {
	case "token":
		n = wecomTokenLen
	case "encoding_aes_key":
		n = wecomAESKeyLen
	default:
		return errs.Field("field", "wecom_bad_generate_field", "only a token or an encoding_aes_key can be generated")
	}
	v, err := wecomRandomAlnum(n)
	if err != nil {
		return err
	}
	in := wecomSecretInput{Field: field, Value: v, Generated: true, CanManage: true}
	if st, err := c.deps.WeCom.Settings(r.Context(), s.Principal.TenantID); err == nil {
		in.Saved = st.Token
		if field == "encoding_aes_key" {
			in.Saved = st.EncodingAESKey
		}
	}
	if !isHTMX(r) {
		http.Redirect(w, r, "/connectors/wecom", http.StatusSeeOther)
		return nil
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "wecom_settings", "wecom_secret_input", in)
	return nil
}

// wecomTest fetches an access token with the saved settings and shows the
// outcome: in place for htmx, else on the settings page, which always shows
// the last test.
func (c *Console) wecomTest(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	res, err := c.deps.WeCom.TestConnection(r.Context(), s.Principal)
	if err != nil {
		return err
	}
	c.log.InfoContext(r.Context(), "console: wecom connection tested", "tenant_id", s.Principal.TenantID, "ok", res.OK, "errcode", res.ErrCode)
	if !isHTMX(r) {
		http.Redirect(w, r, "/connectors/wecom#wecom-test", http.StatusSeeOther)
		return nil
	}
	c.renderTemplate(w, r, http.StatusOK, s.Lang, "wecom_settings", "wecom_test_result", c.wecomTestView(s, res))
	return nil
}
