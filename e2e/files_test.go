package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"easychat/devstack/stack"
	"easychat/pkg/blob"
	"easychat/pkg/domain"
	"easychat/pkg/filelink"
	"easychat/pkg/frame"
	"easychat/pkg/token"
)

// Images and files: uploads through the gateway into the S3 store, messages
// that carry them, downloads on signed links, and what is refused.

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), 200, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var pdfBytes = []byte("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")

// grant asks the file function for an upload; it returns the status and
// the answer (key, url) or error.
func grant(t *testing.T, gwAddr, tok, conv, name, typ string, size int) (int, map[string]any) {
	t.Helper()
	return api(t, gwAddr, "file", tok, map[string]any{"action": "upload", "conversationId": conv,
		"name": name, "size": size, "type": typ})
}

// put sends body to a gateway-relative URL; it returns the status and answer.
func put(t *testing.T, gwAddr, url string, body io.Reader, size int64) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+gwAddr+url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("PUT %s answered %d %q", url, res.StatusCode, b)
	}
	return res.StatusCode, m
}

// uploaded asks for an upload, puts data and returns the content of a
// message that carries it.
func uploaded(t *testing.T, gwAddr, tok, conv, name, typ string, data []byte) frame.File {
	t.Helper()
	code, g := grant(t, gwAddr, tok, conv, name, typ, len(data))
	if code != http.StatusOK {
		t.Fatalf("upload of %s: %d %v", name, code, g)
	}
	code, a := put(t, gwAddr, g["url"].(string), bytes.NewReader(data), int64(len(data)))
	if code != http.StatusCreated {
		t.Fatalf("PUT of %s: %d %v", name, code, a)
	}
	f := frame.File{Key: a["key"].(string), Name: name, Size: int64(a["size"].(float64)), Type: a["type"].(string)}
	if w, ok := a["width"].(float64); ok {
		f.Width, f.Height = int(w), int(a["height"].(float64))
	}
	if f.Key != g["key"] || f.Size != int64(len(data)) {
		t.Fatalf("upload answered %v for grant %v", a, g)
	}
	return f
}

func fileMsg(t *testing.T, mType int, f frame.File) map[string]any {
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"mType": mType, "content": string(b)}
}

// links asks for download links of keys.
func links(t *testing.T, gwAddr, tok string, keys ...string) (int, map[string]any) {
	t.Helper()
	return api(t, gwAddr, "file", tok, map[string]any{"action": "download", "keys": keys})
}

func fetch(t *testing.T, gwAddr, url string, h http.Header) (*http.Response, []byte) {
	t.Helper()
	return httpDo(t, http.MethodGet, "http://"+gwAddr+url, nil, h)
}

func linkOf(t *testing.T, gwAddr, tok, key string) string {
	t.Helper()
	code, m := links(t, gwAddr, tok, key)
	if code != http.StatusOK {
		t.Fatalf("download links: %d %v", code, m)
	}
	u, _ := m["urls"].(map[string]any)[key].(string)
	if u == "" {
		t.Fatalf("no link for %s in %v", key, m)
	}
	return u
}

// fileScene is two users of a single conversation, alice connected.
type fileScene struct {
	s                      *stack.Stack
	gw                     *stack.Gateway
	addr, alice, bob, conv string
	ta, tb                 string
	ca                     *client
}

func newFileScene(t *testing.T) fileScene {
	s := system(t)
	gw := s.Gateways()[0]
	alice, bob := uid(t, "alice"), uid(t, "bob")
	return fileScene{s: s, gw: gw, addr: gw.Addr(), alice: alice, bob: bob, conv: frame.SingleConversationID(alice, bob),
		ta: tokenFor(t, s, alice), tb: tokenFor(t, s, bob), ca: dial(t, s, gw, alice)}
}

