package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"easychat/pkg/frame"
)

// Printer writes whole lines, one writer at a time (pushes arrive while
// commands print).
type Printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *Printer) Println(a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, a...)
}

func (p *Printer) Printf(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, a...)
}

// clock formats a message time: hours and minutes today, with the date
// otherwise.
func clock(ms int64, now time.Time) string {
	if ms == 0 {
		return "--:--"
	}
	t := time.UnixMilli(ms).In(now.Location())
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	return t.Format("Jan 2 15:04")
}

// msgLine renders one message: "[15:04] @bob  bob: text" (a group shows as
// #name). Continuation lines of a multi-line text are indented.
func msgLine(me string, c Conv, m Message, now time.Time) string {
	who := m.SendID
	if who == me {
		who = "me"
	}
	prefix := fmt.Sprintf("[%s] %s  %s: ", clock(m.SendTime, now), c.Title(), who)
	text := strings.ReplaceAll(m.Content, "\n", "\n"+strings.Repeat(" ", len([]rune(prefix))))
	return prefix + text
}

// listLines renders the conversation list, most recent first.
func listLines(me string, list []ConvInfo, now time.Time) []string {
	if len(list) == 0 {
		return []string{"No conversations yet. /open <userId> starts one, /group create makes a group."}
	}
	list = append([]ConvInfo(nil), list...)
	sort.SliceStable(list, func(i, j int) bool { return list[i].UpdatedAt > list[j].UpdatedAt })
	var out []string
	for _, it := range list {
		c := Conv{ID: it.ConversationID, ChatType: it.ChatType, PeerID: it.PeerID, GroupName: it.GroupName}
		id := it.PeerID
		if it.ChatType == frame.GroupChat {
			id = it.ConversationID
		}
		unread := ""
		if it.Unread > 0 {
			unread = fmt.Sprintf("%d unread", it.Unread)
		}
		last := "(no messages)"
		if l := it.LastMsg; l != nil {
			who := l.SendID
			if who == me {
				who = "me"
			}
			last = fmt.Sprintf("[%s] %s: %s", clock(l.SendTime, now), who, oneLine(l.Msg.Content, 50))
		}
		out = append(out, fmt.Sprintf("  %-20s %-22s %-10s %s", c.Title(), "/open "+id, unread, last))
	}
	return out
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// groupChangeLine tells me what changed in a group, naming me as "you".
func groupChangeLine(me string, g frame.GroupChange) string {
	who := func(us []string) string {
		out := make([]string, len(us))
		for i, u := range us {
			out[i] = u
			if u == me {
				out[i] = "you"
			}
		}
		return strings.Join(out, ", ")
	}
	by := g.By
	if by == me {
		by = "you"
	}
	title := fmt.Sprintf("%s (%s)", g.Name, g.GroupID)
	var parts []string
	if len(g.Added) > 0 {
		parts = append(parts, fmt.Sprintf("%s added %s to %s", by, who(g.Added), title))
	}
	if len(g.Removed) > 0 {
		parts = append(parts, fmt.Sprintf("%s removed %s from %s", by, who(g.Removed), title))
	}
	return "  * " + strings.Join(parts, "; ")
}

func receiptLine(n frame.ReadNotice, c Conv) string {
	return fmt.Sprintf("  ✓✓ %s read %s up to #%d", n.ReaderID, c.Title(), n.ReadSeq)
}

func deliveredLine(d frame.Delivery, c Conv) string {
	return fmt.Sprintf("  ✓✓ delivered to %s in %s up to #%d", d.UserID, c.Title(), d.DeliveredSeq)
}

func onlineLine(online map[string]bool, asked []string) string {
	var parts []string
	for _, u := range asked {
		state := "offline"
		if online[u] {
			state = "online"
		}
		parts = append(parts, u+" "+state)
	}
	return "  " + strings.Join(parts, ", ")
}
