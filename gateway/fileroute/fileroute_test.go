package fileroute

import (
	"bytes"
	"context"
	"encoding/binary"
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

func TestSniff(t *testing.T) {
	for in, want := range map[string]string{
		"%PDF-1.4 ...":     "application/pdf",
		"plain words\n":    "text/plain",
		"PK\x03\x04rest":   "application/zip",
		"\x00\x01\x02\x03": "application/octet-stream",
		"GIF89a\x01\x00":   "image/gif",
		"<svg xmlns='x'/>": "text/plain", // never an image type: an SVG can carry script
	} {
		if got := Sniff([]byte(in)); got != want {
			t.Errorf("Sniff(%q) = %q, want %q", in, got, want)
		}
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