func TestImagesAndFilesReachMembersOnly(t *testing.T) {
	sc := newFileScene(t)
	s, gw, addr, alice, bob, conv, ta, tb, ca := sc.s, sc.gw, sc.addr, sc.alice, sc.bob, sc.conv, sc.ta, sc.tb, sc.ca
	cb := dial(t, s, gw, bob)
	tm := tokenFor(t, s, uid(t, "mallory"))

	img := pngBytes(t, 64, 48)
	fi := uploaded(t, addr, ta, conv, "chart.png", "image/png", img)
	if fi.Type != "image/png" || fi.Width != 64 || fi.Height != 48 {
		t.Fatalf("image upload %+v", fi)
	}
	imgID := ca.sent("i1", frame.SingleChat, bob, fileMsg(t, frame.ImageMsg, fi))
	p := pushData(t, cb.next(wait, isPush))
	got, err := frame.ParseFile(p.Msg.MType, p.Msg.Content, conv, alice)
	if p.Msg.MsgID != imgID || p.Msg.MType != frame.ImageMsg || err != nil || got != fi {
		t.Fatalf("push %+v (%v), want the image %+v", p, err, fi)
	}

	fp := uploaded(t, addr, ta, conv, "report final.pdf", "application/pdf", pdfBytes)
	ca.sent("f1", frame.SingleChat, bob, fileMsg(t, frame.FileMsg, fp))
	if p := pushData(t, cb.next(wait, isPush)); p.Msg.MType != frame.FileMsg || !strings.Contains(p.Msg.Content, fp.Key) {
		t.Fatalf("file push %+v", p)
	}

	// Bob, a member, downloads both: the image inline, the PDF only as an
	// attachment, neither ever sniffed.
	res, body := fetch(t, addr, linkOf(t, addr, tb, fi.Key), nil)
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, img) || res.Header.Get("Content-Type") != "image/png" ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), "inline") {
		t.Fatalf("image download: %d %v (%d bytes)", res.StatusCode, res.Header, len(body))
	}
	res, body = fetch(t, addr, linkOf(t, addr, tb, fp.Key), nil)
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, pdfBytes) ||
		res.Header.Get("Content-Type") != "application/octet-stream" ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") ||
		!strings.Contains(res.Header.Get("Content-Disposition"), "report final.pdf") {
		t.Fatalf("pdf download: %d %v", res.StatusCode, res.Header)
	}
	for _, h := range []string{"X-Content-Type-Options", "Content-Security-Policy"} {
		if res.Header.Get(h) == "" {
			t.Errorf("download without %s", h)
		}
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("download CSP %q is not sandboxed", res.Header.Get("Content-Security-Policy"))
	}
	// A small image is its own thumbnail.
	if _, m := links(t, addr, tb, fi.Key); true {
		res, body := fetch(t, addr, m["thumbs"].(map[string]any)[fi.Key].(string), nil)
		if res.StatusCode != http.StatusOK || !bytes.Equal(body, img) {
			t.Fatalf("small image's thumbnail: %d, %d bytes", res.StatusCode, len(body))
		}
	}
	// Range requests (resumed downloads, media players) work.
	res, body = fetch(t, addr, linkOf(t, addr, tb, fi.Key), http.Header{"Range": {"bytes=0-9"}})
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(body, img[:10]) {
		t.Fatalf("range: %d, %d bytes", res.StatusCode, len(body))
	}

	// Mallory, not in the conversation, gets no link, and a tampered or
	// foreign link opens nothing.
	if code, m := links(t, addr, tm, fi.Key); code != http.StatusForbidden {
		t.Fatalf("non-member download links: %d %v", code, m)
	}
	if code, m := grant(t, addr, tm, conv, "x.png", "image/png", 10); code != http.StatusForbidden {
		t.Fatalf("non-member upload: %d %v", code, m)
	}
	good := linkOf(t, addr, tb, fi.Key)
	tampered := strings.Replace(good, fi.Key, fp.Key, 1)
	if res, _ := fetch(t, addr, tampered, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a link for another key: %d", res.StatusCode)
	}
	if res, _ := fetch(t, addr, good[:len(good)-3]+"AAA", nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a link with a forged signature: %d", res.StatusCode)
	}
	if res, _ := fetch(t, addr, "/files/"+fi.Key, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("no link at all: %d", res.StatusCode)
	}

	// History carries the messages as sent.
	code, h := api(t, addr, "conversation", tb, map[string]any{"action": "history", "conversationId": conv})
	if code != http.StatusOK || !strings.Contains(mustJSON(t, h), fi.Key) || !strings.Contains(mustJSON(t, h), fp.Key) {
		t.Fatalf("history: %d %v", code, h)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUploadsAndFileMessagesAreChecked(t *testing.T) {
	sc := newFileScene(t)
	s, gw, addr, alice, bob, conv, ta, ca := sc.s, sc.gw, sc.addr, sc.alice, sc.bob, sc.conv, sc.ta, sc.ca

	// What is asked for is bounded.
	for name, c := range map[string]struct {
		typ  string
		size int
		want int
	}{
		"over the size limit": {"application/pdf", 20<<20 + 1, http.StatusRequestEntityTooLarge},
		"a type not taken":    {"image/svg+xml", 100, http.StatusUnsupportedMediaType},
		"no size":             {"image/png", 0, http.StatusBadRequest},
	} {
		if code, m := grant(t, addr, ta, conv, "x", c.typ, c.size); code != c.want {
			t.Errorf("%s: %d %v, want %d", name, code, m, c.want)
		}
	}
	if code, m := grant(t, addr, ta, conv, "../../etc/passwd", "text/plain", 10); code != http.StatusBadRequest {
		t.Errorf("a path as a name: %d %v", code, m)
	}

	// The bytes decide: a PDF declared as PNG is refused and not stored.
	code, g := grant(t, addr, ta, conv, "fake.png", "image/png", len(pdfBytes))
	if code != http.StatusOK {
		t.Fatalf("upload: %d %v", code, g)
	}
	key := g["key"].(string)
	if code, m := put(t, addr, g["url"].(string), bytes.NewReader(pdfBytes), int64(len(pdfBytes))); code != http.StatusUnsupportedMediaType ||
		!strings.Contains(m["error"].(string), "application/pdf") {
		t.Fatalf("PDF bytes declared PNG: %d %v", code, m)
	}
	ctx := context.Background()
	if _, err := s.Blobs.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("refused upload stored: %v", err)
	}
	ca.refused("x1", frame.MethodChat, map[string]any{"chatType": frame.SingleChat, "recvId": bob,
		"msg": fileMsg(t, frame.FileMsg, frame.File{Key: key, Name: "fake.png", Size: int64(len(pdfBytes)), Type: "image/png"})},
		"file not found")

	// The size is the declared one, no more, no less.
	img := pngBytes(t, 8, 8)
	_, g = grant(t, addr, ta, conv, "a.png", "image/png", len(img))
	if code, m := put(t, addr, g["url"].(string), bytes.NewReader(img[:len(img)-1]), int64(len(img)-1)); code != http.StatusBadRequest {
		t.Fatalf("short body: %d %v", code, m)
	}
	longer := io.MultiReader(bytes.NewReader(img), strings.NewReader("trailing"))
	if code, m := put(t, addr, g["url"].(string), longer, -1); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("longer chunked body: %d %v", code, m)
	}
	if _, err := s.Blobs.Stat(ctx, g["key"].(string)); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("over-long upload stored: %v", err)
	}
	// A link puts once.
	if code, m := put(t, addr, g["url"].(string), bytes.NewReader(img), int64(len(img))); code != http.StatusCreated {
		t.Fatalf("upload: %d %v", code, m)
	}
	if code, m := put(t, addr, g["url"].(string), bytes.NewReader(img), int64(len(img))); code != http.StatusConflict {
		t.Fatalf("second PUT on one link: %d %v", code, m)
	}
	good := frame.File{Key: g["key"].(string), Name: "a.png", Size: int64(len(img)), Type: "image/png", Width: 8, Height: 8}

	// The message must say what was stored, and be the uploader's.
	lying := good
	lying.Width = 4000
	ca.refused("x2", frame.MethodChat, map[string]any{"chatType": frame.SingleChat, "recvId": bob, "msg": fileMsg(t, frame.ImageMsg, lying)},
		"does not match")
	cb := dial(t, s, gw, bob)
	cb.refused("x3", frame.MethodChat, map[string]any{"chatType": frame.SingleChat, "recvId": alice, "msg": fileMsg(t, frame.ImageMsg, good)},
		"not a file of this conversation")
	ca.refused("x4", frame.MethodChat, map[string]any{"chatType": frame.SingleChat, "recvId": bob,
		"msg": map[string]any{"mType": frame.ImageMsg, "content": "not json"}}, "JSON")
	ca.sent("ok1", frame.SingleChat, bob, fileMsg(t, frame.ImageMsg, good))
	// A resend of the same frame is the same message; another message may
	// not take the file.
	ca.sent("ok1", frame.SingleChat, bob, fileMsg(t, frame.ImageMsg, good))
	ca.refused("ok2", frame.MethodChat, map[string]any{"chatType": frame.SingleChat, "recvId": bob, "msg": fileMsg(t, frame.ImageMsg, good)},
		"already sent")
	// Only text is edited.
	id := ca.sent("ok3", frame.SingleChat, bob, fileMsg(t, frame.FileMsg, uploaded(t, addr, ta, conv, "b.pdf", "application/pdf", pdfBytes)))
	waitMessage(t, ctx, conv, id)
	ca.refused("e1", frame.MethodEdit, map[string]any{"conversationId": conv, "msgId": id, "content": "x"}, "only text")
}

