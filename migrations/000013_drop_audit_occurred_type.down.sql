-- Rebuilt without blocking audit inserts (see the up migration).
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_logs_occurred_type ON audit_logs (occurred_at, event_type);
