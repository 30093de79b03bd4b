// Package token issues and verifies the HS256 JWTs that identify users. The
// user id is the `sub` claim; nothing else in a request names the user.
package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DevSecret is the JWT secret used when JWT_SECRET is unset, for local runs only.
const DevSecret = "easychat-dev-jwt-secret"

// ErrInvalid is returned for any token that does not verify.
var ErrInvalid = errors.New("invalid token")

// Issuer signs and verifies tokens with one shared secret.
type Issuer struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

// New returns an Issuer; ttl is the lifetime of issued tokens.
func New(secret string, ttl time.Duration) *Issuer {
	return &Issuer{secret: []byte(secret), ttl: ttl, now: time.Now}
}

// Issue returns a signed token for user.
func (i *Issuer) Issue(user string) (string, error) {
	now := i.now()
	claims := jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(i.secret)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return s, nil
}

// Verify returns the user id of a valid, unexpired HS256 token.
func (i *Issuer) Verify(s string) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(s, &claims, func(*jwt.Token) (any, error) { return i.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(i.now))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if claims.Subject == "" {
		return "", fmt.Errorf("%w: no sub claim", ErrInvalid)
	}
	return claims.Subject, nil
}
