package receipt

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/push"
	"easychat/pkg/reject"
)

type memStore struct {
	msgs      map[string]domain.Message
	read      map[string]int64
	delivered map[string]int64
	tops      map[string]int64 // conversation → newest seq
	marks     int
}

func (m *memStore) MessagesByID(_ context.Context, ids []string) ([]domain.Message, error) {
	var out []domain.Message
	for _, id := range ids {
		if x, ok := m.msgs[id]; ok {
			out = append(out, x)
		}
	}
	return out, nil
}

func (m *memStore) MarkRead(_ context.Context, user, conv string, seq int64) (int64, error) {
	m.marks++
	k := user + "#" + conv
	if seq > m.read[k] {
		m.read[k] = seq
	}
	return m.read[k], nil
}

func (m *memStore) MarkDelivered(_ context.Context, user, conv string, seq int64) (int64, error) {
	k := user + "#" + conv
	m.delivered[k] = max(m.delivered[k], seq)
	return m.delivered[k], nil
}

func (m *memStore) ConversationSeq(_ context.Context, conv string) (int64, error) {
	return m.tops[conv], nil
}

func (m *memStore) Position(_ context.Context, user, conv string) (domain.Position, error) {
	k := user + "#" + conv
	return domain.Position{Read: m.read[k], Delivered: m.delivered[k]}, nil
}

// lists records what the lists are told.
type lists struct {
	pos map[domain.PositionKey]domain.Position
}

func (l *lists) PutPositions(_ context.Context, pos map[domain.PositionKey]domain.Position) error {
	for k, p := range pos {
		l.pos[k] = p
	}
	return nil
}

type everyoneOn string

func (g everyoneOn) Lookup(_ context.Context, users []string) (map[string][]string, error) {
	return map[string][]string{string(g): users}, nil
}

// pusher records batches; gateways are pushed to in parallel.
type pusher struct {
	mu      sync.Mutex
	batches []event.Push
}

func (p *pusher) Send(_ context.Context, _ string, b event.Push) (push.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, b)
	return push.Result{}, nil
}

