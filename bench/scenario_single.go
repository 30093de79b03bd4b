package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"easychat/pkg/frame"
)

// Scenario 1, single chat end to end: sender websocket → gateway → chat →
// Kafka → connector → transfer → Mongo → push → receiver websocket. Pairs of
// users each hold one conversation; a paced load is spread over the senders.
// Every message is checked to arrive exactly once and in per-conversation
// seq order.

type chatPair struct {
	from, to string
	snd, rcv *wsClient
	queue    chan string // frame ids to send; the pair's sender goroutine writes them
}

// chatTracker checks deliveries of one step.
type chatTracker struct {
	mu       sync.Mutex
	tag      string
	got      map[string]int
	unique   int
	dups     int
	lastSeq  map[string]int64 // receiver+conversation → last seq seen (whole run)
	order    int              // a seq at or below one already seen
	gaps     int              // a seq past the next one
	first    time.Time
	last     time.Time
	lat      *hist
	acks     atomic.Int64
	selfPush atomic.Int64 // pushes of a message back to the socket it was written on
	errs     atomic.Int64
	overflow atomic.Int64
	errMsg   atomic.Value
	// Whole run: frames sent and push frames received, across steps.
	allSent, allGot atomic.Int64
}

func newChatTracker() *chatTracker {
	return &chatTracker{got: map[string]int{}, lastSeq: map[string]int64{}, lat: &hist{}}
}

func (t *chatTracker) reset(tag string) {
	t.mu.Lock()
	t.tag, t.got, t.lat = tag, map[string]int{}, &hist{}
	t.unique, t.dups = 0, 0
	t.first, t.last = time.Time{}, time.Time{}
	t.order, t.gaps = 0, 0
	t.mu.Unlock()
	t.acks.Store(0)
	t.selfPush.Store(0)
	t.errs.Store(0)
	t.overflow.Store(0)
}

type pushFrame struct {
	FrameType frame.Type `json:"frameType"`
	ID        string     `json:"id"`
	Method    string     `json:"method"`
	ErrMsg    string     `json:"errMsg"`
	Data      struct {
		ConversationID string `json:"conversationId"`
		Seq            int64  `json:"seq"`
	} `json:"data"`
}

// received handles a message on a receiver's socket.
func (t *chatTracker) received(c *wsClient, b []byte) {
	now := time.Now()
	p := scanPush(b)
	if !p.isPush {
		return
	}
	id, sent, ok := parseMarker(b)
	if !ok {
		return
	}
	t.allGot.Add(1)
	key := c.user + "/" + p.conv
	t.mu.Lock()
	defer t.mu.Unlock()
	last := t.lastSeq[key]
	switch {
	case p.seq <= last:
		t.order++
	case p.seq > last+1:
		t.gaps++
	}
	if p.seq > last {
		t.lastSeq[key] = p.seq
	}
	if len(id) < len(t.tag) || id[:len(t.tag)] != t.tag {
		return // an earlier step's straggler
	}
	t.got[id]++
	if t.got[id] > 1 {
		t.dups++
		return
	}
	t.unique++
	if t.first.IsZero() {
		t.first = now
	}
	t.last = now
	t.lat.record(now.Sub(sent))
	if debugSlow && now.Sub(sent) > 100*time.Millisecond {
		fmt.Fprintf(os.Stderr, "SLOW %s sent %s lat %v\n", id, sent.Format("05.000"), now.Sub(sent).Round(time.Millisecond))
	}
}

var debugSlow = os.Getenv("BENCH_DEBUG_SLOW") != ""

// answered handles a message on a sender's socket: acks, errors, and pushes,
// which are of its own messages (a sender socket receives nothing else) and
// must not come back to it.
func (t *chatTracker) answered(_ *wsClient, b []byte) {
	switch {
	case bytes.HasPrefix(b, frameAck):
		t.acks.Add(1)
	case scanPush(b).isPush:
		t.selfPush.Add(1)
	case bytes.HasPrefix(b, frameError):
		var f pushFrame
		_ = json.Unmarshal(b, &f)
		t.errs.Add(1)
		t.errMsg.CompareAndSwap(nil, f.ErrMsg)
	}
}

var frameAck = []byte(`{"frameType":2`)

func (t *chatTracker) delivered() (unique, dups int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unique, t.dups
}

