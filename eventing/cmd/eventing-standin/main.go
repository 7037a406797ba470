// Command eventing-standin runs the local Knative Eventing stand-in on its
// own: it reads the manifests in -dir, consumes KAFKA_BROKERS and delivers
// events to the subscribers named by -route.
//
//	KAFKA_BROKERS=127.0.0.1:19092 eventing-standin -dir eventing \
//	    -route run-start=http://127.0.0.1:8081 \
//	    -route run-announce=http://127.0.0.1:8082
//
// A route maps a subscriber or sink ref name (or Kind/name) to a base URL.
// `make run` starts the stand-in in-process instead (eventing/cmd/devstack).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/standin"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
)

// routes is the repeated -route flag.
type routes map[string]string

func (r routes) String() string { return fmt.Sprint(map[string]string(r)) }

func (r routes) Set(v string) error {
	name, u, ok := strings.Cut(v, "=")
	if !ok || name == "" || u == "" {
		return fmt.Errorf("want name=url, got %q", v)
	}
	pu, err := url.Parse(u)
	if err != nil || !pu.IsAbs() {
		return fmt.Errorf("route %s: %q is not an absolute URL", name, u)
	}
	r[name] = u
	return nil
}

func (r routes) resolve(kind, name string) (string, error) {
	if u, ok := r[kind+"/"+name]; ok {
		return u, nil
	}
	if u, ok := r[name]; ok {
		return u, nil
	}
	return "", fmt.Errorf("no -route for %s/%s", kind, name)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eventing-standin:", err)
		os.Exit(1)
	}
}

func run() error {
	rs := routes{}
	dir := flag.String("dir", "eventing", "directory holding the Knative Eventing manifests")
	brokers := flag.String("brokers", os.Getenv("KAFKA_BROKERS"), "comma-separated Kafka brokers (default $KAFKA_BROKERS)")
	reload := flag.Duration("reload", time.Second, "how often to poll -dir for changes")
	fire := flag.String("fire-ping", "", "fire this PingSource once at start (for trying a function by hand)")
	flag.Var(rs, "route", "subscriber `name=url` (or Kind/name=url); repeatable")
	flag.Parse()

	var level slog.Level
	if v := os.Getenv("LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("LOG_LEVEL: %w", err)
		}
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	bs := kafka.Brokers(*brokers)
	if len(bs) == 0 {
		return errors.New("no Kafka brokers: set KAFKA_BROKERS or -brokers (make run starts an embedded cluster and the stand-in for you)")
	}
	si, err := standin.New(standin.Config{
		Dir: *dir, Brokers: bs, Resolve: rs.resolve, Logger: log, ReloadInterval: *reload,
	})
	if err != nil {
		return err
	}
	// Say up front which subscribers nothing routes to (the stand-in
	// itself warns about manifests that lead nowhere).
	rts, _ := si.Manifests().Routes()
	for _, r := range rts {
		if r.Subscriber.Ref == nil {
			continue
		}
		if _, err := rs.resolve(r.Subscriber.Ref.Kind, r.Subscriber.Ref.Name); err != nil {
			log.Warn("subscriber has no -route; its events will be retried, then dead-lettered",
				slog.String("trigger", r.Name), slog.String("subscriber", r.Subscriber.String()))
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- si.Run(ctx) }()
	select {
	case <-si.Ready():
		log.Info("eventing stand-in ready", slog.String("dir", *dir), slog.Any("brokers", bs))
		if *fire != "" {
			if err := si.FirePing(ctx, *fire); err != nil {
				log.Error("fire-ping", slog.String("error", err.Error()))
			}
		}
	case err := <-errc:
		return err
	}
	return <-errc
}
