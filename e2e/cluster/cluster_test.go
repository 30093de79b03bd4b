// Package cluster runs the system in the shape of a deployment (three
// gateway processes, two connector processes in one consumer group, chat and
// transfer at three replicas) under steady chat load, and breaks it the ways
// production breaks: a connector and a gateway killed with SIGKILL, transfer
// scaled 3 → 1 → 3, Redis restarted without its data. Every acked message
// must end up stored once, in order, and reach its recipient (by push, or by
// the sync a reconnecting client does); the recovery time of each event is
// logged.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"easychat/devstack/stack"
	"easychat/pkg/frame"
	"easychat/pkg/token"
)

const (
	pairs    = 9                      // sender → receiver conversations, spread over the gateways
	interval = 100 * time.Millisecond // per sender: 10 msg/s, 90 msg/s in all
	recovery = 60 * time.Second       // an event must be recovered from within this
)

func TestClusterSurvivesKillsScalingAndARedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("the cluster test starts a whole deployment")
	}
	s := startCluster(t)
	gws := s.GatewayProcs()
	secret := s.JWTSecret()

	sendCtx, stopSending := context.WithCancel(context.Background())
	recvCtx, stopReceiving := context.WithCancel(context.Background())
	defer stopSending()
	defer stopReceiving()
	load := &load{t: t, gws: gws, secret: secret}
	for i := range pairs {
		load.start(sendCtx, recvCtx, i)
	}
	load.waitSteady(t)

	step := func(name string, do func() error) {
		t.Helper()
		at := time.Now()
		if err := do(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, err := load.recovered(at)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%-30s recovered in %v (every conversation delivered a message sent after it)", name, d.Round(time.Millisecond))
		time.Sleep(2 * time.Second) // steady again before the next blow
	}

	con := s.ConnectorProcs()[0]
	step("kill -9 connector-0", con.Kill)
	step("connector-0 back", func() error { return con.Start(context.Background()) })

	gw := gws[1]
	step("kill -9 gateway-1", gw.Kill)
	step("gateway-1 back", func() error { return gw.Start(context.Background()) })

	step("scale transfer 3 → 1", func() error { return s.Provider.Scale("transfer", 1) })
	step("scale transfer 1 → 3", func() error { return s.Provider.Scale("transfer", 3) })

	redisRestarted := false
	step("restart Redis (its data lost)", func() error {
		err := s.RestartRedis(context.Background())
		if errors.Is(err, stack.ErrRedisNotRestartable) {
			t.Logf("Redis not restarted: %v", err)
			return nil
		}
		redisRestarted = err == nil
		return err
	})
	if redisRestarted {
		// Presence comes back: every receiver shows online again.
		deadline := time.Now().Add(recovery)
		for _, p := range load.pairs {
			for {
				on, err := s.Registry.Online(context.Background(), []string{p.receiver})
				if err == nil && on[p.receiver] {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s not online again after the Redis restart (%v)", p.receiver, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}

	stopSending()
	load.senders.Wait()
	load.drain(t)
	stopReceiving()
	load.receivers.Wait()
	load.verify(t)
}

func startCluster(t *testing.T) *stack.Stack {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	dir := t.TempDir()
	level := slog.LevelWarn
	if os.Getenv("E2E_LOG") != "" {
		level = slog.LevelDebug
	}
	// faas-provider logs every call through the standard logger: debug.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	slog.SetLogLoggerLevel(slog.LevelDebug)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, stack.Config{
		RepoRoot:        root,
		StateDir:        dir,
		KafkaBrokers:    os.Getenv("KAFKA_BROKERS"),
		MongoURI:        os.Getenv("MONGO_URI"),
		FerretPGURL:     os.Getenv("FERRETDB_POSTGRESQL_URL"),
		RedisURL:        os.Getenv("REDIS_URL"),
		KafkaPartitions: 4,
		RouteTTL:        3 * time.Second,
		ConnectorBatch:  64,
		Cluster:         &stack.Cluster{Gateways: 3, Connectors: 2, Replicas: 3},
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		t.Fatalf("starting the cluster: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			for _, p := range append(s.GatewayProcs(), s.ConnectorProcs()...) {
				b, _ := os.ReadFile(filepath.Join(dir, "logs", p.Name+".log"))
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("%s log (tail):\n%s", p.Name, b)
			}
		}
	})
	return s
}

// pair is one conversation: a sender socket writing into it, a receiver
// socket reading it, each on its own gateway and moving on when it dies.
type pair struct {
	sender, receiver, conv string

	mu      sync.Mutex
	sentAt  map[int]time.Time // k → first send
	acked   map[int]string    // k → msgId
	gotAt   map[int]time.Time // k → first delivery to the receiver (push or sync)
	seqOf   map[int]int64
	have    map[int64]bool
	lastSeq int64 // every seq up to this one has reached the receiver
	dups    []string
	resent  int
	lastErr string // the last error frame the sender got

	sock       int         // the receiver's socket: counts its connections
	pushedOn   map[int]int // k → the socket it was first pushed on
	repushed   int         // pushes of a message an earlier socket had
	reconnects int
}

func newPair(sender, receiver, conv string) *pair {
	return &pair{sender: sender, receiver: receiver, conv: conv,
		sentAt: map[int]time.Time{}, acked: map[int]string{}, gotAt: map[int]time.Time{},
		seqOf: map[int]int64{}, have: map[int64]bool{}, pushedOn: map[int]int{}}
}

// state is a one-line summary for failure messages.
func (p *pair) state() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	maxSent, maxAcked, maxGot := 0, 0, 0
	for k := range p.sentAt {
		maxSent = max(maxSent, k)
	}
	for k := range p.acked {
		maxAcked = max(maxAcked, k)
	}
	for k := range p.gotAt {
		maxGot = max(maxGot, k)
	}
	return fmt.Sprintf("%s: sent up to %d, acked up to %d, received up to %d (seq %d), last error %q",
		p.conv, maxSent, maxAcked, maxGot, p.lastSeq, p.lastErr)
}

