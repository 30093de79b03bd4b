package main

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"easychat/pkg/frame"
)

// serveChanges makes g answer change frames as the server does: an ack
// with the new version, then conversation.changed with the message's new
// state (unless quiet: then only a later sync tells). errs answers a
// method with an error frame instead.
func (g *fakeGateway) serveChanges(errs map[string]string, quiet bool) {
	var version int64
	kinds := map[string]string{frame.MethodEdit: frame.KindEdit, frame.MethodRecall: frame.KindRecall, frame.MethodReact: frame.KindReact, frame.MethodHide: frame.KindHide}
	g.onChange = func(f frame.Frame) {
		if e := errs[f.Method]; e != "" {
			g.send(frame.Frame{FrameType: frame.Error, ID: f.ID, Method: f.Method, ErrMsg: e})
			return
		}
		var c struct {
			ConversationID, MsgID, Content, Emoji string
			Remove                                bool
		}
		_ = json.Unmarshal(f.Data, &c)
		g.mu.Lock()
		var target *frame.Push
		for i := range g.log {
			if g.log[i].Msg.MsgID == c.MsgID {
				target = &g.log[i]
			}
		}
		if target == nil {
			g.mu.Unlock()
			g.send(frame.Frame{FrameType: frame.Error, ID: f.ID, Method: f.Method, ErrMsg: "message not found"})
			return
		}
		version = max(version, g.version) + 1
		m := &target.Msg
		switch f.Method {
		case frame.MethodEdit:
			m.Content, m.Edited = c.Content, 1
		case frame.MethodRecall:
			m.Content, m.Recalled, m.RecalledBy = "", true, "alice"
		case frame.MethodReact:
			r := map[string][]string{}
			for e, us := range m.Reactions {
				for _, u := range us {
					if e != c.Emoji || u != "alice" {
						r[e] = append(r[e], u)
					}
				}
			}
			if !c.Remove {
				r[c.Emoji] = append(r[c.Emoji], "alice")
			}
			m.Reactions = r
		}
		if f.Method != frame.MethodHide {
			m.Version = version
		}
		ch := frame.Changed{ConversationID: c.ConversationID, ChatType: target.ChatType, Version: version, Kind: kinds[f.Method],
			MsgID: c.MsgID, Seq: target.Seq, By: "alice"}
		if f.Method != frame.MethodHide {
			cp := *target
			ch.Message = &cp
		}
		if quiet {
			g.syncChanges = append(g.syncChanges, ch)
		}
		g.mu.Unlock()
		g.ack(f.ID, f.Method, frame.ChatAck{ConversationID: c.ConversationID, MsgID: c.MsgID})
		if !quiet {
			data, _ := json.Marshal(ch)
			g.send(frame.Frame{FrameType: frame.Data, Method: frame.MethodChanged, FormID: "alice", Data: data})
		}
	}
}

// changeReq is the method and data of the n-th change frame g got.
func (g *fakeGateway) changeReq(n int) (string, map[string]any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n >= len(g.changeReqs) {
		return "", nil
	}
	var data map[string]any
	_ = json.Unmarshal(g.changeReqs[n].Data, &data)
	return g.changeReqs[n].Method, data
}

func (g *fakeGateway) nChangeReqs() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.changeReqs)
}

