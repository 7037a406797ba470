package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Roles is the install's role script (deploy/postgres/roles.sql) applied
// to one test's database under role names unique to the test: roles are
// server-wide and tests run in parallel.
type Roles struct {
	db     *DB
	script string            // with the names replaced
	names  map[string]string // install name → the test's name
	// Psql is true when Apply ran the script through psql (as the install
	// does), false when psql is not installed and pgx ran it.
	Psql bool
}

// roleName matches the install's role names in the script.
var roleName = regexp.MustCompile(`\bcoffeebuddy_(app|readonly|audit|vault)\b`)

// ApplyRoles reads the role script at path, renames its coffeebuddy_*
// roles, applies it to db once, and drops the roles when the test ends.
func ApplyRoles(t testing.TB, db *DB, path string) *Roles {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	suffix := randomHex(4)
	r := &Roles{db: db, names: map[string]string{}}
	r.script = roleName.ReplaceAllStringFunc(string(b), func(m string) string {
		n := m + "_" + suffix
		r.names[m] = n
		return n
	})
	if len(r.names) == 0 {
		t.Fatalf("pgtest: %s names no coffeebuddy_* role", path)
	}
	t.Cleanup(func() {
		// Before pgtest drops the database: the grants live in it.
		ctx := context.Background()
		for _, n := range r.names {
			id := pgx.Identifier{n}.Sanitize()
			if _, err := db.Pool.Exec(ctx, "DROP OWNED BY "+id+"; DROP ROLE "+id); err != nil {
				t.Errorf("pgtest: drop role %s: %v", n, err)
			}
		}
	})
	r.Apply(t)
	return r
}

// Apply runs the script (again): with psql -v ON_ERROR_STOP=1, as the
// install runs it, when psql is on PATH; otherwise over pgx, which takes
// the same plain SQL.
func (r *Roles) Apply(t testing.TB) {
	t.Helper()
	if psql, err := exec.LookPath("psql"); err == nil {
		file := filepath.Join(t.TempDir(), "roles.sql")
		if err := os.WriteFile(file, []byte(r.script), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(psql, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-f", file, r.db.URL)
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pgtest: psql -f roles.sql: %v\n%s", err, out)
		}
		r.Psql = true
		return
	}
	if _, err := r.db.Pool.Exec(context.Background(), r.script); err != nil {
		t.Fatalf("pgtest: apply roles.sql: %v", err)
	}
}

// Name is the test's name of an install role (coffeebuddy_app → …).
func (r *Roles) Name(t testing.TB, role string) string {
	t.Helper()
	n, ok := r.names[role]
	if !ok {
		t.Fatalf("pgtest: the role script has no %s", role)
	}
	return n
}

// URL connects to the test's database as an install role. The test server
// trusts local connections, so no password is needed.
func (r *Roles) URL(t testing.TB, role string) string {
	t.Helper()
	u, err := url.Parse(r.db.URL)
	if err != nil {
		t.Fatal(fmt.Errorf("pgtest: %w", err))
	}
	u.User = url.User(r.Name(t, role))
	return u.String()
}
