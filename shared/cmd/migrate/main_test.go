package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/coffeebuddy/coffeebuddy/migrations"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestCommands(t *testing.T) {
	db := pgtest.NewEmpty(t)
	ctx := context.Background()
	withDB := env(map[string]string{"DATABASE_URL": db.URL})
	vs := versions(t)
	latest, oneBack, twoBack := vs[len(vs)-1], vs[len(vs)-2], vs[len(vs)-3]
	docFile := filepath.Join(t.TempDir(), "schema.md")

	// Steps share one database and run in order.
	steps := []struct {
		name       string
		args       []string
		getenv     func(string) string
		wantCode   int
		wantStdout string // exact, when set
		wantStderr string // substring, when set
		before     string // SQL run on the database first
	}{
		{name: "no command", args: nil, getenv: withDB, wantCode: 2, wantStderr: "usage: migrate"},
		{name: "unknown command", args: []string{"sideways"}, getenv: withDB, wantCode: 2, wantStderr: `unknown command "sideways"`},
		{name: "up without DATABASE_URL", args: []string{"up"}, getenv: env(nil), wantCode: 2, wantStderr: "needs DATABASE_URL"},
		{name: "bad down count", args: []string{"down", "zero"}, getenv: withDB, wantCode: 2, wantStderr: "positive integer"},
		{name: "version of a blank database", args: []string{"version"}, getenv: withDB, wantStdout: "0\n"},
		{name: "up", args: []string{"up"}, getenv: withDB, wantStderr: `"msg":"migrated up"`},
		{name: "up again is a no-op", args: []string{"up"}, getenv: withDB},
		{name: "version after up", args: []string{"version"}, getenv: withDB, wantStdout: fmt.Sprintf("%d\n", latest)},
		{name: "down 2", args: []string{"down", "2"}, getenv: withDB, wantStderr: fmt.Sprintf(`"version":%d`, twoBack)},
		{name: "version after down 2", args: []string{"version"}, getenv: withDB, wantStdout: fmt.Sprintf("%d\n", twoBack)},
		// A migration that failed half-way: rolled back, its version left dirty.
		{name: "up refuses a dirty database", args: []string{"up"}, getenv: withDB, wantCode: 1, wantStderr: "Dirty database version",
			before: fmt.Sprintf("UPDATE schema_migrations SET version = %d, dirty = true", oneBack)},
		{name: "version shows dirty", args: []string{"version"}, getenv: withDB, wantStdout: fmt.Sprintf("%d (dirty)\n", oneBack)},
		{name: "force needs a version", args: []string{"force"}, getenv: withDB, wantCode: 2, wantStderr: "force takes one argument"},
		{name: "force refuses a bad version", args: []string{"force", "-1"}, getenv: withDB, wantCode: 2, wantStderr: "non-negative integer"},
		{name: "force the version before", args: []string{"force", fmt.Sprint(twoBack)}, getenv: withDB,
			wantStderr: fmt.Sprintf(`"msg":"forced","version":%d,"dirty":false`, twoBack)},
		{name: "up after force", args: []string{"up"}, getenv: withDB, wantStderr: fmt.Sprintf(`"version":%d`, latest)},
		{name: "down all", args: []string{"down"}, getenv: withDB},
		{name: "version after down all", args: []string{"version"}, getenv: withDB, wantStdout: "0\n"},
		{name: "schema-doc migrates and writes the file", args: []string{"schema-doc", "-o", docFile}, getenv: withDB, wantStderr: `"msg":"wrote schema doc"`},
		{name: "schema-doc to stdout", args: []string{"schema-doc"}, getenv: withDB},
		{name: "schema-doc bad flag", args: []string{"schema-doc", "-x"}, getenv: withDB, wantCode: 2},
		{name: "unreachable database", args: []string{"version"}, getenv: env(map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"}), wantCode: 1, wantStderr: `"level":"ERROR"`},
	}
	for _, s := range steps {
		if s.before != "" {
			conn, err := pgx.Connect(ctx, db.URL)
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.Exec(ctx, s.before)
			conn.Close(ctx)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		var stdout, stderr bytes.Buffer
		code := run(ctx, s.args, &stdout, &stderr, s.getenv)
		if code != s.wantCode {
			t.Errorf("%s: exit %d, want %d; stderr:\n%s", s.name, code, s.wantCode, stderr.String())
			continue
		}
		if s.wantStdout != "" && stdout.String() != s.wantStdout {
			t.Errorf("%s: stdout %q, want %q", s.name, stdout.String(), s.wantStdout)
		}
		if s.wantStderr != "" && !strings.Contains(stderr.String(), s.wantStderr) {
			t.Errorf("%s: stderr lacks %q:\n%s", s.name, s.wantStderr, stderr.String())
		}
		// Log lines are JSON (usage text aside).
		if code != 2 {
			for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
				if line != "" && !json.Valid([]byte(line)) {
					t.Errorf("%s: stderr line is not JSON: %s", s.name, line)
				}
			}
		}
		if s.name == "schema-doc to stdout" && !strings.Contains(stdout.String(), "## coffee_runs") {
			t.Errorf("schema-doc stdout lacks coffee_runs:\n%s", stdout.String())
		}
	}

	doc, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../../../docs/schema.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, committed) {
		t.Error("schema-doc -o output differs from docs/schema.md (run make schema-doc)")
	}
}

// versions lists the embedded migration versions in order, so adding a
// migration needs no test change.
func versions(t *testing.T) []uint64 {
	t.Helper()
	ups, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	var vs []uint64
	for _, name := range ups {
		v, err := strconv.ParseUint(name[:strings.IndexByte(name, '_')], 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	if len(vs) < 3 {
		t.Skip("needs at least 3 migrations")
	}
	return vs
}

// TestSchemaDocEphemeral covers the no-DATABASE_URL path: start a cluster,
// migrate, render, stop.
func TestSchemaDocEphemeral(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"schema-doc"}, &stdout, &stderr, env(nil)); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "## processed_events") {
		t.Errorf("output lacks processed_events:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "starting an ephemeral cluster") {
		t.Errorf("stderr lacks the ephemeral-cluster log line:\n%s", stderr.String())
	}
}
