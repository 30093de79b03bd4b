package frame

import (
	"encoding/json"
	"strings"
	"testing"
)

const (
	fconv = "alice_bob"
	fkey  = "alice_bob/alice/0123456789abcdef0123456789abcdef"
)

func content(t *testing.T, f File) string {
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseFile(t *testing.T) {
	img := File{Key: fkey, Name: "a.png", Size: 10, Type: "image/png", Width: 3, Height: 2}
	if got, err := ParseFile(ImageMsg, content(t, img), fconv, "alice"); err != nil || got != img {
		t.Fatalf("ParseFile = %+v, %v", got, err)
	}
	pdf := File{Key: fkey, Name: "r.pdf", Size: 10, Type: "application/pdf"}
	if _, err := ParseFile(FileMsg, content(t, pdf), fconv, "alice"); err != nil {
		t.Fatalf("a file: %v", err)
	}
	// An image may go as a file (its dimensions then too).
	if _, err := ParseFile(FileMsg, content(t, img), fconv, "alice"); err != nil {
		t.Fatalf("an image as a file: %v", err)
	}
	bad := map[string]struct {
		mType int
		f     File
		conv  string
		user  string
	}{
		"another uploader":     {ImageMsg, img, fconv, "bob"},
		"another conversation": {ImageMsg, img, "alice_carol", "alice"},
		"pdf as image":         {ImageMsg, pdf, fconv, "alice"},
		"image without size":   {ImageMsg, File{Key: fkey, Name: "a.png", Size: 10, Type: "image/png"}, fconv, "alice"},
		"huge image":           {ImageMsg, File{Key: fkey, Name: "a.png", Size: 10, Type: "image/png", Width: MaxImageSide + 1, Height: 1}, fconv, "alice"},
		"no bytes":             {FileMsg, File{Key: fkey, Name: "r.pdf", Type: "application/pdf"}, fconv, "alice"},
		"dimensions of a pdf":  {FileMsg, File{Key: fkey, Name: "r.pdf", Size: 1, Type: "application/pdf", Width: 1, Height: 1}, fconv, "alice"},
		"short key":            {FileMsg, File{Key: "alice_bob/alice/0123", Name: "r.pdf", Size: 1, Type: "application/pdf"}, fconv, "alice"},
		"traversal in key":     {FileMsg, File{Key: "alice_bob/alice/../bob/0123456789abcdef0123456789abcdef", Name: "r", Size: 1, Type: "text/plain"}, fconv, "alice"},
		"slash in name":        {FileMsg, File{Key: fkey, Name: "../etc/passwd", Size: 1, Type: "text/plain"}, fconv, "alice"},
		"control in name":      {FileMsg, File{Key: fkey, Name: "a\x1b[2Jb", Size: 1, Type: "text/plain"}, fconv, "alice"},
		"long name":            {FileMsg, File{Key: fkey, Name: strings.Repeat("n", MaxFileName+1), Size: 1, Type: "text/plain"}, fconv, "alice"},
	}
	for name, c := range bad {
		if _, err := ParseFile(c.mType, content(t, c.f), c.conv, c.user); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseFile(FileMsg, "not json", fconv, "alice"); err == nil {
		t.Error("accepted content that is not JSON")
	}
}

func TestChatValidatesFileContent(t *testing.T) {
	c := Chat{ChatType: SingleChat, RecvID: "bob", Msg: Msg{MType: ImageMsg, Content: "hello"}}
	if _, err := c.Validate("alice"); err == nil {
		t.Fatal("an image message with text content accepted")
	}
	c.Msg.Content = content(t, File{Key: fkey, Name: "a.png", Size: 10, Type: "image/png", Width: 3, Height: 2})
	if conv, err := c.Validate("alice"); err != nil || conv != fconv {
		t.Fatalf("Validate = %q, %v", conv, err)
	}
	c.Msg.MType = 7
	if _, err := c.Validate("alice"); err != ErrMType {
		t.Fatalf("mType 7: %v", err)
	}
}

func TestIsFileKey(t *testing.T) {
	for key, want := range map[string]bool{
		fkey: true,
		"g-abc/alice/0123456789abcdef0123456789abcdef":      true,
		"alice_bob/alice/0123456789ABCDEF0123456789abcdef":  false,
		"alice_bob//0123456789abcdef0123456789abcdef":       false,
		"/alice/0123456789abcdef0123456789abcdef":           false,
		"alice_bob/al ice/0123456789abcdef0123456789abcdef": false,
		"x/alice/0123456789abcdef0123456789abcdef":          false,
	} {
		if _, _, ok := IsFileKey(key); ok != want {
			t.Errorf("IsFileKey(%q) = %v, want %v", key, ok, want)
		}
	}
}

// FuzzParseFile: a file message's content comes from clients.
func FuzzParseFile(f *testing.F) {
	f.Add(ImageMsg, `{"key":"`+fkey+`","name":"a.png","size":10,"type":"image/png","width":3,"height":2}`)
	f.Add(FileMsg, `{"key":"`+fkey+`","name":"r.pdf","size":1,"type":"application/pdf"}`)
	f.Add(FileMsg, `{"key":1}`)
	f.Fuzz(func(t *testing.T, mType int, s string) {
		got, err := ParseFile(mType, s, fconv, "alice")
		if err != nil {
			return
		}
		if !strings.HasPrefix(got.Key, FileKeyPrefix(fconv, "alice")) || ValidFileName(got.Name) != nil || got.Size <= 0 {
			t.Fatalf("accepted %q as %+v", s, got)
		}
		if _, _, ok := IsFileKey(got.Key); !ok {
			t.Fatalf("accepted key %q", got.Key)
		}
	})
}

func TestSniff(t *testing.T) {
	for in, want := range map[string]string{
		"%PDF-1.4 ...":     "application/pdf",
		"plain words\n":    "text/plain",
		"PK\x03\x04rest":   "application/zip",
		"\x00\x01\x02\x03": "application/octet-stream",
		"GIF89a\x01\x00":   "image/gif",
		"<svg xmlns='x'/>": "text/plain", // never an image type: an SVG can carry script
	} {
		if got := SniffType([]byte(in)); got != want {
			t.Errorf("SniffType(%q) = %q, want %q", in, got, want)
		}
	}
}
