package standin

import (
	"fmt"
	"strings"
)

// DeliveryOrderAnnotation is the Trigger annotation with which the Knative
// Kafka Broker chooses, per Trigger, between ordered and unordered delivery
// (control-plane/pkg/reconciler/trigger: deliveryOrderAnnotation).
const DeliveryOrderAnnotation = "kafka.eventing.knative.dev/delivery.order"

// DeliveryOrder is how a Trigger's records of one partition are delivered.
type DeliveryOrder string

const (
	// Ordered delivers a partition's records one at a time: the next waits
	// until the previous one is done (2xx, dead-lettered or filtered out).
	Ordered DeliveryOrder = "ordered"
	// Unordered delivers a partition's records concurrently, each with its
	// own retries; offsets are still committed in order. It is the Kafka
	// Broker's default for a Trigger without the annotation.
	Unordered DeliveryOrder = "unordered"
)

// DefaultUnorderedMaxInFlight bounds the records of one partition an
// unordered Trigger has in flight at once. It is max.poll.records in the
// Kafka Broker's shipped config-kafka-broker-data-plane (50), which bounds
// the dispatcher's in-flight records per consumer (UnorderedConsumerVerticle).
const DefaultUnorderedMaxInFlight = 50

// DeliveryOrder returns the Trigger's delivery order: its annotation, else
// Unordered, as the Kafka Broker defaults. Load has validated the value.
func (t *Trigger) DeliveryOrder() DeliveryOrder {
	o, _ := parseDeliveryOrder(t.Meta.Annotations)
	return o
}

// parseDeliveryOrder reads DeliveryOrderAnnotation the way the Kafka
// Broker's Trigger reconciler does: case-insensitive "ordered" or
// "unordered", absent means unordered, anything else (even empty) is an
// error. Knative's admission webhooks let such a Trigger in; its reconciler
// then fails ("invalid annotation … value") and nothing is delivered to it.
// The stand-in refuses it at load instead, so the mistake is seen at once.
func parseDeliveryOrder(annotations map[string]string) (DeliveryOrder, error) {
	v, ok := annotations[DeliveryOrderAnnotation]
	if !ok {
		return Unordered, nil
	}
	switch o := DeliveryOrder(strings.ToLower(v)); o {
	case Ordered, Unordered:
		return o, nil
	}
	return Unordered, fmt.Errorf("metadata.annotations[%s]: %q is not %q or %q", DeliveryOrderAnnotation, v, Ordered, Unordered)
}
