package session

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"easychat/gateway/invoke"
	"easychat/gateway/metrics"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/ident"
)

// fakeSocket collects what the session sends.
type fakeSocket struct {
	mu     sync.Mutex
	frames []frame.Frame
	done   chan struct{}
	closed int // close code, once closed
	// queue > 0 models a writer that is behind: that many frames fit, and
	// a Send beyond them drops the client (dropped) as conn.Conn does.
	queue   int
	dropped bool
}

func (f *fakeSocket) ID() uint64 { return 7 }

func (f *fakeSocket) User() string { return "alice" }
func (f *fakeSocket) Send(b []byte, _ frame.Type) bool {
	return f.queueFrame(b, false)
}

func (f *fakeSocket) Offer(b []byte, _ frame.Type) bool {
	return f.queueFrame(b, true)
}

func (f *fakeSocket) queueFrame(b []byte, offer bool) bool {
	var fr frame.Frame
	if err := json.Unmarshal(b, &fr); err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dropped || f.closed != 0 {
		return false
	}
	if f.queue > 0 {
		if offer && len(f.frames) >= f.queue/2 {
			return false
		}
		if len(f.frames) >= f.queue {
			f.dropped = true
			return false
		}
	}
	f.frames = append(f.frames, fr)
	return true
}
func (f *fakeSocket) Done() <-chan struct{} { return f.done }
func (f *fakeSocket) Close(code int, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = code
}
func (f *fakeSocket) sent() []frame.Frame {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]frame.Frame(nil), f.frames...)
}

// gateCaller records calls in order; while gate is set each call (or group)
// waits for it. A frame whose content ends in "refuse" is refused (403).
type gateCaller struct {
	mu      sync.Mutex
	ids     []string
	groups  []int    // size of each call or group
	origins []string // of each call
	alone   []bool   // of each call
	gate    chan struct{}
	calls   chan string
}

func (c *gateCaller) CallGroup(ctx context.Context, rs []invoke.Request) []invoke.Answer {
	c.mu.Lock()
	c.groups = append(c.groups, len(rs))
	for _, r := range rs {
		c.ids = append(c.ids, r.FrameID)
		c.origins = append(c.origins, r.Origin)
		c.alone = append(c.alone, r.Alone)
	}
	gate := c.gate
	c.mu.Unlock()
	if c.calls != nil {
		for _, r := range rs {
			c.calls <- r.FrameID
		}
	}
	if gate != nil {
		<-gate
	}
	out := make([]invoke.Answer, len(rs))
	for i, r := range rs {
		if strings.HasSuffix(string(r.Body), `refuse"}}`) {
			out[i].Err = &invoke.StatusError{Function: r.Function, Status: 403, Msg: "refused " + r.FrameID}
			continue
		}
		out[i].Data = json.RawMessage(`{"msgId":"` + msgIDOf(r.FrameID) + `"}`)
	}
	return out
}

// msgIDOf is the msgId the chat function gives chatFrame(id) from alice.
func msgIDOf(id string) string {
	return event.MsgID("alice", ident.Single("alice", "bob"), id, "hi "+id)
}

func (c *gateCaller) Call(ctx context.Context, r invoke.Request) (json.RawMessage, error) {
	frameID := r.FrameID
	c.mu.Lock()
	c.ids = append(c.ids, frameID)
	gate := c.gate
	c.mu.Unlock()
	if c.calls != nil {
		c.calls <- frameID
	}
	if gate != nil {
		<-gate
	}
	return json.RawMessage(`{"msgId":"` + msgIDOf(frameID) + `"}`), nil
}

func newTestSession(t *testing.T, caller Caller, queue int) (*Session, *fakeSocket, *Env) {
	t.Helper()
	env := &Env{
		Config: Config{
			Methods:     map[string]string{frame.MethodChat: "chat"},
			AckMode:     AckOnly,
			ChatQueue:   queue,
			CallTimeout: 5 * time.Second,
			QueueWait:   5 * time.Second,
		},
		Caller:   caller,
		Tracker:  &Tracker{},
		Metrics:  metrics.New(),
		Instance: "gw-test",
		CallCtx:  context.Background(),
	}
	sock := &fakeSocket{done: make(chan struct{})}
	return New(env, sock, slog.New(slog.DiscardHandler)), sock, env
}

func chatFrame(id string) []byte {
	return []byte(fmt.Sprintf(`{"frameType":0,"id":%q,"method":"conversation.chat","data":{"chatType":2,"recvId":"bob","msg":{"mType":0,"content":"hi %s"}}}`, id, id))
}

