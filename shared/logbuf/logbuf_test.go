package logbuf_test

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/logbuf"
)

// TestConcurrentWritersAndLines: lines written from many goroutines all
// arrive whole and decode; a line that is not JSON is refused by name.
func TestConcurrentWritersAndLines(t *testing.T) {
	t.Parallel()
	var buf logbuf.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				log.Info("hello", "g", g, "i", i)
				_ = buf.String() // reads while others write
			}
		}()
	}
	wg.Wait()
	lines, err := buf.Lines()
	if err != nil || len(lines) != 800 {
		t.Fatalf("%d lines, %v; want 800 JSON lines", len(lines), err)
	}
	for _, l := range lines {
		if l["msg"] != "hello" {
			t.Fatalf("line %v", l)
		}
	}
	fmt.Fprintln(&buf, "not json")
	if _, err := buf.Lines(); err == nil || !strings.Contains(err.Error(), `"not json"`) {
		t.Fatalf("Lines with a non-JSON line: %v", err)
	}
}
