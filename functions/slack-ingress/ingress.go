package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxBody is the largest request body accepted (413 above it). Slash
// commands are a few hundred bytes; modal submissions a few KiB.
const MaxBody = 256 << 10

// Deadlines inside Slack's 3-second budget.
const (
	produceTimeout = 2 * time.Second
	modalTimeout   = 2500 * time.Millisecond
)

// Producer is the durable hand-off to Kafka (a *kgo.Client).
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// ModalOpener opens a modal, given as encoded JSON, for a trigger_id.
type ModalOpener interface {
	OpenModal(ctx context.Context, triggerID string, view []byte) error
}

// Lookups are the few reads the ingress answers Slack with inside its 3
// seconds: the modal pre-fill (the user's order in the run when editing it,
// else their favourite), whether a channel's run still takes orders, and
// /coffee-history.
type Lookups interface {
	Prefill(ctx context.Context, teamID, channelID, userID string) (blocks.Prefill, error)
	OrderingOpen(ctx context.Context, teamID, channelID string, now time.Time) (bool, error)
	History(ctx context.Context, teamID, channelID string, page int) ([]store.HistoryEntry, int, error)
}

// lookupTimeout bounds a read so a slow database costs the pre-fill, never
// Slack's deadline.
const lookupTimeout = 500 * time.Millisecond

// Ingress serves Slack's slash commands and interactions.
type Ingress struct {
	verifier *slackapi.Verifier
	produce  Producer
	modals   ModalOpener
	db       Lookups
	lastCall time.Duration
	log      *slog.Logger
	now      func() time.Time
	requests *prometheus.CounterVec
	produced prometheus.Histogram
	previous prometheus.Counter
}

// New wires an Ingress that checks signatures with v; reg may be nil.
func New(v *slackapi.Verifier, p Producer, m ModalOpener, db Lookups, lastCall time.Duration, log *slog.Logger, reg prometheus.Registerer) http.Handler {
	in := &Ingress{
		verifier: v, produce: p, modals: m, db: db, lastCall: lastCall, log: log, now: time.Now,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slack_ingress_requests_total",
			Help: "Slack requests by endpoint and HTTP status.",
		}, []string{"endpoint", "status"}),
		produced: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slack_ingress_produce_seconds",
			Help:    "Time for the durable Kafka produce before the ack.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2},
		}),
		previous: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slack_ingress_previous_secret_total",
			Help: "Requests verified with the previous signing secret, inside the rotation grace window.",
		}),
	}
	if reg != nil {
		reg.MustRegister(in.requests, in.produced, in.previous)
	}
	return in.routes()
}

func (in *Ingress) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/commands", in.verified("commands", in.command))
	mux.HandleFunc("POST /slack/interactions", in.verified("interactions", in.interaction))
	return mux
}

// verified reads at most MaxBody bytes, checks Slack's signature over the
// raw bytes, and only then lets next parse them.
func (in *Ingress) verified(endpoint string, next func(w http.ResponseWriter, r *http.Request, form url.Values) int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status := in.serveVerified(w, r, next)
		in.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	}
}

func (in *Ingress) serveVerified(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request, url.Values) int) int {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", MaxBody))
	}
	if err != nil {
		return fail(w, http.StatusBadRequest, "could not read request body")
	}
	match, err := in.verifier.Verify(r.Header.Get(slackapi.HeaderTimestamp), r.Header.Get(slackapi.HeaderSignature), body)
	if errors.Is(err, slackapi.ErrNoSigningSecret) {
		in.log.Error("signing secret unavailable", "err", err)
		return fail(w, http.StatusServiceUnavailable, "signing secret unavailable")
	}
	if err != nil {
		in.log.Warn("rejected unverified request", "path", r.URL.Path, "reason", err.Error(), "remote", r.RemoteAddr)
		return fail(w, http.StatusUnauthorized, "invalid Slack signature: "+err.Error())
	}
	if match == slackapi.MatchPrevious {
		in.previous.Inc()
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fail(w, http.StatusBadRequest, "body is not form-encoded")
	}
	return next(w, r, form)
}

