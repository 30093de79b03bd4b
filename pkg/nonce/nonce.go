// Package nonce remembers the nonces of signed calls so that each is accepted
// once (sign.Replays): in Redis, shared by every replica of every component,
// or in memory for a single process.
package nonce

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps nonces in one set per minute of the calls' signature times: a
// replay carries its original time, so it meets its nonce in the same set.
// A few sets, not a key per call: the sets expire whole.
type Redis struct{ rdb redis.UniversalClient }

// NewRedis returns a guard on rdb.
func NewRedis(rdb redis.UniversalClient) *Redis { return &Redis{rdb: rdb} }

const prefix = "ec:nonce:"

// Fresh reports whether nonce was not seen before among the calls signed in
// the same minute as at, and remembers it for ttl.
func (r *Redis) Fresh(ctx context.Context, nonce string, at time.Time, ttl time.Duration) (bool, error) {
	key := prefix + strconv.FormatInt(at.Unix()/60, 10)
	pipe := r.rdb.Pipeline()
	added := pipe.SAdd(ctx, key, nonce)
	pipe.Expire(ctx, key, ttl+time.Minute)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("remembering nonce: %w", err)
	}
	return added.Val() == 1, nil
}

// Memory keeps nonces in this process, for tests and single-process tools.
type Memory struct {
	mu   sync.Mutex
	seen map[string]time.Time // nonce → forget after
	now  func() time.Time
}

// NewMemory returns an empty in-memory guard.
func NewMemory() *Memory { return &Memory{seen: map[string]time.Time{}, now: time.Now} }

// Fresh reports whether nonce was not seen within ttl, and remembers it.
func (m *Memory) Fresh(_ context.Context, nonce string, _ time.Time, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if len(m.seen) > 4096 {
		for k, until := range m.seen {
			if now.After(until) {
				delete(m.seen, k)
			}
		}
	}
	if until, ok := m.seen[nonce]; ok && now.Before(until) {
		return false, nil
	}
	m.seen[nonce] = now.Add(ttl)
	return true, nil
}