// The commands against a server: a reply quotes by msgId and learns its
// seq; edit, react (toggling), recall and delete send their frames and
// show the server's answer; errors print.
func TestMessageCommands(t *testing.T) {
	g := newFakeGateway(t)
	g.storeChats = true
	g.serveChanges(map[string]string{frame.MethodRecall: "recall window has passed"}, false)
	const conv = "alice_bob"
	g.add(push(conv, "bob", 1, "hi"))
	lunch := push(conv, "bob", 2, "lunch?")
	lunch.Msg.Reactions = map[string][]string{"👍": {"alice"}}
	g.add(lunch)
	app, out := startApp(t, g)
	ctx := context.Background()
	has := func(s string) func() bool { return func() bool { return strings.Contains(out.String(), s) } }

	app.Handle(ctx, Command{Kind: KindOpen, ID: "bob"})
	for _, s := range []string{"@bob #1  bob: hi\n", "@bob #2  bob: lunch?  👍 1\n"} {
		if !strings.Contains(out.String(), s) {
			t.Fatalf("history lacks %q:\n%s", s, out.String())
		}
	}

	app.Handle(ctx, Command{Kind: KindReply, Seq: 2, Text: "yes"})
	waitFor(t, "the reply's seq", has("  ✓ #3 in @bob: yes\n"))
	g.mu.Lock()
	sent := g.chats[len(g.chats)-1]
	g.mu.Unlock()
	if sent.Msg.Quote == nil || !reflect.DeepEqual(*sent.Msg.Quote, frame.Quote{MsgID: "mlunch?"}) || sent.Msg.Mentions != nil {
		t.Fatalf("reply sent as %+v", sent.Msg)
	}
	if m, ok := app.Store.FindSeq(conv, 3); !ok || m.Quote == nil || m.Quote.Content != "lunch?" || m.Quote.SendID != "bob" {
		t.Fatalf("own reply held as %+v", m)
	}

	app.Handle(ctx, Command{Kind: KindEdit, Seq: 3, Text: "yes!"})
	waitFor(t, "the edit", has("  ✎ you edited #3: yes!\n"))
	if method, data := g.changeReq(0); method != frame.MethodEdit || data["content"] != "yes!" || data["msgId"] == "" || data["conversationId"] != conv {
		t.Fatalf("edit frame %s %v", method, data)
	}

	app.Handle(ctx, Command{Kind: KindReact, Seq: 2, Emoji: "👍"}) // mine already: take it back
	waitFor(t, "the reaction taken back", has("  you took back 👍 on #2\n"))
	app.Handle(ctx, Command{Kind: KindReact, Seq: 2, Emoji: "❤️"})
	waitFor(t, "the reaction", has("  you reacted ❤️ to #2  (❤️ 1)\n"))
	for i, want := range []bool{true, false} {
		if method, data := g.changeReq(1 + i); method != frame.MethodReact || data["remove"] != want || data["msgId"] != "mlunch?" {
			t.Fatalf("react frame %d: %s %v", i, method, data)
		}
	}

	app.Handle(ctx, Command{Kind: KindRecall, Seq: 1})
	waitFor(t, "the recall's error", has("  ✗ recall #1: recall window has passed\n"))

	app.Handle(ctx, Command{Kind: KindDelete, Seq: 1})
	waitFor(t, "the hide", has("  hidden #1\n"))
	if method, data := g.changeReq(4); method != frame.MethodHide || data["msgId"] != "mhi" {
		t.Fatalf("hide frame %s %v", method, data)
	}
	if _, ok := app.Store.FindSeq(conv, 1); ok {
		t.Fatal("#1 still shown")
	}

	// Refused here, without a frame: bob's text, a seq that is not there.
	n := g.nChangeReqs()
	app.Handle(ctx, Command{Kind: KindEdit, Seq: 2, Text: "x"})
	app.Handle(ctx, Command{Kind: KindRecall, Seq: 99})
	app.Handle(ctx, Command{Kind: KindReact, Seq: 1, Emoji: "👍"}) // hidden
	for _, s := range []string{"  ! #2 is not your message\n", "  ! no message #99 in @bob\n", "  ! no message #1 in @bob\n"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("no %q:\n%s", s, out.String())
		}
	}
	if g.nChangeReqs() != n {
		t.Fatalf("frames sent for refused commands")
	}
	app.waitAcks(ctx, time.Second)
	if strings.Contains(out.String(), "not acked") || app.pending() != 0 {
		t.Fatalf("pending %d:\n%s", app.pending(), out.String())
	}
}

// When the server's conversation.changed does not come, a sync brings the
// change (asked for with the versions held), shown once.
func TestChangeShownBySyncWhenNoFrameComes(t *testing.T) {
	g := newFakeGateway(t)
	g.serveChanges(nil, true)
	const conv = "alice_bob"
	g.add(push(conv, "alice", 1, "typo"))
	g.version = 4
	app, out := startApp(t, g)
	ctx := context.Background()
	app.Handle(ctx, Command{Kind: KindOpen, ID: "bob"})
	app.Handle(ctx, Command{Kind: KindEdit, Seq: 1, Text: "fixed"})
	waitFor(t, "the edit, by sync", func() bool { return strings.Contains(out.String(), "  ✎ you edited #1: fixed\n") })
	g.mu.Lock()
	var req struct{ Versions map[string]int64 }
	_ = json.Unmarshal(g.syncReqs[len(g.syncReqs)-1], &req)
	g.mu.Unlock()
	if req.Versions[conv] != 4 {
		t.Fatalf("sync asked with versions %v, want %s from the history (4)", req.Versions, conv)
	}
	app.syncAndPrint(ctx) // again: nothing new
	if n := strings.Count(out.String(), "edited #1"); n != 1 {
		t.Fatalf("edit shown %d times:\n%s", n, out.String())
	}
}

