package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"easychat/pkg/frame"
)

// Printer writes whole lines, one writer at a time (pushes arrive while
// commands print).
type Printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *Printer) Println(a ...any) { p.write(fmt.Sprintln(a...)) }

func (p *Printer) Printf(format string, a ...any) { p.write(fmt.Sprintf(format, a...)) }

// write is the last guard: should a caller forget printable, the terminal
// still gets no control character but the line breaks. (It cannot tell a
// line break of a name from the caller's own, so callers still escape
// outside text themselves.)
func (p *Printer) write(s string) {
	s = printableLines(s, "\n")
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, s)
}

// printable returns text that came from the network (messages, ids, names,
// error texts) safe to print on a terminal. Control characters ("\r", ESC
// starting CSI/OSC sequences, all of C0, DEL and C1) could move the cursor
// and overwrite what was printed; bidi overrides and isolates and other
// invisible format characters reorder or hide text; line and paragraph
// separators break lines. These are shown escaped as Go quotes them (\r,
// \x1b, \u0085, \u202e), and bytes that are not UTF-8 as \xNN. Every script
// and emoji is kept; so are the joiners U+200C/U+200D that emoji sequences
// and some scripts need (they join, never reorder). The result holds none of
// these, so printable(printable(s)) == printable(s).
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) && r != '\u200c' && r != '\u200d':
			q := strconv.QuoteRune(r) // '\r', '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// printableLines is printable for each line of s, the lines joined by sep.
func printableLines(s, sep string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printable(l)
	}
	return strings.Join(lines, sep)
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

// msgLine renders one message: "[15:04] @bob #12  bob: text" (a group
// shows as #name; #12 is the seq, the handle commands take), with
// " (edited)", its reactions and "@you" when it mentions me after it, and
// a reply's quote on a line before it. Continuation lines of a multi-line
// text are indented, so none can pass for a message line of its own;
// everything else from the sender is escaped by printable.
func msgLine(me string, c Conv, m Message, now time.Time) string {
	who := m.SendID
	if who == me {
		who = "me"
	}
	handle := ""
	if m.Seq > 0 {
		handle = fmt.Sprintf(" #%d", m.Seq)
	}
	prefix := printable(fmt.Sprintf("[%s] %s%s  %s: ", clock(m.SendTime, now), c.Title(), handle, who))
	var body string
	if m.Recalled {
		body = "⌫ message recalled"
		if m.RecalledBy != "" {
			body += " by " + printable(name(me, m.RecalledBy))
		}
	} else if m.MType != frame.TextMsg {
		body = fileLine(m) // one line: the name is escaped, line breaks too
	} else {
		body = printableLines(m.Content, "\n"+strings.Repeat(" ", utf8.RuneCountInString(prefix)))
		if m.Edited > 0 {
			body += " (edited)"
		}
	}
	if r := reactionsText(m.Reactions); r != "" {
		body += "  " + r
	}
	if m.MentionsUser(me) {
		body += "  @you"
	}
	line := prefix + body
	if m.Quote != nil {
		line = quoteLine(me, *m.Quote) + "\n" + line
	}
	return line
}

// name is a user id as shown to me: "you" for myself.
func name(me, user string) string {
	if user == me {
		return "you"
	}
	return user
}

// quoteLine previews what a reply answers: "  ↪ #4 bob: first words…".
func quoteLine(me string, q frame.Quote) string {
	ref := ""
	if q.Seq > 0 {
		ref = fmt.Sprintf("#%d ", q.Seq)
	}
	switch {
	case q.Recalled:
		return printable("  ↪ " + ref + "message recalled")
	case q.Missing:
		return printable("  ↪ " + ref + "(quoted message not found)")
	}
	who := q.SendID
	if who == me {
		who = "me"
	}
	text := oneLine(q.Content, frame.QuoteRunes) // a file message's preview is its name
	switch q.MType {
	case frame.ImageMsg:
		text = "[image] " + text
	case frame.FileMsg:
		text = "[file] " + text
	}
	return printable(fmt.Sprintf("  ↪ %s%s: %s", ref, who, text))
}

