package function

import (
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
)

func TestListenerFromFD(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	t.Run("none passed", func(t *testing.T) {
		ln, err := listenerFromFD(env(nil), 3)
		if ln != nil || err != nil {
			t.Fatalf("got %v, %v; want nil, nil", ln, err)
		}
	})
	t.Run("for another process", func(t *testing.T) {
		ln, err := listenerFromFD(env(map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "1"}), 3)
		if ln != nil || err != nil {
			t.Fatalf("got %v, %v; want nil, nil", ln, err)
		}
	})
	t.Run("two sockets", func(t *testing.T) {
		if _, err := listenerFromFD(env(map[string]string{"LISTEN_FDS": "2"}), 3); err == nil {
			t.Fatal("LISTEN_FDS=2 accepted")
		}
	})
	t.Run("serves the inherited socket", func(t *testing.T) {
		orig, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer orig.Close()
		f, err := orig.(*net.TCPListener).File() // a dup, as a child would inherit
		if err != nil {
			t.Fatal(err)
		}
		ln, err := listenerFromFD(env(map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": strconv.Itoa(os.Getpid())}), f.Fd())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if ln.Addr().String() != orig.Addr().String() {
			t.Fatalf("inherited %s, want %s", ln.Addr(), orig.Addr())
		}
		orig.Close() // only the inherited copy accepts from now on
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Fatalf("status %d, want 418 from the inherited socket", resp.StatusCode)
		}
	})
}
