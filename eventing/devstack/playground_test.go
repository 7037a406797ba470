package devstack_test

import (
	"bytes"
	"cmp"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestPlaygroundInBrowser plays a whole coffee run through the local Slack
// stand-in's web page, the way a newcomer plays it after `make run`: three
// people in three windows of Debian's Chromium, driven by playwright-core
// (eventing/playground-test/play.mjs), against the real stack. The script
// checks what each person sees; its screenshots go to .tmp/artifacts.
//
// make test installs Chromium and playwright-core first (.ci/ensure-browser)
// and sets COFFEE_BROWSER_TEST=required, so there a missing browser fails
// the test; elsewhere it is skipped with the command that installs it.
func TestPlaygroundInBrowser(t *testing.T) {
	dir, err := filepath.Abs("../playground-test")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(dir))
	chromium := cmp.Or(os.Getenv("CHROMIUM"), "/usr/bin/chromium")
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "eventing/playground-test/node_modules")
	}
	if len(missing) > 0 {
		msg := "browser test needs " + strings.Join(missing, ", ") + ": run `bash .ci/ensure-browser` (make test does)"
		if os.Getenv("COFFEE_BROWSER_TEST") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	s := startStack(t, nil)
	artifacts := filepath.Join(root, ".tmp", "artifacts")
	final := filepath.Join(artifacts, "playground-final.png")
	_ = os.Remove(final)

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "play.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "STANDIN_URL="+s.SlackURL, "ARTIFACT_DIR="+artifacts, "CHROMIUM="+chromium)
	// Its own process group, so a timeout also stops the browser it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out := &lineLogger{t: t}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	out.flush()
	t.Logf("play.mjs took %s", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("the browser run failed: %v (screenshots in %s)", err, artifacts)
	}
	if fi, err := os.Stat(final); err != nil || fi.Size() == 0 {
		t.Errorf("no final screenshot at %s: %v", final, err)
	}
}

// lineLogger passes the script's output to t.Log a line at a time, as it
// comes, so a slow step shows where it is.
type lineLogger struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line) // an unfinished line waits for the rest
			return len(p), nil
		}
		l.t.Log("play.mjs: " + strings.TrimRight(line, "\n"))
	}
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 {
		l.t.Log("play.mjs: " + l.buf.String())
		l.buf.Reset()
	}
}
