// Package events is the catalog of CloudEvent types and Kafka topics: every
// type CoffeeBuddy produces or consumes, its typed payload, and the topic it
// travels on. Production provisioning and the embedded cluster both read
// Topics, so the two cannot drift.
package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// CloudEvent types. Each is handled by exactly one function (see README's
// event catalog) and routed by a Trigger filtering on `type`. Requests come
// from Slack through slack-ingress; facts are written to the outbox in the
// transaction that made them true.
const (
	// Requests (slack-ingress → slack.events, keyed team/channel).
	TypeCommandCoffee    = "com.coffeebuddy.command.coffee"
	TypeCommandCancel    = "com.coffeebuddy.command.cancel"
	TypeCommandHistory   = "com.coffeebuddy.command.history"
	TypeOrderSubmitted   = "com.coffeebuddy.order.submitted"
	TypeOrderUsual       = "com.coffeebuddy.order.usual_requested"
	TypeVolunteerRequest = "com.coffeebuddy.run.volunteer_requested"
	TypeCloseRequest     = "com.coffeebuddy.run.close_requested"
	TypeCompleteRequest  = "com.coffeebuddy.run.complete_requested"

	// Facts (outbox → Kafka, keyed by run id).
	TypeRunCreated   = "com.coffeebuddy.run.created"
	TypeOrderPlaced  = "com.coffeebuddy.order.placed"
	TypeVolunteerSet = "com.coffeebuddy.run.volunteer_set"
	TypeLastCallSoon = "com.coffeebuddy.run.last_call_soon"
	TypeRunClosed    = "com.coffeebuddy.run.closed"
	TypeReminderDue  = "com.coffeebuddy.run.reminder_due"
	TypeRunCompleted = "com.coffeebuddy.run.completed"
	TypeRunCancelled = "com.coffeebuddy.run.cancelled"

	// TypeRunTimer asks for a run's moment (its last-call warning, its
	// last call, its runner's reminder) to be handled on time; run-timer
	// holds it until then (topic coffee.timers, keyed by run id).
	TypeRunTimer = "com.coffeebuddy.run.timer"

	// TypeSlackRetry buffers a Slack call that was rate limited (the
	// runtime produces it to slack.retry, keyed like the original).
	TypeSlackRetry = "com.coffeebuddy.slack.retry"

	// TypePing is what a PingSource emits; Triggers tell ticks apart by source.
	TypePing = "dev.knative.sources.ping"
)

// Sources, as CloudEvent `source` URI-references.
const (
	SourceIngress = "/coffeebuddy/slack-ingress"
)

// Topic names.
const (
	TopicSlackEvents  = "slack.events"
	TopicOrders       = "coffee.orders"
	TopicAssignments  = "coffee.assignments"
	TopicCompletions  = "coffee.completions"
	TopicSlackRetry   = "slack.retry"
	TopicTimers       = "coffee.timers"
	TopicDeadLetter   = "coffee.deadletter"
	defaultPartitions = 3
	defaultRF         = 2
	defaultRetention  = 7 * 24 * time.Hour
)

// Topic describes one Kafka topic as it must exist in every environment.
type Topic struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Retention         time.Duration
	// Compacted topics keep the latest record per key (run id).
	Compacted bool
}

// Configs returns the topic-level Kafka configs for creation.
func (t Topic) Configs() map[string]*string {
	retention := fmt.Sprint(t.Retention.Milliseconds())
	policy := "delete"
	if t.Compacted {
		policy = "compact"
	}
	return map[string]*string{"retention.ms": &retention, "cleanup.policy": &policy}
}

// Topics is the topic catalog.
var Topics = []Topic{
	{Name: TopicSlackEvents, Partitions: defaultPartitions, ReplicationFactor: defaultRF, Retention: defaultRetention},
	{Name: TopicOrders, Partitions: defaultPartitions, ReplicationFactor: defaultRF, Retention: defaultRetention},
	{Name: TopicAssignments, Partitions: defaultPartitions, ReplicationFactor: defaultRF, Retention: defaultRetention, Compacted: true},
	{Name: TopicCompletions, Partitions: defaultPartitions, ReplicationFactor: defaultRF, Retention: defaultRetention},
	{Name: TopicSlackRetry, Partitions: defaultPartitions, ReplicationFactor: defaultRF, Retention: defaultRetention},
	// A timer is worthless once its moment passed (4 h at most ahead).
	{Name: TopicTimers, Partitions: defaultPartitions, ReplicationFactor: defaultRF, Retention: 24 * time.Hour},
	{Name: TopicDeadLetter, Partitions: defaultPartitions, ReplicationFactor: defaultRF, Retention: defaultRetention},
}

