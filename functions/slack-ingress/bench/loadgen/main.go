// Command loadgen drives a Slack slash-command endpoint on 127.0.0.1 the way
// Slack does: correctly signed `/coffee` bodies in Slack's form encoding,
// over N concurrent keep-alive connections, for a fixed duration.
//
// Bodies are signed before the clock starts (a pool with distinct channel,
// user and trigger ids), and re-signed in the background should a run come
// near Slack's 5-minute replay window, so HMAC cost is not measured. Every
// latency of a good answer (status 200 and the expected body) is recorded;
// everything else counts as an error and stays out of the percentiles.
//
// Each connection is a plain HTTP/1.1 keep-alive socket with pre-serialised
// requests and net/http's response parser, so the driver spends as little of
// the shared CPU as it reasonably can.
//
//	loadgen -url http://127.0.0.1:8080/slack/commands -secret S [-conns 64] [-duration 20s] [-warmup 3s]
//	        [-expect ephemeral|ack] [-expect-text 'Got it!'] [-json out.json] [-label name]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
)

// Bounds that keep the driver from becoming anything but a local benchmark.
const (
	maxConns    = 1024
	maxDuration = 10 * time.Minute
	// defaultResignAfter is when the pool is re-signed: well inside
	// Slack's 5-minute window (slackapi.MaxSkew).
	defaultResignAfter = 4 * time.Minute
)

type options struct {
	target     *url.URL
	secret     string
	conns      int
	duration   time.Duration
	warmup     time.Duration
	pool       int
	expect     string
	expectText string
	label      string
	jsonOut    string
	timeout    time.Duration
	resign     time.Duration
}

// Result is what run.sh and the harness read.
type Result struct {
	Label      string         `json:"label"`
	URL        string         `json:"url"`
	Conns      int            `json:"conns"`
	WarmupS    float64        `json:"warmup_s"`
	DurationS  float64        `json:"duration_s"`
	Requests   int            `json:"requests"` // good answers in the measured window
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	RPS        float64        `json:"rps"`
	MeanMS     float64        `json:"mean_ms"`
	P50MS      float64        `json:"p50_ms"`
	P95MS      float64        `json:"p95_ms"`
	P99MS      float64        `json:"p99_ms"`
	P999MS     float64        `json:"p999_ms"`
	MaxMS      float64        `json:"max_ms"`
	Resigned   int            `json:"resigned"`
	WarmupReqs int            `json:"warmup_requests"`
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
	}
	fmt.Println(res.Human())
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var o options
	target := fs.String("url", "", "slash-command URL on 127.0.0.1, e.g. http://127.0.0.1:8080/slack/commands")
	fs.StringVar(&o.secret, "secret", os.Getenv("SLACK_SIGNING_SECRET"), "Slack signing secret (default $SLACK_SIGNING_SECRET)")
	fs.IntVar(&o.conns, "conns", 64, "concurrent keep-alive connections")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured duration")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured warm-up on the same connections")
	fs.IntVar(&o.pool, "pool", 4096, "distinct pre-signed bodies")
	fs.StringVar(&o.expect, "expect", "ephemeral", "good answer: ephemeral (200 + ephemeral JSON) or ack (200 + empty body)")
	fs.StringVar(&o.expectText, "expect-text", "", "with -expect ephemeral: text the message must contain")
	fs.StringVar(&o.label, "label", "", "name in the report")
	fs.StringVar(&o.jsonOut, "json", "", "write the result as JSON to this file")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout")
	fs.DurationVar(&o.resign, "resign-after", defaultResignAfter, "re-sign the pool when its signatures are this old (checked every second)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return o, fmt.Errorf("-url must be http://127.0.0.1:PORT/path, got %q", *target)
	}
	if u.Hostname() != "127.0.0.1" {
		return o, fmt.Errorf("-url: only 127.0.0.1 targets are allowed, got %q", u.Hostname())
	}
	o.target = u
	switch {
	case o.secret == "":
		return o, errors.New("-secret (or SLACK_SIGNING_SECRET) is required")
	case o.conns < 1 || o.conns > maxConns:
		return o, fmt.Errorf("-conns must be 1..%d", maxConns)
	case o.duration <= 0 || o.duration > maxDuration:
		return o, fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	case o.warmup < 0 || o.warmup > time.Minute:
		return o, errors.New("-warmup must be in [0, 1m]")
	case o.pool < 1 || o.pool > 1<<20:
		return o, errors.New("-pool must be 1..1048576")
	case o.resign <= 0 || o.resign > slackapi.MaxSkew-30*time.Second:
		return o, fmt.Errorf("-resign-after must be in (0, %s]", slackapi.MaxSkew-30*time.Second)
	case o.expect != "ephemeral" && o.expect != "ack":
		return o, errors.New("-expect must be ephemeral or ack")
	}
	if o.label == "" {
		o.label = u.Host
	}
	return o, nil
}

