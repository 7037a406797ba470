package config_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/config"
)

// env turns a map into a getenv function.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func mustValue(t *testing.T, s *config.Secret) string {
	t.Helper()
	if s == nil {
		t.Fatal("secret is nil")
	}
	v, err := s.Value()
	if err != nil {
		t.Fatalf("Value: %v", err)
	}
	return v
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Port != 8080 {
		t.Errorf("Port = %d, want 8080", c.Port)
	}
	if c.LastCall != 10*time.Minute {
		t.Errorf("LastCall = %v, want 10m", c.LastCall)
	}
	if c.DatabaseMaxConns != 20 {
		t.Errorf("DatabaseMaxConns = %d, want 20", c.DatabaseMaxConns)
	}
	if c.LogLevel != slog.LevelInfo {
		t.Errorf("LogLevel = %v, want INFO", c.LogLevel)
	}
	if c.ShutdownTimeout != 30*time.Second {
		t.Errorf("ShutdownTimeout = %v, want 30s", c.ShutdownTimeout)
	}
	if c.AuditRetention != 2160*time.Hour {
		t.Errorf("AuditRetention = %v, want 2160h (90 days)", c.AuditRetention)
	}
	if c.DatabaseURL != "" || len(c.KafkaBrokers) != 0 {
		t.Errorf("DatabaseURL = %q, KafkaBrokers = %q, want both empty (the caller embeds)", c.DatabaseURL, c.KafkaBrokers)
	}
	if c.DataDir != "" {
		t.Errorf("DataDir = %q, want empty (temporary data)", c.DataDir)
	}
	if c.SlackSigningGrace != config.DefaultSlackSigningGrace {
		t.Errorf("SlackSigningGrace = %v, want %v", c.SlackSigningGrace, config.DefaultSlackSigningGrace)
	}
	if c.DatabasePassFile != "" {
		t.Errorf("DatabasePassFile = %q, want empty", c.DatabasePassFile)
	}
	if !c.SlackLocal {
		t.Error("SlackLocal = false with no Slack credentials, want true")
	}
	if got := mustValue(t, c.SlackBotToken); got != config.LocalSlackBotToken {
		t.Errorf("SlackBotToken = %q, want the stand-in's %q", got, config.LocalSlackBotToken)
	}
	if got := mustValue(t, c.SlackSigningSecret); got != config.LocalSlackSigningSecret {
		t.Errorf("SlackSigningSecret = %q, want the stand-in's %q", got, config.LocalSlackSigningSecret)
	}
	if c.SlackAPIURL != config.LocalSlackAPIURL {
		t.Errorf("SlackAPIURL = %q, want the stand-in's %q", c.SlackAPIURL, config.LocalSlackAPIURL)
	}
}

