// Package listcache keeps in Redis what conversation lists show: each
// conversation's summary (newest seq, last message, last activity, each
// sender's newest seq) and each user's read and delivered positions. A list
// of hundreds of conversations is then one Redis round trip instead of
// several store reads per conversation.
//
// The store is the truth; this is a cache of it. Writers (transfer,
// read-transfer) record what they changed after the store has it; readers
// take what the cache holds and fill the rest from the store. Every field
// only moves forward, so a late or repeated write never undoes a newer one:
// fields are sorted-set scores written with ZADD GT, and the last message is
// the top entry of a sorted set scored by seq. No script runs, so the cache
// costs the same on Redis and on the embedded server of the dev stack. A
// summary counts only once a reader has filled it from the store (a writer
// alone knows only its own batch); a position is exact whoever wrote it.
// Entries expire after a day without a write, and a cache that is
// unreachable only makes lists slower.
package listcache

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"easychat/pkg/store"
)

// TTL is how long an entry lives without writes.
const TTL = 24 * time.Hour

// Redis is the cache on Redis.
type Redis struct{ rdb redis.UniversalClient }

// New returns the cache on rdb.
func New(rdb redis.UniversalClient) *Redis { return &Redis{rdb: rdb} }

// Keys: a conversation's fields (members "seq", "at", "full", "s:<user>"
// scored by their values), its last message (members are encoded messages
// scored by seq; only the top one is kept) and a user's positions (members
// "r:<conversation>" and "d:<conversation>" scored by the position + 1).
func fieldsKey(conv string) string { return "ec:sum:" + conv }
func lastKey(conv string) string   { return "ec:last:" + conv }
func positionKey(user string) string {
	return "ec:pos:" + user
}

// Summaries returns the complete summaries the cache holds among convs.
func (c *Redis) Summaries(ctx context.Context, convs []string) (map[string]store.Summary, error) {
	out := make(map[string]store.Summary, len(convs))
	if len(convs) == 0 {
		return out, nil
	}
	pipe := c.rdb.Pipeline()
	fields := make([]*redis.ZSliceCmd, len(convs))
	lasts := make([]*redis.ZSliceCmd, len(convs))
	for i, conv := range convs {
		fields[i] = pipe.ZRangeWithScores(ctx, fieldsKey(conv), 0, -1)
		lasts[i] = pipe.ZRangeWithScores(ctx, lastKey(conv), -1, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("reading %d summaries: %w", len(convs), err)
	}
	for i, conv := range convs {
		sum, full := store.Summary{Sent: map[string]int64{}}, false
		for _, z := range fields[i].Val() {
			name, _ := z.Member.(string)
			switch {
			case name == "full":
				full = true
			case name == "seq":
				sum.Seq = int64(z.Score)
			case name == "at":
				sum.UpdatedAt = int64(z.Score)
			case strings.HasPrefix(name, "s:"):
				sum.Sent[name[2:]] = int64(z.Score)
			}
		}
		if !full {
			continue
		}
		if l := lasts[i].Val(); len(l) == 1 && int64(l[0].Score) == sum.Seq {
			var m store.Message
			if s, _ := l[0].Member.(string); json.Unmarshal([]byte(s), &m) == nil && m.MsgID != "" {
				sum.LastMsg = &m
			}
		}
		if sum.Seq > 0 && sum.LastMsg == nil {
			continue // the last message is not (yet) there: ask the store
		}
		out[conv] = sum
	}
	return out, nil
}

// Fill records complete summaries read from the store.
func (c *Redis) Fill(ctx context.Context, sums map[string]store.Summary) error {
	return c.merge(ctx, sums, true)
}

// Advance records what stored messages changed of their conversations'
// summaries (a summary no reader has filled stays incomplete).
func (c *Redis) Advance(ctx context.Context, sums map[string]store.Summary) error {
	return c.merge(ctx, sums, false)
}

func (c *Redis) merge(ctx context.Context, sums map[string]store.Summary, full bool) error {
	if len(sums) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	for conv, sum := range sums {
		fk, lk := fieldsKey(conv), lastKey(conv)
		zs := []redis.Z{{Score: float64(sum.Seq), Member: "seq"}, {Score: float64(sum.UpdatedAt), Member: "at"}}
		for u, seq := range sum.Sent {
			zs = append(zs, redis.Z{Score: float64(seq), Member: "s:" + u})
		}
		if full {
			zs = append(zs, redis.Z{Score: 1, Member: "full"})
		}
		pipe.ZAddGT(ctx, fk, zs...)
		pipe.PExpire(ctx, fk, TTL)
		if sum.LastMsg != nil {
			last, err := json.Marshal(sum.LastMsg)
			if err != nil {
				return fmt.Errorf("encoding the last message of %s: %w", conv, err)
			}
			pipe.ZAdd(ctx, lk, redis.Z{Score: float64(sum.LastMsg.Seq), Member: string(last)})
			pipe.ZRemRangeByRank(ctx, lk, 0, -2) // the newest only
			pipe.PExpire(ctx, lk, TTL)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("caching %d summaries: %w", len(sums), err)
	}
	return nil
}

// Positions returns the positions the cache holds among keys.
func (c *Redis) Positions(ctx context.Context, keys []store.PositionKey) (map[store.PositionKey]store.Position, error) {
	out := make(map[store.PositionKey]store.Position, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.FloatSliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.ZMScore(ctx, positionKey(k.User), "r:"+k.Conversation, "d:"+k.Conversation)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("reading %d positions: %w", len(keys), err)
	}
	for i, k := range keys {
		v, err := cmds[i].Result()
		// Scores are positions + 1: go-redis reads an absent member as 0.
		if err != nil || len(v) != 2 || v[0] < 1 || v[1] < 1 {
			continue
		}
		out[k] = store.Position{Read: int64(v[0]) - 1, Delivered: int64(v[1]) - 1}
	}
	return out, nil
}

// PutPositions records positions read from (or just written to) the store.
func (c *Redis) PutPositions(ctx context.Context, pos map[store.PositionKey]store.Position) error {
	if len(pos) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	touched := map[string]bool{}
	for k, p := range pos {
		pipe.ZAddGT(ctx, positionKey(k.User),
			redis.Z{Score: float64(p.Read + 1), Member: "r:" + k.Conversation},
			redis.Z{Score: float64(p.Delivered + 1), Member: "d:" + k.Conversation})
		touched[k.User] = true
	}
	for u := range touched {
		pipe.PExpire(ctx, positionKey(u), TTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("caching positions of %d users: %w", len(touched), err)
	}
	return nil
}
