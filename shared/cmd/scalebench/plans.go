package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// tracer records the statements a store call sends while on, so they can be
// explained with exactly the store's SQL and arguments.
type tracer struct {
	on    bool
	stmts []statement
}

type statement struct {
	SQL  string
	Args []any
}

func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if t.on {
		t.stmts = append(t.stmts, statement{d.SQL, append([]any(nil), d.Args...)})
	}
	return ctx
}

func (t *tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// queryPlans are the plans of every statement one call sent.
type queryPlans struct {
	Query      string
	Statements []statementPlans
}

type statementPlans struct {
	SQL     string
	Custom  []string // EXPLAIN (ANALYZE, BUFFERS) with the call's parameters
	Generic []string // the same, EXECUTEd with plan_cache_mode = force_generic_plan
}

var (
	bigSeqScan = regexp.MustCompile(`Seq Scan on (coffee_runs|orders|user_preferences)\b`)
	indexNode  = regexp.MustCompile(`Index (?:Only )?Scan (?:Backward )?using (\S+) on \S+|Bitmap Index Scan on (\S+)`)
	bigScan    = regexp.MustCompile(`Scan .*on (coffee_runs|orders|user_preferences)\b.*actual time=\S+ rows=(\d+)`)
	removed    = regexp.MustCompile(`^Rows Removed by (?:Filter|Index Recheck): (\d+)`)
)

// index is what checkPlan needs to know of an index.
type index struct {
	lead    string // first key column
	partial bool
}

func loadIndexes(ctx context.Context, conn *pgx.Conn) (map[string]index, error) {
	rows, _ := conn.Query(ctx, `SELECT c.relname, a.attname, i.indpred IS NOT NULL
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		WHERE i.indrelid::regclass::text IN ('coffee_runs', 'orders', 'user_preferences')`)
	idx := map[string]index{}
	var name string
	var ix index
	_, err := pgx.ForEachRow(rows, []any{&name, &ix.lead, &ix.partial}, func() error {
		idx[name] = ix
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load indexes: %w", err)
	}
	return idx, nil
}

// checkPlan returns what is wrong with an EXPLAIN ANALYZE text: a Seq Scan
// on a big table; no index node at all; a scan of a (non-partial) index
// without an Index Cond on its first column, which is a full index scan
// (with enable_seqscan = off, or for a column that comes second in another
// index, that is what a missing index turns into); or a scan of a big table
// whose filter throws away more than 100 rows per loop and 10 times what it
// keeps (an index that does not fit the query).
func checkPlan(lines []string, indexes map[string]index) []string {
	var probs []string
	if m := bigSeqScan.FindString(strings.Join(lines, "\n")); m != "" {
		probs = append(probs, m)
	}
	nodes := 0
	for i, l := range lines {
		details := nodeDetails(lines, i)
		if m := bigScan.FindStringSubmatch(l); m != nil {
			kept, _ := strconv.Atoi(m[2])
			for _, d := range details {
				if r := removed.FindStringSubmatch(d); r != nil {
					if n, _ := strconv.Atoi(r[1]); n > 100 && n > 10*kept {
						probs = append(probs, fmt.Sprintf("scan on %s reads %d rows per loop to keep %d", m[1], n+kept, kept))
					}
				}
			}
		}
		m := indexNode.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		nodes++
		name := m[1] + m[2]
		ix, ok := indexes[name]
		if !ok || ix.partial {
			continue // users' (a hash join may read it whole), or bounded by its predicate
		}
		cond := ""
		for _, d := range details {
			if strings.HasPrefix(d, "Index Cond:") {
				cond = d
			}
		}
		if !regexp.MustCompile(`\(` + regexp.QuoteMeta(ix.lead) + `\b`).MatchString(cond) {
			probs = append(probs, fmt.Sprintf("full scan of index %s (no Index Cond on its first column %s)", name, ix.lead))
		}
	}
	if nodes == 0 {
		probs = append(probs, "no index scan")
	}
	return probs
}

// explainAll makes one call of every query with the tracer on, then
// explains each statement it sent twice, each time in a transaction that is
// rolled back and replays the call's statements in order (so CloseRun's
// UPDATE sees what its SELECT … FOR UPDATE saw):
//   - as planned for the call's parameters (what the first executions of a
//     prepared statement get), via EXPLAIN (ANALYZE, BUFFERS) <the SQL> with
//     the same arguments;
//   - as the generic plan PostgreSQL may switch a cached prepared statement
//     to after five executions (pgx caches them, so the app gets it too),
//     via PREPARE + EXPLAIN (ANALYZE, BUFFERS) EXECUTE under
//     plan_cache_mode = force_generic_plan.
//
// checkPlan decides what is a violation.
func explainAll(ctx context.Context, conn *pgx.Conn, tr *tracer, qs []query, c config) ([]queryPlans, []string, error) {
	indexes, err := loadIndexes(ctx, conn)
	if err != nil {
		return nil, nil, err
	}
	var plans []queryPlans
	var violations []string
	for i, q := range qs {
		if q.baseline {
			continue
		}
		r := rand.New(rand.NewPCG(c.Seed, uint64(1000+i)))
		tx, err := conn.Begin(ctx)
		if err != nil {
			return nil, nil, err
		}
		tr.on, tr.stmts = true, nil
		err = q.call(ctx, tx, r)
		tr.on = false
		_ = tx.Rollback(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", q.name, err)
		}
		qp := queryPlans{Query: q.name}
		for _, s := range tr.stmts {
			qp.Statements = append(qp.Statements, statementPlans{SQL: s.SQL})
		}
		for _, generic := range []bool{false, true} {
			if err := explainInTx(ctx, conn, tr.stmts, qp.Statements, generic, c.IndexPathsOnly); err != nil {
				return nil, nil, fmt.Errorf("explain %s: %w", q.name, err)
			}
		}
		for j, sp := range qp.Statements {
			for k, plan := range [][]string{sp.Custom, sp.Generic} {
				for _, p := range checkPlan(plan, indexes) {
					violations = append(violations, fmt.Sprintf("%s, statement %d (%s): %s",
						q.name, j+1, []string{"plan", "generic plan"}[k], p))
				}
			}
		}
		plans = append(plans, qp)
	}
	return plans, violations, nil
}

func explainInTx(ctx context.Context, conn *pgx.Conn, stmts []statement, out []statementPlans, generic, indexPathsOnly bool) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if indexPathsOnly {
		if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			return err
		}
	}
	if generic {
		if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
			return err
		}
	}
	for i, s := range stmts {
		var rows pgx.Rows
		if !generic {
			rows, _ = tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+s.SQL, s.Args...)
		} else {
			name := fmt.Sprintf("scalebench_%d", i)
			if _, err := tx.Exec(ctx, "PREPARE "+name+" AS "+s.SQL); err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
			execute := "EXECUTE " + name
			if len(s.Args) > 0 {
				ph := make([]string, len(s.Args))
				for k := range ph {
					ph[k] = fmt.Sprintf("$%d", k+1)
				}
				execute += "(" + strings.Join(ph, ", ") + ")"
			}
			// The simple protocol makes pgx inline the arguments as literals.
			args := append([]any{pgx.QueryExecModeSimpleProtocol}, s.Args...)
			rows, _ = tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+execute, args...)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("statement %d (%s): %w", i+1, sqlOneLine(s.SQL, 60), err)
		}
		if generic {
			// Prepared statements outlive the transaction.
			if _, err := tx.Exec(ctx, fmt.Sprintf("DEALLOCATE scalebench_%d", i)); err != nil {
				return err
			}
			out[i].Generic = lines
		} else {
			out[i].Custom = lines
		}
	}
	return nil
}

// nodeDetails returns the detail lines of the plan node on line i (Index
// Cond, Filter, Rows Removed …), trimmed, up to its first child node.
func nodeDetails(lines []string, i int) []string {
	indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
	var out []string
	for _, d := range lines[i+1:] {
		td := strings.TrimLeft(d, " ")
		if strings.HasPrefix(td, "->") || len(d)-len(td) <= indent {
			break
		}
		out = append(out, td)
	}
	return out
}
