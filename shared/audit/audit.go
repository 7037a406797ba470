// Package audit writes the audit log: one row per state change, in the
// same transaction as the change, for compliance queries.
package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Audit event types.
const (
	RunCreated     = "run_created"
	RunAnnounced   = "run_announced"
	OrderPlaced    = "order_placed"
	OrderUpdated   = "order_updated"
	VolunteerSet   = "volunteer_set"
	LastCallWarned = "last_call_warned"
	RunClosed      = "run_closed" // details carry the runner and why, or that nobody ordered
	RunnerDMed     = "runner_dmed"
	ReminderDue    = "reminder_due"    // run-tick queued a reminder
	RunnerReminded = "runner_reminded" // the reminder DM was sent
	RunCompleted   = "run_completed"
	RunCancelled   = "run_cancelled"
	RunAbandoned   = "run_abandoned" // the app could not post the run message (not in the channel); cancelled by nobody
	PrefsPurged    = "preferences_purged"
)

// Entry is one audit row.
type Entry struct {
	EventType   string
	ActorUserID string
	TeamID      string
	ChannelID   string
	RunID       uuid.UUID // uuid.Nil when not about a run
	CEID        string    // the CloudEvent that caused the change
	Details     map[string]any
}

// Record inserts e within tx.
func Record(ctx context.Context, tx pgx.Tx, e Entry) error {
	details, err := json.Marshal(e.Details)
	if err != nil {
		return fmt.Errorf("audit: details: %w", err)
	}
	if e.Details == nil {
		details = []byte(`{}`)
	}
	var runID *uuid.UUID
	if e.RunID != uuid.Nil {
		runID = &e.RunID
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO audit_logs (event_type, actor_user_id, team_id, channel_id, run_id, ce_id, details)
		VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), NULLIF($4, ''), $5, NULLIF($6, ''), $7)`,
		e.EventType, e.ActorUserID, e.TeamID, e.ChannelID, runID, e.CEID, details)
	if err != nil {
		return fmt.Errorf("audit: record %s: %w", e.EventType, err)
	}
	return nil
}
