package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"easychat/pkg/frame"
)

// typingEvery is how often "… bob is typing" may print for one user in one
// conversation.
const typingEvery = 5 * time.Second

// maxMentions is the most users one message may mention.
const maxMentions = 50

// lookup finds message #seq of the open conversation. One not held (older
// than what was loaded, or mine whose seq came after the ack) is asked of
// the server's history.
func (a *App) lookup(ctx context.Context, seq int64) (Conv, Message, error) {
	id := a.openID()
	if id == "" {
		return Conv{}, Message{}, errors.New("no open conversation: /open <userId|groupId> first (/help)")
	}
	c, _ := a.Store.Conv(id)
	if m, ok := a.Store.FindSeq(id, seq); ok {
		return c, m, nil
	}
	if page, _, err := a.API.History(ctx, id, seq+1, 1); err == nil {
		for _, p := range page {
			a.Store.Merge(p, FromHistory)
		}
	}
	if m, ok := a.Store.FindSeq(id, seq); ok {
		return c, m, nil
	}
	return c, Message{}, fmt.Errorf("no message #%d in %s", seq, c.Title())
}

func (a *App) reply(ctx context.Context, seq int64, text string) error {
	_, m, err := a.lookup(ctx, seq)
	if err != nil {
		return err
	}
	return a.send(ctx, text, &m)
}

// previewOf is the quote a reply to m shows here until the server's comes.
func previewOf(m Message) *frame.Quote {
	q := &frame.Quote{MsgID: m.MsgID, Seq: m.Seq, SendID: m.SendID, Recalled: m.Recalled}
	if !m.Recalled {
		r := []rune(previewText(m))
		q.Content, q.MType = string(r[:min(len(r), frame.QuoteRunes)]), m.MType
	}
	return q
}

// changeMsg sends an edit, recall, hide or reaction for message #seq of the
// open conversation. The result shows when the server's
// conversation.changed comes (or a sync brings it); errors print.
func (a *App) changeMsg(ctx context.Context, cmd Command) error {
	c, m, err := a.lookup(ctx, cmd.Seq)
	if err != nil {
		return err
	}
	data := map[string]any{"conversationId": c.ID, "msgId": m.MsgID}
	var method, verb string
	switch cmd.Kind {
	case KindEdit:
		if m.SendID != a.Me {
			return fmt.Errorf("#%d is not your message", cmd.Seq)
		}
		if m.MType != frame.TextMsg {
			return fmt.Errorf("#%d is %s: only text messages can be edited", cmd.Seq, kindName(m.MType))
		}
		if len(cmd.Text) > frame.MaxContent {
			return fmt.Errorf("message too long (max %d bytes)", frame.MaxContent)
		}
		method, verb = frame.MethodEdit, "edit"
		data["content"] = cmd.Text
	case KindRecall:
		method, verb = frame.MethodRecall, "recall"
	case KindDelete:
		method, verb = frame.MethodHide, "delete"
	case KindReact:
		method, verb = frame.MethodReact, "react to"
		remove := false
		for _, u := range m.Reactions[cmd.Emoji] {
			remove = remove || u == a.Me
		}
		data["emoji"], data["remove"] = cmd.Emoji, remove
	default:
		return fmt.Errorf("not a change: %v", cmd.Kind)
	}
	// Started now, so it reaches the server after the chats typed before it.
	wait, err := a.Conn.Start(method, data, "")
	if err != nil {
		return fmt.Errorf("%s #%d: %w", verb, cmd.Seq, err)
	}
	a.mu.Lock()
	a.inflight++
	a.mu.Unlock()
	go func() {
		defer func() {
			a.mu.Lock()
			a.inflight--
			a.mu.Unlock()
		}()
		_, err := wait(ctx)
		if err != nil {
			if ctx.Err() == nil {
				a.Out.Println(printable(fmt.Sprintf("  ✗ %s #%d: %s", verb, cmd.Seq, err)))
			}
			return
		}
		a.confirm(ctx, c, m, cmd.Kind)
	}()
	return nil
}

