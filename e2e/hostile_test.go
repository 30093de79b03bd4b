package e2e

// The hostile-client suite: what an attacker with an ordinary account (or
// none) tries, against the real system over real sockets. Each test is one
// finding of the security review (issue 10) and fails on the code before it
// was fixed. Gateways with the default limits are started per test where a
// test needs them (the shared gateway runs without a frame rate limit, for
// the stress tests).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/segmentio/kafka-go"

	"easychat/connector/consume"
	"easychat/devstack/stack"
	"easychat/gateway/server"
	"easychat/gateway/session"
	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/secret"
	"easychat/pkg/sign"
)

// hostileGateway starts a gateway of the shared system with the default
// limits, adjusted by adjust, and stops it when the test ends.
func hostileGateway(t *testing.T, adjust func(*server.Config)) *stack.Gateway {
	t.Helper()
	s := system(t)
	d := server.DefaultConfig()
	g, err := s.AddGatewayWith(context.Background(), "", "", func(c *server.Config) {
		c.FrameRate, c.FrameBurst = d.FrameRate, d.FrameBurst
		c.APIRate, c.APIBurst = d.APIRate, d.APIBurst
		if adjust != nil {
			adjust(c)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop() })
	return g
}

// registered creates users in the store (as registration would, without a
// password), for tests that need members who exist.
func registered(t *testing.T, names ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := openSystemStore(t, ctx)
	ids := make([]string, len(names))
	for i, n := range names {
		ids[i] = uid(t, n)
		if err := st.CreateUser(ctx, domain.User{ID: ids[i], Nickname: n}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// errFrame waits for the error frame answering frame id (or any error frame
// when id is "").
func (c *client) errFrame(id string) frame.Frame {
	c.t.Helper()
	f := c.next(wait, func(f frame.Frame) bool { return f.FrameType == frame.Error && (id == "" || f.ID == id) })
	return f
}

// Finding 1 and the ids of "What to build": no id a client names can forge a
// storage key, name a stranger, or reach a record that can never be stored.
func TestHostileIDsAreRefusedEverywhere(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	addr := gw.Addr()
	users := registered(t, "mallory", "bob")
	mallory, bob := users[0], users[1]
	tm := tokenFor(t, s, mallory)

	for name, body := range map[string]map[string]any{
		"forged member key": {"action": "create", "name": "x", "members": []string{"x1#" + mallory}},
		"unregistered":      {"action": "create", "name": "x", "members": []string{"ghost-" + mallory[len(mallory)-6:]}},
		"escape in name":    {"action": "create", "name": "team\x1b[2K\rbob: hi", "members": []string{bob}},
		"forged group id":   {"action": "members", "groupId": "g-1#x1"},
		"overlong members":  {"action": "create", "name": "x", "members": slices.Repeat([]string{bob}, 2001)},
	} {
		if code, res := api(t, addr, "group", tm, body); code != http.StatusBadRequest {
			t.Errorf("group %s: %d %v, want 400", name, code, res)
		}
	}
	if code, res := api(t, addr, "group", tm, map[string]any{"action": "mine"}); code != 200 || len(res["groups"].([]any)) != 0 {
		t.Fatalf("refused creates left groups behind: %d %v", code, res)
	}
	if code, _ := api(t, addr, "user", tm, map[string]any{"action": "profiles", "userIds": []string{bob, "a#b"}}); code != http.StatusBadRequest {
		t.Errorf("profiles with a forged id: %d", code)
	}
	if code, _ := api(t, addr, "conversation", tm, map[string]any{"action": "history", "conversationId": bob + "_" + mallory + "#x"}); code != http.StatusBadRequest {
		t.Errorf("history of a forged conversation: %d", code)
	}

	cm := dial(t, s, gw, mallory)
	frames := []struct {
		id   string
		data any
		want string
	}{
		{"c1", map[string]any{"chatType": 1, "recvId": "g-1#x1", "msg": map[string]any{"content": "hi"}}, "recvId is not a group id"},
		{"c2", map[string]any{"chatType": 2, "recvId": "x1#" + bob, "msg": map[string]any{"content": "hi"}}, "recvId is not a user id"},
		{"c3", map[string]any{"chatType": 1, "recvId": "g-nosuchgroup", "msg": map[string]any{"content": "hi"}}, "no group"},
	}
	for _, f := range frames {
		cm.send(map[string]any{"frameType": 0, "id": f.id, "method": frame.MethodChat, "data": f.data})
		if e := cm.errFrame(f.id); !strings.Contains(e.ErrMsg, f.want) {
			t.Errorf("chat %s: error %q, want %q", f.id, e.ErrMsg, f.want)
		}
	}
	cm.send(map[string]any{"frameType": 0, "id": "m1", "method": frame.MethodMarkChat,
		"data": map[string]any{"chatType": 2, "recvId": bob, "msgIds": []string{"../../x"}}})
	if e := cm.errFrame("m1"); !strings.Contains(e.ErrMsg, "not a message id") {
		t.Errorf("markChat with a forged msgId: %q", e.ErrMsg)
	}
	cm.send(map[string]any{"frameType": 0, "id": "m2", "method": frame.MethodMarkChat,
		"data": map[string]any{"chatType": 2, "recvId": bob, "msgIds": slices.Repeat([]string{strings.Repeat("a", 32)}, 101)}})
	if e := cm.errFrame("m2"); !strings.Contains(e.ErrMsg, "at most 100") {
		t.Errorf("markChat with 101 msgIds: %q", e.ErrMsg)
	}
	cm.send(map[string]any{"frameType": 0, "id": "s1", "method": frame.MethodSync, "data": map[string]any{"seqs": map[string]int{"a#b": 1}}})
	if e := cm.errFrame("s1"); !strings.Contains(e.ErrMsg, "not a conversation id") {
		t.Errorf("sync with a forged key: %q", e.ErrMsg)
	}
	long := strings.Repeat("f", 200)
	cm.send(map[string]any{"frameType": 0, "id": long, "method": frame.MethodChat,
		"data": map[string]any{"chatType": 2, "recvId": bob, "msg": map[string]any{"content": "hi"}}})
	if e := cm.errFrame(""); e.ID != "" || e.ErrMsg != session.ErrTextFrameID {
		t.Errorf("overlong frame id: %+v", e)
	}
}

// Finding 1, the stall: records that can never succeed (a group that does
// not exist, bytes that are not a record) go to the dead-letter topic at
// once, so the conversations sharing their partitions are not held up. The
// review measured more than 18 s of delay for 16 pairs after 24 such frames.
func TestPoisonRecordsDoNotStallOtherConversations(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// What the review's attack left in Kafka: records for a group that does
	// not exist, on every partition, and some bytes that parse as nothing.
	run := uid(t, "poison")
	var poison []kafka.Message
	for i := range 24 {
		g := fmt.Sprintf("g-%s-%d", strings.ToLower(run[len(run)-10:]), i)
		ev := event.Chat{MsgID: fmt.Sprintf("%032x", i+1), ConversationID: g, ChatType: frame.GroupChat,
			SendID: "mallory", RecvID: g, SendTime: time.Now().UnixMilli(), Msg: frame.Msg{Content: "stall"}}
		b, _ := json.Marshal(ev)
		poison = append(poison, kafka.Message{Key: []byte(g), Value: b})
	}
	poison = append(poison, kafka.Message{Key: []byte(run + "-junk"), Value: []byte("not a record")})
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(s.Brokers, ",")...), Topic: event.TopicChat,
		Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(ctx, poison...); err != nil {
		t.Fatal(err)
	}

	// Right after, 16 pairs chat; each message must arrive.
	const pairs = 16
	type pair struct{ a, b *client }
	ps := make([]pair, pairs)
	for i := range ps {
		a, b := uid(t, fmt.Sprintf("pa%d", i)), uid(t, fmt.Sprintf("pb%d", i))
		ps[i] = pair{dial(t, s, gw, a), dial(t, s, gw, b)}
	}
	for _, p := range ps {
		waitOnline(t, p.a, []string{p.b.user})
	}
	start := time.Now()
	for i, p := range ps {
		p.a.chat(fmt.Sprintf("after-%d", i), frame.SingleChat, p.b.user, "not stalled")
	}
	var worst time.Duration
	for _, p := range ps {
		// A hang guard far below the stall being fixed (21 s per record).
		p.b.next(10*time.Second, isPush)
		worst = max(worst, time.Since(start))
	}
	t.Logf("16 pairs delivered within %v of 25 poison records", worst.Round(time.Millisecond))

	// Every poison record is in the dead-letter topic, with its reason.
	want := map[string]bool{}
	for _, m := range poison {
		want[string(m.Key)] = true
	}
	for _, m := range readAll(t, ctx, s.Brokers, event.TopicDead) {
		if !want[string(m.Key)] {
			continue
		}
		delete(want, string(m.Key))
		for _, h := range m.Headers {
			if h.Key == consume.DeadHeaderAttempts && string(h.Value) != "1" {
				t.Errorf("%s dead-lettered after %s attempts, want at once", m.Key, h.Value)
			}
			if h.Key == consume.DeadHeaderError && !strings.Contains(string(h.Value), "400") {
				t.Errorf("%s dead-lettered for %q, want a 400 refusal", m.Key, h.Value)
			}
		}
	}
	if len(want) > 0 {
		t.Fatalf("%d poison records are not in the dead-letter topic", len(want))
	}
}

// readAll returns what topic holds now, every partition.
func readAll(t *testing.T, ctx context.Context, brokers, topic string) []kafka.Message {
	t.Helper()
	conn, err := kafka.DialContext(ctx, "tcp", strings.Split(brokers, ",")[0])
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for _, p := range parts {
		c, err := kafka.DialLeader(ctx, "tcp", strings.Split(brokers, ",")[0], topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		last, err := c.ReadLastOffset()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: strings.Split(brokers, ","), Topic: topic, Partition: p.ID,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
		for off := int64(0); off < last; {
			m, err := rd.ReadMessage(ctx)
			if err != nil {
				rd.Close()
				t.Fatalf("reading %s/%d: %v", topic, p.ID, err)
			}
			out = append(out, m)
			off = m.Offset + 1
		}
		rd.Close()
	}
	return out
}

// Finding 2: membership has one source of truth. A removed member gets no
// more pushes, cannot read or post, and cannot add herself back.
func TestRemovedMemberIsOutForGood(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	addr := gw.Addr()
	users := registered(t, "owner", "bob", "carol")
	owner, bob, carol := users[0], users[1], users[2]
	to, tc := tokenFor(t, s, owner), tokenFor(t, s, carol)
	code, res := api(t, addr, "group", to, map[string]any{"action": "create", "name": "team", "members": []string{bob, carol}})
	if code != 200 {
		t.Fatalf("create: %d %v", code, res)
	}
	g := res["groupId"].(string)
	co, cb, cc := dial(t, s, gw, owner), dial(t, s, gw, bob), dial(t, s, gw, carol)
	waitOnline(t, co, []string{bob, carol})
	if code, res := api(t, addr, "group", to, map[string]any{"action": "remove", "groupId": g, "members": []string{carol}}); code != 200 {
		t.Fatalf("remove: %d %v", code, res)
	}
	if code, _ := api(t, addr, "group", tc, map[string]any{"action": "add", "groupId": g, "members": []string{carol}}); code != http.StatusForbidden {
		t.Fatalf("removed member re-adding herself: %d", code)
	}
	if code, _ := api(t, addr, "conversation", tc, map[string]any{"action": "history", "conversationId": g}); code != http.StatusForbidden {
		t.Fatalf("removed member reading history: %d", code)
	}
	cc.chat("c1", frame.GroupChat, g, "still here?")
	if e := cc.errFrame("c1"); !strings.Contains(e.ErrMsg, "not a member") {
		t.Fatalf("removed member posting: %q", e.ErrMsg)
	}
	co.chat("o1", frame.GroupChat, g, "after carol left")
	if p := pushData(t, cb.next(wait, isPush)); p.Msg.Content != "after carol left" {
		t.Fatalf("bob got %+v", p)
	}
	// Carol's socket: the message for bob was pushed in the same batch as
	// any to her; give a late push a moment to show before saying none came.
	select {
	case f := <-cc.frames:
		if isPush(f) {
			t.Fatalf("removed member was pushed %s", f.Data)
		}
	case <-time.After(500 * time.Millisecond):
	}
}

// Finding 4: a socket over its frame rate gets error frames, then is closed
// if it goes on; other users on the same gateway are not slowed down.
func TestFloodingSocketIsLimitedAndOthersAreNot(t *testing.T) {
	s := system(t)
	g := hostileGateway(t, nil)
	users := registered(t, "flood", "sink", "alice", "bob")
	flood, sink, alice, bob := users[0], users[1], users[2], users[3]
	cf := dialURL(t, g.URL()+"?token="+tokenFor(t, s, flood), flood)
	ca, cb := dial(t, s, g, alice), dial(t, s, g, bob)
	waitOnline(t, ca, []string{bob})

	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 3000 {
			b, _ := json.Marshal(map[string]any{"frameType": 0, "id": fmt.Sprintf("fl%d", i), "method": frame.MethodChat,
				"data": map[string]any{"chatType": 2, "recvId": sink, "msg": map[string]any{"content": "spam"}}})
			if cf.ws.WriteMessage(websocket.TextMessage, b) != nil {
				return // closed by the gateway
			}
		}
	})
	// Alice and Bob chat meanwhile, 40 messages at 20 a second.
	const n = 40
	var mu sync.Mutex
	sent := map[string]time.Time{}
	lat := make([]time.Duration, 0, n)
	received := make(chan struct{})
	go func() {
		defer close(received)
		for range n {
			f, ok := <-cb.frames
			if !ok {
				return
			}
			if !isPush(f) {
				continue
			}
			var p frame.Push
			_ = json.Unmarshal(f.Data, &p)
			mu.Lock()
			lat = append(lat, time.Since(sent[p.Msg.Content]))
			mu.Unlock()
		}
	}()
	for i := range n {
		id := fmt.Sprintf("ab%02d", i)
		mu.Lock()
		sent[id] = time.Now()
		mu.Unlock()
		ca.chat(id, frame.SingleChat, bob, id)
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-received:
	case <-time.After(wait):
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) != n {
		t.Fatalf("bob got %d of alice's %d messages during the flood", len(lat), n)
	}
	slices.Sort(lat)
	t.Logf("alice→bob during the flood: p50 %v, p99 %v", lat[n/2].Round(time.Millisecond), lat[n*99/100].Round(time.Millisecond))

	limited, closed := 0, false
	deadline := time.After(wait)
read:
	for { // until the gateway closes the flooding socket
		select {
		case f, ok := <-cf.frames:
			if !ok {
				closed = true
				break read
			}
			if f.FrameType == frame.Error && f.ErrMsg == session.ErrTextRate {
				limited++
			}
		case <-deadline:
			break read
		}
	}
	if limited == 0 || !closed {
		t.Fatalf("flooding socket: %d rate-limit error frames, closed %v", limited, closed)
	}
	t.Logf("flooding socket: %d frames refused with %q, then closed", limited, session.ErrTextRate)
}

// A member toggling a reaction in a loop (each toggle a change every
// member's devices get and sync) is refused once over CHANGE_LIMIT (30/1m in
// this suite); another member's reaction meanwhile goes through.
func TestReactionLoopIsLimitedPerUser(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	ids := registered(t, "toggler", "other")
	ct, co := dial(t, s, gw, ids[0]), dial(t, s, gw, ids[1])
	conv := frame.SingleConversationID(ids[0], ids[1])
	m := ct.sent("m", frame.SingleChat, ids[1], map[string]any{"content": "react to this"})
	co.next(wait, isPush)
	refused := 0
	for i := range 40 {
		f := ct.call(fmt.Sprintf("t%d", i), frame.MethodReact, map[string]any{"conversationId": conv, "msgId": m, "emoji": "👍", "remove": i%2 == 1})
		if f.FrameType == frame.Error {
			if !strings.Contains(f.ErrMsg, "too many changes of messages") {
				t.Fatalf("toggle %d: %s", i, f.ErrMsg)
			}
			refused++
		}
	}
	if refused != 10 {
		t.Fatalf("%d of 40 toggles refused, want the 10 over the limit of 30", refused)
	}
	co.mustCall("o", frame.MethodReact, map[string]any{"conversationId": conv, "msgId": m, "emoji": "🎉"})
	t.Logf("40 toggles in a row: 30 accepted, %d refused; the other member's reaction accepted", refused)
}

// Finding 4: a user hammering the HTTP API is slowed down (429), and others
// are not.
func TestAPICallsAreRateLimitedPerCaller(t *testing.T) {
	s := system(t)
	g := hostileGateway(t, nil)
	users := registered(t, "hammer", "calm")
	th, tc := tokenFor(t, s, users[0]), tokenFor(t, s, users[1])
	counts := map[int]int{}
	for range 100 {
		code, _ := api(t, g.Addr(), "conversation", th, map[string]any{"action": "list"})
		counts[code]++
	}
	if counts[http.StatusTooManyRequests] == 0 || counts[200] < server.DefaultConfig().APIBurst {
		t.Fatalf("100 list calls at once: %v (status: count)", counts)
	}
	if code, res := api(t, g.Addr(), "conversation", tc, map[string]any{"action": "list"}); code != 200 {
		t.Fatalf("another user meanwhile: %d %v", code, res)
	}
	t.Logf("100 API calls at once from one user: %v (status: count)", counts)
}

// Finding 4: sockets per user are bounded.
func TestSocketsPerUserAreBounded(t *testing.T) {
	s := system(t)
	g := hostileGateway(t, func(c *server.Config) { c.MaxSocketsPerUser = 3 })
	u := uid(t, "many")
	for i := range 3 {
		c := dial(t, s, g, u)
		// Answered once the gateway holds the socket.
		c.send(frame.Frame{FrameType: frame.Ping, ID: fmt.Sprint(i)})
		c.next(wait, byID(fmt.Sprint(i)))
	}
	_, res, err := websocket.DefaultDialer.Dial(g.URL()+"?token="+tokenFor(t, s, u), nil)
	if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th socket: %v %v, want 429", err, res)
	}
}

// apiFrom calls the API as if through a proxy for client address from.
func apiFrom(t *testing.T, gwAddr, from, fn, tok string, body any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	h := http.Header{"Content-Type": {"application/json"}, "X-Forwarded-For": {from}}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	code, _ := httpPost(t, "http://"+gwAddr+"/api/"+fn, string(b), h)
	return code
}

// Finding 4: login and register are throttled per user id and per client
// address, counted in Redis so that every gateway instance shares them.
func TestLoginAndRegisterAreThrottled(t *testing.T) {
	behindProxy := func(c *server.Config) {
		_, lo, _ := net.ParseCIDR("127.0.0.1/32")
		c.TrustedProxies = []*net.IPNet{lo}
		c.APIRate = 0 // the gateway's own rate per caller is tested apart
	}
	g1, g2 := hostileGateway(t, behindProxy), hostileGateway(t, behindProxy)
	victim := uid(t, "victim")
	if code := apiFrom(t, g1.Addr(), "192.0.2.1", "user", "", map[string]any{"action": "register", "userId": victim, "password": "right-pw-1"}); code != 200 {
		t.Fatalf("register: %d", code)
	}
	// Per user id: 10 attempts in 5 minutes, from anywhere, on any instance.
	for i := range 10 {
		g := []*stack.Gateway{g1, g2}[i%2]
		if code := apiFrom(t, g.Addr(), fmt.Sprintf("198.51.100.%d", i+1), "user", "", map[string]any{"action": "login", "userId": victim, "password": "guess-" + fmt.Sprint(i)}); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i+1, code)
		}
	}
	if code := apiFrom(t, g2.Addr(), "198.51.100.99", "user", "", map[string]any{"action": "login", "userId": victim, "password": "right-pw-1"}); code != http.StatusTooManyRequests {
		t.Fatalf("11th attempt on the victim: %d, want 429", code)
	}
	// Per address: 60 login attempts in 5 minutes, whatever the user ids.
	from := "203.0.113.9"
	for i := range 60 {
		if code := apiFrom(t, g1.Addr(), from, "user", "", map[string]any{"action": "login", "userId": fmt.Sprintf("nobody%d-%s", i, victim[len(victim)-6:]), "password": "x-wrong-pw"}); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d from one address: %d", i+1, code)
		}
	}
	if code := apiFrom(t, g2.Addr(), from, "user", "", map[string]any{"action": "login", "userId": "nobody61-" + victim[len(victim)-6:], "password": "x-wrong-pw"}); code != http.StatusTooManyRequests {
		t.Fatalf("61st attempt from one address: %d, want 429", code)
	}
	// Registrations: 30 an hour per address (each is a bcrypt).
	reg := "192.0.2.77"
	for i := range 30 {
		if code := apiFrom(t, g1.Addr(), reg, "user", "", map[string]any{"action": "register", "userId": uid(t, fmt.Sprintf("r%d", i)), "password": "s3cret-pw"}); code != 200 {
			t.Fatalf("registration %d: %d", i+1, code)
		}
	}
	if code := apiFrom(t, g2.Addr(), reg, "user", "", map[string]any{"action": "register", "userId": uid(t, "r31"), "password": "s3cret-pw"}); code != http.StatusTooManyRequests {
		t.Fatalf("31st registration from one address: %d, want 429", code)
	}
	// A client whose peer is not a trusted proxy cannot pick its address:
	// X-Forwarded-For naming the exhausted one changes nothing.
	if code := apiFrom(t, system(t).Gateways()[0].Addr(), reg, "user", "", map[string]any{"action": "register", "userId": uid(t, "direct"), "password": "s3cret-pw"}); code != 200 {
		t.Fatalf("registration with a spoofed X-Forwarded-For: %d, want 200", code)
	}
}

