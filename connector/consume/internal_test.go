package consume

import (
	"net/http"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"easychat/connector/trigger"
)

func TestOffsetsCommitOnlyEndedPrefix(t *testing.T) {
	o := newOffsets()
	if got := o.committable(); got != -1 || o.committed != -1 {
		t.Fatalf("before any fetch: committable %d, committed %d", got, o.committed)
	}
	for _, off := range []int64{5, 6, 8, 9} { // 7 is a gap (compaction)
		o.fetched(kafka.Message{Offset: off, HighWaterMark: 12})
	}
	if o.committed != 5 || o.committable() != 5 {
		t.Fatalf("after fetching from 5: committed %d, committable %d", o.committed, o.committable())
	}
	o.ended(6) // a later key went on while 5 is held
	o.ended(9)
	if got := o.committable(); got != 5 {
		t.Fatalf("with 5 held: committable %d, want 5", got)
	}
	o.ended(5)
	if got := o.committable(); got != 8 {
		t.Fatalf("after 5 and 6: committable %d, want 8", got)
	}
	o.fetched(kafka.Message{Offset: 6}) // a refetch after a rebalance changes nothing
	o.ended(6)
	o.ended(8)
	if got := o.committable(); got != 10 || len(o.pending) != 0 {
		t.Fatalf("all ended: committable %d (want 10), pending %v", got, o.pending)
	}
}

func TestPermanent(t *testing.T) {
	res := func(statuses ...int) []trigger.Result {
		var out []trigger.Result
		for _, s := range statuses {
			out = append(out, trigger.Result{Status: s})
		}
		return out
	}
	for _, s := range []int{400, 403, 404, 409, 410, 413, 415, 422, 451} {
		if !permanent(res(s)) {
			t.Errorf("%d: want permanent", s)
		}
	}
	for _, s := range []int{0, 401, 407, 408, 425, 429, 500, 502, 503, 504} {
		if permanent(res(s)) {
			t.Errorf("%d: want transient", s)
		}
	}
	if permanent(res(http.StatusNotFound, http.StatusServiceUnavailable)) {
		t.Error("a refusal and an outage together: want transient (the outage may heal)")
	}
	if permanent(nil) {
		t.Error("no failure is not a permanent one")
	}
}

func TestBatcher(t *testing.T) {
	msg := func(v string) kafka.Message { return kafka.Message{Value: []byte(v)} }
	small := `{"a":1}` // 7 bytes
	for _, tc := range []struct {
		name          string
		max, maxBytes int
		values        []string
		want          int
	}{
		{"one per call", 1, 1 << 20, []string{small, small}, 1},
		{"up to BatchMax", 3, 1 << 20, []string{small, small, small, small}, 3},
		// [7,7,7] is 23 bytes; a fourth would make 31.
		{"up to BatchMaxBytes", 16, 30, []string{small, small, small, small}, 3},
		{"a big record alone", 16, 30, []string{strings.Repeat("1", 40), small}, 1},
		{"not JSON goes alone", 16, 1 << 20, []string{"raw", small}, 1},
		{"not JSON ends a batch", 16, 1 << 20, []string{small, "raw"}, 1},
		{"empty goes alone", 16, 1 << 20, []string{"", small}, 1},
	} {
		b := &batcher{max: tc.max, maxBytes: tc.maxBytes}
		for _, v := range tc.values {
			if !b.add(msg(v)) {
				break
			}
		}
		if len(b.msgs) != tc.want {
			t.Errorf("%s: batch of %d, want %d", tc.name, len(b.msgs), tc.want)
		}
		if len(b.msgs) > 1 && b.size > tc.maxBytes {
			t.Errorf("%s: %d bytes, over %d", tc.name, b.size, tc.maxBytes)
		}
	}
}
