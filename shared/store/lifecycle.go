package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// lockRun reads a run FOR UPDATE: every lifecycle change takes this lock, so
// close, complete, cancel and late orders serialise per run.
func lockRun(ctx context.Context, tx pgx.Tx, id uuid.UUID) (coffee.Run, error) {
	rows, err := tx.Query(ctx, `SELECT `+runColumns+` FROM coffee_runs WHERE id = $1 FOR UPDATE`, id)
	if err != nil {
		return coffee.Run{}, fmt.Errorf("store: lock run: %w", err)
	}
	return oneRun(rows)
}

// SetVolunteer records userID as the run's volunteer. The first volunteer
// keeps the job: a later one gets the run back with its volunteer and
// changed=false. A run no longer active gives coffee.ErrNotActive.
func SetVolunteer(ctx context.Context, tx pgx.Tx, runID uuid.UUID, userID string) (run coffee.Run, changed bool, err error) {
	run, err = lockRun(ctx, tx, runID)
	if err != nil {
		return run, false, err
	}
	if run.Status != coffee.StatusActive {
		return run, false, coffee.ErrNotActive
	}
	if run.VolunteerUserID != "" {
		return run, false, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE coffee_runs SET volunteer_user_id = $2, updated_at = now() WHERE id = $1`, runID, userID); err != nil {
		return run, false, fmt.Errorf("store: set volunteer: %w", err)
	}
	run.VolunteerUserID = userID
	return run, true, nil
}

// CloseRun stops a run taking orders and assigns its runner in the same
// statement that changes its status. A run with no orders is closed with no
// runner. A run that is not active gives coffee.ErrNotActive (closing twice
// is harmless to callers that treat it as done).
func CloseRun(ctx context.Context, tx pgx.Tx, runID uuid.UUID, now time.Time) (coffee.Run, coffee.Assignment, error) {
	run, err := lockRun(ctx, tx, runID)
	if err != nil {
		return run, coffee.Assignment{}, err
	}
	if run.Status != coffee.StatusActive {
		return run, coffee.Assignment{}, coffee.ErrNotActive
	}
	// A run nobody ordered in closes without a runner, volunteer or not:
	// there is nothing to fetch.
	a := coffee.Assignment{Reason: "nobody ordered"}
	var orders int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM orders WHERE run_id = $1`, runID).Scan(&orders); err != nil {
		return run, a, fmt.Errorf("store: close run: %w", err)
	}
	if orders > 0 {
		cands, err := Candidates(ctx, tx, run, now)
		if err != nil {
			return run, coffee.Assignment{}, err
		}
		a = coffee.PickRunner(run.VolunteerUserID, cands)
	}
	err = tx.QueryRow(ctx, `
		UPDATE coffee_runs SET status = 'closed', runner_user_id = NULLIF($2, ''), assignment_reason = $3,
			closed_at = $4, updated_at = $4
		WHERE id = $1 AND status = 'active'
		RETURNING coalesce(runner_user_id, ''), closed_at`,
		runID, a.RunnerUserID, a.Reason, now.UTC()).Scan(&run.RunnerUserID, &run.ClosedAt)
	if err != nil {
		return run, a, fmt.Errorf("store: close run: %w", err)
	}
	run.Status, run.AssignmentReason, run.ClosedAt = coffee.StatusClosed, a.Reason, run.ClosedAt.UTC()
	return run, a, nil
}

// Candidates are the run's possible runners with their completed runs in
// the fairness window: everyone who ordered in this run, plus the initiator
// if they ordered anywhere in the last 14 days (the initiator is not
// exempt). Cancelled runs do not count.
func Candidates(ctx context.Context, q Querier, run coffee.Run, now time.Time) ([]coffee.Candidate, error) {
	rows, err := q.Query(ctx, `
		WITH people AS (
			SELECT user_id FROM orders WHERE run_id = $1
			UNION
			SELECT o.user_id FROM orders o
			WHERE o.user_id = $2 AND o.created_at > $3::timestamptz - make_interval(days => $4)
		)
		SELECT p.user_id, (
			SELECT count(*) FROM coffee_runs r
			WHERE r.runner_user_id = p.user_id AND r.status = 'completed'
			  AND r.completed_at > $3::timestamptz - make_interval(days => $5) AND r.completed_at <= $3
		)::int
		FROM people p ORDER BY p.user_id`,
		run.ID, run.InitiatorUserID, now.UTC(), coffee.ActiveWindowDays, coffee.FairnessWindowDays)
	if err != nil {
		return nil, fmt.Errorf("store: candidates: %w", err)
	}
	cands, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (coffee.Candidate, error) {
		var c coffee.Candidate
		return c, row.Scan(&c.UserID, &c.CompletedRuns)
	})
	if err != nil {
		return nil, fmt.Errorf("store: candidates: %w", err)
	}
	return cands, nil
}