// Finding 4: group creation is bounded per user.
func TestGroupCreationIsBounded(t *testing.T) {
	s := system(t)
	addr := s.Gateways()[0].Addr()
	tm := tokenFor(t, s, registered(t, "maker")[0])
	for i := range 20 {
		if code, res := api(t, addr, "group", tm, map[string]any{"action": "create", "name": fmt.Sprintf("g%d", i)}); code != 200 {
			t.Fatalf("group %d: %d %v", i+1, code, res)
		}
	}
	if code, res := api(t, addr, "group", tm, map[string]any{"action": "create", "name": "one too many"}); code != http.StatusTooManyRequests {
		t.Fatalf("21st group in an hour: %d %v, want 429", code, res)
	}
}

// Finding 5: slow HTTP clients are cut, and connections that are not (yet)
// an authenticated websocket are bounded, so a few hundred of them cannot
// hold the gateway. The review had 300 such connections all open 45 s later.
func TestSlowHTTPClientsAreCut(t *testing.T) {
	s := system(t)
	g := hostileGateway(t, func(c *server.Config) {
		c.ReadTimeout = 2 * time.Second
		c.MaxPendingPerIP = 50
	})
	const n = 300
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for range n {
		c, err := net.Dial("tcp", g.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// Headers of a large body, then one byte of it.
		fmt.Fprintf(c, "POST /api/user HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{")
	}
	var wg sync.WaitGroup
	closedAt := make([]time.Duration, n)
	for i, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // hang guard
			_, _ = io.Copy(io.Discard, bufio.NewReader(c))
			closedAt[i] = time.Since(start)
		})
	}
	wg.Wait()
	slices.Sort(closedAt)
	if last := closedAt[n-1]; last > 10*time.Second {
		t.Fatalf("a slow connection stayed open %v (read timeout 2 s)", last)
	}
	t.Logf("300 slow-body connections: %d closed at once (over the per-address bound), all closed within %v",
		countBelow(closedAt, 500*time.Millisecond), closedAt[n-1].Round(time.Millisecond))
	// Once they are gone (the gateway counts a connection out just after
	// closing it), a real client is served.
	u := uid(t, "after")
	waitFor(t, "a websocket after the slow clients", func() bool {
		ws, _, err := websocket.DefaultDialer.Dial(g.URL()+"?token="+tokenFor(t, s, u), nil)
		if err != nil {
			return false
		}
		defer ws.Close()
		return ws.WriteMessage(websocket.TextMessage, []byte(`{"frameType":1,"id":"p"}`)) == nil &&
			ws.SetReadDeadline(time.Now().Add(wait)) == nil && func() bool { _, _, err := ws.ReadMessage(); return err == nil }()
	})
}

