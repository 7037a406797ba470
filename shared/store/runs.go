package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// NewRun is what starting a run needs.
type NewRun struct {
	TeamID          string
	ChannelID       string
	InitiatorUserID string
	LastCallAt      time.Time
	CreatedAt       time.Time
}

const runColumns = `id, team_id, channel_id, initiator_user_id, status, last_call_at,
	coalesce(runner_user_id, ''), coalesce(volunteer_user_id, ''), coalesce(assignment_reason, ''),
	coalesce(slack_message_ts, ''), created_at, last_call_warned_at, closed_at, completed_at, cancelled_at,
	reminder_sent_at, reminder_count`

// CreateRun inserts an active run. If the channel already has one, it
// returns that run and coffee.ErrRunActive: the partial unique index decides,
// so two concurrent /coffee commands cannot both create a run.
func CreateRun(ctx context.Context, tx pgx.Tx, r NewRun) (coffee.Run, error) {
	// A savepoint keeps the transaction usable after the unique violation.
	var run coffee.Run
	err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
		rows, err := sp.Query(ctx, `
			INSERT INTO coffee_runs (team_id, channel_id, initiator_user_id, status, last_call_at, created_at, updated_at)
			VALUES ($1, $2, $3, 'active', $4, $5, $5)
			RETURNING `+runColumns,
			r.TeamID, r.ChannelID, r.InitiatorUserID, r.LastCallAt.UTC(), r.CreatedAt.UTC())
		if err != nil {
			return err
		}
		run, err = pgx.CollectExactlyOneRow(rows, scanRun)
		return err
	})
	if uniqueViolation(err, "coffee_runs_one_active_per_channel") {
		active, aerr := ActiveRun(ctx, tx, r.TeamID, r.ChannelID)
		if aerr != nil {
			return coffee.Run{}, fmt.Errorf("store: create run: %w", aerr)
		}
		return active, coffee.ErrRunActive
	}
	if err != nil {
		return coffee.Run{}, fmt.Errorf("store: create run: %w", err)
	}
	return run, nil
}

// ActiveRun returns the channel's active run or coffee.ErrRunNotFound.
func ActiveRun(ctx context.Context, q Querier, teamID, channelID string) (coffee.Run, error) {
	rows, err := q.Query(ctx, `SELECT `+runColumns+` FROM coffee_runs
		WHERE team_id = $1 AND channel_id = $2 AND status = 'active'`, teamID, channelID)
	if err != nil {
		return coffee.Run{}, fmt.Errorf("store: active run: %w", err)
	}
	return oneRun(rows)
}

// LatestRun returns the channel's newest run, whatever its status, or
// coffee.ErrRunNotFound.
func LatestRun(ctx context.Context, q Querier, teamID, channelID string) (coffee.Run, error) {
	rows, err := q.Query(ctx, `SELECT `+runColumns+` FROM coffee_runs
		WHERE team_id = $1 AND channel_id = $2 ORDER BY created_at DESC LIMIT 1`, teamID, channelID)
	if err != nil {
		return coffee.Run{}, fmt.Errorf("store: latest run: %w", err)
	}
	return oneRun(rows)
}

// GetRun returns a run by id or coffee.ErrRunNotFound.
func GetRun(ctx context.Context, q Querier, id uuid.UUID) (coffee.Run, error) {
	rows, err := q.Query(ctx, `SELECT `+runColumns+` FROM coffee_runs WHERE id = $1`, id)
	if err != nil {
		return coffee.Run{}, fmt.Errorf("store: get run: %w", err)
	}
	return oneRun(rows)
}

// SetRunMessage records the channel message that shows the run, so later
// changes update it in place.
func SetRunMessage(ctx context.Context, q Querier, id uuid.UUID, ts string) error {
	if _, err := q.Exec(ctx, `UPDATE coffee_runs SET slack_message_ts = $2, updated_at = now() WHERE id = $1`, id, ts); err != nil {
		return fmt.Errorf("store: set run message: %w", err)
	}
	return nil
}

// UpsertUser remembers a Slack user's display name for messages and history.
func UpsertUser(ctx context.Context, q Querier, teamID, userID, displayName string) error {
	_, err := q.Exec(ctx, `
		INSERT INTO users (user_id, team_id, display_name) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name, updated_at = now()
		WHERE users.display_name IS DISTINCT FROM EXCLUDED.display_name`,
		userID, teamID, displayName)
	if err != nil {
		return fmt.Errorf("store: upsert user: %w", err)
	}
	return nil
}

func oneRun(rows pgx.Rows) (coffee.Run, error) {
	run, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return coffee.Run{}, coffee.ErrRunNotFound
	}
	if err != nil {
		return coffee.Run{}, fmt.Errorf("store: %w", err)
	}
	return run, nil
}

func scanRun(row pgx.CollectableRow) (coffee.Run, error) {
	var r coffee.Run
	var status string
	var warned, closed, completed, cancelled, reminded *time.Time
	err := row.Scan(&r.ID, &r.TeamID, &r.ChannelID, &r.InitiatorUserID, &status, &r.LastCallAt,
		&r.RunnerUserID, &r.VolunteerUserID, &r.AssignmentReason, &r.SlackMessageTS, &r.CreatedAt,
		&warned, &closed, &completed, &cancelled, &reminded, &r.ReminderCount)
	r.Status = coffee.Status(status)
	r.LastCallAt, r.CreatedAt = r.LastCallAt.UTC(), r.CreatedAt.UTC()
	r.LastCallWarnedAt, r.ClosedAt, r.CompletedAt = utc(warned), utc(closed), utc(completed)
	r.CancelledAt, r.ReminderSentAt = utc(cancelled), utc(reminded)
	return r, err
}

// utc turns a nullable timestamp into a UTC time, zero for NULL.
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
