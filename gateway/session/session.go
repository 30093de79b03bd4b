// Package session handles the frames of one authenticated socket: it decodes
// them, answers pings and user.online itself, forwards the other methods to
// their functions, and acknowledges client data frames.
//
// Ack modes (GATEWAY_ACK_MODE), for client data frames (frameType 0) that call
// a function. In every mode an acknowledgement means the function answered 2xx,
// i.e. the message was durably accepted; a failure is always answered with an
// error frame {"frameType":9,"id":<id>,"errMsg":...}, never silence.
//
//   - none:  no ack frame. The function's result is sent as a data frame with
//     the request's id and method (for chat: data {msgId, conversationId}).
//   - only:  one ack frame {"frameType":2,"id":<id>,"ackSeq":<client ackSeq+1>,
//     "method":<method>,"data":<result>}. The default.
//   - rigor: the same ack, and the client must echo an ack frame with the same
//     id. Until it does, the gateway resends the ack every AckResend, at most
//     AckRetries times, then gives up (logged and counted in
//     easychat_gateway_ack_giveups_total; the message stays accepted). A client
//     that did not get the ack resends its frame with the same id; functions
//     derive stable message ids from it, so the resend is not a duplicate.
//
// A client may send frameType 3 (noAck) instead of 0 to get mode none for that
// frame. user.online is a query answered from the route registry, so it is
// always answered with a data frame, never an ack.
//
// Order: conversation.chat frames of one socket are forwarded by one worker per
// socket: every frame waiting when the previous call returns goes in the next
// call, in the order received (one request to the chat function and one Kafka
// write), so a conversation's messages get their seq in the order the client
// sent them without a round trip per frame. Each frame is still answered on its
// own: an ack once it is durable, or its own error frame. The worker and its
// queue exist only while chat frames wait, so an idle socket costs neither.
// Other methods run concurrently, bounded per socket.
package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"easychat/gateway/invoke"
	"easychat/gateway/metrics"
	"easychat/gateway/typing"
	"easychat/pkg/frame"
	"easychat/pkg/ident"
)

// AckMode is how client data frames are acknowledged; see the package doc.
type AckMode string

const (
	AckNone  AckMode = "none"
	AckOnly  AckMode = "only"
	AckRigor AckMode = "rigor"
)

// ParseAckMode parses none|only|rigor (case-insensitive).
func ParseAckMode(s string) (AckMode, error) {
	switch m := AckMode(strings.ToLower(strings.TrimSpace(s))); m {
	case AckNone, AckOnly, AckRigor:
		return m, nil
	}
	return "", fmt.Errorf("ack mode %q: want none, only or rigor", s)
}

// Error texts sent to clients.
const (
	ErrTextUnavailable = "temporarily unavailable, retry"
	ErrTextBusy        = "too many pending frames"
	ErrTextRate        = "rate limit exceeded: slow down and resend"
	ErrTextFrameID     = "invalid frame id: 1-128 printable ASCII characters"
)

// Caller invokes a function on behalf of a user; see invoke.Client and
// invoke.Batching.
type Caller interface {
	Call(ctx context.Context, r invoke.Request) (json.RawMessage, error)
	// CallGroup makes several calls in order, in as few requests as it can,
	// none overtaking an earlier one; one Answer per call.
	CallGroup(ctx context.Context, rs []invoke.Request) []invoke.Answer
}

// Presence answers user.online.
type Presence interface {
	Online(ctx context.Context, users []string) (map[string]bool, error)
}

// Typing relays typing indicators to a conversation's other members
// (typing.Relay).
type Typing interface {
	Send(ctx context.Context, user string, t frame.Typing) error
}

// Socket is where a session's replies go.
type Socket interface {
	User() string
	// Send queues an encoded frame without blocking.
	Send(b []byte, t frame.Type) bool
	// Offer queues a frame the client can do without, only while the
	// queue has room to spare; it never drops the client.
	Offer(b []byte, t frame.Type) bool
	// ID identifies the socket on its gateway instance.
	ID() uint64
	// Done is closed when the socket has ended.
	Done() <-chan struct{}
	// Close starts a graceful close with a websocket close code.
	Close(code int, text string)
}

