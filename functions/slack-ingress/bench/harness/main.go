// Command harness runs the peer comparison behind `make bench`.
//
// It is the one helper process: it hosts an embedded Kafka (kfake, with the
// topic catalog) and the local Slack stand-in, then, one after the other,
// measures Slack's Bolt for JavaScript and CoffeeBuddy's slack-ingress with
// the same load driver: start-to-ready (exec to first 200 from
// /health/readiness, median of N starts), idle RSS, throughput and latency
// at C connections, RSS after the load. Everything it starts is stopped
// before it returns, also on SIGINT/SIGTERM.
//
// Results go to -out as JSON and to stdout as a Markdown summary.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkaembed"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgcluster"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

const (
	botToken      = "xoxb-bench-token"
	signingSecret = "bench-signing-secret-8f3a1c"
	readyLimit    = 20 * time.Second
)

type config struct {
	ingressBin string
	boltDir    string
	nodeBin    string
	loadgenBin string
	workDir    string
	out        string
	conns      int
	duration   time.Duration
	warmup     time.Duration
	idle       time.Duration
	starts     int
	boltAgain  bool
	warnRun    bool
	// profileOut, when set, asks an ingress built with the bench's pprof
	// overlay (see run.sh, BENCH_PROFILE=1) for a CPU profile of the
	// measured window.
	profileOut string
	skipBolt   bool
}

