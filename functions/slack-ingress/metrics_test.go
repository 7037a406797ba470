package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// brokenKafka fails every produce, as an unreachable cluster does.
type brokenKafka struct{}

func (brokenKafka) ProduceSync(context.Context, ...*kgo.Record) kgo.ProduceResults {
	return kgo.ProduceResults{{Err: errors.New("kafka: unreachable")}}
}

// okKafka accepts every produce.
type okKafka struct{}

func (okKafka) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	out := make(kgo.ProduceResults, len(rs))
	for i, r := range rs {
		out[i] = kgo.ProduceResult{Record: r}
	}
	return out
}

// noLookups answers every read empty, or with err when set.
type noLookups struct{ err error }

func (l noLookups) Prefill(context.Context, string, string, string) (blocks.Prefill, error) {
	return blocks.Prefill{}, l.err
}
func (l noLookups) OrderingOpen(context.Context, string, string, time.Time) (bool, error) {
	return true, l.err
}
func (l noLookups) History(context.Context, string, string, int) ([]store.HistoryEntry, int, error) {
	return nil, 0, l.err
}

type noModals struct{}

func (noModals) OpenModal(context.Context, string, []byte) error { return nil }

// TestRequestDurationOutcomes: slack_ingress_request_duration_seconds says
// what the person got, which the status alone does not: a produce that
// failed is answered 200 with an apology and counts as failed (it burns the
// SLO); an unsigned request is rejected (outside the SLO); every endpoint
// and outcome is exported from start-up.
func TestRequestDurationOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		kafka    Producer
		lookups  Lookups
		command  string
		sign     bool
		status   int
		endpoint string
		outcome  string
	}{
		{"accepted", okKafka{}, noLookups{}, "/coffee", true, 200, "commands", outcomeOK},
		{"usage answer", okKafka{}, noLookups{}, "/coffee-history", true, 200, "commands", outcomeOK},
		{"kafka down: 200 with an apology", brokenKafka{}, noLookups{}, "/coffee", true, 200, "commands", outcomeFailed},
		{"history lookup failed", okKafka{}, noLookups{err: errors.New("db down")}, "/coffee-history", true, 200, "commands", outcomeFailed},
		{"unsigned", okKafka{}, noLookups{}, "/coffee", false, 401, "commands", outcomeRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h := New(config.StaticSecret("SLACK_SIGNING_SECRET", secret), tt.kafka, noModals{}, tt.lookups, 10*time.Minute,
				slog.New(slog.DiscardHandler), reg)
			if n := testutil.CollectAndCount(reg, "slack_ingress_request_duration_seconds"); n != len(endpoints)*3 {
				t.Fatalf("%d duration series at start-up, want %d (every endpoint and outcome)", n, len(endpoints)*3)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			body := url.Values{"team_id": {"T1"}, "channel_id": {"C1"}, "user_id": {"U1"}, "command": {tt.command}}.Encode()
			ts := time.Now().Unix()
			sig := "v0=00"
			if tt.sign {
				sig = slackapi.Sign(secret, ts, []byte(body))
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/slack/commands", strings.NewReader(body))
			req.Header.Set(slackapi.HeaderTimestamp, strconv.FormatInt(ts, 10))
			req.Header.Set(slackapi.HeaderSignature, sig)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() != "slack_ingress_request_duration_seconds" {
					continue
				}
				for _, m := range mf.GetMetric() {
					l := map[string]string{}
					for _, lp := range m.GetLabel() {
						l[lp.GetName()] = lp.GetValue()
					}
					want := uint64(0)
					if l["endpoint"] == tt.endpoint && l["outcome"] == tt.outcome {
						want = 1
					}
					if got := m.GetHistogram().GetSampleCount(); got != want {
						t.Errorf("%v: %d observations, want %d", l, got, want)
					}
				}
			}
		})
	}
}

// TestDurationHistogramHasTheSLOBucket: the SLO's "within 3 s" is read
// from the le="3" bucket, so it must be a bucket boundary.
func TestDurationHistogramHasTheSLOBucket(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newDurationHistogram())
	mfs, _ := reg.Gather()
	for _, b := range mfs[0].GetMetric()[0].GetHistogram().GetBucket() {
		if b.GetUpperBound() == SLOThreshold.Seconds() {
			return
		}
	}
	t.Fatalf("no bucket at %v", SLOThreshold)
}
