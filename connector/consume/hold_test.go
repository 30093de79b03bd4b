package consume_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"easychat/connector/consume"
)

// latencyBound is how long a record of a healthy key may take to reach its
// function while another key of its partition is held: about Patience (1 s)
// at most, generously bounded for a loaded machine. Blocking the partition
// instead would take the failing record's whole retry schedule (~21 s with
// the default settings, tens of seconds here).
const latencyBound = 3 * time.Second

// produceRounds produces rounds of records, one of each key in keys per
// round, roundGap apart, and returns when each record was produced. Seqs
// continue from from[key].
func produceRounds(t *testing.T, brokers []string, keys []string, rounds int, from map[string]int, roundGap time.Duration) map[payload]time.Time {
	t.Helper()
	produced := map[payload]time.Time{}
	for range rounds {
		var batch []payload
		for _, k := range keys {
			from[k]++
			batch = append(batch, payload{Key: k, Seq: from[k]})
		}
		now := time.Now()
		produce(t, brokers, topic, batch)
		for _, p := range batch {
			produced[p] = now
		}
		time.Sleep(roundGap)
	}
	return produced
}

func healthyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("conv-%d", i)
	}
	return keys
}

// checkLatency asserts that every record of produced not of key held was
// answered 2xx within latencyBound of being produced, and before until (when
// the held key's trouble ended).
func checkLatency(t *testing.T, calls []delivery, produced map[payload]time.Time, held string, until time.Time) {
	t.Helper()
	var worst time.Duration
	for p, at := range produced {
		if p.Key == held {
			continue
		}
		ok := firstOK(calls, "transfer", p)
		if ok.IsZero() {
			t.Errorf("%s/%d never delivered", p.Key, p.Seq)
			continue
		}
		worst = max(worst, ok.Sub(at))
		if ok.Sub(at) > latencyBound {
			t.Errorf("%s/%d took %v to be delivered while %s was held (bound %v)", p.Key, p.Seq, ok.Sub(at), held, latencyBound)
		}
		if !until.IsZero() && ok.After(until) {
			t.Errorf("%s/%d was delivered only after %s's trouble ended", p.Key, p.Seq, held)
		}
	}
	t.Logf("other keys: slowest delivery %v after production", worst)
}

