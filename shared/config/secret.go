package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// recheck bounds how often a file-backed secret is stat'ed: often enough
// that a rotation is picked up within a second, rarely enough to stay off the
// request hot path.
const recheck = time.Second

// Secret is a value that must never be logged. It comes from NAME or, with
// precedence, the file named by NAME_FILE, re-read when the file changes.
type Secret struct {
	name string
	path string

	mu      sync.Mutex
	value   string
	checked time.Time
	modTime time.Time
	size    int64
}

// StaticSecret wraps a fixed value (tests, local defaults).
func StaticSecret(name, value string) *Secret { return &Secret{name: name, value: value} }

// FileSecret reads name's value from path now and on every change.
func FileSecret(name, path string) (*Secret, error) {
	s := &Secret{name: name, path: path}
	if _, err := s.Value(); err != nil {
		return nil, err
	}
	return s, nil
}

// SecretFromEnv reads the secret NAME the way the contract's own secrets
// are read: NAME_FILE (a path, re-read on change) wins over NAME. It
// returns nil, nil when neither is set, so a function can decide its own
// default for a secret only it uses (audit-api's AUDIT_CURSOR_KEY).
func SecretFromEnv(getenv func(string) string, name string) (*Secret, error) {
	return secretVar(getenv, name)
}

// secretVar returns nil when neither NAME nor NAME_FILE is set.
func secretVar(getenv func(string) string, name string) (*Secret, error) {
	if path := strings.TrimSpace(getenv(name + "_FILE")); path != "" {
		return FileSecret(name, path)
	}
	if v := getenv(name); v != "" {
		return StaticSecret(name, v), nil
	}
	return nil, nil
}

// Value returns the current secret. A file that disappears after a good
// read keeps the last value (Vault agent replaces files by rename) and
// reports the error.
func (s *Secret) Value() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" {
		return s.value, nil
	}
	now := time.Now()
	if !s.checked.IsZero() && now.Sub(s.checked) < recheck {
		return s.value, nil
	}
	s.checked = now
	fi, err := os.Stat(s.path)
	if err != nil {
		return s.value, fmt.Errorf("config: %s_FILE: %w", s.name, err)
	}
	if fi.ModTime().Equal(s.modTime) && fi.Size() == s.size && s.value != "" {
		return s.value, nil
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return s.value, fmt.Errorf("config: %s_FILE: %w", s.name, err)
	}
	v := string(bytes.TrimSpace(b))
	if v == "" {
		return s.value, fmt.Errorf("config: %s_FILE %s is empty", s.name, s.path)
	}
	s.value, s.modTime, s.size = v, fi.ModTime(), fi.Size()
	return s.value, nil
}

// String and LogValue keep the value out of logs and fmt output.
func (s *Secret) String() string { return s.name + "=[redacted]" }

// LogValue implements slog.LogValuer.
func (s *Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// GoString keeps %#v from printing the value.
func (s *Secret) GoString() string { return s.String() }
