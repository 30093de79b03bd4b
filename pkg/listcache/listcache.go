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
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"easychat/pkg/domain"
)

// TTL is how long an entry lives without writes.
const TTL = 24 * time.Hour

// Redis is the cache on Redis.
type Redis struct{ rdb redis.UniversalClient }

// New returns the cache on rdb.
func New(rdb redis.UniversalClient) *Redis { return &Redis{rdb: rdb} }

// Keys: a conversation's summary is one sorted set: the fields "seq", "at",
// "full" and "s:<user>", scored by their value plus fieldBase, and its last
// message, a member "m:<encoded message>" scored by its seq (below
// fieldBase), the older ones pruned by score. A user's positions are one
// sorted set of "r:<conversation>" and "d:<conversation>", scored by the
// position + 1 (go-redis reads an absent member's score as 0).
func summaryKey(conv string) string  { return "ec:sum:" + conv }
func positionKey(user string) string { return "ec:pos:" + user }

// A user's newest hidden seqs are one sorted set of conversations, scored
// by the newest seq the user deleted for themselves there + 1 (1: none).
func hiddenKey(user string) string { return "ec:hid:" + user }

// fieldBase lifts the fields' scores above every seq, so that pruning the
// older last messages by score leaves them; seqs, times in ms and the sum
// stay exact in a float64 (below 2^53).
const fieldBase = 1 << 52

