package consume

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"easychat/connector/trigger"
)

// round is one call of a unit: every subscribed function that has not taken
// the unit yet is invoked once. It runs in its own goroutine so the main
// path can stop waiting for it; its fields are set before done closes.
type round struct {
	done   chan struct{}
	took   map[string]bool  // functions that answered 2xx, in this round or before
	failed []trigger.Result // this round's failures
}

// ok reports whether every function has taken the unit (after done).
func (r *round) ok() bool { return len(r.failed) == 0 }

// call starts a round for u, after waiting for a subscribed function and a
// free Caller. took lists functions that already took u's messages. It
// returns errStopped, starting nothing, once stop is done.
func (w *worker) call(stop, work context.Context, u unit, took map[string]bool) (*round, error) {
	if stop.Err() != nil {
		return nil, errStopped
	}
	fns, err := w.subscribers(stop, u.msgs[0].Offset)
	if err != nil {
		return nil, err
	}
	var caller *trigger.Caller
	select {
	case caller = <-w.callers:
	case <-stop.Done():
		return nil, errStopped
	}
	r := &round{done: make(chan struct{}), took: maps.Clone(took)}
	if r.took == nil {
		r.took = map[string]bool{}
	}
	go func() {
		defer close(r.done)
		defer func() { w.callers <- caller }()
		for _, fn := range fns {
			if r.took[fn] {
				continue // functions that already took it are not asked again
			}
			res := caller.Call(work, w.key.topic, fn, u.body, u.headers)
			w.observe(res)
			if res.OK() {
				w.lastOK.Store(time.Now().UnixNano())
				r.took[fn] = true
			} else {
				r.failed = append(r.failed, res)
			}
		}
	}()
	return r, nil
}

// subscribers returns the functions subscribed to the worker's topic. If
// there are none it waits for the topic map: that is not a failure (the
// function may not be deployed yet), so nothing is committed or dropped.
func (w *worker) subscribers(stop context.Context, offset int64) ([]string, error) {
	waiting := false
	for {
		updated := w.c.topics.Updated()
		if fns := w.c.topics.Match(w.key.topic); len(fns) > 0 {
			if waiting {
				w.log.Info("function found for topic; delivering", "functions", fns)
			}
			return fns, nil
		}
		if !waiting && w.c.topics.Synced() { // before the first sync, silence is normal
			waiting = true
			w.c.metrics.waiting.WithLabelValues(w.key.topic).Inc()
			w.log.Warn("no function subscribes to the topic yet; partition waits", "offset", offset)
		}
		select {
		case <-stop.Done():
			return nil, errStopped
		case <-updated:
		}
	}
}

// tried is what is known about a unit before deliver calls it.
type tried struct {
	// round is a call of this very unit already made (the main path's): its
	// outcome counts as the first attempt. Nil: none.
	round *round
	// took lists functions that already took the unit's messages.
	took map[string]bool
}

