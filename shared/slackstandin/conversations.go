package slackstandin

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Conversations and who is in them.
//
// Slack answers a bot token according to membership, and the app must cope
// with every such answer (DESIGN §3: they are permanent, never retried), so
// the stand-in keeps a registry of the conversations a test or a script
// describes and applies Slack's rules to them:
//
//   - posting (chat.postMessage, chat.postEphemeral) where the app is not a
//     member: not_in_channel; into an archived channel: is_archived;
//   - editing (chat.update) where the app is not a member: not_in_channel
//     (the method's documented errors omit it; a bot that left a channel
//     cannot edit there, and not_in_channel is what Slack calls that
//     elsewhere); in an archived channel: is_inactive, the code chat.update
//     documents for "a frozen, archived or deleted channel";
//   - reading (conversations.history, conversations.replies) where the app
//     is not a member: not_in_channel. conversations.history documents it
//     ("Only user tokens can access public channels they are not in");
//     conversations.replies does not list it, but applies the same access
//     rule, and one code for both keeps callers simple;
//   - a private channel the app is not in does not exist for it:
//     channel_not_found from every method;
//   - chat.postEphemeral to a user who is not a member: user_not_in_channel
//     ("Intended recipient is not in the specified channel").
//
// A DM ("D"+user, as conversations.open answers) has exactly two members,
// that user and the app, whether registered or not.
//
// The lenient default: a conversation nobody registered (any id not
// starting with D) is a public channel the app was added to, with every user
// a member. That is how the stand-in behaved before the registry existed and
// what every test that never mentions membership relies on: a channel the
// stand-in was not told about is one the app was added to.

// Conversation describes a channel to the stand-in (Options.Conversations,
// AddConversation).
type Conversation struct {
	// ID is the channel id ("C…"). DMs cannot be registered: their members
	// are fixed.
	ID string
	// Name is the channel's name without "#" (default: Options.Channels'
	// name, else the lower-cased id).
	Name string
	// Private channels are invisible to the app unless it is a member.
	Private bool
	// Archived channels accept no posts, edits or joins.
	Archived bool
	// BotMember says whether the app's bot user is in the channel.
	BotMember bool
	// Members are the user ids in the channel, the bot aside (BotUserID
	// listed here counts as BotMember).
	Members []string
}

// ErrNotRegistrable is returned for a conversation id that cannot be
// registered: empty, or a DM (whose members are always the user and the
// app).
var ErrNotRegistrable = errors.New("slackstandin: conversation id is empty or a DM, which cannot be registered")

// convState is a registered conversation.
type convState struct {
	c Conversation
	// everyone: registered by a run-time change to a conversation nobody
	// had registered; it keeps the lenient default's every-user-is-a-member.
	everyone bool
}

func registrable(id string) bool { return id != "" && !isDM(id) }

func isDM(id string) bool { return strings.HasPrefix(id, "D") }

// normalized copies c, folding BotUserID into BotMember and dropping
// duplicate and empty members.
func normalized(c Conversation) Conversation {
	var members []string
	for _, m := range c.Members {
		switch {
		case m == BotUserID:
			c.BotMember = true
		case m != "" && !slices.Contains(members, m):
			members = append(members, m)
		}
	}
	c.Members = members
	return c
}

