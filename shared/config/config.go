// Package config reads CoffeeBuddy's configuration contract (DESIGN.md §5)
// from the environment into typed values. Secrets may come from *_FILE paths
// (Vault agent writes them under /vault/secrets/) and are re-read when the
// file changes, so a rotated secret needs no restart.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults of the local Slack stand-in, used when no Slack credentials are
// configured (make run). They are not secrets: they only open the stand-in.
const (
	LocalSlackBotToken      = "xoxb-local-standin"
	LocalSlackSigningSecret = "local-standin-signing-secret"
	LocalSlackAPIURL        = "http://127.0.0.1:8091/api/"
	SlackAPIURL             = "https://slack.com/api/"
)

// Audit retention (AUDIT_RETENTION): 90 days by default, never under 30.
const (
	DefaultAuditRetention = 90 * 24 * time.Hour
	MinAuditRetention     = 30 * 24 * time.Hour
)

// The signing-secret rotation grace (SLACK_SIGNING_SECRET_GRACE): a few
// seconds covers a request Slack signed just before the rotation and
// delivered after it; docs/adr/0015-secrets-and-tls.md has the reasoning.
const (
	DefaultSlackSigningGrace = 5 * time.Second
	MaxSlackSigningGrace     = time.Minute
)

// Config is the typed configuration of one CoffeeBuddy process.
type Config struct {
	Port             int
	DatabaseURL      string // empty: the caller decides (make run embeds one)
	DatabaseMaxConns int32
	KafkaBrokers     []string // empty: the caller decides (make run embeds one)
	// DatabasePassFile (PGPASSFILE) is the libpq password file the
	// database password comes from (Vault agent renders it); it is read
	// again for every new connection, so a rotated password needs no
	// restart. Empty: the URL's own password, if any.
	DatabasePassFile   string
	SlackSigningSecret *Secret
	// SlackSigningGrace is how long after this process sees a new signing
	// secret a request signed with the previous one is still accepted:
	// requests Slack signed just before the rotation are still in flight.
	// 0 refuses the previous secret at once.
	SlackSigningGrace time.Duration
	SlackBotToken     *Secret
	SlackAPIURL       string
	// SlackLocal is true when no Slack credentials were configured and the
	// local stand-in's defaults are in force.
	SlackLocal bool
	LastCall   time.Duration
	// WarnBefore is how long before last call the thread is warned.
	WarnBefore time.Duration
	// RemindAfter is how long the runner may leave a run unfinished before
	// a reminder DM.
	RemindAfter time.Duration
	// AuditRetention is how long audit rows are kept: the audit-retention
	// function deletes older ones daily.
	AuditRetention  time.Duration
	LogLevel        slog.Level
	ShutdownTimeout time.Duration
	// DataDir (COFFEE_DATA_DIR, made absolute) is where make run keeps the
	// embedded PostgreSQL and Kafka data across restarts; empty means
	// temporary data, removed at exit. Functions ignore it.
	DataDir string
}

