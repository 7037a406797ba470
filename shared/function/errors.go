package function

import (
	"errors"
	"fmt"
)

// permanentError marks a failure that retrying cannot fix (a malformed
// payload, an event for something that does not exist). The receiver answers
// 4xx, which Knative does not retry and sends to the dead-letter sink.
type permanentError struct{ err error }

func (e permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so the broker does not retry it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Permanentf is Permanent(fmt.Errorf(...)).
func Permanentf(format string, args ...any) error { return Permanent(fmt.Errorf(format, args...)) }

// IsPermanent reports whether err, or anything it wraps, is permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// IsBusy reports whether err, or anything it wraps, says that another
// attempt is doing this very work right now (a duplicate delivery racing
// the original; slackonce.ErrInFlight is one). The receiver answers 409
// Conflict, which the broker retries like a 5xx, and logs it at info: it
// is the dedup working, not a failure.
func IsBusy(err error) bool {
	var b interface{ Busy() bool }
	return errors.As(err, &b) && b.Busy()
}