// LoadResult mirrors loadgen's JSON.
type LoadResult struct {
	Label      string         `json:"label"`
	Conns      int            `json:"conns"`
	DurationS  float64        `json:"duration_s"`
	Requests   int            `json:"requests"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	RPS        float64        `json:"rps"`
	MeanMS     float64        `json:"mean_ms"`
	P50MS      float64        `json:"p50_ms"`
	P95MS      float64        `json:"p95_ms"`
	P99MS      float64        `json:"p99_ms"`
	P999MS     float64        `json:"p999_ms"`
	MaxMS      float64        `json:"max_ms"`
	WarmupReqs int            `json:"warmup_requests"`
}

// PeerResult is one peer's measurements in one run.
type PeerResult struct {
	Name          string     `json:"name"`
	Config        string     `json:"config"`
	StartsMS      []float64  `json:"start_to_ready_ms,omitempty"`
	StartMedianMS float64    `json:"start_to_ready_median_ms,omitempty"`
	SelfReadyMS   []float64  `json:"self_reported_start_to_ready_ms,omitempty"`
	IdleRSSKiB    int        `json:"idle_rss_kib"`
	AfterRSSKiB   int        `json:"after_load_rss_kib"`
	PeakRSSKiB    int        `json:"peak_rss_kib"`
	Load          LoadResult `json:"load"`
	// CPU spent during warm-up + measured load, per answered request.
	ServerCPUus  float64 `json:"server_cpu_us_per_req"`
	LoadgenCPUus float64 `json:"loadgen_cpu_us_per_req"`
	HelperCPUus  float64 `json:"helper_cpu_us_per_req"`
	// Ingress only: what its own metrics and the stand-in saw.
	Accepted    int   `json:"accepted_commands,omitempty"`
	LoggedLines int   `json:"logged_command_lines,omitempty"`
	ViewsOpen   int64 `json:"views_open_calls,omitempty"`
	// SlackAPICalls counts every Web API call the stand-in saw from start
	// to stop of the measured process (Bolt: must be 0, no auth.test).
	SlackAPICalls  int64   `json:"slack_api_calls"`
	ProduceMeanMS  float64 `json:"produce_mean_ms,omitempty"`
	ProduceP99LEms float64 `json:"produce_p99_bucket_le_ms,omitempty"`
}

// Results is the whole run.
type Results struct {
	Date     string       `json:"date"`
	CPUs     int          `json:"cpus"`
	Conns    int          `json:"conns"`
	Duration string       `json:"duration"`
	Warmup   string       `json:"warmup"`
	Peers    []PeerResult `json:"peers"`
	Ratio    float64      `json:"ratio_rps_coffeebuddy_over_bolt"`
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("harness: ")
	var c config
	flag.StringVar(&c.ingressBin, "ingress", "", "slack-ingress binary")
	flag.StringVar(&c.boltDir, "bolt", "", "folder of the Bolt peer (app.js, node_modules)")
	flag.StringVar(&c.nodeBin, "node", "node", "node binary")
	flag.StringVar(&c.loadgenBin, "loadgen", "", "loadgen binary")
	flag.StringVar(&c.workDir, "work", "", "scratch folder for logs (removed by the caller)")
	flag.StringVar(&c.out, "out", "", "write results JSON here")
	flag.IntVar(&c.conns, "conns", 64, "connections")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "measured load per peer")
	flag.DurationVar(&c.warmup, "warmup", 3*time.Second, "warm-up before each measurement")
	flag.DurationVar(&c.idle, "idle", 3*time.Second, "idle time before the idle RSS reading")
	flag.IntVar(&c.starts, "starts", 5, "starts for the start-to-ready median")
	flag.BoolVar(&c.boltAgain, "bolt-again", true, "measure Bolt again at the end to gauge noise")
	flag.BoolVar(&c.warnRun, "warn-run", false, "also load the ingress with LOG_LEVEL=warn (reported separately)")
	flag.StringVar(&c.profileOut, "cpuprofile", "", "ingress built with the pprof overlay: save a CPU profile of its default-configuration load here")
	flag.BoolVar(&c.skipBolt, "skip-bolt", false, "diagnostics: measure only the ingress")
	flag.Parse()
	if c.ingressBin == "" || c.boltDir == "" || c.loadgenBin == "" || c.workDir == "" {
		log.Fatal("-ingress, -bolt, -loadgen and -work are required")
	}
	if c.duration < 20*time.Second {
		log.Printf("note: -duration %s is shorter than the 20 s make bench uses", c.duration)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	res, err := run(ctx, c)
	stop()
	stopAll()
	if err != nil {
		log.Fatal(err)
	}
	if c.out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(c.out, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Print(res.Markdown())
}

// helper is the in-process Kafka, Slack stand-in and PostgreSQL (the
// ingress reads the modal pre-fill from it, so the peer does that too).
type helper struct {
	kafka     *kafkaembed.Cluster
	pg        *pgcluster.Cluster
	dbURL     string
	slack     *slackstandin.Server
	srv       *http.Server
	apiURL    string
	viewsOpen atomic.Int64
	apiCalls  atomic.Int64
	stopReset chan struct{}
}

func startHelper(ctx context.Context) (*helper, error) {
	k, err := kafkaembed.Start(ctx, nil, events.Topics)
	if err != nil {
		return nil, err
	}
	h := &helper{kafka: k, stopReset: make(chan struct{})}
	if h.dbURL = os.Getenv("DATABASE_URL"); h.dbURL == "" {
		if h.pg, err = pgcluster.Start(ctx, pgcluster.Options{}); err != nil {
			k.Close()
			return nil, err
		}
		h.dbURL = h.pg.URL()
	}
	if err := postgres.MigrateUp(ctx, h.dbURL); err != nil {
		h.stopPG()
		k.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.stopPG()
		k.Close()
		return nil, err
	}
	base := "http://" + ln.Addr().String()
	h.slack = slackstandin.New(slackstandin.Options{BotToken: botToken, SigningSecret: signingSecret, PublicURL: base})
	h.apiURL = h.slack.APIURL()
	inner := h.slack.Handler()
	h.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/api/") {
				h.apiCalls.Add(1)
			}
			if r.URL.Path == "/api/views.open" {
				h.viewsOpen.Add(1)
			}
			inner.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go h.srv.Serve(ln)
	// The stand-in records every call and view; forget them regularly so
	// its memory stays flat under load (the counter above keeps the tally).
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-h.stopReset:
				return
			case <-t.C:
				h.slack.Reset()
			}
		}
	}()
	return h, nil
}

func (h *helper) close() {
	close(h.stopReset)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.srv.Shutdown(sctx)
	h.kafka.Close()
	h.stopPG()
}

func run(ctx context.Context, c config) (*Results, error) {
	h, err := startHelper(ctx)
	if err != nil {
		return nil, fmt.Errorf("helper: %w", err)
	}
	defer h.close()
	log.Printf("helper up: kafka %s, slack stand-in %s", strings.Join(h.kafka.Brokers(), ","), h.apiURL)

	res := &Results{
		Date: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(), Conns: c.conns,
		Duration: c.duration.String(), Warmup: c.warmup.String(),
	}
	bolt := peer{
		name: "Bolt for JavaScript 5.1.0", config: "HTTPReceiver, ack only, log level WARN", expect: "ack",
		start: func(port int, logPath string) (*proc, error) {
			env := []string{"PORT=" + strconv.Itoa(port), "SLACK_SIGNING_SECRET=" + signingSecret,
				"SLACK_BOT_TOKEN=" + botToken, "SLACK_API_URL=" + h.apiURL, "NODE_ENV=production"}
			return start("bolt", c.boltDir, logPath, port, env, c.nodeBin, "app.js")
		},
	}
	ingress := func(level string) peer {
		cfg := "default configuration (LOG_LEVEL unset = info)"
		if level != "" {
			cfg = "LOG_LEVEL=" + level
		}
		return peer{
			name: "CoffeeBuddy slack-ingress", config: cfg, expect: "ephemeral", expectText: "Got it!", ingress: true,
			profile: c.profileOut != "" && level == "",
			start: func(port int, logPath string) (*proc, error) {
				env := []string{"PORT=" + strconv.Itoa(port), "KAFKA_BROKERS=" + strings.Join(h.kafka.Brokers(), ","),
					"SLACK_SIGNING_SECRET=" + signingSecret, "SLACK_BOT_TOKEN=" + botToken, "SLACK_API_URL=" + h.apiURL,
					"DATABASE_URL=" + h.dbURL,
					// The load cycles through 4096 users at thousands of
					// requests a second, near 100 a minute each: the per-user
					// limit would answer some from memory (and Bolt has none).
					"SLACK_USER_RATE_LIMIT=0"}
				if level != "" {
					env = append(env, "LOG_LEVEL="+level)
				}
				var pprof string
				if c.profileOut != "" && level == "" {
					// The overlay's pprof listener; run.sh only sets
					// -cpuprofile for the profiling build.
					pp, err := freePort()
					if err != nil {
						return nil, err
					}
					pprof = fmt.Sprintf("127.0.0.1:%d", pp)
					env = append(env, "BENCH_PPROF_ADDR="+pprof)
				}
				pr, err := start("slack-ingress", filepath.Dir(c.ingressBin), logPath, port, env, c.ingressBin)
				if pr != nil {
					pr.pprof = pprof
				}
				return pr, err
			},
		}
	}

	plan := []peer{bolt, ingress("")}
	if c.skipBolt {
		plan = plan[1:]
	}
	if c.warnRun {
		plan = append(plan, ingress("warn"))
	}
	if c.boltAgain && !c.skipBolt {
		again := bolt
		again.config += " (again, to gauge noise)"
		plan = append(plan, again)
	}
	for i, p := range plan {
		r, err := measure(ctx, c, h, p, i)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		res.Peers = append(res.Peers, r)
	}
	if c.skipBolt {
		return res, nil
	}
	if b, g := res.Peers[0].Load.RPS, res.Peers[1].Load.RPS; b > 0 {
		res.Ratio = math.Round(g/b*100) / 100
	}
	return res, nil
}

type peer struct {
	name, config       string
	expect, expectText string
	ingress            bool
	profile            bool
	start              func(port int, logPath string) (*proc, error)
}

func measure(ctx context.Context, c config, h *helper, p peer, idx int) (PeerResult, error) {
	r := PeerResult{Name: p.name, Config: p.config}
	log.Printf("%s [%s]: %d starts", p.name, p.config, c.starts)
	var cur *proc
	calls0 := h.apiCalls.Load()
	for i := 0; i < c.starts; i++ {
		port, err := freePort()
		if err != nil {
			return r, err
		}
		logPath := filepath.Join(c.workDir, fmt.Sprintf("%d-%s-start%d.log", idx, labelOf(p), i))
		t0 := time.Now()
		pr, err := p.start(port, logPath)
		if err != nil {
			return r, err
		}
		d, err := pr.waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/health/readiness", port), t0, readyLimit)
		if err != nil {
			pr.stop()
			return r, err
		}
		r.StartsMS = append(r.StartsMS, roundMS(d))
		if i < c.starts-1 {
			pr.stop()
			if p.ingress {
				if ms, ok := selfReportedReady(pr.log); ok {
					r.SelfReadyMS = append(r.SelfReadyMS, ms)
				}
			}
			continue
		}
		cur = pr
	}
	defer cur.stop()
	sorted := slices.Clone(r.StartsMS)
	slices.Sort(sorted)
	r.StartMedianMS = sorted[len(sorted)/2]

	sleep(ctx, c.idle)
	if p.ingress {
		if ms, ok := selfReportedReady(cur.log); ok {
			r.SelfReadyMS = append(r.SelfReadyMS, ms)
		}
	}
	var err error
	if r.IdleRSSKiB, _, err = rss(cur.pid()); err != nil {
		return r, fmt.Errorf("idle rss: %w", err)
	}
	log.Printf("%s: start-to-ready %v ms (median %.1f), idle RSS %d KiB; loading %d conns for %s after %s warm-up",
		p.name, r.StartsMS, r.StartMedianMS, r.IdleRSSKiB, c.conns, c.duration, c.warmup)

	views0 := h.viewsOpen.Load()
	srvCPU0, helperCPU0 := cpuTime(cur.pid()), cpuTime(os.Getpid())
	jsonOut := filepath.Join(c.workDir, fmt.Sprintf("load-%d.json", idx))
	args := []string{"-url", fmt.Sprintf("http://127.0.0.1:%d/slack/commands", cur.port), "-secret", signingSecret,
		"-conns", strconv.Itoa(c.conns), "-duration", c.duration.String(), "-warmup", c.warmup.String(),
		"-expect", p.expect, "-label", labelOf(p), "-json", jsonOut}
	if p.expectText != "" {
		args = append(args, "-expect-text", p.expectText)
	}
	lg := exec.CommandContext(ctx, c.loadgenBin, args...)
	lg.Stdout, lg.Stderr = os.Stderr, os.Stderr
	lg.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	profDone := make(chan error, 1)
	if p.profile {
		go func() {
			profDone <- cpuProfile(ctx, cur.pprof, c.warmup+time.Second, c.duration-2*time.Second, c.profileOut)
		}()
	} else {
		profDone <- nil
	}
	if err := lg.Run(); err != nil {
		return r, fmt.Errorf("loadgen: %w", err)
	}
	if err := <-profDone; err != nil {
		log.Printf("cpu profile: %v", err)
	} else if p.profile {
		log.Printf("cpu profile of the measured window: %s", c.profileOut)
	}
	srvCPU, helperCPU := cpuTime(cur.pid())-srvCPU0, cpuTime(os.Getpid())-helperCPU0
	lgCPU := lg.ProcessState.UserTime() + lg.ProcessState.SystemTime()
	if cur.exited() {
		return r, fmt.Errorf("server exited during the load (%v): %s", cur.err, tail(cur.log, 2000))
	}
	r.AfterRSSKiB, r.PeakRSSKiB, _ = rss(cur.pid())
	b, err := os.ReadFile(jsonOut)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r.Load); err != nil {
		return r, err
	}
	if n := float64(r.Load.Requests + r.Load.WarmupReqs + r.Load.Errors); n > 0 {
		us := func(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/n*10) / 10 }
		r.ServerCPUus, r.LoadgenCPUus, r.HelperCPUus = us(srvCPU), us(lgCPU), us(helperCPU)
	}
	if p.ingress {
		// Let the background views.open calls finish before counting.
		sleep(ctx, time.Second)
		r.ViewsOpen = h.viewsOpen.Load() - views0
		if err := ingressMetrics(cur.port, &r); err != nil {
			log.Printf("metrics: %v", err)
		}
	}
	cur.stop()
	r.SlackAPICalls = h.apiCalls.Load() - calls0
	if p.ingress {
		r.LoggedLines = countLines(cur.log, `"command accepted"`)
	}
	return r, nil
}

func labelOf(p peer) string {
	if p.ingress {
		return "coffeebuddy"
	}
	return "bolt"
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func roundMS(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/100) / 10 }

// selfReportedReady reads the ingress's own "ready" log line.
func selfReportedReady(path string) (float64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m struct {
			Msg string  `json:"msg"`
			MS  float64 `json:"start_to_ready_ms"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Msg == "ready" {
			return m.MS, true
		}
	}
	return 0, false
}

