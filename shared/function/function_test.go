package function_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kfake"
)

func okHandler(*function.Deps) (function.Handler, error) {
	return function.HandlerFunc(func(context.Context, event.Event) (*event.Event, error) { return nil, nil }), nil
}

func TestHealthEndpoints(t *testing.T) {
	r := start(t, function.Spec{Name: "test-fn", Events: okHandler}, nil)
	r.waitReady(t)
	if code, _ := r.get(t, "/health/liveness"); code != http.StatusOK {
		t.Errorf("liveness = %d, want 200", code)
	}
	if code, _ := r.get(t, "/health/readiness"); code != http.StatusOK {
		t.Errorf("readiness = %d, want 200", code)
	}
	code, body := r.get(t, "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
		t.Errorf("/metrics = %d without Go/process metrics", code)
	}
}

// TestReadyLogLine: the start-to-ready line is logged however readiness is
// reached, by the background check or by a probe that got there first.
func TestReadyLogLine(t *testing.T) {
	t.Run("background check", func(t *testing.T) {
		r := start(t, function.Spec{Name: "test-fn", Events: okHandler}, nil)
		// Not probing: only the background check can make it ready.
		eventually(t, "a ready log line", func() bool {
			l, ok := r.logs.find(t, "ready", map[string]any{"function": "test-fn"})
			return ok && l["addr"] == r.addr && l["start_to_ready_ms"] != nil
		})
		if code, _ := r.get(t, "/health/readiness"); code != http.StatusOK {
			t.Errorf("readiness = %d after the ready line", code)
		}
	})
	t.Run("probe first", func(t *testing.T) {
		var up atomic.Bool
		r := start(t, function.Spec{Name: "test-fn", Events: okHandler, ReadyCheck: func(context.Context) error {
			if !up.Load() {
				return errors.New("warming up")
			}
			return nil
		}}, nil)
		// The background check fails once and waits before retrying; a
		// probe in that pause makes the function ready.
		eventually(t, "the background check to fail once", func() bool {
			_, ok := r.logs.find(t, "dependencies not ready", nil)
			return ok
		})
		up.Store(true)
		r.waitReady(t)
		eventually(t, "a ready log line", func() bool {
			_, ok := r.logs.find(t, "ready", map[string]any{"function": "test-fn"})
			return ok
		})
	})
}

func TestReadinessWaitsForReadyCheck(t *testing.T) {
	var up atomic.Bool
	r := start(t, function.Spec{
		Name:   "test-fn",
		Events: okHandler,
		ReadyCheck: func(context.Context) error {
			if !up.Load() {
				return errors.New("cache not warm")
			}
			return nil
		},
	}, nil)
	// Serving, alive, not ready.
	eventually(t, "liveness 200", func() bool {
		code, _ := r.get(t, "/health/liveness")
		return code == http.StatusOK
	})
	code, body := r.get(t, "/health/readiness")
	if code != http.StatusServiceUnavailable {
		t.Errorf("readiness before the dependency is up = %d, want 503", code)
	}
	if !strings.Contains(body, "cache not warm") {
		t.Errorf("readiness body %q does not say why", body)
	}
	up.Store(true)
	r.waitReady(t)
	// Once ready, it stays ready (a flapping check does not pull the pod).
	up.Store(false)
	if code, _ := r.get(t, "/health/readiness"); code != http.StatusOK {
		t.Errorf("readiness after becoming ready = %d, want 200", code)
	}
}

