package slackapi

import (
	"errors"
	"testing"
	"time"
)

// Slack's documented example from "Verifying requests from Slack".
const (
	docSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	docTimestamp = "1531420618"
	docBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	docSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func TestSignMatchesSlackDocumentedExample(t *testing.T) {
	if got := Sign(docSecret, 1531420618, []byte(docBody)); got != docSignature {
		t.Fatalf("Sign = %s, want %s", got, docSignature)
	}
}

func TestVerify(t *testing.T) {
	at := time.Unix(1531420618, 0)
	tests := []struct {
		name    string
		secret  string
		ts, sig string
		body    string
		now     time.Time
		wantErr error
	}{
		{"documented example", docSecret, docTimestamp, docSignature, docBody, at, nil},
		{"4m59s later still fresh", docSecret, docTimestamp, docSignature, docBody, at.Add(299 * time.Second), nil},
		{"stale after 5 minutes", docSecret, docTimestamp, docSignature, docBody, at.Add(5*time.Minute + time.Second), ErrStaleTimestamp},
		{"from the future", docSecret, docTimestamp, docSignature, docBody, at.Add(-6 * time.Minute), ErrStaleTimestamp},
		{"wrong secret", "not-the-secret", docTimestamp, docSignature, docBody, at, ErrBadSignature},
		{"tampered body", docSecret, docTimestamp, docSignature, docBody + "&x=1", at, ErrBadSignature},
		{"signature without v0", docSecret, docTimestamp, docSignature[3:], docBody, at, ErrBadSignature},
		{"signature not hex", docSecret, docTimestamp, "v0=zz", docBody, at, ErrBadSignature},
		{"missing signature", docSecret, docTimestamp, "", docBody, at, ErrMissingSignature},
		{"missing timestamp", docSecret, "", docSignature, docBody, at, ErrMissingSignature},
		{"timestamp not a number", docSecret, "12ab", docSignature, docBody, at, ErrBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.ts, tt.sig, []byte(tt.body), tt.now)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
