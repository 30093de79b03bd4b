package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"easychat/gateway/server"
	"easychat/gateway/session"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/sign"

	"github.com/gorilla/websocket"
)

func TestAuthRejectedBeforeUpgrade(t *testing.T) {
	g := startGateway(t, newRegistry(t), testConfig(newFakeFaaS(t).srv.URL))
	cases := map[string]http.Header{
		"no token":     nil,
		"bad token":    {"Authorization": {"Bearer not-a-jwt"}},
		"wrong secret": {"Authorization": {"Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4IiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2lnbmF0dXJl"}},
		"basic auth":   {"Authorization": {"Basic dXNlcjpwYXNz"}},
		"bad subproto": {"Sec-WebSocket-Protocol": {"easychat, a.b.c"}},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			ws, resp, err := websocket.DefaultDialer.Dial(g.wsURL(), h)
			if err == nil {
				ws.Close()
				t.Fatal("handshake succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("got %v (%s), want 401", err, status(resp))
			}
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), "token") {
				t.Fatalf("body %q", body)
			}
		})
	}
	if n := metric(t, g, "easychat_gateway_auth_failures_total"); n != float64(len(cases)) {
		t.Fatalf("auth failures metric %v, want %d", n, len(cases))
	}
}

func TestTokenSources(t *testing.T) {
	g := startGateway(t, newRegistry(t), testConfig(newFakeFaaS(t).srv.URL))
	user := uid("alice")
	jwt := tok(t, user)

	check := func(t *testing.T, ws *websocket.Conn) {
		t.Helper()
		defer ws.Close()
		ping(t, ws)
	}
	t.Run("header", func(t *testing.T) { check(t, g.dial(t, user)) })
	t.Run("query", func(t *testing.T) {
		ws, resp, err := websocket.DefaultDialer.Dial(withQuery(g.wsURL(), "token", jwt), nil)
		if err != nil {
			t.Fatalf("%v (%s)", err, status(resp))
		}
		check(t, ws)
	})
	t.Run("subprotocol with app protocol", func(t *testing.T) {
		d := websocket.Dialer{Subprotocols: []string{"easychat", jwt}}
		ws, resp, err := d.Dial(g.wsURL(), nil)
		if err != nil {
			t.Fatalf("%v (%s)", err, status(resp))
		}
		if ws.Subprotocol() != "easychat" {
			t.Fatalf("server chose %q, want easychat", ws.Subprotocol())
		}
		check(t, ws)
	})
	t.Run("subprotocol token only", func(t *testing.T) {
		d := websocket.Dialer{Subprotocols: []string{jwt}}
		ws, resp, err := d.Dial(g.wsURL(), nil)
		if err != nil {
			t.Fatalf("%v (%s)", err, status(resp))
		}
		if ws.Subprotocol() != jwt {
			t.Fatalf("server chose %q, want the offered token", ws.Subprotocol())
		}
		check(t, ws)
	})
}

func TestPingEcho(t *testing.T) {
	g := startGateway(t, newRegistry(t), testConfig(newFakeFaaS(t).srv.URL))
	ws := g.dial(t, uid("alice"))
	send(t, ws, frame.Frame{FrameType: frame.Ping, ID: "p1"})
	if f := readType(t, ws, frame.Ping); f.ID != "p1" {
		t.Fatalf("ping echo %+v", f)
	}
	send(t, ws, []byte(`{"frameType":1}`))
	readType(t, ws, frame.Ping)
}