// deliver calls u until every subscribed function has answered 2xx,
// retrying with capped exponential backoff. After tries failed rounds (at
// once for a permanent refusal) the failing functions' message goes to the
// dead-letter topic or, with deadLetter false, errExhausted is returned. A
// nil return means the unit has ended.
//
// A unit that keeps failing transiently is dead-lettered after tries unless
// it looks like an outage: other keys of the partition failed too since it
// started failing, and nothing got through. Then the function (or what it
// depends on) is down, and dead-lettering would throw accepted messages away
// by the hundred; the unit keeps trying at the capped delay instead, and
// gets tries more once the outage is over. A lone record failing on a quiet
// partition cannot tell an outage from its own fault and is dead-lettered
// after tries.
func (w *worker) deliver(stop, work context.Context, u unit, tries int, deadLetter bool, before tried) error {
	if len(u.body) == 0 {
		// Nothing to post (the SDK cannot send an empty body): no retry helps.
		return w.deadLetter(stop, work, u.msgs[0], "", "empty message", 0)
	}
	r, took := before.round, before.took
	key := string(u.msgs[0].Key)
	since := time.Now() // when this unit started failing, or when an outage was last seen
	tried := 0          // tries since then
	for round := 1; ; round++ {
		if r == nil {
			var err error
			if r, err = w.call(stop, work, u, took); err != nil {
				return err
			}
		}
		<-r.done // work bounds the call
		if r.ok() {
			return nil
		}
		if work.Err() != nil {
			return errStopped // our own shutdown failed the call, not the function
		}
		took = r.took
		tried++
		w.failed(key)
		if tried >= tries && deadLetter && !permanent(r.failed) && w.outage(since, key) {
			w.c.metrics.outageHolds.WithLabelValues(w.key.topic).Inc()
			w.log.Error("other records of the partition fail too: an outage, so the record is kept and retried rather than dead-lettered",
				"offset", u.msgs[0].Offset, "attempts", round, "err", r.failed[0].Err)
			tried, since = 0, time.Now()
		}
		// A function that refused the input itself will refuse the same
		// bytes again: no retry for it.
		if tried >= tries || permanent(r.failed) {
			if !deadLetter {
				return errExhausted
			}
			for _, f := range r.failed {
				if err := w.deadLetter(stop, work, u.msgs[0], f.Function, f.Err.Error(), round); err != nil {
					return err
				}
			}
			return nil
		}
		delay := w.backoff(round)
		for _, f := range r.failed {
			w.c.metrics.retries.WithLabelValues(w.key.topic, f.Function).Inc()
			w.log.Warn("delivery failed; retrying", "offset", u.msgs[0].Offset, "messages", len(u.msgs),
				"function", f.Function, "attempt", round, "of", tries, "retry_in", delay, "err", f.Err)
		}
		if !sleep(stop, delay) {
			return errStopped
		}
		r = nil
	}
}

// deliverHeld delivers msgs, one batch as batcher makes them, for a lane: a
// multi-message array that keeps failing is split and its messages are
// delivered one by one, so only a refused one is dead-lettered. Each message
// is released from the hold as it ends.
func (w *worker) deliverHeld(stop, work context.Context, msgs []kafka.Message, before tried) error {
	u := w.unitOf(msgs)
	if len(msgs) == 1 {
		if err := w.deliver(stop, work, u, w.c.cfg.MaxAttempts, true, before); err != nil {
			return err
		}
		w.release(msgs...)
		return nil
	}
	err := w.deliver(stop, work, u, min(batchTries, w.c.cfg.MaxAttempts), false, before)
	if errors.Is(err, errExhausted) {
		w.log.Warn("batch keeps failing; delivering its messages one by one",
			"first_offset", msgs[0].Offset, "messages", len(msgs))
		for i := range msgs {
			if err := w.deliverHeld(stop, work, msgs[i:i+1], tried{took: before.took}); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	w.release(msgs...)
	return nil
}

// permanent reports whether every failure is a refusal of the input: a 4xx
// answer, except those that say nothing about the input (401: our key is
// wrong, an outage to wait out; 407 and 408: a proxy or the clock; 425 and
// 429: try later).
func permanent(failed []trigger.Result) bool {
	for _, r := range failed {
		if r.Status < 400 || r.Status > 499 {
			return false
		}
		switch r.Status {
		case http.StatusUnauthorized, http.StatusProxyAuthRequired, http.StatusRequestTimeout,
			http.StatusTooEarly, http.StatusTooManyRequests:
			return false
		}
	}
	return len(failed) > 0
}

// failed notes a failed call of key's records, for outage.
func (w *worker) failed(key string) {
	now := time.Now()
	w.healthMu.Lock()
	defer w.healthMu.Unlock()
	if len(w.failedAt) > 1024 {
		for k, at := range w.failedAt {
			if now.Sub(at) > time.Hour {
				delete(w.failedAt, k)
			}
		}
	}
	w.failedAt[key] = now
}

// outage reports whether, since t, nothing on the partition got through and
// a key other than key failed too.
func (w *worker) outage(t time.Time, key string) bool {
	if w.lastOK.Load() > t.UnixNano() {
		return false
	}
	w.healthMu.Lock()
	defer w.healthMu.Unlock()
	for k, at := range w.failedAt {
		if k != key && at.After(t) {
			return true
		}
	}
	return false
}

func (w *worker) observe(r trigger.Result) {
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
// so keys failing together do not retry in lockstep.
func (w *worker) backoff(attempt int) time.Duration {
	d := w.c.cfg.RetryMin
	for i := 1; i < attempt && d < w.c.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.c.cfg.RetryMax)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
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
