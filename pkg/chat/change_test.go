package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"easychat/pkg/batch"
	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/limit"
	"easychat/pkg/reject"
)

type stored struct {
	mu sync.Mutex
	m  map[string]domain.Message
}

func (s *stored) Message(_ context.Context, id string) (domain.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.m[id]
	if !ok {
		return m, reject.ErrNotFound
	}
	return m, nil
}

func (s *stored) put(m domain.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[m.MsgID] = m
}

const (
	msgAnn = "000000000000000000000000000000a1"
	msgBob = "000000000000000000000000000000b1"
	msgOld = "000000000000000000000000000000c1"
	msgGrp = "000000000000000000000000000000d1"
)

func changeService(pub *recorder, now time.Time) *Service {
	msgs := &stored{m: map[string]domain.Message{
		msgAnn: {MsgID: msgAnn, ConversationID: "ann_bob", ChatType: 2, SendID: "ann", RecvID: "bob", Seq: 1, SendTime: now.Add(-time.Minute).UnixMilli(), Msg: frame.Msg{Content: "hi"}},
		msgBob: {MsgID: msgBob, ConversationID: "ann_bob", ChatType: 2, SendID: "bob", RecvID: "ann", Seq: 2, SendTime: now.Add(-time.Minute).UnixMilli(), Msg: frame.Msg{Content: "yo"}},
		msgOld: {MsgID: msgOld, ConversationID: "ann_bob", ChatType: 2, SendID: "ann", RecvID: "bob", Seq: 3, SendTime: now.Add(-time.Hour).UnixMilli(), Msg: frame.Msg{Content: "old"}},
		msgGrp: {MsgID: msgGrp, ConversationID: "g-1", ChatType: 1, SendID: "cat", RecvID: "g-1", Seq: 1, SendTime: now.Add(-time.Hour).UnixMilli(), Msg: frame.Msg{Content: "group"}},
	}}
	// g-1's owner is its first member, dan.
	return &Service{Pub: pub, Groups: members{"g-1": {"dan", "cat", "ann"}}, Messages: msgs, Now: func() time.Time { return now }}
}

func changeItem(user, method string, data string) batch.Item {
	return batch.Item{User: user, FrameID: "f-" + method, Method: method, Data: []byte(data)}
}

func TestChangesAreAuthorizedByTheServer(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name, user, method, data, refusal string
	}{
		{"sender edits within the window", "ann", frame.MethodEdit, `{"conversationId":"ann_bob","msgId":"` + msgAnn + `","content":"hey"}`, ""},
		{"another's message", "ann", frame.MethodEdit, `{"conversationId":"ann_bob","msgId":"` + msgBob + `","content":"hey"}`, "not your message"},
		{"edit after the window", "ann", frame.MethodEdit, `{"conversationId":"ann_bob","msgId":"` + msgOld + `","content":"hey"}`, "edit window has passed"},
		{"recall after the window", "ann", frame.MethodRecall, `{"conversationId":"ann_bob","msgId":"` + msgOld + `"}`, "recall window has passed"},
		{"recall within", "ann", frame.MethodRecall, `{"conversationId":"ann_bob","msgId":"` + msgAnn + `"}`, ""},
		{"the owner recalls any", "dan", frame.MethodRecall, `{"conversationId":"g-1","msgId":"` + msgGrp + `"}`, ""},
		{"a member recalls another's", "ann", frame.MethodRecall, `{"conversationId":"g-1","msgId":"` + msgGrp + `"}`, "not your message"},
		{"a stranger to the chat", "cat", frame.MethodReact, `{"conversationId":"ann_bob","msgId":"` + msgAnn + `","emoji":"👍"}`, "not part of conversation"},
		{"a non-member reacts", "bob", frame.MethodReact, `{"conversationId":"g-1","msgId":"` + msgGrp + `","emoji":"👍"}`, "not a member"},
		{"a member reacts", "ann", frame.MethodReact, `{"conversationId":"g-1","msgId":"` + msgGrp + `","emoji":"👍"}`, ""},
		{"a message of another conversation", "ann", frame.MethodHide, `{"conversationId":"ann_bob","msgId":"` + msgGrp + `"}`, "message not found"},
		{"bad emoji", "ann", frame.MethodReact, `{"conversationId":"ann_bob","msgId":"` + msgAnn + `","emoji":"<b>"}`, "invalid emoji"},
		{"empty edit", "ann", frame.MethodEdit, `{"conversationId":"ann_bob","msgId":"` + msgAnn + `"}`, "required"},
		{"unknown method", "ann", "conversation.nuke", `{}`, "unknown method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &recorder{}
			s := changeService(pub, now)
			ack, err := s.Accept(context.Background(), changeItem(tc.user, tc.method, tc.data))
			if tc.refusal != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refusal) || !reject.Refusal(err) || len(pub.recs) != 0 {
					t.Fatalf("got %v (published %d), want a refusal saying %q", err, len(pub.recs), tc.refusal)
				}
				return
			}
			if err != nil || len(pub.recs) != 1 {
				t.Fatalf("refused: %v", err)
			}
			var ev event.Chat
			if err := json.Unmarshal(pub.recs[0].Value, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Change == nil || ev.Change.MsgID != ack.MsgID || ev.SendID != tc.user || pub.recs[0].Key != ev.ConversationID ||
				ev.Change.Seq == 0 || ev.MsgID == ack.MsgID {
				t.Fatalf("record %+v (%+v), ack %+v", ev, ev.Change, ack)
			}
		})
	}
}

