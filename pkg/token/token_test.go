package token

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestIssueVerify(t *testing.T) {
	i := New("secret", time.Hour)
	tok, err := i.Issue("alice")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := i.Verify(tok); err != nil || u != "alice" {
		t.Fatalf("verify: %q %v", u, err)
	}
	if _, err := New("other", time.Hour).Verify(tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong secret: %v", err)
	}
	expired := New("secret", time.Hour)
	expired.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	old, _ := expired.Issue("alice")
	if _, err := i.Verify(old); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expired: %v", err)
	}
	// alg=none and other algorithms are refused.
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Subject: "alice",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if _, err := i.Verify(none); !errors.Is(err, ErrInvalid) {
		t.Fatalf("alg none: %v", err)
	}
	noSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString([]byte("secret"))
	if _, err := i.Verify(noSub); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no sub: %v", err)
	}
	if _, err := i.Verify("garbage"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("garbage: %v", err)
	}
}

// FuzzVerify: no input is accepted but a token signed with the secret, and
// none makes the verifier panic.
func FuzzVerify(f *testing.F) {
	// Deterministic, so that every fuzzing process knows the one good token.
	i := New("fuzz-secret-0123456789", time.Hour)
	at := time.Unix(1_800_000_000, 0)
	i.now = func() time.Time { return at }
	good, _ := i.Issue("alice")
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := i.Verify(s)
		if err == nil && (s != good || u != "alice") {
			t.Fatalf("accepted %q as %q", s, u)
		}
	})
}
