package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"easychat/pkg/frame"

	"github.com/gorilla/websocket"
)

// fakeGateway speaks enough of the gateway's protocol for the client: the
// websocket (chat acks, sync, markChat) and the list/history API. Tests
// drop its socket and add messages behind the client's back.
type fakeGateway struct {
	t   *testing.T
	srv *httptest.Server
	mux *http.ServeMux // more routes may be added (files_test.go)

	mu         sync.Mutex
	log        []frame.Push // every stored message, in seq order per conversation
	ws         *websocket.Conn
	wmu        sync.Mutex
	chatIDs    []string // frame ids of chat frames received
	chatTexts  []string // and their contents
	dropOnChat int      // close the socket instead of acking this many chats
	delivered  []int64  // seqs of markDelivered frames received
	dials      int
	groupNames map[string]string // conversation id → group name, for the list
	chatErr    string            // answer chats with this error instead of an ack

	chats       []frame.Chat      // the data of chat frames received
	storeChats  bool              // store received chats (seq, msgId "m-<frame id>")
	version     int64             // the change version history answers carry
	members     *Group            // the answer to group members
	changeReqs  []frame.Frame     // recall, edit, react, hide and typing frames received
	onChange    func(frame.Frame) // answers them (default: an ack)
	syncReqs    []json.RawMessage // the data of sync frames received
	syncChanges []frame.Changed   // what sync answers as changes (after the versions asked)
}

func newFakeGateway(t *testing.T) *fakeGateway {
	g := &fakeGateway{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", g.serveWS)
	mux.HandleFunc("/api/conversation", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Action string }
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		g.mu.Lock()
		defer g.mu.Unlock()
		switch req.Action {
		case "history":
			var h struct {
				ConversationID string
				Before, Limit  int64
			}
			_ = json.Unmarshal(body, &h)
			out := []frame.Push{}
			for i := len(g.log) - 1; i >= 0 && int64(len(out)) < h.Limit; i-- {
				if p := g.log[i]; p.ConversationID == h.ConversationID && (h.Before == 0 || p.Seq < h.Before) {
					out = append(out, p)
				}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"messages": out, "version": g.version})
		case "list":
			seqs := map[string]int64{}
			for _, p := range g.log {
				seqs[p.ConversationID] = max(seqs[p.ConversationID], p.Seq)
			}
			var list []ConvInfo
			for c, s := range seqs {
				info := ConvInfo{ConversationID: c, ChatType: frame.SingleChat, Seq: s}
				if name, ok := g.groupNames[c]; ok {
					info.ChatType, info.GroupName = frame.GroupChat, name
				}
				list = append(list, info)
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"conversations": list})
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"messages": []any{}})
		}
	})
	mux.HandleFunc("/api/group", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.members == nil {
			http.Error(w, `{"error":"no such group"}`, http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(g.members)
	})
	g.mux = mux
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGateway) add(p frame.Push) {
	g.mu.Lock()
	g.log = append(g.log, p)
	g.mu.Unlock()
}

func (g *fakeGateway) send(f frame.Frame) {
	g.mu.Lock()
	ws := g.ws
	g.mu.Unlock()
	if ws == nil {
		g.t.Fatal("no socket to push to")
	}
	b, _ := json.Marshal(f)
	g.wmu.Lock()
	defer g.wmu.Unlock()
	_ = ws.WriteMessage(websocket.TextMessage, b)
}

// pushLive stores p and pushes it to the client.
func (g *fakeGateway) pushLive(p frame.Push) {
	g.add(p)
	data, _ := json.Marshal(p)
	g.send(frame.Frame{FrameType: frame.Data, Method: frame.MethodPush, FormID: p.SendID, Data: data})
}

func (g *fakeGateway) drop() {
	g.mu.Lock()
	ws := g.ws
	g.ws = nil
	g.mu.Unlock()
	if ws != nil {
		ws.Close()
	}
}

func (g *fakeGateway) online() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ws != nil
}