func countBelow(ds []time.Duration, d time.Duration) int {
	n := 0
	for _, x := range ds {
		if x < d {
			n++
		}
	}
	return n
}

// Finding 6: frames padded to the size limit, from many sockets at once, do
// not fail the batch they share with others' frames.
func TestPaddedFramesDoNotFailOthers(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	peer := uid(t, "peer")
	pad := strings.Repeat("p", 60<<10)
	const n = 60
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = dial(t, s, gw, uid(t, fmt.Sprintf("pad%d", i)))
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			data := map[string]any{"chatType": 2, "recvId": peer, "msg": map[string]any{"content": "small"}}
			if i%2 == 0 {
				data["pad"] = pad // ignored by the chat function, but carried
			}
			c.send(map[string]any{"frameType": 0, "id": "x", "method": frame.MethodChat, "data": data})
		})
	}
	wg.Wait()
	for i, c := range cs {
		f := c.next(wait, byID("x"))
		if f.FrameType != frame.Ack {
			t.Fatalf("socket %d: %+v", i, f)
		}
	}
}

// Finding 8: internal calls are authenticated whole, and once.
func TestInternalCallsAreAuthenticatedAndNotReplayable(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	bob := uid(t, "bob")
	cb := dial(t, s, gw, bob)
	waitOnline(t, dial(t, s, gw, uid(t, "watcher")), []string{bob})
	pushURL := gw.PushURL() + server.PushPath

	body, _ := json.Marshal(event.Push{Items: []event.PushItem{{Users: []string{bob},
		Frame: frame.Frame{FrameType: frame.Data, Method: "notice", Data: json.RawMessage(`{"text":"once"}`)}}}})
	h := signed(s.InternalKey(), server.PushPath, sign.Component, string(body), nil)
	if code, out := httpPost(t, pushURL, string(body), h); code != 200 {
		t.Fatalf("signed push: %d %s", code, out)
	}
	cb.next(wait, func(f frame.Frame) bool { return f.Method == "notice" })
	if code, _ := httpPost(t, pushURL, string(body), h); code != http.StatusUnauthorized {
		t.Fatalf("replayed push: %d, want 401", code)
	}
	if code, _ := httpPost(t, pushURL, string(body), signed(s.InternalKey(), server.PushPath, sign.ForUser(bob), string(body), nil)); code != http.StatusUnauthorized {
		t.Fatalf("push signed for a user: %d, want 401", code)
	}

	// An unsigned push announcing 8 MiB is refused before its body is read.
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.PushURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{", server.PushPath, 8<<20)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned 8 MiB push: %v %v, want 401 before the body", err, res)
	}

	// Functions: a header the signature binds cannot be changed, and the
	// Kafka-triggered ones refuse calls made for a user.
	chat := `{"chatType":2,"recvId":"` + bob + `","msg":{"mType":0,"content":"hi"}}`
	fh := signed(s.InternalKey(), "/function/chat", sign.ForUser("mallory"), chat, http.Header{"X-Easychat-Frame-Id": {"f1"}})
	fh.Set("X-Easychat-Frame-Id", "f2")
	if code, _ := httpPost(t, s.FaasURL+"/function/chat", chat, fh); code != http.StatusUnauthorized {
		t.Fatalf("frame id changed after signing: %d, want 401", code)
	}
	rec := `{"msgId":"` + strings.Repeat("b", 32) + `","conversationId":"` + frame.SingleConversationID(bob, "mallory") +
		`","chatType":2,"sendId":"mallory","recvId":"` + bob + `","msg":{"content":"forged"}}`
	for _, fn := range []string{"transfer", "read-transfer"} {
		h := signed(s.InternalKey(), "/function/"+fn, sign.ForUser("mallory"), rec, nil)
		if code, _ := httpPost(t, s.FaasURL+"/function/"+fn, rec, h); code != http.StatusUnauthorized {
			t.Fatalf("%s signed for a user: %d, want 401", fn, code)
		}
	}
}

