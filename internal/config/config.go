// Package config loads kapgw's settings from command-line flags and KAPGW_*
// environment variables, and checks them all at once so an operator sees
// every problem in one go.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kapgw/kapgw/internal/secrets"
)

// Config is every setting of the gateway. Each field has a flag and a
// KAPGW_* environment variable; a flag given on the command line wins.
type Config struct {
	Addr            string         // where the HTTP server listens
	MetricsAddr     string         // where Prometheus /metrics is served; "off": nowhere
	DataDir         string         // where the embedded SQLite database lives
	DatabaseURL     string         // a postgres:// URL selects PostgreSQL
	LogLevel        string         // debug, info, warn or error
	MaxBodyBytes    int64          // largest accepted request body
	SystemBase      string         // base URI of the gateway's identifier systems
	ShutdownTimeout time.Duration  // how long graceful shutdown may take
	Profile         string         // dev or production; see vaultSettings
	Vault           secrets.Config // empty Addr: the development secret store
	Auth            Auth           // SMART tokens and rate limits (auth.go)
	Pharmacy        Pharmacy       // e-prescribing (pharmacy.go)
	Audit           Audit          // AuditEvents and the exchange log (audit.go)
	Sync            Sync           // pushes to partner EHRs (sync.go)
}

// setting describes one configuration value: its flag, its environment
// variable, its default and where it goes.
type setting struct {
	flag, env, def, usage string
	set                   func(c *Config, v string) error
}

func settings() []setting {
	return append([]setting{
		{"addr", "KAPGW_ADDR", "127.0.0.1:8080", "listen address (host:port)",
			func(c *Config, v string) error { c.Addr = v; return nil }},
		{"metrics-addr", "KAPGW_METRICS_ADDR", "127.0.0.1:9464", "listen address of the Prometheus /metrics endpoint, apart from the API (host:port, or off)",
			func(c *Config, v string) error { c.MetricsAddr = v; return nil }},
		{"data-dir", "KAPGW_DATA_DIR", "./kapgw-data", "directory of the embedded SQLite database",
			func(c *Config, v string) error { c.DataDir = v; return nil }},
		{"database-url", "KAPGW_DATABASE_URL", "", "PostgreSQL URL (postgres://...) or a vault: ref holding one; empty uses SQLite under --data-dir",
			func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
		{"log-level", "KAPGW_LOG_LEVEL", "info", "log level: debug, info, warn, error",
			func(c *Config, v string) error { c.LogLevel = v; return nil }},
		{"max-body-bytes", "KAPGW_MAX_BODY_BYTES", "1048576", "largest accepted request body in bytes",
			func(c *Config, v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return errors.New("must be an integer")
				}
				c.MaxBodyBytes = n
				return nil
			}},
		{"system-base", "KAPGW_SYSTEM_BASE", "https://kapgw.example/fhir", "base URI of the gateway's identifier systems and CodeSystems",
			func(c *Config, v string) error { c.SystemBase = v; return nil }},
		{"shutdown-timeout", "KAPGW_SHUTDOWN_TIMEOUT", "15s", "graceful shutdown deadline",
			func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil {
					return errors.New("must be a duration such as 15s")
				}
				c.ShutdownTimeout = d
				return nil
			}},
	}, append(append(append(vaultSettings(), authSettings()...), pharmacySettings()...), append(auditSettings(), syncSettings()...)...)...)
}

// Load reads the configuration of a subcommand: defaults, then environment
// variables looked up with getenv, then flags in args. It returns the
// remaining arguments and every problem found, joined.
func Load(name string, args []string, getenv func(string) string, usageOut io.Writer) (Config, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usageOut)
	raw := make(map[string]*string)
	for _, s := range settings() {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		raw[s.flag] = fs.String(s.flag, def, s.usage+" (env "+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, err
	}
	var c Config
	var errs []error
	errs = append(errs, refuseLocalRefs(raw)...)
	for _, s := range settings() {
		if err := s.set(&c, *raw[s.flag]); err != nil {
			errs = append(errs, fmt.Errorf("--%s / %s: %w", s.flag, s.env, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, nil, err
	}
	return c, fs.Args(), c.Validate()
}

// Usage writes the flag list of a subcommand to w.
func Usage(w io.Writer) {
	for _, s := range settings() {
		fmt.Fprintf(w, "  --%-18s %s\n  %20s env %s, default %q\n", s.flag, s.usage, "", s.env, s.def)
	}
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, errors.New("--addr / KAPGW_ADDR: must be host:port"))
	}
	if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil && c.MetricsAddr != "off" {
		errs = append(errs, errors.New("--metrics-addr / KAPGW_METRICS_ADDR: must be host:port or off"))
	}
	if c.DatabaseURL == "" && strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("--data-dir / KAPGW_DATA_DIR: required when no database URL is set"))
	}
	if c.DatabaseURL != "" && !IsPostgres(c.DatabaseURL) && !secrets.IsRef(c.DatabaseURL) {
		errs = append(errs, errors.New("--database-url / KAPGW_DATABASE_URL: must start with postgres:// or postgresql://, or be a vault: ref"))
	}
	errs = append(errs, c.validateVault()...)
	errs = append(errs, c.Auth.validate()...)
	errs = append(errs, c.Pharmacy.validate()...)
	errs = append(errs, c.Audit.validate(c.Profile)...)
	errs = append(errs, c.Sync.validate(c.Profile)...)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, errors.New("--log-level / KAPGW_LOG_LEVEL: must be debug, info, warn or error"))
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		errs = append(errs, errors.New("--max-body-bytes / KAPGW_MAX_BODY_BYTES: must be between 1024 and 67108864"))
	}
	if u, err := url.Parse(c.SystemBase); err != nil || !u.IsAbs() || u.Host == "" {
		errs = append(errs, errors.New("--system-base / KAPGW_SYSTEM_BASE: must be an absolute URL"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--shutdown-timeout / KAPGW_SHUTDOWN_TIMEOUT: must be positive"))
	}
	return errors.Join(errs...)
}

// IsPostgres reports whether a database URL selects PostgreSQL.
func IsPostgres(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}