func (s *Session) workerRunning() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chatRunning || s.chatQ != nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Chat frames reach the function one at a time in the order received, each
// is acked, and once they are done the socket keeps no worker or queue.
func TestChatFramesInOrderAndWorkerOnlyWhileBusy(t *testing.T) {
	caller := &gateCaller{}
	s, sock, env := newTestSession(t, caller, 8)
	if s.workerRunning() {
		t.Fatal("a new session runs a chat worker")
	}
	const n = 200
	for i := range n {
		s.Handle(chatFrame(fmt.Sprint(i)), false) // waits for room when 8 are queued
	}
	waitFor(t, "all acks", func() bool { return len(sock.sent()) == n })
	for i, f := range sock.sent() {
		if f.FrameType != frame.Ack || f.ID != fmt.Sprint(i) {
			t.Fatalf("frame %d: got type %d id %q, want the ack of %d", i, f.FrameType, f.ID, i)
		}
	}
	caller.mu.Lock()
	for i, id := range caller.ids {
		if id != fmt.Sprint(i) {
			t.Fatalf("call %d was frame %s", i, id)
		}
	}
	caller.mu.Unlock()
	// Each chat names the socket it came from, so its push skips it.
	for i, o := range caller.origins {
		if o != "gw-test/7" {
			t.Fatalf("call %d has origin %q, want gw-test/7", i, o)
		}
	}
	waitFor(t, "the worker to stop", func() bool { return !s.workerRunning() })
	if n := env.Tracker.Inflight(); n != 0 {
		t.Fatalf("tracker holds %d requests after all were answered", n)
	}
}

// Frames that wait while a call is in flight go in the next call together,
// in order, and each gets its own answer: an ack, or its own error frame.
func TestChatFramesWaitingGoTogether(t *testing.T) {
	caller := &gateCaller{gate: make(chan struct{}), calls: make(chan string, 64)}
	s, sock, env := newTestSession(t, caller, 64)
	s.Handle(chatFrame("0"), false)
	<-caller.calls // "0" is in the function
	for i := 1; i <= 20; i++ {
		id := fmt.Sprint(i)
		if i == 7 {
			id = "7-refuse"
		}
		s.Handle(chatFrame(id), false)
	}
	caller.gate <- struct{}{}
	for range 20 {
		<-caller.calls
	}
	caller.gate <- struct{}{}
	waitFor(t, "all answers", func() bool { return len(sock.sent()) == 21 })
	for i, f := range sock.sent() {
		want := fmt.Sprint(i)
		if i == 7 {
			if f.FrameType != frame.Error || f.ID != "7-refuse" || f.ErrMsg != "refused 7-refuse" {
				t.Fatalf("frame 7: %+v, want its own error frame", f)
			}
			continue
		}
		if f.FrameType != frame.Ack || f.ID != want {
			t.Fatalf("answer %d: type %d id %q, want the ack of %s", i, f.FrameType, f.ID, want)
		}
	}
	caller.mu.Lock()
	groups := fmt.Sprint(caller.groups)
	caller.mu.Unlock()
	if groups != "[1 20]" {
		t.Fatalf("calls of %s frames, want [1 20]", groups)
	}
	waitFor(t, "the worker to stop", func() bool { return !s.workerRunning() })
	if n := env.Tracker.Inflight(); n != 0 {
		t.Fatalf("tracker holds %d requests", n)
	}
}

// A full queue holds the read pump until the worker takes a frame; frames
// queued when the socket ends are dropped unanswered and released.
func TestChatQueueFullWaitsAndSocketEndDrops(t *testing.T) {
	caller := &gateCaller{gate: make(chan struct{}), calls: make(chan string, 16)}
	s, sock, env := newTestSession(t, caller, 2)
	s.Handle(chatFrame("a"), false)
	<-caller.calls // the worker holds "a"; the queue is empty again
	s.Handle(chatFrame("b"), false)
	s.Handle(chatFrame("c"), false) // the queue is full now
	third := make(chan struct{})
	go func() {
		s.Handle(chatFrame("d"), false)
		close(third)
	}()
	select {
	case <-third:
		t.Fatal("a frame was queued past the queue's capacity")
	case <-time.After(50 * time.Millisecond):
	}
	caller.gate <- struct{}{} // "a" answered; the worker takes "b" and "c", making room for "d"
	<-caller.calls
	<-caller.calls
	<-third
	close(sock.done) // the socket ends while "b" and "c" are in the function and "d" waits
	caller.gate <- struct{}{}
	waitFor(t, "the worker to stop", func() bool { return !s.workerRunning() })
	caller.mu.Lock()
	ids := fmt.Sprint(caller.ids)
	caller.mu.Unlock()
	if ids != "[a b c]" {
		t.Fatalf("function saw %s, want [a b c] (d dropped with the socket)", ids)
	}
	if n := env.Tracker.Inflight(); n != 0 {
		t.Fatalf("tracker holds %d requests after the socket ended", n)
	}
}