// confirm makes an acked change show: a hide at once (it is mine), the
// others when their conversation.changed comes, or else a sync.
func (a *App) confirm(ctx context.Context, c Conv, m Message, kind Kind) {
	if kind == KindDelete {
		ch := frame.Changed{ConversationID: c.ID, ChatType: c.ChatType, Kind: frame.KindHide, MsgID: m.MsgID, Seq: m.Seq, By: a.Me}
		if r := a.Store.ApplyChange(ch); r.Applied {
			a.Out.Println(changeLine(a.Me, ch, r, a.where(c.ID, c.ChatType)))
		}
		return
	}
	done := func() bool {
		cur, _ := a.Store.Find(c.ID, m.MsgID)
		return cur.Version > m.Version
	}
	for range 30 {
		if done() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	if a.Conn.Online() {
		a.syncAndPrint(ctx)
	}
}

// where is " in <title>" for a conversation that is not the open one.
func (a *App) where(convID string, chatType int) string {
	if convID == a.openID() {
		return ""
	}
	c, ok := a.Store.Conv(convID)
	if !ok {
		c = NewStore(a.Me).Ensure(convID, chatType) // for its title only
	}
	return " in " + c.Title()
}

// typingDue reports whether "user is typing" should print now, and if so
// records it.
func (a *App) typingDue(convID, user string) bool {
	key := convID + "\x00" + user
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.typingShown == nil {
		a.typingShown = map[string]time.Time{}
	}
	if len(a.typingShown) > 256 { // bounded: stale entries say nothing
		for k, t := range a.typingShown {
			if now.Sub(t) >= typingEvery {
				delete(a.typingShown, k)
			}
		}
	}
	if last, ok := a.typingShown[key]; ok && now.Sub(last) < typingEvery {
		return false
	}
	a.typingShown[key] = now
	return true
}

// typingDone forgets that user was typing (they sent, or stopped).
func (a *App) typingDone(convID, user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.typingShown, convID+"\x00"+user)
}

// mentionWord is "@id" at the start of a word ("a@b.c" is no mention).
var mentionWord = regexp.MustCompile(`(?:^|[^A-Za-z0-9.@-])@([A-Za-z0-9][A-Za-z0-9.-]*)`)

// mentions reads the @ids of text sent to group: members (all that look
// like ids when the members cannot be had) and @all, which only the owner
// may use.
func (a *App) mentions(ctx context.Context, group, text string) ([]string, bool) {
	words := mentionWord.FindAllStringSubmatch(text, -1)
	if len(words) == 0 {
		return nil, false
	}
	c, _ := a.Store.Conv(group)
	if !c.MembersKnown {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		g, err := a.API.Members(ctx, group)
		cancel()
		if err == nil {
			a.Store.SetMembers(group, g.Members, g.Owner)
			c, _ = a.Store.Conv(group)
		}
	}
	member := func(id string) bool {
		if !c.MembersKnown {
			return validID.MatchString(id)
		}
		for _, u := range c.Members {
			if u == id {
				return true
			}
		}
		return false
	}
	var ids []string
	all := false
	seen := map[string]bool{}
	for _, w := range words {
		id := w[1]
		if strings.EqualFold(id, "all") {
			if c.MembersKnown && c.Owner != a.Me {
				a.Out.Println("  (@all: only the group's owner can mention everyone)")
			} else {
				all = true
			}
			continue
		}
		if !member(id) {
			id = strings.TrimRight(id, ".-") // "@bob." ends a sentence
			if !member(id) {
				continue
			}
		}
		if !seen[id] && len(ids) < maxMentions {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, all
}

// awaitSeq notes a message of mine just acked: its seq (the handle others
// see) comes with a sync once the server has stored it.
func (a *App) awaitSeq(ctx context.Context, convID, msgID string) {
	a.mu.Lock()
	if a.seqWait == nil {
		a.seqWait = map[string]string{}
	}
	a.seqWait[msgID] = convID
	a.seqTries = 0
	start := !a.seqLooping
	a.seqLooping = true
	a.mu.Unlock()
	if start {
		go a.seqLoop(ctx)
	}
}

// seqLoop syncs a few times, more slowly each time, until my acked
// messages have their seqs; a later sync or history fills in the rest.
func (a *App) seqLoop(ctx context.Context) {
	delays := []time.Duration{300 * time.Millisecond, 700 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second}
	for {
		a.mu.Lock()
		if len(a.seqWait) == 0 || a.seqTries >= len(delays) || ctx.Err() != nil {
			a.seqWait = nil
			a.seqLooping = false
			a.mu.Unlock()
			return
		}
		d := delays[a.seqTries]
		a.seqTries++
		a.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(d):
			if a.Conn.Online() {
				a.syncAndPrint(ctx)
			}
		}
	}
}

// reportOwnSeqs tells the seqs of my acked messages that have one now.
func (a *App) reportOwnSeqs() {
	var found []Message
	a.mu.Lock()
	for msgID, convID := range a.seqWait {
		if m, ok := a.Store.Find(convID, msgID); ok && m.Seq > 0 {
			delete(a.seqWait, msgID)
			found = append(found, m)
		}
	}
	a.mu.Unlock()
	sort.Slice(found, func(i, j int) bool { return found[i].order < found[j].order })
	for _, m := range found {
		c, _ := a.Store.Conv(m.ConvID)
		a.Out.Println(printable(fmt.Sprintf("  ✓ #%d in %s: %s", m.Seq, c.Title(), sentSummary(m))))
	}
}
