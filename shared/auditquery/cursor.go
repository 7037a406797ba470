package auditquery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Position is a row's place in the keyset order: the last row of a page.
type Position struct {
	OccurredAt time.Time
	ID         int64
}

// Cursor errors, both wrapping ErrCursor.
var (
	ErrCursor = errors.New("auditquery: bad cursor")
	// ErrCursorInvalid: not a cursor this service issued (malformed,
	// truncated, tampered, or signed with another key).
	ErrCursorInvalid = fmt.Errorf("%w: not a valid cursor", ErrCursor)
	// ErrCursorFilters: a genuine cursor, issued for other filters.
	ErrCursorFilters = fmt.Errorf("%w: the cursor was issued for other filters", ErrCursor)
)

// Cursor layout (version 1), base64url without padding (87 characters):
//
//	version (1) | occurred_at, Unix µs (8) | id (8) | filter hash (16) | HMAC-SHA256 (32)
//
// The MAC covers everything before it, so a client can neither move the
// position nor swap the filter hash; the filter hash ties the cursor to the
// filters it was issued for. It is opaque to clients but not secret: it
// reveals a timestamp and a row id the client has already seen.
const (
	cursorVersion = 1
	hashLen       = 16
	macLen        = sha256.Size
	payloadLen    = 1 + 8 + 8 + hashLen
	cursorLen     = payloadLen + macLen
	// MinKeyLen is the shortest cursor key accepted: 256 bits.
	MinKeyLen = 32
)

// macLabel separates these MACs from any other use of the same key.
var macLabel = []byte("coffeebuddy audit-api cursor v1\x00")

// Cursors encodes and verifies cursors with an HMAC key. The key is read
// on every call, so a rotated key file takes effect at once (cursors issued
// under the old key are then refused).
type Cursors struct {
	key func() ([]byte, error)
}

// NewCursors returns a codec reading its key through key.
func NewCursors(key func() ([]byte, error)) *Cursors { return &Cursors{key: key} }

func (c *Cursors) mac(payload []byte) ([]byte, error) {
	k, err := c.key()
	if err != nil {
		return nil, fmt.Errorf("auditquery: cursor key: %w", err)
	}
	if len(k) < MinKeyLen {
		return nil, fmt.Errorf("auditquery: cursor key is %d bytes, want at least %d", len(k), MinKeyLen)
	}
	m := hmac.New(sha256.New, k)
	m.Write(macLabel)
	m.Write(payload)
	return m.Sum(nil), nil
}

// Encode returns the cursor for the row at p under filter f.
func (c *Cursors) Encode(p Position, f Filter) (string, error) {
	b := make([]byte, payloadLen, cursorLen)
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(p.OccurredAt.UnixMicro()))
	binary.BigEndian.PutUint64(b[9:17], uint64(p.ID))
	h := f.Hash()
	copy(b[17:], h[:hashLen])
	m, err := c.mac(b)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(append(b, m...)), nil
}

// Decode verifies s and returns its position. A cursor that is not exactly
// what Encode produced under this key is ErrCursorInvalid; a genuine one for
// another filter is ErrCursorFilters. Any other error is the key's.
func (c *Cursors) Decode(s string, f Filter) (Position, error) {
	if len(s) != base64.RawURLEncoding.EncodedLen(cursorLen) {
		return Position{}, ErrCursorInvalid
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != cursorLen {
		return Position{}, ErrCursorInvalid
	}
	want, err := c.mac(b[:payloadLen])
	if err != nil {
		return Position{}, err
	}
	// Nothing in the payload is trusted before the MAC matches.
	if !hmac.Equal(b[payloadLen:], want) {
		return Position{}, ErrCursorInvalid
	}
	if b[0] != cursorVersion {
		return Position{}, ErrCursorInvalid
	}
	h := f.Hash()
	if !hmac.Equal(b[17:payloadLen], h[:hashLen]) {
		return Position{}, ErrCursorFilters
	}
	p := Position{
		OccurredAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))).UTC(),
		ID:         int64(binary.BigEndian.Uint64(b[9:17])),
	}
	return p, nil
}
