package slackapi

import (
	"net/http"
	"sync"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/slack-go/slack"
)

// Clients hands out a slack-go client for the current bot token, rebuilding
// it only when the token file has rotated.
type Clients struct {
	token   *config.Secret
	apiURL  string
	httpCli *http.Client

	mu  sync.Mutex
	tok string
	cli *slack.Client
}

// NewClients returns a client source for token against apiURL
// (SLACK_API_URL, ending in "/").
func NewClients(token *config.Secret, apiURL string) *Clients {
	return &Clients{
		token:  token,
		apiURL: apiURL,
		// Every Slack call also carries the caller's context deadline; this
		// is the backstop.
		httpCli: &http.Client{Timeout: 10 * time.Second},
	}
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
