// Package pgpass keeps a pgx pool's password in step with a libpq password
// file that is rewritten while the process runs (Vault agent's pgpass). It
// is its own package so the function runtime links it without the
// migrations in package postgres.
package pgpass

import (
	"context"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgpassfile"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ReadOnConnect makes every new connection of the pool take its
// password from the libpq password file at path (PGPASSFILE), read again
// each time. pgx reads the file once, when the URL is parsed; Vault rotates
// the static roles' passwords (every 90 days) and its agent rewrites the
// file, so without this a pool would open new connections with the old
// password until the process restarts. Connections already open are not
// affected by a password change.
//
// A URL that carries its own password wins, as in libpq, and is left
// alone. If the file cannot be read or has no matching line, the password
// parsed from the URL (or the file at start-up) is kept.
func ReadOnConnect(cfg *pgxpool.Config, dsn, path string) {
	if path == "" || hasPassword(dsn) {
		return
	}
	next := cfg.BeforeConnect
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		if pf, err := pgpassfile.ReadPassfile(path); err == nil {
			host := cc.Host
			if network, _ := pgconn.NetworkAddress(cc.Host, cc.Port); network == "unix" {
				host = "localhost" // as libpq and pgx's own look-up do
			}
			if pw := pf.FindPassword(host, strconv.Itoa(int(cc.Port)), cc.Database, cc.User); pw != "" {
				cc.Password = pw
			}
		}
		if next != nil {
			return next(ctx, cc)
		}
		return nil
	}
}

// hasPassword reports whether a postgres URL or keyword/value string names
// a password itself.
func hasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, ok := u.User.Password(); ok {
			return true
		}
		return u.Query().Has("password")
	}
	for _, f := range strings.Fields(dsn) {
		if strings.HasPrefix(f, "password=") {
			return true
		}
	}
	return false
}
