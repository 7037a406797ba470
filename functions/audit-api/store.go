package main

import (
	"context"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// dbStore is Store on PostgreSQL, as role coffeebuddy_audit: SELECT and
// INSERT on audit_logs, nothing else (docs/adr/0009-audit-api.md).
type dbStore struct{ db *pgxpool.Pool }

func (s dbStore) Page(ctx context.Context, f auditquery.Filter, after *auditquery.Position, limit int) ([]auditquery.Row, bool, error) {
	return auditquery.Page(ctx, s.db, f, after, limit)
}

func (s dbStore) Stream(ctx context.Context, f auditquery.Filter, after *auditquery.Position, emit func(*auditquery.Row) error) (int64, error) {
	return auditquery.Stream(ctx, s.db, f, after, emit)
}

func (s dbStore) RecordAccess(ctx context.Context, e audit.Entry) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error { return audit.Record(ctx, tx, e) })
}
