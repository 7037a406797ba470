package standin

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Knative's dead-letter extension attributes.
const (
	ExtErrorDest = events.ExtErrorDest
	ExtErrorCode = events.ExtErrorCode
	ExtErrorData = events.ExtErrorData
	// errorDataMax is Knative's KnativeErrorDataExtensionMaxLength: the
	// base64 of the response body is cut to this many characters.
	errorDataMax = 1024
	// maxResponseBody bounds what is read of a subscriber's answer.
	maxResponseBody = 4 << 20
)

// errStopped reports a delivery abandoned because the stand-in is stopping;
// its record stays uncommitted and is delivered again next time.
var errStopped = errors.New("standin: stopping")

// retryable reports whether Knative retries a delivery that got status
// (0: no response at all): 5xx, 404, 408, 409, 429 and connection errors.
func retryable(status int) bool {
	switch {
	case status == 0, status >= 500:
		return true
	case status == http.StatusNotFound, status == http.StatusRequestTimeout,
		status == http.StatusConflict, status == http.StatusTooManyRequests:
		return true
	}
	return false
}

// retryAfter parses a Retry-After header (delay-seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// attemptResult is the outcome of one HTTP delivery attempt.
type attemptResult struct {
	status int // 0 when there was no response
	header http.Header
	body   []byte
	err    error
}

func (a attemptResult) ok() bool { return a.err == nil && a.status >= 200 && a.status < 300 }

// resolveURL turns a Destination into a URL through Config.Resolve.
func (s *StandIn) resolveURL(d Destination) (string, error) {
	if d.Ref == nil {
		u, err := url.Parse(d.URI)
		if err != nil || !u.IsAbs() {
			return "", fmt.Errorf("standin: destination uri %q is not an absolute URL", d.URI)
		}
		return d.URI, nil
	}
	if s.cfg.Resolve == nil {
		return "", fmt.Errorf("standin: no resolver for %s %q", d.Ref.Kind, d.Ref.Name)
	}
	base, err := s.cfg.Resolve(d.Ref.Kind, d.Ref.Name)
	if err != nil {
		return "", fmt.Errorf("standin: resolve %s %q: %w", d.Ref.Kind, d.Ref.Name, err)
	}
	if d.URI == "" {
		return base, nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("standin: resolve %s %q: %w", d.Ref.Kind, d.Ref.Name, err)
	}
	rel, err := url.Parse(d.URI)
	if err != nil {
		return "", fmt.Errorf("standin: destination uri %q: %w", d.URI, err)
	}
	return b.ResolveReference(rel).String(), nil
}

