package consume_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"easychat/connector/consume"
	"easychat/pkg/event"
	"easychat/pkg/sign"
)

const (
	testKey      = "connector-test-key"
	gwUser       = "admin"
	gwPassword   = "s3cret"
	testPartsNum = 3
)

func TestMain(m *testing.M) {
	// The connector-sdk logs every invocation through the standard logger.
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// startKafka runs an in-process Kafka (kfake) with the chat topics seeded.
func startKafka(t *testing.T, partitions int32, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(partitions, topics...),
		kfake.SeedTopics(1, event.TopicDead),
		kfake.AllowAutoTopicCreation(),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// payload is what the tests produce: a key and its per-key sequence number.
type payload struct {
	Key    string `json:"key"`
	Seq    int    `json:"seq"`
	Poison bool   `json:"poison,omitempty"`
	Pad    string `json:"pad,omitempty"` // makes a record big
}

func produce(t *testing.T, brokers []string, topic string, msgs []payload) {
	t.Helper()
	w := &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		BatchTimeout:           2 * time.Millisecond,
		BatchSize:              1000,
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: true,
	}
	defer w.Close()
	km := make([]kafka.Message, len(msgs))
	for i, p := range msgs {
		b, _ := json.Marshal(p)
		km[i] = kafka.Message{Key: []byte(p.Key), Value: b}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, km...); err != nil {
		t.Fatalf("producing to %s: %v", topic, err)
	}
}

// sequence makes n messages over keys keys, seq counting per key.
func sequence(keys, n, from int) []payload {
	out := make([]payload, 0, n)
	next := map[string]int{}
	for i := range n {
		k := fmt.Sprintf("conv-%d", i%keys)
		next[k]++
		out = append(out, payload{Key: k, Seq: from + next[k]})
	}
	return out
}

// delivery is one call the fake gateway received.
type delivery struct {
	fn        string
	topic     string
	partition int
	offset    int64 // first offset
	last      int64 // last offset (== offset unless batched)
	batch     int   // X-Batch, 0 when absent
	items     []payload
	status    int
	conn      int       // which connector instance (tests set gateway.conn)
	size      int       // body bytes
	at        time.Time // when the call arrived
	answered  time.Time // when the fake function answered
}

type tp struct {
	topic     string
	partition int
}

// gateway plays the OpenFaaS gateway: /system/functions behind basic auth and
// /function/NAME verifying the pkg/sign headers like a real function does.
type gateway struct {
	t          *testing.T
	srv        *httptest.Server
	signer     *sign.Signer
	namespaces []string
	conn       atomic.Int64 // tag for deliveries (set between connector runs)

	rejected     atomic.Int64 // unsigned or badly signed calls
	authFailures atomic.Int64 // /system/* without credentials
	badHeaders   atomic.Int64 // missing X-Kafka-* or content type

	mu        sync.Mutex
	functions []types.FunctionStatus
	behave    func(d delivery) int // decides the status; nil: 200
	calls     []delivery
	acked     map[string]map[tp]map[int64]bool // function → partition → offsets answered 2xx
	failures  map[tp]map[int64]int             // failed attempts per offset
}

func newGateway(t *testing.T) *gateway {
	g := &gateway{t: t, signer: sign.New(testKey),
		acked: map[string]map[tp]map[int64]bool{}, failures: map[tp]map[int64]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /system/namespaces", g.system(func(w http.ResponseWriter) {
		json.NewEncoder(w).Encode(g.namespacesOrEmpty())
	}))
	mux.HandleFunc("GET /system/functions", g.system(func(w http.ResponseWriter) {
		g.mu.Lock()
		defer g.mu.Unlock()
		json.NewEncoder(w).Encode(append([]types.FunctionStatus{}, g.functions...))
	}))
	mux.HandleFunc("POST /function/{name}", g.invoke)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		g.srv.Close()
		if n := g.rejected.Load(); n != 0 {
			t.Errorf("fake gateway rejected %d unsigned or badly signed calls", n)
		}
		if n := g.authFailures.Load(); n != 0 {
			t.Errorf("fake gateway saw %d /system calls without valid basic auth", n)
		}
		if n := g.badHeaders.Load(); n != 0 {
			t.Errorf("fake gateway saw %d calls without the X-Kafka-* headers or JSON content type", n)
		}
	})
	return g
}

func (g *gateway) namespacesOrEmpty() []string {
	if g.namespaces == nil {
		return []string{}
	}
	return g.namespaces
}

func (g *gateway) system(h func(http.ResponseWriter)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != gwUser || p != gwPassword {
			g.authFailures.Add(1)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		h(w)
	}
}

// deploy subscribes function name to topic.
func (g *gateway) deploy(name, topic string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ann := map[string]string{"topic": topic}
	g.functions = append(g.functions, types.FunctionStatus{Name: name, Annotations: &ann, Replicas: 1})
}

func (g *gateway) setBehaviour(f func(d delivery) int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.behave = f
}

