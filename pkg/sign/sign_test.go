package sign

import (
	"errors"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	s := New("k1")
	body := []byte(`{"a":1}`)
	h := s.Headers("/function/chat", "alice", body)

	if u, err := s.Verify(h, "/function/chat", body); err != nil || u != "alice" {
		t.Fatalf("verify: %q %v", u, err)
	}
	if _, err := s.Verify(h, "/function/chat", []byte(`{"a":2}`)); !errors.Is(err, ErrBad) {
		t.Fatalf("tampered body: %v", err)
	}
	if _, err := s.Verify(h, "/function/transfer", body); !errors.Is(err, ErrBad) {
		t.Fatalf("other path: %v", err)
	}
	forged := h.Clone()
	forged.Set(HeaderUser, "mallory")
	if _, err := s.Verify(forged, "/function/chat", body); !errors.Is(err, ErrBad) {
		t.Fatalf("forged user: %v", err)
	}
	if _, err := New("k2").Verify(h, "/function/chat", body); !errors.Is(err, ErrBad) {
		t.Fatalf("other key: %v", err)
	}
	if _, err := s.Verify(nil, "/function/chat", body); !errors.Is(err, ErrMissing) {
		t.Fatalf("unsigned: %v", err)
	}
	old := New("k1")
	old.now = func() time.Time { return time.Now().Add(-MaxSkew - time.Minute) }
	if _, err := s.Verify(old.Headers("/p", "", nil), "/p", nil); !errors.Is(err, ErrExpired) {
		t.Fatalf("stale: %v", err)
	}
}
