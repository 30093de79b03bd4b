// Package call is the function side of an authenticated call: it verifies the
// caller's signature on a golang-http request and shapes JSON answers. Every
// function is reachable by anyone who can reach the FaaS gateway, so nothing is
// trusted before the signature is.
//
// A refusal (package reject) is answered with its own status and text, meant
// for the client. Any other error is an internal failure: it is logged here
// with a request id, and the answer is a stable text with that id, so no
// driver message or address reaches a user.
package call

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/batch"
	"easychat/pkg/deps"
	"easychat/pkg/reject"
	"easychat/pkg/sign"
)

// Unavailable is what a client sees of an internal failure.
const Unavailable = "temporarily unavailable, retry"

// Do handles one verified call: caller is what the signature vouches for.
type Do func(ctx context.Context, caller sign.Claim, req handler.Request) (any, error)

// Action serves a function called for end users (by the gateway): every
// request must carry a valid signature for /function/<name>; the claim's
// user is "" for anonymous calls, which do must refuse if needed.
func Action(name string, do Do) func(handler.Request) (handler.Response, error) {
	return serve(deps.Signer(), name, false, do) // at start: a function without its key does not run
}

// Component serves a function only components may call (the connector's
// Kafka deliveries): a call made for a user, even signed, is refused.
func Component(name string, do Do) func(handler.Request) (handler.Response, error) {
	return serve(deps.Signer(), name, true, do)
}

func serve(signer *sign.Signer, name string, componentOnly bool, do Do) func(handler.Request) (handler.Response, error) {
	log := deps.Log().With("function", name)
	return func(req handler.Request) (handler.Response, error) {
		claim, err := verify(signer, req, name)
		if err != nil {
			return Fail(log, err), nil
		}
		if componentOnly && !claim.Component() {
			return Error(http.StatusUnauthorized, "unauthorized: only components call "+name), nil
		}
		out, err := do(req.Context(), claim, req)
		if err != nil {
			return Fail(log, err), nil
		}
		return JSON(http.StatusOK, out), nil
	}
}

func verify(s *sign.Signer, req handler.Request, name string) (sign.Claim, error) {
	c, err := s.Verify(req.Context(), req.Header, "/function/"+name, req.Body)
	if sign.Refused(err) {
		return c, reject.Unauthorized("unauthorized: %v", err)
	}
	return c, err
}

// JSON answers status with v encoded as JSON.
func JSON(status int, v any) handler.Response {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Error("encoding an answer", "err", err)
		return Error(http.StatusInternalServerError, Unavailable)
	}
	return handler.Response{
		StatusCode: status,
		Body:       b,
		Header:     http.Header{"Content-Type": []string{"application/json"}},
	}
}

// Error answers status with {"error": msg}.
func Error(status int, msg string) handler.Response {
	return JSON(status, map[string]string{"error": msg})
}

// Fail answers err: a refusal with its status and text; anything else logged
// at error level with a new request id, and answered 503 with the stable
// text and that id.
func Fail(log *slog.Logger, err error) handler.Response {
	status, msg, id := Classify(log, err)
	if id == "" {
		return Error(status, msg)
	}
	return JSON(status, map[string]string{"error": msg, "requestId": id})
}

// Classify turns err into what a client may see: status, text and, for an
// internal failure (logged here), a request id.
func Classify(log *slog.Logger, err error) (status int, msg, requestID string) {
	if reject.Refusal(err) {
		return reject.Status(err), err.Error(), ""
	}
	requestID = newRequestID()
	log.Error("request failed", "request", requestID, "err", err)
	return http.StatusServiceUnavailable, Unavailable, requestID
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// MaxBatch bounds the items of one batched call.
const MaxBatch = 1024

// Batch serves batched calls of function name (see package batch): the
// request must be signed as a component call, since the users are vouched
// for inside the signed body; do answers every item.
func Batch(name string, do func(ctx context.Context, items []batch.Item) ([]batch.Result, error)) func(handler.Request) (handler.Response, error) {
	return Component(name, batchOf(do))
}

func batchOf(do func(ctx context.Context, items []batch.Item) ([]batch.Result, error)) Do {
	return func(ctx context.Context, _ sign.Claim, req handler.Request) (any, error) {
		var items []batch.Item
		if err := json.Unmarshal(req.Body, &items); err != nil {
			return nil, reject.Invalid("invalid batch: %v", err)
		}
		if len(items) == 0 {
			return nil, reject.Invalid("empty batch")
		}
		if len(items) > MaxBatch {
			return nil, reject.Invalid("batch of %d items (max %d)", len(items), MaxBatch)
		}
		out, err := do(ctx, items)
		if err != nil {
			return nil, err
		}
		if len(out) != len(items) {
			return nil, fmt.Errorf("%d results for %d items", len(out), len(items))
		}
		return out, nil
	}
}

// ItemError is the result of a batch item that failed: a refusal as is, an
// internal failure logged and answered with the stable text.
func ItemError(log *slog.Logger, err error) batch.Result {
	status, msg, id := Classify(log, err)
	if id != "" {
		msg += " (request " + id + ")"
	}
	return batch.Result{Status: status, Error: msg}
}