func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	testDone := make(chan struct{})
	handlerCtxErr := make(chan error, 1)
	r := start(t, function.Spec{
		Name: "test-fn",
		Events: func(*function.Deps) (function.Handler, error) {
			return function.HandlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
				close(entered)
				select {
				case <-release:
				case <-testDone:
				}
				handlerCtxErr <- ctx.Err()
				return nil, nil
			}), nil
		},
	}, nil)
	t.Cleanup(func() { close(testDone) }) // runs before start's cleanup
	r.waitReady(t)

	type result struct {
		code int
		err  error
	}
	inflight := make(chan result, 1)
	req := ceRequest(t, r.url, "inflight-1", typeOK, `{}`, nil)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{}, Timeout: wait}).Do(req)
		if err != nil {
			inflight <- result{0, err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		inflight <- result{resp.StatusCode, nil}
	}()
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("handler not entered")
	}

	r.cancel() // SIGTERM
	eventually(t, "the shutting down log line", func() bool {
		_, ok := r.logs.find(t, "shutting down", nil)
		return ok
	})

	// Draining: readiness is never 200 again. The readiness handler
	// answers 503 while draining, but net/http's Shutdown (which starts
	// right after) closes the listener and serves no request read after
	// it began, so a probe sees 503 or a refused/closed connection.
	noKeepAlive := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: wait}
	resp, err := noKeepAlive.Get(r.url + "/health/readiness")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("readiness while draining = 200, want 503 or no answer")
		}
	}

	// Still draining: the handler holds the request.
	select {
	case <-r.done:
		t.Fatalf("Run returned (%v) with a request in flight", r.err)
	case res := <-inflight:
		t.Fatalf("in-flight request finished (%d, %v) before the handler was released", res.code, res.err)
	default:
	}

	close(release)
	select {
	case res := <-inflight:
		if res.err != nil || res.code != http.StatusOK {
			t.Errorf("in-flight request = %d, %v; want 200", res.code, res.err)
		}
	case <-time.After(wait):
		t.Fatal("in-flight request did not finish")
	}
	if err := <-handlerCtxErr; err != nil {
		t.Errorf("SIGTERM cancelled the in-flight handler's context: %v", err)
	}
	if err := r.result(t); err != nil {
		t.Errorf("Run = %v, want nil after a clean drain", err)
	}
	if _, ok := r.logs.find(t, "stopped", nil); !ok {
		t.Errorf("no stopped log line:\n%s", r.logs.String())
	}
}

func TestShutdownTimeout(t *testing.T) {
	entered := make(chan struct{})
	testDone := make(chan struct{})
	r := start(t, function.Spec{
		Name: "test-fn",
		Events: func(*function.Deps) (function.Handler, error) {
			return function.HandlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
				close(entered)
				<-testDone // never released during the test
				return nil, nil
			}), nil
		},
	}, map[string]string{"SHUTDOWN_TIMEOUT": "100ms"})
	t.Cleanup(func() { close(testDone) })
	r.waitReady(t)
	req := ceRequest(t, r.url, "stuck-1", typeOK, `{}`, nil)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{}, Timeout: wait}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("handler not entered")
	}
	r.cancel()
	err := r.result(t)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want a shutdown deadline error", err)
	}
}

// connectBug: every error return in connect panics (nil func call), which
// would take the whole test binary down, so those cases are skipped.
const connectBug = "connect's deferred cleanup calls its named result closeAll, which `return nil, err` has just set to nil: Run panics instead of returning the error (see report)"

func TestRunStartupErrors(t *testing.T) {
	tests := []struct {
		name    string
		spec    function.Spec
		env     map[string]string
		want    []string
		notWant string
		fixed   string // the bug this case caught, now fixed
	}{
		{"DB without DATABASE_URL", function.Spec{Name: "f", Needs: function.Needs{DB: true}, Events: okHandler}, nil,
			[]string{"DATABASE_URL"}, "", connectBug},
		{"Kafka without KAFKA_BROKERS", function.Spec{Name: "f", Needs: function.Needs{Kafka: true}, Events: okHandler}, nil,
			[]string{"KAFKA_BROKERS"}, "", connectBug},
		{"Slack without KAFKA_BROKERS", function.Spec{Name: "f", Needs: function.Needs{Slack: true}, Events: okHandler}, nil,
			[]string{"KAFKA_BROKERS", "slack.retry"}, "", ""},
		{"malformed DATABASE_URL keeps the password out", function.Spec{Name: "f", Needs: function.Needs{DB: true}, Events: okHandler},
			map[string]string{"DATABASE_URL": "postgres://coffee:hunter2@db:notaport/coffee"}, []string{"DATABASE_URL"}, "hunter2", connectBug},
		{"bad configuration", function.Spec{Name: "f", Events: okHandler},
			map[string]string{"PORT": "http", "COFFEE_LAST_CALL": "soon"}, []string{"PORT", "COFFEE_LAST_CALL"}, "", ""},
		{"neither Events nor Routes", function.Spec{Name: "f"}, nil, []string{"f", "neither Events nor Routes"}, "", ""},
		{"Events constructor fails", function.Spec{Name: "f", Events: func(*function.Deps) (function.Handler, error) {
			return nil, errors.New("no templates")
		}}, nil, []string{"function f", "no templates"}, "", ""},
		{"Routes constructor fails", function.Spec{Name: "f", Routes: func(*function.Deps) (http.Handler, error) {
			return nil, errors.New("no routes")
		}}, nil, []string{"function f", "no routes"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, tt.spec, tt.env)
			err := r.result(t)
			if err == nil {
				t.Fatal("Run = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error %q leaks %q", err, tt.notWant)
			}
		})
	}
}

