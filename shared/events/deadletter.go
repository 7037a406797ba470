package events

// Dead letters are the original event plus extensions saying why it was
// parked. Knative's dead-letter sink (and the eventing stand-in) add the
// knativeerror* ones; the quarantine function adds the coffeebuddy* ones to
// raw records that were not CloudEvents. The deadletters command reads and,
// on replay, strips them.
const (
	// TypeKafkaRecord is what a KafkaSource makes of a record that is not
	// a CloudEvent.
	TypeKafkaRecord = "dev.knative.kafka.event"

	ExtErrorDest = "knativeerrordest"
	ExtErrorCode = "knativeerrorcode"
	ExtErrorData = "knativeerrordata" // base64 of the response body or reason

	ExtReason    = "coffeebuddyreason"
	ExtTopic     = "coffeebuddytopic"     // the record's original topic
	ExtPartition = "coffeebuddypartition" // its partition (decimal string)
	ExtOffset    = "coffeebuddyoffset"    // its offset (decimal string)
	ExtOrigID    = "coffeebuddyorigid"    // the KafkaSource's event id

	// ExtKey and the kafkaheader* extensions are the KafkaSource's: the
	// record's key and headers.
	ExtKey          = "key"
	ExtHeaderPrefix = "kafkaheader"
)
