package slackstandin

import (
	"time"
)

// What simulated users did, for the web page.
//
// Slack posts neither a slash command nor a button click to the
// conversation: the channel only ever sees what the app posts. A person
// playing several users in one page still needs to see what "they" just
// did, so the page shows each command and click as a muted line, only to
// the user who typed or clicked it (and to the page's watch mode), never
// as a message: conversations.history and every other Web API answer stay
// exactly what Slack would give. The exception is Slack's own: a command
// the app answers in_channel is shown to the channel, as the user's
// message. A command Slack could not deliver shows
// as Slack shows it, from Slackbot, only to that user.

// activityKind says what a user did.
type activityKind string

const (
	activityCommand activityKind = "command" // typed a slash command
	activityClick   activityKind = "click"   // clicked a button in a message
	activityFailed  activityKind = "failed"  // Slackbot: "/coffee failed with the error …"
)

// activity is one thing a user did, in the conversation where they did it.
type activity struct {
	Kind    activityKind
	Channel string
	User    string
	Text    string // the command as typed, the button's label, or the failure
	At      time.Time
	// TS is the message clicked, if any, so a click in a thread shows there.
	ThreadTS string
	// Shared: the app answered the command in_channel, so Slack shows the
	// command to everyone, as the user's message.
	Shared bool
}

// maxActivity bounds what is kept: the page shows recent play, and a load
// test through the simulate endpoints must not grow memory without end.
const maxActivity = 2000

// addActivityLocked records a and wakes the page. s.mu must be held.
func (s *Server) addActivityLocked(a *activity) {
	if a.Channel == "" || a.User == "" {
		return
	}
	s.st.activity = append(s.st.activity, a)
	if n := len(s.st.activity); n > maxActivity {
		s.st.activity = append([]*activity(nil), s.st.activity[n-maxActivity:]...)
	}
	s.notifyLocked()
}