// FuzzHandle feeds arbitrary client messages to a session: none may panic,
// and no error frame echoes an id that is not a well-formed frame id.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		string(chatFrame("f1")),
		`{"frameType":1,"id":"p"}`, `{"frameType":2,"id":"a"}`, `{"frameType":7}`, `not json`, `{"id":"` + strings.Repeat("x", 300) + `"}`,
		`{"frameType":0,"id":"o","method":"user.online","data":{"userIds":["bob"]}}`,
		`{"frameType":0,"id":"c","method":"conversation.chat","data":{"chatType":1,"recvId":"g-1#x","msg":{"content":"x"}}}`,
		`{"frameType":0,"id":"r","method":"conversation.recall","data":{"conversationId":"ann_bob","msgId":"00000000000000000000000000000001"}}`,
		`{"frameType":0,"id":"t","method":"conversation.typing","data":{"conversationId":"ann_bob","typing":true}}`,
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, msg []byte, oversized bool) {
		s, sock, _ := newTestSession(t, &gateCaller{}, 4)
		s.env.Presence = noPresence{}
		s.Handle(msg, oversized)
		waitFor(t, "the session to settle", func() bool { return !s.workerRunning() && len(s.inflight) == 0 })
		for _, f := range sock.sent() {
			if f.FrameType == frame.Error && f.ID != "" && !ident.IsFrameID(f.ID) {
				t.Fatalf("error frame echoes id %q", f.ID)
			}
		}
	})
}

type noPresence struct{}

func (noPresence) Online(context.Context, []string) (map[string]bool, error) {
	return map[string]bool{}, nil
}

// A change of a message, and a chat quoting one, may make the function wait
// for that message to be stored: each goes in a call of its own, marked
// alone (never batched with other sockets' frames), in the socket's order.
// So do image and file messages.
func TestChangesAndRepliesGoAloneInOrder(t *testing.T) {
	caller := &gateCaller{gate: make(chan struct{}), calls: make(chan string, 64)}
	s, sock, env := newTestSession(t, caller, 64)
	env.Methods[frame.MethodRecall] = "chat"
	s.Handle(chatFrame("0"), false)
	<-caller.calls
	msg := "00000000000000000000000000000001"
	s.Handle(chatFrame("1"), false)
	s.Handle(chatFrame("2"), false)
	s.Handle([]byte(`{"frameType":0,"id":"3","method":"conversation.recall","data":{"conversationId":"alice_bob","msgId":"`+msg+`"}}`), false)
	s.Handle([]byte(`{"frameType":0,"id":"4","method":"conversation.chat","data":{"chatType":2,"recvId":"bob","msg":{"content":"re","quote":{"msgId":"`+msg+`"}}}}`), false)
	// A file message costs the function a look at the file store: alone too,
	// so that a slow store or a flood of them never holds up others' chats.
	file := `{\"key\":\"alice_bob/alice/0123456789abcdef0123456789abcdef\",\"name\":\"a.pdf\",\"size\":9,\"type\":\"application/pdf\"}`
	s.Handle([]byte(`{"frameType":0,"id":"5","method":"conversation.chat","data":{"chatType":2,"recvId":"bob","msg":{"mType":2,"content":"`+file+`"}}}`), false)
	s.Handle(chatFrame("6"), false)
	close(caller.gate)
	waitFor(t, "all answers", func() bool { return len(sock.sent()) == 7 })
	caller.mu.Lock()
	defer caller.mu.Unlock()
	if got := strings.Join(caller.ids, ","); got != "0,1,2,3,4,5,6" {
		t.Fatalf("calls in order %s", got)
	}
	// 0 alone (the worker was idle), then 1+2 together, 3, 4 and 5 alone, 6.
	if got := fmt.Sprint(caller.groups); got != "[1 2 1 1 1 1]" {
		t.Fatalf("call groups %s", got)
	}
	if got := fmt.Sprint(caller.alone); got != "[false false false true true true false]" {
		t.Fatalf("alone %s", got)
	}
}

// Typing frames are relayed at most once a second per conversation, and
// never to a conversation the user is not part of.
func TestTypingIsRelayedAtMostOncePerSecond(t *testing.T) {
	s, sock, env := newTestSession(t, &gateCaller{}, 4)
	relay := &typingRecorder{}
	env.Typing = relay
	typing := func(id, conv string) {
		s.Handle([]byte(`{"frameType":0,"id":"`+id+`","method":"conversation.typing","data":{"conversationId":"`+conv+`","typing":true}}`), false)
	}
	typing("t1", "alice_bob")
	typing("t2", "g-x") // another conversation: its own second
	waitFor(t, "two answers", func() bool { return len(sock.sent()) == 2 })
	typing("t3", "alice_bob")
	typing("t4", "nobody#x")
	waitFor(t, "four answers", func() bool { return len(sock.sent()) == 4 })
	got := map[string]frame.Frame{}
	for _, f := range sock.sent() {
		got[f.ID] = f
	}
	if got["t1"].FrameType != frame.Ack || got["t2"].FrameType != frame.Ack {
		t.Fatalf("first typing frames: %+v", got)
	}
	if f := got["t3"]; f.FrameType != frame.Error || f.ErrMsg != ErrTextTyping {
		t.Fatalf("typing again at once: %+v", f)
	}
	if f := got["t4"]; f.FrameType != frame.Error {
		t.Fatalf("typing in a malformed conversation: %+v", f)
	}
	if relay.n() != 2 {
		t.Fatalf("relayed %d typing frames, want 2", relay.n())
	}
}

type typingRecorder struct {
	mu   sync.Mutex
	sent []frame.Typing
}

func (r *typingRecorder) Send(_ context.Context, _ string, t frame.Typing) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, t)
	return nil
}

func (r *typingRecorder) n() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}
