package consume

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"easychat/connector/invoke"
)

// Headers sent with every invocation, besides the pkg/sign ones.
const (
	HeaderTopic      = "X-Kafka-Topic"
	HeaderPartition  = "X-Kafka-Partition"
	HeaderOffset     = "X-Kafka-Offset"      // the (first) message's offset
	HeaderLastOffset = "X-Kafka-Last-Offset" // batches only: the last message's offset
	HeaderKey        = "X-Kafka-Key"         // omitted when a batch mixes keys
	HeaderKeyBase64  = "X-Kafka-Key-Base64"  // instead of HeaderKey for non-printable keys
	HeaderBatch      = "X-Batch"             // batch mode only: number of messages in the JSON array body
)

// batchTries is how often a multi-message batch is tried before it is split
// and its messages are delivered one by one, so that one poison message is
// dead-lettered alone instead of taking its neighbours with it.
const batchTries = 3

// errStopped means shutdown interrupted a delivery: the message is not
// committed and will be redelivered.
var errStopped = errors.New("connector stopping")

// errExhausted means a batch kept failing and should be split.
var errExhausted = errors.New("batch delivery exhausted its tries")

type partitionKey struct {
	topic     string
	partition int
}

// worker delivers one partition's messages strictly one after another, so a
// retried message blocks the messages behind it (per-partition order).
type worker struct {
	c      *Connector
	key    partitionKey
	queue  chan kafka.Message
	reader *kafka.Reader
	caller *invoke.Caller
	log    *slog.Logger

	// delivered is the last message handled (2xx or dead-lettered) and not
	// yet committed; a failed commit is retried by the next one.
	delivered *kafka.Message
}

func (c *Connector) newWorker(key partitionKey, reader *kafka.Reader) *worker {
	return &worker{
		c:      c,
		key:    key,
		queue:  make(chan kafka.Message, c.cfg.QueueSize),
		reader: reader,
		caller: invoke.NewCaller(c.cfg.GatewayURL, c.client, c.signer),
		log:    c.logger.With("topic", key.topic, "partition", key.partition),
	}
}

