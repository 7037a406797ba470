// Package logbuf holds Buffer, the log sink tests hand to code that logs
// from several goroutines (a server, a process's output copier) and then
// read back, whole or as JSON lines.
package logbuf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer safe to write from several goroutines and read
// while they write. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines decodes every non-empty line as a JSON object (log/slog's JSON
// handler writes one a line); a line that is not one is an error.
func (s *Buffer) Lines() ([]map[string]any, error) {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			return out, fmt.Errorf("log line is not JSON: %q: %w", l, err)
		}
		out = append(out, m)
	}
	return out, nil
}
