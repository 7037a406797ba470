package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// unreachable is a loopback address nothing listens on: a real Kafka client
// or database pool pointed at it fails as an unreachable cluster does.
func unreachable(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// parts are real dependencies for the ingress: Kafka (kfake or a client of
// an unreachable broker), PostgreSQL (pgtest, or a pool of an unreachable
// server) and the Slack stand-in.
func parts(t *testing.T, kafkaUp, dbUp bool) (Producer, Lookups, SlackUI) {
	t.Helper()
	brokers := kafkatest.New(t).Brokers
	if !kafkaUp {
		brokers = []string{unreachable(t)}
	}
	cl, err := kafka.NewClient(brokers, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	var pool *pgxpool.Pool
	if dbUp {
		pool = pgtest.New(t).Pool
	} else {
		pool, err = pgxpool.New(context.Background(), "postgres://nobody@"+unreachable(t)+"/none?connect_timeout=1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
	}
	sl := slackstandin.NewTestServer(t, slackstandin.Options{})
	clients := slackapi.NewClients(config.StaticSecret("SLACK_BOT_TOKEN", slackstandin.DefaultBotToken), sl.APIURL())
	return cl, dbLookups{pool}, slackModals{clients}
}

// TestRequestDurationOutcomes: slack_ingress_request_duration_seconds says
// what the person got, which the status alone does not: a produce that
// failed is answered 200 with an apology and counts as failed (it burns the
// SLO); an unsigned request is rejected (outside the SLO); every endpoint
// and outcome is exported from start-up.
func TestRequestDurationOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		kafkaUp  bool
		dbUp     bool
		command  string
		sign     bool
		status   int
		endpoint string
		outcome  string
	}{
		{"accepted", true, true, "/coffee", true, 200, "commands", outcomeOK},
		{"history answered", true, true, "/coffee-history", true, 200, "commands", outcomeOK},
		{"kafka down: 200 with an apology", false, true, "/coffee", true, 200, "commands", outcomeFailed},
		{"history lookup failed", true, false, "/coffee-history", true, 200, "commands", outcomeFailed},
		{"unsigned", true, true, "/coffee", false, 401, "commands", outcomeRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			producer, lookups, ui := parts(t, tt.kafkaUp, tt.dbUp)
			h := New(slackapi.NewVerifier(config.StaticSecret("SLACK_SIGNING_SECRET", secret), 0, time.Now, slog.New(slog.DiscardHandler)), producer, ui, lookups, 10*time.Minute,
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
