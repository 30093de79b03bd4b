package invoke

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"easychat/pkg/batch"
	"easychat/pkg/frame"
	"easychat/pkg/sign"
)

// Batcher sends the calls of one function in batches (package pkg/batch). A
// call goes out at once while fewer than Inflight batches are in flight;
// otherwise it waits, with the calls that arrive meanwhile, for the next free
// slot, and they go as one request. So a quiet gateway sends every call alone
// without delay, and a busy one sends a request per many calls instead of one
// per call.
type Batcher struct {
	c        *Client
	fn       string
	max      int
	maxBytes int
	inflight int
	timeout  time.Duration
	ctx      context.Context
	sizes    func(n int)

	mu      sync.Mutex
	queue   []*queued
	running int // batches in flight
}

// queued is a group of calls that go out in one request, in order: one
// call, or the waiting chat frames of one socket.
type queued struct {
	items []batch.Item
	size  int           // the items' share of a request body
	done  chan []Answer // buffered: the sender never waits for the caller
}

// Answer is the outcome of one call of a group.
type Answer struct {
	Data json.RawMessage
	Err  error
}

// BatchOptions tune a Batcher; zero fields take the defaults.
type BatchOptions struct {
	Max      int           // calls per request (256)
	MaxBytes int           // body bytes per request (1 MiB): below the function's body limit
	Inflight int           // requests in flight (4)
	Timeout  time.Duration // bound on one request (10s)
	// Ctx bounds every request (e.g. cancelled when a drain runs out of time).
	Ctx context.Context
	// Sizes is told the number of calls of each request sent; may be nil.
	Sizes func(n int)
}

