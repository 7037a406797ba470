// Command deadletters lists, inspects and replays the dead-letter topic
// (coffee.deadletter): events a subscriber rejected or kept failing on, and
// raw records the quarantine function parked because they were not
// CloudEvents. See docs/runbooks/dead-letters.md.
//
//	deadletters [-brokers host:port,…] [-topic coffee.deadletter] [-timeout 30s] <command>
//
//	list [-n 50]                          the last n dead letters, one per line
//	inspect <partition>:<offset>          every header and the payload
//	replay <partition>:<offset> [--to-topic T]
//	                                      produce the original event again to its
//	                                      original topic (or T), same CloudEvent id
//
// -brokers defaults to $KAFKA_BROKERS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `usage: deadletters [-brokers host:port,…] [-topic coffee.deadletter] [-timeout 30s] <command>

commands:
  list [-n 50]                                the last n dead letters, oldest first
  inspect <partition>:<offset>                headers and payload of one dead letter
  replay <partition>:<offset> [--to-topic T]  produce the original event again

-brokers defaults to $KAFKA_BROKERS.
`

// run is main without the process: it returns the exit status (0 ok, 1
// failure, 2 usage).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deadletters", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	brokers := fs.String("brokers", getenv("KAFKA_BROKERS"), "Kafka bootstrap brokers, comma-separated")
	topic := fs.String("topic", events.TopicDeadLetter, "dead-letter topic")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	s := &Store{Brokers: kafka.Brokers(*brokers), Topic: *topic}
	if len(s.Brokers) == 0 {
		fmt.Fprintln(stderr, "deadletters: no brokers: give -brokers or set KAFKA_BROKERS")
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	cmd, rest := fs.Arg(0), fs.Args()[1:]
	err := func() error {
		switch cmd {
		case "list":
			sub := newSub("list", stderr)
			n := sub.Int("n", 50, "how many dead letters")
			if _, err := parseInterspersed(sub, rest, 0); err != nil {
				return err
			}
			if *n < 1 {
				return fmt.Errorf("%w: -n must be at least 1", errUsage)
			}
			ls, err := s.List(ctx, *n)
			if err != nil {
				return err
			}
			return WriteList(stdout, s.Topic, ls)
		case "inspect":
			pos, err := parsePosArg(newSub("inspect", stderr), rest)
			if err != nil {
				return err
			}
			l, err := s.Get(ctx, pos)
			if err != nil {
				return err
			}
			return WriteInspect(stdout, s.Topic, l)
		case "replay":
			sub := newSub("replay", stderr)
			to := sub.String("to-topic", "", "produce here instead of the original topic")
			pos, err := parsePosArg(sub, rest)
			if err != nil {
				return err
			}
			r, err := s.Replay(ctx, pos, *to)
			if err != nil {
				return err
			}
			return WriteReplayed(stdout, s.Topic, r)
		default:
			return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
		}
	}()
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 2
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "deadletters: %v\n%s", err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "deadletters %s: %v\n", cmd, err)
		return 1
	}
}

func newSub(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseInterspersed parses flags anywhere among args (replay 0:7 --to-topic
// T as well as replay --to-topic T 0:7) and wants exactly nPos positionals.
func parseInterspersed(fs *flag.FlagSet, args []string, nPos int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != nPos {
		return nil, fmt.Errorf("%w: %s takes %d argument(s), got %d (%s)", errUsage, fs.Name(), nPos, len(pos), strings.Join(pos, " "))
	}
	return pos, nil
}

func parsePosArg(fs *flag.FlagSet, args []string) (Pos, error) {
	pos, err := parseInterspersed(fs, args, 1)
	if err != nil {
		return Pos{}, err
	}
	p, err := ParsePos(pos[0])
	if err != nil {
		return Pos{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return p, nil
}