// openPairs dials n sender/receiver pairs with fresh user ids.
func (sys *system) openPairs(ctx context.Context, prefix string, n int, tr *chatTracker) ([]*chatPair, error) {
	url := sys.stack.Gateways()[0].URL()
	pairs := make([]*chatPair, n)
	socks, err := dialMany(ctx, 2*n, 32, func(i int) (*wsClient, error) {
		if i%2 == 0 {
			return dialUser(ctx, url, sys.iss, fmt.Sprintf("%ss%d-%s", prefix, i/2, sys.run), tr.answered)
		}
		return dialUser(ctx, url, sys.iss, fmt.Sprintf("%sr%d-%s", prefix, i/2, sys.run), tr.received)
	})
	if err != nil {
		return nil, err
	}
	for i := range pairs {
		p := &chatPair{snd: socks[2*i], rcv: socks[2*i+1], queue: make(chan string, 4096)}
		p.from, p.to = p.snd.user, p.rcv.user
		pairs[i] = p
		go func() {
			for id := range p.queue {
				tr.allSent.Add(1)
				if err := p.snd.write(chatFrame(id, frame.SingleChat, p.to, marker(id, time.Now()))); err != nil {
					tr.errs.Add(1)
					tr.errMsg.CompareAndSwap(nil, "write: "+err.Error())
				}
			}
		}()
	}
	return pairs, nil
}

func closePairs(pairs []*chatPair) {
	var cs []*wsClient
	for _, p := range pairs {
		close(p.queue)
		cs = append(cs, p.snd, p.rcv)
	}
	closeAll(cs)
}

type stepResult struct {
	rate                   float64
	sent, unique, dups     int
	errs, overflow         int64
	selfPush               int64
	cpu                    cpuUse
	order, gaps            int
	offered, deliveredRate float64
	lat                    latency
	errMsg                 string
}

func (r stepResult) lost() int { return r.sent - r.unique }

// sustained applies the search's pass criteria.
func (r stepResult) sustained() (bool, string) {
	switch {
	case r.lost() > 0 || r.errs > 0:
		return false, fmt.Sprintf("%d lost, %d errors", r.lost(), r.errs)
	case r.dups > 0 || r.order > 0:
		return false, "duplicates or out of order"
	case r.selfPush > 0:
		return false, "pushed back to the sending socket"
	case r.overflow > 0 || r.offered < 0.95*r.rate:
		return false, "load generator could not offer the rate"
	case r.lat.P99 > time.Second:
		return false, "p99 > 1s"
	case r.deliveredRate < 0.95*r.rate:
		return false, "delivered < 95% of offered"
	}
	return true, "ok"
}

