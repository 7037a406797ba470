package auditquery_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/google/uuid"
)

var (
	testKey  = bytes.Repeat([]byte("k"), 32)
	otherKey = bytes.Repeat([]byte("o"), 32)
)

func codec(key []byte) *auditquery.Cursors {
	return auditquery.NewCursors(func() ([]byte, error) { return key, nil })
}

func baseFilter() auditquery.Filter {
	return auditquery.Filter{
		Start:      time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		End:        time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		EventTypes: []string{"order_placed", "run_created"},
		UserID:     "U1",
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	c := codec(testKey)
	f := baseFilter()
	p := auditquery.Position{OccurredAt: time.Date(2026, 2, 3, 4, 5, 6, 789012000, time.UTC), ID: 123456789}
	s, err := c.Encode(p, f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode(s, f)
	if err != nil || !got.OccurredAt.Equal(p.OccurredAt) || got.ID != p.ID {
		t.Fatalf("Decode = %+v, %v; want %+v", got, err, p)
	}
	// The same filter spelled differently (order, duplicates, time zone) is
	// the same filter.
	same := f
	same.EventTypes = []string{"run_created", "order_placed", "run_created"}
	same.Start = f.Start.In(time.FixedZone("CET", 3600))
	if _, err := c.Decode(s, same); err != nil {
		t.Fatalf("equivalent filter: %v", err)
	}
}

func TestCursorRefused(t *testing.T) {
	t.Parallel()
	c := codec(testKey)
	f := baseFilter()
	good, err := c.Encode(auditquery.Position{OccurredAt: f.Start.Add(time.Hour), ID: 42}, f)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	other := func(edit func(*auditquery.Filter)) auditquery.Filter {
		g := f
		edit(&g)
		return g
	}
	foreign, _ := codec(otherKey).Encode(auditquery.Position{OccurredAt: f.Start.Add(time.Hour), ID: 42}, f)
	tests := []struct {
		name   string
		cursor string
		filter auditquery.Filter
		want   error
	}{
		{"empty", "", f, auditquery.ErrCursorInvalid},
		{"garbage", "not-a-cursor", f, auditquery.ErrCursorInvalid},
		{"truncated", good[:len(good)-1], f, auditquery.ErrCursorInvalid},
		{"extended", good + "A", f, auditquery.ErrCursorInvalid},
		{"standard base64 alphabet", base64.StdEncoding.EncodeToString(raw), f, auditquery.ErrCursorInvalid},
		{"version byte changed", flip(0), f, auditquery.ErrCursorInvalid},
		{"timestamp changed", flip(8), f, auditquery.ErrCursorInvalid},
		{"id changed", flip(16), f, auditquery.ErrCursorInvalid},
		{"filter hash changed", flip(20), f, auditquery.ErrCursorInvalid},
		{"MAC changed", flip(len(raw) - 1), f, auditquery.ErrCursorInvalid},
		{"signed with another key", foreign, f, auditquery.ErrCursorInvalid},
		{"replayed with another user", good, other(func(g *auditquery.Filter) { g.UserID = "U2" }), auditquery.ErrCursorFilters},
		{"replayed with another range", good, other(func(g *auditquery.Filter) { g.End = g.End.Add(time.Second) }), auditquery.ErrCursorFilters},
		{"replayed with fewer event types", good, other(func(g *auditquery.Filter) { g.EventTypes = g.EventTypes[:1] }), auditquery.ErrCursorFilters},
		{"replayed with a run", good, other(func(g *auditquery.Filter) { g.RunID = uuid.New() }), auditquery.ErrCursorFilters},
		{"replayed with a channel", good, other(func(g *auditquery.Filter) { g.ChannelID = "C1" }), auditquery.ErrCursorFilters},
		{"replayed with a team", good, other(func(g *auditquery.Filter) { g.TeamID = "T1" }), auditquery.ErrCursorFilters},
		// Field boundaries are length-prefixed: moving characters from one
		// field to the next is another filter.
		{"replayed with shifted fields", good, other(func(g *auditquery.Filter) { g.UserID, g.ChannelID = "", "U1" }), auditquery.ErrCursorFilters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Decode(tt.cursor, tt.filter); !errors.Is(err, tt.want) || !errors.Is(err, auditquery.ErrCursor) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCursorKeyProblems(t *testing.T) {
	t.Parallel()
	short := codec([]byte("short"))
	if _, err := short.Encode(auditquery.Position{ID: 1}, baseFilter()); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	broken := auditquery.NewCursors(func() ([]byte, error) { return nil, errors.New("vault file gone") })
	good, _ := codec(testKey).Encode(auditquery.Position{ID: 1}, baseFilter())
	if _, err := broken.Decode(good, baseFilter()); err == nil || errors.Is(err, auditquery.ErrCursor) {
		t.Errorf("Decode with an unreadable key = %v, want a key error (a 5xx, not the client's fault)", err)
	}
}

// FuzzCursor: whatever the input, Decode does not panic, and anything it
// accepts is exactly what Encode produces for that position: no other
// string passes. Runs its seeds as a plain unit test; `go test
// -fuzz=FuzzCursor ./auditquery/` explores further.
func FuzzCursor(f *testing.F) {
	c := codec(testKey)
	flt := baseFilter()
	good, err := c.Encode(auditquery.Position{OccurredAt: flt.Start.Add(time.Minute), ID: 7}, flt)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		good, "", "A", good[:40], good + good, "' OR 1=1 --", "%00", "\x00\xff",
		base64.RawURLEncoding.EncodeToString(make([]byte, 65)),
		base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 65)),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := c.Decode(s, flt)
		if err != nil {
			if !errors.Is(err, auditquery.ErrCursor) {
				t.Fatalf("Decode(%q) = %v, not a cursor error", s, err)
			}
			return
		}
		again, err := c.Encode(p, flt)
		if err != nil || again != s {
			t.Fatalf("Decode accepted %q, which Encode would write as %q", s, again)
		}
	})
}