// Config is shared by every session of a gateway.
type Config struct {
	Methods        map[string]string // method → function name
	AckMode        AckMode
	AckResend      time.Duration
	AckRetries     int
	ChatQueue      int           // chat frames waiting per socket
	MaxInflight    int           // concurrent non-chat requests per socket
	CallTimeout    time.Duration // per function call
	QueueWait      time.Duration // how long a chat frame may wait for room in a full queue
	MaxFrame       int64         // for the oversized-frame error text
	MaxOnlineUsers int           // userIds per user.online request
	// FrameRate and FrameBurst bound the frames a socket sends (a token
	// bucket); 0 rate: no limit. A frame over it gets an error frame; a
	// socket that keeps sending FrameBurst more after that is closed (1008).
	FrameRate  float64
	FrameBurst int
}

// Env is what sessions share: configuration and dependencies.
type Env struct {
	Config
	Caller   Caller
	Presence Presence
	Typing   Typing // nil: typing frames are refused
	Tracker  *Tracker
	Metrics  *metrics.Metrics
	// Instance is the gateway instance's id in the route registry.
	Instance string
	// CallCtx bounds every call; the server cancels it when draining runs out
	// of time.
	CallCtx context.Context
}

type chatJob struct {
	f  frame.Frame
	fn string
	// alone: the function may wait on this frame (for the message it
	// names to be stored), so it goes in a call of its own, never in a
	// batch with other sockets' frames.
	alone bool
}

// Session processes one socket's frames.
type Session struct {
	env    *Env
	sock   Socket
	user   string
	origin string // names this socket in its chats' pushes (event.Chat.Origin)
	log    *slog.Logger

	inflight chan struct{} // semaphore for concurrent requests
	chatCap  int
	rate     *rate.Limiter // nil: no frame rate limit
	// refused counts frames refused by the rate limit since the socket last
	// kept under it; read pump only.
	refused    int
	rateClosed bool // closed for ignoring the rate limit

	mu      sync.Mutex
	pending map[string]*pendingAck // rigor acks awaiting the client's echo; nil until one
	closed  bool
	// Chat frames waiting for the socket's chat worker, which runs only while
	// there are some (chatRunning).
	chatQ       []chatJob
	chatRunning bool
	typedAt     map[string]time.Time // conversation → last typing frame relayed
	chatRoom    chan struct{}        // closed when the worker takes a frame off a full queue
}

type pendingAck struct {
	b     []byte
	tries int
	timer *time.Timer
}

// New starts a session for sock; call Handle for each message and Close when
// the socket has ended.
func New(env *Env, sock Socket, log *slog.Logger) *Session {
	q, n := env.ChatQueue, env.MaxInflight
	if q <= 0 {
		q = 64
	}
	if n <= 0 {
		n = 16
	}
	sess := &Session{
		env:      env,
		sock:     sock,
		user:     sock.User(),
		origin:   env.Instance + "/" + strconv.FormatUint(sock.ID(), 10),
		log:      log,
		inflight: make(chan struct{}, n),
		chatCap:  q,
	}
	if env.FrameRate > 0 {
		sess.rate = rate.NewLimiter(rate.Limit(env.FrameRate), max(env.FrameBurst, 1))
	}
	return sess
}

// Close stops rigor resends. Queued chat frames are dropped unanswered (by the
// worker, which sees the socket done): the client got no ack for them and
// will resend.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for id, p := range s.pending {
		p.timer.Stop()
		delete(s.pending, id)
		s.env.Metrics.AcksPending.Dec()
	}
}

