package chaos_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/chaos"
	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
)

// TestChaosShort is the shortened fault-injection suite make test runs:
// every fault phase, fewer runs and shorter storms than `make chaos`. It
// starts its own PostgreSQL and Kafka (DATABASE_URL and KAFKA_BROKERS are
// ignored: the suite stops and restarts them).
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos suite drives the whole stack for minutes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	env := map[string]string{"COFFEE_REMIND_AFTER": "1h", "LOG_LEVEL": "info"}
	st, err := devstack.Start(ctx, devstack.Options{
		Root:        "../..",
		Getenv:      func(k string) string { return env[k] },
		BinDir:      os.Getenv("DEVSTACK_BIN"),
		RandomPorts: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("progress:\n%s", progress.String())
			for _, n := range []string{"slack-ingress", "order-place", "order-confirm", "runner-notify", "completion-notify", "run-close", "run-complete"} {
				b, _ := os.ReadFile(st.LogDir + "/" + n + ".log")
				if len(b) > 20000 {
					b = b[len(b)-20000:]
				}
				t.Logf("--- %s.log (tail) ---\n%s", n, b)
			}
		}
		st.Close()
	})
	cfg := chaos.Short()
	cfg.Progress = &progress
	rep, err := chaos.Run(ctx, st, cfg)
	if rep != nil {
		var out strings.Builder
		rep.Print(&out)
		t.Log(out.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	phases := len(chaos.Phases())
	if rep.Runs != phases*cfg.RunsPerPhase || rep.OrdersAccepted != rep.Runs*cfg.OrdersPerRun {
		t.Errorf("drove %d runs and %d accepted orders, want %d and %d", rep.Runs, rep.OrdersAccepted, phases*cfg.RunsPerPhase, phases*cfg.RunsPerPhase*cfg.OrdersPerRun)
	}
	for _, v := range rep.Violations {
		t.Error(v)
	}
}
