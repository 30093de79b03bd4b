package main

import (
	"errors"
	"flag"
	"reflect"
	"strings"
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
		{"/reply #12 sure,  at 8 ", Command{Kind: KindReply, Seq: 12, Text: "sure,  at 8 "}},
		{"/r 3 ok", Command{Kind: KindReply, Seq: 3, Text: "ok"}},
		{"/reply\t#4\tyes", Command{Kind: KindReply, Seq: 4, Text: "yes"}},
		{"/edit #5 meeting at 9", Command{Kind: KindEdit, Seq: 5, Text: "meeting at 9"}},
		{"/recall #6", Command{Kind: KindRecall, Seq: 6}},
		{"/delete 7", Command{Kind: KindDelete, Seq: 7}},
		{"/hide #7", Command{Kind: KindDelete, Seq: 7}},
		{"/react #8 👍", Command{Kind: KindReact, Seq: 8, Emoji: "👍"}},
		{"/react 9 ❤️", Command{Kind: KindReact, Seq: 9, Emoji: "❤️"}},
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
		"/group delete g-1", "/list extra", "/more x", "/nope",
		"/reply", "/reply #3", "/reply #3   ", "/reply #x hi", "/reply bob hi", "/edit #0 x", "/edit #-2 x", "/edit 5",
		"/recall", "/recall #a", "/recall #1 #2", "/delete", "/delete #1 extra", "/react #1", "/react 👍 #1", "/react #1 👍 ❤️"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q): no error", in)
		}
	}
	if _, err := Parse("/frobnicate"); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown command: %v", err)
	}
}

// The new commands are in /help (and so in -h).
func TestHelpListsMessageCommands(t *testing.T) {
	for _, s := range []string{"/reply <#seq> <text>", "/edit <#seq> <text>", "/recall <#seq>", "/delete <#seq>", "/react <#seq> <emoji>", "@all"} {
		if !strings.Contains(helpText, s) {
			t.Errorf("help lacks %q", s)
		}
	}
	var b strings.Builder
	if _, err := parseFlags([]string{"-h"}, &b); !errors.Is(err, flag.ErrHelp) || !strings.Contains(b.String(), "/react <#seq> <emoji>") {
		t.Errorf("-h: %v\n%s", err, b.String())
	}
}