func TestLoadValues(t *testing.T) {
	creds := map[string]string{"SLACK_SIGNING_SECRET": "sig", "SLACK_BOT_TOKEN": "xoxb-1"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range creds {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c config.Config)
	}{
		{"port", map[string]string{"PORT": " 9090 "}, func(t *testing.T, c config.Config) {
			if c.Port != 9090 {
				t.Errorf("Port = %d", c.Port)
			}
		}},
		{"port bounds", map[string]string{"PORT": "65535"}, func(t *testing.T, c config.Config) {
			if c.Port != 65535 {
				t.Errorf("Port = %d", c.Port)
			}
		}},
		{"last call", map[string]string{"COFFEE_LAST_CALL": "90s"}, func(t *testing.T, c config.Config) {
			if c.LastCall != 90*time.Second {
				t.Errorf("LastCall = %v", c.LastCall)
			}
		}},
		{"shutdown timeout", map[string]string{"SHUTDOWN_TIMEOUT": "5s"}, func(t *testing.T, c config.Config) {
			if c.ShutdownTimeout != 5*time.Second {
				t.Errorf("ShutdownTimeout = %v", c.ShutdownTimeout)
			}
		}},
		{"audit retention", map[string]string{"AUDIT_RETENTION": "4320h"}, func(t *testing.T, c config.Config) {
			if c.AuditRetention != 180*24*time.Hour {
				t.Errorf("AuditRetention = %v", c.AuditRetention)
			}
		}},
		{"audit retention at its minimum", map[string]string{"AUDIT_RETENTION": "720h"}, func(t *testing.T, c config.Config) {
			if c.AuditRetention != config.MinAuditRetention {
				t.Errorf("AuditRetention = %v", c.AuditRetention)
			}
		}},
		{"max conns", map[string]string{"DATABASE_MAX_CONNS": "1000"}, func(t *testing.T, c config.Config) {
			if c.DatabaseMaxConns != 1000 {
				t.Errorf("DatabaseMaxConns = %d", c.DatabaseMaxConns)
			}
		}},
		{"log level debug", map[string]string{"LOG_LEVEL": "debug"}, func(t *testing.T, c config.Config) {
			if c.LogLevel != slog.LevelDebug {
				t.Errorf("LogLevel = %v", c.LogLevel)
			}
		}},
		{"log level WARN", map[string]string{"LOG_LEVEL": "WARN"}, func(t *testing.T, c config.Config) {
			if c.LogLevel != slog.LevelWarn {
				t.Errorf("LogLevel = %v", c.LogLevel)
			}
		}},
		{"log level error", map[string]string{"LOG_LEVEL": "error"}, func(t *testing.T, c config.Config) {
			if c.LogLevel != slog.LevelError {
				t.Errorf("LogLevel = %v", c.LogLevel)
			}
		}},
		{"database url", map[string]string{"DATABASE_URL": " postgres://u@h/db "}, func(t *testing.T, c config.Config) {
			if c.DatabaseURL != "postgres://u@h/db" {
				t.Errorf("DatabaseURL = %q", c.DatabaseURL)
			}
		}},
		{"signing grace", map[string]string{"SLACK_SIGNING_SECRET_GRACE": "30s"}, func(t *testing.T, c config.Config) {
			if c.SlackSigningGrace != 30*time.Second {
				t.Errorf("SlackSigningGrace = %v", c.SlackSigningGrace)
			}
		}},
		{"signing grace off", map[string]string{"SLACK_SIGNING_SECRET_GRACE": "0s"}, func(t *testing.T, c config.Config) {
			if c.SlackSigningGrace != 0 {
				t.Errorf("SlackSigningGrace = %v", c.SlackSigningGrace)
			}
		}},
		{"pgpass file", map[string]string{"PGPASSFILE": " /vault/secrets/pgpass "}, func(t *testing.T, c config.Config) {
			if c.DatabasePassFile != "/vault/secrets/pgpass" {
				t.Errorf("DatabasePassFile = %q", c.DatabasePassFile)
			}
		}},
		{"kafka brokers", map[string]string{"KAFKA_BROKERS": "a:9092, b:9092,,"}, func(t *testing.T, c config.Config) {
			if want := []string{"a:9092", "b:9092"}; !slices.Equal(c.KafkaBrokers, want) {
				t.Errorf("KafkaBrokers = %q, want %q", c.KafkaBrokers, want)
			}
		}},
		{"credentials: real Slack by default", creds, func(t *testing.T, c config.Config) {
			if c.SlackLocal {
				t.Error("SlackLocal = true with credentials")
			}
			if c.SlackAPIURL != "https://slack.com/api/" {
				t.Errorf("SlackAPIURL = %q, want https://slack.com/api/", c.SlackAPIURL)
			}
			if got := mustValue(t, c.SlackSigningSecret); got != "sig" {
				t.Errorf("SlackSigningSecret = %q", got)
			}
			if got := mustValue(t, c.SlackBotToken); got != "xoxb-1" {
				t.Errorf("SlackBotToken = %q", got)
			}
		}},
		{"credentials: API URL gets a trailing slash", with(map[string]string{"SLACK_API_URL": "https://slack.example/api"}), func(t *testing.T, c config.Config) {
			if c.SlackAPIURL != "https://slack.example/api/" {
				t.Errorf("SlackAPIURL = %q", c.SlackAPIURL)
			}
		}},
		{"credentials: API URL with slash kept", with(map[string]string{"SLACK_API_URL": "https://slack.example/api/"}), func(t *testing.T, c config.Config) {
			if c.SlackAPIURL != "https://slack.example/api/" {
				t.Errorf("SlackAPIURL = %q", c.SlackAPIURL)
			}
		}},
		{"local: API URL override gets a trailing slash", map[string]string{"SLACK_API_URL": "http://127.0.0.1:9999/api"}, func(t *testing.T, c config.Config) {
			if !c.SlackLocal {
				t.Error("SlackLocal = false")
			}
			if c.SlackAPIURL != "http://127.0.0.1:9999/api/" {
				t.Errorf("SlackAPIURL = %q", c.SlackAPIURL)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(env(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadDataDir(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, value, want string
	}{
		{"unset: temporary", "", ""},
		{"blank: temporary", "  ", ""},
		{"absolute", "/srv/coffeebuddy", "/srv/coffeebuddy"},
		{"trimmed and cleaned", " /srv/coffeebuddy/./data/ ", "/srv/coffeebuddy/data"},
		{"relative: to the working directory", "data/coffee", filepath.Join(wd, "data", "coffee")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(env(map[string]string{"COFFEE_DATA_DIR": tt.value}))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.DataDir != tt.want {
				t.Errorf("DataDir = %q, want %q", c.DataDir, tt.want)
			}
		})
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name, value string
	}{
		{"PORT", "http"},
		{"PORT", "0"},
		{"PORT", "65536"},
		{"PORT", "-1"},
		{"PORT", "80.5"},
		{"DATABASE_MAX_CONNS", "0"},
		{"DATABASE_MAX_CONNS", "1001"},
		{"DATABASE_MAX_CONNS", "many"},
		{"COFFEE_LAST_CALL", "10"},
		{"COFFEE_LAST_CALL", "ten minutes"},
		{"COFFEE_LAST_CALL", "0s"},
		{"COFFEE_LAST_CALL", "-5m"},
		{"AUDIT_RETENTION", "90d"},  // Go durations have no days
		{"AUDIT_RETENTION", "90h"},  // 90 days meant: under the 30-day minimum
		{"AUDIT_RETENTION", "719h"}, // just under it
		{"AUDIT_RETENTION", "0s"},
		{"SHUTDOWN_TIMEOUT", "soon"},
		{"SHUTDOWN_TIMEOUT", "-1s"},
		{"SLACK_SIGNING_SECRET_GRACE", "-1s"},
		{"SLACK_SIGNING_SECRET_GRACE", "2m"},
		{"SLACK_SIGNING_SECRET_GRACE", "a while"},
		{"LOG_LEVEL", "loud"},
		{"LOG_LEVEL", "trace"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			c, err := config.Load(env(map[string]string{tt.name: tt.value}))
			if err == nil {
				t.Fatalf("Load(%s=%q) = %+v, want an error", tt.name, tt.value, c)
			}
			if !strings.Contains(err.Error(), tt.name) {
				t.Errorf("error %q does not name %s", err, tt.name)
			}
			if !strings.Contains(err.Error(), tt.value) {
				t.Errorf("error %q does not quote the bad value %q", err, tt.value)
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	_, err := config.Load(env(map[string]string{
		"PORT":                 "99999",
		"DATABASE_MAX_CONNS":   "-3",
		"COFFEE_LAST_CALL":     "forever",
		"SHUTDOWN_TIMEOUT":     "0",
		"LOG_LEVEL":            "chatty",
		"SLACK_BOT_TOKEN_FILE": filepath.Join(dir, "missing"),
	}))
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	for _, name := range []string{"PORT", "DATABASE_MAX_CONNS", "COFFEE_LAST_CALL", "SHUTDOWN_TIMEOUT", "LOG_LEVEL", "SLACK_BOT_TOKEN_FILE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

func TestLoadSlackCredentialsTogether(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	writeFile(t, file, "from-file\n")
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"signing secret only", map[string]string{"SLACK_SIGNING_SECRET": "sig"}},
		{"bot token only", map[string]string{"SLACK_BOT_TOKEN": "xoxb-1"}},
		{"signing secret file only", map[string]string{"SLACK_SIGNING_SECRET_FILE": file}},
		{"bot token file only", map[string]string{"SLACK_BOT_TOKEN_FILE": file}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(env(tt.env))
			if err == nil {
				t.Fatalf("Load = %+v, want an error", c)
			}
			if !strings.Contains(err.Error(), "SLACK_SIGNING_SECRET") || !strings.Contains(err.Error(), "SLACK_BOT_TOKEN") {
				t.Errorf("error %q does not name both variables", err)
			}
		})
	}
}

func TestLoadFileWins(t *testing.T) {
	dir := t.TempDir()
	sig := filepath.Join(dir, "signing")
	tok := filepath.Join(dir, "token")
	writeFile(t, sig, "sig-from-file\n")
	writeFile(t, tok, "  xoxb-from-file  \n")
	c, err := config.Load(env(map[string]string{
		"SLACK_SIGNING_SECRET":      "sig-from-env",
		"SLACK_SIGNING_SECRET_FILE": sig,
		"SLACK_BOT_TOKEN":           "xoxb-from-env",
		"SLACK_BOT_TOKEN_FILE":      tok,
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := mustValue(t, c.SlackSigningSecret); got != "sig-from-file" {
		t.Errorf("SlackSigningSecret = %q, want the file's (trimmed) value", got)
	}
	if got := mustValue(t, c.SlackBotToken); got != "xoxb-from-file" {
		t.Errorf("SlackBotToken = %q, want the file's (trimmed) value", got)
	}
	if c.SlackLocal {
		t.Error("SlackLocal = true with file credentials")
	}
}

func TestLoadSecretFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, " \n")
	tests := []struct {
		name string
		path string
	}{
		{"missing", filepath.Join(dir, "does-not-exist")},
		{"empty", empty},
		{"directory", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(env(map[string]string{
				"SLACK_SIGNING_SECRET_FILE": tt.path,
				"SLACK_BOT_TOKEN":           "xoxb-1",
			}))
			if err == nil {
				t.Fatalf("Load = %+v, want an error", c)
			}
			if !strings.Contains(err.Error(), "SLACK_SIGNING_SECRET_FILE") {
				t.Errorf("error %q does not name SLACK_SIGNING_SECRET_FILE", err)
			}
		})
	}
}

// eventually polls cond until it holds or the deadline passes. The secret
// re-checks its file at most once per second, so rotation shows up within
// about a second; the deadline is generous for loaded machines.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func TestFileSecretRotation(t *testing.T) {
	t.Parallel() // waits out several one-second re-check intervals
	dir := t.TempDir()
	path := filepath.Join(dir, "slack-bot-token")
	writeFile(t, path, "xoxb-first\n")
	c, err := config.Load(env(map[string]string{
		"SLACK_BOT_TOKEN_FILE": path,
		"SLACK_SIGNING_SECRET": "sig",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	s := c.SlackBotToken
	if got := mustValue(t, s); got != "xoxb-first" {
		t.Fatalf("Value = %q, want xoxb-first", got)
	}

	// Vault agent writes a new file and renames it into place. Make the
	// modification time differ for certain, whatever the file system's
	// timestamp granularity.
	tmp := filepath.Join(dir, ".tmp")
	writeFile(t, tmp, "xoxb-second-rotated\n")
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(tmp, future, future); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the rotated secret", func() bool {
		v, err := s.Value()
		return err == nil && v == "xoxb-second-rotated"
	})

	// The file disappears: the last good value stays, the error is reported.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	eventually(t, 10*time.Second, "an error for the removed file", func() bool {
		var v string
		v, lastErr = s.Value()
		if v != "xoxb-second-rotated" {
			t.Fatalf("Value after removal = %q, want the last good value", v)
		}
		return lastErr != nil
	})
	if !strings.Contains(lastErr.Error(), "SLACK_BOT_TOKEN_FILE") {
		t.Errorf("error %q does not name SLACK_BOT_TOKEN_FILE", lastErr)
	}

	// An empty replacement is an error too, and keeps the last good value.
	writeFile(t, path, "\n")
	eventually(t, 10*time.Second, "an error for the empty file", func() bool {
		v, err := s.Value()
		if v != "xoxb-second-rotated" {
			t.Fatalf("Value with an empty file = %q, want the last good value", v)
		}
		return err != nil && strings.Contains(err.Error(), "empty")
	})

	// And a good file is picked up again.
	writeFile(t, path, "xoxb-third\n")
	eventually(t, 10*time.Second, "the third secret", func() bool {
		v, err := s.Value()
		return err == nil && v == "xoxb-third"
	})
}

func TestStaticSecret(t *testing.T) {
	s := config.StaticSecret("X", "value")
	for range 3 {
		if got := mustValue(t, s); got != "value" {
			t.Fatalf("Value = %q", got)
		}
	}
}

func TestFileSecretMissing(t *testing.T) {
	s, err := config.FileSecret("X", filepath.Join(t.TempDir(), "nope"))
	if err == nil {
		t.Fatalf("FileSecret = %v, want an error", s)
	}
	if !strings.Contains(err.Error(), "X_FILE") {
		t.Errorf("error %q does not name X_FILE", err)
	}
}