// conversation.changed frames update the store and print once; a stale or
// repeated one prints nothing. After a reconnect, sync asks for the changes
// after the highest version seen and applies them.
func TestChangedFramesLiveAndSynced(t *testing.T) {
	g := newFakeGateway(t)
	app, out := startApp(t, g)
	const conv = "alice_bob"
	g.pushLive(push(conv, "bob", 1, "one"))
	g.pushLive(push(conv, "bob", 2, "two"))
	send := func(ch frame.Changed) {
		data, _ := json.Marshal(ch)
		g.send(frame.Frame{FrameType: frame.Data, Method: frame.MethodChanged, FormID: ch.By, Data: data})
	}
	edit := changed(conv, frame.KindEdit, "bob", "mone", 1, 1, frame.Msg{Content: "ONE", Edited: 9})
	send(edit)
	send(edit) // a repeat
	send(changed(conv, frame.KindReact, "bob", "mone", 1, 1, frame.Msg{Content: "stale"}))
	send(frame.Changed{ConversationID: conv, ChatType: frame.SingleChat, Version: 2, Kind: frame.KindHide, MsgID: "mtwo", Seq: 2, By: "alice"})
	g.pushLive(push(conv, "bob", 3, "three")) // after them on the socket
	waitFor(t, "three", func() bool { return strings.Contains(out.String(), "bob: three") })
	text := out.String()
	if n := strings.Count(text, "✎ bob edited #1 in @bob: ONE\n"); n != 1 {
		t.Fatalf("edit shown %d times:\n%s", n, text)
	}
	if strings.Contains(text, "stale") || strings.Contains(text, "reacted") || !strings.Contains(text, "  hidden #2 in @bob\n") {
		t.Fatalf("output:\n%s", text)
	}
	if got := contents(app.Store.Messages(conv)); !reflect.DeepEqual(got, []string{"ONE", "three"}) {
		t.Fatalf("store %v", got)
	}

	g.mu.Lock()
	g.syncChanges = []frame.Changed{
		edit, // at or below the version held: not sent again
		changed(conv, frame.KindRecall, "bob", "mthree", 3, 3, frame.Msg{Recalled: true, RecalledBy: "bob"}),
	}
	g.mu.Unlock()
	g.drop()
	waitFor(t, "the synced recall", func() bool { return strings.Contains(out.String(), "⌫ bob recalled #3 in @bob\n") })
	g.mu.Lock()
	var req struct{ Versions map[string]int64 }
	_ = json.Unmarshal(g.syncReqs[len(g.syncReqs)-1], &req)
	g.mu.Unlock()
	if !reflect.DeepEqual(req.Versions, map[string]int64{conv: 3}) && !reflect.DeepEqual(req.Versions, map[string]int64{conv: 2}) {
		t.Fatalf("versions asked %v", req.Versions)
	}
	if m, _ := app.Store.FindSeq(conv, 3); !m.Recalled || m.Content != "" {
		t.Fatalf("#3 after sync: %+v", m)
	}
	if n := strings.Count(out.String(), "edited #1"); n != 1 {
		t.Fatalf("edit shown %d times:\n%s", n, out.String())
	}
}

