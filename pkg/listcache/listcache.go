// Package listcache keeps in Redis what conversation lists show: each
// conversation's summary (newest seq, last message, last activity, each
// sender's newest seq) and each user's read and delivered positions. A list
// of hundreds of conversations is then one Redis round trip instead of
// several store reads per conversation.
//
// The store is the truth; this is a cache of it. Writers (transfer,
// read-transfer) record what they changed after the store has it; readers
// take what the cache holds and fill the rest from the store. Every field
// only moves forward (merged in Redis by a script), so a late or repeated
// write never undoes a newer one. A summary counts only once a reader has
// filled it from the store (a writer alone knows only its own batch); a
// position is exact whoever wrote it. Entries expire after a day without a
// write, and a cache that is unreachable only makes lists slower.
package listcache

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
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

func summaryKey(conv string) string  { return "ec:sum:" + conv }
func positionKey(user string) string { return "ec:pos:" + user }

// mergeSummary raises a summary's fields: seq (with its last message), the
// last activity, and each sender's seq; ARGV[1] "1" marks it complete.
var mergeSummary = redis.NewScript(`
local k = KEYS[1]
local seq = tonumber(ARGV[3])
if seq > tonumber(redis.call('HGET', k, 'seq') or '-1') then
  redis.call('HSET', k, 'seq', ARGV[3], 'last', ARGV[5])
end
if tonumber(ARGV[4]) > tonumber(redis.call('HGET', k, 'at') or '0') then
  redis.call('HSET', k, 'at', ARGV[4])
end
for i = 6, #ARGV, 2 do
  local f = 's:' .. ARGV[i]
  if tonumber(ARGV[i+1]) > tonumber(redis.call('HGET', k, f) or '0') then
    redis.call('HSET', k, f, ARGV[i+1])
  end
end
if ARGV[1] == '1' then redis.call('HSET', k, 'full', '1') end
redis.call('PEXPIRE', k, ARGV[2])
return 1
`)

// mergePositions raises positions "read,delivered" of conversations.
var mergePositions = redis.NewScript(`
local k = KEYS[1]
for i = 2, #ARGV, 3 do
  local r, d = tonumber(ARGV[i+1]), tonumber(ARGV[i+2])
  local cur = redis.call('HGET', k, ARGV[i])
  if cur then
    local cr, cd = string.match(cur, '^(%d+),(%d+)$')
    if cr then
      r = math.max(r, tonumber(cr))
      d = math.max(d, tonumber(cd))
    end
  end
  redis.call('HSET', k, ARGV[i], r .. ',' .. d)
end
redis.call('PEXPIRE', k, ARGV[1])
return 1
`)

// Summaries returns the complete summaries the cache holds among convs.
func (c *Redis) Summaries(ctx context.Context, convs []string) (map[string]store.Summary, error) {
	if len(convs) == 0 {
		return map[string]store.Summary{}, nil
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(convs))
	for i, conv := range convs {
		cmds[i] = pipe.HGetAll(ctx, summaryKey(conv))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("reading %d summaries: %w", len(convs), err)
	}
	out := make(map[string]store.Summary, len(convs))
	for i, conv := range convs {
		h := cmds[i].Val()
		if h["full"] != "1" {
			continue
		}
		sum := store.Summary{Sent: map[string]int64{}}
		sum.Seq, _ = strconv.ParseInt(h["seq"], 10, 64)
		sum.UpdatedAt, _ = strconv.ParseInt(h["at"], 10, 64)
		if last := h["last"]; last != "" && last != "null" {
			var m store.Message
			if err := json.Unmarshal([]byte(last), &m); err != nil {
				continue // unreadable: the store fills it again
			}
			sum.LastMsg = &m
		}
		for f, v := range h {
			if u, ok := strings.CutPrefix(f, "s:"); ok {
				sum.Sent[u], _ = strconv.ParseInt(v, 10, 64)
			}
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
	flag := "0"
	if full {
		flag = "1"
	}
	for conv, sum := range sums {
		last, err := json.Marshal(sum.LastMsg)
		if err != nil {
			return fmt.Errorf("encoding the last message of %s: %w", conv, err)
		}
		args := []any{flag, TTL.Milliseconds(), sum.Seq, sum.UpdatedAt, string(last)}
		for u, seq := range sum.Sent {
			args = append(args, u, seq)
		}
		mergeSummary.Eval(ctx, pipe, []string{summaryKey(conv)}, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("caching %d summaries: %w", len(sums), err)
	}
	return nil
}

// Positions returns the positions the cache holds among keys.
func (c *Redis) Positions(ctx context.Context, keys []store.PositionKey) (map[store.PositionKey]store.Position, error) {
	if len(keys) == 0 {
		return map[store.PositionKey]store.Position{}, nil
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGet(ctx, positionKey(k.User), k.Conversation)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("reading %d positions: %w", len(keys), err)
	}
	out := make(map[store.PositionKey]store.Position, len(keys))
	for i, k := range keys {
		v, err := cmds[i].Result()
		if err != nil {
			continue // not cached
		}
		r, d, ok := strings.Cut(v, ",")
		if !ok {
			continue
		}
		var p store.Position
		p.Read, _ = strconv.ParseInt(r, 10, 64)
		p.Delivered, _ = strconv.ParseInt(d, 10, 64)
		out[k] = p
	}
	return out, nil
}

// PutPositions records positions read from (or just written to) the store.
func (c *Redis) PutPositions(ctx context.Context, pos map[store.PositionKey]store.Position) error {
	if len(pos) == 0 {
		return nil
	}
	byUser := map[string][]any{}
	for k, p := range pos {
		byUser[k.User] = append(byUser[k.User], k.Conversation, p.Read, p.Delivered)
	}
	pipe := c.rdb.Pipeline()
	for user, args := range byUser {
		mergePositions.Eval(ctx, pipe, []string{positionKey(user)}, append([]any{TTL.Milliseconds()}, args...)...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("caching positions of %d users: %w", len(byUser), err)
	}
	return nil
}
