package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// UsualCustomizations returns the customizations of the user's most recent
// order of drink+size ("" when they never ordered it), so My usual repeats
// them. It walks orders_user_created newest first.
func UsualCustomizations(ctx context.Context, q Querier, userID, drink, size string) (string, error) {
	var c string
	err := q.QueryRow(ctx, `SELECT customizations FROM orders
		WHERE user_id = $1 AND drink = $2 AND size = $3
		ORDER BY created_at DESC, updated_at DESC LIMIT 1`, userID, drink, size).Scan(&c)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: usual customizations: %w", err)
	}
	return c, nil
}
