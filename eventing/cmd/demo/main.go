// Command demo is `make demo`: it starts the stack `make run` starts (on
// free ports, so it can run next to `make run`) and plays a whole coffee run
// through the local Slack stand-in, printing the conversation as it
// happens: four people order, one volunteers, the initiator closes the run,
// the runner gets the DM and marks it complete, and the history shows it.
package main

import (
	"context"
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
	step(fmt.Sprintf("Ready. Watch the channel in a browser too: %s", s.SlackURL))

	p := devstack.NewPlayer(s, "C0LOCAL")
	alice, bob, carol, dave := devstack.User{ID: "U0ALICE", Name: "alice"}, devstack.User{ID: "U0BOB", Name: "bob"},
		devstack.User{ID: "U0CAROL", Name: "carol"}, devstack.User{ID: "U0DAVE", Name: "dave"}

	step("alice types /coffee 10")
	if _, err := p.Command(ctx, alice, "/coffee", "10"); err != nil {
		return err
	}
	msg, _, err := p.RunMessage(ctx)
	if err != nil {
		return err
	}
	step("alice orders in the form that opened for her: Large Latte, oat milk")
	if _, err := p.Submit(ctx, alice, "latte", "large", "oat milk"); err != nil {
		return err
	}
	step("bob clicks Add my order: Small Mocha, with a customization that tries to ping everyone")
	if _, err := p.Order(ctx, bob, "mocha", "small", "extra hot <!channel> *please*"); err != nil {
		return err
	}
	step("carol orders a Medium Cappuccino, then changes her mind to an Americano")
	if _, err := p.Order(ctx, carol, "cappuccino", "medium", ""); err != nil {
		return err
	}
	if _, err := p.Order(ctx, carol, "americano", "medium", ""); err != nil {
		return err
	}
	if _, err := p.WaitRunMessage(ctx, "Orders (3)"); err != nil {
		return err
	}
	step("dave clicks I'll go")
	if err := p.Click(ctx, dave, msg, blocks.ActionVolunteer); err != nil {
		return err
	}
	if _, err := p.WaitThread(ctx, msg.TS, "volunteer"); err != nil {
		return err
	}
	step("alice clicks Close now: the runner is picked and gets the combined order by DM")
	if err := p.Click(ctx, alice, msg, blocks.ActionCloseNow); err != nil {
		return err
	}
	dm, err := p.WaitDM(ctx, dave, blocks.ActionComplete)
	if err != nil {
		return err
	}
	step("dave fetches the coffee and clicks Mark complete in his DM")
	if err := p.Click(ctx, dave, dm, blocks.ActionComplete); err != nil {
		return err
	}
	if _, err := p.WaitThread(ctx, msg.TS, "U0BOB"); err != nil {
		return err
	}
	step("alice asks for the history: /coffee-history")
	ans, err := p.Command(ctx, alice, "/coffee-history", "")
	if err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond) // let the transcript catch up before the summary
	step("History answer: " + ans)
	step("Done. That was one whole coffee run. Stopping the stack.")
	return nil
}

func step(s string) { fmt.Printf("\n▶ %s\n", s) }
