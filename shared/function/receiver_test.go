package function_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
)

// Event types the test handler understands.
const (
	typeOK        = "com.coffeebuddy.test.ok"
	typeReply     = "com.coffeebuddy.test.reply"
	typeReplied   = "com.coffeebuddy.test.replied"
	typePermanent = "com.coffeebuddy.test.permanent"
	typeRetry     = "com.coffeebuddy.test.retry"
	typeBusy      = "com.coffeebuddy.test.busy"
	typePanic     = "com.coffeebuddy.test.panic"
	typeLog       = "com.coffeebuddy.test.log"
)

// busyError is what slackonce.ErrInFlight looks like to the runtime.
type busyError struct{}

func (busyError) Error() string { return "another attempt is posting" }
func (busyError) Busy() bool    { return true }

// calls records what the handler saw.
type calls struct {
	mu     sync.Mutex
	events []event.Event
}

func (c *calls) add(e event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *calls) byID(id string) (event.Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if e.ID() == id {
			return e, true
		}
	}
	return event.Event{}, false
}

func (c *calls) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// router is a handler whose behaviour depends on the event type.
func router(c *calls) function.HandlerFunc {
	return func(ctx context.Context, e event.Event) (*event.Event, error) {
		c.add(e)
		switch e.Type() {
		case typeReply:
			r := event.New()
			r.SetID("reply-to-" + e.ID())
			r.SetSource("/coffeebuddy/test-fn")
			r.SetType(typeReplied)
			if err := r.SetData(event.ApplicationJSON, map[string]string{"in_reply_to": e.ID()}); err != nil {
				return nil, err
			}
			return &r, nil
		case typePermanent:
			return nil, function.Permanent(errors.New("no such run"))
		case typeRetry:
			return nil, errors.New("database unavailable")
		case typeBusy:
			return nil, fmt.Errorf("post reply: %w", busyError{})
		case typePanic:
			panic("handler bug")
		case typeLog:
			function.Logger(ctx).Info("inside the handler", "step", "decode")
		}
		return nil, nil
	}
}

// startRouter runs a function with the router handler at debug level.
func startRouter(t *testing.T) (*running, *calls) {
	t.Helper()
	c := &calls{}
	r := start(t, function.Spec{
		Name:   "test-fn",
		Events: func(*function.Deps) (function.Handler, error) { return router(c), nil },
	}, map[string]string{"LOG_LEVEL": "debug"})
	r.waitReady(t)
	return r, c
}

