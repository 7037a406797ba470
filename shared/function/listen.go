package function

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// listenFDStart is the first inherited descriptor in systemd's socket
// activation protocol (SD_LISTEN_FDS_START).
const listenFDStart = 3

// inheritedListener returns the listening socket a supervisor passed in
// (systemd socket activation: LISTEN_FDS=1, and LISTEN_PID, when set, names
// this process), or nil when none was passed. The local stack (devstack)
// uses it: it binds every function's port itself and hands the socket over,
// so no other process can take the port between choosing and binding it,
// and a restarted function serves the same socket (requests queue in its
// backlog meanwhile, as Knative's activator would hold them).
func inheritedListener(getenv func(string) string) (net.Listener, error) {
	return listenerFromFD(getenv, listenFDStart)
}

func listenerFromFD(getenv func(string) string, fd uintptr) (net.Listener, error) {
	fds := getenv("LISTEN_FDS")
	if fds == "" {
		return nil, nil
	}
	if pid := getenv("LISTEN_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return nil, nil // meant for another process (our parent)
	}
	if fds != "1" {
		return nil, fmt.Errorf("function: LISTEN_FDS=%q: exactly one inherited socket is supported", fds)
	}
	f := os.NewFile(fd, "listen-fd")
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("function: inherited socket: %w", err)
	}
	// FileListener dup'ed the descriptor; ours is no longer needed.
	f.Close()
	return ln, nil
}
