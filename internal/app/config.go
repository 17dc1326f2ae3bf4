package app

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything `siyu serve` can be told. Each field has a flag and a
// SIYU_* environment variable; a flag given on the command line wins.
type Config struct {
	Addr            string
	DB              string
	SecretKeyFile   string
	LogLevel        string
	LogFormat       string
	TrustProxy      bool
	BaseURL         string
	ShutdownTimeout time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DB:              "./siyu.db",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 15 * time.Second,
	}
}

// configVar describes one setting for the flag set and the help text.
type configVar struct {
	flag, env, help string
	str             *string
	boolean         *bool
	dur             *time.Duration
}

func (c *Config) vars() []configVar {
	return []configVar{
		{flag: "addr", env: "SIYU_ADDR", help: "address to listen on (host:port)", str: &c.Addr},
		{flag: "db", env: "SIYU_DB", help: "SQLite file path, or a postgres:// URL for PostgreSQL", str: &c.DB},
		{flag: "secret-key-file", env: "SIYU_SECRET_KEY_FILE", help: "file holding the key that encrypts personal data at rest (created with a new key if missing; default: siyu.key beside a SQLite file, ./siyu.key for PostgreSQL)", str: &c.SecretKeyFile},
		{flag: "base-url", env: "SIYU_BASE_URL", help: "public URL of this server, used in callback URLs shown to operators (default: http://ADDR)", str: &c.BaseURL},
		{flag: "log-level", env: "SIYU_LOG_LEVEL", help: "debug, info, warn or error", str: &c.LogLevel},
		{flag: "log-format", env: "SIYU_LOG_FORMAT", help: "text or json", str: &c.LogFormat},
		{flag: "trust-proxy", env: "SIYU_TRUST_PROXY", help: "take the client address from X-Forwarded-For (only behind your own reverse proxy)", boolean: &c.TrustProxy},
		{flag: "shutdown-timeout", env: "SIYU_SHUTDOWN_TIMEOUT", help: "how long to let in-flight work finish on SIGINT/SIGTERM", dur: &c.ShutdownTimeout},
	}
}

// Bind registers the config's flags on fs, with defaults taken from the
// environment (so a flag on the command line still wins).
func (c *Config) Bind(fs *flag.FlagSet) error {
	for _, v := range c.vars() {
		env, set := os.LookupEnv(v.env)
		switch {
		case v.str != nil:
			if set {
				*v.str = env
			}
			fs.StringVar(v.str, v.flag, *v.str, v.help+" ["+v.env+"]")
		case v.boolean != nil:
			if set {
				b, err := strconv.ParseBool(env)
				if err != nil {
					return fmt.Errorf("%s: %q is not true or false", v.env, env)
				}
				*v.boolean = b
			}
			fs.BoolVar(v.boolean, v.flag, *v.boolean, v.help+" ["+v.env+"]")
		case v.dur != nil:
			if set {
				d, err := time.ParseDuration(env)
				if err != nil {
					return fmt.Errorf("%s: %q is not a duration like 15s", v.env, env)
				}
				*v.dur = d
			}
			fs.DurationVar(v.dur, v.flag, *v.dur, v.help+" ["+v.env+"]")
		}
	}
	return nil
}

// Validate checks the config before anything starts.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return fmt.Errorf("--addr is required")
	}
	if c.DB == "" {
		return fmt.Errorf("--db is required")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level must be debug, info, warn or error, not %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat)
	}
	return nil
}
