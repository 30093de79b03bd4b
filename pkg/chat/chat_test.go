package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"easychat/pkg/batch"
	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/reject"
)

type recorder struct {
	recs  []domain.Record
	calls int
	err   error
}

func (r *recorder) Publish(_ context.Context, recs ...domain.Record) error {
	r.calls++
	if r.err != nil {
		return r.err
	}
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

func (m members) Group(_ context.Context, g string) (domain.Group, error) {
	ms, ok := m[g]
	if !ok {
		return domain.Group{}, reject.ErrNotFound
	}
	return domain.Group{ID: g, Owner: ms[0], Members: ms}, nil
}

func TestAccept(t *testing.T) {
	pub := &recorder{}
	s := &Service{Pub: pub, Groups: members{"g-1": {"bob", "carol"}}, Now: func() time.Time { return time.UnixMilli(1000) }}
	ctx := context.Background()

	ack1, err := s.Accept(ctx, batch.Item{User: "bob", FrameID: "f1", Data: []byte(`{"chatType":2,"recvId":"alice","msg":{"mType":0,"content":"hi"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	ack2, err := s.Accept(ctx, batch.Item{User: "bob", FrameID: "f1", Data: []byte(`{"chatType":2,"recvId":"alice","msg":{"mType":0,"content":"hi"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if ack1.MsgID != ack2.MsgID || ack1.ConversationID != "alice_bob" {
		t.Fatalf("resend of one frame id gave %+v then %+v", ack1, ack2)
	}
	other, _ := s.Accept(ctx, batch.Item{User: "carol", FrameID: "f1", Data: []byte(`{"chatType":2,"recvId":"alice","msg":{"mType":0,"content":"hi"}}`)})
	if other.MsgID == ack1.MsgID {
		t.Fatal("two senders with the same frame id share a msgId")
	}
	var ev event.Chat
	if err := json.Unmarshal(pub.recs[0].Value, &ev); err != nil {
		t.Fatal(err)
	}
	if pub.recs[0].Topic != event.TopicChat || pub.recs[0].Key != "alice_bob" || ev.SendID != "bob" || ev.SendTime != 1000 || ev.Msg.Content != "hi" {
		t.Fatalf("published %+v / %+v", pub.recs[0], ev)
	}

	if _, err := s.Accept(ctx, batch.Item{User: "bob", FrameID: "f2", Data: []byte(`{"chatType":1,"recvId":"g-1","msg":{"content":"yo"}}`)}); err != nil {
		t.Fatalf("member posting to group: %v", err)
	}
	if _, err := s.Accept(ctx, batch.Item{User: "mallory", FrameID: "f3", Data: []byte(`{"chatType":1,"recvId":"g-1","msg":{"content":"yo"}}`)}); !errors.Is(err, reject.ErrForbidden) {
		t.Fatalf("non-member: %v", err)
	}
	if _, err := s.Accept(ctx, batch.Item{User: "bob", FrameID: "f4", Data: []byte(`{"chatType":3,"recvId":"x","msg":{"content":"yo"}}`)}); !errors.Is(err, reject.ErrInvalid) {
		t.Fatalf("bad chatType: %v", err)
	}
	if _, err := s.Accept(ctx, batch.Item{User: "bob", FrameID: "f5", Data: []byte(`not json`)}); !errors.Is(err, reject.ErrInvalid) {
		t.Fatalf("bad json: %v", err)
	}
	if n := len(pub.recs); n != 4 {
		t.Fatalf("published %d records, want 4 (rejected chats must not be published)", n)
	}
}

// A batch judges each item as Accept would, publishes the accepted ones in
// one write in item order, and gives the same msgIds as single calls.
func TestAcceptBatch(t *testing.T) {
	pub := &recorder{}
	s := &Service{Pub: pub, Groups: members{"g-1": {"bob", "carol"}}, Now: func() time.Time { return time.UnixMilli(1000) }}
	ctx := context.Background()
	items := []batch.Item{
		{User: "bob", FrameID: "f1", Data: json.RawMessage(`{"chatType":2,"recvId":"alice","msg":{"content":"one"}}`), Origin: "gw-1/7"},
		{User: "mallory", FrameID: "f1", Data: json.RawMessage(`{"chatType":1,"recvId":"g-1","msg":{"content":"let me in"}}`)},
		{User: "carol", FrameID: "f9", Data: json.RawMessage(`{"chatType":1,"recvId":"g-1","msg":{"content":"two"}}`)},
		{User: "bob", FrameID: "f2", Data: json.RawMessage(`not json`)},
		{User: "", FrameID: "f3", Data: json.RawMessage(`{"chatType":2,"recvId":"alice","msg":{"content":"who?"}}`)},
		{User: "bob", FrameID: "f4", Data: json.RawMessage(`{"chatType":2,"recvId":"alice","msg":{"content":"three"}}`)},
	}
	res, err := s.AcceptBatch(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus := []int{200, 403, 200, 400, 401, 200}
	for i, r := range res {
		if r.Status != wantStatus[i] {
			t.Fatalf("item %d: status %d (%s), want %d", i, r.Status, r.Error, wantStatus[i])
		}
		if (r.Status == 200) != (r.Error == "") {
			t.Fatalf("item %d: status %d with error %q", i, r.Status, r.Error)
		}
	}
	if pub.calls != 1 {
		t.Fatalf("%d publish calls for one batch", pub.calls)
	}
	var got, origins []string
	for _, rec := range pub.recs {
		var ev event.Chat
		if err := json.Unmarshal(rec.Value, &ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Msg.Content)
		origins = append(origins, ev.Origin)
	}
	if fmt.Sprint(origins) != "[gw-1/7  ]" {
		t.Fatalf("origins %q: each record carries its own socket's", origins)
	}
	if fmt.Sprint(got) != "[one two three]" {
		t.Fatalf("published %v, want the accepted items in order", got)
	}
	single, err := (&Service{Pub: &recorder{}, Groups: members{}, Now: s.Now}).Accept(ctx, items[0])
	if err != nil {
		t.Fatal(err)
	}
	var ack struct{ MsgID, ConversationID string }
	if err := json.Unmarshal(res[0].Data, &ack); err != nil {
		t.Fatal(err)
	}
	if ack.MsgID != single.MsgID || ack.ConversationID != "alice_bob" {
		t.Fatalf("batch ack %+v, single call %+v", ack, single)
	}

	// Kafka refusing the write fails the whole batch: nothing is acked.
	pub.err = errors.New("broker down")
	if res, err := s.AcceptBatch(ctx, items[:1]); err == nil {
		t.Fatalf("publish failure answered %+v", res)
	}
}
