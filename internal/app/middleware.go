package app

import (
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/siyu-dev/siyu/internal/tenant"
)

// middleware wraps every request: panic recovery, the client's address for the
// audit log and rate limits, security headers, metrics and an access log.
func (a *App) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		meta := tenant.RequestMeta{IP: a.clientIP(r), UserAgent: r.UserAgent()}
		r = r.WithContext(tenant.WithRequestMeta(r.Context(), meta))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h := rec.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		defer func() {
			if p := recover(); p != nil {
				a.Log.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wrote {
					http.Error(rec, "internal error", http.StatusInternalServerError)
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			a.metrics.GetOrCreateCounter(fmt.Sprintf(`siyu_http_requests_total{route=%q,code="%d"}`, route, rec.status)).Inc()
			a.metrics.GetOrCreateHistogram(fmt.Sprintf(`siyu_http_request_duration_seconds{route=%q}`, route)).Update(d.Seconds())
			if r.URL.Path != "/healthz" && r.URL.Path != "/metrics" && !strings.HasPrefix(r.URL.Path, "/static/") {
				a.Log.Debug("request", "method", r.Method, "path", r.URL.Path, "route", route, "status", rec.status,
					"duration_ms", d.Milliseconds(), "ip", meta.IP)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// clientIP is the peer address, or the first X-Forwarded-For hop when the
// operator said Siyu runs behind their own proxy.
func (a *App) clientIP(r *http.Request) string {
	if a.Config.TrustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flushing
// progress streams, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (a *App) registerDBMetrics() {
	a.metrics.NewGauge("siyu_db_open_connections", func() float64 { return float64(a.DB.Stats().OpenConnections) })
	a.metrics.NewGauge("siyu_db_in_use_connections", func() float64 { return float64(a.DB.Stats().InUse) })
	a.metrics.NewGauge("siyu_db_idle_connections", func() float64 { return float64(a.DB.Stats().Idle) })
	a.metrics.NewGauge("siyu_db_wait_count_total", func() float64 { return float64(a.DB.Stats().WaitCount) })
	a.metrics.NewGauge("siyu_db_wait_seconds_total", func() float64 { return a.DB.Stats().WaitDuration.Seconds() })
}

func (a *App) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	a.metrics.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
}