func TestReceiverBinaryStatuses(t *testing.T) {
	r, c := startRouter(t)
	tests := []struct {
		typ        string
		wantStatus int
		wantBody   string
	}{
		{typeOK, http.StatusOK, ""},
		{typePermanent, http.StatusBadRequest, "no such run"},
		{typeRetry, http.StatusInternalServerError, "database unavailable"},
		{typeBusy, http.StatusConflict, "another attempt is posting"},
		{typePanic, http.StatusInternalServerError, ""},
	}
	for i, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			id := fmt.Sprintf("bin-%d", i)
			resp, body := do(t, ceRequest(t, r.url, id, tt.typ, `{"drink":"espresso"}`,
				map[string]string{"Ce-Subject": "run/7", "Ce-Runid": "7"}))
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, tt.wantStatus, body)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body = %q, want it to contain %q", body, tt.wantBody)
			}
			got, ok := c.byID(id)
			if !ok {
				t.Fatal("handler not called")
			}
			if got.Type() != tt.typ || got.Source() != "/coffeebuddy/test" || got.Subject() != "run/7" {
				t.Errorf("handler got %v", got)
			}
			if v, _ := got.Extensions()["runid"].(string); v != "7" {
				t.Errorf("runid extension = %v, want 7", got.Extensions()["runid"])
			}
			if string(got.Data()) != `{"drink":"espresso"}` || got.DataContentType() != "application/json" {
				t.Errorf("data = %s (%s)", got.Data(), got.DataContentType())
			}
		})
	}
	// The function survived the panic.
	if code, _ := r.get(t, "/health/liveness"); code != http.StatusOK {
		t.Errorf("liveness after a panicking handler = %d", code)
	}

	code, metrics := r.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []struct{ typ, outcome string }{
		{typeOK, "ok"}, {typePermanent, "permanent"}, {typeRetry, "retry"},
	} {
		re := regexp.MustCompile(`(?m)^coffeebuddy_events_total\{[^}]*\} 1$`)
		found := false
		for _, line := range re.FindAllString(metrics, -1) {
			if strings.Contains(line, `function="test-fn"`) && strings.Contains(line, `outcome="`+want.outcome+`"`) &&
				strings.Contains(line, `type="`+want.typ+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("/metrics has no coffeebuddy_events_total{function=test-fn,type=%s,outcome=%s} 1:\n%s",
				want.typ, want.outcome, grepLines(metrics, "coffeebuddy_"))
		}
	}
	if !strings.Contains(metrics, "coffeebuddy_event_handle_seconds_count") {
		t.Errorf("/metrics has no coffeebuddy_event_handle_seconds histogram")
	}
	if !strings.Contains(metrics, "go_goroutines") {
		t.Errorf("/metrics has no Go runtime metrics")
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestReceiverReplyEvent(t *testing.T) {
	r, _ := startRouter(t)

	// By hand: the reply travels back in binary mode.
	resp, body := do(t, ceRequest(t, r.url, "q-1", typeReply, `{}`, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d (%s)", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Ce-Type"); got != typeReplied {
		t.Errorf("reply ce-type = %q, want %q", got, typeReplied)
	}
	if got := resp.Header.Get("Ce-Id"); got != "reply-to-q-1" {
		t.Errorf("reply ce-id = %q", got)
	}
	if body != `{"in_reply_to":"q-1"}` {
		t.Errorf("reply body = %q", body)
	}

	// Through sdk-go's client, as the Knative broker would see it.
	cl, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	ev := cloudevents.NewEvent()
	ev.SetID("q-2")
	ev.SetSource("/coffeebuddy/test")
	ev.SetType(typeReply)
	ctx := cloudevents.ContextWithTarget(context.Background(), r.url)
	reply, res := cl.Request(ctx, ev)
	if !cloudevents.IsACK(res) {
		t.Fatalf("Request: %v", res)
	}
	if reply == nil {
		t.Fatal("no reply event")
	}
	if reply.Type() != typeReplied || reply.ID() != "reply-to-q-2" {
		t.Errorf("reply = %v", reply)
	}
}

func TestReceiverSDKClientStatuses(t *testing.T) {
	r, c := startRouter(t)
	cl, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		structured bool
		typ        string
		wantStatus int
	}{
		{"binary ok", false, typeOK, http.StatusOK},
		{"binary permanent", false, typePermanent, http.StatusBadRequest},
		{"binary retry", false, typeRetry, http.StatusInternalServerError},
		{"structured ok", true, typeOK, http.StatusOK},
		{"structured permanent", true, typePermanent, http.StatusBadRequest},
		{"structured retry", true, typeRetry, http.StatusInternalServerError},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := cloudevents.NewEvent()
			ev.SetID(fmt.Sprintf("sdk-%d", i))
			ev.SetSource("/coffeebuddy/test")
			ev.SetType(tt.typ)
			if err := ev.SetData(cloudevents.ApplicationJSON, map[string]int{"cups": 3}); err != nil {
				t.Fatal(err)
			}
			ctx := cloudevents.ContextWithTarget(context.Background(), r.url)
			if tt.structured {
				ctx = cloudevents.WithEncodingStructured(ctx)
			}
			res := cl.Send(ctx, ev)
			var hr *cehttp.Result
			if !cloudevents.ResultAs(res, &hr) {
				t.Fatalf("Send: %v is not an HTTP result", res)
			}
			if hr.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d (%v)", hr.StatusCode, tt.wantStatus, res)
			}
			got, ok := c.byID(ev.ID())
			if !ok {
				t.Fatal("handler not called")
			}
			if got.Type() != tt.typ || string(got.Data()) != `{"cups":3}` {
				t.Errorf("handler got %v", got)
			}
		})
	}
}

func TestReceiverStructuredByHand(t *testing.T) {
	r, c := startRouter(t)
	body := `{"specversion":"1.0","id":"st-1","source":"/coffeebuddy/test","type":"` + typeReply + `",
		"subject":"run/9","datacontenttype":"application/json","data":{"cups":2}}`
	req, err := http.NewRequest(http.MethodPost, r.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	resp, respBody := do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d (%s)", resp.StatusCode, respBody)
	}
	got, ok := c.byID("st-1")
	if !ok {
		t.Fatal("handler not called")
	}
	if got.Subject() != "run/9" || string(got.Data()) != `{"cups":2}` {
		t.Errorf("handler got %v", got)
	}
	if resp.Header.Get("Ce-Type") != typeReplied && !strings.Contains(respBody, typeReplied) {
		t.Errorf("response carries no reply event: headers %v body %q", resp.Header, respBody)
	}
}

