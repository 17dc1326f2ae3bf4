// Package console is Siyu's web console (placeholder; being written).
package console

import (
	"log/slog"
	"net/http"

	"github.com/siyu-dev/siyu/internal/tenant"
)

// Deps are the services the console uses.
type Deps struct {
	Log     *slog.Logger
	Tenant  *tenant.Service
	Version string
	Secure  bool
}

// Console serves the web console.
type Console struct{ deps Deps }

// New builds the console.
func New(d Deps) (*Console, error) { return &Console{deps: d}, nil }

// Register mounts the console's routes on mux.
func (c *Console) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("Siyu")) })
}
