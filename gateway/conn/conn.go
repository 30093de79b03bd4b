// Package conn runs one websocket: a read pump, and a writer that is the only
// code writing to the socket (data frames, and the control frames: pings,
// pongs, close), so concurrent senders never interleave frames; they hand it
// bytes through a bounded queue and never wait on it. A full queue means the
// client is not keeping up: it is dropped rather than allowed to slow down
// the pusher or other clients. The read pump does not write either: it hands
// the writer the pong or close reply the peer is owed.
//
// An idle socket costs little: the queue is allocated only while frames wait,
// and the writer goroutine runs only while there is something to write (a
// frame, a ping, a pong, the close handshake). The writer sends everything
// queued at once, with one writev, so a burst costs one system call rather
// than one per frame.
package conn

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"easychat/gateway/metrics"
	"easychat/pkg/frame"

	"github.com/gorilla/websocket"
)

// Options tune one connection. Zero fields take the defaults below.
type Options struct {
	SendQueue  int           // outgoing frames buffered per socket (256)
	WriteWait  time.Duration // bound on one write (10s)
	PongWait   time.Duration // the peer must answer a ping or send something within this (60s)
	MaxFrame   int64         // larger messages are discarded and reported as oversized (64 KiB)
	MaxDiscard int64         // a message larger than this closes the socket with 1009 (64 × MaxFrame)
	CloseGrace time.Duration // how long a graceful close waits for the peer's close reply (1s)
}

func (o Options) withDefaults() Options {
	if o.SendQueue <= 0 {
		o.SendQueue = 256
	}
	if o.WriteWait <= 0 {
		o.WriteWait = 10 * time.Second
	}
	if o.PongWait <= 0 {
		o.PongWait = 60 * time.Second
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = 64 << 10
	}
	if o.MaxDiscard < o.MaxFrame {
		o.MaxDiscard = 64 * o.MaxFrame
	}
	if o.CloseGrace <= 0 {
		o.CloseGrace = time.Second
	}
	return o
}

// WriteBufferPool is meant for the upgrader (websocket.Upgrader's
// WriteBufferPool). This package writes data frames itself, so gorilla's
// per-connection write buffer is never used; with a pool gorilla allocates
// none instead of keeping the 4 KiB one of the HTTP connection per socket.
var WriteBufferPool = &sync.Pool{}

// Handler receives each client message. oversized means msg holds only the
// first MaxFrame bytes of a longer message whose rest was discarded. It runs on
// the read pump and must not block.
type Handler func(msg []byte, oversized bool)

type out struct {
	b []byte
	t frame.Type
}

var lastID atomic.Uint64

// Conn is one authenticated websocket.
type Conn struct {
	ws   *websocket.Conn
	nc   net.Conn // ws's connection, for data frames
	user string
	id   uint64
	opt  Options
	m    *metrics.Metrics
	log  *slog.Logger

	// dead is set once no more frames will be written; Send refuses from then on.
	dead atomic.Bool

	mu      sync.Mutex
	queue   []out // frames waiting for the writer
	writing bool  // a writer goroutine is running (or the close frame was written)
	pingDue bool
	// pong is the payload of the peer's latest unanswered ping, for the
	// writer to answer (pongDue). Only the latest is kept, as RFC 6455 5.5.3
	// allows: a ping flood costs neither memory nor more than one pong per
	// writer pass.
	pong     string
	pongDue  bool
	closeReq bool   // graceful close requested (Close)
	closeMsg []byte // its close frame payload
	readEnd  bool   // the read pump has ended
	writers  sync.WaitGroup
	pinger   *time.Timer
	// deadline is the write deadline last set by writeFrames (unix ns); 0
	// after a control frame written by gorilla (ping, close), whose write
	// sets a deadline of its own.
	deadline atomic.Int64

	closeOnce sync.Once
	readDone  chan struct{} // read pump ended
	done      chan struct{} // both pumps ended
}