// ---- request pool ----------------------------------------------------------

// commandBody renders one slash command exactly as Slack form-encodes it:
// fields in Slack's order, values query-escaped.
func commandBody(i int, triggerID string) []byte {
	text := ""
	if i%4 == 3 {
		text = "in 15"
	}
	fields := [][2]string{
		{"token", "gIkuvaNzQIHg97ATvDxqgjtO"},
		{"team_id", "T0LOCAL"},
		{"team_domain", "coffeebuddy-local"},
		{"channel_id", fmt.Sprintf("C%08d", i)},
		{"channel_name", fmt.Sprintf("coffee-%d", i)},
		{"user_id", fmt.Sprintf("U%08d", i)},
		{"user_name", fmt.Sprintf("bench.user%d", i)},
		{"command", "/coffee"},
		{"text", text},
		{"api_app_id", "A0LOCAL"},
		// Never called by the ingress for /coffee; port 9 (discard) on
		// loopback so nothing could leave the machine even if it were.
		{"response_url", fmt.Sprintf("http://127.0.0.1:9/commands/T0LOCAL/%d/%s", 7000000000+i, randHex(12))},
		{"trigger_id", triggerID},
	}
	var b strings.Builder
	for j, f := range fields {
		if j > 0 {
			b.WriteByte('&')
		}
		b.WriteString(f[0])
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(f[1]))
	}
	return []byte(b.String())
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type requestPool struct {
	signedAt time.Time
	reqs     [][]byte // complete HTTP/1.1 requests
}

type pool struct {
	o      options
	bodies [][]byte
	cur    atomic.Pointer[requestPool]
}

func newPool(o options) *pool {
	p := &pool{o: o, bodies: make([][]byte, o.pool)}
	for i := range p.bodies {
		trigger := fmt.Sprintf("%d.%d.%s", 13345224609+i, 738474920, randHex(16))
		p.bodies[i] = commandBody(i, trigger)
	}
	p.sign(time.Now())
	return p
}

// sign serialises every request with timestamp now.
func (p *pool) sign(now time.Time) {
	ts := now.Unix()
	host := p.o.target.Host
	path := p.o.target.RequestURI()
	rp := &requestPool{signedAt: now, reqs: make([][]byte, len(p.bodies))}
	for i, body := range p.bodies {
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\n", path, host)
		b.WriteString("User-Agent: Slackbot 1.0 (+https://api.slack.com/robots)\r\n")
		b.WriteString("Accept: application/json,*/*\r\n")
		b.WriteString("Content-Type: application/x-www-form-urlencoded\r\n")
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
		fmt.Fprintf(&b, "%s: %d\r\n", slackapi.HeaderTimestamp, ts)
		fmt.Fprintf(&b, "%s: %s\r\n\r\n", slackapi.HeaderSignature, slackapi.Sign(p.o.secret, ts, body))
		b.Write(body)
		rp.reqs[i] = b.Bytes()
	}
	p.cur.Store(rp)
}

// ---- load ------------------------------------------------------------------

type phase int32

const (
	phaseWarmup phase = iota
	phaseMeasure
	phaseDone
)

type worker struct {
	id    int
	o     options
	pool  *pool
	phase *atomic.Int32

	conn net.Conn
	br   *bufio.Reader

	lat       []time.Duration
	errs      map[string]int
	warmupReq int
}

func run(ctx context.Context, o options) (Result, error) {
	p := newPool(o)
	var ph atomic.Int32
	ws := make([]*worker, o.conns)
	for i := range ws {
		ws[i] = &worker{id: i, o: o, pool: p, phase: &ph, errs: map[string]int{},
			lat: make([]time.Duration, 0, 1<<14)}
	}
	// Connect everything before the clock starts.
	for _, w := range ws {
		if err := w.dial(); err != nil {
			closeAll(ws)
			return Result{}, fmt.Errorf("connect %s: %w", o.target.Host, err)
		}
	}

	var resigned atomic.Int32
	stopResign := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopResign:
				return
			case now := <-t.C:
				if now.Sub(p.cur.Load().signedAt) >= o.resign {
					p.sign(now)
					resigned.Add(1)
				}
			}
		}
	}()
	defer close(stopResign)

	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); w.loop() }()
	}
	sleep(ctx, o.warmup)
	start := time.Now()
	ph.Store(int32(phaseMeasure))
	sleep(ctx, o.duration)
	ph.Store(int32(phaseDone))
	elapsed := time.Since(start)
	wg.Wait()
	closeAll(ws)
	if ctx.Err() != nil {
		return Result{}, errors.New("interrupted")
	}
	return summarise(o, ws, elapsed, int(resigned.Load())), nil
}

