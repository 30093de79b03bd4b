package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
)

// Scenario 6, data growth: reads must cost what they return, not what the
// store holds. A loader fills the store to each size of -growth-sizes, and
// at each size the reads clients make are timed through the gateway's HTTP
// API (gateway → conversation function → store): history (the newest page
// and a deep one) of a large group and of a small chat, sync from seq 0 and
// from near the end, and the list of a user with 500 conversations, cold
// (the list cache empty) and warm; then single-chat latency at 1,000 msg/s
// against the grown store.
//
// The loader writes through the store's SaveChats in batches of 1,000: the
// call the transfer function makes for a connector batch, so the documents
// are the ones the normal path writes (Kafka and the push are skipped). The
// messages go to: the lister's 500 single chats (10 each), one group (a
// tenth of each size: 100k messages at 1M), and 2,000 other conversations
// of uneven sizes (a few hot ones take a sixth of the rest).

const (
	growthListed   = 500  // conversations of the lister
	growthPerChat  = 10   // messages in each of them
	growthOthers   = 2000 // other conversations
	growthPage     = 50
	growthSamples  = 40 // timed requests per read and size
	growthLoadSize = 1000
)

type growth struct {
	sys    *system
	lister string
	member string // a member of the group (reads it)
	group  string
	small  string // one of the lister's chats
	loaded int
	listed bool // the lister's chats are stored
	seqs   map[string]int64
	hc     *http.Client
}

func (sys *system) growth(ctx context.Context) error {
	g := &growth{sys: sys, lister: "lister-" + sys.run, member: "gmember-" + sys.run, group: "g-growth-" + sys.run,
		seqs: map[string]int64{}, hc: &http.Client{Timeout: 30 * time.Second}}
	g.small = frame.SingleConversationID(g.lister, fmt.Sprintf("lp0-%s", sys.run))
	if err := sys.store.CreateGroup(ctx, domain.Group{ID: g.group, Name: "growth", Owner: g.member, Members: []string{g.lister}}); err != nil {
		return fmt.Errorf("creating the group: %w", err)
	}
	t := sys.rep.table("6. Data growth (reads through the HTTP API, p50 / p99 of "+fmt.Sprint(growthSamples)+" requests)",
		"stored messages", "load rate", "history newest (group)", "history deep (group)", "history newest (small chat)",
		"sync from 0", "sync near the end", "list of 500, cold", "list of 500, warm", "chat at 1,000/s p50 / p99", "disk per message")
	tr := newChatTracker()
	pairs, err := sys.openPairs(ctx, "g", 100, tr)
	if err != nil {
		return err
	}
	defer closePairs(pairs)
	sys.chatStep(ctx, pairs, tr, "gw", float64(len(pairs)), time.Second) // warm-up
	base := sys.chatStep(ctx, pairs, tr, "g0-", 1000, 5*time.Second)
	t.add("empty", "", "", "", "", "", "", "", "", fmt.Sprintf("%s / %s", dur(base.lat.P50), dur(base.lat.P99)), "")

	for i, size := range sys.set.growthSizes {
		if ctx.Err() != nil {
			break
		}
		start, before := time.Now(), g.loaded
		if err := g.load(ctx, size); err != nil {
			return err
		}
		rate := float64(g.loaded-before) / time.Since(start).Seconds()
		row := []any{g.loaded, fmt.Sprintf("%.0f msg/s", rate)}
		top := g.seqs[g.group]
		for _, r := range []struct {
			user string
			body map[string]any
		}{
			{g.member, map[string]any{"action": "history", "conversationId": g.group, "limit": growthPage}},
			{g.member, map[string]any{"action": "history", "conversationId": g.group, "before": top / 2, "limit": growthPage}},
			{g.lister, map[string]any{"action": "history", "conversationId": g.small, "limit": growthPage}},
			{g.member, map[string]any{"action": "sync", "seqs": map[string]int64{}, "limit": growthPage}},
			{g.member, map[string]any{"action": "sync", "seqs": map[string]int64{g.group: top - 10}, "limit": growthPage}},
		} {
			h, err := g.time(ctx, r.user, r.body, growthSamples)
			if err != nil {
				return err
			}
			row = append(row, pair(h))
		}
		if err := g.flushListCache(ctx); err != nil {
			return err
		}
		cold, err := g.time(ctx, g.lister, map[string]any{"action": "list"}, 1)
		if err != nil {
			return err
		}
		warm, err := g.time(ctx, g.lister, map[string]any{"action": "list"}, growthSamples)
		if err != nil {
			return err
		}
		chat := sys.chatStep(ctx, pairs, tr, fmt.Sprintf("g%d-", i+1), 1000, 5*time.Second)
		row = append(row, dur(cold.P50), pair(warm), fmt.Sprintf("%s / %s", dur(chat.lat.P50), dur(chat.lat.P99)),
			g.diskPerMessage(g.loaded+int(tr.allSent.Load())))
		t.add(row...)
	}
	t.note("Loader: the store's SaveChats in batches of %d, as the transfer function stores a connector batch (Kafka and pushes skipped; the documents are the same). Single chat: %d pairs at 1,000 msg/s for 5 s after each load.", growthLoadSize, len(pairs))
	t.note("History and sync pages of %d messages; \"deep\" is the page before the group's middle seq; sync near the end asks for the last 10 of the group. The list cache is flushed before the cold list.", growthPage)
	return nil
}

