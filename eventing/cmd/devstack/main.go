// Command devstack is `make run`: the whole bot on one machine with
// embedded defaults. Ctrl-C stops everything and removes temporary data;
// with COFFEE_DATA_DIR the embedded PostgreSQL and Kafka keep theirs there.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/eventing/hydra"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	logDir := filepath.Join(root, ".tmp", "run", "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(logDir, "devstack.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	log := slog.New(slog.NewJSONHandler(logf, nil))

	prom, err := wantPrometheus(os.Getenv("PROMETHEUS"), devstack.PrometheusBinary() != "")
	if err != nil {
		return err
	}
	// audit-api's local issuer: Hydra once .ci/ensure-hydra has built it,
	// else the dev issuer. A HYDRA_BIN that is not there is a mistake.
	hydraBin, err := hydra.FindBin(os.Getenv, root)
	if err != nil && os.Getenv("HYDRA_BIN") != "" {
		return err
	}

	fmt.Println("Starting CoffeeBuddy (PostgreSQL, Kafka, functions, eventing stand-in, OIDC issuer)…")
	start := time.Now()
	s, err := devstack.Start(ctx, devstack.Options{
		Root: root, Log: log, LogDir: logDir,
		BinDir:     os.Getenv("DEVSTACK_BIN"),
		Transcript: os.Stdout,
		KeepData:   true,
		Prometheus: prom,
		HydraBin:   hydraBin,
	})
	if err != nil {
		return err
	}
	defer s.Close()
	banner(os.Stdout, s, root, time.Since(start), time.Now())
	if s.PrometheusURL != "" {
		// Not waited for by Start; say so if it does not come up.
		go func() {
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := s.PrometheusReady(rctx); err != nil && ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "devstack: the local Prometheus did not start:", err)
			}
		}()
	}
	<-ctx.Done()
	fmt.Println("\nStopping CoffeeBuddy…")
	return nil
}

func banner(w io.Writer, s *devstack.Stack, root string, took time.Duration, now time.Time) {
	rel := func(p string) string {
		if r, err := filepath.Rel(root, p); err == nil {
			return r
		}
		return p
	}
	fmt.Fprintf(w, "\n☕ CoffeeBuddy is running (ready in %s)\n\n", took.Round(100*time.Millisecond))
	fmt.Fprintf(w, "  Slack endpoints   %s/slack/commands  %s/slack/interactions\n", s.IngressURL, s.IngressURL)
	fmt.Fprintf(w, "  Ingress listens   %s  (%s)\n", s.IngressAddr, reach(s.IngressAddr))
	if s.SlackURL != "" {
		fmt.Fprintf(w, "  Play it           %s/  ← open in a browser: you are alice; pick bob, carol or dave (or add someone)\n", s.SlackURL)
		fmt.Fprintf(w, "                    in another tab, type /coffee, order in the form, click the buttons\n")
		fmt.Fprintf(w, "  Script it         curl -s %s/_standin/command -d '{\"command\":\"/coffee\",\"text\":\"5\",\"user_id\":\"U0ALICE\",\"channel_id\":\"C0LOCAL\"}'\n", s.SlackURL)
	} else {
		fmt.Fprintf(w, "  Slack             real Slack (SLACK_BOT_TOKEN set); point your app's request URLs at the endpoints above\n")
	}
	auditBanner(w, s, rel, now)
	fmt.Fprintf(w, "  Kafka             %s  (kcat -b %s -L)\n", strings.Join(s.Brokers, ","), s.Brokers[0])
	fmt.Fprintf(w, "  PostgreSQL        %s\n", s.DatabaseURL)
	fmt.Fprintf(w, "  Functions        ")
	for _, name := range slices.Sorted(maps.Keys(s.Functions)) {
		fmt.Fprintf(w, " %s=%s", name, s.Functions[name])
	}
	fmt.Fprintf(w, "\n  Logs              %s/<function>.log (JSON)\n", rel(s.LogDir))
	if s.PrometheusURL != "" {
		fmt.Fprintf(w, "  Prometheus        %s  (scrapes every function every %s with the production alert rules: %s/alerts; PROMETHEUS=0 to skip)\n",
			s.PrometheusURL, devstack.ScrapeInterval, s.PrometheusURL)
	} else {
		fmt.Fprintf(w, "  Prometheus        off (PROMETHEUS=0, or not installed: make run PROMETHEUS=1 installs Debian's as root)\n")
	}
	switch {
	case s.DataDir != "":
		fmt.Fprintf(w, "  Data              kept across restarts in %s\n", strings.Join(s.KeptData, ", "))
	case s.Postgres != nil || s.Kafka != nil:
		fmt.Fprintf(w, "  Data              temporary (COFFEE_DATA_DIR=<folder> keeps it across restarts)\n")
	}
	fmt.Fprintf(w, "  Real Slack app    deploy/slack-app-manifest.yaml; see README \"Connect a real Slack app\"\n")
	if s.DataDir != "" {
		fmt.Fprintf(w, "\nCtrl-C stops everything; the data stays in %s for the next run.\n\n", s.DataDir)
	} else {
		fmt.Fprintf(w, "\nCtrl-C stops everything and removes temporary data.\n\n")
	}
}

