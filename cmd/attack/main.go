// Command attack runs the attacks of the security review (issue 10) against
// a running Easy Chat and prints what each one achieved, with numbers: a
// check of a deployment's defences, and the measurements behind README's
// Security section. It needs the system's secrets (to mint tokens and sign a
// push as a component would) and its Kafka, so it is meant for a system you
// run, such as `make run`:
//
//	go run ./cmd/attack                       # every attack against make run's defaults
//	go run ./cmd/attack -only stall,flood     # some of them
//
// The stall attack leaves records in Kafka that can never be stored; on a
// system without the defences they hold up whole partitions for minutes.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/segmentio/kafka-go"

	"easychat/pkg/sign"
	ecToken "easychat/pkg/token"
)

var (
	gw       = flag.String("gw", "127.0.0.1:10090", "gateway public address")
	internal = flag.String("internal", "127.0.0.1:10091", "gateway internal address")
	brokers  = flag.String("kafka", "127.0.0.1:9092", "kafka")
	state    = flag.String("state", ".state", "state dir of the dev stack, holding the secrets jwt-secret and internal-key")
	only     = flag.String("only", "", "attacks to run (comma-separated); all by default")
)

func secret(name string) string {
	b, err := os.ReadFile(*state + "/" + name)
	if err != nil {
		fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func token(user string) string {
	s, err := ecToken.New(secret("jwt-secret"), time.Hour).Issue(user)
	if err != nil {
		fatal(err)
	}
	return s
}

func rid() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type frame struct {
	FrameType int             `json:"frameType"`
	ID        string          `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	FormID    string          `json:"formId,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	ErrMsg    string          `json:"errMsg,omitempty"`
	at        time.Time
}

type client struct {
	ws     *websocket.Conn
	frames chan frame
	mu     sync.Mutex
}

func dial(user string) (*client, error) {
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+*gw+"/ws?token="+token(user), nil)
	if err != nil {
		return nil, err
	}
	c := &client{ws: ws, frames: make(chan frame, 100000)}
	go func() {
		defer close(c.frames)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var f frame
			_ = json.Unmarshal(b, &f)
			f.at = time.Now()
			c.frames <- f
		}
	}()
	return c, nil
}

func (c *client) send(v any) error {
	b, _ := json.Marshal(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *client) chat(id string, chatType int, recv, content string, extra map[string]any) error {
	data := map[string]any{"chatType": chatType, "recvId": recv, "msg": map[string]any{"mType": 0, "content": content}}
	for k, v := range extra {
		data[k] = v
	}
	return c.send(map[string]any{"frameType": 0, "id": id, "method": "conversation.chat", "data": data})
}

func (c *client) push(wait time.Duration) (frame, bool) {
	t := time.After(wait)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return f, false
			}
			if f.Method == "push" {
				return f, true
			}
		case <-t:
			return frame{}, false
		}
	}
}

func api(fn, tok string, body any, hdr map[string]string) (int, string) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+*gw+"/api/"+fn, bytes.NewReader(b))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(out))
}

func main() {
	flag.Parse()
	attacks := []struct {
		name string
		run  func()
	}{
		{"stall", stall}, {"slowhttp", slowHTTP}, {"flood", flood}, {"bruteforce", bruteForce},
		{"padded", padded}, {"replay", replay}, {"sockets", sockets}, {"groups", groups},
	}
	for _, a := range attacks {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), a.name) {
			continue
		}
		fmt.Printf("== %s\n", a.name)
		a.run()
	}
}

