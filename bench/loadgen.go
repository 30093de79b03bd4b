package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"easychat/pkg/frame"
	"easychat/pkg/token"
)

// The load generator: websocket clients of our gateway (and of Centrifugo,
// see centrifugo.go), paced senders, and the marker every measured message
// carries in its content: "<id>|<unix nanoseconds at send>", so a receiver
// computes latency without any shared lookup.

// dialer is shared by every client. Small buffers: thousands of clients live
// in this process next to the system under test.
var dialer = &websocket.Dialer{
	HandshakeTimeout: 30 * time.Second,
	ReadBufferSize:   2048,
	WriteBufferSize:  1024,
	NetDialContext:   dialLocal,
}

// dialLocal is the clients' NetDialContext: with spreadSources, loopback
// destinations get a source address among 127.0.0.1–127.0.0.16, so tens of
// thousands of sockets to one listener never run out of ephemeral ports (each
// source address has its own port range).
var srcIdx atomic.Uint32

// spreadSources turns dialLocal's spreading on (-conns above 20,000).
var spreadSources bool

func dialLocal(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	d := net.Dialer{Timeout: 30 * time.Second}
	// Only when asked: sockets left in TIME_WAIT on other loopback addresses
	// make later wildcard binds of those ports fail (the FaaS runtime starts
	// replicas on ":<port>" after probing 127.0.0.1).
	if ip := net.ParseIP(host); spreadSources && ip != nil && ip.IsLoopback() && ip.To4() != nil {
		n := srcIdx.Add(1)%16 + 1
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}
	}
	return d.DialContext(ctx, network, addr)
}

// marker builds the content of a measured message.
func marker(id string, t time.Time) string {
	return id + "|" + strconv.FormatInt(t.UnixNano(), 10)
}

var contentKey = []byte(`"content":"`)

// sentTime is parseMarker's send time alone, without copying the id.
func sentTime(b []byte) (time.Time, bool) {
	i := bytes.Index(b, contentKey)
	if i < 0 {
		return time.Time{}, false
	}
	b = b[i+len(contentKey):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return time.Time{}, false
	}
	b = b[:j]
	k := bytes.LastIndexByte(b, '|')
	if k < 0 {
		return time.Time{}, false
	}
	var ns int64
	for _, d := range b[k+1:] {
		if d < '0' || d > '9' {
			return time.Time{}, false
		}
		ns = ns*10 + int64(d-'0')
	}
	return time.Unix(0, ns), true
}