func pair(l latency) string { return fmt.Sprintf("%s / %s", dur(l.P50), dur(l.P99)) }

// load stores messages until the store holds size of this scenario's.
func (g *growth) load(ctx context.Context, size int) error {
	var batch []event.Chat
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := g.sys.store.SaveChats(ctx, batch); err != nil {
			return fmt.Errorf("loading: %w", err)
		}
		batch = batch[:0]
		return nil
	}
	add := func(conv string, chatType int, from, to string) error {
		g.seqs[conv]++
		g.loaded++
		batch = append(batch, event.Chat{MsgID: fmt.Sprintf("%032x", uint64(g.loaded)<<20|uint64(time.Now().UnixNano()&0xfffff)),
			ConversationID: conv, ChatType: chatType, SendID: from, RecvID: to, SendTime: time.Now().UnixMilli(),
			Msg: frame.Msg{Content: fmt.Sprintf("growth message %d, long enough to look like a chat line", g.loaded)}})
		if len(batch) == growthLoadSize {
			return flush()
		}
		return nil
	}
	// The lister's chats first (once), then a tenth to the group and the
	// rest to the others.
	for i := 0; !g.listed && i < growthListed*growthPerChat; i++ {
		peer := fmt.Sprintf("lp%d-%s", i%growthListed, g.sys.run)
		conv := frame.SingleConversationID(g.lister, peer)
		from, to := g.lister, peer
		if i%2 == 1 {
			from, to = peer, g.lister
		}
		if err := add(conv, frame.SingleChat, from, to); err != nil {
			return err
		}
	}
	g.listed = true
	for g.loaded < size && ctx.Err() == nil {
		if g.loaded%10 == 0 {
			if err := add(g.group, frame.GroupChat, g.member, g.group); err != nil {
				return err
			}
			continue
		}
		k := g.loaded % growthOthers
		if g.loaded%6 == 0 {
			k = g.loaded % 10 // the hot ones
		}
		a, b := fmt.Sprintf("ox%d-%s", k, g.sys.run), fmt.Sprintf("oy%d-%s", k, g.sys.run)
		if err := add(frame.SingleConversationID(a, b), frame.SingleChat, a, b); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return ctx.Err()
}

// time makes n API calls of the conversation function as user and returns
// their latency.
func (g *growth) time(ctx context.Context, user string, body map[string]any, n int) (latency, error) {
	tok, err := g.sys.iss.Issue(user)
	if err != nil {
		return latency{}, err
	}
	b, _ := json.Marshal(body)
	url := "http://" + g.sys.stack.Gateways()[0].Addr() + "/api/conversation"
	h := &hist{}
	for range n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok)
		t0 := time.Now()
		res, err := g.hc.Do(req)
		if err != nil {
			return latency{}, err
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		h.record(time.Since(t0))
		if res.StatusCode != http.StatusOK {
			return latency{}, fmt.Errorf("%v: %d %s", body, res.StatusCode, out)
		}
	}
	return h.summary(), nil
}

// flushListCache empties the list cache (package listcache's keys).
func (g *growth) flushListCache(ctx context.Context) error {
	rdb := g.sys.stack.Redis()
	for _, pattern := range []string{"ec:sum:*", "ec:pos:*"} {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
	}
	return nil
}

// diskPerMessage is the embedded store's size on disk over the messages it
// holds ("n/a" for an external store).
func (g *growth) diskPerMessage(msgs int) string {
	if os.Getenv("MONGO_URI") != "" || os.Getenv("FERRETDB_POSTGRESQL_URL") != "" {
		return "n/a (external store)"
	}
	var total int64
	_ = filepath.WalkDir(filepath.Join(g.sys.tmp, "state", "mongo"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return fmt.Sprintf("%.0f B", float64(total)/float64(msgs))
}
