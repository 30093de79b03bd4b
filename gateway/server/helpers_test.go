package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"easychat/gateway/invoke"
	"easychat/gateway/server"
	"easychat/pkg/batch"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/route"
	"easychat/pkg/sign"
	"easychat/pkg/token"

	"github.com/alicebob/miniredis/v2"
	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
)

// wait bounds every blocking step so a broken test fails instead of hanging.
const wait = 5 * time.Second

var runID = randHex(4)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uid makes user ids unique per run, so tests can share a real Redis.
func uid(name string) string { return name + "-" + runID }

func testLogger() *slog.Logger {
	if os.Getenv("GATEWAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newRegistry is a route registry on real Redis protocol: the server at
// REDIS_URL when set, else a fresh miniredis.
func newRegistry(t *testing.T) route.Registry {
	t.Helper()
	var rdb *redis.Client
	if u := os.Getenv("REDIS_URL"); u != "" {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatalf("REDIS_URL: %v", err)
		}
		rdb = redis.NewClient(opt)
	} else {
		mr, err := miniredis.Run()
		if err != nil {
			t.Fatalf("starting miniredis: %v", err)
		}
		t.Cleanup(mr.Close)
		rdb = redis.NewClient(&redis.Options{Addr: mr.Addr()})
	}
	t.Cleanup(func() { rdb.Close() })
	return route.NewRedis(rdb, 30*time.Second)
}

// call is one request the fake FaaS gateway received, signature verified.
type call struct {
	Fn, User, FrameID string
	Body              []byte
}

// fakeFaaS stands in for the OpenFaaS gateway: it verifies pkg/sign and
// answers /function/chat like the chat function (or as a test says).
type fakeFaaS struct {
	srv    *httptest.Server
	signer *sign.Signer

	mu      sync.Mutex
	calls   []call
	batches []int // items of each batched request
	called  chan call
	// answer overrides the default behaviour when set; it returns false to
	// fall back to the default.
	answer func(w http.ResponseWriter, r *http.Request, c call) bool
}

func newFakeFaaS(t *testing.T) *fakeFaaS {
	f := &fakeFaaS{signer: sign.New(testKey), called: make(chan call, 1000)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeFaaS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	claim, err := f.signer.Verify(r.Context(), r.Header, r.URL.Path, body)
	user := claim.User
	if err != nil {
		http.Error(w, `{"error":"unsigned"}`, http.StatusUnauthorized)
		return
	}
	fn := strings.TrimPrefix(r.URL.Path, "/function/")
	if r.Header.Get(batch.Header) != "" {
		f.serveBatch(w, fn, user, body)
		return
	}
	c := call{Fn: fn, User: user, FrameID: r.Header.Get(invoke.HeaderFrameID), Body: body}
	f.record(c)
	f.mu.Lock()
	answer := f.answer
	f.mu.Unlock()
	if answer != nil && answer(w, r, c) {
		return
	}
	switch c.Fn {
	case "chat":
		res := chatResult(c)
		w.WriteHeader(res.Status)
		if res.Status != http.StatusOK {
			_ = json.NewEncoder(w).Encode(map[string]string{"error": res.Error})
			return
		}
		_, _ = w.Write(res.Data)
	default:
		_, _ = w.Write([]byte(`{"ok":true}`))
	}
}

// serveBatch answers a batch (package pkg/batch) as the chat function does:
// each item as its own call.
func (f *fakeFaaS) serveBatch(w http.ResponseWriter, fn, user string, body []byte) {
	var items []batch.Item
	if err := json.Unmarshal(body, &items); err != nil || user != "" || fn != "chat" {
		http.Error(w, `{"error":"bad batch"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.batches = append(f.batches, len(items))
	f.mu.Unlock()
	out := make([]batch.Result, len(items))
	for i, it := range items {
		c := call{Fn: fn, User: it.User, FrameID: it.FrameID, Body: it.Data}
		f.record(c)
		out[i] = chatResult(c)
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (f *fakeFaaS) record(c call) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	f.called <- c
}

// chatResult is the chat function's answer to c.
func chatResult(c call) batch.Result {
	var ch frame.Chat
	if err := json.Unmarshal(c.Body, &ch); err != nil {
		return batch.Result{Status: http.StatusBadRequest, Error: "bad json"}
	}
	conv, err := ch.Validate(c.User)
	if err != nil {
		return batch.Result{Status: http.StatusBadRequest, Error: err.Error()}
	}
	b, _ := json.Marshal(frame.ChatAck{MsgID: event.MsgID(c.User, conv, c.FrameID, ch.Msg.Content), ConversationID: conv})
	return batch.Result{Status: http.StatusOK, Data: b}
}

func (f *fakeFaaS) setAnswer(a func(w http.ResponseWriter, r *http.Request, c call) bool) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

func (f *fakeFaaS) callsSnapshot() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// gw is a running gateway under test.
type gw struct {
	*server.Server
	cancel context.CancelFunc
	done   chan error
}

// Keys of the gateways under test.
const (
	testKey = "gateway-test-internal-key"
	testJWT = "gateway-test-jwt-secret"
)

func testConfig(faasURL string) server.Config {
	cfg := server.DefaultConfig()
	cfg.JWTSecret, cfg.InternalKey = testJWT, testKey
	cfg.Addr = "127.0.0.1:0"
	cfg.InternalAddr = "127.0.0.1:0"
	cfg.FaasURL = faasURL
	cfg.RouteTTL = 3 * time.Second
	cfg.CallTimeout = 2 * time.Second
	cfg.DrainTimeout = 3 * time.Second
	cfg.AckResend = 50 * time.Millisecond
	// One request per chat frame, so tests can shape each call's answer
	// (setAnswer); TestChatBatched turns batching on.
	cfg.ChatBatch = 1
	return cfg
}

func startGateway(t *testing.T, reg route.Registry, cfg server.Config) *gw {
	t.Helper()
	s, err := server.New(cfg, reg, testLogger())
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gw{Server: s, cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case <-time.After(wait):
		t.Fatal("gateway not ready")
	}
	t.Cleanup(func() { g.stop(t) })
	return g
}

// stop cancels Run and waits for the drain (idempotent).
func (g *gw) stop(t *testing.T) error {
	t.Helper()
	g.cancel()
	select {
	case err, ok := <-g.done:
		if ok {
			close(g.done)
		}
		return err
	case <-time.After(4 * wait):
		t.Fatal("gateway did not drain")
		return nil
	}
}

func (g *gw) wsURL() string { return "ws://" + g.Addr() + g.Config().Path }

var issuer = token.New(testJWT, time.Hour)

func tok(t *testing.T, user string) string {
	t.Helper()
	s, err := issuer.Issue(user)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dial connects user with a bearer header.
func (g *gw) dial(t *testing.T, user string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(g.wsURL(), http.Header{"Authorization": {"Bearer " + tok(t, user)}})
	if err != nil {
		t.Fatalf("dial as %s: %v (%s)", user, err, status(resp))
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func status(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + ": " + strings.TrimSpace(string(b))
}

func send(t *testing.T, ws *websocket.Conn, v any) {
	t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func read(t *testing.T, ws *websocket.Conn) frame.Frame {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f frame.Frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return f
}

func readType(t *testing.T, ws *websocket.Conn, want frame.Type) frame.Frame {
	t.Helper()
	f := read(t, ws)
	if f.FrameType != want {
		t.Fatalf("got frame %+v (data %s), want frameType %d", f, f.Data, want)
	}
	return f
}

func readErr(t *testing.T, ws *websocket.Conn, id string) string {
	t.Helper()
	f := readType(t, ws, frame.Error)
	if f.ID != id {
		t.Fatalf("error frame id %q, want %q (errMsg %q)", f.ID, id, f.ErrMsg)
	}
	return f.ErrMsg
}

func chatFrame(id, recv, content string) frame.Frame {
	data, _ := json.Marshal(frame.Chat{ChatType: frame.SingleChat, RecvID: recv, Msg: frame.Msg{Content: content}})
	return frame.Frame{FrameType: frame.Data, ID: id, Method: frame.MethodChat, FormID: "mallory", Data: data}
}

// ping checks the socket still answers.
func ping(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	send(t, ws, frame.Frame{FrameType: frame.Ping, ID: "p"})
	readType(t, ws, frame.Ping)
}

// eventually polls cond until it holds or the wait runs out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func online(t *testing.T, reg route.Registry, user string) bool {
	t.Helper()
	m, err := reg.Online(context.Background(), []string{user})
	if err != nil {
		t.Fatalf("Online: %v", err)
	}
	return m[user]
}

// metric reads a counter or gauge (no labels, or the first series) of g.
func metric(t *testing.T, g *gw, name string) float64 {
	t.Helper()
	mfs, err := g.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += value(m)
		}
		return sum
	}
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// push posts a batch to g's internal endpoint, signed with key ("" = unsigned).
func push(t *testing.T, g *gw, key string, p event.Push) (int, server.PushResult) {
	t.Helper()
	body, _ := json.Marshal(p)
	req, _ := http.NewRequest(http.MethodPost, g.PushURL()+server.PushPath, bytes.NewReader(body))
	if key != "" {
		sign.New(key).Sign(req, server.PushPath, sign.Component, body)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	defer resp.Body.Close()
	var res server.PushResult
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatalf("push answer: %v", err)
		}
	}
	return resp.StatusCode, res
}

func pushFrame(from, content string) frame.Frame {
	data, _ := json.Marshal(frame.Push{ConversationID: "c", ChatType: frame.SingleChat, SendID: from, Seq: 1, Msg: frame.Msg{MsgID: "m", Content: content}})
	return frame.Frame{FrameType: frame.Data, Method: frame.MethodPush, FormID: from, Data: data}
}

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

func withQuery(u, k, v string) string { return u + "?" + k + "=" + url.QueryEscape(v) }
