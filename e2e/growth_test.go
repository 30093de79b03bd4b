package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	mongoevent "go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/conversation"
	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/listcache"
	"easychat/pkg/store"
)

// readLog records the reads a store sends: every find's filter. A read
// path costs what it returns if each of its finds is a point lookup by _id
// (which every backend answers from an index; FerretDB on SQLite answers
// nothing else from one) and their number does not grow with the store.
type readLog struct {
	mu    sync.Mutex
	on    bool
	found []bson.Raw
	other []string // commands other than find and the driver's own
}

func (r *readLog) monitor() *mongoevent.CommandMonitor {
	return &mongoevent.CommandMonitor{Started: func(_ context.Context, e *mongoevent.CommandStartedEvent) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.on {
			return
		}
		switch e.CommandName {
		case "find":
			f, _ := e.Command.Lookup("filter").DocumentOK()
			r.found = append(r.found, f)
		case "endSessions", "ping", "hello", "isMaster", "killCursors":
		default:
			r.other = append(r.other, e.CommandName)
		}
	}}
}

// measure runs f and returns the number of finds it sent, failing unless
// each is a point lookup by _id and nothing else was sent.
func (r *readLog) measure(t *testing.T, what string, f func()) int {
	t.Helper()
	n := r.finds(f)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.other) > 0 {
		t.Fatalf("%s sent %v besides its finds", what, r.other)
	}
	for _, filter := range r.found {
		elems, _ := filter.Elements()
		if len(elems) != 1 || elems[0].Key() != "_id" || elems[0].Value().Type != bson.TypeString {
			t.Fatalf("%s sent a find that is not a point lookup by _id: %v", what, filter)
		}
	}
	return n
}

// finds runs f and returns the number of finds it sent, whatever else it
// sent (writes are not reads).
func (r *readLog) finds(f func()) int {
	r.mu.Lock()
	r.on, r.found, r.other = true, nil, nil
	r.mu.Unlock()
	f()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return len(r.found)
}

