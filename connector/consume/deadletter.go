package consume

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Kafka headers on a dead-letter record, added to the original record's own
// headers; key and value are the original ones.
const (
	DeadHeaderTopic     = "dlq-original-topic"
	DeadHeaderPartition = "dlq-original-partition"
	DeadHeaderOffset    = "dlq-original-offset"
	DeadHeaderFunction  = "dlq-function" // empty when no function could be called (empty message)
	DeadHeaderError     = "dlq-error"    // the last failure
	DeadHeaderAttempts  = "dlq-attempts"
	DeadHeaderTime      = "dlq-time" // RFC 3339, when it was dead-lettered
)

// deadLetter writes m to the dead-letter topic, retrying until the write
// succeeds: the caller commits m afterwards, so a lost write would be a
// silently dropped message. It returns errStopped if shutdown came first.
func (w *worker) deadLetter(stop, work context.Context, m kafka.Message, fn, reason string, attempts int) error {
	rec := kafka.Message{
		Key:   m.Key,
		Value: m.Value,
		Headers: append(slices.Clone(m.Headers),
			kafka.Header{Key: DeadHeaderTopic, Value: []byte(m.Topic)},
			kafka.Header{Key: DeadHeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
			kafka.Header{Key: DeadHeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
			kafka.Header{Key: DeadHeaderFunction, Value: []byte(fn)},
			kafka.Header{Key: DeadHeaderError, Value: []byte(reason)},
			kafka.Header{Key: DeadHeaderAttempts, Value: []byte(strconv.Itoa(attempts))},
			kafka.Header{Key: DeadHeaderTime, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
		),
	}
	for try := 1; ; try++ {
		err := w.c.dead.WriteMessages(work, rec)
		if err == nil {
			break
		}
		if work.Err() != nil {
			return errStopped
		}
		delay := w.backoff(try)
		w.log.Error("writing to the dead-letter topic failed; retrying (its key stays held)",
			"offset", m.Offset, "dead_letter_topic", w.c.cfg.DeadLetterTopic, "retry_in", delay, "err", err)
		if !sleep(stop, delay) {
			return errStopped
		}
	}
	w.c.metrics.deadLettered.WithLabelValues(m.Topic, fn).Inc()
	w.log.Error("message dead-lettered", "offset", m.Offset, "function", fn, "attempts", attempts,
		"dead_letter_topic", w.c.cfg.DeadLetterTopic, "err", reason)
	return nil
}
