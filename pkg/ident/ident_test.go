package ident

import (
	"errors"
	"strings"
	"testing"

	"easychat/pkg/reject"
)

func TestUserIDs(t *testing.T) {
	for _, ok := range []string{"bob", "alice", "a.b-c", "A9z", strings.Repeat("x", MaxUser), "gx-1", "G-1a"} {
		if !IsUser(ok) {
			t.Errorf("IsUser(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "ab", strings.Repeat("x", MaxUser+1), "-bob", ".bob", "bo b", "bo_b", "x1#mallory",
		"g-abc", "bob\n", "bøb", "bob\x00", "a/b", "a$b"} {
		if IsUser(bad) {
			t.Errorf("IsUser(%q) = true", bad)
		}
	}
}

func TestGroupIDs(t *testing.T) {
	for i := range 100 {
		if g := NewGroup(); !IsGroup(g) || IsUser(g) {
			t.Fatalf("NewGroup #%d = %q: not a group id, or also a user id", i, g)
		}
	}
	for _, ok := range []string{"g-0123456789abcdef", "g-bench-run1", "g-x"} {
		if !IsGroup(ok) {
			t.Errorf("IsGroup(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "g-", "g-ABC", "g-a#b", "g-a_b", "bob", "g-" + strings.Repeat("a", MaxGroup)} {
		if IsGroup(bad) {
			t.Errorf("IsGroup(%q) = true", bad)
		}
	}
}

func TestConversationIDs(t *testing.T) {
	if c := Single("bob", "alice"); c != "alice_bob" {
		t.Fatalf("Single = %q", c)
	}
	if a, b, ok := Peers("alice_bob"); !ok || a != "alice" || b != "bob" {
		t.Fatalf("Peers = %q %q %v", a, b, ok)
	}
	for _, bad := range []string{"bob_alice", "alice_alice", "alice_", "_bob", "alice_bob_carol", "alice_b#b", "x1#mallory", "alice_g-1"} {
		if IsConversation(bad) {
			t.Errorf("IsConversation(%q) = true", bad)
		}
	}
	if !IsConversation("g-0123456789abcdef") || !IsConversation("alice_bob") {
		t.Fatal("valid conversation ids refused")
	}
}

func TestMsgAndFrameIDs(t *testing.T) {
	if !IsMsgID("0123456789abcdef0123456789abcdef") || IsMsgID("0123456789ABCDEF0123456789abcdef") || IsMsgID("abc") {
		t.Fatal("IsMsgID")
	}
	if !IsFrameID("msg_123") || !IsFrameID(strings.Repeat("~", MaxFrameID)) {
		t.Fatal("valid frame id refused")
	}
	for _, bad := range []string{"", " ", "a b", "a\x1b", strings.Repeat("a", MaxFrameID+1), "é"} {
		if IsFrameID(bad) {
			t.Errorf("IsFrameID(%q) = true", bad)
		}
	}
}

func TestRefusalsAreInvalidAndShort(t *testing.T) {
	err := User("members", strings.Repeat("m", 10000))
	if !errors.Is(err, reject.ErrInvalid) || len(err.Error()) > 200 {
		t.Fatalf("User: %v", err)
	}
	if err := Users("members", []string{"bob", "x1#mallory"}); !errors.Is(err, reject.ErrInvalid) {
		t.Fatalf("Users: %v", err)
	}
	if Users("members", []string{"bob", "carol"}) != nil || Group("groupId", "g-1") != nil || Conversation("c", "g-1") != nil {
		t.Fatal("valid ids refused")
	}
	if MsgIDs("msgIds", []string{"nope"}) == nil {
		t.Fatal("bad msgId accepted")
	}
}

// FuzzIDs checks the properties storage keys rely on, whatever the input.
func FuzzIDs(f *testing.F) {
	for _, s := range []string{"bob", "alice_bob", "g-0123456789abcdef", "x1#mallory", "a_b_c", "g-", "\x00", "bob\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if IsUser(s) {
			if strings.ContainsAny(s, "_#/$\x00") || len(s) > MaxUser || IsGroup(s) {
				t.Fatalf("user id %q holds a separator, is too long or is also a group id", s)
			}
		}
		if IsGroup(s) && strings.ContainsAny(s, "_#") {
			t.Fatalf("group id %q holds a separator", s)
		}
		if a, b, ok := Peers(s); ok {
			if Single(a, b) != s || Single(b, a) != s || a == b {
				t.Fatalf("Peers(%q) = %q, %q does not round-trip", s, a, b)
			}
		}
		if IsConversation(s) && len(s) > 2*MaxUser+1 {
			t.Fatalf("conversation id %q too long", s)
		}
		if err := User("f", s); (err == nil) != IsUser(s) || (err != nil && len(err.Error()) > 400) {
			t.Fatalf("User(%q) = %v", s, err)
		}
	})
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"team", "Hike 🏔", "Équipe été", "日本語のグループ", "👨\u200d👩\u200d👧"} {
		if err := Name("name", ok, 64); err != nil {
			t.Errorf("Name(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 65), "a\x1b[2Kb", "a\rb", "a\nb", "a\u202eb", "a\u200bb", "\xff"} {
		if Name("name", bad, 64) == nil {
			t.Errorf("Name(%q) accepted", bad)
		}
	}
}
