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
// event catalog) and routed by a Trigger filtering on `type`.
const (
	// TypeCommandCoffee is a verified `/coffee` slash command.
	TypeCommandCoffee = "com.coffeebuddy.command.coffee"
	// TypeInteraction is a verified Slack interaction payload (button click,
	// modal submission) as slack-ingress received it.
	TypeInteraction = "com.coffeebuddy.interaction"
	// TypeRunCreated announces a new coffee run (written to the outbox in the
	// run's creating transaction).
	TypeRunCreated = "com.coffeebuddy.run.created"
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

// Catalog lists every event type. Keep README.md's event catalog in step
// (a test in this package checks it).
var Catalog = []Spec{
	{Type: TypeCommandCoffee, Topic: TopicSlackEvents, Producer: "slack-ingress", Consumer: "run-start", Payload: SlashCommand{}},
	{Type: TypeInteraction, Topic: TopicSlackEvents, Producer: "slack-ingress", Consumer: "(order handling, issue 3)", Payload: Interaction{}},
	{Type: TypeRunCreated, Topic: TopicOrders, Producer: "run-start (outbox)", Consumer: "run-announce", Payload: RunCreated{}},
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
}

// Interaction is a verified Slack interaction. Payload is Slack's JSON as
// received (untrusted user input inside), kept whole so consumers can read
// any field Slack sends.
type Interaction struct {
	Type       string          `json:"type"`
	TeamID     string          `json:"team_id"`
	UserID     string          `json:"user_id"`
	ChannelID  string          `json:"channel_id,omitempty"`
	Payload    json.RawMessage `json:"payload"`
	ReceivedAt time.Time       `json:"received_at"`
}
