// Package slackstandin is a local stand-in for the Slack Web API that records
// every call.
//
// It serves two purposes:
//
//   - In tests it is the fake at the Slack HTTP boundary (the only fake the
//     project allows). It speaks Slack's real wire formats, so the code under
//     test uses an ordinary Slack client (slack-go) pointed at APIURL().
//   - In `make run` without Slack credentials it is a local Slack: it keeps
//     channels, threads, DMs, ephemeral messages and modals, writes a
//     human-readable transcript, serves a web page at "/" where a person
//     plays users (web.go), and lets a script play them too (slash
//     commands and interactions, signed exactly like Slack signs them).
//
// It refuses what Slack refuses, with Slack's documented error codes:
// Block Kit limits (invalid_blocks with response_metadata.messages naming
// each problem, see limits.go), response_url lifetimes (30 minutes, 5 uses:
// expired_url, see responseurl.go) and conversation membership
// (not_in_channel, user_not_in_channel, channel_not_found, is_archived,
// is_inactive, see conversations.go).
//
// Membership is lenient by default. A channel the stand-in was not told
// about is one the app was added to: public, the app a member, every user a
// member, which is how DefaultChannelID behaves unless registered. Only the
// conversations registered through Options.Conversations or
// AddConversation (or changed with ArchiveConversation, SetBotMember,
// AddMember) follow Slack's membership rules. DMs ("D"+user) are the
// exception: their members are always that user and the app, registered or
// not, so an ephemeral for someone else in a user's DM is refused with
// user_not_in_channel. Simulated users join a registered channel by typing a
// command or clicking in it, as a person can only do where they are a
// member; clicking in someone else's DM (a forwarded message) does not make
// them a member of it.
//
// Layout of the HTTP surface (see Handler):
//
//	POST /api/<method>              Slack Web API (auth.test, chat.postMessage, ...)
//	GET  /                          the web page: a local Slack to play in (web.go)
//	POST /_standin/command          simulate a user typing a slash command
//	POST /_standin/interaction      simulate a user clicking / submitting
//	POST /_standin/play/...         the page's click, submit and close (webplay.go)
//	POST /_standin/response/<id>    Slack's response_url endpoint
//	GET  /_standin/state            JSON snapshot (for scripts)
//
// The package is built directly on net/http rather than on slack-go's
// slacktest package: slacktest binds fixed handlers, keeps a global hub and
// logs with the log package, none of which fits recording, fault injection or
// stateful threads. The JSON answers reuse slack-go's response types
// (slack.Msg, slack.Channel, slack.User, slack.AuthTestResponse,
// slack.ViewState ...) so the wire format is exactly what slack-go clients
// parse; the envelope and its response_metadata mirror slack.SlackResponse
// and slack.ResponseMetadata with empty fields omitted, as Slack sends them.
//
// A Server is safe for concurrent use and holds no global state.
package slackstandin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Defaults used when the corresponding Options field is empty.
const (
	// DefaultBotToken is the bot token the stand-in accepts by default.
	DefaultBotToken = "xoxb-local-standin"
	// DefaultSigningSecret signs simulated slash commands and interactions.
	DefaultSigningSecret = "local-standin-signing-secret"
	// VerificationToken is the (deprecated) token field Slack puts in slash
	// command and interaction bodies.
	VerificationToken = "local-standin-verification-token"

	// DefaultTeamID, DefaultTeamDomain and DefaultTeamName describe the
	// stand-in's workspace.
	DefaultTeamID     = "T0LOCAL"
	DefaultTeamDomain = "coffeebuddy-local"
	DefaultTeamName   = "CoffeeBuddy Local"
	// DefaultChannelID is the channel a newcomer plays in; its name is
	// DefaultChannelName unless Options.Channels says otherwise.
	DefaultChannelID   = "C0LOCAL"
	DefaultChannelName = "coffee"
	// DefaultAppID is the api_app_id put into simulated requests.
	DefaultAppID = "A0LOCAL"
	// BotUserID, BotID and BotName identify the app's bot user.
	BotUserID = "U0COFFEEBOT"
	BotID     = "B0COFFEEBOT"
	BotName   = "coffeebuddy"

	// DefaultAckTimeout is how long Slack waits for a slash command or an
	// interaction to be acknowledged, and how long a trigger_id stays valid.
	DefaultAckTimeout = 3 * time.Second
	// DefaultResponseURLTTL is how long a response_url stays valid: "up to
	// 5 times within 30 minutes" (docs.slack.dev, Handling user
	// interaction, and Implementing slash commands).
	DefaultResponseURLTTL = 30 * time.Minute
	// ResponseURLMaxUses is how many accepted posts a response_url takes.
	ResponseURLMaxUses = 5
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// BotToken is the only token accepted by the Web API
	// (default DefaultBotToken).
	BotToken string
	// SigningSecret signs simulated requests sent to CommandsURL and
	// InteractionsURL (default DefaultSigningSecret).
	SigningSecret string
	// Users maps user id to display name; a user missing from the map is
	// displayed as its id.
	Users map[string]string
	// Channels maps channel id to channel name (default
	// {DefaultChannelID: DefaultChannelName}); a channel missing from the map
	// is named after its lower-cased id.
	Channels map[string]string
	// Conversations are the channels Slack's membership rules apply to
	// (see the package doc: any other channel is one the app was added to,
	// with every user in it). Reset returns the registry to this list.
	// Entries with an empty or DM id are ignored with a warning.
	Conversations []Conversation
	// Transcript, when set, receives one human-readable line per posted,
	// updated or ephemeral message and per opened view.
	Transcript io.Writer
	// Logger receives operational logs (nil = discard). Tokens and secrets
	// are never logged.
	Logger *slog.Logger

	// CommandsURL is the ingress's slash-command URL (".../slack/commands")
	// that POST /_standin/command forwards to.
	CommandsURL string
	// InteractionsURL is the ingress's interactivity URL
	// (".../slack/interactions") that POST /_standin/interaction forwards to.
	InteractionsURL string
	// AckTimeout bounds how long a forwarded command or interaction may take
	// and how long a trigger_id issued by the stand-in stays valid, as in
	// Slack (default DefaultAckTimeout; negative = no limit).
	AckTimeout time.Duration
	// ResponseURLTTL is how long a response_url issued by the stand-in
	// stays valid (default DefaultResponseURLTTL; negative = no limit).
	// Tests shorten it to see expired_url.
	ResponseURLTTL time.Duration
	// PublicURL overrides the base URL used in response_url values and in
	// auth.test (default: the URL the server listens on).
	PublicURL string
	// HTTPClient is used to forward simulated requests (default: a client
	// without a global timeout; AckTimeout applies per request).
	HTTPClient *http.Client
}

