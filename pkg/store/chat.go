package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
)

// logDoc is a chat_log document: what makes a message stored once (its _id
// is the msgId) and a seq go to one message (the unique index on
// conversationId and seq). The message itself is in its seq claim (M), so
// it is written once; chat_log documents of earlier versions hold it too.
type logDoc struct {
	MsgID          string `bson:"_id"`
	ConversationID string `bson:"conversationId"`
	ChatType       int    `bson:"chatType"`
	SendID         string `bson:"sendId"`
	Seq            int64  `bson:"seq"`
}

func logOf(m domain.Message) logDoc {
	return logDoc{MsgID: m.MsgID, ConversationID: m.ConversationID, ChatType: m.ChatType, SendID: m.SendID, Seq: m.Seq}
}

// convDoc is a conversation document. Its id, type and members are written
// when its first message is stored; its seq, last message, each sender's
// latest seq and updatedAt form a hint that trails the chat log by at most
// hintMaxLag messages or hintMaxAge (writing it for every message costs a
// write transaction per message, which FerretDB on SQLite cannot sustain).
// Readers bring it up to date with catchUp.
type convDoc struct {
	ID       string          `bson:"_id"`
	ChatType int             `bson:"chatType"`
	Members  []string        `bson:"members,omitempty"`
	Seq      int64           `bson:"seq"`
	LastMsg  *domain.Message `bson:"lastMsg,omitempty"`
	// Sent is each sender's latest seq here: sending implies having read
	// what came before, so it counts as a read position at no extra write.
	Sent map[string]int64 `bson:"sent,omitempty"`
	// Mention is, per user (domain.AllMembers for @all), the newest seq
	// that mentions them.
	Mention   map[string]int64 `bson:"mention,omitempty"`
	UpdatedAt int64            `bson:"updatedAt"`
}

// How far a conversation document's hint may trail its chat log.
const (
	hintMaxLag = 64
	hintMaxAge = 5 * time.Second
)

// hintAge is hintMaxAge spread over [½, 1½)× per conversation, so that
// conversations that started together do not all rewrite their hints at once.
func hintAge(conv string) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(conv))
	return hintMaxAge/2 + time.Duration(uint64(hintMaxAge)*uint64(h.Sum32())>>32)
}

// claimDoc is a seq_claim document: "<conversation>#<seq>" names the message
// holding that seq. It is written after the message (the seq's lock is
// chat_log's unique index), so a claim always leads to a stored message, and
// readers walk a conversation forward from its document's seq by _id, which
// every backend indexes.
type claimDoc struct {
	ID     string `bson:"_id"`
	MsgID  string `bson:"msgId"`
	SendID string `bson:"sendId,omitempty"`
	At     int64  `bson:"at,omitempty"` // unix ms when stored
	// M is the message itself, so that history and sync read a page of a
	// conversation by _id from the claims alone (history.go). Claims of
	// earlier versions lack it; readers then fetch the message by msgId.
	M *compact `bson:"m,omitempty"`
}

func claimID(conv string, seq int64) string { return conv + "#" + strconv.FormatInt(seq, 10) }

// SaveChat stores ev exactly once and returns it with its sequence number.
// fresh is false when ev's msgId was already stored (a redelivery).
func (s *Store) SaveChat(ctx context.Context, ev event.Chat) (domain.Message, bool, error) {
	out, err := s.SaveChats(ctx, []event.Chat{ev})
	if err != nil {
		return domain.Message{}, false, err
	}
	return out[0].Message, out[0].Fresh, nil
}

// maxSeqTries bounds the seq conflicts one SaveChats call resolves.
const maxSeqTries = 10000

