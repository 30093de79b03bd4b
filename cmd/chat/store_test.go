package main

import (
	"reflect"
	"testing"

	"easychat/pkg/frame"
)

func push(conv, from string, seq int64, text string) frame.Push {
	ct := frame.SingleChat
	if conv[0] == 'g' {
		ct = frame.GroupChat
	}
	return frame.Push{ConversationID: conv, ChatType: ct, SendID: from, Seq: seq, SendTime: 1000 * seq,
		Msg: frame.Msg{MsgID: "m" + text, Content: text}}
}

func contents(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Content)
	}
	return out
}

// The same message arriving by push, sync and history is held once, and the
// view is in seq order whatever the arrival order.
func TestMergeDedupesAndOrdersBySeq(t *testing.T) {
	s := NewStore("alice")
	conv := "alice_bob"
	if _, isNew := s.Merge(push(conv, "bob", 2, "two"), FromPush); !isNew {
		t.Fatal("first push not new")
	}
	for _, src := range []Source{FromPush, FromSync, FromHistory} {
		if _, isNew := s.Merge(push(conv, "bob", 2, "two"), src); isNew {
			t.Fatalf("duplicate from source %d counted as new", src)
		}
	}
	s.Merge(push(conv, "bob", 3, "three"), FromSync)
	s.Merge(push(conv, "bob", 1, "one"), FromHistory)
	if got := contents(s.Messages(conv)); !reflect.DeepEqual(got, []string{"one", "two", "three"}) {
		t.Fatalf("messages %v", got)
	}
	c, _ := s.Conv(conv)
	if c.PeerID != "bob" || c.Seq != 3 || c.Unread != 2 {
		t.Fatalf("conv %+v, want peer bob, seq 3, unread 2 (history does not count)", c)
	}
}

// A message of mine is known by msgId after the ack, before its seq: the
// sync that brings it later fills the seq in and does not show it again.
func TestOwnMessageGetsItsSeqFromSync(t *testing.T) {
	s := NewStore("alice")
	conv := "alice_bob"
	s.Merge(push(conv, "bob", 1, "hi"), FromPush)
	if !s.AddOwn(conv, frame.SingleChat, "mmine", "mine", 1500) {
		t.Fatal("AddOwn")
	}
	if got := contents(s.Messages(conv)); !reflect.DeepEqual(got, []string{"hi", "mine"}) {
		t.Fatalf("before seq: %v", got)
	}
	if _, isNew := s.Merge(push(conv, "alice", 2, "mine"), FromSync); isNew {
		t.Fatal("own message shown twice")
	}
	ms := s.Messages(conv)
	if ms[1].Seq != 2 {
		t.Fatalf("seq not filled in: %+v", ms[1])
	}
	if c, _ := s.Conv(conv); c.Unread != 1 {
		t.Fatalf("unread %d, want 1 (bob's; mine does not count)", c.Unread)
	}
}

