package session

import (
	"context"
	"sync"
)

// Tracker counts accepted client requests until they are answered, so a
// draining gateway can wait for them. (sync.WaitGroup does not allow Add
// racing with Wait, and requests keep arriving while draining starts.)
type Tracker struct {
	mu       sync.Mutex
	n        int
	draining bool
	idle     chan struct{}
}

// Begin counts one request; it returns false once draining has begun, and the
// request must then be refused.
func (t *Tracker) Begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.draining {
		return false
	}
	t.n++
	return true
}

// End marks a request begun with Begin as answered.
func (t *Tracker) End() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// Refuse makes Begin fail from now on (drain has begun).
func (t *Tracker) Refuse() {
	t.mu.Lock()
	t.draining = true
	t.mu.Unlock()
}

// Inflight returns the number of unanswered requests.
func (t *Tracker) Inflight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Drain refuses new requests and waits until the in-flight ones are answered
// or ctx ends.
func (t *Tracker) Drain(ctx context.Context) error {
	t.mu.Lock()
	t.draining = true
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
