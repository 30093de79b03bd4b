package main

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"easychat/pkg/frame"
)

var (
	renderNow = time.Date(2026, 5, 1, 15, 0, 0, 0, time.Local)
	renderAt  = time.Date(2026, 5, 1, 14, 7, 0, 0, time.Local).UnixMilli()
	team      = Conv{ID: "g-1", ChatType: frame.GroupChat, GroupName: "team"}
	withBob   = Conv{ID: "alice_bob", ChatType: frame.SingleChat, PeerID: "bob"}
)

func TestMsgLineStates(t *testing.T) {
	base := Message{SendID: "bob", Seq: 12, SendTime: renderAt, Content: "see you at 8"}
	with := func(f func(*Message)) Message {
		m := base
		f(&m)
		return m
	}
	for _, c := range []struct {
		what string
		m    Message
		conv Conv
		want string
	}{
		{"handle", base, withBob, "[14:07] @bob #12  bob: see you at 8"},
		{"no seq yet: no handle", with(func(m *Message) { m.Seq, m.SendID = 0, "alice" }), withBob, "[14:07] @bob  me: see you at 8"},
		{"edited", with(func(m *Message) { m.Edited = renderAt + 1 }), withBob, "[14:07] @bob #12  bob: see you at 8 (edited)"},
		{"recalled", with(func(m *Message) { m.Recalled, m.RecalledBy, m.Content, m.Edited = true, "bob", "", 1 }), withBob,
			"[14:07] @bob #12  bob: ⌫ message recalled by bob"},
		{"recalled by me (the owner)", with(func(m *Message) { m.Recalled, m.RecalledBy, m.Content = true, "alice", "" }), team,
			"[14:07] #team #12  bob: ⌫ message recalled by you"},
		{"reactions, the most first", with(func(m *Message) {
			m.Reactions = map[string][]string{"❤️": {"carol"}, "👍": {"carol", "alice"}, "🎉": {"dave"}, "😮": {}}
		}), team, "[14:07] #team #12  bob: see you at 8  👍 2 ❤️ 1 🎉 1"},
		{"mentions me", with(func(m *Message) { m.Mentions = []string{"carol", "alice"} }), team, "[14:07] #team #12  bob: see you at 8  @you"},
		{"@all", with(func(m *Message) { m.MentionAll = true }), team, "[14:07] #team #12  bob: see you at 8  @you"},
		{"mentions another", with(func(m *Message) { m.Mentions = []string{"carol"} }), team, "[14:07] #team #12  bob: see you at 8"},
		{"my own @all", with(func(m *Message) { m.SendID, m.MentionAll = "alice", true }), team, "[14:07] #team #12  me: see you at 8"},
		{"reply", with(func(m *Message) {
			m.Quote = &frame.Quote{MsgID: "m4", Seq: 4, SendID: "alice", Content: "when do we\nmeet?"}
		}), withBob, "  ↪ #4 me: when do we meet?\n[14:07] @bob #12  bob: see you at 8"},
		{"reply to a recalled one", with(func(m *Message) { m.Quote = &frame.Quote{MsgID: "m4", Seq: 4, SendID: "carol", Recalled: true} }), team,
			"  ↪ #4 message recalled\n[14:07] #team #12  bob: see you at 8"},
		{"reply to one not found", with(func(m *Message) { m.Quote = &frame.Quote{MsgID: "m4", Missing: true} }), team,
			"  ↪ (quoted message not found)\n[14:07] #team #12  bob: see you at 8"},
		{"all at once", with(func(m *Message) {
			m.Quote = &frame.Quote{MsgID: "m4", Seq: 4, SendID: "carol", Content: strings.Repeat("x", 100)}
			m.Edited, m.Reactions, m.MentionAll = 1, map[string][]string{"👍": {"carol"}}, true
		}), team, "  ↪ #4 carol: " + strings.Repeat("x", 79) + "…\n[14:07] #team #12  bob: see you at 8 (edited)  👍 1  @you"},
	} {
		if got := msgLine("alice", c.conv, c.m, renderNow); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.what, got, c.want)
		}
	}
}

func TestChangeLine(t *testing.T) {
	before := Message{MsgID: "m12", SendID: "alice", Seq: 12, Content: "old", Reactions: map[string][]string{"❤️": {"bob"}}}
	after := func(f func(*Message)) Message {
		m := before
		f(&m)
		return m
	}
	for _, c := range []struct {
		what  string
		ch    frame.Changed
		r     ChangeResult
		where string
		want  string
	}{
		{"edit", frame.Changed{Kind: frame.KindEdit, By: "alice", Seq: 12}, ChangeResult{Held: true, Before: before, After: after(func(m *Message) { m.Content = "new\ntext" })}, "",
			"  ✎ you edited #12: new\n" + strings.Repeat(" ", utf8.RuneCountInString("  ✎ you edited #12: ")) + "text"},
		{"recall elsewhere", frame.Changed{Kind: frame.KindRecall, By: "bob", Seq: 12}, ChangeResult{After: after(func(m *Message) { m.Recalled = true })}, " in #team",
			"  ⌫ bob recalled #12 in #team"},
		{"react", frame.Changed{Kind: frame.KindReact, By: "carol", Seq: 12}, ChangeResult{Held: true, Before: before,
			After: after(func(m *Message) { m.Reactions = map[string][]string{"❤️": {"bob"}, "👍": {"carol"}} })}, "",
			"  carol reacted 👍 to #12  (❤️ 1 👍 1)"},
		{"react taken back", frame.Changed{Kind: frame.KindReact, By: "bob", Seq: 12}, ChangeResult{Held: true, Before: before,
			After: after(func(m *Message) { m.Reactions = nil })}, "",
			"  bob took back ❤️ on #12"},
		{"react, not held", frame.Changed{Kind: frame.KindReact, By: "bob", Seq: 3}, ChangeResult{After: Message{Seq: 3, Reactions: map[string][]string{"❤️": {"bob", "carol"}}}}, "",
			"  bob reacted ❤️ to #3  (❤️ 2)"},
		{"hide", frame.Changed{Kind: frame.KindHide, By: "alice", Seq: 12}, ChangeResult{Held: true, Before: before, After: before}, "",
			"  hidden #12"},
	} {
		if got := changeLine("alice", c.ch, c.r, c.where); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.what, got, c.want)
		}
	}
	if got, want := typingLine("bob", " in #team"), "  … bob is typing in #team"; got != want {
		t.Errorf("typing: %q, want %q", got, want)
	}
}

func TestListLineMentionedAndRecalled(t *testing.T) {
	list := []ConvInfo{{ConversationID: "g-1", ChatType: frame.GroupChat, GroupName: "team", Unread: 2, Mentioned: true,
		LastMsg: &LastMsg{SendID: "bob", SendTime: renderAt, Msg: frame.Msg{Recalled: true}}}}
	got := listLines("alice", list, renderNow)[0]
	if !strings.Contains(got, "2 unread @you") || !strings.Contains(got, "bob: ⌫ message recalled") {
		t.Fatalf("list line %q", got)
	}
}
