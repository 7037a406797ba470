package function_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/logbuf"
)

// wait bounds every wait on a condition; generous, since -race on two
// loaded cores is slow, and only ever spent when a test is failing.
const wait = 20 * time.Second

// syncBuffer is the log sink (Run logs from several goroutines), with the
// look-ups these tests make.
type syncBuffer struct{ logbuf.Buffer }

// lines decodes every log line; a line that is not JSON fails the test.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	out, err := s.Lines()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// find returns the first log line with msg whose attributes include match.
func (s *syncBuffer) find(t *testing.T, msg string, match map[string]any) (map[string]any, bool) {
	t.Helper()
	for _, l := range s.lines(t) {
		if l["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range match {
			if l[k] != v {
				ok = false
			}
		}
		if ok {
			return l, true
		}
	}
	return nil, false
}

// running is one function.Run on a loopback listener.
type running struct {
	url    string
	addr   string
	logs   *syncBuffer
	cancel context.CancelFunc // what SIGTERM does
	done   chan struct{}
	err    error // Run's result, once done is closed
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// start runs spec until the test ends (or stop is called).
func start(t *testing.T, spec function.Spec, vars map[string]string) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{
		url:    "http://" + ln.Addr().String(),
		addr:   ln.Addr().String(),
		logs:   &syncBuffer{},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go func() {
		defer close(r.done)
		r.err = function.Run(ctx, spec, env(vars), r.logs, ln)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(wait):
			t.Errorf("Run did not return within %v of cancellation", wait)
		}
		ln.Close() // Run leaves the listener open when it fails before serving
		if t.Failed() {
			t.Logf("function logs:\n%s", r.logs.String())
		}
	})
	return r
}

// result waits for Run to return.
func (r *running) result(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(wait):
		t.Fatalf("Run did not return within %v", wait)
		return nil
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", wait, what)
		case <-tick.C:
		}
	}
}

var client = &http.Client{Timeout: wait}

// get returns the status and body of GET path; status 0 if the request
// could not be made.
func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := client.Get(r.url + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *running) waitReady(t *testing.T) {
	t.Helper()
	eventually(t, "readiness 200", func() bool {
		code, _ := r.get(t, "/health/readiness")
		return code == http.StatusOK
	})
}

// ceRequest builds a binary-mode CloudEvent POST by hand.
func ceRequest(t *testing.T, url, id, typ, body string, extra map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Source", "/coffeebuddy/test")
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	return req
}

// do sends req and returns the response with its body read.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
