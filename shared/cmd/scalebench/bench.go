package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

// target is the p95 every query must stay under (issue 3 item 11).
const target = 5 * time.Millisecond

const baselineName = "baseline: `SELECT 1` round trip (noise floor, not a target)"

// report is everything one benchmark found.
type report struct {
	PGVersion  string
	LoadBefore string
	Seed       seedStats
	Data       *dataset
	Plans      []queryPlans
	Violations []string // plans that scan a big table sequentially or use no index
	Results    []result
}

// dataset is what the measured calls draw their parameters from.
type dataset struct {
	users      []string
	busy       []channel    // the busiest channels, for history
	candRuns   []coffee.Run // finished runs with 9–11 orderers, for Candidates at their last call
	activeRuns []uuid.UUID  // active runs with orders, for CloseRun
	deepPage   int
}

type channel struct {
	team, id string
	runs     int
}

// query is one measured call of a shared/store function with parameters
// drawn from r. inTx calls get a transaction that is rolled back.
type query struct {
	name     string
	inTx     bool
	baseline bool // a control, not explained
	call     func(ctx context.Context, q store.Querier, r *rand.Rand) error
}

func queries(ds *dataset) []query {
	history := func(page int) func(ctx context.Context, q store.Querier, r *rand.Rand) error {
		return func(ctx context.Context, q store.Querier, r *rand.Rand) error {
			ch := ds.busy[r.IntN(len(ds.busy))]
			entries, total, err := store.History(ctx, q, ch.team, ch.id, page, 10)
			if err == nil && (len(entries) == 0 || total != ch.runs) {
				err = fmt.Errorf("history %s/%s page %d: %d entries of %d, want some of %d", ch.team, ch.id, page, len(entries), total, ch.runs)
			}
			return err
		}
	}
	user := func(r *rand.Rand) string { return ds.users[r.IntN(len(ds.users))] }
	return []query{
		{name: "runner assignment: `store.Candidates` (run with 9–11 orderers, at its last call)",
			call: func(ctx context.Context, q store.Querier, r *rand.Rand) error {
				run := ds.candRuns[r.IntN(len(ds.candRuns))]
				cands, err := store.Candidates(ctx, q, run, run.LastCallAt)
				if err == nil && len(cands) < 9 {
					err = fmt.Errorf("candidates of %s: %d, want >= 9", run.ID, len(cands))
				}
				return err
			}},
		{name: "runner assignment: whole `store.CloseRun` (active run, rolled back)", inTx: true,
			call: func(ctx context.Context, q store.Querier, r *rand.Rand) error {
				run, a, err := store.CloseRun(ctx, q.(pgx.Tx), ds.activeRuns[r.IntN(len(ds.activeRuns))], time.Now())
				if err == nil && (run.Status != coffee.StatusClosed || a.RunnerUserID == "") {
					err = fmt.Errorf("close %s: status %s, runner %q", run.ID, run.Status, a.RunnerUserID)
				}
				return err
			}},
		{name: "history: `store.History` page 1 (busy channel)", call: history(1)},
		{name: fmt.Sprintf("history: `store.History` page %d (busy channel)", ds.deepPage), call: history(ds.deepPage)},
		{name: "preferences: `store.Preferences`",
			call: func(ctx context.Context, q store.Querier, r *rand.Rand) error {
				_, err := store.Preferences(ctx, q, user(r))
				return err
			}},
		{name: "preferences: `store.RecentOrders(…, 3)`",
			call: func(ctx context.Context, q store.Querier, r *rand.Rand) error {
				orders, err := store.RecentOrders(ctx, q, user(r), 3)
				if err == nil && len(orders) == 0 {
					err = errors.New("recent orders: none")
				}
				return err
			}},
		{name: "modal pre-fill: `store.Favourite`",
			call: func(ctx context.Context, q store.Querier, r *rand.Rand) error {
				_, _, _, err := store.Favourite(ctx, q, user(r))
				return err
			}},
		// Not a journey query: the round trip every call pays, measured in
		// the same rounds, so the table shows how noisy the machine was.
		{name: baselineName, baseline: true,
			call: func(ctx context.Context, q store.Querier, _ *rand.Rand) error {
				var one int
				return q.QueryRow(ctx, "SELECT 1").Scan(&one)
			}},
	}
}

