package slackapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/breaker"
	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
)

// Clients hands out a slack-go client for the current bot token, rebuilding
// it only when the token file has rotated. All clients share one pooled
// transport: a modal per /coffee must not cost a new TLS handshake.
type Clients struct {
	token   *config.Secret
	apiURL  string
	httpCli *http.Client
	breaker *breaker.Breaker // nil: no breaker
	// metricsReg, set by WithMetrics, gets slack_api_rate_limited_total.
	metricsReg prometheus.Registerer

	mu  sync.Mutex
	tok string
	cli *slack.Client
}

// NewClients returns a client source for token against apiURL
// (SLACK_API_URL, ending in "/"). The function runtime adds WithBreaker
// and WithMetrics.
func NewClients(token *config.Secret, apiURL string, opts ...Option) *Clients {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Go's default keeps 2 idle connections per host; under load every
	// other call would dial (measured: 14% of ingress CPU, thousands of
	// TIME-WAIT sockets). Slack is one host.
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 128
	c := &Clients{token: token, apiURL: apiURL}
	for _, o := range opts {
		o(c)
	}
	rl := &rateLimitTransport{base: tr}
	if c.metricsReg != nil {
		rl.limited = newRateLimitedCounter(c.metricsReg)
		rl.errors = newErrorsCounter(c.metricsReg)
	}
	var rt http.RoundTripper = rl
	if c.breaker != nil {
		rt = &breakerTransport{base: rl, b: c.breaker}
	}
	// Every Slack call also carries the caller's context deadline; this is
	// the backstop.
	c.httpCli = &http.Client{Timeout: 10 * time.Second, Transport: rt}
	return c
}

// Get returns a client for the current token.
func (c *Clients) Get() (*slack.Client, error) {
	tok, err := c.token.Value()
	if err != nil && tok == "" {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cli == nil || tok != c.tok {
		c.tok = tok
		c.cli = slack.New(tok, slack.OptionAPIURL(c.apiURL), slack.OptionHTTPClient(c.httpCli))
	}
	return c.cli, nil
}

// OpenView calls views.open with view.
func (c *Clients) OpenView(ctx context.Context, triggerID string, view slack.ModalViewRequest) error {
	b, err := json.Marshal(view)
	if err != nil {
		return fmt.Errorf("views.open: encode: %w", err)
	}
	return c.OpenViewJSON(ctx, triggerID, b)
}

// OpenViewJSON calls views.open with an already-encoded view, so a caller
// that opens the same modal many times encodes it once. It reads only `ok`
// and `error` from the answer: slack-go decodes the whole echoed view, which
// was a third of the ingress's CPU under load, for a result nobody uses.
func (c *Clients) OpenViewJSON(ctx context.Context, triggerID string, view []byte) error {
	tok, err := c.token.Value()
	if err != nil && tok == "" {
		return err
	}
	tid, _ := json.Marshal(triggerID) // a string: cannot fail
	body := make([]byte, 0, len(view)+len(tid)+24)
	body = append(append(append(body, `{"trigger_id":`...), tid...), `,"view":`...)
	body = append(append(body, view...), '}')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL+"views.open", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("views.open: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.httpCli.Do(req)
	if err != nil {
		return fmt.Errorf("views.open: %w", err)
	}
	defer resp.Body.Close()
	// Read it all so the connection goes back to the pool.
	ans, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("views.open: read: %w", err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return &slack.RateLimitedError{RetryAfter: time.Duration(retry) * time.Second}
	}
	return apiResult("views.open", resp.StatusCode, ans)
}

// okPrefix is how Slack starts a successful answer; matching it spares
// decoding the echoed view. Anything else gets a full decode.
var okPrefix = []byte(`{"ok":true`)

func apiResult(method string, status int, body []byte) error {
	if status == http.StatusOK && bytes.HasPrefix(body, okPrefix) {
		return nil
	}
	var ans struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("%s: HTTP %d: %w", method, status, err)
	}
	if !ans.OK {
		return fmt.Errorf("%s: %w", method, slack.SlackErrorResponse{Err: ans.Error})
	}
	return nil
}
