package main

import (
	"strings"
	"testing"
	"time"

	"easychat/pkg/frame"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Base: 500 * time.Millisecond, Max: 15 * time.Second}
	for n, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second} {
		for range 20 {
			d := b.Delay(n)
			if d < want*3/4 || d > want*5/4 {
				t.Fatalf("Delay(%d) = %s, want %s ±25%%", n, d, want)
			}
		}
	}
	if d := b.Delay(1000); d > 15*time.Second*5/4 {
		t.Fatalf("Delay(1000) = %s", d)
	}
}

func TestWSURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:10090":       "ws://127.0.0.1:10090/ws",
		"http://127.0.0.1:10090/":      "ws://127.0.0.1:10090/ws",
		"https://chat.example.com":     "wss://chat.example.com/ws",
		"https://example.com/chat?x=1": "wss://example.com/chat/ws",
	} {
		if got, err := wsURL(in); err != nil || got != want {
			t.Errorf("wsURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"127.0.0.1:10090", "ftp://x", "http://"} {
		if _, err := wsURL(bad); err == nil {
			t.Errorf("wsURL(%q): no error", bad)
		}
	}
}

func TestTokenSubject(t *testing.T) {
	// header.{"sub":"alice","exp":1}.signature
	tok := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MX0.c2ln"
	if got := tokenSubject(tok); got != "alice" {
		t.Fatalf("tokenSubject = %q", got)
	}
	if got := tokenSubject("not-a-jwt"); got != "" {
		t.Fatalf("garbage: %q", got)
	}
}

func TestMsgLine(t *testing.T) {
	now := time.Date(2026, 5, 1, 15, 0, 0, 0, time.Local)
	at := time.Date(2026, 5, 1, 14, 7, 0, 0, time.Local).UnixMilli()
	c := Conv{ID: "g-1", ChatType: 1, GroupName: "team"}
	got := msgLine("alice", c, Message{SendID: "bob", Content: "one\ntwo", SendTime: at}, now)
	want := "[14:07] #team  bob: one\n                    two"
	if got != want {
		t.Fatalf("msgLine:\n%q\nwant\n%q", got, want)
	}
	if got := msgLine("alice", c, Message{SendID: "alice", Content: "x", SendTime: at}, now); !strings.Contains(got, "  me: x") {
		t.Fatalf("own: %q", got)
	}
	yesterday := time.Date(2026, 4, 30, 9, 5, 0, 0, time.Local).UnixMilli()
	if got := clock(yesterday, now); got != "Apr 30 09:05" {
		t.Fatalf("clock = %q", got)
	}
}

func TestGroupChangeLine(t *testing.T) {
	g := frame.GroupChange{GroupID: "g-1", Name: "team", By: "alice", Added: []string{"bob", "carol"}}
	if got, want := groupChangeLine("bob", g), "  * alice added you, carol to team (g-1)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	g = frame.GroupChange{GroupID: "g-1", Name: "team", By: "alice", Removed: []string{"carol"}}
	if got, want := groupChangeLine("alice", g), "  * you removed carol from team (g-1)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
