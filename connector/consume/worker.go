package consume

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"easychat/connector/trigger"
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

// maxCalls bounds the calls in flight per partition, the main path's and
// its lanes' together: a flood of hanging calls makes the partition wait
// instead of piling up goroutines and connections.
const maxCalls = 8

// errStopped means shutdown interrupted a delivery: the message is not
// committed and will be redelivered.
var errStopped = errors.New("connector stopping")

// errExhausted means a batch kept failing and should be split.
var errExhausted = errors.New("batch delivery exhausted its tries")

type partitionKey struct {
	topic     string
	partition int
}

// worker delivers one partition: its dispatcher (run) sends batches on the
// main path and hands keys whose call failed or is slow to lanes (lane.go),
// as the package doc describes.
type worker struct {
	c      *Connector
	key    partitionKey
	queue  chan kafka.Message
	reader *kafka.Reader
	log    *slog.Logger
	// callers holds the idle Callers (a Caller serves one call at a time);
	// taking one is the right to make a call, which bounds them to maxCalls.
	callers chan *trigger.Caller
	// room is signalled whenever held messages end, for a dispatcher that
	// waits for the held count to fall below QueueSize.
	room    chan struct{}
	running sync.WaitGroup // lane goroutines

	carry *kafka.Message // dispatcher only: taken, but left for the next batch
	// lastOK is when a call on the partition last succeeded (unix ns), and
	// failedAt when each key's call last failed: whether a record that keeps
	// failing is at fault, or waits out an outage (see deliver).
	lastOK   atomic.Int64
	healthMu sync.Mutex
	failedAt map[string]time.Time

	mu      sync.Mutex
	lanes   map[string]*lane // by key: the held keys
	held    int              // messages in lanes that have not ended
	offsets offsets

	commitMu sync.Mutex // one commit at a time, so offsets only move forward
}

func (c *Connector) newWorker(key partitionKey, reader *kafka.Reader) *worker {
	w := &worker{
		c:        c,
		key:      key,
		queue:    make(chan kafka.Message, c.cfg.QueueSize),
		reader:   reader,
		log:      c.logger.With("topic", key.topic, "partition", key.partition),
		callers:  make(chan *trigger.Caller, maxCalls),
		room:     make(chan struct{}, 1),
		lanes:    map[string]*lane{},
		failedAt: map[string]time.Time{},
		offsets:  newOffsets(),
	}
	for range maxCalls {
		w.callers <- trigger.NewCaller(c.cfg.GatewayURL, c.client, c.signer)
	}
	return w
}

// run dispatches queued messages until stop is done, then waits for the
// lanes and commits what ended. Calls and commits use work, which outlives
// stop by the shutdown grace period, so calls in flight at shutdown are
// finished and committed rather than cut off.
func (w *worker) run(stop, work context.Context) {
	w.dispatch(stop, work)
	w.running.Wait()
	w.finalCommit()
	w.forgetHeld()
}

// dispatch is the main path: batches of messages whose keys are not held,
// one call each.
func (w *worker) dispatch(stop, work context.Context) {
	for {
		batch := w.nextBatch(stop)
		if len(batch) == 0 || stop.Err() != nil {
			return // stopping: what was taken stays uncommitted
		}
		err := w.send(stop, work, batch)
		w.commit(work)
		if err != nil {
			return
		}
	}
}

// nextBatch returns the next batch for the main path, waiting for its first
// message; messages of held keys met on the way join their lanes. It returns
// nil when stop is done first.
func (w *worker) nextBatch(stop context.Context) []kafka.Message {
	if !w.waitRoom(stop) {
		return nil
	}
	b := w.newBatcher()
	for !b.full() {
		m, ok := w.take(stop, len(b.msgs) == 0)
		if !ok {
			break
		}
		switch w.route(m) {
		case toLane:
			continue
		case laneFull:
			w.carry = &m
			if len(b.msgs) > 0 {
				return b.msgs // send what we have; room is awaited next time
			}
			if !w.waitRoom(stop) {
				return nil
			}
			continue
		}
		if !b.add(m) {
			w.carry = &m
			break
		}
	}
	return b.msgs
}

// take returns the carried message, else the next queued one; wait says
// whether to wait for one (until stop) or give up at once.
func (w *worker) take(stop context.Context, wait bool) (kafka.Message, bool) {
	if m := w.carry; m != nil {
		w.carry = nil
		return *m, true
	}
	if !wait {
		select {
		case m := <-w.queue:
			w.fetched(m)
			return m, true
		default:
			return kafka.Message{}, false
		}
	}
	select {
	case m := <-w.queue:
		w.fetched(m)
		return m, true
	case <-stop.Done():
		return kafka.Message{}, false
	}
}