func (in *Ingress) command(w http.ResponseWriter, r *http.Request, form url.Values) int {
	cmd := events.SlashCommand{
		TeamID: form.Get("team_id"), ChannelID: form.Get("channel_id"),
		UserID: form.Get("user_id"), UserName: form.Get("user_name"),
		Command: form.Get("command"), Text: form.Get("text"),
		ResponseURL: form.Get("response_url"), TriggerID: form.Get("trigger_id"),
		ReceivedAt: in.now().UTC(),
	}
	// Metadata only: never the token, the text or the response_url.
	log := in.log.With("team", cmd.TeamID, "channel", cmd.ChannelID, "user", cmd.UserID, "command", cmd.Command, "at", cmd.ReceivedAt)
	if cmd.TeamID == "" || cmd.ChannelID == "" || cmd.UserID == "" || cmd.Command == "" {
		log.Warn("command missing fields")
		return fail(w, http.StatusBadRequest, "command is missing team_id, channel_id, user_id or command")
	}
	switch cmd.Command {
	case "/coffee":
		if _, err := coffee.ParseLastCall(cmd.Text, in.lastCall); err != nil {
			log.Info("command rejected", "reason", "bad last call")
			return reply(w, blocks.EphemeralText(err.Error()))
		}
		// Open the order modal while the produce is in flight: the
		// trigger_id is only good for 3 s.
		in.openOrderModal(r.Context(), cmd.TriggerID, blocks.OrderMetadata{TeamID: cmd.TeamID, ChannelID: cmd.ChannelID, ResponseURL: cmd.ResponseURL}, cmd.UserID, log)
		return in.accept(w, r, log, events.TypeCommandCoffee, cmd.TeamID, cmd.ChannelID, cmd,
			blocks.EphemeralText(":coffee: Got it! Opening your order form…"))
	case "/coffee-cancel":
		// The outcome (the thread notice, or why not) comes from run-cancel;
		// meanwhile the caller sees that it was heard.
		return in.accept(w, r, log, events.TypeCommandCancel, cmd.TeamID, cmd.ChannelID, cmd,
			blocks.EphemeralText(":hourglass_flowing_sand: Cancelling…"))
	case "/coffee-history":
		return in.history(w, r, cmd, log)
	default:
		log.Info("unknown command")
		return reply(w, blocks.EphemeralText(fmt.Sprintf("I don't know %s. Try `/coffee`, `/coffee-cancel` or `/coffee-history`.", blocks.Escape(cmd.Command))))
	}
}

// accept produces the request durably, then acks with ack (nil: an empty
// 200, which Slack shows as nothing).
func (in *Ingress) accept(w http.ResponseWriter, r *http.Request, log *slog.Logger, typ, teamID, channelID string, data, ack any) int {
	ev, err := in.event(typ, teamID+"/"+channelID, data)
	if err == nil {
		err = in.send(r.Context(), events.TopicSlackEvents, ev)
	}
	if err != nil {
		log.Error("request not accepted: Kafka produce failed", "ce_type", typ, "err", err)
		return reply(w, blocks.EphemeralText(":warning: CoffeeBuddy couldn't take that just now. Please try again in a moment."))
	}
	log.Info("command accepted", "ce_id", ev.ID(), "ce_type", typ)
	if ack == nil {
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	return reply(w, ack)
}

// history answers /coffee-history [--page N] from the database, in the
// command response.
func (in *Ingress) history(w http.ResponseWriter, r *http.Request, cmd events.SlashCommand, log *slog.Logger) int {
	page, ok := parsePage(cmd.Text)
	if !ok {
		return reply(w, blocks.EphemeralText("Usage: `/coffee-history` or `/coffee-history --page 2`"))
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	entries, total, err := in.db.History(ctx, cmd.TeamID, cmd.ChannelID, page)
	if err != nil {
		log.Error("history lookup failed", "err", err)
		return reply(w, blocks.EphemeralText(":warning: I couldn't read the history just now. Please try again."))
	}
	log.Info("history answered", "page", page, "total", total)
	return reply(w, blocks.History(entries, page, total))
}

// parsePage reads "", "--page N", "-p N" or "N".
func parsePage(text string) (int, bool) {
	f := strings.Fields(text)
	switch {
	case len(f) == 0:
		return 1, true
	case len(f) == 2 && (f[0] == "--page" || f[0] == "-p"):
		f = f[1:]
	case len(f) == 1 && strings.HasPrefix(f[0], "--page="):
		f[0] = strings.TrimPrefix(f[0], "--page=")
	}
	if len(f) != 1 {
		return 0, false
	}
	n, err := strconv.Atoi(f[0])
	return n, err == nil && n >= 1 && n <= 10000
}

func (in *Ingress) interaction(w http.ResponseWriter, r *http.Request, form url.Values) int {
	raw := form.Get("payload")
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(raw), &cb); err != nil || cb.Type == "" {
		return fail(w, http.StatusBadRequest, "payload is not a Slack interaction")
	}
	log := in.log.With("team", cb.Team.ID, "channel", cb.Channel.ID, "user", cb.User.ID, "interaction", string(cb.Type))
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		return in.blockAction(w, r, cb, log)
	case slack.InteractionTypeViewSubmission:
		if cb.View.CallbackID == blocks.CallbackOrder {
			return in.submitOrder(w, r, cb, log)
		}
	}
	// Anything else (modal closed, unknown actions) needs only the ack.
	log.Debug("interaction acknowledged", "callback", cb.View.CallbackID)
	w.WriteHeader(http.StatusOK)
	return http.StatusOK
}

