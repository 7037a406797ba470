package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

// config sizes the data set and the measurement.
type config struct {
	Teams           int // Slack workspaces
	ChannelsPerTeam int
	UsersPerTeam    int // must exceed 1; runs draw distinct orderers from their team
	Runs            int // spread over the last 400 days
	MaxOrders       int // each run has 0..MaxOrders orders, uniformly (mean MaxOrders/2)
	DeepPage        int // the deep history page (capped by the busiest channels' length)

	Iterations int // measured calls per query
	Warmup     int // unmeasured calls per query first
	Seed       uint64

	// IndexPathsOnly checks plans with enable_seqscan=off: on a tiny data
	// set the planner rightly prefers a Seq Scan, so the smoke test can only
	// check that an index path exists (a Seq Scan then means none does).
	IndexPathsOnly bool

	Log io.Writer // progress; nil for none
}

// fullSize is issue 3 item 11: 10,000 users, 100,000 runs, ~1,000,000 orders.
func fullSize() config {
	return config{Teams: 50, ChannelsPerTeam: 20, UsersPerTeam: 200, Runs: 100_000, MaxOrders: 20, DeepPage: 50,
		Iterations: 3000, Warmup: 300}
}

// quickSize keeps the per-team shape (200 users, 20 channels, 2,000 runs)
// with 5 teams instead of 50: 1,000 users, 10,000 runs, ~100,000 orders.
func quickSize() config {
	c := fullSize()
	c.Teams, c.Runs, c.Iterations, c.Warmup = 5, 10_000, 500, 50
	return c
}

func (c config) users() int { return c.Teams * c.UsersPerTeam }

func (c config) validate() error {
	if c.Teams < 1 || c.ChannelsPerTeam < 1 || c.ChannelsPerTeam > 999 || c.UsersPerTeam < 2 || c.Runs < 1 ||
		c.MaxOrders < 1 || c.DeepPage < 1 || c.Iterations < 1 || c.Warmup < 0 || c.users() > 9_999_999 {
		return fmt.Errorf("bad size %+v", c)
	}
	return nil
}

func (c config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "scalebench: "+format+"\n", args...)
	}
}

// seedStep is one timed seeding statement.
type seedStep struct {
	Name string
	Took time.Duration
	Rows int64
}

type seedStats struct {
	Steps                        []seedStep
	Total                        time.Duration
	Users, Runs, Orders, Prefs   int64
	Active, Completed, Cancelled int64
	FKChecksSkipped              bool
	AllVisible                   float64 // share of the tables' pages VACUUM marked all-visible
}

