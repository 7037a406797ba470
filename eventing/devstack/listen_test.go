package devstack

import (
	"net"
	"strconv"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/config"
)

// creds are real Slack credentials: the ingress then faces the network.
var creds = map[string]string{"SLACK_BOT_TOKEN": "xoxb-real", "SLACK_SIGNING_SECRET": "real-secret"}

func loadConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func with(base map[string]string, k, v string) map[string]string {
	m := map[string]string{k: v}
	for bk, bv := range base {
		m[bk] = bv
	}
	return m
}

func TestIngressAddr(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		randomPorts bool
		want        string
	}{
		{"local stand-in: loopback only", nil, false, "127.0.0.1:8080"},
		{"local stand-in, PORT", map[string]string{"PORT": "9090"}, false, "127.0.0.1:9090"},
		{"real Slack: every interface", creds, false, ":8080"},
		{"real Slack, PORT", with(creds, "PORT", "9090"), false, ":9090"},
		{"tests, local: loopback, free port", nil, true, "127.0.0.1:0"},
		{"tests, real Slack: loopback, free port", creds, true, "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ingressAddr(loadConfig(t, tt.env), tt.randomPorts); got != tt.want {
				t.Errorf("ingressAddr = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSlackAddr(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"make run", Options{}, "127.0.0.1:8091"},
		{"tests", Options{RandomPorts: true}, "127.0.0.1:0"},
		{"given", Options{SlackAddr: "127.0.0.1:9191", RandomPorts: true}, "127.0.0.1:9191"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slackAddr(tt.o)
			if got != tt.want {
				t.Errorf("slackAddr = %q, want %q", got, tt.want)
			}
			if host, _, _ := net.SplitHostPort(got); !net.ParseIP(host).IsLoopback() {
				t.Errorf("the Slack stand-in listens on %q, not loopback", got)
			}
		})
	}
}

// TestFunctionListeners binds the sockets as make run does (fixed PORT,
// no random ports) and checks where they really listen: without Slack
// credentials nothing is reachable from another machine; with them only
// the ingress is.
func TestFunctionListeners(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		ingressGlobal bool
	}{
		{"local stand-in", nil, false},
		{"real Slack", creds, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			cfg := loadConfig(t, with(tt.env, "PORT", strconv.Itoa(port)))
			s := &Stack{Functions: map[string]string{}, procs: map[string]*proc{}}
			defer s.Close()
			names := []string{"run-start", IngressName, "runner-notify"}
			if err := s.listenFunctions(names, Options{LogDir: t.TempDir()}, cfg); err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				addr := s.procs[n].addr
				global := n == IngressName && tt.ingressGlobal
				switch {
				case global && !addr.IP.IsUnspecified():
					t.Errorf("%s listens on %s, want every interface", n, addr)
				case !global && !addr.IP.IsLoopback():
					t.Errorf("%s listens on %s, want loopback only", n, addr)
				}
			}
			if got := s.procs[IngressName].addr.Port; got != port {
				t.Errorf("ingress on port %d, want PORT %d", got, port)
			}
			if s.IngressAddr != s.procs[IngressName].addr.String() {
				t.Errorf("IngressAddr = %q, bound %s", s.IngressAddr, s.procs[IngressName].addr)
			}
			if want := "http://127.0.0.1:" + strconv.Itoa(port); s.IngressURL != want {
				t.Errorf("IngressURL = %q, want %q", s.IngressURL, want)
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
