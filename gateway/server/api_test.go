package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func apiPost(t *testing.T, g *gw, path, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.Addr()+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The HTTP API forwards to the allowed functions, signed for the token's user
// (or anonymous), and passes the function's status and answer through.
func TestHTTPAPIForwardsSignedForTheTokensUser(t *testing.T) {
	fa := newFakeFaaS(t)
	fa.setAnswer(func(w http.ResponseWriter, r *http.Request, c call) bool {
		if c.Fn == "group" && c.User == "" {
			http.Error(w, `{"error":"login required"}`, http.StatusUnauthorized)
			return true
		}
		_, _ = w.Write([]byte(`{"fn":"` + c.Fn + `","user":"` + c.User + `"}`))
		return true
	})
	g := startGateway(t, newRegistry(t), testConfig(fa.srv.URL))
	alice := uid("alice")

	if code, body := apiPost(t, g, "/api/user", "", `{"action":"login"}`); code != 200 || body != `{"fn":"user","user":""}` {
		t.Fatalf("anonymous: %d %s", code, body)
	}
	if code, body := apiPost(t, g, "/api/group", tok(t, alice), `{"action":"mine"}`); code != 200 || body != `{"fn":"group","user":"`+alice+`"}` {
		t.Fatalf("with token: %d %s", code, body)
	}
	if code, body := apiPost(t, g, "/api/group", "", `{}`); code != 401 || !strings.Contains(body, "login required") {
		t.Fatalf("function refusal: %d %s", code, body)
	}
	if code, _ := apiPost(t, g, "/api/group", "garbage", `{}`); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	if code, _ := apiPost(t, g, "/api/chat", tok(t, alice), `{}`); code != 404 {
		t.Fatalf("function not in the API: %d", code)
	}
	res, err := http.Get("http://" + g.Addr() + "/api/user")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", res.StatusCode)
	}
	for _, c := range fa.callsSnapshot() {
		if c.Fn == "chat" {
			t.Fatal("chat was reachable through the API")
		}
	}
}
