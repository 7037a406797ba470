package pgcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestSweepStaleRemovesOnlyDeadClusters(t *testing.T) {
	tmp := t.TempDir()
	old := time.Now().Add(-time.Hour)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	// server and owner are the pids in data/postmaster.pid and owner.pid; 0
	// means no such file.
	mk := func(name string, server, owner int, mtime time.Time) string {
		d := filepath.Join(tmp, tempPrefix+name)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if server > 0 {
			pidFile := filepath.Join(d, "data", "postmaster.pid")
			if err := os.WriteFile(pidFile, []byte(strconv.Itoa(server)+"\n/some/data\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if owner > 0 {
			if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(strconv.Itoa(owner)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(d, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return d
	}
	deadServer := mk("dead", dead.Process.Pid, 0, old)
	neverStarted := mk("nopid", 0, 0, old)
	live := mk("live", os.Getpid(), 0, old)
	starting := mk("starting", 0, 0, time.Now())
	// A kept cluster's temporary dir has no data, and a stopped server
	// (fault injection) no postmaster.pid: the live owner keeps them.
	ownerAlive := mk("owner-alive", 0, os.Getpid(), old)
	ownerDead := mk("owner-dead", dead.Process.Pid, dead.Process.Pid, old)
	other := filepath.Join(tmp, "someone-else")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}

	sweepStale(tmp, time.Now())

	for d, want := range map[string]bool{deadServer: false, neverStarted: false, live: true, starting: true, other: true,
		ownerAlive: true, ownerDead: false} {
		_, err := os.Stat(d)
		if exists := err == nil; exists != want {
			t.Errorf("%s exists=%v, want %v", filepath.Base(d), exists, want)
		}
	}
}
