package pgcluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// keptDataDir is a folder as devstack makes for COFFEE_DATA_DIR, and the
// cluster's DataDir inside it. Not t.TempDir: its parent is 0700, which the
// postgres OS user (the server's user when tests run as root) cannot pass.
func keptDataDir(t *testing.T) (dir, data string) {
	t.Helper()
	base, err := os.MkdirTemp("", "coffeebuddy-pgkeep-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil { // passable, as /tmp is
		t.Fatal(err)
	}
	dir = filepath.Join(base, "coffee")
	if err := MkdirPrivate(dir); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, "postgres")
}

// TestDataDirKeepsDataAcrossRuns is make run with COFFEE_DATA_DIR: a
// second run on the same data directory finds the first run's rows, also
// after the first run was killed (its postmaster.pid left behind, its PID
// possibly reused), and a run while another one uses the directory is
// refused.
func TestDataDirKeepsDataAcrossRuns(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, data := keptDataDir(t)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("MkdirPrivate: mode %v (err %v), want 0700", fi.Mode().Perm(), err)
	}

	first, err := Start(ctx, Options{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Stop() })
	if first.DataDir() != data {
		t.Errorf("DataDir() = %q, want %q", first.DataDir(), data)
	}
	if strings.HasPrefix(data, first.Dir()) {
		t.Errorf("kept data %s is inside the temporary dir %s", data, first.Dir())
	}
	exec1(ctx, t, first.URL(), `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('from the first run')`)
	if got := query(ctx, t, first.URL(), `SELECT current_setting('fsync')`); got != "on" {
		t.Errorf("fsync = %s on a kept cluster, want on", got)
	}

	// The directory is in use: a second cluster on it is refused, at once.
	began := time.Now()
	if c, err := Start(ctx, Options{DataDir: data}); !errors.Is(err, ErrInUse) {
		if err == nil {
			c.Stop()
		}
		t.Fatalf("second Start on a data directory in use = %v, want ErrInUse", err)
	} else {
		t.Logf("refused in %s: %v", time.Since(began).Round(time.Millisecond), err)
	}

	// The run is killed: no shutdown, postmaster.pid stays behind.
	first.mu.Lock()
	_ = first.srv.cmd.Process.Kill()
	<-first.srv.exited
	first.srv = nil
	first.mu.Unlock()
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err != nil {
		t.Fatalf("no stale postmaster.pid after the kill: %v", err)
	}

	second, err := Start(ctx, Options{DataDir: data})
	if err != nil {
		t.Fatalf("Start after a killed run: %v", err)
	}
	if got := query(ctx, t, second.URL(), `SELECT v FROM kept`); got != "from the first run" {
		t.Errorf("row after a killed run = %q", got)
	}
	exec1(ctx, t, second.URL(), `INSERT INTO kept VALUES ('from the second run')`)
	tmp := second.Dir()
	if err := second.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary dir %s still there after Stop (%v)", tmp, err)
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		t.Fatalf("kept data gone after Stop: %v", err)
	}

	// A postmaster.pid whose PID now belongs to another, live process is
	// stale too (PostgreSQL alone would refuse to start on it).
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	pidFile := filepath.Join(data, "postmaster.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(other.Process.Pid)+"\n"+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	third, err := Start(ctx, Options{DataDir: data})
	if err != nil {
		t.Fatalf("Start with a reused PID in postmaster.pid: %v", err)
	}
	defer third.Stop()
	if got := query(ctx, t, third.URL(), `SELECT string_agg(v, ', ' ORDER BY v) FROM kept`); got != "from the first run, from the second run" {
		t.Errorf("rows on the third run = %q", got)
	}
	if pid, _ := readPid(pidFile); pid == other.Process.Pid {
		t.Error("postmaster.pid still names the other process")
	}
}

func TestDataDirRefusesForeignFiles(t *testing.T) {
	t.Parallel()
	_, data := keptDataDir(t)
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	precious := filepath.Join(data, "notes.txt")
	if err := os.WriteFile(precious, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Start(context.Background(), Options{DataDir: data})
	if err == nil {
		c.Stop()
		t.Fatal("Start initialised a cluster over a folder holding other files")
	}
	if !strings.Contains(err.Error(), "no PG_VERSION") {
		t.Errorf("error %q does not say why", err)
	}
	if b, err := os.ReadFile(precious); err != nil || string(b) != "mine" {
		t.Errorf("the folder's file was touched: %q, %v", b, err)
	}
}

func TestMkdirPrivateLeavesExistingAlone(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MkdirPrivate(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o755 {
		t.Errorf("existing dir's mode changed to %v", fi.Mode().Perm())
	}
	nested := filepath.Join(dir, "a", "b")
	if err := MkdirPrivate(nested); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{filepath.Join(dir, "a"): 0o755, nested: 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (err %v), want %v", path, fi.Mode().Perm(), err, want)
		}
	}
	if os.Geteuid() == 0 {
		fi, _ := os.Stat(nested)
		_, owner, err := credential()
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; int(uid) != owner.uid {
			t.Errorf("as root, %s is owned by uid %d, want the postgres user's %d", nested, uid, owner.uid)
		}
	}
}

func exec1(ctx context.Context, t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

func query(ctx context.Context, t *testing.T, url, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, sql).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// As root the server runs as the postgres OS user: a DataDir it cannot
// reach is refused up front, saying why, not deep in initdb's log.
func TestDataDirUnreachableAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the server to the postgres OS user")
	}
	t.Parallel()
	data := filepath.Join(t.TempDir(), "postgres") // t.TempDir's parent is root's, 0700
	c, err := Start(context.Background(), Options{DataDir: data})
	if err == nil {
		c.Stop()
		t.Fatal("Start on an unreachable DataDir succeeded")
	}
	t.Logf("refused: %v", err)
	if !strings.Contains(err.Error(), "postgres OS user") || !strings.Contains(err.Error(), filepath.Dir(data)) {
		t.Errorf("error %q does not say who cannot reach what", err)
	}
}
