package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"easychat/devstack/stack"
	"easychat/gateway/server"
	"easychat/pkg/frame"
	"easychat/pkg/ident"
	"easychat/pkg/sign"
	"easychat/pkg/store"
	"easychat/pkg/token"
)

// One whole system per test binary (the FaaS runtime serves the process-wide
// OpenFaaS router), started on first use. Real services are used where
// KAFKA_BROKERS, MONGO_URI, FERRETDB_POSTGRESQL_URL or REDIS_URL say so.
var (
	sysOnce sync.Once
	sys     *stack.Stack
	sysErr  error
	sysDir  string
)

func system(t testing.TB) *stack.Stack {
	t.Helper()
	sysOnce.Do(func() {
		sysDir, sysErr = os.MkdirTemp("", "easychat-e2e-")
		if sysErr != nil {
			return
		}
		level := slog.LevelWarn
		if os.Getenv("E2E_LOG") != "" {
			level = slog.LevelDebug
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		slog.SetDefault(logger)
		slog.SetLogLoggerLevel(slog.LevelDebug)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		sys, sysErr = stack.Start(ctx, stack.Config{
			RepoRoot:     repoRoot(t),
			StateDir:     sysDir,
			KafkaBrokers: os.Getenv("KAFKA_BROKERS"),
			MongoURI:     os.Getenv("MONGO_URI"),
			FerretPGURL:  os.Getenv("FERRETDB_POSTGRESQL_URL"),
			RedisURL:     os.Getenv("REDIS_URL"),
			S3Endpoint:   os.Getenv("S3_ENDPOINT"),
			S3AccessKey:  os.Getenv("S3_ACCESS_KEY"),
			S3SecretKey:  os.Getenv("S3_SECRET_KEY"),
			S3Bucket:     os.Getenv("S3_BUCKET"),
			// Uploads no message uses are swept within seconds (the
			// orphan test waits for it; others send at once). A user's
			// changes of messages are limited low enough for the hostile
			// suite to reach the limit quickly.
			DeployEnv:       []string{"FILE_ORPHAN_TTL=4s", "FILE_SWEEP_EVERY=1s", "CHANGE_LIMIT=30/1m"},
			KafkaPartitions: 4,
			RouteTTL:        3 * time.Second,
			ConnectorBatch:  16,
			Logger:          logger,
			// The shared gateway carries stress tests (a thousand frames
			// from one socket at once, tight polling of the API); the
			// hostile-client suite starts gateways with the default limits.
			Gateway: func(c *server.Config) { c.FrameRate, c.APIRate = 0, 0 },
		})
	})
	if sysErr != nil {
		t.Fatalf("starting the system: %v", sysErr)
	}
	return sys
}

// uid returns a user id unique to this test run, so tests never share state:
// name (cut to 12 characters) and random hex, within the 32 of a user id.
func uid(t *testing.T, name string) string {
	t.Helper()
	var b [5]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("%s-%x", name[:min(len(name), 12)], b)
	if !ident.IsUser(id) {
		t.Fatalf("uid(%q) = %q is not a user id", name, id)
	}
	return id
}

// gid returns a fresh group id.
func gid() string { return ident.NewGroup() }

func tokenFor(t *testing.T, s *stack.Stack, user string) string {
	tok, err := token.New(s.JWTSecret(), time.Hour).Issue(user)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// client is a websocket client of the gateway.
type client struct {
	t      *testing.T
	user   string
	ws     *websocket.Conn
	frames chan frame.Frame
	mu     sync.Mutex
}

func dial(t *testing.T, s *stack.Stack, gw *stack.Gateway, user string) *client {
	t.Helper()
	return dialURL(t, gw.URL()+"?token="+tokenFor(t, s, user), user)
}

// dialURL connects to a websocket URL that carries its token.
func dialURL(t *testing.T, url, user string) *client {
	t.Helper()
	ws, res, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial as %s: %v (%v)", user, err, res)
	}
	c := &client{t: t, user: user, ws: ws, frames: make(chan frame.Frame, 4096)}
	go func() {
		defer close(c.frames)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var f frame.Frame
			if err := json.Unmarshal(b, &f); err != nil {
				c.t.Errorf("%s got a non-JSON frame %q", user, b)
				return
			}
			c.frames <- f
		}
	}()
	t.Cleanup(func() { _ = ws.Close() })
	return c
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("%s send: %v", c.user, err)
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

// chat sends a conversation.chat frame with id frameID.
func (c *client) chat(frameID string, chatType int, recv, content string) {
	c.t.Helper()
	c.send(map[string]any{
		"frameType": 0, "id": frameID, "method": frame.MethodChat,
		"data": map[string]any{"chatType": chatType, "recvId": recv, "msg": map[string]any{"mType": 0, "content": content}},
	})
}

// next returns the next frame accepted by keep, failing after wait.
func (c *client) next(wait time.Duration, keep func(frame.Frame) bool) frame.Frame {
	c.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("%s: connection closed while waiting", c.user)
			}
			if keep == nil || keep(f) {
				return f
			}
		case <-deadline:
			c.t.Fatalf("%s: no matching frame within %v", c.user, wait)
		}
	}
}

