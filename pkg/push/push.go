// Package push is the client side of a gateway's POST /internal/push: one
// signed, batched call per gateway instance.
package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"easychat/pkg/event"
	"easychat/pkg/sign"
)

// Path is the push endpoint's path on a gateway's internal listener.
const Path = "/internal/push"

// Result is a gateway's answer to a push.
type Result struct {
	Delivered int      `json:"delivered"`
	Missing   []string `json:"missing"`
}

// Client posts push batches to gateway instances.
type Client struct {
	signer *sign.Signer
	http   *http.Client
}

// transport is shared by every Client of the process: a function builds a
// Client per invocation, and its connections to the gateways must outlive it
// (a transport per Client dialled anew for every push and left its idle
// connection behind).
//
// Gateways are in the same cluster, where a dial takes milliseconds: a short
// dial timeout keeps a gateway that died, and is routed to until its routes
// expire, from holding up a partition's deliveries for long.
var transport = &http.Transport{
	DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConns:        256,
	MaxIdleConnsPerHost: 64,
	IdleConnTimeout:     90 * time.Second,
}

// NewClient returns a Client signing with s. Connections to gateways are
// reused across calls and across Clients.
func NewClient(s *sign.Signer) *Client {
	return &Client{signer: s, http: &http.Client{Timeout: 5 * time.Second, Transport: transport}}
}

// Send posts batch to the gateway whose internal base URL is addr.
func (c *Client) Send(ctx context.Context, addr string, batch event.Push) (Result, error) {
	body, err := json.Marshal(batch)
	if err != nil {
		return Result{}, fmt.Errorf("encoding push: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(addr, "/")+Path, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("building push to %s: %w", addr, err)
	}
	req.Header.Set("Content-Type", "application/json")
	c.signer.Sign(req, Path, sign.Component, body)
	res, err := c.http.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("pushing to %s: %w", addr, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode/100 != 2 {
		return Result{}, fmt.Errorf("pushing to %s: %s: %s", addr, res.Status, bytes.TrimSpace(b))
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return Result{}, fmt.Errorf("decoding push result from %s: %w", addr, err)
	}
	return r, nil
}
