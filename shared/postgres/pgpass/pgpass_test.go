package pgpass

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestHasPassword(t *testing.T) {
	tests := []struct {
		dsn  string
		want bool
	}{
		{"postgres://app@db:5432/coffee?sslmode=verify-full", false},
		{"postgresql://app:pw@db/coffee", true},
		{"postgres://app@db/coffee?password=pw", true},
		{"host=db user=app dbname=coffee", false},
		{"host=db user=app password=pw dbname=coffee", true},
	}
	for _, tt := range tests {
		if got := hasPassword(tt.dsn); got != tt.want {
			t.Errorf("hasPassword(%q) = %v, want %v", tt.dsn, got, tt.want)
		}
	}
}

// TestReadOnConnect: each connection attempt reads the file again and
// takes the line matching host, port, database and user; a URL's own
// password is left alone.
func TestReadOnConnect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pgpass")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := func(dsn string) func() string {
		t.Helper()
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		ReadOnConnect(cfg, dsn, path)
		return func() string { // one connection attempt
			cc := cfg.ConnConfig.Copy()
			if cfg.BeforeConnect != nil {
				if err := cfg.BeforeConnect(context.Background(), cc); err != nil {
					t.Fatal(err)
				}
			}
			return cc.Password
		}
	}
	// passfile: not the default ~/.pgpass, which this machine may have.
	dsn := "postgres://coffeebuddy_app@db.internal:5432/coffeebuddy?sslmode=disable&passfile=" + path + ".absent"
	write("other.host:5432:coffeebuddy:coffeebuddy_app:wrong\n*:*:coffeebuddy:coffeebuddy_app:first\n")
	connect := pool(dsn)
	if got := connect(); got != "first" {
		t.Fatalf("password = %q, want first", got)
	}
	write("*:*:*:coffeebuddy_app:second\n")
	if got := connect(); got != "second" {
		t.Fatalf("password after the rewrite = %q, want second", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := connect(); got != "" {
		t.Fatalf("password with the file gone = %q, want the one parsed at start (none)", got)
	}
	if got := pool("postgres://coffeebuddy_app:inurl@db.internal/coffeebuddy?sslmode=disable")(); got != "inurl" {
		t.Fatalf("password with one in the URL = %q, want the URL's", got)
	}
}