// SaveChats stores a batch of chats (one connector batch, in partition order)
// exactly once each, giving every new message the next seq of its
// conversation, and returns one domain.Saved per ev (a redelivered message as it
// was stored, with its seq).
//
// A message is its chat_log document: its _id (the msgId) and the unique
// index on (conversationId, seq) make one insert claim both the message and
// its seq, so concurrent or repeated writers can neither store a message
// twice nor give two messages one seq. New messages get consecutive seqs
// after the highest existing one, and the batch is inserted in order and
// stops at the first refusal, so a seq is only taken when the one before it
// is: no gaps. The common case is two InsertMany (messages, then their
// seq_claim entries) and no reads: each conversation's highest seq is
// remembered from earlier calls (a stale value costs a refused insert, which
// is resolved by reading). Conversation documents are written when new and
// then only as often as the hint rules above require.
//
// SaveChats is Append and then Settle.
func (s *Store) SaveChats(ctx context.Context, evs []event.Chat) ([]domain.Saved, error) {
	out, err := s.Append(ctx, evs)
	if err != nil {
		return nil, err
	}
	if err := s.Settle(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Append is the part of SaveChats that makes the messages durable: once it
// returns they are stored, sequenced and readable (history and sync read the
// claims of a page not sealed yet). What it leaves to Settle only makes
// reads cheaper, so a caller may push the messages while Settle runs.
func (s *Store) Append(ctx context.Context, evs []event.Chat) ([]domain.Saved, error) {
	out := make([]domain.Saved, len(evs))
	firstOf, todo := firstOfEach(evs)
	tops, err := s.knownTops(ctx, evs, todo)
	if err != nil {
		return nil, err
	}
	top := make(map[string]int64, len(tops))
	for c, t := range tops {
		top[c] = t.seq
	}
	if err := s.listNewSingles(ctx, evs, todo, top); err != nil {
		return nil, err
	}

	var reclaim []int // claims to (re)write: missing or stale
	tries := 0
	for len(todo) > 0 {
		docs := make([]any, len(todo))
		claimDocs := make([]any, len(todo))
		seq := make(map[string]int64, len(top))
		now := time.Now().UnixMilli()
		for k, i := range todo {
			ev := evs[i]
			if _, ok := seq[ev.ConversationID]; !ok {
				seq[ev.ConversationID] = top[ev.ConversationID]
			}
			seq[ev.ConversationID]++
			out[i] = domain.Saved{Message: newMessage(ev, seq[ev.ConversationID]), Fresh: true}
			docs[k] = logOf(out[i].Message)
			claimDocs[k] = claimOf(out[i].Message, now)
		}
		res := s.writer.write(ctx, docs, claimDocs)
		failed := res.n // index of the first refused document
		// A claim of a seq this call just took can only be a stale one left
		// by an older version's interrupted attempt: it is replaced below.
		for k, we := range res.claimErrs {
			if !isDupCode(we.Code) {
				return nil, fmt.Errorf("recording the seq claim of %s: %s", out[todo[k]].MsgID, we.Message)
			}
			reclaim = append(reclaim, todo[k])
		}
		var bwe mongo.BulkWriteException
		switch {
		case res.err == nil, errors.Is(res.err, errNotTried):
		case errors.As(res.err, &bwe) && len(bwe.WriteErrors) > 0 && isDupCode(bwe.WriteErrors[0].Code):
		default:
			return nil, fmt.Errorf("inserting %d messages: %w", len(docs), res.err)
		}
		for _, i := range todo[:failed] {
			c := evs[i].ConversationID
			top[c] = max(top[c], out[i].Seq)
		}
		if failed == len(todo) {
			break
		}
		if errors.Is(res.err, errNotTried) {
			todo = todo[failed:] // another caller's refusal stopped the command
			continue
		}
		// The refused document: either its message is stored already (a
		// redelivery) or its seq is taken (top was stale).
		i := todo[failed]
		ev := evs[i]
		storedAt, claimed, err := s.stored(ctx, ev.MsgID)
		switch {
		case err == nil:
			// The same msgId is the same record (the same sender, frame and
			// content, and the time the chat function gave it): the message
			// is the event's, with the seq it got.
			out[i] = domain.Saved{Message: newMessage(ev, storedAt)}
			if !claimed {
				reclaim = append(reclaim, i) // an interrupted attempt stored the message, not its claim
			}
			top[ev.ConversationID] = max(top[ev.ConversationID], storedAt)
			todo = todo[failed+1:]
		case errors.Is(err, mongo.ErrNoDocuments):
			if tries++; tries > maxSeqTries {
				return nil, fmt.Errorf("storing %s: no free seq in %s after %d tries", ev.MsgID, ev.ConversationID, maxSeqTries)
			}
			// out[i].Seq is taken, so every seq up to it is; the claims may
			// tell how far beyond.
			t, err := s.gallop(ctx, ev.ConversationID, out[i].Seq)
			if err != nil {
				return nil, err
			}
			top[ev.ConversationID] = t
			todo = todo[failed:]
		default:
			return nil, fmt.Errorf("looking up message %s: %w", ev.MsgID, err)
		}
	}
	for i, ev := range evs {
		if j := firstOf[ev.MsgID]; j != i {
			out[i] = domain.Saved{Message: out[j].Message, Repeat: true}
		}
	}
	if err := s.writeClaims(ctx, out, reclaim); err != nil {
		return nil, err
	}
	s.tops.remember(top)
	return out, nil
}

// firstOfEach returns the index of each msgId's first event, and the
// indexes of those first events in order: a repeat within a batch is
// answered from its first.
func firstOfEach(evs []event.Chat) (map[string]int, []int) {
	firstOf := make(map[string]int, len(evs))
	var todo []int
	for i, ev := range evs {
		if _, ok := firstOf[ev.MsgID]; !ok {
			firstOf[ev.MsgID] = i
			todo = append(todo, i)
		}
	}
	return firstOf, todo
}

// listNewSingles puts a single chat's first message on both users' lists
// before it is stored: a crash in between leaves a listed conversation
// without messages (the list shows it once it has some), never a
// conversation missing from a list.
func (s *Store) listNewSingles(ctx context.Context, evs []event.Chat, todo []int, top map[string]int64) error {
	listed := map[string]bool{}
	for _, i := range todo {
		ev := evs[i]
		if ev.ChatType != frame.SingleChat || top[ev.ConversationID] != 0 || listed[ev.ConversationID] {
			continue
		}
		listed[ev.ConversationID] = true
		if err := s.AddToLists(ctx, []string{ev.SendID, ev.RecvID}, singleEntry(ev.ConversationID)); err != nil {
			return err
		}
	}
	return nil
}

// stored returns the seq of a message already in chat_log, and whether its
// seq claim exists; mongo.ErrNoDocuments when the message is not stored.
func (s *Store) stored(ctx context.Context, msgID string) (seq int64, claimed bool, err error) {
	var existing logDoc
	err = s.db.Collection(ChatLog).FindOne(ctx, bson.D{{Key: "_id", Value: msgID}},
		options.FindOne().SetProjection(bson.D{{Key: "conversationId", Value: 1}, {Key: "seq", Value: 1}})).Decode(&existing)
	if err != nil {
		return 0, false, err
	}
	var cl claimDoc
	err = s.claimsDB.Collection(SeqClaim).FindOne(ctx, bson.D{{Key: "_id", Value: claimID(existing.ConversationID, existing.Seq)}}).Decode(&cl)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return 0, false, fmt.Errorf("reading claim of %s: %w", msgID, err)
	}
	return existing.Seq, cl.MsgID != "", nil
}

// Settle writes what Append leaves for later: the pages saved completes and
// the conversation documents' hints (see convDoc). Both only move forward,
// so Settle calls of successive batches may overlap.
func (s *Store) Settle(ctx context.Context, saved []domain.Saved) error {
	stored := make([]domain.Message, 0, len(saved))
	for _, o := range saved {
		if !o.Repeat {
			stored = append(stored, o.Message)
		}
	}
	if err := s.sealPages(ctx, stored); err != nil {
		return err
	}
	return s.writeHints(ctx, saved)
}

func newMessage(ev event.Chat, seq int64) domain.Message {
	msg := frame.Msg{MType: ev.Msg.MType, Content: ev.Msg.Content, Mentions: ev.Msg.Mentions, MentionAll: ev.Msg.MentionAll}
	if q := ev.Msg.Quote; q != nil {
		msg.Quote = &frame.Quote{MsgID: q.MsgID, Seq: q.Seq} // the preview is made when read
	}
	return domain.Message{
		MsgID: ev.MsgID, ConversationID: ev.ConversationID, ChatType: ev.ChatType,
		SendID: ev.SendID, RecvID: ev.RecvID, SendTime: ev.SendTime, Seq: seq,
		Msg: msg, ClientFrameID: ev.ClientFrameID,
	}
}

func claimOf(m domain.Message, now int64) claimDoc {
	return claimDoc{ID: claimID(m.ConversationID, m.Seq), MsgID: m.MsgID, SendID: m.SendID, At: now, M: (*compact)(&m)}
}

// writeClaims writes the missing seq_claim entries of redelivered messages
// and replaces stale ones (reclaim); the claims of stored messages are
// written with them (groupWriter).
func (s *Store) writeClaims(ctx context.Context, out []domain.Saved, reclaim []int) error {
	claims := s.claimsDB.Collection(SeqClaim)
	now := time.Now().UnixMilli()
	for _, i := range reclaim {
		c := claimOf(out[i].Message, now)
		s.claimsMu.Lock()
		_, err := claims.UpdateOne(ctx, bson.D{{Key: "_id", Value: c.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "msgId", Value: c.MsgID}, {Key: "sendId", Value: c.SendID},
				{Key: "at", Value: c.At}, {Key: "m", Value: c.M}}}}, options.Update().SetUpsert(true))
		s.claimsMu.Unlock()
		if err != nil {
			return fmt.Errorf("recording the claim of %s: %w", out[i].MsgID, err)
		}
	}
	return nil
}

