package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
)

// SQLSTATE codes the domain code will map to its own errors.
const (
	uniqueViolation = "23505"
	checkViolation  = "23514"
	fkViolation     = "23503"
)

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func insertRun(ctx context.Context, pool *pgxpool.Pool, team, channel, status string) (string, error) {
	var id string
	err := pool.QueryRow(ctx, `
		INSERT INTO coffee_runs (team_id, channel_id, initiator_user_id, status, last_call_at)
		VALUES ($1, $2, 'U1', $3, now() + interval '10 minutes')
		RETURNING id`, team, channel, status).Scan(&id)
	return id, err
}

func TestOneActiveRunPerChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	first, err := insertRun(ctx, db.Pool, "T1", "C1", "active")
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name          string
		team, channel string
		status        string
		wantCode      string
	}{
		{"second active run in the same channel", "T1", "C1", "active", uniqueViolation},
		{"active run in another channel", "T1", "C2", "active", ""},
		{"same channel id in another team", "T2", "C1", "active", ""},
		{"closed run alongside the active one", "T1", "C1", "closed", ""},
		{"unknown status", "T1", "C3", "paused", checkViolation},
	}
	for _, s := range steps {
		_, err := insertRun(ctx, db.Pool, s.team, s.channel, s.status)
		if got := pgCode(err); got != s.wantCode {
			t.Errorf("%s: SQLSTATE %q (err %v), want %q", s.name, got, err, s.wantCode)
		}
	}

	// Once the active run completes, the channel may start a new one.
	if _, err := db.Pool.Exec(ctx,
		`UPDATE coffee_runs SET status = 'completed', completed_at = now() WHERE id = $1`, first); err != nil {
		t.Fatal(err)
	}
	if _, err := insertRun(ctx, db.Pool, "T1", "C1", "active"); err != nil {
		t.Errorf("new active run after completion: %v", err)
	}
}

