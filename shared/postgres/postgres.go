// Package postgres holds the PostgreSQL plumbing every CoffeeBuddy binary
// shares: opening a pgx pool and applying the embedded migrations.
//
// Subpackages are named after what they provide:
//   - pgcluster starts an ephemeral local PostgreSQL cluster (dev and tests);
//   - pgtest gives each test its own freshly migrated database;
//   - schemadoc renders the live schema as Markdown (docs/schema.md).
package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultMaxConns is the pool size used when Open is given 0.
const DefaultMaxConns int32 = 20

// Open returns a pgx pool for url that has already answered a ping, so a bad
// URL or an unreachable server fails at start-up rather than on first use.
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse error can echo the URL; it is the caller's own input,
		// but keep the message short and never log it with secrets.
		return nil, fmt.Errorf("postgres: parse config: %w", err)
	}
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	cfg.MaxConns = maxConns

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	return pool, nil
}