// Finding 3: the gateway and the connector refuse to start without their
// secrets (a published default would let anyone mint tokens and sign
// internal calls), unless the development switch is on.
func TestProgramsRefuseToStartWithoutSecrets(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+"/", "./gateway", "./connector")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building: %v\n%s", err, out)
	}
	var env []string
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if k != "JWT_SECRET" && k != "INTERNAL_KEY" && k != secret.DevSwitch {
			env = append(env, e)
		}
	}
	env = append(env, "SECRET_MOUNT_PATH="+t.TempDir(), "GATEWAY_ADDR="+freeAddr(t), "GATEWAY_INTERNAL_ADDR="+freeAddr(t),
		"CONNECTOR_HTTP_ADDR="+freeAddr(t), "KAFKA_BROKERS=127.0.0.1:1")
	for _, c := range []struct{ bin, secret string }{{"gateway", "jwt-secret"}, {"connector", "internal-key"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, dir+"/"+c.bin)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 || timedOut {
			t.Fatalf("%s without secrets: %v (it must exit non-zero at once)\n%s", c.bin, err, out)
		}
		if !strings.Contains(string(out), c.secret+" is missing") {
			t.Fatalf("%s without secrets said:\n%s", c.bin, out)
		}
	}
	// With the development switch the gateway starts (on the published
	// secrets, and says so).
	pub := freeAddr(t)
	cmd := exec.Command(dir + "/gateway")
	cmd.Env = append(env, secret.DevSwitch+"=1", "GATEWAY_ADDR="+pub, "REDIS_URL="+system(t).RedisURL)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dev gateway to serve", func() bool {
		res, err := http.Get("http://" + pub + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait() // the output is read once the process is gone
	if !strings.Contains(out.String(), "published development secrets") {
		t.Fatalf("the dev gateway did not warn:\n%s", out.String())
	}
}
