package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
)

// Messages that live: replies, recalls, edits, reactions, deletes for me,
// typing and mentions, over real sockets through the whole pipeline.

// call sends a data frame and returns its answer (an ack or an error frame).
func (c *client) call(id, method string, data any) frame.Frame {
	c.t.Helper()
	c.send(map[string]any{"frameType": 0, "id": id, "method": method, "data": data})
	return c.next(wait, byID(id))
}

// mustCall is call that fails the test on an error frame.
func (c *client) mustCall(id, method string, data any) frame.Frame {
	c.t.Helper()
	f := c.call(id, method, data)
	if f.FrameType == frame.Error {
		c.t.Fatalf("%s %s: %s", c.user, method, f.ErrMsg)
	}
	return f
}

// refused checks that method is answered with an error frame saying want.
func (c *client) refused(id, method string, data any, want string) {
	c.t.Helper()
	f := c.call(id, method, data)
	if f.FrameType != frame.Error || !strings.Contains(f.ErrMsg, want) {
		c.t.Fatalf("%s %s: got %+v, want an error saying %q", c.user, method, f, want)
	}
}

func isChanged(f frame.Frame) bool {
	return f.FrameType == frame.Data && f.Method == frame.MethodChanged
}

// changed waits for the next conversation.changed frame of kind (others
// are skipped).
func (c *client) changed(kind string) frame.Changed {
	c.t.Helper()
	var ch frame.Changed
	c.next(wait, func(f frame.Frame) bool {
		if !isChanged(f) {
			return false
		}
		ch = frame.Changed{}
		if err := json.Unmarshal(f.Data, &ch); err != nil {
			c.t.Fatalf("changed frame %s: %v", f.Data, err)
		}
		return ch.Kind == kind
	})
	return ch
}

// quiet checks that no frame matching keep arrives within d.
func (c *client) quiet(d time.Duration, keep func(frame.Frame) bool) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if ok && keep(f) {
				c.t.Fatalf("%s: unexpected frame %+v (%s)", c.user, f, f.Data)
			}
		case <-deadline:
			return
		}
	}
}

// sent sends a chat and returns its msgId.
func (c *client) sent(id string, chatType int, recv string, msg map[string]any) string {
	c.t.Helper()
	f := c.mustCall(id, frame.MethodChat, map[string]any{"chatType": chatType, "recvId": recv, "msg": msg})
	return ackData(c.t, f).MsgID
}

type syncAnswer struct {
	Messages []frame.Push    `json:"messages"`
	Changes  []frame.Changed `json:"changes"`
	More     bool            `json:"more"`
}

func (c *client) syncWith(id string, seqs, versions map[string]int64) syncAnswer {
	c.t.Helper()
	f := c.mustCall(id, frame.MethodSync, map[string]any{"seqs": seqs, "versions": versions, "limit": 200})
	var res syncAnswer
	if err := json.Unmarshal(f.Data, &res); err != nil {
		c.t.Fatal(err)
	}
	return res
}

