package standin

import (
	"context"
	"encoding/base64"
	"fmt"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/google/uuid"
	"github.com/robfig/cron/v3"
	"github.com/twmb/franz-go/pkg/kgo"
)

// generation is the routing for one version of the manifests: a consumer
// group per KafkaSource route and a cron per PingSource. A manifest change
// stops the generation and starts the next.
type generation struct {
	m      *Manifests
	ctx    context.Context // canceled on stop: no new deliveries or retries
	cancel context.CancelFunc
	wg     sync.WaitGroup
	cron   *cron.Cron

	ready   chan struct{} // every consumer joined
	stopped chan struct{}
	once    sync.Once
}

func (s *StandIn) start(m *Manifests) *generation {
	ctx, cancel := context.WithCancel(context.Background())
	g := &generation{m: m, ctx: ctx, cancel: cancel, ready: make(chan struct{}), stopped: make(chan struct{})}

	krs, _ := m.kafkaRoutes()
	prs, _ := m.pingRoutes()
	_, warns := m.Routes()
	for _, w := range warns {
		s.log.Warn("manifest leads nowhere", slog.String("detail", w))
	}

	var joined sync.WaitGroup
	for i := range krs {
		kr := &krs[i]
		joined.Add(1)
		c, err := s.newConsumer(g, kr, joined.Done)
		if err != nil {
			joined.Done()
			s.log.Error("cannot start consumer", slog.String("trigger", kr.name), slog.String("error", err.Error()))
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			c.run()
		}()
	}

	// Schedules without a timezone run in UTC, like the PingSource adapter
	// in a cluster (not in the laptop's local time).
	g.cron = cron.New(cron.WithLocation(time.UTC))
	for _, pr := range prs {
		sched, err := pingSchedule(pr.source)
		if err != nil { // validated by Load
			continue
		}
		p := pr.source
		g.cron.Schedule(sched, cron.FuncJob(func() {
			if err := s.ping(g.ctx, m, p); err != nil {
				s.log.Warn("ping not fully delivered", slog.String("pingsource", p.Meta.Name), slog.String("error", err.Error()))
			}
		}))
		s.log.Info("pingsource scheduled", slog.String("pingsource", p.Meta.Name), slog.String("schedule", p.Spec.Schedule), slog.Int("triggers", len(pr.routes)))
	}
	g.cron.Start()

	go func() {
		joined.Wait()
		close(g.ready)
		s.log.Info("routing live", slog.Int("consumer_groups", len(krs)), slog.Int("pingsources", len(prs)))
	}()
	return g
}

// stop ends the generation: retries are abandoned, in-flight HTTP attempts
// finish, delivered records are committed, groups are left.
func (g *generation) stop() {
	g.once.Do(func() {
		g.cancel()
		cctx := g.cron.Stop()
		g.wg.Wait()
		<-cctx.Done()
		close(g.stopped)
	})
}

// ping builds one PingSource event and delivers it to every matching route,
// concurrently (each Trigger is independent).
func (s *StandIn) ping(ctx context.Context, m *Manifests, p *PingSource) error {
	ev, err := pingEvent(p, s.now())
	if err != nil {
		return err
	}
	rs, warns := m.routesFor(p.Spec.Sink, p.Meta.Namespace, p.Meta.Name, nil)
	if len(warns) > 0 {
		return fmt.Errorf("standin: PingSource %s: %s", p.Meta.Name, strings.Join(warns, "; "))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(rs))
	delivered := 0
	for i := range rs {
		r := &rs[i]
		if !Matches(r.filter, ev) {
			continue
		}
		delivered++
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.deliver(ctx, m, r, ev, nil); err != nil {
				errs[i] = fmt.Errorf("trigger %s: %w", r.name, err)
			}
		}()
	}
	wg.Wait()
	if delivered == 0 {
		s.log.Info("ping matched no trigger", slog.String("pingsource", p.Meta.Name), slog.String("ce_id", ev.ID()))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// PingType is the CloudEvent type PingSource emits.
const PingType = "dev.knative.sources.ping"

func pingEvent(p *PingSource, now time.Time) (event.Event, error) {
	ev := event.New()
	ev.SetID(newID())
	ev.SetType(PingType)
	ev.SetSource("/apis/v1/namespaces/" + p.Meta.Namespace + "/pingsources/" + p.Meta.Name)
	ev.SetTime(now)
	var data []byte
	switch {
	case p.Spec.DataBase64 != "":
		b, err := decodeBase64(p.Spec.DataBase64)
		if err != nil {
			return event.Event{}, fmt.Errorf("standin: PingSource %s: dataBase64: %w", p.Meta.Name, err)
		}
		data = b
	case p.Spec.Data != "":
		data = []byte(p.Spec.Data)
	}
	if p.Spec.ContentType != "" {
		ev.SetDataContentType(p.Spec.ContentType)
	}
	if data != nil {
		ev.DataEncoded = data
	}
	return ev, nil
}

// KafkaEventType is the type KafkaSource gives records that are not
// CloudEvents.
const KafkaEventType = events.TypeKafkaRecord

// recordEvent turns a consumed record into the event KafkaSource would
// send: the record itself when it is a binary-mode CloudEvent, otherwise a
// dev.knative.kafka.event wrapping the value.
func recordEvent(src *KafkaSource, r *kgo.Record) (event.Event, bool) {
	if ev, err := kafka.Event(r); err == nil {
		return ev, true
	}
	ev := event.New()
	ev.SetID("partition:" + strconv.Itoa(int(r.Partition)) + "/offset:" + strconv.FormatInt(r.Offset, 10))
	ev.SetType(KafkaEventType)
	ev.SetSource("/apis/v1/namespaces/" + src.Meta.Namespace + "/kafkasources/" + src.Meta.Name + "#" + r.Topic)
	ev.SetSubject("partition:" + strconv.Itoa(int(r.Partition)) + "#" + strconv.FormatInt(r.Offset, 10))
	if !r.Timestamp.IsZero() {
		ev.SetTime(r.Timestamp)
	}
	if r.Key != nil {
		ev.SetExtension("key", string(r.Key))
	}
	for _, h := range r.Headers {
		if name := headerExtension(h.Key); name != "" {
			ev.SetExtension(name, string(h.Value))
		}
	}
	if len(r.Value) > 0 {
		ev.DataEncoded = append([]byte(nil), r.Value...)
	}
	return ev, false
}

// headerExtension maps a Kafka header to KafkaSource's kafkaheader<name>
// extension (lower-case letters and digits only).
func headerExtension(k string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(k) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "kafkaheader" + b.String()
}

func newID() string { return uuid.NewString() }

func decodeBase64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
