package slackapi_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
)

// A `/coffee` slash command as Slack form-encodes it (fields in Slack's
// order), the body slack-ingress verifies on every request.
const (
	benchSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	benchTS     = int64(1531420618)
	benchBody   = "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0LOCAL&team_domain=coffeebuddy-local" +
		"&channel_id=C00000042&channel_name=coffee-42&user_id=U00000042&user_name=bench.user42" +
		"&command=%2Fcoffee&text=in+15&api_app_id=A0LOCAL" +
		"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT0LOCAL%2F7000000042%2F96rGlfmibIGlgcZRskXaIFfN" +
		"&trigger_id=13345224651.738474920.8088930838d88f008e0ad2c447fce8b6"
)

func BenchmarkVerify(b *testing.B) {
	body := []byte(benchBody)
	ts := strconv.FormatInt(benchTS, 10)
	sig := slackapi.Sign(benchSecret, benchTS, body)
	now := time.Unix(benchTS+2, 0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := slackapi.Verify(benchSecret, ts, sig, body, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyBadSignature is the cost of rejecting a forged request
// (the full HMAC is still computed).
func BenchmarkVerifyBadSignature(b *testing.B) {
	body := []byte(benchBody)
	ts := strconv.FormatInt(benchTS, 10)
	sig := slackapi.Sign("not-the-secret", benchTS, body)
	now := time.Unix(benchTS+2, 0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := slackapi.Verify(benchSecret, ts, sig, body, now); err == nil {
			b.Fatal("forged signature verified")
		}
	}
}

func BenchmarkSign(b *testing.B) {
	body := []byte(benchBody)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = slackapi.Sign(benchSecret, benchTS, body)
	}
}