// buttonRequests maps run buttons to the request event they produce.
var buttonRequests = map[string]string{
	blocks.ActionMyUsual:   events.TypeOrderUsual,
	blocks.ActionVolunteer: events.TypeVolunteerRequest,
	blocks.ActionCloseNow:  events.TypeCloseRequest,
	blocks.ActionComplete:  events.TypeCompleteRequest,
}

func (in *Ingress) blockAction(w http.ResponseWriter, r *http.Request, cb slack.InteractionCallback, log *slog.Logger) int {
	for _, a := range cb.ActionCallback.BlockActions {
		if a.ActionID == blocks.ActionAddOrder {
			in.openOrderModal(r.Context(), cb.TriggerID, blocks.OrderMetadata{TeamID: cb.Team.ID, ChannelID: cb.Channel.ID, ResponseURL: cb.ResponseURL}, cb.User.ID, log)
			continue
		}
		typ, ok := buttonRequests[a.ActionID]
		if !ok {
			continue
		}
		act := events.RunAction{
			RunID: a.Value, TeamID: cb.Team.ID, ChannelID: cb.Channel.ID, UserID: cb.User.ID,
			UserName: cb.User.Name, ResponseURL: cb.ResponseURL, At: in.now().UTC(),
		}
		ev, err := in.event(typ, a.Value, act) // keyed by run: one run's clicks stay in order
		if err == nil {
			err = in.send(r.Context(), events.TopicSlackEvents, ev)
		}
		if err != nil {
			log.Error("click not accepted: Kafka produce failed", "action", a.ActionID, "err", err)
			return fail(w, http.StatusServiceUnavailable, "temporarily unavailable")
		}
		log.Info("click accepted", "action", a.ActionID, "ce_id", ev.ID(), "run_id", a.Value)
	}
	w.WriteHeader(http.StatusOK)
	return http.StatusOK
}

func (in *Ingress) submitOrder(w http.ResponseWriter, r *http.Request, cb slack.InteractionCallback, log *slog.Logger) int {
	if errs := validateOrder(cb.View.State); len(errs) > 0 {
		log.Info("order rejected with field errors", "fields", len(errs))
		return reply(w, slack.NewErrorsViewSubmissionResponse(errs))
	}
	var meta blocks.OrderMetadata
	if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta); err != nil || meta.ChannelID == "" {
		return reply(w, slack.NewErrorsViewSubmissionResponse(map[string]string{
			blocks.BlockDrink: "This form has expired. Please start again with /coffee."}))
	}
	now := in.now()
	ctx, cancel := context.WithTimeout(r.Context(), lookupTimeout)
	open, err := in.db.OrderingOpen(ctx, meta.TeamID, meta.ChannelID, now)
	cancel()
	if err != nil {
		// Let order-place decide; it answers the user if the run is gone.
		log.Warn("could not check the run before accepting an order", "err", err)
	} else if !open {
		log.Info("order rejected: run closed")
		return reply(w, slack.NewErrorsViewSubmissionResponse(map[string]string{
			blocks.BlockDrink: "This coffee run has closed and no longer takes orders. Start a new one with /coffee."}))
	}
	v := cb.View.State.Values
	sub := events.OrderSubmitted{
		TeamID: meta.TeamID, ChannelID: meta.ChannelID, UserID: cb.User.ID, UserName: cb.User.Name,
		Drink:          v[blocks.BlockDrink][blocks.BlockDrink].SelectedOption.Value,
		Size:           v[blocks.BlockSize][blocks.BlockSize].SelectedOption.Value,
		Customizations: coffee.NormalizeCustomizations(v[blocks.BlockCustomize][blocks.BlockCustomize].Value),
		At:             now.UTC(),
		ResponseURL:    meta.ResponseURL,
	}
	ev, err := in.event(events.TypeOrderSubmitted, meta.TeamID+"/"+meta.ChannelID, sub)
	if err == nil {
		err = in.send(r.Context(), events.TopicSlackEvents, ev)
	}
	if err != nil {
		log.Error("order not accepted: Kafka produce failed", "err", err)
		return reply(w, slack.NewErrorsViewSubmissionResponse(map[string]string{
			blocks.BlockDrink: "CoffeeBuddy couldn't take your order just now. Please press Place order again."}))
	}
	log.Info("order accepted", "ce_id", ev.ID())
	// An empty 200 closes the modal.
	w.WriteHeader(http.StatusOK)
	return http.StatusOK
}

