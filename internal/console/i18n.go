package console

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

//go:embed i18n/*.json
var catalogueFS embed.FS

// defaultLang is the console's language when neither a cookie nor the user's
// saved locale chooses one.
const defaultLang = "zh-CN"

// languages lists the catalogues, default first.
func languages() []string { return []string{"zh-CN", "en"} }

// catalogue holds every user-visible string of the console, per language.
type catalogue struct {
	msgs map[string]map[string]string // language → key → text
}

func loadCatalogue() (*catalogue, error) {
	c := &catalogue{msgs: map[string]map[string]string{}}
	for _, lang := range languages() {
		// A language is its main file (i18n/zh-CN.json) plus any area files
		// (i18n/zh-CN.wecom.json), so that each part of the console keeps its
		// strings together; a key may be defined once only.
		files, err := fs.Glob(catalogueFS, "i18n/"+lang+".*json")
		if err != nil || len(files) == 0 {
			return nil, fmt.Errorf("console: no catalogue for %s", lang)
		}
		m := map[string]string{}
		for _, f := range files {
			if f != "i18n/"+lang+".json" && !strings.HasPrefix(f, "i18n/"+lang+".") {
				continue
			}
			b, err := catalogueFS.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("console: unable to read catalogue %s: %w", f, err)
			}
			part := map[string]string{}
			if err := json.Unmarshal(b, &part); err != nil {
				return nil, fmt.Errorf("console: catalogue %s is not a JSON object of strings: %w", f, err)
			}
			for k, v := range part {
				if _, dup := m[k]; dup {
					return nil, fmt.Errorf("console: catalogue key %q is defined twice for %s (again in %s)", k, lang, f)
				}
				m[k] = v
			}
		}
		c.msgs[lang] = m
	}
	return c, nil
}

// has reports whether lang is a language of the catalogue.
func (c *catalogue) has(lang string) bool {
	_, ok := c.msgs[lang]
	return ok
}

// lookup returns the text of key in lang, if the catalogue has it.
func (c *catalogue) lookup(lang, key string) (string, bool) {
	s, ok := c.msgs[lang][key]
	return s, ok
}

// text returns key in lang, formatted with args (fmt verbs, so a translation
// may reorder them with %[2]s). A missing key falls back to the default
// language and then to the key itself, which a test keeps from happening.
func (c *catalogue) text(lang, key string, args ...any) string {
	s, ok := c.lookup(lang, key)
	if !ok {
		if s, ok = c.lookup(defaultLang, key); !ok {
			return key
		}
	}
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

// errorText shows a domain error in lang: the catalogue's "error.<code>" when
// it has one, else the domain's own (English) message. Internal errors never
// show their text.
func (c *catalogue) errorText(lang string, err error) string {
	e, ok := errs.As(err)
	if !ok || e.Kind == errs.Internal {
		return c.text(lang, "error.internal")
	}
	if s, ok := c.lookup(lang, "error."+errs.CodeOf(e)); ok {
		return s
	}
	return e.Message
}

// language picks the console language: the lang cookie (set by the switch in
// the header), else the signed-in user's saved locale, else the default.
func (c *Console) language(r *http.Request, u *tenant.User) string {
	if ck, err := r.Cookie(langCookie); err == nil && c.cat.has(ck.Value) {
		return ck.Value
	}
	if u != nil && c.cat.has(u.Locale) {
		return u.Locale
	}
	return defaultLang
}

// formError is a failed form submission, shown in the user's language: a
// message above the form and one beside each field the domain named.
type formError struct {
	Message string
	Fields  map[string]string // field name → message
}

// Any reports whether there is an error to show.
func (f formError) Any() bool { return f.Message != "" || len(f.Fields) > 0 }

// formErrorFor translates a domain error for a form. Fields are the inputs the
// form has; a field error on any other input is shown above the form.
func (c *catalogue) formErrorFor(lang string, err error, fields ...string) formError {
	fe := formError{Message: c.errorText(lang, err)}
	e, ok := errs.As(err)
	if !ok {
		return fe
	}
	for _, f := range e.Fields {
		name := f.Location
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		for _, known := range fields {
			if known == name {
				if fe.Fields == nil {
					fe.Fields = map[string]string{}
				}
				fe.Fields[name] = c.errorText(lang, err)
				fe.Message = c.text(lang, "form.fix_errors")
			}
		}
	}
	return fe
}
