package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/push"
	"easychat/pkg/sign"
)

// Scenario 5, the push leg side by side: a publication goes to N subscribed
// websockets. Ours: POST /internal/push (signed, one item naming the N users)
// on a gateway process. Centrifugo: POST /api/publish to a channel the N
// clients subscribed to. Same publishers, same clients, same payload, same
// machine, one after the other.

// pushTarget is one system under test.
type pushTarget struct {
	name    string
	connect func(ctx context.Context, n int, onMsg func(b []byte)) ([]*wsClient, error)
	// publish sends publication seq of publisher pub, carrying data (a
	// frame.Push whose content is the marker).
	publish func(ctx context.Context, hc *http.Client, pub int, seq int64, data json.RawMessage) error
	pid     int
}

type pushResult struct {
	publishes, errs int64
	delivered, lost int64
	rate            float64
	lat             latency
	cpu             time.Duration // server process CPU time during the run
	firstErr        string
}

// payload is the push data both systems carry: the frame.Push of a chat
// message, so Centrifugo's publications are as large as our push frames.
func payload(conv string, seq int64, content string) json.RawMessage {
	b, _ := json.Marshal(frame.Push{ConversationID: conv, ChatType: frame.GroupChat, SendID: "bench",
		SendTime: time.Now().UnixMilli(), Seq: seq,
		Msg: frame.Msg{MsgID: "m" + strconv.FormatInt(seq, 10), MType: frame.TextMsg, Content: content}})
	return b
}

func newPublishClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute,
	}}
}

// drive runs publishers against target with n subscribers for dur.
func drive(ctx context.Context, target pushTarget, clients int, dur time.Duration, publishers, window int, recv *pushRecv) pushResult {
	recv.reset(clients)
	// Fresh conversations: a gateway socket skips a seq it was already sent.
	run := drives.Add(1)
	hc := newPublishClient()
	defer hc.CloseIdleConnections()
	cpu0 := procCPU(target.pid)
	slots := recv.slots
	for range window {
		slots <- struct{}{}
	}
	start := time.Now()
	deadline := start.Add(dur)
	var pubs, errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for k := range publishers {
		wg.Go(func() {
			for seq := int64(1); time.Now().Before(deadline) && ctx.Err() == nil; seq++ {
				select {
				case <-slots:
				case <-time.After(10 * time.Second):
					errs.Add(1)
					firstErr.CompareAndSwap(nil, "no publication completed for 10s")
					return
				}
				idx := recv.next.Add(1) - 1
				if idx >= int64(len(recv.counts)) {
					return
				}
				content := marker(strconv.FormatInt(idx, 10), time.Now())
				if err := target.publish(ctx, hc, k, seq, payload(fmt.Sprintf("bp%d-%d", run, k), seq, content)); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					recv.counts[idx].Store(-1 << 30) // never completes
					slots <- struct{}{}
					continue
				}
				pubs.Add(1)
			}
		})
	}
	wg.Wait()
	// Wait for what is in flight.
	want := pubs.Load() * int64(clients)
	_ = waitCount(ctx, &recv.delivered, want, 10*time.Second)
	r := pushResult{publishes: pubs.Load(), errs: errs.Load(), delivered: recv.delivered.Load()}
	r.lost = want - r.delivered
	if span := time.Unix(0, recv.lastNanos.Load()).Sub(start).Seconds(); span > 0 {
		r.rate = float64(r.delivered) / span
	}
	r.lat = recv.lat.Load().summary()
	r.cpu = procCPU(target.pid) - cpu0
	if m, ok := firstErr.Load().(string); ok {
		r.firstErr = m
	}
	return r
}

// pushRecv counts receipts per publication; a publication's window slot is
// released when all its subscribers got it.
type pushRecv struct {
	counts    []atomic.Int32
	next      atomic.Int64
	delivered atomic.Int64
	lastNanos atomic.Int64
	lat       atomic.Pointer[hist]
	n         atomic.Int32
	slots     chan struct{}
}

func newPushRecv(maxPubs, window int) *pushRecv {
	r := &pushRecv{counts: make([]atomic.Int32, maxPubs), slots: make(chan struct{}, window+1024)}
	r.lat.Store(&hist{})
	return r
}

func (r *pushRecv) reset(n int) {
	r.n.Store(int32(n))
	for i := range r.counts[:min(int(r.next.Load()), len(r.counts))] {
		r.counts[i].Store(0)
	}
	r.next.Store(0)
	r.delivered.Store(0)
	r.lastNanos.Store(0)
	r.lat.Store(&hist{})
	for len(r.slots) > 0 {
		<-r.slots
	}
}

