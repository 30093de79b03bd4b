// Package sign authenticates calls between components (gateway → functions,
// connector → functions, functions → gateway push). Functions are reachable by
// anyone who can reach the FaaS gateway, so a caller proves it holds the shared
// key by an HMAC over the request; a user id travels only inside signed headers.
package sign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Headers carried by a signed request.
const (
	HeaderTime = "X-Easychat-Time"
	HeaderUser = "X-Easychat-User"
	HeaderSig  = "X-Easychat-Signature"
)

// MaxSkew bounds how old a signature may be, limiting replays.
const MaxSkew = 2 * time.Minute

// DevKey is the signing key used when none is configured, for local runs only.
const DevKey = "easychat-dev-internal-key"

var (
	ErrMissing = errors.New("request is not signed")
	ErrBad     = errors.New("bad request signature")
	ErrExpired = errors.New("request signature expired")
)

// Signer signs and verifies with one shared key.
type Signer struct {
	key []byte
	now func() time.Time
}

// New returns a Signer for key.
func New(key string) *Signer { return &Signer{key: []byte(key), now: time.Now} }

func (s *Signer) mac(ts, user, path string, body []byte) string {
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "%s\n%s\n%s\n", ts, user, path)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Headers returns the headers that sign body for a call to path on behalf of
// user (empty for a component's own calls). Path is the target's own path,
// e.g. "/function/chat" or "/internal/push"; callee and caller must agree on it.
func (s *Signer) Headers(path, user string, body []byte) http.Header {
	ts := strconv.FormatInt(s.now().Unix(), 10)
	h := http.Header{}
	h.Set(HeaderTime, ts)
	if user != "" {
		h.Set(HeaderUser, user)
	}
	h.Set(HeaderSig, s.mac(ts, user, path, body))
	return h
}

// Sign adds the signing headers to req for body.
func (s *Signer) Sign(req *http.Request, path, user string, body []byte) {
	for k, v := range s.Headers(path, user, body) {
		req.Header[k] = v
	}
}

// Verify checks headers signed for path and body, and returns the user they name.
func (s *Signer) Verify(h http.Header, path string, body []byte) (string, error) {
	sig, ts := h.Get(HeaderSig), h.Get(HeaderTime)
	if sig == "" || ts == "" {
		return "", ErrMissing
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", ErrBad
	}
	if d := s.now().Sub(time.Unix(sec, 0)); d > MaxSkew || d < -MaxSkew {
		return "", ErrExpired
	}
	user := h.Get(HeaderUser)
	if !hmac.Equal([]byte(sig), []byte(s.mac(ts, user, path, body))) {
		return "", ErrBad
	}
	return user, nil
}