// CompleteRun marks a closed run completed by its runner. Anyone else gets
// coffee.ErrNotRunner and nothing changes; a second click gets
// coffee.ErrAlreadyCompleted.
func CompleteRun(ctx context.Context, tx pgx.Tx, runID uuid.UUID, userID string, now time.Time) (coffee.Run, error) {
	run, err := lockRun(ctx, tx, runID)
	if err != nil {
		return run, err
	}
	switch {
	case run.Status == coffee.StatusCompleted:
		return run, coffee.ErrAlreadyCompleted
	case run.Status != coffee.StatusClosed || run.RunnerUserID == "":
		return run, coffee.ErrNotActive
	case run.RunnerUserID != userID:
		return run, coffee.ErrNotRunner
	}
	if _, err := tx.Exec(ctx, `UPDATE coffee_runs SET status = 'completed', completed_at = $2, updated_at = $2 WHERE id = $1`,
		runID, now.UTC()); err != nil {
		return run, fmt.Errorf("store: complete run: %w", err)
	}
	run.Status, run.CompletedAt = coffee.StatusCompleted, now.UTC()
	return run, nil
}

// CancelRun cancels the channel's current run (active, or closed and not yet
// completed) for its initiator or runner. After completion it gives
// coffee.ErrAlreadyCompleted; with no run, coffee.ErrRunNotFound; for anyone
// else, coffee.ErrNotAllowed.
func CancelRun(ctx context.Context, tx pgx.Tx, teamID, channelID, userID, reason string, now time.Time) (coffee.Run, error) {
	// The channel's unfinished run if there is one, else its latest (to say
	// why it cannot be cancelled).
	rows, err := tx.Query(ctx, `SELECT `+runColumns+` FROM coffee_runs
		WHERE team_id = $1 AND channel_id = $2
		ORDER BY status IN ('active', 'closed') DESC, created_at DESC LIMIT 1 FOR UPDATE`, teamID, channelID)
	if err != nil {
		return coffee.Run{}, fmt.Errorf("store: cancel run: %w", err)
	}
	run, err := oneRun(rows)
	if err != nil {
		return run, err
	}
	switch run.Status {
	case coffee.StatusCompleted:
		return run, coffee.ErrAlreadyCompleted
	case coffee.StatusCancelled:
		return run, coffee.ErrRunNotFound
	}
	if userID != run.InitiatorUserID && userID != run.RunnerUserID {
		return run, coffee.ErrNotAllowed
	}
	if _, err := tx.Exec(ctx, `UPDATE coffee_runs SET status = 'cancelled', cancelled_at = $2, cancelled_by = $3,
		cancel_reason = $4, updated_at = $2 WHERE id = $1`, run.ID, now.UTC(), userID, reason); err != nil {
		return run, fmt.Errorf("store: cancel run: %w", err)
	}
	run.Status, run.CancelledAt = coffee.StatusCancelled, now.UTC()
	return run, nil
}

// AbandonRun cancels a run nobody could see: CoffeeBuddy could not post its
// message in the channel (a private channel it is not in, an archived one).
// It is cancelled by nobody (cancelled_by NULL) for reason, so the channel
// is free for a new /coffee once the app is invited. A run no longer
// active gives coffee.ErrNotActive.
func AbandonRun(ctx context.Context, tx pgx.Tx, runID uuid.UUID, reason string, now time.Time) (coffee.Run, error) {
	run, err := lockRun(ctx, tx, runID)
	if err != nil {
		return run, err
	}
	if run.Status != coffee.StatusActive {
		return run, coffee.ErrNotActive
	}
	if _, err := tx.Exec(ctx, `UPDATE coffee_runs SET status = 'cancelled', cancelled_at = $2, cancel_reason = $3,
		updated_at = $2 WHERE id = $1`, run.ID, now.UTC(), reason); err != nil {
		return run, fmt.Errorf("store: abandon run: %w", err)
	}
	run.Status, run.CancelledAt = coffee.StatusCancelled, now.UTC()
	return run, nil
}

