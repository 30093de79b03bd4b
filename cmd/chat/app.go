package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"easychat/pkg/frame"
)

// historyPage is how many messages /open and /more show.
const historyPage = 20

// App is the chat client: commands from the terminal, frames from the
// socket, and the store between them.
type App struct {
	Me    string
	API   *API
	Conn  *Conn
	Store *Store
	Out   *Printer
	Now   func() time.Time

	mu           sync.Mutex
	open         string // the open conversation
	outbox       []*outItem
	delivered    map[string]int64 // single chat → seq last reported as received
	deliveredDue map[string]bool  // single chats to report soon
	inflight     int              // change requests not answered yet
	typingShown  map[string]time.Time
	seqWait      map[string]string // my acked messages (msgId → conversation) whose seq is to tell
	seqTries     int
	seqLooping   bool
	links        map[string]cachedLink // file key → download link (/get)

	syncMu sync.Mutex
}

// outItem is a message sent but not acked yet; it is resent with the same
// frame id after a reconnect, and the server stores it once.
type outItem struct {
	id       string
	conv     Conv
	msg      frame.Msg    // as sent: a quote by its msgId only
	quote    *frame.Quote // the quote's preview, for showing it here
	at       int64
	sending  bool
	reported bool
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{2,31}$`)

// Handle runs one command; it returns true for /quit.
func (a *App) Handle(ctx context.Context, cmd Command) bool {
	var err error
	switch cmd.Kind {
	case KindNone:
	case KindQuit:
		return true
	case KindHelp:
		a.Out.Println(helpText)
	case KindList:
		err = a.list(ctx)
	case KindOpen:
		err = a.openConv(ctx, cmd.ID)
	case KindMore:
		err = a.more(ctx)
	case KindSend:
		err = a.send(ctx, cmd.Text, nil)
	case KindSendFile:
		err = a.sendFile(ctx, cmd.Path)
	case KindGet:
		err = a.getFile(ctx, cmd.Seq, cmd.Path)
	case KindReply:
		err = a.reply(ctx, cmd.Seq, cmd.Text)
	case KindEdit, KindRecall, KindDelete, KindReact:
		err = a.changeMsg(ctx, cmd)
	case KindGroupCreate:
		err = a.groupCreate(ctx, cmd.Name, cmd.IDs)
	case KindGroupAdd:
		err = a.groupAdd(ctx, cmd.ID, cmd.IDs)
	case KindOnline:
		err = a.online(ctx, cmd.IDs)
	}
	if err != nil {
		a.Out.Println("  ! " + printable(err.Error())) // may quote the server
	}
	return false
}

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *App) openID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.open
}

func (a *App) list(ctx context.Context) error {
	l, err := a.API.List(ctx)
	if err != nil {
		return err
	}
	a.Store.ApplyList(l)
	for _, line := range listLines(a.Me, l, a.now()) {
		a.Out.Println(line)
	}
	return nil
}

// resolve finds the conversation for /open's argument: a group (by id or
// name), a conversation id, or a user id (a single chat).
func (a *App) resolve(ctx context.Context, id string) (Conv, error) {
	if g, ok := a.Store.FindGroup(id); ok {
		c, _ := a.Store.Conv(g)
		return c, nil
	}
	if x, y, ok := strings.Cut(id, "_"); ok {
		if x != a.Me && y != a.Me {
			return Conv{}, fmt.Errorf("%s is not one of your conversations", id)
		}
		return a.Store.Ensure(id, frame.SingleChat), nil
	}
	// Maybe a group not seen yet: refresh the list once.
	if l, err := a.API.List(ctx); err == nil {
		a.Store.ApplyList(l)
		if g, ok := a.Store.FindGroup(id); ok {
			c, _ := a.Store.Conv(g)
			return c, nil
		}
	}
	if !validID.MatchString(id) {
		return Conv{}, fmt.Errorf("%q is not a user id or one of your groups", id)
	}
	if id == a.Me {
		return Conv{}, errors.New("that is you")
	}
	return a.Store.Ensure(frame.SingleConversationID(a.Me, id), frame.SingleChat), nil
}

func (a *App) openConv(ctx context.Context, id string) error {
	c, err := a.resolve(ctx, id)
	if err != nil {
		return err
	}
	page, version, err := a.API.History(ctx, c.ID, 0, historyPage)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == 403 {
			return fmt.Errorf("%s: %s", id, ae.Msg)
		}
		return err
	}
	for _, p := range page {
		a.Store.Merge(p, FromHistory)
	}
	if len(page) < historyPage {
		a.Store.SetComplete(c.ID)
	}
	if a.Conn.Online() {
		// Online, changes of what is held come live; offline, the next
		// sync must start from the older version.
		a.Store.RaiseVersion(c.ID, version)
	}
	a.mu.Lock()
	a.open = c.ID
	a.mu.Unlock()
	c, _ = a.Store.Conv(c.ID)
	msgs := a.Store.Messages(c.ID)
	if len(msgs) > historyPage {
		msgs = msgs[len(msgs)-historyPage:]
	}
	a.Out.Println(printable(fmt.Sprintf("── %s ── %s", c.Title(), openHint(c, len(msgs)))))
	for _, m := range msgs {
		a.Out.Println(msgLine(a.Me, c, m, a.now()))
	}
	a.markRead(ctx)
	return nil
}

func openHint(c Conv, n int) string {
	switch {
	case n == 0:
		return "no messages yet; type to send"
	case c.ChatType == frame.GroupChat:
		return fmt.Sprintf("group %s; /more for older; type to send", c.ID)
	}
	return "/more for older; type to send"
}

func (a *App) more(ctx context.Context) error {
	id := a.openID()
	if id == "" {
		return errors.New("no open conversation (/open <userId|groupId>)")
	}
	before := a.Store.Oldest(id)
	if before == 1 {
		a.Out.Println("  (start of the conversation)")
		return nil
	}
	page, _, err := a.API.History(ctx, id, before, historyPage)
	if err != nil {
		return err
	}
	if len(page) == 0 {
		a.Out.Println("  (start of the conversation)")
		return nil
	}
	c, _ := a.Store.Conv(id)
	a.Out.Println("── older ──")
	for i := len(page) - 1; i >= 0; i-- { // the page is newest first
		m, _ := a.Store.Merge(page[i], FromHistory)
		if !m.Hidden {
			a.Out.Println(msgLine(a.Me, c, m, a.now()))
		}
	}
	return nil
}

// markRead tells the server the open conversation is read up to the newest
// message held; the msgIds let group senders get a receipt.
func (a *App) markRead(ctx context.Context) {
	id := a.openID()
	if id == "" || !a.Conn.Online() {
		return
	}
	seq, ids, ok := a.Store.ToMark(id)
	if !ok {
		return
	}
	c, _ := a.Store.Conv(id)
	data := map[string]any{"chatType": c.ChatType, "recvId": c.RecvID(), "conversationId": c.ID, "readSeq": seq}
	if len(ids) > 0 {
		if len(ids) > 500 {
			ids = ids[len(ids)-500:]
		}
		data["msgIds"] = ids
	}
	go func() {
		if _, err := a.Conn.Request(ctx, "conversation.markChat", data, ""); err != nil && !errors.Is(err, context.Canceled) {
			a.Out.Println("  ! marking read: " + printable(err.Error()))
		}
	}()
}

// reportDelivered tells the server, shortly, that this device holds a
// single chat up to the seq it knows without a gap, so the sender sees it
// delivered. A burst of pushes makes one report per conversation.
func (a *App) reportDelivered(ctx context.Context, convID string) {
	if c, ok := a.Store.Conv(convID); !ok || c.ChatType != frame.SingleChat {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.deliveredDue == nil {
		a.deliveredDue = map[string]bool{}
	}
	a.deliveredDue[convID] = true
	if len(a.deliveredDue) == 1 {
		time.AfterFunc(150*time.Millisecond, func() { a.flushDelivered(ctx) })
	}
}

func (a *App) flushDelivered(ctx context.Context) {
	a.mu.Lock()
	due := a.deliveredDue
	a.deliveredDue = nil
	if a.delivered == nil {
		a.delivered = map[string]int64{}
	}
	a.mu.Unlock()
	for id := range due {
		if !a.Conn.Online() {
			return // the reconnect syncs, and reports again
		}
		c, _ := a.Store.Conv(id)
		seq := a.Store.KnownSeqs()[id]
		a.mu.Lock()
		prev := a.delivered[id]
		a.delivered[id] = max(prev, seq)
		a.mu.Unlock()
		if seq <= prev {
			continue
		}
		data := map[string]any{"chatType": frame.SingleChat, "recvId": c.RecvID(), "conversationId": id, "seq": seq}
		if _, err := a.Conn.Request(ctx, frame.MethodMarkDelivered, data, ""); err != nil {
			a.mu.Lock()
			if a.delivered[id] == seq {
				a.delivered[id] = prev // the next message reports it again
			}
			a.mu.Unlock()
		}
	}
}

// send sends text to the open conversation, as a reply to quoted if given.
func (a *App) send(ctx context.Context, text string, quoted *Message) error {
	id := a.openID()
	if id == "" {
		return errors.New("no open conversation: /open <userId|groupId> first (/help)")
	}
	if len(text) > frame.MaxContent {
		return fmt.Errorf("message too long (max %d bytes)", frame.MaxContent)
	}
	c, _ := a.Store.Conv(id)
	msg := frame.Msg{MType: frame.TextMsg, Content: text}
	if c.ChatType == frame.GroupChat {
		msg.Mentions, msg.MentionAll = a.mentions(ctx, c.ID, text)
	}
	return a.enqueue(ctx, c, msg, quoted)
}

// enqueue sends msg (text, image or file) to conversation c through the
// outbox: acked, or resent with the same frame id after a reconnect.
func (a *App) enqueue(ctx context.Context, c Conv, msg frame.Msg, quoted *Message) error {
	it := &outItem{id: newID("t"), conv: c, msg: msg, at: a.now().UnixMilli()}
	if quoted != nil {
		it.msg.Quote = &frame.Quote{MsgID: quoted.MsgID}
		it.quote = previewOf(*quoted)
	}
	a.mu.Lock()
	a.outbox = append(a.outbox, it)
	a.mu.Unlock()
	a.transmit(ctx, it)
	return nil
}

// transmit writes an outbox item's frame now (callers go in input order,
// so the server gets messages in the order they were typed) and waits for
// the ack in the background. A message that got no ack is resent with the
// same frame id, and the server stores it once.
func (a *App) transmit(ctx context.Context, it *outItem) {
	a.mu.Lock()
	if it.sending {
		a.mu.Unlock()
		return
	}
	it.sending = true
	a.mu.Unlock()
	data := frame.Chat{ChatType: it.conv.ChatType, RecvID: it.conv.RecvID(), ConversationID: it.conv.ID, Msg: it.msg}
	wait, err := a.Conn.Start(frame.MethodChat, data, it.id)
	if err != nil {
		a.unsent(ctx, it)
		return
	}
	go func() {
		for attempt := 0; ; attempt++ {
			raw, err := wait(ctx)
			if err == nil {
				var ack frame.ChatAck
				_ = json.Unmarshal(raw, &ack)
				a.done(it)
				if ack.MsgID != "" {
					own := it.msg
					own.Quote = it.quote
					a.Store.AddOwn(it.conv.ID, it.conv.ChatType, ack.MsgID, own, it.at)
				}
				a.Out.Println(printable("  ✓ sent to " + it.conv.Title()))
				if ack.MsgID != "" {
					a.awaitSeq(ctx, it.conv.ID, ack.MsgID)
				}
				return
			}
			var fe *FrameError
			if errors.As(err, &fe) && !retryable(fe.Msg) {
				a.done(it)
				a.Out.Println(printable(fmt.Sprintf("  ✗ not sent to %s: %s", it.conv.Title(), fe.Msg)))
				return
			}
			if errors.Is(err, ErrOffline) || errors.Is(err, ErrLost) || ctx.Err() != nil {
				a.unsent(ctx, it)
				return
			}
			// Busy, or no answer in time: send again with the same id.
			select {
			case <-ctx.Done():
				return
			case <-time.After(Backoff{Base: time.Second, Max: 10 * time.Second}.Delay(attempt)):
			}
			if wait, err = a.Conn.Start(frame.MethodChat, data, it.id); err != nil {
				a.unsent(ctx, it)
				return
			}
		}
	}()
}

// unsent leaves an item for the flush after the next reconnect.
func (a *App) unsent(ctx context.Context, it *outItem) {
	a.mu.Lock()
	it.sending = false
	report := !it.reported
	it.reported = true
	a.mu.Unlock()
	if report && ctx.Err() == nil {
		a.Out.Println("  … not connected: will send when reconnected")
	}
}

func retryable(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"retry", "unavailable", "busy", "timeout", "shutting down"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func (a *App) done(it *outItem) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, x := range a.outbox {
		if x == it {
			a.outbox = append(a.outbox[:i], a.outbox[i+1:]...)
			return
		}
	}
}

func (a *App) flush(ctx context.Context) {
	a.mu.Lock()
	items := append([]*outItem(nil), a.outbox...)
	a.mu.Unlock()
	for _, it := range items {
		a.transmit(ctx, it) // in order
	}
}

func (a *App) groupCreate(ctx context.Context, name string, members []string) error {
	g, err := a.API.CreateGroup(ctx, name, members)
	if err != nil {
		return err
	}
	a.Store.SetGroupName(g.GroupID, g.Name)
	a.Store.SetMembers(g.GroupID, g.Members, g.Owner)
	a.Out.Println(printable(fmt.Sprintf("  created group %s (%s) with %s", g.Name, g.GroupID, strings.Join(g.Members, ", "))))
	return a.openConv(ctx, g.GroupID)
}

func (a *App) groupAdd(ctx context.Context, group string, members []string) error {
	if id, ok := a.Store.FindGroup(group); ok {
		group = id
	}
	g, err := a.API.AddMembers(ctx, group, members)
	if err != nil {
		return err
	}
	a.Store.SetGroupName(g.GroupID, g.Name)
	a.Store.SetMembers(g.GroupID, g.Members, g.Owner)
	a.Out.Println(printable(fmt.Sprintf("  %s (%s) members: %s", g.Name, g.GroupID, strings.Join(g.Members, ", "))))
	return nil
}

func (a *App) online(ctx context.Context, users []string) error {
	raw, err := a.Conn.Request(ctx, frame.MethodOnline, map[string]any{"userIds": users}, "")
	if err != nil {
		return err
	}
	var res struct {
		Online map[string]bool `json:"online"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	a.Out.Println(onlineLine(res.Online, users))
	return nil
}

