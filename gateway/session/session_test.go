package session

import (
	"context"
	"testing"
	"time"
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
