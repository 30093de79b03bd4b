// Package trigger calls one OpenFaaS function with a signed request through
// the connector-sdk Invoker and reports whether it answered 2xx.
package trigger

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/openfaas/connector-sdk/types"

	"easychat/pkg/sign"
)

// UserAgent identifies the connector's calls in function logs.
const UserAgent = "easychat-connector"

// NewClient returns the HTTP client shared by all Callers. The SDK's
// MakeClient keeps idle connections only 120 ms, which means a new TCP
// connection for most calls; this one keeps them for reuse.
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// Result is the outcome of one call.
type Result struct {
	Function string
	Status   int // HTTP status; 0 when no response arrived
	Duration time.Duration
	Err      error // nil only for a 2xx answer
}

// OK reports whether the function accepted the message.
func (r Result) OK() bool { return r.Err == nil }

// Caller invokes functions one at a time. It owns an SDK Invoker, whose
// response channel must not be shared, so use one Caller per goroutine.
type Caller struct {
	invoker *types.Invoker
	signer  *sign.Signer
}

// NewCaller returns a Caller posting to gatewayURL/function/<name> with client.
func NewCaller(gatewayURL string, client *http.Client, signer *sign.Signer) *Caller {
	inv := types.NewInvoker(strings.TrimRight(gatewayURL, "/")+"/function", client,
		"application/json", false, false, UserAgent)
	inv.UserAgent = UserAgent // NewInvoker drops its userAgent argument
	return &Caller{invoker: inv, signer: signer}
}

// Call posts body to function fn for a message of topic, adding the signature
// for "/function/<fn>" and extra headers. The SDK Invoker signs nothing and
// sends one header set to every matched function, so each call goes through
// a one-entry TopicMap carrying only fn, with headers signed for fn alone.
func (c *Caller) Call(ctx context.Context, topic, fn string, body []byte, extra http.Header) Result {
	if len(body) == 0 {
		// The SDK reports an empty body as an error and then posts it anyway.
		return Result{Function: fn, Err: fmt.Errorf("invoking %s: empty message", fn)}
	}
	headers := c.signer.Headers(SignedPath(fn), sign.Component, body)
	for k, v := range extra {
		headers[k] = v
	}
	tm := types.NewTopicMap()
	tm.Sync(&map[string][]string{topic: {fn}})

	done := make(chan struct{})
	go func() {
		defer close(done)
		c.invoker.InvokeWithContext(ctx, &tm, topic, &body, headers)
	}()
	// Responses is unbuffered: once the goroutine is done every response
	// has been received here.
	var res []types.InvokerResponse
	for collecting := true; collecting; {
		select {
		case r := <-c.invoker.Responses:
			res = append(res, r)
		case <-done:
			collecting = false
		}
	}
	if len(res) != 1 {
		return Result{Function: fn, Err: fmt.Errorf("invoking %s: got %d responses, want 1", fn, len(res))}
	}
	r := res[0]
	out := Result{Function: fn, Status: r.Status, Duration: r.Duration}
	switch {
	case r.Error != nil:
		out.Status = 0
		out.Err = r.Error
	case r.Status < 200 || r.Status > 299:
		out.Err = fmt.Errorf("invoking %s: status %d: %s", fn, r.Status, snippet(r.Body))
	}
	return out
}

// SignedPath is the path a function verifies signatures against:
// "/function/<its name>". The SDK names functions "name.namespace" when the
// gateway lists namespaces; a function knows only its own name, and OpenFaaS
// names cannot contain dots.
func SignedPath(fn string) string {
	name, _, _ := strings.Cut(fn, ".")
	return "/function/" + name
}

func snippet(b *[]byte) string {
	if b == nil {
		return ""
	}
	s := strings.TrimSpace(string(*b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
