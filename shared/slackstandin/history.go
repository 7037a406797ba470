package slackstandin

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// conversations.history and conversations.replies: reading a conversation
// back, as the app does to find out whether a post whose outcome it never
// learnt (a crash, a timeout) reached Slack. Messages carry their metadata
// only with include_all_metadata, as in Slack.

// Page sizes: Slack's defaults and caps.
const (
	historyDefaultLimit = 100
	historyMaxLimit     = 999
	repliesDefaultLimit = 1000
	repliesMaxLimit     = 1000
)

// historyResponse is the answer of both methods, field for field Slack's.
type historyResponse struct {
	slackResponse
	Messages            []*wireMessage `json:"messages"`
	HasMore             bool           `json:"has_more"`
	PinCount            int            `json:"pin_count"`
	ChannelActionsTS    *string        `json:"channel_actions_ts"`
	ChannelActionsCount int            `json:"channel_actions_count"`
	Latest              string         `json:"latest,omitempty"`
}

// window is the oldest/latest/inclusive bounds of a read, in microseconds.
type window struct {
	oldest, latest int64
	inclusive      bool
}

// readWindow parses oldest, latest and inclusive; code is Slack's error
// when a bound is not a timestamp.
func readWindow(p params) (w window, code string) {
	w = window{oldest: 0, latest: math.MaxInt64, inclusive: p.bool("inclusive")}
	if v := p.get("oldest"); v != "" {
		m, ok := tsMicros(v)
		if !ok {
			return w, "invalid_ts_oldest"
		}
		w.oldest = m
	}
	if v := p.get("latest"); v != "" {
		m, ok := tsMicros(v)
		if !ok {
			return w, "invalid_ts_latest"
		}
		w.latest = m
	}
	return w, ""
}

func (w window) contains(ts string) bool {
	m, ok := tsMicros(ts)
	if !ok {
		return false
	}
	if w.inclusive {
		return m >= w.oldest && m <= w.latest
	}
	return m > w.oldest && m < w.latest
}

// tsMicros parses a Slack timestamp ("1700000000.000100", "1700000000",
// "0") into microseconds.
func tsMicros(ts string) (int64, bool) {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s < 0 || len(frac) > 6 {
		return 0, false
	}
	var us int64
	if frac != "" {
		if us, err = strconv.ParseInt((frac + "000000")[:6], 10, 64); err != nil || us < 0 {
			return 0, false
		}
	}
	return s*1_000_000 + us, true
}

// pageLimit reads limit: def when absent or not positive, at most max.
func pageLimit(p params, def, max int) int {
	n, err := strconv.Atoi(p.get("limit"))
	if err != nil || n <= 0 {
		return def
	}
	return min(n, max)
}

// Cursors name the ts the next page starts at, base64-encoded like Slack's
// ("next_ts:<ts>").
func encodeCursor(ts string) string {
	return base64.StdEncoding.EncodeToString([]byte("next_ts:" + ts))
}

func decodeCursor(c string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	ts, ok := strings.CutPrefix(string(b), "next_ts:")
	if _, valid := tsMicros(ts); !ok || !valid {
		return "", false
	}
	return ts, true
}

// listed renders m as the read methods show it: a thread parent carries the
// thread's summary, a reply its parent's author, and metadata only when
// asked for.
func listed(c *channelState, m *Message, withMetadata bool) *wireMessage {
	w := toWire(m)
	if !withMetadata {
		w.Metadata = nil
	}
	if m.ThreadTS != "" && m.ThreadTS != m.TS {
		for _, p := range c.msgs {
			if p.TS == m.ThreadTS {
				w.ParentUserId = p.User
				break
			}
		}
		return w
	}
	var users []string
	for _, r := range c.msgs {
		if r.ThreadTS == m.TS && r.TS != m.TS {
			w.ReplyCount++
			w.LatestReply = r.TS
			if !slices.Contains(users, r.User) {
				users = append(users, r.User)
			}
		}
	}
	if w.ReplyCount > 0 {
		w.ThreadTimestamp = m.TS
		w.ReplyUsers = users
		w.ReplyUsersCount = len(users)
	}
	return w
}

