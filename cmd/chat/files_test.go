package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"easychat/pkg/frame"
)

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// webpBytes is a lossless WebP's header (all DecodeConfig reads): a VP8L
// chunk with its signature and 14-bit width-1 and height-1.
func webpBytes(w, h int) []byte {
	bits := uint32(w-1) | uint32(h-1)<<14
	chunk := append([]byte{0x2f}, binary.LittleEndian.AppendUint32(nil, bits)...)
	chunk = append(chunk, 0, 0, 0) // (image data would follow)
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(4+8+len(chunk)))
	b = append(b, "WEBPVP8L"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(chunk)))
	return append(b, chunk...)
}

// widePNG is a PNG whose header claims w×h (its CRC fixed up).
func widePNG(t *testing.T, w, h int) []byte {
	b := pngBytes(t, 1, 1)
	ihdr := b[8+4 : 8+4+4+13] // "IHDR" and its data
	binary.BigEndian.PutUint32(ihdr[4:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[8:], uint32(h))
	binary.BigEndian.PutUint32(b[8+8+13:], crc32.ChecksumIEEE(ihdr))
	return b
}

func TestChooseKind(t *testing.T) {
	var jpg, gf bytes.Buffer
	_ = jpeg.Encode(&jpg, image.NewRGBA(image.Rect(0, 0, 40, 30)), nil)
	_ = gif.Encode(&gf, image.NewPaletted(image.Rect(0, 0, 7, 5), color.Palette{color.Black, color.White}), nil)
	bin := []byte{0, 1, 2, 3, 0xff, 0xfe, 0, 0, 9}
	for _, c := range []struct {
		what string
		data []byte
		want fileKind
	}{
		{"png", pngBytes(t, 640, 480), fileKind{frame.ImageMsg, "image/png", 640, 480}},
		{"jpeg", jpg.Bytes(), fileKind{frame.ImageMsg, "image/jpeg", 40, 30}},
		{"gif", gf.Bytes(), fileKind{frame.ImageMsg, "image/gif", 7, 5}},
		{"webp", webpBytes(3, 2), fileKind{frame.ImageMsg, "image/webp", 3, 2}},
		{"pdf", []byte("%PDF-1.7\n1 0 obj\n"), fileKind{MType: frame.FileMsg, Type: "application/pdf"}},
		{"text: no charset", []byte("hello, world\n"), fileKind{MType: frame.FileMsg, Type: "text/plain"}},
		{"zip (and docx)", []byte("PK\x03\x04\x14\x00\x00\x00"), fileKind{MType: frame.FileMsg, Type: "application/zip"}},
		{"html: sent as what it is", []byte("<!DOCTYPE html><p>hi"), fileKind{MType: frame.FileMsg, Type: "text/html"}},
		{"binary", bin, fileKind{MType: frame.FileMsg, Type: "application/octet-stream"}},
		{"svg is no image here", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>`), fileKind{MType: frame.FileMsg, Type: "text/xml"}},
	} {
		got, err := chooseKind(c.data)
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", c.what, got, err, c.want)
		}
	}
	for what, data := range map[string][]byte{
		"a png that does not decode": append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 40)...),
		"a png too wide":             widePNG(t, frame.MaxImageSide+1, 10),
	} {
		if k, err := chooseKind(data); err == nil {
			t.Errorf("%s: %+v, no error", what, k)
		}
	}
	if k, err := chooseKind(widePNG(t, frame.MaxImageSide, 3)); err != nil || k.Width != frame.MaxImageSide {
		t.Errorf("a png at the bound: %+v %v", k, err)
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KB", 48213: "47.1 KB",
		1258291: "1.2 MB", 20 << 20: "20.0 MB", 1<<20 - 1: "1.0 MB", 5 << 30: "5.0 GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

const fileKey = "alice_bob/bob/0123456789abcdef0123456789abcdef"

func fileContent(f frame.File) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func fileMsg(mType int, f frame.File) Message {
	return Message{MsgID: "m1", ConvID: "alice_bob", ChatType: frame.SingleChat, SendID: "bob", Seq: 12, SendTime: renderAt,
		MType: mType, Content: fileContent(f)}
}

func TestFileLines(t *testing.T) {
	img := frame.File{Key: fileKey, Name: "chart.png", Size: 48213, Type: "image/png", Width: 640, Height: 480}
	doc := frame.File{Key: fileKey, Name: "report.pdf", Size: 1258291, Type: "application/pdf"}
	mine := fileMsg(frame.FileMsg, doc)
	mine.SendID, mine.Seq = "alice", 0
	recalled := fileMsg(frame.ImageMsg, img)
	recalled.Recalled, recalled.RecalledBy, recalled.Content = true, "bob", ""
	otherConv := fileMsg(frame.FileMsg, frame.File{Key: "bob_carol/bob/0123456789abcdef0123456789abcdef", Name: "x", Size: 1, Type: "text/plain"})
	reacted := fileMsg(frame.FileMsg, doc)
	reacted.Reactions = map[string][]string{"👍": {"alice"}}
	for _, c := range []struct {
		what string
		m    Message
		want string
	}{
		{"image", fileMsg(frame.ImageMsg, img), "[14:07] @bob #12  bob: [image chart.png 47.1 KB 640×480]  /get #12"},
		{"file", fileMsg(frame.FileMsg, doc), "[14:07] @bob #12  bob: [file report.pdf 1.2 MB]  /get #12"},
		{"an image sent as a file", fileMsg(frame.FileMsg, img), "[14:07] @bob #12  bob: [file chart.png 47.1 KB]  /get #12"},
		{"mine, no seq yet: no handle to get", mine, "[14:07] @bob  me: [file report.pdf 1.2 MB]"},
		{"recalled", recalled, "[14:07] @bob #12  bob: ⌫ message recalled by bob"},
		{"reactions follow", reacted, "[14:07] @bob #12  bob: [file report.pdf 1.2 MB]  /get #12  👍 1"},
		{"a key of another conversation", otherConv, "[14:07] @bob #12  bob: [a file whose description cannot be read]"},
		{"not JSON", Message{SendID: "bob", Seq: 12, SendTime: renderAt, MType: frame.ImageMsg, Content: "hello"},
			"[14:07] @bob #12  bob: [an image whose description cannot be read]"},
		{"a type to come", Message{SendID: "bob", Seq: 12, SendTime: renderAt, MType: 7, Content: "{}"},
			"[14:07] @bob #12  bob: [a message of type 7, which this client cannot show]"},
	} {
		if got := msgLine("alice", withBob, c.m, renderNow); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.what, got, c.want)
		}
	}

	// A reply to a file message previews its name (the server's preview
	// carries it as content); one made here does the same.
	q := previewOf(fileMsg(frame.FileMsg, doc))
	if q.Content != "report.pdf" || q.MType != frame.FileMsg {
		t.Errorf("local preview %+v", q)
	}
	for _, c := range []struct {
		q    frame.Quote
		want string
	}{
		{*q, "  ↪ #12 bob: [file] report.pdf"},
		{frame.Quote{MsgID: "m1", Seq: 3, SendID: "alice", MType: frame.ImageMsg, Content: "cat.png"}, "  ↪ #3 me: [image] cat.png"},
		{frame.Quote{MsgID: "m1", Seq: 3, SendID: "bob", Recalled: true}, "  ↪ #3 message recalled"},
	} {
		if got := quoteLine("alice", c.q); got != c.want {
			t.Errorf("quote %+v: %q, want %q", c.q, got, c.want)
		}
	}

	// The list shows "[image]" and "[file] name".
	list := []ConvInfo{
		{ConversationID: "alice_bob", ChatType: frame.SingleChat, PeerID: "bob", UpdatedAt: 2,
			LastMsg: &LastMsg{SendID: "bob", SendTime: renderAt, Msg: frame.Msg{MType: frame.ImageMsg, Content: fileContent(img)}}},
		{ConversationID: "alice_carol", ChatType: frame.SingleChat, PeerID: "carol", UpdatedAt: 1,
			LastMsg: &LastMsg{SendID: "alice", SendTime: renderAt, Msg: frame.Msg{MType: frame.FileMsg, Content: fileContent(doc)}}},
		{ConversationID: "alice_dave", ChatType: frame.SingleChat, PeerID: "dave", UpdatedAt: 0,
			LastMsg: &LastMsg{SendID: "dave", SendTime: renderAt, Msg: frame.Msg{MType: frame.FileMsg, Recalled: true}}},
	}
	lines := listLines("alice", list, renderNow)
	for i, want := range []string{"[14:07] bob: [image]", "[14:07] me: [file] report.pdf", "[14:07] dave: ⌫ message recalled"} {
		if !strings.HasSuffix(lines[i], want) {
			t.Errorf("list line %q does not end in %q", lines[i], want)
		}
	}
}

// A reaction to a file message (any applied change) keeps the previews of
// replies to it at its name, never its JSON.
func TestRequoteOfFileMessage(t *testing.T) {
	s := NewStore("alice")
	const conv = "alice_bob"
	doc := frame.File{Key: fileKey, Name: "report.pdf", Size: 10, Type: "application/pdf"}
	p := push(conv, "bob", 1, "x")
	p.Msg.MType, p.Msg.Content = frame.FileMsg, fileContent(doc)
	s.Merge(p, FromPush)
	reply := push(conv, "carol", 2, "nice")
	reply.Msg.Quote = &frame.Quote{MsgID: p.Msg.MsgID, Seq: 1, SendID: "bob", MType: frame.FileMsg, Content: "report.pdf"}
	s.Merge(reply, FromPush)
	s.ApplyChange(changed(conv, frame.KindReact, "carol", p.Msg.MsgID, 1, 1, frame.Msg{MType: frame.FileMsg, Content: fileContent(doc),
		Reactions: map[string][]string{"👍": {"carol"}}}))
	m, _ := s.FindSeq(conv, 2)
	if m.Quote == nil || m.Quote.Content != "report.pdf" || m.Quote.MType != frame.FileMsg {
		t.Fatalf("quote after a reaction: %+v", m.Quote)
	}
}

// A file's name is the sender's: escape sequences, line breaks and bidi
// overrides in it are shown escaped, on one line, wherever it appears.
func TestHostileFileNamesPrintSafely(t *testing.T) {
	for _, name := range []string{
		"x" + evil,
		"a\n[12:22] @bob  bob: fake.pdf",
		"invoice\u202efdp.exe",
		"\u2066\u2067ok\u2069\u2028\x7f\u009b2K",
	} {
		f := frame.File{Key: fileKey, Name: name, Size: 5, Type: "image/png", Width: 1, Height: 1}
		m := fileMsg(frame.ImageMsg, f)
		m.Quote = &frame.Quote{MsgID: "m0", Seq: 1, SendID: "bob", MType: frame.FileMsg, Content: name}
		own := fileMsg(frame.FileMsg, f)
		list := []ConvInfo{{ConversationID: "alice_bob", ChatType: frame.SingleChat, PeerID: "bob",
			LastMsg: &LastMsg{SendID: "bob", Msg: frame.Msg{MType: frame.FileMsg, Content: fileContent(f)}}}}
		lines := map[string]string{
			"msgLine":     msgLine("alice", withBob, m, renderNow),
			"listLines":   listLines("alice", list, renderNow)[0],
			"sentSummary": printable(sentSummary(own)),
		}
		for what, l := range lines {
			if strings.ContainsAny(l, "\x1b\r\x7f\u009b\u202e\u2066\u2067\u2069\u2028") {
				t.Errorf("%s of %q: raw control or bidi characters in %q", what, name, l)
			}
			if want := strings.Count(l, "\n"); (what == "msgLine" && want != 1) || (what != "msgLine" && want != 0) {
				t.Errorf("%s of %q: %d line breaks in %q", what, name, want, l)
			}
			for _, part := range strings.Split(l, "\n") {
				if strings.HasPrefix(part, "[12:22]") {
					t.Errorf("%s of %q: a fake line %q", what, name, part)
				}
			}
			shown := printable(name)
			if what == "listLines" {
				shown = printable(oneLine(name, 50)) // the list folds blanks
			}
			if !strings.Contains(l, shown) {
				t.Errorf("%s of %q: the escaped name is not shown: %q", what, name, l)
			}
		}
	}
	// Spelled out for one of them.
	m := fileMsg(frame.FileMsg, frame.File{Key: fileKey, Name: "invoice\u202efdp.exe\n[12:22] x", Size: 2048, Type: "application/octet-stream"})
	if got, want := msgLine("alice", withBob, m, renderNow), `[14:07] @bob #12  bob: [file invoice\u202efdp.exe\n[12:22] x 2.0 KB]  /get #12`; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestSafeName(t *testing.T) {
	long := strings.Repeat("é", 150) + ".pdf" // 304 bytes
	for _, c := range []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"chart 2026 (final).png", "chart 2026 (final).png"},
		{"../../etc/passwd", "_.._etc_passwd"},
		{`..\..\win.ini`, `_.._win.ini`},
		{"/abs/path.txt", "_abs_path.txt"},
		{".bashrc", "bashrc"},
		{"...", "download"},
		{"..", "download"},
		{"", "download"},
		{" . x", "x"},
		{"a\x1b[2Kb\r\n.txt", "a[2Kb.txt"},
		{"invoice\u202efdp.exe", "invoicefdp.exe"},
		{"zero\u200bwidth\ufeff.txt", "zerowidth.txt"},
		{"ok\xff.txt", "ok_.txt"},
		{`a:b*c?"d<e>f|g.txt`, "a_b_c__d_e_f_g.txt"},
		{"trailing. . ", "trailing"},
		{"con.txt", "_con.txt"},
		{"LPT1", "_LPT1"},
		{"console.txt", "console.txt"},
		{"你好 👋.md", "你好 👋.md"},
		{long, strings.Repeat("é", 98) + ".pdf"},
	} {
		if got := safeName(c.in); got != c.want {
			t.Errorf("safeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCreateUniqueNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "report.pdf"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A dangling symlink is taken too: O_EXCL does not follow it.
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "report (2).pdf")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		f, p, err := createUnique(dir, "report.pdf")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		got = append(got, filepath.Base(p))
	}
	if strings.Join(got, "|") != "report (1).pdf|report (3).pdf|report (4).pdf" {
		t.Fatalf("created %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "report.pdf")); string(b) != "mine" {
		t.Fatal("overwritten")
	}
	if _, err := os.Stat(filepath.Join(dir, "nowhere")); err == nil {
		t.Fatal("wrote through the symlink")
	}
	f, p, err := createUnique(dir, "README")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f, p2, _ := createUnique(dir, "README"); filepath.Base(p) != "README" || filepath.Base(p2) != "README (1)" {
		t.Fatalf("no extension: %s, %s", p, p2)
	} else {
		f.Close()
	}
}

func TestDestination(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ dest, server, wantDir, wantName string }{
		{"", "../x.pdf", ".", "_x.pdf"},
		{dir, "../../x.pdf", dir, "_.._x.pdf"},
		{dir + "/", ".hidden", dir + "/", "hidden"},
		{filepath.Join(dir, "not-yet") + "/", "a.txt", filepath.Join(dir, "not-yet") + "/", "a.txt"},
		{filepath.Join(dir, "mine.pdf"), "../../x.pdf", dir + "/", "mine.pdf"}, // the user's own name
		{"out.bin", "x", ".", "out.bin"},
	} {
		d, n := destination(c.dest, c.server)
		if d != c.wantDir || n != c.wantName {
			t.Errorf("destination(%q, %q) = %q, %q; want %q, %q", c.dest, c.server, d, n, c.wantDir, c.wantName)
		}
	}
}

func TestParseFileCommands(t *testing.T) {
	for in, want := range map[string]Command{
		"/send chart.png":             {Kind: KindSendFile, Path: "chart.png"},
		"/file  my report.pdf ":       {Kind: KindSendFile, Path: "my report.pdf"},
		`/send "with spaces/a b.txt"`: {Kind: KindSendFile, Path: "with spaces/a b.txt"},
		"/get #12":                    {Kind: KindGet, Seq: 12},
		"/get 3 ~/Downloads/":         {Kind: KindGet, Seq: 3, Path: "~/Downloads/"},
		"/get #4 'my copy.pdf'":       {Kind: KindGet, Seq: 4, Path: "my copy.pdf"},
		"/GET #5 a b":                 {Kind: KindGet, Seq: 5, Path: "a b"},
	} {
		got, err := Parse(in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"/send", "/send   ", "/file", "/get", "/get x", "/get #0 a"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q): no error", in)
		}
	}
	for _, s := range []string{"/send <path>", "/get <#seq> [path]"} {
		if !strings.Contains(helpText, s) {
			t.Errorf("help lacks %q", s)
		}
	}
}

// fakeFiles is the file API and /files/ of the fake gateway, as the
// protocol has them: upload grants, PUT checked against the grant by the
// bytes, download links, GET.
type fakeFiles struct {
	mu      sync.Mutex
	files   map[string]*fakeFile // key → file
	n       int
	asks    []map[string]any // bodies of /api/file calls
	expires int64            // of download links
}

type fakeFile struct {
	frame.File
	data     []byte
	uploaded bool
}

var fakeTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf", "text/plain", "application/zip", "application/octet-stream"}

func serveFiles(g *fakeGateway) *fakeFiles {
	ff := &fakeFiles{files: map[string]*fakeFile{}, expires: 1 << 50}
	fail := func(w http.ResponseWriter, status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	g.mux.HandleFunc("/api/file", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			fail(w, 401, "sign in")
			return
		}
		var req struct {
			Action, ConversationID, Name, Type string
			Size                               int64
			Keys                               []string
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		var asked map[string]any
		_ = json.Unmarshal(body, &asked)
		ff.mu.Lock()
		defer ff.mu.Unlock()
		ff.asks = append(ff.asks, asked)
		switch req.Action {
		case "upload":
			if err := frame.ValidFileName(req.Name); err != nil {
				fail(w, 400, err.Error())
				return
			}
			if !strings.Contains(req.ConversationID, "alice") {
				fail(w, 403, "not part of conversation "+req.ConversationID)
				return
			}
			allowed := false
			for _, t := range fakeTypes {
				allowed = allowed || t == req.Type
			}
			if !allowed {
				fail(w, 415, fmt.Sprintf("type not allowed: %q (allowed: %s)", req.Type, strings.Join(fakeTypes, ", ")))
				return
			}
			ff.n++
			key := fmt.Sprintf("%s/alice/%032x", req.ConversationID, ff.n)
			ff.files[key] = &fakeFile{File: frame.File{Key: key, Name: req.Name, Size: req.Size, Type: req.Type}}
			_ = json.NewEncoder(w).Encode(map[string]any{"key": key, "url": "/files/" + key + "?t=put", "method": "PUT", "expires": 1})
		case "download":
			urls := map[string]string{}
			for _, k := range req.Keys {
				urls[k] = "/files/" + k + "?t=get"
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"urls": urls, "expires": ff.expires})
		}
	})
	g.mux.HandleFunc("/files/", func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/files/")
		ff.mu.Lock()
		defer ff.mu.Unlock()
		f := ff.files[key]
		switch {
		case f == nil:
			fail(w, 404, "file not found (deleted or recalled)")
		case r.Method == http.MethodPut && r.URL.Query().Get("t") == "put":
			data, _ := io.ReadAll(r.Body)
			if int64(len(data)) != f.Size {
				fail(w, 400, "the body must be exactly the declared size")
				return
			}
			t, _, _ := mime.ParseMediaType(http.DetectContentType(data))
			if t != f.Type {
				fail(w, 415, fmt.Sprintf("content is %s, declared %s", t, f.Type))
				return
			}
			if frame.ImageTypes[t] {
				c, _, err := image.DecodeConfig(bytes.NewReader(data))
				if err != nil {
					fail(w, 422, "image could not be read")
					return
				}
				f.Width, f.Height = c.Width, c.Height
			}
			f.data, f.uploaded = data, true
			w.WriteHeader(201)
			_ = json.NewEncoder(w).Encode(frame.File{Key: key, Size: f.Size, Type: f.Type, Width: f.Width, Height: f.Height})
		case r.Method == http.MethodGet && r.URL.Query().Get("t") == "get" && f.uploaded:
			w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
			_, _ = w.Write(f.data)
		default:
			fail(w, 403, "invalid file link")
		}
	})
	return ff
}

