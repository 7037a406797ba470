package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"

	"github.com/coffeebuddy/coffeebuddy/shared/gauges"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Metric names (docs/metrics.md).
const (
	ConsumerLagMetric = "coffeebuddy_kafka_consumer_group_lag"
	EndOffsetsMetric  = "coffeebuddy_kafka_topic_end_offsets"
)

// ConsumerGroups matches the consumer groups that deliver CoffeeBuddy's
// events: the Kafka Broker's per-Trigger groups in namespace coffeebuddy
// (knative-trigger-coffeebuddy-<trigger>), the KafkaSource's group
// (coffeebuddy-source) and the local stand-in's per-Trigger groups
// (coffeebuddy-source.<trigger>). Other tenants' groups on a shared
// cluster are neither read nor exported.
var ConsumerGroups = regexp.MustCompile(`^(knative-trigger-coffeebuddy-.+|coffeebuddy-source(\..+)?)$`)

// NewLagMetrics returns the collector of the consumer groups' lag and the
// topics' end offsets, read from Kafka at scrape time (package gauges):
//
//	coffeebuddy_kafka_consumer_group_lag{group,topic}  records not yet delivered by the group, summed over partitions
//	coffeebuddy_kafka_topic_end_offsets{topic}        records ever written to the topic (sum of partition end offsets)
//
// groups selects the groups (ConsumerGroups), topics the topics whose end
// offsets are exported (the catalog's). The lag of a Trigger's group is the
// backlog behind that function: for slack-retry, the Slack retry backlog;
// the end offsets of coffee.deadletter rise with every dead letter,
// whoever wrote it (the broker's dead-letter sink, quarantine, the
// runtime after 10 rate-limited attempts).
func NewLagMetrics(cl *kgo.Client, groups *regexp.Regexp, topics []string, log *slog.Logger) prometheus.Collector {
	lagDesc := prometheus.NewDesc(ConsumerLagMetric,
		"Records not yet delivered by a consumer group, by topic (summed over partitions).", []string{"group", "topic"}, nil)
	endDesc := prometheus.NewDesc(EndOffsetsMetric,
		"Records ever written to a topic: the sum of its partitions' end offsets.", []string{"topic"}, nil)
	adm := kadm.NewClient(cl)
	return gauges.New("kafka", log, func(ctx context.Context) ([]prometheus.Metric, error) {
		var out []prometheus.Metric
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("kafka end offsets: %w", err)
		}
		sums := map[string]float64{}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err == nil && o.Offset >= 0 {
				sums[o.Topic] += float64(o.Offset)
			}
		})
		for t, n := range sums {
			out = append(out, prometheus.MustNewConstMetric(endDesc, prometheus.GaugeValue, n, t))
		}

		listed, err := adm.ListGroups(ctx)
		if err != nil {
			return nil, fmt.Errorf("kafka consumer groups: %w", err)
		}
		var names []string
		for _, g := range listed.Groups() {
			if groups.MatchString(g) {
				names = append(names, g)
			}
		}
		if len(names) == 0 {
			return out, nil
		}
		lags, err := adm.Lag(ctx, names...)
		if err != nil {
			return nil, fmt.Errorf("kafka consumer lag: %w", err)
		}
		lags.Each(func(l kadm.DescribedGroupLag) {
			if l.Error() != nil {
				log.Warn("consumer lag unknown", "group", l.Group, "err", l.Error())
				return
			}
			for t, tl := range l.Lag.TotalByTopic() {
				out = append(out, prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(tl.Lag), l.Group, t))
			}
		})
		return out, nil
	}, lagDesc, endDesc)
}
