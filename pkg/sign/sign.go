// Package sign authenticates calls between components (gateway → functions,
// connector → functions, functions → gateway push). Functions are reachable by
// anyone who can reach the FaaS gateway, so a caller proves it holds the shared
// key by an HMAC over the request; a user id travels only inside signed headers.
//
// What is signed: the target path, every X-Easychat-* header of the request
// (so any header that changes a call's meaning — frame id, method, batch,
// client address, the user, the kind of caller — cannot be altered or
// added), a timestamp, a random nonce and the SHA-256 of the body. The body
// hash travels in a header too, so a receiver can check the signature before
// it reads a large body. A receiver with a replay guard accepts each nonce
// once within the time window.
package sign

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Headers carried by a signed request. Every header with Prefix is covered
// by the signature.
const (
	Prefix       = "X-Easychat-"
	HeaderTime   = "X-Easychat-Time"   // unix seconds
	HeaderNonce  = "X-Easychat-Nonce"  // random, once per call
	HeaderUser   = "X-Easychat-User"   // the user the caller vouches for ("" for none)
	HeaderCaller = "X-Easychat-Caller" // CallerUser or CallerComponent
	HeaderBody   = "X-Easychat-Body-Sha256"
	HeaderSig    = "X-Easychat-Signature"
)

// Kinds of caller.
const (
	// CallerUser: the call is made for an end user (the gateway forwarding
	// a frame or an API request); User is that user, or "" when anonymous
	// (register, login).
	CallerUser = "user"
	// CallerComponent: a component's own call (the connector delivering a
	// Kafka record, a function pushing to a gateway, a batch of many users'
	// frames whose users are inside the signed body).
	CallerComponent = "component"
)

// MaxSkew bounds how old (or how far ahead) a signature may be; nonces are
// remembered at least this long on either side.
const MaxSkew = 2 * time.Minute

// DevKey is the published signing key of local development runs; programs use
// it only with the development switch (package secret).
const DevKey = "easychat-dev-internal-key"

var (
	ErrMissing  = errors.New("request is not signed")
	ErrBad      = errors.New("bad request signature")
	ErrExpired  = errors.New("request signature expired")
	ErrReplayed = errors.New("request was replayed")
	ErrBody     = errors.New("request body does not match its signature")
)

// Claim is what a verified call says about its caller.
type Claim struct {
	User   string
	Caller string
}

// Component reports whether the call is a component's own.
func (c Claim) Component() bool { return c.Caller == CallerComponent }

// ForUser is the claim of a call made for user ("" for an anonymous one).
func ForUser(user string) Claim { return Claim{User: user, Caller: CallerUser} }

// Component is the claim of a component's own call.
var Component = Claim{Caller: CallerComponent}

// Replays remembers nonces: Fresh reports whether nonce, of a call signed at
// time at, is seen for the first time, and remembers it for ttl.
type Replays interface {
	Fresh(ctx context.Context, nonce string, at time.Time, ttl time.Duration) (bool, error)
}

// Signer signs and verifies with one shared key.
type Signer struct {
	key     []byte
	now     func() time.Time
	replays Replays
}

// New returns a Signer for key. Without WithReplays it does not refuse
// replays; every receiver in the product sets one.
func New(key string) *Signer { return &Signer{key: []byte(key), now: time.Now} }

// WithReplays returns a copy of s that accepts each nonce once.
func (s *Signer) WithReplays(r Replays) *Signer {
	cp := *s
	cp.replays = r
	return &cp
}

// mac is the HMAC of path and the canonical X-Easychat-* headers of h.
func (s *Signer) mac(path string, h http.Header) (string, error) {
	var names []string
	for k, v := range h {
		ck := http.CanonicalHeaderKey(k)
		if !strings.HasPrefix(ck, Prefix) || ck == HeaderSig {
			continue
		}
		if len(v) != 1 {
			return "", fmt.Errorf("%w: header %s appears %d times", ErrBad, ck, len(v))
		}
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		return strings.Compare(strings.ToLower(a), strings.ToLower(b))
	})
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "easychat-sign-v2\n%s\n", path)
	for _, k := range names {
		fmt.Fprintf(m, "%s:%s\n", strings.ToLower(k), h[k][0])
	}
	return hex.EncodeToString(m.Sum(nil)), nil
}

func bodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

func nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Sign adds the signing headers to req for a call to path (the target's own
// path, e.g. "/function/chat" or "/internal/push"; callee and caller must
// agree on it) with claim c and body. The X-Easychat-* headers already on
// req are bound by the signature, so set them first.
func (s *Signer) Sign(req *http.Request, path string, c Claim, body []byte) {
	for k := range req.Header {
		// A header set twice cannot be signed unambiguously: keep the first.
		if ck := http.CanonicalHeaderKey(k); strings.HasPrefix(ck, Prefix) && len(req.Header[k]) > 1 {
			req.Header[k] = req.Header[k][:1]
		}
	}
	req.Header.Set(HeaderTime, strconv.FormatInt(s.now().Unix(), 10))
	req.Header.Set(HeaderNonce, nonce())
	if c.User != "" {
		req.Header.Set(HeaderUser, c.User)
	} else {
		req.Header.Del(HeaderUser)
	}
	req.Header.Set(HeaderCaller, c.Caller)
	req.Header.Set(HeaderBody, bodyHash(body))
	req.Header.Del(HeaderSig)
	sig, _ := s.mac(path, req.Header) // single values only, ensured above
	req.Header.Set(HeaderSig, sig)
}

// Headers returns the signing headers of a call to path with claim c and
// body, for callers that hand headers to another client (the connector-sdk).
func (s *Signer) Headers(path string, c Claim, body []byte) http.Header {
	req := &http.Request{Header: http.Header{}}
	s.Sign(req, path, c, body)
	return req.Header
}

// Pending is a call whose headers verified; its body is checked by Body.
type Pending struct {
	s     *Signer
	claim Claim
	nonce string
	at    time.Time
	hash  string
}

// Check verifies the signed headers of a call to path, before its body is
// read: a caller without the key is refused without reading what it sends.
func (s *Signer) Check(h http.Header, path string) (*Pending, error) {
	sig, ts := h.Get(HeaderSig), h.Get(HeaderTime)
	if sig == "" || ts == "" {
		return nil, ErrMissing
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, ErrBad
	}
	want, err := s.mac(path, h)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return nil, ErrBad
	}
	if d := s.now().Sub(time.Unix(sec, 0)); d > MaxSkew || d < -MaxSkew {
		return nil, ErrExpired
	}
	p := &Pending{s: s, claim: Claim{User: h.Get(HeaderUser), Caller: h.Get(HeaderCaller)},
		nonce: h.Get(HeaderNonce), at: time.Unix(sec, 0), hash: h.Get(HeaderBody)}
	if p.nonce == "" || p.hash == "" || (p.claim.Caller != CallerUser && p.claim.Caller != CallerComponent) {
		return nil, ErrBad
	}
	return p, nil
}

// Body checks that body is the one signed and, with a replay guard, that the
// call was not seen before; then the claim holds.
func (p *Pending) Body(ctx context.Context, body []byte) (Claim, error) {
	if !hmac.Equal([]byte(p.hash), []byte(bodyHash(body))) {
		return Claim{}, ErrBody
	}
	if p.s.replays != nil {
		// Twice the skew: a signature is valid from MaxSkew before its
		// time to MaxSkew after it.
		fresh, err := p.s.replays.Fresh(ctx, p.nonce, p.at, 2*MaxSkew+time.Minute)
		if err != nil {
			return Claim{}, fmt.Errorf("checking the call's nonce: %w", err)
		}
		if !fresh {
			return Claim{}, ErrReplayed
		}
	}
	return p.claim, nil
}

// Verify checks a call's headers and body; see Check and Pending.Body.
func (s *Signer) Verify(ctx context.Context, h http.Header, path string, body []byte) (Claim, error) {
	p, err := s.Check(h, path)
	if err != nil {
		return Claim{}, err
	}
	return p.Body(ctx, body)
}

// Refused reports whether err is the caller's fault (an unsigned, forged,
// stale or replayed call) rather than a failure to check (the replay guard
// unreachable).
func Refused(err error) bool {
	return errors.Is(err, ErrMissing) || errors.Is(err, ErrBad) || errors.Is(err, ErrExpired) ||
		errors.Is(err, ErrReplayed) || errors.Is(err, ErrBody)
}