func TestOrderConstraints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	run, err := insertRun(ctx, db.Pool, "T1", "C1", "active")
	if err != nil {
		t.Fatal(err)
	}
	other, err := insertRun(ctx, db.Pool, "T1", "C2", "active")
	if err != nil {
		t.Fatal(err)
	}

	// Steps run in order against the same run: the first order makes the
	// second one by the same user a duplicate.
	steps := []struct {
		name           string
		run, user      string
		drink, size    string
		customizations string
		wantCode       string
	}{
		{"first order", run, "U1", "latte", "medium", "oat milk", ""},
		{"same user orders twice in one run", run, "U1", "mocha", "small", "", uniqueViolation},
		{"same user in another run", other, "U1", "mocha", "small", "", ""},
		{"another user in the same run", run, "U2", "espresso", "small", "", ""},
		{"200-char customizations", run, "U3", "americano", "large", strings.Repeat("x", 200), ""},
		{"201-char customizations", run, "U4", "americano", "large", strings.Repeat("x", 201), checkViolation},
		{"200 multibyte chars (limit counts characters)", run, "U5", "cappuccino", "large", strings.Repeat("é", 200), ""},
		{"unknown drink", run, "U6", "frappuccino", "small", "", checkViolation},
		{"unknown size", run, "U7", "latte", "venti", "", checkViolation},
		{"unknown run", "00000000-0000-0000-0000-000000000000", "U8", "latte", "small", "", fkViolation},
	}
	for _, s := range steps {
		_, err := db.Pool.Exec(ctx, `
			INSERT INTO orders (run_id, user_id, drink, size, customizations)
			VALUES ($1, $2, $3, $4, $5)`, s.run, s.user, s.drink, s.size, s.customizations)
		if got := pgCode(err); got != s.wantCode {
			t.Errorf("%s: SQLSTATE %q (err %v), want %q", s.name, got, err, s.wantCode)
		}
	}

	// Deleting a run deletes its orders.
	if _, err := db.Pool.Exec(ctx, `DELETE FROM coffee_runs WHERE id = $1`, run); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM orders WHERE run_id = $1`, run).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d orders survived their run's deletion", n)
	}
}

func TestOtherUniqueAndCheckConstraints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	steps := []struct {
		name     string
		sql      string
		wantCode string
	}{
		{"preference", `INSERT INTO user_preferences (user_id, drink, size, order_count, last_ordered_at) VALUES ('U1','latte','small',1,now())`, ""},
		{"duplicate preference", `INSERT INTO user_preferences (user_id, drink, size, order_count, last_ordered_at) VALUES ('U1','latte','small',2,now())`, uniqueViolation},
		{"negative order_count", `INSERT INTO user_preferences (user_id, drink, size, order_count, last_ordered_at) VALUES ('U1','mocha','small',-1,now())`, checkViolation},
		{"outbox row", `INSERT INTO outbox (ce_id, ce_type, ce_source, topic, partition_key, data) VALUES ('e1','t','s','coffee.orders','k','{}')`, ""},
		{"duplicate outbox ce_id", `INSERT INTO outbox (ce_id, ce_type, ce_source, topic, partition_key, data) VALUES ('e1','t','s','coffee.orders','k','{}')`, uniqueViolation},
		{"processed event", `INSERT INTO processed_events (consumer, ce_id) VALUES ('c','e1')`, ""},
		{"same event, same consumer", `INSERT INTO processed_events (consumer, ce_id) VALUES ('c','e1')`, uniqueViolation},
		{"same event, other consumer", `INSERT INTO processed_events (consumer, ce_id) VALUES ('d','e1')`, ""},
	}
	for _, s := range steps {
		_, err := db.Pool.Exec(ctx, s.sql)
		if got := pgCode(err); got != s.wantCode {
			t.Errorf("%s: SQLSTATE %q (err %v), want %q", s.name, got, err, s.wantCode)
		}
	}
}

// TestInsertAndRead goes through the pool the way the domain code will:
// one transaction writing the state change, audit row and outbox row, then
// reading them back with CollectRows.
func TestInsertAndRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	lastCall := time.Now().Add(10 * time.Minute).UTC().Truncate(time.Microsecond)
	var runID string
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (user_id, team_id, display_name) VALUES ('U1', 'T1', 'Ada')`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO coffee_runs (team_id, channel_id, initiator_user_id, status, last_call_at)
			VALUES ('T1', 'C1', 'U1', 'active', $1) RETURNING id`, lastCall).Scan(&runID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO orders (run_id, user_id, drink, size) VALUES ($1, 'U1', 'latte', 'large'), ($1, 'U2', 'mocha', 'small')`, runID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO audit_logs (event_type, actor_user_id, team_id, channel_id, run_id, ce_id, details)
			VALUES ('run.started', 'U1', 'T1', 'C1', $1, 'ce-1', $2)`, runID, map[string]any{"last_call_at": lastCall}); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO outbox (ce_id, ce_type, ce_source, ce_subject, topic, partition_key, data)
			VALUES ('ce-2', 'com.coffeebuddy.run.started', '/functions/coffee-start', $1, 'coffee.orders', $1, $2)`,
			runID, map[string]any{"run_id": runID})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	type order struct {
		UserID         string `db:"user_id"`
		Drink          string `db:"drink"`
		Size           string `db:"size"`
		Customizations string `db:"customizations"`
	}
	rows, _ := db.Pool.Query(ctx, `SELECT user_id, drink, size, customizations FROM orders WHERE run_id = $1 ORDER BY user_id`, runID)
	orders, err := pgx.CollectRows(rows, pgx.RowToStructByName[order])
	if err != nil {
		t.Fatal(err)
	}
	want := []order{{"U1", "latte", "large", ""}, {"U2", "mocha", "small", ""}}
	if len(orders) != len(want) {
		t.Fatalf("orders = %+v, want %+v", orders, want)
	}
	for i := range want {
		if orders[i] != want[i] {
			t.Errorf("order %d = %+v, want %+v", i, orders[i], want[i])
		}
	}

	var (
		status  string
		gotLast time.Time
	)
	if err := db.Pool.QueryRow(ctx, `SELECT status, last_call_at FROM coffee_runs WHERE id = $1`, runID).Scan(&status, &gotLast); err != nil {
		t.Fatal(err)
	}
	if status != "active" || !gotLast.Equal(lastCall) {
		t.Errorf("run = %s %v, want active %v", status, gotLast, lastCall)
	}

	var details map[string]any
	if err := db.Pool.QueryRow(ctx, `SELECT details FROM audit_logs WHERE run_id = $1`, runID).Scan(&details); err != nil {
		t.Fatal(err)
	}
	if _, ok := details["last_call_at"]; !ok {
		t.Errorf("audit details = %v, want last_call_at", details)
	}

	// The relay's query: unpublished rows in id order.
	var ceID string
	var attempts int
	if err := db.Pool.QueryRow(ctx, `SELECT ce_id, attempts FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1`).Scan(&ceID, &attempts); err != nil {
		t.Fatal(err)
	}
	if ceID != "ce-2" || attempts != 0 {
		t.Errorf("outbox head = %s (attempts %d), want ce-2 (0)", ceID, attempts)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	pool, err := postgres.Open(ctx, db.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := pool.Config().MaxConns; got != postgres.DefaultMaxConns {
		t.Errorf("MaxConns = %d, want default %d", got, postgres.DefaultMaxConns)
	}

	pool7, err := postgres.Open(ctx, db.URL, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer pool7.Close()
	if got := pool7.Config().MaxConns; got != 7 {
		t.Errorf("MaxConns = %d, want 7", got)
	}

	// Nothing listens on port 1: the ping fails at Open, not later.
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := postgres.Open(short, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2", 1); err == nil ||
		!strings.HasPrefix(err.Error(), "postgres: ping:") {
		t.Errorf("Open on a closed port = %v, want a postgres: ping: error", err)
	}
	if _, err := postgres.Open(ctx, "postgres://bad url%", 1); err == nil || !strings.HasPrefix(err.Error(), "postgres: parse config:") {
		t.Errorf("Open with a bad URL = %v, want a parse config error", err)
	}
}