func TestTransferMergesPerReaderAndNotifiesSenders(t *testing.T) {
	st := &memStore{read: map[string]int64{}, tops: map[string]int64{"g-1": 3}, msgs: map[string]domain.Message{
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1": {MsgID: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1", ConversationID: "g-1", ChatType: 1, SendID: "alice", Seq: 1},
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2": {MsgID: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2", ConversationID: "g-1", ChatType: 1, SendID: "carol", Seq: 2},
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3": {MsgID: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3", ConversationID: "g-1", ChatType: 1, SendID: "bob", Seq: 3},
		"fffffffffffffffffffffffffffffff9": {MsgID: "fffffffffffffffffffffffffffffff9", ConversationID: "other", ChatType: 1, SendID: "mallory", Seq: 9},
	}}
	p := &pusher{}
	tr := &Transfer{Store: st, Routes: everyoneOn("gw"), Push: p, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	evs := []event.Read{
		{ConversationID: "g-1", ChatType: 1, ReaderID: "bob", MsgIDs: []string{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"}},
		{ConversationID: "g-1", ChatType: 1, ReaderID: "bob", MsgIDs: []string{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3", "fffffffffffffffffffffffffffffff9"}},
	}
	if err := tr.Handle(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if st.marks != 1 || st.read["bob#g-1"] != 3 {
		t.Fatalf("two receipts of one reader were not merged into one write: marks=%d read=%v", st.marks, st.read)
	}
	if len(p.batches) != 1 || len(p.batches[0].Items) != 1 {
		t.Fatalf("pushes %+v", p.batches)
	}
	it := p.batches[0].Items[0]
	var n frame.ReadNotice
	_ = json.Unmarshal(it.Frame.Data, &n)
	// The reader's devices and the senders other than the reader, and not
	// mallory (x9 is another conversation's).
	if len(it.Users) != 3 || n.ReadSeq != 3 || n.ReaderID != "bob" || it.Frame.Method != frame.MethodRead || len(n.MsgIDs) != 3 {
		t.Fatalf("notice to %v: %+v", it.Users, n)
	}
	for _, u := range it.Users {
		if u != "alice" && u != "carol" && u != "bob" {
			t.Fatalf("notified %s", u)
		}
	}

}

type recorder struct{ recs []domain.Record }

func (r *recorder) Publish(_ context.Context, recs ...domain.Record) error {
	r.recs = append(r.recs, recs...)
	return nil
}

type members map[string][]string

func (m members) IsMember(_ context.Context, g, u string) (bool, error) {
	for _, x := range m[g] {
		if x == u {
			return true, nil
		}
	}
	return false, nil
}

func TestAcceptChecksTheReaderTakesPart(t *testing.T) {
	pub := &recorder{}
	a := &Acceptor{Pub: pub, Groups: members{"g-1": {"bob"}}, Now: time.Now}
	ctx := context.Background()
	if res, err := a.Accept(ctx, "bob", []byte(`{"chatType":2,"recvId":"alice","msgIds":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"]}`)); err != nil || res["conversationId"] != "alice_bob" {
		t.Fatalf("single: %v %v", res, err)
	}
	if _, err := a.Accept(ctx, "bob", []byte(`{"chatType":1,"recvId":"g-1","readSeq":4}`)); err != nil {
		t.Fatalf("group member: %v", err)
	}
	for body, kind := range map[string]error{
		`{"chatType":2,"conversationId":"alice_carol","msgIds":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"]}`: reject.ErrForbidden,
		`{"chatType":1,"recvId":"g-2","msgIds":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"]}`:                 reject.ErrForbidden,
		`{"chatType":2,"recvId":"alice"}`:                   reject.ErrInvalid,
		`{"chatType":7,"recvId":"alice","msgIds":["m"]}`:    reject.ErrInvalid,
		`{"chatType":2,"recvId":"alice","msgIds":["m1#x"]}`: reject.ErrInvalid,
		`{"chatType":2,"recvId":"al#ce","readSeq":1}`:       reject.ErrInvalid,
		`{"chatType":1,"recvId":"g-1#bob","readSeq":1}`:     reject.ErrInvalid,
		`{"chatType":2,"recvId":"alice","readSeq":-1}`:      reject.ErrInvalid,
		`nope`: reject.ErrInvalid,
	} {
		if _, err := a.Accept(ctx, "bob", []byte(body)); !errors.Is(err, kind) {
			t.Errorf("%s: %v, want %v", body, err, kind)
		}
	}
	if len(pub.recs) != 2 || pub.recs[0].Topic != event.TopicRead || pub.recs[0].Key != "alice_bob" {
		t.Fatalf("published %+v", pub.recs)
	}
}

func TestDeliveredIsClampedRecordedAndToldToThePeer(t *testing.T) {
	st := &memStore{read: map[string]int64{}, delivered: map[string]int64{"bob#alice_bob": 2},
		tops: map[string]int64{"alice_bob": 5, "bob_carol": 3}}
	p := &pusher{}
	tr := &Transfer{Store: st, Routes: everyoneOn("gw"), Push: p, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	evs := []event.Read{
		{ConversationID: "alice_bob", ChatType: 2, ReaderID: "bob", DeliveredSeq: 4},
		// Claims more than exists: stops at the conversation's newest seq.
		{ConversationID: "alice_bob", ChatType: 2, ReaderID: "bob", DeliveredSeq: 99},
		// Behind what is stored: the position does not go back.
		{ConversationID: "bob_carol", ChatType: 2, ReaderID: "carol", DeliveredSeq: 1},
	}
	st.delivered["carol#bob_carol"] = 3
	if err := tr.Handle(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if st.delivered["bob#alice_bob"] != 5 || st.delivered["carol#bob_carol"] != 3 {
		t.Fatalf("delivered positions %v", st.delivered)
	}
	if st.marks != 0 {
		t.Fatalf("a delivery report moved a read position: %v", st.read)
	}
	got := map[string]frame.Delivery{}
	for _, b := range p.batches {
		for _, it := range b.Items {
			if it.Frame.Method != frame.MethodDelivered || len(it.Users) != 1 {
				t.Fatalf("item %+v", it)
			}
			var d frame.Delivery
			if err := json.Unmarshal(it.Frame.Data, &d); err != nil {
				t.Fatal(err)
			}
			if it.Frame.FormID != d.UserID {
				t.Fatalf("frame from %s carries %+v", it.Frame.FormID, d)
			}
			got[it.Users[0]] = d
		}
	}
	if d := got["alice"]; d.UserID != "bob" || d.DeliveredSeq != 5 || d.ConversationID != "alice_bob" {
		t.Fatalf("alice was told %+v", d)
	}
	if d := got["bob"]; d.UserID != "carol" || d.DeliveredSeq != 3 {
		t.Fatalf("bob was told %+v", d)
	}
	if len(got) != 2 {
		t.Fatalf("notices %v", got)
	}
}

func TestAcceptDeliveredIsForOwnSingleChats(t *testing.T) {
	pub := &recorder{}
	a := &Acceptor{Pub: pub, Groups: members{"g-1": {"bob"}}, Now: time.Now}
	ctx := context.Background()
	if res, err := a.AcceptDelivered(ctx, "bob", []byte(`{"chatType":2,"recvId":"alice","seq":3}`)); err != nil || res["conversationId"] != "alice_bob" {
		t.Fatalf("single: %v %v", res, err)
	}
	for body, kind := range map[string]error{
		`{"chatType":2,"conversationId":"alice_carol","seq":3}`: reject.ErrForbidden,
		`{"chatType":1,"recvId":"g-1","seq":3}`:                 reject.ErrInvalid,
		`{"chatType":2,"recvId":"alice"}`:                       reject.ErrInvalid,
		`{"chatType":2,"recvId":"bob","seq":1}`:                 reject.ErrInvalid,
		`[]`:                                                    reject.ErrInvalid,
	} {
		if _, err := a.AcceptDelivered(ctx, "bob", []byte(body)); !errors.Is(err, kind) {
			t.Errorf("%s: %v, want %v", body, err, kind)
		}
	}
	if len(pub.recs) != 1 {
		t.Fatalf("published %+v", pub.recs)
	}
	var ev event.Read
	if err := json.Unmarshal(pub.recs[0].Value, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ReaderID != "bob" || ev.DeliveredSeq != 3 || ev.ReadSeq != 0 || len(ev.MsgIDs) != 0 || pub.recs[0].Key != "alice_bob" {
		t.Fatalf("record %+v", ev)
	}
}

// FuzzDecode: a receipt record from Kafka decodes or is refused as invalid.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"conversationId":"alice_bob","chatType":2,"readerId":"bob","readSeq":3}`))
	f.Add([]byte(`[{"conversationId":"g-1","chatType":1,"readerId":"bob","msgIds":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"]}]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := Decode(b)
		if err != nil {
			if !errors.Is(err, reject.ErrInvalid) {
				t.Fatalf("Decode refused with %v, not as invalid", err)
			}
			return
		}
		for _, ev := range evs {
			if ev.ReaderID == "" || ev.ConversationID == "" || len(ev.MsgIDs) > MaxMsgIDs {
				t.Fatalf("decoded %+v", ev)
			}
		}
	})
}

// The lists hear of every position recorded, both fields as the store has
// them, so that a list shows the new unread count and ticks.
func TestPositionsReachTheLists(t *testing.T) {
	st := &memStore{read: map[string]int64{"bob#alice_bob": 1}, delivered: map[string]int64{},
		tops: map[string]int64{"alice_bob": 5}, msgs: map[string]domain.Message{}}
	l := &lists{pos: map[domain.PositionKey]domain.Position{}}
	tr := &Transfer{Store: st, Lists: l, Routes: everyoneOn("gw"), Push: &pusher{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := tr.Handle(context.Background(), []event.Read{
		{ConversationID: "alice_bob", ChatType: 2, ReaderID: "bob", DeliveredSeq: 4},
		{ConversationID: "alice_bob", ChatType: 2, ReaderID: "bob", ReadSeq: 3},
	}); err != nil {
		t.Fatal(err)
	}
	if p := l.pos[domain.PositionKey{User: "bob", Conversation: "alice_bob"}]; p.Read != 3 || p.Delivered != 4 {
		t.Fatalf("lists told %+v", l.pos)
	}
}