// "… bob is typing" prints at most once per typingEvery per user and
// conversation, again after bob's message, never for my own devices or
// typing:false.
func TestTypingThrottled(t *testing.T) {
	g := newFakeGateway(t)
	var mu sync.Mutex
	now := time.Date(2026, 5, 1, 15, 0, 0, 0, time.Local)
	clockAt := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	_, out := startApp(t, g, func(a *App) { a.Now = clockAt })
	const conv = "alice_bob"
	g.pushLive(push(conv, "bob", 1, "one"))
	typing := func(user string, on bool) {
		data, _ := json.Marshal(frame.Typing{ConversationID: conv, ChatType: frame.SingleChat, UserID: user, Typing: on, TTL: 5000})
		g.send(frame.Frame{FrameType: frame.Data, Method: frame.MethodTyping, FormID: user, Data: data})
	}
	marks := 0
	barrier := func() { // frames are handled in order: wait for a marker
		marks++
		data, _ := json.Marshal(frame.ReadNotice{ConversationID: conv, ReaderID: "bob", ReadSeq: int64(marks)})
		g.send(frame.Frame{FrameType: frame.Data, Method: frame.MethodRead, Data: data})
		waitFor(t, "the marker", func() bool { return strings.Contains(out.String(), fmt.Sprintf("read @bob up to #%d\n", marks)) })
	}
	count := func() int { return strings.Count(out.String(), "… bob is typing in @bob") }

	typing("bob", true)
	typing("bob", true)
	typing("bob", true)
	typing("alice", true)
	typing("carol", false)
	barrier()
	if n := count(); n != 1 || strings.Contains(out.String(), "alice is typing") || strings.Contains(out.String(), "carol") {
		t.Fatalf("%d typing lines:\n%s", n, out.String())
	}
	advance(typingEvery - time.Second)
	typing("bob", true)
	barrier()
	if n := count(); n != 1 {
		t.Fatalf("typing again within %s: %d lines", typingEvery, n)
	}
	advance(2 * time.Second)
	typing("bob", true)
	barrier()
	if n := count(); n != 2 {
		t.Fatalf("typing after %s: %d lines", typingEvery, n)
	}
	g.pushLive(push(conv, "bob", 2, "two")) // sent: the next typing is news
	typing("bob", true)
	barrier()
	if n := count(); n != 3 {
		t.Fatalf("typing after a message: %d lines\n%s", n, out.String())
	}
}

// @ids in a group become msg.mentions: members only, "@bob." as bob,
// @all for the owner only; nothing in a single chat.
func TestMentions(t *testing.T) {
	g := newFakeGateway(t)
	g.groupNames = map[string]string{"g-1": "team"}
	g.add(push("g-1", "bob", 1, "welcome"))
	g.members = &Group{GroupID: "g-1", Name: "team", Owner: "bob", Members: []string{"alice", "bob", "carol", "dot.dot"}}
	app, out := startApp(t, g)
	ctx := context.Background()
	app.Handle(ctx, Command{Kind: KindOpen, ID: "team"})
	app.Handle(ctx, Command{Kind: KindSend, Text: "@bob @carol. and @dot.dot, @zed mail@carol.com @bob @all"})
	app.Handle(ctx, Command{Kind: KindOpen, ID: "bob"})
	app.Handle(ctx, Command{Kind: KindSend, Text: "@bob hi"})
	waitFor(t, "two acks", func() bool { return strings.Count(out.String(), "✓ sent") == 2 })
	g.mu.Lock()
	group, single := g.chats[0].Msg, g.chats[1].Msg
	g.mu.Unlock()
	if !reflect.DeepEqual(group.Mentions, []string{"bob", "carol", "dot.dot"}) || group.MentionAll {
		t.Fatalf("group mentions %v all=%v", group.Mentions, group.MentionAll)
	}
	if !strings.Contains(out.String(), "only the group's owner can mention everyone") {
		t.Fatalf("no hint for @all:\n%s", out.String())
	}
	if single.Mentions != nil || single.MentionAll {
		t.Fatalf("single chat mentions %v", single)
	}

	// The owner's @all; members that cannot be had: ids as typed.
	app.Store.SetMembers("g-1", []string{"alice", "bob"}, "alice")
	if ids, all := app.mentions(ctx, "g-1", "@all @bob"); !all || !reflect.DeepEqual(ids, []string{"bob"}) {
		t.Fatalf("owner: %v %v", ids, all)
	}
	app.Store.ForgetMembers("g-1")
	g.mu.Lock()
	g.members = nil
	g.mu.Unlock()
	if ids, all := app.mentions(ctx, "g-1", "@zed @x @all"); !all || !reflect.DeepEqual(ids, []string{"zed"}) {
		t.Fatalf("unknown members: %v %v", ids, all)
	}
}
