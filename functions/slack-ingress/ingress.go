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
	"sync"
	"sync/atomic"
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

// SlackUI is what the ingress asks of Slack itself: open a modal, given as
// encoded JSON, for a trigger_id, and show one person a short ephemeral
// message through a response_url.
type SlackUI interface {
	OpenModal(ctx context.Context, triggerID string, view []byte) error
	Ephemeral(ctx context.Context, responseURL, text string) error
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
	modals   SlackUI
	db       Lookups
	lastCall time.Duration
	log      *slog.Logger
	now      func() time.Time
	started  time.Time
	requests *prometheus.CounterVec
	produced prometheus.Histogram

	userLimit int          // requests per user per UserLimitWindow; 0: no limit
	users     *userLimiter // nil without a limit
	limited   *prometheus.CounterVec
	told      sync.WaitGroup // tellLater goroutines (tests wait for them)
	duration  *prometheus.HistogramVec
	previous  prometheus.Counter
}

// Option tunes an Ingress made by New.
type Option func(*Ingress)

// WithUserLimit sets how many requests one Slack user may make per
// UserLimitWindow (DefaultUserLimit without this option); 0 turns the
// limit off.
func WithUserLimit(n int) Option { return func(in *Ingress) { in.userLimit = n } }

// withClock replaces time.Now (tests).
func withClock(now func() time.Time) Option { return func(in *Ingress) { in.now = now } }

// Outcomes of slack_ingress_request_duration_seconds: what the person who
// typed or clicked got, which the HTTP status alone does not say (a failed
// produce is answered 200 with an apology, as Slack shows a non-200 as an
// error of its own).
const (
	outcomeOK       = "ok"       // done: accepted, answered, or told how to fix their input
	outcomeFailed   = "failed"   // not done through our fault (Kafka, the database, a 5xx); burns the SLO
	outcomeRejected = "rejected" // not a valid Slack request (signature, size, form: 4xx); outside the SLO
)

// Endpoints of the ingress's metrics.
var endpoints = []string{"commands", "interactions"}

// SLOThreshold is the answer time of the slash-command SLO (Slack gives up
// on an answer after 3 s); the duration histogram has a bucket there.
const SLOThreshold = 3 * time.Second

// New wires an Ingress that checks signatures with v; reg may be nil.
func New(v *slackapi.Verifier, p Producer, m SlackUI, db Lookups, lastCall time.Duration, log *slog.Logger, reg prometheus.Registerer, opts ...Option) http.Handler {
	return newIngress(v, p, m, db, lastCall, log, reg, opts...).routes()
}

func newIngress(v *slackapi.Verifier, p Producer, m SlackUI, db Lookups, lastCall time.Duration, log *slog.Logger, reg prometheus.Registerer, opts ...Option) *Ingress {
	in := &Ingress{
		verifier: v, produce: p, modals: m, db: db, lastCall: lastCall, log: log, now: time.Now,
		userLimit: DefaultUserLimit,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slack_ingress_requests_total",
			Help: "Slack requests by endpoint and HTTP status.",
		}, []string{"endpoint", "status"}),
		produced: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slack_ingress_produce_seconds",
			Help:    "Time for the durable Kafka produce before the ack.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2},
		}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slack_ingress_user_rate_limited_total",
			Help: "Verified Slack requests refused because their user went over the per-user limit, by endpoint.",
		}, []string{"endpoint"}),
		duration: newDurationHistogram(),
		previous: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slack_ingress_previous_secret_total",
			Help: "Requests verified with the previous signing secret, inside the rotation grace window.",
		}),
	}
	for _, o := range opts {
		o(in)
	}
	in.started = in.now()
	if in.userLimit > 0 {
		in.users = newUserLimiter(in.userLimit, UserLimitWindow)
	}
	// Both series exist from start-up, so a rate() over them is never empty.
	in.limited.WithLabelValues("commands")
	in.limited.WithLabelValues("interactions")
	if reg != nil {
		reg.MustRegister(in.requests, in.produced, in.limited, in.duration, in.previous)
	}
	return in
}

