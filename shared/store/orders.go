package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// PlaceOrder stores user's order in the run that is active in the channel,
// replacing their earlier order in the same run (one order per user per
// run), and keeps their preference counts exact in the same transaction. It
// returns coffee.ErrRunClosed when the channel has no run taking orders.
func PlaceOrder(ctx context.Context, tx pgx.Tx, teamID, channelID string, o coffee.Order, now time.Time) (placed coffee.Order, edited bool, err error) {
	// Lock the run row: closing takes the same lock, so an order cannot
	// slip in after the runner was picked.
	rows, err := tx.Query(ctx, `SELECT `+runColumns+` FROM coffee_runs
		WHERE team_id = $1 AND channel_id = $2 AND status = 'active' FOR UPDATE`, teamID, channelID)
	if err != nil {
		return coffee.Order{}, false, fmt.Errorf("store: place order: %w", err)
	}
	run, err := oneRun(rows)
	if errors.Is(err, coffee.ErrRunNotFound) || (err == nil && !now.Before(run.LastCallAt)) {
		return coffee.Order{}, false, coffee.ErrRunClosed
	}
	if err != nil {
		return coffee.Order{}, false, err
	}
	var prevDrink, prevSize string
	err = tx.QueryRow(ctx, `SELECT drink, size FROM orders WHERE run_id = $1 AND user_id = $2`, run.ID, o.UserID).Scan(&prevDrink, &prevSize)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return coffee.Order{}, false, fmt.Errorf("store: place order: %w", err)
	default:
		edited = true
	}
	o.RunID = run.ID
	err = tx.QueryRow(ctx, `
		INSERT INTO orders (run_id, user_id, drink, size, customizations, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (run_id, user_id) DO UPDATE
		SET drink = EXCLUDED.drink, size = EXCLUDED.size, customizations = EXCLUDED.customizations, updated_at = EXCLUDED.updated_at
		RETURNING id, created_at, updated_at`,
		run.ID, o.UserID, o.Drink, o.Size, o.Customizations, now.UTC()).Scan(&o.ID, &o.CreatedAt, &o.UpdatedAt)
	if err != nil {
		return coffee.Order{}, false, fmt.Errorf("store: place order: %w", err)
	}
	// Preferences count one order per run: an edit moves the count from the
	// old drink+size to the new one. Upserts are atomic row updates, so
	// concurrent orders by one user stay exact.
	if edited && (prevDrink != o.Drink || prevSize != o.Size) {
		if _, err := tx.Exec(ctx, `UPDATE user_preferences SET order_count = order_count - 1
			WHERE user_id = $1 AND drink = $2 AND size = $3 AND order_count > 0`, o.UserID, prevDrink, prevSize); err != nil {
			return coffee.Order{}, false, fmt.Errorf("store: preferences: %w", err)
		}
	}
	if !edited || prevDrink != o.Drink || prevSize != o.Size {
		_, err = tx.Exec(ctx, `
			INSERT INTO user_preferences (user_id, drink, size, order_count, last_ordered_at) VALUES ($1, $2, $3, 1, $4)
			ON CONFLICT (user_id, drink, size) DO UPDATE
			SET order_count = user_preferences.order_count + 1, last_ordered_at = GREATEST(user_preferences.last_ordered_at, EXCLUDED.last_ordered_at)`,
			o.UserID, o.Drink, o.Size, now.UTC())
	} else {
		_, err = tx.Exec(ctx, `UPDATE user_preferences SET last_ordered_at = GREATEST(last_ordered_at, $4)
			WHERE user_id = $1 AND drink = $2 AND size = $3`, o.UserID, o.Drink, o.Size, now.UTC())
	}
	if err != nil {
		return coffee.Order{}, false, fmt.Errorf("store: preferences: %w", err)
	}
	return o, edited, nil
}