func TestKnownSeq(t *testing.T) {
	s := NewStore("alice")
	// From the list only: sync starts at the list's seq (older ones are
	// history, fetched on /open).
	s.ApplyList([]ConvInfo{{ConversationID: "alice_bob", ChatType: frame.SingleChat, PeerID: "bob", Seq: 10, ReadSeq: 4, Unread: 6},
		{ConversationID: "g-1", ChatType: frame.GroupChat, GroupName: "team", Seq: 0}})
	if got := s.KnownSeqs(); !reflect.DeepEqual(got, map[string]int64{"alice_bob": 10, "g-1": 0}) {
		t.Fatalf("from list: %v", got)
	}
	// Contiguous pushes advance it.
	s.Merge(push("alice_bob", "bob", 11, "11"), FromPush)
	s.Merge(push("alice_bob", "bob", 12, "12"), FromPush)
	if got := s.KnownSeqs()["alice_bob"]; got != 12 {
		t.Fatalf("after 11, 12: %d", got)
	}
	// A gap (13 missed) stops it at 12 until sync fills it.
	s.Merge(push("alice_bob", "bob", 14, "14"), FromPush)
	if got := s.KnownSeqs()["alice_bob"]; got != 12 {
		t.Fatalf("with a gap: %d, want 12", got)
	}
	s.Merge(push("alice_bob", "bob", 13, "13"), FromSync)
	if got := s.KnownSeqs()["alice_bob"]; got != 14 {
		t.Fatalf("gap filled: %d, want 14", got)
	}
	// A conversation first seen by a push: older ones are history.
	s.Merge(push("g-2", "carol", 40, "40"), FromPush)
	if got := s.KnownSeqs()["g-2"]; got != 40 {
		t.Fatalf("new conversation: %d, want 40", got)
	}
	// History below the base does not change it.
	s.Merge(push("g-2", "carol", 38, "38"), FromHistory)
	if got := s.KnownSeqs()["g-2"]; got != 40 {
		t.Fatalf("after history: %d, want 40", got)
	}
	// A conversation first seen by sync from 0 (sync sends all of it).
	s.Merge(push("g-3", "carol", 1, "g3-1"), FromSync)
	s.Merge(push("g-3", "carol", 2, "g3-2"), FromSync)
	if got := s.KnownSeqs()["g-3"]; got != 2 {
		t.Fatalf("synced conversation: %d", got)
	}
}

func TestToMark(t *testing.T) {
	s := NewStore("alice")
	conv := "g-1"
	s.Merge(push(conv, "bob", 1, "b1"), FromPush)
	s.Merge(push(conv, "alice", 2, "a2"), FromSync)
	s.Merge(push(conv, "carol", 3, "c3"), FromPush)
	seq, ids, ok := s.ToMark(conv)
	if !ok || seq != 3 || !reflect.DeepEqual(ids, []string{"mb1", "mc3"}) {
		t.Fatalf("ToMark = %d %v %v", seq, ids, ok)
	}
	if _, _, ok := s.ToMark(conv); ok {
		t.Fatal("nothing new, marked again")
	}
	s.Merge(push(conv, "bob", 4, "b4"), FromPush)
	if seq, ids, ok := s.ToMark(conv); !ok || seq != 4 || !reflect.DeepEqual(ids, []string{"mb4"}) {
		t.Fatalf("second ToMark = %d %v %v", seq, ids, ok)
	}
}

func TestFindGroupAndTitles(t *testing.T) {
	s := NewStore("alice")
	s.ApplyList([]ConvInfo{{ConversationID: "g-7", ChatType: frame.GroupChat, GroupName: "Team"}})
	for _, q := range []string{"g-7", "team", "Team"} {
		if id, ok := s.FindGroup(q); !ok || id != "g-7" {
			t.Errorf("FindGroup(%q) = %q %v", q, id, ok)
		}
	}
	if _, ok := s.FindGroup("bob"); ok {
		t.Error("bob found as a group")
	}
	c, _ := s.Conv("g-7")
	single := s.Ensure("alice_bob", frame.SingleChat)
	if c.Title() != "#Team" || c.RecvID() != "g-7" || single.Title() != "@bob" || single.RecvID() != "bob" {
		t.Fatalf("titles %q %q %q %q", c.Title(), c.RecvID(), single.Title(), single.RecvID())
	}
}

// An empty conversation the user opened is held whole: messages that come
// while offline are synced from seq 0, not skipped as history.
func TestCompleteConversationSyncsFromZero(t *testing.T) {
	s := NewStore("alice")
	s.Ensure("alice_bob", frame.SingleChat)
	s.SetComplete("alice_bob")
	s.ApplyList([]ConvInfo{{ConversationID: "alice_bob", ChatType: frame.SingleChat, PeerID: "bob", Seq: 2}})
	if got := s.KnownSeqs()["alice_bob"]; got != 0 {
		t.Fatalf("known seq %d, want 0", got)
	}
	s.Merge(push("alice_bob", "bob", 2, "two"), FromPush) // 1 was missed
	if got := s.KnownSeqs()["alice_bob"]; got != 0 {
		t.Fatalf("after a push with a gap: %d, want 0", got)
	}
}