// TestChatAckModes: a chat frame becomes a signed call to the chat function
// on behalf of the authenticated user (the forged formId is ignored), and is
// acknowledged only after the function accepted it, as each mode says.
func TestChatAckModes(t *testing.T) {
	alice, bob := uid("alice"), uid("bob")
	wantData := func(t *testing.T, f frame.Frame, id string) {
		t.Helper()
		var ack frame.ChatAck
		if err := json.Unmarshal(f.Data, &ack); err != nil {
			t.Fatalf("result %s: %v", f.Data, err)
		}
		if ack.MsgID != event.MsgID(alice, frame.SingleConversationID(alice, bob), id, "hi") || ack.ConversationID != frame.SingleConversationID(alice, bob) {
			t.Fatalf("result %+v", ack)
		}
		if f.ID != id || f.Method != frame.MethodChat {
			t.Fatalf("reply %+v, want id %s and method chat", f, id)
		}
	}
	checkCall := func(t *testing.T, fa *fakeFaaS, id string) {
		t.Helper()
		var c call
		select {
		case c = <-fa.called:
		case <-time.After(wait):
			t.Fatal("chat function not called")
		}
		if c.Fn != "chat" || c.User != alice || c.FrameID != id {
			t.Fatalf("call %+v, want chat by %s for frame %s", c, alice, id)
		}
		if strings.Contains(string(c.Body), "mallory") {
			t.Fatalf("forged sender reached the function: %s", c.Body)
		}
	}

	t.Run("none", func(t *testing.T) {
		fa := newFakeFaaS(t)
		cfg := testConfig(fa.srv.URL)
		cfg.AckMode = session.AckNone
		g := startGateway(t, newRegistry(t), cfg)
		ws := g.dial(t, alice)
		send(t, ws, chatFrame("c1", bob, "hi"))
		checkCall(t, fa, "c1")
		wantData(t, readType(t, ws, frame.Data), "c1")
	})

	t.Run("only", func(t *testing.T) {
		fa := newFakeFaaS(t)
		cfg := testConfig(fa.srv.URL)
		cfg.AckMode = session.AckOnly
		g := startGateway(t, newRegistry(t), cfg)
		ws := g.dial(t, alice)
		send(t, ws, chatFrame("c1", bob, "hi"))
		checkCall(t, fa, "c1")
		f := readType(t, ws, frame.Ack)
		wantData(t, f, "c1")
		if f.AckSeq != 1 {
			t.Fatalf("ackSeq %d, want 1", f.AckSeq)
		}
		// frameType 3 asks for no ack: the result comes as a data frame.
		noAck := chatFrame("c2", bob, "hi")
		noAck.FrameType = frame.NoAck
		send(t, ws, noAck)
		checkCall(t, fa, "c2")
		wantData(t, readType(t, ws, frame.Data), "c2")
	})

	t.Run("rigor", func(t *testing.T) {
		fa := newFakeFaaS(t)
		cfg := testConfig(fa.srv.URL)
		cfg.AckMode = session.AckRigor
		cfg.AckRetries = 2
		g := startGateway(t, newRegistry(t), cfg)
		ws := g.dial(t, alice)

		// Echoed after one resend: the gateway stops resending.
		send(t, ws, chatFrame("c1", bob, "hi"))
		checkCall(t, fa, "c1")
		first := readType(t, ws, frame.Ack)
		wantData(t, first, "c1")
		again := readType(t, ws, frame.Ack) // not echoed yet: resent
		if again.ID != "c1" || again.AckSeq != first.AckSeq {
			t.Fatalf("resent ack %+v, want %+v", again, first)
		}
		send(t, ws, frame.Frame{FrameType: frame.Ack, ID: "c1", AckSeq: first.AckSeq})
		eventually(t, "echo to clear the pending ack", func() bool {
			return metric(t, g, "easychat_gateway_acks_pending") == 0
		})

		// Never echoed: the ack plus AckRetries resends, then the gateway gives up.
		send(t, ws, chatFrame("c2", bob, "hi"))
		checkCall(t, fa, "c2")
		for i := 0; i < 1+cfg.AckRetries; {
			f := read(t, ws)
			if f.FrameType == frame.Ack && f.ID == "c1" {
				continue // a resend of c1 may have raced its echo
			}
			if f.FrameType != frame.Ack || f.ID != "c2" {
				t.Fatalf("got %+v, want ack of c2", f)
			}
			i++
		}
		eventually(t, "the gateway to give up", func() bool {
			return metric(t, g, "easychat_gateway_ack_giveups_total") == 1
		})
		if n := metric(t, g, "easychat_gateway_acks_pending"); n != 0 {
			t.Fatalf("%v acks still pending", n)
		}
		ping(t, ws)
	})
}

