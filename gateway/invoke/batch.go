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

type queued struct {
	item batch.Item
	size int         // the item's share of a request body
	done chan answer // buffered: the sender never waits for the caller
}

type answer struct {
	data json.RawMessage
	err  error
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
	if !json.Valid(body) {
		return nil, &StatusError{Function: b.fn, Status: http.StatusBadRequest, Msg: "data is not JSON"}
	}
	q := &queued{item: batch.Item{User: user, FrameID: frameID, Data: body}, done: make(chan answer, 1)}
	// JSON of an item: its fields plus the names and punctuation around them.
	q.size = len(body) + len(user) + 2*len(frameID) + 48 // a frame id may need escaping
	if q.size > b.maxBytes {
		// Alone, so that it does not fail the batch it would be put in.
		return nil, &StatusError{Function: b.fn, Status: http.StatusRequestEntityTooLarge, Msg: "frame too large"}
	}
	b.mu.Lock()
	b.queue = append(b.queue, q)
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
	case a := <-q.done:
		return a.data, a.err
	case <-ctx.Done():
		// It may still be sent and take effect; the client's resend with
		// the same frame id is then recognised by the function.
		return nil, fmt.Errorf("%w: waiting for %s: %v", ErrUnavailable, b.fn, ctx.Err())
	}
}

// takeLocked takes the next request's calls: at most max of them, and no
// more than maxBytes of body (one call always fits: Call refuses larger).
func (b *Batcher) takeLocked() []*queued {
	n, bytes := 0, 2
	for n < len(b.queue) && n < b.max && (n == 0 || bytes+b.queue[n].size+1 <= b.maxBytes) {
		bytes += b.queue[n].size + 1
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
	b.sizes(len(qs))
	items := make([]batch.Item, len(qs))
	for i, q := range qs {
		items[i] = q.item
	}
	start := time.Now()
	res, err := b.post(items)
	b.c.observe(b.fn, outcome(err), time.Since(start))
	for i, q := range qs {
		switch {
		case err != nil:
			q.done <- answer{err: err}
		case res[i].Status >= 200 && res[i].Status <= 299:
			q.done <- answer{data: res[i].Data}
		default:
			msg := res[i].Error
			if len(msg) > maxErrText {
				msg = strings.ToValidUTF8(msg[:maxErrText], "")
			}
			q.done <- answer{err: &StatusError{Function: b.fn, Status: res[i].Status, Msg: msg}}
		}
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
	if req.Function == r.B.fn {
		return r.B.Call(ctx, req.User, req.FrameID, req.Body)
	}
	return r.B.c.Call(ctx, req)
}
