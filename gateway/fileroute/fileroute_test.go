package fileroute

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"easychat/gateway/metrics"
	"easychat/pkg/blob"
	"easychat/pkg/filelink"
)

const key = "alice_bob/alice/0123456789abcdef0123456789abcdef"

func setup(t *testing.T) (*blob.Memory, filelink.Signer, *httptest.Server) {
	blobs := blob.NewMemory()
	links := filelink.New("internal-key-0123456789")
	srv := httptest.NewServer(&Handler{Blobs: blobs, Links: links, Metrics: metrics.New(), Log: slog.Default()})
	t.Cleanup(srv.Close)
	return blobs, links, srv
}

func putLink(links filelink.Signer, typ string, size int) string {
	return links.URL(filelink.Link{Op: filelink.Put, Key: key, Expires: time.Now().Add(time.Minute).UnixMilli(),
		Size: int64(size), Type: typ, Name: "x", User: "alice"})
}

func doPut(t *testing.T, url string, body []byte) int {
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// pngHeader is a PNG's signature and IHDR chunk claiming w×h pixels: what
// a decompression bomb shows before its data.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	b.Write(make([]byte, 64))
	return b.Bytes()
}

func TestImagesAreJudgedByTheirHeader(t *testing.T) {
	blobs, links, srv := setup(t)
	var good bytes.Buffer
	_ = png.Encode(&good, image.NewGray(image.Rect(0, 0, 5, 7)))
	for name, c := range map[string]struct {
		body []byte
		want int
	}{
		"a bomb's dimensions":     {pngHeader(100000, 100000), http.StatusUnprocessableEntity},
		"a header that is broken": {append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 40)...), http.StatusUnprocessableEntity},
	} {
		if got := doPut(t, srv.URL+putLink(links, "image/png", len(c.body)), c.body); got != c.want {
			t.Errorf("%s: %d, want %d", name, got, c.want)
		}
		if _, err := blobs.Stat(context.Background(), key); err == nil {
			t.Fatalf("%s: stored", name)
		}
	}
	if got := doPut(t, srv.URL+putLink(links, "image/png", good.Len()), good.Bytes()); got != http.StatusCreated {
		t.Fatalf("a good PNG: %d", got)
	}
	in, err := blobs.Stat(context.Background(), key)
	if err != nil || in.Width != 5 || in.Height != 7 || in.Type != "image/png" || in.Uploader != "alice" {
		t.Fatalf("stored %+v, %v", in, err)
	}
}

func TestHTMLIsNeverServedAsHTML(t *testing.T) {
	blobs, links, srv := setup(t)
	page := []byte("<html><script>alert(1)</script></html>")
	// Declared as text, the bytes are HTML: refused.
	if got := doPut(t, srv.URL+putLink(links, "text/plain", len(page)), page); got != http.StatusUnsupportedMediaType {
		t.Fatalf("HTML declared as text: %d", got)
	}
	// Even if stored under an HTML type, it is served as an attachment.
	blobs.Set(key, page, blob.Info{Size: int64(len(page)), Type: "text/html", Name: "p.html"})
	get := links.URL(filelink.Link{Op: filelink.Get, Key: key, Expires: time.Now().Add(time.Minute).UnixMilli()})
	res, err := http.Get(srv.URL + get)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") ||
		res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("served with %v", res.Header)
	}
	// A put link does not get, a get link does not put.
	if got := doPut(t, srv.URL+get, page); got != http.StatusForbidden {
		t.Fatalf("PUT on a get link: %d", got)
	}
	res, _ = http.Get(srv.URL + putLink(links, "text/plain", 1))
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("GET on a put link: %d", res.StatusCode)
	}
}

