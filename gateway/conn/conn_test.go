package conn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"easychat/gateway/metrics"
	"easychat/pkg/frame"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// timeout bounds every wait of these tests; it is only reached on failure.
const timeout = 10 * time.Second

// pair is a Conn serving a real websocket over loopback TCP, and the gorilla
// client at the other end.
type pair struct {
	c  *Conn
	ws *websocket.Conn
	m  *metrics.Metrics
}

// netOpts says how dial connects.
type netOpts struct {
	// small shrinks the server's send buffer and the client's receive
	// buffer, so a client that does not read blocks the writer after a few
	// KiB.
	small bool
	// tls serves over TLS. A tls.Conn writes a writev's buffers one by one,
	// so a second writer can interleave its frame between a header and its
	// payload, where on a plain TCP socket the writev is one system call.
	tls bool
}

// dial starts a server that wraps its socket with New and runs it with h,
// and connects a client.
func dial(t *testing.T, opt Options, h Handler, no netOpts) *pair {
	t.Helper()
	if h == nil {
		h = func([]byte, bool) {}
	}
	m := metrics.New()
	conns := make(chan *Conn, 1)
	up := websocket.Upgrader{WriteBufferPool: WriteBufferPool}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		if no.small {
			_ = ws.NetConn().(*net.TCPConn).SetWriteBuffer(16 << 10)
		}
		c := New(ws, "alice", opt, m, slog.New(slog.DiscardHandler))
		conns <- c
		c.Run(h)
	}))
	if no.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http") // ws:// or wss://

	d := websocket.Dialer{
		HandshakeTimeout: timeout,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil && no.small {
				_ = nc.(*net.TCPConn).SetReadBuffer(16 << 10)
			}
			return nc, err
		},
	}
	if no.tls {
		d.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	var c *Conn
	select {
	case c = <-conns:
	case <-time.After(timeout):
		t.Fatal("server socket not created")
	}
	t.Cleanup(func() {
		_ = ws.Close()
		c.Kill()
		select {
		case <-c.Done():
		case <-time.After(timeout):
			t.Error("Run did not return")
		}
	})
	return &pair{c: c, ws: ws, m: m}
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// pattern is the source of test payloads: payload(n, k) differs with k, so
// a frame out of place does not compare equal.
var pattern = func() []byte {
	b := make([]byte, 1<<20+256)
	for i := range b {
		b[i] = 'a' + byte(i%251%26)
	}
	return b
}()

func payload(n, k int) []byte { return pattern[k%251 : k%251+n] }

// read reads one message, which must be a text message.
func read(t *testing.T, ws *websocket.Conn) []byte {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	mt, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if mt != websocket.TextMessage {
		t.Fatalf("message type %d, want text", mt)
	}
	return b
}

// readClose reads until the close frame and returns it.
func readClose(t *testing.T, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, b, err := ws.ReadMessage()
		if err == nil {
			t.Fatalf("got a %d-byte message, want the close frame", len(b))
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("read: %v, want a close frame", err)
		}
		return ce
	}
}

func TestAppendPong(t *testing.T) {
	if got, want := appendPong([]byte{1}, "hi"), []byte{1, 0x8a, 2, 'h', 'i'}; !bytes.Equal(got, want) {
		t.Errorf("appendPong = %x, want %x", got, want)
	}
	if got := appendPong(nil, ""); !bytes.Equal(got, []byte{0x8a, 0}) {
		t.Errorf("empty pong = %x", got)
	}
	long := strings.Repeat("x", 200)
	if got := appendPong(nil, long); got[1] != 125 || len(got) != 127 {
		t.Errorf("pong of 200 bytes: length byte %d, frame %d bytes; want 125, 127", got[1], len(got))
	}
}

