package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

const rolesScript = "../../deploy/postgres/roles.sql"

func connectAs(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// denied reports whether err is PostgreSQL's refusal for lack of privilege
// (42501), or a write refused in a read-only transaction (25006).
func denied(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42501" || pe.Code == "25006")
}

// grantsSnapshot is everything the script decides, as the catalogs say it:
// role attributes and settings, table, sequence, schema and database
// privileges, default privileges and memberships of the test's roles.
func grantsSnapshot(t *testing.T, db *pgtest.DB, names []string) string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `
		SELECT 'role ' || rolname || ' login=' || rolcanlogin || ' inherit=' || rolinherit || ' super=' || rolsuper ||
		       ' createdb=' || rolcreatedb || ' createrole=' || rolcreaterole || ' config=' || coalesce(array_to_string(rolconfig, ','), '')
		  FROM pg_roles WHERE rolname = ANY($1)
		UNION ALL
		SELECT 'table ' || grantee || ' ' || table_name || ' ' || privilege_type
		  FROM information_schema.role_table_grants WHERE grantee = ANY($1)
		UNION ALL
		SELECT 'acl ' || c.relname || ' ' || coalesce(c.relacl::text, '')
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S')
		UNION ALL
		SELECT 'database ' || coalesce(datacl::text, '') FROM pg_database WHERE datname = current_database()
		UNION ALL
		SELECT 'schema ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'public'
		UNION ALL
		SELECT 'default ' || defaclobjtype::text || ' ' || coalesce(defaclacl::text, '') FROM pg_default_acl
		UNION ALL
		SELECT 'member ' || r.rolname || ' of ' || g.rolname || ' admin=' || m.admin_option
		  FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
		 WHERE r.rolname = ANY($1) OR g.rolname = ANY($1)
		ORDER BY 1`, names)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestRolesScript applies deploy/postgres/roles.sql twice (with psql, as
// the install does, when it is installed) and proves what each role may
// do: coffeebuddy_app runs a representative write of every table the
// functions write, through the functions' own store code, and may not
// touch the audit trail but to append, nor create roles, databases or
// tables; coffeebuddy_readonly answers slack-ingress's reads and nothing
// else; coffeebuddy_audit keeps ADR 0009's grants; coffeebuddy_vault may
// set the roles' passwords and read nothing. A table a later migration
// creates gets the same grants.
func TestRolesScript(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	roles := pgtest.ApplyRoles(t, db, rolesScript)
	all := []string{roles.Name(t, "coffeebuddy_app"), roles.Name(t, "coffeebuddy_readonly"), roles.Name(t, "coffeebuddy_audit"), roles.Name(t, "coffeebuddy_vault")}
	first := grantsSnapshot(t, db, all)
	roles.Apply(t)
	if second := grantsSnapshot(t, db, all); second != first {
		t.Fatalf("a second run changed the grants:\nfirst:\n%s\n\nsecond:\n%s", first, second)
	}
	t.Logf("applied twice (psql: %v); %d catalog lines unchanged", roles.Psql, strings.Count(first, "\n")+1)

	app := connectAs(t, roles.URL(t, "coffeebuddy_app"))
	readonly := connectAs(t, roles.URL(t, "coffeebuddy_readonly"))
	auditRole := connectAs(t, roles.URL(t, "coffeebuddy_audit"))
	vault := connectAs(t, roles.URL(t, "coffeebuddy_vault"))
	now := time.Now().UTC().Truncate(time.Microsecond)

	t.Run("app writes what the functions write", func(t *testing.T) {
		s := store.New(app)
		var runID uuid.UUID
		dup, err := s.Once(ctx, "run-start", "ce-roles-1", func(tx pgx.Tx) error { // processed_events
			run, err := store.CreateRun(ctx, tx, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1", // coffee_runs
				LastCallAt: now.Add(10 * time.Minute), CreatedAt: now})
			if err != nil {
				return err
			}
			runID = run.ID
			if err := audit.Record(ctx, tx, audit.Entry{EventType: audit.RunCreated, ActorUserID: "U1", TeamID: "T1", // audit_logs
				ChannelID: "C1", RunID: run.ID, CEID: "ce-roles-1"}); err != nil {
				return err
			}
			_, err = outbox.Enqueue(ctx, tx, outbox.Message{Type: events.TypeRunCreated, Source: "/test", // outbox
				Key: run.ID.String(), Data: map[string]string{"run_id": run.ID.String()}})
			return err
		})
		if err != nil || dup {
			t.Fatalf("create run as app: dup=%v err=%v", dup, err)
		}
		steps := []struct {
			what string
			fn   func() error
		}{
			{"users upsert", func() error { return store.UpsertUser(ctx, app, "T1", "U2", "bob") }},
			{"orders and user_preferences", func() error {
				return pgx.BeginFunc(ctx, app, func(tx pgx.Tx) error {
					_, _, err := store.PlaceOrder(ctx, tx, "T1", "C1", coffee.Order{UserID: "U2", Drink: "latte", Size: "large"}, now)
					if err == nil { // an edit: preferences updated and decremented
						_, _, err = store.PlaceOrder(ctx, tx, "T1", "C1", coffee.Order{UserID: "U2", Drink: "mocha", Size: "small"}, now.Add(time.Second))
					}
					return err
				})
			}},
			{"coffee_runs update (volunteer, message, close)", func() error {
				return pgx.BeginFunc(ctx, app, func(tx pgx.Tx) error {
					if _, _, err := store.SetVolunteer(ctx, tx, runID, "U2"); err != nil {
						return err
					}
					if err := store.SetRunMessage(ctx, tx, runID, "1700000000.000100"); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('run-msg', 0))`); err != nil { // runmsg
						return err
					}
					_, _, err := store.CloseRun(ctx, tx, runID, now.Add(time.Minute))
					return err
				})
			}},
			{"outbox relay claim and publish", func() error {
				return pgx.BeginFunc(ctx, app, func(tx pgx.Tx) error {
					var id int64
					if err := tx.QueryRow(ctx, `SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&id); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1 WHERE id = $1`, id); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `UPDATE outbox SET published_at = $2 WHERE id = $1`, id, now.Add(-8*24*time.Hour))
					return err
				})
			}},
			{"slack_posts claim, post, release", func() error {
				if _, err := app.Exec(ctx, `INSERT INTO slack_posts (dedup_key, channel_id, thread_ts, claimed_at, first_claimed_at) VALUES ('k1', 'C1', '', $1, $1), ('k2', 'C1', '', $1, $1)`, now); err != nil {
					return err
				}
				if _, err := app.Exec(ctx, `UPDATE slack_posts SET ts = '1.2', posted_at = $1 WHERE dedup_key = 'k1'`, now.Add(-31*24*time.Hour)); err != nil {
					return err
				}
				_, err := app.Exec(ctx, `DELETE FROM slack_posts WHERE dedup_key = 'k2' AND ts IS NULL`)
				return err
			}},
			{"housekeeping deletes", func() error {
				later := now.Add(60 * 24 * time.Hour)
				for _, del := range []func(context.Context, store.Querier, time.Time, int) (int64, error){
					store.DeleteProcessedEvents, store.DeletePublishedOutbox, store.DeletePostedSlackPosts,
				} {
					if _, err := del(ctx, app, later, 100); err != nil {
						return err
					}
				}
				_, err := store.PurgePreferences(ctx, app, later)
				return err
			}},
		}
		for _, st := range steps {
			if err := st.fn(); err != nil {
				t.Errorf("%s as coffeebuddy_app: %v", st.what, err)
			}
		}
	})

	t.Run("app may not", func(t *testing.T) {
		for _, sql := range []string{
			`UPDATE audit_logs SET details = '{}'`,
			`DELETE FROM audit_logs`,
			`TRUNCATE audit_logs`,
			`TRUNCATE orders`,
			`INSERT INTO schema_migrations VALUES (999, false)`,
			`CREATE TABLE sneaky (id int)`,
			`CREATE ROLE sneaky`,
			`CREATE DATABASE sneaky`,
			`ALTER ROLE ` + roles.Name(t, "coffeebuddy_audit") + ` PASSWORD 'x'`,
		} {
			if _, err := app.Exec(ctx, sql); !denied(err) {
				t.Errorf("%s as coffeebuddy_app: %v, want permission denied", sql, err)
			}
		}
	})

	t.Run("readonly answers the ingress and nothing else", func(t *testing.T) {
		if _, err := store.CurrentOrder(ctx, readonly, "T1", "C1", "U2"); err != nil && !errors.Is(err, coffee.ErrRunNotFound) {
			t.Errorf("CurrentOrder: %v", err)
		}
		if _, _, _, err := store.Favourite(ctx, readonly, "U2"); err != nil {
			t.Errorf("Favourite: %v", err)
		}
		if _, err := store.LatestRun(ctx, readonly, "T1", "C1"); err != nil {
			t.Errorf("LatestRun: %v", err)
		}
		if _, _, err := store.History(ctx, readonly, "T1", "C1", 1, 10); err != nil {
			t.Errorf("History: %v", err)
		}
		for _, table := range []string{"users", "coffee_runs", "orders", "user_preferences", "outbox", "processed_events", "slack_posts"} {
			if _, err := readonly.Exec(ctx, `SELECT count(*) FROM `+table); err != nil {
				t.Errorf("SELECT %s: %v", table, err)
			}
			if _, err := readonly.Exec(ctx, `DELETE FROM `+table); !denied(err) {
				t.Errorf("DELETE FROM %s as coffeebuddy_readonly: %v, want refused", table, err)
			}
		}
		for _, sql := range []string{
			`INSERT INTO users (user_id, team_id, display_name) VALUES ('U9', 'T1', 'x')`,
			`SELECT count(*) FROM audit_logs`,
			`SELECT count(*) FROM schema_migrations`,
			`CREATE TABLE sneaky (id int)`,
		} {
			if _, err := readonly.Exec(ctx, sql); !denied(err) {
				t.Errorf("%s as coffeebuddy_readonly: %v, want refused", sql, err)
			}
		}
		// Without the read-only session default, the grants alone refuse.
		_, err := readonly.Exec(ctx, `SET default_transaction_read_only = off; INSERT INTO users (user_id, team_id, display_name) VALUES ('U9', 'T1', 'x')`)
		if !denied(err) {
			t.Errorf("insert with read-only off: %v, want permission denied", err)
		}
	})

	t.Run("audit keeps ADR 0009's grants", func(t *testing.T) {
		if _, err := auditRole.Exec(ctx, `INSERT INTO audit_logs (event_type, details) VALUES ('audit_queried', '{}')`); err != nil {
			t.Errorf("INSERT audit_logs: %v", err)
		}
		if _, err := auditRole.Exec(ctx, `SELECT count(*) FROM audit_logs`); err != nil {
			t.Errorf("SELECT audit_logs: %v", err)
		}
		for _, sql := range []string{`UPDATE audit_logs SET details = '{}'`, `DELETE FROM audit_logs`, `SELECT count(*) FROM coffee_runs`, `SELECT count(*) FROM users`} {
			if _, err := auditRole.Exec(ctx, sql); !denied(err) {
				t.Errorf("%s as coffeebuddy_audit: %v, want permission denied", sql, err)
			}
		}
	})

	t.Run("vault sets passwords and reads nothing", func(t *testing.T) {
		for _, r := range []string{"coffeebuddy_app", "coffeebuddy_readonly", "coffeebuddy_audit"} {
			// Vault's rotation statement for a static role.
			if _, err := vault.Exec(ctx, fmt.Sprintf(`ALTER ROLE %s WITH PASSWORD 'rotated-by-vault'`, pgx.Identifier{roles.Name(t, r)}.Sanitize())); err != nil {
				t.Errorf("ALTER ROLE %s PASSWORD as coffeebuddy_vault: %v", r, err)
			}
		}
		for _, sql := range []string{`SELECT count(*) FROM coffee_runs`, `SELECT count(*) FROM audit_logs`, `CREATE DATABASE sneaky`, `CREATE TABLE sneaky (id int)`} {
			if _, err := vault.Exec(ctx, sql); !denied(err) {
				t.Errorf("%s as coffeebuddy_vault: %v, want permission denied", sql, err)
			}
		}
	})

	t.Run("a later migration's table gets the grants", func(t *testing.T) {
		// As the migrations' role (the one that ran the script).
		if _, err := db.Pool.Exec(ctx, `CREATE TABLE future_feature (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text, legacy bigserial)`); err != nil {
			t.Fatal(err)
		}
		if _, err := app.Exec(ctx, `INSERT INTO future_feature (note) VALUES ('x'); UPDATE future_feature SET note = 'y'; DELETE FROM future_feature`); err != nil {
			t.Errorf("coffeebuddy_app on a new table: %v", err)
		}
		if _, err := readonly.Exec(ctx, `SELECT count(*) FROM future_feature`); err != nil {
			t.Errorf("coffeebuddy_readonly on a new table: %v", err)
		}
		if _, err := auditRole.Exec(ctx, `SELECT count(*) FROM future_feature`); !denied(err) {
			t.Errorf("coffeebuddy_audit on a new table: %v, want permission denied", err)
		}
	})
}