// Summaries returns the complete summaries the cache holds among convs.
func (c *Redis) Summaries(ctx context.Context, convs []string) (map[string]domain.Summary, error) {
	out := make(map[string]domain.Summary, len(convs))
	if len(convs) == 0 {
		return out, nil
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, len(convs))
	for i, conv := range convs {
		cmds[i] = pipe.ZRangeWithScores(ctx, summaryKey(conv), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("reading %d summaries: %w", len(convs), err)
	}
	for i, conv := range convs {
		sum, full, lastSeq := domain.Summary{Sent: map[string]int64{}, Mentioned: map[string]int64{}}, false, int64(-1)
		var last []string // the messages at the highest seq: one, or copies of it
		for _, z := range cmds[i].Val() {
			name, _ := z.Member.(string)
			if strings.HasPrefix(name, "m:") {
				switch {
				case int64(z.Score) > lastSeq:
					lastSeq, last = int64(z.Score), []string{name[2:]}
				case int64(z.Score) == lastSeq:
					last = append(last, name[2:])
				}
				continue
			}
			v := int64(z.Score - fieldBase)
			switch {
			case name == "full":
				full = true
			case name == "seq":
				sum.Seq = v
			case name == "at":
				sum.UpdatedAt = v
			case strings.HasPrefix(name, "s:"):
				sum.Sent[name[2:]] = v
			case strings.HasPrefix(name, "@:"):
				sum.Mentioned[name[2:]] = v
			}
		}
		if !full {
			continue
		}
		if lastSeq == sum.Seq && sum.Seq > 0 {
			sum.LastMsg = newest(last)
		}
		if sum.Seq > 0 && sum.LastMsg == nil {
			continue // the last message is not (yet) there: ask the store
		}
		out[conv] = sum
	}
	return out, nil
}

// Fill records complete summaries read from the store.
func (c *Redis) Fill(ctx context.Context, sums map[string]domain.Summary) error {
	return c.merge(ctx, sums, true)
}

// Advance records what stored messages changed of their conversations'
// summaries (a summary no reader has filled stays incomplete).
func (c *Redis) Advance(ctx context.Context, sums map[string]domain.Summary) error {
	return c.merge(ctx, sums, false)
}

func (c *Redis) merge(ctx context.Context, sums map[string]domain.Summary, full bool) error {
	if len(sums) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	for conv, sum := range sums {
		k := summaryKey(conv)
		zs := []redis.Z{{Score: fieldBase + float64(sum.Seq), Member: "seq"}, {Score: fieldBase + float64(sum.UpdatedAt), Member: "at"}}
		for u, seq := range sum.Sent {
			zs = append(zs, redis.Z{Score: fieldBase + float64(seq), Member: "s:" + u})
		}
		for u, seq := range sum.Mentioned {
			zs = append(zs, redis.Z{Score: fieldBase + float64(seq), Member: "@:" + u})
		}
		if full {
			zs = append(zs, redis.Z{Score: fieldBase + 1, Member: "full"})
		}
		if sum.LastMsg != nil {
			last, err := json.Marshal(sum.LastMsg)
			if err != nil {
				return fmt.Errorf("encoding the last message of %s: %w", conv, err)
			}
			// GT moves existing fields forward only; the message is a new
			// member (or the same one again).
			zs = append(zs, redis.Z{Score: float64(sum.LastMsg.Seq), Member: "m:" + string(last)})
		}
		pipe.ZAddGT(ctx, k, zs...)
		if sum.LastMsg != nil && sum.LastMsg.Seq > 0 {
			// Older last messages go; a late writer's stays until the next
			// write, and readers take the highest.
			pipe.ZRemRangeByScore(ctx, k, "-inf", "("+strconv.FormatInt(sum.LastMsg.Seq, 10))
		}
		pipe.PExpire(ctx, k, TTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("caching %d summaries: %w", len(sums), err)
	}
	return nil
}

// Revise replaces the last message of m's conversation by m if it is the
// one at m's seq (a recall or an edit of the newest message). Were a newer
// one there, readers would take it and the next write prunes m; a reader
// that filled in an older copy of m at the same time loses to m's version.
func (c *Redis) Revise(ctx context.Context, m domain.Message) error {
	last, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding the last message of %s: %w", m.ConversationID, err)
	}
	k, seq := summaryKey(m.ConversationID), strconv.FormatInt(m.Seq, 10)
	pipe := c.rdb.Pipeline()
	pipe.ZRemRangeByScore(ctx, k, seq, seq)
	pipe.ZAdd(ctx, k, redis.Z{Score: float64(m.Seq), Member: "m:" + string(last)})
	pipe.PExpire(ctx, k, TTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("revising the last message of %s: %w", m.ConversationID, err)
	}
	return nil
}

// Positions returns the positions the cache holds among keys. A user named
// by several keys (the one whose list it is) is read whole, in one command.
func (c *Redis) Positions(ctx context.Context, keys []domain.PositionKey) (map[domain.PositionKey]domain.Position, error) {
	out := make(map[domain.PositionKey]domain.Position, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	perUser := map[string]int{}
	for _, k := range keys {
		perUser[k.User]++
	}
	pipe := c.rdb.Pipeline()
	whole := map[string]*redis.ZSliceCmd{}
	some := make([]*redis.FloatSliceCmd, len(keys))
	for i, k := range keys {
		switch {
		case perUser[k.User] == 1:
			some[i] = pipe.ZMScore(ctx, positionKey(k.User), "r:"+k.Conversation, "d:"+k.Conversation)
		case whole[k.User] == nil:
			whole[k.User] = pipe.ZRangeWithScores(ctx, positionKey(k.User), 0, -1)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("reading %d positions: %w", len(keys), err)
	}
	scores := map[string]map[string]float64{}
	for u, cmd := range whole {
		m := map[string]float64{}
		for _, z := range cmd.Val() {
			if name, ok := z.Member.(string); ok {
				m[name] = z.Score
			}
		}
		scores[u] = m
	}
	for i, k := range keys {
		var r, d float64
		if some[i] != nil {
			v, err := some[i].Result()
			if err != nil || len(v) != 2 {
				continue
			}
			r, d = v[0], v[1]
		} else {
			r, d = scores[k.User]["r:"+k.Conversation], scores[k.User]["d:"+k.Conversation]
		}
		if r < 1 || d < 1 {
			continue // not cached
		}
		out[k] = domain.Position{Read: int64(r) - 1, Delivered: int64(d) - 1}
	}
	return out, nil
}

// PutPositions records positions read from (or just written to) the store.
func (c *Redis) PutPositions(ctx context.Context, pos map[domain.PositionKey]domain.Position) error {
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

// NewestHidden returns the newest seq user deleted for themselves in each
// of convs that the cache knows (0: none).
func (c *Redis) NewestHidden(ctx context.Context, user string, convs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(convs))
	if len(convs) == 0 {
		return out, nil
	}
	scores, err := c.rdb.ZMScore(ctx, hiddenKey(user), convs...).Result()
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("reading the newest hidden seqs of %s: %w", user, err)
	}
	for i, v := range scores {
		if v > 0 { // absent: 0
			out[convs[i]] = int64(v) - 1
		}
	}
	return out, nil
}

// PutNewestHidden records the newest seq user deleted for themselves in
// each conversation of newest (0: none). The seq only grows, and whoever
// writes it (a list that read the store, transfer that hid one) knows its
// value at that moment: the greater of two racing writes is the newer.
func (c *Redis) PutNewestHidden(ctx context.Context, user string, newest map[string]int64) error {
	if len(newest) == 0 {
		return nil
	}
	zs := make([]redis.Z, 0, len(newest))
	for conv, seq := range newest {
		zs = append(zs, redis.Z{Score: float64(seq + 1), Member: conv})
	}
	pipe := c.rdb.Pipeline()
	pipe.ZAddGT(ctx, hiddenKey(user), zs...)
	pipe.PExpire(ctx, hiddenKey(user), TTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("caching the newest hidden seqs of %s: %w", user, err)
	}
	return nil
}

// Hid records that the newest seq user deleted for themselves in conv is
// now seq (transfer, after storing a hide).
func (c *Redis) Hid(ctx context.Context, user, conv string, seq int64) error {
	return c.PutNewestHidden(ctx, user, map[string]int64{conv: seq})
}

// newest decodes copies of one message and returns the most changed (nil if
// none decodes).
func newest(copies []string) *domain.Message {
	var out *domain.Message
	for _, c := range copies {
		var m domain.Message
		if json.Unmarshal([]byte(c), &m) == nil && m.MsgID != "" && (out == nil || m.Msg.Version > out.Msg.Version) {
			out = &m
		}
	}
	return out
}
