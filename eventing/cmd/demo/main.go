// Command demo is `make demo`: it starts the stack `make run` starts (on
// free ports, so it can run next to `make run`) and plays a whole coffee run
// through the local Slack stand-in, printing the conversation as it
// happens: four people order, one volunteers, the initiator closes the run,
// the runner gets the DM and marks it complete, and the history shows it.
// The stand-in's web page shows it too, and stays up afterwards (until
// Ctrl-C) to be looked at and played on; -exit stops at the end instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	exit := flag.Bool("exit", false, "stop the stack when the run is done instead of leaving the page up")
	pace := flag.Duration("pace", time.Second, "pause between steps, so the page can be watched as it happens")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	step("Starting CoffeeBuddy's local stack (PostgreSQL, Kafka, functions, eventing, Slack stand-in)…")
	s, err := devstack.Start(ctx, devstack.Options{
		Root: root, Log: slog.New(slog.DiscardHandler), BinDir: os.Getenv("DEVSTACK_BIN"),
		RandomPorts: true, Transcript: os.Stdout,
	})
	if err != nil {
		return err
	}
	defer s.Close()
	watch := s.SlackURL + "/#as=watch"
	step(fmt.Sprintf("Ready. Watch it in a browser: %s", watch))

	p := devstack.NewPlayer(s, "C0LOCAL")
	alice, bob, carol, dave := devstack.User{ID: "U0ALICE", Name: "alice"}, devstack.User{ID: "U0BOB", Name: "bob"},
		devstack.User{ID: "U0CAROL", Name: "carol"}, devstack.User{ID: "U0DAVE", Name: "dave"}

	if err := paced(ctx, *pace, "alice types /coffee 10"); err != nil {
		return err
	}
	if _, err := p.Command(ctx, alice, "/coffee", "10"); err != nil {
		return err
	}
	msg, _, err := p.RunMessage(ctx)
	if err != nil {
		return err
	}
	if err := paced(ctx, *pace, "alice orders in the form that opened for her: Large Latte, oat milk"); err != nil {
		return err
	}
	if _, err := p.Submit(ctx, alice, "latte", "large", "oat milk"); err != nil {
		return err
	}
	if err := paced(ctx, *pace, "bob clicks Add my order: Small Mocha, with a customization that tries to ping everyone"); err != nil {
		return err
	}
	if _, err := p.Order(ctx, bob, "mocha", "small", "extra hot <!channel> *please*"); err != nil {
		return err
	}
	if err := paced(ctx, *pace, "carol orders a Medium Cappuccino, then changes her mind to an Americano"); err != nil {
		return err
	}
	if _, err := p.Order(ctx, carol, "cappuccino", "medium", ""); err != nil {
		return err
	}
	if _, err := p.Order(ctx, carol, "americano", "medium", ""); err != nil {
		return err
	}
	if _, err := p.WaitRunMessage(ctx, "Orders (3)"); err != nil {
		return err
	}
	if err := paced(ctx, *pace, "dave clicks I'll go"); err != nil {
		return err
	}
	if err := p.Click(ctx, dave, msg, blocks.ActionVolunteer); err != nil {
		return err
	}
	if _, err := p.WaitRunMessage(ctx, "volunteered to go"); err != nil { // the thread names the volunteer at close (ADR 0008)
		return err
	}
	if err := paced(ctx, *pace, "alice clicks Close now: the runner is picked and gets the combined order by DM"); err != nil {
		return err
	}
	if err := p.Click(ctx, alice, msg, blocks.ActionCloseNow); err != nil {
		return err
	}
	dm, err := p.WaitDM(ctx, dave, blocks.ActionComplete)
	if err != nil {
		return err
	}
	if err := paced(ctx, *pace, "dave fetches the coffee and clicks Mark complete in his DM"); err != nil {
		return err
	}
	if err := p.Click(ctx, dave, dm, blocks.ActionComplete); err != nil {
		return err
	}
	if _, err := p.WaitThread(ctx, msg.TS, "U0BOB"); err != nil {
		return err
	}
	if err := paced(ctx, *pace, "alice asks for the history: /coffee-history"); err != nil {
		return err
	}
	ans, err := p.Command(ctx, alice, "/coffee-history", "")
	if err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond) // let the transcript catch up before the summary
	step("History answer: " + ans)
	if *exit {
		step("Done. That was one whole coffee run. Stopping the stack.")
		return nil
	}
	step(fmt.Sprintf("Done. That was one whole coffee run. The stack stays up: look around, or play more as alice, bob, carol or dave, at\n  %s\nCtrl-C stops it.", s.SlackURL+"/"))
	<-ctx.Done()
	step("Stopping the stack.")
	return nil
}

func step(s string) { fmt.Printf("\n▶ %s\n", s) }

// paced prints a step after a pause, so a person watching the page sees
// each one happen (the demo's own waits are on the bot's answers, never
// on time).
func paced(ctx context.Context, pace time.Duration, s string) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(pace):
	}
	step(s)
	return nil
}
