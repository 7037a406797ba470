package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/coffeebuddy/coffeebuddy/eventing/standin"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var deadLetterExtensions = []string{
	standin.ExtErrorDest, standin.ExtErrorCode, standin.ExtErrorData,
	events.ExtReason, events.ExtTopic, events.ExtPartition, events.ExtOffset, events.ExtOrigID,
}

// Pos is a record's place in the dead-letter topic, written p:o.
type Pos struct {
	Partition int32
	Offset    int64
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Partition, p.Offset) }

// ParsePos reads "<partition>:<offset>".
func ParsePos(s string) (Pos, error) {
	ps, offs, ok := strings.Cut(s, ":")
	p, err1 := strconv.ParseInt(ps, 10, 32)
	o, err2 := strconv.ParseInt(offs, 10, 64)
	if !ok || err1 != nil || err2 != nil || p < 0 || o < 0 {
		return Pos{}, fmt.Errorf("want <partition>:<offset> (as `list` prints it), got %q", s)
	}
	return Pos{int32(p), o}, nil
}

// Letter is one record of the dead-letter topic.
type Letter struct {
	Pos
	Timestamp time.Time
	Key       []byte
	Headers   []kgo.RecordHeader
	Value     []byte
	// Event is the record as a binary-mode CloudEvent, nil if it is not
	// one (DecodeErr says why). Everything Knative and the quarantine
	// function write there is one.
	Event     *event.Event
	DecodeErr error
}

func letterOf(r *kgo.Record) Letter {
	l := Letter{
		Pos:       Pos{r.Partition, r.Offset},
		Timestamp: r.Timestamp,
		Key:       r.Key,
		Headers:   r.Headers,
		Value:     r.Value,
	}
	ev, err := kafka.Event(r)
	if err != nil {
		l.DecodeErr = err
	} else {
		l.Event = &ev
	}
	return l
}

func (l Letter) ext(name string) string {
	if l.Event == nil {
		return ""
	}
	v, ok := l.Event.Extensions()[name]
	if !ok {
		return ""
	}
	s, err := types.Format(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}

// ID is the CloudEvent id ("" if the record is not a CloudEvent).
func (l Letter) ID() string {
	if l.Event == nil {
		return ""
	}
	return l.Event.ID()
}

// Type is the CloudEvent type ("" if the record is not a CloudEvent).
func (l Letter) Type() string {
	if l.Event == nil {
		return ""
	}
	return l.Event.Type()
}

// Raw reports a record that was not a CloudEvent when it was first read
// (wrapped by the KafkaSource as dev.knative.kafka.event, parked by
// quarantine or dead-lettered when quarantine itself failed).
func (l Letter) Raw() bool { return l.Type() == standin.KafkaEventType }

// Reason is the decoded knativeerrordata (the subscriber's answer, or the
// quarantine function's explanation), else coffeebuddyreason.
func (l Letter) Reason() string {
	if d := l.ext(standin.ExtErrorData); d != "" {
		if b, err := base64.StdEncoding.DecodeString(d); err == nil {
			return string(b)
		}
		// Knative cuts the base64 to 1024 characters; decode what is whole.
		if b, err := base64.StdEncoding.DecodeString(d[:len(d)/4*4]); err == nil {
			return string(b)
		}
		return d
	}
	return l.ext(events.ExtReason)
}

// Origin is where a raw record was first read: the topic, partition and
// offset quarantine recorded, or else what the KafkaSource's source
// (…#<topic>) and subject (partition:<p>#<o>) say.
func (l Letter) Origin() (topic string, pos *Pos) {
	topic = l.ext(events.ExtTopic)
	if l.Event != nil && topic == "" {
		if i := strings.LastIndexByte(l.Event.Source(), '#'); i >= 0 {
			topic = l.Event.Source()[i+1:]
		}
	}
	if p, err := ParsePos(l.ext(events.ExtPartition) + ":" + l.ext(events.ExtOffset)); err == nil {
		return topic, &p
	}
	if l.Event != nil {
		if rest, ok := strings.CutPrefix(l.Event.Subject(), "partition:"); ok {
			if p, err := ParsePos(strings.Replace(rest, "#", ":", 1)); err == nil {
				return topic, &p
			}
		}
	}
	return topic, nil
}

// Store reads and replays the dead-letter topic.
type Store struct {
	Brokers []string
	Topic   string
	Log     *slog.Logger
}

func (s *Store) client(opts ...kgo.Opt) (*kgo.Client, error) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return kafka.NewClient(s.Brokers, log, nil, opts...)
}

// bounds returns the first and next offsets of every partition.
func (s *Store) bounds(ctx context.Context) (start, end map[int32]int64, err error) {
	cl, err := s.client()
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, s.Topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list offsets of %s: %w", s.Topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, s.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list offsets of %s: %w", s.Topic, err)
	}
	start, end = map[int32]int64{}, map[int32]int64{}
	for p, o := range starts[s.Topic] {
		start[p] = o.Offset
	}
	for p, o := range ends[s.Topic] {
		end[p] = o.Offset
	}
	if len(end) == 0 {
		return nil, nil, fmt.Errorf("topic %s does not exist", s.Topic)
	}
	return start, end, nil
}

