package pgcluster_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffeebuddy/coffeebuddy/shared/logbuf"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgcluster"
)

// This package tests the cluster itself, so it starts its own servers rather
// than going through pgtest (which is built on it).

func TestStartConnectStop(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var logs logbuf.Buffer
	c, err := pgcluster.Start(ctx, pgcluster.Options{LogWriter: &logs})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop()
		}
	})

	if !strings.HasPrefix(c.URL(), "postgres://postgres@127.0.0.1:") || !strings.HasSuffix(c.URL(), "/postgres?sslmode=disable") {
		t.Errorf("URL() = %q", c.URL())
	}
	if got, want := c.URLFor("coffee"), "postgres://postgres@127.0.0.1:"+strconv.Itoa(c.Port())+"/coffee?sslmode=disable"; got != want {
		t.Errorf("URLFor = %q, want %q", got, want)
	}

	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	var (
		user   string
		fsync  string
		maxCon int
	)
	if err := conn.QueryRow(ctx, `SELECT current_user, current_setting('fsync'), current_setting('max_connections')::int`).Scan(&user, &fsync, &maxCon); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE coffee`); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)
	if user != "postgres" || fsync != "off" || maxCon != 300 {
		t.Errorf("user %q fsync %q max_connections %d; want postgres off 300", user, fsync, maxCon)
	}
	conn2, err := pgx.Connect(ctx, c.URLFor("coffee"))
	if err != nil {
		t.Fatalf("connect to URLFor(coffee): %v", err)
	}
	_ = conn2.Close(ctx)

	dir := c.Dir()
	if _, err := os.Stat(dir + "/postgres.log"); err != nil {
		t.Errorf("server log file: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped = true
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster dir %s still there after Stop (stat err %v)", dir, err)
	}
	if !strings.Contains(logs.String(), "database system is ready to accept connections") {
		t.Errorf("LogWriter did not receive the server log; got:\n%s", logs.String())
	}
	// The server is gone: nothing accepts on its port any more.
	if conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port())), time.Second); err == nil {
		conn.Close()
		t.Errorf("port %d still accepts connections after Stop", c.Port())
	}
}

func TestFixedPort(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	c, err := pgcluster.Start(ctx, pgcluster.Options{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if c.Port() != port || !strings.Contains(c.URL(), ":"+strconv.Itoa(port)+"/") {
		t.Errorf("Port() = %d, URL %q; want port %d", c.Port(), c.URL(), port)
	}

	// A second cluster on the same port fails fast with the server's log.
	_, err = pgcluster.Start(ctx, pgcluster.Options{Port: port, StartTimeout: 20 * time.Second})
	if err == nil {
		t.Fatal("second cluster on a taken port started")
	}
	t.Logf("second cluster on port %d: %v", port, err)
	if !strings.Contains(err.Error(), "pgcluster:") {
		t.Errorf("error %q lacks the pgcluster prefix", err)
	}
}

func TestMissingBinaries(t *testing.T) {
	t.Parallel()
	_, err := pgcluster.Start(context.Background(), pgcluster.Options{BinDir: t.TempDir()})
	if err == nil {
		t.Fatal("Start with no binaries succeeded")
	}
	if !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("error %q does not say how to install PostgreSQL", err)
	}
}
