package hub

import (
	"fmt"
	"testing"

	"easychat/pkg/frame"
)

type fakeConn struct {
	user   string
	full   bool
	got    [][]byte
	closed int
	id     uint64
}

func (c *fakeConn) User() string { return c.user }
func (c *fakeConn) Send(b []byte, _ frame.Type) bool {
	if c.full {
		return false
	}
	c.got = append(c.got, b)
	return true
}
func (c *fakeConn) Close(code int, _ string) { c.closed = code }
func (c *fakeConn) ID() uint64               { return c.id }
func (c *fakeConn) SendMany(bs [][]byte, t frame.Type) bool {
	if c.full {
		return false
	}
	c.got = append(c.got, bs...)
	return true
}

func TestFirstLastAndDeliver(t *testing.T) {
	h := New()
	a1, a2, b := &fakeConn{user: "a"}, &fakeConn{user: "a"}, &fakeConn{user: "b", full: true}
	if first, _ := h.Add(a1, 0); !first {
		t.Fatal("first socket of a not reported")
	}
	if first, _ := h.Add(a2, 0); first {
		t.Fatal("second socket of a reported as first")
	}
	h.Add(b, 0)

	n, missing := h.Deliver([]string{"a", "b", "c", "a"}, []byte("x"), frame.Data)
	if n != 2 || len(a1.got) != 1 || len(a2.got) != 1 {
		t.Fatalf("delivered %d (a1 %d, a2 %d)", n, len(a1.got), len(a2.got))
	}
	// b's only socket refused the frame, c has none.
	if len(missing) != 2 || missing[0] != "b" || missing[1] != "c" {
		t.Fatalf("missing %v", missing)
	}

	if h.Remove(a1) {
		t.Fatal("a reported gone with a socket left")
	}
	if !h.Remove(a2) || h.Has("a") {
		t.Fatal("last socket of a not reported")
	}
	if h.Remove(a2) {
		t.Fatal("removing twice reported last again")
	}

	h.CloseAll(1001, "going away")
	if b.closed != 1001 {
		t.Fatal("CloseAll did not close b")
	}
	if _, err := h.Add(&fakeConn{user: "d"}, 0); err != ErrClosed {
		t.Fatalf("Add after CloseAll: %v", err)
	}
}

// A redelivered message (same or lower seq of a conversation) is not sent to
// a socket twice; other conversations and new sockets are unaffected.
func TestDeliverMessageSkipsSeqsASocketHasSeen(t *testing.T) {
	h := New()
	a1 := &fakeConn{user: "a"}
	h.Add(a1, 0)
	for _, step := range []struct {
		conv string
		seq  int64
		sent int
	}{{"c1", 1, 1}, {"c1", 2, 2}, {"c1", 2, 2}, {"c1", 1, 2}, {"c2", 1, 3}, {"c1", 3, 4}} {
		n, missing := h.DeliverMessage([]string{"a"}, []byte(step.conv), frame.Data, Message{Conv: step.conv, Seq: step.seq})
		if n != 1 || len(missing) != 0 || len(a1.got) != step.sent {
			t.Fatalf("%s/%d: delivered %d missing %v, socket has %d frames, want %d", step.conv, step.seq, n, missing, len(a1.got), step.sent)
		}
	}
	a2 := &fakeConn{user: "a"} // a new device has seen nothing yet
	h.Add(a2, 0)
	h.DeliverMessage([]string{"a"}, []byte("x"), frame.Data, Message{Conv: "c1", Seq: 3})
	if len(a2.got) != 1 || len(a1.got) != 4 {
		t.Fatalf("new device got %d, old device %d", len(a2.got), len(a1.got))
	}
}

// A message goes to its sender's other devices, not back to the socket it
// was written on; the recipient gets it as ever.
func TestDeliverMessageSkipsTheSocketItCameFrom(t *testing.T) {
	h := New()
	phone, laptop, bob := &fakeConn{user: "a", id: 1}, &fakeConn{user: "a", id: 2}, &fakeConn{user: "b", id: 3}
	for _, c := range []*fakeConn{phone, laptop, bob} {
		h.Add(c, 0)
	}
	n, missing := h.DeliverMessage([]string{"b", "a"}, []byte("m1"), frame.Data, Message{Conv: "a_b", Seq: 1, Sender: "a", Origin: 1})
	if len(phone.got) != 0 || len(laptop.got) != 1 || len(bob.got) != 1 || n != 2 || len(missing) != 0 {
		t.Fatalf("phone %d laptop %d bob %d; delivered %d missing %v", len(phone.got), len(laptop.got), len(bob.got), n, missing)
	}
	// An origin naming another user's socket skips nothing: only the
	// sender's sockets are checked.
	h.DeliverMessage([]string{"a", "b"}, []byte("m2"), frame.Data, Message{Conv: "a_b", Seq: 2, Sender: "a", Origin: 3})
	if len(phone.got) != 1 || len(laptop.got) != 2 || len(bob.got) != 2 {
		t.Fatalf("phone %d laptop %d bob %d", len(phone.got), len(laptop.got), len(bob.got))
	}
}

func TestAddBoundsSocketsPerUser(t *testing.T) {
	h := New()
	for i := range 3 {
		if _, err := h.Add(&fakeConn{user: "u"}, 3); err != nil {
			t.Fatalf("socket %d: %v", i+1, err)
		}
	}
	if _, err := h.Add(&fakeConn{user: "u"}, 3); err != ErrTooMany {
		t.Fatalf("4th socket: %v, want ErrTooMany", err)
	}
	if _, err := h.Add(&fakeConn{user: "v"}, 3); err != nil || h.Count("u") != 3 || h.Count("v") != 1 {
		t.Fatalf("another user: %v; counts %d %d", err, h.Count("u"), h.Count("v"))
	}
}

// Several frames for the same users reach each socket in one SendMany, in
// order, less the seqs it has and the ones written on it.
func TestDeliverAllSendsEachSocketItsFramesAtOnce(t *testing.T) {
	h := New()
	phone, laptop, bob := &fakeConn{user: "a", id: 1}, &fakeConn{user: "a", id: 2}, &fakeConn{user: "b", id: 3}
	for _, c := range []*fakeConn{phone, laptop, bob} {
		h.Add(c, 0)
	}
	// Bob already has seq 1.
	h.DeliverMessage([]string{"b"}, []byte("s1"), frame.Data, Message{Conv: "g", Seq: 1, Sender: "a"})
	fs := []Outgoing{
		{B: []byte("s1"), T: frame.Data, Msg: Message{Conv: "g", Seq: 1, Sender: "a"}},
		{B: []byte("s2"), T: frame.Data, Msg: Message{Conv: "g", Seq: 2, Sender: "a", Origin: 1}},
		{B: []byte("s3"), T: frame.Data, Msg: Message{Conv: "g", Seq: 3, Sender: "b"}},
	}
	n, missing := h.DeliverAll([]string{"a", "b", "c", "a"}, fs)
	got := func(c *fakeConn) string { return fmt.Sprintf("%s", c.got) }
	if got(phone) != "[s1 s3]" || got(laptop) != "[s1 s2 s3]" || got(bob) != "[s1 s2 s3]" {
		t.Fatalf("phone %s laptop %s bob %s", got(phone), got(laptop), got(bob))
	}
	// Bob's seq 1 counts as taken; "c" has no socket here.
	if n != 2+3+3 || fmt.Sprint(missing) != "[c]" {
		t.Fatalf("delivered %d, missing %v", n, missing)
	}
}
