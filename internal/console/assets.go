package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:embed static
var staticFS embed.FS

// asset is one embedded static file, served under a URL that carries a
// checksum of its content, so browsers may cache it for ever and a new
// release is fetched at once.
type asset struct {
	url   string // /static/app.1a2b3c4d.css
	ctype string
	body  []byte
	// gzip is made on the first request that accepts it, not at start-up:
	// compressing a large vendored file (ECharts) on every start would
	// slow the console's start and its tests for nothing.
	zipOnce sync.Once
	gzip    []byte // nil when compressing does not pay
}

// gzipped returns the compressed body, or nil when compressing does not pay.
func (a *asset) gzipped() []byte {
	a.zipOnce.Do(func() {
		if z := gzipped(a.body); len(z) < len(a.body)*9/10 {
			a.gzip = z
		}
	})
	return a.gzip
}

type assets struct {
	byName map[string]*asset // logical name ("app.css") → asset
	byFile map[string]*asset // served file name ("app.1a2b3c4d.css") → asset
}

// loadAssets reads every file under static/ (documentation aside) and names
// it by the first 8 hex digits of its SHA-256. Files are addressed by base
// name, so vendor/htmx.min.js is "htmx.min.js".
func loadAssets() (*assets, error) {
	as := &assets{byName: map[string]*asset{}, byFile: map[string]*asset{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".md") {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := path.Base(p)
		if _, dup := as.byName[name]; dup {
			return fmt.Errorf("two static files are named %s", name)
		}
		sum := sha256.Sum256(body)
		ext := path.Ext(name)
		file := strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:])[:8] + ext
		a := &asset{url: "/static/" + file, ctype: mime.TypeByExtension(ext), body: body}
		if a.ctype == "" {
			a.ctype = "application/octet-stream"
		}
		as.byName[name], as.byFile[file] = a, a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: unable to load static assets: %w", err)
	}
	return as, nil
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// url is the template function "asset": the checksummed URL of a static file.
// An unknown name is an error, which fails the page's rendering (and the
// tests) instead of linking to nothing.
func (as *assets) url(name string) (string, error) {
	a, ok := as.byName[name]
	if !ok {
		return "", fmt.Errorf("console: no static asset %q", name)
	}
	return a.url, nil
}

// serve answers GET /static/{file}. Only current checksummed names exist.
func (as *assets) serve(w http.ResponseWriter, r *http.Request) {
	a, ok := as.byFile[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Vary", "Accept-Encoding")
	body := a.body
	if acceptsGzip(r) {
		if z := a.gzipped(); z != nil {
			h.Set("Content-Encoding", "gzip")
			body = z
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