// Handle processes one client message (conn.Handler). It never blocks on
// function calls: those run on the chat worker or their own goroutine.
func (s *Session) Handle(msg []byte, oversized bool) {
	if s.rate != nil {
		if !s.rate.Allow() {
			s.limited(msg)
			return
		}
		// Forgiven only once the bucket has refilled past this frame: a
		// flood gets a frame through whenever a token comes back, and must
		// not be forgiven for that (however slowly the flood is read).
		if s.rate.Tokens() >= 1 {
			s.refused = 0
		}
	}
	if oversized {
		s.env.Metrics.FramesIn.WithLabelValues("invalid").Inc()
		s.reject(peekID(msg), "oversized", fmt.Sprintf("frame too large (max %d bytes)", s.env.MaxFrame))
		return
	}
	f, err := frame.Decode(msg)
	if err != nil {
		s.env.Metrics.FramesIn.WithLabelValues("invalid").Inc()
		s.reject(peekID(msg), "malformed", "malformed frame: "+err.Error())
		return
	}
	s.env.Metrics.FramesIn.WithLabelValues(metrics.TypeLabel(f.FrameType)).Inc()
	f.FormID = s.user // the sender is the authenticated user, whatever the frame says
	if f.ID != "" && !ident.IsFrameID(f.ID) {
		// An id that long or odd would be echoed and hashed as is.
		s.reject("", "frame_id", ErrTextFrameID)
		return
	}
	switch f.FrameType {
	case frame.Ping:
		s.send(frame.Frame{FrameType: frame.Ping, ID: f.ID})
	case frame.Ack:
		s.acked(f.ID)
	case frame.Data, frame.NoAck:
		s.dispatch(f)
	default:
		s.reject(f.ID, "frame_type", fmt.Sprintf("unsupported frameType %d", f.FrameType))
	}
}

// limited answers a frame over the socket's rate. The client may resend it
// (a refused chat frame was not accepted). A client that ignores the error
// and keeps flooding is disconnected: answering every excess frame would
// only turn its flood into ours. So is one flooding faster than it reads
// the answers: they would fill its queue and have it dropped as a slow
// reader, with nothing to tell it why.
func (s *Session) limited(msg []byte) {
	s.env.Metrics.FramesIn.WithLabelValues("limited").Inc()
	s.refused++
	if s.rateClosed {
		return
	}
	if s.refused <= max(s.env.FrameBurst, 1) {
		s.env.Metrics.Rejected.WithLabelValues("rate").Inc()
		if s.sock.Offer(s.errorFrame(peekID(msg), ErrTextRate), frame.Error) {
			return
		}
	}
	s.rateClosed = true
	s.log.Warn("closing socket: frame rate limit ignored", "rate", s.env.FrameRate, "burst", s.env.FrameBurst)
	s.env.Metrics.Rejected.WithLabelValues("rate_close").Inc()
	s.sock.Close(websocket.ClosePolicyViolation, "rate limit")
}

func (s *Session) dispatch(f frame.Frame) {
	if f.ID == "" {
		// Acks and error frames need an id to be matched by the client.
		f.ID = newID()
	}
	if f.Method == frame.MethodOnline {
		s.async(f, s.online)
		return
	}
	if f.Method == frame.MethodTyping {
		s.async(f, s.typing)
		return
	}
	fn, ok := s.env.Methods[f.Method]
	if !ok {
		if f.Method == "" {
			s.reject(f.ID, "unknown_method", "method is required")
		} else {
			s.reject(f.ID, "unknown_method", "unknown method: "+f.Method)
		}
		return
	}
	kind, change := frame.ChangeMethods[f.Method]
	if f.Method != frame.MethodChat && !change {
		s.async(f, func(f frame.Frame) { s.call(f, fn) })
		return
	}
	// Chats and changes of messages go through one queue, in order: a
	// change sent after the chat it changes is handled after it.
	// Validate here so a bad frame costs no function call; the chat
	// function validates again. Forward the frame as understood, not as
	// sent: fields the function does not read (padding) would only make the
	// batch it travels in larger.
	var alone bool
	if change {
		var c frame.Change
		if err := json.Unmarshal(f.Data, &c); err != nil {
			s.reject(f.ID, "invalid_data", "invalid data: "+err.Error())
			return
		}
		if err := c.Validate(kind); err != nil {
			s.reject(f.ID, "invalid_data", err.Error())
			return
		}
		if b, err := json.Marshal(c); err == nil {
			f.Data = b
		}
		alone = true
	} else {
		var c frame.Chat
		if err := json.Unmarshal(f.Data, &c); err != nil {
			s.reject(f.ID, "invalid_data", "invalid chat data: "+err.Error())
			return
		}
		if _, err := c.Validate(s.user); err != nil {
			s.reject(f.ID, "invalid_data", err.Error())
			return
		}
		c = c.Accepted()
		if b, err := json.Marshal(c); err == nil {
			f.Data = b
		}
		// The quoted message may not be stored yet; a file is looked up in
		// the file store: neither may hold up other sockets' chats.
		alone = c.Msg.Quote != nil || c.Msg.MType != frame.TextMsg
	}
	if !s.env.Tracker.Begin() {
		s.reject(f.ID, "unavailable", ErrTextUnavailable)
		return
	}
	// A full queue pushes back on the client: the read pump waits (TCP
	// flow control slows the sender) instead of refusing a burst of chats.
	// The wait is bounded so a stuck function cannot starve the socket's
	// pong handling past its deadline.
	var wait *time.Timer
	for {
		full := s.enqueue(chatJob{f: f, fn: fn, alone: alone})
		if full == nil {
			return
		}
		if wait == nil {
			wait = time.NewTimer(s.env.QueueWait)
			defer wait.Stop()
		}
		select {
		case <-full:
		case <-s.sock.Done():
			s.env.Tracker.End()
			return
		case <-wait.C:
			s.env.Tracker.End()
			s.reject(f.ID, "busy", ErrTextBusy)
			return
		}
	}
}