// The header length boundaries of appendHeader, one frame at a time and in a
// batch of many frames queued at once (more than one writev's worth).
func TestFrameSizes(t *testing.T) {
	p := dial(t, Options{SendQueue: 4096}, nil, netOpts{})
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 65537, 300}
	for k, n := range sizes[:7] {
		want := payload(n, k)
		if !p.c.Send(want, frame.Data) {
			t.Fatalf("Send of %d bytes refused", n)
		}
		if got := read(t, p.ws); !bytes.Equal(got, want) {
			t.Fatalf("frame of %d bytes came back as %d bytes, equal prefix %v", n, len(got), bytes.HasPrefix(want, got))
		}
	}

	// The client reads nothing until all are queued: the writer blocks on
	// the socket while the queue grows past maxWritev.
	const batch = 3*maxWritev + 17
	for k := range batch {
		if !p.c.Send(payload(sizes[k%len(sizes)], k), frame.Data) {
			t.Fatalf("Send %d refused", k)
		}
	}
	for k := range batch {
		want := payload(sizes[k%len(sizes)], k)
		if got := read(t, p.ws); !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes, want %d", k, len(got), len(want))
		}
	}
	if got := counter(p.m.FramesOut.WithLabelValues("data")); got < 7 {
		t.Errorf("frames_out{data} = %v, want at least 7", got)
	}
}

// Many goroutines send while the client floods pings and the server pings it:
// every data frame arrives intact and in order per sender, every pong
// answers a ping the client sent, and the stream never breaks.
func TestPingFloodWithConcurrentSends(t *testing.T) {
	t.Run("tcp", func(t *testing.T) { pingFlood(t, netOpts{}) })
	t.Run("tls", func(t *testing.T) { pingFlood(t, netOpts{tls: true}) })
}

func pingFlood(t *testing.T, no netOpts) {
	const (
		senders   = 8
		perSender = 400
		minPings  = 3000
	)
	p := dial(t, Options{SendQueue: 1 << 14, PongWait: 250 * time.Millisecond}, nil, no)
	ws := p.ws

	var (
		sentPings   sync.Map // payloads of the client's pings
		pongs       atomic.Int64
		serverPings atomic.Int64
		finished    atomic.Bool // the test is over: later read errors are ours
		failures    = make(chan string, 16)
		pinged      = make(chan struct{}) // the server pinged twice
		firstPong   = make(chan struct{})
		lastPong    = make(chan struct{})
		lastOnce    sync.Once
		allData     = make(chan struct{})
		readerDone  = make(chan struct{})
	)
	fail := func(format string, args ...any) {
		select {
		case failures <- fmt.Sprintf(format, args...):
		default:
		}
	}
	ws.SetPingHandler(func(data string) error {
		if data != "" {
			fail("server ping carries %q, want no payload", data)
		}
		if serverPings.Add(1) == 2 {
			close(pinged)
		}
		err := ws.WriteControl(websocket.PongMessage, nil, time.Now().Add(timeout))
		if err != nil && !finished.Load() {
			fail("answering the server's ping: %v", err)
		}
		return nil
	})
	ws.SetPongHandler(func(data string) error {
		if _, ok := sentPings.Load(data); !ok {
			fail("pong carries %q, which no ping had", data)
		}
		if pongs.Add(1) == 1 {
			close(firstPong)
		}
		if data == "last" {
			lastOnce.Do(func() { close(lastPong) })
		}
		return nil
	})

	// The reader checks every frame: "<sender>,<seq>," and a padding that
	// depends on both.
	padLen := func(seq int) int {
		switch {
		case seq%97 == 0:
			return 70000
		case seq%13 == 0:
			return 1000
		default:
			return seq % 130
		}
	}
	go func() {
		defer close(readerDone)
		next := make([]int, senders)
		for n := 0; ; n++ {
			if n == senders*perSender {
				close(allData)
			}
			_, b, err := ws.ReadMessage()
			if err != nil {
				if !finished.Load() {
					fail("read after %d frames: %v", n, err)
				}
				return
			}
			gs, rest, _ := bytes.Cut(b, []byte(","))
			seqs, pad, ok := bytes.Cut(rest, []byte(","))
			g, err1 := strconv.Atoi(string(gs))
			seq, err2 := strconv.Atoi(string(seqs))
			if !ok || err1 != nil || err2 != nil || g < 0 || g >= senders {
				fail("frame %d is corrupt: %.40q", n, b)
				return
			}
			if seq != next[g] {
				fail("sender %d: got frame %d, want %d", g, seq, next[g])
				return
			}
			next[g]++
			if !bytes.Equal(pad, payload(padLen(seq), g*perSender+seq)) {
				fail("sender %d frame %d: padding of %d bytes is corrupt", g, seq, len(pad))
				return
			}
		}
	}()

	// The flood: pings with payloads of every size up to 125 bytes, and now
	// and then a message, which keeps the server's read deadline (a small
	// PongWait) from depending on how fast the client answers its pings.
	stop := make(chan struct{})
	floodDone := make(chan struct{})
	var sent int
	go func() {
		defer close(floodDone)
		for ; ; sent++ {
			if sent >= minPings {
				select {
				case <-stop:
					return
				default:
				}
			}
			id := strconv.Itoa(sent) + ":"
			data := id + string(payload(max(0, sent%126-len(id)), sent))
			sentPings.Store(data, struct{}{})
			if err := ws.WriteControl(websocket.PingMessage, []byte(data), time.Now().Add(timeout)); err != nil {
				fail("ping %d: %v", sent, err)
				return
			}
			if sent%32 == 0 {
				if err := ws.WriteMessage(websocket.TextMessage, []byte("keepalive")); err != nil {
					fail("keepalive: %v", err)
					return
				}
			}
			runtime.Gosched() // a flood, but not one that starves the senders
		}
	}()
	wait(t, firstPong, "the first pong")

	var senderWG sync.WaitGroup
	for g := range senders {
		senderWG.Add(1)
		go func() {
			defer senderWG.Done()
			for seq := range perSender {
				b := fmt.Appendf(nil, "%d,%d,", g, seq)
				b = append(b, payload(padLen(seq), g*perSender+seq)...)
				if !p.c.Send(b, frame.Data) {
					fail("sender %d: Send %d refused", g, seq)
					return
				}
				runtime.Gosched()
			}
		}()
	}
	senderWG.Wait()

	check := func() {
		t.Helper()
		select {
		case f := <-failures:
			t.Fatal(f)
		default:
		}
	}
	for _, w := range []struct {
		ch   <-chan struct{}
		what string
	}{{allData, "all data frames"}, {pinged, "two pings of the server"}} {
		select {
		case <-w.ch:
		case f := <-failures:
			t.Fatal(f)
		case <-time.After(timeout):
			t.Fatalf("timed out waiting for %s", w.what)
		}
	}
	close(stop)
	wait(t, floodDone, "the flood to stop")
	check()

	// The latest ping is always answered.
	sentPings.Store("last", struct{}{})
	if err := ws.WriteControl(websocket.PingMessage, []byte("last"), time.Now().Add(timeout)); err != nil {
		t.Fatalf("last ping: %v", err)
	}
	select {
	case <-lastPong:
	case f := <-failures:
		t.Fatal(f)
	case <-time.After(timeout):
		t.Fatal("the last ping was never answered")
	}
	finished.Store(true)
	check()
	t.Logf("%d pings sent, %d pongs received, %d server pings", sent+1, pongs.Load(), serverPings.Load())
	if n := pongs.Load(); n > int64(sent+1) {
		t.Errorf("%d pongs for %d pings", n, sent+1)
	}
	_ = ws.Close()
	wait(t, readerDone, "the reader")
}