// New wraps an upgraded websocket of user. Call Run to start its pumps.
func New(ws *websocket.Conn, user string, opt Options, m *metrics.Metrics, log *slog.Logger) *Conn {
	opt = opt.withDefaults()
	id := lastID.Add(1)
	return &Conn{
		ws:       ws,
		nc:       ws.NetConn(),
		user:     user,
		id:       id,
		opt:      opt,
		m:        m,
		log:      log.With("user", user, "conn", id, "remote", ws.RemoteAddr().String()),
		readDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// User is the authenticated user of the socket.
func (c *Conn) User() string { return c.user }

// ID identifies the socket in logs.
func (c *Conn) ID() uint64 { return c.id }

// Logger is the socket's logger (user and conn id attached).
func (c *Conn) Logger() *slog.Logger { return c.log }

// Done is closed when both pumps have ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Send queues b (one encoded frame of type t) for the writer without
// blocking. It reports false if the socket is closing or its queue was full,
// in which case the client is dropped as too slow.
func (c *Conn) Send(b []byte, t frame.Type) bool {
	return c.SendMany([][]byte{b}, t)
}

// Offer queues b like Send, but only while the queue is less than half full,
// and otherwise reports false without dropping the client. It is for frames
// a client can do without (answers to its own flood), which must not use up
// the room its acks and pushes need.
func (c *Conn) Offer(b []byte, t frame.Type) bool {
	if c.dead.Load() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead.Load() || len(c.queue) >= c.opt.SendQueue/2 {
		return false
	}
	c.queue = append(c.queue, out{b, t})
	c.kickLocked()
	return true
}

// SendMany queues encoded frames bs of type t, in order, with one wake-up of
// the writer (which writes what is queued together). Like Send, it never
// blocks: a socket whose queue cannot take them all is dropped.
func (c *Conn) SendMany(bs [][]byte, t frame.Type) bool {
	if c.dead.Load() {
		return false
	}
	c.mu.Lock()
	if c.dead.Load() {
		c.mu.Unlock()
		return false
	}
	if len(c.queue)+len(bs) > c.opt.SendQueue {
		c.mu.Unlock()
		c.drop()
		return false
	}
	for _, b := range bs {
		c.queue = append(c.queue, out{b, t})
	}
	c.kickLocked()
	c.mu.Unlock()
	return true
}

// kickLocked makes sure a writer runs. c.mu is held.
func (c *Conn) kickLocked() {
	if c.writing || c.readEnd {
		return // once the read pump ended, Run closes the socket itself
	}
	c.writing = true
	c.writers.Add(1)
	go c.writeLoop()
}

// drop disconnects a client that cannot keep up. Closing the network
// connection unblocks a writer stuck on a full TCP window and ends the read
// pump; a close frame would only queue behind the data it is not reading.
func (c *Conn) drop() {
	if c.dead.Swap(true) {
		return // already closing for another reason
	}
	c.m.SlowDrops.Inc()
	c.log.Warn("dropping slow client", "queue", c.opt.SendQueue)
	_ = c.ws.Close()
}

// Close starts a graceful close: the writer flushes what is already queued,
// sends a close frame with code and text, and waits briefly for the peer's
// reply. Frames sent after Close are refused.
func (c *Conn) Close(code int, text string) {
	c.closeOnce.Do(func() {
		c.dead.Store(true)
		c.mu.Lock()
		c.closeMsg = websocket.FormatCloseMessage(code, text)
		c.closeReq = true
		c.kickLocked()
		c.mu.Unlock()
	})
}

// Kill closes the network connection at once (a peer that ignored a graceful
// close).
func (c *Conn) Kill() {
	c.dead.Store(true)
	_ = c.ws.Close()
}

// Run starts pinging and runs the read pump until the socket ends, handing
// every message to h. It returns after the read pump and any writer ended.
func (c *Conn) Run(h Handler) {
	ping := c.opt.PongWait * 9 / 10
	c.mu.Lock()
	c.pinger = time.AfterFunc(ping, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.dead.Load() {
			c.pingDue = true
			c.kickLocked()
		}
	})
	c.mu.Unlock()

	c.readPump(h)
	close(c.readDone)

	c.mu.Lock()
	c.readEnd = true
	c.pinger.Stop()
	closing := c.closeReq
	c.mu.Unlock()
	if !closing {
		// Nothing more will be read, and no close was asked for (the peer
		// went away or broke the protocol): stop writing too. A close the
		// read pump asked for on its way out (1009) is completed by the
		// writer, which then closes the connection.
		c.dead.Store(true)
		_ = c.ws.Close()
	}
	c.writers.Wait()
	c.dead.Store(true)
	_ = c.ws.Close()
	close(c.done)
}

func (c *Conn) readPump(h Handler) {
	extend := func() { _ = c.ws.SetReadDeadline(time.Now().Add(c.opt.PongWait)) }
	extend()
	c.ws.SetPongHandler(func(string) error { extend(); return nil })
	// gorilla's default ping and close handlers write their reply from here,
	// the read pump, concurrently with the writer (interleaving bytes on the
	// wire, and moving the write deadline under the writer's feet). Ours
	// hand the reply to the writer instead, and never wait on the socket.
	// (gorilla still writes, from here, the close frame of a protocol error
	// it detects, whereupon the socket is closed.)
	c.ws.SetPingHandler(func(data string) error {
		c.mu.Lock()
		if !c.dead.Load() {
			c.pong, c.pongDue = data, true
			c.kickLocked()
		}
		c.mu.Unlock()
		return nil
	})
	// The peer's close is answered like ours is sent: after what is queued.
	// A close of ours already under way (Close) is the answer itself.
	c.ws.SetCloseHandler(func(code int, _ string) error {
		c.Close(code, "")
		return nil
	})
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			c.logReadEnd(err)
			return
		}
		// Read the limit ourselves instead of ws.SetReadLimit, which would
		// close the socket: an oversized frame must only cost an error frame.
		msg, err := io.ReadAll(io.LimitReader(r, c.opt.MaxFrame+1))
		if err != nil {
			c.logReadEnd(err)
			return
		}
		oversized := int64(len(msg)) > c.opt.MaxFrame
		if oversized {
			msg = msg[:c.opt.MaxFrame]
			// MaxFrame+1 bytes are read: a message of MaxDiscard bytes
			// holds this many more.
			more := c.opt.MaxDiscard - c.opt.MaxFrame - 1
			if _, err := io.Copy(io.Discard, io.LimitReader(r, max(more, 0))); err != nil {
				c.logReadEnd(err)
				return
			}
			// Beyond MaxDiscard the client is flooding us; stop reading it.
			if n, _ := r.Read(make([]byte, 1)); n > 0 || more < 0 {
				c.log.Warn("closing socket: message exceeds discard limit", "limit", c.opt.MaxDiscard)
				c.Close(websocket.CloseMessageTooBig, "message too big")
				c.discardUntilClosed(r)
				return
			}
		}
		extend() // any traffic shows the peer is alive
		h(msg, oversized)
	}
}

