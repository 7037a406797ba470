package standin

import (
	"testing"
	"time"
)

func TestParseISO8601Duration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "PT0.2S", want: 200 * time.Millisecond},
		{in: "PT1S", want: time.Second},
		{in: "PT1M", want: time.Minute},
		{in: "PT1H", want: time.Hour},
		{in: "PT1M30S", want: 90 * time.Second},
		{in: "PT1H2M3S", want: time.Hour + 2*time.Minute + 3*time.Second},
		{in: "PT0,5S", want: 500 * time.Millisecond},
		{in: "PT1.5M", want: 90 * time.Second},
		{in: "PT0.001S", want: time.Millisecond},
		{in: "PT10S", want: 10 * time.Second},
		{in: "P1D", want: 24 * time.Hour},
		{in: "P1DT12H", want: 36 * time.Hour},
		{in: "P2W", want: 14 * 24 * time.Hour},
		{in: "P0.5D", want: 12 * time.Hour},
		{in: "PT0S", want: 0},
		{in: "P1Y", want: year},
		{in: "P1M", want: month},
		{in: "P1MT1M", want: month + time.Minute},
		{in: "", err: true},
		{in: "P", err: true},
		{in: "PT", err: true},
		{in: "1S", err: true},
		{in: "T1S", err: true},
		{in: "PT1", err: true},
		{in: "PTS", err: true},
		{in: "PT-1S", err: true},
		{in: "-PT1S", err: true},
		{in: "PT1S1M", err: true},   // out of order
		{in: "PT1S2S", err: true},   // repeated
		{in: "P1H", err: true},      // hours need T
		{in: "PT1D", err: true},     // days are not a time unit
		{in: "PT1.5M3S", err: true}, // fraction only on the last component
		{in: "PT.5S", err: true},
		{in: "PT5.S", err: true},
		{in: "PT1.2.3S", err: true},
		{in: "PT1STT", err: true},
		{in: "pt1s", err: true},
		{in: "PT1s", err: true},
		{in: "1s", err: true},
		{in: "0.2", err: true},
		{in: "P99999999999Y", err: true}, // overflows
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseISO8601Duration(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseISO8601Duration(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseISO8601Duration(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseISO8601Duration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	d := delivery{delay: 100 * time.Millisecond}
	for n, want := range map[int]time.Duration{1: 200 * time.Millisecond, 2: 400 * time.Millisecond, 3: 800 * time.Millisecond} {
		if got := d.backoff(n); got != want {
			t.Errorf("exponential backoff(%d) = %v, want %v", n, got, want)
		}
	}
	d.linear = true
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 300 * time.Millisecond} {
		if got := d.backoff(n); got != want {
			t.Errorf("linear backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestMergeDelivery(t *testing.T) {
	i := func(v int32) *int32 { return &v }
	s := func(v string) *string { return &v }
	brokerDLS := &Destination{Ref: &Ref{Kind: "KafkaSink", Name: "dlq"}}
	broker := &Delivery{Retry: i(5), BackoffPolicy: s("exponential"), BackoffDelay: s("PT0.2S"), DeadLetterSink: brokerDLS}

	// A Trigger without delivery takes the Broker's.
	d := mergeDelivery(nil, "ns", broker, "bns")
	if d.retry != 5 || d.linear || d.delay != 200*time.Millisecond || d.deadLetter != brokerDLS || d.deadLetterNS != "bns" {
		t.Fatalf("broker defaults: %+v", d)
	}
	// A Trigger's own fields win, the rest come from the Broker.
	d = mergeDelivery(&Delivery{Retry: i(1), BackoffPolicy: s("linear")}, "ns", broker, "bns")
	if d.retry != 1 || !d.linear || d.delay != 200*time.Millisecond || d.deadLetter != brokerDLS {
		t.Fatalf("merged: %+v", d)
	}
	// Nothing anywhere: no retries, no dead-letter sink.
	d = mergeDelivery(nil, "ns", nil, "")
	if d.retry != 0 || d.deadLetter != nil || d.delay != defaultBackoffDelay {
		t.Fatalf("empty: %+v", d)
	}
}

func TestRetryable(t *testing.T) {
	for status, want := range map[int]bool{
		0: true, 500: true, 502: true, 503: true, 504: true, 404: true, 408: true, 409: true, 429: true,
		400: false, 401: false, 403: false, 410: false, 413: false, 422: false, 301: false,
	} {
		if got := retryable(status); got != want {
			t.Errorf("retryable(%d) = %v, want %v", status, got, want)
		}
	}
}