// A record that keeps failing (503) holds only its own key: the other keys
// of its partition, produced after it, are delivered while it is retried;
// its key's later records wait and follow it, in order, once it heals. The
// committed offset never passes it meanwhile (audit).
func TestFailingKeyHoldsOnlyItsKey(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 1, topic) // one partition: every key shares it
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-hold"
	audit(t, g, brokers, group, topic, 1, []string{"transfer"}, 1<<30)
	bad := payload{Key: "conv-bad", Seq: 1}
	var healed atomic.Bool
	g.setBehaviour(func(d delivery) int {
		if d.items[0] == bad && !healed.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	cfg := g.config(brokers, group, topic)
	cfg.RetryMin, cfg.RetryMax = 100*time.Millisecond, time.Second
	cfg.MaxAttempts = 100 // it heals before it could be dead-lettered
	r := start(t, cfg)
	waitFor(t, 20*time.Second, "readiness", r.c.Ready)

	produce(t, brokers, topic, []payload{bad})
	waitFor(t, 20*time.Second, "the first failure", func() bool { return len(callsOf(g.snapshot(), bad)) > 0 })
	// The held key first in each round: its records are routed to its lane
	// before the round's other records are delivered.
	keys := append([]string{bad.Key}, healthyKeys(5)...)
	produced := produceRounds(t, brokers, keys, 4, map[string]int{bad.Key: 1}, 200*time.Millisecond)
	waitFor(t, 10*time.Second, "the other keys", func() bool { return len(g.okItems("transfer")) >= 20 })

	calls := g.snapshot()
	if !firstOK(calls, "transfer", bad).IsZero() {
		t.Fatal("the failing record succeeded before it was healed")
	}
	checkLatency(t, calls, produced, bad.Key, time.Time{})
	for _, d := range calls {
		if d.items[0].Key == bad.Key && d.items[0].Seq > 1 {
			t.Fatalf("%s/%d reached the function before %s/1 succeeded", bad.Key, d.items[0].Seq, bad.Key)
		}
	}
	body := metricsText(t, r)
	for _, want := range []string{
		`easychat_connector_held_keys{topic="msg-chat-transfer"} 1`,
		`easychat_connector_held_messages{topic="msg-chat-transfer"} 5`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, grep(body, "held_"))
		}
	}
	tries := len(callsOf(calls, bad))
	if tries < 2 {
		t.Errorf("%s/1 tried %d times while the others were delivered; want it still retrying", bad.Key, tries)
	}

	healed.Store(true)
	want := map[string]int{bad.Key: 5}
	for _, k := range healthyKeys(5) {
		want[k] = 4
	}
	waitFor(t, 20*time.Second, "the held key's records", func() bool { return len(g.okItems("transfer")) >= 25 })
	allCommitted(t, brokers, group, topic, 1)
	checkKeyOrder(t, g.okItems("transfer"), want)
	body = metricsText(t, r)
	for _, want := range []string{
		`easychat_connector_held_keys{topic="msg-chat-transfer"} 0`,
		`easychat_connector_held_messages{topic="msg-chat-transfer"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s after the hold:\n%s", want, grep(body, "held_"))
		}
	}
}

// A record that fails until MaxAttempts is dead-lettered; meanwhile the
// other keys go on, and its key's later records follow it in order.
func TestFailingKeyIsDeadLetteredThenItsKeyGoesOn(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 1, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-hold-dead"
	const attempts = 4
	audit(t, g, brokers, group, topic, 1, []string{"transfer"}, attempts)
	bad := payload{Key: "conv-bad", Seq: 1}
	g.setBehaviour(func(d delivery) int {
		if d.items[0] == bad {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	cfg := g.config(brokers, group, topic)
	cfg.RetryMin, cfg.RetryMax = 100*time.Millisecond, 400*time.Millisecond // ~0.7 s of retries
	cfg.MaxAttempts = attempts
	r := start(t, cfg)
	waitFor(t, 20*time.Second, "readiness", r.c.Ready)

	msgs := []payload{bad}
	msgs = append(msgs, sequence(5, 20, 0)...)
	msgs = append(msgs, payload{Key: bad.Key, Seq: 2}, payload{Key: bad.Key, Seq: 3})
	produce(t, brokers, topic, msgs)
	waitFor(t, 20*time.Second, "all but the failing record", func() bool { return len(g.okItems("transfer")) >= len(msgs)-1 })
	allCommitted(t, brokers, group, topic, 1)
	checkKeyOrder(t, g.okItems("transfer"), wantCounts(msgs), bad)

	calls := g.snapshot()
	tries := callsOf(calls, bad)
	if len(tries) != attempts {
		t.Fatalf("%s/1 tried %d times, want %d", bad.Key, len(tries), attempts)
	}
	lastTry := tries[len(tries)-1].answered
	for _, p := range msgs {
		ok := firstOK(calls, "transfer", p)
		switch {
		case p == bad:
		case p.Key == bad.Key && ok.Before(lastTry):
			t.Errorf("%s/%d delivered before %s/1 was given up", p.Key, p.Seq, bad.Key)
		case p.Key != bad.Key && ok.After(tries[1].at):
			t.Errorf("%s/%d delivered only after %s/1's second try", p.Key, p.Seq, bad.Key)
		}
	}
	dl := deadLetters(t, brokers, 1)[0]
	if h := headers(dl); string(dl.Key) != bad.Key || h[consume.DeadHeaderAttempts] != strconv.Itoa(attempts) ||
		!strings.Contains(h[consume.DeadHeaderError], "503") {
		t.Errorf("dead letter key %q headers %v", dl.Key, h)
	}
}

// A call that hangs holds only its key, after Patience: the other keys go
// on; the key's later records wait for the hanging call's answer, which is
// not called a second time meanwhile.
func TestHangingCallHoldsOnlyItsKey(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 1, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-hang"
	audit(t, g, brokers, group, topic, 1, []string{"transfer"}, 1<<30)
	slow := payload{Key: "conv-slow", Seq: 1}
	const hang = 4 * time.Second
	entered := make(chan struct{}, 10)
	g.setBehaviour(func(d delivery) int {
		if d.items[0] == slow {
			entered <- struct{}{}
			g.mu.Unlock() // other calls go on meanwhile
			time.Sleep(hang)
			g.mu.Lock()
		}
		return http.StatusOK
	})
	cfg := g.config(brokers, group, topic)
	cfg.UpstreamTimeout = 3 * hang
	cfg.Patience = time.Second
	r := start(t, cfg)
	waitFor(t, 20*time.Second, "readiness", r.c.Ready)

	produce(t, brokers, topic, []payload{slow})
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the slow record was never called")
	}
	began := time.Now()
	keys := append([]string{slow.Key}, healthyKeys(4)...)
	produced := produceRounds(t, brokers, keys, 3, map[string]int{slow.Key: 1}, 100*time.Millisecond)
	waitFor(t, 30*time.Second, "everything", func() bool { return len(g.okItems("transfer")) >= 1+len(produced) })
	allCommitted(t, brokers, group, topic, 1)

	calls := g.snapshot()
	answered := firstOK(calls, "transfer", slow)
	if answered.Sub(began) < hang-500*time.Millisecond {
		t.Fatalf("the slow record answered after %v; the test wants it to hang %v", answered.Sub(began), hang)
	}
	checkLatency(t, calls, produced, slow.Key, answered)
	if n := len(callsOf(calls, slow)); n != 1 {
		t.Errorf("%s/1 called %d times, want 1 (never a second call while one is in flight)", slow.Key, n)
	}
	for _, d := range calls {
		if d.items[0].Key == slow.Key && d.items[0].Seq > 1 && d.at.Before(answered) {
			t.Errorf("%s/%d reached the function before %s/1 answered", slow.Key, d.items[0].Seq, slow.Key)
		}
	}
	want := wantCounts(append([]payload{slow}, keysOf(produced)...))
	checkKeyOrder(t, g.okItems("transfer"), want)
}

func keysOf(m map[payload]time.Time) []payload {
	var out []payload
	for p := range m {
		out = append(out, p)
	}
	return out
}

// Any 4xx refusal is final: 404 and 403 answers are dead-lettered after one
// call; 401 (our key is wrong: an outage) and 429 are retried.
func TestRefusalsAreDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 1, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-refusals"
	audit(t, g, brokers, group, topic, 1, []string{"transfer"}, 1)
	answers := map[string][]int{ // per key, the answers to its seq 1, in turn (then 200)
		"conv-404": {http.StatusNotFound, http.StatusNotFound},
		"conv-403": {http.StatusForbidden, http.StatusForbidden},
		"conv-401": {http.StatusUnauthorized, http.StatusUnauthorized},
		"conv-429": {http.StatusTooManyRequests},
	}
	g.setBehaviour(func(d delivery) int {
		p := d.items[0]
		if p.Seq == 1 && len(answers[p.Key]) > 0 {
			s := answers[p.Key][0]
			answers[p.Key] = answers[p.Key][1:]
			return s
		}
		return http.StatusOK
	})
	var msgs []payload
	for seq := 1; seq <= 3; seq++ {
		for _, k := range []string{"conv-404", "conv-403", "conv-401", "conv-429", "conv-ok"} {
			msgs = append(msgs, payload{Key: k, Seq: seq})
		}
	}
	produce(t, brokers, topic, msgs)
	start(t, g.config(brokers, group, topic))

	refused := []payload{{Key: "conv-404", Seq: 1}, {Key: "conv-403", Seq: 1}}
	waitFor(t, 30*time.Second, "deliveries", func() bool { return len(g.okItems("transfer")) >= len(msgs)-len(refused) })
	allCommitted(t, brokers, group, topic, 1)
	checkKeyOrder(t, g.okItems("transfer"), wantCounts(msgs), refused...)
	calls := g.snapshot()
	for p, n := range map[payload]int{refused[0]: 1, refused[1]: 1, {Key: "conv-401", Seq: 1}: 3, {Key: "conv-429", Seq: 1}: 2} {
		if got := len(callsOf(calls, p)); got != n {
			t.Errorf("%s/%d called %d times, want %d", p.Key, p.Seq, got, n)
		}
	}
	errs := map[string]string{}
	for _, m := range deadLetters(t, brokers, 2) {
		h := headers(m)
		errs[string(m.Key)] = h[consume.DeadHeaderError]
		if h[consume.DeadHeaderAttempts] != "1" {
			t.Errorf("dead letter of %s: attempts %q, want 1", m.Key, h[consume.DeadHeaderAttempts])
		}
	}
	if !strings.Contains(errs["conv-404"], "404") || !strings.Contains(errs["conv-403"], "403") {
		t.Errorf("dead letters: %v", errs)
	}
}

// While a key is held, the committed offset stays below its record; a
// connector started in the same group after a restart delivers the held
// record and everything after it: nothing is lost.
func TestHeldRecordSurvivesRestart(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 1, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-hold-restart"
	audit(t, g, brokers, group, topic, 1, []string{"transfer"}, 1<<30)
	bad := payload{Key: "conv-bad", Seq: 1}
	var healed atomic.Bool
	g.setBehaviour(func(d delivery) int {
		if d.items[0] == bad && !healed.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	msgs := sequence(5, 10, 0) // offsets 0..9
	msgs = append(msgs, bad)   // offset 10
	msgs = append(msgs, sequence(5, 20, 2)...)
	msgs = append(msgs, payload{Key: bad.Key, Seq: 2}, payload{Key: bad.Key, Seq: 3})
	const badOffset = 10
	produce(t, brokers, topic, msgs)
	cfg := g.config(brokers, group, topic)
	cfg.RetryMin, cfg.RetryMax = 50*time.Millisecond, 300*time.Millisecond
	cfg.MaxAttempts = 1000
	g.conn.Store(1)
	r1 := start(t, cfg)

	waitFor(t, 30*time.Second, "the other keys", func() bool { return len(g.okItems("transfer")) >= len(msgs)-3 })
	waitFor(t, 10*time.Second, "the commit up to the held record", func() bool {
		return committed(t, brokers, group, topic, 1)[0] == badOffset
	})
	time.Sleep(300 * time.Millisecond) // a few more retries and commits
	if c := committed(t, brokers, group, topic, 1)[0]; c != badOffset {
		t.Fatalf("committed %d while offset %d is held", c, badOffset)
	}
	r1.stop()
	if c := committed(t, brokers, group, topic, 1)[0]; c != badOffset {
		t.Fatalf("committed %d after the stop; offset %d was never delivered", c, badOffset)
	}

	healed.Store(true)
	g.conn.Store(2)
	start(t, cfg)
	waitFor(t, 30*time.Second, "the held key", func() bool {
		n := 0
		for _, p := range g.okItems("transfer") {
			if p.Key == bad.Key {
				n++
			}
		}
		return n >= 3
	})
	allCommitted(t, brokers, group, topic, 1)
	checkKeyOrder(t, g.okItems("transfer"), wantCounts(msgs))
	for _, d := range g.snapshot() {
		if d.conn == 2 {
			if d.offset != badOffset || d.items[0] != bad {
				t.Errorf("the second connector started at offset %d (%v), want the held %d", d.offset, d.items[0], badOffset)
			}
			break
		}
	}
}

// In batch mode a transient failure fails the whole batch, but only its key
// stays held: the batch's other keys get through on their next try.
func TestBatchWithFailingKeyLetsOthersThrough(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 1, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-batch-hold"
	audit(t, g, brokers, group, topic, 1, []string{"transfer"}, 1<<30)
	bad := payload{Key: "conv-4", Seq: 3}
	var healed atomic.Bool
	g.setBehaviour(func(d delivery) int {
		for _, p := range d.items {
			if p == bad && !healed.Load() {
				return http.StatusServiceUnavailable
			}
		}
		return http.StatusOK
	})
	msgs := sequence(9, 270, 0)
	produce(t, brokers, topic, msgs) // all queued before the start, so batches fill
	cfg := g.config(brokers, group, topic)
	cfg.BatchMax = 16
	cfg.MaxAttempts = 1000
	start(t, cfg)

	others := 0
	for _, p := range msgs {
		if p.Key != bad.Key {
			others++
		}
	}
	waitFor(t, 30*time.Second, "the other keys", func() bool {
		n := 0
		for _, p := range g.okItems("transfer") {
			if p.Key != bad.Key {
				n++
			}
		}
		return n >= others
	})
	healed.Store(true)
	waitFor(t, 30*time.Second, "everything", func() bool { return len(g.okItems("transfer")) >= len(msgs) })
	allCommitted(t, brokers, group, topic, 1)
	checkKeyOrder(t, g.okItems("transfer"), wantCounts(msgs))

	calls := g.snapshot()
	failedWith := map[payload]int{}
	biggest := 0
	for _, d := range calls {
		biggest = max(biggest, d.batch)
		if d.status/100 == 2 {
			continue
		}
		for _, p := range d.items {
			failedWith[p]++
		}
	}
	if failedWith[bad] < 2 {
		t.Errorf("%s/%d failed %d times; the test wants it retried", bad.Key, bad.Seq, failedWith[bad])
	}
	mixed := 0
	for p, n := range failedWith {
		if p.Key == bad.Key {
			continue
		}
		mixed++
		if n > 1 {
			t.Errorf("%s/%d was in %d failed calls; want only the batch that %s/%d failed", p.Key, p.Seq, n, bad.Key, bad.Seq)
		}
	}
	if mixed == 0 || biggest < 2 {
		t.Errorf("%d records of other keys shared a failed call, largest batch %d; the test wants mixed batches", mixed, biggest)
	}
}

// An array batch stops growing before BatchMaxBytes; a record bigger than
// that still goes, alone.
func TestBatchMaxBytes(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 1, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-batch-bytes"
	audit(t, g, brokers, group, topic, 1, []string{"transfer"}, 1<<30)
	const maxBytes = 256
	msgs := sequence(4, 80, 0)
	big := &msgs[40]
	big.Pad = strings.Repeat("x", 2*maxBytes)
	produce(t, brokers, topic, msgs)
	cfg := g.config(brokers, group, topic)
	cfg.BatchMax = 16
	cfg.BatchMaxBytes = maxBytes
	start(t, cfg)

	waitFor(t, 30*time.Second, "everything", func() bool { return len(g.okItems("transfer")) >= len(msgs) })
	allCommitted(t, brokers, group, topic, 1)
	checkKeyOrder(t, g.okItems("transfer"), wantCounts(msgs))
	biggest := 0
	for _, d := range g.snapshot() {
		biggest = max(biggest, d.batch)
		if len(d.items) == 1 && d.items[0] == *big {
			if d.size <= maxBytes {
				t.Errorf("the big record's body is %d bytes; the test wants more than %d", d.size, maxBytes)
			}
			continue
		}
		if d.size > maxBytes {
			t.Errorf("a batch of %d records has %d bytes, over %d", d.batch, d.size, maxBytes)
		}
	}
	if biggest < 2 {
		t.Errorf("largest batch %d; want real batches", biggest)
	}
}

// An outage (every key of the partition fails) outlasting MaxAttempts does
// not send the records to the dead-letter topic: they are kept and retried,
// and all are delivered, in order, once the function recovers.
func TestOutageKeepsRecordsInsteadOfDeadLettering(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, 1, topic)
	g := newGateway(t)
	g.deploy("transfer", topic)
	const group = "g-outage"
	const attempts = 3
	var down atomic.Bool
	down.Store(true)
	g.setBehaviour(func(d delivery) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	cfg := g.config(brokers, group, topic)
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	cfg.MaxAttempts = attempts
	r := start(t, cfg)
	waitFor(t, 20*time.Second, "readiness", r.c.Ready)

	msgs := sequence(4, 5, 0)
	produce(t, brokers, topic, msgs)
	// Long enough for every record to pass MaxAttempts several times over.
	waitFor(t, 20*time.Second, "the outage to be noticed", func() bool {
		return strings.Contains(metricsText(t, r), "easychat_connector_outage_holds_total")
	})
	time.Sleep(time.Second)
	down.Store(false)

	waitFor(t, 30*time.Second, "all deliveries after the outage", func() bool { return len(g.okItems("transfer")) >= len(msgs) })
	allCommitted(t, brokers, group, topic, 1)
	checkKeyOrder(t, g.okItems("transfer"), wantCounts(msgs))
	if text := metricsText(t, r); strings.Contains(text, "easychat_connector_dead_lettered_total{") {
		t.Fatalf("records were dead-lettered during the outage:\n%s", text)
	}
}