func (g *fakeGateway) serveWS(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer tok" {
		http.Error(w, "no token", http.StatusUnauthorized)
		return
	}
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	g.mu.Lock()
	g.ws = ws
	g.dials++
	g.mu.Unlock()
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var f frame.Frame
		_ = json.Unmarshal(b, &f)
		switch {
		case f.FrameType == frame.Ack, f.FrameType == frame.Ping:
		case f.Method == frame.MethodChat:
			var c frame.Chat
			_ = json.Unmarshal(f.Data, &c)
			g.mu.Lock()
			g.chatIDs = append(g.chatIDs, f.ID)
			g.chatTexts = append(g.chatTexts, c.Msg.Content)
			var wc frame.Chat
			_ = json.Unmarshal(f.Data, &wc)
			g.chats = append(g.chats, wc)
			if g.storeChats {
				var top int64
				for _, p := range g.log {
					if p.ConversationID == c.ConversationID {
						top = max(top, p.Seq)
					}
				}
				wc.Msg.MsgID = "m-" + f.ID
				g.log = append(g.log, frame.Push{ConversationID: c.ConversationID, ChatType: c.ChatType, SendID: "alice",
					SendTime: 1000 * (top + 1), Seq: top + 1, Msg: wc.Msg})
			}
			drop := g.dropOnChat > 0
			if drop {
				g.dropOnChat--
			}
			chatErr := g.chatErr
			g.mu.Unlock()
			if drop {
				g.drop()
				return
			}
			if chatErr != "" {
				g.send(frame.Frame{FrameType: frame.Error, ID: f.ID, Method: f.Method, ErrMsg: chatErr})
				continue
			}
			g.ack(f.ID, f.Method, frame.ChatAck{MsgID: "m-" + f.ID, ConversationID: c.ConversationID})
		case f.Method == frame.MethodSync:
			var req struct {
				Seqs     map[string]int64
				Versions map[string]int64
			}
			_ = json.Unmarshal(f.Data, &req)
			g.mu.Lock()
			g.syncReqs = append(g.syncReqs, f.Data)
			out := []frame.Push{}
			for _, p := range g.log {
				if known, ok := req.Seqs[p.ConversationID]; !ok || p.Seq > known {
					out = append(out, p)
				}
			}
			changes := []frame.Changed{}
			for _, ch := range g.syncChanges {
				if v, ok := req.Versions[ch.ConversationID]; ok && ch.Version > v {
					changes = append(changes, ch)
				}
			}
			g.mu.Unlock()
			g.ack(f.ID, f.Method, map[string]any{"messages": out, "changes": changes, "more": false})
		case f.Method == frame.MethodRecall, f.Method == frame.MethodEdit, f.Method == frame.MethodReact, f.Method == frame.MethodHide, f.Method == frame.MethodTyping:
			g.mu.Lock()
			g.changeReqs = append(g.changeReqs, f)
			answer := g.onChange
			g.mu.Unlock()
			if answer != nil {
				answer(f)
				continue
			}
			var c frame.ChatAck
			_ = json.Unmarshal(f.Data, &c)
			g.ack(f.ID, f.Method, c)
		case f.Method == frame.MethodMarkDelivered:
			var d struct {
				ConversationID string
				Seq            int64
			}
			_ = json.Unmarshal(f.Data, &d)
			g.mu.Lock()
			g.delivered = append(g.delivered, d.Seq)
			g.mu.Unlock()
			g.ack(f.ID, f.Method, map[string]any{"conversationId": d.ConversationID})
		default:
			g.ack(f.ID, f.Method, map[string]any{})
		}
	}
}

func (g *fakeGateway) ack(id, method string, v any) {
	data, _ := json.Marshal(v)
	g.send(frame.Frame{FrameType: frame.Ack, ID: id, AckSeq: 1, Method: method, Data: data})
}

