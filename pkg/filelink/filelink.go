// Package filelink makes and checks the signed links through which clients
// put and get the bytes of files at the gateway: an <img> cannot send a
// bearer token, so a link carries its own short-lived permission, granted by
// the file function after it checked membership. Links are signed with a key
// derived from the internal key, so a link is not a signed call and a signed
// call is not a link.
package filelink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"easychat/pkg/frame"
)

// Ops a link permits.
const (
	Put = "put"
	Get = "get"
)

// Path is where the gateway serves files: Path + key.
const Path = "/files/"

// Link is what a link permits: Op on Key until Expires (unix ms). A put
// link also fixes what may be put: exactly Size bytes of Type, from User,
// named Name.
type Link struct {
	Op      string `json:"o"`
	Key     string `json:"k"`
	Expires int64  `json:"e"`
	// Thumb asks for an image's thumbnail (the image itself when it has
	// none: small images and GIFs).
	Thumb bool   `json:"th,omitempty"`
	Size  int64  `json:"s,omitempty"`
	Type  string `json:"t,omitempty"`
	Name  string `json:"n,omitempty"`
	User  string `json:"u,omitempty"`
}

// ThumbKey is where the thumbnail of the image at key is stored.
func ThumbKey(key string) string { return key + ".thumb" }

// Signer signs and verifies links.
type Signer struct{ key []byte }

// New derives the link key from the internal key.
func New(internalKey string) Signer {
	m := hmac.New(sha256.New, []byte(internalKey))
	m.Write([]byte("easychat file links v1"))
	return Signer{key: m.Sum(nil)}
}

// maxToken bounds a token before any decoding: room for a put link of a
// 255-byte name, escaped (&, <, > take six bytes each in JSON).
const maxToken = 4096

// Errors of Verify; a client sees only that a link is invalid or expired.
var (
	ErrInvalid = errors.New("invalid file link")
	ErrExpired = errors.New("file link expired: ask for a new one")
)

// Token is l signed: base64url(JSON) "." base64url(HMAC).
func (s Signer) Token(l Link) string {
	b, _ := json.Marshal(l) // plain fields: cannot fail
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac(p))
}

// URL is the gateway-relative URL of l.
func (s Signer) URL(l Link) string {
	return Path + l.Key + "?t=" + s.Token(l)
}

func (s Signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Verify checks tok and returns its link if it permits op on key at now.
func (s Signer) Verify(tok, op, key string, now time.Time) (Link, error) {
	if len(tok) > maxToken {
		return Link{}, ErrInvalid
	}
	p, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return Link{}, ErrInvalid
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(p)) {
		return Link{}, ErrInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Link{}, ErrInvalid
	}
	var l Link
	if err := json.Unmarshal(b, &l); err != nil {
		return Link{}, ErrInvalid
	}
	if l.Op != op || l.Key != key {
		return Link{}, ErrInvalid
	}
	if _, _, ok := frame.IsFileKey(l.Key); !ok {
		return Link{}, ErrInvalid
	}
	if now.UnixMilli() >= l.Expires {
		return Link{}, ErrExpired
	}
	return l, nil
}

// KeyOf returns the key a request path names (Path + key, escaped or not).
func KeyOf(escapedPath string) (string, bool) {
	rest, ok := strings.CutPrefix(escapedPath, Path)
	if !ok {
		return "", false
	}
	key, err := url.PathUnescape(rest)
	if err != nil {
		return "", false
	}
	_, _, ok = frame.IsFileKey(key)
	return key, ok
}
