package main

import (
	"context"
	"strings"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestTinyBench runs the whole benchmark on a tiny data set: the seed is
// consistent (sanity checks the store's answers against it), every
// statement the store sends has an index path on coffee_runs, orders and
// user_preferences, and every query gets measured.
func TestTinyBench(t *testing.T) {
	db := pgtest.New(t)
	c := config{Teams: 1, ChannelsPerTeam: 4, UsersPerTeam: 50, Runs: 200, MaxOrders: 20, DeepPage: 50,
		Iterations: 30, Warmup: 5, Seed: 1, IndexPathsOnly: true}
	rep, err := bench(context.Background(), db.URL, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Violations) > 0 {
		t.Errorf("plans without index use:\n%s", strings.Join(rep.Violations, "\n"))
	}
	st := rep.Seed
	if st.Users != 50 || st.Runs != 200 || st.Orders < 1000 || st.Orders > 3000 || st.Prefs == 0 ||
		st.Active != 1 || st.Completed < 150 || st.Cancelled == 0 {
		t.Errorf("seeded %+v", st)
	}

	// Candidates sends 1 statement, CloseRun 4 (lock, count, candidates,
	// update), History 2 (count, page), the rest 1.
	want := []int{1, 4, 2, 2, 1, 1, 1} // and the SELECT 1 baseline is measured, not explained
	if len(rep.Plans) != len(want) {
		t.Fatalf("%d queries explained, want %d", len(rep.Plans), len(want))
	}
	for i, qp := range rep.Plans {
		if len(qp.Statements) != want[i] {
			t.Errorf("%s: %d statements, want %d", qp.Query, len(qp.Statements), want[i])
		}
		for _, sp := range qp.Statements {
			if len(sp.Custom) == 0 || len(sp.Generic) == 0 {
				t.Errorf("%s: no plan for %s", qp.Query, sqlOneLine(sp.SQL, 60))
			}
		}
	}
	if !strings.Contains(rep.Plans[1].Statements[3].SQL, "UPDATE coffee_runs") {
		t.Errorf("CloseRun's last statement is %s, want its UPDATE", sqlOneLine(rep.Plans[1].Statements[3].SQL, 60))
	}
	for _, r := range rep.Results {
		if r.N != c.Iterations || r.P50 <= 0 || r.P50 > r.P95 || r.P95 > r.P99 || r.P99 > r.Max {
			t.Errorf("%s: %+v", r.Query, r)
		}
	}

	var out strings.Builder
	printReport(&out, c, rep)
	for _, s := range []string{"Plan check: PASS", "| history: `store.History` page 12 (busy channel) | 30 |", "Index Cond"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}
