package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a lock-free latency histogram: log-linear buckets over
// microseconds (32 sub-buckets per power of two, so any reported percentile
// is within ~3% of the true value), safe to record from many goroutines.
type hist struct {
	buckets [64 * subBuckets]atomic.Int64
	n       atomic.Int64
	max     atomic.Int64 // nanoseconds
}

const subBits = 5
const subBuckets = 1 << subBits

func bucketOf(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	exp := bits.Len64(us) - 1 - subBits // us >> exp is in [subBuckets, 2*subBuckets)
	return (exp+1)*subBuckets + int(us>>exp) - subBuckets
}

// lowerBound is the smallest microsecond value of bucket i.
func lowerBound(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	exp := i/subBuckets - 1
	return uint64(i%subBuckets+subBuckets) << exp
}

func (h *hist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.buckets[bucketOf(uint64(d/time.Microsecond))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *hist) count() int64 { return h.n.Load() }

// pct returns the p-quantile (0 < p <= 1); the bucket's midpoint, or the
// exact maximum for p = 1.
func (h *hist) pct(p float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	if p >= 1 {
		return time.Duration(h.max.Load())
	}
	rank := int64(p*float64(n)+0.5) - 1
	rank = max(rank, 0)
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen > rank {
			lo, hi := lowerBound(i), lowerBound(i+1)
			d := time.Duration((lo+hi)/2) * time.Microsecond
			return min(d, time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// latency is the p50/p99/max summary of a hist.
type latency struct {
	P50, P99, Max time.Duration
	N             int64
}

func (h *hist) summary() latency {
	return latency{P50: h.pct(0.50), P99: h.pct(0.99), Max: h.pct(1), N: h.count()}
}

// merge adds o's samples to h (o must be quiescent).
func (h *hist) merge(o *hist) {
	for i := range o.buckets {
		if v := o.buckets[i].Load(); v != 0 {
			h.buckets[i].Add(v)
		}
	}
	h.n.Add(o.n.Load())
	for {
		m := h.max.Load()
		if o.max.Load() <= m || h.max.CompareAndSwap(m, o.max.Load()) {
			return
		}
	}
}
