package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"easychat/pkg/frame"
)

// Scenario 4, cold start: chat and transfer are scaled to zero (as the idle
// scaler does after com.openfaas.scale.zero-duration); the next message
// starts chat (the gateway's call waits in the runtime) and then transfer
// (the connector's call waits), so its delivery time includes both starts.

func (sys *system) cold(ctx context.Context) error {
	p := sys.stack.Provider
	url := sys.stack.Gateways()[0].URL()
	acked := make(chan time.Time, 16)
	var ackErr atomic.Value
	got := make(chan time.Time, 16)
	snd, err := dialUser(ctx, url, sys.iss, "cs-"+sys.run, func(_ *wsClient, b []byte) {
		var f pushFrame
		if json.Unmarshal(b, &f) == nil && (f.FrameType == frame.Ack || f.FrameType == frame.Error) {
			if f.FrameType == frame.Error {
				ackErr.Store(f.ErrMsg)
			}
			acked <- time.Now()
		}
	})
	if err != nil {
		return err
	}
	defer snd.close()
	rcv, err := dialUser(ctx, url, sys.iss, "cr-"+sys.run, func(_ *wsClient, b []byte) {
		var f pushFrame
		if json.Unmarshal(b, &f) == nil && f.Method == frame.MethodPush {
			got <- time.Now()
		}
	})
	if err != nil {
		return err
	}
	defer rcv.close()
	if err := sys.waitOnline(ctx, []string{snd.user, rcv.user}); err != nil {
		return err
	}

	t := sys.rep.table("4. Cold start (chat and transfer scaled to zero, then one message)",
		"run", "ack (chat started, message in Kafka)", "delivered (transfer started too)", "warm delivery for comparison")
	for run := 1; run <= sys.set.coldRuns; run++ {
		// Warm reference first, so both functions run before scaling down.
		t0 := time.Now()
		if err := snd.write(chatFrame(fmt.Sprintf("cw%d", run), frame.SingleChat, rcv.user, marker("cw", t0))); err != nil {
			return err
		}
		if _, err := waitTime(acked, sys.set.drain); err != nil {
			return fmt.Errorf("warm message: no ack: %w", err)
		}
		tw, err := waitTime(got, sys.set.drain)
		if err != nil {
			return fmt.Errorf("warm message: not delivered: %w", err)
		}
		warm := tw.Sub(t0)

		var pids []int
		for _, fn := range []string{"chat", "transfer"} {
			for _, r := range p.Replicas(fn) {
				pids = append(pids, r.PID)
			}
			if err := p.Scale(fn, 0); err != nil {
				return err
			}
		}
		if err := waitGone(ctx, pids); err != nil {
			return err
		}
		t0 = time.Now()
		if err := snd.write(chatFrame(fmt.Sprintf("cc%d", run), frame.SingleChat, rcv.user, marker("cc", t0))); err != nil {
			return err
		}
		ta, err := waitTime(acked, sys.set.drain)
		if err != nil {
			return fmt.Errorf("cold message: no ack: %w", err)
		}
		if msg, ok := ackErr.Swap("").(string); ok && msg != "" {
			t.add(run, "error frame after "+dur(ta.Sub(t0))+": "+msg, "-", warm)
			continue
		}
		td, err := waitTime(got, sys.set.drain)
		if err != nil {
			return fmt.Errorf("cold message: not delivered: %w", err)
		}
		t.add(run, ta.Sub(t0), td.Sub(t0), warm)
	}
	t.note("Function binaries are already built (the deploy built them); a cold start is process start, health check and first connections to Kafka, Mongo and Redis.")
	return nil
}

// waitGone waits until the processes have exited and were reaped.
func waitGone(ctx context.Context, pids []int) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("replica %d still running 30s after scaling to zero", pid)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func waitTime(c <-chan time.Time, max time.Duration) (time.Time, error) {
	select {
	case t := <-c:
		return t, nil
	case <-time.After(max):
		return time.Time{}, fmt.Errorf("nothing within %v", max)
	}
}
