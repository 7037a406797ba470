package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/oidcauth/oidctest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
)

// process runs the function as main does, through the shared runtime, and
// returns its base URL; cancel is SIGTERM.
func process(t *testing.T, env map[string]string) (base string, logs *lockedWriter, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	logs = &lockedWriter{w: &bytes.Buffer{}}
	done := make(chan error, 1)
	go func() { done <- function.Run(ctx, spec(getenv), getenv, logs, ln) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("no shutdown within 20 s")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + ln.Addr().String(), logs, stop
}

func status(t *testing.T, url string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProcess runs audit-api through the shared runtime with a cursor key
// file: readiness stays false while the issuer cannot be discovered and
// turns true on its own once it can; a token signed with a rotated key
// passes without a restart; metrics, liveness and SIGTERM work.
func TestProcess(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	is := oidctest.New(t)
	is.SetDown(true)
	keyFile := filepath.Join(t.TempDir(), "cursor-key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("k", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, logs, stop := process(t, map[string]string{
		"DATABASE_URL": db.URL, "OIDC_ISSUER_URL": is.URL, "OIDC_AUDIENCE": audience,
		"AUDIT_CURSOR_KEY_FILE": keyFile, "LOG_LEVEL": "debug",
	})
	eventually(t, "liveness", func() bool {
		s, h, _ := status(t, base+"/health/liveness", nil)
		return s == 200 && h.Get("X-Coffeebuddy-Function") == "audit-api"
	})
	time.Sleep(300 * time.Millisecond)
	if s, _, body := status(t, base+"/health/readiness", nil); s != 503 || !strings.Contains(body, "discovery") {
		t.Fatalf("readiness with the issuer down: %d %s; want 503", s, body)
	}
	if s, h, _ := status(t, base+Path+"?"+marchQuery, map[string]string{"Authorization": "Bearer " + is.Token(t, nil)}); s != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("request before discovery: %d; want 503 with Retry-After", s)
	}
	is.SetDown(false)
	eventually(t, "readiness after discovery", func() bool { s, _, _ := status(t, base+"/health/readiness", nil); return s == 200 })

	auth := map[string]string{"Authorization": "Bearer " + is.Token(t, nil)}
	if s, _, body := status(t, base+Path+"?"+marchQuery, auth); s != 200 || !strings.Contains(body, `"items":[]`) {
		t.Fatalf("query: %d %s", s, body)
	}
	is.RotateKey(t)
	if s, _, body := status(t, base+Path+"?"+marchQuery, map[string]string{"Authorization": "Bearer " + is.Token(t, nil)}); s != 200 {
		t.Fatalf("token signed with the rotated key: %d %s", s, body)
	}
	if s, _, body := status(t, base+"/metrics", nil); s != 200 || !strings.Contains(body, `audit_api_requests_total{status="200"} 2`) ||
		!strings.Contains(body, `coffeebuddy_breaker_state{downstream="postgres",function="audit-api"}`) {
		t.Fatalf("metrics: %d\n%s", s, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	out := logs.String()
	for _, want := range []string{`"msg":"OIDC issuer discovery failed; retrying"`, `"msg":"OIDC issuer discovered"`, `"msg":"ready"`, `"msg":"stopped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if strings.Contains(out, "AUDIT_CURSOR_KEY unset") || strings.Contains(out, strings.Repeat("k", 40)) {
		t.Error("the key file was not used, or the key was logged")
	}
	if strings.Contains(out, strings.TrimPrefix(auth["Authorization"], "Bearer ")) {
		t.Error("a token was logged")
	}
}

// TestProcessWithoutOIDC is make run's case before a local issuer is
// wired in: the function starts and is ready (the local stack waits for
// every function), and refuses every API request with 503: fail closed.
func TestProcessWithoutOIDC(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	base, logs, _ := process(t, map[string]string{"DATABASE_URL": db.URL})
	eventually(t, "readiness", func() bool { s, _, _ := status(t, base+"/health/readiness", nil); return s == 200 })
	s, h, body := status(t, base+Path+"?"+marchQuery, map[string]string{"Authorization": "Bearer x.y.z"})
	if s != 503 || h.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, "not configured") {
		t.Fatalf("request without OIDC configured: %d %s", s, body)
	}
	out := logs.String()
	if !strings.Contains(out, "OIDC is not configured") || !strings.Contains(out, "AUDIT_CURSOR_KEY unset") {
		t.Errorf("logs do not warn about the missing configuration:\n%s", out)
	}
}

func TestProcessRefusesBadConfig(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	short := filepath.Join(t.TempDir(), "short")
	_ = os.WriteFile(short, []byte("too-short"), 0o600)
	for name, env := range map[string]map[string]string{
		"issuer without audience": {"OIDC_ISSUER_URL": "https://hydra.example/"},
		"short cursor key":        {"AUDIT_CURSOR_KEY_FILE": short},
		"missing cursor key file": {"AUDIT_CURSOR_KEY_FILE": short + ".gone"},
	} {
		env["DATABASE_URL"] = db.URL
		getenv := func(k string) string { return env[k] }
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		err := function.Run(context.Background(), spec(getenv), getenv, io.Discard, ln)
		ln.Close()
		if err == nil {
			t.Errorf("%s: started", name)
		}
	}
}