// waitMessage waits until message id of conv is stored.
func waitMessage(t *testing.T, ctx context.Context, conv, id string) domain.Message {
	t.Helper()
	st := openSystemStore(t, ctx)
	deadline := time.Now().Add(wait)
	for {
		m, err := st.Message(ctx, id)
		if err == nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s of %s not stored: %v", id, conv, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRecallDeletesTheFile(t *testing.T) {
	sc := newFileScene(t)
	s, addr, bob, conv, ta, tb, ca := sc.s, sc.addr, sc.bob, sc.conv, sc.ta, sc.tb, sc.ca
	ctx := context.Background()

	f := uploaded(t, addr, ta, conv, "oops.png", "image/png", pngBytes(t, 800, 500))
	id := ca.sent("r1", frame.SingleChat, bob, fileMsg(t, frame.ImageMsg, f))
	waitMessage(t, ctx, conv, id)
	link := linkOf(t, addr, tb, f.Key)
	// Readers are shown a thumbnail of at most 480 pixels a side.
	_, m := links(t, addr, tb, f.Key)
	res, body := fetch(t, addr, m["thumbs"].(map[string]any)[f.Key].(string), nil)
	c, format, err := image.DecodeConfig(bytes.NewReader(body))
	if res.StatusCode != http.StatusOK || err != nil || format != "jpeg" || c.Width != 480 || c.Height != 300 {
		t.Fatalf("thumbnail: %d %v %s %+v", res.StatusCode, err, format, c)
	}
	ca.mustCall("r2", frame.MethodRecall, map[string]any{"conversationId": conv, "msgId": id})
	ca.changed(frame.KindRecall)

	for _, k := range []string{f.Key, filelink.ThumbKey(f.Key)} {
		if _, err := s.Blobs.Stat(ctx, k); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("recalled file still stored at %s: %v", k, err)
		}
	}
	if res, _ := fetch(t, addr, link, nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("download of a recalled file: %d", res.StatusCode)
	}
	stored := waitMessage(t, ctx, conv, id)
	if !stored.Msg.Recalled || stored.Msg.Content != "" {
		t.Fatalf("stored after recall: %+v", stored.Msg)
	}
}

