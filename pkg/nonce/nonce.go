// Package nonce remembers the nonces of signed calls so that each is accepted
// once (sign.Replays): in Redis, shared by every replica of every component,
// or in memory for a single process.
package nonce

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps nonces as keys with a TTL (SET NX).
type Redis struct{ rdb redis.UniversalClient }

// NewRedis returns a guard on rdb.
func NewRedis(rdb redis.UniversalClient) *Redis { return &Redis{rdb: rdb} }

const prefix = "ec:nonce:"

// Fresh reports whether nonce was not seen within ttl, and remembers it.
func (r *Redis) Fresh(ctx context.Context, nonce string, ttl time.Duration) (bool, error) {
	ok, err := r.rdb.SetNX(ctx, prefix+nonce, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("remembering nonce: %w", err)
	}
	return ok, nil
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
func (m *Memory) Fresh(_ context.Context, nonce string, ttl time.Duration) (bool, error) {
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
