package main

import (
	"errors"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want Command
	}{
		{"", Command{Kind: KindNone}},
		{"   \r\n", Command{Kind: KindNone}},
		{"hello there", Command{Kind: KindSend, Text: "hello there"}},
		{"  indented stays  ", Command{Kind: KindSend, Text: "  indented stays  "}},
		{"//not a command", Command{Kind: KindSend, Text: "/not a command"}},
		{"/list", Command{Kind: KindList}},
		{"/LS", Command{Kind: KindList}},
		{"/open bob", Command{Kind: KindOpen, ID: "bob"}},
		{"/o g-123", Command{Kind: KindOpen, ID: "g-123"}},
		{"/more", Command{Kind: KindMore}},
		{"/group create team bob carol", Command{Kind: KindGroupCreate, Name: "team", IDs: []string{"bob", "carol"}}},
		{"/group create solo", Command{Kind: KindGroupCreate, Name: "solo"}},
		{"/group create team bob,carol, dave bob", Command{Kind: KindGroupCreate, Name: "team", IDs: []string{"bob", "carol", "dave"}}},
		{"/g add g-1 erin", Command{Kind: KindGroupAdd, ID: "g-1", IDs: []string{"erin"}}},
		{"/online bob carol", Command{Kind: KindOnline, IDs: []string{"bob", "carol"}}},
		{"/help", Command{Kind: KindHelp}},
		{"/quit", Command{Kind: KindQuit}},
		{"/exit", Command{Kind: KindQuit}},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"/open", "/open a b", "/online", "/group", "/group create", "/group add g-1",
		"/group delete g-1", "/list extra", "/more x", "/nope"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q): no error", in)
		}
	}
	if _, err := Parse("/frobnicate"); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown command: %v", err)
	}
}
