package devstack

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// dataDir is a COFFEE_DATA_DIR that does not exist yet. Not under
// t.TempDir: its parent is 0700, which the postgres OS user (the server's
// user when tests run as root) cannot pass.
func dataDir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "coffeebuddy-datadir-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil { // passable, as /tmp is
		t.Fatal(err)
	}
	return filepath.Join(base, "coffee")
}

// startStorage starts what make run starts before the functions, with
// KeepData as make run sets it.
func startStorage(ctx context.Context, t *testing.T, env map[string]string) (*Stack, error) {
	t.Helper()
	s := &Stack{log: slog.New(slog.DiscardHandler), Functions: map[string]string{}, procs: map[string]*proc{}}
	o := Options{KeepData: true, RandomPorts: true, TempDir: t.TempDir(), LogDir: t.TempDir()}
	err := s.startStorage(ctx, o, loadConfig(t, env))
	if err != nil {
		s.Close()
	}
	return s, err
}

// TestDataDirKeepsDataAcrossRuns is make run twice with COFFEE_DATA_DIR: the
// second run finds the first one's row and Kafka record (migrations run
// again on the kept database), and a run while another uses the folder is
// refused.
func TestDataDirKeepsDataAcrossRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := dataDir(t)
	env := map[string]string{"COFFEE_DATA_DIR": dir}

	s, err := startStorage(ctx, t, env)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("COFFEE_DATA_DIR created with %v (err %v), want 0700", fi.Mode().Perm(), err)
	}
	want := []string{filepath.Join(dir, "postgres"), filepath.Join(dir, "kafka")}
	if s.DataDir != dir || !slices.Equal(s.KeptData, want) {
		t.Fatalf("DataDir %q KeptData %q, want %q %q", s.DataDir, s.KeptData, dir, want)
	}
	sql(ctx, t, s.DatabaseURL, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('first run')`)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: events.TopicSlackEvents, Value: []byte("first run")}).FirstErr()
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}

	// A second stack on the same folder is refused while this one runs.
	if other, err := startStorage(ctx, t, env); !errors.Is(err, ErrDataDirInUse) {
		if err == nil {
			other.Close()
		}
		t.Fatalf("second stack on a COFFEE_DATA_DIR in use: %v, want ErrDataDirInUse", err)
	} else {
		t.Logf("refused: %v", err)
	}

	s.Close()
	closed = true
	for _, p := range append(want, filepath.Join(dir, "postgres", "PG_VERSION")) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s gone after Close: %v", p, err)
		}
	}

	s2, err := startStorage(ctx, t, env)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	defer s2.Close()
	if got := sqlValue(ctx, t, s2.DatabaseURL, `SELECT v FROM kept`); got != "first run" {
		t.Errorf("row on the second run = %q", got)
	}
	if got := sqlValue(ctx, t, s2.DatabaseURL, `SELECT count(*)::text FROM schema_migrations WHERE NOT dirty`); got != "1" {
		t.Errorf("schema_migrations after migrating a kept database: %s clean rows, want 1", got)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(s2.Brokers...), kgo.ConsumeTopics(events.TopicSlackEvents),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) == 0 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if !slices.Equal(got, []string{"first run"}) {
		t.Errorf("Kafka records on the second run = %q, want [first run]", got)
	}
}

// TestDataDirOnlyWhenUsed: COFFEE_DATA_DIR is make run's (KeepData) and only
// for what is embedded; otherwise the folder is not even created.
func TestDataDirOnlyWhenUsed(t *testing.T) {
	tests := []struct {
		name     string
		keepData bool
		env      map[string]string
		want     bool
	}{
		{"make run", true, nil, true},
		{"demo, benchmarks, chaos", false, nil, false},
		{"external database: Kafka still kept", true, map[string]string{"DATABASE_URL": "postgres://x/y"}, true},
		{"external Kafka: PostgreSQL still kept", true, map[string]string{"KAFKA_BROKERS": "x:9092"}, true},
		{"both external: nothing to keep", true, map[string]string{"DATABASE_URL": "postgres://x/y", "KAFKA_BROKERS": "x:9092"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "coffee")
			s := &Stack{log: slog.New(slog.DiscardHandler)}
			defer s.Close()
			if err := s.openDataDir(Options{KeepData: tt.keepData}, loadConfig(t, with(tt.env, "COFFEE_DATA_DIR", dir))); err != nil {
				t.Fatal(err)
			}
			_, statErr := os.Stat(dir)
			if got := s.DataDir != ""; got != tt.want || (statErr == nil) != tt.want {
				t.Errorf("DataDir = %q, folder exists = %v; want in use = %v", s.DataDir, statErr == nil, tt.want)
			}
		})
	}
}

func sql(ctx context.Context, t *testing.T, url, stmt string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatal(err)
	}
}

func sqlValue(ctx context.Context, t *testing.T, url, query string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, query).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