// An upload no message uses is deleted once older than FILE_ORPHAN_TTL (4 s
// in this suite): the next upload request sweeps. One a message uses stays.
func TestOrphanUploadsAreDeleted(t *testing.T) {
	sc := newFileScene(t)
	s, addr, bob, conv, ta, ca := sc.s, sc.addr, sc.bob, sc.conv, sc.ta, sc.ca
	ctx := context.Background()

	orphan := uploaded(t, addr, ta, conv, "never-sent.png", "image/png", pngBytes(t, 8, 8))
	kept := uploaded(t, addr, ta, conv, "sent.pdf", "application/pdf", pdfBytes)
	ca.sent("k1", frame.SingleChat, bob, fileMsg(t, frame.FileMsg, kept))

	deadline := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(time.Second)
		// Any upload request sweeps (at most once a second here).
		if code, m := grant(t, addr, ta, conv, "nudge.txt", "text/plain", 5); code != http.StatusOK {
			t.Fatalf("upload: %d %v", code, m)
		}
		_, err := s.Blobs.Stat(ctx, orphan.Key)
		if errors.Is(err, blob.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan upload still stored after 30 s: %v", err)
		}
	}
	if _, err := s.Blobs.Stat(ctx, kept.Key); err != nil {
		t.Fatalf("a sent file was deleted: %v", err)
	}
	// Swept is gone for good: a message may not name it any more.
	ca.refused("k2", frame.MethodChat, map[string]any{"chatType": frame.SingleChat, "recvId": bob, "msg": fileMsg(t, frame.ImageMsg, orphan)},
		"not found")
}

