package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"

	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/push"
	"easychat/pkg/reject"
)

// memStore is a fake of the store's transfer methods (pure logic only; the
// real store is tested against a Mongo-compatible server in e2e).
type memStore struct {
	msgs    map[string]domain.Message
	seq     map[string]int64
	groups  map[string]domain.Group
	changes map[string]domain.Change // by change id
	hidden  map[string]bool          // user#conv#seq
	revised int
}

func (m *memStore) Append(_ context.Context, evs []event.Chat) ([]domain.Saved, error) {
	out := make([]domain.Saved, len(evs))
	inBatch := map[string]bool{}
	for i, ev := range evs {
		if x, ok := m.msgs[ev.MsgID]; ok {
			out[i] = domain.Saved{Message: x, Repeat: inBatch[ev.MsgID]}
			inBatch[ev.MsgID] = true
			continue
		}
		m.seq[ev.ConversationID]++
		x := domain.Message{MsgID: ev.MsgID, ConversationID: ev.ConversationID, ChatType: ev.ChatType, SendID: ev.SendID,
			RecvID: ev.RecvID, Seq: m.seq[ev.ConversationID], Msg: ev.Msg}
		m.msgs[ev.MsgID] = x
		inBatch[ev.MsgID] = true
		out[i] = domain.Saved{Message: x, Fresh: true}
	}
	return out, nil
}

func (m *memStore) Settle(context.Context, []domain.Saved) error { return nil }

func (m *memStore) AppendChanges(_ context.Context, evs []event.Chat) ([]domain.Change, error) {
	if m.changes == nil {
		m.changes = map[string]domain.Change{}
	}
	out := make([]domain.Change, len(evs))
	for i, ev := range evs {
		c, ok := m.changes[ev.MsgID]
		if !ok {
			m.seq[ev.ConversationID+"#c"]++
			c = domain.Change{Version: m.seq[ev.ConversationID+"#c"], ConversationID: ev.ConversationID, ChatType: ev.ChatType,
				Kind: ev.Change.Kind, MsgID: ev.Change.MsgID, Seq: ev.Change.Seq, By: ev.SendID, Time: ev.SendTime}
			m.changes[ev.MsgID] = c
		}
		out[i] = c
	}
	return out, nil
}

func (m *memStore) MessagesAt(_ context.Context, conv string, seqs []int64) ([]*domain.Message, error) {
	out := make([]*domain.Message, len(seqs))
	for _, x := range m.msgs {
		for i, q := range seqs {
			if x.ConversationID == conv && x.Seq == q {
				x := x
				out[i] = &x
			}
		}
	}
	return out, nil
}

func (m *memStore) Revise(_ context.Context, x domain.Message) error {
	m.revised++
	m.msgs[x.MsgID] = x
	return nil
}

func (m *memStore) Hide(_ context.Context, user, conv string, seq int64) (int64, error) {
	if m.hidden == nil {
		m.hidden = map[string]bool{}
	}
	m.hidden[fmt.Sprintf("%s#%s#%d", user, conv, seq)] = true
	newest := int64(0)
	for q := int64(1); q <= m.seq[conv]; q++ {
		if m.hidden[fmt.Sprintf("%s#%s#%d", user, conv, q)] {
			newest = q
		}
	}
	return newest, nil
}