// AddConversation registers c (replacing any earlier registration of its
// id), so that Slack's membership rules apply to it.
func (s *Server) AddConversation(c Conversation) error {
	if !registrable(c.ID) {
		return ErrNotRegistrable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.convs[c.ID] = &convState{c: normalized(c)}
	s.notifyLocked()
	return nil
}

// ArchiveConversation archives channel id. A channel nobody registered is
// registered first as the lenient default describes it (public, the app and
// every user members), then archived.
func (s *Server) ArchiveConversation(id string) error {
	return s.changeConversation(id, func(cs *convState) { cs.c.Archived = true })
}

// SetBotMember adds the app's bot user to channel id or removes it (an
// unregistered channel is registered first, as for ArchiveConversation).
func (s *Server) SetBotMember(id string, member bool) error {
	return s.changeConversation(id, func(cs *convState) { cs.c.BotMember = member })
}

// AddMember adds user to channel id (an unregistered channel is registered
// first, as for ArchiveConversation; every user is already a member there).
func (s *Server) AddMember(id, user string) error {
	if user == BotUserID {
		return s.SetBotMember(id, true)
	}
	return s.changeConversation(id, func(cs *convState) { cs.addMember(user) })
}

func (s *Server) changeConversation(id string, change func(*convState)) error {
	if !registrable(id) {
		return ErrNotRegistrable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.st.convs[id]
	if !ok {
		cs = &convState{c: Conversation{ID: id, BotMember: true}, everyone: true}
		s.st.convs[id] = cs
	}
	change(cs)
	s.notifyLocked()
	return nil
}

func (cs *convState) addMember(user string) {
	if user != "" && !slices.Contains(cs.c.Members, user) {
		cs.c.Members = append(cs.c.Members, user)
	}
}

// Conversation returns the registration of channel id as it now stands
// (joins and members added included); false when nobody registered it.
func (s *Server) Conversation(id string) (Conversation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.st.convs[id]
	if !ok {
		return Conversation{}, false
	}
	c := cs.c
	c.Members = slices.Clone(c.Members)
	return c, true
}

// IsMember reports whether user (BotUserID for the app) is a member of
// conversation id by the rules above.
func (s *Server) IsMember(id, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isMemberLocked(s.resolveChannel(id), user)
}

// botView is how the app's bot user sees a conversation.
type botView struct {
	visible   bool // false: a private channel the bot is not in
	botMember bool
	private   bool
	archived  bool
}

// botViewLocked applies the registry, the DM rule and the lenient default.
// s.mu must be held.
func (s *Server) botViewLocked(ch string) botView {
	cs, ok := s.st.convs[ch]
	if isDM(ch) || !ok {
		return botView{visible: true, botMember: true}
	}
	c := cs.c
	return botView{visible: !c.Private || c.BotMember, botMember: c.BotMember, private: c.Private, archived: c.Archived}
}

// postCode is Slack's refusal of chat.postMessage / chat.postEphemeral,
// "" when the post may go ahead. An invisible channel is not found before
// anything else; an archived one is refused whoever asks.
func (v botView) postCode() string {
	switch {
	case !v.visible:
		return "channel_not_found"
	case v.archived:
		return "is_archived"
	case !v.botMember:
		return "not_in_channel"
	}
	return ""
}

// updateCode is chat.update's refusal (see the comment at the top).
func (v botView) updateCode() string {
	switch {
	case !v.visible:
		return "channel_not_found"
	case v.archived:
		return "is_inactive"
	case !v.botMember:
		return "not_in_channel"
	}
	return ""
}

// readCode is conversations.history's and conversations.replies' refusal;
// an archived channel can still be read.
func (v botView) readCode() string {
	switch {
	case !v.visible:
		return "channel_not_found"
	case !v.botMember:
		return "not_in_channel"
	}
	return ""
}

// isMemberLocked: the app per botViewLocked; a DM holds its user; a
// registered channel its members; anything else everyone. A DM whose user
// the stand-in cannot tell (an id that is not "D"+user) is treated
// leniently. s.mu must be held.
func (s *Server) isMemberLocked(ch, user string) bool {
	if user == BotUserID {
		return s.botViewLocked(ch).botMember
	}
	if isDM(ch) {
		owner, ok := s.st.dmUsers[ch]
		return !ok || owner == user
	}
	cs, ok := s.st.convs[ch]
	if !ok || cs.everyone {
		return true
	}
	return slices.Contains(cs.c.Members, user)
}

// numMembersLocked counts a conversation's members, the app included.
func (s *Server) numMembersLocked(ch string) int {
	cs, ok := s.st.convs[ch]
	if isDM(ch) {
		return 2
	}
	if !ok || cs.everyone {
		return len(s.opts.Users) + 1
	}
	n := len(cs.c.Members)
	if cs.c.BotMember {
		n++
	}
	return n
}

// userActedLocked records that user typed or clicked in ch. A person can
// only do that where they are a member, so a registered channel gains them.
// A DM's members are fixed: a click in someone else's DM is a forwarded
// message, not membership. s.mu must be held.
func (s *Server) userActedLocked(ch, user string) {
	if cs, ok := s.st.convs[ch]; ok && !isDM(ch) && user != BotUserID {
		cs.addMember(user)
	}
}

// archivedLocked reports whether ch is a registered, archived channel.
func (s *Server) archivedLocked(ch string) bool {
	cs, ok := s.st.convs[ch]
	return ok && cs.c.Archived
}

// conversationsJoin is conversations.join for the bot token: a public
// channel is joined (the answer carries the channel object, and a warning
// when the app was already in), a private channel cannot be joined by a
// bot (method_not_supported_for_channel_type, one of the method's
// documented errors), nor can a DM or group DM; an
// archived channel is refused with is_archived (the documented "typical
// error response if the conversation is archived"). A channel nobody
// registered is, by the lenient default, one the app is already in.
func (s *Server) conversationsJoin(p params, now time.Time) apiResult {
	id := p.get("channel")
	if id == "" || !strings.ContainsAny(id[:1], "CGD") {
		return slackError("channel_not_found") // a user id is not a conversation
	}
	cs, registered := s.st.convs[id]
	if isDM(id) || (!registered && strings.HasPrefix(id, "G")) {
		return slackError("method_not_supported_for_channel_type")
	}
	var lines []string
	warning := ""
	switch {
	case !registered:
		warning = "already_in_channel"
	case cs.c.Private && !cs.c.BotMember:
		return slackError("method_not_supported_for_channel_type")
	case cs.c.Archived:
		return slackError("is_archived")
	case cs.c.BotMember:
		warning = "already_in_channel"
	default:
		cs.c.BotMember = true
		lines = append(lines, "["+s.place(id)+"] "+BotName+" joined")
	}
	type joinResponse struct {
		slackResponse
		Channel slack.Channel `json:"channel"`
		Warning string        `json:"warning,omitempty"`
	}
	res := joinResponse{slackResponse: okResponse, Channel: s.channelObject(id, now), Warning: warning}
	if warning != "" {
		res.ResponseMetadata = &responseMetadata{Warnings: []string{warning}}
	}
	return apiResult{resp: res, lines: lines}
}
