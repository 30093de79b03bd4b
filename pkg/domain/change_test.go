package domain

import (
	"fmt"
	"testing"

	"easychat/pkg/frame"
)

func TestApplyMovesForwardOnlyAndRecallWins(t *testing.T) {
	m := Message{MsgID: "m", Seq: 3, SendID: "ann", Msg: frame.Msg{Content: "hello", Mentions: []string{"bob"}}}
	m, ok := m.Apply(Edit{Kind: frame.KindEdit, By: "ann", Time: 5, Content: "hello!"}, 1)
	if !ok || m.Msg.Content != "hello!" || m.Msg.Edited != 5 || m.Msg.Version != 1 {
		t.Fatalf("edit: %+v %v", m.Msg, ok)
	}
	if _, ok := m.Apply(Edit{Kind: frame.KindEdit, By: "ann", Content: "older"}, 1); ok {
		t.Fatal("a change of the version already applied applied again")
	}
	m, _ = m.Apply(Edit{Kind: frame.KindReact, By: "bob", Emoji: "👍"}, 2)
	m, _ = m.Apply(Edit{Kind: frame.KindReact, By: "cat", Emoji: "👍"}, 3)
	if _, ok := m.Apply(Edit{Kind: frame.KindReact, By: "cat", Emoji: "👍"}, 4); ok {
		t.Fatal("one user reacted twice with one emoji")
	}
	m, _ = m.Apply(Edit{Kind: frame.KindReact, By: "bob", Emoji: "👍", Remove: true}, 4)
	if got := m.Msg.Reactions["👍"]; len(got) != 1 || got[0] != "cat" {
		t.Fatalf("reactions %v", m.Msg.Reactions)
	}
	before := m.Msg.Reactions
	m, ok = m.Apply(Edit{Kind: frame.KindRecall, By: "ann"}, 5)
	if !ok || !m.Msg.Recalled || m.Msg.Content != "" || m.Msg.Reactions != nil || m.Msg.Mentions != nil || m.Msg.RecalledBy != "ann" {
		t.Fatalf("recall: %+v", m.Msg)
	}
	if len(before["👍"]) != 1 {
		t.Fatal("applying changed the map of the message it was given")
	}
	for _, e := range []Edit{{Kind: frame.KindEdit, Content: "back"}, {Kind: frame.KindReact, By: "x", Emoji: "👍"}, {Kind: frame.KindRecall}} {
		if _, ok := m.Apply(e, 9); ok {
			t.Fatalf("%s applied to a recalled message", e.Kind)
		}
	}
}

func TestReactionsAreBounded(t *testing.T) {
	m := Message{Msg: frame.Msg{Content: "x"}}
	v := int64(0)
	for i := range frame.MaxDistinctEmoji {
		v++
		var ok bool
		if m, ok = m.Apply(Edit{Kind: frame.KindReact, By: "u", Emoji: fmt.Sprintf("e%d", i)}, v); !ok {
			t.Fatalf("emoji %d refused", i)
		}
	}
	if _, ok := m.Apply(Edit{Kind: frame.KindReact, By: "u", Emoji: "one-more"}, v+1); ok {
		t.Fatal("more distinct emoji than the bound")
	}
	for i := 1; ; i++ {
		v++
		var ok bool
		m, ok = m.Apply(Edit{Kind: frame.KindReact, By: fmt.Sprintf("user%d", i), Emoji: "e0"}, v)
		if !ok {
			break
		}
	}
	total := 0
	for _, us := range m.Msg.Reactions {
		total += len(us)
	}
	if total != frame.MaxReactionsOnMsg {
		t.Fatalf("reactions stopped at %d, want %d", total, frame.MaxReactionsOnMsg)
	}
}

func TestPreviewSaysRecalledOrMissingWithoutContent(t *testing.T) {
	ref := frame.Quote{MsgID: "q", Seq: 2}
	long := Message{SendID: "ann", Msg: frame.Msg{Content: string(make([]rune, 0)) + "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890"}}
	if p := Preview(ref, &long); p.SendID != "ann" || len([]rune(p.Content)) != frame.QuoteRunes+1 || p.Content[len(p.Content)-3:] != "…" {
		t.Fatalf("preview of a long message %+v", p)
	}
	if p := Preview(ref, &Message{SendID: "ann", Msg: frame.Msg{Recalled: true}}); !p.Recalled || p.Content != "" {
		t.Fatalf("preview of a recalled message %+v", p)
	}
	if p := Preview(ref, nil); !p.Missing || p.MsgID != "q" {
		t.Fatalf("preview of nothing %+v", p)
	}
}