// Load reads the configuration through getenv (os.Getenv in production, a
// map in tests). Every problem is reported, not just the first.
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	c := Config{
		DatabaseURL:      strings.TrimSpace(getenv("DATABASE_URL")),
		DatabasePassFile: strings.TrimSpace(getenv("PGPASSFILE")),
		KafkaBrokers:     splitList(getenv("KAFKA_BROKERS")),
		SlackAPIURL:      strings.TrimSpace(getenv("SLACK_API_URL")),
	}
	var err error
	if c.Port, err = intVar(getenv, "PORT", 8080, 1, 65535); err != nil {
		errs = append(errs, err)
	}
	maxConns, err := intVar(getenv, "DATABASE_MAX_CONNS", 20, 1, 1000)
	if err != nil {
		errs = append(errs, err)
	}
	c.DatabaseMaxConns = int32(maxConns)
	if c.LastCall, err = durationVar(getenv, "COFFEE_LAST_CALL", 10*time.Minute); err != nil {
		errs = append(errs, err)
	}
	if c.WarnBefore, err = durationVar(getenv, "COFFEE_WARN_BEFORE", 2*time.Minute); err != nil {
		errs = append(errs, err)
	}
	if c.RemindAfter, err = durationVar(getenv, "COFFEE_REMIND_AFTER", 20*time.Minute); err != nil {
		errs = append(errs, err)
	}
	if c.ShutdownTimeout, err = durationVar(getenv, "SHUTDOWN_TIMEOUT", 30*time.Second); err != nil {
		errs = append(errs, err)
	}
	if c.AuditRetention, err = durationVar(getenv, "AUDIT_RETENTION", DefaultAuditRetention); err != nil {
		errs = append(errs, err)
	} else if c.AuditRetention < MinAuditRetention {
		// Deleted audit rows are gone for good: a value this short is a
		// slip (90h for 90 days), not a policy, so refuse to start.
		errs = append(errs, fmt.Errorf("AUDIT_RETENTION: %q is shorter than the %s minimum (write days as hours: 2160h is 90 days)",
			getenv("AUDIT_RETENTION"), MinAuditRetention))
	}
	if c.SlackSigningGrace, err = graceVar(getenv, "SLACK_SIGNING_SECRET_GRACE", DefaultSlackSigningGrace, MaxSlackSigningGrace); err != nil {
		errs = append(errs, err)
	}
	if d := strings.TrimSpace(getenv("COFFEE_DATA_DIR")); d != "" {
		// Absolute, so the folder does not depend on where make run was
		// started from later, and the banner says exactly where data is.
		if c.DataDir, err = filepath.Abs(d); err != nil {
			errs = append(errs, fmt.Errorf("COFFEE_DATA_DIR: %q: %w", d, err))
		}
	}
	if lvl := getenv("LOG_LEVEL"); lvl != "" {
		if err := c.LogLevel.UnmarshalText([]byte(lvl)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", lvl))
		}
	}

	c.SlackSigningSecret, err = secretVar(getenv, "SLACK_SIGNING_SECRET")
	errs = append(errs, err)
	c.SlackBotToken, err = secretVar(getenv, "SLACK_BOT_TOKEN")
	errs = append(errs, err)
	switch {
	case c.SlackSigningSecret == nil && c.SlackBotToken == nil:
		c.SlackLocal = true
		c.SlackSigningSecret = StaticSecret("SLACK_SIGNING_SECRET", LocalSlackSigningSecret)
		c.SlackBotToken = StaticSecret("SLACK_BOT_TOKEN", LocalSlackBotToken)
		if c.SlackAPIURL == "" {
			c.SlackAPIURL = LocalSlackAPIURL
		}
	case c.SlackSigningSecret == nil || c.SlackBotToken == nil:
		errs = append(errs, errors.New("SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (or their _FILE forms) must be set together"))
	case c.SlackAPIURL == "":
		c.SlackAPIURL = SlackAPIURL
	}
	if c.SlackAPIURL != "" && !strings.HasSuffix(c.SlackAPIURL, "/") {
		c.SlackAPIURL += "/" // slack-go appends method names directly
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// graceVar is a Go duration from 0 (none) to hi: a longer grace would keep a
// leaked signing secret working after its rotation.
func graceVar(getenv func(string) string, name string, def, hi time.Duration) (time.Duration, error) {
	s := strings.TrimSpace(getenv(name))
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > hi {
		return 0, fmt.Errorf("%s: %q is not a Go duration from 0s to %s", name, s, hi)
	}
	return d, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func intVar(getenv func(string) string, name string, def, lo, hi int) (int, error) {
	s := strings.TrimSpace(getenv(name))
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: %q is not a whole number from %d to %d", name, s, lo, hi)
	}
	return n, nil
}

func durationVar(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	s := strings.TrimSpace(getenv(name))
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive Go duration such as 10m", name, s)
	}
	return d, nil
}