func TestChatOrderPerConnection(t *testing.T) {
	fa := newFakeFaaS(t)
	g := startGateway(t, newRegistry(t), testConfig(fa.srv.URL))
	ws := g.dial(t, uid("alice"))
	const n = 30
	for i := 0; i < n; i++ {
		send(t, ws, chatFrame(fmt.Sprintf("m%02d", i), uid("bob"), fmt.Sprint(i)))
	}
	for i := 0; i < n; i++ {
		if f := readType(t, ws, frame.Ack); f.ID != fmt.Sprintf("m%02d", i) {
			t.Fatalf("ack %d is for %s", i, f.ID)
		}
	}
	for i, c := range fa.callsSnapshot() {
		if c.FrameID != fmt.Sprintf("m%02d", i) {
			t.Fatalf("call %d was frame %s: chat frames reordered", i, c.FrameID)
		}
	}
}

func TestBadFramesKeepSocketOpen(t *testing.T) {
	fa := newFakeFaaS(t)
	cfg := testConfig(fa.srv.URL)
	cfg.MaxFrameBytes = 1024
	g := startGateway(t, newRegistry(t), cfg)
	ws := g.dial(t, uid("alice"))
	bob := uid("bob")

	send(t, ws, []byte(`{"frameType":0,"id":"x1","method":`))
	if msg := readErr(t, ws, "x1"); !strings.HasPrefix(msg, "malformed frame") {
		t.Fatalf("malformed: %q", msg)
	}
	ping(t, ws)

	send(t, ws, []byte(`not json at all`))
	readErr(t, ws, "")
	ping(t, ws)

	send(t, ws, frame.Frame{FrameType: frame.Data, ID: "x2", Method: "no.such"})
	if msg := readErr(t, ws, "x2"); msg != "unknown method: no.such" {
		t.Fatalf("unknown method: %q", msg)
	}
	send(t, ws, frame.Frame{FrameType: frame.Data, ID: "x2b", Method: frame.MethodPush})
	readErr(t, ws, "x2b") // clients cannot push
	ping(t, ws)

	send(t, ws, chatFrame("x3", bob, strings.Repeat("a", 4096)))
	if msg := readErr(t, ws, "x3"); !strings.Contains(msg, "too large") {
		t.Fatalf("oversized: %q", msg)
	}
	ping(t, ws)

	bad := chatFrame("x4", bob, "hi")
	bad.Data = json.RawMessage(`{"chatType":7,"recvId":"` + bob + `","msg":{"content":"hi"}}`)
	send(t, ws, bad)
	if msg := readErr(t, ws, "x4"); msg != frame.ErrChatType.Error() {
		t.Fatalf("chatType: %q", msg)
	}
	send(t, ws, frame.Frame{FrameType: 5, ID: "x5"})
	readErr(t, ws, "x5")

	// Still usable for real work, and nothing bad reached the function.
	send(t, ws, chatFrame("ok", bob, "hi"))
	if f := readType(t, ws, frame.Ack); f.ID != "ok" {
		t.Fatalf("ack %+v", f)
	}
	if calls := fa.callsSnapshot(); len(calls) != 1 {
		t.Fatalf("function called %d times, want 1: %+v", len(calls), calls)
	}

	// Past the discard bound the client is flooding: the socket closes with 1009.
	send(t, ws, chatFrame("x6", bob, strings.Repeat("a", 200<<10)))
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if closeCode(err) != websocket.CloseMessageTooBig {
				t.Fatalf("got %v, want close 1009", err)
			}
			break
		}
	}
}