// discardUntilClosed keeps reading, briefly, until the peer answers our close
// frame: closing a socket with unread input makes TCP reset it, and the peer
// would see the reset instead of our close code.
func (c *Conn) discardUntilClosed(r io.Reader) {
	_ = c.ws.SetReadDeadline(time.Now().Add(c.opt.CloseGrace))
	for {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
		var err error
		if _, r, err = c.ws.NextReader(); err != nil {
			return
		}
	}
}

func (c *Conn) logReadEnd(err error) {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout() && !c.dead.Load():
		c.log.Info("socket timed out: no pong or traffic", "wait", c.opt.PongWait)
	case errors.As(err, &ce), c.dead.Load(), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		c.log.Debug("socket closed", "err", err)
	default:
		c.log.Info("socket read ended", "err", err)
	}
}

// writeLoop writes what is queued until nothing is left, then ends (Send,
// the pinger and Close start it again when needed).
func (c *Conn) writeLoop() {
	defer c.writers.Done()
	var batch []out
	for {
		c.mu.Lock()
		batch, c.queue = c.queue, batch[:0]
		if cap(c.queue) > 64 {
			c.queue = nil // do not keep a burst's queue on an idle socket
		}
		ping := c.pingDue
		c.pingDue = false
		pong, pongDue := c.pong, c.pongDue
		c.pong, c.pongDue = "", false
		closing := c.closeReq
		if len(batch) == 0 && !ping && !pongDue && !closing {
			c.writing = false
			c.queue = nil // an idle socket keeps no queue
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		if (len(batch) > 0 || pongDue) && !c.writeFrames(batch, pong, pongDue) {
			c.fail()
			return
		}
		clear(batch) // drop references to sent frames
		if ping {
			err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opt.WriteWait))
			c.deadline.Store(0)
			if err != nil {
				c.log.Debug("ping failed", "err", err)
				c.fail()
				return
			}
			c.mu.Lock()
			if !c.readEnd {
				c.pinger.Reset(c.opt.PongWait * 9 / 10)
			}
			c.mu.Unlock()
		}
		if closing {
			c.closeHandshake()
			return
		}
	}
}

