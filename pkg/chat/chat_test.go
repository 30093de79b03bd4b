package chat

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"easychat/pkg/bus"
	"easychat/pkg/event"
	"easychat/pkg/reject"
)

type recorder struct{ recs []bus.Record }

func (r *recorder) Publish(_ context.Context, recs ...bus.Record) error {
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

func TestAccept(t *testing.T) {
	pub := &recorder{}
	s := &Service{Pub: pub, Groups: members{"g1": {"bob", "carol"}}, Now: func() time.Time { return time.UnixMilli(1000) }}
	ctx := context.Background()

	ack1, err := s.Accept(ctx, "bob", "f1", []byte(`{"chatType":2,"recvId":"alice","msg":{"mType":0,"content":"hi"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ack2, err := s.Accept(ctx, "bob", "f1", []byte(`{"chatType":2,"recvId":"alice","msg":{"mType":0,"content":"hi"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ack1.MsgID != ack2.MsgID || ack1.ConversationID != "alice_bob" {
		t.Fatalf("resend of one frame id gave %+v then %+v", ack1, ack2)
	}
	other, _ := s.Accept(ctx, "carol", "f1", []byte(`{"chatType":2,"recvId":"alice","msg":{"mType":0,"content":"hi"}}`))
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

	if _, err := s.Accept(ctx, "bob", "f2", []byte(`{"chatType":1,"recvId":"g1","msg":{"content":"yo"}}`)); err != nil {
		t.Fatalf("member posting to group: %v", err)
	}
	if _, err := s.Accept(ctx, "mallory", "f3", []byte(`{"chatType":1,"recvId":"g1","msg":{"content":"yo"}}`)); !errors.Is(err, reject.ErrForbidden) {
		t.Fatalf("non-member: %v", err)
	}
	if _, err := s.Accept(ctx, "bob", "f4", []byte(`{"chatType":3,"recvId":"x","msg":{"content":"yo"}}`)); !errors.Is(err, reject.ErrInvalid) {
		t.Fatalf("bad chatType: %v", err)
	}
	if _, err := s.Accept(ctx, "bob", "f5", []byte(`not json`)); !errors.Is(err, reject.ErrInvalid) {
		t.Fatalf("bad json: %v", err)
	}
	if n := len(pub.recs); n != 4 {
		t.Fatalf("published %d records, want 4 (rejected chats must not be published)", n)
	}
}