// writeHints writes the conversation documents the hint rules call for: a
// new conversation's at once (it lists the conversation), others when their
// hint trails by hintMaxLag messages or hintMaxAge. Fields only move forward.
func (s *Store) writeHints(ctx context.Context, out []domain.Saved) error {
	type agg struct {
		last    *domain.Message // highest seq stored by this call
		sent    map[string]int64
		mention map[string]int64
	}
	byConv := map[string]*agg{}
	var order []string
	for i := range out {
		if !out[i].Fresh {
			continue
		}
		m := &out[i].Message
		a := byConv[m.ConversationID]
		if a == nil {
			a = &agg{sent: map[string]int64{}, mention: map[string]int64{}}
			byConv[m.ConversationID] = a
			order = append(order, m.ConversationID)
		}
		if a.last == nil || m.Seq > a.last.Seq {
			a.last = m
		}
		if safeField(m.SendID) && m.Seq > a.sent[m.SendID] {
			a.sent[m.SendID] = m.Seq
		}
		for _, u := range m.Mentions() {
			if safeField(u) {
				a.mention[u] = max(a.mention[u], m.Seq)
			}
		}
	}
	now := time.Now()
	convs := s.db.Collection(Conversation)
	for _, id := range order {
		a := byConv[id]
		t, _ := s.tops.get(id)
		if t.hint > 0 && a.last.Seq-t.hint < hintMaxLag && now.Sub(t.hintAt) < hintAge(id) {
			continue
		}
		maxes := bson.D{{Key: "seq", Value: a.last.Seq}, {Key: "updatedAt", Value: now.UnixMilli()}}
		for u, seq := range a.sent {
			maxes = append(maxes, bson.E{Key: "sent." + u, Value: seq})
		}
		for u, seq := range a.mention {
			maxes = append(maxes, bson.E{Key: "mention." + u, Value: seq})
		}
		last := *a.last
		onInsert := bson.D{{Key: "chatType", Value: last.ChatType}}
		if last.ChatType == frame.SingleChat {
			onInsert = append(onInsert, bson.E{Key: "members", Value: []string{last.SendID, last.RecvID}})
		}
		// One update each: FerretDB 1.24 on PostgreSQL hangs on an update
		// command of several upserts (a bulk write of them never returns).
		s.writeMu.Lock()
		_, err := convs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
			bson.D{{Key: "$max", Value: maxes}, {Key: "$set", Value: bson.D{{Key: "lastMsg", Value: last}}},
				{Key: "$setOnInsert", Value: onInsert}},
			options.Update().SetUpsert(true))
		s.writeMu.Unlock()
		if err != nil {
			return fmt.Errorf("updating conversation %s: %w", id, err)
		}
		s.tops.hinted(id, last.Seq, now)
	}
	return nil
}