// wantPrometheus reads PROMETHEUS: "0" never starts the local Prometheus,
// "1" requires it, unset starts it when it is installed (starting it costs
// the stack nothing: nothing waits for it).
func wantPrometheus(env string, installed bool) (bool, error) {
	switch env {
	case "0", "false", "off":
		return false, nil
	case "1", "true", "on":
		if !installed {
			return false, devstack.ErrNoPrometheus
		}
		return true, nil
	case "":
		return installed, nil
	}
	return false, fmt.Errorf("PROMETHEUS=%q: use 1 (start it), 0 (do not) or leave it unset (start it when installed)", env)
}

// auditBanner tells how to read the audit trail of this run: with a local
// issuer, a command to paste (it prints the client's secret, generated for
// this run and valid only against this run's loopback issuer).
func auditBanner(w io.Writer, s *devstack.Stack, rel func(string) string, now time.Time) {
	base, ok := s.Functions[devstack.AuditAPIName]
	if !ok {
		return
	}
	o := s.OIDC
	switch {
	case !o.Local():
		aud := "audience " + o.Audience
		if o.Audience == "" {
			aud = "any audience"
		}
		fmt.Fprintf(w, "  Audit API         %s%s  (tokens from OIDC_ISSUER_URL %s, scope %s, %s)\n", base, devstack.AuditPath, o.IssuerURL, o.Scope, aud)
		return
	case o.AdminURL != "":
		fmt.Fprintf(w, "  Audit API         %s%s  (tokens from %s at %s)\n", base, devstack.AuditPath, o.Issuer, o.IssuerURL)
	default:
		fmt.Fprintf(w, "  Audit API         %s%s  (tokens from %s at %s; make ensure-hydra builds Ory Hydra to use instead)\n", base, devstack.AuditPath, o.Issuer, o.IssuerURL)
	}
	fmt.Fprintf(w, "  Audit client      id %s  secret %s  (generated for this run; scope %s, audience %s)\n", o.ClientID, o.ClientSecret, o.Scope, o.Audience)
	if o.AdminURL != "" {
		fmt.Fprintf(w, "  Hydra admin       %s  (more clients: %s create oauth2-client --endpoint %s --grant-type client_credentials --scope %s --audience %s)\n", o.AdminURL, rel(o.HydraBin), o.AdminURL, o.Scope, o.Audience)
	}
	fmt.Fprintf(w, "  Read the trail    %s\n", o.AuditCommand(base, now))
}

// reach says who can reach the ingress at addr, the address it is bound to.
func reach(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	switch {
	case err != nil || ip == nil:
		return "see the address"
	case ip.IsLoopback():
		return "this machine only: the local Slack stand-in's signing secret is no secret; set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET for real Slack"
	case ip.IsUnspecified():
		return "every interface, for real Slack through a tunnel or proxy"
	default:
		return "this interface"
	}
}
