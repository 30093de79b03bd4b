package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind is what a line of input asks for.
type Kind int

const (
	KindNone        Kind = iota // empty line
	KindSend                    // plain text: send to the open conversation
	KindList                    // /list
	KindOpen                    // /open <userId|groupId>
	KindMore                    // /more: older messages of the open conversation
	KindGroupCreate             // /group create <name> <members...>
	KindGroupAdd                // /group add <groupId> <members...>
	KindOnline                  // /online <users...>
	KindHelp                    // /help
	KindQuit                    // /quit
	KindReply                   // /reply <#seq> <text>
	KindEdit                    // /edit <#seq> <text>
	KindRecall                  // /recall <#seq>
	KindDelete                  // /delete <#seq>: hide it for me
	KindReact                   // /react <#seq> <emoji>
	KindSendFile                // /send <path>: upload a file or image and send it
	KindGet                     // /get <#seq> [path]: save a message's file
)

// Command is one parsed input line.
type Command struct {
	Kind Kind
	Text string   // KindSend: the message
	ID   string   // KindOpen: user or group id; KindGroupAdd: the group id
	Name string   // KindGroupCreate: the group name
	IDs  []string // members (group) or users (online)
	Seq  int64    // reply, edit, recall, delete, react: the message's #seq
	// Emoji of KindReact.
	Emoji string
	// Path of KindSendFile (the file), KindGet (where to save; "" for the
	// file's name in the current directory).
	Path string
}

// ErrUnknown is returned for a line starting with "/" that is no command.
var ErrUnknown = errors.New("unknown command (try /help)")

const helpText = `Commands:
  /list                             conversations, with unread counts
  /open <userId|groupId>            open a conversation: recent history, marks it read
  /more                             older messages of the open conversation
  <text>                            send text to the open conversation (//text sends "/text");
                                    in a group, @userId mentions a member, @all everyone (owner)
  /reply <#seq> <text>              answer message #seq of the open conversation, quoting it
  /edit <#seq> <text>               replace the text of your message #seq (within 15 min)
  /recall <#seq>                    take back your message #seq for everyone (within 2 min;
                                    a group's owner: any message)
  /delete <#seq>                    delete message #seq for yourself (all your devices)
  /react <#seq> <emoji>             react to message #seq; again to take it back
  /send <path>                      send a file to the open conversation (also /file; at most
                                    20 MiB); jpeg, png, gif and webp go as images
  /get <#seq> [path]                save the file of message #seq: under its name here, in a
                                    directory, or as path (never overwrites: "name (1).pdf")
  /group create <name> <members...> create a group (you are its owner) and open it
  /group add <groupId> <members...> add members to a group
  /online <users...>                who is online
  /help                             this help
  /quit                             leave (also Ctrl-D)`

