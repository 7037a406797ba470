// Command migrate applies the CoffeeBuddy migrations and generates the schema
// document.
//
//	migrate up                       apply all pending migrations
//	migrate down [N]                 revert N migrations (default: all)
//	migrate version                  print the applied version
//	migrate force V                  mark V applied and clean (after a failed migration)
//	migrate schema-doc [-o FILE]     write docs/schema.md (stdout without -o)
//	migrate roles FILE...            apply SQL files (database roles) in one transaction
//
// It connects to DATABASE_URL. schema-doc without DATABASE_URL starts an
// ephemeral cluster, migrates it, renders the schema and stops it, so the doc
// can be regenerated on any machine with the PostgreSQL binaries.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgcluster"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/schemadoc"
)

const usage = `usage: migrate <command> [args]

commands:
  up                     apply all pending migrations
  down [N]               revert N migrations (default: all)
  version                print the applied migration version ("N (dirty)" after a failure)
  force V                mark version V applied and clean, running nothing: after a migration
                         failed (it was rolled back, its version is left dirty), force the
                         version before it, fix the cause, and run up again
  schema-doc [-o FILE]   render the schema as Markdown (DATABASE_URL, or an ephemeral cluster)
  roles FILE...          apply SQL files in one transaction, all or nothing (the install's
                         deploy/postgres/roles.sql, after up; it must be idempotent)

environment:
  DATABASE_URL           PostgreSQL URL (required except for schema-doc)
  LOG_LEVEL              debug, info, warn, error (default info)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is main without the process globals, so tests can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel(getenv("LOG_LEVEL"))}))
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err := dispatch(ctx, logger, args[0], args[1:], stdout, getenv("DATABASE_URL")); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "migrate: %v\n\n%s", err, usage)
			return 2
		}
		logger.Error("migrate failed", "command", args[0], "err", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func dispatch(ctx context.Context, logger *slog.Logger, cmd string, args []string, stdout io.Writer, dbURL string) error {
	needURL := func() error {
		if dbURL == "" {
			return usageError{cmd + " needs DATABASE_URL"}
		}
		return nil
	}
	switch cmd {
	case "up":
		if len(args) != 0 {
			return usageError{"up takes no arguments"}
		}
		if err := needURL(); err != nil {
			return err
		}
		if err := postgres.MigrateUp(ctx, dbURL); err != nil {
			return err
		}
		return logVersion(ctx, logger, dbURL, "migrated up")

	case "down":
		steps := 0
		switch len(args) {
		case 0:
		case 1:
			n, err := strconv.Atoi(args[0])
			if err != nil || n <= 0 {
				return usageError{fmt.Sprintf("down: N must be a positive integer, got %q", args[0])}
			}
			steps = n
		default:
			return usageError{"down takes at most one argument"}
		}
		if err := needURL(); err != nil {
			return err
		}
		if err := postgres.MigrateDown(ctx, dbURL, steps); err != nil {
			return err
		}
		return logVersion(ctx, logger, dbURL, "migrated down")

	case "version":
		if len(args) != 0 {
			return usageError{"version takes no arguments"}
		}
		if err := needURL(); err != nil {
			return err
		}
		v, dirty, err := postgres.Version(ctx, dbURL)
		if err != nil {
			return err
		}
		// The version is the command's output, not a log line.
		if dirty {
			fmt.Fprintf(stdout, "%d (dirty)\n", v)
		} else {
			fmt.Fprintf(stdout, "%d\n", v)
		}
		return nil

	case "force":
		if len(args) != 1 {
			return usageError{"force takes one argument, the version"}
		}
		v, err := strconv.ParseUint(args[0], 10, 63)
		if err != nil {
			return usageError{fmt.Sprintf("force: the version must be a non-negative integer, got %q", args[0])}
		}
		if err := needURL(); err != nil {
			return err
		}
		if err := postgres.Force(ctx, dbURL, uint(v)); err != nil {
			return err
		}
		return logVersion(ctx, logger, dbURL, "forced")

	case "schema-doc":
		fs := flag.NewFlagSet("schema-doc", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		out := fs.String("o", "", "output file (default stdout)")
		if err := fs.Parse(args); err != nil {
			return usageError{"schema-doc: " + err.Error()}
		}
		if fs.NArg() != 0 {
			return usageError{"schema-doc: unexpected arguments"}
		}
		return schemaDoc(ctx, logger, dbURL, *out, stdout)

	case "roles":
		if len(args) == 0 {
			return usageError{"roles needs at least one SQL file"}
		}
		if err := needURL(); err != nil {
			return err
		}
		var script strings.Builder
		for _, f := range args {
			b, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("roles: %w", err)
			}
			script.Write(b)
			script.WriteString("\n;\n")
		}
		if err := postgres.ApplySQL(ctx, dbURL, strings.Join(args, ", "), script.String()); err != nil {
			return err
		}
		logger.InfoContext(ctx, "applied", "files", args)
		return nil

	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

func logVersion(ctx context.Context, logger *slog.Logger, dbURL, msg string) error {
	v, dirty, err := postgres.Version(ctx, dbURL)
	if err != nil {
		return err
	}
	logger.InfoContext(ctx, msg, "version", v, "dirty", dirty)
	return nil
}

func schemaDoc(ctx context.Context, logger *slog.Logger, dbURL, out string, stdout io.Writer) (err error) {
	if dbURL == "" {
		logger.InfoContext(ctx, "DATABASE_URL not set; starting an ephemeral cluster")
		startCtx, cancel := context.WithTimeout(ctx, time.Minute)
		c, err := pgcluster.Start(startCtx, pgcluster.Options{})
		cancel()
		if err != nil {
			return err
		}
		defer func() {
			if stopErr := c.Stop(); stopErr != nil && err == nil {
				err = stopErr
			}
		}()
		dbURL = c.URL()
	}
	if err := postgres.MigrateUp(ctx, dbURL); err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, dbURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	doc, err := schemadoc.Generate(ctx, pool)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = io.WriteString(stdout, doc)
		return err
	}
	if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
		return fmt.Errorf("write schema doc: %w", err)
	}
	logger.InfoContext(ctx, "wrote schema doc", "path", out)
	return nil
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
