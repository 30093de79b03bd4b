package main

import (
	"errors"
	"fmt"
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
)

// Command is one parsed input line.
type Command struct {
	Kind Kind
	Text string   // KindSend: the message
	ID   string   // KindOpen: user or group id; KindGroupAdd: the group id
	Name string   // KindGroupCreate: the group name
	IDs  []string // members (group) or users (online)
}

// ErrUnknown is returned for a line starting with "/" that is no command.
var ErrUnknown = errors.New("unknown command (try /help)")

const helpText = `Commands:
  /list                             conversations, with unread counts
  /open <userId|groupId>            open a conversation: recent history, marks it read
  /more                             older messages of the open conversation
  <text>                            send text to the open conversation (//text sends "/text")
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
