package server

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// callerRates bounds the HTTP API calls of each caller (a user, or the
// client address of an anonymous caller) on this instance: a token bucket
// per caller, forgotten once idle. Websocket frames have their own bucket
// per socket (package session).
type callerRates struct {
	limit rate.Limit
	burst int

	mu    sync.Mutex
	seen  map[string]*callerRate
	swept time.Time
}

type callerRate struct {
	lim  *rate.Limiter
	last time.Time
}

// idleAfter is how long a caller's bucket is kept after its last call: by
// then it is full again, so forgetting it changes nothing.
const idleAfter = time.Minute

func newCallerRates(perSecond float64, burst int) *callerRates {
	return &callerRates{limit: rate.Limit(perSecond), burst: max(burst, 1), seen: map[string]*callerRate{}}
}

// allow reports whether caller may make a call now (always, with no rate).
func (c *callerRates) allow(caller string) bool {
	if c == nil || c.limit <= 0 {
		return true
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.swept) > idleAfter {
		for k, r := range c.seen {
			if now.Sub(r.last) > idleAfter {
				delete(c.seen, k)
			}
		}
		c.swept = now
	}
	r := c.seen[caller]
	if r == nil {
		r = &callerRate{lim: rate.NewLimiter(c.limit, c.burst)}
		c.seen[caller] = r
	}
	r.last = now
	return r.lim.AllowN(now, 1)
}
