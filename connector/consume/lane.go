package consume

import (
	"context"

	"github.com/segmentio/kafka-go"
)

// lane holds one key aside from its partition's main path after a call
// carrying the key failed or outlasted Patience. It delivers the key's
// messages in order, from that call's on, and ends when it has caught up.
type lane struct {
	key   string
	own   []kafka.Message // the key's messages in the batch handed over
	first *round          // that batch's call, shared by the batch's lanes
	// whole says own is the whole batch: first was a call of exactly these
	// messages, so its outcome counts as their first attempt.
	whole bool
	queue []kafka.Message // guarded by worker.mu: later messages of the key, in offset order
}

// hold hands batch, whose call r failed or is still running, to new lanes,
// one per key. The keys cannot be held already: the dispatcher sends a held
// key's messages to its lane, never on the main path.
func (w *worker) hold(stop, work context.Context, batch []kafka.Message, r *round) {
	var lanes []*lane
	byKey := map[string]*lane{}
	for _, m := range batch {
		l := byKey[string(m.Key)]
		if l == nil {
			l = &lane{key: string(m.Key), first: r}
			byKey[l.key] = l
			lanes = append(lanes, l)
		}
		l.own = append(l.own, m)
	}
	w.mu.Lock()
	for _, l := range lanes {
		l.whole = len(lanes) == 1
		w.lanes[l.key] = l
	}
	w.c.metrics.heldKeys.WithLabelValues(w.key.topic).Add(float64(len(lanes)))
	w.addHeldLocked(len(batch))
	w.mu.Unlock()
	for _, l := range lanes {
		w.running.Go(func() { w.runLane(stop, work, l) })
	}
}

// runLane settles the lane's own messages, then delivers its queue. On
// shutdown it returns early and leaves the lane in place, so the key stays
// held and its messages uncommitted.
func (w *worker) runLane(stop, work context.Context, l *lane) {
	err := w.settle(stop, work, l)
	for err == nil {
		w.commit(work)
		msgs := w.nextInLane(l)
		if msgs == nil {
			return
		}
		err = w.deliverHeld(stop, work, msgs, tried{})
	}
}

// settle ends the lane's own messages: delivered by the shared call, or
// redelivered with the retry logic.
func (w *worker) settle(stop, work context.Context, l *lane) error {
	if l.whole {
		return w.deliverHeld(stop, work, l.own, tried{round: l.first})
	}
	<-l.first.done // work bounds the call
	if l.first.ok() {
		w.release(l.own...)
		return nil
	}
	if work.Err() != nil {
		return errStopped
	}
	// The call carried other keys too, so its failure may not be ours:
	// retry our own messages, after the usual first delay unless the
	// failure was a refusal (then the refused one is found at once).
	if !permanent(l.first.failed) && !sleep(stop, w.backoff(1)) {
		return errStopped
	}
	return w.deliverHeld(stop, work, l.own, tried{took: l.first.took})
}

// nextInLane takes the next batch from the lane's queue or, if it is empty,
// removes the lane (under the lock the dispatcher appends with, so nothing
// can join a lane that is ending) and returns nil.
func (w *worker) nextInLane(l *lane) []kafka.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(l.queue) == 0 {
		delete(w.lanes, l.key)
		w.c.metrics.heldKeys.WithLabelValues(w.key.topic).Dec()
		return nil
	}
	b := w.newBatcher()
	for _, m := range l.queue {
		if !b.add(m) {
			break
		}
	}
	l.queue = l.queue[len(b.msgs):]
	if len(l.queue) == 0 {
		l.queue = nil // let the delivered messages be collected
	}
	return b.msgs
}

// addHeldLocked counts n more held messages; w.mu must be held.
func (w *worker) addHeldLocked(n int) {
	w.held += n
	w.c.metrics.heldMessages.WithLabelValues(w.key.topic).Add(float64(n))
}

// ended marks main-path messages as ended (delivered or dead-lettered).
func (w *worker) ended(msgs ...kafka.Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range msgs {
		w.offsets.ended(m.Offset)
	}
}

// release marks held messages as ended and makes room for more.
func (w *worker) release(msgs ...kafka.Message) {
	w.mu.Lock()
	for _, m := range msgs {
		w.offsets.ended(m.Offset)
	}
	w.addHeldLocked(-len(msgs))
	w.mu.Unlock()
	select {
	case w.room <- struct{}{}:
	default: // a signal is pending already
	}
}

// forgetHeld takes what the worker still holds at exit off the gauges; the
// messages stay uncommitted and will be delivered again.
func (w *worker) forgetHeld() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.c.metrics.heldKeys.WithLabelValues(w.key.topic).Sub(float64(len(w.lanes)))
	w.addHeldLocked(-w.held)
}