func (m *memStore) Group(_ context.Context, id string) (domain.Group, error) {
	g, ok := m.groups[id]
	if !ok {
		return g, reject.ErrNotFound
	}
	return g, nil
}

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
	st := &memStore{msgs: map[string]domain.Message{}, seq: map[string]int64{},
		groups: map[string]domain.Group{"g-1": {ID: "g-1", Members: []string{"ann", "ben", "cat", "dan"}}}}
	p := &pusher{sent: map[string][]event.Push{}}
	s := &Service{Store: st, Routes: routes{"ann": "gw1", "ben": "gw1", "cat": "gw2"}, Push: p,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	evs, err := Decode([]byte(`[
	 {"msgId":"00000000000000000000000000000001","conversationId":"ann_ben","chatType":2,"sendId":"ann","recvId":"ben","msg":{"content":"one"}},
	 {"msgId":"00000000000000000000000000000002","conversationId":"g-1","chatType":1,"sendId":"ann","recvId":"g-1","msg":{"content":"two"}},
	 {"msgId":"00000000000000000000000000000003","conversationId":"ann_ben","chatType":2,"sendId":"ann","recvId":"ben","msg":{"content":"three"}}]`))
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
		if it.Frame.Method != frame.MethodPush || it.Frame.FormID != "ann" {
			t.Fatalf("frame %+v", it.Frame)
		}
	}
	if strings.Join(got, " ") != "one:ben,ann:ann_ben two:ann,ben:g-1 three:ben,ann:ann_ben" {
		t.Fatalf("gw1 items: %v", got)
	}
	if it := p.sent["gw2"][0].Items; len(it) != 1 || it[0].Users[0] != "cat" {
		t.Fatalf("gw2 items: %+v", it)
	}
	if st.msgs["00000000000000000000000000000003"].Seq != 2 || st.msgs["00000000000000000000000000000002"].Seq != 1 {
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
	 {"msgId":"00000000000000000000000000000004","conversationId":"ann_ben","chatType":2,"sendId":"ann","recvId":"ben","msg":{"content":"four"}},
	 {"msgId":"00000000000000000000000000000004","conversationId":"ann_ben","chatType":2,"sendId":"ann","recvId":"ben","msg":{"content":"four"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(context.Background(), dup); err != nil {
		t.Fatal(err)
	}
	if it := p.sent["gw1"][2].Items; len(it) != 1 || st.msgs["00000000000000000000000000000004"].Seq != 3 {
		t.Fatalf("repeated record: %d items pushed, seq %d", len(it), st.msgs["00000000000000000000000000000004"].Seq)
	}
	ids := make([]string, 0, len(st.msgs))
	for id := range st.msgs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if strings.Join(ids, ",") != "00000000000000000000000000000001,00000000000000000000000000000002,00000000000000000000000000000003,00000000000000000000000000000004" {
		t.Fatalf("stored %v", ids)
	}
}

func TestDecodeRejectsRecordsThatCanNeverBeProcessed(t *testing.T) {
	for _, body := range []string{
		`not json`,
		`{"msgId":"00000000000000000000000000000001"}`,
		`[{"msgId":"00000000000000000000000000000001","conversationId":"ann_ben","chatType":5,"sendId":"ann","recvId":"ben"}]`,
		`{"msgId":"00000000000000000000000000000001","conversationId":"ann_ben","chatType":2,"sendId":"ben","recvId":"ann#x"}`,
		`{"msgId":"00000000000000000000000000000001","conversationId":"ann_cat","chatType":2,"sendId":"ann","recvId":"ben"}`,
		`{"msgId":"00000000000000000000000000000001","conversationId":"g-2","chatType":1,"sendId":"ann","recvId":"g-1"}`,
		`{"msgId":"00000000000000000000000000000001","conversationId":"g-1#x1","chatType":1,"sendId":"ann","recvId":"g-1#x1"}`,
		`{"msgId":"m1#x","conversationId":"g-1","chatType":1,"sendId":"ann","recvId":"g-1"}`,
	} {
		if _, err := Decode([]byte(body)); err == nil {
			t.Errorf("Decode(%s) accepted it", body)
		}
	}
}

// A record for a group that does not exist can never succeed: it is refused
// as invalid (the connector dead-letters it at once) and nothing is stored.
func TestMissingGroupIsRefusedBeforeStoring(t *testing.T) {
	st := &memStore{msgs: map[string]domain.Message{}, seq: map[string]int64{}, groups: map[string]domain.Group{}}
	s := &Service{Store: st, Routes: routes{}, Push: &pusher{sent: map[string][]event.Push{}},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	evs, err := Decode([]byte(`{"msgId":"00000000000000000000000000000009","conversationId":"g-gone","chatType":1,"sendId":"ann","recvId":"g-gone","msg":{"content":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(context.Background(), evs); !errors.Is(err, reject.ErrInvalid) || len(st.msgs) != 0 {
		t.Fatalf("Handle: %v, stored %d", err, len(st.msgs))
	}
}

// FuzzDecode: a record (or array of them) from Kafka either decodes into
// records whose ids agree, or is refused as invalid (dead-lettered), never a
// panic or an outage.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"msgId":"00000000000000000000000000000001","conversationId":"ann_ben","chatType":2,"sendId":"ann","recvId":"ben","msg":{"content":"x"}}`))
	f.Add([]byte(`[{"msgId":"00000000000000000000000000000001","conversationId":"g-1","chatType":1,"sendId":"ann","recvId":"g-1"}]`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"msgId":"00000000000000000000000000000002","conversationId":"g-1","chatType":1,"sendId":"ann","recvId":"g-1","change":{"kind":"react","msgId":"00000000000000000000000000000001","seq":1,"emoji":"👍"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := Decode(b)
		if err != nil {
			if !errors.Is(err, reject.ErrInvalid) {
				t.Fatalf("Decode refused with %v, not as invalid", err)
			}
			return
		}
		for _, ev := range evs {
			if err := check(ev); err != nil {
				t.Fatalf("decoded a record that does not check: %+v", ev)
			}
			if c := ev.Change; c != nil && (frame.ChangeMethods["conversation."+c.Kind] == "" || c.Seq < 1) {
				t.Fatalf("decoded a change that cannot apply: %+v", c)
			}
		}
	})
}

type advanced struct {
	sums map[string]domain.Summary
	hid  map[string]int64 // user#conv → newest hidden seq
	fail error
}

func (a *advanced) Advance(_ context.Context, sums map[string]domain.Summary) error {
	a.sums = sums
	return a.fail
}

func (a *advanced) Revise(context.Context, domain.Message) error { return a.fail }

func (a *advanced) Hid(_ context.Context, user, conv string, seq int64) error {
	if a.hid == nil {
		a.hid = map[string]int64{}
	}
	a.hid[user+"#"+conv] = seq
	return a.fail
}

// The lists hear of stored messages (newest seq, last message, each
// sender's seq); if they cannot, the call fails and is delivered again.
func TestStoredMessagesReachTheLists(t *testing.T) {
	st := &memStore{msgs: map[string]domain.Message{}, seq: map[string]int64{}, groups: map[string]domain.Group{}}
	l := &advanced{}
	s := &Service{Store: st, Lists: l, Routes: routes{}, Push: &pusher{sent: map[string][]event.Push{}},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	evs, err := Decode([]byte(`[
	 {"msgId":"00000000000000000000000000000011","conversationId":"ann_ben","chatType":2,"sendId":"ann","recvId":"ben","msg":{"content":"one"}},
	 {"msgId":"00000000000000000000000000000012","conversationId":"ann_ben","chatType":2,"sendId":"ben","recvId":"ann","msg":{"content":"two"}},
	 {"msgId":"00000000000000000000000000000013","conversationId":"ann_ben","chatType":2,"sendId":"ann","recvId":"ben","msg":{"content":"three"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	sum := l.sums["ann_ben"]
	if sum.Seq != 3 || sum.LastMsg == nil || sum.LastMsg.Msg.Content != "three" || sum.Sent["ann"] != 3 || sum.Sent["ben"] != 2 {
		t.Fatalf("lists told %+v", sum)
	}
	l.fail = errors.New("redis down")
	if err := s.Handle(context.Background(), evs); err == nil {
		t.Fatal("a failed list update did not fail the call")
	}
}

// Changes are applied in order after the messages of their batch, once:
// a redelivered change is pushed again but not applied again; a hide goes
// to its user only; an edit of a recalled message changes nothing.
func TestChangesApplyOnceInOrderAndHidesStayPrivate(t *testing.T) {
	st := &memStore{msgs: map[string]domain.Message{}, seq: map[string]int64{},
		groups: map[string]domain.Group{"g-1": {ID: "g-1", Members: []string{"ann", "ben", "cat"}}}}
	p := &pusher{sent: map[string][]event.Push{}}
	l := &advanced{}
	s := &Service{Store: st, Lists: l, Routes: routes{"ann": "gw1", "ben": "gw1", "cat": "gw2"}, Push: p,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	evs, err := Decode([]byte(`[
	 {"msgId":"00000000000000000000000000000001","conversationId":"g-1","chatType":1,"sendId":"ann","recvId":"g-1","msg":{"content":"one"}},
	 {"msgId":"00000000000000000000000000000c01","conversationId":"g-1","chatType":1,"sendId":"ben","recvId":"g-1","sendTime":5,"change":{"kind":"react","msgId":"00000000000000000000000000000001","seq":1,"emoji":"👍"}},
	 {"msgId":"00000000000000000000000000000c02","conversationId":"g-1","chatType":1,"sendId":"cat","recvId":"g-1","change":{"kind":"hide","msgId":"00000000000000000000000000000001","seq":1}},
	 {"msgId":"00000000000000000000000000000c03","conversationId":"g-1","chatType":1,"sendId":"ann","recvId":"g-1","change":{"kind":"recall","msgId":"00000000000000000000000000000001","seq":1}},
	 {"msgId":"00000000000000000000000000000c04","conversationId":"g-1","chatType":1,"sendId":"ann","recvId":"g-1","change":{"kind":"edit","msgId":"00000000000000000000000000000001","seq":1,"content":"back"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	m := st.msgs["00000000000000000000000000000001"]
	if !m.Msg.Recalled || m.Msg.Content != "" || m.Msg.Version != 3 || st.revised != 2 {
		t.Fatalf("message after react, hide, recall, edit: %+v (revised %d times)", m.Msg, st.revised)
	}
	if !st.hidden["cat#g-1#1"] || l.hid["cat#g-1"] != 1 {
		t.Fatalf("cat's hide was not recorded (store %v, lists %v)", st.hidden, l.hid)
	}
	kinds := func(addr string) []string {
		var out []string
		for _, b := range p.sent[addr] {
			for _, it := range b.Items {
				for _, f := range append([]event.PushFrame{{Frame: it.Frame}}, it.Next...) {
					if f.Frame.Method == frame.MethodChanged {
						var c frame.Changed
						_ = json.Unmarshal(f.Frame.Data, &c)
						out = append(out, fmt.Sprintf("%s%d", c.Kind, c.Version))
					}
				}
			}
		}
		return out
	}
	// gw2 holds cat (the hider); gw1 holds ann and ben, who never hear of it.
	if got := strings.Join(kinds("gw1"), ","); got != "react1,recall3,edit4" {
		t.Fatalf("gw1 got changes %s", got)
	}
	if got := strings.Join(kinds("gw2"), ","); got != "react1,hide2,recall3,edit4" {
		t.Fatalf("gw2 got changes %s", got)
	}
	// Delivered again (the connector retried): pushed again, applied once.
	p.sent = map[string][]event.Push{}
	if err := s.Handle(context.Background(), evs[1:]); err != nil {
		t.Fatal(err)
	}
	if st.revised != 2 || len(kinds("gw1")) != 3 {
		t.Fatalf("redelivery: revised %d times, pushed %v", st.revised, kinds("gw1"))
	}
}
