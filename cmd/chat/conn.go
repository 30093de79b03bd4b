package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"easychat/pkg/frame"

	"github.com/gorilla/websocket"
)

// Timeouts of the connection.
const (
	requestTimeout = 20 * time.Second
	pingEvery      = 25 * time.Second
	readTimeout    = pingEvery + 15*time.Second
	writeTimeout   = 10 * time.Second
)

// ErrOffline is returned by Request while there is no socket.
var ErrOffline = errors.New("not connected")

// ErrLost is returned to requests whose socket closed before an answer.
var ErrLost = errors.New("connection lost")

// FrameError is an error frame the server answered a request with.
type FrameError struct{ Msg string }

func (e *FrameError) Error() string { return e.Msg }

// Backoff is the delay before reconnect attempt n (0-based): 500 ms doubling
// up to Max, with ±25 % jitter.
type Backoff struct {
	Base, Max time.Duration
}

// Delay returns the wait before attempt n.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return time.Duration(float64(d) * (0.75 + 0.5*mrand.Float64()))
}

// Conn is one logical websocket connection to the gateway: it dials again
// with backoff after every loss until its context ends, and matches answers
// to requests by frame id.
type Conn struct {
	URL     string // ws://host:port/ws
	Token   string
	Backoff Backoff

	// OnFrame gets every frame that is not the answer to a request (pushes,
	// receipts). OnConnect runs in its own goroutine after each connect.
	// OnState reports "connecting", "online" and "offline" (with the error
	// and the wait before the next attempt).
	OnFrame   func(frame.Frame)
	OnConnect func(ctx context.Context)
	OnState   func(state string, err error, retryIn time.Duration)

	mu      sync.Mutex
	ws      *websocket.Conn
	pending map[string]chan frame.Frame
	wmu     sync.Mutex // one writer at a time
}

// Run connects and reconnects until ctx ends.
func (c *Conn) Run(ctx context.Context) {
	attempt := 0
	for ctx.Err() == nil {
		c.state("connecting", nil, 0)
		ws, err := c.dial(ctx)
		if err == nil {
			attempt = 0
			err = c.serve(ctx, ws)
		}
		if ctx.Err() != nil {
			return
		}
		wait := c.Backoff.Delay(attempt)
		attempt++
		c.state("offline", err, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (c *Conn) state(s string, err error, wait time.Duration) {
	if c.OnState != nil {
		c.OnState(s, err, wait)
	}
}

func (c *Conn) dial(ctx context.Context) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment}
	ws, resp, err := d.DialContext(ctx, c.URL, http.Header{"Authorization": {"Bearer " + c.Token}})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("token rejected (401): log in again")
		}
		return nil, err
	}
	return ws, nil
}

// serve runs one socket until it fails.
func (c *Conn) serve(ctx context.Context, ws *websocket.Conn) error {
	c.mu.Lock()
	c.ws = ws
	c.pending = map[string]chan frame.Frame{}
	c.mu.Unlock()
	connCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		c.mu.Lock()
		c.ws = nil
		for id, ch := range c.pending {
			close(ch) // ErrLost for the waiter
			delete(c.pending, id)
		}
		c.mu.Unlock()
		ws.Close()
	}()
	c.state("online", nil, 0)
	go c.pinger(connCtx, ws)
	if c.OnConnect != nil {
		go c.OnConnect(connCtx)
	}
	go func() { // unblock ReadMessage when ctx ends
		<-connCtx.Done()
		ws.Close()
	}()
	for {
		_ = ws.SetReadDeadline(time.Now().Add(readTimeout))
		_, b, err := ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		var f frame.Frame
		if err := json.Unmarshal(b, &f); err != nil {
			continue
		}
		c.dispatch(f)
	}
}

func (c *Conn) pinger(ctx context.Context, ws *websocket.Conn) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.write(ws, frame.Frame{FrameType: frame.Ping, ID: newID("p")}); err != nil {
				return
			}
		}
	}
}

func (c *Conn) dispatch(f frame.Frame) {
	if f.FrameType == frame.Ping {
		return
	}
	if f.FrameType == frame.Ack {
		// In the gateway's "rigor" ack mode acks are resent until echoed.
		c.mu.Lock()
		ws := c.ws
		c.mu.Unlock()
		if ws != nil {
			_ = c.write(ws, frame.Frame{FrameType: frame.Ack, ID: f.ID})
		}
	}
	if f.ID != "" && f.Method != frame.MethodPush {
		c.mu.Lock()
		ch := c.pending[f.ID]
		delete(c.pending, f.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- f
			return
		}
		if f.FrameType == frame.Ack || f.FrameType == frame.Error {
			return // a late answer (resent ack, or after a timeout)
		}
	}
	if c.OnFrame != nil {
		c.OnFrame(f)
	}
}

func (c *Conn) write(ws *websocket.Conn, f frame.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return ws.WriteMessage(websocket.TextMessage, b)
}

// Online reports whether a socket is open.
func (c *Conn) Online() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws != nil
}

// Request sends a data frame and returns the data of its answer: the ack
// (ack modes only/rigor) or the data frame with the same id (mode none, and
// user.online). id may be empty (a fresh one is made); give the same id to
// resend a chat message so the server stores it once.
func (c *Conn) Request(ctx context.Context, method string, data any, id string) (json.RawMessage, error) {
	wait, err := c.Start(method, data, id)
	if err != nil {
		return nil, err
	}
	return wait(ctx)
}

// Start writes the request frame now (so frames go out in the order Start
// is called) and returns a function that waits for its answer.
func (c *Conn) Start(method string, data any, id string) (func(context.Context) (json.RawMessage, error), error) {
	if id == "" {
		id = newID("r")
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	ch := make(chan frame.Frame, 1)
	c.mu.Lock()
	ws := c.ws
	if ws == nil {
		c.mu.Unlock()
		return nil, ErrOffline
	}
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		if c.pending != nil && c.pending[id] == ch {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}
	if err := c.write(ws, frame.Frame{FrameType: frame.Data, ID: id, Method: method, Data: raw}); err != nil {
		forget()
		return nil, ErrLost
	}
	return func(ctx context.Context) (json.RawMessage, error) {
		t := time.NewTimer(requestTimeout)
		defer t.Stop()
		select {
		case f, ok := <-ch:
			if !ok {
				return nil, ErrLost
			}
			if f.FrameType == frame.Error {
				return nil, &FrameError{Msg: f.ErrMsg}
			}
			return f.Data, nil
		case <-t.C:
			forget()
			return nil, fmt.Errorf("%s: no answer in %s", method, requestTimeout)
		case <-ctx.Done():
			forget()
			return nil, ctx.Err()
		}
	}, nil
}

func newID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