// openCounted opens the test store with every command it sends recorded.
func openCounted(t *testing.T, ctx context.Context) (*store.Store, *readLog) {
	t.Helper()
	reads := &readLog{}
	st, err := store.Open(ctx, testMongoURI(t), "e2e", options.Client().SetMonitor(reads.monitor()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	if err := st.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	return st, reads
}

// fill stores n messages spread over convs conversations of strangers, in
// batches as the transfer function writes them.
func fill(t *testing.T, ctx context.Context, st *store.Store, tag string, convs, n int) {
	t.Helper()
	const batch = 500
	for done := 0; done < n; done += batch {
		evs := make([]event.Chat, 0, batch)
		for i := done; i < min(n, done+batch); i++ {
			a, b := fmt.Sprintf("%s-x%d", tag, i%convs), fmt.Sprintf("%s-y%d", tag, i%convs)
			evs = append(evs, event.Chat{MsgID: fmt.Sprintf("%s-n%07d", tag, i), ConversationID: a + "_" + b,
				ChatType: frame.SingleChat, SendID: a, RecvID: b, SendTime: int64(i), Msg: frame.Msg{Content: "noise"}})
		}
		if _, err := st.SaveChats(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
}

// History, sync and the conversation list read what they return, and no
// more as the store grows: the same reads, counted, before and after the
// store holds many more messages of other conversations.
func TestReadsDoNotGrowWithTheStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, reads := openCounted(t, ctx)
	var err error
	tag := strings.ToLower(uid(t, "grow"))
	me, peer := tag+"-me", tag+"-peer"
	conv := frame.SingleConversationID(me, peer)
	const n = 300
	evs := make([]event.Chat, n)
	for i := range evs {
		evs[i] = event.Chat{MsgID: fmt.Sprintf("%s-m%04d", tag, i), ConversationID: conv, ChatType: frame.SingleChat,
			SendID: []string{me, peer}[i%2], RecvID: []string{peer, me}[i%2], SendTime: int64(i), Msg: frame.Msg{Content: fmt.Sprint(i)}}
	}
	for i := 0; i < n; i += 50 {
		if _, err := st.SaveChats(ctx, evs[i:i+50]); err != nil {
			t.Fatal(err)
		}
	}

	type cost struct{ history, deep, syncAll, syncEnd int }
	run := func() cost {
		var c cost
		var ms []domain.Message
		c.history = reads.measure(t, "history", func() { ms, err = st.History(ctx, conv, 0, 50) })
		if err != nil || len(ms) != 50 || ms[0].Seq != n || ms[49].Seq != n-49 {
			t.Fatalf("history: %d messages (%v)", len(ms), err)
		}
		c.deep = reads.measure(t, "deep history", func() { ms, err = st.History(ctx, conv, 60, 50) })
		if err != nil || len(ms) != 50 || ms[0].Seq != 59 || ms[49].Seq != 10 {
			t.Fatalf("deep history: %d messages (%v)", len(ms), err)
		}
		c.syncAll = reads.measure(t, "sync from 0", func() { ms, err = st.Messages(ctx, conv, 0, 50) })
		if err != nil || len(ms) != 50 || ms[0].Seq != 1 {
			t.Fatalf("sync from 0: %d messages (%v)", len(ms), err)
		}
		c.syncEnd = reads.measure(t, "sync near the end", func() { ms, err = st.Messages(ctx, conv, n-5, 50) })
		if err != nil || len(ms) != 5 || ms[4].Seq != n {
			t.Fatalf("sync near the end: %d messages (%v)", len(ms), err)
		}
		return c
	}
	small := run()
	fill(t, ctx, st, tag, 50, 5000)
	large := run()
	t.Logf("finds per read, before and after 5,000 more messages: %+v, %+v", small, large)
	if large.history > small.history || large.deep > small.deep || large.syncAll > small.syncAll || large.syncEnd > small.syncEnd {
		t.Fatalf("reads grew with the store: %+v before, %+v after", small, large)
	}
	// A page costs a lookup per message and a few to find the newest seq.
	for name, k := range map[string]int{"history": large.history, "deep": large.deep, "sync from 0": large.syncAll} {
		if k > 50+20 {
			t.Errorf("%s: %d finds for a page of 50", name, k)
		}
	}
}

// The conversation list reads the user's list and, per conversation, its
// summary and the positions it shows, each by _id; with the list cache warm
// it reads only the user's list from the store. Neither grows with the
// store.
func TestListReadsDoNotGrowWithTheStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, reads := openCounted(t, ctx)
	tag := strings.ToLower(uid(t, "l"))
	me := tag + "-me"
	const peers = 30
	for i := range peers {
		peer := fmt.Sprintf("%s-p%02d", tag, i)
		conv := frame.SingleConversationID(me, peer)
		evs := []event.Chat{
			{MsgID: fmt.Sprintf("%s-%d-a", tag, i), ConversationID: conv, ChatType: frame.SingleChat, SendID: me, RecvID: peer, Msg: frame.Msg{Content: "hi"}},
			{MsgID: fmt.Sprintf("%s-%d-b", tag, i), ConversationID: conv, ChatType: frame.SingleChat, SendID: peer, RecvID: me, Msg: frame.Msg{Content: "yo"}},
		}
		if _, err := st.SaveChats(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if err := st.CreateGroup(ctx, domain.Group{ID: fmt.Sprintf("g-%s-%d", tag, i), Name: "team", Owner: me}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(s *conversation.Service) []domain.ConversationState {
		res, err := s.Handle(ctx, me, "", []byte(`{"action":"list"}`))
		if err != nil {
			t.Fatal(err)
		}
		cs := res.(map[string]any)["conversations"].([]domain.ConversationState)
		if len(cs) != peers+2 {
			t.Fatalf("listed %d conversations, want %d", len(cs), peers+2)
		}
		for _, c := range cs {
			if c.ChatType == frame.SingleChat && (c.Seq != 2 || c.Unread != 1 || c.PeerReadSeq != 2) {
				t.Fatalf("listed %+v", c)
			}
		}
		return cs
	}
	// The first read of a list that trails its log writes it back (a one-off
	// write, not measured here).
	if _, err := st.ListOf(ctx, me); err != nil {
		t.Fatal(err)
	}
	bare := &conversation.Service{Store: st}
	cached := &conversation.Service{Store: st, Cache: listcache.New(testRedis(t))}
	cost := func() (int, int) {
		n := reads.measure(t, "list", func() { list(bare) })
		list(cached) // warms the cache
		return n, reads.measure(t, "cached list", func() { list(cached) })
	}
	smallBare, smallCached := cost()
	fill(t, ctx, st, tag, 50, 5000)
	largeBare, largeCached := cost()
	t.Logf("finds per list of %d conversations, before and after 5,000 more messages: %d, %d; with the cache warm: %d, %d",
		peers+2, smallBare, largeBare, smallCached, largeCached)
	if largeBare > smallBare || largeCached > smallCached {
		t.Fatalf("list reads grew with the store: %d→%d, cached %d→%d", smallBare, largeBare, smallCached, largeCached)
	}
	if largeBare > 6*(peers+2)+10 || largeCached > 4 {
		t.Fatalf("list of %d conversations: %d finds, %d with the cache warm", peers+2, largeBare, largeCached)
	}
}

// A hot conversation's batches are written without reading the store back:
// once its newest seq is known, a batch of many pages seals them from the
// batch itself, and every page is there to read.
func TestHotConversationBatchesWriteWithoutReads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, reads := openCounted(t, ctx)
	tag := strings.ToLower(uid(t, "hot"))
	me, peer := tag+"-me", tag+"-peer"
	conv := frame.SingleConversationID(me, peer)
	batch := func(from, n int) []event.Chat {
		evs := make([]event.Chat, n)
		for i := range evs {
			evs[i] = event.Chat{MsgID: fmt.Sprintf("%s-m%04d", tag, from+i), ConversationID: conv, ChatType: frame.SingleChat,
				SendID: me, RecvID: peer, SendTime: int64(from + i), Msg: frame.Msg{Content: fmt.Sprint(from + i)}}
		}
		return evs
	}
	if _, err := st.SaveChats(ctx, batch(0, 5)); err != nil { // learns the conversation's newest seq
		t.Fatal(err)
	}
	var err error
	finds := reads.finds(func() { _, err = st.SaveChats(ctx, batch(5, 200)) })
	if err != nil {
		t.Fatal(err)
	}
	if finds != 0 {
		t.Fatalf("a batch of 200 messages of a known conversation sent %d finds, want 0", finds)
	}
	// 205 messages: pages 0…11 are sealed and history reads them.
	ms, err := st.History(ctx, conv, 0, 205)
	if err != nil || len(ms) != 205 {
		t.Fatalf("history: %d messages (%v)", len(ms), err)
	}
	for i, m := range ms {
		if m.Seq != int64(205-i) || m.Msg.Content != fmt.Sprint(204-i) {
			t.Fatalf("history[%d]: seq %d %q", i, m.Seq, m.Msg.Content)
		}
	}
}
