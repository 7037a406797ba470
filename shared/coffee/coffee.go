// Package coffee holds CoffeeBuddy's domain types and the rules that need
// no I/O. Storage lives in package store, Slack rendering in package blocks.
package coffee

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Status is a coffee run's lifecycle state.
type Status string

// Run states. Only one run per channel may be active (collecting orders);
// the database enforces it.
const (
	StatusActive    Status = "active"
	StatusClosed    Status = "closed"
	StatusCompleted Status = "completed"
	StatusCancelled Status = "cancelled"
)

// Run is one coffee run.
type Run struct {
	ID              uuid.UUID
	TeamID          string
	ChannelID       string
	InitiatorUserID string
	Status          Status
	LastCallAt      time.Time
	RunnerUserID    string
	VolunteerUserID string
	// AssignmentReason says why the runner was picked, for the thread.
	AssignmentReason string
	SlackMessageTS   string
	CreatedAt        time.Time
	LastCallWarnedAt time.Time // zero until warned
	ClosedAt         time.Time
	CompletedAt      time.Time
	CancelledAt      time.Time
	ReminderSentAt   time.Time // when the runner was last DMed
	ReminderCount    int
}

// Domain errors, compared with errors.Is.
var (
	ErrRunActive   = errors.New("coffee: the channel already has an active run")
	ErrRunNotFound = errors.New("coffee: no such run")
)

// Limits on `/coffee N`.
const (
	MinLastCall = time.Minute
	MaxLastCall = 4 * time.Hour
)

// ParseLastCall reads the optional argument of `/coffee [N]`: minutes to
// last call, as "5", "5m", "5 min" or "in 5 minutes". Empty means def. The
// error text is shown to the user as is.
func ParseLastCall(text string, def time.Duration) (time.Duration, error) {
	s := strings.ToLower(strings.TrimSpace(text))
	s = strings.TrimPrefix(s, "last call")
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "in "))
	if s == "" {
		return def, nil
	}
	for _, suffix := range []string{"minutes", "minute", "mins", "min", "m"} {
		if t, ok := strings.CutSuffix(s, suffix); ok {
			s = strings.TrimSpace(t)
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("I didn't understand %q. Try `/coffee` or `/coffee 15` (minutes until last call).", text)
	}
	d := time.Duration(n) * time.Minute
	if d < MinLastCall || d > MaxLastCall {
		return 0, fmt.Errorf("Last call must be between %d and %d minutes away.", int(MinLastCall.Minutes()), int(MaxLastCall.Minutes()))
	}
	return d, nil
}