func countLines(path, substr string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(substr)) {
			n++
		}
	}
	return n
}

// ingressMetrics reads the ingress's Prometheus text: accepted commands and
// the produce-before-ack histogram.
func ingressMetrics(port int, r *PeerResult) error {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	type bucket struct {
		le float64
		n  float64
	}
	var buckets []bucket
	var sum, count float64
	for _, line := range strings.Split(string(body), "\n") {
		name, val, ok := cutMetric(line)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(name, `slack_ingress_requests_total{`) && strings.Contains(name, `endpoint="commands"`) && strings.Contains(name, `status="200"`):
			r.Accepted = int(val)
		case name == "slack_ingress_produce_seconds_sum":
			sum = val
		case name == "slack_ingress_produce_seconds_count":
			count = val
		case strings.HasPrefix(name, "slack_ingress_produce_seconds_bucket{"):
			le := between(name, `le="`, `"`)
			if le == "+Inf" {
				buckets = append(buckets, bucket{math.Inf(1), val})
			} else if f, err := strconv.ParseFloat(le, 64); err == nil {
				buckets = append(buckets, bucket{f, val})
			}
		}
	}
	if count == 0 {
		return errors.New("no produce observations")
	}
	r.ProduceMeanMS = math.Round(sum/count*1e6) / 1e3
	for _, b := range buckets {
		if b.n >= 0.99*count {
			r.ProduceP99LEms = b.le * 1e3
			break
		}
	}
	return nil
}

func cutMetric(line string) (string, float64, bool) {
	if line == "" || line[0] == '#' {
		return "", 0, false
	}
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return "", 0, false
	}
	v, err := strconv.ParseFloat(line[i+1:], 64)
	if err != nil {
		return "", 0, false
	}
	return line[:i], v, true
}

func between(s, a, b string) string {
	_, s, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	s, _, _ = strings.Cut(s, b)
	return s
}

// cpuProfile waits, then fetches a CPU profile of length d from addr.
func cpuProfile(ctx context.Context, addr string, wait, d time.Duration, out string) error {
	sleep(ctx, wait)
	cli := &http.Client{Timeout: d + 10*time.Second}
	resp, err := cli.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (h *helper) stopPG() {
	if h.pg != nil {
		_ = h.pg.Stop()
	}
}
