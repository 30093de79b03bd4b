// Package limit bounds how often something may happen per key (a user, a
// client address): N events per window, counted in fixed windows. The Redis
// limiter shares the counts across every replica of every component, so a
// client cannot get around a limit by reaching another instance; the memory
// limiter is for a single process and tests.
package limit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"easychat/pkg/reject"
)

// Rule allows N events per window Per. A zero Rule allows everything.
type Rule struct {
	N   int
	Per time.Duration
}

// Off reports whether the rule allows everything.
func (r Rule) Off() bool { return r.N <= 0 || r.Per <= 0 }

func (r Rule) String() string {
	if r.Off() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", r.N, r.Per)
}

// ParseRule parses "N/duration" (e.g. "10/5m", "30/1h"); "0" or "off" is no limit.
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	if s == "0" || strings.EqualFold(s, "off") {
		return Rule{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rule{}, fmt.Errorf("limit %q: want N/duration such as 10/5m, or off", s)
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count < 0 {
		return Rule{}, fmt.Errorf("limit %q: bad count", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(per))
	if err != nil || d <= 0 {
		return Rule{}, fmt.Errorf("limit %q: bad duration", s)
	}
	return Rule{N: count, Per: d}, nil
}

// Limiter counts events.
type Limiter interface {
	// Take counts n events of key under rule; ok is false when that goes
	// over the limit, and retry says when the window ends.
	Take(ctx context.Context, key string, n int, r Rule) (ok bool, retry time.Duration, err error)
}

// Check takes one event and turns "over the limit" into a client-facing
// refusal (429) naming what was limited.
func Check(ctx context.Context, l Limiter, key string, r Rule, what string) error {
	return CheckN(ctx, l, key, 1, r, what)
}

// CheckN is Check for n events at once.
func CheckN(ctx context.Context, l Limiter, key string, n int, r Rule, what string) error {
	if r.Off() || l == nil || n <= 0 {
		return nil
	}
	ok, retry, err := l.Take(ctx, key, n, r)
	if err != nil {
		return err
	}
	if !ok {
		return reject.Limited("too many %s (at most %d per %s); retry in %s", what, r.N, r.Per, retry.Round(time.Second)+time.Second)
	}
	return nil
}

// Redis counts in Redis: one key per (key, window) with a TTL.
type Redis struct{ rdb redis.UniversalClient }

// NewRedis returns a limiter on rdb.
func NewRedis(rdb redis.UniversalClient) *Redis { return &Redis{rdb: rdb} }

// take increments the window's counter, setting its expiry when it has
// none (the window's first events), and answers the count and the time left.
var take = redis.NewScript(`
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
`)

// Take implements Limiter.
func (l *Redis) Take(ctx context.Context, key string, n int, r Rule) (bool, time.Duration, error) {
	if r.Off() {
		return true, 0, nil
	}
	res, err := take.Run(ctx, l.rdb, []string{"ec:limit:" + key}, r.Per.Milliseconds(), n).Int64Slice()
	if err != nil || len(res) != 2 {
		return false, 0, fmt.Errorf("counting %s: %w", key, err)
	}
	return res[0] <= int64(r.N), time.Duration(max(res[1], 0)) * time.Millisecond, nil
}

// Memory counts in this process.
type Memory struct {
	mu  sync.Mutex
	w   map[string]*window
	now func() time.Time
}

type window struct {
	n   int
	end time.Time
}

// NewMemory returns an empty in-memory limiter.
func NewMemory() *Memory { return &Memory{w: map[string]*window{}, now: time.Now} }

// Take implements Limiter.
func (l *Memory) Take(_ context.Context, key string, n int, r Rule) (bool, time.Duration, error) {
	if r.Off() {
		return true, 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.w) > 10000 {
		for k, w := range l.w {
			if !now.Before(w.end) {
				delete(l.w, k)
			}
		}
	}
	w := l.w[key]
	if w == nil || !now.Before(w.end) {
		w = &window{end: now.Add(r.Per)}
		l.w[key] = w
	}
	w.n += n
	return w.n <= r.N, w.end.Sub(now), nil
}