// bench seeds the migrated, empty database at dbURL, checks the results and
// the plans, and measures. Violations are reported, not returned as errors.
func bench(ctx context.Context, dbURL string, c config) (*report, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	rep := &report{}
	var err error
	if rep.Seed, err = seed(ctx, dbURL, c); err != nil {
		return nil, err
	}

	// One connection, configured as the app's pool (pgx defaults: cached
	// prepared statements), plus a tracer that records what the store sends.
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	tr := &tracer{}
	cfg.Tracer = tr
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, "SELECT 'PostgreSQL ' || current_setting('server_version') || ', shared_buffers ' || current_setting('shared_buffers')").Scan(&rep.PGVersion); err != nil {
		return nil, err
	}

	if rep.Data, err = loadDataset(ctx, conn, c); err != nil {
		return nil, err
	}
	if err := sanity(ctx, conn, rep.Data); err != nil {
		return nil, fmt.Errorf("sanity: %w", err)
	}
	qs := queries(rep.Data)
	c.logf("explaining %d queries", len(qs))
	if rep.Plans, rep.Violations, err = explainAll(ctx, conn, tr, qs, c); err != nil {
		return nil, err
	}
	c.logf("measuring: %d warm-up + %d measured calls per query, interleaved", c.Warmup, c.Iterations)
	if rep.Results, err = measure(ctx, conn, qs, c); err != nil {
		return nil, err
	}
	return rep, nil
}

func loadDataset(ctx context.Context, conn *pgx.Conn, c config) (*dataset, error) {
	ds := &dataset{}
	rows, _ := conn.Query(ctx, "SELECT user_id FROM users ORDER BY user_id")
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("load users: %w", err)
	}
	ds.users = users

	// The busiest twentieth of the channels (at least one).
	nBusy := max(1, c.Teams*c.ChannelsPerTeam/20)
	rows, _ = conn.Query(ctx, `SELECT team_id, channel_id, count(*)::int FROM coffee_runs
		GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT $1`, nBusy)
	ds.busy, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (channel, error) {
		var ch channel
		return ch, row.Scan(&ch.team, &ch.id, &ch.runs)
	})
	if err != nil || len(ds.busy) == 0 {
		return nil, fmt.Errorf("load busy channels: %d, %v", len(ds.busy), err)
	}
	fewest := slices.MinFunc(ds.busy, func(a, b channel) int { return a.runs - b.runs }).runs
	ds.deepPage = max(1, min(c.DeepPage, fewest/10))

	rows, _ = conn.Query(ctx, `SELECT o.run_id FROM orders o JOIN coffee_runs r ON r.id = o.run_id
		WHERE r.status <> 'active' GROUP BY o.run_id HAVING count(*) BETWEEN 9 AND 11
		ORDER BY md5(o.run_id::text) LIMIT 1000`)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(ids) == 0 {
		return nil, fmt.Errorf("load runs with ~10 orders: %d, %v", len(ids), err)
	}
	for _, id := range ids {
		run, err := store.GetRun(ctx, conn, id)
		if err != nil {
			return nil, err
		}
		ds.candRuns = append(ds.candRuns, run)
	}

	rows, _ = conn.Query(ctx, `SELECT id FROM coffee_runs r WHERE status = 'active'
		AND EXISTS (SELECT 1 FROM orders o WHERE o.run_id = r.id) ORDER BY id`)
	if ds.activeRuns, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil || len(ds.activeRuns) == 0 {
		return nil, fmt.Errorf("load active runs: %d, %v", len(ds.activeRuns), err)
	}
	return ds, nil
}

