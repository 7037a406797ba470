package slackapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/slack-go/slack"
)

// Slack answers a call it refuses with HTTP 200 and {"ok":false,"error":
// "<code>"}. Most codes are permanent: the same call gets the same answer
// however often it is retried (not_in_channel, user_not_in_channel,
// channel_not_found, is_archived, message_not_found, invalid_blocks,
// msg_too_long, expired_url …). A few say Slack itself is in trouble and a
// retry may succeed; they are listed here. Rate limits come as HTTP 429 and
// are retried through slack.retry, never classified permanent.
//
// A refused token is transient too: while the bot token is rotated (Slack
// revokes the old one at once, the new one reaches the pods through Vault
// within seconds, docs/runbooks/rotate-slack-secrets.md) every call fails
// with invalid_auth or token_revoked, and a retry with the new token
// succeeds. Dropping those calls as permanent would lose the messages of
// the rotation's window; retried, they are late, and a token that stays
// wrong ends in the dead-letter topic, from where they can be replayed.
var transientCodes = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
	"ratelimited":         true,
	"rate_limited":        true,
	"invalid_auth":        true,
	"not_authed":          true,
	"token_revoked":       true,
	"token_expired":       true,
}

// ResponseError is a response_url's refusal: Slack's HTTP status and error
// code ("expired_url", "invalid_blocks", …; "http_<status>" when the body
// names none).
type ResponseError struct {
	Status int
	Code   string
}

func (e *ResponseError) Error() string { return "response_url: " + e.Code }

// Code is Slack's error code in err: the `error` of an ok:false answer, or
// of a response_url refusal. It is "" when err is not Slack's answer (a
// transport error, a 5xx, a rate limit, an open breaker).
func Code(err error) string {
	var answer slack.SlackErrorResponse
	if errors.As(err, &answer) {
		return answer.Err
	}
	var re *ResponseError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// IsPermanent reports whether Slack refused the call for good: retrying it
// would get the same answer. Callers log it, count it (the transport
// already did: slack_api_errors_total) and go on; it must never undo or hold
// up the state change it accompanies.
func IsPermanent(err error) bool {
	if code := Code(err); code != "" {
		if transientCodes[code] {
			return false
		}
		var re *ResponseError
		if errors.As(err, &re) && (re.Status == http.StatusTooManyRequests || re.Status >= 500) {
			return false
		}
		return true
	}
	var status slack.StatusCodeError
	// A 4xx other than 429 from the Web API is as final as an ok:false.
	return errors.As(err, &status) && status.Code >= 400 && status.Code < 500 && status.Code != http.StatusTooManyRequests
}

// Courtesy turns a permanent Slack refusal of a message that only informs
// (an answer to a click, a thread note, a refresh of a message someone
// deleted) into a logged warning, so the event it accompanies completes.
// Any other error (a 429, a 5xx, Slack unreachable) is returned for the
// caller's retry.
func Courtesy(ctx context.Context, log *slog.Logger, what string, err error) error {
	if err == nil || !IsPermanent(err) {
		return err
	}
	log.WarnContext(ctx, "Slack refused a message for good; going on without it", "what", what, "slack_error", Code(err), "err", err)
	return nil
}