func TestFunctionFailures(t *testing.T) {
	fa := newFakeFaaS(t)
	fa.setAnswer(func(w http.ResponseWriter, r *http.Request, c call) bool {
		switch c.FrameID {
		case "e500":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"mongo: connection refused 10.1.2.3:27017"}`))
		case "e503":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"temporarily unavailable, retry","requestId":"0123456789abcdef"}`))
		case "eproxy":
			http.Error(w, "upstream connect error to 10.1.2.3:8080", http.StatusNotFound)
		case "etext":
			http.Error(w, "bad thing", http.StatusBadRequest)
		case "slow":
			<-r.Context().Done() // until the gateway gives up
		default:
			return false
		}
		return true
	})
	cfg := testConfig(fa.srv.URL)
	cfg.CallTimeout = 300 * time.Millisecond
	g := startGateway(t, newRegistry(t), cfg)
	ws := g.dial(t, uid("alice"))
	bob := uid("bob")

	// An internal failure's detail never reaches the client; the function's
	// request id does, so support can find the logged cause.
	send(t, ws, chatFrame("e500", bob, "hi"))
	if msg := readErr(t, ws, "e500"); msg != session.ErrTextUnavailable {
		t.Fatalf("500: %q", msg)
	}
	send(t, ws, chatFrame("e503", bob, "hi"))
	if msg := readErr(t, ws, "e503"); msg != session.ErrTextUnavailable+" (request 0123456789abcdef)" {
		t.Fatalf("503: %q", msg)
	}
	// A refusal that is not a function's own JSON answer shows its status only.
	send(t, ws, chatFrame("eproxy", bob, "hi"))
	if msg := readErr(t, ws, "eproxy"); msg != "Not Found" {
		t.Fatalf("proxy 404: %q", msg)
	}
	send(t, ws, chatFrame("etext", bob, "hi"))
	if msg := readErr(t, ws, "etext"); msg != "Bad Request" {
		t.Fatalf("400: %q", msg)
	}
	send(t, ws, chatFrame("slow", bob, "hi"))
	if msg := readErr(t, ws, "slow"); !unavailableWithID(msg) {
		t.Fatalf("timeout: %q", msg)
	}
	send(t, ws, frame.Frame{FrameType: frame.Data, ID: "sync1", Method: frame.MethodSync, Data: json.RawMessage(`{"seq":1}`)})
	if f := readType(t, ws, frame.Ack); f.ID != "sync1" || string(f.Data) != `{"ok":true}` {
		t.Fatalf("sync ack %+v", f)
	}
	ping(t, ws)

	// A FaaS gateway that is not there at all.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	g2 := startGateway(t, newRegistry(t), testConfig(dead))
	ws2 := g2.dial(t, uid("carol"))
	send(t, ws2, chatFrame("u1", bob, "hi"))
	if msg := readErr(t, ws2, "u1"); !unavailableWithID(msg) {
		t.Fatalf("unreachable: %q", msg)
	}
}

// A burst of chats beyond the queue is slowed down, not refused: the read
// pump waits for room, and every frame is acked in order once the function
// answers again. Only a wait longer than the call timeout is refused.
func TestChatBurstBeyondQueueIsBackpressured(t *testing.T) {
	fa := newFakeFaaS(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the fake's Close, which waits for blocked handlers
	fa.setAnswer(func(w http.ResponseWriter, r *http.Request, c call) bool {
		if c.FrameID == "b1" {
			<-release
		}
		return false
	})
	cfg := testConfig(fa.srv.URL)
	cfg.ChatQueue = 1
	g := startGateway(t, newRegistry(t), cfg)
	ws := g.dial(t, uid("alice"))
	bob := uid("bob")

	send(t, ws, chatFrame("b1", bob, "1"))
	<-fa.called // b1 is in the worker, blocked
	for _, id := range []string{"b2", "b3", "b4"} {
		send(t, ws, chatFrame(id, bob, id))
	}
	unblock()
	for _, id := range []string{"b1", "b2", "b3", "b4"} {
		if f := readType(t, ws, frame.Ack); f.ID != id {
			t.Fatalf("ack %+v, want %s", f, id)
		}
	}
	ping(t, ws)
}

func TestChatRefusedWhenQueueStaysFullPastCallTimeout(t *testing.T) {
	fa := newFakeFaaS(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	fa.setAnswer(func(w http.ResponseWriter, r *http.Request, c call) bool {
		if c.FrameID == "b1" {
			<-release
		}
		return false
	})
	cfg := testConfig(fa.srv.URL)
	cfg.ChatQueue = 1
	cfg.ChatQueueWait = 300 * time.Millisecond
	cfg.CallTimeout = 10 * time.Second // b1 stays blocked; only the queue wait may expire
	g := startGateway(t, newRegistry(t), cfg)
	ws := g.dial(t, uid("alice"))
	bob := uid("bob")

	send(t, ws, chatFrame("b1", bob, "1"))
	<-fa.called
	send(t, ws, chatFrame("b2", bob, "2")) // queued
	send(t, ws, chatFrame("b3", bob, "3")) // waits, then is refused
	if msg := readErr(t, ws, "b3"); msg != session.ErrTextBusy {
		t.Fatalf("b3: %q", msg)
	}
	unblock()
}

func TestInternalPush(t *testing.T) {
	g := startGateway(t, newRegistry(t), testConfig(newFakeFaaS(t).srv.URL))
	alice, bob, carol := uid("alice"), uid("bob"), uid("carol")
	phone, laptop := g.dial(t, alice), g.dial(t, alice)
	eventually(t, "both sockets registered", func() bool {
		return metric(t, g, "easychat_gateway_connections") == 2
	})

	p := event.Push{Items: []event.PushItem{
		{Users: []string{alice, bob}, Frame: pushFrame(carol, "hello")},
		{Users: []string{carol}, Frame: pushFrame(alice, "x")},
	}}
	if code, _ := push(t, g, "", p); code != http.StatusUnauthorized {
		t.Fatalf("unsigned push: %d", code)
	}
	if code, _ := push(t, g, "some-other-key", p); code != http.StatusUnauthorized {
		t.Fatalf("wrongly signed push: %d", code)
	}
	// A user-scoped signature for another path does not authorize a push.
	body, _ := json.Marshal(p)
	req, _ := http.NewRequest(http.MethodPost, g.PushURL()+"/internal/push", strings.NewReader(string(body)))
	sign.New(testKey).Sign(req, "/function/chat", sign.ForUser(alice), body)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("push signed for another path: %v %v", err, resp.StatusCode)
	}

	code, res := push(t, g, testKey, p)
	if code != http.StatusOK {
		t.Fatalf("signed push: %d", code)
	}
	if res.Delivered != 2 || strings.Join(res.Missing, ",") != bob+","+carol {
		t.Fatalf("push result %+v", res)
	}
	for _, ws := range []*websocket.Conn{phone, laptop} {
		f := readType(t, ws, frame.Data)
		var d frame.Push
		_ = json.Unmarshal(f.Data, &d)
		if f.Method != frame.MethodPush || f.FormID != carol || d.Msg.Content != "hello" {
			t.Fatalf("pushed frame %+v (%s)", f, f.Data)
		}
	}

	// Oversized bodies are refused.
	big := cfgBody(9 << 20)
	req, _ = http.NewRequest(http.MethodPost, g.PushURL()+"/internal/push", strings.NewReader(big))
	sign.New(testKey).Sign(req, "/internal/push", sign.Component, []byte(big))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized push: %v %v", err, resp)
	}
}