// OnFrame handles what the server sends unasked: pushes and receipts.
func (a *App) OnFrame(ctx context.Context, f frame.Frame) {
	switch f.Method {
	case frame.MethodPush:
		var p frame.Push
		if err := json.Unmarshal(f.Data, &p); err != nil || p.Msg.MsgID == "" {
			return
		}
		before, known := a.Store.Conv(p.ConversationID)
		var knownSeq int64
		if known {
			knownSeq = a.Store.KnownSeqs()[p.ConversationID]
		}
		m, isNew := a.Store.Merge(p, FromPush)
		a.typingDone(p.ConversationID, p.SendID)
		if !isNew || m.Hidden {
			return
		}
		if !known || (before.ChatType == frame.GroupChat && before.GroupName == "") {
			a.refreshNames(ctx)
		}
		c, _ := a.Store.Conv(p.ConversationID)
		a.Out.Println(msgLine(a.Me, c, m, a.now()))
		if known && p.Seq > knownSeq+1 {
			go a.syncAndPrint(ctx) // a gap: something was missed
		}
		if p.ConversationID == a.openID() {
			a.markRead(ctx) // read covers delivered
		} else if p.SendID != a.Me {
			a.reportDelivered(ctx, p.ConversationID)
		}
	case frame.MethodRead:
		var n frame.ReadNotice
		if err := json.Unmarshal(f.Data, &n); err != nil || n.ReaderID == a.Me {
			return
		}
		c, ok := a.Store.Conv(n.ConversationID)
		if !ok {
			return
		}
		a.Out.Println(receiptLine(n, c))
	case frame.MethodDelivered:
		var d frame.Delivery
		if err := json.Unmarshal(f.Data, &d); err != nil || d.UserID == a.Me {
			return
		}
		if c, ok := a.Store.Conv(d.ConversationID); ok {
			a.Out.Println(deliveredLine(d, c))
		}
	case frame.MethodGroupChanged:
		var g frame.GroupChange
		if err := json.Unmarshal(f.Data, &g); err != nil || g.GroupID == "" {
			return
		}
		a.Out.Println(groupChangeLine(a.Me, g))
		a.Store.ForgetMembers(g.GroupID)
		a.refreshNames(ctx)
	case frame.MethodChanged:
		var ch frame.Changed
		if err := json.Unmarshal(f.Data, &ch); err != nil || ch.ConversationID == "" || ch.MsgID == "" {
			return
		}
		r := a.Store.ApplyChange(ch)
		if r.Held && (!r.Applied || (r.After.Hidden && ch.Kind != frame.KindHide)) {
			return // seen already, or hidden here
		}
		a.Out.Println(changeLine(a.Me, ch, r, a.where(ch.ConversationID, ch.ChatType)))
	case frame.MethodTyping:
		var t frame.Typing
		if err := json.Unmarshal(f.Data, &t); err != nil || t.ConversationID == "" || t.UserID == "" || t.UserID == a.Me {
			return
		}
		if !t.Typing {
			a.typingDone(t.ConversationID, t.UserID)
			return
		}
		if a.typingDue(t.ConversationID, t.UserID) {
			a.Out.Println(typingLine(t.UserID, a.where(t.ConversationID, t.ChatType)))
		}
	}
}