// enqueue queues j for the chat worker, starting it if it is not running. If
// the queue is full it queues nothing and returns a channel that is closed
// when there is room.
func (s *Session) enqueue(j chatJob) (full <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.chatQ) >= s.chatCap {
		if s.chatRoom == nil {
			s.chatRoom = make(chan struct{})
		}
		return s.chatRoom
	}
	s.chatQ = append(s.chatQ, j)
	if !s.chatRunning {
		s.chatRunning = true
		go s.chatWorker()
	}
	return nil
}

// chatWorker forwards a socket's chat frames, all those waiting in one call,
// in order, until none is left; once the socket has ended it drops the rest
// unanswered.
func (s *Session) chatWorker() {
	for {
		s.mu.Lock()
		if len(s.chatQ) == 0 || s.sockDone() {
			dropped := len(s.chatQ)
			s.chatQ = nil
			s.chatRunning = false
			s.mu.Unlock()
			for range dropped {
				s.env.Tracker.End()
			}
			return
		}
		jobs := s.chatQ
		s.chatQ = nil
		if s.chatRoom != nil {
			close(s.chatRoom)
			s.chatRoom = nil
		}
		s.mu.Unlock()
		s.callChats(jobs)
		for range jobs {
			s.env.Tracker.End()
		}
	}
}

// callChats forwards jobs in order, each run of them that may share a call
// in one group, and answers each frame.
func (s *Session) callChats(jobs []chatJob) {
	for len(jobs) > 0 {
		n := 1
		for !jobs[0].alone && n < len(jobs) && !jobs[n].alone {
			n++
		}
		s.callRun(jobs[:n])
		jobs = jobs[n:]
	}
}

func (s *Session) callRun(jobs []chatJob) {
	reqs := make([]invoke.Request, len(jobs))
	for i, j := range jobs {
		reqs[i] = s.request(j.f, j.fn)
		// The push of the message, which may come back before this call
		// returns, skips the socket that has (or will have) the ack.
		reqs[i].Origin = s.origin
		reqs[i].Alone = j.alone
	}
	ctx, cancel := context.WithTimeout(s.env.CallCtx, s.env.CallTimeout)
	defer cancel()
	answers := s.env.Caller.CallGroup(ctx, reqs)
	for i, j := range jobs {
		s.answer(j.f, j.fn, answers[i].Data, answers[i].Err)
	}
}

func (s *Session) sockDone() bool {
	select {
	case <-s.sock.Done():
		return true
	default:
		return false
	}
}

// async runs h on its own goroutine, bounded per socket; a request over the
// bound is refused rather than queued so the read pump never blocks.
func (s *Session) async(f frame.Frame, h func(frame.Frame)) {
	if !s.env.Tracker.Begin() {
		s.reject(f.ID, "unavailable", ErrTextUnavailable)
		return
	}
	select {
	case s.inflight <- struct{}{}:
	default:
		s.env.Tracker.End()
		s.reject(f.ID, "busy", ErrTextBusy)
		return
	}
	go func() {
		defer func() {
			<-s.inflight
			s.env.Tracker.End()
		}()
		h(f)
	}()
}