func cfgBody(n int) string { return `{"items":[],"pad":"` + strings.Repeat("x", n) + `"}` }

// TestSlowClientDropped: a client that never reads is disconnected when its
// queue fills, and meanwhile another client keeps receiving every push.
func TestSlowClientDropped(t *testing.T) {
	reg := newRegistry(t)
	cfg := testConfig(newFakeFaaS(t).srv.URL)
	cfg.SendQueue = 4
	g := startGateway(t, reg, cfg)
	slow, fast := uid("slow"), uid("fast")
	g.dial(t, slow) // never read
	fastWS := g.dial(t, fast)
	eventually(t, "sockets registered", func() bool { return online(t, reg, slow) && online(t, reg, fast) })

	got := make(chan string, 1)
	go func() {
		for {
			_ = fastWS.SetReadDeadline(time.Now().Add(4 * wait))
			_, b, err := fastWS.ReadMessage()
			if err != nil {
				close(got)
				return
			}
			var f frame.Frame
			_ = json.Unmarshal(b, &f)
			var d frame.Push
			_ = json.Unmarshal(f.Data, &d)
			got <- d.Msg.MsgID
		}
	}()
	receive := func(id string) {
		t.Helper()
		select {
		case m, ok := <-got:
			if !ok || m != id {
				t.Fatalf("fast client got %q (open %v), want %s", m, ok, id)
			}
		case <-time.After(wait):
			t.Fatalf("fast client did not get %s", id)
		}
	}

	pad := strings.Repeat("x", 512<<10)
	pushed := 0
	pushOne := func(users ...string) server.PushResult {
		pushed++
		f := pushFrame(fast, pad)
		var d frame.Push
		_ = json.Unmarshal(f.Data, &d)
		d.Msg.MsgID = fmt.Sprint(pushed)
		d.Seq = int64(pushed) // a new message each time, or the socket filter drops it
		f.Data, _ = json.Marshal(d)
		code, res := push(t, g, testKey, event.Push{Items: []event.PushItem{{Users: users, Frame: f}}})
		if code != http.StatusOK {
			t.Fatalf("push %d: %d", pushed, code)
		}
		receive(fmt.Sprint(pushed))
		return res
	}
	for metric(t, g, "easychat_gateway_slow_client_drops_total") == 0 {
		if pushed > 2000 {
			t.Fatal("slow client never dropped")
		}
		pushOne(slow, fast)
	}
	// The slow client is gone; the fast one still gets everything.
	eventually(t, "slow client unbound", func() bool { return !online(t, reg, slow) })
	if res := pushOne(slow, fast); res.Delivered != 1 || len(res.Missing) != 1 || res.Missing[0] != slow {
		t.Fatalf("after drop: %+v", res)
	}
	if !online(t, reg, fast) {
		t.Fatal("fast client lost its route")
	}
}

