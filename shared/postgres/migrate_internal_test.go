package postgres

import "testing"

func TestMigrateURL(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "postgres://u:p@h:5432/db?sslmode=disable", want: "pgx5://u:p@h:5432/db?sslmode=disable"},
		{in: "postgresql://u@h/db", want: "pgx5://u@h/db"},
		{in: "pgx5://u@h/db", want: "pgx5://u@h/db"},
		{in: "POSTGRES://u@h/db", want: "pgx5://u@h/db"},
		{in: "mysql://u@h/db", wantErr: true},
		{in: "host=h dbname=db", wantErr: true},
		{in: "postgres://u:p@h:bad port/db", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := migrateURL(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("migrateURL(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("migrateURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
