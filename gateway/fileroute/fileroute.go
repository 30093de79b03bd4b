// Package fileroute serves /files/<key> on the gateway's public listener:
// PUT streams an upload into the object store, GET streams a file back.
// Neither takes a bearer token (an <img> cannot send one): each request
// carries a link the file function signed after checking membership
// (package filelink). The page keeps talking to one origin, and the bytes
// never pass through a function.
//
// What is stored is judged by its bytes: the media type is sniffed from
// them and must be the one declared, an image's header must decode (its
// width and height are kept), and the size must be the declared size. Only
// images are ever shown inline; everything else is sent as an attachment,
// never sniffed, and sandboxed.
package fileroute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // image.DecodeConfig of the image types taken
	_ "image/jpeg"
	_ "image/png"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	_ "golang.org/x/image/webp"

	"easychat/gateway/metrics"
	"easychat/pkg/blob"
	"easychat/pkg/filelink"
	"easychat/pkg/frame"
)

// Handler serves /files/.
type Handler struct {
	Blobs   blob.Store
	Links   filelink.Signer
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// Timeout bounds one upload or download, body included (the server's
	// read timeout is for ordinary requests).
	Timeout time.Duration
	// Draining refuses new uploads while the gateway shuts down.
	Draining func() bool
	Now      func() time.Time
	// Quota bounds each user's transfers; nil: no bound.
	Quota *Quota
}

// sniffBytes is how much of an upload is read before storing it: enough
// for the type (512 bytes) and for an image's header, which in a JPEG may
// come after tens of kilobytes of metadata.
const sniffBytes = 256 << 10

// maxPixels bounds an image's area: clients decode what they show.
const maxPixels = 64 << 20

