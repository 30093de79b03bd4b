// Package route is the cluster-wide registry of which gateway instance holds a
// user's sockets, and so of presence. Gateways register users while they hold
// a socket; functions look recipients up to push. Entries expire on their own,
// so a gateway that dies stops routing (and showing users online) within TTL.
package route

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Registry is the route and presence engine.
type Registry interface {
	// Heartbeat announces (or refreshes) a gateway instance and its push address.
	Heartbeat(ctx context.Context, instance, pushAddr string) error
	// Leave removes an instance announced by Heartbeat (on graceful shutdown).
	Leave(ctx context.Context, instance string) error
	// Bind records that users hold sockets on instance, refreshing their TTL.
	Bind(ctx context.Context, instance string, users ...string) error
	// Unbind removes user's route to instance (its last socket there closed).
	Unbind(ctx context.Context, instance, user string) error
	// Lookup returns, per live instance push address, which of users it holds.
	Lookup(ctx context.Context, users []string) (map[string][]string, error)
	// Online reports which of users hold a socket on some live instance.
	Online(ctx context.Context, users []string) (map[string]bool, error)
}

// Redis implements Registry on Redis: a sorted set per user (member instance,
// score expiry in unix ms) and a key per instance holding its push address
// with a TTL. Both expire without any cleanup job.
type Redis struct {
	rdb redis.UniversalClient
	ttl time.Duration
	now func() time.Time
}

// NewRedis returns a Registry whose entries live for ttl unless refreshed.
func NewRedis(rdb redis.UniversalClient, ttl time.Duration) *Redis {
	return &Redis{rdb: rdb, ttl: ttl, now: time.Now}
}

func userKey(u string) string     { return "ec:route:" + u }
func instanceKey(i string) string { return "ec:gw:" + i }

func (r *Redis) Heartbeat(ctx context.Context, instance, pushAddr string) error {
	if err := r.rdb.Set(ctx, instanceKey(instance), pushAddr, r.ttl).Err(); err != nil {
		return fmt.Errorf("announcing gateway %s: %w", instance, err)
	}
	return nil
}

func (r *Redis) Leave(ctx context.Context, instance string) error {
	if err := r.rdb.Del(ctx, instanceKey(instance)).Err(); err != nil {
		return fmt.Errorf("removing gateway %s: %w", instance, err)
	}
	return nil
}

func (r *Redis) Bind(ctx context.Context, instance string, users ...string) error {
	if len(users) == 0 {
		return nil
	}
	exp := r.now().Add(r.ttl)
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, u := range users {
			k := userKey(u)
			p.ZAdd(ctx, k, redis.Z{Score: float64(exp.UnixMilli()), Member: instance})
			p.ZRemRangeByScore(ctx, k, "-inf", "("+strconv.FormatInt(r.now().UnixMilli(), 10))
			p.Expire(ctx, k, r.ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("binding %d users to %s: %w", len(users), instance, err)
	}
	return nil
}

func (r *Redis) Unbind(ctx context.Context, instance, user string) error {
	if err := r.rdb.ZRem(ctx, userKey(user), instance).Err(); err != nil {
		return fmt.Errorf("unbinding %s from %s: %w", user, instance, err)
	}
	return nil
}

// instances returns the unexpired instances of each user.
func (r *Redis) instances(ctx context.Context, users []string) ([][]string, error) {
	min := strconv.FormatInt(r.now().UnixMilli(), 10)
	cmds := make([]*redis.StringSliceCmd, len(users))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range users {
			cmds[i] = p.ZRangeByScore(ctx, userKey(u), &redis.ZRangeBy{Min: min, Max: "+inf"})
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("looking up routes of %d users: %w", len(users), err)
	}
	out := make([][]string, len(users))
	for i, c := range cmds {
		out[i], _ = c.Result()
	}
	return out, nil
}

// addrs returns the push address of each live instance among ids.
func (r *Redis) addrs(ctx context.Context, ids map[string]struct{}) (map[string]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(ids))
	order := make([]string, 0, len(ids))
	for id := range ids {
		keys = append(keys, instanceKey(id))
		order = append(order, id)
	}
	vals, err := r.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("looking up gateway instances: %w", err)
	}
	out := make(map[string]string, len(ids))
	for i, v := range vals {
		if s, ok := v.(string); ok && s != "" {
			out[order[i]] = s
		}
	}
	return out, nil
}

func (r *Redis) Lookup(ctx context.Context, users []string) (map[string][]string, error) {
	inst, err := r.instances(ctx, users)
	if err != nil {
		return nil, err
	}
	ids := map[string]struct{}{}
	for _, l := range inst {
		for _, id := range l {
			ids[id] = struct{}{}
		}
	}
	addrs, err := r.addrs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for i, l := range inst {
		for _, id := range l {
			if a, ok := addrs[id]; ok {
				out[a] = append(out[a], users[i])
			}
		}
	}
	return out, nil
}

func (r *Redis) Online(ctx context.Context, users []string) (map[string]bool, error) {
	byAddr, err := r.Lookup(ctx, users)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(users))
	for _, u := range users {
		out[u] = false
	}
	for _, us := range byAddr {
		for _, u := range us {
			out[u] = true
		}
	}
	return out, nil
}
