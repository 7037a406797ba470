#!/usr/bin/env bash
# make bench: CoffeeBuddy's slack-ingress against Slack's Bolt for JavaScript
# on this machine, plus the Go micro-benchmarks. See docs/benchmarks.md.
#
# Knobs (environment):
#   BENCH_DURATION=20s   measured load per peer (at least 20s for make bench)
#   BENCH_WARMUP=3s      warm-up before each measurement
#   BENCH_CONNS=64       keep-alive connections
#   BENCH_STARTS=5       starts for the start-to-ready median
#   BENCH_WARN=1         also load the ingress at LOG_LEVEL=warn (0: skip)
#   BENCH_BOLT_AGAIN=1   measure Bolt again at the end to gauge noise (0: skip)
#   BENCH_PROFILE=0      1: run the ingress built with a pprof overlay and save a
#                        CPU profile of its measured window (numbers then
#                        include the profiler; use for diagnosis only)
#
# Everything it starts runs in one process group that is stopped on exit;
# scratch data lives in a temp folder that is removed. Results are kept in
# .tmp/bench/ (git-ignored).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BENCH="$ROOT/functions/slack-ingress/bench"
OUT="$ROOT/.tmp/bench"
INGRESS_BIN="${INGRESS_BIN:-$ROOT/.tmp/bin/slack-ingress}"
DURATION="${BENCH_DURATION:-20s}"
WARMUP="${BENCH_WARMUP:-3s}"
CONNS="${BENCH_CONNS:-64}"
STARTS="${BENCH_STARTS:-5}"
WARN="${BENCH_WARN:-1}"
BOLT_AGAIN="${BENCH_BOLT_AGAIN:-1}"
PROFILE="${BENCH_PROFILE:-0}"

say() { printf '\n=== %s\n' "$*"; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/coffeebuddy-bench.XXXXXX")
HARNESS_PID=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n "$HARNESS_PID" ]] && kill -0 "$HARNESS_PID" 2>/dev/null; then
		# The harness leads its own process group: Bolt, the ingress and
		# the load driver are in it.
		kill -TERM -- "-$HARNESS_PID" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$HARNESS_PID" 2>/dev/null || break; sleep 0.2; done
		kill -KILL -- "-$HARNESS_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v node >/dev/null || { echo "bench: node is required for the Bolt peer (apt-get install nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null || { echo "bench: npm is required for the Bolt peer" >&2; exit 1; }
[[ -x "$INGRESS_BIN" ]] || { echo "bench: $INGRESS_BIN missing; run make build" >&2; exit 1; }
mkdir -p "$OUT" "$TMP/bin" "$TMP/work"

say "machine"
{
	echo "date:   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc:  $(nproc)"
	echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "go:     $(go version | cut -d' ' -f3-)"
	echo "node:   $(node --version)"
	echo "bolt:   @slack/bolt $(node -p "require('$BENCH/bolt/package.json').dependencies['@slack/bolt']")"
	echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15-min load average before the run)"
} | tee "$OUT/machine.txt"

say "Bolt peer dependencies"
if [[ ! -d "$BENCH/bolt/node_modules/@slack/bolt" ]]; then
	(cd "$BENCH/bolt" && npm ci --no-audit --no-fund --loglevel=error)
else
	echo "node_modules present"
fi

say "build load driver and harness"
(cd "$ROOT/functions/slack-ingress" && go build -o "$TMP/bin/" ./bench/loadgen ./bench/harness)
HARNESS_ARGS=(-ingress "$INGRESS_BIN" -bolt "$BENCH/bolt" -node "$(command -v node)" -loadgen "$TMP/bin/loadgen"
	-work "$TMP/work" -out "$OUT/results.json" -conns "$CONNS" -duration "$DURATION" -warmup "$WARMUP"
	-starts "$STARTS")
[[ "$WARN" == 1 ]] && HARNESS_ARGS+=(-warn-run)
[[ "$BOLT_AGAIN" == 1 ]] || HARNESS_ARGS+=(-bolt-again=false)
if [[ "$PROFILE" == 1 ]]; then
	# Build-time only: add a pprof listener to the ingress package through an
	# overlay; no source file changes.
	cat >"$TMP/pprof.go" <<-'EOF'
		package main

		import (
			"net/http"
			_ "net/http/pprof"
			"os"
		)

		func init() {
			if a := os.Getenv("BENCH_PPROF_ADDR"); a != "" {
				go http.ListenAndServe(a, nil)
			}
		}
	EOF
	printf '{"Replace":{"%s":"%s"}}\n' "$ROOT/functions/slack-ingress/zz_bench_pprof.go" "$TMP/pprof.go" >"$TMP/overlay.json"
	(cd "$ROOT/functions/slack-ingress" && go build -overlay "$TMP/overlay.json" -o "$TMP/bin/slack-ingress-pprof" .)
	cp "$TMP/bin/slack-ingress-pprof" "$OUT/slack-ingress-pprof"
	HARNESS_ARGS[1]="$TMP/bin/slack-ingress-pprof"
	HARNESS_ARGS+=(-cpuprofile "$OUT/ingress-cpu.pprof")
fi

say "peer comparison (Bolt, then CoffeeBuddy; $CONNS connections, $DURATION each after $WARMUP warm-up)"
# setsid: the harness leads a new process group so cleanup can stop it and
# everything it started in one go.
setsid "$TMP/bin/harness" "${HARNESS_ARGS[@]}" >"$TMP/summary.md" &
HARNESS_PID=$!
wait "$HARNESS_PID"
HARNESS_PID=""
cp "$TMP/summary.md" "$OUT/summary.md"
cat "$OUT/summary.md"

say "Go micro-benchmarks"
(cd "$ROOT/shared" && go test -run '^$' -bench . -benchmem ./slackapi/ ./kafka/) | tee "$OUT/micro.txt"

if [[ "$PROFILE" == 1 ]]; then
	say "ingress CPU profile (top, cumulative)"
	go tool pprof -top -cum -nodecount=25 "$OUT/slack-ingress-pprof" "$OUT/ingress-cpu.pprof" 2>/dev/null | tee "$OUT/ingress-cpu-top.txt" || true
fi

say "done: results in ${OUT#"$ROOT"/}/ (results.json, summary.md, micro.txt, machine.txt)"