// replies collects the next n non-push frames by frame id.
func (c *client) replies(wait time.Duration, n int) map[string]frame.Frame {
	c.t.Helper()
	out := make(map[string]frame.Frame, n)
	for len(out) < n {
		f := c.next(wait, func(f frame.Frame) bool { return !isPush(f) })
		out[f.ID] = f
	}
	return out
}

func isPush(f frame.Frame) bool { return f.FrameType == frame.Data && f.Method == frame.MethodPush }

func byID(id string) func(frame.Frame) bool {
	return func(f frame.Frame) bool { return f.ID == id && f.Method != frame.MethodPush }
}

func pushData(t *testing.T, f frame.Frame) frame.Push {
	t.Helper()
	var p frame.Push
	if err := json.Unmarshal(f.Data, &p); err != nil {
		t.Fatalf("push data %s: %v", f.Data, err)
	}
	return p
}

// ackData returns the chat ack of f, failing on an error frame.
func ackData(t *testing.T, f frame.Frame) frame.ChatAck {
	t.Helper()
	if f.FrameType != frame.Ack {
		t.Fatalf("want an ack frame, got %+v", f)
	}
	var a frame.ChatAck
	if err := json.Unmarshal(f.Data, &a); err != nil || a.MsgID == "" {
		t.Fatalf("ack data %s: %v", f.Data, err)
	}
	return a
}

func httpPost(t *testing.T, url string, body string, h http.Header) (int, string) {
	t.Helper()
	res, b := httpDo(t, http.MethodPost, url, strings.NewReader(body), h)
	return res.StatusCode, string(b)
}

// httpDo makes one request and returns the answer with its body read.
func httpDo(t *testing.T, method, url string, body io.Reader, h http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func otherKeyToken(t *testing.T) string {
	tok, err := token.New("some-other-secret", time.Hour).Issue("alice")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// openSystemStore opens the system's own Mongo database.
func openSystemStore(t *testing.T, ctx context.Context) *store.Store {
	t.Helper()
	st, err := store.Open(ctx, system(t).MongoURI, "easychat")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// signed returns the headers of a call to path signed with key for claim,
// binding the call headers extra (set before signing, as the gateway does).
func signed(key, path string, c sign.Claim, body string, extra http.Header) http.Header {
	req, _ := http.NewRequest(http.MethodPost, "http://x"+path, nil)
	for k, v := range extra {
		req.Header[k] = v
	}
	sign.New(key).Sign(req, path, c, []byte(body))
	return req.Header
}

func addHeader(h http.Header, k, v string) http.Header {
	h.Set(k, v)
	return h
}