// Answer is the answer to an upload.
type Answer struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	Type   string `json:"type"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
}

// refusal is an answer with a status and a text for the client.
type refusal struct {
	status int
	msg    string
}

func (r *refusal) Error() string { return r.msg }

func refuse(status int, format string, a ...any) error {
	return &refusal{status: status, msg: fmt.Sprintf(format, a...)}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := "get"
	if r.Method == http.MethodPut {
		op = "put"
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() { h.Metrics.FileRequests.WithLabelValues(op, strconv.Itoa(sw.status)).Inc() }()
	key, ok := filelink.KeyOf(r.URL.EscapedPath())
	if !ok {
		h.fail(sw, refuse(http.StatusNotFound, "no such file"))
		return
	}
	// A transfer of many megabytes may take longer than an ordinary
	// request is allowed; it gets its own bound.
	rc := http.NewResponseController(sw)
	deadline := time.Now().Add(h.timeout())
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	linkOp := filelink.Get
	switch r.Method {
	case http.MethodPut:
		if h.Draining != nil && h.Draining() {
			h.fail(sw, refuse(http.StatusServiceUnavailable, "gateway is shutting down: retry"))
			return
		}
		linkOp = filelink.Put
	case http.MethodGet, http.MethodHead:
	default:
		sw.Header().Set("Allow", "GET, HEAD, PUT")
		h.fail(sw, refuse(http.StatusMethodNotAllowed, "GET, HEAD or PUT"))
		return
	}
	l, err := h.Links.Verify(r.URL.Query().Get("t"), linkOp, key, h.now())
	if err != nil {
		h.fail(sw, refuse(http.StatusForbidden, "%v", err))
		return
	}
	u, ok := h.begin(ctx, sw, l)
	if !ok {
		return
	}
	defer h.Quota.end(u)
	if linkOp == filelink.Put {
		h.put(ctx, sw, r, l)
	} else {
		h.get(ctx, sw, r, l, u)
	}
}

func (h *Handler) put(ctx context.Context, w http.ResponseWriter, r *http.Request, l filelink.Link) {
	a, err := h.store(ctx, r, l)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.Metrics.FileBytes.WithLabelValues("in").Add(float64(a.Size))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(a)
}

// store checks the upload against its link and stores it.
func (h *Handler) store(ctx context.Context, r *http.Request, l filelink.Link) (Answer, error) {
	if r.ContentLength >= 0 && r.ContentLength != l.Size {
		return Answer{}, refuse(http.StatusBadRequest, "the body must be exactly the declared %d bytes", l.Size)
	}
	switch _, err := h.Blobs.Stat(ctx, l.Key); {
	case err == nil:
		return Answer{}, refuse(http.StatusConflict, "already uploaded: ask for a new upload to send another file")
	case !errors.Is(err, blob.ErrNotFound):
		return Answer{}, err
	}
	body := http.MaxBytesReader(nil, r.Body, l.Size+1)
	head := make([]byte, min(l.Size, sniffBytes))
	n, err := io.ReadFull(body, head)
	if err != nil {
		return Answer{}, short(err, l.Size, int64(n))
	}
	in := blob.Info{Key: l.Key, Size: l.Size, Name: l.Name, Uploader: l.User, Type: frame.SniffType(head)}
	if in.Type != l.Type {
		return Answer{}, refuse(http.StatusUnsupportedMediaType, "content is %s, declared %s", in.Type, l.Type)
	}
	if frame.ImageTypes[in.Type] {
		c, _, err := image.DecodeConfig(bytes.NewReader(head))
		if err != nil {
			return Answer{}, refuse(http.StatusUnprocessableEntity, "image could not be read")
		}
		if c.Width <= 0 || c.Height <= 0 || c.Width > frame.MaxImageSide || c.Height > frame.MaxImageSide || c.Width*c.Height > maxPixels {
			return Answer{}, refuse(http.StatusUnprocessableEntity, "image too large: at most %d pixels a side and %d in all", frame.MaxImageSide, maxPixels)
		}
		in.Width, in.Height = c.Width, c.Height
	}
	rest := &counted{r: body}
	src := io.MultiReader(bytes.NewReader(head), rest)
	if err := h.Blobs.Put(ctx, l.Key, src, in); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return Answer{}, short(err, l.Size, int64(len(head))+rest.n)
		}
		return Answer{}, err
	}
	// The store took exactly Size bytes; a body with more was not the
	// declared file.
	if m, _ := io.ReadFull(body, make([]byte, 1)); m > 0 {
		_ = h.Blobs.Delete(context.WithoutCancel(ctx), l.Key)
		return Answer{}, refuse(http.StatusRequestEntityTooLarge, "the body is longer than the declared %d bytes", l.Size)
	}
	if needsThumb(in) {
		// A failure costs the readers bandwidth, not the upload: they get
		// the image itself.
		if err := h.thumbnail(ctx, in); err != nil {
			h.Log.Warn("no thumbnail made", "key", in.Key, "err", err)
		}
	}
	return Answer{Key: l.Key, Size: in.Size, Type: in.Type, Width: in.Width, Height: in.Height}, nil
}

// short is the refusal of a body that ended before its declared size.
func short(err error, size, got int64) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return refuse(http.StatusRequestEntityTooLarge, "the body is longer than the declared %d bytes", size)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return refuse(http.StatusBadRequest, "the body ended after %d of the declared %d bytes", got, size)
	}
	return refuse(http.StatusRequestTimeout, "the body was not received in time")
}

func (h *Handler) get(ctx context.Context, w http.ResponseWriter, r *http.Request, l filelink.Link, u *userQuota) {
	var (
		obj blob.Object
		in  blob.Info
		err error
	)
	if l.Thumb {
		obj, in, err = h.Blobs.Open(ctx, filelink.ThumbKey(l.Key))
	}
	if !l.Thumb || errors.Is(err, blob.ErrNotFound) {
		obj, in, err = h.Blobs.Open(ctx, l.Key)
	}
	if errors.Is(err, blob.ErrNotFound) {
		h.fail(w, refuse(http.StatusNotFound, "file not found (deleted or recalled)"))
		return
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	defer obj.Close()
	hd := w.Header()
	disposition := "attachment"
	if frame.ImageTypes[in.Type] {
		disposition = "inline"
		hd.Set("Content-Type", in.Type)
	} else {
		// Never rendered by the browser, whatever it is.
		hd.Set("Content-Type", "application/octet-stream")
	}
	name := in.Name
	if name == "" {
		name = "file"
	}
	hd.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": name}))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Referrer-Policy", "no-referrer")
	// Only in the user's own browser, and asked again each time it is
	// shown (a 304 while unchanged): a recalled file stops showing at once.
	hd.Set("Cache-Control", "private, no-cache")
	if u != nil && u.bytes != nil {
		w = &shaped{ResponseWriter: w, ctx: ctx, lim: u.bytes, burst: h.Quota.burst}
	}
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", in.Modified, obj)
	h.Metrics.FileBytes.WithLabelValues("out").Add(float64(cw.n))
}

// begin starts a transfer on l's user's quota (nil without one), waiting
// for a turn; false once it has been refused.
func (h *Handler) begin(ctx context.Context, w http.ResponseWriter, l filelink.Link) (*userQuota, bool) {
	if h.Quota == nil {
		return nil, true
	}
	who := l.User
	if who == "" {
		who = "key:" + l.Key // a link signed before links named their user
	}
	u, err := h.Quota.begin(ctx, who)
	if err != nil {
		h.Log.Warn("file transfer refused: too many at once", "user", who)
		w.Header().Set("Retry-After", "1")
		h.fail(w, refuse(http.StatusTooManyRequests, "too many file transfers at once: retry when one has ended"))
		return nil, false
	}
	return u, true
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	var rf *refusal
	if !errors.As(err, &rf) {
		h.Log.Error("file request failed", "err", err)
		rf = &refusal{status: http.StatusServiceUnavailable, msg: "file storage temporarily unavailable, retry"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Del("Content-Disposition")
	w.WriteHeader(rf.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": rf.msg})
}

func (h *Handler) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return 5 * time.Minute
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

type counted struct {
	r io.Reader
	n int64
}

func (c *counted) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
