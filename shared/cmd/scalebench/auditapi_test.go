package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
)

// TestTinyAuditAPIBench runs the audit query API part alone on 60,000 rows
// (pages of 5 rows, the 3rd page as the deep one): every shape gets both
// pages measured against OFFSET (runAPI checks both return the same rows),
// every statement is explained, every export mode streams the whole range,
// and the report has every cell. Figures at this size mean nothing; make
// audit-bench has the real ones.
func TestTinyAuditAPIBench(t *testing.T) {
	api := apiConfig{On: true, Iters: 4, Warmup: 1, Limit: 5, DeepPage: 3, RangeDays: 90, EndDays: 7, Exports: 1, HTTP: true}
	c := auditConfig{Rows: 60_000, Days: 120, RetentionDays: 90, Writers: 1, Interval: time.Millisecond, Batch: 500,
		QueryIters: 1, Repeat: 1, Seed: 1, API: api}
	rep, err := runAudit(context.Background(), pgtest.Server(t), c)
	if err != nil {
		t.Fatal(err)
	}
	ar := rep.API
	if ar == nil || len(rep.Runs) != 0 {
		t.Fatalf("API report %v, %d retention runs (want the API part alone)", ar, len(rep.Runs))
	}
	if len(rep.Violations) > 0 {
		t.Errorf("plan problems: %v", rep.Violations)
	}
	for _, want := range []string{"audit_logs_occurred_id", "audit_logs_type_occurred", "audit_logs_actor_occurred",
		"audit_logs_channel_occurred", "audit_logs_team_occurred", "audit_logs_run", "audit_logs_pkey"} {
		found := false
		for _, x := range rep.Indexes {
			found = found || x.Name == want
		}
		if !found {
			t.Errorf("seeded table lacks index %s: %v", want, rep.Indexes)
		}
	}
	if len(ar.Cells) != 2*len(apiShapes) {
		t.Fatalf("%d cells, want %d", len(ar.Cells), 2*len(apiShapes))
	}
	for _, cell := range ar.Cells {
		// A page deep in the range is full; a first page may not be (a
		// light actor's range holds a few rows at this size).
		if cell.Skipped != "" || cell.Keyset.N != api.Iters || cell.Offset.N != api.Iters || cell.Keyset.P50 <= 0 ||
			cell.MinRows < 1 || cell.Page > 1 && cell.MinRows != api.Limit {
			t.Errorf("cell %s page %d: %+v", cell.Shape, cell.Page, cell)
		}
	}
	if len(ar.Plans) != 4*len(apiShapes)+2 {
		t.Errorf("%d plans, want %d", len(ar.Plans), 4*len(apiShapes)+2)
	}
	for _, p := range ar.Plans {
		if p.Nodes == "" || p.Execution == "" || !strings.Contains(p.Nodes, "audit_logs") {
			t.Errorf("plan %s, %s: nodes %q, execution %q", p.Shape, p.What, p.Nodes, p.Execution)
		}
	}
	if ar.ExportRows < 40_000 || len(ar.Exports) != 3 {
		t.Errorf("export of %d rows, %d exports", ar.ExportRows, len(ar.Exports))
	}
	for _, e := range ar.Exports {
		if e.Rows != ar.ExportRows || e.Bytes < e.Rows*100 || e.PeakHeap == 0 {
			t.Errorf("export %+v", e)
		}
	}
	var out strings.Builder
	printAuditReport(&out, c, rep)
	report := out.String()
	want := []string{"## Audit query API", "Plan check (no Seq Scan on audit_logs in any statement the API sends): PASS",
		"| " + exportAppendJSON + " | 1 |", "| " + exportStdJSON + " | 1 |", "| " + exportHTTP + " | 1 |", "÷ encoding/json",
		"| audit_logs_team_occurred |"}
	for _, sh := range apiShapes {
		for _, page := range []int{1, api.DeepPage} {
			want = append(want, fmt.Sprintf("| %s | %d | ", sh.Name, page))
		}
	}
	for _, s := range want {
		if !strings.Contains(report, s) {
			t.Errorf("report lacks %q", s)
		}
	}
	if strings.Contains(report, "Retention delete") || t.Failed() {
		t.Logf("report:\n%s", report)
	}
}
