package consume

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// offsets tracks one partition's fetched offsets until they can be
// committed. Messages end out of order (a held key's wait while later keys
// go on), so the commit point is the lowest offset that has not ended: every
// fetched offset below it has. Offsets are tracked rather than counted
// because Kafka leaves gaps (compaction, transaction markers).
type offsets struct {
	pending   []pendingOffset // fetched, ascending, from the first that has not ended
	next      int64           // one past the highest offset fetched; -1 before the first
	committed int64           // the last commit point (or where fetching started); -1 before the first
	hwm       int64           // the partition's end as seen by the latest fetch
}

type pendingOffset struct {
	offset int64
	ended  bool
}

func newOffsets() offsets { return offsets{next: -1, committed: -1} }

// fetched tracks m. An offset at or below one already seen is a refetch
// after a rebalance: it is either tracked still or has ended, and its
// redelivery changes neither.
func (o *offsets) fetched(m kafka.Message) {
	if m.Offset < o.next {
		return
	}
	if o.next < 0 {
		o.committed = m.Offset // the reader starts at the group's commit point
	}
	o.pending = append(o.pending, pendingOffset{offset: m.Offset})
	o.next = m.Offset + 1
	o.hwm = m.HighWaterMark
}

// ended marks offset as delivered or dead-lettered.
func (o *offsets) ended(offset int64) {
	i, found := slices.BinarySearchFunc(o.pending, offset, func(p pendingOffset, t int64) int {
		return cmp.Compare(p.offset, t)
	})
	if !found {
		return // ended before (a redelivery), and committable already
	}
	o.pending[i].ended = true
	n := 0
	for n < len(o.pending) && o.pending[n].ended {
		n++
	}
	o.pending = o.pending[n:]
}

// committable is the offset to commit: every fetched offset below it has
// ended (Kafka's committed offset is the next one to read).
func (o *offsets) committable() int64 {
	if len(o.pending) > 0 {
		return o.pending[0].offset
	}
	return o.next
}

// commit commits the partition's commit point if it moved. A failure is
// logged and left for the next commit, which covers it (offsets are
// cumulative); meanwhile messages may be redelivered, which at-least-once
// allows.
func (w *worker) commit(ctx context.Context) {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	w.mu.Lock()
	upTo, last, hwm := w.offsets.committable(), w.offsets.committed, w.offsets.hwm
	w.mu.Unlock()
	if upTo <= last {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// CommitMessages commits the message's offset + 1.
	m := kafka.Message{Topic: w.key.topic, Partition: w.key.partition, Offset: upTo - 1}
	if err := w.reader.CommitMessages(cctx, m); err != nil {
		w.c.metrics.commitErrors.Inc()
		w.log.Warn("committing offset failed; the next commit retries it", "offset", upTo, "err", err)
		return
	}
	w.mu.Lock()
	w.offsets.committed = upTo
	w.mu.Unlock()
	w.c.metrics.lag.WithLabelValues(w.key.topic, strconv.Itoa(w.key.partition)).Set(float64(max(0, hwm-upTo)))
}

// finalCommit runs as the worker exits, after work may have been cancelled.
func (w *worker) finalCommit() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.commit(ctx)
}