// catchUp brings a conversation document read from the store up to date:
// it follows seq_claim from its seq, advancing seq, senders' seqs and
// updatedAt, and with withLast sets the last message. It returns whether d
// changed.
func (s *Store) catchUp(ctx context.Context, d *convDoc, withLast bool) (bool, error) {
	claims := s.claimsDB.Collection(SeqClaim)
	var last *claimDoc
	for {
		var c claimDoc
		err := claims.FindOne(ctx, bson.D{{Key: "_id", Value: claimID(d.ID, d.Seq+1)}}).Decode(&c)
		if errors.Is(err, mongo.ErrNoDocuments) {
			break
		}
		if err != nil {
			return false, fmt.Errorf("reading claims of %s: %w", d.ID, err)
		}
		d.Seq++
		if safeField(c.SendID) {
			if d.Sent == nil {
				d.Sent = map[string]int64{}
			}
			d.Sent[c.SendID] = d.Seq
		}
		d.UpdatedAt = max(d.UpdatedAt, c.At)
		if c.M != nil {
			for _, u := range (*domain.Message)(c.M).Mentions() {
				if d.Mention == nil {
					d.Mention = map[string]int64{}
				}
				d.Mention[u] = d.Seq
			}
		}
		last = &c
	}
	if !withLast || d.Seq == 0 || (last == nil && d.LastMsg != nil && d.LastMsg.Seq == d.Seq) {
		return last != nil, nil
	}
	if last != nil && last.M != nil {
		d.LastMsg = (*domain.Message)(last.M)
		return true, nil
	}
	id := ""
	if last != nil {
		id = last.MsgID
	} else {
		// The hint's last message is older than its seq (writers racing).
		var c claimDoc
		err := claims.FindOne(ctx, bson.D{{Key: "_id", Value: claimID(d.ID, d.Seq)}}).Decode(&c)
		if err != nil {
			return false, nil // no claim to follow (older data): keep the hint
		}
		if c.M != nil {
			d.LastMsg = (*domain.Message)(c.M)
			return true, nil
		}
		id = c.MsgID
	}
	var m domain.Message
	if err := s.db.Collection(ChatLog).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return last != nil, nil
		}
		return false, fmt.Errorf("reading the last message of %s: %w", d.ID, err)
	}
	d.LastMsg = &m
	return true, nil
}

