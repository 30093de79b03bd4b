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