// /send uploads through the file API and the PUT link, then sends the chat
// as text is sent (the outbox, acked); what the server gets passes its own
// check of a file message.
func TestSendFile(t *testing.T) {
	g := newFakeGateway(t)
	g.storeChats = true
	ff := serveFiles(g)
	app, out := startApp(t, g)
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	chart := write("chart.png", pngBytes(t, 640, 480))
	report := write("report.pdf", []byte("%PDF-1.7\n"+strings.Repeat("x", 3000)))
	page := write("page.html", []byte("<html><body>hi</body></html>"))
	big := filepath.Join(dir, "big.bin")
	if f, err := os.Create(big); err != nil {
		t.Fatal(err)
	} else {
		_ = f.Truncate(maxFileBytes + 1) // sparse
		f.Close()
	}

	app.Handle(ctx, Command{Kind: KindSendFile, Path: chart})
	if !strings.Contains(out.String(), "no open conversation") {
		t.Fatalf("sent with no conversation open:\n%s", out.String())
	}
	app.Handle(ctx, Command{Kind: KindOpen, ID: "bob"})
	app.Handle(ctx, Command{Kind: KindSendFile, Path: chart})
	app.Handle(ctx, Command{Kind: KindSend, Text: "that was the chart"})
	app.Handle(ctx, Command{Kind: KindSendFile, Path: report})
	waitFor(t, "three acks", func() bool { return strings.Count(out.String(), "✓ sent to @bob") == 3 })

	g.mu.Lock()
	chats := append([]frame.Chat(nil), g.chats...)
	g.mu.Unlock()
	if len(chats) != 3 {
		t.Fatalf("%d chats", len(chats))
	}
	want := []struct {
		mType int
		file  frame.File
	}{
		{frame.ImageMsg, frame.File{Name: "chart.png", Size: int64(len(pngBytes(t, 640, 480))), Type: "image/png", Width: 640, Height: 480}},
		{frame.TextMsg, frame.File{}},
		{frame.FileMsg, frame.File{Name: "report.pdf", Size: 3009, Type: "application/pdf"}},
	}
	for i, c := range chats {
		if c.Msg.MType != want[i].mType {
			t.Fatalf("chat %d: mType %d, want %d", i, c.Msg.MType, want[i].mType)
		}
		if _, err := c.Validate("alice"); err != nil {
			t.Fatalf("chat %d fails the server's check: %v (%s)", i, err, c.Msg.Content)
		}
		if c.Msg.MType == frame.TextMsg {
			continue
		}
		f, err := frame.ParseFile(c.Msg.MType, c.Msg.Content, "alice_bob", "alice")
		if err != nil {
			t.Fatal(err)
		}
		ff.mu.Lock()
		stored := ff.files[f.Key]
		ff.mu.Unlock()
		if stored == nil || !stored.uploaded || stored.Name != f.Name {
			t.Fatalf("chat %d names %s, not an upload", i, f.Key)
		}
		w := want[i].file
		w.Key = f.Key
		if f != w {
			t.Fatalf("chat %d: %+v, want %+v", i, f, w)
		}
	}
	// My messages show as files, and their seqs come as for text.
	waitFor(t, "the seqs", func() bool { return strings.Contains(out.String(), "✓ #3 in @bob: [file report.pdf 2.9 KB]") })
	if !strings.Contains(out.String(), "✓ #1 in @bob: [image chart.png "+humanSize(want[0].file.Size)+" 640×480]") {
		t.Fatalf("no seq of the image:\n%s", out.String())
	}

	// Refused before asking: a directory, a file too large; by the server: a type.
	ff.mu.Lock()
	asks := len(ff.asks)
	ff.mu.Unlock()
	app.Handle(ctx, Command{Kind: KindSendFile, Path: dir})
	app.Handle(ctx, Command{Kind: KindSendFile, Path: big})
	app.Handle(ctx, Command{Kind: KindSendFile, Path: filepath.Join(dir, "missing.txt")})
	ff.mu.Lock()
	if len(ff.asks) != asks {
		t.Errorf("asked the server for %d refused files", len(ff.asks)-asks)
	}
	ff.mu.Unlock()
	app.Handle(ctx, Command{Kind: KindSendFile, Path: page})
	text := out.String()
	for _, s := range []string{
		"! " + dir + " is a directory: /send takes one file",
		"! " + big + " is too large: 20971521 bytes (20.0 MB), at most 20971520 (20 MiB) can be sent",
		"missing.txt: no such file",
		"! page.html not sent: the server does not take files of type text/html (it takes image/jpeg, image/png",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("no %q in:\n%s", s, text)
		}
	}
	if app.pending() != 0 {
		t.Fatal("outbox not empty")
	}
}

