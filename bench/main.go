// Command bench drives websocket clients through the real stack (gateway →
// chat → Kafka → connector → transfer → Mongo → push → gateway) and reports
// end-to-end latency and throughput of single chat. It is a benchmark, not a
// test: run it by hand (`make bench BENCH_ARGS="-rate 500"`).
//
// By default it starts the whole system in-process with embedded defaults in a
// temporary state dir; KAFKA_BROKERS, MONGO_URI, REDIS_URL and
// FERRETDB_POSTGRESQL_URL select real services as for the dev stack.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"easychat/devstack/stack"
	"easychat/pkg/frame"
	"easychat/pkg/token"
)

func main() {
	pairs := flag.Int("pairs", 50, "sender→receiver pairs (2 sockets each)")
	rate := flag.Float64("rate", 100, "messages per second, all senders together")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	warm := flag.Int("warmup", 20, "messages sent (and awaited) before measuring")
	drain := flag.Duration("drain", 30*time.Second, "how long to wait for the last deliveries")
	batch := flag.Int("batch", 32, "records per transfer invocation (connector BATCH_MAX)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	slog.SetDefault(log)
	slog.SetLogLoggerLevel(slog.LevelDebug) // per-call logs of faas-provider and connector-sdk
	dir, err := os.MkdirTemp("", "easychat-bench-")
	check(err)
	defer os.RemoveAll(dir)
	root, err := os.Getwd()
	check(err)

	ctx := context.Background()
	s, err := stack.Start(ctx, stack.Config{
		RepoRoot: root, StateDir: dir,
		KafkaBrokers: os.Getenv("KAFKA_BROKERS"), MongoURI: os.Getenv("MONGO_URI"),
		FerretPGURL: os.Getenv("FERRETDB_POSTGRESQL_URL"), RedisURL: os.Getenv("REDIS_URL"),
		ConnectorBatch: *batch,
		Logger:         log,
	})
	check(err)
	defer s.Close()
	gw := s.Gateways()[0]
	iss := token.New(s.JWTSecret(), time.Hour)

	type pair struct {
		from, to string
		snd      *conn
	}
	r := &recorder{sent: map[string]time.Time{}}
	ps := make([]pair, *pairs)
	run := strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	for i := range ps {
		from, to := fmt.Sprintf("s%d-%s", i, run), fmt.Sprintf("r%d-%s", i, run)
		snd := mustDial(gw.URL(), iss, from, nil)
		mustDial(gw.URL(), iss, to, r)
		ps[i] = pair{from, to, snd}
	}

	send := func(p pair, id string) {
		r.mark(id)
		p.snd.chat(id, p.to, id)
	}
	// Warm-up: bring every function to a ready replica and fill caches.
	for i := 0; i < *warm; i++ {
		send(ps[i%len(ps)], fmt.Sprintf("w%d", i))
	}
	r.waitFor(*warm, *drain)
	r.reset()

	fmt.Printf("batch=%d cores=%d GOMAXPROCS=%d pairs=%d target_rate=%.0f/s duration=%v kafka=%s mongo=%s redis=%s\n",
		*batch, runtime.NumCPU(), runtime.GOMAXPROCS(0), *pairs, *rate, *dur, kind(os.Getenv("KAFKA_BROKERS"), "embedded kfake"),
		kind(os.Getenv("MONGO_URI"), "embedded FerretDB/"+kind(os.Getenv("FERRETDB_POSTGRESQL_URL"), "SQLite")),
		kind(os.Getenv("REDIS_URL"), "embedded"))

	interval := time.Duration(float64(time.Second) / *rate)
	start := time.Now()
	n := 0
	for time.Since(start) < *dur {
		next := start.Add(time.Duration(n) * interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		send(ps[n%len(ps)], fmt.Sprintf("m%d", n))
		n++
	}
	sendSecs := time.Since(start).Seconds()
	got := r.waitFor(n, *drain)
	total := time.Since(start).Seconds()

	lat := r.latencies()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("sent=%d (%.0f msg/s offered) delivered=%d lost=%d duplicates=%d delivered_rate=%.0f msg/s\n",
		n, float64(n)/sendSecs, got, n-got, r.dups.Load(), float64(got)/total)
	fmt.Printf("latency p50=%v p99=%v max=%v\n", pct(0.50).Round(10*time.Microsecond),
		pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond))
	if got != n {
		os.Exit(1)
	}
}

// recorder matches pushes to send times by the content (the frame id).
type recorder struct {
	mu   sync.Mutex
	sent map[string]time.Time
	lat  []time.Duration
	got  map[string]bool
	dups atomic.Int64
	cond *sync.Cond
}

func (r *recorder) mark(id string) {
	r.mu.Lock()
	r.sent[id] = time.Now()
	r.mu.Unlock()
}

func (r *recorder) received(content string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string]bool{}
	}
	t0, ok := r.sent[content]
	if !ok {
		return
	}
	if r.got[content] {
		r.dups.Add(1)
		return
	}
	r.got[content] = true
	r.lat = append(r.lat, now.Sub(t0))
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lat)
}

func (r *recorder) waitFor(n int, max time.Duration) int {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && r.count() < n {
		time.Sleep(5 * time.Millisecond)
	}
	return r.count()
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.sent, r.got, r.lat = map[string]time.Time{}, map[string]bool{}, nil
	r.mu.Unlock()
	r.dups.Store(0)
}

func (r *recorder) latencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.lat...)
}

type conn struct {
	mu sync.Mutex
	ws *websocket.Conn
}

func mustDial(url string, iss *token.Issuer, user string, r *recorder) *conn {
	tok, err := iss.Issue(user)
	check(err)
	ws, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + tok}})
	check(err)
	c := &conn{ws: ws}
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if r == nil {
				continue
			}
			var f frame.Frame
			if json.Unmarshal(b, &f) != nil || f.Method != frame.MethodPush {
				continue
			}
			var p frame.Push
			if json.Unmarshal(f.Data, &p) == nil {
				r.received(p.Msg.Content)
			}
		}
	}()
	return c
}

func (c *conn) chat(id, to, content string) {
	b, _ := json.Marshal(map[string]any{"frameType": 0, "id": id, "method": frame.MethodChat,
		"data": map[string]any{"chatType": frame.SingleChat, "recvId": to, "msg": map[string]any{"mType": 0, "content": content}}})
	c.mu.Lock()
	defer c.mu.Unlock()
	check(c.ws.WriteMessage(websocket.TextMessage, b))
}

func kind(v, def string) string {
	if v == "" {
		return def
	}
	return "external:" + strings.SplitN(v, "@", 2)[len(strings.SplitN(v, "@", 2))-1]
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
}