// A client that pings while the writer is stuck on its full socket: the read
// pump goes on reading (it never waits on the socket), pings pile up as one
// pending pong rather than many, the socket survives, and the latest ping is
// answered once the client reads again.
func TestPingsWhileWriterBlocked(t *testing.T) {
	got := make(chan string, 16)
	p := dial(t, Options{SendQueue: 64}, func(msg []byte, _ bool) { got <- string(msg) }, netOpts{small: true})
	const frames, size = 4, 512 << 10
	for k := range frames {
		if !p.c.Send(payload(size, k), frame.Data) {
			t.Fatalf("Send %d refused", k)
		}
	}
	var pongs []string
	p.ws.SetPongHandler(func(data string) error { pongs = append(pongs, data); return nil })
	const pings = 1000
	for i := range pings - 1 {
		if err := p.ws.WriteControl(websocket.PingMessage, []byte(strconv.Itoa(i)), time.Now().Add(timeout)); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	if err := p.ws.WriteControl(websocket.PingMessage, []byte("last"), time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	if err := p.ws.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "hello" {
			t.Fatalf("handler got %q", m)
		}
	case <-time.After(timeout):
		t.Fatal("the read pump is stuck behind the blocked writer")
	}
	// Queued after the last ping was seen: its pong is on the wire before it.
	if !p.c.Send([]byte("after"), frame.Data) {
		t.Fatal("Send refused")
	}
	for k := range frames {
		if b := read(t, p.ws); !bytes.Equal(b, payload(size, k)) {
			t.Fatalf("frame %d corrupt (%d bytes)", k, len(b))
		}
	}
	if b := read(t, p.ws); string(b) != "after" {
		t.Fatalf("got %.20q, want \"after\"", b)
	}
	if len(pongs) == 0 || pongs[len(pongs)-1] != "last" {
		t.Fatalf("pongs %q: the last ping was not answered", pongs)
	}
	// The writer was blocked from its first writev on: at most the pong
	// taken with that, and one for all the pings seen while it was stuck.
	if len(pongs) > 2 {
		t.Errorf("%d pongs for pings sent while the writer was blocked, want at most 2", len(pongs))
	}
}

// A client that does not read: its queue fills, Send reports false without
// blocking, and the socket is dropped.
func TestSlowClientDropped(t *testing.T) {
	p := dial(t, Options{SendQueue: 8}, nil, netOpts{small: true})
	b := payload(64<<10, 0)
	sent := make(chan int, 1)
	go func() {
		n := 0
		for n < 10000 && p.c.Send(b, frame.Data) {
			n++
		}
		sent <- n
	}()
	var n int
	select {
	case n = <-sent:
	case <-time.After(timeout):
		t.Fatal("Send blocked on a client that does not read")
	}
	if n == 10000 {
		t.Fatal("Send never refused a client that does not read")
	}
	if p.c.Send([]byte("x"), frame.Data) {
		t.Error("Send accepted a frame after the drop")
	}
	if got := counter(p.m.SlowDrops); got != 1 {
		t.Errorf("slow drops = %v, want 1", got)
	}
	wait(t, p.c.Done(), "the dropped socket to end")

	// The client gets what made it onto the wire, then the connection ends
	// without a close frame.
	_ = p.ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, _, err := p.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("client still connected: %v", err)
		}
		if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseMessageTooBig, websocket.CloseGoingAway) {
			t.Fatalf("dropped client got a close frame: %v", err)
		}
		break
	}
}