// topInfo is what knownTops knows of a conversation: its highest existing
// seq, and its document's seq (the hint) with when that was written or read.
type topInfo struct {
	seq    int64
	hint   int64
	hintAt time.Time
}

// knownTops returns the highest existing seq of every conversation in
// evs[todo]: remembered, or read from the conversation document and the
// claims after it.
func (s *Store) knownTops(ctx context.Context, evs []event.Chat, todo []int) (map[string]topInfo, error) {
	tops := map[string]topInfo{}
	var missing []string
	for _, i := range todo {
		c := evs[i].ConversationID
		if _, ok := tops[c]; ok {
			continue
		}
		if t, ok := s.tops.get(c); ok {
			tops[c] = t
		} else {
			tops[c] = topInfo{}
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return tops, nil
	}
	found := make([]topInfo, len(missing))
	err := parallel(len(missing), func(k int) error {
		d := convDoc{ID: missing[k]}
		err := s.db.Collection(Conversation).FindOne(ctx, bson.D{{Key: "_id", Value: missing[k]}},
			options.FindOne().SetProjection(bson.D{{Key: "seq", Value: 1}})).Decode(&d)
		if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return fmt.Errorf("reading conversation %s: %w", missing[k], err)
		}
		found[k] = topInfo{hint: d.Seq, hintAt: time.Now()}
		top, err := s.gallop(ctx, missing[k], d.Seq)
		if err != nil {
			return err
		}
		found[k].seq = top
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k, c := range missing {
		tops[c] = found[k]
		s.tops.hinted(c, found[k].hint, found[k].hintAt)
	}
	return tops, nil
}

// storeParallelism bounds the concurrent commands of one call: each holds up
// to two of FerretDB's pooled SQLite connections, and the pool (100) is
// shared by every caller.
const storeParallelism = 4

// readParallelism bounds the concurrent lookups of one read of many
// documents (a page of history).
const readParallelism = 8

// parallel runs do(0..n-1), storeParallelism at a time, and returns the
// errors joined.
func parallel(n int, do func(k int) error) error { return parallelN(n, storeParallelism, do) }

// parallelN runs do(0..n-1), at most p at a time, and returns the errors
// joined.
func parallelN(n, p int, do func(k int) error) error {
	if n == 1 {
		return do(0)
	}
	errs := make([]error, n)
	sem := make(chan struct{}, p)
	var wg sync.WaitGroup
	for k := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[k] = do(k)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// topCache remembers, per conversation, the highest seq this process stored
// or saw (seqs only grow, so it is never above the real one) and the hint
// last written or read.
type topCache struct {
	mu sync.Mutex
	m  map[string]topInfo
}

const topCacheMax = 100_000

func (t *topCache) get(conv string) (topInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.m[conv]
	return v, ok
}

func (t *topCache) remember(tops map[string]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.room(len(tops))
	for c, v := range tops {
		e := t.m[c]
		e.seq = max(e.seq, v)
		t.m[c] = e
	}
}

func (t *topCache) hinted(conv string, seq int64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.room(1)
	e := t.m[conv]
	e.seq = max(e.seq, seq)
	e.hint, e.hintAt = max(e.hint, seq), at
	t.m[conv] = e
}

func (t *topCache) room(n int) {
	if t.m == nil || len(t.m)+n > topCacheMax {
		t.m = make(map[string]topInfo, n)
	}
}

func isDupCode(code int) bool { return code == 11000 || code == 11001 || code == 12582 }

// safeField reports whether a user id can be a document field name (ids
// from our own registration always can; a token's subject might not).
func safeField(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".$") && !strings.HasPrefix(s, "$")
}