// stall: the review's finding 1. First through the API (a member id that
// forges a membership key), then, whatever the API said, 24 records that can
// never be stored put straight into Kafka; then 16 pairs chat.
func stall() {
	run := rid()
	mallory := "mallory-" + run
	tm := token(mallory)
	code, out := api("group", tm, map[string]any{"action": "create", "name": "x", "members": []string{"x1#" + mallory}}, nil)
	fmt.Printf("  create group with member x1#mallory: %d %s\n", code, clip(out))
	var g struct {
		GroupID string `json:"groupId"`
	}
	_ = json.Unmarshal([]byte(out), &g)
	accepted := 0
	if code == 200 {
		cm, err := dial(mallory)
		if err != nil {
			fatal(err)
		}
		for i := range 24 {
			_ = cm.chat(fmt.Sprintf("st%d", i), 1, g.GroupID+"#x1", "stall", nil)
		}
		deadline := time.After(5 * time.Second)
	acks:
		for range 24 {
			select {
			case f := <-cm.frames:
				if f.FrameType == 2 {
					accepted++
				}
			case <-deadline:
				break acks
			}
		}
		fmt.Printf("  24 chat frames to %s#x1: %d acked\n", g.GroupID, accepted)
	}
	{
		// What such an attack would have left in Kafka, on every partition: records whose group
		// does not exist, spread over the partitions.
		w := &kafka.Writer{Addr: kafka.TCP(*brokers), Topic: "msg-chat-transfer", Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
		var msgs []kafka.Message
		for i := range 24 {
			gid := fmt.Sprintf("g-%s-%d", run, i)
			mid := fmt.Sprintf("%032x", time.Now().UnixNano()+int64(i))
			b, _ := json.Marshal(map[string]any{"msgId": mid, "conversationId": gid, "chatType": 1, "sendId": "mallory",
				"recvId": gid, "sendTime": time.Now().UnixMilli(), "msg": map[string]any{"mType": 0, "content": "stall"}})
			msgs = append(msgs, kafka.Message{Key: []byte(gid), Value: b})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := w.WriteMessages(ctx, msgs...)
		cancel()
		if err != nil {
			fatal(err)
		}
		w.Close()
		fmt.Println("  24 records for groups that do not exist written to msg-chat-transfer")
	}
	pairs(16, "stall")
}

// pairs opens n pairs, each sends one message, and reports delivery times.
func pairs(n int, tag string) {
	type pair struct {
		a, b       *client
		aID, bID   string
		sent, recv time.Time
	}
	ps := make([]*pair, n)
	for i := range ps {
		a, b := fmt.Sprintf("pa%d-%s", i, rid()), fmt.Sprintf("pb%d-%s", i, rid())
		ca, err := dial(a)
		if err != nil {
			fatal(err)
		}
		cb, err := dial(b)
		if err != nil {
			fatal(err)
		}
		ps[i] = &pair{a: ca, b: cb, aID: a, bID: b}
	}
	time.Sleep(300 * time.Millisecond) // routes registered
	for i, p := range ps {
		p.sent = time.Now()
		_ = p.a.chat(fmt.Sprintf("%s-%d", tag, i), 2, p.bID, "hello", nil)
	}
	var lat []time.Duration
	lost := 0
	deadline := time.Now().Add(120 * time.Second)
	for _, p := range ps {
		if f, ok := p.b.push(time.Until(deadline)); ok {
			lat = append(lat, f.at.Sub(p.sent))
		} else {
			lost++
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		fmt.Printf("  %d pairs: first delivered after %v, last after %v; %d not delivered within 120 s\n",
			n, lat[0].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), lost)
	} else {
		fmt.Printf("  %d pairs: none delivered within 90 s\n", n)
	}
}

// slowHTTP: 300 connections send the headers of a 1 MB POST and one byte.
func slowHTTP() {
	const n = 300
	start := time.Now()
	var conns []net.Conn
	refused := 0
	for range n {
		c, err := net.Dial("tcp", *gw)
		if err != nil {
			refused++
			continue
		}
		fmt.Fprintf(c, "POST /api/user HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{")
		conns = append(conns, c)
	}
	closed := make([]time.Duration, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(45 * time.Second))
			_, err := io.Copy(io.Discard, bufio.NewReader(c))
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				closed[i] = -1 // still open at 45 s
				return
			}
			closed[i] = time.Since(start)
		})
	}
	wg.Wait()
	open := 0
	var at []time.Duration
	for i, d := range closed {
		conns[i].Close()
		if d < 0 {
			open++
		} else {
			at = append(at, d)
		}
	}
	slices.Sort(at)
	fmt.Printf("  %d connections (%d refused at dial): %d still open after 45 s", n, refused, open)
	if len(at) > 0 {
		fmt.Printf("; %d closed by the server, the first at %v, the last at %v", len(at), at[0].Round(time.Millisecond), at[len(at)-1].Round(time.Millisecond))
	}
	fmt.Println()
}

// flood: one socket sends 3000 chat frames as fast as it can while a pair
// chats at 20 messages a second.
func flood() {
	run := rid()
	cf, err := dial("flood-" + run)
	if err != nil {
		fatal(err)
	}
	ca, _ := dial("alice-" + run)
	cb, _ := dial("bob-" + run)
	time.Sleep(300 * time.Millisecond)
	var sentFlood int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 3000 {
			if cf.chat(fmt.Sprintf("fl%d", i), 2, "sink-"+run, "spam", nil) != nil {
				return
			}
			sentFlood++
		}
	}()
	const n = 40
	sent := make([]time.Time, n)
	lat := make([]time.Duration, 0, n)
	recvd := make(chan struct{})
	go func() {
		defer close(recvd)
		for len(lat) < n {
			f, ok := cb.push(30 * time.Second)
			if !ok {
				return
			}
			var d struct {
				Msg struct {
					Content string `json:"content"`
				} `json:"msg"`
			}
			_ = json.Unmarshal(f.Data, &d)
			i, _ := strconv.Atoi(strings.TrimPrefix(d.Msg.Content, "ab"))
			lat = append(lat, f.at.Sub(sent[i]))
		}
	}()
	for i := range n {
		sent[i] = time.Now()
		_ = ca.chat(fmt.Sprintf("ab%d", i), 2, "bob-"+run, fmt.Sprintf("ab%d", i), nil)
		time.Sleep(50 * time.Millisecond)
	}
	<-recvd
	<-done
	acks, limited, other := 0, 0, 0
	closed := false
	t := time.After(20 * time.Second)
