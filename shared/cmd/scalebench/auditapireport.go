package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// printAPIReport writes the audit query API part of the report.
func printAPIReport(w io.Writer, ar *apiReport) {
	a := ar.Config
	deep := a.DeepPage
	fmt.Fprintf(w, "\n## Audit query API: pages and export over a %d-day range (`shared/auditquery`, the code `functions/audit-api` calls)\n\n", a.RangeDays)
	fmt.Fprintln(w, "On the seeded database itself, after its VACUUM (ANALYZE), read only, before any retention scenario. audit-api is its own")
	fmt.Fprintln(w, "module, so the benchmark calls what its handler calls: `auditquery.Page` for a page, `auditquery.Stream` with")
	fmt.Fprintln(w, "`Row.AppendJSON` for an export. Not measured: HTTP (except the export's HTTP row), the token check, the access records.")
	fmt.Fprintf(w, "A range is %d days ending at a random second in the last %d days of the data; actor, channel and team are drawn at random\n", a.RangeDays, a.EndDays)
	fmt.Fprintf(w, "among the values that exist (for page %d: among those with a full page %d in every range drawn). Pages of %d rows in the\n", deep, deep, a.Limit)
	fmt.Fprintln(w, "API's order, `(occurred_at, id)` ascending, through a pgx pool, one call at a time, timed on the client (round trip and")
	fmt.Fprintf(w, "decoding included). Page %d: the %d pages before it are walked with the positions `Page` returns, as a client follows\n", deep, deep-1)
	fmt.Fprintf(w, "`next_cursor` (not timed), then page %d is timed. **OFFSET peer**, on the same parameters right after the walk, in random order\n", deep)
	fmt.Fprintf(w, "with the keyset call: the statement `Page` sends for page 1 (`LIMIT %d`: the page and one more) plus `OFFSET %d`, sent\n", a.Limit+1, (deep-1)*a.Limit)
	fmt.Fprintln(w, "the same way (planned for its values) and decoded the same way; it must return the same rows, and does. Every cell gets")
	fmt.Fprintf(w, "%d samples after %d warm-up rounds; the cells are measured round-robin, so the box's noise falls on all alike.\n", a.Iters, a.Warmup)
	fmt.Fprintf(w, "Percentiles are nearest-rank. This part took %s.\n\n", ar.Took.Round(time.Second))

	fmt.Fprintf(w, "Rows each shape matches in the %d days up to the seed's end (%s):\n\n", a.RangeDays, ar.RefEnd.Format(time.RFC3339))
	fmt.Fprintf(w, "| shape | rows in the range | values that exist | … with a full page %d | rows per value: median / max |\n|---|---:|---:|---:|---|\n", deep)
	for _, d := range ar.Shapes {
		if d.Values == 0 {
			fmt.Fprintf(w, "| %s | %d | | | |\n", d.Shape, d.Rows)
			continue
		}
		fmt.Fprintf(w, "| %s | | %d | %d | %d / %d |\n", d.Shape, d.Values, d.Deep, d.MedianRows, d.MaxRows)
	}

	fmt.Fprintf(w, "\n### Pages (%d rows), ms\n\n", a.Limit)
	fmt.Fprintln(w, "| shape | page | keyset (`auditquery.Page`) p50 / p95 / p99 / max | OFFSET p50 / p95 / p99 / max | keyset ÷ OFFSET, p50 / p95 | fewest rows a page |")
	fmt.Fprintln(w, "|---|---:|---|---|---|---:|")
	for _, c := range ar.Cells {
		if c.Skipped != "" {
			fmt.Fprintf(w, "| %s | %d | — (%s) | — | — | — |\n", c.Shape, c.Page, c.Skipped)
			continue
		}
		k, o := c.Keyset, c.Offset
		fmt.Fprintf(w, "| %s | %d | %s / **%s** / %s / %s | %s / %s / %s / %s | %.2f / %.2f | %d |\n", c.Shape, c.Page,
			ms(k.P50), ms(k.P95), ms(k.P99), ms(k.Max), ms(o.P50), ms(o.P95), ms(o.P99), ms(o.Max),
			float64(k.P50)/float64(max(o.P50, 1)), float64(k.P95)/float64(max(o.P95, 1)), c.MinRows)
	}
	n := 0
	for _, c := range ar.Cells {
		if c.Skipped == "" {
			n = c.Keyset.N
			break
		}
	}
	var over []string
	for _, c := range ar.Cells {
		if c.Skipped == "" && c.Keyset.P95 >= 20*time.Millisecond {
			over = append(over, fmt.Sprintf("%s page %d (%s ms)", c.Shape, c.Page, ms(c.Keyset.P95)))
		}
	}
	fmt.Fprintf(w, "\n%d samples a cell. Target p95 < 20 ms a page: ", n)
	if len(over) == 0 {
		fmt.Fprintln(w, "every keyset cell met it.")
	} else {
		fmt.Fprintf(w, "missed by %s.\n", strings.Join(over, "; "))
	}

	fmt.Fprintln(w, "\n### Plans (EXPLAIN (ANALYZE, BUFFERS) of the statement as sent, planned for its values)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| shape | statement | plan | execution ms | buffers |\n|---|---|---|---:|---|")
	for _, p := range ar.Plans {
		what := p.What
		if !p.Checked {
			what += " (peer, not checked)"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", p.Shape, what, p.Nodes, p.Execution, p.Buffers)
	}
	if len(ar.Violations) == 0 {
		fmt.Fprintln(w, "\nPlan check (no Seq Scan on audit_logs in any statement the API sends): PASS")
	} else {
		fmt.Fprintf(w, "\nPlan check (no Seq Scan on audit_logs in any statement the API sends): FAIL\n\n- %s\n", strings.Join(ar.Violations, "\n- "))
	}

	fmt.Fprintf(w, "\n### Export: %d days as NDJSON (%d rows, %s to %s)\n\n", a.RangeDays, ar.ExportRows, ar.ExportFrom.Format(time.RFC3339), ar.ExportTo.Format(time.RFC3339))
	fmt.Fprintf(w, "`auditquery.Stream` (keyset batches of 5,000) over a pgx pool; each row written by `auditquery.NDJSON`, the handler's writer\n")
	fmt.Fprintln(w, "(a line into a 64 KiB bufio.Writer, flushed every 1,000 rows), here over io.Discard. Peer: the same with `encoding/json.Marshal`")
	fmt.Fprintln(w, "per row. HTTP: an httptest server writing the same way, read by an http.Client over loopback (both in this process; no")
	fmt.Fprintln(w, "token check, no access records). CPU is this process's (PostgreSQL's is not in it). Peak heap: heap in use (live and not yet")
	fmt.Fprintln(w, "collected) sampled every 2 ms; before: live heap after a GC. The modes alternate, round by round.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| mode | round | rows/s | s | MiB written | CPU µs/row | heap before → peak MiB | allocated B/row | GCs |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---|---:|---:|")
	for _, e := range ar.Exports {
		fmt.Fprintf(w, "| %s | %d | %.0f | %.1f | %s | %.2f | %.1f → %.1f | %.0f | %d |\n", e.Mode, e.Rep, e.rowsPerSec(), e.Took.Seconds(), mib(e.Bytes),
			float64(e.CPU.Microseconds())/float64(max(e.Rows, 1)), float64(e.HeapBefore)/(1<<20), float64(e.PeakHeap)/(1<<20),
			float64(e.Allocs)/float64(max(e.Rows, 1)), e.GCs)
	}
	med := exportMedians(ar.Exports)
	std := med[exportStdJSON]
	fmt.Fprintln(w, "\nMedians over the rounds:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| mode | rows/s | ÷ encoding/json | CPU µs/row | ÷ encoding/json | peak heap MiB (max) |\n|---|---:|---:|---:|---:|---:|")
	for _, m := range []string{exportAppendJSON, exportStdJSON, exportHTTP} {
		x, ok := med[m]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "| %s | %.0f | %.2f× | %.2f | %.2f× | %.1f |\n", m, x.rate, x.rate/std.rate, x.cpu, x.cpu/std.cpu, x.peak)
	}
	fmt.Fprintf(w, "\nTarget ≥ 100,000 rows/s: %s at %.0f rows/s (median).\n", map[bool]string{true: "met", false: "missed"}[med[exportAppendJSON].rate >= 100_000], med[exportAppendJSON].rate)

	fmt.Fprintln(w, "\n### The plans in full")
	for _, p := range ar.Plans {
		fmt.Fprintf(w, "\n%s, %s: `%s`\n\n```\n%s\n```\n", p.Shape, p.What, sqlOneLine(p.SQL, 400), strings.Join(p.Lines, "\n"))
	}
}

type exportMedian struct{ rate, cpu, peak float64 }

// exportMedians are per mode: the median rows/s and CPU µs a row, and the
// highest peak heap (MiB).
func exportMedians(runs []exportRun) map[string]exportMedian {
	by := map[string][]exportRun{}
	for _, e := range runs {
		by[e.Mode] = append(by[e.Mode], e)
	}
	out := map[string]exportMedian{}
	for m, es := range by {
		var rates, cpus []float64
		var peak float64
		for _, e := range es {
			rates = append(rates, e.rowsPerSec())
			cpus = append(cpus, float64(e.CPU.Microseconds())/float64(max(e.Rows, 1)))
			peak = max(peak, float64(e.PeakHeap)/(1<<20))
		}
		out[m] = exportMedian{rate: medianF(rates), cpu: medianF(cpus), peak: peak}
	}
	return out
}

func medianF(s []float64) float64 {
	s = slices.Clone(s)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