// Offer stops at half the queue, leaving the rest to Send, and never drops
// the client; what it queued is written, then a close.
func TestOfferLeavesRoomAndNeverDrops(t *testing.T) {
	p := dial(t, Options{SendQueue: 8}, nil, netOpts{small: true})
	b := payload(64<<10, 0) // the writer blocks on the first ones: the client is not reading
	offered := 0
	for offered < 1000 && p.c.Offer(b, frame.Error) {
		offered++
	}
	if offered == 1000 {
		t.Fatal("Offer never refused a client that does not read")
	}
	for k := range 4 { // the half Offer left
		if !p.c.Send([]byte("x"), frame.Data) {
			t.Fatalf("Send %d refused after Offer filled its half (%d offered)", k, offered)
		}
	}
	if got := counter(p.m.SlowDrops); got != 0 {
		t.Fatalf("slow drops = %v after Offer, want 0", got)
	}
	p.c.Close(websocket.ClosePolicyViolation, "rate limit")
	for k := range offered + 4 {
		if _, _, err := p.ws.ReadMessage(); err != nil {
			t.Fatalf("frame %d of %d: %v", k, offered+4, err)
		}
	}
	if ce := readClose(t, p.ws); ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("close %d %q, want 1008", ce.Code, ce.Text)
	}
}

// Close flushes what is queued, then sends the close frame.
func TestCloseFlushesQueue(t *testing.T) {
	p := dial(t, Options{SendQueue: 512}, nil, netOpts{})
	const n = 300
	size := func(k int) int { return []int{3, 200, 70000}[k%3] }
	for k := range n {
		if !p.c.Send(payload(size(k), k), frame.Data) {
			t.Fatalf("Send %d refused", k)
		}
	}
	p.c.Close(4001, "bye")
	if p.c.Send([]byte("late"), frame.Data) {
		t.Error("Send accepted a frame after Close")
	}
	for k := range n {
		if b := read(t, p.ws); !bytes.Equal(b, payload(size(k), k)) {
			t.Fatalf("frame %d corrupt (%d bytes)", k, len(b))
		}
	}
	if ce := readClose(t, p.ws); ce.Code != 4001 || ce.Text != "bye" {
		t.Fatalf("close %d %q, want 4001 \"bye\"", ce.Code, ce.Text)
	}
	wait(t, p.c.Done(), "the socket to end")
}

