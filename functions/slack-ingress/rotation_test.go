package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/logbuf"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

// rotationGrace is the process's SLACK_SIGNING_SECRET_GRACE in the test.
const rotationGrace = 5 * time.Second

// clock is the process's signature clock: the grace window is crossed by
// advancing it, not by waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// slackSide stands for Slack and Vault together: the secret in force is
// the one in the file, and a rotation rewrites the file as Vault agent does
// (a new file renamed over the old one) and switches signing at the same
// instant, as Slack does. "Correctly signed" means signed with the secret in
// force at signing time; the request may reach the ingress after a
// rotation.
type slackSide struct {
	mu     sync.RWMutex
	path   string
	secret string
}

func (s *slackSide) sign(ts int64, body []byte) (sig, secret string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slackapi.Sign(s.secret, ts, body), s.secret
}

func (s *slackSide) rotate(t *testing.T, secret string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	writeRenamed(t, s.path, secret)
	s.secret = secret
}

func writeRenamed(t *testing.T, path, value string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o600); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Error(err)
	}
}

func newSigningSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b) // 32 hex digits, as Slack's
}

// probeBody is a signed slash command the ingress verifies, parses and
// answers itself (an unknown command: no Kafka, no database), so the
// stream measures the signature check.
var probeBody = []byte(url.Values{
	"team_id": {"T0ROTATE"}, "channel_id": {"C0ROTATE"}, "user_id": {"U0ROTATE"},
	"command": {"/coffee-rotation-probe"}, "text": {""},
}.Encode())

type result struct {
	status int
	body   string
	secret string // the secret that signed it
	err    error
}

func send(cl *http.Client, base string, ts int64, sig string) result {
	req, _ := http.NewRequest(http.MethodPost, base+"/slack/commands", bytes.NewReader(probeBody))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(slackapi.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(slackapi.HeaderSignature, sig)
	resp, err := cl.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, body: string(b)}
}