func (g *gateway) invoke(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The function's own name: the SDK appends ".namespace" when the
	// gateway lists namespaces, and the function verifies with its own name.
	name, _, _ := strings.Cut(r.PathValue("name"), ".")
	if c, err := g.signer.Verify(r.Context(), r.Header, "/function/"+name, body); err != nil || !c.Component() {
		g.rejected.Add(1)
		http.Error(w, fmt.Sprintf("unauthorized: %v (component call: %v)", err, c.Component()), http.StatusUnauthorized)
		return
	}
	d := delivery{fn: name, topic: r.Header.Get(consume.HeaderTopic), conn: int(g.conn.Load()), size: len(body), at: at}
	p, err1 := strconv.Atoi(r.Header.Get(consume.HeaderPartition))
	off, err2 := strconv.ParseInt(r.Header.Get(consume.HeaderOffset), 10, 64)
	if err1 != nil || err2 != nil || d.topic == "" || r.Header.Get("Content-Type") != "application/json" {
		g.badHeaders.Add(1)
		http.Error(w, "missing kafka headers", http.StatusBadRequest)
		return
	}
	d.partition, d.offset, d.last = p, off, off
	if v := r.Header.Get(consume.HeaderLastOffset); v != "" {
		d.last, _ = strconv.ParseInt(v, 10, 64)
	}
	if v := r.Header.Get(consume.HeaderBatch); v != "" {
		d.batch, _ = strconv.Atoi(v)
		if err := json.Unmarshal(body, &d.items); err != nil || len(d.items) != d.batch {
			g.badHeaders.Add(1)
			http.Error(w, "bad batch", http.StatusBadRequest)
			return
		}
	} else {
		var one payload
		if err := json.Unmarshal(body, &one); err != nil {
			g.badHeaders.Add(1)
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if key := r.Header.Get(consume.HeaderKey); key != one.Key {
			g.badHeaders.Add(1)
		}
		d.items = []payload{one}
	}

	g.mu.Lock()
	d.status = http.StatusOK
	if g.behave != nil {
		d.status = g.behave(d)
	}
	d.answered = time.Now()
	k := tp{d.topic, d.partition}
	if d.status/100 == 2 {
		if g.acked[d.fn] == nil {
			g.acked[d.fn] = map[tp]map[int64]bool{}
		}
		if g.acked[d.fn][k] == nil {
			g.acked[d.fn][k] = map[int64]bool{}
		}
		for o := d.offset; o <= d.last; o++ {
			g.acked[d.fn][k][o] = true
		}
	} else {
		if g.failures[k] == nil {
			g.failures[k] = map[int64]int{}
		}
		g.failures[k][d.offset]++
	}
	g.calls = append(g.calls, d)
	g.mu.Unlock()

	w.WriteHeader(d.status)
	fmt.Fprintf(w, "status %d\n", d.status)
}

// snapshot returns a copy of the calls so far.
func (g *gateway) snapshot() []delivery {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]delivery(nil), g.calls...)
}

// okItems returns, per function, the payloads answered 2xx in arrival order.
func (g *gateway) okItems(fn string) []payload {
	var out []payload
	for _, d := range g.snapshot() {
		if d.fn == fn && d.status/100 == 2 {
			out = append(out, d.items...)
		}
	}
	return out
}

// settled reports whether every offset below committed was answered 2xx by
// all fns or failed at least deadAfter times (then it went to the dead-letter
// topic). Offsets are snapshotted after committed was read, so a correct
// connector never trips it.
func (g *gateway) settled(fns []string, k tp, committed int64, deadAfter int) (int64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for o := int64(0); o < committed; o++ {
		ok := true
		for _, fn := range fns {
			if !g.acked[fn][k][o] {
				ok = false
			}
		}
		if !ok && g.failures[k][o] < deadAfter {
			return o, false
		}
	}
	return 0, true
}

func (g *gateway) config(brokers []string, group string, topics ...string) consume.Config {
	return consume.Config{
		Brokers:           brokers,
		GroupID:           group,
		Topics:            topics,
		GatewayURL:        g.srv.URL,
		GatewayUser:       gwUser,
		GatewayPassword:   gwPassword,
		InternalKey:       testKey,
		UpstreamTimeout:   5 * time.Second,
		RebuildInterval:   100 * time.Millisecond,
		RetryMin:          5 * time.Millisecond,
		RetryMax:          40 * time.Millisecond,
		MaxAttempts:       10,
		ShutdownTimeout:   5 * time.Second,
		SessionTimeout:    3 * time.Second,
		HeartbeatInterval: 200 * time.Millisecond,
		RebalanceTimeout:  3 * time.Second,
		JoinGroupBackoff:  100 * time.Millisecond,
		MaxWait:           50 * time.Millisecond,
	}
}