// post makes one delivery attempt: ev in CloudEvents HTTP binary mode. The
// request is not tied to stop: an attempt in flight when the stand-in stops
// runs to completion (bounded by timeout).
func (s *StandIn) post(stop context.Context, target string, ev event.Event, timeout time.Duration) attemptResult {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(stop), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return attemptResult{err: err}
	}
	if err := cehttp.WriteRequest(binding.WithForceBinary(ctx), binding.ToMessage(&ev), req); err != nil {
		return attemptResult{err: fmt.Errorf("encode event: %w", err)}
	}
	// Knative's dispatchers advertise that they accept a reply event.
	req.Header.Set("Prefer", "reply")
	resp, err := s.http.Do(req)
	if err != nil {
		return attemptResult{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	return attemptResult{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

// sendWithRetries delivers ev to target with d's retry policy. It returns
// the last attempt's result, or errStopped if stop ended the retries.
// Attempts to a subscriber (not to a dead-letter sink) carry the injected
// duplicates, see postCopies.
func (s *StandIn) sendWithRetries(stop context.Context, log *slog.Logger, target string, ev event.Event, d delivery, toSubscriber bool) (attemptResult, error) {
	for attempt := 1; ; attempt++ {
		var res attemptResult
		if toSubscriber {
			res = s.postCopies(stop, log, attempt, target, ev, d.timeout)
		} else {
			res = s.post(stop, target, ev, d.timeout)
		}
		alog := log.With(slog.Int("attempt", attempt), slog.Int("status", res.status))
		if res.ok() {
			alog.Debug("delivered")
			return res, nil
		}
		if res.err != nil {
			alog = alog.With(slog.String("error", res.err.Error()))
		}
		retry := retryable(res.status) || res.err != nil
		if !retry || attempt > d.retry {
			alog.Warn("delivery failed", slog.Bool("retryable", retry))
			return res, nil
		}
		wait := d.backoff(attempt)
		if res.status == http.StatusTooManyRequests || res.status == http.StatusServiceUnavailable {
			ra := retryAfter(res.header, s.now())
			if d.retryAfterMax > 0 && ra > d.retryAfterMax {
				ra = d.retryAfterMax
			}
			wait = max(wait, ra)
		}
		alog.Info("delivery failed, retrying", slog.Duration("backoff", wait))
		t := time.NewTimer(wait)
		select {
		case <-stop.Done():
			t.Stop()
			return res, errStopped
		case <-t.C:
		}
	}
}

// deliver hands ev to r's subscriber with Knative's delivery semantics:
// retries, then the dead-letter sink; a reply event is published back to the
// broker. It returns nil once ev is done with (delivered, dead-lettered or
// dropped), so its record may be committed, or errStopped if the stand-in
// stopped first.
func (s *StandIn) deliver(stop context.Context, m *Manifests, r *route, ev event.Event, key []byte) error {
	log := s.log.With(
		slog.String("ce_id", ev.ID()), slog.String("ce_type", ev.Type()),
		slog.String("trigger", r.name), slog.String("subscriber", r.subscriber.String()),
	)
	target, err := s.resolveURL(r.subscriber)
	var res attemptResult
	if err != nil {
		// Unresolvable is like an unreachable subscriber: retried, then
		// dead-lettered.
		log.Warn("cannot resolve subscriber", slog.String("error", err.Error()))
		res, err = s.retryResolve(stop, log, r, ev)
		target = r.subscriber.String()
	} else {
		res, err = s.sendWithRetries(stop, log, target, ev, r.delivery, true)
	}
	if err != nil {
		return err
	}
	if res.ok() {
		return s.publishReply(stop, log, res)
	}
	return s.deadLetter(stop, log, m, r, ev, key, target, res)
}

// retryResolve retries resolving and delivering per r's policy when the
// subscriber could not be resolved at first.
func (s *StandIn) retryResolve(stop context.Context, log *slog.Logger, r *route, ev event.Event) (attemptResult, error) {
	res := attemptResult{err: errors.New("subscriber not resolvable")}
	for attempt := 1; attempt <= r.delivery.retry; attempt++ {
		t := time.NewTimer(r.delivery.backoff(attempt))
		select {
		case <-stop.Done():
			t.Stop()
			return res, errStopped
		case <-t.C:
		}
		target, err := s.resolveURL(r.subscriber)
		if err != nil {
			log.Warn("cannot resolve subscriber", slog.Int("attempt", attempt+1), slog.String("error", err.Error()))
			res.err = err
			continue
		}
		rest := r.delivery
		rest.retry -= attempt
		return s.sendWithRetries(stop, log, target, ev, rest, true)
	}
	return res, nil
}

// publishReply publishes a reply event (a 2xx answer carrying a CloudEvent)
// back to the broker: onto the topic the events catalog gives for its type,
// keyed by its partitionkey extension or else its subject.
func (s *StandIn) publishReply(stop context.Context, log *slog.Logger, res attemptResult) error {
	msg := cehttp.NewMessage(res.header, io.NopCloser(bytes.NewReader(res.body)))
	if msg.ReadEncoding() == binding.EncodingUnknown {
		return nil
	}
	reply, err := binding.ToEvent(context.Background(), msg)
	if err == nil {
		err = reply.Validate()
	}
	if err != nil {
		log.Error("subscriber replied with an invalid CloudEvent; reply dropped", slog.String("error", err.Error()))
		return nil
	}
	rlog := log.With(slog.String("reply_ce_id", reply.ID()), slog.String("reply_ce_type", reply.Type()))
	topic, err := events.TopicFor(reply.Type())
	if err != nil {
		rlog.Error("reply event type has no topic in the events catalog; reply dropped", slog.String("error", err.Error()))
		return nil
	}
	if err := s.produce(stop, rlog, func() (*kgo.Record, error) { return kafka.Record(topic, reply.Subject(), *reply) }); err != nil {
		return err
	}
	rlog.Info("reply published", slog.String("topic", topic))
	return nil
}

// deadLetter sends ev, annotated with Knative's knativeerror* extensions,
// to the route's dead-letter sink; without one it is logged and dropped.
func (s *StandIn) deadLetter(stop context.Context, log *slog.Logger, m *Manifests, r *route, ev event.Event, key []byte, target string, res attemptResult) error {
	dls := r.delivery.deadLetter
	if dls == nil {
		log.Error("delivery failed and no dead-letter sink is configured; event dropped", slog.Int("status", res.status))
		return nil
	}
	code, body := res.status, res.body
	if res.err != nil && res.status == 0 {
		// As Knative's dispatcher reports a failed dispatch.
		code, body = http.StatusInternalServerError, []byte("dispatch error: "+res.err.Error())
	}
	data := base64.StdEncoding.EncodeToString(body)
	if len(data) > errorDataMax {
		data = data[:errorDataMax]
	}
	dl := ev.Clone()
	dl.SetExtension(ExtErrorDest, target)
	dl.SetExtension(ExtErrorCode, code)
	dl.SetExtension(ExtErrorData, data)
	dlog := log.With(slog.String("dead_letter_sink", dls.String()), slog.Int("status", code))

	if dls.Ref != nil && dls.Ref.Kind == "KafkaSink" {
		ns := dls.Ref.Namespace
		if ns == "" {
			ns = r.delivery.deadLetterNS
		}
		sink := m.KafkaSink(ns, dls.Ref.Name)
		if sink == nil {
			dlog.Error("dead-letter KafkaSink is not defined; event dropped")
			return nil
		}
		if err := s.produce(stop, dlog, func() (*kgo.Record, error) { return kafka.Record(sink.Spec.Topic, string(key), dl) }); err != nil {
			return err
		}
		dlog.Warn("event dead-lettered", slog.String("topic", sink.Spec.Topic))
		return nil
	}
	dlTarget, err := s.resolveURL(*dls)
	if err != nil {
		dlog.Error("cannot resolve dead-letter sink; event dropped", slog.String("error", err.Error()))
		return nil
	}
	d := r.delivery
	d.deadLetter = nil
	out, err := s.sendWithRetries(stop, dlog, dlTarget, dl, d, false)
	if err != nil {
		return err
	}
	if !out.ok() {
		dlog.Error("dead-letter sink rejected the event; event dropped", slog.Int("dls_status", out.status))
		return nil
	}
	dlog.Warn("event dead-lettered")
	return nil
}

// produce writes a record, retrying until Kafka takes it or the stand-in
// stops (a dead-lettered or replied event must not be lost by committing the
// original too early).
func (s *StandIn) produce(stop context.Context, log *slog.Logger, build func() (*kgo.Record, error)) error {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		rec, err := build()
		if err != nil {
			log.Error("cannot encode event for Kafka; dropped", slog.String("error", err.Error()))
			return nil
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(stop), 15*time.Second)
		err = s.producer.ProduceSync(ctx, rec).FirstErr()
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, kgo.ErrClientClosed) {
			return errStopped
		}
		log.Error("produce failed, retrying", slog.String("topic", rec.Topic), slog.String("error", err.Error()))
		t := time.NewTimer(wait)
		select {
		case <-stop.Done():
			t.Stop()
			return errStopped
		case <-t.C:
		}
	}
}
