package sign

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// memReplays is a minimal replay guard; package nonce has the real ones.
type memReplays struct {
	mu   sync.Mutex
	seen map[string]bool
	err  error
}

func (m *memReplays) Fresh(_ context.Context, n string, _ time.Time, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return false, m.err
	}
	if m.seen[n] {
		return false, nil
	}
	m.seen[n] = true
	return true, nil
}

func signed(s *Signer, path string, c Claim, body string, extra map[string]string) http.Header {
	req, _ := http.NewRequest(http.MethodPost, "http://x"+path, nil)
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	s.Sign(req, path, c, []byte(body))
	return req.Header
}

func TestSignVerify(t *testing.T) {
	ctx := context.Background()
	s := New("k1-0123456789abcdef")
	body := `{"a":1}`
	h := signed(s, "/function/chat", ForUser("alice"), body, map[string]string{"X-Easychat-Frame-Id": "f1", "X-Kafka-Topic": "t"})

	c, err := s.Verify(ctx, h, "/function/chat", []byte(body))
	if err != nil || c.User != "alice" || c.Component() {
		t.Fatalf("verify: %+v %v", c, err)
	}
	for name, tc := range map[string]struct {
		h    func(http.Header)
		path string
		body string
		want error
	}{
		"tampered body":     {nil, "/function/chat", `{"a":2}`, ErrBody},
		"other path":        {nil, "/function/transfer", body, ErrBad},
		"forged user":       {func(h http.Header) { h.Set(HeaderUser, "mallory") }, "", "", ErrBad},
		"user removed":      {func(h http.Header) { h.Del(HeaderUser) }, "", "", ErrBad},
		"caller changed":    {func(h http.Header) { h.Set(HeaderCaller, CallerComponent) }, "", "", ErrBad},
		"frame id changed":  {func(h http.Header) { h.Set("X-Easychat-Frame-Id", "f2") }, "", "", ErrBad},
		"header added":      {func(h http.Header) { h.Set("X-Easychat-Batch", "2") }, "", "", ErrBad},
		"header doubled":    {func(h http.Header) { h.Add("X-Easychat-Frame-Id", "f1") }, "", "", ErrBad},
		"body hash swapped": {func(h http.Header) { h.Set(HeaderBody, strings.Repeat("0", 64)) }, "", "", ErrBad},
		"unsigned":          {func(h http.Header) { h.Del(HeaderSig) }, "", "", ErrMissing},
	} {
		hh := h.Clone()
		if tc.h != nil {
			tc.h(hh)
		}
		path, b := tc.path, tc.body
		if path == "" {
			path, b = "/function/chat", body
		}
		if _, err := s.Verify(ctx, hh, path, []byte(b)); !errors.Is(err, tc.want) || !Refused(err) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// Headers outside the prefix are not bound (proxies add their own).
	hh := h.Clone()
	hh.Set("X-Kafka-Topic", "other")
	hh.Set("X-Forwarded-For", "1.2.3.4")
	if _, err := s.Verify(ctx, hh, "/function/chat", []byte(body)); err != nil {
		t.Fatalf("unbound header changed: %v", err)
	}
	if _, err := New("k2-0123456789abcdef").Verify(ctx, h, "/function/chat", []byte(body)); !errors.Is(err, ErrBad) {
		t.Fatalf("other key: %v", err)
	}
	old := New("k1-0123456789abcdef")
	old.now = func() time.Time { return time.Now().Add(-MaxSkew - time.Minute) }
	if _, err := s.Verify(ctx, old.Headers("/p", Component, nil), "/p", nil); !errors.Is(err, ErrExpired) {
		t.Fatalf("stale: %v", err)
	}
}

func TestReplayIsRefused(t *testing.T) {
	ctx := context.Background()
	r := &memReplays{seen: map[string]bool{}}
	s := New("k1-0123456789abcdef").WithReplays(r)
	h := s.Headers("/internal/push", Component, []byte("x"))
	c, err := s.Verify(ctx, h, "/internal/push", []byte("x"))
	if err != nil || !c.Component() || c.User != "" {
		t.Fatalf("first: %+v %v", c, err)
	}
	if _, err := s.Verify(ctx, h, "/internal/push", []byte("x")); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	// A forged call never reaches the guard, so it cannot fill it.
	forged := s.Headers("/internal/push", Component, []byte("y"))
	forged.Set(HeaderNonce, "n-forged")
	forged.Set(HeaderSig, strings.Repeat("a", 64))
	before := len(r.seen)
	if _, err := s.Verify(ctx, forged, "/internal/push", []byte("y")); !errors.Is(err, ErrBad) || len(r.seen) != before {
		t.Fatalf("forged: %v, guard grew %d → %d", err, before, len(r.seen))
	}
	// A guard that cannot answer is an outage, not a refusal.
	r.err = errors.New("redis down")
	_, err = s.Verify(ctx, s.Headers("/p", Component, nil), "/p", nil)
	if err == nil || Refused(err) {
		t.Fatalf("guard down: %v", err)
	}
}

func TestCheckBeforeBody(t *testing.T) {
	s := New("k1-0123456789abcdef")
	h := s.Headers("/internal/push", Component, []byte("big body"))
	p, err := s.Check(h, "/internal/push")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Body(context.Background(), []byte("other body")); !errors.Is(err, ErrBody) {
		t.Fatalf("body: %v", err)
	}
	if _, err := New("wrong-key-0123456789").Check(h, "/internal/push"); !errors.Is(err, ErrBad) {
		t.Fatalf("wrong key: %v", err)
	}
}

// FuzzVerify feeds arbitrary header values and bodies to the verifier: it
// must never panic, and must accept nothing that was not signed as is.
func FuzzVerify(f *testing.F) {
	// Deterministic, so that every fuzzing process knows the one good call.
	s := New("fuzz-key-0123456789")
	at := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return at }
	good := http.Header{}
	good.Set(HeaderTime, strconv.FormatInt(at.Unix(), 10))
	good.Set(HeaderNonce, "n1")
	good.Set(HeaderUser, "alice")
	good.Set(HeaderCaller, CallerUser)
	good.Set(HeaderBody, bodyHash([]byte(`{}`)))
	sig, _ := s.mac("/function/chat", good)
	good.Set(HeaderSig, sig)
	f.Add(good.Get(HeaderTime), good.Get(HeaderNonce), good.Get(HeaderUser), good.Get(HeaderCaller),
		good.Get(HeaderBody), good.Get(HeaderSig), []byte(`{}`))
	f.Add("", "", "", "", "", "", []byte(nil))
	f.Add("99999999999999999999", "n", "bob", "user", "zz", "zz", []byte("x"))
	f.Fuzz(func(t *testing.T, ts, nonce, user, caller, hash, sig string, body []byte) {
		h := http.Header{}
		for k, v := range map[string]string{HeaderTime: ts, HeaderNonce: nonce, HeaderUser: user,
			HeaderCaller: caller, HeaderBody: hash, HeaderSig: sig} {
			if v != "" {
				h.Set(k, v)
			}
		}
		c, err := s.Verify(context.Background(), h, "/function/chat", body)
		if err != nil {
			return
		}
		// Accepted: it must be exactly the signed call.
		for _, k := range []string{HeaderTime, HeaderNonce, HeaderUser, HeaderCaller, HeaderBody, HeaderSig} {
			if h.Get(k) != good.Get(k) {
				t.Fatalf("accepted a call that was not signed: %s = %q", k, h.Get(k))
			}
		}
		if string(body) != `{}` || c.User != "alice" || c.Caller != CallerUser {
			t.Fatalf("accepted %q as %+v", body, c)
		}
	})
}
