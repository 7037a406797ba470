package coffee

import (
	"testing"
	"time"
)

func TestParseLastCall(t *testing.T) {
	def := 10 * time.Minute
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"", def, false},
		{"   ", def, false},
		{"5", 5 * time.Minute, false},
		{"15m", 15 * time.Minute, false},
		{"15 min", 15 * time.Minute, false},
		{"in 20 minutes", 20 * time.Minute, false},
		{"last call in 7 min", 7 * time.Minute, false},
		{"1 minute", time.Minute, false},
		{"240", 4 * time.Hour, false},
		{"0", 0, true},
		{"241", 0, true},
		{"-5", 0, true},
		{"soon", 0, true},
		{"5h", 0, true},
		{"<!channel>", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLastCall(tt.in, def)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLastCall(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
