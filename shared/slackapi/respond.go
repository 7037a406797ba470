package slackapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Reply is a message for one person.
type Reply struct {
	Text   string        // the notification text, and the whole message when Blocks is empty
	Blocks []slack.Block // optional
}

// Answer says where a Reply goes: through the response_url of the command
// or click the person made (it reaches them wherever they typed or
// clicked, for 30 minutes and 5 uses), else as an ephemeral message to User
// in Channel, which Slack refuses when they are not a member there.
type Answer struct {
	ResponseURL string
	Channel     string
	User        string
}

// Tell shows r to the person a asks for: through the response_url when
// there is one, else with chat.postEphemeral. Errors keep Slack's answer
// (Code, IsPermanent); callers decide whether it may hold anything up
// (Courtesy).
func (c *Clients) Tell(ctx context.Context, a Answer, r Reply) error {
	if a.ResponseURL != "" {
		return c.Respond(ctx, a.ResponseURL, r)
	}
	cli, err := c.Get()
	if err != nil {
		return err
	}
	opts := []slack.MsgOption{slack.MsgOptionText(r.Text, false)}
	if len(r.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(r.Blocks...))
	}
	if _, err := cli.PostEphemeralContext(ctx, a.Channel, a.User, opts...); err != nil {
		return fmt.Errorf("chat.postEphemeral: %w", err)
	}
	return nil
}

// responseBody is what a response_url takes: an ephemeral message that
// leaves the message clicked on as it is.
type responseBody struct {
	Text            string        `json:"text"`
	Blocks          []slack.Block `json:"blocks,omitempty"`
	ResponseType    string        `json:"response_type"`
	ReplaceOriginal bool          `json:"replace_original"`
}

// Respond posts r, visible only to the person, to responseURL. Only Slack's
// hook hosts (or the host SLACK_API_URL names, for a local stand-in) are
// called: a response_url arrives inside a signed request, but the event
// carrying it passed through Kafka, and a forged one must not make the app
// POST elsewhere.
func (c *Clients) Respond(ctx context.Context, responseURL string, r Reply) error {
	if err := c.checkResponseURL(responseURL); err != nil {
		return err
	}
	body, err := json.Marshal(responseBody{Text: r.Text, Blocks: r.Blocks, ResponseType: "ephemeral"})
	if err != nil {
		return fmt.Errorf("response_url: encode: %w", err)
	}
	ctx = context.WithValue(ctx, methodKey{}, MethodResponseURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("response_url: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := c.httpCli.Do(req)
	if err != nil {
		return fmt.Errorf("response_url: %w", redact(err))
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("response_url: read: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return &slack.RateLimitedError{RetryAfter: time.Duration(retry) * time.Second}
	case resp.StatusCode >= 500:
		return slack.StatusCodeError{Code: resp.StatusCode, Status: resp.Status}
	}
	// Slack answers {"ok":true} (or a bare "ok"); a refusal names its code
	// in JSON or as plain text, with a 4xx status.
	if code := errorField(ans); code != "" && !bytes.Contains(ans, []byte(`"ok":true`)) {
		return &ResponseError{Status: resp.StatusCode, Code: code}
	}
	if resp.StatusCode/100 != 2 {
		code := strings.TrimSpace(string(ans))
		if code == "" || len(code) > 64 || strings.ContainsAny(code, " {<") {
			code = "http_" + strconv.Itoa(resp.StatusCode)
		}
		return &ResponseError{Status: resp.StatusCode, Code: code}
	}
	return nil
}

// errForeignResponseURL: the response_url does not point at Slack.
var errForeignResponseURL = errors.New("response_url does not point at Slack")

// slackHookHosts serve response_urls (commercial and GovSlack).
var slackHookHosts = map[string]bool{"hooks.slack.com": true, "hooks.slack-gov.com": true}

func (c *Clients) checkResponseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return &ResponseError{Status: http.StatusBadRequest, Code: "invalid_response_url"}
	}
	if u.Scheme == "https" && slackHookHosts[strings.ToLower(u.Hostname())] {
		return nil
	}
	if api, err := url.Parse(c.apiURL); err == nil && api.Host != "" && strings.EqualFold(api.Host, u.Host) && api.Scheme == u.Scheme {
		return nil
	}
	return fmt.Errorf("%w (host %q): %w", errForeignResponseURL, u.Host,
		&ResponseError{Status: http.StatusBadRequest, Code: "invalid_response_url"})
}

// redact drops the URL from a transport error: a response_url is a
// credential for 30 minutes and must not reach the logs.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// Inform tells a person something that must not hold anything up: Tell,
// with a permanent refusal logged (Courtesy) instead of returned. A rate
// limit or an outage is still returned, for the caller's retry.
func (c *Clients) Inform(ctx context.Context, log *slog.Logger, what string, a Answer, r Reply) error {
	if err := Courtesy(ctx, log, what, c.Tell(ctx, a, r)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
