package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"easychat/devstack/stack"
	"easychat/faas/provider"
	"easychat/pkg/frame"
)

// The idler scales chat and transfer to zero once idle past their
// zero-duration; the first chat afterwards wakes both (the runtime holds the
// calls) and is acked and delivered exactly once.
func TestIdleFunctionsGoToZeroAndTheFirstChatIsDeliveredOnce(t *testing.T) {
	s := system(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fns := []string{"chat", "transfer"}
	if err := s.Redeploy(ctx, []string{"ZERO_DURATION=2s"}, fns...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Redeploy(ctx, nil, fns...); err != nil {
			t.Errorf("restoring the default zero-duration: %v", err)
		}
		// The tests that follow find the functions as the others did: every
		// replica of the redeploy up and ready, none of the old ones still
		// stopping (a call to a replica that is being replaced fails at
		// the runtime, and the client would have to resend).
		waitSettled(t, s, fns...)
	})

	gw := s.Gateways()[0]
	a, b := uid(t, "idle-a"), uid(t, "idle-b")
	ca, cb := dial(t, s, gw, a), dial(t, s, gw, b)

	waitFunctions(t, s, "scaled to zero", func(st types.FunctionStatus, rs []provider.Replica) bool {
		return st.Replicas == 0 && len(rs) == 0
	}, fns...)
	// user keeps its 15m default: the short duration was only for these two.
	if st, err := s.Provider.Function("user"); err != nil || st.Replicas == 0 {
		t.Fatalf("user scaled down with the default zero-duration: %+v %v", st, err)
	}

	start := time.Now()
	ca.chat("z1", frame.SingleChat, b, "woke you")
	ack := ackData(t, ca.next(wait, byID("z1")))
	p := pushData(t, cb.next(wait, isPush))
	if p.Msg.MsgID != ack.MsgID || p.Msg.Content != "woke you" || p.SendID != a {
		t.Fatalf("push %+v for ack %+v", p, ack)
	}
	t.Logf("first chat after scale to zero: acked and pushed in %v", time.Since(start))

	// Exactly once: no second ack, no second push, no push back to the sender.
	quiet := time.After(2 * time.Second)
	for done := false; !done; {
		select {
		case f, ok := <-ca.frames:
			if ok {
				t.Errorf("sender got another frame: %+v", f)
			}
		case f, ok := <-cb.frames:
			if ok {
				t.Errorf("recipient got another frame: %+v", f)
			}
		case <-quiet:
			done = true
		}
	}
}

// waitSettled waits until each function has its wanted replicas, all ready.
func waitSettled(t *testing.T, s *stack.Stack, fns ...string) {
	t.Helper()
	waitFunctions(t, s, "settled", func(st types.FunctionStatus, rs []provider.Replica) bool {
		ready := 0
		for _, r := range rs {
			if r.Ready {
				ready++
			}
		}
		return st.Replicas >= 1 && uint64(len(rs)) == st.Replicas && uint64(ready) == st.Replicas
	}, fns...)
}

// waitFunctions waits until done holds for each function's status and
// replicas.
func waitFunctions(t *testing.T, s *stack.Stack, what string, done func(types.FunctionStatus, []provider.Replica) bool, fns ...string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for _, fn := range fns {
		for {
			st, err := s.Provider.Function(fn)
			if err != nil {
				t.Fatal(err)
			}
			rs := s.Provider.Replicas(fn)
			if done(st, rs) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not %s: %+v, replicas %+v", fn, what, st, rs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
