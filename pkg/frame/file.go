package frame

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"easychat/pkg/ident"
)

// File is the content of an image or file message (mType ImageMsg or
// FileMsg), carried as a JSON string in msg.content: the object's key in the
// file store and what it holds. Width and Height are an image's pixels.
type File struct {
	Key    string `json:"key"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Type   string `json:"type"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
}

// Bounds of a file's description.
const (
	MaxFileName  = 255
	MaxImageSide = 16384
	maxFileType  = 100
)

// ImageTypes are the media types shown inline as images; every other type
// is only ever served as an attachment.
var ImageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// SniffType is the media type of content judged from its first bytes only
// (at most 512 are looked at), without parameters such as charset: how the
// gateway judges an upload, and a client what it is about to send.
func SniffType(head []byte) string {
	t, _, err := mime.ParseMediaType(http.DetectContentType(head))
	if err != nil {
		return "application/octet-stream"
	}
	return t
}

// ErrFile is the error of a file message whose content is not a File of its
// conversation and sender.
var ErrFile = errors.New("msg.content: not a file of this conversation (see the file API)")

// FileKeyPrefix is how keys of files that user uploaded to conversation conv
// begin: the conversation first, so that membership of it is what grants a
// download, then the uploader.
func FileKeyPrefix(conv, user string) string { return conv + "/" + user + "/" }

// ParseFile decodes and checks the content of a message of type mType that
// user sends to conversation conv.
func ParseFile(mType int, content, conv, user string) (File, error) {
	var f File
	if err := json.Unmarshal([]byte(content), &f); err != nil {
		return File{}, fmt.Errorf("msg.content: a file message's content is a JSON object: %w", err)
	}
	if err := ValidFileName(f.Name); err != nil {
		return File{}, err
	}
	rest, ok := strings.CutPrefix(f.Key, FileKeyPrefix(conv, user))
	if !ok || !validKeyTail(rest) {
		return File{}, ErrFile
	}
	if f.Size <= 0 || f.Type == "" || len(f.Type) > maxFileType {
		return File{}, errors.New("msg.content: size and type are required")
	}
	switch {
	case mType == ImageMsg && !ImageTypes[f.Type]:
		return File{}, errors.New("msg.content: an image message needs an image type (jpeg, png, gif, webp)")
	case mType == ImageMsg && (f.Width <= 0 || f.Height <= 0 || f.Width > MaxImageSide || f.Height > MaxImageSide):
		return File{}, errors.New("msg.content: an image message needs its width and height")
	case mType == FileMsg && (f.Width != 0 || f.Height != 0) && !ImageTypes[f.Type]:
		return File{}, errors.New("msg.content: only images have a width and height")
	}
	return f, nil
}

// ValidFileName checks a file's name as users give it: its base name only.
func ValidFileName(name string) error {
	if name == "" || len(name) > MaxFileName || !utf8.ValidString(name) || name == "." || name == ".." {
		return fmt.Errorf("file name: 1-%d bytes of UTF-8 are required", MaxFileName)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return errors.New("file name: no control characters, slashes or backslashes")
		}
	}
	return nil
}

// validKeyTail is the random part of a key: 32 lowercase hex digits.
func validKeyTail(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// IsFileKey reports whether key has the shape of a file key: a conversation,
// a user, and the random part.
func IsFileKey(key string) (conv, user string, ok bool) {
	i := strings.IndexByte(key, '/')
	if i <= 0 {
		return "", "", false
	}
	conv, rest := key[:i], key[i+1:]
	j := strings.IndexByte(rest, '/')
	if j <= 0 {
		return "", "", false
	}
	user = rest[:j]
	if !ident.IsConversation(conv) || !ident.IsUser(user) || !validKeyTail(rest[j+1:]) {
		return "", "", false
	}
	return conv, user, true
}
