package schemadoc_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/schemadoc"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// docPath is docs/schema.md, relative to this package's directory.
const docPath = "../../../docs/schema.md"

// TestSchemaDocUpToDate fails when a migration changed the schema but
// docs/schema.md was not regenerated.
func TestSchemaDocUpToDate(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	got, err := schemadoc.Generate(context.Background(), db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("read %s: %v (run `make schema-doc`)", docPath, err)
	}
	if got != string(want) {
		t.Errorf("docs/schema.md is stale: run `make schema-doc` (or `cd shared && go run ./cmd/migrate schema-doc -o ../docs/schema.md`) and commit the result.\nfirst difference: %s",
			firstDiff(string(want), got))
	}
}

func TestGenerateContents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	doc, err := schemadoc.Generate(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc, schemadoc.Header+"\n") {
		t.Error("document does not start with the generated-file header")
	}
	for _, want := range []string{
		"## coffee_runs\n",
		"| `customizations` | text | no | `''::text` |",
		"`coffee_runs_one_active_per_channel`: `CREATE UNIQUE INDEX coffee_runs_one_active_per_channel ON public.coffee_runs USING btree (team_id, channel_id) WHERE (status = 'active'::text)`",
		"`orders_run_id_fkey`: `FOREIGN KEY (run_id) REFERENCES coffee_runs(id) ON DELETE CASCADE`",
		"| `id` | bigint | no | `generated always as identity` |",
		"Transactional outbox",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("document lacks %q", want)
		}
	}
	if strings.Contains(doc, "schema_migrations") {
		t.Error("document lists golang-migrate's schema_migrations table")
	}

	// Deterministic: same schema, same bytes.
	again, err := schemadoc.Generate(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if again != doc {
		t.Error("two renders of the same schema differ")
	}

	// A new table shows up, sorted into place, with its comment.
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE aaa_probe (x int); COMMENT ON TABLE aaa_probe IS 'probe | pipe'`); err != nil {
		t.Fatal(err)
	}
	doc2, err := schemadoc.Generate(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if i, j := strings.Index(doc2, "## aaa_probe"), strings.Index(doc2, "## audit_logs"); i < 0 || i > j {
		t.Errorf("new table missing or out of order (at %d, audit_logs at %d)", i, j)
	}
}

// firstDiff shows the first differing line, enough to see what changed.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  docs/schema.md: " + w + "\n  generated:      " + g
		}
	}
	return "(none)"
}
