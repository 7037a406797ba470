package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Markdown renders the run as the tables docs/benchmarks.md uses.
func (r *Results) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Peer comparison (%s, %d CPUs, %d connections, %s measured after %s warm-up)\n\n",
		r.Date, r.CPUs, r.Conns, r.Duration, r.Warmup)
	b.WriteString("| # | peer | configuration | req/s | p50 ms | p95 ms | p99 ms | max ms | ok | errors |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, p := range r.Peers {
		fmt.Fprintf(&b, "| %d | %s | %s | %.1f | %.2f | %.2f | %.2f | %.2f | %d | %d%s |\n", i+1, p.Name, p.Config,
			p.Load.RPS, p.Load.P50MS, p.Load.P95MS, p.Load.P99MS, p.Load.MaxMS, p.Load.Requests, p.Load.Errors, kinds(p.Load.ErrorKinds))
	}
	fmt.Fprintf(&b, "\nratio (CoffeeBuddy req/s ÷ Bolt req/s, runs 2 ÷ 1): **%.2f×**\n\n", r.Ratio)
	b.WriteString("| # | peer | start-to-ready median ms (each start) | idle RSS MiB | RSS after load MiB | peak RSS MiB | server CPU µs/req | load driver CPU µs/req | helper (Kafka + Slack stand-in) CPU µs/req |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|\n")
	for i, p := range r.Peers {
		fmt.Fprintf(&b, "| %d | %s | %.1f (%s) | %.1f | %.1f | %.1f | %.0f | %.0f | %.0f |\n", i+1, p.Name, p.StartMedianMS, joinF(p.StartsMS),
			mib(p.IdleRSSKiB), mib(p.AfterRSSKiB), mib(p.PeakRSSKiB), p.ServerCPUus, p.LoadgenCPUus, p.HelperCPUus)
	}
	for i, p := range r.Peers {
		if p.Accepted == 0 && p.ViewsOpen == 0 {
			fmt.Fprintf(&b, "\nrun %d (%s): Slack Web API calls from start to stop: %d\n", i+1, p.Name, p.SlackAPICalls)
			continue
		}
		fmt.Fprintf(&b, "\nrun %d (%s, %s): commands accepted (its metrics, incl. warm-up) %d, \"command accepted\" log lines %d, views.open calls at the stand-in %d, "+
			"Kafka produce-before-ack mean %.3f ms, p99 ≤ %g ms (histogram bucket), self-reported start_to_ready_ms %s\n",
			i+1, p.Name, p.Config, p.Accepted, p.LoggedLines, p.ViewsOpen, p.ProduceMeanMS, p.ProduceP99LEms, selfReady(p.SelfReadyMS))
	}
	return b.String()
}

func mib(kib int) float64 { return float64(kib) / 1024 }

func joinF(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%g", x)
	}
	return strings.Join(s, ", ")
}

func kinds(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func selfReady(xs []float64) string {
	if len(xs) == 0 {
		return "n/a (its ready line is logged at info)"
	}
	return joinF(xs)
}