type load struct {
	t      *testing.T
	gws    []*stack.Proc
	secret string
	pairs  []*pair

	senders, receivers sync.WaitGroup
}

func uid(name string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%x", name, b)
}

func (l *load) start(sendCtx, recvCtx context.Context, i int) {
	sender, receiver := uid("s"+strconv.Itoa(i)), uid("r"+strconv.Itoa(i))
	p := newPair(sender, receiver, frame.SingleConversationID(sender, receiver))
	l.pairs = append(l.pairs, p)
	l.senders.Add(1)
	l.receivers.Add(1)
	go func() { defer l.senders.Done(); l.send(sendCtx, p, i%len(l.gws)) }()
	go func() { defer l.receivers.Done(); l.receive(recvCtx, p, (i+1)%len(l.gws)) }()
}

// conn is one websocket with its frames on a channel (closed when the
// socket dies).
type conn struct {
	ws     *websocket.Conn
	frames chan frame.Frame
}

func (l *load) dial(ctx context.Context, user string, gw *int) (*conn, error) {
	tok, err := token.New(l.secret, time.Hour).Issue(user)
	if err != nil {
		return nil, err
	}
	for ctx.Err() == nil {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, l.gws[*gw].URL()+"?token="+tok, nil)
		if err != nil {
			*gw = (*gw + 1) % len(l.gws) // that gateway is gone: the next one
			time.Sleep(50 * time.Millisecond)
			continue
		}
		c := &conn{ws: ws, frames: make(chan frame.Frame, 1024)}
		go func() {
			defer close(c.frames)
			for {
				_, b, err := ws.ReadMessage()
				if err != nil {
					return
				}
				var f frame.Frame
				if json.Unmarshal(b, &f) == nil {
					c.frames <- f
				}
			}
		}()
		return c, nil
	}
	return nil, ctx.Err()
}

func (c *conn) send(v any) error {
	b, _ := json.Marshal(v)
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// send writes one message every interval and waits for its ack; on a dead
// socket it reconnects (to the next gateway if its own is gone) and resends
// the same frame id, which the system answers with the same msgId.
func (l *load) send(ctx context.Context, p *pair, gw int) {
	var c *conn
	defer func() {
		if c != nil {
			c.ws.Close()
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for k := 1; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		id := "m-" + strconv.Itoa(k)
		p.mu.Lock()
		p.sentAt[k] = time.Now()
		p.mu.Unlock()
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				p.mu.Lock()
				p.resent++
				p.mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
			if c == nil {
				var err error
				// Resends must reach the system even while the test winds
				// down: an unacked frame is never left behind.
				if c, err = l.dial(context.WithoutCancel(ctx), p.sender, &gw); err != nil {
					l.t.Errorf("%s: %v", p.sender, err)
					return
				}
			}
			err := c.send(map[string]any{"frameType": 0, "id": id, "method": frame.MethodChat,
				"data": map[string]any{"chatType": frame.SingleChat, "recvId": p.receiver, "msg": map[string]any{"mType": 0, "content": strconv.Itoa(k)}}})
			f, ok := waitFrame(c, err, id, 20*time.Second, nil)
			if !ok { // socket dead or silent: another gateway
				c.ws.Close()
				c, gw = nil, (gw+1)%len(l.gws)
				continue
			}
			if f.FrameType == frame.Error { // e.g. "temporarily unavailable, retry" during a drain or a scale
				p.mu.Lock()
				p.lastErr = f.ErrMsg
				p.mu.Unlock()
				if attempt > 300 {
					l.t.Errorf("%s frame %s refused 300 times: %s", p.sender, id, f.ErrMsg)
					return
				}
				continue
			}
			var a frame.ChatAck
			if json.Unmarshal(f.Data, &a) != nil || a.MsgID == "" {
				l.t.Errorf("%s: bad ack %+v", p.sender, f)
				return
			}
			p.mu.Lock()
			if prev, ok := p.acked[k]; ok && prev != a.MsgID {
				p.dups = append(p.dups, fmt.Sprintf("frame %s acked as %s and %s", id, prev, a.MsgID))
			}
			p.acked[k] = a.MsgID
			p.mu.Unlock()
			break
		}
	}
}

// waitFrame returns the answer to frame id; other frames go to other (nil:
// dropped).
func waitFrame(c *conn, sendErr error, id string, wait time.Duration, other func(frame.Frame)) (frame.Frame, bool) {
	if sendErr != nil {
		return frame.Frame{}, false
	}
	timeout := time.After(wait)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return frame.Frame{}, false
			}
			if f.ID == id && f.Method != frame.MethodPush {
				return f, true
			}
			if other != nil {
				other(f)
			}
		case <-timeout:
			return frame.Frame{}, false
		}
	}
}