func TestReplyEditReactRecallAndHideReachEveryDeviceAndSync(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	a, b := uid(t, "a"), uid(t, "b")
	ca, cb, cb2 := dial(t, s, gw, a), dial(t, s, gw, b), dial(t, s, gw, b)
	conv := frame.SingleConversationID(a, b)
	ctx := context.Background()

	m1 := ca.sent("m1", frame.SingleChat, b, map[string]any{"content": "meet at the old mill at eight"})
	pushData(t, cb.next(wait, isPush))
	pushData(t, cb2.next(wait, isPush))

	// A reply carries a preview of what it quotes.
	cb.sent("r1", frame.SingleChat, a, map[string]any{"content": "which mill?", "quote": map[string]any{"msgId": m1}})
	reply := pushData(t, ca.next(wait, isPush))
	q := reply.Msg.Quote
	if q == nil || q.MsgID != m1 || q.Seq != 1 || q.SendID != a || q.Content != "meet at the old mill at eight" || q.Recalled {
		t.Fatalf("reply's quote %+v", q)
	}
	cb2.next(wait, isPush)
	// A quote of a message of another conversation, or of none, is refused.
	cb.refused("r2", frame.MethodChat, map[string]any{"chatType": 2, "recvId": a,
		"msg": map[string]any{"content": "?", "quote": map[string]any{"msgId": strings.Repeat("ab", 16)}}}, "quoted message not found")

	// Edit: every device of both sees the new text, marked edited.
	ca.mustCall("e1", frame.MethodEdit, map[string]any{"conversationId": conv, "msgId": m1, "content": "meet at the new mill at nine"})
	for _, c := range []*client{ca, cb, cb2} {
		ch := c.changed(frame.KindEdit)
		if ch.MsgID != m1 || ch.Seq != 1 || ch.By != a || ch.Version != 1 || ch.Message == nil ||
			ch.Message.Msg.Content != "meet at the new mill at nine" || ch.Message.Msg.Edited == 0 || ch.Message.Msg.Version != 1 {
			t.Fatalf("%s: edit %+v", c.user, ch)
		}
	}
	// Only the sender edits.
	cb.refused("e2", frame.MethodEdit, map[string]any{"conversationId": conv, "msgId": m1, "content": "mine now"}, "not your message")

	// Reactions: one of each emoji per user, counted with who reacted.
	cb.mustCall("x1", frame.MethodReact, map[string]any{"conversationId": conv, "msgId": m1, "emoji": "👍"})
	ca.mustCall("x2", frame.MethodReact, map[string]any{"conversationId": conv, "msgId": m1, "emoji": "👍"})
	var last frame.Changed
	for range 2 {
		last = cb2.changed(frame.KindReact)
	}
	if got := last.Message.Msg.Reactions["👍"]; len(got) != 2 || got[0] != b || got[1] != a || last.Version != 3 {
		t.Fatalf("reactions after two thumbs up: %+v", last)
	}
	cb.refused("x3", frame.MethodReact, map[string]any{"conversationId": conv, "msgId": m1, "emoji": "abc"}, "invalid emoji")
	cb.mustCall("x4", frame.MethodReact, map[string]any{"conversationId": conv, "msgId": m1, "emoji": "👍", "remove": true})
	if got := cb2.changed(frame.KindReact).Message.Msg.Reactions["👍"]; len(got) != 1 || got[0] != a {
		t.Fatalf("thumbs up after b took hers away: %v", got)
	}

	// Delete for me: b's devices hide the reply; a is not told.
	cb.mustCall("h1", frame.MethodHide, map[string]any{"conversationId": conv, "msgId": reply.Msg.MsgID})
	if ch := cb2.changed(frame.KindHide); ch.MsgID != reply.Msg.MsgID || ch.Message != nil {
		t.Fatalf("hide %+v", ch)
	}

	// Recall: the content is gone everywhere, from the reply's preview too.
	ca.mustCall("c1", frame.MethodRecall, map[string]any{"conversationId": conv, "msgId": m1})
	rc := cb.changed(frame.KindRecall)
	if m := rc.Message.Msg; !m.Recalled || m.RecalledBy != a || m.Content != "" || len(m.Reactions) != 0 || rc.Version != 6 {
		t.Fatalf("recall %+v", rc)
	}
	ca.refused("e3", frame.MethodEdit, map[string]any{"conversationId": conv, "msgId": m1, "content": "too late"}, "message was recalled")
	ca.quiet(300*time.Millisecond, func(f frame.Frame) bool {
		return isChanged(f) && strings.Contains(string(f.Data), `"kind":"hide"`)
	})

	// History: recalled without content; the reply's preview says recalled;
	// b sees its hidden reply as hidden, a sees it.
	hist := func(tok string) []frame.Push {
		code, res := api(t, gw.Addr(), "conversation", tok, map[string]any{"action": "history", "conversationId": conv})
		if code != 200 || res["version"] != float64(6) {
			t.Fatalf("history: %d %v", code, res)
		}
		b, _ := json.Marshal(res["messages"])
		var ms []frame.Push
		_ = json.Unmarshal(b, &ms)
		return ms
	}
	forA, forB := hist(tokenFor(t, s, a)), hist(tokenFor(t, s, b))
	if len(forA) != 2 || !forA[1].Msg.Recalled || forA[1].Msg.Content != "" || forA[0].Msg.Content != "which mill?" ||
		forA[0].Msg.Quote == nil || !forA[0].Msg.Quote.Recalled || forA[0].Msg.Quote.Content != "" {
		t.Fatalf("a's history %+v", forA)
	}
	if !forB[0].Msg.Hidden || forB[0].Msg.Content != "" {
		t.Fatalf("b's history of the reply she hid: %+v", forB[0])
	}
	// The store holds no copy of the recalled text, nor of its edit.
	st := openSystemStore(t, ctx)
	stored, err := st.Message(ctx, m1)
	if err != nil || stored.Msg.Content != "" || !stored.Msg.Recalled {
		t.Fatalf("stored recalled message %+v, %v", stored, err)
	}
	changes, err := st.Changes(ctx, conv, 0, 100)
	if err != nil || len(changes) != 6 {
		t.Fatalf("change log %+v, %v", changes, err)
	}
	// The list's last message is the reply (seq 2), the recalled one is not shown anywhere.
	code, res := api(t, gw.Addr(), "conversation", tokenFor(t, s, a), map[string]any{"action": "list"})
	if b, _ := json.Marshal(res); code != 200 || strings.Contains(string(b), "at eight") || strings.Contains(string(b), "at nine") {
		t.Fatalf("list shows the recalled text: %s", b)
	}
	// b deleted the reply for herself: her list shows the message before it
	// (the recalled one) as the last; a's shows the reply.
	lastIn := func(who string) domain.Message {
		code, res := api(t, gw.Addr(), "conversation", tokenFor(t, s, who), map[string]any{"action": "list"})
		b, _ := json.Marshal(res["conversations"])
		var cs []domain.ConversationState
		if err := json.Unmarshal(b, &cs); code != 200 || err != nil {
			t.Fatalf("%s's list: %d %s", who, code, b)
		}
		for _, c := range cs {
			if c.ConversationID == conv && c.LastMsg != nil {
				return *c.LastMsg
			}
		}
		t.Fatalf("%s's list has no last message of %s: %s", who, conv, b)
		return domain.Message{}
	}
	if l := lastIn(a); l.Seq != 2 || l.Msg.Content != "which mill?" {
		t.Fatalf("a's list's last message: %+v", l)
	}
	if l := lastIn(b); l.Seq != 1 || !l.Msg.Recalled || l.Msg.Content != "" {
		t.Fatalf("b's list's last message, having hidden the reply: %+v", l)
	}

	// A device that was offline gets it all by sync, in order: the
	// messages as they are now, and the changes after the version it had.
	cb3 := dial(t, s, gw, b)
	res3 := cb3.syncWith("s1", map[string]int64{}, map[string]int64{conv: 0})
	if len(res3.Messages) != 2 || !res3.Messages[0].Msg.Recalled || !res3.Messages[1].Msg.Hidden {
		t.Fatalf("synced messages %+v", res3.Messages)
	}
	var kinds []string
	for i, ch := range res3.Changes {
		if ch.Version != int64(i+1) {
			t.Fatalf("change %d has version %d", i, ch.Version)
		}
		kinds = append(kinds, ch.Kind)
		if ch.Kind != frame.KindHide && (ch.Message == nil || !ch.Message.Msg.Recalled) {
			t.Fatalf("synced change %+v: its message must be as it is now", ch)
		}
	}
	if strings.Join(kinds, ",") != "edit,react,react,react,hide,recall" {
		t.Fatalf("synced changes %v", kinds)
	}
	// From the newest version, nothing.
	if again := cb3.syncWith("s2", map[string]int64{conv: 2}, map[string]int64{conv: 6}); len(again.Messages)+len(again.Changes) != 0 {
		t.Fatalf("sync from the newest: %+v", again)
	}
	// a's devices are not told of b's hide by sync either.
	for _, ch := range dial(t, s, gw, a).syncWith("s3", map[string]int64{conv: 2}, map[string]int64{conv: 0}).Changes {
		if ch.Kind == frame.KindHide || (ch.Version == 5 && ch.MsgID != "") {
			t.Fatalf("a synced b's hide: %+v", ch)
		}
	}
}