// /get asks for a link for the message's key only then, downloads into the
// directory asked under the cleaned name, and never overwrites.
func TestGetFile(t *testing.T) {
	g := newFakeGateway(t)
	ff := serveFiles(g)
	const conv = "alice_bob"
	data := []byte("%PDF-1.7 the report")
	hostile := "../..\\.evil\u202efdp.exe"
	for i, name := range []string{"report.pdf", hostile} {
		key := fmt.Sprintf("%s/bob/%032x", conv, 100+i)
		ff.files[key] = &fakeFile{File: frame.File{Key: key, Name: name, Size: int64(len(data)), Type: "application/pdf"}, data: data, uploaded: true}
		p := push(conv, "bob", int64(i+1), fmt.Sprint("f", i))
		p.Msg.MType, p.Msg.Content = frame.FileMsg, fileContent(ff.files[key].File)
		g.add(p)
	}
	g.add(push(conv, "bob", 3, "just text"))
	app, out := startApp(t, g)
	ctx := context.Background()
	app.Handle(ctx, Command{Kind: KindOpen, ID: "bob"})
	if !strings.Contains(out.String(), "bob: [file report.pdf 19 B]  /get #1") {
		t.Fatalf("the file message is not shown:\n%s", out.String())
	}
	ff.mu.Lock()
	if len(ff.asks) != 0 {
		t.Fatalf("links asked for before /get: %v", ff.asks)
	}
	ff.mu.Unlock()

	dir := t.TempDir()
	app.Handle(ctx, Command{Kind: KindGet, Seq: 1, Path: dir})
	app.Handle(ctx, Command{Kind: KindGet, Seq: 1, Path: dir})
	app.Handle(ctx, Command{Kind: KindGet, Seq: 2, Path: dir})
	app.Handle(ctx, Command{Kind: KindGet, Seq: 1, Path: filepath.Join(dir, "copy.pdf")})
	app.Handle(ctx, Command{Kind: KindGet, Seq: 3, Path: dir})
	app.Handle(ctx, Command{Kind: KindGet, Seq: 9, Path: dir})
	app.Handle(ctx, Command{Kind: KindGet, Seq: 1, Path: filepath.Join(dir, "nope", "x.pdf")})
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if b, _ := os.ReadFile(filepath.Join(dir, e.Name())); !bytes.Equal(b, data) {
			t.Errorf("%s holds %q", e.Name(), b)
		}
	}
	sort.Strings(names)
	if got := strings.Join(names, "|"); got != "_.._.evilfdp.exe|copy.pdf|report (1).pdf|report.pdf" {
		t.Fatalf("saved %q", got)
	}
	text := out.String()
	noFakeLines(t, text)
	for _, s := range []string{
		"↓ saved #1 to " + filepath.Join(dir, "report.pdf") + " (19 B)",
		"↓ saved #1 to " + filepath.Join(dir, "report (1).pdf"),
		"↓ saved #2 to " + filepath.Join(dir, "_.._.evilfdp.exe"),
		`bob: [file ../..\.evil\u202efdp.exe 19 B]  /get #2`,
		"! #3 is a text message: nothing to download",
		"! no message #9 in @bob",
		"! cannot save into " + filepath.Join(dir, "nope") + "/: not a directory",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("no %q in:\n%s", s, text)
		}
	}
	// One link asked per file: cached while it lives.
	ff.mu.Lock()
	if len(ff.asks) != 2 {
		t.Errorf("%d link requests: %v", len(ff.asks), ff.asks)
	}
	ff.mu.Unlock()

	// Recalled (the object deleted): nothing is written.
	ff.mu.Lock()
	for k, f := range ff.files {
		if f.Name == "report.pdf" {
			delete(ff.files, k)
		}
	}
	ff.mu.Unlock()
	app.Handle(ctx, Command{Kind: KindGet, Seq: 1, Path: dir})
	if !strings.Contains(out.String(), "! #1: the file is gone (recalled or deleted)") {
		t.Fatalf("no gone message:\n%s", out.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Fatalf("%d files after a failed /get", len(entries))
	}
	// Into the current directory by default.
	t.Chdir(t.TempDir())
	app.Handle(ctx, Command{Kind: KindGet, Seq: 2})
	if _, err := os.Stat("_.._.evilfdp.exe"); err != nil {
		t.Fatalf("not saved here: %v\n%s", err, out.String())
	}
}

// /edit of an image or file is refused here, before the server is asked.
func TestEditRefusedForFiles(t *testing.T) {
	g := newFakeGateway(t)
	g.storeChats = true
	serveFiles(g)
	app, out := startApp(t, g)
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "a.txt")
	_ = os.WriteFile(p, []byte("notes\n"), 0o644)
	app.Handle(ctx, Command{Kind: KindOpen, ID: "bob"})
	app.Handle(ctx, Command{Kind: KindSendFile, Path: p})
	waitFor(t, "the seq", func() bool { return strings.Contains(out.String(), "✓ #1 in @bob: [file a.txt 6 B]") })
	app.Handle(ctx, Command{Kind: KindEdit, Seq: 1, Text: "other"})
	if !strings.Contains(out.String(), "! #1 is a file: only text messages can be edited") {
		t.Fatalf("edit not refused:\n%s", out.String())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.changeReqs) != 0 {
		t.Fatalf("the server was asked: %v", g.changeReqs)
	}
}