// A change resent with the same frame id gets the same change id (stored
// once); a change of a message not stored yet waits for it when alone, and
// not in a batch.
func TestChangeIDsAreStableAndMissingMessagesWaitedForAlone(t *testing.T) {
	now := time.Now()
	pub := &recorder{}
	s := changeService(pub, now)
	it := changeItem("ann", frame.MethodReact, `{"conversationId":"ann_bob","msgId":"`+msgAnn+`","emoji":"👍"}`)
	for range 2 {
		if _, err := s.Accept(context.Background(), it); err != nil {
			t.Fatal(err)
		}
	}
	var a, b event.Chat
	_ = json.Unmarshal(pub.recs[0].Value, &a)
	_ = json.Unmarshal(pub.recs[1].Value, &b)
	if a.MsgID != b.MsgID {
		t.Fatalf("a resend got change id %s, then %s", a.MsgID, b.MsgID)
	}

	late := "000000000000000000000000000000e1"
	msgs := s.Messages.(*stored)
	s.Wait = 2 * time.Second
	go func() {
		time.Sleep(200 * time.Millisecond)
		msgs.put(domain.Message{MsgID: late, ConversationID: "ann_bob", ChatType: 2, SendID: "ann", RecvID: "bob", Seq: 4, SendTime: now.UnixMilli()})
	}()
	res, err := s.AcceptBatch(context.Background(), []batch.Item{changeItem("ann", frame.MethodRecall, `{"conversationId":"ann_bob","msgId":"`+late+`"}`)})
	if err != nil || res[0].Status != 404 {
		t.Fatalf("in a batch: %+v %v, want 404 at once", res, err)
	}
	if _, err := s.Accept(context.Background(), changeItem("ann", frame.MethodRecall, `{"conversationId":"ann_bob","msgId":"`+late+`"}`)); err != nil {
		t.Fatalf("alone, the recall of a message stored 200 ms later: %v", err)
	}
	if _, err := s.Accept(context.Background(), changeItem("ann", frame.MethodRecall, `{"conversationId":"ann_bob","msgId":"000000000000000000000000000000f1"}`)); !errors.Is(err, reject.ErrNotFound) {
		t.Fatalf("a message never stored: %v", err)
	}
}

// One user toggling a reaction in a loop is refused (429) once over the
// change limit; another user's changes still go through.
func TestChangesPerUserAreLimited(t *testing.T) {
	pub := &recorder{}
	s := changeService(pub, time.Now())
	s.Limiter, s.ChangeLimit = limit.NewMemory(), limit.Rule{N: 10, Per: time.Hour}
	toggle := func(user string, i int) error {
		_, err := s.Accept(context.Background(), batch.Item{User: user, FrameID: fmt.Sprintf("r%d", i), Method: frame.MethodReact,
			Data: []byte(fmt.Sprintf(`{"conversationId":"g-1","msgId":"%s","emoji":"👍","remove":%v}`, msgGrp, i%2 == 1))})
		return err
	}
	var refused error
	for i := range 12 {
		if err := toggle("ann", i); err != nil {
			refused = err
			if i < 10 {
				t.Fatalf("change %d refused within the limit: %v", i, err)
			}
		}
	}
	if reject.Status(refused) != http.StatusTooManyRequests || !strings.Contains(refused.Error(), "too many changes") {
		t.Fatalf("over the limit: %v", refused)
	}
	if err := toggle("cat", 0); err != nil {
		t.Fatalf("another member's change: %v", err)
	}
	if len(pub.recs) != 11 {
		t.Fatalf("published %d changes, want 10 of ann's and 1 of cat's", len(pub.recs))
	}
}