// onMsg handles one websocket message (one or more newline-separated
// publications).
func (r *pushRecv) onMsg(b []byte) {
	now := time.Now()

	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		id, sent, ok := parseMarker(line)
		if !ok {
			continue
		}
		idx, err := strconv.Atoi(id)
		if err != nil || idx >= len(r.counts) {
			continue
		}
		r.lat.Load().record(now.Sub(sent))
		r.delivered.Add(1)
		if r.counts[idx].Add(1) == r.n.Load() {
			select {
			case r.slots <- struct{}{}:
			default:
			}
		}
	}
	for {
		l := r.lastNanos.Load()
		if now.UnixNano() <= l || r.lastNanos.CompareAndSwap(l, now.UnixNano()) {
			break
		}
	}
}

// pushOurs posts one signed push of content to users on a gateway's internal
// listener, as the transfer function does.
func (sys *system) pushOurs(ctx context.Context, hc *http.Client, internal string, users []string, conv string, seq int64, content string) (push.Result, error) {
	return sys.pushData(ctx, hc, internal, users, payload(conv, seq, content))
}

func (sys *system) pushData(ctx context.Context, hc *http.Client, internal string, users []string, data json.RawMessage) (push.Result, error) {
	body, err := json.Marshal(event.Push{Items: []event.PushItem{{Users: users, Frame: frame.Frame{
		FrameType: frame.Data, Method: frame.MethodPush, FormID: "bench", Data: data}}}})
	if err != nil {
		return push.Result{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+internal+push.Path, bytes.NewReader(body))
	if err != nil {
		return push.Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	sys.signer().Sign(req, push.Path, sign.Component, body)
	res, err := hc.Do(req)
	if err != nil {
		return push.Result{}, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return push.Result{}, fmt.Errorf("push: HTTP %s: %s", res.Status, bytes.TrimSpace(b))
	}
	var r push.Result
	if err := json.Unmarshal(b, &r); err != nil {
		return push.Result{}, fmt.Errorf("push answer %q: %w", b, err)
	}
	return r, nil
}

func (sys *system) signer() *sign.Signer { return sign.New(sys.stack.InternalKey()) }

func (sys *system) pushLeg(ctx context.Context) error {
	g, err := sys.startGateway(ctx)
	if err != nil {
		return err
	}
	defer g.stop()
	cf, cfErr := sys.startCentrifugo(ctx)
	if cfErr != nil {
		sys.rep.note("push leg: Centrifugo could not be run: %v", cfErr)
	} else {
		defer cf.stop()
	}

	maxN := 0
	for _, n := range sys.set.pushN {
		maxN = max(maxN, n)
	}
	if lim := fileLimit(); uint64(2*maxN)+512 > lim {
		return fmt.Errorf("RLIMIT_NOFILE %d is too low for %d subscribers of two systems", lim, maxN)
	}

	if sys.set.pushInProcess {
		// For CPU profiles (-cpuprofile, -pprof): the stack's own gateway, in
		// this process (its CPU is then not reported separately).
		in := sys.stack.Gateways()[0]
		g = &gatewayProc{proc: &proc{name: "in-process gateway", cmd: g.cmd}, addr: in.Addr(), internal: in.InternalAddr()}
	}
	ours := pushTarget{name: "Easy Chat gateway", pid: g.pid()}
	if sys.set.pushInProcess {
		ours.pid = 0
	}
	var users []string
	ours.connect = func(ctx context.Context, n int, onMsg func([]byte)) ([]*wsClient, error) {
		users = make([]string, n)
		for i := range users {
			users[i] = fmt.Sprintf("p%d-%d-%s", n, i, sys.run)
		}
		cs, err := dialMany(ctx, n, 32, func(i int) (*wsClient, error) {
			return dialUser(ctx, g.url(), sys.iss, users[i], func(_ *wsClient, b []byte) { onMsg(b) })
		})
		return cs, err
	}
	ours.publish = func(ctx context.Context, hc *http.Client, pub int, seq int64, data json.RawMessage) error {
		r, err := sys.pushData(ctx, hc, g.internal, users, data)
		if err == nil && len(r.Missing) > 0 {
			return fmt.Errorf("push: %d users missing on the gateway", len(r.Missing))
		}
		return err
	}
	targets := []pushTarget{ours}
	if cf != nil {
		theirs := pushTarget{name: "Centrifugo " + sys.set.cfVersion, pid: cf.pid()}
		theirs.connect = func(ctx context.Context, n int, onMsg func([]byte)) ([]*wsClient, error) {
			ch := fmt.Sprintf("bench%d", n)
			return dialMany(ctx, n, 32, func(i int) (*wsClient, error) {
				return cf.subscribe(ctx, fmt.Sprintf("cf%d-%d", n, i), ch, onMsg)
			})
		}
		theirs.publish = func(ctx context.Context, hc *http.Client, pub int, seq int64, data json.RawMessage) error {
			return cf.publish(ctx, hc, fmt.Sprintf("bench%d", currentN.Load()), data)
		}
		targets = append(targets, theirs)
	}

	t := sys.rep.table("5. Push leg side by side (publish → N subscribed websockets; same publishers, clients and payload)",
		"N", "system", "publications", "deliveries", "lost", "errors", "deliveries/s", "p50", "p99", "max", "server CPU", "ours ÷ Centrifugo")
	recv := newPushRecv(1<<21, sys.set.pushWin)
	for _, n := range sys.set.pushN {
		currentN.Store(int64(n))
		// Rounds alternate the systems (ours, theirs, ours, …), so a drift
		// of the machine during the run does not favour one of them.
		type total struct {
			r     pushResult
			rates []float64
			lat   hist
			cpu   time.Duration
		}
		totals := make([]*total, len(targets))
		for k := range targets {
			totals[k] = &total{}
		}
		for round := 0; round < sys.set.pushRounds; round++ {
			for k, tg := range targets {
				cs, err := tg.connect(ctx, n, recv.onMsg)
				if err != nil {
					return fmt.Errorf("%s, N=%d: %w", tg.name, n, err)
				}
				time.Sleep(500 * time.Millisecond)                                     // routes bound, subscriptions settled
				drive(ctx, tg, n, time.Second, sys.set.pushPar, sys.set.pushWin, recv) // warm-up
				r := drive(ctx, tg, n, sys.set.pushDur, sys.set.pushPar, sys.set.pushWin, recv)
				closeAll(cs)
				tt := totals[k]
				tt.r.publishes += r.publishes
				tt.r.delivered += r.delivered
				tt.r.lost += r.lost
				tt.r.errs += r.errs
				tt.cpu += r.cpu
				if tt.r.firstErr == "" {
					tt.r.firstErr = r.firstErr
				}
				tt.rates = append(tt.rates, r.rate)
				tt.lat.merge(recv.lat.Load())
				progress("  N=%d %s round %d: %.0f deliveries/s", n, tg.name, round+1, r.rate)
				settle()
			}
		}
		var rates []float64
		for k, tg := range targets {
			tt := totals[k]
			rate := 0.0
			for _, x := range tt.rates {
				rate += x / float64(len(tt.rates))
			}
			rates = append(rates, rate)
			ratio := ""
			if len(rates) == 2 && rates[1] > 0 {
				ratio = fmt.Sprintf("**%.2f**", rates[0]/rates[1])
			}
			lat := tt.lat.summary()
			secs := sys.set.pushDur.Seconds() * float64(len(tt.rates))
			t.add(n, tg.name, tt.r.publishes, tt.r.delivered, tt.r.lost, tt.r.errs, rate, lat.P50, lat.P99, lat.Max,
				fmt.Sprintf("%.0f%% of a core", 100*tt.cpu.Seconds()/secs), ratio)
			if tt.r.firstErr != "" {
				t.note("%s, N=%d, first error: %s", tg.name, n, tt.r.firstErr)
			}
		}
	}
	t.note("Closed loop: %d publishers keep at most %d publications in flight (published and not yet received by all N); deliveries/s = deliveries ÷ (last receipt − start), the mean of %d rounds of %v per system, the systems alternating. Latency is publish start → receipt. Server CPU is the server process's user+system time over the runs, a share of one core.",
		sys.set.pushPar, sys.set.pushWin, sys.set.pushRounds, sys.set.pushDur)
	t.note("Ours gets the N user ids in every request (what transfer sends); Centrifugo gets a channel name. Centrifugo may put several publications in one websocket frame (newline-separated); our protocol sends one frame per message.")
	return nil
}

var currentN atomic.Int64

// drives numbers drive runs.
var drives atomic.Int64