// receive reads pushes; when its socket dies it connects to another gateway
// and syncs from the last seq it has, as a client does.
func (l *load) receive(ctx context.Context, p *pair, gw int) {
	syncs := 0
	for first := true; ctx.Err() == nil; first = false {
		c, err := l.dial(ctx, p.receiver, &gw)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.sock++
		if !first {
			p.reconnects++
			l.t.Logf("%s: receiver reconnected to %s at %s", p.conv, l.gws[gw].Name, time.Now().Format("15:04:05.000"))
		}
		p.mu.Unlock()
		if !first {
			syncs++
			l.sync(p, c, syncs)
		}
		for alive := true; alive; {
			select {
			case <-ctx.Done():
				c.ws.Close()
				return
			case f, ok := <-c.frames:
				if !ok {
					alive = false
					break
				}
				p.onPush(f)
				if p.gap() {
					syncs++
					l.sync(p, c, syncs)
				}
			}
		}
		c.ws.Close()
		gw = (gw + 1) % len(l.gws)
	}
}

func (l *load) sync(p *pair, c *conn, n int) {
	for page := 0; ; page++ {
		id := fmt.Sprintf("sync-%d-%d", n, page)
		p.mu.Lock()
		from := p.lastSeq
		p.mu.Unlock()
		err := c.send(map[string]any{"frameType": 0, "id": id, "method": frame.MethodSync,
			"data": map[string]any{"seqs": map[string]int64{p.conv: from}, "limit": 100}})
		f, ok := waitFrame(c, err, id, 20*time.Second, p.onPush)
		if !ok || f.FrameType == frame.Error {
			return // the socket went again; the next connection syncs
		}
		var res struct {
			Messages []frame.Push `json:"messages"`
			More     bool         `json:"more"`
		}
		if json.Unmarshal(f.Data, &res) != nil {
			return
		}
		for _, m := range res.Messages {
			p.deliver(m, false)
		}
		if !res.More || len(res.Messages) == 0 {
			return
		}
	}
}

func (p *pair) onPush(f frame.Frame) {
	if f.FrameType == frame.Data && f.Method == frame.MethodPush {
		var m frame.Push
		if json.Unmarshal(f.Data, &m) == nil {
			p.deliver(m, true)
		}
	}
}

// deliver records a message reaching the receiver. A push of a seq it
// already has is a duplicate as the user would see it; a synced one may
// overlap a push that raced it (clients merge by seq).
func (p *pair) deliver(m frame.Push, pushed bool) {
	k, err := strconv.Atoi(m.Msg.Content)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil || m.ConversationID != p.conv {
		p.dups = append(p.dups, fmt.Sprintf("unexpected message %+v", m))
		return
	}
	if prev, ok := p.seqOf[k]; ok {
		if pushed && prev == m.Seq {
			// A socket never gets a seq twice (the gateway keeps each
			// socket's newest seq per conversation). A new socket may get
			// again what an earlier one had, when a redelivered record is
			// pushed after a reconnect: the client merges by seq.
			if on, ok := p.pushedOn[k]; ok && on == p.sock {
				p.dups = append(p.dups, fmt.Sprintf("message %d (seq %d) pushed twice to one socket", k, m.Seq))
			} else if ok {
				p.repushed++
			}
		} else if prev != m.Seq {
			p.dups = append(p.dups, fmt.Sprintf("message %d stored as seq %d and %d", k, prev, m.Seq))
		}
		return
	}
	p.seqOf[k] = m.Seq
	p.gotAt[k] = time.Now()
	if pushed {
		p.pushedOn[k] = p.sock
	}
	p.have[m.Seq] = true
	for p.have[p.lastSeq+1] {
		p.lastSeq++
	}
}

