package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"easychat/pkg/frame"
)

// evil tries to erase the line and draw a fake one from bob in its place.
const evil = "\x1b[2K\r[12:22] @bob  bob: fake"

func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"héllo 你好 👋", "héllo 你好 👋"},
		{"👨‍👩‍👧 ❤️ 👋🏽 سلام", "👨‍👩‍👧 ❤️ 👋🏽 سلام"}, // joiners, variation selector, modifier, RTL script
		{`C:\temp \x1b`, `C:\temp \x1b`},         // backslashes are text
		{"\ufffd", "\ufffd"},                     // a real U+FFFD is valid text
		{evil, `\x1b[2K\r[12:22] @bob  bob: fake`},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\a`},           // OSC: set the window title (BEL ends it)
		{"\x1b]0;pwned\x1b\\", `\x1b]0;pwned\x1b\`},      // (ST ends it)
		{"\x1b[8mhidden\x1b[0m", `\x1b[8mhidden\x1b[0m`}, // SGR conceal
		{"a\tb\nc\rd\be\x00\x7f", `a\tb\nc\rd\be\x00\x7f`},
		{"\u009b2K\u0085\u009d0;t\u009c", `\u009b2K\u0085\u009d0;t\u009c`}, // C1: CSI, NEL, OSC, ST
		{"pay \u202eevil\u202c", `pay \u202eevil\u202c`},                   // bidi override
		{"\u202a\u202b\u202d\u2066\u2067\u2068\u2069", `\u202a\u202b\u202d\u2066\u2067\u2068\u2069`},
		{"\u200e\u200f\ufeff\u2028\u2029\u061c", `\u200e\u200f\ufeff\u2028\u2029\u061c`},
		{"ok\xff\xfe", `ok\xff\xfe`},     // not UTF-8
		{"cut \xe4\xbd", `cut \xe4\xbd`}, // a truncated 你
		{"\xc0\x80", `\xc0\x80`},         // an overlong NUL
	} {
		got := printable(c.in)
		if got != c.want {
			t.Errorf("printable(%q) = %q, want %q", c.in, got, c.want)
		}
		if again := printable(got); again != got {
			t.Errorf("printable not idempotent on %q: %q", got, again)
		}
		for _, r := range got {
			if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) && r != '\u200c' && r != '\u200d' {
				t.Errorf("printable(%q) keeps %U", c.in, r)
			}
		}
	}
}

// Every renderer of received data escapes it, and a line break in a name
// cannot start a line of its own.
func TestRenderersEscape(t *testing.T) {
	now := time.Date(2026, 5, 1, 15, 0, 0, 0, time.Local)
	name := "team\n[12:22] @bob  bob: fake" + evil
	group := Conv{ID: "g-1" + evil, ChatType: frame.GroupChat, GroupName: name}
	single := Conv{ID: "alice_bob", ChatType: frame.SingleChat, PeerID: "bob" + evil}
	list := []ConvInfo{
		{ConversationID: group.ID, ChatType: frame.GroupChat, GroupName: name},
		{ConversationID: "alice_x", ChatType: frame.SingleChat, PeerID: evil},
	}
	list[0].LastMsg = &LastMsg{SendID: evil, Msg: frame.Msg{Content: evil + "\n" + evil}}
	lines := map[string]string{
		"msgLine group":  msgLine("alice", group, Message{SendID: evil, Content: "hi"}, now),
		"msgLine single": msgLine("alice", single, Message{SendID: "bob", Content: "hi"}, now),
		"groupChangeLine": groupChangeLine("alice", frame.GroupChange{GroupID: "g-1" + evil, Name: name, By: evil,
			Added: []string{evil}, Removed: []string{"carol\n" + evil}}),
		"receiptLine":   receiptLine(frame.ReadNotice{ReaderID: evil}, group),
		"deliveredLine": deliveredLine(frame.Delivery{UserID: evil}, single),
	}
	for i, l := range listLines("alice", list, now) {
		lines["listLines "+string(rune('0'+i))] = l
	}
	for what, l := range lines {
		if strings.ContainsAny(l, "\x1b\r\n") {
			t.Errorf("%s: %q", what, l)
		}
		if !strings.Contains(l, `\x1b[2K\r[12:22]`) {
			t.Errorf("%s does not show the escaped text: %q", what, l)
		}
	}

	// A multi-line message stays multi-line; each continuation is indented
	// past the prefix and escaped.
	got := msgLine("alice", single, Message{SendID: "bob", Content: "one\n" + evil}, now)
	prefix := `[--:--] @bob\x1b[2K\r[12:22] @bob  bob: fake  bob: `
	want := prefix + "one\n" + strings.Repeat(" ", len(prefix)) + `\x1b[2K\r[12:22] @bob  bob: fake`
	if got != want {
		t.Errorf("multi-line msgLine:\n%q\nwant\n%q", got, want)
	}
}

// The last guard: whatever a caller prints, only its own line breaks reach
// the terminal raw.
func TestPrinterEscapes(t *testing.T) {
	var b strings.Builder
	p := &Printer{w: &b}
	p.Println("a" + evil)
	p.Printf("%s\n", "b\u202e")
	if got, want := b.String(), `a\x1b[2K\r[12:22] @bob  bob: fake`+"\n"+`b\u202e`+"\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Through the real path: hostile text in a push's content, its sender, a
// group's name, receipts, a group change and a server error reaches the
// output escaped, and no fake message line appears.
func TestHostileFramesPrintEscaped(t *testing.T) {
	g := newFakeGateway(t)
	g.groupNames = map[string]string{"g-1": "team" + evil + "\n[12:22] @bob  bob: fake name"}
	g.chatErr = "rejected" + evil
	app, out := startApp(t, g)
	const conv = "alice_bob"

	g.pushLive(push(conv, "bob", 1, evil+"\n[12:22] @bob  bob: fake 2nd line"))
	g.pushLive(push("g-1", "carol"+evil, 1, "from carol"))
	g.pushLive(push("g-1", "dave", 2, "named group"))
	send := func(method string, v any) {
		data, _ := json.Marshal(v)
		g.send(frame.Frame{FrameType: frame.Data, Method: method, Data: data})
	}
	send(frame.MethodRead, frame.ReadNotice{ConversationID: conv, ReaderID: "reader" + evil, ReadSeq: 1})
	send(frame.MethodDelivered, frame.Delivery{ConversationID: conv, UserID: "dev" + evil, DeliveredSeq: 1})
	send(frame.MethodGroupChanged, frame.GroupChange{GroupID: "g-1", Name: "changed" + evil, By: "by" + evil, Added: []string{"new" + evil}})
	ctx := context.Background()
	app.Handle(ctx, Command{Kind: KindOpen, ID: "bob"})
	app.Handle(ctx, Command{Kind: KindSend, Text: "hi"})

	for _, s := range []string{"fake 2nd line", "from carol", "named group", "reader", "dev", "changed", "rejected"} {
		waitFor(t, s, func() bool { return strings.Contains(out.String(), s) })
	}
	text := out.String()
	noFakeLines(t, text)
	for _, s := range []string{"carol", "#team", "reader", "dev", "changed", "by", "new", "✗ not sent to @bob: rejected"} {
		if !strings.Contains(text, s+`\x1b[2K\r[12:22] @bob  bob: fake`) {
			t.Errorf("%q is not shown escaped:\n%s", s, text)
		}
	}
	if !strings.Contains(text, `#team\x1b[2K\r[12:22] @bob  bob: fake\n[12:22] @bob  bob: fake name`) {
		t.Errorf("the line break in the group name is not escaped:\n%s", text)
	}
}

// The fields of messages that live are escaped too: a reaction's emoji, an
// edited text, a quote's preview and sender, who recalled, who changed or
// is typing. None can draw a line of its own.
func TestNewFieldsEscape(t *testing.T) {
	now := time.Date(2026, 5, 1, 15, 0, 0, 0, time.Local)
	single := Conv{ID: "alice_bob", ChatType: frame.SingleChat, PeerID: "bob"}
	m := Message{SendID: "bob", Seq: 3, Content: "edited\n" + evil, Edited: 1,
		Quote:     &frame.Quote{MsgID: "m1", Seq: 1, SendID: "carol" + evil, Content: "first\n" + evil},
		Reactions: map[string][]string{"👍" + evil: {"x"}, evil + "\n" + evil: {"y"}}}
	recalled := Message{SendID: "bob", Seq: 4, Recalled: true, RecalledBy: "mallory" + evil}
	ch := frame.Changed{Kind: frame.KindReact, By: "carol" + evil, Seq: 3}
	edit := frame.Changed{Kind: frame.KindEdit, By: "carol" + evil, Seq: 3}
	lines := map[string]string{
		"msgLine":         msgLine("alice", single, m, now),
		"msgLine recall":  msgLine("alice", single, recalled, now),
		"quoteLine":       quoteLine("alice", *m.Quote),
		"changeLine edit": changeLine("alice", edit, ChangeResult{After: m}, ""),
		"changeLine react": changeLine("alice", ch, ChangeResult{After: Message{Seq: 3, Reactions: map[string][]string{
			"👍" + evil: {"carol" + evil}}}}, ""),
		"changeLine where": changeLine("alice", frame.Changed{Kind: frame.KindRecall, By: "bob", Seq: 1}, ChangeResult{}, " in @"+evil),
		"typingLine":       typingLine("bob"+evil, " in #"+evil),
	}
	for what, l := range lines {
		if strings.ContainsAny(l, "\x1b\r") {
			t.Errorf("%s: control bytes in %q", what, l)
		}
		if !strings.Contains(l, `\x1b[2K\r[12:22] @bob  bob: fake`) {
			t.Errorf("%s does not show the escaped text: %q", what, l)
		}
		for i, part := range strings.Split(l, "\n") {
			// A line of its own starts with a message's prefix (the first)
			// or is indented: never with a fake one.
			if strings.HasPrefix(part, "[12:22]") || (i > 0 && !strings.HasPrefix(part, " ") && !strings.HasPrefix(part, "[--:--] @bob #3")) {
				t.Errorf("%s: line %d can pass for a message: %q", what, i, part)
			}
		}
	}
	if strings.Count(lines["msgLine"], "\n") != 2 { // the quote, the text's own line break
		t.Errorf("msgLine lines: %q", lines["msgLine"])
	}
}

// Through the real path: a hostile conversation.changed (edited text,
// emoji, who) and conversation.typing reach the output escaped.
func TestHostileChangesPrintEscaped(t *testing.T) {
	g := newFakeGateway(t)
	_, out := startApp(t, g)
	const conv = "alice_bob"
	g.pushLive(push(conv, "bob", 1, "hello"))
	waitFor(t, "the push", func() bool { return strings.Contains(out.String(), "bob: hello") })
	send := func(method string, v any) {
		data, _ := json.Marshal(v)
		g.send(frame.Frame{FrameType: frame.Data, Method: method, Data: data})
	}
	send(frame.MethodChanged, changed(conv, frame.KindEdit, "bob"+evil, "mhello", 1, 1, frame.Msg{Content: "edit\n" + evil, Edited: 1}))
	send(frame.MethodChanged, changed(conv, frame.KindReact, "bob", "mhello", 1, 2, frame.Msg{Content: "x",
		Reactions: map[string][]string{"👍" + evil: {"bob"}}}))
	send(frame.MethodTyping, frame.Typing{ConversationID: conv, ChatType: frame.SingleChat, UserID: "typist" + evil, Typing: true})
	for _, s := range []string{"edited #1", "reacted", "typist"} {
		waitFor(t, s, func() bool { return strings.Contains(out.String(), s) })
	}
	text := out.String()
	noFakeLines(t, text)
	esc := `\x1b[2K\r[12:22] @bob  bob: fake`
	prefix := "  ✎ bob" + esc + " edited #1 in @bob: " // no conversation is open
	for _, s := range []string{
		prefix + "edit\n" + strings.Repeat(" ", utf8.RuneCountInString(prefix)) + esc + "\n",
		"  bob reacted 👍" + esc + " to #1 in @bob  (👍" + esc + " 1)\n",
		"  … typist" + esc + " is typing in @bob\n",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("%q is not shown escaped:\n%s", s, text)
		}
	}
}

// noFakeLines fails if text holds a control byte or a line that poses as a
// message.
func noFakeLines(t *testing.T, text string) {
	t.Helper()
	if strings.ContainsAny(text, "\x1b\r") {
		t.Fatalf("control bytes printed:\n%q", text)
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "[12:22]") {
			t.Fatalf("a fake message line was printed: %q\nall:\n%s", l, text)
		}
	}
}