// validateOrder returns Slack inline field errors for a submitted order.
func validateOrder(state *slack.ViewState) map[string]string {
	errs := map[string]string{}
	if state == nil {
		return map[string]string{blocks.BlockDrink: "Please choose a drink."}
	}
	get := func(block string) slack.BlockAction { return state.Values[block][block] }
	if !oneOf(get(blocks.BlockDrink).SelectedOption.Value, blocks.Drinks) {
		errs[blocks.BlockDrink] = "Please choose a drink from the list."
	}
	if !oneOf(get(blocks.BlockSize).SelectedOption.Value, blocks.Sizes) {
		errs[blocks.BlockSize] = "Please choose a size from the list."
	}
	if n := len([]rune(get(blocks.BlockCustomize).Value)); n > blocks.MaxCustomization {
		errs[blocks.BlockCustomize] = fmt.Sprintf("Customizations can be at most %d characters (this is %d).", blocks.MaxCustomization, n)
	}
	return errs
}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// openOrderModal opens the order form for userID, pre-filled with their
// order in the channel's run when they are changing it, else with their most
// frequent drink and size. It runs in the background: the trigger_id
// allows 3 s, and the ack must not wait for Slack.
func (in *Ingress) openOrderModal(ctx context.Context, triggerID string, meta blocks.OrderMetadata, userID string, log *slog.Logger) {
	if triggerID == "" {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), modalTimeout)
		defer cancel()
		lctx, lcancel := context.WithTimeout(ctx, lookupTimeout)
		pre, err := in.db.Prefill(lctx, meta.TeamID, meta.ChannelID, userID)
		lcancel()
		if err != nil {
			log.Warn("no pre-fill: order lookup failed", "err", err)
		}
		view := blocks.OrderModalJSON(meta, pre)
		if err := in.modals.OpenModal(ctx, triggerID, view); err != nil {
			log.Warn("could not open order modal", "err", err)
		}
	}()
}

// event builds a CloudEvent keyed by partition key pk (team/channel, so one
// channel's events stay ordered).
func (in *Ingress) event(typ, pk string, data any) (event.Event, error) {
	ev := event.New()
	ev.SetID(uuid.NewString())
	ev.SetType(typ)
	ev.SetSource(events.SourceIngress)
	ev.SetSubject(pk)
	ev.SetTime(in.now())
	ev.SetExtension(kafka.ExtPartitionKey, pk)
	if err := ev.SetData(event.ApplicationJSON, data); err != nil {
		return ev, fmt.Errorf("encode %s: %w", typ, err)
	}
	return ev, nil
}

// send produces ev and waits for acks=all: the ack to Slack goes out only
// once the request is durable.
func (in *Ingress) send(ctx context.Context, topic string, ev event.Event) error {
	rec, err := kafka.Record(topic, "", ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, produceTimeout)
	defer cancel()
	start := time.Now()
	err = in.produce.ProduceSync(ctx, rec).FirstErr()
	in.produced.Observe(time.Since(start).Seconds())
	return err
}

func reply(w http.ResponseWriter, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return fail(w, http.StatusInternalServerError, "could not encode response")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	return http.StatusOK
}

func fail(w http.ResponseWriter, status int, msg string) int {
	http.Error(w, msg, status)
	return status
}

// slackModals opens modals through slack-go.
type slackModals struct{ clients *slackapi.Clients }

func (m slackModals) OpenModal(ctx context.Context, triggerID string, view []byte) error {
	return m.clients.OpenViewJSON(ctx, triggerID, view)
}