func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("CONNECTOR_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// running is a connector started by a test.
type running struct {
	c    *consume.Connector
	stop func()
}

func start(t *testing.T, cfg consume.Config) *running {
	t.Helper()
	c, err := consume.New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("consume.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &running{c: c, stop: stop}
}

// committed reads the group's committed offsets (-1: none).
func committed(t *testing.T, brokers []string, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	res, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		t.Fatalf("fetching committed offsets: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("fetching committed offsets: %v", res.Error)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("committed offset of %s/%d: %v", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// endOffsets returns each partition's next offset (the high watermark).
func endOffsets(t *testing.T, brokers []string, topic string, partitions int) map[int]int64 {
	t.Helper()
	out := map[int]int64{}
	for p := range partitions {
		conn, err := kafka.DialLeader(context.Background(), "tcp", brokers[0], topic, p)
		if err != nil {
			t.Fatalf("dialing %s/%d: %v", topic, p, err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatalf("reading end of %s/%d: %v", topic, p, err)
		}
		out[p] = last
	}
	return out
}

// audit checks, until the test ends, that no offset is committed before
// every function answered 2xx for it (or it was dead-lettered).
func audit(t *testing.T, g *gateway, brokers []string, group, topic string, partitions int, fns []string, deadAfter int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 2 * time.Second}
		parts := make([]int, partitions)
		for i := range parts {
			parts[i] = i
		}
		for ctx.Err() == nil {
			res, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
			if err == nil && res.Error == nil {
				for _, p := range res.Topics[topic] {
					if p.Error != nil || p.CommittedOffset <= 0 {
						continue
					}
					if o, ok := g.settled(fns, tp{topic, p.Partition}, p.CommittedOffset, deadAfter); !ok {
						t.Errorf("partition %d committed up to %d but offset %d was not answered 2xx nor dead-lettered",
							p.Partition, p.CommittedOffset, o)
						return
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	// Registered before the connectors' cleanups run? Cleanups run in
	// reverse order, so this stops after the connectors stopped.
	t.Cleanup(func() { cancel(); <-done })
}

// waitFor polls cond until it holds or the deadline passes (hang guard only).
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// allCommitted waits until every partition's committed offset is its end.
func allCommitted(t *testing.T, brokers []string, group, topic string, partitions int) {
	t.Helper()
	end := endOffsets(t, brokers, topic, partitions)
	waitFor(t, 30*time.Second, "all offsets committed", func() bool {
		c := committed(t, brokers, group, topic, partitions)
		for p, e := range end {
			if e > 0 && c[p] != e {
				return false
			}
		}
		return true
	})
}

// checkKeyOrder asserts that, per key, the first 2xx deliveries of each seq
// arrive in increasing seq order and that seqs 1..want[key] all arrived.
// Redeliveries of an already delivered seq are allowed (at-least-once).
// except lists messages expected not to be delivered (dead-lettered).
func checkKeyOrder(t *testing.T, items []payload, want map[string]int, except ...payload) {
	t.Helper()
	seen := map[string]map[int]bool{}
	last := map[string]int{}
	for _, p := range items {
		if seen[p.Key] == nil {
			seen[p.Key] = map[int]bool{}
		}
		if seen[p.Key][p.Seq] {
			continue
		}
		if p.Seq < last[p.Key] {
			t.Errorf("key %s: seq %d delivered after seq %d", p.Key, p.Seq, last[p.Key])
		}
		seen[p.Key][p.Seq] = true
		last[p.Key] = max(last[p.Key], p.Seq)
	}
	for k, n := range want {
	next:
		for s := 1; s <= n; s++ {
			for _, e := range except {
				if e.Key == k && e.Seq == s {
					if seen[k][s] {
						t.Errorf("key %s: seq %d delivered, want it dead-lettered", k, s)
					}
					continue next
				}
			}
			if !seen[k][s] {
				t.Errorf("key %s: seq %d never delivered", k, s)
			}
		}
	}
}

func wantCounts(msgs []payload) map[string]int {
	want := map[string]int{}
	for _, p := range msgs {
		want[p.Key] = max(want[p.Key], p.Seq)
	}
	return want
}

// deadLetters reads the first n records of the dead-letter topic.
func deadLetters(t *testing.T, brokers []string, n int) []kafka.Message {
	t.Helper()
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: event.TopicDead, Partition: 0,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading dead letter %d of %d: %v", len(out)+1, n, err)
		}
		out = append(out, m)
	}
	return out
}

// headers returns a record's headers as a map.
func headers(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// metricsText returns what the connector's /metrics serves.
func metricsText(t *testing.T, r *running) string {
	t.Helper()
	srv := httptest.NewServer(r.c.Handler())
	defer srv.Close()
	_, body := get(t, srv.URL+"/metrics")
	return body
}

// callsOf returns the calls whose body carried p.
func callsOf(calls []delivery, p payload) []delivery {
	var out []delivery
	for _, d := range calls {
		for _, q := range d.items {
			if q == p {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// firstOK returns when p was first answered 2xx by fn (zero if never).
func firstOK(calls []delivery, fn string, p payload) time.Time {
	for _, d := range callsOf(calls, p) {
		if d.fn == fn && d.status/100 == 2 {
			return d.answered
		}
	}
	return time.Time{}
}
