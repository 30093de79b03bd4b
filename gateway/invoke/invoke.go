// Package invoke calls OpenFaaS functions on behalf of a websocket user. Every
// call is signed with pkg/sign, because functions are reachable by anyone who
// can reach the FaaS gateway and must not trust an unsigned user id.
package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"easychat/pkg/frame"
	"easychat/pkg/sign"
)

// Headers of a call on behalf of a frame (see package frame).
const (
	HeaderFrameID = frame.HeaderFrameID
	HeaderMethod  = frame.HeaderMethod
)

// MaxResult bounds a function's answer (sync results can be large).
const MaxResult = 8 << 20

// maxErrText bounds the error text passed on to a client.
const maxErrText = 512

// ErrUnavailable means the function could not be reached or did not answer in
// time. The call may or may not have taken effect; the client should retry
// with the same frame id. Its text is what clients see of any outage.
var ErrUnavailable = errors.New("temporarily unavailable, retry")

// StatusError is a non-2xx answer from a function. Msg is fit for an error
// frame: a function's own refusal text (4xx), or the stable outage text with
// the function's request id (5xx), never an upstream's internal detail.
type StatusError struct {
	Function string
	Status   int
	Msg      string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("function %s answered %d: %s", e.Function, e.Status, e.Msg)
}

// Observer is told the outcome ("ok", "error", "unavailable") and latency of
// every call.
type Observer func(function, outcome string, d time.Duration)

// Client calls functions at <base>/function/<name>.
type Client struct {
	base    string
	hc      *http.Client
	signer  *sign.Signer
	observe Observer
}

// New returns a Client for the FaaS gateway at baseURL. hc may be nil for a
// client tuned for many concurrent calls to one host; observe may be nil.
func New(baseURL string, signer *sign.Signer, hc *http.Client, observe Observer) *Client {
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Every call goes to the same FaaS gateway; keep enough idle
		// connections to avoid a handshake per frame under load.
		t.MaxIdleConns = 512
		t.MaxIdleConnsPerHost = 512
		hc = &http.Client{Transport: t}
	}
	if observe == nil {
		observe = func(string, string, time.Duration) {}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc, signer: signer, observe: observe}
}

// Request is one call of a function on behalf of a user.
type Request struct {
	Function string
	User     string // the user the call is for; "" for an anonymous one (register, login)
	FrameID  string // the client's frame id, when the call serves a frame
	Method   string // the frame's method
	// Alone keeps the call out of batches: the function may wait on it.
	Alone  bool
	Client string // the client's address, for limits per address (API calls)
	Origin string // the socket a chat frame came from (event.Chat.Origin)
	Body   []byte
}

// Call POSTs r.Body to r.Function signed for r.User, tagged with the frame's
// id and method, and returns the function's JSON answer. The deadline comes
// from ctx. Errors are *StatusError for a non-2xx answer, or wrap
// ErrUnavailable.
func (c *Client) Call(ctx context.Context, r Request) (json.RawMessage, error) {
	start := time.Now()
	hdr := http.Header{}
	for k, v := range map[string]string{HeaderFrameID: r.FrameID, HeaderMethod: r.Method, frame.HeaderClient: r.Client, frame.HeaderOrigin: r.Origin} {
		if v != "" {
			hdr.Set(k, v)
		}
	}
	res, err := c.post(ctx, r.Function, sign.ForUser(r.User), hdr, r.Body)
	c.observe(r.Function, outcome(err), time.Since(start))
	return res, err
}

// CallGroup makes the calls of reqs one after another, in order, and
// returns one Answer per call.
func (c *Client) CallGroup(ctx context.Context, reqs []Request) []Answer {
	out := make([]Answer, len(reqs))
	for i, r := range reqs {
		out[i].Data, out[i].Err = c.Call(ctx, r)
	}
	return out
}

// outcome names a call's result for the Observer.
func outcome(err error) string {
	var se *StatusError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &se):
		return "error"
	default:
		return "unavailable"
	}
}

// post sends body to fn with claim and the call headers hdr, all signed.
func (c *Client) post(ctx context.Context, fn string, claim sign.Claim, hdr http.Header, body []byte) (json.RawMessage, error) {
	path := "/function/" + fn
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building request to %s: %w", fn, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	c.signer.Sign(req, path, claim, body)

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: calling %s: %v", ErrUnavailable, fn, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResult+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading answer of %s: %v", ErrUnavailable, fn, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{Function: fn, Status: resp.StatusCode, Msg: errorText(resp.StatusCode, b)}
	}
	if len(b) > MaxResult {
		return nil, &StatusError{Function: fn, Status: resp.StatusCode, Msg: "result too large"}
	}
	return result(b), nil
}

// result makes a 2xx body embeddable as a frame's data: JSON as is, nothing
// for an empty body, anything else as a JSON string.
func result(b []byte) json.RawMessage {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b))
	return s
}

// errorText is what a client may see of a function's non-2xx answer. A
// refusal (4xx) from one of our functions is JSON {"error": ...} meant for
// the client; an outage (5xx) is the stable text plus the request id the
// function logged it under. Anything else (a proxy's or runtime's own
// answer) shows only as its status text, so no upstream detail leaks.
func errorText(status int, b []byte) string {
	var e struct {
		Error     string `json:"error"`
		RequestID string `json:"requestId"`
	}
	ok := json.Unmarshal(b, &e) == nil
	if status >= 500 {
		if ok && e.RequestID != "" && len(e.RequestID) <= 32 {
			return ErrUnavailable.Error() + " (request " + e.RequestID + ")"
		}
		return ErrUnavailable.Error()
	}
	msg := e.Error
	if !ok || msg == "" {
		msg = http.StatusText(status)
		if msg == "" {
			msg = fmt.Sprintf("status %d", status)
		}
	}
	if len(msg) > maxErrText {
		msg = strings.ToValidUTF8(msg[:maxErrText], "")
	}
	return msg
}