// The peer's close is answered by the writer, after what was queued.
func TestPeerClose(t *testing.T) {
	p := dial(t, Options{}, nil, netOpts{})
	for k := range 3 {
		if !p.c.Send(payload(100000, k), frame.Data) {
			t.Fatalf("Send %d refused", k)
		}
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done")
	if err := p.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	for k := range 3 {
		if b := read(t, p.ws); !bytes.Equal(b, payload(100000, k)) {
			t.Fatalf("frame %d corrupt (%d bytes)", k, len(b))
		}
	}
	if ce := readClose(t, p.ws); ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("close code %d, want %d", ce.Code, websocket.CloseNormalClosure)
	}
	wait(t, p.c.Done(), "the socket to end")
}

// A message over MaxFrame reaches the handler cut and flagged; one over
// MaxDiscard closes the socket with 1009.
func TestOversized(t *testing.T) {
	type msg struct {
		b         []byte
		oversized bool
	}
	got := make(chan msg, 16)
	opt := Options{MaxFrame: 1024, MaxDiscard: 4096}
	p := dial(t, opt, func(b []byte, oversized bool) { got <- msg{bytes.Clone(b), oversized} }, netOpts{})
	next := func() msg {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(timeout):
			t.Fatal("handler not called")
			return msg{}
		}
	}
	for _, tc := range []struct {
		n         int
		oversized bool
	}{{1024, false}, {1025, true}, {4096, true}, {2, false}} {
		sent := payload(tc.n, tc.n)
		if err := p.ws.WriteMessage(websocket.TextMessage, sent); err != nil {
			t.Fatal(err)
		}
		m := next()
		if m.oversized != tc.oversized || !bytes.Equal(m.b, sent[:min(tc.n, 1024)]) {
			t.Fatalf("message of %d bytes: handler got %d bytes, oversized %v; want %d, %v",
				tc.n, len(m.b), m.oversized, min(tc.n, 1024), tc.oversized)
		}
	}
	// Still usable both ways.
	if !p.c.Send([]byte("still here"), frame.Data) {
		t.Fatal("Send refused")
	}
	if b := read(t, p.ws); string(b) != "still here" {
		t.Fatalf("got %q", b)
	}

	if err := p.ws.WriteMessage(websocket.TextMessage, payload(4097, 0)); err != nil {
		t.Fatal(err)
	}
	if ce := readClose(t, p.ws); ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close code %d, want %d", ce.Code, websocket.CloseMessageTooBig)
	}
	wait(t, p.c.Done(), "the socket to end")
	select {
	case m := <-got:
		t.Fatalf("handler got %d bytes of the message over the discard limit", len(m.b))
	default:
	}
}

// Once the writer has nothing left to do it ends, and the socket keeps no
// queue and no pong.
func TestIdleKeepsNothing(t *testing.T) {
	got := make(chan string, 1)
	p := dial(t, Options{}, func(msg []byte, _ bool) { got <- string(msg) }, netOpts{})
	var pongs []string
	p.ws.SetPongHandler(func(data string) error { pongs = append(pongs, data); return nil })
	for k := range 100 {
		if !p.c.Send(payload(k, k), frame.Data) {
			t.Fatal("Send refused")
		}
	}
	if err := p.ws.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	if err := p.ws.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(timeout):
		t.Fatal("handler not called")
	}
	// Queued after the ping was seen: its pong is on the wire before it.
	if !p.c.Send([]byte("after"), frame.Data) {
		t.Fatal("Send refused")
	}
	for k := range 100 {
		if b := read(t, p.ws); !bytes.Equal(b, payload(k, k)) {
			t.Fatalf("frame %d corrupt", k)
		}
	}
	if b := read(t, p.ws); string(b) != "after" {
		t.Fatalf("got %q, want \"after\"", b)
	}
	if len(pongs) != 1 || pongs[0] != "hi" {
		t.Fatalf("pongs %q, want [hi]", pongs)
	}

	// Nothing signals the writer's end; look until it has gone.
	deadline := time.Now().Add(timeout)
	for {
		p.c.mu.Lock()
		writing, queue, pongDue, pongMsg := p.c.writing, p.c.queue, p.c.pongDue, p.c.pong
		p.c.mu.Unlock()
		if !writing {
			if queue != nil || pongDue || pongMsg != "" {
				t.Fatalf("idle socket keeps queue %v (cap %d), pong %v %q", queue, cap(queue), pongDue, pongMsg)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer never went idle")
		}
		time.Sleep(time.Millisecond)
	}
}
