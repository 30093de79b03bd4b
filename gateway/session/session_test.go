package session

import (
	"context"
	"fmt"
	"testing"
	"time"

	"easychat/pkg/frame"

	"github.com/gorilla/websocket"
)

func TestPeekID(t *testing.T) {
	for in, want := range map[string]string{
		`{"frameType":0,"id":"a1","data":{"msg":"cut here`: "a1",
		`{"data":{"x":[1,2,{"id":"inner"}]},"id":"outer"}`: "outer",
		`{"data":"cut before the id`:                       "",
		`[1,2]`:                                            "",
		`{"id":7}`:                                         "",
		`garbage`:                                          "",
	} {
		if got := peekID([]byte(in)); got != want {
			t.Errorf("peekID(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestParseAckMode(t *testing.T) {
	for _, s := range []string{"none", "only", "RIGOR"} {
		if _, err := ParseAckMode(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := ParseAckMode("sometimes"); err == nil {
		t.Error("accepted an unknown mode")
	}
}

func TestTrackerDrain(t *testing.T) {
	var tr Tracker
	if !tr.Begin() || !tr.Begin() {
		t.Fatal("Begin refused before drain")
	}
	done := make(chan error, 1)
	go func() { done <- tr.Drain(context.Background()) }()
	time.Sleep(10 * time.Millisecond) // let Drain start; correctness does not depend on it
	if tr.Begin() {
		t.Fatal("Begin accepted while draining")
	}
	tr.End()
	select {
	case <-done:
		t.Fatal("Drain returned with a request in flight")
	default:
	}
	tr.End()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return")
	}

	var stuck Tracker
	stuck.Begin()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := stuck.Drain(ctx); err == nil {
		t.Fatal("Drain returned nil with a stuck request")
	}
}

// A flood only a little over the frame rate still gets its socket closed:
// the frames let through as tokens come back do not forgive it. A client
// that bursts once and then keeps under the rate is never closed.
func TestFrameRateClosesASlowFloodNotABurst(t *testing.T) {
	ping := []byte(`{"frameType":1,"id":"p"}`)
	newSession := func() (*Session, *fakeSocket) {
		s, sock, _ := newTestSession(t, &gateCaller{}, 4)
		s.env.FrameRate, s.env.FrameBurst = 200, 4
		s = New(s.env, sock, s.log)
		return s, sock
	}
	closed := func(sock *fakeSocket) bool {
		sock.mu.Lock()
		defer sock.mu.Unlock()
		return sock.closed != 0
	}

	flood, fsock := newSession()
	for i := 0; i < 2000 && !closed(fsock); i++ { // 400 frames/s: twice the rate
		flood.Handle(ping, false)
		time.Sleep(2500 * time.Microsecond)
	}
	if !closed(fsock) {
		t.Fatal("a flood at twice the frame rate was never closed")
	}

	calm, csock := newSession()
	for range 6 { // 4 let through, 2 refused
		calm.Handle(ping, false)
	}
	for range 40 { // then 50 frames/s: a quarter of the rate
		time.Sleep(20 * time.Millisecond)
		calm.Handle(ping, false)
	}
	for range 6 { // and one more burst like the first
		calm.Handle(ping, false)
	}
	if closed(csock) {
		t.Fatal("a client that burst and then kept under the rate was closed")
	}
}

// A socket flooding faster than it reads its answers is closed with 1008
// after the refusals that fit, not dropped as a slow reader: the refusals
// must not use up the queue (leaving the client nothing to tell it why),
// however slowly the writer drains it.
func TestFrameRateRefusalsNeverOverflowTheQueue(t *testing.T) {
	s, sock, _ := newTestSession(t, &gateCaller{}, 4)
	s.env.FrameRate, s.env.FrameBurst = 1, 100
	sock.queue = 32 // fewer than the burst of refusals; nothing is written meanwhile
	s = New(s.env, sock, s.log)
	for i := range 500 {
		// Acks of nothing: the frames let through cost no answer.
		s.Handle([]byte(fmt.Sprintf(`{"frameType":2,"id":"a%d"}`, i)), false)
	}
	sock.mu.Lock()
	defer sock.mu.Unlock()
	refusals := 0
	for _, f := range sock.frames {
		if f.FrameType == frame.Error && f.ErrMsg == ErrTextRate {
			refusals++
		}
	}
	if sock.dropped || sock.closed != websocket.ClosePolicyViolation || refusals == 0 {
		t.Fatalf("dropped %v, close code %d, %d refusals, %d frames queued", sock.dropped, sock.closed, refusals, len(sock.frames))
	}
}
