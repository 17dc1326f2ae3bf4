// Command siyu is the whole Siyu product in one binary: the HTTP API, the web
// console, connector callbacks and background workers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/demo"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Siyu (私域) — private-domain customer operations.

Usage:
  siyu serve   [flags]   run the server (API, console, workers)
  siyu demo    [flags]   run the server on a demo brand with generated data
  siyu migrate [flags]   apply database migrations and exit
  siyu workspace add     create a brand's workspace and its first owner
  siyu bench audience    measure the audience engine against SQL
  siyu import  [flags]   import customers or orders from a CSV or XLSX file
  siyu version           print the version
  siyu help COMMAND      show a command's flags and environment variables

Every flag can also be set by its SIYU_* environment variable; a flag wins.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, rest, stdout, stderr)
	case "demo":
		err = runDemo(ctx, rest, stdout, stderr)
	case "migrate":
		err = migrate(ctx, rest, stdout, stderr)
	case "workspace":
		err = workspaceCmd(ctx, rest, stdout, stderr)
	case "bench":
		err = benchCmd(ctx, rest, stdout, stderr)
	case "import":
		err = importCmd(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "siyu", appVersion())
	case "help", "-h", "--help":
		if len(rest) == 0 {
			fmt.Fprint(stdout, usage)
			return 0
		}
		return help(rest[0], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "siyu: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "siyu:", err)
		return 1
	}
	return 0
}

func help(cmd string, stdout, stderr io.Writer) int {
	var fs *flag.FlagSet
	switch cmd {
	case "serve", "migrate":
		fs, _ = serveFlags(cmd, stdout, new(app.Config))
	case "demo":
		fs, _, _ = demoFlags(stdout, new(app.Config))
	case "import":
		fs, _, _ = importFlags(stdout, new(app.Config))
	default:
		fmt.Fprintf(stderr, "siyu: no help for %q\n", cmd)
		return 2
	}
	fs.Usage()
	return 0
}

func serveFlags(name string, out io.Writer, cfg *app.Config) (*flag.FlagSet, error) {
	*cfg = app.DefaultConfig()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	err := cfg.Bind(fs)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: siyu %s [flags]\n\nFlags (each also read from its SIYU_* environment variable; a flag wins):\n", name)
		fs.PrintDefaults()
	}
	return fs, err
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	fs, err := serveFlags("serve", stderr, &cfg)
	if err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := app.NewLogger(cfg)
	a, err := app.New(ctx, cfg, log, app.Options{Version: appVersion()})
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("unable to listen on %s: %w", cfg.Addr, err)
	}
	fmt.Fprintf(stdout, "console: http://%s/\n", ln.Addr())
	return a.Serve(ctx, ln)
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	fs, err := serveFlags("migrate", stderr, &cfg)
	if err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := db.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer d.Close()
	applied, err := d.Migrate(ctx)
	if err != nil {
		return err
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %d %s\n", m.Version, m.Source)
	}
	cur, _, err := d.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database %s is at schema version %d\n", d.Location, cur)
	return nil
}

func demoFlags(out io.Writer, cfg *app.Config) (*flag.FlagSet, *string, error) {
	*cfg = app.DefaultConfig()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(out)
	data := fs.String("data", "./siyu-demo", "directory for the demo's database and credentials; running again reuses it")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on (host:port)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(out, "Usage: siyu demo [flags]\n\nRuns Siyu on a local SQLite file with a demo brand: staff, stores, customers.\nPrints the console URL, an admin login and an API key.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs, data, nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	fs, data, _ := demoFlags(stderr, &cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := filepath.Abs(*data)
	if err != nil {
		return err
	}
	cfg.DB = filepath.Join(dir, "siyu.db")
	cfg.SecretKeyFile = filepath.Join(dir, "siyu.key")
	log := app.NewLogger(cfg)
	a, err := app.New(ctx, cfg, log, app.Options{Version: appVersion()})
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("unable to listen on %s: %w", cfg.Addr, err)
	}
	creds, err := demo.Setup(ctx, a, dir, stderr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("demo set-up failed: %w", err)
	}
	fmt.Fprintf(stdout, "console: http://%s/\n", ln.Addr())
	fmt.Fprintf(stdout, "admin login: %s %s\n", creds.AdminEmail, creds.AdminPassword)
	fmt.Fprintf(stdout, "API key: %s\n", creds.APIKey)
	fmt.Fprintf(stdout, "write key: %s\n", creds.WriteKey)
	fmt.Fprintf(stdout, "data: %s\n", dir)
	// The demo brand's live WeCom corp: in-process, synced and then active
	// in the background.
	corp := demo.StartWeCom(a, creds.WorkspaceID, demo.ListenURL(ln.Addr()), demo.WeComOptions{})
	defer corp.Close()
	fmt.Fprintf(stdout, "WeCom: %s\n", corp.Summary())
	go func() {
		if err := demo.Activity(ctx, a, dir, creds, stderr); err != nil && ctx.Err() == nil {
			log.Error("demo activity stopped; it resumes at the next start", "err", err)
		}
	}()
	go func() {
		if err := corp.Run(ctx, stderr); err != nil && ctx.Err() == nil {
			log.Error("the demo's WeCom corp stopped; it starts again at the next start", "err", err)
		}
	}()
	return a.Serve(ctx, ln)
}

func appVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return "dev"
}
