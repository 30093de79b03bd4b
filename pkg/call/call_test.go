package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/batch"
	"easychat/pkg/nonce"
	"easychat/pkg/reject"
	"easychat/pkg/sign"
)

const key = "test-key-0123456789"

func request(s *sign.Signer, c sign.Claim, body string) handler.Request {
	return requestTo("chat", s, c, body)
}

func requestTo(fn string, s *sign.Signer, c sign.Claim, body string) handler.Request {
	b := []byte(body)
	h := http.Header{}
	if s != nil {
		h = s.Headers("/function/"+fn, c, b)
	}
	return handler.Request{Body: b, Header: h}
}

func TestBatchAcceptsOnlySignedComponentCalls(t *testing.T) {
	var got []batch.Item
	h := serve(sign.New(key), "chat", true, batchOf(func(_ context.Context, items []batch.Item) ([]batch.Result, error) {
		got = items
		out := make([]batch.Result, len(items))
		for i := range out {
			out[i] = batch.Result{Status: 200, Data: json.RawMessage(`{}`)}
		}
		return out, nil
	}))
	good := sign.New(key)
	const two = `[{"user":"bob","frameId":"f1","data":{}},{"user":"carol","data":{}}]`
	for _, c := range []struct {
		name   string
		req    handler.Request
		status int
	}{
		{"unsigned", request(nil, sign.Component, two), 401},
		{"wrong key", request(sign.New("other-key-0123456789"), sign.Component, two), 401},
		{"signed for a user", request(good, sign.ForUser("bob"), two), 401},
		{"signed for an anonymous user", request(good, sign.ForUser(""), two), 401},
		{"not an array", request(good, sign.Component, `{"user":"bob"}`), 400},
		{"empty", request(good, sign.Component, `[]`), 400},
		{"ok", request(good, sign.Component, two), 200},
	} {
		got = nil
		res, err := h(c.req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != c.status {
			t.Fatalf("%s: status %d (%s), want %d", c.name, res.StatusCode, res.Body, c.status)
		}
		if c.status != 200 && got != nil {
			t.Fatalf("%s: items reached the function", c.name)
		}
	}
	if len(got) != 2 || got[0].User != "bob" || got[0].FrameID != "f1" || got[1].User != "carol" {
		t.Fatalf("items %+v", got)
	}
}

// Internal failures reach the client as a stable text and a request id;
// refusals keep their own status and text; a replayed call is refused.
func TestAnswersHideInternalErrors(t *testing.T) {
	var fail error
	s := sign.New(key).WithReplays(nonce.NewMemory())
	h := serve(s, "chat", false, func(context.Context, sign.Claim, handler.Request) (any, error) {
		return map[string]string{"ok": "yes"}, fail
	})
	answer := func(req handler.Request) (int, map[string]string) {
		t.Helper()
		res, err := h(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		if err := json.Unmarshal(res.Body, &body); err != nil {
			t.Fatalf("answer %s: %v", res.Body, err)
		}
		return res.StatusCode, body
	}

	fail = fmt.Errorf("reading group g-1: %w", errors.New("mongo: server selection error: 10.0.0.5:27017 connection refused"))
	code, body := answer(request(s, sign.ForUser("bob"), `{}`))
	if code != http.StatusServiceUnavailable || body["error"] != Unavailable || len(body["requestId"]) != 16 {
		t.Fatalf("internal failure answered %d %v", code, body)
	}
	fail = reject.Forbidden("not a member of group g-1")
	if code, body := answer(request(s, sign.ForUser("bob"), `{}`)); code != http.StatusForbidden || body["error"] != "not a member of group g-1" {
		t.Fatalf("refusal answered %d %v", code, body)
	}
	fail = nil
	req := request(s, sign.ForUser("bob"), `{}`)
	if code, _ := answer(req); code != http.StatusOK {
		t.Fatalf("first call: %d", code)
	}
	if code, body := answer(req); code != http.StatusUnauthorized || !strings.Contains(body["error"], "replayed") {
		t.Fatalf("replayed call answered %d %v", code, body)
	}
}

func TestComponentOnlyRefusesUserCalls(t *testing.T) {
	s := sign.New(key)
	called := false
	h := serve(s, "transfer", true, func(context.Context, sign.Claim, handler.Request) (any, error) {
		called = true
		return nil, nil
	})
	for _, c := range []sign.Claim{sign.ForUser("mallory"), sign.ForUser("")} {
		res, _ := h(requestTo("transfer", s, c, `{}`))
		if res.StatusCode != http.StatusUnauthorized || called {
			t.Fatalf("%+v: status %d, called %v", c, res.StatusCode, called)
		}
	}
}
