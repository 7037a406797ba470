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
	mk := func(name string, pid int, mtime time.Time) string {
		d := filepath.Join(tmp, tempPrefix+name)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if pid > 0 {
			pidFile := filepath.Join(d, "data", "postmaster.pid")
			if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)+"\n/some/data\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(d, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return d
	}
	deadServer := mk("dead", dead.Process.Pid, old)
	neverStarted := mk("nopid", 0, old)
	live := mk("live", os.Getpid(), old)
	starting := mk("starting", 0, time.Now())
	other := filepath.Join(tmp, "someone-else")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}

	sweepStale(tmp, time.Now())

	for d, want := range map[string]bool{deadServer: false, neverStarted: false, live: true, starting: true, other: true} {
		_, err := os.Stat(d)
		if exists := err == nil; exists != want {
			t.Errorf("%s exists=%v, want %v", filepath.Base(d), exists, want)
		}
	}
}
