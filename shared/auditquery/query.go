package auditquery

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Row is one audit_logs row as stored; details is the JSONB payload,
// verbatim.
type Row struct {
	ID         int64           `db:"id" json:"id"`
	OccurredAt time.Time       `db:"occurred_at" json:"occurred_at"`
	EventType  string          `db:"event_type" json:"event_type"`
	UserID     *string         `db:"actor_user_id" json:"user_id"`
	TeamID     *string         `db:"team_id" json:"team_id"`
	ChannelID  *string         `db:"channel_id" json:"channel_id"`
	RunID      *uuid.UUID      `db:"run_id" json:"run_id"`
	CEID       *string         `db:"ce_id" json:"ce_id"`
	Details    json.RawMessage `db:"details" json:"details"`
}

// Position is where r sits in the keyset order.
func (r Row) Position() Position { return Position{OccurredAt: r.OccurredAt, ID: r.ID} }

// Querier runs a query (a *pgxpool.Pool, a pgx.Tx).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Statement returns the SQL and arguments for up to limit rows of f after
// position after (nil: from the start), in (occurred_at, id) order.
//
// Only the conditions a filter uses are in the WHERE clause, so each
// filter shape gets its own plan and its own index (a catch-all
// "$n IS NULL OR col = $n" would get one mediocre plan for all). The SQL is
// assembled from fixed fragments only; every value is a parameter.
func Statement(f Filter, after *Position, limit int) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v ...any) {
		for i := range v {
			cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)+i+1), 1)
		}
		args = append(args, v...)
		where = append(where, cond)
	}
	add("occurred_at >= ?", f.Start)
	add("occurred_at < ?", f.End)
	switch len(f.EventTypes) {
	case 0:
	case 1:
		add("event_type = ?", f.EventTypes[0])
	default:
		add("event_type = ANY(?)", f.EventTypes)
	}
	if f.UserID != "" {
		add("actor_user_id = ?", f.UserID)
	}
	if f.RunID != uuid.Nil {
		add("run_id = ?", f.RunID)
	}
	if f.ChannelID != "" {
		add("channel_id = ?", f.ChannelID)
	}
	if f.TeamID != "" {
		add("team_id = ?", f.TeamID)
	}
	if after != nil {
		// A row comparison, which a btree on (…, occurred_at, id) uses as
		// one index condition: the page starts right after the cursor.
		add("(occurred_at, id) > (?, ?)", after.OccurredAt, after.ID)
	}
	args = append(args, limit)
	sql := `SELECT id, occurred_at, event_type, actor_user_id, team_id, channel_id, run_id, ce_id, details
		FROM audit_logs
		WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY occurred_at, id
		LIMIT $` + strconv.Itoa(len(args))
	return sql, args
}

// query runs a Statement. The unnamed-statement mode plans every execution
// with its actual values: a cached generic plan would estimate the time
// range blind and could pick a plan that is fine for an hour and ruinous
// for 90 days.
func query(ctx context.Context, q Querier, f Filter, after *Position, limit int) (pgx.Rows, error) {
	sql, args := Statement(f, after, limit)
	return q.Query(ctx, sql, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
}

// Page returns up to limit rows of f after position after, and whether
// more follow.
func Page(ctx context.Context, q Querier, f Filter, after *Position, limit int) (_ []Row, more bool, err error) {
	rows, err := query(ctx, q, f, after, limit+1) // one more: is there a next page?
	if err != nil {
		return nil, false, fmt.Errorf("auditquery: page: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[Row])
	if err != nil {
		return nil, false, fmt.Errorf("auditquery: page: %w", err)
	}
	for i := range out {
		out[i].OccurredAt = out[i].OccurredAt.UTC()
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// ExportBatch is how many rows one export query reads: big enough that the
// per-query cost vanishes, small enough that each query is an index range
// scan with a LIMIT (never a sort of the whole range) and a slow reader
// holds a connection only for one batch's rows.
const ExportBatch = 5000

// Stream calls emit for every row of f after position after, in order, a
// row at a time (pgx rows, never a slice of the range), in batches of
// ExportBatch keyset queries. It returns how many rows emit accepted. The
// *Row passed to emit is reused: copy what you keep.
func Stream(ctx context.Context, q Querier, f Filter, after *Position, emit func(*Row) error) (int64, error) {
	var n int64
	for {
		rows, err := query(ctx, q, f, after, ExportBatch)
		if err != nil {
			return n, fmt.Errorf("auditquery: export: %w", err)
		}
		var r Row
		got := 0
		for rows.Next() {
			// Scan, not RowToStructByName: no per-row reflection on the
			// export's hot path. The order is Statement's select list.
			err = rows.Scan(&r.ID, &r.OccurredAt, &r.EventType, &r.UserID, &r.TeamID, &r.ChannelID, &r.RunID, &r.CEID, &r.Details)
			if err != nil {
				rows.Close()
				return n, fmt.Errorf("auditquery: export: %w", err)
			}
			r.OccurredAt = r.OccurredAt.UTC()
			if err := emit(&r); err != nil {
				rows.Close()
				return n, err
			}
			n++
			got++
		}
		if err := rows.Err(); err != nil {
			return n, fmt.Errorf("auditquery: export: %w", err)
		}
		if got < ExportBatch {
			return n, nil
		}
		p := r.Position()
		after = &p
	}
}
