// Command chaos is the fault-injection suite (`make chaos`; issue 4, item
// 7). It starts the local stack on free ports with its own PostgreSQL and
// Kafka, plays coffee runs through it while injecting one fault per phase
// (Kafka restart, PostgreSQL restart, killed functions, Slack 429 and 500
// storms, triple delivery), then prints what it drove and what it found in
// the database and in the Slack stand-in's record. It exits non-zero when
// any order was lost or anything was done twice.
//
//	DEVSTACK_BIN=.tmp/bin chaos [-short] [-phases kafka-restart,slack-429]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/coffeebuddy/coffeebuddy/eventing/chaos"
	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run() error {
	short := flag.Bool("short", false, "the shortened form make test runs")
	phases := flag.String("phases", "", "comma-separated phases to run (default all)")
	flag.Parse()
	cfg := chaos.Full()
	if *short {
		cfg = chaos.Short()
	}
	if *phases != "" {
		cfg.Phases = strings.Split(*phases, ",")
	}
	cfg.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "starting the local stack (its own PostgreSQL and Kafka, every function, eventing, Slack stand-in)")
	st, err := devstack.Start(ctx, devstack.Options{
		Root: root, Log: slog.New(slog.DiscardHandler), BinDir: os.Getenv("DEVSTACK_BIN"), RandomPorts: true,
		// Reminders are not part of this journey: no run waits that long.
		Getenv: func(k string) string {
			if k == "COFFEE_REMIND_AFTER" {
				return "1h"
			}
			return os.Getenv(k)
		},
	})
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(os.Stderr, "stack up; function logs in %s\n", st.LogDir)
	rep, err := chaos.Run(ctx, st, cfg)
	if rep != nil {
		rep.Print(os.Stdout)
	}
	if err != nil {
		return err
	}
	if len(rep.Violations) > 0 {
		return fmt.Errorf("%d violations", len(rep.Violations))
	}
	return nil
}
