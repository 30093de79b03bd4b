package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// The browser client is served at / next to the websocket, the API and the
// health endpoints, which it must not shadow.
func TestWebClientServedBesideWebsocketAndAPI(t *testing.T) {
	fa := newFakeFaaS(t)
	g := startGateway(t, newRegistry(t), testConfig(fa.srv.URL))
	base := "http://" + g.Addr()

	for path, ctype := range map[string]string{
		"/":            "text/html; charset=utf-8",
		"/app.js":      "text/javascript; charset=utf-8",
		"/style.css":   "text/css; charset=utf-8",
		"/favicon.svg": "image/svg+xml",
	} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != ctype || len(body) == 0 {
			t.Errorf("GET %s: %d %q (%d bytes), want 200 %q", path, res.StatusCode, res.Header.Get("Content-Type"), len(body), ctype)
		}
	}
	for _, path := range []string{"/nope", "/ws/x", "/internal/push", "/metrics"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != want {
			t.Errorf("GET %s: %d %q", path, res.StatusCode, body)
		}
	}

	// /ws: still a 401 without a token, and a socket with one offered as a
	// browser does (Sec-WebSocket-Protocol).
	res, err := http.Get(base + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /ws without token: %d", res.StatusCode)
	}
	user := uid("webby")
	d := websocket.Dialer{Subprotocols: []string{"easychat", tok(t, user)}}
	ws, resp, err := d.Dial(g.wsURL(), http.Header{"Origin": {base}})
	if err != nil {
		t.Fatalf("websocket: %v (%s)", err, status(resp))
	}
	defer ws.Close()
	ping(t, ws)

	// /api/: still the API (POST only), not the page.
	if code, body := apiPost(t, g, "/api/user", "", `{"action":"login"}`); code != 200 || body != `{"ok":true}` {
		t.Fatalf("POST /api/user: %d %s", code, body)
	}
	res, err = http.Get(base + "/api/user")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/user: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}
