package function_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
)

func TestPermanent(t *testing.T) {
	if function.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"plain", io.ErrUnexpectedEOF, false},
		{"nil", nil, false},
		{"permanent", function.Permanent(io.ErrUnexpectedEOF), true},
		{"permanentf", function.Permanentf("decode %s: %w", "run-1", io.ErrUnexpectedEOF), true},
		{"wrapped permanent", fmt.Errorf("handle: %w", function.Permanent(io.ErrUnexpectedEOF)), true},
		{"joined", errors.Join(io.EOF, function.Permanent(io.ErrUnexpectedEOF)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := function.IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
			if tt.want && !errors.Is(tt.err, io.ErrUnexpectedEOF) {
				t.Errorf("%v does not unwrap to the cause", tt.err)
			}
		})
	}
	if got := function.Permanent(errors.New("no such run")).Error(); got != "permanent: no such run" {
		t.Errorf("Error() = %q", got)
	}
}