// malformedBug: sdk-go answers 500 (retry) when a request fails to decode as
// a CloudEvent for reasons other than an unknown encoding or a failed
// Validate, so the broker retries a payload that can never succeed.
const malformedBug = "a CloudEvent that fails to decode (bad ce-time, bad extension name, broken structured JSON) gets 500 and is retried instead of 4xx (see report)"

func TestReceiverRejectsNonCloudEvents(t *testing.T) {
	r, c := startRouter(t)
	post := func(contentType, body string, headers map[string]string) *http.Request {
		req, err := http.NewRequest(http.MethodPost, r.url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		return req
	}
	binaryWithout := func(drop string) *http.Request {
		req := ceRequest(t, r.url, "x-1", typeOK, `{}`, nil)
		req.Header.Del(drop)
		return req
	}
	get, err := http.NewRequest(http.MethodGet, r.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		req   *http.Request
		fixed string // the bug this case caught, now fixed
	}{
		{"plain JSON", post("application/json", `{"drink":"tea"}`, nil), ""},
		{"plain text", post("text/plain", "hello", nil), ""},
		{"empty body, no headers", post("", "", nil), ""},
		{"binary without ce-id", binaryWithout("Ce-Id"), ""},
		{"binary without ce-source", binaryWithout("Ce-Source"), ""},
		{"binary without ce-type", binaryWithout("Ce-Type"), ""},
		{"binary with specversion 9.9", post("application/json", `{}`, map[string]string{
			"Ce-Specversion": "9.9", "Ce-Id": "x-2", "Ce-Source": "/s", "Ce-Type": typeOK}), ""},
		{"binary with a bad ce-time", post("application/json", `{}`, map[string]string{
			"Ce-Specversion": "1.0", "Ce-Id": "x-3", "Ce-Source": "/s", "Ce-Type": typeOK, "Ce-Time": "yesterday"}), malformedBug},
		{"binary with a bad extension name", post("application/json", `{}`, map[string]string{
			"Ce-Specversion": "1.0", "Ce-Id": "x-4", "Ce-Source": "/s", "Ce-Type": typeOK, "Ce-Run_id": "7"}), malformedBug},
		{"structured, invalid JSON", post("application/cloudevents+json", `{"specversion":"1.0",`, nil), malformedBug},
		{"structured, no id", post("application/cloudevents+json",
			`{"specversion":"1.0","source":"/s","type":"`+typeOK+`"}`, nil), ""},
		{"GET", get, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.req)
			if resp.StatusCode < 400 || resp.StatusCode > 499 {
				t.Errorf("status = %d, want 4xx (body %q)", resp.StatusCode, body)
			}
		})
	}
	// Each response came after the handler would have run, so a count of
	// zero now means it was never called.
	if n := c.count(); n != 0 {
		t.Errorf("handler called %d times for requests that are not CloudEvents", n)
	}
}

func TestReceiverLogs(t *testing.T) {
	r, _ := startRouter(t)
	for _, tc := range []struct{ id, typ string }{
		{"log-ok", typeOK}, {"log-perm", typePermanent}, {"log-retry", typeRetry}, {"log-inside", typeLog},
	} {
		resp, body := do(t, ceRequest(t, r.url, tc.id, tc.typ, `{}`, map[string]string{"Ce-Subject": "run/11"}))
		if resp.StatusCode >= 500 && tc.typ != typeRetry {
			t.Fatalf("%s: status %d (%s)", tc.typ, resp.StatusCode, body)
		}
	}
	// Every line is JSON and names the function.
	for _, l := range r.logs.lines(t) {
		if l["function"] != "test-fn" {
			t.Errorf("log line without function=test-fn: %v", l)
		}
	}
	tests := []struct {
		msg, id, typ, level string
	}{
		{"handled", "log-ok", typeOK, "DEBUG"},
		{"permanent failure; not retried", "log-perm", typePermanent, "ERROR"},
		{"failed; the broker will retry", "log-retry", typeRetry, "WARN"},
		{"inside the handler", "log-inside", typeLog, "INFO"}, // Logger(ctx) in the handler
	}
	for _, tt := range tests {
		l, ok := r.logs.find(t, tt.msg, map[string]any{"ce_id": tt.id})
		if !ok {
			t.Errorf("no %q log line with ce_id=%s:\n%s", tt.msg, tt.id, r.logs.String())
			continue
		}
		if l["ce_type"] != tt.typ || l["ce_source"] != "/coffeebuddy/test" || l["ce_subject"] != "run/11" || l["level"] != tt.level {
			t.Errorf("%q log line = %v, want ce_type=%s ce_source ce_subject level=%s", tt.msg, l, tt.typ, tt.level)
		}
	}
	if l, ok := r.logs.find(t, "inside the handler", nil); ok && l["step"] != "decode" {
		t.Errorf("handler's own attributes lost: %v", l)
	}
	if l, ok := r.logs.find(t, "failed; the broker will retry", nil); ok && l["err"] != "database unavailable" {
		t.Errorf("retry log err = %v", l["err"])
	}
}