// newDurationHistogram is slack_ingress_request_duration_seconds, every
// endpoint and outcome present from start-up at 0 so that the SLO's
// ratios and rate() work from the first scrape.
func newDurationHistogram() *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "slack_ingress_request_duration_seconds",
		Help: "Time to answer a Slack request, by endpoint and outcome (ok, failed: not done through our fault, " +
			"rejected: not a valid Slack request). The SLO counts ok answers within 3 s.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, SLOThreshold.Seconds(), 5, 10},
	}, []string{"endpoint", "outcome"})
	for _, e := range endpoints {
		for _, o := range []string{outcomeOK, outcomeFailed, outcomeRejected} {
			h.WithLabelValues(e, o)
		}
	}
	return h
}

// answerNote lets a handler say that its 200 answer is an apology (the
// request was not done), for the outcome label.
type answerNote struct{ failed atomic.Bool }

type answerKey struct{}

// markFailed records, for the metrics, that the request whose context is
// ctx was answered without being done.
func markFailed(ctx context.Context) {
	if n, ok := ctx.Value(answerKey{}).(*answerNote); ok {
		n.failed.Store(true)
	}
}

// outcome classifies an answer for slack_ingress_request_duration_seconds.
func outcome(status int, failed bool) string {
	switch {
	case failed || status >= 500:
		return outcomeFailed
	case status >= 400:
		return outcomeRejected
	default:
		return outcomeOK
	}
}

func (in *Ingress) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/commands", in.verified("commands", in.command))
	mux.HandleFunc("POST /slack/interactions", in.verified("interactions", in.interaction))
	mux.HandleFunc("GET /health", in.health)
	return mux
}

// health answers Kong's public GET /health (and HEAD): 200 with how long this
// replica has been serving. It is not readiness: Knative's probe takes a
// replica whose Kafka or database is gone out of rotation, and Kong answers
// 503 itself when no replica is left. So a 200 says Kong, its route into the
// cluster and Slack's entry point work.
func (in *Ingress) health(w http.ResponseWriter, _ *http.Request) {
	up := in.now().Sub(in.started)
	w.Header().Set("Cache-Control", "no-store")
	reply(w, struct {
		Status        string `json:"status"`
		UptimeSeconds int64  `json:"uptime_seconds"`
		StartedAt     string `json:"started_at"`
	}{"ok", int64(up / time.Second), in.started.UTC().Format(time.RFC3339)})
}

// overLimit counts a verified request against its user's limit. When the
// user is over it, the refusal is counted and logged (at info once per
// spell, then at debug) and the seconds to wait are returned.
func (in *Ingress) overLimit(endpoint string, k userKey, log *slog.Logger) (limited bool, waitSeconds int, first bool) {
	if in.users == nil || k.user == "" {
		return false, 0, false
	}
	v := in.users.allow(k, in.now())
	if v.ok {
		return false, 0, false
	}
	in.limited.WithLabelValues(endpoint).Inc()
	wait := max(int((v.retryAfter+time.Second-1)/time.Second), 1)
	if v.first {
		log.Info("user rate limited", "limit_per_minute", in.userLimit, "retry_after_s", wait)
	} else {
		log.Debug("user still rate limited", "retry_after_s", wait)
	}
	return true, wait, v.first
}