func (s *Session) call(f frame.Frame, fn string) {
	ctx, cancel := context.WithTimeout(s.env.CallCtx, s.env.CallTimeout)
	defer cancel()
	res, err := s.env.Caller.Call(ctx, s.request(f, fn))
	s.answer(f, fn, res, err)
}

// request is the call of fn that serves f.
func (s *Session) request(f frame.Frame, fn string) invoke.Request {
	body := []byte(f.Data)
	if len(body) == 0 || string(body) == "null" {
		body = []byte("{}")
	}
	return invoke.Request{Function: fn, User: s.user, FrameID: f.ID, Method: f.Method, Body: body}
}

// answer tells the client how its frame f went: the call's result res, or
// err.
func (s *Session) answer(f frame.Frame, fn string, res json.RawMessage, err error) {
	if err != nil {
		var se *invoke.StatusError
		if errors.As(err, &se) {
			s.log.Info("function refused frame", "function", fn, "id", f.ID, "status", se.Status, "err", se.Msg)
			s.reject(f.ID, "function_error", se.Msg)
			return
		}
		s.reject(f.ID, "unavailable", s.failed("function unavailable", err, "function", fn, "id", f.ID))
		return
	}
	mode := s.env.AckMode
	if f.FrameType == frame.NoAck {
		mode = AckNone
	}
	switch mode {
	case AckNone:
		s.send(frame.Frame{FrameType: frame.Data, ID: f.ID, Method: f.Method, Data: res})
	case AckRigor:
		ack := frame.Frame{FrameType: frame.Ack, ID: f.ID, AckSeq: f.AckSeq + 1, Method: f.Method, Data: res}
		b, err := json.Marshal(ack)
		if err != nil {
			s.log.Error("encoding ack", "id", f.ID, "err", err)
			return
		}
		s.track(f.ID, b)
		s.sock.Send(b, frame.Ack)
	default:
		s.send(frame.Frame{FrameType: frame.Ack, ID: f.ID, AckSeq: f.AckSeq + 1, Method: f.Method, Data: res})
	}
}

// track registers a rigor ack for resending until the client echoes it.
func (s *Session) track(id string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if old := s.pending[id]; old != nil {
		// The client resent a frame it had no ack for; the new ack replaces the old.
		old.timer.Stop()
		s.env.Metrics.AcksPending.Dec()
	}
	p := &pendingAck{b: b}
	p.timer = time.AfterFunc(s.env.AckResend, func() { s.resend(id, p) })
	if s.pending == nil {
		s.pending = map[string]*pendingAck{}
	}
	s.pending[id] = p
	s.env.Metrics.AcksPending.Inc()
}

func (s *Session) resend(id string, p *pendingAck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.pending[id] != p {
		return
	}
	if p.tries >= s.env.AckRetries {
		delete(s.pending, id)
		s.env.Metrics.AcksPending.Dec()
		s.env.Metrics.AckGiveUps.Inc()
		s.log.Warn("client never echoed ack; giving up", "id", id, "resends", p.tries)
		return
	}
	p.tries++
	s.sock.Send(p.b, frame.Ack)
	p.timer.Reset(s.env.AckResend)
}

// acked handles the client's echo of a rigor ack. Stray acks are ignored.
func (s *Session) acked(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pending[id]; p != nil {
		p.timer.Stop()
		delete(s.pending, id)
		s.env.Metrics.AcksPending.Dec()
	}
}