// A recall sent right behind its message (before the message is stored)
// waits for it, and never overtakes it: the recipient gets the push and then
// the recall, and a device that syncs later gets the message recalled.
func TestRecallRacingItsPush(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	a, b := uid(t, "a"), uid(t, "b")
	ca, cb := dial(t, s, gw, a), dial(t, s, gw, b)
	conv := frame.SingleConversationID(a, b)
	for i := range 5 {
		content := fmt.Sprintf("oops %d", i)
		id := fmt.Sprintf("m%d", i)
		// The recall names the msgId the chat will get: the same sender,
		// frame and content always get the same.
		msgID := event.MsgID(a, conv, id, content)
		ca.chat(id, frame.SingleChat, b, content)
		ca.send(map[string]any{"frameType": 0, "id": "c" + id, "method": frame.MethodRecall,
			"data": map[string]any{"conversationId": conv, "msgId": msgID}})
		for _, want := range []string{id, "c" + id} {
			if f := ca.next(wait, byID(want)); f.FrameType != frame.Ack {
				t.Fatalf("%s: %+v", want, f)
			}
		}
		var seq int64
		f := cb.next(wait, func(f frame.Frame) bool { return isPush(f) || isChanged(f) })
		if !isPush(f) {
			t.Fatalf("round %d: the recall came before its message: %s", i, f.Data)
		}
		seq = pushData(t, f).Seq
		if ch := cb.changed(frame.KindRecall); ch.Seq != seq || !ch.Message.Msg.Recalled {
			t.Fatalf("round %d: recall %+v", i, ch)
		}
	}
	// The list's last message is the last one, recalled: no content.
	last, _ := listEntry(t, gw.Addr(), tokenFor(t, s, b), conv)["lastMsg"].(map[string]any)
	if lm, _ := last["msg"].(map[string]any); lm["recalled"] != true || lm["content"] != "" || last["seq"] != float64(5) {
		t.Fatalf("list's last message %v", last)
	}
	late := dial(t, s, gw, b).syncWith("s", map[string]int64{}, nil)
	if len(late.Messages) != 5 || len(late.Changes) != 0 {
		t.Fatalf("late sync: %d messages, %d changes", len(late.Messages), len(late.Changes))
	}
	for _, m := range late.Messages {
		if !m.Msg.Recalled || m.Msg.Content != "" {
			t.Fatalf("late device sees %+v", m)
		}
	}
}