func (w *worker) fetched(m kafka.Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.offsets.fetched(m)
}

type routing int

const (
	toMain   routing = iota // its key is not held
	toLane                  // appended to its key's lane
	laneFull                // its key is held, but the held messages are at the bound
)

// route appends m to its key's lane if the key is held.
func (w *worker) route(m kafka.Message) routing {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.lanes[string(m.Key)]
	switch {
	case l == nil:
		return toMain
	case w.held >= w.c.cfg.QueueSize:
		return laneFull
	}
	l.queue = append(l.queue, m)
	w.addHeldLocked(1)
	return toLane
}

// waitRoom waits until fewer than QueueSize messages are held; it reports
// false if stop came first.
func (w *worker) waitRoom(stop context.Context) bool {
	for {
		w.mu.Lock()
		ok := w.held < w.c.cfg.QueueSize
		w.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-w.room:
		case <-stop.Done():
			return false
		}
	}
}

// send delivers batch on the main path: it waits for the call up to
// Patience and, if the call failed or is still running, hands the batch to
// lanes. It returns errStopped if shutdown cut it short.
func (w *worker) send(stop, work context.Context, batch []kafka.Message) error {
	u := w.unitOf(batch)
	if len(u.body) == 0 {
		// Nothing to post (the SDK cannot send an empty body): no retry
		// helps, and nothing of its key is held (it would be in a lane).
		if err := w.deadLetter(stop, work, batch[0], "", "empty message", 0); err != nil {
			return err
		}
		w.ended(batch...)
		return nil
	}
	r, err := w.call(stop, work, u, nil)
	if err != nil {
		return err
	}
	patience := time.NewTimer(w.c.cfg.Patience)
	defer patience.Stop()
	select {
	case <-r.done:
		if r.ok() {
			w.ended(batch...)
			return nil
		}
		if work.Err() != nil {
			return errStopped // our own shutdown failed the call, not the function
		}
		if mixedKeys(batch) {
			// Its lanes retry each key's own records, which may succeed:
			// say here what failed the batch.
			w.log.Warn("batch call failed; retrying its keys separately", "first_offset", batch[0].Offset,
				"messages", len(batch), "err", r.failed[0].Err)
		}
	case <-patience.C:
		w.log.Debug("call outlasted its patience; holding its keys", "offset", batch[0].Offset,
			"messages", len(batch), "patience", w.c.cfg.Patience)
	case <-stop.Done():
		// Finish the call (work bounds it) but hold nothing: lanes would
		// start no new call anyway.
		<-r.done
		if r.ok() {
			w.ended(batch...)
		}
		return errStopped
	}
	w.hold(stop, work, batch, r)
	return nil
}

func mixedKeys(msgs []kafka.Message) bool {
	for _, m := range msgs[1:] {
		if !bytes.Equal(m.Key, msgs[0].Key) {
			return true
		}
	}
	return false
}

// batcher collects the messages of one invocation: one message when
// BatchMax is 1; otherwise up to BatchMax messages of valid JSON whose array
// body stays within BatchMaxBytes. A message that is not JSON is sent alone,
// as it came. The first message always fits, whatever its size.
type batcher struct {
	max, maxBytes int
	msgs          []kafka.Message
	size          int  // bytes of the array body so far
	alone         bool // the first message cannot share its call
}

func (w *worker) newBatcher() *batcher {
	return &batcher{max: w.c.cfg.BatchMax, maxBytes: w.c.cfg.BatchMaxBytes}
}

// add appends m if it may join the batch and reports whether it did.
func (b *batcher) add(m kafka.Message) bool {
	if len(b.msgs) == 0 {
		b.msgs = append(b.msgs, m)
		b.size = len(m.Value) + 2 // [ ]
		b.alone = b.max <= 1 || !json.Valid(m.Value)
		return true
	}
	if b.full() || b.size+1+len(m.Value) > b.maxBytes || !json.Valid(m.Value) {
		return false
	}
	b.msgs = append(b.msgs, m)
	b.size += 1 + len(m.Value) // ,value
	return true
}

func (b *batcher) full() bool {
	return len(b.msgs) > 0 && (b.alone || len(b.msgs) >= b.max)
}

// unitOf is the invocation carrying msgs, a batch as batcher makes them.
func (w *worker) unitOf(msgs []kafka.Message) unit {
	if w.c.cfg.BatchMax <= 1 || (len(msgs) == 1 && !json.Valid(msgs[0].Value)) {
		return single(msgs[0])
	}
	return array(msgs)
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
	if mixedKeys(msgs) {
		h.Del(HeaderKey)
		h.Del(HeaderKeyBase64)
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
