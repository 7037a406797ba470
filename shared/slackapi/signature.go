// Package slackapi holds what CoffeeBuddy needs at the Slack boundary:
// request signature verification and a slack-go client that honours
// SLACK_API_URL and follows bot-token rotation.
package slackapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Slack's request-signing headers and the replay window it documents.
const (
	HeaderTimestamp = "X-Slack-Request-Timestamp"
	HeaderSignature = "X-Slack-Signature"
	MaxSkew         = 5 * time.Minute
)

// Verification failures; all mean 401 to the caller.
var (
	ErrMissingSignature = errors.New("missing Slack signature headers")
	ErrBadTimestamp     = errors.New("malformed Slack request timestamp")
	ErrStaleTimestamp   = errors.New("Slack request timestamp is outside the 5-minute window")
	ErrBadSignature     = errors.New("Slack signature does not match")
)

// Sign returns the v0 signature of body sent at ts, as Slack computes it.
func Sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:"))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte(":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a request's timestamp and signature headers against body
// before anything in the body is trusted. now is injected for tests.
func Verify(secret, timestamp, signature string, body []byte, now time.Time) error {
	if timestamp == "" || signature == "" {
		return ErrMissingSignature
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%w (skew %s)", ErrStaleTimestamp, d.Round(time.Second))
	}
	got, ok := strings.CutPrefix(signature, "v0=")
	if !ok {
		return ErrBadSignature
	}
	gotMAC, err := hex.DecodeString(got)
	if err != nil {
		return ErrBadSignature
	}
	want := Sign(secret, ts, body)
	wantMAC, _ := hex.DecodeString(want[len("v0="):])
	if !hmac.Equal(gotMAC, wantMAC) {
		return ErrBadSignature
	}
	return nil
}
