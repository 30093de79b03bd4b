package transfer

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"

	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/push"
	"easychat/pkg/store"
)

// memStore is a fake of the store's transfer methods (pure logic only; the
// real store is tested against a Mongo-compatible server in e2e).
type memStore struct {
	msgs   map[string]store.Message
	seq    map[string]int64
	groups map[string]store.Group
}

func (m *memStore) SaveChats(_ context.Context, evs []event.Chat) ([]store.Saved, error) {
	out := make([]store.Saved, len(evs))
	inBatch := map[string]bool{}
	for i, ev := range evs {
		if x, ok := m.msgs[ev.MsgID]; ok {
			out[i] = store.Saved{Message: x, Repeat: inBatch[ev.MsgID]}
			inBatch[ev.MsgID] = true
			continue
		}
		m.seq[ev.ConversationID]++
		x := store.Message{MsgID: ev.MsgID, ConversationID: ev.ConversationID, ChatType: ev.ChatType, SendID: ev.SendID,
			RecvID: ev.RecvID, Seq: m.seq[ev.ConversationID], Msg: ev.Msg}
		m.msgs[ev.MsgID] = x
		inBatch[ev.MsgID] = true
		out[i] = store.Saved{Message: x, Fresh: true}
	}
	return out, nil
}

func (m *memStore) Group(_ context.Context, id string) (store.Group, error) { return m.groups[id], nil }

type routes map[string]string // user → gateway address

func (r routes) Lookup(_ context.Context, users []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, u := range users {
		if a, ok := r[u]; ok {
			out[a] = append(out[a], u)
		}
	}
	return out, nil
}

// pusher records batches per gateway; gateways are pushed to in parallel.
type pusher struct {
	mu   sync.Mutex
	sent map[string][]event.Push
}

func (p *pusher) Send(_ context.Context, addr string, b event.Push) (push.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent[addr] = append(p.sent[addr], b)
	return push.Result{}, nil
}

func TestHandleStoresOncePushesRecipientsBatchedPerGateway(t *testing.T) {
	st := &memStore{msgs: map[string]store.Message{}, seq: map[string]int64{},
		groups: map[string]store.Group{"g1": {ID: "g1", Members: []string{"a", "b", "c", "d"}}}}
	p := &pusher{sent: map[string][]event.Push{}}
	s := &Service{Store: st, Routes: routes{"a": "gw1", "b": "gw1", "c": "gw2"}, Push: p,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	evs, err := Decode([]byte(`[
	 {"msgId":"m1","conversationId":"a_b","chatType":2,"sendId":"a","recvId":"b","msg":{"content":"one"}},
	 {"msgId":"m2","conversationId":"g1","chatType":1,"sendId":"a","recvId":"g1","msg":{"content":"two"}},
	 {"msgId":"m3","conversationId":"a_b","chatType":2,"sendId":"a","recvId":"b","msg":{"content":"three"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	// gw1 holds a and b: one call with m1, m2, m3 in order; gw2 holds c: m2
	// only; d is offline. The sender a is pushed its own messages too, for its
	// other devices (the gateway skips the socket a message came from).
	if len(p.sent["gw1"]) != 1 || len(p.sent["gw2"]) != 1 || len(p.sent) != 2 {
		t.Fatalf("push calls: %v", p.sent)
	}
	var got []string
	for _, it := range p.sent["gw1"][0].Items {
		var d frame.Push
		_ = json.Unmarshal(it.Frame.Data, &d)
		got = append(got, d.Msg.Content+":"+strings.Join(it.Users, ",")+":"+d.ConversationID)
		if it.Frame.Method != frame.MethodPush || it.Frame.FormID != "a" {
			t.Fatalf("frame %+v", it.Frame)
		}
	}
	if strings.Join(got, " ") != "one:b,a:a_b two:a,b:g1 three:b,a:a_b" {
		t.Fatalf("gw1 items: %v", got)
	}
	if it := p.sent["gw2"][0].Items; len(it) != 1 || it[0].Users[0] != "c" {
		t.Fatalf("gw2 items: %+v", it)
	}
	if st.msgs["m3"].Seq != 2 || st.msgs["m2"].Seq != 1 {
		t.Fatalf("seqs: %+v", st.msgs)
	}

	// A redelivery stores nothing new and pushes the same messages, with the
	// same seqs, again: the earlier attempt may have stopped before its push
	// (gateways drop seqs a socket already has).
	if err := s.Handle(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if len(p.sent["gw1"]) != 2 {
		t.Fatalf("redelivery: %d push calls to gw1, want 2", len(p.sent["gw1"]))
	}
	first, again := p.sent["gw1"][0].Items, p.sent["gw1"][1].Items
	for i := range first {
		if string(first[i].Frame.Data) != string(again[i].Frame.Data) {
			t.Fatalf("redelivered push %d: %s, first %s", i, again[i].Frame.Data, first[i].Frame.Data)
		}
	}
	// A record repeated within a batch is pushed once.
	dup, err := Decode([]byte(`[
	 {"msgId":"m4","conversationId":"a_b","chatType":2,"sendId":"a","recvId":"b","msg":{"content":"four"}},
	 {"msgId":"m4","conversationId":"a_b","chatType":2,"sendId":"a","recvId":"b","msg":{"content":"four"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(context.Background(), dup); err != nil {
		t.Fatal(err)
	}
	if it := p.sent["gw1"][2].Items; len(it) != 1 || st.msgs["m4"].Seq != 3 {
		t.Fatalf("repeated record: %d items pushed, seq %d", len(it), st.msgs["m4"].Seq)
	}
	ids := make([]string, 0, len(st.msgs))
	for id := range st.msgs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if strings.Join(ids, ",") != "m1,m2,m3,m4" {
		t.Fatalf("stored %v", ids)
	}
}

func TestDecodeRejectsRecordsThatCanNeverBeProcessed(t *testing.T) {
	for _, body := range []string{
		`not json`,
		`{"msgId":"m1"}`,
		`[{"msgId":"m1","conversationId":"a_b","chatType":5,"sendId":"a","recvId":"b"}]`,
	} {
		if _, err := Decode([]byte(body)); err == nil {
			t.Errorf("Decode(%s) accepted it", body)
		}
	}
}
