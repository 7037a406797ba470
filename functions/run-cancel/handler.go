package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5"
)

const (
	consumer = "run-cancel"
	source   = "/coffeebuddy/run-cancel"
	// ResponseTimeout bounds one response_url post.
	ResponseTimeout = 5 * time.Second
)

// Publisher publishes committed outbox rows.
type Publisher interface {
	Publish(ctx context.Context, ids ...int64) error
}

// Handler cancels coffee runs.
type Handler struct {
	store  *store.Store
	outbox Publisher
	http   *http.Client // for response_url; it must have a timeout
	now    func() time.Time
}

// New returns the handler; now is the clock (time.Now in production).
func New(s *store.Store, p Publisher, c *http.Client, now func() time.Time) *Handler {
	return &Handler{store: s, outbox: p, http: c, now: now}
}

// errRefused rolls back a cancel that was not allowed: nothing changed, and
// the event is recorded as processed only once the caller has been told.
var errRefused = errors.New("cancel refused")

// Handle cancels the channel's run for its initiator or runner: status,
// audit row and run.cancelled outbox event in one transaction, then the
// event is published. Anyone else, a completed run or no run at all gets an
// ephemeral answer through the command's response_url.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var cmd events.SlashCommand
	if err := e.DataAs(&cmd); err != nil {
		return nil, function.Permanentf("decode command: %w", err)
	}
	if cmd.TeamID == "" || cmd.ChannelID == "" || cmd.UserID == "" {
		return nil, function.Permanentf("command lacks team, channel or user")
	}
	reason := strings.TrimSpace(cmd.Text) // untrusted: stored verbatim, rendered escaped
	log := function.Logger(ctx).With("channel", cmd.ChannelID, "user", cmd.UserID)
	now := h.now().UTC()
	var run coffee.Run
	var refusal blocks.Ephemeral
	var outboxID int64
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(tx pgx.Tx) error {
		var err error
		run, err = store.CancelRun(ctx, tx, cmd.TeamID, cmd.ChannelID, cmd.UserID, reason, now)
		if r, ok := blocks.CancelRefusal(err, run); ok {
			refusal = r
			return errRefused
		}
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{
			EventType: audit.RunCancelled, ActorUserID: cmd.UserID, TeamID: run.TeamID, ChannelID: run.ChannelID,
			RunID: run.ID, CEID: e.ID(), Details: map[string]any{"by": cmd.UserID, "reason": reason},
		}); err != nil {
			return err
		}
		outboxID, err = outbox.Enqueue(ctx, tx, outbox.Message{
			Type: events.TypeRunCancelled, Source: source, Subject: run.ID.String(), Key: run.ID.String(),
			Data: events.RunCancelled{RunID: run.ID.String(), CancelledBy: cmd.UserID, Reason: reason},
		})
		return err
	})
	switch {
	case errors.Is(err, errRefused):
		return nil, h.refuse(ctx, e.ID(), cmd, refusal)
	case err != nil:
		return nil, fmt.Errorf("cancel run: %w", err)
	case dup:
		log.Info("duplicate delivery ignored")
		return nil, nil
	}
	log = log.With("run_id", run.ID)
	log.Info("run cancelled", "by", cmd.UserID)
	// Committed: a failed publish is left to the outbox sweep.
	if err := h.outbox.Publish(ctx, outboxID); err != nil {
		log.Warn("outbox publish deferred to the sweep", "err", err)
	}
	return nil, nil
}

// refuse tells the caller why nothing was cancelled, then records the event
// as processed so a redelivery does not tell them twice. If the answer
// cannot be sent the error is retryable: the retry decides afresh.
func (h *Handler) refuse(ctx context.Context, ceID string, cmd events.SlashCommand, answer blocks.Ephemeral) error {
	log := function.Logger(ctx).With("channel", cmd.ChannelID, "user", cmd.UserID)
	if err := h.respond(ctx, cmd.ResponseURL, answer); err != nil {
		return err
	}
	if _, err := h.store.Once(ctx, consumer, ceID, func(pgx.Tx) error { return nil }); err != nil {
		return err
	}
	log.Info("cancel refused", "answer", answer.Text)
	return nil
}

// respond posts answer to the command's response_url.
func (h *Handler) respond(ctx context.Context, responseURL string, answer blocks.Ephemeral) error {
	log := function.Logger(ctx)
	u, err := url.Parse(responseURL)
	if responseURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		// Nothing to answer through; retrying cannot change that.
		log.Warn("command has no usable response_url; the caller is not told", "response_url", responseURL)
		return nil
	}
	body, err := json.Marshal(answer)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, ResponseTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.http.Do(req)
	if err != nil {
		return fmt.Errorf("response_url: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		// Expired (Slack keeps a response_url for 30 minutes): the caller
		// has moved on, and retrying cannot bring it back.
		log.Warn("response_url expired; the caller is not told", "status", resp.StatusCode, "body", string(msg))
		return nil
	}
	return fmt.Errorf("response_url: HTTP %d: %s", resp.StatusCode, msg)
}
