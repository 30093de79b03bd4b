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
	if !s.AddOwn(conv, frame.SingleChat, "mmine", frame.Msg{Content: "mine"}, 1500) {
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

// changed is a change of kind to message msgID (seq) of conv, the message
// then being as state says, at the given version.
func changed(conv, kind, by, msgID string, seq, version int64, state frame.Msg) frame.Changed {
	state.MsgID, state.Version = msgID, version
	return frame.Changed{ConversationID: conv, ChatType: frame.SingleChat, Version: version, Kind: kind, MsgID: msgID, Seq: seq, By: by,
		Message: &frame.Push{ConversationID: conv, ChatType: frame.SingleChat, SendID: "bob", Seq: seq, Msg: state}}
}

// A change replaces a held message's state only if it is of a later
// version than the one held; the conversation's version only goes up.
func TestApplyChangeVersionGating(t *testing.T) {
	s := NewStore("alice")
	const conv = "alice_bob"
	s.Merge(push(conv, "bob", 1, "one"), FromPush)
	s.Merge(push(conv, "bob", 2, "two"), FromPush)

	r := s.ApplyChange(changed(conv, frame.KindEdit, "bob", "mone", 1, 3, frame.Msg{Content: "ONE", Edited: 5}))
	if !r.Applied || !r.Held || r.Before.Content != "one" || r.After.Content != "ONE" {
		t.Fatalf("edit v3: %+v", r)
	}
	// Older (v2) and repeated (v3) changes are not applied, and do not show.
	for _, v := range []int64{2, 3} {
		if r := s.ApplyChange(changed(conv, frame.KindEdit, "bob", "mone", 1, v, frame.Msg{Content: "stale"})); r.Applied {
			t.Fatalf("v%d applied over v3: %+v", v, r)
		}
	}
	if m, _ := s.FindSeq(conv, 1); m.Content != "ONE" || m.Edited != 5 || m.Version != 3 {
		t.Fatalf("after stale changes: %+v", m)
	}
	r = s.ApplyChange(changed(conv, frame.KindReact, "carol", "mone", 1, 4, frame.Msg{Content: "ONE", Edited: 5,
		Reactions: map[string][]string{"👍": {"carol"}}}))
	if !r.Applied || len(r.After.Reactions["👍"]) != 1 || r.After.Content != "ONE" {
		t.Fatalf("react v4: %+v", r)
	}
	// A change of a message not held moves only the version.
	r = s.ApplyChange(changed(conv, frame.KindRecall, "bob", "mgone", 40, 9, frame.Msg{Recalled: true, RecalledBy: "bob"}))
	if r.Held || r.Applied || !r.Known || !r.After.Recalled || r.After.Seq != 40 {
		t.Fatalf("not held: %+v", r)
	}
	if got := s.Versions()[conv]; got != 9 {
		t.Fatalf("version %d, want 9", got)
	}
	// An older change after it does not take the version back.
	s.ApplyChange(changed(conv, frame.KindRecall, "bob", "mtwo", 2, 6, frame.Msg{Recalled: true, RecalledBy: "bob"}))
	if got := s.Versions()[conv]; got != 9 {
		t.Fatalf("version went back to %d", got)
	}
	if m, _ := s.FindSeq(conv, 2); !m.Recalled || m.Content != "" || m.RecalledBy != "bob" {
		t.Fatalf("recall v6 (older than the conversation's 9, newer than the message's): %+v", m)
	}
	// A conversation not held is not made up by a change.
	if r := s.ApplyChange(changed("alice_zed", frame.KindEdit, "zed", "mz", 1, 1, frame.Msg{Content: "z"})); r.Known || r.Applied {
		t.Fatalf("unknown conversation: %+v", r)
	}
	if _, ok := s.Conv("alice_zed"); ok {
		t.Fatal("a change created a conversation")
	}
}

// A history or sync item of a later version updates a held message; an
// older one does not.
func TestMergeTakesLaterState(t *testing.T) {
	s := NewStore("alice")
	const conv = "alice_bob"
	s.Merge(push(conv, "bob", 1, "one"), FromPush)
	later := push(conv, "bob", 1, "one")
	later.Msg.Content, later.Msg.Edited, later.Msg.Version = "uno", 7, 2
	if _, isNew := s.Merge(later, FromHistory); isNew {
		t.Fatal("known message new")
	}
	older := push(conv, "bob", 1, "one")
	older.Msg.Content, older.Msg.Version = "stale", 1
	s.Merge(older, FromSync)
	if m, _ := s.FindSeq(conv, 1); m.Content != "uno" || m.Edited != 7 {
		t.Fatalf("held %+v", m)
	}
}

// A hidden message leaves the view (and #seq lookups) but still counts for
// the seqs sync asks after; one hidden before it came is never shown.
func TestHide(t *testing.T) {
	s := NewStore("alice")
	const conv = "alice_bob"
	for i, w := range []string{"one", "two", "three"} {
		s.Merge(push(conv, "bob", int64(i+1), w), FromPush)
	}
	ch := frame.Changed{ConversationID: conv, ChatType: frame.SingleChat, Version: 4, Kind: frame.KindHide, MsgID: "mtwo", Seq: 2, By: "alice"}
	if r := s.ApplyChange(ch); !r.Applied {
		t.Fatalf("hide: %+v", r)
	}
	if r := s.ApplyChange(ch); r.Applied {
		t.Fatal("hidden twice")
	}
	if got := contents(s.Messages(conv)); !reflect.DeepEqual(got, []string{"one", "three"}) {
		t.Fatalf("view %v", got)
	}
	if _, ok := s.FindSeq(conv, 2); ok {
		t.Fatal("#2 still found")
	}
	if got := s.KnownSeqs()[conv]; got != 3 {
		t.Fatalf("known seq %d, want 3", got)
	}
	// A later edit by bob keeps it hidden here.
	s.ApplyChange(changed(conv, frame.KindEdit, "bob", "mtwo", 2, 5, frame.Msg{Content: "TWO"}))
	if got := contents(s.Messages(conv)); !reflect.DeepEqual(got, []string{"one", "three"}) {
		t.Fatalf("after an edit: %v", got)
	}
	hidden := push(conv, "bob", 4, "")
	hidden.Msg.MsgID, hidden.Msg.Hidden = "mfour", true
	if m, isNew := s.Merge(hidden, FromSync); !isNew || !m.Hidden {
		t.Fatalf("hidden from sync: %+v %v", m, isNew)
	}
	if c, _ := s.Conv(conv); c.Unread != 3 {
		t.Fatalf("unread %d, want 3 (the hidden one does not count)", c.Unread)
	}
}

// Replies held show the quoted message's recall and edit.
func TestChangeUpdatesQuotes(t *testing.T) {
	s := NewStore("alice")
	const conv = "alice_bob"
	s.Merge(push(conv, "bob", 1, "one"), FromPush)
	reply := push(conv, "alice", 2, "re")
	reply.Msg.Quote = &frame.Quote{MsgID: "mone", Seq: 1, SendID: "bob", Content: "one"}
	s.Merge(reply, FromSync)
	held, _ := s.FindSeq(conv, 2) // a copy handed out before: must not change under its holder

	s.ApplyChange(changed(conv, frame.KindEdit, "bob", "mone", 1, 1, frame.Msg{Content: "uno"}))
	if m, _ := s.FindSeq(conv, 2); m.Quote.Content != "uno" {
		t.Fatalf("quote after edit: %+v", m.Quote)
	}
	s.ApplyChange(changed(conv, frame.KindRecall, "bob", "mone", 1, 2, frame.Msg{Recalled: true}))
	m, _ := s.FindSeq(conv, 2)
	if !m.Quote.Recalled || m.Quote.Content != "" || m.Quote.Seq != 1 {
		t.Fatalf("quote after recall: %+v", m.Quote)
	}
	if held.Quote.Content != "one" || held.Quote.Recalled {
		t.Fatalf("a copy changed: %+v", held.Quote)
	}
}

// Sync's versions name the conversations with messages to change.
func TestVersions(t *testing.T) {
	s := NewStore("alice")
	s.ApplyList([]ConvInfo{{ConversationID: "alice_bob", ChatType: frame.SingleChat, PeerID: "bob", Seq: 3},
		{ConversationID: "g-1", ChatType: frame.GroupChat, Seq: 2}})
	if got := s.Versions(); len(got) != 0 {
		t.Fatalf("nothing held: %v", got)
	}
	s.Merge(push("g-1", "bob", 3, "x"), FromPush)
	s.RaiseVersion("alice_bob", 5)
	s.RaiseVersion("alice_bob", 4)
	if got := s.Versions(); !reflect.DeepEqual(got, map[string]int64{"g-1": 0, "alice_bob": 5}) {
		t.Fatalf("versions %v", got)
	}
}