// online answers user.online from the route registry, cluster-wide.
func (s *Session) online(f frame.Frame) {
	var in struct {
		UserIDs []string `json:"userIds"`
	}
	if err := json.Unmarshal(f.Data, &in); err != nil {
		s.reject(f.ID, "invalid_data", `invalid user.online data: want {"userIds":[...]}`)
		return
	}
	if max := s.env.MaxOnlineUsers; max > 0 && len(in.UserIDs) > max {
		s.reject(f.ID, "invalid_data", fmt.Sprintf("too many userIds (max %d)", max))
		return
	}
	online := map[string]bool{}
	if len(in.UserIDs) > 0 {
		ctx, cancel := context.WithTimeout(s.env.CallCtx, s.env.CallTimeout)
		defer cancel()
		var err error
		if online, err = s.env.Presence.Online(ctx, in.UserIDs); err != nil {
			s.reject(f.ID, "unavailable", s.failed("presence lookup failed", err, "id", f.ID))
			return
		}
	}
	data, err := json.Marshal(map[string]any{"online": online})
	if err != nil {
		s.log.Error("encoding online reply", "err", err)
		return
	}
	s.send(frame.Frame{FrameType: frame.Data, ID: f.ID, Method: f.Method, Data: data})
}

// typingEvery is how often a socket's typing frames for one conversation
// are relayed; clients repeat theirs every few seconds.
const typingEvery = time.Second

// ErrTextTyping answers a typing frame sent too soon after the last.
const ErrTextTyping = "typing: too frequent"

// typing relays a conversation.typing frame to the conversation's other
// members, at most one per conversation per typingEvery.
func (s *Session) typing(f frame.Frame) {
	var t frame.Typing
	if err := json.Unmarshal(f.Data, &t); err != nil {
		s.reject(f.ID, "invalid_data", `invalid typing data: want {"conversationId":"…","typing":true}`)
		return
	}
	if !ident.IsConversation(t.ConversationID) {
		s.reject(f.ID, "invalid_data", "conversationId is not a conversation id")
		return
	}
	if s.env.Typing == nil {
		s.reject(f.ID, "unknown_method", "unknown method: "+f.Method)
		return
	}
	now := time.Now()
	s.mu.Lock()
	if s.typedAt == nil || len(s.typedAt) > 64 {
		s.typedAt = map[string]time.Time{}
	}
	last, seen := s.typedAt[t.ConversationID]
	soon := seen && now.Sub(last) < typingEvery
	if !soon {
		s.typedAt[t.ConversationID] = now
	}
	s.mu.Unlock()
	if soon {
		s.reject(f.ID, "rate", ErrTextTyping)
		return
	}
	ctx, cancel := context.WithTimeout(s.env.CallCtx, s.env.CallTimeout)
	defer cancel()
	err := s.env.Typing.Send(ctx, s.user, t)
	if errors.Is(err, typing.ErrNotMember) {
		s.reject(f.ID, "forbidden", "not part of conversation "+t.ConversationID)
		return
	}
	if err != nil {
		s.reject(f.ID, "unavailable", s.failed("relaying typing failed", err, "id", f.ID))
		return
	}
	data, _ := json.Marshal(map[string]string{"conversationId": t.ConversationID})
	s.answer(f, "", data, nil)
}

// failed logs an internal failure at error level under a new request id,
// and returns what the client is told: the stable text and that id.
func (s *Session) failed(what string, err error, attrs ...any) string {
	id := RequestID()
	s.log.Error(what, append(attrs, "request", id, "err", err)...)
	return ErrTextUnavailable + " (request " + id + ")"
}

// RequestID names an internal failure in the log and in the client's error.
func RequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Session) reject(id, reason, msg string) {
	s.env.Metrics.Rejected.WithLabelValues(reason).Inc()
	s.sock.Send(s.errorFrame(id, msg), frame.Error)
}

func (s *Session) errorFrame(id, msg string) []byte {
	if !ident.IsFrameID(id) {
		id = "" // not echoed: it could be huge or hold anything
	}
	b, _ := json.Marshal(frame.Frame{FrameType: frame.Error, ID: id, ErrMsg: msg}) // strings only: cannot fail
	return b
}

func (s *Session) send(f frame.Frame) {
	b, err := json.Marshal(f)
	if err != nil {
		s.log.Error("encoding frame", "id", f.ID, "err", err)
		return
	}
	s.sock.Send(b, f.FrameType)
}

// peekID finds the top-level "id" of a message that did not decode (malformed
// or cut at the size limit), so the error frame can name the client's frame.
func peekID(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return ""
		}
		if k == "id" {
			v, _ := dec.Token()
			id, _ := v.(string)
			return id
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "gw-" + hex.EncodeToString(b)
}
