package call

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/batch"
	"easychat/pkg/sign"
)

func TestBatchAcceptsOnlySignedComponentCalls(t *testing.T) {
	t.Setenv("INTERNAL_KEY", "test-key")
	var got []batch.Item
	h := Batch("chat", func(_ context.Context, items []batch.Item) ([]batch.Result, error) {
		got = items
		out := make([]batch.Result, len(items))
		for i := range out {
			out[i] = batch.Result{Status: 200, Data: json.RawMessage(`{}`)}
		}
		return out, nil
	})
	good := sign.New("test-key")
	req := func(s *sign.Signer, user, body string) handler.Request {
		b := []byte(body)
		h := http.Header{}
		if s != nil {
			h = s.Headers("/function/chat", user, b)
		}
		return handler.Request{Body: b, Header: h}
	}
	const two = `[{"user":"bob","frameId":"f1","data":{}},{"user":"carol","data":{}}]`
	for _, c := range []struct {
		name   string
		req    handler.Request
		status int
	}{
		{"unsigned", req(nil, "", two), 401},
		{"wrong key", req(sign.New("other"), "", two), 401},
		{"signed for a user", req(good, "bob", two), 401},
		{"not an array", req(good, "", `{"user":"bob"}`), 400},
		{"empty", req(good, "", `[]`), 400},
		{"ok", req(good, "", two), 200},
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