// TestSigningSecretRotationZeroDowntime runs slack-ingress as main does
// (function.Run, SLACK_SIGNING_SECRET_FILE) while several goroutines send
// a continuous stream of requests, each signed with the secret in force
// when it was signed. The file is rewritten mid-stream. No correctly signed
// request may fail, including one signed with the old secret just before
// the rewrite and delivered after it, and one signed with the new secret
// before the process's once-a-second re-check. After the grace window the
// old secret gets 401.
func TestSigningSecretRotationZeroDowntime(t *testing.T) {
	dir := t.TempDir()
	oldSecret, newSecret := newSigningSecret(t), newSigningSecret(t)
	side := &slackSide{path: filepath.Join(dir, "slack-signing-secret")}
	writeRenamed(t, side.path, oldSecret)
	side.secret = oldSecret
	tokenFile := filepath.Join(dir, "slack-bot-token")
	writeRenamed(t, tokenFile, slackstandin.DefaultBotToken)

	kc := kafkatest.New(t)
	sl := slackstandin.NewTestServer(t, slackstandin.Options{})
	env := map[string]string{
		"DATABASE_URL":               pgtest.New(t).URL,
		"KAFKA_BROKERS":              strings.Join(kc.Brokers, ","),
		"SLACK_API_URL":              sl.APIURL(),
		"SLACK_SIGNING_SECRET_FILE":  side.path,
		"SLACK_BOT_TOKEN_FILE":       tokenFile,
		"SLACK_SIGNING_SECRET_GRACE": rotationGrace.String(),
	}
	clk := &clock{t: time.Now()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	logs := &logbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- function.Run(ctx, spec(clk.Now), func(k string) string { return env[k] }, logs, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("function.Run: %v", err)
		}
	})

	// The stream: each worker signs with the secret in force, then sends.
	const workers = 6
	var (
		okOld, okNew atomic.Int64
		failMu       sync.Mutex
		failures     []result
		progress     = make(chan struct{}, 1)
		stop         = make(chan struct{})
		wg           sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				ts := clk.Now().Unix()
				sig, secret := side.sign(ts, probeBody)
				r := send(cl, base, ts, sig)
				r.secret = secret
				if r.err != nil || r.status != http.StatusOK {
					failMu.Lock()
					failures = append(failures, r)
					failMu.Unlock()
					continue
				}
				if secret == oldSecret {
					okOld.Add(1)
				} else {
					okNew.Add(1)
				}
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	stopStream := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopStream)
	// waitFor lets the stream run until want requests of a kind passed and
	// at least minStream has gone by, so Secret's once-a-second re-read
	// happens on both sides of the rotation, not only Refresh.
	const minStream = 1500 * time.Millisecond
	waitFor := func(what string, n *atomic.Int64, want int64) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		minimum := time.After(minStream)
		for n.Load() < want || minimum != nil {
			select {
			case <-progress:
			case <-minimum:
				minimum = nil // a nil channel never fires again
			case <-timeout:
				t.Fatalf("timed out waiting for %d %s (have %d)", want, what, n.Load())
			}
		}
	}

	began := time.Now()
	waitFor("requests signed with the old secret", &okOld, 300)

	// One request signed with the old secret just before the rewrite and
	// delivered just after it, and one signed with the new secret and
	// delivered at once, well inside the one-second re-check.
	cl := &http.Client{Timeout: 10 * time.Second}
	ts := clk.Now().Unix()
	inFlight := slackapi.Sign(oldSecret, ts, probeBody)
	rotatedAt := time.Now()
	side.rotate(t, newSecret)
	if r := send(cl, base, ts, slackapi.Sign(newSecret, ts, probeBody)); r.status != http.StatusOK {
		t.Errorf("new-secret request right after the rewrite: %d %s %v", r.status, r.body, r.err)
	}
	// The new secret has been seen: the old one passes only by the grace.
	if r := send(cl, base, ts, inFlight); r.status != http.StatusOK {
		t.Errorf("old-secret request signed before the rewrite, overtaken by a new one: %d %s %v", r.status, r.body, r.err)
	}
	oldBefore := okOld.Load()
	waitFor("requests signed with the new secret", &okNew, 300)
	stopStream()
	t.Logf("stream: %d requests signed with the old secret, %d with the new, %d failed; rotation %s into a %s stream",
		okOld.Load(), okNew.Load(), len(failures), rotatedAt.Sub(began).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	for i, f := range failures {
		if i == 5 {
			t.Errorf("… %d failures in all", len(failures))
			break
		}
		which := "new"
		if f.secret == oldSecret {
			which = "old"
		}
		t.Errorf("correctly signed request (%s secret) failed: %d %s %v", which, f.status, f.body, f.err)
	}
	if okOld.Load() > oldBefore {
		t.Logf("%d old-secret requests signed before the rewrite completed after it", okOld.Load()-oldBefore)
	}

	// Within the grace window the old secret still passes; once the window
	// has passed (on the process's clock) it gets 401, the new one 200.
	ts = clk.Now().Unix()
	if r := send(cl, base, ts, slackapi.Sign(oldSecret, ts, probeBody)); r.status != http.StatusOK {
		t.Errorf("old secret within the grace window: %d %s", r.status, r.body)
	}
	clk.Advance(rotationGrace)
	ts = clk.Now().Unix()
	if r := send(cl, base, ts, slackapi.Sign(oldSecret, ts, probeBody)); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "does not match") {
		t.Errorf("old secret after the grace window: %d %s, want 401", r.status, r.body)
	}
	if r := send(cl, base, ts, slackapi.Sign(newSecret, ts, probeBody)); r.status != http.StatusOK {
		t.Errorf("new secret after the grace window: %d %s", r.status, r.body)
	}

	// Operators see the change and the requests the grace let through;
	// neither secret is ever logged.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if prev := metricValue(string(mb), "slack_ingress_previous_secret_total"); prev < 1 {
		t.Errorf("slack_ingress_previous_secret_total = %v, want ≥ 1", prev)
	} else {
		t.Logf("accepted with the previous secret: %v", prev)
	}
	out := logs.String()
	if !strings.Contains(out, "Slack signing secret changed") {
		t.Errorf("no log line for the change:\n%s", out)
	}
	for _, s := range []string{oldSecret, newSecret} {
		if strings.Contains(out, s) || strings.Contains(string(mb), s) {
			t.Fatal("a signing secret was logged or exported")
		}
	}
}

// metricValue reads an unlabelled sample from Prometheus text output.
func metricValue(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return -1
}