func TestImagesGetThumbnailsSmallOnesAreTheirOwn(t *testing.T) {
	blobs, links, srv := setup(t)
	get := func(thumb bool) *http.Response {
		u := links.URL(filelink.Link{Op: filelink.Get, Key: key, Expires: time.Now().Add(time.Minute).UnixMilli(), Thumb: thumb})
		res, err := http.Get(srv.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	var big bytes.Buffer
	_ = png.Encode(&big, image.NewGray(image.Rect(0, 0, 1000, 600)))
	if got := doPut(t, srv.URL+putLink(links, "image/png", big.Len()), big.Bytes()); got != http.StatusCreated {
		t.Fatalf("PUT: %d", got)
	}
	res := get(true)
	c, format, err := image.DecodeConfig(res.Body)
	res.Body.Close()
	if err != nil || format != "jpeg" || c.Width != ThumbSide || c.Height != 288 || res.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("thumbnail: %v %s %+v %v", err, format, c, res.Header)
	}
	res = get(false)
	c, format, _ = image.DecodeConfig(res.Body)
	res.Body.Close()
	if format != "png" || c.Width != 1000 {
		t.Fatalf("the image itself: %s %+v", format, c)
	}

	// A small image is served as it is for its thumbnail.
	_ = blobs.Delete(context.Background(), key)
	_ = blobs.Delete(context.Background(), filelink.ThumbKey(key))
	var small bytes.Buffer
	_ = png.Encode(&small, image.NewGray(image.Rect(0, 0, 40, 30)))
	if got := doPut(t, srv.URL+putLink(links, "image/png", small.Len()), small.Bytes()); got != http.StatusCreated {
		t.Fatalf("PUT: %d", got)
	}
	if _, ok := blobs.Bytes(filelink.ThumbKey(key)); ok {
		t.Fatal("a thumbnail made of a small image")
	}
	res = get(true)
	c, format, _ = image.DecodeConfig(res.Body)
	res.Body.Close()
	if format != "png" || c.Width != 40 {
		t.Fatalf("small image's thumbnail link: %s %+v", format, c)
	}
}

// An upload may take longer than an ordinary request is allowed (the
// gateway's GATEWAY_READ_TIMEOUT): the route gives it its own bound.
func TestSlowUploadOutlivesTheServersReadTimeout(t *testing.T) {
	blobs := blob.NewMemory()
	links := filelink.New("internal-key-0123456789")
	srv := httptest.NewUnstartedServer(&Handler{Blobs: blobs, Links: links, Metrics: metrics.New(), Log: slog.Default(), Timeout: time.Minute})
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	body := []byte("slow words, one part after another\n")
	pr, pw := io.Pipe()
	go func() {
		for i := range body {
			_, _ = pw.Write(body[i : i+1])
			time.Sleep(30 * time.Millisecond) // about a second in all
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+putLink(links, "text/plain", len(body)), pr)
	req.ContentLength = int64(len(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got, ok := blobs.Bytes(key); res.StatusCode != http.StatusCreated || !ok || !bytes.Equal(got, body) {
		t.Fatalf("slow upload: %d, stored %q", res.StatusCode, got)
	}
}

// One user's downloads share one bucket of bytes and a bound on transfers
// at once; another user's are not held up by them.
func TestDownloadsAreBoundedPerUser(t *testing.T) {
	blobs, links := blob.NewMemory(), filelink.New("internal-key-0123456789")
	// 64 KiB/s after 256 KiB: the rest of a 1 MiB file would take 12 s,
	// beyond the 2 s a transfer may last.
	q := NewQuota(64<<10, 256<<10, 2)
	srv := httptest.NewServer(&Handler{Blobs: blobs, Links: links, Metrics: metrics.New(), Log: slog.Default(),
		Timeout: 2 * time.Second, Quota: q})
	t.Cleanup(srv.Close)
	big, small, tiny := bytes.Repeat([]byte("b"), 1<<20), bytes.Repeat([]byte("s"), 200<<10), []byte("tiny")
	const smallKey, tinyKey = "alice_bob/alice/fedcba9876543210fedcba9876543210", "alice_bob/alice/00000000000000000000000000000000"
	blobs.Set(key, big, blob.Info{Size: int64(len(big)), Type: "application/pdf", Name: "big.pdf"})
	blobs.Set(smallKey, small, blob.Info{Size: int64(len(small)), Type: "application/pdf", Name: "small.pdf"})
	blobs.Set(tinyKey, tiny, blob.Info{Size: int64(len(tiny)), Type: "text/plain", Name: "tiny.txt"})
	get := func(user, k string) *http.Response {
		t.Helper()
		u := links.URL(filelink.Link{Op: filelink.Get, Key: k, Expires: time.Now().Add(time.Minute).UnixMilli(), User: user})
		res, err := http.Get(srv.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	// Mallory starts two downloads of the big file (her bound); both begin.
	var running []*http.Response
	for range 2 {
		res := get("mallory", key)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("mallory's download: %d", res.StatusCode)
		}
		running = append(running, res)
	}
	// A third waits for a turn; one that waits longer than allowed is
	// refused, with when to retry.
	q.mu.Lock()
	q.wait = 100 * time.Millisecond
	q.mu.Unlock()
	res := get("mallory", tinyKey)
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("mallory's third download at once: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	// Alice meanwhile gets a whole file.
	res = get("alice", smallKey)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || err != nil || !bytes.Equal(body, small) {
		t.Fatalf("alice's download during mallory's: %d, %d bytes, %v", res.StatusCode, len(body), err)
	}
	// A third that may wait long enough gets its turn when one ends.
	q.mu.Lock()
	q.wait = time.Minute
	q.mu.Unlock()
	third := make(chan []byte, 1)
	go func() {
		res := get("mallory", tinyKey)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b = []byte(res.Status)
		}
		third <- b
	}()
	// Mallory's two share 256 KiB, then 64 KiB/s: neither gets its
	// megabyte within the 2 s a transfer may last.
	got := 0
	for _, res := range running {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if len(b) == len(big) {
			t.Fatal("a download of mallory's was not slowed down")
		}
		got += len(b)
	}
	if got > 256<<10+3*64<<10 {
		t.Fatalf("mallory got %d bytes in all, more than her burst and 2 s of her rate", got)
	}
	if b := <-third; !bytes.Equal(b, tiny) {
		t.Fatalf("mallory's waiting download: %q", b)
	}
}

// A user may have only so many transfers waiting for a turn.
func TestQuotaBoundsWaiting(t *testing.T) {
	q := NewQuota(0, 0, 1)
	var us []*userQuota
	for range 1 + waitingPerTurn {
		u, err := q.ref("mallory")
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	if _, err := q.ref("mallory"); !errors.Is(err, errBusy) {
		t.Fatalf("one more than may wait: %v", err)
	}
	if _, err := q.ref("alice"); err != nil {
		t.Fatalf("another user: %v", err)
	}
	q.unref(us[0])
	if _, err := q.ref("mallory"); err != nil {
		t.Fatalf("after one left: %v", err)
	}
}