// Spec ties a CloudEvent type to its topic and payload, for the README's
// catalog and for producers that only know the type.
type Spec struct {
	Type     string
	Topic    string
	Producer string
	Consumer string
	Payload  any
}

// Catalog lists every event type. README.md's event catalog is checked
// against it by a test.
var Catalog = []Spec{
	{Type: TypeCommandCoffee, Topic: TopicSlackEvents, Producer: "slack-ingress", Consumer: "run-start", Payload: SlashCommand{}},
	{Type: TypeCommandCancel, Topic: TopicSlackEvents, Producer: "slack-ingress", Consumer: "run-cancel", Payload: SlashCommand{}},
	{Type: TypeOrderSubmitted, Topic: TopicSlackEvents, Producer: "slack-ingress", Consumer: "order-place", Payload: OrderSubmitted{}},
	{Type: TypeOrderUsual, Topic: TopicSlackEvents, Producer: "slack-ingress", Consumer: "order-usual", Payload: RunAction{}},
	{Type: TypeVolunteerRequest, Topic: TopicSlackEvents, Producer: "slack-ingress", Consumer: "run-volunteer", Payload: RunAction{}},
	{Type: TypeCloseRequest, Topic: TopicSlackEvents, Producer: "slack-ingress", Consumer: "run-close", Payload: RunAction{}},
	{Type: TypeCompleteRequest, Topic: TopicSlackEvents, Producer: "slack-ingress", Consumer: "run-complete", Payload: RunAction{}},
	{Type: TypeRunCreated, Topic: TopicOrders, Producer: "run-start (outbox)", Consumer: "run-announce", Payload: RunCreated{}},
	{Type: TypeOrderPlaced, Topic: TopicOrders, Producer: "order-place, order-usual (outbox)", Consumer: "order-confirm", Payload: OrderPlaced{}},
	{Type: TypeVolunteerSet, Topic: TopicOrders, Producer: "run-volunteer (outbox)", Consumer: "volunteer-notify", Payload: RunFact{}},
	{Type: TypeLastCallSoon, Topic: TopicOrders, Producer: "run-timer, run-tick (outbox)", Consumer: "warn-notify", Payload: RunFact{}},
	{Type: TypeRunClosed, Topic: TopicAssignments, Producer: "run-close, run-timer, run-tick (outbox)", Consumer: "runner-notify", Payload: RunClosed{}},
	{Type: TypeReminderDue, Topic: TopicAssignments, Producer: "run-timer, run-tick (outbox)", Consumer: "runner-remind", Payload: RunFact{}},
	{Type: TypeRunCompleted, Topic: TopicCompletions, Producer: "run-complete (outbox)", Consumer: "completion-notify", Payload: RunFact{}},
	{Type: TypeRunCancelled, Topic: TopicCompletions, Producer: "run-cancel (outbox)", Consumer: "cancel-notify", Payload: RunCancelled{}},
	{Type: TypeRunTimer, Topic: TopicTimers, Producer: "run-start, runner-notify (outbox); run-timer (until due)", Consumer: "run-timer", Payload: RunTimer{}},
	{Type: TypeSlackRetry, Topic: TopicSlackRetry, Producer: "any Slack-calling function (runtime)", Consumer: "slack-retry", Payload: SlackRetry{}},
}

// TopicFor returns the topic that carries events of type t.
func TopicFor(t string) (string, error) {
	for _, s := range Catalog {
		if s.Type == t {
			return s.Topic, nil
		}
	}
	return "", fmt.Errorf("events: no topic for type %q", t)
}

// SlashCommand is a verified Slack slash command as slack-ingress received
// it. Text is untrusted user input.
type SlashCommand struct {
	TeamID      string    `json:"team_id"`
	ChannelID   string    `json:"channel_id"`
	UserID      string    `json:"user_id"`
	UserName    string    `json:"user_name"`
	Command     string    `json:"command"`
	Text        string    `json:"text"`
	ResponseURL string    `json:"response_url"`
	TriggerID   string    `json:"trigger_id"`
	ReceivedAt  time.Time `json:"received_at"`
}