// TestOnlineAcrossInstances: user.online is answered from the shared
// registry, so it sees users on another gateway instance.
func TestOnlineAcrossInstances(t *testing.T) {
	reg := newRegistry(t)
	fa := newFakeFaaS(t)
	a := startGateway(t, reg, testConfig(fa.srv.URL))
	b := startGateway(t, reg, testConfig(fa.srv.URL))
	alice, bob, carol := uid("alice"), uid("bob"), uid("carol")
	wsA := a.dial(t, alice)
	b.dial(t, bob)
	eventually(t, "bob bound on b", func() bool { return online(t, reg, bob) })

	send(t, wsA, frame.Frame{FrameType: frame.Data, ID: "o1", Method: frame.MethodOnline,
		Data: json.RawMessage(`{"userIds":["` + bob + `","` + carol + `","` + alice + `"]}`)})
	f := readType(t, wsA, frame.Data)
	var res struct {
		Online map[string]bool `json:"online"`
	}
	if err := json.Unmarshal(f.Data, &res); err != nil || f.ID != "o1" || f.Method != frame.MethodOnline {
		t.Fatalf("online reply %+v: %v", f, err)
	}
	if !res.Online[bob] || res.Online[carol] || !res.Online[alice] || len(res.Online) != 3 {
		t.Fatalf("online %v", res.Online)
	}

	send(t, wsA, frame.Frame{FrameType: frame.Data, ID: "o2", Method: frame.MethodOnline, Data: json.RawMessage(`[1]`)})
	readErr(t, wsA, "o2")
}

func TestUnbindOnLastClose(t *testing.T) {
	reg := newRegistry(t)
	g := startGateway(t, reg, testConfig(newFakeFaaS(t).srv.URL))
	alice := uid("alice")
	one, two := g.dial(t, alice), g.dial(t, alice)
	eventually(t, "alice online", func() bool { return online(t, reg, alice) })

	closeWS := func(ws *websocket.Conn) {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wait))
		ws.Close()
	}
	closeWS(one)
	eventually(t, "first socket gone", func() bool { return metric(t, g, "easychat_gateway_connections") == 1 })
	if !online(t, reg, alice) {
		t.Fatal("alice went offline with a socket left")
	}
	closeWS(two)
	eventually(t, "alice unbound", func() bool { return !online(t, reg, alice) })
}

