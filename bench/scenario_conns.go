package main

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// Scenario 3, connections: how many idle authenticated websockets one
// gateway holds and what each costs it in resident memory. The gateway runs
// as its own process (built from ./gateway, sharing the stack's Redis), so
// its VmRSS is not mixed with the load generator's.

func (sys *system) connections(ctx context.Context) error {
	n := sys.set.conns
	if lim := fileLimit(); uint64(n)+512 > lim {
		sys.rep.note("connections: RLIMIT_NOFILE is %d here; %d sockets need more than that in this process, so fewer are tried", lim, n)
		n = int(lim) - 512
	}
	g, err := sys.startGateway(ctx)
	if err != nil {
		return err
	}
	defer g.stop()
	if sys.set.connsInProcess {
		// For heap profiles (-pprof): the stack's own gateway, in this process.
		in := sys.stack.Gateways()[0]
		g = &gatewayProc{proc: &proc{name: "in-process gateway", cmd: g.cmd}, addr: in.Addr(), internal: in.InternalAddr()}
	}
	time.Sleep(2 * time.Second) // let the runtime settle after start
	before, err := rss(g.pid())
	if err != nil {
		return err
	}
	metrics := "http://" + g.internal + "/metrics"
	heap0, _ := metric(metrics, "go_memstats_heap_inuse_bytes")
	stack0, _ := metric(metrics, "go_memstats_stack_inuse_bytes")

	var pushed atomic.Int64
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("c%d-%s", i, sys.run)
	}
	t0 := time.Now()
	socks, err := dialMany(ctx, n, 64, func(i int) (*wsClient, error) {
		return dialUser(ctx, g.url(), sys.iss, users[i], func(_ *wsClient, b []byte) {
			if _, _, ok := parseMarker(b); ok {
				pushed.Add(1)
			}
		})
	})
	if err != nil {
		return fmt.Errorf("after %v: %w", time.Since(t0).Round(time.Millisecond), err)
	}
	defer closeAll(socks)
	dialTook := time.Since(t0)

	held := 0.0
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if held, err = metric(metrics, "easychat_gateway_connections"); err == nil && int(held) >= n {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Idle a while: what a gateway keeps per socket at rest, not handshake garbage.
	time.Sleep(5 * time.Second)
	if sys.set.connsInProcess {
		progress("holding %d sockets for 60s (heap profile now)", n)
		time.Sleep(60 * time.Second)
	}
	after, err := rss(g.pid())
	if err != nil {
		return err
	}
	heap1, _ := metric(metrics, "go_memstats_heap_inuse_bytes")
	stack1, _ := metric(metrics, "go_memstats_stack_inuse_bytes")

	// They are live: one push to every user reaches every socket.
	t1 := time.Now()
	res, err := sys.pushOurs(ctx, &http.Client{Timeout: time.Minute}, g.internal, users, "conn-check", 1, marker("all", t1))
	if err != nil {
		return err
	}
	_ = waitCount(ctx, &pushed, int64(n), 30*time.Second)
	pushTook := time.Since(t1)

	per := float64(after-before) / float64(n)
	t := sys.rep.table("3. Connections (idle authenticated websockets on one gateway process)",
		"sockets opened", "held (gateway metric)", "gateway RSS before", "RSS after (idle 5s)", "RSS per connection",
		"of which Go heap in use / stacks", "open time", "one push to all: delivered", "push to all took")
	t.add(n, held, mib(before), mib(after), fmt.Sprintf("**%.1f KB**", per/1000),
		fmt.Sprintf("%.1f KB / %.1f KB", (heap1-heap0)/float64(n)/1000, (stack1-stack0)/float64(n)/1000), dialTook.Round(time.Millisecond),
		fmt.Sprintf("%d (gateway says %d)", pushed.Load(), res.Delivered), pushTook.Round(time.Millisecond))
	src := "127.0.0.1"
	if spreadSources {
		src = "127.0.0.1–127.0.0.16"
	}
	t.note("RSS per connection = (VmRSS after − VmRSS before) ÷ sockets; KB = 1000 bytes. Heap in use and stacks come from the gateway's own go_memstats metrics (the rest of RSS is the Go heap's free headroom and runtime overhead). Clients run in the bench process, from %s.", src)
	return nil
}
