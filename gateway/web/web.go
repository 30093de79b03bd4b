// Package web is the browser client, embedded in the gateway binary and
// served on the public listener at "/". It is plain HTML, CSS and native
// JavaScript modules with no build step (static/app.js imports static/js by
// relative path): the page talks to the same origin only, the websocket at
// /ws (token in Sec-WebSocket-Protocol) and the HTTP API at /api/<function>.
// The model's tests are in modeltest, outside static, so they are not served.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// contentTypes is explicit so the answer does not depend on the host's
// MIME tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
}

// csp allows the page's own scripts, styles, images and connections (the
// websocket included) and nothing else.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type file struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the client: "/" is the page, "/<name>" a static file, any
// other path 404. Only GET and HEAD are allowed. It is meant to be mounted
// at "/" on a mux whose more specific patterns (/ws, /api/, /healthz,
// /readyz) take precedence.
func Handler() http.Handler {
	files := map[string]file{}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		files["/"+p] = file{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic(err)
	}
	files["/"] = files["/index.html"]
	return handler(files)
}

type handler map[string]file

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := h[r.URL.Path]
	if !ok || strings.Contains(r.URL.Path, "..") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("ETag", f.etag)
	// Revalidate every time: the files change with the binary, and the
	// ETag makes an unchanged file a 304.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if strings.HasPrefix(f.ctype, "text/html") {
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Frame-Options", "DENY")
	}
	// ServeContent answers If-None-Match and Range; the zero modtime keeps
	// Last-Modified out (the ETag is the validator).
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
