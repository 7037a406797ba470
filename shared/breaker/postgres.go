package breaker

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// InstrumentPool makes a pool feed b and obey it, before pgxpool.NewWithConfig:
//
//   - a pgx tracer reports the outcome of every connect, query, batch, copy
//     and prepare (PostgresOutcome: only connection-class errors are
//     failures; an error the database answered with is a success);
//   - while b is open, Acquire fails at once with an error wrapping ErrOpen
//     (PrepareConn), and so does opening a connection (BeforeConnect), so
//     no query and no dial reaches a database known to be down.
//
// Hooks and a tracer already in cfg keep working.
func InstrumentPool(cfg *pgxpool.Config, b *Breaker) {
	beforeConnect := cfg.BeforeConnect
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		if err := b.Err(); err != nil {
			return err
		}
		if beforeConnect != nil {
			return beforeConnect(ctx, cc)
		}
		return nil
	}
	prepare := cfg.PrepareConn
	if prepare == nil && cfg.BeforeAcquire != nil {
		beforeAcquire := cfg.BeforeAcquire
		prepare = func(ctx context.Context, c *pgx.Conn) (bool, error) { return beforeAcquire(ctx, c), nil }
	}
	cfg.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
		if err := b.Err(); err != nil {
			return true, err // keep the connection, fail the caller
		}
		if prepare != nil {
			return prepare(ctx, c)
		}
		return true, nil
	}
	var t pgx.QueryTracer = &pgTracer{b: b}
	if cfg.ConnConfig.Tracer != nil {
		t = multitracer.New(cfg.ConnConfig.Tracer, t)
	}
	cfg.ConnConfig.Tracer = t
}

// PostgresOutcome classifies the result of one call to PostgreSQL.
// Failures are the errors that say the database is unreachable or unwell:
// connection and network errors, timeouts, errors raised before anything
// was sent (pgconn.SafeToRetry), and the server's connection-exception
// (08…), insufficient-resources (53…), operator-intervention shutdown
// (57P…, e.g. 57P01 admin_shutdown) and system-error (58…) classes. Any
// other error is a success: the database answered (a unique violation, a
// syntax error, no rows). A cancelled call, or one the breaker refused,
// is ignored.
func PostgresOutcome(err error) Outcome {
	if err == nil {
		return Success
	}
	if errors.Is(err, ErrOpen) || errors.Is(err, context.Canceled) {
		return Ignore
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		c := pgErr.Code
		if strings.HasPrefix(c, "08") || strings.HasPrefix(c, "53") || strings.HasPrefix(c, "57P") || strings.HasPrefix(c, "58") {
			return Failure
		}
		return Success
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case pgconn.Timeout(err), errors.Is(err, context.DeadlineExceeded),
		pgconn.SafeToRetry(err),
		errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return Failure
	}
	return Success
}

// pgTracer reports outcomes to the breaker.
type pgTracer struct{ b *Breaker }

type skipKey struct{}

// start marks calls made with a context that is already done: pgx fails
// them without touching the database, so they say nothing about it.
func start(ctx context.Context) context.Context {
	if ctx.Err() != nil {
		return context.WithValue(ctx, skipKey{}, true)
	}
	return ctx
}

func (t *pgTracer) observe(ctx context.Context, conn *pgx.Conn, err error) {
	if ctx.Value(skipKey{}) != nil {
		return
	}
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return // the caller gave up; pgx reports that in many shapes
	}
	o := PostgresOutcome(err)
	if o == Success && err != nil && conn != nil && conn.IsClosed() {
		// An error that cost pgx the connection is a connection failure
		// whatever its shape.
		o = Failure
	}
	t.b.Observe(o)
}

func (t *pgTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return start(ctx)
}

func (t *pgTracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	t.observe(ctx, conn, data.Err)
}

func (t *pgTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return start(ctx)
}

func (t *pgTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t *pgTracer) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	t.observe(ctx, conn, data.Err)
}

func (t *pgTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return start(ctx)
}

func (t *pgTracer) TraceCopyFromEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromEndData) {
	t.observe(ctx, conn, data.Err)
}

func (t *pgTracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return start(ctx)
}

func (t *pgTracer) TracePrepareEnd(ctx context.Context, conn *pgx.Conn, data pgx.TracePrepareEndData) {
	t.observe(ctx, conn, data.Err)
}

func (t *pgTracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return start(ctx)
}

func (t *pgTracer) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	t.observe(ctx, data.Conn, data.Err)
}