// RunCreated is the payload of TypeRunCreated.
type RunCreated struct {
	RunID           string    `json:"run_id"`
	TeamID          string    `json:"team_id"`
	ChannelID       string    `json:"channel_id"`
	InitiatorUserID string    `json:"initiator_user_id"`
	LastCallAt      time.Time `json:"last_call_at"`
	CreatedAt       time.Time `json:"created_at"`
	// ResponseURL is the /coffee command's, so run-announce can tell the
	// initiator when it cannot post in the channel (valid 30 minutes).
	ResponseURL string `json:"response_url,omitempty"`
}

// RunAction is a button click on a run (My usual, I'll go, Close now, Mark
// complete), as slack-ingress received it.
type RunAction struct {
	RunID       string    `json:"run_id"`
	TeamID      string    `json:"team_id"`
	ChannelID   string    `json:"channel_id"`
	UserID      string    `json:"user_id"`
	UserName    string    `json:"user_name"`
	ResponseURL string    `json:"response_url,omitempty"`
	At          time.Time `json:"at"`
}

// OrderSubmitted is a validated order modal submission. Customizations is
// untrusted text, stored verbatim and rendered escaped.
type OrderSubmitted struct {
	TeamID         string    `json:"team_id"`
	ChannelID      string    `json:"channel_id"`
	UserID         string    `json:"user_id"`
	UserName       string    `json:"user_name"`
	Drink          string    `json:"drink"`
	Size           string    `json:"size"`
	Customizations string    `json:"customizations"`
	At             time.Time `json:"at"`
	// ResponseURL reaches the orderer where they opened the form (the
	// /coffee command's or the Add my order click's).
	ResponseURL string `json:"response_url,omitempty"`
}

// OrderPlaced is the fact that a user's order in a run is stored (new or
// edited).
type OrderPlaced struct {
	RunID          string `json:"run_id"`
	UserID         string `json:"user_id"`
	Drink          string `json:"drink"`
	Size           string `json:"size"`
	Customizations string `json:"customizations"`
	Edited         bool   `json:"edited"`
	Usual          bool   `json:"usual"`
	// ResponseURL, when the request brought one, is where the orderer
	// is answered (valid 30 minutes, 5 uses).
	ResponseURL string `json:"response_url,omitempty"`
}

// RunFact names the run a fact is about; consumers read the rest from the
// database, which is at least as new as the fact.
type RunFact struct {
	RunID  string `json:"run_id"`
	UserID string `json:"user_id,omitempty"` // who caused it, when someone did
}

// RunClosed is the fact that a run stopped taking orders and, when it had
// orders, who the runner is and why.
type RunClosed struct {
	RunID        string `json:"run_id"`
	RunnerUserID string `json:"runner_user_id,omitempty"` // empty: no orders, nobody goes
	Reason       string `json:"reason"`                   // shown in the thread
	ClosedBy     string `json:"closed_by"`                // "last_call" or the initiator's id
}

// RunCancelled is the fact that a run was cancelled, by whom and why.
// Reason is untrusted text.
type RunCancelled struct {
	RunID       string `json:"run_id"`
	CancelledBy string `json:"cancelled_by"`
	Reason      string `json:"reason"`
}

// RunTimer is the payload of TypeRunTimer: handle run RunID's moment of
// Kind ("warn", "last_call" or "remind") when it falls. When is read from
// the database each time, so the event needs no clock of its own.
type RunTimer struct {
	RunID string `json:"run_id"`
	Kind  string `json:"kind"`
	// Hop counts how often run-timer has passed it on to wait longer.
	Hop int `json:"hop,omitempty"`
}

// ExtSlackAttempt is the extension the slack-retry function sets on a
// re-produced event: how many times Slack has rate limited it so far.
const ExtSlackAttempt = "coffeebuddyslackattempt"

// SlackRetry is the payload of TypeSlackRetry: an event whose handler was
// rate limited by Slack, to deliver again no earlier than NotBefore.
type SlackRetry struct {
	// Event is the original CloudEvent in structured JSON mode.
	Event     json.RawMessage `json:"event"`
	Attempt   int             `json:"attempt"` // 1 for the first retry
	NotBefore time.Time       `json:"not_before"`
	Method    string          `json:"method"`   // the Slack method, or the function when unknown
	Function  string          `json:"function"` // the function that was rate limited
}
