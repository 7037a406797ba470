package slackapi

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/config"
)

// ErrNoSigningSecret means no signing secret could be read at all (its file
// never had a good value): the caller answers 503, not 401.
var ErrNoSigningSecret = errors.New("Slack signing secret unavailable")

// Match says which secret verified a request.
type Match int

const (
	// MatchNone: the request was not verified.
	MatchNone Match = iota
	// MatchCurrent: signed with the secret in force.
	MatchCurrent
	// MatchPrevious: signed with the secret replaced less than the grace
	// window ago (a request Slack signed before the rotation, delivered
	// after it).
	MatchPrevious
)

// Verifier checks Slack request signatures against a signing secret that
// is rotated while requests flow (Vault agent rewrites the file, the
// process re-reads it). Zero failures for correctly signed requests takes
// two things a plain Verify against Secret.Value lacks:
//
//   - a request signed with a secret newer than the one in memory (the file
//     changed inside Secret's one-second re-check interval) is checked
//     again after Secret.Refresh;
//   - a request signed with the previous secret is accepted for grace after
//     this process first saw the new one, so requests signed just before
//     the rotation and delivered just after it still pass. After grace the
//     previous secret is refused.
//
// Only the previous secret is kept: two rotations within grace refuse the
// oldest.
type Verifier struct {
	secret *config.Secret
	grace  time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu       sync.Mutex
	version  uint64 // of current
	current  string
	previous string
	changed  time.Time // when this process first saw current replace previous
}

// NewVerifier verifies against secret, accepting the previous secret for
// grace after a change (0: never); now is the clock for both the grace and
// the timestamp window.
func NewVerifier(secret *config.Secret, grace time.Duration, now func() time.Time, log *slog.Logger) *Verifier {
	return &Verifier{secret: secret, grace: grace, now: now, log: log}
}

// Verify checks a request's timestamp and signature headers against body,
// as Verify does, with the secret in force or, within the grace window, the
// previous one. Errors wrap ErrMissingSignature, ErrBadTimestamp,
// ErrStaleTimestamp, ErrBadSignature (all 401) or ErrNoSigningSecret (503).
func (v *Verifier) Verify(timestamp, signature string, body []byte) (Match, error) {
	now := v.now()
	cur, ver, err := v.secret.Versioned()
	if err != nil {
		// The last good value stays in use; say why the file is not read.
		v.log.Error("signing secret file unreadable; using the last good value", "err", err)
	}
	if cur == "" {
		return MatchNone, fmt.Errorf("%w: %v", ErrNoSigningSecret, err)
	}
	v.observe(cur, ver, now)
	err = Verify(cur, timestamp, signature, body, now)
	if !errors.Is(err, ErrBadSignature) {
		if err != nil {
			return MatchNone, err
		}
		return MatchCurrent, nil
	}
	// Not the secret in memory: the file may have been rewritten since the
	// last re-check. Reading it again costs a file read per forged request,
	// against an HMAC that already cost as much.
	if fresh, fver, _ := v.secret.Refresh(); fresh != "" && fver != ver {
		v.observe(fresh, fver, now)
		if Verify(fresh, timestamp, signature, body, now) == nil {
			return MatchCurrent, nil
		}
	}
	if prev := v.previousWithin(now); prev != "" && Verify(prev, timestamp, signature, body, now) == nil {
		return MatchPrevious, nil
	}
	return MatchNone, err
}

// observe records value (of version ver) as current if it is newer than
// what this verifier has seen; concurrent requests may report versions out
// of order, and an older one must not bring the old secret back.
func (v *Verifier) observe(value string, ver uint64, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ver <= v.version {
		return
	}
	first := v.version == 0
	v.previous, v.current, v.version, v.changed = v.current, value, ver, now
	if !first {
		// Never the values: only that it happened, for the rotation runbook.
		v.log.Info("Slack signing secret changed", "version", ver, "previous_accepted_for", v.grace.String())
	}
}

func (v *Verifier) previousWithin(now time.Time) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.previous == "" || now.Sub(v.changed) >= v.grace {
		return ""
	}
	return v.previous
}