// slowDown is the polite refusal a rate-limited user reads.
func (in *Ingress) slowDown(wait int) string {
	return fmt.Sprintf(":hourglass_flowing_sand: That's a lot of CoffeeBuddy in one minute! I take up to %d requests a minute from one person, so I didn't act on that one. Please try again in %s.",
		in.userLimit, plural(wait, "second"))
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// verified reads at most MaxBody bytes, checks Slack's signature over the
// raw bytes, and only then lets next parse them.
func (in *Ingress) verified(endpoint string, next func(w http.ResponseWriter, r *http.Request, form url.Values) int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		note := &answerNote{}
		r = r.WithContext(context.WithValue(r.Context(), answerKey{}, note))
		status := in.serveVerified(w, r, next)
		in.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
		in.duration.WithLabelValues(endpoint, outcome(status, note.failed.Load())).Observe(time.Since(start).Seconds())
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
	// Before anything is done for the command: no modal, no event, no read.
	if limited, wait, _ := in.overLimit("commands", userKey{cmd.TeamID, cmd.UserID}, log); limited {
		return reply(w, blocks.EphemeralText(in.slowDown(wait)))
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
		markFailed(r.Context())
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
		markFailed(r.Context())
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
	team := cb.Team.ID
	if team == "" {
		team = cb.User.TeamID
	}
	if limited, wait, first := in.overLimit("interactions", userKey{team, cb.User.ID}, log); limited {
		return in.refuseInteraction(w, r, cb, wait, first, log)
	}
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

// refuseInteraction answers a rate-limited interaction, always with a 200:
// Slack shows any other status to the person as a failure of the app.
//   - A click: the 200 must be empty, so the person is told through the
//     click's response_url, once per spell (it costs a call to Slack).
//   - The order form: a field error, so the form stays open with its input
//     and Place order works again after the wait.
//   - Anything else (a closed modal) needs only the ack.
func (in *Ingress) refuseInteraction(w http.ResponseWriter, r *http.Request, cb slack.InteractionCallback, wait int, first bool, log *slog.Logger) int {
	switch {
	case cb.Type == slack.InteractionTypeBlockActions && first && cb.ResponseURL != "":
		in.tellLater(r.Context(), cb.ResponseURL, in.slowDown(wait), log)
	case cb.Type == slack.InteractionTypeViewSubmission && cb.View.CallbackID == blocks.CallbackOrder:
		return reply(w, slack.NewErrorsViewSubmissionResponse(map[string]string{
			blocks.BlockDrink: fmt.Sprintf("Too many requests from you in the last minute. Please wait %s, then press Place order again.", plural(wait, "second"))}))
	}
	w.WriteHeader(http.StatusOK)
	return http.StatusOK
}

// tellLater shows text to one person through responseURL in the background:
// the ack must not wait for Slack.
func (in *Ingress) tellLater(ctx context.Context, responseURL, text string, log *slog.Logger) {
	in.told.Add(1)
	go func() {
		defer in.told.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), modalTimeout)
		defer cancel()
		if err := in.modals.Ephemeral(ctx, responseURL, text); err != nil {
			log.Warn("could not tell the user", "err", err)
		}
	}()
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
		markFailed(r.Context())
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
		err = in.modals.OpenModal(ctx, triggerID, view)
		if err == nil {
			return
		}
		log.Warn("could not open order modal", "err", err, "slack_error", slackapi.Code(err))
		// Slack shows the user nothing when a modal does not open: say so
		// where they acted, or they wait for a form that never comes.
		if meta.ResponseURL == "" {
			return
		}
		tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), modalTimeout)
		defer tcancel()
		if err := in.modals.Ephemeral(tctx, meta.ResponseURL, modalFailed(err)); err != nil {
			log.Warn("could not tell the user the order form did not open", "err", err)
		}
	}()
}

// modalFailed is what the user reads when their order form did not open.
func modalFailed(err error) string {
	const again = " Please try again: type `/coffee`, or press *Add my order* on the run."
	switch slackapi.Code(err) {
	case "expired_trigger_id", "exchanged_trigger_id":
		return ":warning: Sorry, your order form did not open in time (Slack allows an app 3 seconds)." + again
	default:
		return ":warning: Sorry, Slack did not open your order form just now." + again
	}
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

// slackModals opens modals and answers through response_urls with slack-go.
type slackModals struct{ clients *slackapi.Clients }

func (m slackModals) OpenModal(ctx context.Context, triggerID string, view []byte) error {
	return m.clients.OpenViewJSON(ctx, triggerID, view)
}

func (m slackModals) Ephemeral(ctx context.Context, responseURL, text string) error {
	return m.clients.Respond(ctx, responseURL, slackapi.Reply{Text: text})
}