// CurrentOrder returns userID's order in the channel's active run, or
// coffee.ErrRunNotFound when the channel has no active run or the user has
// not ordered in it.
func CurrentOrder(ctx context.Context, q Querier, teamID, channelID, userID string) (coffee.Order, error) {
	rows, err := q.Query(ctx, `SELECT `+orderColumns+` FROM coffee_runs r
		JOIN orders o ON o.run_id = r.id AND o.user_id = $3 LEFT JOIN users u ON u.user_id = o.user_id
		WHERE r.team_id = $1 AND r.channel_id = $2 AND r.status = 'active'`, teamID, channelID, userID)
	if err != nil {
		return coffee.Order{}, fmt.Errorf("store: current order: %w", err)
	}
	orders, err := collectOrders(rows)
	if err != nil {
		return coffee.Order{}, err
	}
	if len(orders) == 0 {
		return coffee.Order{}, coffee.ErrRunNotFound
	}
	return orders[0], nil
}

// Favourite returns the user's most frequent drink+size (the most recent
// breaks ties), or ok=false when they have none.
func Favourite(ctx context.Context, q Querier, userID string) (drink, size string, ok bool, err error) {
	err = q.QueryRow(ctx, `SELECT drink, size FROM user_preferences
		WHERE user_id = $1 AND order_count > 0
		ORDER BY order_count DESC, last_ordered_at DESC LIMIT 1`, userID).Scan(&drink, &size)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("store: favourite: %w", err)
	}
	return drink, size, true, nil
}

// Preference is one drink+size count of a user.
type Preference struct {
	Drink         string    `db:"drink"`
	Size          string    `db:"size"`
	OrderCount    int       `db:"order_count"`
	LastOrderedAt time.Time `db:"last_ordered_at"`
}

// Preferences returns the user's counts per drink+size, most frequent first.
func Preferences(ctx context.Context, q Querier, userID string) ([]Preference, error) {
	rows, err := q.Query(ctx, `SELECT drink, size, order_count, last_ordered_at FROM user_preferences
		WHERE user_id = $1 AND order_count > 0 ORDER BY order_count DESC, last_ordered_at DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: preferences: %w", err)
	}
	prefs, err := pgx.CollectRows(rows, pgx.RowToStructByName[Preference])
	if err != nil {
		return nil, fmt.Errorf("store: preferences: %w", err)
	}
	return prefs, nil
}

// RecentOrders returns the user's last n orders, newest first.
func RecentOrders(ctx context.Context, q Querier, userID string, n int) ([]coffee.Order, error) {
	rows, err := q.Query(ctx, `SELECT `+orderColumns+` FROM orders o LEFT JOIN users u ON u.user_id = o.user_id
		WHERE o.user_id = $1 ORDER BY o.created_at DESC LIMIT $2`, userID, n)
	if err != nil {
		return nil, fmt.Errorf("store: recent orders: %w", err)
	}
	return collectOrders(rows)
}

// RunOrders returns a run's orders in the order they were first placed.
func RunOrders(ctx context.Context, q Querier, runID uuid.UUID) ([]coffee.Order, error) {
	rows, err := q.Query(ctx, `SELECT `+orderColumns+` FROM orders o LEFT JOIN users u ON u.user_id = o.user_id
		WHERE o.run_id = $1 ORDER BY o.created_at, o.user_id`, runID)
	if err != nil {
		return nil, fmt.Errorf("store: run orders: %w", err)
	}
	return collectOrders(rows)
}

// PurgePreferences deletes preferences untouched since before and returns
// how many rows went.
func PurgePreferences(ctx context.Context, q Querier, before time.Time) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM user_preferences WHERE last_ordered_at < $1`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("store: purge preferences: %w", err)
	}
	return tag.RowsAffected(), nil
}

const orderColumns = `o.id, o.run_id, o.user_id, coalesce(nullif(u.display_name, ''), o.user_id), o.drink, o.size,
	o.customizations, o.created_at, o.updated_at`

func collectOrders(rows pgx.Rows) ([]coffee.Order, error) {
	orders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (coffee.Order, error) {
		var o coffee.Order
		err := row.Scan(&o.ID, &o.RunID, &o.UserID, &o.DisplayName, &o.Drink, &o.Size, &o.Customizations, &o.CreatedAt, &o.UpdatedAt)
		o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: orders: %w", err)
	}
	return orders, nil
}
