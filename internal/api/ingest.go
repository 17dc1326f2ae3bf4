package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/event"
)

// ingestRoute maps a path of the Segment HTTP tracking API (and RudderStack's
// one-letter form of it) to an ingest endpoint.
type ingestRoute struct{ path, short, endpoint string }

func ingestRoutes() []ingestRoute {
	return []ingestRoute{
		{"batch", "b", event.EndpointBatch},
		{"identify", "i", string(event.Identify)},
		{"track", "t", string(event.Track)},
		{"page", "p", string(event.Page)},
		{"screen", "s", string(event.Screen)},
		{"group", "g", string(event.Group)},
		{"alias", "a", string(event.Alias)},
	}
}

// registerIngest mounts the Segment-compatible endpoints under /v1. They sit
// outside /api/v1 and its API keys: SDKs authenticate with a write key.
func (a *API) registerIngest(mux *http.ServeMux) {
	if a.deps.Events == nil {
		return
	}
	bufs := &sync.Pool{New: func() any { return new(bytes.Buffer) }}
	for _, r := range ingestRoutes() {
		h := a.ingestHandler(r.endpoint, bufs)
		for _, p := range []string{"/v1/" + r.path, "/v1/" + r.short} {
			mux.HandleFunc("POST "+p, h)
			mux.HandleFunc("OPTIONS "+p, ingestPreflight)
		}
	}
}

// ingestResponse is the body of a successful ingest request, as Segment's.
type ingestResponse struct {
	Success  bool              `json:"success"`
	Rejected []event.Rejection `json:"rejected,omitempty"`
}

func (a *API) ingestHandler(endpoint string, bufs *sync.Pool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		received := time.Now()
		allowBrowsers(w)
		buf := bufs.Get().(*bytes.Buffer)
		buf.Reset()
		defer func() {
			if buf.Cap() <= 2*event.MaxBatchBytes {
				bufs.Put(buf)
			}
		}()
		if err := readIngestBody(r, buf); err != nil {
			WriteProblem(w, r, ingestProblem(r, a, err))
			return
		}
		key, _, _ := r.BasicAuth()
		res, err := a.deps.Events.Ingest(r.Context(), event.Request{Endpoint: endpoint, WriteKey: key, Body: buf.Bytes(), ReceivedAt: received})
		if err != nil {
			WriteProblem(w, r, ingestProblem(r, a, err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ingestResponse{Success: true, Rejected: res.Rejected})
	}
}

// readIngestBody reads the body into buf, decompressing gzip. It stops one
// byte past the batch limit: the service refuses anything longer, and a
// compressed bomb never expands further than that.
func readIngestBody(r *http.Request, buf *bytes.Buffer) error {
	var body io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			return errs.E(errs.Invalid, "invalid_gzip", "the body is not valid gzip: %v", err)
		}
		defer gz.Close()
		body = gz
	default:
		return errs.E(errs.Invalid, "unsupported_content_encoding", "Content-Encoding %q is not supported; send gzip or nothing", enc)
	}
	if _, err := buf.ReadFrom(io.LimitReader(body, event.MaxBatchBytes+1)); err != nil {
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errs.E(errs.Invalid, "invalid_gzip", "the body is not valid gzip: %v", err)
		}
		return errs.E(errs.Invalid, "unreadable_body", "the request body could not be read: %v", err)
	}
	return nil
}

// ingestProblem maps an ingest error to problem JSON. Unlike /api/v1, bad
// input is 400 whatever its kind (size limits included), as Segment answers.
func ingestProblem(r *http.Request, a *API, err error) *Problem {
	p := problemFor(r.Context(), a.deps.Log, err)
	if p.Status == http.StatusUnprocessableEntity || p.Status == http.StatusRequestEntityTooLarge {
		p.Status, p.Title = http.StatusBadRequest, http.StatusText(http.StatusBadRequest)
	}
	return p
}

// allowBrowsers lets web pages on any origin send events, as analytics.js
// does: the write key is public, and nothing is read back.
func allowBrowsers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding, AnonymousId")
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Max-Age", "86400")
}

func ingestPreflight(w http.ResponseWriter, _ *http.Request) {
	allowBrowsers(w)
	w.WriteHeader(http.StatusNoContent)
}