// Parse turns one line of input into a Command. Lines not starting with "/"
// are messages; "//" escapes a leading slash.
func Parse(line string) (Command, error) {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return Command{Kind: KindNone}, nil
	}
	if strings.HasPrefix(line, "//") {
		return Command{Kind: KindSend, Text: line[1:]}, nil
	}
	if !strings.HasPrefix(line, "/") {
		return Command{Kind: KindSend, Text: line}, nil
	}
	f := strings.Fields(line)
	name, args := strings.ToLower(f[0]), f[1:]
	switch name {
	case "/list", "/ls":
		return Command{Kind: KindList}, noArgs(name, args)
	case "/more":
		return Command{Kind: KindMore}, noArgs(name, args)
	case "/help", "/h", "/?":
		return Command{Kind: KindHelp}, nil
	case "/quit", "/exit", "/q":
		return Command{Kind: KindQuit}, nil
	case "/open", "/o":
		if len(args) != 1 {
			return Command{}, fmt.Errorf("usage: /open <userId|groupId>")
		}
		return Command{Kind: KindOpen, ID: args[0]}, nil
	case "/online":
		ids := splitIDs(args)
		if len(ids) == 0 {
			return Command{}, fmt.Errorf("usage: /online <users...>")
		}
		return Command{Kind: KindOnline, IDs: ids}, nil
	case "/reply", "/r", "/edit", "/e":
		kind := KindReply
		if name == "/edit" || name == "/e" {
			kind = KindEdit
		}
		seq, text, err := seqAndText(line)
		if err != nil || strings.TrimSpace(text) == "" {
			return Command{}, fmt.Errorf("usage: %s <#seq> <text>", name)
		}
		return Command{Kind: kind, Seq: seq, Text: text}, nil
	case "/recall", "/delete", "/del", "/hide":
		kind := KindRecall
		if name != "/recall" {
			kind = KindDelete
		}
		if len(args) != 1 {
			return Command{}, fmt.Errorf("usage: %s <#seq>", name)
		}
		seq, err := parseSeq(args[0])
		if err != nil {
			return Command{}, err
		}
		return Command{Kind: kind, Seq: seq}, nil
	case "/react":
		if len(args) != 2 {
			return Command{}, fmt.Errorf("usage: /react <#seq> <emoji>")
		}
		seq, err := parseSeq(args[0])
		if err != nil {
			return Command{}, err
		}
		return Command{Kind: KindReact, Seq: seq, Emoji: args[1]}, nil
	case "/send", "/file":
		path := unquote(skipWord(line))
		if path == "" {
			return Command{}, fmt.Errorf("usage: %s <path>", name)
		}
		return Command{Kind: KindSendFile, Path: path}, nil
	case "/get":
		if len(args) == 0 {
			return Command{}, fmt.Errorf("usage: /get <#seq> [path]")
		}
		seq, rest, err := seqAndText(line)
		if err != nil {
			return Command{}, err
		}
		return Command{Kind: KindGet, Seq: seq, Path: unquote(rest)}, nil
	case "/group", "/g":
		if len(args) == 0 {
			return Command{}, fmt.Errorf("usage: /group create <name> <members...> | /group add <groupId> <members...>")
		}
		switch strings.ToLower(args[0]) {
		case "create", "new":
			if len(args) < 2 {
				return Command{}, fmt.Errorf("usage: /group create <name> <members...>")
			}
			return Command{Kind: KindGroupCreate, Name: args[1], IDs: splitIDs(args[2:])}, nil
		case "add":
			ids := splitIDs(args[min(2, len(args)):])
			if len(args) < 3 || len(ids) == 0 {
				return Command{}, fmt.Errorf("usage: /group add <groupId> <members...>")
			}
			return Command{Kind: KindGroupAdd, ID: args[1], IDs: ids}, nil
		}
		return Command{}, fmt.Errorf("unknown /group action %q (create, add)", args[0])
	}
	return Command{}, ErrUnknown
}

// parseSeq reads a message handle: "#12" or "12".
func parseSeq(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a message number like #12", s)
	}
	return n, nil
}

// seqAndText splits "/cmd #12 some text" into 12 and the rest of the line.
func seqAndText(line string) (int64, string, error) {
	rest := skipWord(line)
	handle, _, _ := strings.Cut(rest, " ")
	handle, _, _ = strings.Cut(handle, "\t")
	seq, err := parseSeq(handle)
	return seq, skipWord(rest), err
}

// skipWord drops s's first word and the blanks around it.
func skipWord(s string) string {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return ""
	}
	return strings.TrimLeft(s[i:], " \t")
}

// unquote is a path as typed: blanks around it dropped, and one pair of
// quotes around it too (a path may hold spaces).
func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		s = s[1 : len(s)-1]
	}
	return s
}

func noArgs(name string, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments", name)
	}
	return nil
}

// splitIDs accepts ids separated by spaces and/or commas, without repeats.
func splitIDs(args []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range args {
		for _, id := range strings.Split(a, ",") {
			if id = strings.TrimSpace(id); id != "" && !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}