// parseMarker finds the content marker in an encoded frame (no full JSON
// decode: the same cheap scan for every system under test).
func parseMarker(b []byte) (id string, sent time.Time, ok bool) {
	i := bytes.Index(b, contentKey)
	if i < 0 {
		return "", time.Time{}, false
	}
	b = b[i+len(contentKey):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return "", time.Time{}, false
	}
	b = b[:j]
	k := bytes.LastIndexByte(b, '|')
	if k < 0 {
		return "", time.Time{}, false
	}
	ns, err := strconv.ParseInt(string(b[k+1:]), 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return string(b[:k]), time.Unix(0, ns), true
}

// wsClient is one websocket of a user of our gateway.
type wsClient struct {
	user string
	ws   *websocket.Conn
	wmu  sync.Mutex
	done chan struct{}
	// lastSeq is the newest push seq this socket got (group scenarios:
	// one conversation); only its reader touches it.
	lastSeq int64
}

// dialUser opens an authenticated socket for user and starts its reader,
// which hands every message to onMsg (may be nil) until the socket ends.
// onMsg must not keep b: the reader reuses it.
func dialUser(ctx context.Context, url string, iss *token.Issuer, user string, onMsg func(c *wsClient, b []byte)) (*wsClient, error) {
	tok, err := iss.Issue(user)
	if err != nil {
		return nil, err
	}
	ws, res, err := dialer.DialContext(ctx, url, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		if res != nil {
			return nil, fmt.Errorf("dialing %s as %s: %w (HTTP %s)", url, user, err, res.Status)
		}
		return nil, fmt.Errorf("dialing %s as %s: %w", url, user, err)
	}
	c := &wsClient{user: user, ws: ws, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		var buf bytes.Buffer
		for {
			b, err := readMessage(ws, &buf)
			if err != nil {
				return
			}
			if onMsg != nil {
				onMsg(c, b)
			}
		}
	}()
	return c, nil
}

// readMessage reads the next message into buf, reused from one message to
// the next: the load generator shares the machine with the system it
// measures, and a fresh buffer per frame was much of its garbage.
func readMessage(ws *websocket.Conn, buf *bytes.Buffer) ([]byte, error) {
	_, r, err := ws.NextReader()
	if err != nil {
		return nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (c *wsClient) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *wsClient) close() {
	_ = c.ws.Close()
	<-c.done
}

// chatFrame encodes a conversation.chat frame.
func chatFrame(id string, chatType int, to, content string) []byte {
	b, _ := json.Marshal(map[string]any{"frameType": frame.Data, "id": id, "method": frame.MethodChat,
		"data": map[string]any{"chatType": chatType, "recvId": to, "msg": map[string]any{"mType": frame.TextMsg, "content": content}}})
	return b
}

// dialMany opens n sockets with up to par dials at once; user(i) names the
// i-th socket's user.
func dialMany(ctx context.Context, n, par int, dial func(i int) (*wsClient, error)) ([]*wsClient, error) {
	out := make([]*wsClient, n)
	var first error
	var mu sync.Mutex
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			out[i] = c
		}()
	}
	wg.Wait()
	if first != nil {
		closeAll(out)
		return nil, first
	}
	return out, ctx.Err()
}

func closeAll(cs []*wsClient) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c != nil {
			wg.Go(c.close)
		}
	}
	wg.Wait()
}

// pace calls send(n) for n = 0, 1, … at rate per second for dur, in small
// bursts of what is due (so rates above the timer resolution work). It
// returns how many were sent and the time it took.
func pace(ctx context.Context, rate float64, dur time.Duration, send func(n int)) (int, time.Duration) {
	start := time.Now()
	total := int(rate * dur.Seconds())
	n := 0
	for n < total && ctx.Err() == nil {
		due := min(total, int(time.Since(start).Seconds()*rate)+1)
		for ; n < due; n++ {
			send(n)
		}
		if n < total {
			next := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	}
	return n, time.Since(start)
}

// pushInfo is what a receiver needs of one of our push frames.
type pushInfo struct {
	isPush  bool
	isError bool
	conv    string
	seq     int64
}

var (
	methodPush = []byte(`"method":"push"`)
	frameError = []byte(`{"frameType":9`)
	convKey    = []byte(`"conversationId":"`)
	seqKey     = []byte(`,"seq":`)
)

// scanPushSeq is scanPush without the conversation id (one conversation per
// socket: nothing to copy).
func scanPushSeq(b []byte) pushInfo { return scanFrame(b, false) }

// scanPush reads a server frame without a full JSON decode (the gateway
// encodes frames with encoding/json, in struct field order), so the load
// generator spends little per frame; the same cheap scan as parseMarker.
func scanPush(b []byte) pushInfo { return scanFrame(b, true) }

func scanFrame(b []byte, withConv bool) pushInfo {
	if bytes.HasPrefix(b, frameError) {
		return pushInfo{isError: true}
	}
	if !bytes.Contains(b, methodPush) {
		return pushInfo{}
	}
	p := pushInfo{isPush: true}
	if withConv {
		if i := bytes.Index(b, convKey); i >= 0 {
			rest := b[i+len(convKey):]
			if j := bytes.IndexByte(rest, '"'); j >= 0 {
				p.conv = string(rest[:j])
			}
		}
	}
	if i := bytes.Index(b, seqKey); i >= 0 {
		rest := b[i+len(seqKey):]
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		p.seq, _ = strconv.ParseInt(string(rest[:j]), 10, 64)
	}
	return p
}
