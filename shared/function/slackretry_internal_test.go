package function

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReceiverRateLimitedProduceFails: when the retry cannot be buffered
// (here: a real client that is closed), the event is answered 500, so the
// broker redelivers it and nothing is lost.
func TestReceiverRateLimitedProduceFails(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	reg := prometheus.NewRegistry()
	h := HandlerFunc(func(context.Context, event.Event) (*event.Event, error) {
		return nil, fmt.Errorf("post: %w", &slack.RateLimitedError{RetryAfter: time.Second})
	})
	retry := newSlackRetrier("test-fn", cl, reg)
	retry.timeout = 2 * time.Second
	app, err := newReceiver(context.Background(), "test-fn", h, slog.New(slog.DiscardHandler), reg, Breakers{}, retry)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", "e-1")
	req.Header.Set("Ce-Source", "/coffeebuddy/test")
	req.Header.Set("Ce-Type", "com.coffeebuddy.test.rate_limited")
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	app.ServeHTTP(w, req)
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "buffer slack retry") {
		t.Fatalf("%d (%s), want 500 saying the retry could not be buffered", w.Code, w.Body.String())
	}
}
