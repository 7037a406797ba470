package postgres_test

// The chart's PgBouncer option (deploy/helm/coffeebuddy, pgbouncer.enabled)
// puts transaction pooling between the functions and PostgreSQL and adds
// default_query_exec_mode=cache_describe to their DATABASE_URL. This test
// runs the functions' own database code through a real PgBouncer in
// transaction mode with that URL, and proves the setting is needed: pgx's
// default statement cache breaks through the same PgBouncer.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/coffeebuddy/coffeebuddy/shared/closing"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ChartPgxParams is what the chart appends to every function's DATABASE_URL
// when PgBouncer is on (templates/_helpers.tpl, coffeebuddy.databaseURL);
// deploy/validate checks the chart renders exactly this.
const ChartPgxParams = "default_query_exec_mode=cache_describe"

// pgbouncer starts PgBouncer in transaction pooling mode in front of the
// test server, with serverConns server connections per database and user,
// and returns a URL to dbName through it.
func pgbouncer(t *testing.T, serverURL, dbName string, serverConns int) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/pgbouncer"); err2 != nil {
			t.Fatalf("pgbouncer not found (bash .ci/ensure-pgbouncer installs it; make test does): %v", err)
		}
		bin = "/usr/sbin/pgbouncer"
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" { // a unix socket URL: ?host=/dir
		host = u.Query().Get("host")
	}
	if port == "" {
		port = "5432"
	}
	dbUser := u.User.Username()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	// Not t.TempDir(): its parent is private to root, and PgBouncer runs as postgres.
	dir, err := os.MkdirTemp("", "pgbouncer-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ini := fmt.Sprintf(`[databases]
%s = host=%s port=%s dbname=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 200
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
`, dbName, host, port, dbName, listen, filepath.Join(dir, "userlist.txt"), serverConns)
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(fmt.Sprintf("%q \"\"\n", dbUser)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if os.Getuid() == 0 {
		// PgBouncer refuses to run as root, as PostgreSQL does.
		pu, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root and no postgres user for PgBouncer: %v", err)
		}
		uid, _ := strconv.Atoi(pu.Uid)
		gid, _ := strconv.Atoi(pu.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Pdeathsig: syscall.SIGKILL}
	}
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pgbouncer log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", listen), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer did not listen: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", url.PathEscape(dbUser), listen, dbName)
}

// function opens a pool as a function process does (DATABASE_MAX_CONNS).
func function(t *testing.T, dbURL string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

type noPublish struct{}

func (noPublish) Publish(context.Context, ...int64) error { return nil }

// TestThroughPgBouncerTransactionPooling: four "function processes" (pools
// of 2, as the chart's default DATABASE_MAX_CONNS) share 2 server
// connections through PgBouncer, each running a coffee run's worth of the
// functions' database code concurrently: dedup (store.Once), CreateRun,
// PlaceOrder with its row lock and preference upserts, runmsg's
// transaction-scoped advisory lock, reads outside transactions (History,
// ActiveRun, RunOrders), closing with the runner choice, audit and outbox,
// the outbox relay's sweep (FOR UPDATE SKIP LOCKED) to Kafka, and audit-api's
// page query (explicit cache_describe).
func TestThroughPgBouncerTransactionPooling(t *testing.T) {
	db := pgtest.New(t)
	dbURL := pgbouncer(t, db.URL, db.Name, 2) + "&" + ChartPgxParams

	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, events.TopicAssignments))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	kcl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer kcl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const processes, users = 4, 6
	var wg sync.WaitGroup
	errs := make(chan error, processes)
	for p := range processes {
		pool := function(t, dbURL, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- coffeeRun(ctx, pool, kcl, log, p, users)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	// Everything landed, checked on a direct connection.
	var runs, orders, audits, unpublished int
	if err := db.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM coffee_runs WHERE status = 'closed'),
		(SELECT count(*) FROM orders),
		(SELECT count(*) FROM audit_logs WHERE event_type = 'run_closed'),
		(SELECT count(*) FROM outbox WHERE published_at IS NULL)`).Scan(&runs, &orders, &audits, &unpublished); err != nil {
		t.Fatal(err)
	}
	if runs != processes || orders != processes*users || audits != processes || unpublished != 0 {
		t.Errorf("closed runs %d, orders %d, run_closed audits %d, unpublished outbox rows %d; want %d, %d, %d, 0",
			runs, orders, audits, unpublished, processes, processes*users, processes)
	}
}