// read consumes [from[p], end[p]) of every partition in from.
func (s *Store) read(ctx context.Context, from, end map[int32]int64) ([]Letter, error) {
	want := map[int32]kgo.Offset{}
	for p, o := range from {
		if o < end[p] {
			want[p] = kgo.NewOffset().At(o)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	cl, err := s.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.Topic: want}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []Letter
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("reading %s: %d partitions not read to the end: %w", s.Topic, len(want), err)
		}
		if err := fs.Err0(); err != nil {
			return out, fmt.Errorf("reading %s: %w", s.Topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := want[r.Partition]; !ok || r.Offset >= end[r.Partition] {
				return
			}
			out = append(out, letterOf(r))
			if r.Offset+1 >= end[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return out, nil
}

// List returns the last n dead letters (oldest first, by time, then
// partition and offset).
func (s *Store) List(ctx context.Context, n int) ([]Letter, error) {
	start, end, err := s.bounds(ctx)
	if err != nil {
		return nil, err
	}
	from := map[int32]int64{}
	for p, e := range end {
		from[p] = max(start[p], e-int64(n))
	}
	ls, err := s.read(ctx, from, end)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(ls, func(a, b Letter) int {
		if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
			return c
		}
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return ls, nil
}

// Get returns the dead letter at pos.
func (s *Store) Get(ctx context.Context, pos Pos) (Letter, error) {
	start, end, err := s.bounds(ctx)
	if err != nil {
		return Letter{}, err
	}
	e, ok := end[pos.Partition]
	if !ok {
		return Letter{}, fmt.Errorf("%s has no partition %d", s.Topic, pos.Partition)
	}
	if pos.Offset < start[pos.Partition] || pos.Offset >= e {
		return Letter{}, fmt.Errorf("%s partition %d holds offsets %d to %d; no record at %s",
			s.Topic, pos.Partition, start[pos.Partition], e-1, pos)
	}
	ls, err := s.read(ctx, map[int32]int64{pos.Partition: pos.Offset}, map[int32]int64{pos.Partition: pos.Offset + 1})
	if err != nil {
		return Letter{}, err
	}
	if len(ls) == 0 || ls[0].Offset != pos.Offset {
		return Letter{}, fmt.Errorf("no record at %s of %s", pos, s.Topic)
	}
	return ls[0], nil
}

// Replayed says what Replay did.
type Replayed struct {
	From   Pos
	Record *kgo.Record // as produced: Topic, Partition, Offset set
	ID     string      // CloudEvent id; "" for a raw record
	Type   string
	Raw    bool
}

// ReplayRecord rebuilds the original record of l, for toTopic or, when
// empty, for its original topic:
//   - a CloudEvent: the event without the dead-letter extensions, same id,
//     key and data, to the topic the events catalog gives for its type;
//   - a raw record (dev.knative.kafka.event): its original bytes, key and
//     headers (from the KafkaSource's key / kafkaheader* extensions), to
//     the topic it was read from.
func ReplayRecord(l Letter, toTopic string) (*kgo.Record, error) {
	if l.Event == nil {
		if toTopic == "" {
			return nil, fmt.Errorf("record %s is not a CloudEvent (%v), so its original topic is unknown; give --to-topic", l.Pos, l.DecodeErr)
		}
		return &kgo.Record{Topic: toTopic, Key: l.Key, Value: l.Value, Headers: slices.Clone(l.Headers)}, nil
	}
	if l.Raw() {
		topic := toTopic
		if topic == "" {
			if topic, _ = l.Origin(); topic == "" {
				return nil, fmt.Errorf("record %s does not say which topic the raw record came from; give --to-topic", l.Pos)
			}
		}
		r := &kgo.Record{Topic: topic, Value: l.Event.Data()}
		if _, ok := l.Event.Extensions()[events.ExtKey]; ok {
			r.Key = []byte(l.ext(events.ExtKey))
		}
		names := make([]string, 0)
		for name := range l.Event.Extensions() {
			if strings.HasPrefix(name, events.ExtHeaderPrefix) && len(name) > len(events.ExtHeaderPrefix) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: strings.TrimPrefix(name, events.ExtHeaderPrefix), Value: []byte(l.ext(name))})
		}
		return r, nil
	}
	ev := l.Event.Clone()
	for _, name := range deadLetterExtensions {
		ev.SetExtension(name, nil) // nil deletes
	}
	topic := toTopic
	if topic == "" {
		t, err := events.TopicFor(ev.Type())
		if err != nil {
			return nil, fmt.Errorf("%v; give --to-topic", err)
		}
		topic = t
	}
	return kafka.Record(topic, string(l.Key), ev)
}

// Replay produces the original record of the dead letter at pos again.
func (s *Store) Replay(ctx context.Context, pos Pos, toTopic string) (Replayed, error) {
	l, err := s.Get(ctx, pos)
	if err != nil {
		return Replayed{}, err
	}
	rec, err := ReplayRecord(l, toTopic)
	if err != nil {
		return Replayed{}, err
	}
	cl, err := s.client()
	if err != nil {
		return Replayed{}, err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return Replayed{}, fmt.Errorf("produce to %s: %w", rec.Topic, err)
	}
	return Replayed{From: pos, Record: rec, ID: l.ID(), Type: l.Type(), Raw: l.Event == nil || l.Raw()}, nil
}

// ---- output ----

// oneLine flattens s to one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteList prints one line per dead letter; a CloudEvent id already seen
// higher up (a redelivery dead-lettered twice) is marked "dup of p:o".
func WriteList(w io.Writer, topic string, ls []Letter) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POS\tTIME\tTYPE\tID\tDESTINATION\tCODE\tREASON")
	seen := map[string]Pos{}
	for _, l := range ls {
		typ, id := l.Type(), l.ID()
		if l.Event == nil {
			typ = "(not a CloudEvent)"
		}
		reason := oneLine(l.Reason(), 80)
		if l.Event == nil {
			reason = oneLine(l.DecodeErr.Error(), 80)
		}
		if first, ok := seen[id]; ok && id != "" {
			reason += " [dup of " + first.String() + "]"
		} else if id != "" {
			seen[id] = l.Pos
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Pos, l.Timestamp.UTC().Format(time.RFC3339),
			orDash(typ), orDash(id), orDash(l.ext(standin.ExtErrorDest)), orDash(l.ext(standin.ExtErrorCode)), reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead letter(s) on %s\n", len(ls), topic)
	return err
}

// WriteInspect prints every header and the payload (indented when JSON, as
// text when printable, else a hex dump), then what a replay would do.
func WriteInspect(w io.Writer, topic string, l Letter) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "record:    %s %s\n", topic, l.Pos)
	fmt.Fprintf(&b, "timestamp: %s\n", l.Timestamp.UTC().Format(time.RFC3339Nano))
	if l.Key == nil {
		fmt.Fprintf(&b, "key:       (none)\n")
	} else {
		fmt.Fprintf(&b, "key:       %s\n", printable(l.Key))
	}
	fmt.Fprintf(&b, "headers:\n")
	for _, h := range l.Headers {
		fmt.Fprintf(&b, "  %s: %s\n", h.Key, printable(h.Value))
	}
	if l.Event == nil {
		fmt.Fprintf(&b, "cloudevent: no (%v)\n", l.DecodeErr)
	} else {
		if reason := l.Reason(); reason != "" {
			fmt.Fprintf(&b, "reason:    %s\n", strings.TrimSpace(reason))
		}
		if l.Raw() {
			topic, pos := l.Origin()
			where := orDash(topic)
			if pos != nil {
				where += " " + pos.String()
			}
			fmt.Fprintf(&b, "original:  raw record (not a CloudEvent) from %s\n", where)
		}
	}
	fmt.Fprintf(&b, "payload (%d bytes):\n", len(l.Value))
	b.WriteString(payload(l.Value))
	if rec, err := ReplayRecord(l, ""); err != nil {
		fmt.Fprintf(&b, "replay:    needs --to-topic (%v)\n", err)
	} else {
		fmt.Fprintf(&b, "replay:    would produce to %s\n", rec.Topic)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func printable(v []byte) string {
	if utf8.Valid(v) && !strings.ContainsFunc(string(v), func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) {
		return string(v)
	}
	return "0x" + hex.EncodeToString(v)
}

func payload(v []byte) string {
	if len(v) == 0 {
		return "  (empty)\n"
	}
	var out bytes.Buffer
	if json.Valid(v) && json.Indent(&out, v, "  ", "  ") == nil {
		return "  " + out.String() + "\n"
	}
	if utf8.Valid(v) && !strings.ContainsFunc(string(v), func(r rune) bool {
		return !unicode.IsPrint(r) && !unicode.IsSpace(r)
	}) {
		return "  " + strings.ReplaceAll(strings.TrimRight(string(v), "\n"), "\n", "\n  ") + "\n"
	}
	return indent(hex.Dump(v))
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "  " + strings.Join(lines, "\n  ") + "\n"
}

// WriteReplayed prints what Replay did.
func WriteReplayed(w io.Writer, topic string, r Replayed) error {
	var err error
	dest := fmt.Sprintf("%s partition %d offset %d", r.Record.Topic, r.Record.Partition, r.Record.Offset)
	if r.Raw {
		_, err = fmt.Fprintf(w, "replayed %s %s → %s: the original raw record (%d bytes, key %q, %d headers).\n"+
			"It is still not a CloudEvent: unless something now consumes it, the KafkaSource wraps it again and quarantine parks it again (with a new id).\n",
			topic, r.From, dest, len(r.Record.Value), r.Record.Key, len(r.Record.Headers))
	} else {
		_, err = fmt.Fprintf(w, "replayed %s %s → %s: CloudEvent %s id %s (key %q), dead-letter extensions removed.\n"+
			"Consumers dedupe by id: one that already handled %s skips it.\n",
			topic, r.From, dest, r.Type, r.ID, r.Record.Key, r.ID)
	}
	return err
}

var errUsage = errors.New("usage")