// refreshNames loads the list for names of groups first seen in a push.
func (a *App) refreshNames(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if l, err := a.API.List(ctx); err == nil {
		a.Store.ApplyList(l)
	}
}

// OnConnect runs after every (re)connect: unacked messages go out again,
// then everything missed is fetched with conversation.sync and shown.
func (a *App) OnConnect(ctx context.Context) {
	a.flush(ctx)
	if l, err := a.API.List(ctx); err == nil {
		a.Store.ApplyList(l)
	}
	a.syncAndPrint(ctx)
	a.markRead(ctx)
}

func (a *App) syncAndPrint(ctx context.Context) {
	got := map[string]bool{}
	n, err := a.Sync(ctx, func(m Message) {
		c, _ := a.Store.Conv(m.ConvID)
		a.Out.Println(msgLine(a.Me, c, m, a.now()))
		if m.SendID != a.Me {
			got[m.ConvID] = true
		}
	}, func(ch frame.Changed, r ChangeResult) {
		a.Out.Println(changeLine(a.Me, ch, r, a.where(ch.ConversationID, ch.ChatType)))
	})
	for id := range got {
		a.reportDelivered(ctx, id)
	}
	if err != nil && ctx.Err() == nil {
		a.Out.Println("  ! sync: " + printable(err.Error()))
	}
	if n > 0 {
		a.Out.Printf("  (synced %d missed message(s))\n", n)
	}
	a.reportOwnSeqs()
}

