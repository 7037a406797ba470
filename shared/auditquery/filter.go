// Package auditquery reads the audit log for the audit API: filters, keyset
// pages in (occurred_at, id) order, a streaming export, and the tamper-
// evident cursor that carries a page's position. It holds no HTTP: the
// audit-api function parses requests into a Filter, and a benchmark can
// drive the same queries.
package auditquery

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/google/uuid"
)

// MaxRange is the longest time range one query may cover.
const MaxRange = 366 * 24 * time.Hour

// Filter selects audit rows: occurred_at in [Start, End), and each set
// field equal (EventTypes: any of them).
type Filter struct {
	Start, End time.Time
	EventTypes []string // each one of audit.Types; sorted and deduplicated by Normalize
	UserID     string   // actor_user_id
	RunID      uuid.UUID
	ChannelID  string
	TeamID     string
}

// ErrInvalid is wrapped by Validate's errors.
var ErrInvalid = errors.New("auditquery: invalid filter")

// Normalize returns f with times in UTC and event types sorted and
// deduplicated, so equal filters hash equally.
func (f Filter) Normalize() Filter {
	f.Start, f.End = f.Start.UTC(), f.End.UTC()
	f.EventTypes = slices.Compact(slices.Sorted(slices.Values(f.EventTypes)))
	return f
}

// Validate checks the range and the event types.
func (f Filter) Validate() error {
	switch {
	case f.Start.IsZero() || f.End.IsZero():
		return fmt.Errorf("%w: start and end are required", ErrInvalid)
	case !f.End.After(f.Start):
		return fmt.Errorf("%w: end must be after start", ErrInvalid)
	case f.End.Sub(f.Start) > MaxRange:
		return fmt.Errorf("%w: the range exceeds 366 days", ErrInvalid)
	}
	for _, t := range f.EventTypes {
		if !audit.Known(t) {
			return fmt.Errorf("%w: unknown event type %q", ErrInvalid, t)
		}
	}
	return nil
}

// Hash identifies the normalized filter: a cursor carries it, so a cursor
// issued for one filter is refused with another. Each field is
// length-prefixed, so no two filters encode alike.
func (f Filter) Hash() [sha256.Size]byte {
	f = f.Normalize()
	h := sha256.New()
	var n [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	putTime := func(t time.Time) {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(t.UnixMicro()))
		put(b[:])
	}
	putTime(f.Start)
	putTime(f.End)
	binary.BigEndian.PutUint64(n[:], uint64(len(f.EventTypes)))
	h.Write(n[:])
	for _, t := range f.EventTypes {
		put([]byte(t))
	}
	put([]byte(f.UserID))
	put(f.RunID[:])
	put([]byte(f.ChannelID))
	put([]byte(f.TeamID))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
