package timers

import (
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
)

func TestDue(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	timing := Timing{WarnBefore: 2 * time.Minute, RemindAfter: 20 * time.Minute}
	active := coffee.Run{Status: coffee.StatusActive, LastCallAt: at}
	warned := active
	warned.LastCallWarnedAt = at.Add(-2 * time.Minute)
	closed := coffee.Run{Status: coffee.StatusClosed, LastCallAt: at, RunnerUserID: "U2", ReminderSentAt: at.Add(time.Minute)}
	notDMed := closed
	notDMed.ReminderSentAt = time.Time{}
	reminded := closed
	reminded.ReminderCount = MaxReminders
	noRunner := closed
	noRunner.RunnerUserID = ""
	completed := closed
	completed.Status = coffee.StatusCompleted
	cancelled := active
	cancelled.Status = coffee.StatusCancelled
	for _, tc := range []struct {
		name string
		run  coffee.Run
		kind string
		want time.Time
		ok   bool
	}{
		{"warning of an active run", active, Warn, at.Add(-2 * time.Minute), true},
		{"warning already given", warned, Warn, time.Time{}, false},
		{"last call of an active run", active, LastCall, at, true},
		{"last call of a closed run", closed, LastCall, time.Time{}, false},
		{"last call of a cancelled run", cancelled, LastCall, time.Time{}, false},
		{"reminder after the DM", closed, Remind, at.Add(21 * time.Minute), true},
		{"reminder before any DM", notDMed, Remind, time.Time{}, false},
		{"reminders used up", reminded, Remind, time.Time{}, false},
		{"reminder without a runner", noRunner, Remind, time.Time{}, false},
		{"reminder of a completed run", completed, Remind, time.Time{}, false},
		{"reminder of an active run", active, Remind, time.Time{}, false},
		{"unknown kind", active, "lunch", time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Due(tc.run, tc.kind, timing)
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Fatalf("Due = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	for _, k := range Kinds {
		if !Valid(k) {
			t.Errorf("Valid(%q) = false", k)
		}
	}
	if Valid("") || Valid("Warn") {
		t.Error("Valid accepts what is not a kind")
	}
}
