package function_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgcluster"
	"github.com/coffeebuddy/coffeebuddy/shared/tlstest"
)

// tlsProbe is a function that needs the database and reports what its
// connection is: GET /probe answers the session's TLS state and role, or
// the connection error; ?fresh=1 closes the pool's connections first, so
// the answer comes from a new connection.
func tlsProbe() function.Spec {
	return function.Spec{
		Name:  "tls-probe",
		Needs: function.Needs{DB: true},
		Routes: func(d *function.Deps) (http.Handler, error) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /probe", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("fresh") != "" {
					d.DB.Reset()
				}
				var out struct {
					SSL     bool   `json:"ssl"`
					Version string `json:"version"`
					User    string `json:"user"`
				}
				err := d.DB.QueryRow(r.Context(),
					`SELECT ssl, coalesce(version, ''), current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).
					Scan(&out.SSL, &out.Version, &out.User)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				_ = json.NewEncoder(w).Encode(out)
			})
			return mux, nil
		},
	}
}

// TestDatabaseOverTLS runs a function through the shared runtime against a
// PostgreSQL that, as in production, takes the application role only over
// TLS and by password: the function connects with the production URL shape
// (sslmode=verify-full, the password from PGPASSFILE) plus sslrootcert
// naming a throwaway CA, and keeps connecting after the password is
// rotated and the pgpass file rewritten (Vault's static role rotation). It
// refuses a server whose certificate was issued by a CA it does not trust,
// and one whose certificate names another host; without TLS the server
// refuses it.
func TestDatabaseOverTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "coffeebuddy test CA")
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1", "localhost")
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{
		TLS:          &pgcluster.TLS{CertPEM: certPEM, KeyPEM: keyPEM},
		PasswordAuth: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })

	// The role and its first password, as Vault's static role holds it.
	admin, err := pgx.Connect(ctx, cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	setPassword := func(pw string) {
		t.Helper()
		if _, err := admin.Exec(ctx, "ALTER ROLE coffeebuddy_app PASSWORD "+quote(pw)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.Exec(ctx, "CREATE ROLE coffeebuddy_app LOGIN"); err != nil {
		t.Fatal(err)
	}
	first := randomHex(t)
	setPassword(first)
	pgpass := filepath.Join(dir, "pgpass")
	writePgpass := func(pw string) { // as Vault agent renders it: a new file renamed into place
		t.Helper()
		tmp := pgpass + ".tmp"
		if err := os.WriteFile(tmp, []byte("*:*:*:coffeebuddy_app:"+pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, pgpass); err != nil {
			t.Fatal(err)
		}
	}
	writePgpass(first)
	// As in production, the process environment names it too, so pgx reads
	// it when parsing the URL: what the runtime adds is reading it again.
	// (Not parallel: Setenv.)
	t.Setenv("PGPASSFILE", pgpass)

	trusted := ca.WriteCert(t, dir, "ca.crt")
	stranger := tlstest.NewCA(t, "some other CA").WriteCert(t, dir, "other-ca.crt")
	dbURL := func(host, query string) string {
		return "postgres://coffeebuddy_app@" + host + ":" + strconv.Itoa(cluster.Port()) + "/postgres?" + query
	}
	probe := func(t *testing.T, databaseURL, path string) (int, string) {
		t.Helper()
		r := start(t, tlsProbe(), map[string]string{"DATABASE_URL": databaseURL, "PGPASSFILE": pgpass})
		return r.get(t, path)
	}
	verifyFull := "sslmode=verify-full&sslrootcert=" + url.QueryEscape(trusted)

	t.Run("verify-full", func(t *testing.T) {
		r := start(t, tlsProbe(), map[string]string{"DATABASE_URL": dbURL("127.0.0.1", verifyFull), "PGPASSFILE": pgpass})
		code, body := r.get(t, "/probe")
		if code != http.StatusOK || !strings.Contains(body, `"ssl":true`) || !strings.Contains(body, `"user":"coffeebuddy_app"`) {
			t.Fatalf("probe: %d %s; want a TLS session as coffeebuddy_app", code, body)
		}
		t.Logf("connected: %s", strings.TrimSpace(body))
		r.waitReady(t)

		// Vault rotates the password and re-renders pgpass: a new
		// connection reads the new one, with no restart.
		second := randomHex(t)
		setPassword(second)
		writePgpass(second)
		if code, body := r.get(t, "/probe?fresh=1"); code != http.StatusOK || !strings.Contains(body, `"ssl":true`) {
			t.Fatalf("new connection after the password rotation: %d %s", code, body)
		}
		// The old password is really gone.
		old, err := pgx.Connect(ctx, strings.Replace(dbURL("127.0.0.1", verifyFull), "coffeebuddy_app@", "coffeebuddy_app:"+first+"@", 1))
		if err == nil {
			old.Close(ctx)
			t.Fatal("the rotated-out password still logs in")
		}
	})

	t.Run("untrusted CA", func(t *testing.T) {
		code, body := probe(t, dbURL("127.0.0.1", "sslmode=verify-full&sslrootcert="+url.QueryEscape(stranger)), "/probe")
		if code != http.StatusBadGateway || !strings.Contains(body, "certificate signed by unknown authority") {
			t.Fatalf("probe: %d %s; want a refusal of the server's certificate", code, body)
		}
		t.Logf("refused: %s", strings.TrimSpace(body))
	})

	t.Run("no TLS", func(t *testing.T) {
		code, body := probe(t, dbURL("127.0.0.1", "sslmode=disable"), "/probe")
		if code != http.StatusBadGateway || !strings.Contains(body, "no encryption") {
			t.Fatalf("probe: %d %s; want the server to refuse a connection without TLS", code, body)
		}
		t.Logf("refused: %s", strings.TrimSpace(body))
	})

	// Last: it changes the server's certificate. The server now presents a
	// certificate from the trusted CA for another host: verify-full
	// refuses it, verify-ca (the chain only) would not.
	t.Run("wrong host name", func(t *testing.T) {
		otherCert, otherKey := ca.Issue(t, "postgres.coffeebuddy.svc", "10.0.0.5")
		if err := cluster.ReloadTLS(ctx, otherCert, otherKey); err != nil {
			t.Fatal(err)
		}
		code, body := probe(t, dbURL("127.0.0.1", verifyFull), "/probe")
		if code != http.StatusBadGateway || !strings.Contains(body, "certificate is valid for 10.0.0.5, not 127.0.0.1") {
			t.Fatalf("probe: %d %s; want a refusal naming the host mismatch", code, body)
		}
		t.Logf("refused: %s", strings.TrimSpace(body))
		if code, body := probe(t, dbURL("127.0.0.1", "sslmode=verify-ca&sslrootcert="+url.QueryEscape(trusted)), "/probe"); code != http.StatusOK {
			t.Fatalf("verify-ca against the same server: %d %s; want it accepted (only the name is wrong)", code, body)
		}
	})
}

// quote is a SQL string literal (ALTER ROLE … PASSWORD takes no parameters).
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