// TestShutdownDrains: cancelling Run (SIGTERM) lets an in-flight call finish
// and reach its client, then closes every socket with 1001 and leaves the
// registry.
func TestShutdownDrains(t *testing.T) {
	reg := newRegistry(t)
	fa := newFakeFaaS(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the fake's Close, which waits for blocked handlers
	fa.setAnswer(func(w http.ResponseWriter, r *http.Request, c call) bool {
		if c.FrameID == "inflight" {
			<-release
		}
		return false
	})
	g := startGateway(t, reg, testConfig(fa.srv.URL))
	alice, bob := uid("alice"), uid("bob")
	wsA, wsB := g.dial(t, alice), g.dial(t, bob)
	eventually(t, "users online", func() bool { return online(t, reg, alice) && online(t, reg, bob) })

	send(t, wsA, chatFrame("inflight", bob, "last words"))
	<-fa.called
	g.cancel()
	eventually(t, "draining", func() bool {
		resp, err := http.Get("http://" + g.Addr() + "/readyz")
		if err != nil {
			return true // listener already closed
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	// New work is refused while draining, with an error rather than silence.
	send(t, wsB, chatFrame("late", alice, "too late"))
	if msg := readErr(t, wsB, "late"); msg != session.ErrTextUnavailable && !unavailableWithID(msg) {
		t.Fatalf("frame during drain: %q", msg)
	}
	unblock()

	if f := readType(t, wsA, frame.Ack); f.ID != "inflight" {
		t.Fatalf("in-flight ack %+v", f)
	}
	for _, ws := range []*websocket.Conn{wsA, wsB} {
		_ = ws.SetReadDeadline(time.Now().Add(wait))
		_, _, err := ws.ReadMessage()
		if closeCode(err) != websocket.CloseGoingAway {
			t.Fatalf("got %v, want close 1001", err)
		}
	}
	if err := g.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if online(t, reg, alice) || online(t, reg, bob) {
		t.Fatal("users still online after the gateway left")
	}
	if _, _, err := websocket.DefaultDialer.Dial(g.wsURL()+"?token="+tok(t, alice), nil); err == nil {
		t.Fatal("new socket accepted after drain")
	}
}

func TestHealthAndMetrics(t *testing.T) {
	g := startGateway(t, newRegistry(t), testConfig(newFakeFaaS(t).srv.URL))
	for _, u := range []string{"http://" + g.Addr() + "/healthz", "http://" + g.Addr() + "/readyz", "http://" + g.InternalAddr() + "/metrics"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", u, resp.StatusCode, b)
		}
		if strings.HasSuffix(u, "/metrics") && !strings.Contains(string(b), "easychat_gateway_connections") {
			t.Fatalf("metrics lack gateway collectors")
		}
	}
	// The internal endpoints are not on the public listener.
	resp, err := http.Post("http://"+g.Addr()+"/internal/push", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("public /internal/push: %d", resp.StatusCode)
	}
}

// With batching on, the chat frames of many sockets reach the chat function
// as batches; each socket still gets its own acks, in its order, and the
// function sees every frame under its own sender.
func TestChatBatched(t *testing.T) {
	fa := newFakeFaaS(t)
	cfg := testConfig(fa.srv.URL)
	cfg.ChatBatch = 64
	cfg.ChatInflight = 1
	g := startGateway(t, newRegistry(t), cfg)
	const socks, each = 20, 10
	users := make([]string, socks)
	conns := make([]*websocket.Conn, socks)
	for i := range conns {
		users[i] = uid(fmt.Sprintf("u%d", i))
		conns[i] = g.dial(t, users[i])
	}
	bob := uid("bob")
	var wg sync.WaitGroup
	for i, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				send(t, ws, chatFrame(fmt.Sprintf("s%d-%d", i, k), bob, fmt.Sprint(k)))
			}
		}()
	}
	wg.Wait()
	for i, ws := range conns {
		for k := range each {
			f := readType(t, ws, frame.Ack)
			if want := fmt.Sprintf("s%d-%d", i, k); f.ID != want {
				t.Fatalf("socket %d: ack %d is for %s, want %s", i, k, f.ID, want)
			}
			var ack frame.ChatAck
			if err := json.Unmarshal(f.Data, &ack); err != nil || ack.ConversationID != frame.SingleConversationID(users[i], bob) {
				t.Fatalf("socket %d: ack data %s (%v)", i, f.Data, err)
			}
		}
	}
	seen := map[string]string{}
	for _, c := range fa.callsSnapshot() {
		seen[c.FrameID] = c.User
	}
	for i := range socks {
		for k := range each {
			if u := seen[fmt.Sprintf("s%d-%d", i, k)]; u != users[i] {
				t.Fatalf("frame s%d-%d reached the function as %q's, want %q's", i, k, u, users[i])
			}
		}
	}
	fa.mu.Lock()
	batches := append([]int(nil), fa.batches...)
	fa.mu.Unlock()
	total := 0
	for _, n := range batches {
		total += n
	}
	if total != socks*each {
		t.Fatalf("batched requests carried %d frames, want all %d (requests: %v)", total, socks*each, batches)
	}
	t.Logf("%d frames in %d requests", total, len(batches))
}

// unavailableWithID reports whether msg is the outage text with the request
// id the gateway logged the cause under.
func unavailableWithID(msg string) bool {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(session.ErrTextUnavailable) + ` \(request [0-9a-f]{16}\)$`).MatchString(msg)
}
