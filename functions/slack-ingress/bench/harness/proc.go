package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process the harness started and must stop.
type proc struct {
	name string
	cmd  *exec.Cmd
	port int
	log  string // stdout+stderr file
	// pprof is the address of the bench overlay's pprof listener, if any.
	pprof string
	done  chan struct{}
	err   error
}

// children tracks every process still running so cleanup can stop them.
var children struct {
	sync.Mutex
	m map[*proc]struct{}
}

func track(p *proc) {
	children.Lock()
	defer children.Unlock()
	if children.m == nil {
		children.m = map[*proc]struct{}{}
	}
	children.m[p] = struct{}{}
}

func untrack(p *proc) {
	children.Lock()
	defer children.Unlock()
	delete(children.m, p)
}

// stopAll stops every tracked child; used on exit and on signals.
func stopAll() {
	children.Lock()
	ps := make([]*proc, 0, len(children.m))
	for p := range children.m {
		ps = append(ps, p)
	}
	children.Unlock()
	for _, p := range ps {
		p.stop()
	}
}

// start launches bin with args and exactly env (plus PATH and HOME), its
// output going to logPath. It returns once the process exists.
func start(name, dir, logPath string, port int, env []string, bin string, args ...string) (*proc, error) {
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Stdout, cmd.Stderr = out, out
	// Die with the harness even if it is killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, port: port, log: logPath, done: make(chan struct{})}
	track(p)
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	defer untrack(p)
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitReady polls url until it answers 200; it returns the time from since.
func (p *proc) waitReady(ctx context.Context, url string, since time.Time, limit time.Duration) (time.Duration, error) {
	cli := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	deadline := since.Add(limit)
	for {
		if p.exited() {
			return 0, fmt.Errorf("%s exited before it was ready (%v); log: %s", p.name, p.err, tail(p.log, 2000))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := cli.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(since), nil
			}
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s not ready after %s (last: %v); log: %s", p.name, limit, err, tail(p.log, 2000))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rss returns VmRSS and VmHWM in KiB from /proc/<pid>/status.
func rss(pid int) (rssKiB, hwmKiB int, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			rssKiB = kib(v)
		case "VmHWM":
			hwmKiB = kib(v)
		}
	}
	if rssKiB == 0 {
		return 0, 0, errors.New("no VmRSS")
	}
	return rssKiB, hwmKiB, sc.Err()
}

func kib(v string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
	return n
}

// cpuTime is user+system CPU of pid (all threads) from /proc/<pid>/stat.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}