// run handles queued messages until stop is done. Calls and commits use
// work, which outlives stop by the shutdown grace period, so the message in
// flight at shutdown is finished and committed rather than cut off.
func (w *worker) run(stop, work context.Context) {
	defer w.finalCommit()
	batchMax := w.c.cfg.BatchMax
	for {
		var batch []kafka.Message
		select {
		case <-stop.Done():
			return
		case m := <-w.queue:
			batch = append(batch, m)
		}
		if stop.Err() != nil {
			return // stopping: leave it uncommitted rather than start new work
		}
	fill:
		for len(batch) < batchMax {
			select {
			case m := <-w.queue:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		err := w.process(stop, work, batch)
		w.commit(work)
		if err != nil {
			return
		}
	}
}

// process delivers batch in order; it returns errStopped if shutdown cut it
// short (what was delivered before is still marked for commit).
func (w *worker) process(stop, work context.Context, batch []kafka.Message) error {
	if w.c.cfg.BatchMax <= 1 {
		for _, m := range batch {
			if err := w.deliver(stop, work, single(m), w.c.cfg.MaxAttempts, true); err != nil {
				return err
			}
			w.markDelivered(m)
		}
		return nil
	}
	for len(batch) > 0 {
		// Only valid JSON can go into an array body; anything else is sent
		// on its own, as it came.
		if !json.Valid(batch[0].Value) {
			if err := w.deliver(stop, work, single(batch[0]), w.c.cfg.MaxAttempts, true); err != nil {
				return err
			}
			w.markDelivered(batch[0])
			batch = batch[1:]
			continue
		}
		n := 1
		for n < len(batch) && json.Valid(batch[n].Value) {
			n++
		}
		if err := w.deliverArray(stop, work, batch[:n]); err != nil {
			return err
		}
		batch = batch[n:]
	}
	return nil
}

// deliverArray sends msgs as one JSON array; if a multi-message batch keeps
// failing, its messages are delivered one by one instead.
func (w *worker) deliverArray(stop, work context.Context, msgs []kafka.Message) error {
	if len(msgs) == 1 {
		if err := w.deliver(stop, work, array(msgs), w.c.cfg.MaxAttempts, true); err != nil {
			return err
		}
		w.markDelivered(msgs[0])
		return nil
	}
	err := w.deliver(stop, work, array(msgs), min(batchTries, w.c.cfg.MaxAttempts), false)
	if errors.Is(err, errExhausted) {
		w.log.Warn("batch keeps failing; delivering its messages one by one",
			"first_offset", msgs[0].Offset, "messages", len(msgs))
		for i := range msgs {
			if err := w.deliverArray(stop, work, msgs[i:i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	w.markDelivered(msgs[len(msgs)-1])
	return nil
}

// unit is what one invocation carries: one message or a batch of them.
type unit struct {
	msgs    []kafka.Message
	body    []byte
	headers http.Header
}

func single(m kafka.Message) unit {
	return unit{msgs: []kafka.Message{m}, body: m.Value, headers: kafkaHeaders(m, m)}
}

func array(msgs []kafka.Message) unit {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(m.Value)
	}
	b.WriteByte(']')
	first, last := msgs[0], msgs[len(msgs)-1]
	h := kafkaHeaders(first, last)
	h.Set(HeaderBatch, strconv.Itoa(len(msgs)))
	for _, m := range msgs[1:] {
		if !bytes.Equal(m.Key, first.Key) {
			h.Del(HeaderKey)
			h.Del(HeaderKeyBase64)
			break
		}
	}
	return unit{msgs: msgs, body: b.Bytes(), headers: h}
}

func kafkaHeaders(first, last kafka.Message) http.Header {
	h := http.Header{}
	h.Set(HeaderTopic, first.Topic)
	h.Set(HeaderPartition, strconv.Itoa(first.Partition))
	h.Set(HeaderOffset, strconv.FormatInt(first.Offset, 10))
	if last.Offset != first.Offset {
		h.Set(HeaderLastOffset, strconv.FormatInt(last.Offset, 10))
	}
	if printable(first.Key) {
		h.Set(HeaderKey, string(first.Key))
	} else {
		h.Set(HeaderKeyBase64, base64.StdEncoding.EncodeToString(first.Key))
	}
	return h
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// deliver invokes every function subscribed to the unit's topic until each
// has answered 2xx, retrying with capped exponential backoff. After tries
// failed rounds the failing functions' messages go to the dead-letter topic
// (or, with deadLetter false, errExhausted is returned). A nil return means
// the unit may be committed.
func (w *worker) deliver(stop, work context.Context, u unit, tries int, deadLetter bool) error {
	topic := w.key.topic
	if len(u.body) == 0 {
		// Nothing to post (the SDK cannot send an empty body): no retry helps.
		return w.deadLetter(stop, work, u.msgs[0], "", "empty message", 0)
	}
	succeeded := map[string]bool{}
	waiting := false
	for attempt := 1; ; {
		updated := w.c.topics.Updated()
		fns := w.c.topics.Match(topic)
		if len(fns) == 0 {
			// Not a failure: the function may not be deployed yet. Wait for
			// the topic map without committing or dropping anything.
			if !waiting && w.c.topics.Synced() { // before the first sync, silence is normal
				waiting = true
				w.c.metrics.waiting.WithLabelValues(topic).Inc()
				w.log.Warn("no function subscribes to the topic yet; partition waits",
					"offset", u.msgs[0].Offset)
			}
			select {
			case <-stop.Done():
				return errStopped
			case <-updated:
			}
			continue
		}
		if waiting {
			waiting = false
			w.log.Info("function found for topic; delivering", "functions", fns)
		}

		var failed []invoke.Result
		for _, fn := range fns {
			if succeeded[fn] {
				continue // functions that already took it are not asked again
			}
			r := w.caller.Call(work, topic, fn, u.body, u.headers)
			w.observe(r)
			if r.OK() {
				succeeded[fn] = true
			} else {
				failed = append(failed, r)
			}
		}
		if len(failed) == 0 {
			return nil
		}
		if work.Err() != nil {
			return errStopped // our own shutdown failed the call, not the function
		}
		if permanent(failed) {
			// The function refused the input itself (400/413/422): retrying
			// the same bytes cannot succeed, so skip straight to the end.
			attempt = tries
		}
		if attempt >= tries {
			if !deadLetter {
				return errExhausted
			}
			for _, r := range failed {
				if err := w.deadLetter(stop, work, u.msgs[0], r.Function, r.Err.Error(), attempt); err != nil {
					return err
				}
			}
			return nil
		}
		delay := w.backoff(attempt)
		for _, r := range failed {
			w.c.metrics.retries.WithLabelValues(topic, r.Function).Inc()
			w.log.Warn("delivery failed; retrying", "offset", u.msgs[0].Offset, "messages", len(u.msgs),
				"function", r.Function, "attempt", attempt, "of", tries, "retry_in", delay, "err", r.Err)
		}
		if !sleep(stop, delay) {
			return errStopped
		}
		attempt++
	}
}

// permanent reports whether every failure is a refusal of the input.
func permanent(failed []invoke.Result) bool {
	for _, r := range failed {
		switch r.Status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		default:
			return false
		}
	}
	return len(failed) > 0
}

func (w *worker) observe(r invoke.Result) {
	status := "error"
	if r.Status != 0 {
		status = strconv.Itoa(r.Status)
	}
	w.c.metrics.invocations.WithLabelValues(r.Function, status).Inc()
	if r.Duration > 0 {
		w.c.metrics.latency.WithLabelValues(r.Function).Observe(r.Duration.Seconds())
	}
}

// backoff is RetryMin·2^(attempt-1) capped at RetryMax, less up to 20% jitter
// so partitions failing together do not retry in lockstep.
func (w *worker) backoff(attempt int) time.Duration {
	d := w.c.cfg.RetryMin
	for i := 1; i < attempt && d < w.c.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.c.cfg.RetryMax)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

func (w *worker) markDelivered(m kafka.Message) { w.delivered = &m }

// commit commits the last delivered message's offset. A failure is logged
// and left for the next commit, which covers it (offsets are cumulative);
// meanwhile the message may be redelivered, which at-least-once allows.
func (w *worker) commit(ctx context.Context) {
	if w.delivered == nil {
		return
	}
	m := *w.delivered
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.reader.CommitMessages(cctx, m); err != nil {
		w.c.metrics.commitErrors.Inc()
		w.log.Warn("committing offset failed; the next commit retries it", "offset", m.Offset, "err", err)
		return
	}
	w.delivered = nil
	w.c.metrics.lag.WithLabelValues(m.Topic, strconv.Itoa(m.Partition)).Set(float64(max(0, m.HighWaterMark-m.Offset-1)))
}

// finalCommit runs as the worker exits, after work may have been cancelled.
func (w *worker) finalCommit() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.commit(ctx)
}

// sleep waits d unless ctx ends first; it reports whether it slept fully.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