// HistoryEntry is one line of /coffee-history.
type HistoryEntry struct {
	RunID      uuid.UUID     `db:"id"`
	CreatedAt  time.Time     `db:"created_at"`
	Status     coffee.Status `db:"status"`
	RunnerID   string        `db:"runner_id"`
	RunnerName string        `db:"runner_name"`
	Orders     int           `db:"orders"`
}

// History returns page (from 1) of the channel's runs, newest first, and
// the total number of runs.
func History(ctx context.Context, q Querier, teamID, channelID string, page, pageSize int) ([]HistoryEntry, int, error) {
	var total int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM coffee_runs WHERE team_id = $1 AND channel_id = $2`,
		teamID, channelID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: history: %w", err)
	}
	// Page first, then join and count for the page's rows only: with OFFSET,
	// per-row work before the LIMIT would be done for every skipped run.
	rows, err := q.Query(ctx, `
		SELECT r.id, r.created_at, r.status, coalesce(r.runner_user_id, '') AS runner_id,
			coalesce(nullif(u.display_name, ''), r.runner_user_id, '') AS runner_name,
			(SELECT count(*) FROM orders o WHERE o.run_id = r.id)::int AS orders
		FROM (
			SELECT id, created_at, status, runner_user_id FROM coffee_runs
			WHERE team_id = $1 AND channel_id = $2
			ORDER BY created_at DESC, id LIMIT $3 OFFSET $4
		) r LEFT JOIN users u ON u.user_id = r.runner_user_id
		ORDER BY r.created_at DESC, r.id`,
		teamID, channelID, pageSize, (page-1)*pageSize)
	if err != nil {
		return nil, 0, fmt.Errorf("store: history: %w", err)
	}
	entries, err := pgx.CollectRows(rows, pgx.RowToStructByName[HistoryEntry])
	if err != nil {
		return nil, 0, fmt.Errorf("store: history: %w", err)
	}
	for i := range entries {
		entries[i].CreatedAt = entries[i].CreatedAt.UTC()
	}
	return entries, total, nil
}

// ClaimWarnings marks active runs whose last call is within lead as warned
// and returns them; each run is claimed once, whatever ticks or timers
// overlap. With runs given, only those are considered.
func ClaimWarnings(ctx context.Context, tx pgx.Tx, now time.Time, lead time.Duration, runs ...uuid.UUID) ([]coffee.Run, error) {
	rows, err := tx.Query(ctx, `
		UPDATE coffee_runs SET last_call_warned_at = $1, updated_at = $1
		WHERE status = 'active' AND last_call_warned_at IS NULL
		  AND last_call_at > $1 AND last_call_at <= $1::timestamptz + make_interval(secs => $2)
		  AND (cardinality($3::uuid[]) = 0 OR id = ANY($3))
		RETURNING `+runColumns, now.UTC(), lead.Seconds(), onlyRuns(runs))
	if err != nil {
		return nil, fmt.Errorf("store: claim warnings: %w", err)
	}
	return collectRuns(rows)
}

// onlyRuns is a run filter as a non-NULL array: empty means every run.
func onlyRuns(runs []uuid.UUID) []uuid.UUID {
	if runs == nil {
		return []uuid.UUID{}
	}
	return runs
}

// DueRuns returns the ids of active runs whose last call has passed.
func DueRuns(ctx context.Context, q Querier, now time.Time, limit int) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, `SELECT id FROM coffee_runs WHERE status = 'active' AND last_call_at <= $1
		ORDER BY last_call_at LIMIT $2`, now.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: due runs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("store: due runs: %w", err)
	}
	return ids, nil
}

// Overdue is how many active runs are past their last call, and how far
// past it the earliest of them is (0 when there is none).
type Overdue struct {
	Runs   int
	Oldest time.Duration
}

// OverdueRuns reports the active runs whose last call passed before now:
// run-timer closes a run at its last call and run-tick within a minute, so
// one that stays overdue for minutes is stuck (docs/metrics.md).
func OverdueRuns(ctx context.Context, q Querier, now time.Time) (Overdue, error) {
	var o Overdue
	var secs float64
	err := q.QueryRow(ctx, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM $1::timestamptz - min(last_call_at)), 0)::float8
		FROM coffee_runs WHERE status = 'active' AND last_call_at < $1`, now.UTC()).Scan(&o.Runs, &secs)
	if err != nil {
		return Overdue{}, fmt.Errorf("store: overdue runs: %w", err)
	}
	o.Oldest = time.Duration(max(0, secs) * float64(time.Second))
	return o, nil
}

