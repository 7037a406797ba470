package auditquery

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends r as one JSON object, the same fields as its json
// tags, with details exactly as PostgreSQL renders the JSONB (encoding/json
// would re-validate and compact it). Hand-written because an export encodes
// every row of a range: this is most of an export's CPU with encoding/json.
func (r *Row) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, r.ID, 10)
	b = append(b, `,"occurred_at":"`...)
	b = r.OccurredAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","event_type":`...)
	b = appendString(b, r.EventType)
	b = append(b, `,"user_id":`...)
	b = appendNullString(b, r.UserID)
	b = append(b, `,"team_id":`...)
	b = appendNullString(b, r.TeamID)
	b = append(b, `,"channel_id":`...)
	b = appendNullString(b, r.ChannelID)
	b = append(b, `,"run_id":`...)
	if r.RunID == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = append(b, r.RunID.String()...)
		b = append(b, '"')
	}
	b = append(b, `,"ce_id":`...)
	b = appendNullString(b, r.CEID)
	b = append(b, `,"details":`...)
	if len(r.Details) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.Details...) // jsonb output: valid JSON on one line
	}
	return append(b, '}')
}

func appendNullString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, U+2028/U+2029 escaped (as encoding/json does, for
// JavaScript), invalid UTF-8 replaced by U+FFFD; "<", ">" and "&" as they
// are.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
