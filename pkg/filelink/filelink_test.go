package filelink

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const key = "alice_bob/alice/0123456789abcdef0123456789abcdef"

func TestLinkRoundTripAndRefusals(t *testing.T) {
	s := New("internal-key-0123456789")
	now := time.UnixMilli(1_800_000_000_000)
	l := Link{Op: Put, Key: key, Expires: now.Add(time.Minute).UnixMilli(), Size: 10, Type: "image/png", Name: "a.png", User: "alice"}
	tok := s.Token(l)
	got, err := s.Verify(tok, Put, key, now)
	if err != nil || got != l {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, l)
	}
	if !strings.HasPrefix(s.URL(l), "/files/"+key+"?t=") {
		t.Fatalf("URL %q", s.URL(l))
	}
	cases := map[string]func() error{
		"other op": func() error { _, err := s.Verify(tok, Get, key, now); return err },
		"other key": func() error {
			_, err := s.Verify(tok, Put, "alice_bob/bob/0123456789abcdef0123456789abcdef", now)
			return err
		},
		"other signer": func() error {
			_, err := New("another-key-0123456789").Verify(tok, Put, key, now)
			return err
		},
		"tampered payload": func() error {
			p, sig, _ := strings.Cut(tok, ".")
			_, err := s.Verify(p[:len(p)-2]+"AA."+sig, Put, key, now)
			return err
		},
		"no signature": func() error { p, _, _ := strings.Cut(tok, "."); _, err := s.Verify(p, Put, key, now); return err },
	}
	for name, f := range cases {
		if err := f(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.Verify(tok, Put, key, now.Add(time.Minute)); !errors.Is(err, ErrExpired) {
		t.Errorf("at expiry: err = %v, want ErrExpired", err)
	}
	// A link is not a signed call's key: the internal key itself does not
	// verify it.
	if New("").Token(l) == tok {
		t.Error("tokens do not depend on the key")
	}
}

func TestKeyOf(t *testing.T) {
	for path, want := range map[string]bool{
		"/files/" + key: true,
		"/files/alice_bob%2Falice%2F0123456789abcdef0123456789abcdef": true,
		"/files/../etc/passwd":                                 false,
		"/files/alice_bob/alice/xyz":                           false,
		"/files/alice_bob/alice/" + strings.Repeat("a", 33):    false,
		"/other/" + key:                                        false,
		"/files/g-x/../alice/0123456789abcdef0123456789abcdef": false,
	} {
		if _, ok := KeyOf(path); ok != want {
			t.Errorf("KeyOf(%q) ok = %v, want %v", path, ok, want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	s := New("fuzz-key-0123456789")
	now := time.UnixMilli(1_800_000_000_000)
	good := s.Token(Link{Op: Get, Key: key, Expires: now.Add(time.Hour).UnixMilli()})
	f.Add(good)
	f.Add("")
	f.Add("e30.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		l, err := s.Verify(tok, Get, key, now)
		if err == nil && (tok != good || l.Key != key) {
			t.Fatalf("accepted %q as %+v", tok, l)
		}
	})
}

// The longest name a file may have, in characters JSON escapes, still makes
// a link that verifies.
func TestLinkOfTheLongestEscapedName(t *testing.T) {
	s := New("internal-key-0123456789")
	now := time.UnixMilli(1_800_000_000_000)
	l := Link{Op: Put, Key: key, Expires: now.Add(time.Minute).UnixMilli(), Size: 1 << 20,
		Type: "application/octet-stream", Name: strings.Repeat("<", 255), User: "alice-0123456789abcdef0123456789"}
	if got, err := s.Verify(s.Token(l), Put, key, now); err != nil || got != l {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
}