// Windows and permissions are the server's: an edit or recall after its
// window, another's message, a non-member's reaction, @all from a member.
func TestChangesOutsideTheirWindowsOrRightsAreRefused(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	ctx := context.Background()
	st := openSystemStore(t, ctx)
	ids := registered(t, "owner", "member", "outsider")
	owner, member, outsider := ids[0], ids[1], ids[2]
	group := gid()
	if err := st.CreateGroup(ctx, domain.Group{ID: group, Name: "windows", Owner: owner, Members: []string{owner, member}}); err != nil {
		t.Fatal(err)
	}
	// A message sent 20 minutes ago (the store is written as transfer
	// would): past the edit (15 min) and recall (2 min) windows.
	old := event.Chat{MsgID: strings.Repeat("0f", 16), ConversationID: group, ChatType: frame.GroupChat, SendID: member,
		RecvID: group, SendTime: time.Now().Add(-20 * time.Minute).UnixMilli(), Msg: frame.Msg{Content: "old news"}}
	if _, err := st.SaveChats(ctx, []event.Chat{old}); err != nil {
		t.Fatal(err)
	}
	co, cm, cx := dial(t, s, gw, owner), dial(t, s, gw, member), dial(t, s, gw, outsider)
	cm.refused("e", frame.MethodEdit, map[string]any{"conversationId": group, "msgId": old.MsgID, "content": "new news"}, "edit window has passed")
	cm.refused("r", frame.MethodRecall, map[string]any{"conversationId": group, "msgId": old.MsgID}, "recall window has passed")
	cx.refused("x", frame.MethodReact, map[string]any{"conversationId": group, "msgId": old.MsgID, "emoji": "👍"}, "not a member")
	cx.refused("h", frame.MethodHide, map[string]any{"conversationId": group, "msgId": old.MsgID}, "not a member")
	cm.refused("u", frame.MethodRecall, map[string]any{"conversationId": group, "msgId": strings.Repeat("1e", 16)}, "message not found")
	cm.refused("all", frame.MethodChat, map[string]any{"chatType": 1, "recvId": group, "msg": map[string]any{"content": "hey all", "mentionAll": true}}, "owner")
	cm.refused("nm", frame.MethodChat, map[string]any{"chatType": 1, "recvId": group, "msg": map[string]any{"content": "hey", "mentions": []string{outsider}}}, "not a member")
	// The owner recalls any message of the group, whenever.
	co.mustCall("or", frame.MethodRecall, map[string]any{"conversationId": group, "msgId": old.MsgID})
	if ch := cm.changed(frame.KindRecall); ch.By != owner || !ch.Message.Msg.Recalled || ch.Message.Msg.RecalledBy != owner {
		t.Fatalf("owner's recall %+v", ch)
	}
	// Nothing refused reached the change log.
	if cs, err := st.Changes(ctx, group, 0, 10); err != nil || len(cs) != 1 {
		t.Fatalf("change log %+v, %v", cs, err)
	}
}

