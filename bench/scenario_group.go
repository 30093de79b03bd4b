package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"easychat/pkg/domain"
	"easychat/pkg/frame"
)

// Scenario 2, group fan-out: one group whose members are all online; a few
// members post into it at a fixed rate and every other member must get every
// message once, in seq order.

type groupTracker struct {
	lat       atomic.Pointer[hist]
	n         atomic.Int64
	order     atomic.Int64
	lastNanos atomic.Int64
}

// received handles push p (b encoded) on member c's socket; only c's reader
// calls it for c.
func (t *groupTracker) received(c *wsClient, p pushInfo, b []byte) {
	now := time.Now()
	if !p.isPush {
		return
	}
	sent, ok := sentTime(b)
	if !ok {
		return
	}
	if p.seq <= c.lastSeq {
		t.order.Add(1)
	} else {
		c.lastSeq = p.seq
	}
	t.lat.Load().record(now.Sub(sent))
	t.n.Add(1)
	for {
		l := t.lastNanos.Load()
		if now.UnixNano() <= l || t.lastNanos.CompareAndSwap(l, now.UnixNano()) {
			break
		}
	}
}

func (sys *system) group(ctx context.Context) error {
	return sys.groupScenario(ctx, "gm", sys.set.groupRates, 10,
		fmt.Sprintf("2. Group fan-out (one group of %d online members)", sys.set.groupSize))
}

// hotGroup is the hot group: one sender posting into a group whose members
// are all online.
func (sys *system) hotGroup(ctx context.Context) error {
	return sys.groupScenario(ctx, "hg", sys.set.hotGroupRates, 0,
		fmt.Sprintf("Hot group: one sender into one group of %d online members", sys.set.groupSize))
}

// groupScenario posts into a new group of online members named with prefix
// at each of rates, each sender at most perSender msg/s (0: one sender).
func (sys *system) groupScenario(ctx context.Context, prefix string, rates []float64, perSender float64, title string) error {
	n := sys.set.groupSize
	members := make([]string, n)
	for i := range members {
		members[i] = fmt.Sprintf("%s%d-%s", prefix, i, sys.run)
	}
	gid := "g-bench-" + prefix + "-" + sys.run
	if err := sys.store.CreateGroup(ctx, domain.Group{ID: gid, Name: "bench", Owner: members[0], Members: members}); err != nil {
		return fmt.Errorf("creating the group: %w", err)
	}
	tr := &groupTracker{}
	tr.lat.Store(&hist{})
	var errs atomic.Int64
	var errMsg atomic.Value
	url := sys.stack.Gateways()[0].URL()
	progress("opening %d member sockets", n)
	socks, err := dialMany(ctx, n, 32, func(i int) (*wsClient, error) {
		return dialUser(ctx, url, sys.iss, members[i], func(c *wsClient, b []byte) {
			p := scanPushSeq(b)
			if p.isError {
				var f pushFrame
				_ = json.Unmarshal(b, &f)
				errs.Add(1)
				errMsg.CompareAndSwap(nil, f.ErrMsg)
				return
			}
			tr.received(c, p, b)
		})
	})
	if err != nil {
		return err
	}
	defer closeAll(socks)
	if err := sys.waitOnline(ctx, members); err != nil {
		return err
	}

	send := func(tag string, rate float64, dur time.Duration) (int, time.Duration) {
		senders := 1
		if perSender > 0 {
			senders = max(1, min(n, int(rate/perSender+0.999)))
		}
		qs := make([]chan string, senders)
		var wg sync.WaitGroup
		for i := range qs {
			qs[i] = make(chan string, 8192)
			wg.Go(func() {
				for id := range qs[i] {
					if err := socks[i].write(chatFrame(id, frame.GroupChat, gid, marker(id, time.Now()))); err != nil {
						errs.Add(1)
						errMsg.CompareAndSwap(nil, "write: "+err.Error())
					}
				}
			})
		}
		sent, took := pace(ctx, rate, dur, func(k int) { qs[k%senders] <- tag + strconv.Itoa(k) })
		for _, q := range qs {
			close(q)
		}
		wg.Wait()
		return sent, took
	}
	// Warm-up: one message, every member gets it.
	tr.n.Store(0)
	send("gw", 1, time.Second)
	if err := waitCount(ctx, &tr.n, int64(n-1), sys.set.drain); err != nil {
		return fmt.Errorf("group warm-up: %d of %d deliveries: %w", tr.n.Load(), n-1, err)
	}

	t := sys.rep.table(title,
		"msg/s into the group", "messages", "deliveries expected", "delivered", "lost", "order violations", "errors", "deliveries/s", "p50", "p99", "max", "CPU µs/delivery")
	for i, rate := range rates {
		tr.n.Store(0)
		tr.lat.Store(&hist{})
		errs.Store(0)
		start := time.Now()
		cpu := sys.startCPU()
		sent, took := send(fmt.Sprintf("g%d-", i), rate, sys.set.groupDur)
		want := int64(sent * (n - 1))
		_ = waitCount(ctx, &tr.n, want, sys.set.drain)
		time.Sleep(100 * time.Millisecond)
		use := cpu.stop()
		got := tr.n.Load()
		span := time.Unix(0, tr.lastNanos.Load()).Sub(start).Seconds()
		lat := tr.lat.Load().summary()
		var rateOut float64
		if span > 0 {
			rateOut = float64(got) / span
		}
		t.add(fmt.Sprintf("%.0f (offered %.0f)", rate, float64(sent)/took.Seconds()), sent, want, got, want-got, tr.order.Load(), errs.Load(), rateOut, lat.P50, lat.P99, lat.Max, use.perMessage(int(got)))
		t.note("%.0f msg/s: CPU %s", rate, use)
		if m, ok := errMsg.Load().(string); ok {
			t.note("first error at %.0f msg/s: %s", rate, m)
			errMsg = atomic.Value{}
		}
		settle()
	}
	if perSender > 0 {
		t.note("Senders are group members (at most %.0f msg/s each); a sender is not pushed its own message, so each message has %d recipients. Deliveries/s = deliveries ÷ (last delivery − first send).", perSender, n-1)
	} else {
		t.note("One member sends every message; it is not pushed its own messages, so each message has %d recipients. Deliveries/s = deliveries ÷ (last delivery − first send).", n-1)
	}
	t.note("CPU µs/delivery: CPU time of every process of the system (functions, and the bench process less the load generator's share) ÷ deliveries.")
	return nil
}

// waitOnline waits until the route registry shows every user online.
func (sys *system) waitOnline(ctx context.Context, users []string) error {
	deadline := time.Now().Add(sys.set.drain)
	for {
		on, err := sys.stack.Registry.Online(ctx, users)
		if err == nil {
			all := true
			for _, u := range users {
				if !on[u] {
					all = false
					break
				}
			}
			if all {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not every user online after %v (err %v)", sys.set.drain, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitCount(ctx context.Context, n *atomic.Int64, want int64, max time.Duration) error {
	deadline := time.Now().Add(max)
	for n.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", max)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