// Server is the Slack stand-in. Create it with New or NewTestServer.
type Server struct {
	opts   Options
	log    *slog.Logger
	mux    *http.ServeMux
	client *http.Client

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever a call is recorded or the state changes
	version uint64        // counts those changes: the web page's refresh token
	calls   []Call
	faults  map[string]FaultFunc
	st      state

	transcriptMu sync.Mutex

	srvMu    sync.Mutex
	baseURL  string
	httpSrv  *http.Server
	testSrv  *httptest.Server
	serveErr chan error
	// quit is closed by Close so that the web page's event streams end:
	// the servers' shutdown waits for every request, and a stream never
	// ends on its own.
	quit chan struct{}
}

// New returns a Server configured by opts. It does not listen; use Start, or
// mount Handler yourself.
func New(opts Options) *Server {
	if opts.BotToken == "" {
		opts.BotToken = DefaultBotToken
	}
	if opts.SigningSecret == "" {
		opts.SigningSecret = DefaultSigningSecret
	}
	if opts.Channels == nil {
		opts.Channels = map[string]string{DefaultChannelID: DefaultChannelName}
	}
	if opts.AckTimeout == 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	if opts.ResponseURLTTL == 0 {
		opts.ResponseURLTTL = DefaultResponseURLTTL
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("component", "slackstandin")
	// The registry is the stand-in's own: a caller changing its slice
	// later must not change it behind Server.mu.
	opts.Conversations = slices.Clone(opts.Conversations)
	for i, c := range opts.Conversations {
		opts.Conversations[i].Members = slices.Clone(c.Members)
		if !registrable(c.ID) {
			lg.Warn("ignoring a conversation that cannot be registered", "id", c.ID, "err", ErrNotRegistrable)
		}
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	s := &Server{
		opts:    opts,
		log:     lg,
		client:  client,
		changed: make(chan struct{}),
		faults:  map[string]FaultFunc{},
		st:      newState(opts.Conversations),
		quit:    make(chan struct{}),
	}
	s.baseURL = strings.TrimSuffix(opts.PublicURL, "/")
	s.mux = s.routes()
	return s
}

// NewTestServer starts a Server on 127.0.0.1 with a random port and closes it
// when the test ends.
func NewTestServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	ts := httptest.NewServer(s.Handler())
	s.srvMu.Lock()
	s.testSrv = ts
	if s.opts.PublicURL == "" {
		s.baseURL = ts.URL
	}
	s.srvMu.Unlock()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Handler returns the stand-in's HTTP handler (Web API under /api/, the web
// page at /, and the simulation endpoints under /_standin/).
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens on addr (e.g. "127.0.0.1:0" or ":3000") and serves in the
// background until Close. It returns once the listener is bound.
func (s *Server) Start(addr string) error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.httpSrv != nil || s.testSrv != nil {
		return errors.New("slackstandin: server already started")
	}
	s.reopenQuitLocked()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if s.opts.PublicURL == "" {
		s.baseURL = "http://" + dialableAddr(ln.Addr())
	}
	s.httpSrv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.serveErr = make(chan error, 1)
	srv, done := s.httpSrv, s.serveErr
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	s.log.Info("slack stand-in listening", "url", s.baseURL)
	return nil
}

// Close stops a server started with Start (or NewTestServer), waiting up to
// five seconds for in-flight requests.
func (s *Server) Close() error {
	s.srvMu.Lock()
	srv, done, ts := s.httpSrv, s.serveErr, s.testSrv
	s.httpSrv, s.testSrv = nil, nil
	s.closeQuitLocked()
	s.srvMu.Unlock()
	if ts != nil {
		ts.Close()
	}
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if serr := <-done; err == nil {
		err = serr
	}
	return err
}

// closeQuitLocked ends the web page's event streams. s.srvMu must be held.
func (s *Server) closeQuitLocked() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
}