// reactionsText renders reactions as "👍 2 ❤️ 1", the most given first.
func reactionsText(r map[string][]string) string {
	type count struct {
		emoji string
		n     int
	}
	var cs []count
	for e, users := range r {
		if len(users) > 0 {
			cs = append(cs, count{e, len(users)})
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].n != cs[j].n {
			return cs[i].n > cs[j].n
		}
		return cs[i].emoji < cs[j].emoji
	})
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %d", printable(c.emoji), c.n)
	}
	return strings.Join(parts, " ")
}

// reactionDiff is what user added and took away between two states.
func reactionDiff(before, after map[string][]string, user string) (added, removed []string) {
	has := func(r map[string][]string, e string) bool {
		for _, u := range r[e] {
			if u == user {
				return true
			}
		}
		return false
	}
	for e := range after {
		if has(after, e) && !has(before, e) {
			added = append(added, e)
		}
	}
	for e := range before {
		if has(before, e) && !has(after, e) {
			removed = append(removed, e)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}

// changeLine tells of a change to a message: "  ✎ alice edited #12: new
// text", "  ⌫ alice recalled #12", "  bob reacted 👍 to #12  (👍 2)",
// "  hidden #12". where is " in <title>" for a conversation not open.
func changeLine(me string, ch frame.Changed, r ChangeResult, where string) string {
	seq := r.After.Seq
	if seq == 0 {
		seq = ch.Seq
	}
	ref := fmt.Sprintf("#%d%s", seq, where)
	by := name(me, ch.By)
	switch ch.Kind {
	case frame.KindEdit:
		prefix := printable(fmt.Sprintf("  ✎ %s edited %s: ", by, ref))
		return prefix + printableLines(r.After.Content, "\n"+strings.Repeat(" ", utf8.RuneCountInString(prefix)))
	case frame.KindRecall:
		return printable(fmt.Sprintf("  ⌫ %s recalled %s", by, ref))
	case frame.KindHide:
		return printable("  hidden " + ref)
	case frame.KindReact:
		added, removed := reactionDiff(r.Before.Reactions, r.After.Reactions, ch.By)
		var s string
		switch {
		case len(added) > 0:
			s = fmt.Sprintf("  %s reacted %s to %s", by, strings.Join(added, " "), ref)
		case len(removed) > 0:
			s = fmt.Sprintf("  %s took back %s on %s", by, strings.Join(removed, " "), ref)
		default:
			s = fmt.Sprintf("  %s changed reactions on %s", by, ref)
		}
		line := printable(s)
		if t := reactionsText(r.After.Reactions); t != "" {
			line += "  (" + t + ")"
		}
		return line
	}
	return printable(fmt.Sprintf("  %s changed %s (%s)", by, ref, ch.Kind))
}

// typingLine is the transient "  … bob is typing".
func typingLine(user, where string) string {
	return printable(fmt.Sprintf("  … %s is typing%s", user, where))
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
		if it.Mentioned {
			unread = strings.TrimSpace(unread + " @you")
		}
		last := "(no messages)"
		if l := it.LastMsg; l != nil {
			who := l.SendID
			if who == me {
				who = "me"
			}
			text := oneLine(summary(l.Msg.MType, l.Msg.Content), 50)
			if l.Msg.Recalled {
				text = "⌫ message recalled"
			}
			last = fmt.Sprintf("[%s] %s: %s", clock(l.SendTime, now), who, text)
		}
		out = append(out, printable(fmt.Sprintf("  %-20s %-22s %-10s %s", c.Title(), "/open "+id, unread, last)))
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
	return printable("  * " + strings.Join(parts, "; "))
}

func receiptLine(n frame.ReadNotice, c Conv) string {
	return printable(fmt.Sprintf("  ✓✓ %s read %s up to #%d", n.ReaderID, c.Title(), n.ReadSeq))
}

func deliveredLine(d frame.Delivery, c Conv) string {
	return printable(fmt.Sprintf("  ✓✓ delivered to %s in %s up to #%d", d.UserID, c.Title(), d.DeliveredSeq))
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