func TestNeedsKafka(t *testing.T) {
	kc := kafkatest.New(t)
	var got atomic.Bool
	r := start(t, function.Spec{
		Name:  "test-fn",
		Needs: function.Needs{Kafka: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			got.Store(d.Kafka != nil && d.DB == nil && d.Slack == nil && d.Log != nil && d.Metrics != nil)
			return okHandler(d)
		},
	}, map[string]string{"KAFKA_BROKERS": strings.Join(kc.Brokers, ",")})
	r.waitReady(t)
	if !got.Load() {
		t.Error("Deps: want Kafka set and only Kafka, plus Log and Metrics")
	}
}

func TestNeedsKafkaReadyOnceBrokerIsUp(t *testing.T) {
	// Reserve a port, release it, point the function at it: nothing listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	port, err := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}

	r := start(t, function.Spec{Name: "test-fn", Needs: function.Needs{Kafka: true}, Events: okHandler},
		map[string]string{"KAFKA_BROKERS": addr})
	eventually(t, "liveness 200", func() bool {
		code, _ := r.get(t, "/health/liveness")
		return code == http.StatusOK
	})
	if code, body := r.get(t, "/health/readiness"); code != http.StatusServiceUnavailable {
		t.Errorf("readiness with no broker = %d (%s), want 503", code, body)
	}

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Skipf("could not start kfake on the reserved port %d: %v", port, err)
	}
	t.Cleanup(c.Close)
	r.waitReady(t)
}

func TestNeedsSlack(t *testing.T) {
	var got atomic.Bool
	r := start(t, function.Spec{
		Name:  "test-fn",
		Needs: function.Needs{Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			got.Store(d.Slack != nil && d.Kafka != nil && d.DB == nil && d.Config.SlackLocal)
			return okHandler(d)
		},
	}, map[string]string{"KAFKA_BROKERS": strings.Join(kafkatest.New(t).Brokers, ",")})
	r.waitReady(t)
	if !got.Load() {
		t.Error("Deps: want Slack set (local stand-in config), Kafka too (for slack.retry), and no DB")
	}
}

func TestRoutesSpec(t *testing.T) {
	r := start(t, function.Spec{
		Name: "ingress",
		Routes: func(d *function.Deps) (http.Handler, error) {
			mux := http.NewServeMux()
			mux.HandleFunc("POST /slack/commands", func(w http.ResponseWriter, _ *http.Request) {
				d.Log.Info("command")
				w.WriteHeader(http.StatusAccepted)
			})
			return mux, nil
		},
	}, nil)
	r.waitReady(t)
	resp, err := client.Post(r.url+"/slack/commands", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("route status = %d, want 202", resp.StatusCode)
	}
	// The runtime's endpoints win over the app's catch-all.
	if code, _ := r.get(t, "/health/liveness"); code != http.StatusOK {
		t.Errorf("liveness = %d", code)
	}
	if _, ok := r.logs.find(t, "command", map[string]any{"function": "ingress"}); !ok {
		t.Errorf("Deps.Log does not log JSON with function=ingress:\n%s", r.logs.String())
	}
}