// conversationsHistory lists a conversation's top-level messages (thread
// parents included, replies not) newest first.
func (s *Server) conversationsHistory(p params, _ time.Time) apiResult {
	ch := s.resolveChannel(p.get("channel"))
	if ch == "" {
		return slackError("channel_not_found")
	}
	if code := s.botViewLocked(ch).readCode(); code != "" {
		return slackError(code)
	}
	win, code := readWindow(p)
	if code != "" {
		return slackError(code)
	}
	limit := pageLimit(p, historyDefaultLimit, historyMaxLimit)
	start, ok := "", true
	if c := p.get("cursor"); c != "" {
		if start, ok = decodeCursor(c); !ok {
			return slackError("invalid_cursor")
		}
	}
	res := historyResponse{slackResponse: okResponse, Messages: []*wireMessage{}, Latest: p.get("latest")}
	c, known := s.st.channels[ch]
	if !known {
		return apiResult{resp: res}
	}
	msgs := sortedMessages(c.msgs)
	slices.Reverse(msgs)
	startAt, _ := tsMicros(start)
	for _, m := range msgs {
		if (m.ThreadTS != "" && m.ThreadTS != m.TS) || !win.contains(m.TS) {
			continue
		}
		if at, _ := tsMicros(m.TS); start != "" && at > startAt {
			continue // on an earlier page
		}
		if len(res.Messages) == limit {
			res.HasMore = true
			res.ResponseMetadata = &responseMetadata{Cursor: encodeCursor(m.TS)}
			break
		}
		res.Messages = append(res.Messages, listed(c, m, p.bool("include_all_metadata")))
	}
	return apiResult{resp: res}
}

// conversationsReplies lists a thread: its parent first (on every page, as
// Slack does), then the replies oldest first. ts may name the parent or any
// reply; a message without replies is a thread of one.
func (s *Server) conversationsReplies(p params, _ time.Time) apiResult {
	ch := s.resolveChannel(p.get("channel"))
	if ch == "" {
		return slackError("channel_not_found")
	}
	if code := s.botViewLocked(ch).readCode(); code != "" {
		return slackError(code)
	}
	ts := p.get("ts")
	if ts == "" {
		return slackError("thread_not_found")
	}
	win, code := readWindow(p)
	if code != "" {
		return slackError(code)
	}
	limit := pageLimit(p, repliesDefaultLimit, repliesMaxLimit)
	start, ok := "", true
	if c := p.get("cursor"); c != "" {
		if start, ok = decodeCursor(c); !ok {
			return slackError("invalid_cursor")
		}
	}
	c, known := s.st.channels[ch]
	if !known {
		return slackError("thread_not_found")
	}
	m := s.st.find(ch, ts)
	if m == nil {
		return slackError("thread_not_found")
	}
	parent := m
	if m.ThreadTS != "" && m.ThreadTS != m.TS {
		if parent = s.st.find(ch, m.ThreadTS); parent == nil {
			return slackError("thread_not_found")
		}
	}
	meta := p.bool("include_all_metadata")
	res := historyResponse{slackResponse: okResponse, Messages: []*wireMessage{listed(c, parent, meta)}}
	startAt, _ := tsMicros(start)
	for _, r := range sortedMessages(c.msgs) {
		if r.ThreadTS != parent.TS || r.TS == parent.TS || !win.contains(r.TS) {
			continue
		}
		if at, _ := tsMicros(r.TS); start != "" && at < startAt {
			continue // on an earlier page
		}
		if len(res.Messages) >= max(limit, 2) {
			res.HasMore = true
			res.ResponseMetadata = &responseMetadata{Cursor: encodeCursor(r.TS)}
			break
		}
		res.Messages = append(res.Messages, listed(c, r, meta))
	}
	return apiResult{resp: res}
}
