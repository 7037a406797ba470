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

	// AuditQueried records a read of the audit trail through audit-api:
	// who (the token's subject and client), which filters, how many rows
	// were served. Reading the trail is itself part of the trail.
	AuditQueried = "audit_queried"
	// AuditExportStarted is written before the first row of an NDJSON
	// export leaves, so an export is on record even if the process dies
	// mid-stream; the matching audit_queried row carries the rows sent.
	AuditExportStarted = "audit_export_started"
)

// Types lists every audit event type, in a stable order: the values the
// audit API accepts as event_type and documents. TestTypesComplete keeps it
// in step with the constants.
var Types = []string{
	RunCreated, RunAnnounced, OrderPlaced, OrderUpdated, VolunteerSet, LastCallWarned,
	RunClosed, RunnerDMed, ReminderDue, RunnerReminded, RunCompleted, RunCancelled,
	RunAbandoned, PrefsPurged, HousekeepingDone, RetentionDone, AuditQueried, AuditExportStarted,
}

// Known reports whether t is one of Types.
func Known(t string) bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

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