// gap reports whether a seq above a missing one has arrived: a push was
// missed (its recipient's route was gone for a moment), and a client syncs.
func (p *pair) gap() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.have) > 0 && !p.have[p.lastSeq+1] && maxKey(p.have) > p.lastSeq
}

func maxKey(m map[int64]bool) int64 {
	var top int64
	for k := range m {
		top = max(top, k)
	}
	return top
}

func (l *load) waitSteady(t *testing.T) {
	t.Helper()
	if _, err := l.recovered(time.Now()); err != nil {
		t.Fatalf("load never got going: %v", err)
	}
}

// recovered waits until every conversation has delivered a message sent
// after at, and returns how long after at the last of those arrived.
func (l *load) recovered(at time.Time) (time.Duration, error) {
	deadline := time.Now().Add(recovery)
	for {
		var worst time.Duration
		done := true
		for _, p := range l.pairs {
			d, ok := p.firstAfter(at)
			if !ok {
				done = false
				break
			}
			worst = max(worst, d)
		}
		if done {
			return worst, nil
		}
		if time.Now().After(deadline) {
			var states []string
			for _, p := range l.pairs {
				states = append(states, p.state())
			}
			return 0, fmt.Errorf("some conversation delivered nothing sent after the event within %v:\n%s", recovery, strings.Join(states, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstAfter returns how long after at the first message sent after at
// reached the receiver.
func (p *pair) firstAfter(at time.Time) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first time.Time
	for k, sent := range p.sentAt {
		if got, ok := p.gotAt[k]; ok && sent.After(at) && (first.IsZero() || got.Before(first)) {
			first = got
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return first.Sub(at), true
}

// drain waits until every acked message reached its receiver's live device.
func (l *load) drain(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(recovery)
	for _, p := range l.pairs {
		for {
			p.mu.Lock()
			missing := 0
			for k := range p.acked {
				if _, ok := p.gotAt[k]; !ok {
					missing++
				}
			}
			p.mu.Unlock()
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: %d acked messages not delivered %v after the load stopped", p.conv, missing, recovery)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// verify: every acked message is stored once, in send order, and reached
// its receiver; nothing else is stored and nothing was delivered twice.
func (l *load) verify(t *testing.T) {
	t.Helper()
	total, resent, bySync, repushed, reconnects := 0, 0, 0, 0, 0
	for _, p := range l.pairs {
		p.mu.Lock()
		for _, d := range p.dups {
			t.Errorf("%s: %s", p.conv, d)
		}
		acked := len(p.acked)
		p.mu.Unlock()
		total += acked
		resent += p.resent
		repushed += p.repushed
		reconnects += p.reconnects

		// A fresh device of the receiver syncs the whole conversation.
		fresh := newPair("", p.receiver, p.conv)
		i := 0
		c, err := l.dial(context.Background(), p.receiver, &i)
		if err != nil {
			t.Fatal(err)
		}
		l.sync(fresh, c, 0)
		c.ws.Close()
		for _, d := range fresh.dups {
			t.Errorf("%s (fresh sync): %s", p.conv, d)
		}
		var ks []int
		for k := range fresh.seqOf {
			ks = append(ks, k)
		}
		sort.Ints(ks)
		if len(ks) != acked {
			t.Errorf("%s: %d messages stored, %d acked", p.conv, len(ks), acked)
		}
		for idx, k := range ks {
			if fresh.seqOf[k] != int64(idx+1) {
				t.Errorf("%s: message %d is seq %d, want %d (order or gaps)", p.conv, k, fresh.seqOf[k], idx+1)
				break
			}
			if _, ok := p.acked[k]; !ok {
				t.Errorf("%s: message %d stored but never acked", p.conv, k)
			}
			if _, ok := p.gotAt[k]; !ok {
				t.Errorf("%s: message %d never reached the receiver's live device", p.conv, k)
			}
			if _, pushed := p.pushedOn[k]; !pushed {
				bySync++
			}
		}
	}
	t.Logf("%d messages acked, stored once each and in order; %d resends; %d receiver reconnects; %d messages reached the live receiver by sync; %d pushed again to a newer socket of a receiver (merged by seq)",
		total, resent, reconnects, bySync, repushed)
	if total < pairs*50 {
		t.Errorf("only %d messages acked: the load did not run", total)
	}
}
