package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/config"
)

const secretValue = "xoxb-very-secret-4242"

// secrets returns the same value as a static secret, as a file secret, and
// inside a loaded Config.
func secrets(t *testing.T) (static, file *config.Secret, cfg config.Config) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	writeFile(t, path, secretValue+"\n")
	static = config.StaticSecret("SLACK_BOT_TOKEN", secretValue)
	file, err := config.FileSecret("SLACK_BOT_TOKEN", path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = config.Load(env(map[string]string{
		"SLACK_BOT_TOKEN_FILE": path,
		"SLACK_SIGNING_SECRET": secretValue,
	}))
	if err != nil {
		t.Fatal(err)
	}
	return static, file, cfg
}

func TestSecretNotPrintedByFmt(t *testing.T) {
	static, file, cfg := secrets(t)
	values := map[string]any{
		"static":        static,
		"file":          file,
		"config":        cfg,
		"config ptr":    &cfg,
		"slice":         []*config.Secret{static, file},
		"map":           map[string]*config.Secret{"k": static},
		"anon struct":   struct{ S *config.Secret }{file},
		"error wrapped": fmt.Errorf("bad: %v", static),
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%q"} {
			t.Run(name+" "+verb, func(t *testing.T) {
				out := fmt.Sprintf(verb, v)
				if strings.Contains(out, secretValue) {
					t.Errorf("fmt %s printed the secret: %s", verb, out)
				}
			})
		}
	}
	if got := static.String(); got != "SLACK_BOT_TOKEN=[redacted]" {
		t.Errorf("String() = %q", got)
	}
	// Print/Println use %v semantics too.
	if out := fmt.Sprint(static, file) + fmt.Sprintln(cfg); strings.Contains(out, secretValue) {
		t.Errorf("Sprint printed the secret: %s", out)
	}
}

func TestSecretNotLoggedBySlog(t *testing.T) {
	static, file, cfg := secrets(t)
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	}
	for hname, newHandler := range handlers {
		t.Run(hname, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(newHandler(&buf))
			log.Info("secrets",
				"static", static,
				"file", file,
				slog.Any("config", cfg),
				slog.Any("config_ptr", &cfg),
				slog.Group("g", "token", cfg.SlackBotToken, "signing", cfg.SlackSigningSecret),
			)
			log.With("bound", static).Warn("with")
			out := buf.String()
			if strings.Contains(out, secretValue) {
				t.Errorf("slog %s handler logged the secret:\n%s", hname, out)
			}
			if !strings.Contains(out, "[redacted]") {
				t.Errorf("slog %s output has no [redacted] marker:\n%s", hname, out)
			}
			if hname == "json" {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				for i, line := range lines {
					var m map[string]any
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Fatalf("not a JSON line: %q: %v", line, err)
					}
					if i == 0 && (m["static"] != "[redacted]" || m["file"] != "[redacted]") {
						t.Errorf("static = %v, file = %v, want [redacted]", m["static"], m["file"])
					}
				}
			}
		})
	}
}

func TestSecretNotMarshalledByJSON(t *testing.T) {
	_, _, cfg := secrets(t)
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secretValue) {
		t.Errorf("json.Marshal(Config) leaked the secret: %s", b)
	}
}

func TestSecretFromEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	writeFile(t, path, "from-file\n")
	tests := []struct {
		name    string
		env     map[string]string
		want    string // "" = nil secret
		wantErr bool
	}{
		{"unset", map[string]string{}, "", false},
		{"value", map[string]string{"AUDIT_CURSOR_KEY": "from-env"}, "from-env", false},
		{"file wins", map[string]string{"AUDIT_CURSOR_KEY": "from-env", "AUDIT_CURSOR_KEY_FILE": path}, "from-file", false},
		{"missing file", map[string]string{"AUDIT_CURSOR_KEY_FILE": path + ".gone"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := config.SecretFromEnv(env(tt.env), "AUDIT_CURSOR_KEY")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.want == "" {
				if s != nil {
					t.Fatalf("secret = %v, want nil", s)
				}
				return
			}
			if v, err := s.Value(); err != nil || v != tt.want {
				t.Fatalf("Value() = %q, %v; want %q", v, err, tt.want)
			}
			if strings.Contains(fmt.Sprint(s), tt.want) {
				t.Fatal("secret printed")
			}
		})
	}
}

// TestSecretRefresh: Refresh sees a rewrite at once, inside the re-check
// interval Value honours, and versions count content changes only. The
// rewrites keep the length and the modification time, as a rotated signing
// secret (always 32 hex digits) renamed into place within one timestamp
// tick would.
func TestSecretRefresh(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slack-signing-secret")
	writeFile(t, path, "aaaa-first\n")
	s, err := config.FileSecret("SLACK_SIGNING_SECRET", path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	replace := func(content string) {
		t.Helper()
		tmp := filepath.Join(dir, ".rendered")
		writeFile(t, tmp, content)
		if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, get func() (string, uint64, error), want string, wantVersion uint64) {
		t.Helper()
		v, ver, err := get()
		if err != nil || v != want || ver != wantVersion {
			t.Fatalf("%s = %q, %d, %v; want %q, %d", what, v, ver, err, want, wantVersion)
		}
	}
	check("Versioned", s.Versioned, "aaaa-first", 1)

	replace("bbbb-other\n")
	// Value re-reads at most once a second: just after the first read it
	// still answers from memory. Refresh does not wait.
	check("Versioned within the re-check interval", s.Versioned, "aaaa-first", 1)
	check("Refresh", s.Refresh, "bbbb-other", 2)
	check("Versioned after Refresh", s.Versioned, "bbbb-other", 2)

	// The same content rewritten is not a change.
	replace("bbbb-other\n")
	check("Refresh of the same content", s.Refresh, "bbbb-other", 2)

	// A failed read keeps value and version.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if v, ver, err := s.Refresh(); err == nil || v != "bbbb-other" || ver != 2 {
		t.Fatalf("Refresh of a missing file = %q, %d, %v; want the last value and an error", v, ver, err)
	}

	static := config.StaticSecret("X", "fixed")
	check("static Refresh", static.Refresh, "fixed", 1)
}
