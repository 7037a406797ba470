package slackstandin

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The directory: who is in the workspace and which channels it has, as the
// web page shows them. Names come from Options.Users and Options.Channels,
// from the user_name of a simulated command or interaction (what Slack
// puts there is the user's name, so a stand-in that has seen it knows it),
// and from people and channels added on the page. A configured name wins
// over a learned one; Reset forgets what was learned.

// User is a workspace member as the web page lists them.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// maxDisplayName is Slack's limit on a display name.
const maxDisplayName = 80

// Errors from AddUser and AddChannel.
var (
	ErrBadName = errors.New("slackstandin: a name needs a letter or digit and at most 80 characters")
	ErrTaken   = errors.New("slackstandin: that id is taken")
)

// learnUserLocked remembers name for user unless Options.Users names them.
// s.mu must be held.
func (s *Server) learnUserLocked(user, name string) {
	name = strings.TrimSpace(name)
	if user == "" || user == BotUserID || name == "" || name == user {
		return
	}
	if _, configured := s.opts.Users[user]; configured {
		return
	}
	if s.st.userNames[user] != name {
		s.st.userNames[user] = name
		s.notifyLocked()
	}
}

// AddUser adds a person to the workspace (the page's "add someone"). An
// empty id is made from the name ("Erin" → "U0ERIN"); the name must hold a
// letter or digit.
func (s *Server) AddUser(id, name string) (User, error) {
	name = strings.TrimSpace(name)
	if !validName(name) {
		return User{}, ErrBadName
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "" {
		id = s.freeIDLocked("U0", name, func(id string) bool { return s.knownUserLocked(id) })
	} else if !validID(id, "UW") || id == BotUserID {
		return User{}, ErrBadName
	} else if s.knownUserLocked(id) {
		return User{}, ErrTaken
	}
	s.st.userNames[id] = name
	s.st.addedUsers = append(s.st.addedUsers, id)
	s.notifyLocked()
	return User{ID: id, Name: name}, nil
}

// Users lists the people the stand-in knows by name, sorted by name.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usersLocked()
}

func (s *Server) usersLocked() []User {
	seen := map[string]bool{}
	var out []User
	add := func(id string) {
		if !seen[id] && id != BotUserID {
			seen[id] = true
			out = append(out, User{ID: id, Name: s.displayName(id)})
		}
	}
	for id := range s.opts.Users {
		add(id)
	}
	for id := range s.st.userNames {
		add(id)
	}
	slices.SortFunc(out, func(a, b User) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func (s *Server) knownUserLocked(id string) bool {
	_, a := s.opts.Users[id]
	_, b := s.st.userNames[id]
	return a || b || id == BotUserID
}

// AddChannel adds a public channel (the page's "add a channel"): one the
// app is in, with everyone a member, like any channel nobody registered.
func (s *Server) AddChannel(name string) (string, error) {
	name = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(name), "#"))
	if !validName(name) {
		return "", ErrBadName
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.publicChannelsLocked() {
		if s.channelName(id) == name {
			return id, nil // Slack's channel names are unique
		}
	}
	id := s.freeIDLocked("C0", name, func(id string) bool {
		_, used := s.st.channels[id]
		_, named := s.opts.Channels[id]
		_, reg := s.st.convs[id]
		return used || named || reg || slices.Contains(s.st.addedChannels, id)
	})
	s.st.channelNames[id] = name
	s.st.addedChannels = append(s.st.addedChannels, id)
	s.notifyLocked()
	return id, nil
}

// publicChannelsLocked lists the channels the page shows to everyone:
// DefaultChannelID, the configured ones, those added on the page, the
// registered ones and any other channel used so far, in that order.
// Private registered channels are included; callers filter by membership.
func (s *Server) publicChannelsLocked() []string {
	var out []string
	add := func(id string) {
		if id != "" && !isDM(id) && !strings.HasPrefix(id, "G") && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	add(DefaultChannelID)
	for _, id := range slices.Sorted(maps.Keys(s.opts.Channels)) {
		add(id)
	}
	for _, id := range s.st.addedChannels {
		add(id)
	}
	for _, id := range slices.Sorted(maps.Keys(s.st.convs)) {
		add(id)
	}
	for _, id := range s.st.order {
		add(id)
	}
	return out
}

// freeIDLocked makes an id from prefix and the name's letters and digits,
// numbered when taken.
func (s *Server) freeIDLocked(prefix, name string, taken func(string) bool) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) && b.Len() < 16 {
			b.WriteRune(r)
		}
	}
	base := prefix + b.String()
	if b.Len() == 0 {
		base = prefix + "X"
	}
	id := base
	for n := 2; taken(id); n++ {
		id = base + strconv.Itoa(n)
	}
	return id
}

func validName(name string) bool {
	return utf8.RuneCountInString(name) <= maxDisplayName && strings.IndexFunc(name, func(r rune) bool {
		return unicode.IsLetter(r) || unicode.IsDigit(r)
	}) >= 0
}

// validID: a Slack-like id, upper-case letters and digits after one of the
// allowed first letters.
func validID(id, first string) bool {
	if len(id) < 2 || len(id) > 24 || !strings.ContainsRune(first, rune(id[0])) {
		return false
	}
	for _, r := range id[1:] {
		if !('A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}
