package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
)

// TestTinyAuditBench runs every audit retention scenario on 12,000 rows:
// each deletes exactly the expired rows (runAudit checks what is left),
// the partitioned copy is built, the batch statement is explained and the
// query shapes are timed on both layouts. Figures at this size mean
// nothing; make audit-bench has the real ones.
func TestTinyAuditBench(t *testing.T) {
	c := auditConfig{Rows: 12_000, Days: 120, RetentionDays: 90, Writers: 2, Interval: 5 * time.Millisecond,
		Baseline: 100 * time.Millisecond, Reader: 50 * time.Millisecond, Batch: 500, Scenarios: scenarioNames(),
		QueryIters: 5, Repeat: 1, Seed: 1, Retention: true}
	rep, err := runAudit(context.Background(), pgtest.Server(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Expired < 2990 || rep.Expired > 3000 {
		t.Errorf("%d expired rows, want the oldest 30 of 120 days (≈3,000)", rep.Expired)
	}
	if len(rep.Runs) != len(scenarioNames()) {
		t.Fatalf("%d scenarios ran, want %d", len(rep.Runs), len(scenarioNames()))
	}
	for _, r := range rep.Runs {
		if r.Deleted != rep.Expired || r.Statements < 1 || r.Took <= 0 || r.Baseline.N == 0 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	// 500-row batches over ~3,000 rows: 6 full ones and the one that finds the end.
	if b := findRun(rep, "batched"); b == nil || b.Statements != int(rep.Expired)/500+1 {
		t.Errorf("batched run %+v, want %d statements", b, int(rep.Expired)/500+1)
	}
	// 30 expired days of 120 (+ a week ahead), each detached and dropped.
	if d := findRun(rep, "partition-detach"); d == nil || d.Statements < 2*29 || rep.Partitions < 120 {
		t.Errorf("partition-detach run %+v over %d partitions", d, rep.Partitions)
	}
	if len(rep.BatchPlan.Custom) == 0 || len(rep.BatchPlan.Generic) == 0 || !strings.Contains(rep.BatchPlan.SQL, "DELETE FROM audit_logs") {
		t.Errorf("batch statement not explained: %+v", rep.BatchPlan)
	}
	if len(rep.Queries) != 2*len(auditShapes) {
		t.Errorf("%d query shape results, want %d", len(rep.Queries), 2*len(auditShapes))
	}
	var out strings.Builder
	printAuditReport(&out, c, rep)
	for _, s := range []string{"| batched | ", "| partition-drop | ", "| one-delete | 1 |", "copy every row", "| one row by `id` (not an API query) | partitioned |", "| API: a run's rows (`run_id`, about 12 rows) | plain |"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}
