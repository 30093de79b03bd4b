package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestServesPageAndAssetsWithTheirTypes(t *testing.T) {
	h := Handler()
	cases := []struct{ path, ctype, contains string }{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/app.js"`},
		{"/index.html", "text/html; charset=utf-8", "<title>Easy Chat</title>"},
		{"/app.js", "text/javascript; charset=utf-8", "from './js/model.js'"},
		{"/js/client.js", "text/javascript; charset=utf-8", "conversation.sync"},
		{"/style.css", "text/css; charset=utf-8", "@media"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, c := range cases {
		rec := get(t, h, http.MethodGet, c.path, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", c.path, rec.Code)
		}
		if got := rec.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if !strings.Contains(rec.Body.String(), c.contains) {
			t.Errorf("%s: body lacks %q", c.path, c.contains)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("ETag") == "" {
			t.Errorf("%s: headers %v", c.path, rec.Header())
		}
	}
	if csp := get(t, h, http.MethodGet, "/", nil).Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("page CSP %q", csp)
	}
}

// The page's modules import each other by relative path: every module
// reachable from /app.js is served, as JavaScript (a browser refuses a
// module of another type), and no file of static/ is left out.
func TestEveryImportedModuleIsServed(t *testing.T) {
	h := Handler()
	imports := regexp.MustCompile(`(?m)^(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'|^import\s+'([^']+)'`)
	seen := map[string]bool{"/app.js": true}
	queue := []string{"/app.js"}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		rec := get(t, h, http.MethodGet, p, nil)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Fatalf("%s: status %d, Content-Type %q", p, rec.Code, rec.Header().Get("Content-Type"))
		}
		for _, m := range imports.FindAllStringSubmatch(rec.Body.String(), -1) {
			spec := m[1] + m[2]
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s imports %q: only relative paths resolve without a build step", p, spec)
				continue
			}
			dep := path.Join(path.Dir(p), spec)
			if !seen[dep] {
				seen[dep] = true
				queue = append(queue, dep)
			}
		}
	}
	// And no module is left out of the page.
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".js") && !seen[strings.TrimPrefix(p, "static")] {
			t.Errorf("%s is not imported from /app.js", p)
		}
		return err
	})
	if err != nil || len(seen) < 5 {
		t.Fatalf("walk: %v; reached %v", err, seen)
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nope", "/static/app.js", "/app.js/", "/../app.js", "/index.htm", "/api"} {
		if rec := get(t, h, http.MethodGet, p, nil); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
	if rec := get(t, h, http.MethodPost, "/", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", rec.Code)
	}
	if rec := get(t, h, http.MethodHead, "/app.js", nil); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

func TestETagRevalidation(t *testing.T) {
	h := Handler()
	etag := get(t, h, http.MethodGet, "/style.css", nil).Header().Get("ETag")
	rec := get(t, h, http.MethodGet, "/style.css", map[string]string{"If-None-Match": etag})
	if rec.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d, want 304", rec.Code)
	}
}
