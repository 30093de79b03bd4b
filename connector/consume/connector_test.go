package consume_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"easychat/connector/consume"
	"easychat/pkg/event"
	"easychat/pkg/secret"
	"easychat/pkg/sign"
)

const topic = event.TopicChat

// Every message is delivered, in per-key order across several partitions,
// and committed only after its 2xx.
func TestDeliversInOrderAndCommits(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, testPartsNum, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-deliver"
	audit(t, g, brokers, group, topic, testPartsNum, []string{"transfer"}, 1<<30)

	msgs := sequence(30, 600, 0)
	produce(t, brokers, topic, msgs)
	r := start(t, g.config(brokers, group, topic))

	waitFor(t, 60*time.Second, "600 deliveries", func() bool { return len(g.okItems("transfer")) >= len(msgs) })
	allCommitted(t, brokers, group, topic, testPartsNum)
	checkKeyOrder(t, g.okItems("transfer"), wantCounts(msgs))

	// Per partition, calls arrive one at a time in offset order.
	parts := map[int]bool{}
	lastOff := map[int]int64{}
	for _, d := range g.snapshot() {
		parts[d.partition] = true
		if d.offset < lastOff[d.partition] {
			t.Errorf("partition %d: offset %d called after %d", d.partition, d.offset, lastOff[d.partition])
		}
		lastOff[d.partition] = d.offset
	}
	if len(parts) < 2 {
		t.Errorf("messages landed on %d partitions; the test wants several", len(parts))
	}

	// Health and metrics.
	srv := httptest.NewServer(r.c.Handler())
	defer srv.Close()
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := get(t, srv.URL+path); code != http.StatusOK {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	_, body := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`easychat_connector_messages_consumed_total{topic="msg-chat-transfer"}`,
		`easychat_connector_invocations_total{function="transfer",status="200"}`,
		`easychat_connector_invoke_duration_seconds_bucket`,
		`easychat_connector_consumer_lag{partition=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A message failing its first three tries is retried until it succeeds;
// later messages of its key wait behind it while the other keys of its
// partition go on; a second function that already took the message is not
// called again.
func TestRetryHoldsItsKeyAndKeepsOrder(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, testPartsNum, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	g.deploy("audit", topic)
	const group = "g-retry"
	audit(t, g, brokers, group, topic, testPartsNum, []string{"transfer", "audit"}, 1<<30)

	failed := 0
	g.setBehaviour(func(d delivery) int {
		if d.fn == "transfer" && d.items[0].Key == "conv-3" && d.items[0].Seq == 5 && failed < 3 {
			failed++
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	msgs := sequence(10, 200, 0)
	produce(t, brokers, topic, msgs)
	cfg := g.config(brokers, group, topic)
	cfg.RetryMin = 50 * time.Millisecond // ~350 ms of retries: time for other keys to go on
	cfg.RetryMax = time.Second
	start(t, cfg)

	waitFor(t, 60*time.Second, "all deliveries", func() bool {
		return len(g.okItems("transfer")) >= len(msgs) && len(g.okItems("audit")) >= len(msgs)
	})
	allCommitted(t, brokers, group, topic, testPartsNum)
	checkKeyOrder(t, g.okItems("transfer"), wantCounts(msgs))
	checkKeyOrder(t, g.okItems("audit"), wantCounts(msgs))

	calls := g.snapshot()
	var poisonPart = -1
	var poisonOff int64
	tries, auditCalls := 0, 0
	for _, d := range calls {
		if d.items[0].Key == "conv-3" && d.items[0].Seq == 5 {
			poisonPart, poisonOff = d.partition, d.offset
			if d.fn == "transfer" {
				tries++
			} else {
				auditCalls++
			}
		}
	}
	if tries != 4 || auditCalls != 1 {
		t.Fatalf("conv-3/5: transfer called %d times (want 4), audit %d (want 1)", tries, auditCalls)
	}
	// In that partition, no later message of conv-3 reached transfer before
	// conv-3/5's success, and messages of other keys did.
	succeeded, othersWent := false, false
	for _, d := range calls {
		if d.partition != poisonPart || d.fn != "transfer" {
			continue
		}
		if d.offset == poisonOff && d.status == http.StatusOK {
			succeeded = true
		}
		if d.offset > poisonOff && !succeeded {
			if d.items[0].Key == "conv-3" {
				t.Fatalf("conv-3 offset %d delivered before offset %d succeeded", d.offset, poisonOff)
			}
			othersWent = true
		}
	}
	if !othersWent {
		t.Errorf("no other key of partition %d was delivered while offset %d was retried", poisonPart, poisonOff)
	}
}

// A message that always fails goes to the dead-letter topic after
// MaxAttempts, with headers naming its origin, and the partition continues.
func TestPoisonMessageIsDeadLettered(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, testPartsNum, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-poison"
	const attempts = 3
	audit(t, g, brokers, group, topic, testPartsNum, []string{"transfer"}, attempts)
	g.setBehaviour(func(d delivery) int {
		if d.items[0].Poison {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})

	msgs := sequence(5, 50, 0)
	msgs[12].Poison = true // conv-2, seq 3
	produce(t, brokers, topic, msgs)
	cfg := g.config(brokers, group, topic)
	cfg.MaxAttempts = attempts
	r := start(t, cfg)

	waitFor(t, 60*time.Second, "all good deliveries", func() bool { return len(g.okItems("transfer")) >= len(msgs)-1 })
	allCommitted(t, brokers, group, topic, testPartsNum)

	var poison delivery
	tries := 0
	for _, d := range g.snapshot() {
		if d.items[0].Poison {
			poison = d
			tries++
		}
	}
	if tries != attempts {
		t.Errorf("poison message tried %d times, want %d", tries, attempts)
	}
	// Everything else in its partition, before and after it, got through.
	want := wantCounts(msgs)
	items := g.okItems("transfer")
	checkKeyOrder(t, items, want, msgs[12])

	// Read it back from the dead-letter topic.
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: event.TopicDead, Partition: 0,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := rd.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("reading the dead-letter topic: %v", err)
	}
	var p payload
	if err := json.Unmarshal(m.Value, &p); err != nil || !p.Poison || string(m.Key) != "conv-2" {
		t.Errorf("dead letter = key %q value %s", m.Key, m.Value)
	}
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	for k, v := range map[string]string{
		consume.DeadHeaderTopic:     topic,
		consume.DeadHeaderPartition: strconv.Itoa(poison.partition),
		consume.DeadHeaderOffset:    strconv.FormatInt(poison.offset, 10),
		consume.DeadHeaderFunction:  "transfer",
		consume.DeadHeaderAttempts:  strconv.Itoa(attempts),
	} {
		if h[k] != v {
			t.Errorf("dead letter header %s = %q, want %q", k, h[k], v)
		}
	}
	if !strings.Contains(h[consume.DeadHeaderError], "500") {
		t.Errorf("dead letter error header %q lacks the status", h[consume.DeadHeaderError])
	}

	srv := httptest.NewServer(r.c.Handler())
	defer srv.Close()
	if _, body := get(t, srv.URL+"/metrics"); !strings.Contains(body,
		`easychat_connector_dead_lettered_total{function="transfer",topic="msg-chat-transfer"} 1`) {
		t.Errorf("dead-letter metric missing:\n%s", grep(body, "dead_lettered"))
	}
}

// Stopping a connector and starting another in the same group redelivers
// nothing that was committed and misses nothing that was not.
func TestRestartResumesFromCommitted(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, testPartsNum, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-restart"
	audit(t, g, brokers, group, topic, testPartsNum, []string{"transfer"}, 1<<30)
	g.setBehaviour(func(d delivery) int {
		time.Sleep(time.Millisecond) // keep some messages in flight at the stop
		return http.StatusOK
	})

	first := sequence(20, 400, 0)
	produce(t, brokers, topic, first)
	g.conn.Store(1)
	r1 := start(t, g.config(brokers, group, topic))
	waitFor(t, 60*time.Second, "some deliveries", func() bool { return len(g.okItems("transfer")) >= 100 })
	r1.stop()
	after1 := committed(t, brokers, group, topic, testPartsNum)
	delivered1 := len(g.okItems("transfer"))
	t.Logf("first run: %d delivered, committed %v", delivered1, after1)

	// Everything committed was delivered by the first connector, and
	// everything it delivered (including calls in flight at the stop) was
	// committed before Run returned.
	maxAcked := map[int]int64{0: -1, 1: -1, 2: -1}
	for _, d := range g.snapshot() {
		if d.status == http.StatusOK {
			maxAcked[d.partition] = max(maxAcked[d.partition], d.last)
		}
	}
	for p, c := range after1 {
		if c < 0 {
			c = 0
		}
		if o, ok := g.settled([]string{"transfer"}, tp{topic, p}, c, 1<<30); !ok {
			t.Fatalf("partition %d: committed %d but offset %d never answered 2xx", p, c, o)
		}
		if c != maxAcked[p]+1 {
			t.Errorf("partition %d: committed %d after shutdown, but offsets up to %d were answered 2xx", p, c, maxAcked[p])
		}
	}

	second := sequence(20, 200, 20) // seqs 21..30 per key
	produce(t, brokers, topic, second)
	g.conn.Store(2)
	start(t, g.config(brokers, group, topic))
	all := append(first, second...)
	waitFor(t, 60*time.Second, "all deliveries", func() bool {
		seen := map[payload]bool{}
		for _, p := range g.okItems("transfer") {
			seen[p] = true
		}
		return len(seen) >= len(all)
	})
	allCommitted(t, brokers, group, topic, testPartsNum)
	checkKeyOrder(t, g.okItems("transfer"), wantCounts(all))

	for _, d := range g.snapshot() {
		if d.conn == 2 && after1[d.partition] >= 0 && d.offset < after1[d.partition] {
			t.Errorf("second connector redelivered committed offset %d of partition %d (committed %d)",
				d.offset, d.partition, after1[d.partition])
		}
	}
}

// With no function subscribed yet the connector neither commits nor drops;
// once the function is deployed it receives everything.
func TestLateDeployedFunctionGetsEverything(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, testPartsNum, topic)
	g := newGateway(t)
	g.namespaces = []string{"openfaas-fn"} // as on faas-netes: names become name.namespace
	const group = "g-late"
	audit(t, g, brokers, group, topic, testPartsNum, []string{"transfer"}, 1<<30)

	r := start(t, g.config(brokers, group, topic))
	waitFor(t, 20*time.Second, "readiness", r.c.Ready)
	msgs := sequence(6, 60, 0)
	produce(t, brokers, topic, msgs)

	time.Sleep(time.Second) // ten topic-map rebuilds with nothing subscribed
	if n := len(g.snapshot()); n != 0 {
		t.Fatalf("%d calls before any function was deployed", n)
	}
	for p, c := range committed(t, brokers, group, topic, testPartsNum) {
		if c > 0 {
			t.Fatalf("partition %d committed %d with no function deployed", p, c)
		}
	}

	g.deploy("transfer", topic)
	waitFor(t, 30*time.Second, "deliveries after deploy", func() bool { return len(g.okItems("transfer")) >= len(msgs) })
	allCommitted(t, brokers, group, topic, testPartsNum)
	checkKeyOrder(t, g.okItems("transfer"), wantCounts(msgs))
}

// BATCH_MAX > 1: messages go as JSON arrays with X-Batch, in order; a
// failing message inside a batch is dead-lettered alone.
func TestBatchDelivery(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, testPartsNum, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-batch"
	const attempts = 3
	audit(t, g, brokers, group, topic, testPartsNum, []string{"transfer"}, attempts)
	g.setBehaviour(func(d delivery) int {
		for _, p := range d.items {
			if p.Poison {
				return http.StatusInternalServerError
			}
		}
		return http.StatusOK
	})
	msgs := sequence(9, 450, 0)
	msgs[100].Poison = true
	produce(t, brokers, topic, msgs) // all queued before the start, so batches fill
	cfg := g.config(brokers, group, topic)
	cfg.BatchMax = 16
	cfg.MaxAttempts = attempts
	start(t, cfg)

	waitFor(t, 60*time.Second, "all deliveries", func() bool { return len(g.okItems("transfer")) >= len(msgs)-1 })
	allCommitted(t, brokers, group, topic, testPartsNum)
	checkKeyOrder(t, g.okItems("transfer"), wantCounts(msgs), msgs[100])

	biggest := 0
	for _, d := range g.snapshot() {
		if d.batch == 0 {
			t.Fatalf("call without X-Batch in batch mode")
		}
		biggest = max(biggest, d.batch)
	}
	if biggest < 2 {
		t.Errorf("largest batch %d; want real batches", biggest)
	}
}

// Following the topic map (TOPICS empty): the consumer subscribes to what
// functions announce.
func TestTopicsFromTopicMap(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 1, event.TopicRead)
	g := newGateway(t)
	g.deploy("readtransfer", event.TopicRead+",some-other-topic")
	msgs := sequence(2, 20, 0)
	produce(t, brokers, event.TopicRead, msgs)
	start(t, g.config(brokers, "g-dynamic"))
	waitFor(t, 30*time.Second, "deliveries", func() bool { return len(g.okItems("readtransfer")) >= len(msgs) })
	allCommitted(t, brokers, "g-dynamic", event.TopicRead, 1)
}

// Topics are independent group members: one waiting for its function (with
// a tiny queue) does not hold up another.
func TestWaitingTopicDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 2, topic, event.TopicRead)
	g := newGateway(t)
	g.deploy("transfer", topic) // nothing for read receipts yet
	const group = "g-indep"
	reads := sequence(4, 80, 0)
	produce(t, brokers, event.TopicRead, reads)
	cfg := g.config(brokers, group, event.TopicRead, topic)
	cfg.QueueSize = 2
	start(t, cfg)
	time.Sleep(300 * time.Millisecond) // let the read partitions fill their queues
	msgs := sequence(4, 80, 0)
	produce(t, brokers, topic, msgs)

	waitFor(t, 30*time.Second, "chat deliveries", func() bool { return len(g.okItems("transfer")) >= len(msgs) })
	allCommitted(t, brokers, group, topic, 2)
	for p, c := range committed(t, brokers, group, event.TopicRead, 2) {
		if c > 0 {
			t.Fatalf("read partition %d committed %d without a function", p, c)
		}
	}
	g.deploy("readtransfer", event.TopicRead)
	waitFor(t, 30*time.Second, "read deliveries", func() bool { return len(g.okItems("readtransfer")) >= len(reads) })
	allCommitted(t, brokers, group, event.TopicRead, 2)
	checkKeyOrder(t, g.okItems("readtransfer"), wantCounts(reads))
}

// Shutdown waits for an in-flight call only up to ShutdownTimeout, and a
// call cut off that way leaves its message uncommitted.
func TestShutdownAbandonsHungCall(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 1, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-hung"
	entered := make(chan struct{}, 10)
	g.setBehaviour(func(d delivery) int {
		if d.items[0].Seq == 3 {
			entered <- struct{}{}
			g.mu.Unlock() // let the test look at the gateway meanwhile
			time.Sleep(2 * time.Second)
			g.mu.Lock()
		}
		return http.StatusOK
	})
	produce(t, brokers, topic, sequence(1, 5, 0))
	cfg := g.config(brokers, group, topic)
	cfg.ShutdownTimeout = 200 * time.Millisecond
	r := start(t, cfg)
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the hanging message was never called")
	}
	began := time.Now()
	r.stop()
	if d := time.Since(began); d > 1500*time.Millisecond {
		t.Errorf("Run took %v to return; ShutdownTimeout is 200ms", d)
	}
	if c := committed(t, brokers, group, topic, 1)[0]; c != 2 {
		t.Errorf("committed %d after abandoning offset 2; want 2", c)
	}
}

// An empty record cannot be posted (and no retry changes that): it goes to
// the dead-letter topic at once and the partition continues.
func TestEmptyMessageIsDeadLettered(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 1, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-empty"
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, BatchTimeout: 2 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte("conv-0")}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	produce(t, brokers, topic, sequence(1, 3, 0))
	start(t, g.config(brokers, group, topic))
	waitFor(t, 30*time.Second, "deliveries", func() bool { return len(g.okItems("transfer")) >= 3 })
	allCommitted(t, brokers, group, topic, 1)

	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: event.TopicDead, Partition: 0,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := rd.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("reading the dead-letter topic: %v", err)
	}
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	if len(m.Value) != 0 || h[consume.DeadHeaderOffset] != "0" || h[consume.DeadHeaderError] != "empty message" {
		t.Errorf("dead letter value %q headers %v", m.Value, h)
	}
}

// The fake gateway really rejects unsigned calls, so the zero-rejections
// checks in the other tests mean something.
func TestGatewayRejectsUnsigned(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	req, _ := http.NewRequest(http.MethodPost, g.srv.URL+"/function/transfer", bytes.NewReader([]byte(`{}`)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || g.rejected.Load() != 1 {
		t.Fatalf("unsigned call: status %d, rejections %d", res.StatusCode, g.rejected.Load())
	}
	g.rejected.Store(0)
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("SECRET_MOUNT_PATH", t.TempDir())
	t.Setenv(secret.DevSwitch, "")
	t.Setenv("INTERNAL_KEY", testKey)
	t.Setenv("KAFKA_BROKERS", "a:1, b:2")
	t.Setenv("RETRY_MAX", "2s")
	t.Setenv("BATCH_MAX", "8")
	t.Setenv("BASIC_AUTH_USER", "admin")
	cfg, err := consume.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Brokers) != 2 || cfg.Brokers[1] != "b:2" || cfg.RetryMax != 2*time.Second || cfg.BatchMax != 8 ||
		cfg.GatewayUser != "admin" || cfg.MaxAttempts != consume.DefaultMaxAttempts ||
		strings.Join(cfg.Topics, ",") != consume.DefaultTopics || cfg.HTTPAddr != consume.DefaultHTTPAddr ||
		cfg.InternalKey != testKey || cfg.Patience != consume.DefaultPatience ||
		cfg.BatchMaxBytes != consume.DefaultBatchMaxBytes {
		t.Errorf("config = %+v", cfg)
	}
	t.Setenv("HOLD_AFTER", "250ms")
	t.Setenv("BATCH_MAX_BYTES", "4096")
	if cfg, err = consume.ConfigFromEnv(); err != nil || cfg.Patience != 250*time.Millisecond || cfg.BatchMaxBytes != 4096 {
		t.Errorf("HOLD_AFTER, BATCH_MAX_BYTES: err %v, config %+v", err, cfg)
	}
	t.Setenv("TOPICS", "")
	t.Setenv("MAX_ATTEMPTS", "zero")
	cfg, err = consume.ConfigFromEnv()
	if err == nil || !strings.Contains(err.Error(), "MAX_ATTEMPTS") {
		t.Errorf("bad MAX_ATTEMPTS: err = %v", err)
	}
	if len(cfg.Topics) != 0 {
		t.Errorf("TOPICS=\"\" should follow the topic map, got %v", cfg.Topics)
	}
	t.Setenv("MAX_ATTEMPTS", "")

	// The signing key is required, and must not be guessable.
	t.Setenv("INTERNAL_KEY", "")
	if _, err := consume.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), secret.Internal) {
		t.Errorf("missing INTERNAL_KEY: err = %v", err)
	}
	t.Setenv("INTERNAL_KEY", "short")
	if _, err := consume.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short INTERNAL_KEY: err = %v", err)
	}
	t.Setenv("INTERNAL_KEY", "")
	t.Setenv(secret.DevSwitch, "1")
	if cfg, err := consume.ConfigFromEnv(); err != nil || cfg.InternalKey != sign.DevKey {
		t.Errorf("development switch: key %q, err %v", cfg.InternalKey, err)
	}
}

// New refuses an embedder's Config without a usable signing key.
func TestNewRefusesWeakKey(t *testing.T) {
	t.Setenv(secret.DevSwitch, "")
	cfg := consume.Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{topic}}
	for _, key := range []string{"", "fifteen-bytes!!"} {
		cfg.InternalKey = key
		if _, err := consume.New(cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), secret.Internal) {
			t.Errorf("key %q: err = %v, want a refusal naming %s", key, err, secret.Internal)
		}
	}
	cfg.InternalKey = testKey
	if _, err := consume.New(cfg, testLogger(t)); err != nil {
		t.Errorf("key %q: %v", testKey, err)
	}
	t.Setenv(secret.DevSwitch, "1")
	cfg.InternalKey = ""
	if _, err := consume.New(cfg, testLogger(t)); err != nil {
		t.Errorf("empty key with the development switch: %v", err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A record the function refuses as malformed (400/422) is dead-lettered on
// the first answer instead of being retried MaxAttempts times.
func TestRefusedMessageIsDeadLetteredWithoutRetries(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, testPartsNum, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-refused"
	audit(t, g, brokers, group, topic, testPartsNum, []string{"transfer"}, 1)
	g.setBehaviour(func(d delivery) int {
		if d.items[0].Poison {
			return http.StatusUnprocessableEntity
		}
		return http.StatusOK
	})
	msgs := sequence(3, 20, 0)
	msgs[7].Poison = true
	produce(t, brokers, topic, msgs)
	cfg := g.config(brokers, group, topic)
	cfg.MaxAttempts = 10
	start(t, cfg)

	waitFor(t, 60*time.Second, "all good deliveries", func() bool { return len(g.okItems("transfer")) >= len(msgs)-1 })
	allCommitted(t, brokers, group, topic, testPartsNum)
	tries := 0
	for _, d := range g.snapshot() {
		if d.items[0].Poison {
			tries++
		}
	}
	if tries != 1 {
		t.Fatalf("refused message tried %d times, want 1", tries)
	}
}
