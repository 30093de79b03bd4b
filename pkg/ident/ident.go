// Package ident is the one validation of the ids a client can name: users,
// groups, conversations, messages and frames. Every id that enters the system
// (a frame, an API body, a member list, a receipt, a sync request, a token) is
// checked here, so storage keys built from ids ("group#user", "conv#seq")
// cannot be forged with separators and no id can grow a document or a log
// line without bound.
package ident

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"

	"easychat/pkg/reject"
)

// Shapes and bounds.
const (
	// MaxUser is the longest user id. User ids are 3–32 characters of
	// A-Z a-z 0-9 . - and start with a letter or digit; "_" joins two user
	// ids into a single conversation's id and "#" separates storage keys,
	// so neither may appear.
	MaxUser = 32
	// GroupPrefix starts every group id (and no user id): a group id is
	// "g-" and then 1–30 of a-z 0-9 -.
	GroupPrefix = "g-"
	MaxGroup    = 32
	// MaxFrameID bounds a client's frame id: 1–128 printable ASCII characters.
	MaxFrameID = 128
	// MsgIDLen is the length of a message id: lowercase hex.
	MsgIDLen = 32
)

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// IsUser reports whether s is a well-formed user id.
func IsUser(s string) bool {
	if len(s) < 3 || len(s) > MaxUser || !isAlnum(s[0]) || strings.HasPrefix(s, GroupPrefix) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// IsGroup reports whether s is a well-formed group id.
func IsGroup(s string) bool {
	if len(s) <= len(GroupPrefix) || len(s) > MaxGroup || !strings.HasPrefix(s, GroupPrefix) {
		return false
	}
	for i := len(GroupPrefix); i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Single returns the id of the single conversation of users a and b: the two
// ids sorted and joined with "_".
func Single(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "_" + b
}

// Peers splits a single conversation id into its two users; ok is false
// unless conv is exactly Single of two distinct well-formed user ids.
func Peers(conv string) (a, b string, ok bool) {
	a, b, cut := strings.Cut(conv, "_")
	if !cut || a >= b || !IsUser(a) || !IsUser(b) {
		return "", "", false
	}
	return a, b, true
}

// IsConversation reports whether s is a group id or a single conversation id.
func IsConversation(s string) bool {
	if IsGroup(s) {
		return true
	}
	_, _, ok := Peers(s)
	return ok
}

// IsMsgID reports whether s has the shape of a message id.
func IsMsgID(s string) bool {
	if len(s) != MsgIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// IsFrameID reports whether s is an acceptable client frame id.
func IsFrameID(s string) bool {
	if len(s) == 0 || len(s) > MaxFrameID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// User checks a user id named in field, as a client-facing refusal.
func User(field, s string) error {
	if !IsUser(s) {
		return reject.Invalid("%s: %q is not a user id (3-%d of A-Z a-z 0-9 . -, starting with a letter or digit)", field, Clip(s), MaxUser)
	}
	return nil
}

// Users checks every id of a list named field.
func Users(field string, ids []string) error {
	for _, s := range ids {
		if err := User(field, s); err != nil {
			return err
		}
	}
	return nil
}

// Group checks a group id named in field.
func Group(field, s string) error {
	if !IsGroup(s) {
		return reject.Invalid("%s: %q is not a group id", field, Clip(s))
	}
	return nil
}

// Conversation checks a conversation id named in field.
func Conversation(field, s string) error {
	if !IsConversation(s) {
		return reject.Invalid("%s: %q is not a conversation id", field, Clip(s))
	}
	return nil
}

// MsgIDs checks a list of message ids named field.
func MsgIDs(field string, ids []string) error {
	for _, s := range ids {
		if !IsMsgID(s) {
			return reject.Invalid("%s: %q is not a message id", field, Clip(s))
		}
	}
	return nil
}

// Name checks a display name (a group name, a nickname) named field: 1 to
// max bytes of valid UTF-8 without control or invisible format characters,
// which could forge or hide text where it is shown.
func Name(field, s string, max int) error {
	if s == "" || len(s) > max {
		return reject.Invalid("%s must be 1-%d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return reject.Invalid("%s is not valid UTF-8", field)
	}
	for _, r := range s {
		// Joiners (U+200C, U+200D) only shape emoji and scripts.
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d' || r == '\u2028' || r == '\u2029' {
			return reject.Invalid("%s holds a control character (%U)", field, r)
		}
	}
	return nil
}

// NewGroup returns a fresh random group id.
func NewGroup() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return GroupPrefix + hex.EncodeToString(b[:])
}

// Clip shortens an invalid id (or any client value) for an error text, so a huge id does not
// become a huge answer.
func Clip(s string) string {
	if len(s) > 40 {
		return strings.ToValidUTF8(s[:40], "") + "…"
	}
	return s
}
