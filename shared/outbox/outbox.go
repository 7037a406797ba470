// Package outbox is the transactional outbox: a state change writes the
// events it causes into the outbox table in its own transaction, and the
// relay publishes them to Kafka afterwards. An event is therefore published
// if and only if its change committed; a crash between commit and publish is
// repaired by Sweep, and consumers deduplicate by CloudEvent id.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Message is an event to publish once the transaction commits.
type Message struct {
	Type    string
	Source  string
	Subject string
	// Key is the Kafka record key (the run id), keeping one run's events
	// in order on one partition.
	Key  string
	Data any
}

// Enqueue writes m to the outbox within tx and returns the row id. The
// CloudEvent id is fixed now, so every republish carries the same id.
func Enqueue(ctx context.Context, tx pgx.Tx, m Message) (int64, error) {
	topic, err := events.TopicFor(m.Type)
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	data, err := json.Marshal(m.Data)
	if err != nil {
		return 0, fmt.Errorf("outbox: encode %s: %w", m.Type, err)
	}
	var id int64
	err = tx.QueryRow(ctx, `
		INSERT INTO outbox (ce_id, ce_type, ce_source, ce_subject, topic, partition_key, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		uuid.NewString(), m.Type, m.Source, m.Subject, topic, m.Key, data).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("outbox: enqueue %s: %w", m.Type, err)
	}
	return id, nil
}

// Relay publishes outbox rows to Kafka.
type Relay struct {
	db    *pgxpool.Pool
	kafka *kgo.Client
	log   *slog.Logger
}

// NewRelay returns a relay over db and the producer cl.
func NewRelay(db *pgxpool.Pool, cl *kgo.Client, log *slog.Logger) *Relay {
	return &Relay{db: db, kafka: cl, log: log}
}

type row struct {
	ID           int64           `db:"id"`
	CEID         string          `db:"ce_id"`
	CEType       string          `db:"ce_type"`
	CESource     string          `db:"ce_source"`
	CESubject    string          `db:"ce_subject"`
	Topic        string          `db:"topic"`
	PartitionKey string          `db:"partition_key"`
	Data         json.RawMessage `db:"data"`
	CreatedAt    time.Time       `db:"created_at"`
}

const rowColumns = `id, ce_id, ce_type, ce_source, ce_subject, topic, partition_key, data, created_at`

// Publish sends the given rows, if still unpublished, in id order (so per
// key in causal order) and marks them published. Call it right after the
// enqueuing transaction commits.
func (r *Relay) Publish(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := r.db.Query(ctx, `SELECT `+rowColumns+` FROM outbox
		WHERE id = ANY($1) AND published_at IS NULL ORDER BY id`, ids)
	if err != nil {
		return fmt.Errorf("outbox: load: %w", err)
	}
	batch, err := pgx.CollectRows(rows, pgx.RowToStructByName[row])
	if err != nil {
		return fmt.Errorf("outbox: load: %w", err)
	}
	return r.send(ctx, batch)
}

// Sweep publishes rows left unpublished for longer than minAge (a crash
// between commit and Publish), oldest first, at most limit, and returns how
// many it published. Rows are locked with SKIP LOCKED so concurrent sweepers
// share the work instead of doubling it.
func (r *Relay) Sweep(ctx context.Context, minAge time.Duration, limit int) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, r.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+rowColumns+` FROM outbox
			WHERE published_at IS NULL AND created_at < now() - make_interval(secs => $1)
			ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`, minAge.Seconds(), limit)
		if err != nil {
			return err
		}
		batch, err := pgx.CollectRows(rows, pgx.RowToStructByName[row])
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1)`, ids(batch)); err != nil {
			return err
		}
		n = len(batch)
		return r.sendWith(ctx, tx, batch)
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: sweep: %w", err)
	}
	return n, nil
}

func (r *Relay) send(ctx context.Context, batch []row) error {
	return r.sendWith(ctx, r.db, batch)
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// sendWith produces batch synchronously (idempotent, acks=all) and marks
// the rows published through db.
func (r *Relay) sendWith(ctx context.Context, db execer, batch []row) error {
	if len(batch) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(batch))
	for _, b := range batch {
		ev := event.New()
		ev.SetID(b.CEID)
		ev.SetType(b.CEType)
		ev.SetSource(b.CESource)
		ev.SetTime(b.CreatedAt)
		if b.CESubject != "" {
			ev.SetSubject(b.CESubject)
		}
		ev.SetExtension(kafka.ExtPartitionKey, b.PartitionKey)
		if err := ev.SetData(event.ApplicationJSON, []byte(b.Data)); err != nil {
			return fmt.Errorf("outbox: %d: %w", b.ID, err)
		}
		rec, err := kafka.Record(b.Topic, b.PartitionKey, ev)
		if err != nil {
			return fmt.Errorf("outbox: %d: %w", b.ID, err)
		}
		recs = append(recs, rec)
	}
	if err := r.kafka.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("outbox: produce: %w", err)
	}
	if _, err := db.Exec(ctx, `UPDATE outbox SET published_at = now() WHERE id = ANY($1)`, ids(batch)); err != nil {
		return fmt.Errorf("outbox: mark published: %w", err)
	}
	for _, b := range batch {
		r.log.Debug("published", "ce_id", b.CEID, "ce_type", b.CEType, "topic", b.Topic, "run_id", b.PartitionKey)
	}
	return nil
}

func ids(batch []row) []int64 {
	out := make([]int64, len(batch))
	for i, b := range batch {
		out[i] = b.ID
	}
	return out
}