// coffeeRun is one channel's run through one function process's pool.
func coffeeRun(ctx context.Context, pool *pgxpool.Pool, kcl *kgo.Client, log *slog.Logger, p, users int) error {
	s := store.New(pool)
	team, channel := "T1", fmt.Sprintf("C%d", p)
	now := time.Now().UTC()
	var run coffee.Run
	if _, err := s.Once(ctx, "run-start", uuid.NewString(), func(tx pgx.Tx) error {
		if err := store.UpsertUser(ctx, tx, team, "U0", "initiator"); err != nil {
			return err
		}
		var err error
		run, err = store.CreateRun(ctx, tx, store.NewRun{TeamID: team, ChannelID: channel, InitiatorUserID: "U0",
			LastCallAt: now.Add(time.Hour), CreatedAt: now})
		return err
	}); err != nil {
		return fmt.Errorf("process %d: create run: %w", p, err)
	}
	// Orders arrive concurrently, as unordered deliveries would.
	var wg sync.WaitGroup
	orderErrs := make(chan error, users)
	for u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uid := fmt.Sprintf("U%d-%d", p, u)
			_, err := s.Once(ctx, "order-place", uuid.NewString(), func(tx pgx.Tx) error {
				if err := store.UpsertUser(ctx, tx, team, uid, uid); err != nil {
					return err
				}
				_, _, err := store.PlaceOrder(ctx, tx, team, channel, coffee.Order{UserID: uid, Drink: "latte", Size: "medium"}, now)
				return err
			})
			if err == nil {
				// runmsg.Refresh's lock: transaction-scoped, so it holds under
				// transaction pooling (a session-level lock would not).
				err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "runmsg:"+run.ID.String()); err != nil {
						return err
					}
					_, err := store.RunOrders(ctx, tx, run.ID)
					return err
				})
			}
			orderErrs <- err
		}()
	}
	wg.Wait()
	close(orderErrs)
	for err := range orderErrs {
		if err != nil {
			return fmt.Errorf("process %d: order: %w", p, err)
		}
	}
	// Reads outside a transaction, each statement on whichever server
	// connection PgBouncer hands out.
	for range 3 {
		if _, err := store.ActiveRun(ctx, pool, team, channel); err != nil {
			return fmt.Errorf("process %d: active run: %w", p, err)
		}
		if _, _, err := store.History(ctx, pool, team, channel, 1, 10); err != nil {
			return fmt.Errorf("process %d: history: %w", p, err)
		}
		if _, _, _, err := store.Favourite(ctx, pool, fmt.Sprintf("U%d-0", p)); err != nil {
			return fmt.Errorf("process %d: favourite: %w", p, err)
		}
	}
	res, err := closing.New(s, noPublish{}, "run-close", nil).Close(ctx, "run-close", uuid.NewString(), run.ID, "U0", now.Add(time.Minute), log)
	if err != nil || !res.Closed {
		return fmt.Errorf("process %d: close: %+v, %w", p, res, err)
	}
	if _, err := outbox.NewRelay(pool, kcl, log).Sweep(ctx, 0, 100); err != nil {
		return fmt.Errorf("process %d: outbox sweep: %w", p, err)
	}
	f := auditquery.Filter{Start: now.Add(-time.Hour), End: now.Add(time.Hour), RunID: run.ID}
	rows, _, err := auditquery.Page(ctx, pool, f, nil, 100)
	if err != nil || len(rows) == 0 {
		return fmt.Errorf("process %d: audit page: %d rows, %w", p, len(rows), err)
	}
	return nil
}

// TestPgxStatementCacheBreaksThroughPgBouncer is the control: with pgx's
// default exec mode (named prepared statements cached per connection) two
// pools behind one server connection collide, which is why the chart sets
// ChartPgxParams. If this starts passing, PgBouncer is not pooling per
// transaction and the other test proves nothing.
func TestPgxStatementCacheBreaksThroughPgBouncer(t *testing.T) {
	db := pgtest.New(t)
	dbURL := pgbouncer(t, db.URL, db.Name, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := function(t, dbURL, 1), function(t, dbURL, 1)
	var err error
	for _, pool := range []*pgxpool.Pool{a, b, a, b} {
		if _, _, err = store.History(ctx, pool, "T1", "C1", 1, 10); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("pgx's statement cache worked through PgBouncer transaction pooling: is PgBouncer pooling?")
	}
	if !strings.Contains(err.Error(), "prepared statement") {
		t.Fatalf("failed, but not on prepared statements: %v", err)
	}
	t.Logf("as expected without %s: %v", ChartPgxParams, err)
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) {
		t.Logf("SQLSTATE %s", pgErr.SQLState())
	}
}