count:
	for {
		select {
		case f, ok := <-cf.frames:
			if !ok {
				closed = true
				break count
			}
			switch {
			case f.FrameType == 2:
				acks++
			case f.FrameType == 9 && strings.Contains(f.ErrMsg, "rate limit"):
				limited++
			case f.FrameType == 9:
				other++
			}
		case <-t:
			break count
		}
	}
	slices.Sort(lat)
	fmt.Printf("  flooding socket wrote %d frames: %d acked, %d refused for the rate, %d other errors, closed by the gateway: %v\n",
		sentFlood, acks, limited, other, closed)
	if len(lat) == n {
		fmt.Printf("  alice→bob meanwhile: p50 %v, p99 %v\n", lat[n/2].Round(time.Millisecond), lat[n*99/100].Round(time.Millisecond))
	} else {
		fmt.Printf("  alice→bob meanwhile: %d of %d delivered\n", len(lat), n)
	}
}

// bruteForce: 30 wrong passwords for one account, as fast as answered.
func bruteForce() {
	user := "victim-" + rid()
	code, out := api("user", "", map[string]any{"action": "register", "userId": user, "password": "right-password"}, nil)
	if code != 200 {
		fmt.Printf("  register: %d %s\n", code, clip(out))
		return
	}
	counts := map[int]int{}
	start := time.Now()
	for i := range 30 {
		code, _ := api("user", "", map[string]any{"action": "login", "userId": user, "password": fmt.Sprintf("guess-%d", i)}, nil)
		counts[code]++
	}
	fmt.Printf("  30 wrong passwords for one user in %v: %v (status: count)\n", time.Since(start).Round(time.Millisecond), counts)
}

// padded: 60 sockets at once, every other frame padded to 60 KiB with a
// field the chat function does not read.
func padded() {
	run := rid()
	pad := strings.Repeat("p", 62<<10)
	const n = 200
	cs := make([]*client, n)
	for i := range cs {
		c, err := dial(fmt.Sprintf("pad%d-%s", i, run))
		if err != nil {
			fatal(err)
		}
		cs[i] = c
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			extra := map[string]any{}
			if i%4 != 0 {
				extra["pad"] = pad
			}
			_ = c.chat("x", 2, "peer-"+run, "small", extra)
		})
	}
	wg.Wait()
	acks, errs := 0, map[string]int{}
	smallAcks := 0
	for i, c := range cs {
		t := time.After(15 * time.Second)
	wait:
		for {
			select {
			case f := <-c.frames:
				if f.FrameType == 2 {
					acks++
					if i%4 == 0 {
						smallAcks++
					}
					break wait
				}
				if f.FrameType == 9 {
					errs[clip(f.ErrMsg)]++
					break wait
				}
			case <-t:
				errs["no answer"]++
				break wait
			}
		}
	}
	fmt.Printf("  %d chat frames (3 in 4 padded to 62 KiB) from %d sockets at once: %d acked (%d of the %d small ones), errors %v\n", n, n, acks, smallAcks, n/4, errs)
}

// replay: a push signed with the internal key, sent twice.
func replay() {
	key := secret("internal-key")
	body := []byte(`{"items":[{"users":["nobody"],"frame":{"frameType":0,"method":"notice","data":{"text":"once"}}}]}`)
	req := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://"+*internal+"/internal/push", bytes.NewReader(body))
		return r
	}
	r := req()
	sign.New(key).Sign(r, "/internal/push", sign.Component, body)
	var codes []int
	for range 2 {
		r2 := req()
		r2.Header = r.Header.Clone()
		res, err := http.DefaultClient.Do(r2)
		if err != nil {
			fatal(err)
		}
		res.Body.Close()
		codes = append(codes, res.StatusCode)
	}
	fmt.Printf("  a signed push sent twice: %v\n", codes)
}

// sockets: one user opens 50 sockets.
func sockets() {
	user := "many-" + rid()
	ok, refused := 0, 0
	for range 50 {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+*gw+"/ws?token="+token(user), nil)
		if err != nil {
			refused++
			continue
		}
		ok++
		defer ws.Close()
	}
	fmt.Printf("  one user, 50 sockets: %d open, %d refused\n", ok, refused)
}

// groups: one user creates groups as fast as answered, 60 of them.
func groups() {
	tm := token("maker-" + rid())
	counts := map[int]int{}
	for i := range 60 {
		code, _ := api("group", tm, map[string]any{"action": "create", "name": fmt.Sprintf("g%d", i)}, nil)
		counts[code]++
	}
	fmt.Printf("  60 groups created by one user: %v (status: count)\n", counts)
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "attack:", err)
	os.Exit(1)
}