// seed fills the schema with set-based SQL on its own connection. Everything
// derives from setseed and row numbers, so a seed gives the same data set
// (up to now()).
//
// Shape: teams of UsersPerTeam users and ChannelsPerTeam channels; a run
// lands in a uniform team and in a channel skewed towards the first ones
// (channel = floor(C·u³): a team's busiest channel gets ~37% of its runs);
// its creation time is uniform over the last 400 days, last call 5–15 min
// later; it has 0..MaxOrders orders by distinct users of its team (a random
// start and a stride coprime to the team size), each user ordering their
// own favourite drink+size 60% of the time. The initiator is the first
// orderer; the runner a random orderer. Runs with no orders closed with no
// runner; of the others 6% were cancelled, 3% closed and never marked
// complete, the rest completed (10% by a volunteer). About 20% of channels
// have an active run (its newest with orders, started minutes ago). user_preferences is
// aggregated from orders and then purged of rows untouched for 90 days, with
// store.PurgePreferences, as the scheduled job would have.
func seed(ctx context.Context, dbURL string, c config) (st seedStats, err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return st, fmt.Errorf("seed: connect: %w", err)
	}
	defer conn.Close(context.Background())

	// Bulk-load settings for this session only. Skipping the orders→runs FK
	// trigger needs a superuser; the data is consistent by construction.
	for _, s := range []string{"SET synchronous_commit = off", "SET work_mem = '256MB'", "SET maintenance_work_mem = '256MB'"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return st, fmt.Errorf("seed: %s: %w", s, err)
		}
	}
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err == nil {
		st.FKChecksSkipped = true
	}
	if _, err := conn.Exec(ctx, "SELECT setseed($1)", float64(c.Seed%1000)/1000); err != nil {
		return st, fmt.Errorf("seed: setseed: %w", err)
	}

	U := c.UsersPerTeam
	uid := func(team, idx string) string {
		return fmt.Sprintf("('U' || lpad((%s * %d + (%s))::text, 7, '0'))", team, U, idx)
	}
	steps := []struct{ name, sql string }{
		{"users", fmt.Sprintf(`
			INSERT INTO users (user_id, team_id, display_name, created_at, updated_at)
			SELECT %s, 'T' || lpad((u / %d)::text, 4, '0'),
				(ARRAY['Alice','Bob','Chiara','Dmitri','Emeka','Fatima','Gustav','Hana','Ines','Jamal','Kenji','Lena',
					'Mateo','Nadia','Oskar','Priya','Quentin','Rosa','Samir','Tove','Umar','Vera','Wen','Ximena',
					'Yusuf','Zoe','Ana','Bram','Carmen','Dara','Elif','Finn'])[1 + u %% 32] || ' ' ||
				(ARRAY['Nguyen','Smith','García','Müller','Kowalski','Okafor','Tanaka','Rossi','Haddad','Larsen',
					'Dubois','Silva','Kim','Novak','Byrne','Costa','Ivanova','Jensen','Mehta','Papadopoulos',
					'Reyes','Schmidt','Yilmaz','Andersson','Brown','Chen','Fischer','Moreau','Ortiz','Sato',
					'Walsh','Zhou'])[1 + (u / 32) %% 32],
				now() - interval '500 days', now() - interval '500 days'
			FROM generate_series(0, %d) u`, uid("0", "u"), U, c.users()-1)},

		{"runs (plan)", `
			CREATE UNLOGGED TABLE scalebench_runs (
				g int PRIMARY KEY, id uuid NOT NULL, team_no int NOT NULL, chan_no int NOT NULL,
				n_orders int NOT NULL, ustart int NOT NULL, ustep int NOT NULL, rk int NOT NULL,
				kind float8 NOT NULL, vol bool NOT NULL, active bool NOT NULL DEFAULT false,
				created_at timestamptz NOT NULL, last_call_at timestamptz NOT NULL)`},
		{"runs (draw)", fmt.Sprintf(`
			INSERT INTO scalebench_runs (g, id, team_no, chan_no, n_orders, ustart, ustep, rk, kind, vol, created_at, last_call_at)
			SELECT g, md5('run-' || g)::uuid, team_no, chan_no, n, ustart, ustep, floor(r_rk * greatest(n, 1))::int,
				kind, r_vol < 0.1, created_at, created_at + (5 + floor(r_lc * 11)::int) * interval '1 minute'
			FROM (
				SELECT g, floor(random() * %[1]d)::int AS team_no,
					floor(%[2]d * random() ^ 3)::int AS chan_no,
					least(floor(random() * %[3]d)::int, %[4]d) AS n,
					floor(random() * %[4]d)::int AS ustart,
					cop.a[1 + floor(random() * cardinality(cop.a))::int] AS ustep,
					random() AS r_rk, random() AS kind, random() AS r_vol, random() AS r_lc,
					now() - random() * interval '400 days' AS created_at
				FROM generate_series(1, %[5]d) g,
					(SELECT array_agg(s ORDER BY s) AS a FROM generate_series(1, %[4]d - 1) s WHERE gcd(s, %[4]d) = 1) cop
			) s`, c.Teams, c.ChannelsPerTeam, c.MaxOrders+1, U, c.Runs)},
		// The newest run with orders of every fifth channel is going on right now.
		{"runs (active)", `
			UPDATE scalebench_runs s SET active = true,
				created_at = now() - (1 + s.g % 9) * interval '1 minute',
				last_call_at = now() + (1 + s.g % 7) * interval '1 minute'
			FROM (SELECT DISTINCT ON (team_no, chan_no) g FROM scalebench_runs WHERE n_orders > 0
				ORDER BY team_no, chan_no, created_at DESC) newest
			WHERE s.g = newest.g AND (s.team_no * 1000 + s.chan_no) % 5 = 0`},
		{"coffee_runs", fmt.Sprintf(`
			INSERT INTO coffee_runs (id, team_id, channel_id, initiator_user_id, status, last_call_at, last_call_warned_at,
				volunteer_user_id, runner_user_id, assignment_reason, slack_message_ts, reminder_sent_at, reminder_count,
				closed_at, completed_at, cancelled_at, cancelled_by, cancel_reason, created_at, updated_at)
			SELECT id, team_id, channel_id, initiator, status, last_call_at,
				CASE WHEN status IN ('closed', 'completed') THEN last_call_at - interval '2 minutes' END,
				CASE WHEN assigned AND vol THEN runner END,
				CASE WHEN assigned THEN runner END,
				CASE WHEN assigned AND vol THEN 'volunteered'
					WHEN assigned THEN (g %% 3) || ' runs in the last 30 days; team median 1'
					WHEN status = 'closed' THEN 'nobody ordered' END,
				to_char(extract(epoch FROM created_at), 'FM9999999999.000000'),
				CASE WHEN assigned THEN last_call_at + interval '3 seconds' END,
				CASE WHEN assigned AND status = 'closed' THEN 1 ELSE 0 END,
				CASE WHEN status IN ('closed', 'completed') THEN last_call_at END,
				completed_at,
				cancelled_at,
				CASE WHEN status = 'cancelled' THEN initiator END,
				CASE WHEN status = 'cancelled' THEN 'meeting ran over' END,
				created_at,
				coalesce(completed_at, cancelled_at, last_call_at)
			FROM (
				SELECT *, status IN ('closed', 'completed') AND n_orders > 0 AS assigned,
					CASE WHEN status = 'completed' THEN last_call_at + (10 + g %% 30) * interval '1 minute' END AS completed_at,
					CASE WHEN status = 'cancelled' THEN created_at + (last_call_at - created_at) / 2 END AS cancelled_at
				FROM (
					SELECT r.*,
						'T' || lpad(team_no::text, 4, '0') AS team_id,
						'C' || lpad(team_no::text, 4, '0') || lpad(chan_no::text, 3, '0') AS channel_id,
						%[1]s AS initiator,
						%[2]s AS runner,
						CASE WHEN active THEN 'active' WHEN n_orders = 0 THEN 'closed'
							WHEN kind < 0.06 THEN 'cancelled' WHEN kind < 0.09 THEN 'closed'
							ELSE 'completed' END AS status
					FROM scalebench_runs r
				) x
			) y
			ORDER BY created_at`, uid("team_no", "ustart"), uid("team_no", fmt.Sprintf("(ustart + rk * ustep) %% %d", U)))},
		{"orders", fmt.Sprintf(`
			INSERT INTO orders (run_id, user_id, drink, size, customizations, created_at, updated_at)
			SELECT id, 'U' || lpad(uno::text, 7, '0'),
				CASE WHEN p < 0.6 THEN drinks[1 + uno %% 5] ELSE drinks[1 + floor(d * 5)::int] END,
				CASE WHEN p < 0.6 THEN sizes[1 + (uno / 5) %% 3] ELSE sizes[1 + floor(sz * 3)::int] END,
				CASE WHEN cu < 0.7 THEN '' ELSE (ARRAY['oat milk', 'extra shot', 'no sugar', 'decaf', 'extra hot',
					'almond milk, no foam'])[1 + floor((cu - 0.7) / 0.3 * 6)::int] END,
				oc, oc
			FROM (
				SELECT r.id, r.team_no * %[1]d + (r.ustart + k * r.ustep) %% %[1]d AS uno,
					r.created_at + random() * (least(r.last_call_at, now()) - r.created_at) AS oc,
					random() AS p, random() AS d, random() AS sz, random() AS cu
				FROM scalebench_runs r, generate_series(0, r.n_orders - 1) k
				ORDER BY r.created_at, k
			) x,
			(SELECT ARRAY['latte', 'espresso', 'cappuccino', 'americano', 'mocha'] AS drinks,
				ARRAY['small', 'medium', 'large'] AS sizes) v`, U)},
		{"user_preferences", `
			INSERT INTO user_preferences (user_id, drink, size, order_count, last_ordered_at)
			SELECT user_id, drink, size, count(*), max(created_at) FROM orders GROUP BY user_id, drink, size`},
	}

	start := time.Now()
	for _, s := range steps {
		t := time.Now()
		tag, err := conn.Exec(ctx, s.sql)
		if err != nil {
			return st, fmt.Errorf("seed %s: %w", s.name, err)
		}
		st.Steps = append(st.Steps, seedStep{s.name, time.Since(t), tag.RowsAffected()})
		c.logf("seeded %-18s %8d rows in %v", s.name, tag.RowsAffected(), time.Since(t).Round(time.Millisecond))
	}
	t := time.Now()
	purged, err := store.PurgePreferences(ctx, conn, time.Now().Add(-90*24*time.Hour))
	if err != nil {
		return st, err
	}
	st.Steps = append(st.Steps, seedStep{"purge preferences > 90 days (store.PurgePreferences)", time.Since(t), purged})

	// Drop the plan, then vacuum and analyze: production tables are
	// autovacuumed, and letting autovacuum wake up on 1M fresh rows during
	// the measurement would only add noise. VACUUM marks a page all-visible
	// only once its tuples' commit hint bits are set, and those wait for the
	// commit record to be flushed: with asynchronous commit, flush first
	// (a synchronous commit of a transaction with an xid flushes all WAL
	// before it).
	for _, s := range []string{"DROP TABLE scalebench_runs", "SET synchronous_commit = on", "SELECT txid_current()", "VACUUM (ANALYZE)"} {
		t := time.Now()
		if _, err := conn.Exec(ctx, s); err != nil {
			return st, fmt.Errorf("seed: %s: %w", s, err)
		}
		if !strings.HasPrefix(s, "DROP") && !strings.HasPrefix(s, "VACUUM") {
			continue
		}
		st.Steps = append(st.Steps, seedStep{s, time.Since(t), -1})
		c.logf("seed: %s in %v", s, time.Since(t).Round(time.Millisecond))
	}
	// Should a page still not be all-visible (an older snapshot was open, an
	// autovacuum ANALYZE that woke up on the fresh rows), index-only scans
	// would turn into heap fetches: vacuum again until the tables are, so
	// every run starts from the same state.
	t = time.Now()
	for try := 0; ; try++ {
		if err := conn.QueryRow(ctx, `SELECT sum(relallvisible)::float8 / greatest(sum(relpages), 1) FROM pg_class
			WHERE relnamespace = 'public'::regnamespace AND relname IN ('coffee_runs', 'orders', 'user_preferences', 'users')`).
			Scan(&st.AllVisible); err != nil {
			return st, fmt.Errorf("seed: visibility: %w", err)
		}
		if st.AllVisible >= 0.99 || try == 10 {
			if try > 0 {
				st.Steps = append(st.Steps, seedStep{fmt.Sprintf("VACUUM again ×%d (pages not yet all-visible)", try), time.Since(t), -1})
			}
			break
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(time.Second):
		}
		if _, err := conn.Exec(ctx, "VACUUM"); err != nil {
			return st, fmt.Errorf("seed: vacuum: %w", err)
		}
	}
	st.Total = time.Since(start)
	// Flush dirty buffers now rather than in a checkpoint mid-measurement
	// (needs a superuser or pg_checkpoint; harmless to skip).
	_, _ = conn.Exec(ctx, "CHECKPOINT")

	err = conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM coffee_runs),
		(SELECT count(*) FROM orders), (SELECT count(*) FROM user_preferences),
		(SELECT count(*) FROM coffee_runs WHERE status = 'active'),
		(SELECT count(*) FROM coffee_runs WHERE status = 'completed'),
		(SELECT count(*) FROM coffee_runs WHERE status = 'cancelled')`).
		Scan(&st.Users, &st.Runs, &st.Orders, &st.Prefs, &st.Active, &st.Completed, &st.Cancelled)
	if err != nil {
		return st, fmt.Errorf("seed: count: %w", err)
	}
	return st, nil
}

// sqlOneLine shortens a statement for headings.
func sqlOneLine(sql string, max int) string {
	s := strings.Join(strings.Fields(sql), " ")
	if len(s) > max {
		s = s[:max] + " …"
	}
	return s
}