// BenchmarkFileRoundTrip measures one file's whole way through the embedded
// system: the upload grant, the PUT through the gateway into the S3 store,
// the download link and the GET back.
//
//	go test -run '^$' -bench FileRoundTrip -benchtime 50x ./e2e
func BenchmarkFileRoundTrip(b *testing.B) {
	s := system(b)
	addr := s.Gateways()[0].Addr()
	for _, size := range []int{64 << 10, 4 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			data := bytes.Repeat([]byte("easychat "), size/9+1)[:size]
			b.SetBytes(int64(size))
			var user, tok, conv string
			for i := 0; b.Loop(); i++ {
				// A user uploads 100 an hour (FILE_UPLOAD_LIMIT) and downloads
				// 64 MiB at once before the gateway slows them down: the
				// round trip is measured within both.
				if i%10 == 0 {
					user = fmt.Sprintf("bench-%x", time.Now().UnixNano())
					var err error
					if tok, err = token.New(s.JWTSecret(), time.Hour).Issue(user); err != nil {
						b.Fatal(err)
					}
					conv = frame.SingleConversationID(user, "bench-peer")
				}
				g := benchAPI(b, addr, tok, map[string]any{"action": "upload", "conversationId": conv,
					"name": "bench.txt", "size": size, "type": "text/plain"})
				req, _ := http.NewRequest(http.MethodPut, "http://"+addr+g["url"].(string), bytes.NewReader(data))
				res, err := http.DefaultClient.Do(req)
				if err != nil || res.StatusCode != http.StatusCreated {
					b.Fatalf("PUT: %v %v", res, err)
				}
				res.Body.Close()
				key := g["key"].(string)
				l := benchAPI(b, addr, tok, map[string]any{"action": "download", "keys": []string{key}})
				res, err = http.Get("http://" + addr + l["urls"].(map[string]any)[key].(string))
				if err != nil || res.StatusCode != http.StatusOK {
					b.Fatalf("GET: %v %v", res, err)
				}
				n, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if n != int64(size) {
					b.Fatalf("GET returned %d bytes", n)
				}
			}
		})
	}
}

func benchAPI(b *testing.B, addr, tok string, body any) map[string]any {
	js, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/file", bytes.NewReader(js))
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil || res.StatusCode != http.StatusOK {
		b.Fatalf("file API: %d %v %v", res.StatusCode, m, err)
	}
	return m
}
