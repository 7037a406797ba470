package slackapi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
)

// fakeClock is the verifier's clock: the grace window is tested without
// waiting it out.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// randomSecret is a fresh signing secret (32 hex digits, as Slack's), so
// no secret-looking literal lives in the source.
func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// secretFile is a signing-secret file rewritten as Vault agent does: a new
// file renamed over the old one.
type secretFile struct {
	t    *testing.T
	path string
}

func newSecretFile(t *testing.T, value string) *secretFile {
	f := &secretFile{t: t, path: filepath.Join(t.TempDir(), "slack-signing-secret")}
	f.write(value)
	return f
}

func (f *secretFile) write(value string) {
	f.t.Helper()
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		f.t.Fatal(err)
	}
}

func TestVerifierRotation(t *testing.T) {
	body := []byte("command=%2Fcoffee&text=")
	type step struct {
		what    string
		advance time.Duration
		rotate  string // write this secret ("a", "b", "c") to the file first
		signer  string // which secret signs the request
		want    slackapi.Match
		wantErr error
	}
	tests := []struct {
		name  string
		grace time.Duration
		steps []step
	}{
		{"new secret is accepted before the re-check interval and the old one within the grace", 5 * time.Second, []step{
			{what: "a in force", signer: "a", want: slackapi.MatchCurrent},
			{what: "b written: b at once", rotate: "b", signer: "b", want: slackapi.MatchCurrent},
			{what: "a still in flight", signer: "a", want: slackapi.MatchPrevious},
			{what: "a at the end of the grace", advance: 4999 * time.Millisecond, signer: "a", want: slackapi.MatchPrevious},
			{what: "a after the grace", advance: time.Millisecond, signer: "a", wantErr: slackapi.ErrBadSignature},
			{what: "b still", signer: "b", want: slackapi.MatchCurrent},
		}},
		{"no grace", 0, []step{
			{what: "a in force", signer: "a", want: slackapi.MatchCurrent},
			{what: "b written", rotate: "b", signer: "b", want: slackapi.MatchCurrent},
			{what: "a refused at once", signer: "a", wantErr: slackapi.ErrBadSignature},
		}},
		{"two rotations within the grace keep only the previous", 5 * time.Second, []step{
			{what: "a in force", signer: "a", want: slackapi.MatchCurrent},
			{what: "b", rotate: "b", signer: "b", want: slackapi.MatchCurrent},
			{what: "c", rotate: "c", signer: "c", want: slackapi.MatchCurrent},
			{what: "b previous", signer: "b", want: slackapi.MatchPrevious},
			{what: "a gone", signer: "a", wantErr: slackapi.ErrBadSignature},
		}},
		{"a stranger's secret is refused", 5 * time.Second, []step{
			{what: "a in force", signer: "a", want: slackapi.MatchCurrent},
			{what: "x", signer: "x", wantErr: slackapi.ErrBadSignature},
			{what: "b written, x still refused", rotate: "b", signer: "x", wantErr: slackapi.ErrBadSignature},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets := map[string]string{"a": randomSecret(t), "b": randomSecret(t), "c": randomSecret(t), "x": randomSecret(t)}
			file := newSecretFile(t, secrets["a"])
			s, err := config.FileSecret("SLACK_SIGNING_SECRET", file.path)
			if err != nil {
				t.Fatal(err)
			}
			clock := &fakeClock{t: time.Now()}
			var logs bytes.Buffer
			v := slackapi.NewVerifier(s, tt.grace, clock.Now, slog.New(slog.NewJSONHandler(&logs, nil)))
			for _, st := range tt.steps {
				clock.Advance(st.advance)
				if st.rotate != "" {
					file.write(secrets[st.rotate])
				}
				ts := clock.Now().Unix()
				sig := slackapi.Sign(secrets[st.signer], ts, body)
				got, err := v.Verify(strconv.FormatInt(ts, 10), sig, body)
				if got != st.want || !errors.Is(err, st.wantErr) || (st.wantErr == nil) != (err == nil) {
					t.Fatalf("%s: Verify = %v, %v; want %v, %v", st.what, got, err, st.want, st.wantErr)
				}
			}
			for name, value := range secrets {
				if strings.Contains(logs.String(), value) {
					t.Fatalf("secret %s logged:\n%s", name, logs.String())
				}
			}
		})
	}
}

// TestVerifierKeepsTheTimestampWindow: the previous secret does not widen
// what else is accepted.
func TestVerifierKeepsTheTimestampWindow(t *testing.T) {
	a, b := randomSecret(t), randomSecret(t)
	file := newSecretFile(t, a)
	s, err := config.FileSecret("SLACK_SIGNING_SECRET", file.path)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	v := slackapi.NewVerifier(s, 5*time.Second, clock.Now, slog.New(slog.DiscardHandler))
	body := []byte("x=1")
	old := clock.Now().Add(-6 * time.Minute).Unix()
	file.write(b)
	for name, secret := range map[string]string{"current": b, "previous": a} {
		if _, err := v.Verify(strconv.FormatInt(old, 10), slackapi.Sign(secret, old, body), body); !errors.Is(err, slackapi.ErrStaleTimestamp) {
			t.Errorf("%s secret, stale timestamp: %v, want ErrStaleTimestamp", name, err)
		}
	}
	if _, err := v.Verify("", "", body); !errors.Is(err, slackapi.ErrMissingSignature) {
		t.Errorf("no headers: %v, want ErrMissingSignature", err)
	}
}

func TestVerifierWithoutSecret(t *testing.T) {
	v := slackapi.NewVerifier(config.StaticSecret("SLACK_SIGNING_SECRET", ""), time.Second, time.Now, slog.New(slog.DiscardHandler))
	ts := time.Now().Unix()
	if _, err := v.Verify(strconv.FormatInt(ts, 10), slackapi.Sign("", ts, nil), nil); !errors.Is(err, slackapi.ErrNoSigningSecret) {
		t.Fatalf("Verify with no secret = %v, want ErrNoSigningSecret", err)
	}
}