// reopenQuitLocked readies quit for a Start after a Close. s.srvMu must be
// held.
func (s *Server) reopenQuitLocked() {
	select {
	case <-s.quit:
		s.quit = make(chan struct{})
	default:
	}
}

// quitting returns the channel Close closes.
func (s *Server) quitting() <-chan struct{} {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.quit
}

// URL is the server's base URL without a trailing slash ("" before Start
// unless Options.PublicURL is set).
func (s *Server) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.baseURL
}

// APIURL is the Web API base URL with a trailing slash, the value for
// SLACK_API_URL and slack.OptionAPIURL.
func (s *Server) APIURL() string { return s.URL() + "/api/" }

// BotToken is the token the Web API accepts.
func (s *Server) BotToken() string { return s.opts.BotToken }

// SigningSecret is the secret simulated requests are signed with.
func (s *Server) SigningSecret() string { return s.opts.SigningSecret }

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("POST /_standin/command", s.serveCommand)
	mux.HandleFunc("POST /_standin/interaction", s.serveInteraction)
	mux.HandleFunc("POST /_standin/response/{id}", s.serveResponseURL)
	mux.HandleFunc("GET /_standin/state", s.serveState)
	s.webRoutes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

// dialableAddr turns a listener address into one a local client can dial:
// an unspecified host (":8080", "[::]:8080") becomes 127.0.0.1.
func dialableAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", itoa(tcp.Port))
	}
	return tcp.String()
}