// sanity checks that the store functions give sensible answers on the
// seeded data, against independent counts.
func sanity(ctx context.Context, conn *pgx.Conn, ds *dataset) error {
	ch := ds.busy[0]
	page1, total, err := store.History(ctx, conn, ch.team, ch.id, 1, 10)
	if err != nil {
		return err
	}
	if total != ch.runs || len(page1) != min(10, total) {
		return fmt.Errorf("history page 1 of %s: %d entries of %d, want %d of %d", ch.id, len(page1), total, min(10, total), ch.runs)
	}
	deep, _, err := store.History(ctx, conn, ch.team, ch.id, ds.deepPage, 10)
	if err != nil {
		return err
	}
	if len(deep) == 0 {
		return fmt.Errorf("history page %d of %s (%d runs): empty", ds.deepPage, ch.id, ch.runs)
	}
	all := append(slices.Clone(page1), deep...)
	for i, e := range all {
		if i > 0 && e.CreatedAt.After(all[i-1].CreatedAt) {
			return fmt.Errorf("history of %s: not newest first at %d", ch.id, i)
		}
		if e.Status == coffee.StatusCompleted && (e.RunnerID == "" || e.RunnerName == e.RunnerID) {
			return fmt.Errorf("history of %s: completed run %s has runner %q named %q", ch.id, e.RunID, e.RunnerID, e.RunnerName)
		}
		var orders int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders WHERE run_id = $1", e.RunID).Scan(&orders); err != nil {
			return err
		}
		if e.Orders != orders {
			return fmt.Errorf("history of %s: run %s shows %d orders, has %d", ch.id, e.RunID, e.Orders, orders)
		}
	}

	// A user with orders in the last 90 days: their preferences survived the purge.
	var u string
	if err := conn.QueryRow(ctx, `SELECT user_id FROM orders WHERE created_at > now() - interval '30 days'
		ORDER BY created_at DESC LIMIT 1`).Scan(&u); err != nil {
		return fmt.Errorf("find a recent orderer: %w", err)
	}
	prefs, err := store.Preferences(ctx, conn, u)
	if err != nil {
		return err
	}
	if len(prefs) == 0 {
		return fmt.Errorf("preferences of %s: none", u)
	}
	for i, p := range prefs {
		if i > 0 && p.OrderCount > prefs[i-1].OrderCount {
			return fmt.Errorf("preferences of %s: not most frequent first", u)
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders WHERE user_id = $1 AND drink = $2 AND size = $3",
			u, p.Drink, p.Size).Scan(&n); err != nil {
			return err
		}
		if p.OrderCount != n {
			return fmt.Errorf("preferences of %s: %s/%s counts %d, orders have %d", u, p.Drink, p.Size, p.OrderCount, n)
		}
	}
	drink, size, ok, err := store.Favourite(ctx, conn, u)
	if err != nil || !ok || drink != prefs[0].Drink || size != prefs[0].Size {
		return fmt.Errorf("favourite of %s: %s/%s ok=%v err=%v, want %s/%s", u, drink, size, ok, err, prefs[0].Drink, prefs[0].Size)
	}
	recent, err := store.RecentOrders(ctx, conn, u, 3)
	if err != nil {
		return err
	}
	var latest time.Time
	if err := conn.QueryRow(ctx, "SELECT max(created_at) FROM orders WHERE user_id = $1", u).Scan(&latest); err != nil {
		return err
	}
	if len(recent) == 0 || !recent[0].CreatedAt.Equal(latest.UTC()) || recent[0].DisplayName == u {
		return fmt.Errorf("recent orders of %s: %+v, want the newest (%v) first with a display name", u, recent, latest)
	}
	for i := 1; i < len(recent); i++ {
		if recent[i].CreatedAt.After(recent[i-1].CreatedAt) {
			return fmt.Errorf("recent orders of %s: not newest first", u)
		}
	}

	run := ds.candRuns[0]
	cands, err := store.Candidates(ctx, conn, run, run.LastCallAt)
	if err != nil {
		return err
	}
	rows, _ := conn.Query(ctx, "SELECT user_id FROM orders WHERE run_id = $1", run.ID)
	orderers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if !slices.IsSortedFunc(cands, func(a, b coffee.Candidate) int { return strings.Compare(a.UserID, b.UserID) }) {
		return fmt.Errorf("candidates of %s: not sorted by user id", run.ID)
	}
	for _, o := range orderers {
		if !slices.ContainsFunc(cands, func(c coffee.Candidate) bool { return c.UserID == o }) {
			return fmt.Errorf("candidates of %s: orderer %s missing", run.ID, o)
		}
	}

	// CloseRun assigns one of the candidates; the rollback leaves the run active.
	id := ds.activeRuns[0]
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	active, err := store.GetRun(ctx, tx, id)
	if err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	now := time.Now()
	cands, err = store.Candidates(ctx, tx, active, now)
	if err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	closed, a, err := store.CloseRun(ctx, tx, id, now)
	_ = tx.Rollback(ctx)
	if err != nil {
		return err
	}
	isCand := slices.ContainsFunc(cands, func(c coffee.Candidate) bool { return c.UserID == a.RunnerUserID })
	if closed.Status != coffee.StatusClosed || a.RunnerUserID == "" || !(isCand || a.RunnerUserID == active.VolunteerUserID) {
		return fmt.Errorf("close %s: status %s, runner %q (%s), not a candidate", id, closed.Status, a.RunnerUserID, a.Reason)
	}
	if after, err := store.GetRun(ctx, conn, id); err != nil || after.Status != coffee.StatusActive {
		return fmt.Errorf("after rollback run %s is %s (%v), want active", id, after.Status, err)
	}
	return nil
}