// Sync asks for everything after what the store holds (messages after the
// seqs, changes after the versions), page by page, and calls show for each
// message new to this client (in seq order per conversation) and changed
// for each change that changed a message held. It returns how many new
// messages there were.
func (a *App) Sync(ctx context.Context, show func(Message), changed func(frame.Changed, ChangeResult)) (int, error) {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	n := 0
	for page := 0; page < 100; page++ {
		req := map[string]any{"seqs": a.Store.KnownSeqs(), "versions": a.Store.Versions(), "limit": 200}
		raw, err := a.Conn.Request(ctx, frame.MethodSync, req, "")
		if err != nil {
			return n, err
		}
		var res struct {
			Messages []frame.Push    `json:"messages"`
			Changes  []frame.Changed `json:"changes"`
			More     bool            `json:"more"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return n, err
		}
		for _, p := range res.Messages {
			if m, isNew := a.Store.Merge(p, FromSync); isNew && !m.Hidden {
				n++
				if show != nil {
					show(m)
				}
			}
		}
		// After the messages: a change they already show is stale.
		for _, ch := range res.Changes {
			r := a.Store.ApplyChange(ch)
			if r.Applied && (!r.After.Hidden || ch.Kind == frame.KindHide) && changed != nil {
				changed(ch, r)
			}
		}
		if !res.More || len(res.Messages)+len(res.Changes) == 0 {
			return n, nil
		}
	}
	return n, nil
}