// Mentioned members get the message flagged, and their list says so until
// they have read it; @all flags everyone's.
func TestMentionsFlagTheListUntilRead(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	ctx := context.Background()
	st := openSystemStore(t, ctx)
	ids := registered(t, "owner", "bob", "carol")
	owner, bob, carol := ids[0], ids[1], ids[2]
	group := gid()
	if err := st.CreateGroup(ctx, domain.Group{ID: group, Name: "mentions", Owner: owner, Members: ids}); err != nil {
		t.Fatal(err)
	}
	co, cb := dial(t, s, gw, owner), dial(t, s, gw, bob)
	co.sent("m1", frame.GroupChat, group, map[string]any{"content": "@" + bob + " your turn", "mentions": []string{bob}})
	if p := pushData(t, cb.next(wait, isPush)); len(p.Msg.Mentions) != 1 || p.Msg.Mentions[0] != bob {
		t.Fatalf("push %+v", p)
	}
	waitStored(t, group, 1)
	tb, tc := tokenFor(t, s, bob), tokenFor(t, s, carol)
	if !listFlag(t, gw.Addr(), tb, group, "mentioned") || listFlag(t, gw.Addr(), tc, group, "mentioned") {
		t.Fatal("after @bob: bob's list must say mentioned, carol's must not")
	}
	cb.mustCall("rd", frame.MethodMarkChat, map[string]any{"chatType": 1, "recvId": group, "conversationId": group, "readSeq": 1})
	waitFor(t, "bob's mention cleared by reading", func() bool { return !listFlag(t, gw.Addr(), tb, group, "mentioned") })
	co.sent("m2", frame.GroupChat, group, map[string]any{"content": "everyone: lunch", "mentionAll": true})
	waitStored(t, group, 2)
	waitFor(t, "@all reaching carol's and bob's lists", func() bool {
		return listFlag(t, gw.Addr(), tc, group, "mentioned") && listFlag(t, gw.Addr(), tb, group, "mentioned")
	})
}

// Typing goes from socket to sockets only: rate-limited, to the other
// members, never to Kafka or the store.
func TestTypingReachesMembersButNeverTheStoreOrKafka(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	ctx := context.Background()
	st := openSystemStore(t, ctx)
	ids := registered(t, "typer", "peer", "member", "outsider")
	typer, peer, member, outsider := ids[0], ids[1], ids[2], ids[3]
	group := gid()
	if err := st.CreateGroup(ctx, domain.Group{ID: group, Name: "typing", Owner: typer, Members: []string{typer, member}}); err != nil {
		t.Fatal(err)
	}
	// The peer is on another gateway instance: gateway to gateway.
	other, err := s.AddGateway(ctx, freeAddr(t), freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	ct, cp, cm, cx := dial(t, s, gw, typer), dial(t, s, other, peer), dial(t, s, gw, member), dial(t, s, gw, outsider)
	waitOnline(t, ct, []string{peer})
	conv := frame.SingleConversationID(typer, peer)
	isTyping := func(f frame.Frame) bool { return f.Method == frame.MethodTyping && f.FrameType == frame.Data }

	ct.mustCall("t1", frame.MethodTyping, map[string]any{"conversationId": conv, "typing": true})
	f := cp.next(wait, isTyping)
	var ty frame.Typing
	if err := json.Unmarshal(f.Data, &ty); err != nil || ty.UserID != typer || !ty.Typing || ty.ConversationID != conv || ty.TTL <= 0 || f.FormID != typer {
		t.Fatalf("typing frame %+v %s", f, f.Data)
	}
	ct.refused("t2", frame.MethodTyping, map[string]any{"conversationId": conv, "typing": true}, "typing: too frequent")
	ct.mustCall("t3", frame.MethodTyping, map[string]any{"conversationId": group, "typing": true})
	cm.next(wait, isTyping)
	ct.quiet(200*time.Millisecond, isTyping) // not back to the one typing
	cx.refused("t4", frame.MethodTyping, map[string]any{"conversationId": group, "typing": true}, "not part of")

	// Neither conversation has anything stored or in Kafka.
	for _, c := range []string{conv, group} {
		if ms, err := st.Messages(ctx, c, 0, 10); err != nil || len(ms) != 0 {
			t.Fatalf("%s stored %d messages (%v)", c, len(ms), err)
		}
		if v, err := st.ChangeVersion(ctx, c); err != nil || v != 0 {
			t.Fatalf("%s has changes (%d, %v)", c, v, err)
		}
	}
	for _, topic := range []string{event.TopicChat, event.TopicRead, event.TopicDead} {
		for _, m := range readAll(t, ctx, s.Brokers, topic) {
			if k := string(m.Key); k == conv || k == group || strings.Contains(string(m.Value), typer) {
				t.Fatalf("typing reached Kafka topic %s: %s", topic, m.Value)
			}
		}
	}
}