// NewBatcher batches the calls of function fn made through c.
func NewBatcher(c *Client, fn string, o BatchOptions) *Batcher {
	if o.Max <= 0 {
		o.Max = 256
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.Inflight <= 0 {
		o.Inflight = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Ctx == nil {
		o.Ctx = context.Background()
	}
	if o.Sizes == nil {
		o.Sizes = func(int) {}
	}
	return &Batcher{c: c, fn: fn, max: o.Max, maxBytes: o.MaxBytes, inflight: o.Inflight, timeout: o.Timeout, ctx: o.Ctx, sizes: o.Sizes}
}

// Call makes one call of the batched function for user, answered as Client.Call
// would answer it alone. body must be JSON.
func (b *Batcher) Call(ctx context.Context, user, frameID string, body []byte) (json.RawMessage, error) {
	a := b.CallGroup(ctx, []batch.Item{{User: user, FrameID: frameID, Data: body}})
	return a[0].Data, a[0].Err
}

// CallGroup makes the calls of items in order, in one request when they fit
// in one (max calls and max bytes), otherwise in consecutive requests, each
// sent once the one before has been answered: a request never overtakes an
// earlier one of the same group. It returns one Answer per item.
func (b *Batcher) CallGroup(ctx context.Context, items []batch.Item) []Answer {
	out := make([]Answer, len(items))
	for start := 0; start < len(items); {
		g := &queued{done: make(chan []Answer, 1), size: 2}
		idx := []int{}
		for k := start; k < len(items) && len(g.items) < b.max; k++ {
			it := items[k]
			if !json.Valid(it.Data) {
				out[k].Err = &StatusError{Function: b.fn, Status: http.StatusBadRequest, Msg: "data is not JSON"}
				start = k + 1
				continue
			}
			// JSON of an item: its fields plus the names and punctuation around them.
			size := len(it.Data) + len(it.User) + 2*len(it.FrameID) + len(it.Origin) + 64 // a frame id may need escaping
			if size > b.maxBytes {
				// Refused alone, so that it does not fail the request it would be in.
				out[k].Err = &StatusError{Function: b.fn, Status: http.StatusRequestEntityTooLarge, Msg: "frame too large"}
				start = k + 1
				continue
			}
			if len(g.items) > 0 && g.size+size+1 > b.maxBytes {
				break
			}
			g.items = append(g.items, it)
			g.size += size + 1
			idx = append(idx, k)
			start = k + 1
		}
		if len(g.items) == 0 {
			continue
		}
		answers, err := b.wait(ctx, g)
		for j, k := range idx {
			if err != nil {
				out[k].Err = err
			} else {
				out[k] = answers[j]
			}
		}
	}
	return out
}

// wait queues g and waits for its answers.
func (b *Batcher) wait(ctx context.Context, g *queued) ([]Answer, error) {
	b.mu.Lock()
	b.queue = append(b.queue, g)
	var first []*queued
	if b.running < b.inflight {
		b.running++
		first = b.takeLocked()
	}
	b.mu.Unlock()
	if first != nil {
		go b.run(first)
	}
	select {
	case a := <-g.done:
		return a, nil
	case <-ctx.Done():
		// It may still be sent and take effect; the client's resend with
		// the same frame id is then recognised by the function.
		return nil, fmt.Errorf("%w: waiting for %s: %v", ErrUnavailable, b.fn, ctx.Err())
	}
}

// takeLocked takes the next request's groups, whole: at most max calls and
// maxBytes of body (the first group always fits: CallGroup makes it so).
func (b *Batcher) takeLocked() []*queued {
	n, calls, bytes := 0, 0, 2
	for n < len(b.queue) {
		g := b.queue[n]
		if n > 0 && (calls+len(g.items) > b.max || bytes+g.size > b.maxBytes) {
			break
		}
		calls += len(g.items)
		bytes += g.size
		n++
	}
	out := make([]*queued, n)
	copy(out, b.queue)
	clear(b.queue[:n])
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil // do not keep a burst's backing array
	}
	return out
}

// run sends batches until nothing is waiting, then frees its slot.
func (b *Batcher) run(qs []*queued) {
	for {
		b.send(qs)
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		qs = b.takeLocked()
		b.mu.Unlock()
	}
}

func (b *Batcher) send(qs []*queued) {
	var items []batch.Item
	for _, q := range qs {
		items = append(items, q.items...)
	}
	b.sizes(len(items))
	start := time.Now()
	res, err := b.post(items)
	b.c.observe(b.fn, outcome(err), time.Since(start))
	k := 0
	for _, q := range qs {
		answers := make([]Answer, len(q.items))
		for j := range answers {
			switch {
			case err != nil:
				answers[j].Err = err
			case res[k].Status >= 200 && res[k].Status <= 299:
				answers[j].Data = res[k].Data
			default:
				msg := res[k].Error
				if len(msg) > maxErrText {
					msg = strings.ToValidUTF8(msg[:maxErrText], "")
				}
				answers[j].Err = &StatusError{Function: b.fn, Status: res[k].Status, Msg: msg}
			}
			k++
		}
		q.done <- answers
	}
}

// post sends one batch and returns one result per item.
func (b *Batcher) post(items []batch.Item) ([]batch.Result, error) {
	body, err := json.Marshal(items)
	if err != nil {
		return nil, fmt.Errorf("encoding a batch for %s: %w", b.fn, err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	hdr := http.Header{}
	hdr.Set(batch.Header, strconv.Itoa(len(items)))
	raw, err := b.c.post(ctx, b.fn, sign.Component, hdr, body)
	if err != nil {
		return nil, err
	}
	var res []batch.Result
	if err := json.Unmarshal(raw, &res); err != nil || len(res) != len(items) {
		return nil, fmt.Errorf("%w: %s answered a batch of %d with %d results (%v)", ErrUnavailable, b.fn, len(items), len(res), err)
	}
	return res, nil
}

// Batching routes the calls of the Batcher's function through it, and every
// other call straight to the Batcher's Client.
type Batching struct{ B *Batcher }

// Call implements the gateway session's Caller.
func (r Batching) Call(ctx context.Context, req Request) (json.RawMessage, error) {
	if req.Function == r.B.fn && !req.Alone {
		a := r.B.CallGroup(ctx, []batch.Item{itemOf(req)})
		return a[0].Data, a[0].Err
	}
	return r.B.c.Call(ctx, req)
}

// CallGroup implements the gateway session's Caller: calls of the batched
// function go in one request (Batcher.CallGroup), others one by one.
func (r Batching) CallGroup(ctx context.Context, reqs []Request) []Answer {
	items := make([]batch.Item, 0, len(reqs))
	for _, req := range reqs {
		if req.Function != r.B.fn || req.Alone {
			return r.B.c.CallGroup(ctx, reqs)
		}
		items = append(items, itemOf(req))
	}
	return r.B.CallGroup(ctx, items)
}

// itemOf is req as an item of a batch; the method only when it is not the
// chat function's own.
func itemOf(req Request) batch.Item {
	it := batch.Item{User: req.User, FrameID: req.FrameID, Data: req.Body, Origin: req.Origin}
	if req.Method != frame.MethodChat {
		it.Method = req.Method
	}
	return it
}
