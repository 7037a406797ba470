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

// recheck bounds how often Value re-reads a file-backed secret: often
// enough that a rotation is picked up within a second, rarely enough to stay
// off the request hot path. Refresh re-reads at once.
const recheck = time.Second

// Secret is a value that must never be logged. It comes from NAME or, with
// precedence, the file named by NAME_FILE, re-read when the file changes.
type Secret struct {
	name string
	path string

	mu      sync.Mutex
	value   string
	version uint64 // grows by one each time the file's content changes
	checked time.Time
}

// StaticSecret wraps a fixed value (tests, local defaults).
func StaticSecret(name, value string) *Secret { return &Secret{name: name, value: value, version: 1} }

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

// Value returns the current secret, re-reading the file when the last read
// is over a second old. A file that disappears or turns empty after a good
// read keeps the last value (Vault agent replaces files by rename) and
// reports the error.
func (s *Secret) Value() (string, error) {
	v, _, err := s.get(false)
	return v, err
}

// Versioned is Value with the value's version, which grows by one each time
// the file's content changes (a static secret is always version 1). A
// caller that keeps state per value (the previous signing secret) orders
// what it saw by it, whatever order concurrent readers observe.
func (s *Secret) Versioned() (string, uint64, error) {
	return s.get(false)
}

// Refresh re-reads the file now, whatever the re-check interval: a caller
// that finds the value it has wrong (a correctly formed request signature
// that does not match) asks for the newest before refusing. A static secret
// returns its value.
func (s *Secret) Refresh() (string, uint64, error) {
	return s.get(true)
}

func (s *Secret) get(force bool) (string, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" {
		return s.value, s.version, nil
	}
	now := time.Now()
	if !force && !s.checked.IsZero() && now.Sub(s.checked) < recheck {
		return s.value, s.version, nil
	}
	s.checked = now
	// Read rather than compare metadata: Vault agent renames a new file
	// into place, and a signing secret keeps its length, so size and a
	// coarse modification time can both stay the same. The file is tens of
	// bytes.
	b, err := os.ReadFile(s.path)
	if err != nil {
		return s.value, s.version, fmt.Errorf("config: %s_FILE: %w", s.name, err)
	}
	v := string(bytes.TrimSpace(b))
	if v == "" {
		return s.value, s.version, fmt.Errorf("config: %s_FILE %s is empty", s.name, s.path)
	}
	if v != s.value {
		s.value = v
		s.version++
	}
	return s.value, s.version, nil
}

// String and LogValue keep the value out of logs and fmt output.
func (s *Secret) String() string { return s.name + "=[redacted]" }

// LogValue implements slog.LogValuer.
func (s *Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// GoString keeps %#v from printing the value.
func (s *Secret) GoString() string { return s.String() }