// ClaimReminders counts a reminder for assigned, unfinished runs whose
// runner was last DMed before now-after and has had fewer than max
// reminders, and returns them. With runs given, only those are considered.
func ClaimReminders(ctx context.Context, tx pgx.Tx, now time.Time, after time.Duration, max int, runs ...uuid.UUID) ([]coffee.Run, error) {
	rows, err := tx.Query(ctx, `
		UPDATE coffee_runs SET reminder_count = reminder_count + 1, updated_at = $1
		WHERE status = 'closed' AND runner_user_id IS NOT NULL
		  AND reminder_sent_at < $1::timestamptz - make_interval(secs => $2) AND reminder_count < $3
		  AND (cardinality($4::uuid[]) = 0 OR id = ANY($4))
		RETURNING `+runColumns, now.UTC(), after.Seconds(), max, onlyRuns(runs))
	if err != nil {
		return nil, fmt.Errorf("store: claim reminders: %w", err)
	}
	return collectRuns(rows)
}

// RecordFirstRunnerDM stamps reminder_sent_at for the first DM to the
// run's runner and reports whether this call did: of the deliveries that
// each saw the DM posted, exactly one records it.
func RecordFirstRunnerDM(ctx context.Context, q Querier, runID uuid.UUID, at time.Time) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE coffee_runs SET reminder_sent_at = $2, updated_at = now()
		WHERE id = $1 AND reminder_sent_at IS NULL`, runID, at.UTC())
	if err != nil {
		return false, fmt.Errorf("store: record runner DM: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RecordRunnerReminder stamps reminder_sent_at for reminder number n (the
// run's reminder_count when it was sent) and reports whether this call did:
// of the deliveries that each saw that reminder posted, exactly one records
// it (the run's row lock orders them; the audit row is the record).
func RecordRunnerReminder(ctx context.Context, tx pgx.Tx, runID uuid.UUID, n int, at time.Time) (bool, error) {
	if _, err := lockRun(ctx, tx, runID); err != nil {
		return false, err
	}
	var recorded bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_logs
		WHERE run_id = $1 AND event_type = 'runner_reminded' AND details->>'reminder' = $2)`, runID, strconv.Itoa(n)).Scan(&recorded); err != nil {
		return false, fmt.Errorf("store: reminder %d recorded: %w", n, err)
	}
	if recorded {
		return false, nil
	}
	return true, MarkRunnerDMed(ctx, tx, runID, at)
}

// MarkRunnerDMed records that Slack accepted a DM to the runner.
func MarkRunnerDMed(ctx context.Context, q Querier, runID uuid.UUID, at time.Time) error {
	if _, err := q.Exec(ctx, `UPDATE coffee_runs SET reminder_sent_at = $2, updated_at = now() WHERE id = $1`, runID, at.UTC()); err != nil {
		return fmt.Errorf("store: mark runner DMed: %w", err)
	}
	return nil
}

func collectRuns(rows pgx.Rows) ([]coffee.Run, error) {
	runs, err := pgx.CollectRows(rows, scanRun)
	if err != nil {
		return nil, fmt.Errorf("store: runs: %w", err)
	}
	return runs, nil
}

// IsDone reports the lifecycle errors that mean "already handled": a
// consumer acknowledges them instead of retrying.
func IsDone(err error) bool {
	return errors.Is(err, coffee.ErrNotActive) || errors.Is(err, coffee.ErrAlreadyCompleted)
}