func closeAll(ws []*worker) {
	for _, x := range ws {
		if x.conn != nil {
			x.conn.Close()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (w *worker) dial() error {
	c, err := net.DialTimeout("tcp", w.o.target.Host, w.o.timeout)
	if err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	w.conn = c
	w.br = bufio.NewReaderSize(c, 4096)
	return nil
}

var errBody = errors.New("unexpected body")

func (w *worker) loop() {
	reqs := w.pool.cur.Load()
	n := len(reqs.reqs)
	// Spread the workers over the pool so ids stay distinct at any moment.
	i := w.id * (n / max(1, w.o.conns))
	for {
		ph := phase(w.phase.Load())
		if ph == phaseDone {
			return
		}
		reqs = w.pool.cur.Load()
		req := reqs.reqs[i%n]
		i++
		start := time.Now()
		kind := w.do(req)
		lat := time.Since(start)
		// A request counts in the phase it started in.
		if ph == phaseWarmup {
			w.warmupReq++
			continue
		}
		if kind == "" {
			w.lat = append(w.lat, lat)
		} else {
			w.errs[kind]++
		}
	}
}

// do sends one request and classifies the answer ("" is good).
func (w *worker) do(req []byte) string {
	if w.conn == nil {
		if err := w.dial(); err != nil {
			time.Sleep(10 * time.Millisecond) // do not spin on a dead server
			return "connect"
		}
	}
	_ = w.conn.SetDeadline(time.Now().Add(w.o.timeout))
	if _, err := w.conn.Write(req); err != nil {
		w.drop()
		return "write"
	}
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		w.drop()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout"
		}
		return "read"
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		w.drop()
		return "read"
	}
	if resp.Close {
		w.drop()
	}
	if resp.StatusCode != http.StatusOK {
		return "status_" + strconv.Itoa(resp.StatusCode)
	}
	if err := w.check(body); err != nil {
		return "bad_body"
	}
	return ""
}

func (w *worker) drop() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

func (w *worker) check(body []byte) error {
	switch w.o.expect {
	case "ack":
		if len(bytes.TrimSpace(body)) != 0 {
			return errBody
		}
	default:
		var m struct {
			ResponseType string `json:"response_type"`
			Text         string `json:"text"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.ResponseType != "ephemeral" || m.Text == "" {
			return errBody
		}
		if w.o.expectText != "" && !strings.Contains(m.Text, w.o.expectText) {
			return errBody
		}
	}
	return nil
}

// ---- report ----------------------------------------------------------------

func summarise(o options, ws []*worker, elapsed time.Duration, resigned int) Result {
	var all []time.Duration
	kinds := map[string]int{}
	errs, warm := 0, 0
	for _, w := range ws {
		all = append(all, w.lat...)
		for k, n := range w.errs {
			kinds[k] += n
			errs += n
		}
		warm += w.warmupReq
	}
	slices.Sort(all)
	r := Result{
		Label: o.label, URL: o.target.String(), Conns: o.conns,
		WarmupS: o.warmup.Seconds(), DurationS: round(elapsed.Seconds(), 3),
		Requests: len(all), Errors: errs, Resigned: resigned, WarmupReqs: warm,
		RPS: round(float64(len(all))/elapsed.Seconds(), 1),
	}
	if len(kinds) > 0 {
		r.ErrorKinds = kinds
	}
	if len(all) > 0 {
		var sum time.Duration
		for _, d := range all {
			sum += d
		}
		r.MeanMS = ms(sum / time.Duration(len(all)))
		r.P50MS = ms(quantile(all, 0.50))
		r.P95MS = ms(quantile(all, 0.95))
		r.P99MS = ms(quantile(all, 0.99))
		r.P999MS = ms(quantile(all, 0.999))
		r.MaxMS = ms(all[len(all)-1])
	}
	return r
}

// quantile is the nearest-rank quantile of sorted xs.
func quantile(xs []time.Duration, q float64) time.Duration {
	k := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(k, 0), len(xs)-1)]
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// Human is the one-line summary.
func (r Result) Human() string {
	return fmt.Sprintf("%-16s %5d conns %5.1fs: %8.1f req/s  p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  max %8.2f ms  ok %d  errors %d%s",
		r.Label, r.Conns, r.DurationS, r.RPS, r.P50MS, r.P95MS, r.P99MS, r.MaxMS, r.Requests, r.Errors, kindsString(r.ErrorKinds))
}

func kindsString(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