// chatStep sends rate msg/s for dur over pairs and waits for the deliveries.
func (sys *system) chatStep(ctx context.Context, pairs []*chatPair, tr *chatTracker, tag string, rate float64, dur time.Duration) stepResult {
	tr.reset(tag)
	m0 := sys.systemMetrics()
	defer func() { progress("  %s", diagLine(m0, sys.systemMetrics())) }()
	var prof sync.WaitGroup
	if sys.set.profileDir != "" && dur >= 2*time.Second {
		sys.captureFunctionProfiles(&prof, tag, dur)
	}
	cpu := sys.startCPU()
	sent, took := pace(ctx, rate, dur, func(n int) {
		select {
		case pairs[n%len(pairs)].queue <- tag + strconv.Itoa(n):
		default:
			tr.overflow.Add(1)
		}
	})
	sent -= int(tr.overflow.Load())
	deadline := time.Now().Add(sys.set.drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		u, _ := tr.delivered()
		if u+int(tr.errs.Load()) >= sent {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // late duplicates
	r := stepResult{rate: rate, sent: sent, errs: tr.errs.Load(), overflow: tr.overflow.Load(),
		offered: float64(sent) / took.Seconds(), selfPush: tr.selfPush.Load(), cpu: cpu.stop()}
	prof.Wait()
	r.unique, r.dups = tr.delivered()
	tr.mu.Lock()
	r.order, r.gaps = tr.order, tr.gaps
	if span := tr.last.Sub(tr.first).Seconds(); r.unique > 1 && span > 0 {
		r.deliveredRate = float64(r.unique-1) / span
	}
	r.lat = tr.lat.summary()
	tr.mu.Unlock()
	if m, ok := tr.errMsg.Load().(string); ok {
		r.errMsg = m
	}
	return r
}

func (sys *system) single(ctx context.Context) error {
	return sys.chatScenario(ctx, "s", sys.set.pairs, sys.set.rates, sys.set.search,
		"1. Single chat end to end (sender ws → chat → Kafka → connector → transfer → Mongo → push → receiver ws)")
}

// hot is the hot conversation: one socket writing to one peer.
func (sys *system) hot(ctx context.Context) error {
	return sys.chatScenario(ctx, "h", 1, nil, sys.set.hotRates,
		"Hot conversation: one sender socket to one peer (one single chat)")
}

// chatScenario runs fixed-rate steps, then search steps until one fails,
// over pairs sender→receiver pairs of users named with prefix.
func (sys *system) chatScenario(ctx context.Context, prefix string, npairs int, fixed, search []float64, title string) error {
	tr := newChatTracker()
	pairs, err := sys.openPairs(ctx, prefix, npairs, tr)
	if err != nil {
		return err
	}
	defer closePairs(pairs)

	// Warm-up: one message per pair brings every function to a ready replica,
	// the consumer group to its partitions and every conversation into Mongo.
	w := sys.chatStep(ctx, pairs, tr, prefix+"w", float64(len(pairs)), time.Second)
	if w.lost() > 0 {
		return fmt.Errorf("warm-up: %d of %d messages not delivered within %v (errors %d: %s)", w.lost(), w.sent, sys.set.drain, w.errs, w.errMsg)
	}

	t := sys.rep.table(title,
		"step", "offered msg/s", "sent", "delivered", "lost", "dups", "errors", "order violations", "pushed back", "delivered msg/s", "p50", "p99", "max", "CPU µs/msg", "verdict")
	row := func(kind string, r stepResult) {
		ok, why := r.sustained()
		v := "ok"
		if !ok {
			v = "FAIL: " + why
			if r.errMsg != "" {
				v += " (" + r.errMsg + ")"
			}
		}
		t.add(kind, r.offered, r.sent, r.unique, r.lost(), r.dups, r.errs, r.order, r.selfPush, r.deliveredRate, r.lat.P50, r.lat.P99, r.lat.Max, r.cpu.perMessage(r.unique), v)
		t.note("%s: CPU %s", kind, r.cpu)
	}
	for i, rate := range fixed {
		r := sys.chatStep(ctx, pairs, tr, fmt.Sprintf("%sf%d-", prefix, i), rate, sys.set.duration)
		row(fmt.Sprintf("fixed %.0f/s", rate), r)
		settle()
	}
	best := 0.0
	for i, rate := range search {
		if ctx.Err() != nil {
			break
		}
		r := sys.chatStep(ctx, pairs, tr, fmt.Sprintf("%sx%d-", prefix, i), rate, sys.set.duration)
		row(fmt.Sprintf("search %.0f/s", rate), r)
		if ok, _ := r.sustained(); !ok {
			break
		}
		best = rate
		settle()
	}
	// A failed step may leave a backlog; let it drain so it does not load
	// the next scenario (bounded: while deliveries still progress, ≤ 3 min).
	if behind := tr.allSent.Load() - tr.allGot.Load(); behind > 0 {
		progress("waiting for the backlog of %d messages", behind)
		last, quiet := tr.allGot.Load(), time.Now()
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; {
			if got := tr.allGot.Load(); got >= tr.allSent.Load()-tr.errs.Load() {
				break
			} else if got != last {
				last, quiet = got, time.Now()
			} else if time.Since(quiet) > 10*time.Second {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.note("CPU µs/msg: CPU time of every process of the system (functions, and the bench process less the load generator's share) ÷ messages delivered in the step. Pushed back: pushes of a message to the socket it was written on (which must get only the ack).")
	if best > 0 {
		t.note("**Highest sustainable rate: %.0f msg/s** (the highest step of the search with 0 lost, 0 duplicates, in order, nothing pushed back, p99 ≤ 1 s and delivered ≥ 95%% of offered).", best)
	} else if len(search) > 0 {
		t.note("**Highest sustainable rate: below the first search step (%.0f msg/s).**", search[0])
	}
	return nil
}

// settle lets queues empty between steps.
func settle() { time.Sleep(time.Second) }
