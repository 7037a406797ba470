package devstack

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestSweepStaleRemovesFoldersOfDeadOwners(t *testing.T) {
	tmp := t.TempDir()
	old := time.Now().Add(-time.Hour)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, pid int, mtime time.Time) string {
		d := filepath.Join(tmp, tempPrefix+name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if pid > 0 {
			if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(strconv.Itoa(pid)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(d, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return d
	}
	gone := mk("gone", dead.Process.Pid, old)
	orphan := mk("orphan", 0, old)
	mine := mk("mine", os.Getpid(), old)
	fresh := mk("fresh", 0, time.Now())
	sweepStale(tmp, time.Now())
	for d, want := range map[string]bool{gone: false, orphan: false, mine: true, fresh: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}
