package main

import (
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkaembed"
)

func TestBanner(t *testing.T) {
	const removes = "Ctrl-C stops everything and removes temporary data."
	base := func() devstack.Stack {
		return devstack.Stack{
			DatabaseURL: "postgres://postgres@127.0.0.1:5555/postgres",
			Brokers:     []string{"127.0.0.1:19092"},
			IngressURL:  "http://127.0.0.1:8080",
			IngressAddr: "127.0.0.1:8080",
			SlackURL:    "http://127.0.0.1:8091",
			Functions:   map[string]string{"slack-ingress": "http://127.0.0.1:8080"},
			LogDir:      "/repo/.tmp/run/logs",
			Kafka:       &kafkaembed.Cluster{}, // embedded; never called
		}
	}
	tests := []struct {
		name      string
		edit      func(*devstack.Stack)
		want, not []string
	}{
		{"temporary, local Slack", func(*devstack.Stack) {},
			[]string{removes, "Data              temporary (COFFEE_DATA_DIR=", "Ingress listens   127.0.0.1:8080  (this machine only",
				"Play it           http://127.0.0.1:8091/  ← open in a browser"},
			[]string{"kept", "every interface"}},
		{"kept in COFFEE_DATA_DIR", func(s *devstack.Stack) {
			s.DataDir = "/srv/coffee"
			s.KeptData = []string{"/srv/coffee/postgres", "/srv/coffee/kafka"}
		}, []string{"Data              kept across restarts in /srv/coffee/postgres, /srv/coffee/kafka",
			"Ctrl-C stops everything; the data stays in /srv/coffee for the next run."},
			[]string{removes, "temporary"}},
		{"real Slack", func(s *devstack.Stack) { s.IngressAddr = "[::]:8080"; s.SlackURL = "" },
			[]string{"Ingress listens   [::]:8080  (every interface", removes},
			[]string{"this machine only", "Play it"}},
		{"nothing embedded", func(s *devstack.Stack) { s.Kafka = nil },
			[]string{removes}, []string{"Data "}},
		{"local Prometheus", func(s *devstack.Stack) { s.PrometheusURL = "http://127.0.0.1:9090" },
			[]string{"Prometheus        http://127.0.0.1:9090  (scrapes every function every 15s", "http://127.0.0.1:9090/alerts"},
			[]string{"Prometheus        off"}},
		{"no Prometheus", func(*devstack.Stack) {},
			[]string{"Prometheus        off (PROMETHEUS=0, or not installed: make run PROMETHEUS=1 installs"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.edit(&s)
			var b strings.Builder
			banner(&b, &s, "/repo", time.Second, time.Now())
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("banner lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("banner has %q:\n%s", n, b.String())
				}
			}
		})
	}
}

// TestWantPrometheus: unset starts the local Prometheus only when it is
// installed; 1 requires it; 0 skips it; anything else is a mistake.
func TestWantPrometheus(t *testing.T) {
	tests := []struct {
		env       string
		installed bool
		want      bool
		err       bool
	}{
		{"", true, true, false},
		{"", false, false, false},
		{"1", true, true, false},
		{"1", false, false, true},
		{"0", true, false, false},
		{"yes please", true, false, true},
	}
	for _, tt := range tests {
		got, err := wantPrometheus(tt.env, tt.installed)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("PROMETHEUS=%q installed=%v: %v, %v; want %v, error %v", tt.env, tt.installed, got, err, tt.want, tt.err)
		}
	}
}