// fail ends a writer whose write failed: the socket is done.
func (c *Conn) fail() {
	c.dead.Store(true)
	_ = c.ws.Close()
	c.mu.Lock()
	c.queue = nil
	c.pong, c.pongDue = "", false
	c.writing = false
	c.mu.Unlock()
}

// closeHandshake flushes the queue, writes the close frame and waits briefly
// for the peer's reply (the read pump ending), then closes the connection.
// The writer stays marked running: nothing is written after a close frame.
func (c *Conn) closeHandshake() {
	c.mu.Lock()
	rest := c.queue
	c.queue = nil
	pong, pongDue := c.pong, c.pongDue
	c.pong, c.pongDue = "", false
	msg := c.closeMsg
	c.mu.Unlock()
	if (len(rest) == 0 && !pongDue) || c.writeFrames(rest, pong, pongDue) {
		err := c.ws.WriteMessage(websocket.CloseMessage, msg)
		if err == nil {
			t := time.NewTimer(c.opt.CloseGrace)
			select {
			case <-c.readDone:
			case <-t.C:
			}
			t.Stop()
		} else {
			c.log.Debug("writing close frame", "err", err)
		}
	}
	_ = c.ws.Close()
}

// maxWritev bounds the frames of one write call.
const maxWritev = 256

// writeFrames writes text frames (server frames are unmasked) with as few
// system calls as possible: each frame's header and payload go into one
// writev with the other frames'. With withPong, a pong carrying pong goes
// first, in the same writev.
func (c *Conn) writeFrames(frames []out, pong string, withPong bool) bool {
	for len(frames) > 0 || withPong {
		n := min(len(frames), maxWritev)
		ctl := 0
		if withPong {
			ctl = 2 + len(pong)
		}
		hdrs := make([]byte, 0, ctl+10*n)
		bufs := make(net.Buffers, 0, 1+2*n)
		if withPong {
			hdrs = appendPong(hdrs, pong)
			bufs = append(bufs, hdrs[:len(hdrs):len(hdrs)])
			withPong = false
		}
		var counts [16]int
		for _, o := range frames[:n] {
			start := len(hdrs)
			hdrs = appendHeader(hdrs, len(o.b))
			bufs = append(bufs, hdrs[start:len(hdrs):len(hdrs)], o.b)
			if int(o.t) >= 0 && int(o.t) < len(counts) {
				counts[o.t]++
			}
		}
		// A deadline is reset only when less than half of WriteWait is left,
		// so a busy socket does not rearm its timer for every write; a write
		// is still bounded by WriteWait.
		if now := time.Now(); time.Duration(c.deadline.Load()-now.UnixNano()) < c.opt.WriteWait/2 {
			d := now.Add(c.opt.WriteWait)
			c.deadline.Store(d.UnixNano())
			_ = c.nc.SetWriteDeadline(d)
		}
		if _, err := bufs.WriteTo(c.nc); err != nil {
			if !c.dead.Load() {
				c.log.Info("socket write failed", "err", err)
			}
			return false
		}
		for t, k := range counts {
			if k > 0 {
				c.m.FramesOut.WithLabelValues(metrics.TypeLabel(frame.Type(t))).Add(float64(k))
			}
		}
		frames = frames[n:]
	}
	return true
}

// maxControlPayload bounds a control frame's payload (RFC 6455 5.5).
const maxControlPayload = 125

// appendPong appends a pong: a final, unmasked control frame (opcode 0xA)
// echoing the ping's payload. gorilla refuses a ping of more than
// maxControlPayload bytes; the cut is only a guard for the length byte.
func appendPong(b []byte, payload string) []byte {
	payload = payload[:min(len(payload), maxControlPayload)]
	return append(append(b, 0x80|websocket.PongMessage, byte(len(payload))), payload...)
}

// appendHeader appends the header of a final, unmasked text frame of n bytes.
func appendHeader(b []byte, n int) []byte {
	const finText = 0x80 | websocket.TextMessage
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, finText, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, finText, 127), uint64(n))
	}
}