// lockedBuffer collects the client's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startApp(t *testing.T, g *fakeGateway, setup ...func(*App)) (*App, *lockedBuffer) {
	t.Helper()
	out := &lockedBuffer{}
	ws, _ := wsURL(g.srv.URL)
	api := &API{Base: g.srv.URL, Token: "tok"}
	app := &App{Me: "alice", API: api, Store: NewStore("alice"), Out: &Printer{w: out}}
	for _, f := range setup {
		f(app)
	}
	app.Conn = &Conn{URL: ws, Token: "tok", Backoff: Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}}
	ctx, cancel := context.WithCancel(context.Background())
	app.Conn.OnFrame = func(f frame.Frame) { app.OnFrame(ctx, f) }
	app.Conn.OnConnect = app.OnConnect
	done := make(chan struct{})
	go func() {
		app.Conn.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if l, err := api.List(ctx); err == nil {
		app.Store.ApplyList(l)
	}
	waitFor(t, "connected", func() bool { return app.Conn.Online() && g.online() })
	return app, out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// After a lost connection the client reconnects by itself and syncs what
// it missed; a missed push (a gap in seqs) is fetched too. Every message
// is printed once, in order.
func TestReconnectSyncsMissedMessagesOnce(t *testing.T) {
	g := newFakeGateway(t)
	const conv = "alice_bob"
	for i := int64(1); i <= 3; i++ { // before the client started: history
		g.add(push(conv, "bob", i, "old"+string(rune('0'+i))))
	}
	app, out := startApp(t, g)

	g.pushLive(push(conv, "bob", 4, "four"))
	waitFor(t, "the live push", func() bool { return strings.Contains(out.String(), "four") })

	g.drop()
	g.add(push(conv, "bob", 5, "five"))
	g.add(push(conv, "bob", 6, "six"))
	waitFor(t, "the synced messages", func() bool { return strings.Contains(out.String(), "six") })

	g.add(push(conv, "bob", 7, "seven")) // its push is lost
	waitFor(t, "the reconnect", func() bool { return g.online() })
	g.pushLive(push(conv, "bob", 8, "eight"))
	waitFor(t, "the gap to be filled", func() bool { return strings.Contains(out.String(), "seven") })

	text := out.String()
	last := -1
	for _, w := range []string{"four", "five", "six", "seven", "eight"} {
		if n := strings.Count(text, "bob: "+w); n != 1 {
			t.Fatalf("%q printed %d times:\n%s", w, n, text)
		}
		if i := strings.Index(text, "bob: "+w); w != "eight" && w != "seven" && i < last {
			t.Fatalf("%q out of order:\n%s", w, text)
		} else {
			last = i
		}
	}
	if strings.Contains(text, "old") {
		t.Fatalf("history before the start was printed as new:\n%s", text)
	}
	if got := app.Store.KnownSeqs()[conv]; got != 8 {
		t.Fatalf("known seq %d, want 8", got)
	}
	if got := contents(app.Store.Messages(conv)); strings.Join(got, ",") != "four,five,six,seven,eight" {
		t.Fatalf("store: %v", got)
	}
}

// A message whose ack was lost with the connection is sent again after the
// reconnect with the same frame id (so the server stores it once), and
// reported sent once.
func TestUnackedMessageResentWithSameID(t *testing.T) {
	g := newFakeGateway(t)
	g.dropOnChat = 1
	app, out := startApp(t, g)
	ctx := context.Background()
	if app.Handle(ctx, Command{Kind: KindOpen, ID: "bob"}) {
		t.Fatal("quit")
	}
	app.Handle(ctx, Command{Kind: KindSend, Text: "hello"})
	waitFor(t, "the ack after the resend", func() bool { return strings.Contains(out.String(), "✓ sent to @bob") })
	g.mu.Lock()
	ids := append([]string(nil), g.chatIDs...)
	dials := g.dials
	g.mu.Unlock()
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Fatalf("chat frame ids %v, want the same id twice", ids)
	}
	if dials < 2 {
		t.Fatalf("dials %d", dials)
	}
	if n := strings.Count(out.String(), "✓ sent"); n != 1 {
		t.Fatalf("reported sent %d times:\n%s", n, out.String())
	}
	if app.pending() != 0 {
		t.Fatal("outbox not empty")
	}
}

// Messages typed one after another reach the server in that order.
func TestSendsKeepOrder(t *testing.T) {
	g := newFakeGateway(t)
	app, out := startApp(t, g)
	ctx := context.Background()
	app.Handle(ctx, Command{Kind: KindOpen, ID: "bob"})
	for _, s := range []string{"1", "2", "3", "4", "5", "6", "7", "8"} {
		app.Handle(ctx, Command{Kind: KindSend, Text: s})
	}
	waitFor(t, "acks", func() bool { return strings.Count(out.String(), "✓ sent") == 8 })
	g.mu.Lock()
	defer g.mu.Unlock()
	if got := strings.Join(g.chatTexts, ","); got != "1,2,3,4,5,6,7,8" {
		t.Fatalf("server got %s", got)
	}
}

// Messages that arrive in a chat that is not open are reported delivered up
// to the newest seq held without a gap; receipts for my own messages print.
func TestDeliveryReportedAndShown(t *testing.T) {
	g := newFakeGateway(t)
	const conv = "alice_bob"
	_, out := startApp(t, g)
	g.pushLive(push(conv, "bob", 1, "one"))
	g.pushLive(push(conv, "bob", 2, "two"))
	deliveredTop := func() int64 {
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.delivered) == 0 {
			return 0
		}
		return g.delivered[len(g.delivered)-1]
	}
	waitFor(t, "a delivery report up to seq 2", func() bool { return deliveredTop() == 2 })
	g.mu.Lock()
	reports := append([]int64(nil), g.delivered...)
	g.mu.Unlock()
	for i := 1; i < len(reports); i++ {
		if reports[i] <= reports[i-1] {
			t.Fatalf("reports went back or repeated: %v", reports)
		}
	}
	data, _ := json.Marshal(frame.Delivery{ConversationID: conv, UserID: "bob", DeliveredSeq: 3})
	g.send(frame.Frame{FrameType: frame.Data, Method: frame.MethodDelivered, FormID: "bob", Data: data})
	waitFor(t, "the delivered line", func() bool { return strings.Contains(out.String(), "✓✓ delivered to bob in @bob up to #3") })
}
