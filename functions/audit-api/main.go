// Command audit-api serves GET /api/v1/audit behind Kong: the audit log as
// JSON pages or an NDJSON export, for bearer tokens it verifies itself
// (OIDC, scope audit:read), recording every read in the audit log.
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/oidcauth"
)

func main() { function.Main(spec(os.Getenv)) }

// spec reads the function's own configuration (OIDC_*, AUDIT_CURSOR_KEY)
// through getenv; the runtime reads the rest.
func spec(getenv func(string) string) function.Spec {
	ready := func(context.Context) error { return oidcauth.ErrNotReady }
	return function.Spec{
		Name:  "audit-api",
		Needs: function.Needs{DB: true},
		Routes: func(d *function.Deps) (http.Handler, error) {
			ocfg, err := oidcauth.ConfigFromEnv(getenv)
			if err != nil {
				return nil, err
			}
			v, err := oidcauth.New(ocfg, d.Log)
			if err != nil {
				return nil, err
			}
			key, err := cursorKey(getenv, d.Log)
			if err != nil {
				return nil, err
			}
			v.Start(untilStopping(d.Stopping))
			ready = v.Ready // readiness: false until the issuer is discovered
			return New(v, auditquery.NewCursors(key), dbStore{d.DB}, d.Log, d.Metrics), nil
		},
		ReadyCheck: func(ctx context.Context) error { return ready(ctx) },
	}
}

// cursorKey is the HMAC key of the page cursors: AUDIT_CURSOR_KEY_FILE
// (Vault; re-read on change) or AUDIT_CURSOR_KEY, at least 32 bytes. Without
// one, a random key per process: cursors then do not survive a restart
// (scale to zero included) and one replica refuses another's, which is
// acceptable for make run, not for production (the Service sets the file).
func cursorKey(getenv func(string) string, log *slog.Logger) (func() ([]byte, error), error) {
	s, err := config.SecretFromEnv(getenv, "AUDIT_CURSOR_KEY")
	if err != nil {
		return nil, err
	}
	if s == nil {
		k := make([]byte, auditquery.MinKeyLen)
		_, _ = rand.Read(k) // never fails on Linux
		log.Warn("AUDIT_CURSOR_KEY unset: cursors are signed with a random key of this process; they stop working at restart and on other replicas")
		return func() ([]byte, error) { return k, nil }, nil
	}
	v, err := s.Value()
	if err != nil {
		return nil, err
	}
	if len(v) < auditquery.MinKeyLen {
		return nil, fmt.Errorf("AUDIT_CURSOR_KEY: %d bytes; at least %d are required", len(v), auditquery.MinKeyLen)
	}
	return func() ([]byte, error) {
		v, err := s.Value()
		if v == "" {
			return nil, err
		}
		return []byte(v), nil // a file gone after a good read keeps the last key
	}, nil
}

// untilStopping is a context cancelled at SIGTERM.
func untilStopping(stopping <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-stopping
		cancel()
	}()
	return ctx
}
