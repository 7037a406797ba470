package main

import (
	"context"
	"errors"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5/pgxpool"
)

// dbLookups answers Lookups from PostgreSQL (reads only).
type dbLookups struct{ db *pgxpool.Pool }

func (l dbLookups) Favourite(ctx context.Context, userID string) (blocks.Prefill, error) {
	drink, size, _, err := store.Favourite(ctx, l.db, userID)
	return blocks.Prefill{Drink: drink, Size: size}, err
}

func (l dbLookups) OrderingOpen(ctx context.Context, teamID, channelID string, now time.Time) (bool, error) {
	run, err := store.LatestRun(ctx, l.db, teamID, channelID)
	if errors.Is(err, coffee.ErrRunNotFound) {
		// No run yet: the /coffee that opened this form may still be on
		// its way through Kafka. order-place waits for it.
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return run.Status == coffee.StatusActive && now.Before(run.LastCallAt), nil
}

func (l dbLookups) History(ctx context.Context, teamID, channelID string, page int) ([]store.HistoryEntry, int, error) {
	return store.History(ctx, l.db, teamID, channelID, page, blocks.HistoryPageSize)
}
