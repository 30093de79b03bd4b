// Package conn runs one websocket: a read pump and a write pump, as in
// gorilla/websocket's chat example. The write pump is the only goroutine that
// writes data to the socket, so concurrent senders never interleave frames;
// they hand it bytes through a bounded queue and never wait on it. A full queue
// means the client is not keeping up: it is dropped rather than allowed to slow
// down the pusher or other clients.
package conn

import (
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
	user string
	id   uint64
	opt  Options
	m    *metrics.Metrics
	log  *slog.Logger

	send chan out
	// dead is set once no more frames will be written; Send refuses from then on.
	dead atomic.Bool

	closeOnce sync.Once
	closing   chan struct{} // graceful close requested
	closeMsg  []byte

	readDone chan struct{} // read pump ended
	done     chan struct{} // both pumps ended
}

// New wraps an upgraded websocket of user. Call Run to start its pumps.
func New(ws *websocket.Conn, user string, opt Options, m *metrics.Metrics, log *slog.Logger) *Conn {
	opt = opt.withDefaults()
	id := lastID.Add(1)
	return &Conn{
		ws:       ws,
		user:     user,
		id:       id,
		opt:      opt,
		m:        m,
		log:      log.With("user", user, "conn", id, "remote", ws.RemoteAddr().String()),
		send:     make(chan out, opt.SendQueue),
		closing:  make(chan struct{}),
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

// Send queues b (one encoded frame of type t) for the write pump without
// blocking. It reports false if the socket is closing or its queue was full,
// in which case the client is dropped as too slow.
func (c *Conn) Send(b []byte, t frame.Type) bool {
	if c.dead.Load() {
		return false
	}
	select {
	case c.send <- out{b, t}:
		return true
	default:
		c.drop()
		return false
	}
}

// drop disconnects a client that cannot keep up. Closing the network
// connection unblocks a write pump stuck on a full TCP window and ends the read
// pump; a close frame would only queue behind the data it is not reading.
func (c *Conn) drop() {
	if c.dead.Swap(true) {
		return // already closing for another reason
	}
	c.m.SlowDrops.Inc()
	c.log.Warn("dropping slow client", "queue", c.opt.SendQueue)
	_ = c.ws.Close()
}

// Close starts a graceful close: the write pump flushes what is already
// queued, sends a close frame with code and text, and waits briefly for the
// peer's reply. Frames sent after Close are refused.
func (c *Conn) Close(code int, text string) {
	c.closeOnce.Do(func() {
		c.closeMsg = websocket.FormatCloseMessage(code, text)
		c.dead.Store(true)
		close(c.closing)
	})
}

// Kill closes the network connection at once (a peer that ignored a graceful
// close).
func (c *Conn) Kill() {
	c.dead.Store(true)
	_ = c.ws.Close()
}

// Run starts the write pump and runs the read pump until the socket ends,
// handing every message to h. It returns after both pumps have ended.
func (c *Conn) Run(h Handler) {
	writeDone := make(chan struct{})
	go func() {
		defer close(writeDone)
		c.writePump()
	}()
	c.readPump(h)
	close(c.readDone)
	<-writeDone
	c.dead.Store(true)
	close(c.done)
}

func (c *Conn) readPump(h Handler) {
	extend := func() { _ = c.ws.SetReadDeadline(time.Now().Add(c.opt.PongWait)) }
	extend()
	c.ws.SetPongHandler(func(string) error { extend(); return nil })
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
			if _, err := io.Copy(io.Discard, io.LimitReader(r, c.opt.MaxDiscard-c.opt.MaxFrame)); err != nil {
				c.logReadEnd(err)
				return
			}
			// Beyond MaxDiscard the client is flooding us; stop reading it.
			if n, _ := r.Read(make([]byte, 1)); n > 0 {
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

func (c *Conn) writePump() {
	pingPeriod := c.opt.PongWait * 9 / 10
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.dead.Store(true) // nobody drains the queue any more; refuse rather than "drop"
		_ = c.ws.Close()
	}()
	for {
		select {
		case o := <-c.send:
			if !c.write(o) {
				return
			}
		case <-ticker.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opt.WriteWait)); err != nil {
				c.log.Debug("ping failed", "err", err)
				return
			}
		case <-c.closing:
			if c.closeHandshake() {
				t := time.NewTimer(c.opt.CloseGrace)
				defer t.Stop()
				select {
				case <-c.readDone:
				case <-t.C:
				}
			}
			return
		case <-c.readDone:
			// The read pump may have asked for a close (e.g. 1009) on its way out.
			select {
			case <-c.closing:
				c.closeHandshake()
			default:
			}
			return
		}
	}
}

// closeHandshake flushes the queue and writes the close frame.
func (c *Conn) closeHandshake() bool {
	c.flush()
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.opt.WriteWait))
	if err := c.ws.WriteMessage(websocket.CloseMessage, c.closeMsg); err != nil {
		c.log.Debug("writing close frame", "err", err)
		return false
	}
	return true
}

// flush writes what was queued before a graceful close (e.g. the acks of
// calls that finished during drain).
func (c *Conn) flush() {
	for {
		select {
		case o := <-c.send:
			if !c.write(o) {
				return
			}
		default:
			return
		}
	}
}

func (c *Conn) write(o out) bool {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.opt.WriteWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, o.b); err != nil {
		if !c.dead.Load() {
			c.log.Info("socket write failed", "err", err)
		}
		return false
	}
	c.m.FramesOut.WithLabelValues(metrics.TypeLabel(o.t)).Inc()
	return true
}