func TestLoggerOutsideHandler(t *testing.T) {
	l := function.Logger(context.Background())
	if l == nil {
		t.Fatal("Logger(ctx without logger) = nil")
	}
	l.Info("discarded") // must not panic
}

// Regression for sdk-go's shared hand-off channel (cloudevents/sdk-go#1224, #1332),
// which the receiver no longer uses.
// TestReceiverConcurrentHandlersKeepTheirContext sends concurrent events
// and finishes them one at a time; every handler must still have a live
// context when it finishes, i.e. it runs with its own request's context.
// (Against the sdk-go hand-off this fails only rarely.)
func TestReceiverConcurrentHandlersKeepTheirContext(t *testing.T) {
	const n = 16
	release := make([]chan struct{}, n)
	for i := range release {
		release[i] = make(chan struct{})
	}
	var entered sync.WaitGroup
	entered.Add(n)
	testDone := make(chan struct{})
	r := start(t, function.Spec{
		Name: "test-fn",
		Events: func(*function.Deps) (function.Handler, error) {
			return function.HandlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
				var i int
				if _, err := fmt.Sscanf(e.ID(), "c-%d", &i); err != nil {
					return nil, function.Permanent(err)
				}
				entered.Done()
				select {
				case <-release[i]:
				case <-testDone:
				}
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("handler for %s: context already %w", e.ID(), err)
				}
				return nil, nil
			}), nil
		},
	}, nil)
	t.Cleanup(func() { close(testDone) }) // runs before start's cleanup
	r.waitReady(t)

	type result struct {
		code int
		body string
	}
	results := make([]chan result, n)
	for i := range n {
		results[i] = make(chan result, 1)
		req := ceRequest(t, r.url, fmt.Sprintf("c-%d", i), typeOK, `{}`, nil)
		go func() {
			resp, err := client.Do(req)
			if err != nil {
				results[i] <- result{0, err.Error()}
				return
			}
			defer resp.Body.Close()
			b := make([]byte, 512)
			k, _ := resp.Body.Read(b)
			results[i] <- result{resp.StatusCode, string(b[:k])}
		}()
	}
	allIn := make(chan struct{})
	go func() { entered.Wait(); close(allIn) }()
	select {
	case <-allIn:
	case <-r.done:
		t.Fatalf("Run returned: %v", r.err)
	case <-time.After(wait):
		t.Fatalf("only some of %d handlers entered within %v", n, wait)
	}
	for i := range n {
		close(release[i])
		res := <-results[i]
		if res.code != http.StatusOK {
			t.Errorf("event c-%d: status %d: %s", i, res.code, res.body)
		}
	}
}

// TestReceiverSurvivesCancelledRequests sends rounds of concurrent events,
// half of them cancelled by their client (a broker timing out, a pod
// going away); every event that is not cancelled must still be answered,
// and so must a lone event afterwards. Against the sdk-go hand-off an
// uncancelled request hangs within a few hundred rounds.
func TestReceiverSurvivesCancelledRequests(t *testing.T) {
	r := start(t, function.Spec{Name: "test-fn", Events: okHandler}, nil)
	r.waitReady(t)
	// Separate transports, so a cancelled request cannot fail an
	// uncancelled one client-side.
	cancelled := &http.Transport{MaxIdleConnsPerHost: 64}
	kept := &http.Transport{MaxIdleConnsPerHost: 64}
	defer cancelled.CloseIdleConnections()
	defer kept.CloseIdleConnections()
	send := func(tr *http.Transport, ctx context.Context, id string) (int, error) {
		req := ceRequest(t, r.url, id, typeOK, "", nil).WithContext(ctx)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	const rounds, perRound = 300, 16
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, perRound)
		for i := range perRound {
			id := fmt.Sprintf("r%d-%d", round, i)
			wg.Go(func() {
				if i%2 == 0 {
					ctx, cancel := context.WithCancel(context.Background())
					go cancel()
					_, _ = send(cancelled, ctx, id)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				if code, err := send(kept, ctx, id); err != nil || code != http.StatusOK {
					errs <- fmt.Errorf("event %s: status %d, %v", id, code, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: an event nobody cancelled was not answered: %v", round, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if code, err := send(kept, ctx, "lone"); err != nil || code != http.StatusOK {
		t.Fatalf("a lone event after the cancellations: status %d, %v", code, err)
	}
}
